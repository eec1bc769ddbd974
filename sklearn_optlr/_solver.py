"""The training loop: epochs of mini-batch gradient descent with the optimal step.

The loop owns batching, shuffling, the per-epoch record and the stopping rule; the
step math lives in :mod:`._step`. Functions here take and return arrays and plain
records, never the estimator, so tests can drive them directly.
"""

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import gen_batches

from ._step import forward, gradient_step_terms, normalised_weights, quadratic_step

__all__ = ["EpochRecord", "TrainingHistory", "run_epoch", "train"]


@dataclass(frozen=True)
class EpochRecord:
    """What one pass over the data did.

    Attributes
    ----------
    loss : float
        Objective averaged over the batches, each batch's loss taken before its
        update and weighted by its share of the total sample weight.
    step_mean, step_min, step_max : float
        Statistics of the learning rates taken.
    n_zero_gradient : int
        Batches whose gradient was zero (no step taken).
    n_batches : int
        Batches in the pass.
    """

    loss: float
    step_mean: float
    step_min: float
    step_max: float
    n_zero_gradient: int
    n_batches: int


@dataclass(frozen=True)
class TrainingHistory:
    """The per-epoch record a model carries across ``fit``, ``warm_start`` and ``partial_fit``.

    Memory grows with the number of epochs, never with the number of steps.
    """

    loss_curve: tuple = ()
    learning_rate_curve: tuple = ()
    learning_rate_bounds: tuple = ()
    validation_scores: tuple = ()
    t: int = 0

    def append(self, record, n_samples, validation_score=None):
        return replace(
            self,
            loss_curve=self.loss_curve + (record.loss,),
            learning_rate_curve=self.learning_rate_curve + (record.step_mean,),
            learning_rate_bounds=self.learning_rate_bounds + ((record.step_min, record.step_max),),
            validation_scores=self.validation_scores
            + (() if validation_score is None else (validation_score,)),
            t=self.t + n_samples,
        )


def run_epoch(X, Y, sample_weight, coef, intercept, *, activation, step, batch_size, alpha, order):
    """One pass over the rows of ``X`` in ``order``, updating ``coef`` and ``intercept`` in place.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,) or None
    coef : ndarray of shape (n_outputs, n_features)
        Updated in place.
    intercept : ndarray of shape (n_outputs,)
        Updated in place.
    activation : PiecewiseLinear
    step : "optimal" or float
        ``"optimal"`` takes ``<g, g> / (g^T H g)`` on each batch; a float is a fixed rate.
    batch_size : int
    alpha : float
        L2 penalty.
    order : ndarray of int or None
        Row order (a permutation when shuffling); None for the natural order.

    Returns
    -------
    EpochRecord
    """
    n_samples = X.shape[0]
    total_weight = n_samples if sample_weight is None else float(sample_weight.sum())
    loss = 0.0
    steps = []
    n_zero_gradient = 0
    for batch in gen_batches(n_samples, batch_size):
        rows = batch if order is None else order[batch]
        X_batch, Y_batch = X[rows], Y[rows]
        weight_batch = None if sample_weight is None else sample_weight[rows]
        batch_weight = (
            X_batch.shape[0] if weight_batch is None else float(weight_batch.sum())
        )
        if batch_weight == 0:
            # A batch of zero-weight rows carries no loss and no gradient.
            continue
        weights = normalised_weights(weight_batch, X_batch.shape[0], coef.dtype)
        batch_objective, grad_coef, grad_intercept, numerator, denominator = gradient_step_terms(
            X_batch, Y_batch, coef, intercept, activation, weights, alpha
        )
        loss += batch_objective * (batch_weight / total_weight)
        if numerator == 0.0:
            n_zero_gradient += 1
            rate = 0.0
        elif step == "optimal":
            rate = quadratic_step(-numerator, denominator)
        else:
            rate = step
        if rate:
            coef -= coef.dtype.type(rate) * grad_coef
            intercept -= intercept.dtype.type(rate) * grad_intercept
        steps.append(rate)
    steps = np.asarray(steps) if steps else np.zeros(1)
    return EpochRecord(
        loss=loss,
        step_mean=float(steps.mean()),
        step_min=float(steps.min()),
        step_max=float(steps.max()),
        n_zero_gradient=n_zero_gradient,
        n_batches=len(steps),
    )


def validation_score(X, Y, sample_weight, coef, intercept, activation):
    """R^2 of the current model on held-out data (uniform average over outputs)."""
    output, _ = forward(X, coef, intercept, activation)
    return float(r2_score(Y, output, sample_weight=sample_weight))


