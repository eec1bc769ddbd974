"""The training loop: epochs of mini-batch gradient descent with the optimal step.

The loop owns batching, shuffling, the per-epoch record and the stopping rule; the
step math lives in :mod:`._step`. Functions here take and return arrays and plain
records, never the estimator, so tests can drive them directly.
"""

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import gen_batches

from ._kernels import csr_epoch, dense_epoch
from ._step import (
    backpropagate,
    batch_loss,
    curvature,
    forward,
    gradient,
    gradient_step_terms,
    normalised_weights,
    preactivation_change,
    quadratic_step,
)

__all__ = ["EpochRecord", "TrainingHistory", "make_epoch", "train"]


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


#: Mini-batches go to BLAS products only when both the batch and the number of
#: outputs are large; everything else runs in the compiled kernel. Measured on
#: 100,000 x 100 (2 cores, OpenBLAS): at 1 to 10 outputs the kernel is as fast or
#: faster at every batch size up to 16,384 (1 output, batch 1,024: 18 ms against
#: 27 ms an epoch); at 50 outputs BLAS wins from batch 1,024 (163 ms against 278 ms).
#: The kernel is single-threaded, so it also escapes OpenBLAS's slowdowns when the
#: cores are shared.
BLAS_MIN_BATCH_SIZE = 256
BLAS_MIN_OUTPUTS = 16

#: Full batch keeps the pre-activations ``X W^T + b`` between steps and updates them
#: with the change computed for the optimal rate; they are recomputed from scratch
#: this often so that rounding cannot accumulate.
FULL_BATCH_REFRESH = 32


def _record(loss, rates, n_zero_gradient):
    rates = np.asarray(rates, dtype=np.float64) if len(rates) else np.zeros(1)
    return EpochRecord(
        loss=float(loss),
        step_mean=float(rates.mean()),
        step_min=float(rates.min()),
        step_max=float(rates.max()),
        n_zero_gradient=int(n_zero_gradient),
        n_batches=len(rates),
    )


def _rate(numerator, denominator, step, data_gradient):
    # A batch on which no unit is active carries no information about the fit. Its
    # gradient is the penalty's alone, whose optimal step (1 / alpha) would set W to
    # zero in one update, so it is skipped like a zero gradient.
    if numerator == 0.0 or not data_gradient:
        return 0.0
    return quadratic_step(-numerator, denominator) if step == "optimal" else step


