"""
==============================================================
Tuning the activation and the batch size with GridSearchCV
==============================================================

With no learning rate to tune, what is left to choose is the model (the
activation) and how it is trained (the batch size). Both are ordinary parameters
of :class:`~sklearn_optlr.OptimalLRRegressor`, so a
:class:`~sklearn.model_selection.GridSearchCV` over a
:class:`~sklearn.pipeline.Pipeline` searches them, custom activations included.
"""

# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# The pipeline and the grid
# -------------------------
# scikit-learn's bundled diabetes data: 442 patients, 10 features, a disease
# progression score from 25 to 346. The features are standardised; the targets
# are left as they are, so activations that only predict non-negative values
# (ReLU, abs) are not at a disadvantage.
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear

X, y = load_diabetes(return_X_y=True)

# ReLU with a ceiling at 400: predictions stay in [0, 400].
clip_0_400 = PiecewiseLinear(x=[0.0, 400.0], y=[0.0, 400.0], left_slope=0.0, right_slope=0.0)
activations = {
    "identity": "identity",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "abs": "abs",
    "clip [0, 400]": clip_0_400,
}
batch_sizes = [1, 8, 32, 128, "full"]

pipeline = Pipeline([("scale", StandardScaler()), ("model", OptimalLRRegressor(random_state=0))])
param_grid = {"model__activation": list(activations.values()), "model__batch_size": batch_sizes}
search = GridSearchCV(
    pipeline, param_grid, cv=KFold(n_splits=5, shuffle=True, random_state=0), scoring="r2"
)
search.fit(X, y)
print("Best parameters:", search.best_params_)
print(f"Best mean CV R^2: {search.best_score_:.3f}")

# %%
# Cross-validated R^2 of every candidate
# --------------------------------------
# ``cv_results_`` lists the candidates in grid order (activation outer, batch
# size inner), so the mean scores reshape into an activation x batch size table.
import matplotlib.pyplot as plt
import numpy as np

scores = search.cv_results_["mean_test_score"].reshape(len(activations), len(batch_sizes))

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
image = ax.imshow(scores, cmap="viridis", vmin=max(scores.min(), 0.0), vmax=scores.max())
ax.set_xticks(range(len(batch_sizes)), labels=[str(size) for size in batch_sizes])
ax.set_yticks(range(len(activations)), labels=list(activations))
ax.set(xlabel="batch_size", ylabel="activation", title="Mean 5-fold CV R$^2$")
threshold = scores.min() + 0.6 * (scores.max() - scores.min())
for (row, column), score in np.ndenumerate(scores):
    ax.text(
        column, row, f"{score:.3f}" if score > 0 else "< 0", ha="center", va="center",
        color="black" if score > threshold else "white",
    )  # fmt: skip
fig.colorbar(image, ax=ax, label="R$^2$ (below 0 shown as 0)")

# %%
# The weakest candidates:
print("Lowest mean CV R^2:")
for index in np.argsort(scores, axis=None)[:3]:
    row, column = np.unravel_index(index, scores.shape)
    name, batch_size = list(activations)[row], batch_sizes[column]
    print(f"  {name:>13}, batch_size={batch_size}: {scores[row, column]:.3f}")

# %%
# From ``batch_size=8`` upwards every activation scores like full batch: the
# diabetes data is close to linear, and all of these activations can represent
# a linear response over the range of the (positive) targets. At
# ``batch_size=1`` the seed's rate is the normalised-LMS step, which fits each
# sample exactly, noise included; on leaky ReLU's 0.01-slope piece it is
# :math:`10^4` times larger than on the unit-slope piece. The default step,
# ``"pooled"``, sums the rate's two terms over the last rows so that no single
# row sets its own step, and averaging the iterates (the default with
# mini-batches) does the rest. abs stays a little behind at batch size 1: it has
# two mirror-image fits (:math:`z = y` and :math:`z = -y`), and one-row steps
# leave rows on both. The search picks full batch, where every activation
# reaches the same fit.
plt.show()
