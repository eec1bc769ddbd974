"""
===========
Quick start
===========

Fit :class:`~sklearn_optlr.OptimalLRRegressor` on scikit-learn's bundled diabetes
data, score it, and look at the learning rates it chose. There is no learning rate
to tune: every step takes the rate that minimises the batch loss along its
direction; along the gradient :math:`g` that is the seed's
:math:`\\eta^* = \\langle g, g \\rangle / g^\\top H g`.
"""

# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Data and model
# --------------
# The estimator follows scikit-learn's API, so it goes in a
# :class:`~sklearn.pipeline.Pipeline` behind a scaler like any other regressor.
# ``batch_size="full"`` makes each epoch one step on the whole training set; the
# default, ``"auto"``, uses mini-batches of 200.
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

model = make_pipeline(
    StandardScaler(), OptimalLRRegressor("relu", batch_size="full", random_state=0)
)
model.fit(X_train, y_train)
print(f"Test R^2: {model.score(X_test, y_test):.3f}")

# %%
# What the solver did
# -------------------
# The fitted model records, for every epoch, its training loss and the learning
# rates it took. With one step per epoch, each epoch has one rate, and the loss
# recorded for an epoch is that of the weights it started from (no extra pass).
regressor = model[-1]
print(f"{regressor.n_iter_} epochs, training loss {regressor.loss_:.1f} before the last step")
print("First learning rates:", [round(rate, 3) for rate in regressor.learning_rate_curve_[:5]])

# %%
# The defaults step along the preconditioned gradient (and, in full batch, along
# conjugate directions), with the optimal rate along that direction. The seed's
# plain method, ``solver="gd"``, ``step="optimal"``, ``precondition=False``,
# ``average=False``, steps along the gradient itself, so its first rate can be
# checked by hand with :func:`~sklearn_optlr.optimal_learning_rate`, the public
# function that computes it for one batch. The weights start at zero and the
# intercept inside ReLU's active piece, at the targets' root mean square.
import numpy as np

from sklearn_optlr import optimal_learning_rate

seed_method = make_pipeline(
    StandardScaler(),
    OptimalLRRegressor(
        "relu",
        batch_size="full",
        solver="gd",
        step="optimal",
        precondition=False,
        average=False,
        random_state=0,
    ),
).fit(X_train, y_train)
X_scaled = seed_method[0].transform(X_train)
start = np.sqrt(np.mean(y_train**2))
first_rate = optimal_learning_rate(
    np.zeros(X.shape[1]), start, X_scaled, y_train, activation="relu"
)
print(f"optimal_learning_rate at the start: {first_rate:.6f}")
print(f"seed's rate of the first epoch:     {seed_method[-1].learning_rate_curve_[0]:.6f}")

# %%
# Predictions and training curves
# -------------------------------
# :class:`~sklearn_optlr.TrainingCurveDisplay` draws the loss (log scale) and the
# learning rates, epoch by epoch.
import matplotlib.pyplot as plt

from sklearn_optlr import TrainingCurveDisplay

fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
ax.scatter(y_test, model.predict(X_test), s=12, alpha=0.7)
ax.axline((0, 0), slope=1, color="gray", linestyle="--", linewidth=1)
ax.set(xlabel="Measured disease progression", ylabel="Predicted", title="Test set")

TrainingCurveDisplay.from_estimator(model)
plt.show()