def numpy_epoch(X, Y, sample_weight, coef, intercept, *, activation, step, batch_size, alpha, order):
    """One pass over the rows of ``X`` in ``order`` with numpy/BLAS products per batch.

    This is the reference implementation the compiled kernels are tested against,
    and the path taken for large batches, where BLAS wins.

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
    rates = []
    n_zero_gradient = 0
    for batch in gen_batches(n_samples, batch_size):
        rows = batch if order is None else order[batch]
        X_batch, Y_batch = X[rows], Y[rows]
        weight_batch = None if sample_weight is None else sample_weight[rows]
        batch_weight = X_batch.shape[0] if weight_batch is None else float(weight_batch.sum())
        if batch_weight == 0:
            # A batch of zero-weight rows carries no loss and no gradient.
            continue
        weights = normalised_weights(weight_batch, X_batch.shape[0], coef.dtype)
        batch_objective, grad_coef, grad_intercept, numerator, denominator, data_gradient = (
            gradient_step_terms(X_batch, Y_batch, coef, intercept, activation, weights, alpha)
        )
        loss += batch_objective * (batch_weight / total_weight)
        n_zero_gradient += not data_gradient
        rate = _rate(numerator, denominator, step, data_gradient)
        if rate:
            coef -= coef.dtype.type(rate) * grad_coef
            intercept -= intercept.dtype.type(rate) * grad_intercept
        rates.append(rate)
    return _record(loss, rates, n_zero_gradient)


def compiled_epoch(X, Y, sample_weight, coef, intercept, *, activation, step, batch_size, alpha, order):
    """One pass as :func:`numpy_epoch`, run by the compiled kernel in a single call.

    ``X`` must be a C-contiguous ndarray or a CSR matrix, and ``coef``,
    ``intercept`` and ``Y`` of X's dtype.
    """
    n_samples = X.shape[0]
    dtype = X.dtype
    if order is None:
        order = np.arange(n_samples)
    if sample_weight is None:
        sample_weight = np.ones(n_samples, dtype=dtype)
    rates = np.empty(-(-n_samples // batch_size))
    optimal = step == "optimal"
    common = dict(
        knots=activation.knots.astype(dtype),
        values=activation.values.astype(dtype),
        slopes=activation.slopes.astype(dtype),
        batch_size=batch_size,
        alpha=float(alpha),
        optimal=optimal,
        fixed_rate=0.0 if optimal else float(step),
        rates=rates,
    )
    if sparse.issparse(X):
        loss, n_steps, n_zero_gradient = csr_epoch(
            X.data, X.indices, X.indptr, X.shape[1], Y, sample_weight, order, coef, intercept,
            **common,
        )  # fmt: skip
    else:
        loss, n_steps, n_zero_gradient = dense_epoch(
            X, Y, sample_weight, order, coef, intercept, **common
        )
    return _record(loss, rates[:n_steps], n_zero_gradient)


class FullBatchEpoch:
    """Full-batch gradient steps whose optimal rate costs no extra pass over ``X``.

    The rate needs the change of the pre-activations along the gradient,
    ``v = X G^T + g_b``; since the new pre-activations are ``z - rate * v``, that
    product is also the next step's forward pass. So a step costs two products
    with ``X`` (the gradient and ``v``), whether the rate is optimal or fixed.

    An instance serves one run of :func:`train` on one ``(coef, intercept)`` pair;
    it is called with the same arrays every epoch.
    """

    def __init__(self, X, Y, sample_weight, *, activation, step, alpha):
        self.X, self.Y, self.activation, self.step, self.alpha = X, Y, activation, step, alpha
        self.weights = normalised_weights(sample_weight, X.shape[0], Y.dtype)
        self._pre_activation = None
        self._steps_since_refresh = 0

    def __call__(self, coef, intercept, order=None):
        X, weights, alpha = self.X, self.weights, self.alpha
        if self._pre_activation is None or self._steps_since_refresh >= FULL_BATCH_REFRESH:
            self._pre_activation = preactivation_change(X, coef, intercept)
            self._steps_since_refresh = 0
        output, slope = self.activation.value_and_slope(self._pre_activation)
        error = output - self.Y
        loss = batch_loss(error, weights, coef, alpha)
        backprop = backpropagate(error, slope, weights)
        data_gradient = bool(np.any(backprop))
        grad_coef, grad_intercept = gradient(X, backprop, coef, alpha)
        numerator = float(np.vdot(grad_coef, grad_coef) + np.vdot(grad_intercept, grad_intercept))
        change = preactivation_change(X, grad_coef, grad_intercept)
        denominator = curvature(slope * change, weights, grad_coef, alpha)
        rate = _rate(numerator, denominator, self.step, data_gradient)
        if rate:
            rate_ = coef.dtype.type(rate)
            coef -= rate_ * grad_coef
            intercept -= rate_ * grad_intercept
            self._pre_activation -= rate_ * change
            self._steps_since_refresh += 1
        return _record(loss, [rate], not data_gradient)


def make_epoch(X, Y, sample_weight, *, activation, step, batch_size, alpha, method="auto"):
    """Choose how to run an epoch and bind the data to it.

    Parameters
    ----------
    X, Y, sample_weight, activation, step, batch_size, alpha
        As in :func:`numpy_epoch`.
    method : {"auto", "compiled", "numpy"}, default="auto"
        ``"auto"``: full batch by :class:`FullBatchEpoch`; mini-batches by BLAS
        when they have at least :data:`BLAS_MIN_BATCH_SIZE` rows and
        :data:`BLAS_MIN_OUTPUTS` outputs, by the compiled kernel otherwise.

    Returns
    -------
    callable
        ``epoch(coef, intercept, order) -> EpochRecord``, updating the weights in place.
    """
    options = dict(activation=activation, step=step, alpha=alpha)
    if method == "auto":
        if batch_size >= X.shape[0]:
            return FullBatchEpoch(X, Y, sample_weight, **options)
        large = batch_size >= BLAS_MIN_BATCH_SIZE and Y.shape[1] >= BLAS_MIN_OUTPUTS
        method = "numpy" if large else "compiled"
    epoch = compiled_epoch if method == "compiled" else numpy_epoch
    if method == "compiled" and not sparse.issparse(X):
        X = np.ascontiguousarray(X)

    def run(coef, intercept, order):
        return epoch(X, Y, sample_weight, coef, intercept, batch_size=batch_size, order=order, **options)

    return run


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
    method="auto",
):
    """Run up to ``max_iter`` epochs and return the new weights and history.

    ``coef`` and ``intercept`` are updated in place: callers pass copies, so a
    failure part-way never reaches a fitted model.

    Parameters
    ----------
    X, Y, sample_weight, coef, intercept, activation, step, batch_size, alpha
        As in :func:`numpy_epoch`.
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
    method : {"auto", "compiled", "numpy"}, default="auto"
        How epochs run (see :func:`make_epoch`).

    Returns
    -------
    coef, intercept : ndarray
        The final weights (the best epoch's under early stopping).
    history : TrainingHistory
    converged : bool
        Whether the stopping rule (or a dead network) ended training before ``max_iter``.
    """
    n_samples = X.shape[0]
    epoch_runner = make_epoch(
        X, Y, sample_weight, activation=activation, step=step, batch_size=batch_size,
        alpha=alpha, method=method,
    )  # fmt: skip
    stopper = _Stopper(tol=np.inf if tol is None else tol, n_iter_no_change=n_iter_no_change)
    best_weights = None
    converged = False
    for epoch in range(max_iter):
        start = time.perf_counter()
        # Full batch visits every row at once: the order cannot matter.
        order = rng.permutation(n_samples) if shuffle and batch_size < n_samples else None
        record = epoch_runner(coef, intercept, order)
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
