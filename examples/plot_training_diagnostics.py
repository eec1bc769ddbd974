"""
====================================================
Training diagnostics: loss and learning-rate curves
====================================================

Every fitted :class:`~sklearn_optlr.OptimalLRRegressor` keeps a per-epoch record:
the training loss (``loss_curve_``), the mean learning rate taken
(``learning_rate_curve_``), the smallest and largest rate
(``learning_rate_bounds_``) and, with early stopping, the validation R^2
(``validation_scores_``). :class:`~sklearn_optlr.TrainingCurveDisplay` draws them.

Here they show how the batch size changes what the solver does, and early
stopping on a validation set of your own; scikit-learn's callbacks watch the same
epochs as they run.
"""

# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# A problem with a known answer
# -----------------------------
# A ReLU "teacher" network with 20 inputs and 3 outputs generates the targets,
# with a little noise, so a single-layer ReLU model can fit them almost exactly.
import numpy as np

rng = np.random.default_rng(0)
n_samples, n_features, n_outputs = 5_000, 20, 3
X = rng.standard_normal((n_samples, n_features))
teacher_coef = rng.standard_normal((n_outputs, n_features)) / np.sqrt(n_features)
Y = np.maximum(X @ teacher_coef.T + 0.5, 0.0) + 0.05 * rng.standard_normal((n_samples, n_outputs))

# %%
# One model, all of its record
# ----------------------------
# With ``early_stopping=True`` a tenth of the data is held out, the validation
# R^2 is recorded after each epoch, and training keeps the best epoch's weights.
import matplotlib.pyplot as plt

from sklearn_optlr import OptimalLRRegressor, TrainingCurveDisplay

model = OptimalLRRegressor("relu", batch_size=256, early_stopping=True, random_state=0)
model.fit(X, Y)
print(f"{model.n_iter_} epochs, best validation R^2 {model.best_validation_score_:.4f}")
display = TrainingCurveDisplay.from_estimator(model)
display.figure_.suptitle("ReLU, batch_size=256, early stopping")

# %%
# The validation R^2 (dashed, right-hand scale) is at its best after two epochs
# and stays there; early stopping ends training ``n_iter_no_change`` epochs later
# and keeps the best epoch's weights. On the right, the line is the mean rate of
# each epoch and the band spans the smallest to the largest: every batch has its
# own optimal rate.
#
# Three batch sizes on the same axes
# ----------------------------------
# Passing a pair of Axes draws several models on the same panels: each takes the
# next colour of the Axes' cycle for all its lines, and its ``name`` labels them.
# Labels that start with an underscore are left out of the legend.
batch_sizes = [32, 256, "full"]
models = {}
fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for batch_size in batch_sizes:
    models[batch_size] = OptimalLRRegressor("relu", batch_size=batch_size, random_state=0)
    models[batch_size].fit(X, Y)
    TrainingCurveDisplay.from_estimator(
        models[batch_size],
        ax=axes,
        name=f"batch_size={batch_size}",
        fill_between_kw={"label": "_band"},
    )
fig.suptitle("Batch sizes compared")

# %%
# By default a mini-batch fit averages its iterates, and a full-batch fit takes
# one step per epoch, along conjugate directions (see the user guide's page on
# averaging, line search and conjugate directions). The loss curve records the
# iterates' own training loss, each batch's taken before its update, as
# MLPRegressor's does: it costs no pass over the data. On this scale the three
# curves end alike, near the noise level :math:`\tfrac12 \times 3 \times 0.05^2 =
# 3.75 \cdot 10^{-3}`. The rates tell the batch sizes apart: with 32 rows a
# batch's optimal rate varies by a factor of five within an epoch.
#
# The excess loss
# ---------------
# How far each curve is from the best loss found shows what the log scale
# hides; the fitted models' own losses are printed beside them.
best_loss = min(min(model.loss_curve_) for model in models.values())
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for color, (batch_size, model) in zip(["C0", "C1", "C2"], models.items()):
    excess = (np.array(model.loss_curve_) - best_loss) / best_loss
    epochs = np.arange(1, model.n_iter_ + 1)
    ax.plot(epochs, excess, color=color, label=f"batch_size={batch_size}")
    fitted = 0.5 * np.mean(np.sum((model.predict(X) - Y) ** 2, axis=1))
    print(
        f"batch_size={batch_size!s:>4}: {model.n_iter_:>2} epochs, relative excess loss "
        f"of the last epoch's batches {excess[-1]:.1e}, of the fitted model "
        f"{(fitted - best_loss) / best_loss:.1e}"
    )
ax.xaxis.get_major_locator().set_params(integer=True)
ax.set(
    yscale="log",
    xlabel="Epoch",
    ylabel="(loss - best loss) / best loss",
    title="Relative excess training loss",
)
ax.legend()

