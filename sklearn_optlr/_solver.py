# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The training loop: epochs of mini-batch descent with the optimal (or exact) step.

The loop owns batching, shuffling, search directions, iterate averaging, the
per-epoch record and the stopping rule; the step math lives in :mod:`._step` (the step
rules and the exact line search, compiled, in :mod:`._line_search`), the compiled
epochs in :mod:`._kernels`, the averaging window in :mod:`._averaging`.
Functions here take and return arrays and plain records, never the estimator, so
tests can drive them directly.

Three ways to run an epoch, all making the same updates (``tests/test_kernels.py``):

- :func:`numpy_epoch`, per-batch numpy/BLAS products: the reference, and the path
  for large batches with many outputs, and for ``step="exact"`` on mini-batches;
- :func:`compiled_epoch`, the whole epoch in one compiled call: small batches;
- :class:`FullBatchEpoch`, one step on all the data, reusing the product computed
  for the step length as the next forward pass; it also runs conjugate gradients.

The two numpy paths take a step alike: a block's statistics at the weights
(:func:`._step.block_statistics`; a mini-batch is one block, the full batch another),
the direction of (preconditioned) steepest descent from its gradient
(:func:`._preconditioning.descent_direction`, on which the full batch builds its
conjugate directions), and the step rule's length from the record along that direction
(:func:`_descent_step`). The compiled kernels fuse the same sums into their loops.
"""

import copy
import os
import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state, gen_batches
from threadpoolctl import threadpool_info

from ._activations import initial_intercept, on_knots, unit_slope_form
from ._averaging import IterateAverage
from ._batch_growth import BatchGrowth, grown_batch_size
from ._callbacks import NO_CALLBACKS
from ._data import rows_of
from ._kernels import csr_epoch, dense_epoch
from ._line_search import (
    EXACT,
    FIXED,
    exact_line_search,
    loss_along,
    step_length,
    step_rule,
)
from ._pooling import new_rate_memory
from ._preconditioning import (
    descent_direction,
    moments,
    preconditioner_from_moments,
    preconditioner_root,
)
from ._rounding import loss_tie
from ._step import (
    batch_loss,
    batch_weights,
    block_statistics,
    exact_line,
    forward,
    inner,
    line_units,
    normalised_weights,
    quadratic_step,
    scaled_direction,
    unit_targets,
    weight_unit,
)

__all__ = [
    "EpochRecord",
    "TrainingHistory",
    "TrainingState",
    "TrainingStatus",
    "make_epoch",
    "prepare",
    "start",
    "train",
]

# Mini-batches run by numpy (BLAS, scipy.sparse) where a batch's products are large
# enough to pay back numpy's fixed cost per batch, and in the compiled kernel otherwise:
# a cost model whose constants were fitted to benchmarks/bench_dispatch.py (one thread;
# docs/benchmarks/dispatch_results.rst). The kernel is single-threaded, so it also
# escapes BLAS's slowdowns when the cores are shared.

#: Dense: the kernel's time and BLAS's both grow as rows x features x outputs, BLAS's
#: more slowly once there are this many outputs (with fewer, the kernel was as fast or
#: faster at every batch size), on one thread. BLAS shares a product among its threads
#: where the kernel runs on one, so on ``T`` threads the crossing is taken at
#: ``NUMPY_MIN_OUTPUTS / T`` outputs, for batches whose every thread's share is as
#: large as :data:`NUMPY_MIN_PRODUCTS` (on 2 cores and 100,000 x 100 with 10 outputs,
#: BLAS against the kernel: 30% faster at batch size 4096, 7% at 1024, 40% slower at
#: 256)...
NUMPY_MIN_OUTPUTS = 16
#: ...and from this many of those products a batch, BLAS wins back numpy's fixed cost
#: (about 55 microseconds a batch).
NUMPY_MIN_PRODUCTS = 160_000

#: CSR: the kernel's batch costs about this many nanoseconds per stored entry and
#: output more than numpy's products with the batch (it reads the rows three times and
#: updates the weights entry by entry, where scipy's products stream)...
SPARSE_KERNEL_EXCESS_NS = 6
#: ...while numpy pays this fixed cost a batch...
SPARSE_NUMPY_BATCH_NS = 130_000
#: ...plus this many nanoseconds per entry of the dense gradient it forms (features x
#: outputs).
SPARSE_GRADIENT_ENTRY_NS = 2

#: Full batch keeps the pre-activations ``X W^T + b`` between steps and updates them
#: with the change computed for the step length; they are recomputed from scratch
#: this often so that rounding cannot accumulate.
FULL_BATCH_REFRESH = 32

#: With a progress bar (``verbose >= 2``) a mini-batch epoch runs in this many
#: calls, so that the bar moves; the updates are the same.
PROGRESS_UPDATES = 20

#: With ``tol > 0``, training stops once the training loss is below half the targets'
#: mean square times the square of this many rounding units: the residuals are then
#: rounding errors of the targets. A size of residuals, not a tie between two sums:
#: ``2**6``, the typical rounding of a sum of ``2**12`` terms (``sqrt(n) eps``, see
#: :mod:`._rounding`), so that predictions of up to 4096 features fit to their rounding.
ROUNDING_FLOOR_ULPS = 64

#: A full batch's stopping rule (:func:`_converged_in_full_batch`) extrapolates its
#: decreases by the largest ratio of this many successive pairs. Conjugate gradients
#: on piecewise-linear units slow down for a few steps where units change pieces, then
#: speed up: on ReLU over one-hot digits, the largest of the last 2 or 3 ratios stopped
#: at 1.9e-3 relative excess loss, of the last 5 at 8.4e-5 (tol 1e-4); on a ReLU and a
#: leaky ReLU teacher, ReLU and abs on diabetes, 5 stopped within tol as 2 did, in 4 to
#: 10 epochs where the plateau rule took 12 to 19 (measured 2026-12-07).
CONVERGENCE_RATIOS = 5

#: Conjugate gradients restart from steepest descent this often (and whenever the
#: conjugate direction fails to descend). Our prototype reached the L-BFGS optimum
#: of badly conditioned problems within 50 steps with this period.
CG_RESTART = 50


@dataclass(frozen=True)
class EpochRecord:
    """What one pass over the data did.

    Attributes
    ----------
    loss : float
        Objective averaged over the batches, each batch's loss taken before its
        update and weighted by its share of the rows of positive weight (its sample
        weights being relative to the data's mean, see :func:`._step.batch_weights`).
    step_mean, step_min, step_max : float
        Statistics of the learning rates taken.
    n_zero_gradient : int
        Batches on which no unit was active (no step taken).
    n_batches : int
        Batches in the pass.
    iterate_sum : tuple (ndarray, ndarray, int) or None
        With averaging: the float64 sums of the averaged iterates' ``coef`` and
        ``intercept``, and their number.
    decrease : float or None
        A full batch's measured fall of the objective by its step, where the epoch was
        asked for it (:class:`FullBatchEpoch`'s ``measure_decrease``): ``loss`` is
        taken before the step, and the loss of the iterate the epoch leaves is
        ``loss - decrease``.
    """

    loss: float
    step_mean: float
    step_min: float
    step_max: float
    n_zero_gradient: int
    n_batches: int
    iterate_sum: tuple = None
    decrease: float = None


@dataclass(frozen=True)
class TrainingHistory:
    """The per-epoch record a model carries across ``fit``, ``warm_start`` and ``partial_fit``.

    Memory grows with the number of epochs, never with the number of steps.
    ``batch_sizes`` is shorter than the other curves in a model trained by version
    0.1.0, which did not record them, and then continued.
    """

    loss_curve: tuple = ()
    learning_rate_curve: tuple = ()
    learning_rate_bounds: tuple = ()
    validation_scores: tuple = ()
    t: int = 0
    batch_sizes: tuple = ()

    def __deepcopy__(self, memo):
        # Immutable (tuples of numbers): a copy of the state shares it, so that copying
        # the state (every fit and partial_fit call does) costs nothing per epoch
        # recorded, where a stream of partial_fit calls made it grow with every call.
        return self

    @property
    def batch_size_curve(self):
        """The batch size of each epoch, None for those that version 0.1.0 ran."""
        return (None,) * (len(self.loss_curve) - len(self.batch_sizes)) + self.batch_sizes

    def append(self, record, loss, n_samples, batch_size, validation_score=None):
        return replace(
            self,
            loss_curve=self.loss_curve + (loss,),
            batch_sizes=self.batch_sizes + (batch_size,),
            learning_rate_curve=self.learning_rate_curve + (record.step_mean,),
            learning_rate_bounds=self.learning_rate_bounds + ((record.step_min, record.step_max),),
            # NaN for an epoch without held-out data (partial_fit, a fit without
            # early stopping), so that the scores stay one per epoch over warm starts.
            validation_scores=self.validation_scores
            + (np.nan if validation_score is None else validation_score,),
            t=self.t + n_samples,
        )


@dataclass
class TrainingState:
    """Everything training carries from one call to the next.

    Attributes
    ----------
    coef, intercept : ndarray
        The solver's current iterate (not the averaged weights).
    history : TrainingHistory
    averager : IterateAverage or None
    rng : numpy.random.Generator
        Shuffling and validation splits.
    rate_memory : ndarray of shape (4,)
        The pooled step rule's running sums (see :mod:`._pooling`).
    preconditioner : ndarray or None
        The preconditioner of the descent, once one was computed
        (see :mod:`._preconditioning`).
    moments : Moments or None
        The rows' moments the preconditioner was computed from, combined over
        ``partial_fit``'s chunks (see :mod:`._preconditioning`).
    grown_batch_size : int or None
        Where ``batch_size="auto"`` has grown the batch (:mod:`._batch_growth`): the
        size reached, which a ``warm_start`` fit continues from.
    """

    coef: np.ndarray
    intercept: np.ndarray
    history: TrainingHistory
    averager: object
    rng: np.random.Generator
    rate_memory: np.ndarray = field(default_factory=new_rate_memory)
    preconditioner: np.ndarray = None
    moments: object = None
    grown_batch_size: int = None

    def copy(self):
        return copy.deepcopy(self)


def _record(loss, rates, n_zero_gradient, iterate_sum=None, decrease=None):
    n_batches = len(rates)
    rates = np.asarray(rates, dtype=np.float64) if n_batches else np.zeros(1)
    return EpochRecord(
        loss=float(loss),
        step_mean=float(rates.mean()),
        step_min=float(rates.min()),
        step_max=float(rates.max()),
        n_zero_gradient=int(n_zero_gradient),
        n_batches=n_batches,
        iterate_sum=iterate_sum,
        decrease=decrease,
    )


def _merge(records):
    """One record for an epoch run in consecutive chunks (each a record of its own)."""
    n_batches = sum(record.n_batches for record in records)
    sums = [record.iterate_sum for record in records if record.iterate_sum is not None]
    counted = [record for record in records if record.n_batches] or records
    return EpochRecord(
        loss=sum(record.loss for record in records),
        step_mean=sum(r.step_mean * r.n_batches for r in counted) / max(n_batches, 1),
        step_min=min(record.step_min for record in counted),
        step_max=max(record.step_max for record in counted),
        n_zero_gradient=sum(record.n_zero_gradient for record in records),
        n_batches=n_batches,
        iterate_sum=tuple(map(sum, zip(*sums))) if sums else None,
    )


def _averaging_buffers(coef, intercept):
    return np.zeros(coef.shape), np.zeros(intercept.shape)


def _iterate_sum(coef, intercept, buffers, n_steps, average_from):
    """Sum of an epoch's averaged iterates from the lazily accumulated buffers.

    See :mod:`._kernels`: ``sum_t theta_t = (T - k) theta_T + sum_t (t - k) rate_t g_t``.
    """
    if average_from is None or n_steps <= average_from:
        return None
    n_iterates = n_steps - average_from
    sum_coef, sum_intercept = buffers
    return n_iterates * coef + sum_coef, n_iterates * intercept + sum_intercept, n_iterates


def _descent_step(
    rule, fixed_rate, X, block, activation, coef, direction, pooling, second_order=False
):
    """The step along ``d / scale`` by the step rule, from a block's record.

    ``direction`` is ``(d_coef, d_intercept, scale)`` from :func:`scaled_direction`,
    ``block`` the :class:`._step.BlockStatistics` of the rows ``X`` at ``coef`` (and its
    intercept), and ``pooling`` the pooled rule's ``(memory, window, share)``. The step along
    ``d / scale`` is ``scale`` times the learning rate along ``d``, from
    :func:`._line_search.step_length` on the record's slope and curvature along ``d``
    (the exact rule also on its line). ``second_order``: compute the change of the units
    along ``d`` whatever the rule (the full batch updates its pre-activations by it); a
    fixed rate needs neither it nor the curvature, and so no product with the rows.

    Returns
    -------
    step_along : float
        NaN where the curvature is not finite (features beyond about 1e154 make it
        overflow float64).
    along : BlockStatistics
        ``block`` along ``d / scale``.
    """
    direction_coef, direction_intercept, scale = direction
    along = block.along(
        X, direction_coef, direction_intercept, second_order=second_order or rule != FIXED
    )
    # No line for the other rules: the search is then not compiled (see step_length).
    line = None
    if rule == EXACT:
        line = exact_line(
            along.pre_activation, along.change, along.target, along.weights, activation, coef,
            direction_coef, along.alpha,
        )  # fmt: skip
    curvature_along = 0.0 if along.curvature is None else along.curvature
    # The forms of d / scale: -<g, d> / scale**2 and d^T H d / scale**2.
    step_along = step_length(
        rule, -along.slope / scale, curvature_along, scale, fixed_rate, *pooling, line
    )
    return step_along, along


def numpy_epoch(
    X, Y, sample_weight, coef, intercept, *, activation, step, batch_size, alpha, order,
    average_from=None, rate_memory=None, window=1.0, preconditioner=None,
):  # fmt: skip
    """One pass over the rows of ``X`` in ``order`` with numpy/BLAS products per batch.

    This is the reference implementation the compiled kernels are tested against.

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
    step : "optimal", "pooled", "exact" or float
        ``"optimal"``: ``<g, g> / (g^T H g)`` on each batch; ``"pooled"``: those forms
        summed over a window of recent batches (:mod:`._pooling`); ``"exact"``: the
        exact minimiser of the batch loss along ``-g``; a float: a fixed rate.
    batch_size : int
    alpha : float
        L2 penalty.
    order : ndarray of int or None
        Row order (a permutation when shuffling); None for the natural order.
    average_from : int or None, default=None
        Average the iterates from this step of the epoch on; None: no averaging.
    rate_memory : ndarray of shape (4,) or None, default=None
        The pooled rule's memory, updated in place; None: a fresh one for this epoch.
    window : float, default=1.0
        The pooled rule's window, in batches.
    preconditioner : ndarray of shape (n_features + 1, n_features + 1) or None, default=None
        Descend along the preconditioned gradient ``[G, g_b] P``
        (:mod:`._preconditioning`); None: along the gradient.

    Returns
    -------
    EpochRecord
    """
    pooling = (new_rate_memory() if rate_memory is None else rate_memory, window)
    rule, fixed_rate = step_rule(step)
    n_samples = X.shape[0]
    unit, n_weighted = weight_unit(sample_weight, n_samples)
    buffers = _averaging_buffers(coef, intercept)
    loss = 0.0
    rates = []
    n_zero_gradient = 0
    for batch in gen_batches(n_samples if order is None else len(order), batch_size):
        rows = batch if order is None else order[batch]
        X_batch, Y_batch = rows_of(X, rows), rows_of(Y, rows)
        weight_batch = None if sample_weight is None else rows_of(sample_weight, rows)
        batch_rows = X_batch.shape[0] if weight_batch is None else np.count_nonzero(weight_batch)
        if batch_rows == 0:
            # A batch of zero-weight rows carries no loss and no gradient.
            continue
        weights, relative = batch_weights(weight_batch, batch_rows, unit, coef.dtype)
        # The penalty takes the batch's weight too.
        block = block_statistics(
            X_batch, Y_batch, weights, coef, intercept, activation, alpha * relative
        )
        # The batch's share of the epoch: its rows of positive weight (``weights`` already
        # carry its weight relative to the data's).
        loss += block.loss * (batch_rows / n_weighted)
        # A batch on which no unit is active carries no information about the fit. Its
        # gradient is the penalty's alone, whose optimal step (1 / alpha) would set W
        # to zero in one update, so it is skipped.
        n_zero_gradient += not block.data_gradient
        step_along, scale = 0.0, 1.0
        if block.data_gradient:
            direction = scaled_direction(
                *descent_direction(block.grad_coef, block.grad_intercept, preconditioner)
            )
            direction_coef, direction_intercept, scale = direction
            step_along, _ = _descent_step(
                rule, fixed_rate, X_batch, block, activation, coef, direction,
                (*pooling, batch_rows / batch_size),
            )  # fmt: skip
        if not (np.isfinite(block.loss) and np.isfinite(step_along)):
            # The first non-finite batch ends the epoch before its update; train() raises.
            return _record(np.nan, rates, n_zero_gradient)
        if step_along:
            if average_from is not None and len(rates) > average_from:
                weight = step_along * (len(rates) - average_from)
                buffers[0][...] -= weight * direction_coef
                buffers[1][...] -= weight * direction_intercept
            coef += coef.dtype.type(step_along) * direction_coef
            intercept += intercept.dtype.type(step_along) * direction_intercept
        rates.append(step_along / scale)
    iterate_sum = _iterate_sum(coef, intercept, buffers, len(rates), average_from)
    return _record(loss, rates, n_zero_gradient, iterate_sum)


def compiled_epoch(
    X, Y, sample_weight, coef, intercept, *, activation, step, batch_size, alpha, order,
    average_from=None, rate_memory=None, window=1.0, preconditioner=None,
):  # fmt: skip
    """One pass as :func:`numpy_epoch`, in one compiled call.

    ``X`` must be a C-contiguous ndarray or a CSR matrix, and ``coef``,
    ``intercept`` and ``Y`` of X's dtype. The CSR kernel takes no preconditioner.

    numba compiles a kernel for each combination of its arguments' types, memory
    layouts included, so the arrays read here are passed C-contiguous (a copy only
    where they are not, as for a Fortran-ordered 2-D ``y``): one compiled kernel
    per dtype serves every fit, and :func:`sklearn_optlr.precompile` compiles it.
    """
    if preconditioner is not None and sparse.issparse(X):
        raise ValueError("The compiled CSR kernel takes no preconditioner: use numpy_epoch.")
    n_samples = X.shape[0]
    dtype = X.dtype
    if order is None:
        order = np.arange(n_samples)
    if sample_weight is None:
        sample_weight = np.ones(n_samples, dtype=dtype)
    Y, sample_weight, order = (np.ascontiguousarray(a) for a in (Y, sample_weight, order))
    unit, n_weighted = weight_unit(sample_weight, n_samples)
    n_batches = -(-n_samples // batch_size)
    rates = np.empty(n_batches)
    buffers = _averaging_buffers(coef, intercept)
    rule, fixed_rate = step_rule(step)
    common = dict(
        knots=activation.knots.astype(dtype),
        values=activation.values.astype(dtype),
        slopes=activation.slopes.astype(dtype),
        batch_size=batch_size,
        alpha=float(alpha),
        rule=rule,
        fixed_rate=fixed_rate,
        rate_memory=new_rate_memory() if rate_memory is None else rate_memory,
        window=float(window),
        rates=rates,
        average_from=n_batches if average_from is None else average_from,
        sum_coef=buffers[0],
        sum_intercept=buffers[1],
        unit=unit,
        n_weighted=n_weighted,
    )
    if sparse.issparse(X):
        loss, n_steps, n_zero_gradient = csr_epoch(
            X.data, X.indices, X.indptr, X.shape[1], Y, sample_weight, order, coef, intercept,
            **common,
        )  # fmt: skip
    else:
        loss, n_steps, n_zero_gradient = dense_epoch(
            X, Y, sample_weight, order, coef, intercept, **common,
            preconditioner=np.empty((0, 0)) if preconditioner is None else preconditioner,
        )  # fmt: skip
    iterate_sum = _iterate_sum(coef, intercept, buffers, n_steps, average_from)
    return _record(loss, rates[:n_steps], n_zero_gradient, iterate_sum)


#: :func:`_along_knots` gives up beyond this many entries of the rows on knots (one
#: output's), whose singular value decomposition it needs.
KNOT_ROWS_MAX_ENTRIES = 2**24


def _along_knots(X, on_knot, gradients, preconditioner):
    """Preconditioned steepest descent among the directions that keep units on their knots.

    A direction ``d`` keeps unit ``(i, o)`` where it is when ``<x~_i, d_o> = 0``. With
    ``P = L L^T`` (the identity without a preconditioner), ``d_o = -L (I - Q Q^T) L^T
    g_o``, ``Q`` an orthonormal basis of the rows ``x~_i L`` of output ``o``'s units on
    knots: the steepest direction in ``P``'s metric under those constraints, and one of
    descent, ``<g, d> = -||(I - Q Q^T) L^T g||^2``. The gradient's terms from the units
    on knots lie in the span of their rows, so the slope they were given drops out.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n_samples, n_features)
    on_knot : ndarray of bool, shape (n_samples, n_outputs)
    gradients : (ndarray of shape (n_outputs, n_features), ndarray of shape (n_outputs,))
    preconditioner : ndarray of shape (n_features + 1, n_features + 1) or None

    Returns
    -------
    (direction_coef, direction_intercept) in the gradient's dtype, or None when the rows
    on knots of some output exceed :data:`KNOT_ROWS_MAX_ENTRIES`.
    """
    grad_coef, grad_intercept = gradients
    n_outputs, width = grad_coef.shape[0], grad_coef.shape[1] + 1
    root = None if preconditioner is None else preconditioner_root(preconditioner)
    augmented = np.hstack([grad_coef, grad_intercept[:, None]]).astype(np.float64)
    direction = np.empty_like(augmented)
    for output in range(n_outputs):
        rows = np.flatnonzero(on_knot[:, output])
        reduced = augmented[output] if root is None else root.T @ augmented[output]
        if rows.size:
            if rows.size * width > KNOT_ROWS_MAX_ENTRIES:
                return None
            block = X[rows].toarray() if sparse.issparse(X) else X[rows]
            constraints = np.hstack([np.asarray(block, dtype=np.float64), np.ones((rows.size, 1))])
            if root is not None:
                constraints = constraints @ root
            _, singular, basis = np.linalg.svd(constraints, full_matrices=False)
            tolerance = singular[0] * max(constraints.shape) * np.finfo(np.float64).eps
            basis = basis[singular > tolerance]
            reduced = reduced - basis.T @ (basis @ reduced)
        direction[output] = -(reduced if root is None else root @ reduced)
    direction = direction.astype(grad_coef.dtype, copy=False)
    return np.ascontiguousarray(direction[:, :-1]), np.ascontiguousarray(direction[:, -1])


def _loss_rounding(n_units, dtype):
    """Losses of a full batch of ``n_units`` units (rows times outputs) of ``dtype``
    that agree to this relative difference are equal up to the rounding of their sums
    (:func:`._rounding.loss_tie`), counted in ``dtype``'s epsilon: a step's pre-activations
    are stored in ``dtype``, so a loss evaluated in float64 from float32 units can differ
    from the one the next epoch reads by float32's rounding."""
    return loss_tie(n_units, float(np.finfo(dtype).eps))


class FullBatchEpoch:
    """Full-batch steps whose step length costs no extra pass over ``X``.

    The step length along a direction ``d`` needs the change of the pre-activations,
    ``v = X dW^T + db``; since the new pre-activations are ``z + a v``, that product
    is also the next step's forward pass. So a step costs two products with ``X``
    (the gradient and ``v``), whether the rate is optimal, exact or fixed.

    With ``conjugate=True`` the direction is nonlinear conjugate gradients
    (Polak-Ribiere+, ``d = -g + max(0, <g, g - g_prev> / <g_prev, g_prev>) d_prev``),
    restarted every :data:`CG_RESTART` steps and whenever ``d`` does not descend;
    the step along ``d`` is ``-<g, d> / (d^T H d)`` (or the exact minimiser, or the
    pooled rate of :mod:`._pooling` on those two forms: a full-batch ``fit`` runs it
    with a window of one step, where it is the optimal step, and ``partial_fit`` on
    small chunks pools the chunks' steps). A pooled step that would raise the loss is
    replaced by the exact one short of it (:meth:`_no_higher_loss`).

    With ``measure_decrease=True`` each record also carries the step's fall of the
    objective (:attr:`EpochRecord.decrease`), for a stopping rule that judges the model
    the epoch leaves rather than the one it started from: the losses at both ends of
    the step are evaluated alike, in float64 from the pre-activations ``z`` and
    ``z + a v`` (no pass over ``X``; the pooled step's check has usually evaluated the
    end already).

    An instance serves one run of :func:`train` on one ``(coef, intercept)`` pair;
    it is called with the same arrays every epoch.
    """

    def __init__(
        self, X, Y, sample_weight, *, activation, step, alpha, conjugate=False,
        rate_memory=None, window=1.0, preconditioner=None, measure_decrease=False,
    ):  # fmt: skip
        self.X, self.Y, self.activation, self.step, self.alpha = X, Y, activation, step, alpha
        self.rule, self.fixed_rate = step_rule(step)
        self.conjugate = conjugate
        self.preconditioner = preconditioner
        self.rate_memory = new_rate_memory() if rate_memory is None else rate_memory
        self.window = window
        self.weights = normalised_weights(sample_weight, X.shape[0], Y.dtype)
        self._targets = unit_targets(Y, self.weights)  # for every line searched
        self._pre_activation = None
        self._block = None  # the epoch's BlockStatistics at the cached z, for its searches
        self._steps_since_refresh = 0
        self._previous = None  # (gradient, P gradient, direction) of the last step
        self._steps_since_restart = 0
        # The pooled step is checked against the loss at the new point only where the
        # quadratic model can be wrong: an activation whose slope changes somewhere.
        self._check_steps = step == "pooled" and bool(np.ptp(activation.slopes) > 0)
        # Set when no step along steepest descent lowers the loss, nor one along the
        # knots that units sit on (_kink_step): a minimum at kinks. The weights
        # stay where they are, and so would every later search.
        self._stalled = False
        # Where the step is a line search on the true loss, a step of 0 at a kink is
        # retried along the knots.
        self._escapes_kinks = step in ("pooled", "exact") and bool(np.ptp(activation.slopes) > 0)
        self.measure_decrease = measure_decrease
        # The losses along this epoch's lines, by (step, id of the line's change), with
        # the change itself (so that its id is not reused): the checks and the decrease
        # ask for the same ones.
        self._line_losses = {}

    def _direction(self, gradients):
        """Steepest descent, or the Polak-Ribiere+ conjugate direction when it descends.

        With a preconditioner ``P`` both are preconditioned: ``-P g``, and
        ``beta = <g, P g - P g_prev> / <g_prev, P g_prev>`` (preconditioned CG).
        Returns the direction and ``P g`` (``g`` itself without a preconditioner).
        """
        steepest = descent_direction(*gradients, self.preconditioner)
        preconditioned = tuple(-part for part in steepest)
        if not self.conjugate or self._previous is None or self._steps_since_restart >= CG_RESTART:
            self._steps_since_restart = 0
            return steepest, preconditioned
        previous_gradients, previous_preconditioned, previous_direction = self._previous
        # The ratio and the descent test are scale-free: they are computed on everything
        # divided by the previous gradient's power-of-two scale, so that their squares
        # neither underflow (gradients of 1e-181 made the ratio 0 / 0) nor overflow.
        *previous_scaled, scale = scaled_direction(*previous_gradients)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = [part / scale for part in gradients]
            now = [part / scale for part in preconditioned]
            before = [part / scale for part in previous_preconditioned]
            overlap = sum(inner(g, z - p) for g, z, p in zip(scaled, now, before))
            beta = overlap / sum(inner(g, p) for g, p in zip(previous_scaled, before))
            direction = tuple(s + max(0.0, beta) * d for s, d in zip(steepest, previous_direction))
            descends = sum(inner(g, d / scale) for g, d in zip(scaled, direction)) < 0
        if not (np.isfinite(beta) and descends):
            self._steps_since_restart = 0
            return steepest, preconditioned
        self._steps_since_restart += 1
        return direction, preconditioned

    def _loss_at(self, step_along, change, coef, direction_coef):
        """The loss at ``step_along`` along the direction: one compiled pass over the
        units, none over ``X`` (the new pre-activations are ``z + a v``)."""
        key = (step_along, id(change))
        if key not in self._line_losses:
            units = line_units(
                self._pre_activation, change, self._targets, self.activation, coef,
                direction_coef, self.alpha,
            )  # fmt: skip
            self._line_losses[key] = (change, loss_along(step_along, *units))
        return self._line_losses[key][1]

    def _no_higher_loss(self, step_along, loss, change, coef, direction_coef):
        """The quadratic model's step, or the exact line search's where it raises the loss.

        The model is exact until a pre-activation crosses a knot; beyond one, a unit's
        slope can change sign (abs), and the step can land higher than it started: on a
        linear target, full-batch abs fits cycled between two such points, ending at R^2
        -0.99. In full batch the loss is the objective, and the new pre-activations are
        ``z + a v`` without touching ``X``, so the check costs one activation pass; the
        exact step short of the model's (:meth:`_exact_step_short_of`), never above no
        step, is searched only then.
        """
        new_loss = self._loss_at(step_along, change, coef, direction_coef)
        # Rounding aside: at convergence both losses agree to their rounding.
        if new_loss <= loss * (1.0 + _loss_rounding(change.size, coef.dtype)):
            return step_along
        return self._exact_step_short_of(step_along, change, coef, direction_coef)

    def _exact_step_short_of(self, bound, change, coef, direction_coef):
        """The exact minimiser of the loss over steps in ``[0, bound]``.

        Where the model's step ``bound`` raised the loss, the step is sought short of it,
        as a backtracking search would: the model was trusted up to ``bound`` and found
        wrong there, so nothing beyond it is looked at. Only the kink crossings before
        ``bound`` are sorted: near a minimum at kinks, where the model's step keeps
        overshooting by a little, a small share of the units.
        """
        return exact_line_search(*self._line(change, coef, direction_coef, bound))

    def _line_step(self, coef, loss):
        """The step rule's step along the (conjugate, preconditioned) gradient direction.

        Where a checked rule (``"pooled"`` with kinks, ``"exact"``) finds no step along
        steepest descent, the search along the knots follows (:meth:`_kink_step`), and
        training stalls when that finds none either.

        Returns
        -------
        step_along, direction_coef, direction_intercept, scale, change
        """
        gradients = (self._block.grad_coef, self._block.grad_intercept)
        direction, preconditioned = self._direction(gradients)
        scaled = scaled_direction(*direction)
        direction_coef, direction_intercept, scale = scaled
        step_along, along = _descent_step(
            self.rule, self.fixed_rate, self.X, self._block, self.activation, coef, scaled,
            (self.rate_memory, self.window, 1.0), second_order=True,
        )  # fmt: skip
        change = along.change
        # The one dispatch on the rule outside step_length, full batch's own safeguard: here
        # the batch loss is the objective, and its value at the new point costs one
        # activation pass (z + a v, no pass over X), so the pooled step, which can
        # overshoot across kinks, is checked against it (a mini-batch's loss is not the
        # objective, and "optimal" stays the seed's formula).
        checked = self._check_steps and step_along and np.isfinite(step_along)
        if self._escapes_kinks and change.dtype != np.float64:
            # The checks compare candidates' losses, evaluated from the units in float64
            # (_loss_at), with the start's; float32 data's block loss has its residuals
            # rounded to float32, on a close fit by more than the sums' rounding that the
            # checks allow, so the start is evaluated as the candidates are.
            loss = self._loss_at(0.0, change, coef, direction_coef)
        if checked and not self._stalled:
            step_along = self._no_higher_loss(step_along, loss, change, coef, direction_coef)
        if self._stalled:
            step_along = 0.0
        elif step_along == 0.0 and self._escapes_kinks and self._steps_since_restart == 0:
            # Steepest descent found nothing (a conjugate direction that finds nothing
            # is followed by steepest descent next epoch instead).
            escaped = self._kink_step(coef, gradients, loss)
            if escaped is not None:
                step_along, direction_coef, direction_intercept, scale, change = escaped
            # Conjugate directions restart from steepest descent after either.
            gradients = None
            self._stalled = escaped is None
        if gradients is None or not step_along:
            self._previous = None
        else:
            self._previous = (gradients, preconditioned, direction)
        return step_along, direction_coef, direction_intercept, scale, change

    def _kink_step(self, coef, gradients, loss):
        """A step along the knots that units sit on, where the line search found none.

        A line search that stops at a kink leaves units on a knot, and the gradient gives
        them the slope on the knot's right. A direction that moves such a unit left can
        then raise the loss however short the step; every later epoch would compute the
        same gradient, and the fit stopped there, up to 3.5% above a minimum (clipped
        ReLU, full batch). Steepest descent among the directions that keep every unit on
        a knot where it is (:func:`_along_knots`) does not move them, so their slopes
        no longer matter. Its step is the quadratic model's where that lowers the loss,
        the exact line search's otherwise, so it never raises it. (Also tried: steepest
        descent with the slopes of the pieces the units would enter, which on 480 fits
        never found a step this one missed; and starting the next epochs with this search,
        which saved their failing first search but converged more slowly on 2 of 640 fits,
        confined to the knots.)

        Returns
        -------
        tuple or None
            ``(step_along, direction_coef, direction_intercept, scale, change)``, or
            None where no such step lowers the loss (a minimum at the kinks).
        """
        on_knot = on_knots(self.activation, self._pre_activation)
        if not np.any(on_knot):
            return None
        direction = _along_knots(self.X, on_knot, gradients, self.preconditioner)
        if direction is None:
            return None
        direction_coef, direction_intercept, scale = scaled_direction(*direction)
        if not (np.any(direction_coef) or np.any(direction_intercept)):
            return None
        along = self._block.along(self.X, direction_coef, direction_intercept)
        change = along.change
        # The quadratic model's step first, kept where it lowers the loss (one pass over
        # the units), and the exact search (a sort of the kink crossings) otherwise.
        # Lower by more than the loss's rounding: a step that only ties with it would
        # repeat every epoch at the optimum, each a search of the knots (with tol=0, a
        # full-batch fit ran them for as long as it was let, the loss flat to 1e-15).
        lower = loss * (1.0 - _loss_rounding(change.size, coef.dtype))
        step_along = quadratic_step(along.slope, along.curvature)
        if step_along and self._loss_at(step_along, change, coef, direction_coef) < lower:
            return step_along, direction_coef, direction_intercept, scale, change
        if step_along:
            step_along = self._exact_step_short_of(step_along, change, coef, direction_coef)
        else:
            step_along = self._exact_step(change, coef, direction_coef)
        if not (step_along and self._loss_at(step_along, change, coef, direction_coef) < lower):
            return None
        return step_along, direction_coef, direction_intercept, scale, change

    def _line(self, change, coef, direction_coef, bound=np.inf):
        """The line along the direction from the cached ``z``, for the exact search up
        to the step ``bound``."""
        return exact_line(
            self._pre_activation, change, self.Y, self.weights, self.activation, coef,
            direction_coef, self.alpha, bound, targets=self._targets,
        )  # fmt: skip

    def _exact_step(self, change, coef, direction_coef):
        """The exact minimiser of the loss along the direction."""
        return exact_line_search(*self._line(change, coef, direction_coef))

    def __call__(self, coef, intercept, order=None, average_from=None, progress=None):
        X = self.X
        self._line_losses.clear()
        refresh = self._pre_activation is None or self._steps_since_refresh >= FULL_BATCH_REFRESH
        block = self._block = block_statistics(
            X, self.Y, self.weights, coef, intercept, self.activation, self.alpha,
            pre_activation=None if refresh else self._pre_activation,
        )  # fmt: skip
        if refresh:
            self._pre_activation, self._steps_since_refresh = block.pre_activation, 0
        loss = block.loss
        # The step is taken along the direction scaled by a power of two (scaled_direction):
        # ``step_along`` is ``scale`` times the rate along the direction itself.
        step_along, scale = 0.0, 1.0
        if block.data_gradient:
            step_along, direction_coef, direction_intercept, scale, change = self._line_step(
                coef, loss
            )
        else:
            self._previous = None
        if not (np.isfinite(loss) and np.isfinite(step_along)):
            # Not applied; train() raises.
            return _record(np.nan, [], not block.data_gradient)
        decrease = None
        if self.measure_decrease:
            decrease = 0.0
            if step_along:
                decrease = self._loss_at(0.0, change, coef, direction_coef) - self._loss_at(
                    step_along, change, coef, direction_coef
                )
        if step_along:
            step_ = coef.dtype.type(step_along)
            coef += step_ * direction_coef
            intercept += step_ * direction_intercept
            self._pre_activation += step_ * change
            self._steps_since_refresh += 1
        iterate_sum = None
        if average_from == 0:
            iterate_sum = (coef.astype(np.float64), intercept.astype(np.float64), 1)
        if progress is not None:
            progress(X.shape[0])
        return _record(loss, [step_along / scale], not block.data_gradient, iterate_sum, decrease)


def uses_numpy(X, batch_size, n_outputs):
    """Whether ``make_epoch(method="auto")`` runs these mini-batches by numpy.

    By the cost model of :data:`NUMPY_MIN_PRODUCTS` (dense) and
    :data:`SPARSE_KERNEL_EXCESS_NS` (CSR): numpy where it is the cheaper of the two paths.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
    batch_size : int
        Rows a batch, at most ``n_samples``.
    n_outputs : int

    Returns
    -------
    bool
    """
    n_samples, n_features = X.shape
    if sparse.issparse(X):
        # Both paths cost the order of the batch's stored entries times the outputs;
        # numpy adds a fixed cost and the dense gradient, which large batches win back.
        entries = X.nnz / max(n_samples, 1) * batch_size * n_outputs
        kernel_excess = SPARSE_KERNEL_EXCESS_NS * entries
        return (
            kernel_excess
            > SPARSE_NUMPY_BATCH_NS + SPARSE_GRADIENT_ENTRY_NS * n_features * n_outputs
        )
    products = batch_size * n_features * n_outputs
    if products < NUMPY_MIN_PRODUCTS:
        return False
    if n_outputs >= NUMPY_MIN_OUTPUTS:
        return True
    # Asked only where the answer can matter (the threads' count costs a few ms to read):
    # BLAS runs on at most the cores, and fewer outputs than NUMPY_MIN_OUTPUTS need at
    # least 2 threads.
    cores = os.cpu_count() or 1
    if n_outputs * cores < NUMPY_MIN_OUTPUTS or products < NUMPY_MIN_PRODUCTS * 2:
        return False
    threads = _blas_threads()
    return n_outputs * threads >= NUMPY_MIN_OUTPUTS and products >= NUMPY_MIN_PRODUCTS * threads


def _blas_threads():
    """The threads numpy's BLAS runs on now (1 inside ``threadpool_limits(1)``, and in
    joblib's workers, which limit it so)."""
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return min(counts, default=1)


def _in_units_of(run, scale):
    """The epoch ``run``, which takes weights ``scale`` times the caller's
    (:func:`._activations.unit_slope_form`), on the caller's weights and records."""

    def scaled_run(coef, intercept, order, average_from=None, progress=None):
        coef *= scale  # by a power of two: exact, and undone exactly
        intercept *= scale
        try:
            record = run(coef, intercept, order, average_from, progress)
        finally:
            coef /= scale
            intercept /= scale
        sums = record.iterate_sum
        if sums is not None:
            sums = (sums[0] / scale, sums[1] / scale, sums[2])
        # The rate along the caller's gradient: W' = scale W makes it scale**-2 times W''s.
        return replace(
            record, step_mean=record.step_mean / scale / scale,
            step_min=record.step_min / scale / scale, step_max=record.step_max / scale / scale,
            iterate_sum=sums,
        )  # fmt: skip

    return scaled_run


def make_epoch(
    X, Y, sample_weight, *, activation, step, batch_size, alpha, conjugate=False, method="auto",
    rate_memory=None, window=1.0, preconditioner=None, measure_decrease=False,
):  # fmt: skip
    """Choose how to run an epoch and bind the data to it.

    Parameters
    ----------
    X, Y, sample_weight, activation, step, batch_size, alpha
        As in :func:`numpy_epoch`.
    conjugate : bool, default=False
        Conjugate-gradient directions; full batch only.
    method : {"auto", "compiled", "numpy"}, default="auto"
        ``"auto"``: full batch by :class:`FullBatchEpoch`; mini-batches by BLAS
        where :func:`uses_numpy`'s cost model finds them cheaper (large dense
        batches with many outputs, large CSR batches), by the compiled kernel otherwise.
    rate_memory : ndarray of shape (4,) or None, default=None
        The pooled rule's memory, carried from epoch to epoch and updated in place;
        None: a fresh one.
    window : float, default=1.0
        The pooled rule's window, in batches (:func:`._pooling.pooled_window`).
    preconditioner : ndarray or None, default=None
        See :func:`numpy_epoch`. Sparse ``X`` with a preconditioner runs by numpy.
    measure_decrease : bool, default=False
        Full batch by :class:`FullBatchEpoch`: record each step's fall of the objective.

    Returns
    -------
    callable
        ``epoch(coef, intercept, order, average_from) -> EpochRecord``, updating
        the weights in place.
    """
    tau, scale = unit_slope_form(activation, X.dtype)
    if scale != 1.0:  # trained as tau(scale W x + scale b), the same model in other units
        run = make_epoch(
            X, Y, sample_weight, activation=tau, alpha=alpha / scale / scale,
            step=step if isinstance(step, str) else step * scale * scale, batch_size=batch_size,
            conjugate=conjugate, method=method, rate_memory=rate_memory, window=window,
            preconditioner=preconditioner, measure_decrease=measure_decrease,
        )  # fmt: skip
        return _in_units_of(run, scale)
    options = dict(
        activation=activation, step=step, alpha=alpha,
        rate_memory=new_rate_memory() if rate_memory is None else rate_memory, window=window,
        preconditioner=preconditioner,
    )  # fmt: skip
    if batch_size >= X.shape[0] and method == "auto":
        return FullBatchEpoch(
            X, Y, sample_weight, conjugate=conjugate, measure_decrease=measure_decrease,
            **options,
        )  # fmt: skip
    if conjugate:
        raise ValueError("Conjugate directions need the full batch.")
    if method == "auto":
        sparse_preconditioned = sparse.issparse(X) and preconditioner is not None
        numpy_ = sparse_preconditioned or uses_numpy(X, batch_size, Y.shape[1])
        method = "numpy" if numpy_ else "compiled"
    epoch = compiled_epoch if method == "compiled" else numpy_epoch
    if method == "compiled" and not sparse.issparse(X):
        X = np.ascontiguousarray(X)

    def run_rows(coef, intercept, rows, average_from):
        return epoch(
            X, Y, sample_weight, coef, intercept, batch_size=batch_size, order=rows,
            average_from=average_from, **options,
        )  # fmt: skip

    def run(coef, intercept, order, average_from=None, progress=None):
        if progress is None:
            return run_rows(coef, intercept, order, average_from)
        # Report progress between chunks of whole batches: the same updates, in
        # PROGRESS_UPDATES calls instead of one (the iterates' sums, added per chunk,
        # may differ in the last bit).
        rows = np.arange(X.shape[0]) if order is None else order
        n_batches = -(-len(rows) // batch_size)
        chunk = batch_size * -(-n_batches // PROGRESS_UPDATES)
        records = []
        for start in range(0, len(rows), chunk):
            steps_done = sum(record.n_batches for record in records)
            chunk_from = None if average_from is None else max(average_from - steps_done, 0)
            records.append(run_rows(coef, intercept, rows[start : start + chunk], chunk_from))
            progress(min(chunk, len(rows) - start))
            if not np.isfinite(records[-1].loss):
                break
        return _merge(records)

    return run


def _progress(verbose, epoch, n_samples):
    """``(bar, callback)`` reporting samples done in an epoch, for ``verbose >= 2``.

    ``epoch`` names the epoch (:func:`_epoch_name`). A tqdm bar when tqdm is installed
    (``pip install "sklearn-optlr[progress]"``), else a printed line at each quarter
    of the epoch; ``(None, None)`` below ``verbose=2``.
    """
    if verbose < 2:
        return None, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        done = quarters = 0

        def report(n_done):
            # A line at each further quarter of the epoch, not one per batch.
            nonlocal done, quarters
            done += n_done
            if 4 * done // n_samples > quarters:
                quarters = 4 * done // n_samples
                print(f"{epoch}: {done}/{n_samples} samples")

        return None, report
    bar = tqdm(total=n_samples, desc=epoch, unit="sample", leave=False)
    return bar, bar.update


def objective(X, Y, sample_weight, coef, intercept, activation, alpha):
    """The training objective of given weights on all of ``X`` (one forward pass)."""
    output, _ = forward(X, coef, intercept, activation)
    weights = normalised_weights(sample_weight, X.shape[0], np.float64)
    return batch_loss(output - Y, weights, coef, alpha)


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
        # ">=": a loss stuck at its best, zero included, has not fallen by more than tol.
        if criterion >= self.best - threshold:
            self.epochs_without_improvement += 1
        else:
            self.epochs_without_improvement = 0
        if criterion < self.best:
            self.best = criterion
            self.best_epoch = epoch
        return self.epochs_without_improvement > self.n_iter_no_change


def _weighted_batches(sample_weight, order, batch_size, n_samples):
    """Which of an epoch's batches carry weight, and so take a step (bool per batch)."""
    if sample_weight is None:
        return np.ones(-(-n_samples // batch_size), dtype=bool)
    weights = sample_weight if order is None else sample_weight[order]
    return np.add.reduceat(weights, np.arange(0, n_samples, batch_size)) > 0


def rounding_losses(Y, weights):
    """Per output, the loss of residuals at the targets' rounding level: half the
    targets' weighted mean square times ``(ROUNDING_FLOOR_ULPS * eps)**2``."""
    rounding = ROUNDING_FLOOR_ULPS * float(np.finfo(Y.dtype).eps)
    return rounding * rounding * (0.5 * (weights @ np.square(Y, dtype=np.float64)))


@dataclass(frozen=True)
class TrainingStatus:
    """How :func:`train` ended; :mod:`._diagnostics` turns it into warnings or an error.

    Attributes
    ----------
    reason : {"stopped", "max_iter", "callback", "zero_gradient", "diverged"}
        The stopping rule ended training (or ``partial_fit``'s one epoch ran:
        ``"max_iter"``); it ran its ``max_iter`` epochs; a callback (scikit-learn's
        ``sklearn.callback``) asked to stop; an epoch took no step because
        every batch's data gradient was zero; the loss, a step or the weights stopped
        being finite (the returned state is then the one passed in).
    epoch : int
        The epoch it ended in, counted over the model's life (from 1).
    first_epoch : int
        The first epoch of this call, counted alike.
    early_stopped : bool
        The model is the best epoch's on held-out data, not the last one recorded.
    config : SolverConfig or None
        The configuration training ended under (the adaptive schedule's last phase);
        None where it diverged.
    cause : {"validation", "exact_fit", "converged", "plateau"} or None
        Which rule stopped training (``reason`` ``"stopped"``): the held-out R^2 no
        longer rose; the training loss reached the targets' rounding; the full batch's
        decreases put the minimum within ``tol``; the training loss no longer fell.
    """

    reason: str
    epoch: int
    first_epoch: int
    early_stopped: bool = False
    config: object = None
    cause: str = None

    def sentence(self):
        """Why training ended, in words, for ``verbose`` (None where it diverged: the
        error says why)."""
        config = self.config
        kept = "; the best epoch's model on the validation rows is kept"
        kept = kept if self.early_stopped else ""
        if self.reason == "max_iter":
            if config.incremental:
                return None  # a partial_fit call is one epoch by design
            epochs = "epoch" if config.max_iter == 1 else "epochs"
            return f"Training ended after max_iter={config.max_iter} {epochs}{kept}."
        if self.reason == "callback":
            return f"Training stopped: a callback asked to stop after epoch {self.epoch}{kept}."
        if self.reason == "zero_gradient":
            return "Training stopped: the gradient was zero on every batch of the epoch."
        if self.reason != "stopped":
            return None
        no_change = f"for n_iter_no_change={config.n_iter_no_change} epochs"
        tol = f"tol={config.tol:g}"
        if config.stops_by_extrapolation:
            # The plateau rule runs with tol 0 there (see _phase_stopper).
            plateau = f"the training loss stopped falling {no_change}."
        else:
            plateau = f"the training loss fell by no more than {tol} of its best {no_change}."
        because = {
            "validation": f"the validation R^2 rose by no more than {tol} {no_change}{kept}.",
            "exact_fit": "the training loss is down to the rounding of the targets (an exact fit).",
            "converged": "the last decreases of the training loss put its minimum within "
            f"{tol} of it.",
            "plateau": plateau,
        }
        return "Training stopped: " + because[self.cause]


def _prepare_preconditioner(state, X, sample_weight, config):
    """Compute the preconditioner ``config`` asks for into ``state``.

    ``fit`` computes it from its training rows on the first call that needs it, and
    ``warm_start`` keeps it, so that one fit of several epochs makes the same updates as
    several fits of one. ``partial_fit`` combines the moments of every chunk (and of
    the ``fit`` before it), whether or not the chunk was preconditioned, and recomputes
    ``P`` from them: a first chunk that lacks some feature's values must not set ``P``
    for the whole stream.
    """
    width = X.shape[1] + 1
    if state.preconditioner is not None and state.preconditioner[-1, -1] != 1.0:
        # A model pickled by version 0.1.0 holds P as the dense matrix, whose last entry
        # is 1 + m^T S^-1 m; the centred form's is 1 (they agree where m = 0). Rebuilt
        # from the moments it was computed from, which the state keeps.
        state.preconditioner = preconditioner_from_moments(state.moments)
    known = state.moments is not None and state.moments.mean.shape[0] + 1 == width
    if config.incremental and config.track_moments:
        chunk = moments(X, sample_weight)
        state.moments = state.moments + chunk if known else chunk
        if config.precondition:
            state.preconditioner = preconditioner_from_moments(state.moments)
    elif config.precondition and (
        state.preconditioner is None or state.preconditioner.shape[0] != width
    ):
        state.moments = moments(X, sample_weight)
        state.preconditioner = preconditioner_from_moments(state.moments)


def _prepared_averager(current, averaging):
    """The averager ``averaging`` asks for: the current one where it averages alike."""
    if averaging is None:
        return None
    if current is not None and current.start_sample == averaging.start_sample:
        current.keep_better = averaging.keep_better
        return current
    return IterateAverage(averaging.start_sample, averaging.keep_better)


def start(previous, n_outputs, n_features, dtype, random_state):
    """The state to train from: a copy of ``previous`` in ``dtype``, or, where it is
    None, a new model's (``W = 0``, and no intercepts yet: :func:`prepare` sets them
    from the training rows).

    Raises
    ------
    ValueError
        Where ``previous`` has another number of outputs.
    """
    if previous is None:
        seed = check_random_state(random_state).randint(2**31)
        coef = np.zeros((n_outputs, n_features), dtype=dtype)
        return TrainingState(coef, None, TrainingHistory(), None, np.random.default_rng(seed))
    if previous.coef.shape[0] != n_outputs:
        raise ValueError(
            f"y has {n_outputs} outputs but the model was fitted with {previous.coef.shape[0]}."
        )
    state = previous.copy()
    state.coef = state.coef.astype(dtype, copy=False)
    state.intercept = state.intercept.astype(dtype, copy=False)
    return state


def prepare(state, X, Y, sample_weight, config):
    """The state to train from: ``state``'s copy with its averager, its preconditioner
    and (for a new model) its intercepts set up as ``config`` asks."""
    state = state.copy()
    state.averager = _prepared_averager(state.averager, config.averaging)
    if state.intercept is None:
        weights = normalised_weights(sample_weight, X.shape[0], np.float64)
        state.intercept = initial_intercept(config.activation, Y, weights).astype(X.dtype)
    _prepare_preconditioner(state, X, sample_weight, config)
    return state


def _averaged_model(coef, intercept, record, averager):
    """The model after an epoch: the average of the iterates where there is one (the
    epoch's sum added to it), else the iterate itself."""
    if averager is None:
        return coef, intercept
    if record.iterate_sum is not None:
        averager.add_epoch(*record.iterate_sum)
    return averager.average(coef.dtype) or (coef, intercept)


def _better_of(model, coef, intercept, X, Y, sample_weight, config):
    """The average or the last iterate, whichever fits the training data better.

    While the iterates still make real progress their average lags behind them. Two
    passes over ``X``, once a fit rather than once an epoch: the epochs record (and the
    stopping rule reads) the batches' own losses, taken before each update, as
    SGDRegressor's and MLPRegressor's do.
    """
    if model[0] is coef:
        return model
    averaged_loss, last_loss = (
        objective(X, Y, sample_weight, *weights, config.activation, config.alpha)
        for weights in (model, (coef, intercept))
    )
    return (coef, intercept) if last_loss < averaged_loss else model


def _loss_floor(Y, sample_weight, config, validation):
    """The training loss at which the stopping rule has nothing left to fit.

    An interpolating fit (more features than rows) reached 4e-28 and ran to max_iter, its
    rounding noise counting as improvements of more than tol. Rounding is relative to
    the targets' values (an offset of 1000 raises it), so the level is set by their mean
    squares, that of the smallest output, so that every output is fitted to its own
    rounding.
    """
    if not config.tol or validation is not None:
        return -np.inf
    levels = rounding_losses(Y, normalised_weights(sample_weight, Y.shape[0], np.float64))
    levels = levels[levels > 0]  # an all-zero output has no rounding to speak of
    return float(levels.min()) if levels.size else 0.0


def _converged_in_full_batch(losses, tol):
    """Whether a full batch's last losses put the minimum within ``tol`` (relative) of
    the last one.

    The loss still to lose is estimated as the sum of the steps' decreases to come,
    each the last one times the ratio of successive decreases: geometric convergence,
    as a (conjugate) gradient method's near a minimum, with the largest ratio of the
    last :data:`CONVERGENCE_RATIOS` (fewer in a phase's first epochs, at least one).
    A last step that lowered nothing is judged by the decreases before it, and the
    loss may have risen by at most ``tol`` times itself (more is an overshoot). Unlike
    a plateau of ``n_iter_no_change`` epochs, this stops as soon as the decreases say
    so, and ``tol`` is an estimate of the distance to the minimum rather than one
    epoch's progress. Where the decreases do not all shrink (one of them not positive,
    a ratio of 1 or more), or ``tol`` is 0, it never ends training, and the plateau
    rule does.
    """
    if len(losses) < 4 or not tol > 0:
        return False
    recent = np.asarray(losses[-(CONVERGENCE_RATIOS + 2) :], dtype=np.float64)
    decreases = -np.diff(recent)
    rise = 0.0
    if decreases[-1] <= 0.0:
        rise, decreases = -decreases[-1], decreases[:-1]
    if np.any(decreases <= 0.0):
        return False
    ratio = float(np.max(decreases[1:] / decreases[:-1]))
    if not ratio < 1.0:
        return False
    to_lose = decreases[-1] * ratio / (1.0 - ratio)
    return bool(rise <= tol * losses[-1] and to_lose <= tol * losses[-1])


def _phase_losses(history, phase_start, record):
    """The losses the phase's epochs recorded, each taken before its step, and, where
    the last epoch measured its step's fall (:attr:`EpochRecord.decrease`), the loss
    of the iterate it left: the stopping rule then judges the last iterate, the model
    a full-batch fit returns (unless asked to average), without an epoch run only to
    see its loss. A fall that is not finite is left out: the next epoch's loss shows
    what happened (a loss that overflowed is a divergence, not a rise within tol)."""
    losses = history.loss_curve[phase_start - 1 :]
    if record.decrease is not None and np.isfinite(record.decrease):
        losses += (losses[-1] - record.decrease,)
    return losses


class _BatchSchedule:
    """The configuration each epoch runs under: ``config`` throughout, or, where it has
    ``larger_batches`` (``batch_size="auto"`` in ``fit``), the adaptive schedule of
    :mod:`._batch_growth`.

    After each mini-batch epoch the norm test at the model says which batch size the
    next epoch needs (:meth:`next_phase`); at a larger one, training continues from the
    averaged weights with a new averager (:meth:`hand_over`), by the configuration of
    the first of ``larger_batches`` at least that large (the last, the full batch:
    conjugate gradients, unaveraged). A ``warm_start`` fit continues at the size
    reached.
    """

    def __init__(self, X, Y, sample_weight, grown_batch_size, config):
        self.phases = (config, *config.larger_batches)
        self.config = config
        self._growth = None
        if config.larger_batches:
            weights = normalised_weights(sample_weight, X.shape[0], X.dtype)
            self._growth = BatchGrowth(X, Y, weights, config.activation, config.alpha)
            if grown_batch_size is not None:
                self.config = self._config_at(grown_batch_size)

    @property
    def grown_batch_size(self):
        """The size reached, for a later ``warm_start`` fit; None without a schedule."""
        return None if self._growth is None else self.config.batch_size

    def _config_at(self, batch_size):
        return next((c for c in self.phases if c.batch_size >= batch_size), self.phases[-1])

    def next_phase(self, model, plateau):
        """The configuration of the next epoch where it changes, else None.

        ``plateau``: the stopping rule would have stopped; in a mini-batch phase of the
        schedule that is the batches' noise floor, and the full batch follows.
        """
        if self._growth is None or self.config is self.phases[-1]:
            return None
        full = self.phases[-1].batch_size
        needed = full if plateau else self._growth.needed_batch_size(*model)
        phase = self._config_at(grown_batch_size(self.config.batch_size, needed))
        return None if phase is self.config else phase

    def hand_over(self, state, model, phase, X, sample_weight):
        """Continue ``state`` under ``phase`` from ``model``, the averaged weights."""
        state.coef[...], state.intercept[...] = model
        state.averager = _prepared_averager(None, phase.averaging)
        _prepare_preconditioner(state, X, sample_weight, phase)
        self.config = phase


def _phase_stopper(config):
    """The plateau rule for training under ``config``: with ``tol``, or with 0 where the
    decreases' extrapolation stops training, so that it only ends a fit that stopped
    moving."""
    tol = np.inf if config.tol is None else config.tol
    return _Stopper(
        tol=0.0 if config.stops_by_extrapolation else tol, n_iter_no_change=config.n_iter_no_change
    )


def _epoch_runner(X, Y, sample_weight, state, config, method):
    """The epoch function of :func:`make_epoch` for training under ``config``."""
    return make_epoch(
        X, Y, sample_weight, activation=config.activation, step=config.step,
        batch_size=config.batch_size, alpha=config.alpha, conjugate=config.conjugate,
        method=method, rate_memory=state.rate_memory, window=config.window,
        preconditioner=state.preconditioner if config.precondition else None,
        measure_decrease=config.stops_by_extrapolation,
    )  # fmt: skip


def _epoch_name(config, epoch):
    """How ``verbose`` names an epoch, counted over the model's life: a ``partial_fit``
    call is one, and is named so."""
    return f"Epoch {epoch} (partial_fit)" if config.incremental else f"Epoch {epoch}"


def _average_from(averager, samples_seen, sample_weight, order, batch_size, n_samples):
    """The first step of the coming epoch whose iterate is averaged, None without an
    averager (:meth:`._averaging.IterateAverage.first_averaged_step`)."""
    if averager is None:
        return None
    steps = _weighted_batches(sample_weight, order, batch_size, n_samples)
    return averager.first_averaged_step(samples_seen, steps, batch_size)


def _continue_from(state, best_model):
    """Early stopping rejected the epochs after the best one: a later warm-started fit
    or partial_fit continues from the model kept, not from the rejected iterate (as
    MLPRegressor does), and averages afresh from there. The pooled rate's memory is
    kept: it measures the data's curvature, not the weights."""
    state.coef, state.intercept = (part.copy() for part in best_model)
    if state.averager is not None:
        state.averager = state.averager.fresh()


def _print_epoch(history, record, loss, score, start, config):
    line = (
        f"{_epoch_name(config, len(history.loss_curve))}: batch size={history.batch_sizes[-1]}, "
        f"loss={loss:.6g}, mean learning rate={record.step_mean:.4g}, "
        f"time={time.perf_counter() - start:.3f}s"
    )
    print(line if score is None else f"{line}, validation R2={score:.5f}")


class _Epochs:
    """The epochs of a :func:`train` call, each a task of scikit-learn's callbacks
    (:class:`._callbacks.FitTasks`): up to ``max_iter``, or fewer where a callback asks
    to stop, which ends training after the current epoch as its ``max_iter``-th would
    (the stopping rule and early stopping's bookkeeping run)."""

    def __init__(self, max_iter, callbacks, iterate):
        self._numbers = iter(range(max_iter))
        self._callbacks = NO_CALLBACKS if callbacks is None else callbacks
        self._iterate = iterate  # (coef, intercept), updated in place by the epochs
        self.stop_asked = False

    def __iter__(self):
        return self

    def __next__(self):
        if self.stop_asked:
            raise StopIteration
        number = next(self._numbers)
        self._callbacks.begin_epoch(self._iterate)
        return number

    def end(self, model):
        """End the epoch, which left ``model``."""
        self.stop_asked = self._callbacks.end_epoch(model)

    def reason(self):
        """Why the epochs ran out: ``"callback"`` or ``"max_iter"``."""
        return "callback" if self.stop_asked else "max_iter"


def _model_to_return(state, model, best_model, best_is_last, X, Y, sample_weight, config):
    """The model a fit returns (see :func:`train`): the best epoch's under early
    stopping, from which the state then continues; else, where averaging keeps the
    better, the average or the last iterate; else the last epoch's model. A copy."""
    if best_model is not None:
        if not best_is_last:
            _continue_from(state, best_model)
        return best_model
    averager = state.averager
    if averager is not None and averager.keep_better:
        model = _better_of(model, state.coef, state.intercept, X, Y, sample_weight, config)
    return tuple(part.copy() for part in model)


def train(X, Y, sample_weight, state, config, validation=None, method="auto", *, callbacks=None):
    """Run up to ``config.max_iter`` epochs from ``state``; return the new state, the
    model and how training ended.

    ``state`` is not modified (the run works on a copy, see :func:`prepare`), so a
    failure part-way never reaches a fitted model.

    Parameters
    ----------
    X, Y, sample_weight
        The training rows, as in :func:`numpy_epoch`.
    state : TrainingState
        Where training stands (a fresh one, without intercepts, for a new model).
    config : SolverConfig
        From :func:`._config.resolve`. With averaging the model is the average of the
        iterates (or, where ``keep_better``, the last iterate where it fits the training
        data better at the end). The record and the stopping rule read each epoch's
        running loss, its batches' losses before their updates (no extra pass over
        ``X``). The stopping rule is :class:`_Stopper`'s, and
        with ``tol > 0`` (training loss) a loss at the targets' rounding level
        (:data:`ROUNDING_FLOOR_ULPS`); ``tol=None`` never stops early.
    validation : tuple (X_val, Y_val, sample_weight_val) or None
        With held-out data, stop on its R^2 and return the best epoch's model.
    method : {"auto", "compiled", "numpy"}, default="auto"
        How epochs run (see :func:`make_epoch`).
    callbacks : FitTasks or None
        scikit-learn's callbacks (:class:`._callbacks.FitTasks`), given each epoch's
        start and model; a callback may end training after an epoch.

    Returns
    -------
    state : TrainingState
        Its iterate is the last one, or, where early stopping rejected the epochs
        after its best, the model kept (with a fresh averager). The state passed in
        where training diverged.
    model : tuple (coef, intercept) or None
        The averaged weights with averaging, the best epoch's under early stopping, else
        the last iterate; None where training diverged.
    status : TrainingStatus
    """
    # A warm start continues at the batch size reached (and its averager, where the
    # phase averages).
    schedule = _BatchSchedule(X, Y, sample_weight, state.grown_batch_size, config)
    initial, state = state, prepare(state, X, Y, sample_weight, schedule.config)
    coef, intercept, rng, n_samples = state.coef, state.intercept, state.rng, X.shape[0]
    epoch_runner = _epoch_runner(X, Y, sample_weight, state, schedule.config, method)
    stopper = _phase_stopper(schedule.config)
    loss_floor = _loss_floor(Y, sample_weight, config, validation)
    first_epoch = phase_start = len(state.history.loss_curve) + 1
    model = best_model = None
    epochs = _Epochs(config.max_iter, callbacks, (coef, intercept))
    for epoch in epochs:
        start, averager = time.perf_counter(), state.averager
        batch_size = schedule.config.batch_size
        full_batch = batch_size >= n_samples
        # Full batch visits every row at once: the order cannot matter.
        order = rng.permutation(n_samples) if config.shuffle and not full_batch else None
        average_from = _average_from(
            averager, state.history.t, sample_weight, order, batch_size, n_samples
        )
        name = _epoch_name(config, len(state.history.loss_curve) + 1)
        bar, progress = _progress(config.verbose, name, n_samples)
        try:
            record = epoch_runner(coef, intercept, order, average_from, progress)
        finally:
            if bar is not None:
                bar.close()
        finite = np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))
        if not (np.isfinite(record.loss) and finite):
            epoch_now = len(state.history.loss_curve) + 1
            return initial, None, TrainingStatus("diverged", epoch_now, first_epoch)
        model, loss = _averaged_model(coef, intercept, record, averager), record.loss
        score = (
            None if validation is None else validation_score(*validation, *model, config.activation)
        )
        state.history = state.history.append(record, loss, n_samples, batch_size, score)
        if config.verbose:
            _print_epoch(state.history, record, loss, score, start, config)
        epochs.end(model)
        if record.n_zero_gradient == record.n_batches and record.loss > 0:
            reason = "zero_gradient"
            break
        if config.tol is None:
            continue
        # Held-out data and a loss down to the targets' rounding end training; a plateau
        # of the training loss on small batches is their noise floor, which the full
        # batch removes.
        final = loss <= loss_floor
        if validation is not None:
            should_stop = final = stopper.update(-score, epoch, relative=False)
            cause = "validation"
            if stopper.best_epoch == epoch:
                best_model = tuple(part.copy() for part in model)
        else:
            plateau = stopper.update(loss, epoch, relative=True)
            converged = schedule.config.stops_by_extrapolation and _converged_in_full_batch(
                _phase_losses(state.history, phase_start, record), config.tol
            )
            should_stop = plateau or final or converged
            cause = "exact_fit" if final else "converged" if converged else "plateau"
        phase = None if final else schedule.next_phase(model, plateau=should_stop)
        if phase is not None:
            schedule.hand_over(state, model, phase, X, sample_weight)
            epoch_runner = _epoch_runner(X, Y, sample_weight, state, phase, method)
            phase_start = len(state.history.loss_curve) + 1
            if validation is None:  # the losses of batches of another size are not comparable
                stopper = _phase_stopper(phase)
            continue
        if should_stop:
            reason = "stopped"
            break
    else:
        reason = epochs.reason()
    model = _model_to_return(
        state, model, best_model, stopper.best_epoch == epoch, X, Y, sample_weight, config
    )
    state.grown_batch_size = schedule.grown_batch_size
    status = TrainingStatus(
        reason, len(state.history.loss_curve), first_epoch, validation is not None,
        schedule.config, cause if reason == "stopped" else None,
    )  # fmt: skip
    if config.verbose and status.sentence():
        print(status.sentence())
    return state, model, status