@dataclass
class _Stopper:
    """The stopping rule: ``n_iter_no_change`` epochs without a ``tol`` improvement.

    Training loss must fall by more than ``tol`` times its best value (a relative
    test, so the rule does not depend on the scale of ``y``); a validation score
    (R^2, already scale-free) must rise by more than ``tol``.
    """

    tol: float
    n_iter_no_change: int
    best: float = np.inf
    epochs_without_improvement: int = 0
    best_epoch: int = field(default=-1)

    def update(self, criterion, epoch, relative):
        threshold = self.tol * abs(self.best) if relative else self.tol
        if criterion > self.best - threshold:
            self.epochs_without_improvement += 1
        else:
            self.epochs_without_improvement = 0
        if criterion < self.best:
            self.best = criterion
            self.best_epoch = epoch
        return self.epochs_without_improvement > self.n_iter_no_change


def train(
    X,
    Y,
    sample_weight,
    coef,
    intercept,
    history,
    *,
    activation,
    step,
    batch_size,
    alpha,
    max_iter,
    tol,
    n_iter_no_change,
    shuffle,
    rng,
    validation=None,
    verbose=0,
):
    """Run up to ``max_iter`` epochs and return the new weights and history.

    ``coef`` and ``intercept`` are updated in place: callers pass copies, so a
    failure part-way never reaches a fitted model.

    Parameters
    ----------
    X, Y, sample_weight, coef, intercept, activation, step, batch_size, alpha
        As in :func:`run_epoch`.
    history : TrainingHistory
        The record so far (empty for a fresh model).
    max_iter : int
        Epochs to run at most; ``max_iter=1`` with ``n_iter_no_change`` ignored is one pass.
    tol, n_iter_no_change : float, int or None
        The stopping rule (see :class:`_Stopper`); ``tol=None`` never stops early.
    shuffle : bool
    rng : numpy.random.Generator
    validation : tuple (X_val, Y_val, sample_weight_val) or None
        With held-out data, stop on its R^2 and return the best epoch's weights.
    verbose : int

    Returns
    -------
    coef, intercept : ndarray
        The final weights (the best epoch's under early stopping).
    history : TrainingHistory
    converged : bool
        Whether the stopping rule (or a dead network) ended training before ``max_iter``.
    """
    n_samples = X.shape[0]
    stopper = _Stopper(tol=np.inf if tol is None else tol, n_iter_no_change=n_iter_no_change)
    best_weights = None
    converged = False
    for epoch in range(max_iter):
        start = time.perf_counter()
        order = rng.permutation(n_samples) if shuffle else None
        record = run_epoch(
            X, Y, sample_weight, coef, intercept,
            activation=activation, step=step, batch_size=batch_size, alpha=alpha, order=order,
        )  # fmt: skip
        if not np.isfinite(record.loss) or not np.all(np.isfinite(coef)):
            raise FloatingPointError(
                f"Training diverged in epoch {len(history.loss_curve) + 1}: the loss or the "
                "weights are no longer finite. With a fixed `step`, lower it; with "
                "step='optimal', rescale X and y (e.g. StandardScaler)."
            )
        score = None
        if validation is not None:
            score = validation_score(*validation, coef, intercept, activation)
        history = history.append(record, n_samples, score)
        if verbose:
            line = (
                f"Epoch {len(history.loss_curve)}: loss={record.loss:.6g}, "
                f"mean learning rate={record.step_mean:.4g}, time={time.perf_counter() - start:.3f}s"
            )
            print(line if score is None else f"{line}, validation R2={score:.5f}")
        if record.n_zero_gradient == record.n_batches and record.loss > 0:
            warnings.warn(
                "The gradient was zero on every batch of epoch "
                f"{len(history.loss_curve)}: every unit is inactive (its activation is flat) "
                "on the training data, so training cannot progress. Standardise X (e.g. "
                "StandardScaler), check that y lies in the activation's range (e.g. "
                "hard_tanh predicts only [-1, 1]), or use an activation with no flat piece "
                "such as 'leaky_relu' or 'identity'.",
                ConvergenceWarning,
            )
            converged = True
            break
        if tol is None:
            continue
        if validation is not None:
            should_stop = stopper.update(-score, epoch, relative=False)
            if stopper.best_epoch == epoch:
                best_weights = (coef.copy(), intercept.copy())
        else:
            should_stop = stopper.update(record.loss, epoch, relative=True)
        if should_stop:
            converged = True
            break
    if best_weights is not None:
        coef, intercept = best_weights
    return coef, intercept, history, converged