# %%
# Full batch reaches the best loss. The mini-batch curves level off at their noise
# floor, and the fits stop when it no longer improves by ``tol`` times its value: a
# batch's optimal step fits that batch greedily, noise included, so the iterates
# wander around the optimum. The model they return, the average of the iterates,
# comes much closer (see the noise floor of mini-batches in the user guide).
#
# The seed's method against the defaults
# --------------------------------------
# The original derivation takes the optimal step on each batch and keeps the last
# weights: ``solver="gd", step="optimal", average=False`` (and no preconditioner,
# ``precondition=False``). Its ``loss_curve_`` is
# the mean of its batches' losses, so to compare like with like the training loss
# of each model's weights is computed here after every epoch, by continuing one
# model an epoch at a time (``warm_start``).
import warnings

from sklearn.exceptions import ConvergenceWarning


def loss_per_epoch(model, n_epochs=8):
    """The training loss of ``model``'s weights after each of ``n_epochs`` epochs."""
    model.set_params(max_iter=1, warm_start=True, tol=0.0)
    losses = []
    for _ in range(n_epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch per call
            model.fit(X, Y)
        losses.append(0.5 * np.mean(np.sum((model.predict(X) - Y) ** 2, axis=1)))
    return np.array(losses)


seed = loss_per_epoch(
    OptimalLRRegressor(
        "relu",
        batch_size=32,
        solver="gd",
        step="optimal",
        average=False,
        precondition=False,
        random_state=0,
    )
)
defaults = loss_per_epoch(OptimalLRRegressor("relu", batch_size=32, random_state=0))
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for losses, label in [(seed, "seed's method"), (defaults, "defaults")]:
    ax.plot(np.arange(1, len(losses) + 1), (losses - best_loss) / best_loss, label=label)
    excess = (losses[-1] - best_loss) / best_loss
    print(f"{label:>13}: relative excess loss after 8 epochs {excess:.1e}")
ax.set(yscale="log", xlabel="Epoch", ylabel="(loss - best loss) / best loss",
       title="batch_size=32: seed's method against the defaults")  # fmt: skip
ax.legend()

# %%
# The seed's iterates stall where each batch's greedy fit leaves them, tens of
# percent above the optimum; the averaged iterates of the defaults keep closing
# in, with the same steps.
#
# The default batch size grows
# ----------------------------
# With ``batch_size="auto"`` (the default) a fit starts with batches of 200 rows
# and doubles them while the batches' gradient noise outweighs their gradient, on
# to the full batch (see the adaptive batch size in the user guide). Here the
# noise dominates after the first epoch, and the full batch takes over from the
# averaged weights. ``batch_size_curve_`` records each epoch's size, and the
# display marks where it changed.
auto = OptimalLRRegressor("relu", random_state=0).fit(X, Y)
print("batch sizes:", auto.batch_size_curve_)
display = TrainingCurveDisplay.from_estimator(auto)
display.figure_.suptitle("batch_size='auto' (the default)")

# %%
# Early stopping on rows of your own
# ----------------------------------
# A random hold-out leaks where rows are related (a time series, repeated measures
# of one subject). Pass the rows to stop on instead, as for
# HistGradientBoostingRegressor: all of ``X`` then trains, and the dot marks the
# epoch whose model was kept. Here the last 1,000 rows play that part.
given = OptimalLRRegressor("relu", batch_size=256, early_stopping=True, random_state=0)
given.fit(X[:-1000], Y[:-1000], X_val=X[-1000:], y_val=Y[-1000:])
print(f"{given.n_iter_} epochs, R^2 on the given rows {given.best_validation_score_:.4f}")
display = TrainingCurveDisplay.from_estimator(given)
display.figure_.suptitle("early stopping on the last 1,000 rows")
plt.show()

# %%
# scikit-learn's callbacks
# ------------------------
# With scikit-learn 1.9 or later, ``set_callbacks`` takes scikit-learn's own
# callbacks (:mod:`sklearn.callback`), and each epoch is one of the fit's tasks.
# ``ScoringMonitor`` scores the model each epoch leaves on the training rows. A
# callback of your own stops training by returning True at an epoch's end: here,
# once an epoch raises the training R^2 by less than 1e-5.
from sklearn.callback import ScoringMonitor


class StopWhenFlat:
    """Stop training once an epoch raises the training R^2 by less than ``min_gain``."""

    def __init__(self, min_gain):
        self.min_gain = min_gain

    def setup(self, estimator, context):
        self.last_score = -np.inf

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, fitted_estimator=None):
        if context.task_name != "epoch":
            return False
        score = fitted_estimator.score(X, y)
        gain, self.last_score = score - self.last_score, score
        return gain < self.min_gain


monitor = ScoringMonitor(scoring="r2")
model = OptimalLRRegressor("relu", batch_size=256, random_state=0, verbose=1)
model.set_callbacks(monitor, StopWhenFlat(1e-5)).fit(X, Y)
scores = monitor.get_logs().data_as_pandas
print(scores.loc[scores.task_name == "epoch", ["task_id", "r2"]].to_string(index=False))
