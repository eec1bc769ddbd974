# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Compiled small-batch kernels: whole epochs of mini-batch updates in one call.

With small batches the cost of a numpy step is Python overhead, not arithmetic
(4 s an epoch at batch size 1 on 100,000 x 100, against 6 ms to read X once), so
these kernels run an entire epoch without returning to Python: forward pass,
gradient, the step length (the optimal rate's curvature term, or the exact line
search's sweep over kink crossings), and the update, for every piecewise-linear
activation through its knots, values and slopes. At batch size 1 the dense kernel
takes the optimal, pooled and fixed steps in closed form (two reads of the row instead of
five, see :func:`_dense_one_row_epoch`) and asks for rows a few steps ahead
(:mod:`._prefetch`), since fetching shuffled rows is then most of an epoch's time.

Contract (every kernel): ``coef`` (n_outputs, n_features) and ``intercept``
(n_outputs,) are updated **in place**; ``rates`` (one slot per batch) receives the
learning rate of each batch that carried weight; the return value is
``(loss, n_steps, n_zero_gradient)`` where ``loss`` is the epoch's objective,
each batch's taken before its update and weighted by its share of the rows of
positive weight, exactly as in :func:`sklearn_optlr._solver.numpy_epoch`. A batch's
sample weights are relative to the mean positive weight of all the rows (see
:func:`sklearn_optlr._step.batch_weights`).
Accumulations are in float64 whatever the input dtype.

Scale safety, as in :mod:`sklearn_optlr._step`: the gradient is divided by a power of
two near its norm before its products with the rows, so the curvature's squares
neither overflow nor underflow for features of magnitude 1e150; the rate is unchanged
to the bit. (The norm costs nothing: it is the numerator of the rate.) The first batch whose loss,
gradient, curvature or step is not finite ends the epoch before its update, with a
NaN loss (the caller raises).

Iterate averaging: steps from index ``average_from`` on add ``(t - average_from) *
rate * g`` to ``sum_coef`` and ``sum_intercept`` (float64, zeroed by the caller),
where ``t`` is the step's index in the epoch and ``rate * g`` the update it
subtracted. The sum of the iterates after those ``T - average_from`` steps is then
``(T - average_from) * theta_T + sum`` (see :mod:`sklearn_optlr._averaging`): the
sum is fused into the update loop, and stays O(nnz) per row for CSR input.
"""

import numpy as np
from numba import njit

from ._line_search import (
    _FASTMATH,
    _KERNEL_ONLY,
    EXACT,
    FIXED,
    _activate,
    step_from_forms,
    step_length,
)
from ._prefetch import prefetch_row, prefetch_slice
from ._step import power_of_two_scale

__all__ = ["dense_epoch", "csr_epoch"]

_power_of_two_scale = njit(cache=True, inline="always")(power_of_two_scale)

#: At batch size 1, rows are prefetched this many steps ahead (see :mod:`._prefetch`):
#: on 100,000 x 100 a minimal one-row loop took 1.66, 1.38, 1.23 and 1.25 times one
#: pass over X prefetching 1, 2, 4 and 8 rows ahead, against 2.48 without.
PREFETCH_DISTANCE = 4

#: Sums of squares below this may have lost entries to underflow: rescale instead.
_SMALLEST_SAFE_SQUARE = 2.0**-960


@njit(cache=True, fastmath=_FASTMATH, **_KERNEL_ONLY)
def _scale_gradient(grad_coef, grad_intercept, numerator, grad_coef_sq):
    """Divide the gradient in place by a power of two near its norm, ``sqrt(numerator)``.

    ``numerator`` is ``||g||^2`` and ``grad_coef_sq`` is ``||G||^2``; both are returned for
    the scaled gradient, after the power and its inverse. When the squares overflowed
    (entries beyond about 1e154) or underflowed (below about 1e-144), the power is taken
    near the largest entry instead, at the cost of one more pass over the gradient (a
    loop of maxima, which does not vectorise, hence not the common path). The gradient
    must not be exactly zero (no active unit, no penalty): there is nothing to scale.
    """
    rescue = not (np.isfinite(numerator) and numerator >= _SMALLEST_SAFE_SQUARE)
    if rescue:
        largest = 0.0
        for o in range(grad_coef.shape[0]):
            largest = max(largest, abs(grad_intercept[o]))
            for j in range(grad_coef.shape[1]):
                largest = max(largest, abs(grad_coef[o, j]))
        scale, inverse = _power_of_two_scale(largest)
    else:
        # Exponents within +-511, so that inverse**2 is finite however this is associated.
        scale, inverse = _power_of_two_scale(np.sqrt(numerator), -511, 511)
        numerator = numerator * inverse * inverse
        grad_coef_sq = grad_coef_sq * inverse * inverse
    for o in range(grad_coef.shape[0]):
        grad_intercept[o] *= inverse
        for j in range(grad_coef.shape[1]):
            grad_coef[o, j] *= inverse
    if rescue:
        grad_coef_sq = 0.0
        numerator = 0.0
        for o in range(grad_coef.shape[0]):
            numerator += grad_intercept[o] * grad_intercept[o]
            for j in range(grad_coef.shape[1]):
                grad_coef_sq += grad_coef[o, j] * grad_coef[o, j]
        numerator += grad_coef_sq
    return scale, inverse, numerator, grad_coef_sq


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _squared_norm(matrix):
    """``||matrix||_F^2``, accumulated in float64 (the penalty's ``||W||^2``)."""
    total = 0.0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            total += matrix[i, j] * matrix[i, j]
    return total


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _batch_norm(sample_weight, order, start, stop, unit):
    """A batch's rows of positive weight, what its weights are divided by (``unit``
    times those rows), and its weight relative to the data's, the factor of its
    penalty (see :func:`sklearn_optlr._step.batch_weights`)."""
    batch_rows = 0
    batch_weight = 0.0
    for t in range(start, stop):
        if sample_weight[order[t]] != 0.0:
            batch_rows += 1
            batch_weight += sample_weight[order[t]]
    norm = batch_rows * unit
    return batch_rows, norm, batch_weight / norm if batch_rows else 0.0


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _curvature_along_gradient(
    X, order, start, stop, sample_weight, batch_norm, slope_buffer, grad_coef,
    grad_intercept, alpha, grad_coef_sq, exact_search, line_change,
):  # fmt: skip
    """``sum_i w_i ||D_i (G x_i + g_b)||^2 + alpha ||G||^2`` for a dense batch.

    ``w_i`` is ``sample_weight[row] / batch_norm`` (see :func:`_batch_norm`).

    With ``exact_search`` True (not None), also stores ``-(G x_i + g_b)`` of every unit,
    the inactive ones too, in ``line_change``, for the exact search's line.
    """
    n_outputs, n_features = grad_coef.shape
    denominator = 0.0
    for t in range(start, stop):
        row = order[t]
        weight = sample_weight[row] / batch_norm
        for o in range(n_outputs):
            slope = slope_buffer[t - start, o]
            if slope != 0.0 or exact_search is not None:
                change = grad_intercept[o]
                for j in range(n_features):
                    change += grad_coef[o, j] * X[row, j]
                if exact_search is not None:
                    line_change[(t - start) * n_outputs + o] = -change
                change *= slope
                denominator += weight * change * change
    return denominator + alpha * grad_coef_sq


@njit(cache=True, fastmath=_FASTMATH)
def _precondition(grad_coef, grad_intercept, preconditioner, raw_coef, raw_intercept, row):
    """Replace the gradient ``[G, g_b]`` in place by ``[G, g_b] P``, keeping it in ``raw_*``.

    ``preconditioner`` is in centred form, ``[[S^-1, m], [m^T, 1]]``
    (:func:`sklearn_optlr._preconditioning.precondition` applies it alike): the centred
    gradient ``g_w - g_b m`` times ``S^-1`` is the coef part ``d``, and ``g_b - <d, m>``
    the intercept's. ``row`` is scratch of ``n_features + 1`` entries.
    """
    n_outputs, n_features = grad_coef.shape
    for o in range(n_outputs):
        raw_intercept[o] = grad_intercept[o]
        for j in range(n_features):
            raw_coef[o, j] = grad_coef[o, j]
            row[j] = 0.0
        for i in range(n_features):
            entry = raw_coef[o, i] - raw_intercept[o] * preconditioner[n_features, i]
            if entry != 0.0:
                for j in range(n_features):
                    row[j] += entry * preconditioner[i, j]
        # The sum and the stores in separate loops: in one loop, LLVM checks at run time
        # whether the arrays overlap and takes its vector or its scalar loop by where they
        # lie in memory, and the two sum in different orders (fastmath's reassociation):
        # fits then differed in the last bits from run to run.
        intercept_part = raw_intercept[o]
        for j in range(n_features):
            intercept_part -= row[j] * preconditioner[n_features, j]
        grad_intercept[o] = intercept_part
        for j in range(n_features):
            grad_coef[o, j] = row[j]


@njit(cache=True, **_KERNEL_ONLY)
def _batch_scratch(batch_size, n_outputs, n_knots):
    """The per-batch buffers both kernels need, allocated once an epoch.

    Returns the slopes, back-propagated residuals and intercept gradient of a batch,
    then the exact step's scratch: one entry per (row, output) for the pre-activations,
    their change along the direction, the targets and the weights, and the kink
    crossings' steps and coefficient changes (see :func:`._line_search.exact_line_search`).
    """
    entries = batch_size * n_outputs
    return (
        np.empty((batch_size, n_outputs)),
        np.empty((batch_size, n_outputs)),
        np.empty(n_outputs),
        np.empty(entries),
        np.zeros(entries),
        np.empty(entries),
        np.empty(entries),
        np.empty(entries * n_knots + 1),
        np.empty((5, entries * n_knots + 1)),
    )


def dense_epoch(
    X, Y, sample_weight, order, coef, intercept, knots, values, slopes,
    batch_size, alpha, rule, fixed_rate, rate_memory, window, preconditioner, rates,
    average_from, sum_coef, sum_intercept, unit, n_weighted,
):  # fmt: skip
    """One epoch of mini-batch updates on dense ``X`` (C-contiguous rows).

    Chooses the compiled kernel in Python, so that a fit compiles only the one it runs:
    :func:`_dense_one_row_epoch` at batch size 1 without a preconditioner or the exact
    step, :func:`_dense_batch_epoch` otherwise, the exact line search only for
    :data:`EXACT` (see :func:`._line_search.step_length`), and the rescaling of
    gradients whose squares overflow or underflow only for data that need it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,)
        All ones when the user gave none.
    order : ndarray of int64
        Rows to visit, in order: a permutation of all of them for an epoch, or a
        chunk of one (``unit`` and ``n_weighted`` are still those of all the rows).
    coef, intercept : ndarray
        Updated in place.
    knots, values, slopes : ndarray
        The activation (see :class:`PiecewiseLinear`), rounded to X's dtype. The kernels
        take them in float64 (they only ever meet float64 operands, so the results are
        the same), so that float32 and float64 data share the helpers' compiled code.
    batch_size : int
    alpha : float
        L2 penalty.
    rule : int
        :data:`OPTIMAL` (the quadratic model's minimiser), :data:`POOLED` (see
        :mod:`._pooling`), :data:`EXACT` (the exact minimiser of the batch loss
        along ``-g``) or :data:`FIXED`.
    fixed_rate : float
    rate_memory : ndarray of shape (4,), float64
        The pooled rule's memory, updated in place (see :mod:`._pooling`).
    window : float
        The pooled rule's window, in batches.
    preconditioner : ndarray of shape (n_features + 1, n_features + 1), float64
        Descend along ``[G, g_b] P`` instead of the gradient (see
        :mod:`._preconditioning`); an array of shape (0, 0): along the gradient.
    rates : ndarray of shape (n_batches,), float64
        Receives the rate of each step.
    average_from : int
        First step whose iterate is averaged (a number of batches or more: none).
    sum_coef, sum_intercept : ndarray, float64
        Averaging accumulators, updated in place (see the module docstring).
    unit : float
        The mean positive sample weight of all the rows, to which a batch's weights
        are relative (:func:`sklearn_optlr._step.weight_unit`).
    n_weighted : int
        The rows of positive weight: a batch's loss counts by its share of them.

    Returns
    -------
    loss : float
    n_steps : int
    n_zero_gradient : int
    """
    knots, values, slopes = _activation_arrays(knots, values, slopes)
    if not (batch_size == 1 and rule != EXACT and preconditioner.shape[0] == 0):
        arguments = (
            X, Y, sample_weight, order, coef, intercept, knots, values, slopes, batch_size,
            alpha, rule, fixed_rate, rate_memory, window, preconditioner, rates, average_from,
            sum_coef, sum_intercept, unit, n_weighted,
        )  # fmt: skip
        exact_search = True if rule == EXACT else None
        loss, n_steps, n_zero_gradient, stopped = _dense_batch_epoch(
            *arguments, 0, 0.0, 0, 0, exact_search, exact_search
        )
        if stopped < order.shape[0]:
            # A batch whose squares may overflow or underflow: it and the rest of the epoch
            # by the kernel that rescales, compiled only when data need it.
            loss, n_steps, n_zero_gradient, _ = _dense_batch_epoch(
                *arguments, stopped, loss, n_steps, n_zero_gradient, None, True
            )
        return loss, n_steps, n_zero_gradient
    arguments = (
        X, Y, sample_weight, order, coef, intercept, knots, values, slopes, alpha, rule,
        fixed_rate, rate_memory, window, rates, average_from, sum_coef, sum_intercept, unit,
        n_weighted,
    )  # fmt: skip
    loss, n_steps, n_zero_gradient, stopped = _dense_one_row_epoch(*arguments, 0, 0.0, 0, 0)
    if stopped == order.shape[0]:
        return loss, n_steps, n_zero_gradient
    return _dense_one_row_rescue(*arguments, stopped, loss, n_steps, n_zero_gradient)


def _activation_arrays(knots, values, slopes):
    """The activation's arrays as the kernels take them: float64, C-contiguous."""
    return tuple(np.ascontiguousarray(array, dtype=np.float64) for array in (knots, values, slopes))


@njit(cache=True, fastmath=_FASTMATH)
def _dense_batch_epoch(
    X, Y, sample_weight, order, coef, intercept, knots, values, slopes, batch_size, alpha,
    rule, fixed_rate, rate_memory, window, preconditioner, rates, average_from, sum_coef,
    sum_intercept, unit, n_weighted, first, loss, n_steps, n_zero_gradient, exact_search,
    rescale,
):  # fmt: skip
    """:func:`dense_epoch` for any batch size and step rule, given the rows' mean positive
    weight and their number (:func:`sklearn_optlr._step.weight_unit`). ``exact_search``
    is True for :data:`EXACT`, None otherwise: a kernel compiled with None never
    compiles the exact search (see :func:`._line_search.step_length`).

    ``rescale`` True divides the gradient by a power of two (see the module docstring)
    where its squares or the curvature's may overflow or underflow, as the exact search
    always does. With None, the kernel hands such a batch back instead, before anything
    is updated: only data of extreme scale need the rescaling, so it is compiled (in a
    kernel with True) the first time such a batch comes, not at every first fit.

    Starts at ``order[first]``, a batch's first row, with the epoch's ``loss``,
    ``n_steps`` and ``n_zero_gradient`` so far, and returns them with the position
    where it stopped: ``order.shape[0]`` at the end of the rows or where the loss
    became NaN, else the first row of the batch to hand over.

    With a preconditioner, ``grad_coef`` and ``grad_intercept`` hold the direction
    ``[G, g_b] P`` from the gradient on, and the gradient itself is kept in
    ``raw_coef`` and ``raw_intercept`` for the rate's numerator ``<g, d>``.
    """
    n_features = X.shape[1]
    n_outputs = coef.shape[0]
    preconditioned = preconditioner.shape[0] > 0
    grad_coef = np.empty((n_outputs, n_features))
    raw_coef = np.empty((n_outputs, n_features) if preconditioned else (0, 0))
    raw_intercept = np.empty(n_outputs if preconditioned else 0)
    direction_row = np.empty(n_features + 1 if preconditioned else 0)
    (
        slope_buffer, backprop, grad_intercept, line_pre_activation, line_change, line_target,
        line_weight, event_step, event_delta,
    ) = _batch_scratch(batch_size, n_outputs, knots.shape[0])  # fmt: skip
    n_rows = order.shape[0]  # the epoch, or a chunk of it (see the solver's progress)
    for start in range(first, n_rows, batch_size):
        stop = min(start + batch_size, n_rows)
        batch_rows, batch_norm, relative = _batch_norm(sample_weight, order, start, stop, unit)
        if batch_rows == 0:
            continue
        # The penalty takes the batch's weight too (1 without sample weights).
        batch_alpha = alpha * relative
        # Forward pass: errors, slopes and the back-propagated residuals.
        batch_loss = 0.0
        data_gradient = False
        for t in range(start, stop):
            row = order[t]
            weight = sample_weight[row] / batch_norm
            for o in range(n_outputs):
                z = float(intercept[o])
                for j in range(n_features):
                    z += coef[o, j] * X[row, j]
                value, slope = _activate(z, knots, values, slopes)
                error = value - Y[row, o]
                batch_loss += weight * error * error
                slope_buffer[t - start, o] = slope
                backprop[t - start, o] = weight * slope * error
                data_gradient |= backprop[t - start, o] != 0.0
                if exact_search is not None:  # the exact search's line
                    entry = (t - start) * n_outputs + o
                    line_pre_activation[entry] = z
                    line_target[entry] = Y[row, o]
                    line_weight[entry] = weight
        penalty = _squared_norm(coef) if batch_alpha > 0.0 else 0.0
        batch_objective = 0.5 * (batch_loss + batch_alpha * penalty) * (batch_rows / n_weighted)
        # Gradient.
        for o in range(n_outputs):
            grad_intercept[o] = 0.0
            for j in range(n_features):
                grad_coef[o, j] = batch_alpha * coef[o, j]
        for t in range(start, stop):
            row = order[t]
            for o in range(n_outputs):
                r = backprop[t - start, o]
                if r != 0.0:
                    grad_intercept[o] += r
                    for j in range(n_features):
                        grad_coef[o, j] += r * X[row, j]
        if preconditioned:
            _precondition(
                grad_coef, grad_intercept, preconditioner, raw_coef, raw_intercept, direction_row
            )
        # ``numerator`` is ``<d, d>`` here, which sets the scale below; with a preconditioner
        # it becomes ``<g, d>`` once the direction's scale is final.
        grad_coef_sq = 0.0
        numerator = 0.0
        for o in range(n_outputs):
            numerator += grad_intercept[o] * grad_intercept[o]
            for j in range(n_features):
                grad_coef_sq += grad_coef[o, j] * grad_coef[o, j]
        numerator += grad_coef_sq
        # From here on the gradient is divided by ``scale`` (see the module docstring), and
        # the update is ``step_along`` times it. Dividing by a power of two is exact, so
        # where no square can overflow or underflow the quadratic step skips it (it costs
        # about half a one-row step's time) and rescales only if the curvature does. A
        # zero gradient (no active unit, no penalty) has nothing to scale.
        scale, inverse = 1.0, 1.0
        scaled = False
        if not (
            (not data_gradient and batch_alpha == 0.0)
            or (rule != EXACT and np.isfinite(numerator) and numerator >= _SMALLEST_SAFE_SQUARE)
        ):  # fmt: skip
            # "rescale is None" alone in its condition, to be pruned (as exact_search below).
            if rescale is None:
                return loss, n_steps, n_zero_gradient, start
            scale, inverse, numerator, grad_coef_sq = _scale_gradient(
                grad_coef, grad_intercept, numerator, grad_coef_sq
            )
            scaled = True
        denominator = 0.0
        # One call site of the inlined curvature, taken again after rescaling if needed.
        while rule != FIXED and data_gradient:
            denominator = _curvature_along_gradient(
                X, order, start, stop, sample_weight, batch_norm, slope_buffer, grad_coef,
                grad_intercept, batch_alpha, grad_coef_sq, exact_search, line_change,
            )  # fmt: skip
            if scaled or (np.isfinite(denominator) and denominator >= _SMALLEST_SAFE_SQUARE):
                break
            if rescale is None:
                return loss, n_steps, n_zero_gradient, start
            scale, inverse, numerator, grad_coef_sq = _scale_gradient(
                grad_coef, grad_intercept, numerator, grad_coef_sq
            )
            scaled = True
        if preconditioned:
            # <g / scale, d / scale>, with the direction's scale: g / scale stays finite
            # wherever the features' squares do (P divides by their scales squared).
            numerator = 0.0
            for o in range(n_outputs):
                numerator += raw_intercept[o] * inverse * grad_intercept[o]
                for j in range(n_features):
                    numerator += raw_coef[o, j] * inverse * grad_coef[o, j]
        step_along = 0.0  # no active unit, no step (the penalty alone is not followed)
        # "exact_search is None" alone in its condition: numba prunes only such a test,
        # so that a kernel compiled without the search never types the line.
        if exact_search is None:
            if data_gradient:
                step_along = step_length(
                    rule, numerator, denominator, scale, fixed_rate, rate_memory, window,
                    batch_rows / batch_size, None,
                )  # fmt: skip
        elif data_gradient:
            # The exact search's line along -g / scale, with the penalty's quadratic.
            coef_dot_grad = 0.0
            if rule == EXACT and batch_alpha > 0.0:
                for o in range(n_outputs):
                    for j in range(n_features):
                        coef_dot_grad += coef[o, j] * grad_coef[o, j]
            line = (
                line_pre_activation, line_change, line_target, line_weight,
                (stop - start) * n_outputs, knots, values, slopes,
                (
                    0.5 * batch_alpha * penalty, -batch_alpha * coef_dot_grad,
                    batch_alpha * grad_coef_sq,
                ),
                np.inf, event_step, event_delta,
            )  # fmt: skip
            step_along = step_length(
                rule, numerator, denominator, scale, fixed_rate, rate_memory, window,
                batch_rows / batch_size, line,
            )  # fmt: skip
        rate = step_along * inverse
        if not (
            np.isfinite(batch_loss) and np.isfinite(numerator) and np.isfinite(denominator)
            and np.isfinite(step_along)
        ):  # fmt: skip
            return np.nan, n_steps, n_zero_gradient, n_rows
        loss += batch_objective
        if not data_gradient:
            n_zero_gradient += 1
        averaging_weight = step_along * (n_steps - average_from) if n_steps >= average_from else 0.0
        rates[n_steps] = rate
        n_steps += 1
        if step_along != 0.0:
            for o in range(n_outputs):
                intercept[o] -= step_along * grad_intercept[o]
                sum_intercept[o] += averaging_weight * grad_intercept[o]
                for j in range(n_features):
                    coef[o, j] -= step_along * grad_coef[o, j]
                if averaging_weight != 0.0:
                    for j in range(n_features):
                        sum_coef[o, j] += averaging_weight * grad_coef[o, j]
    return loss, n_steps, n_zero_gradient, n_rows


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _one_row_step(
    Y, row, linear, intercept, weight, row_alpha, penalty, row_sq, knots, values, slopes,
    residual, row_slopes, rule, fixed_rate, rate_memory, window,
):  # fmt: skip
    """One row's loss and rate in closed form, for the one-row kernels (dense and CSR).

    With one row the gradient has rank one, ``G = r x^T + alpha W`` and ``g_b = r``
    (``r = w D e``, with the row's weight ``w`` relative to the mean, 1 without sample
    weights, and ``alpha`` the row's penalty, ``w`` times the model's), so the rate
    needs only ``W x`` (``linear``), ``||x||^2`` (``row_sq``) and ``||W||^2``
    (``penalty``): ``||G||^2 = ||r||^2 ||x||^2 + 2 alpha <r, W x> + alpha^2 ||W||^2`` and
    ``G x + g_b = r (||x||^2 + 1) + alpha W x``. Fills ``residual`` (``r``) and
    ``row_slopes``; returns ``(row_loss, rate, data_gradient, safe)``, where ``safe`` is
    False if a square may have overflowed or underflowed (the rate is then 0 and the
    caller takes the row by the general, rescaled step).
    """
    row_loss = 0.0
    residual_sq = 0.0
    residual_dot_linear = 0.0
    data_gradient = False
    for o in range(linear.shape[0]):
        value, slope = _activate(linear[o] + intercept[o], knots, values, slopes)
        error = value - Y[row, o]
        row_loss += weight * error * error
        r = weight * slope * error
        residual[o] = r
        row_slopes[o] = slope
        residual_sq += r * r
        residual_dot_linear += r * linear[o]
        data_gradient |= r != 0.0
    grad_coef_sq = residual_sq * row_sq + 2.0 * row_alpha * residual_dot_linear
    grad_coef_sq += row_alpha * row_alpha * penalty
    numerator = grad_coef_sq + residual_sq
    safe = np.isfinite(numerator) and numerator >= _SMALLEST_SAFE_SQUARE
    denominator = 0.0
    if rule != FIXED:
        denominator = row_alpha * grad_coef_sq
        for o in range(linear.shape[0]):
            change = row_slopes[o] * (residual[o] * (row_sq + 1.0) + row_alpha * linear[o])
            denominator += weight * change * change
        safe = safe and np.isfinite(denominator) and denominator >= _SMALLEST_SAFE_SQUARE
    rate = 0.0  # no active unit, no step (the penalty alone is not followed)
    if data_gradient and safe:
        # The rule without a line (no exact search here): passing step_length a line
        # of empty arrays doubled the time of the one-row loop.
        rate = step_from_forms(
            rule, numerator, denominator, 1.0, fixed_rate, rate_memory, window, 1.0
        )
    return row_loss, rate, data_gradient, safe


@njit(cache=True, fastmath=_FASTMATH)
def _dense_one_row_epoch(
    X, Y, sample_weight, order, coef, intercept, knots, values, slopes, alpha, rule,
    fixed_rate, rate_memory, window, rates, average_from, sum_coef, sum_intercept, unit,
    n_weighted, first, loss, n_steps, n_zero_gradient,
):  # fmt: skip
    """:func:`dense_epoch` at batch size 1 with the optimal, pooled or a fixed step, in closed
    form (:func:`_one_row_step`). The general loop reads the row five
    times (product, gradient, its norm, curvature, update); this one reads it twice,
    ``||x||^2`` riding along with the first product, and it is kept free of the
    general loop's buffers and branches (on 100,000 x 100, 23 ms an epoch against
    33). What remains is mostly the latency of fetching rows in shuffled order, so
    each row is prefetched a few steps ahead (11 ms, under 2 times one pass over X).
    A row where a square may have overflowed or underflowed (entries beyond about
    1e150 or below 1e-144) is handed back before anything is updated, to
    :func:`_dense_one_row_rescue`, which takes it by the general, rescaled step.
    (Calling that kernel from here would link it into this one, and compile it again
    with it at every first fit at batch size 1.)

    Starts at ``order[first]`` with the epoch's ``loss``, ``n_steps`` and
    ``n_zero_gradient`` so far, and returns them with the position where it stopped:
    ``order.shape[0]`` at the end of the rows or where the loss became NaN, else the
    row to hand over.
    """
    n_features = X.shape[1]
    n_outputs = coef.shape[0]
    linear = np.empty(n_outputs)  # W x, without the intercept
    residual = np.empty(n_outputs)
    row_slopes = np.empty(n_outputs)
    weight_step = np.empty(1, dtype=coef.dtype)
    n_rows = order.shape[0]
    for t in range(first, n_rows):
        row = order[t]
        if t + PREFETCH_DISTANCE < n_rows:
            prefetch_row(X, order[t + PREFETCH_DISTANCE])
        if sample_weight[row] == 0.0:
            continue
        weight = sample_weight[row] / unit
        batch_alpha = alpha * weight  # the penalty takes the row's weight too
        row_sq = 0.0
        z = 0.0
        for j in range(n_features):
            z += coef[0, j] * X[row, j]
            row_sq += X[row, j] * X[row, j]
        linear[0] = z
        for o in range(1, n_outputs):
            z = 0.0
            for j in range(n_features):
                z += coef[o, j] * X[row, j]
            linear[o] = z
        penalty = _squared_norm(coef) if batch_alpha > 0.0 else 0.0
        row_loss, rate, data_gradient, safe = _one_row_step(
            Y, row, linear, intercept, weight, batch_alpha, penalty, row_sq, knots, values,
            slopes, residual, row_slopes, rule, fixed_rate, rate_memory, window,
        )  # fmt: skip
        if data_gradient and not safe:
            return loss, n_steps, n_zero_gradient, t
        if not (np.isfinite(row_loss) and np.isfinite(rate)):
            return np.nan, n_steps, n_zero_gradient, n_rows
        loss += 0.5 * (row_loss + batch_alpha * penalty) * (1.0 / n_weighted)
        n_zero_gradient += not data_gradient
        averaging_weight = rate * (n_steps - average_from) if n_steps >= average_from else 0.0
        rates[n_steps] = rate
        n_steps += 1
        if rate == 0.0:
            continue
        for o in range(n_outputs):
            r = residual[o]
            intercept[o] -= rate * r
            sum_intercept[o] += averaging_weight * r
            if batch_alpha > 0.0:
                for j in range(n_features):
                    grad = batch_alpha * coef[o, j] + r * X[row, j]
                    coef[o, j] -= rate * grad
                    sum_coef[o, j] += averaging_weight * grad
            elif r != 0.0:
                # The step in the weights' own precision, as numpy_epoch updates them: in
                # float32 the loop then has no conversions and stays as fast as float64.
                weight_step[0] = rate * r
                step_in_weights = weight_step[0]
                for j in range(n_features):
                    coef[o, j] -= step_in_weights * X[row, j]
                if averaging_weight != 0.0:
                    for j in range(n_features):
                        sum_coef[o, j] += averaging_weight * r * X[row, j]
    return loss, n_steps, n_zero_gradient, n_rows


@njit(cache=True, fastmath=_FASTMATH)
def _dense_one_row_rescue(
    X, Y, sample_weight, order, coef, intercept, knots, values, slopes, alpha, rule,
    fixed_rate, rate_memory, window, rates, average_from, sum_coef, sum_intercept, unit,
    n_weighted, first, loss, n_steps, n_zero_gradient,
):  # fmt: skip
    """The rest of a one-row epoch from ``order[first]``, a row that
    :func:`_dense_one_row_epoch` handed back: such rows by the general, rescaled step
    of :func:`_dense_batch_epoch`, the others by the one-row kernel.

    Only data of extreme scale need it, and it links both kernels, so it is compiled
    the first time such a row comes, not with the one-row kernel. Returns what
    :func:`dense_epoch` does.
    """
    n_rows = order.shape[0]
    t = first
    while t < n_rows:
        # The rows up to t, from t on: the row alone. np.bool_(True), not True, whose
        # literal type would compile a kernel of its own, besides the one that
        # dense_epoch calls with True from Python for mini-batches of such data.
        loss, n_steps, n_zero_gradient, _ = _dense_batch_epoch(
            X, Y, sample_weight, order[: t + 1], coef, intercept, knots, values, slopes,
            np.int64(1), alpha, rule, fixed_rate, rate_memory, window, np.empty((0, 0)),
            rates, average_from, sum_coef, sum_intercept, unit, n_weighted, t, loss, n_steps,
            n_zero_gradient, None, np.bool_(True),
        )  # fmt: skip
        if not np.isfinite(loss):
            return np.nan, n_steps, n_zero_gradient
        loss, n_steps, n_zero_gradient, t = _dense_one_row_epoch(
            X, Y, sample_weight, order, coef, intercept, knots, values, slopes, alpha, rule,
            fixed_rate, rate_memory, window, rates, average_from, sum_coef, sum_intercept,
            unit, n_weighted, t + 1, loss, n_steps, n_zero_gradient,
        )  # fmt: skip
    return loss, n_steps, n_zero_gradient


#: The CSR kernel holds the weights as ``weight_scale * V`` (see :func:`_csr_epoch`)
#: and folds the scale back into them (a pass over all the weights) once the entries it
#: updated since the last fold outnumber the weights, so that folding at most doubles
#: the work, or once the scale falls below this, whichever comes first. ``V`` is ``W``
#: magnified by ``1 / weight_scale``, and so is the rounding of the average's penalty
#: terms, which are summed by parts in ``V``'s units: 2^20 keeps them to about 1e-10
#: relative in float64, and ``V`` finite for weights below 2^1003 (2^107 in float32).
RESCALE_BELOW = 2.0**-20


def csr_epoch(
    data, indices, indptr, n_features, Y, sample_weight, order, coef, intercept,
    knots, values, slopes, batch_size, alpha, rule, fixed_rate, rate_memory, window, rates,
    average_from, sum_coef, sum_intercept, unit, n_weighted,
):  # fmt: skip
    """One epoch of mini-batch updates on CSR ``X``, at a cost per batch of order its
    stored entries times the outputs, whatever ``n_features``.

    Parameters are those of :func:`dense_epoch`, with ``X`` given as its CSR
    arrays ``data, indices, indptr`` and ``n_features``; the kernel is
    :func:`_csr_epoch`, compiled with the exact line search only for :data:`EXACT`.
    """
    knots, values, slopes = _activation_arrays(knots, values, slopes)
    if batch_size == 1 and rule != EXACT:
        return _csr_one_row(
            data, indices, indptr, Y, sample_weight, order, coef, intercept,
            knots, values, slopes, alpha, rule, fixed_rate, rate_memory, window, rates,
            average_from, sum_coef, sum_intercept, unit, n_weighted,
        )  # fmt: skip
    return _csr_epoch(
        data, indices, indptr, Y, sample_weight, order, coef, intercept,
        knots, values, slopes, batch_size, alpha, rule, fixed_rate, rate_memory, window, rates,
        average_from, sum_coef, sum_intercept, unit, n_weighted,
        *_gradient_buffers(indptr, n_features, coef.shape[0], batch_size),
        True if rule == EXACT else None,
    )  # fmt: skip


def _gradient_buffers(indptr, n_features, n_outputs, batch_size):
    """:func:`_csr_epoch`'s buffers for a batch's gradient: ``gradient``,
    ``touched_mark`` and ``touched``, empty at batch size 1 (closed form, no buffer)."""
    if batch_size == 1:
        n_features = 0
    # The batch gradient's columns: at most those the batch's rows store.
    row_entries = np.diff(indptr)
    most_entries = int(row_entries.max()) if row_entries.size else 0
    return (
        np.zeros((n_outputs, n_features)),
        np.zeros(n_features, dtype=np.bool_),
        np.empty(min(n_features, batch_size * most_entries), dtype=np.int64),
    )


def _csr_one_row(
    data, indices, indptr, Y, sample_weight, order, coef, intercept,
    knots, values, slopes, alpha, rule, fixed_rate, rate_memory, window, rates,
    average_from, sum_coef, sum_intercept, unit, n_weighted,
):  # fmt: skip
    """:func:`csr_epoch` at batch size 1 without the exact search: the closed-form kernel
    :func:`_csr_one_row_epoch`, and the rows it hands back (squares that may overflow or
    underflow) by the general, rescaled kernel, one row at a time."""
    loss, n_steps, n_zero_gradient, first = 0.0, 0, 0, 0
    n_rows = order.shape[0]
    buffers = _gradient_buffers(indptr, 0, coef.shape[0], 1)
    while True:
        loss, n_steps, n_zero_gradient, stopped = _csr_one_row_epoch(
            data, indices, indptr, Y, sample_weight, order, coef, intercept, knots, values,
            slopes, alpha, rule, fixed_rate, rate_memory, window, rates, average_from,
            sum_coef, sum_intercept, unit, n_weighted, first, loss, n_steps, n_zero_gradient,
        )  # fmt: skip
        if stopped == n_rows:
            return loss, n_steps, n_zero_gradient
        # The row's step counts from this epoch's n_steps: its rate's slot and its
        # averaging weight (rate times the step's index less average_from) shift alike.
        row_loss, row_steps, row_zero = _csr_epoch(
            data, indices, indptr, Y, sample_weight, order[stopped : stopped + 1], coef,
            intercept, knots, values, slopes, 1, alpha, rule, fixed_rate, rate_memory, window,
            rates[n_steps:], average_from - n_steps, sum_coef, sum_intercept, unit, n_weighted,
            *buffers, None,
        )  # fmt: skip
        loss, n_steps, n_zero_gradient = (
            loss + row_loss,
            n_steps + row_steps,
            n_zero_gradient + row_zero,
        )
        if not np.isfinite(loss):
            return np.nan, n_steps, n_zero_gradient
        first = stopped + 1


@njit(cache=True, fastmath=_FASTMATH)
def _csr_one_row_epoch(
    data, indices, indptr, Y, sample_weight, order, coef, intercept, knots, values, slopes,
    alpha, rule, fixed_rate, rate_memory, window, rates, average_from, sum_coef,
    sum_intercept, unit, n_weighted, first, loss, n_steps, n_zero_gradient,
):  # fmt: skip
    """:func:`_dense_one_row_epoch` for CSR rows: the closed-form step
    (:func:`_one_row_step`), with the weights held as ``weight_scale * V`` and the
    penalty's terms of the average summed by parts, as in :func:`_csr_epoch`. Starts at
    ``order[first]`` and returns where it stopped, as the dense kernel does."""
    n_outputs = coef.shape[0]
    linear = np.empty(n_outputs)  # W x, without the intercept
    residual = np.empty(n_outputs)
    row_slopes = np.empty(n_outputs)
    weight_scale = 1.0
    lazy_total = 0.0
    coef_squares = _squared_norm(coef) if alpha > 0.0 else 0.0  # ||V||^2
    updated_since_fold = 0
    n_rows = order.shape[0]
    for t in range(first, n_rows):
        row = order[t]
        _prefetch_csr_row(data, indices, indptr, order, t + PREFETCH_DISTANCE)
        if sample_weight[row] == 0.0:
            continue
        weight = sample_weight[row] / unit
        row_alpha = alpha * weight  # the penalty takes the row's weight too
        row_sq = _csr_row_products(coef, data, indices, indptr, row, weight_scale, linear)
        penalty = weight_scale * weight_scale * max(coef_squares, 0.0) if row_alpha > 0.0 else 0.0
        row_loss, rate, data_gradient, safe = _one_row_step(
            Y, row, linear, intercept, weight, row_alpha, penalty, row_sq, knots, values,
            slopes, residual, row_slopes, rule, fixed_rate, rate_memory, window,
        )  # fmt: skip
        if (data_gradient and not safe) or not (np.isfinite(row_loss) and np.isfinite(rate)):
            _fold_scale(coef, sum_coef, weight_scale, lazy_total)
            if data_gradient and not safe:
                return loss, n_steps, n_zero_gradient, t
            return np.nan, n_steps, n_zero_gradient, n_rows
        loss += 0.5 * (row_loss + row_alpha * penalty) * (1.0 / n_weighted)
        n_zero_gradient += not data_gradient
        averaging_weight = rate * (n_steps - average_from) if n_steps >= average_from else 0.0
        rates[n_steps] = rate
        n_steps += 1
        if rate == 0.0:
            continue
        if row_alpha > 0.0:
            weight_scale, lazy_total, coef_squares, updated_since_fold = _penalty_step(
                coef, sum_coef, rate, row_alpha, averaging_weight, weight_scale, lazy_total,
                coef_squares, updated_since_fold,
            )  # fmt: skip
            updated_since_fold += n_outputs * (indptr[row + 1] - indptr[row])
        step = rate / weight_scale
        for o in range(n_outputs):
            r = residual[o]
            intercept[o] -= rate * r
            sum_intercept[o] += averaging_weight * r
            if r == 0.0:
                continue
            coef_squares += _lazy_row_update(
                coef, sum_coef, o, data, indices, indptr[row], indptr[row + 1], step * r,
                r * averaging_weight, lazy_total, alpha > 0.0,
            )  # fmt: skip
    if weight_scale != 1.0 or lazy_total != 0.0:
        _fold_scale(coef, sum_coef, weight_scale, lazy_total)
    return loss, n_steps, n_zero_gradient, n_rows


@njit(cache=True, inline="always")
def _prefetch_csr_row(data, indices, indptr, order, position):
    """Hint that the CSR row ``order[position]`` will be read soon (nothing past the
    end): shuffled rows start with cache misses, as dense ones do."""
    if position < order.shape[0]:
        row = order[position]
        prefetch_slice(data, indptr[row], indptr[row + 1])
        prefetch_slice(indices, indptr[row], indptr[row + 1])


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _csr_row_products(coef, data, indices, indptr, row, weight_scale, linear):
    """``linear[o] = W x`` for a CSR row, with ``W = weight_scale * coef``; returns
    ``||x||^2``, which rides along with the first output's product (in float64: float32
    squares overflow)."""
    row_sq = 0.0
    for o in range(coef.shape[0]):
        z = 0.0
        if o == 0:
            for p in range(indptr[row], indptr[row + 1]):
                z += coef[0, indices[p]] * data[p]
                row_sq += np.float64(data[p]) * data[p]
        else:
            for p in range(indptr[row], indptr[row + 1]):
                z += coef[o, indices[p]] * data[p]
        linear[o] = z * weight_scale
    return row_sq


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _penalty_step(
    coef, sum_coef, rate, alpha, averaging_weight, weight_scale, lazy_total, coef_squares,
    updated_since_fold,
):  # fmt: skip
    """The penalty's step ``W <- (1 - rate alpha) W`` on the scale, its term of the
    average added to ``lazy_total``, and the scale folded back into the weights where
    :data:`RESCALE_BELOW`'s rule asks. Returns the new ``(weight_scale, lazy_total,
    coef_squares, updated_since_fold)``."""
    lazy_total += averaging_weight * alpha * weight_scale
    weight_scale *= 1.0 - rate * alpha
    if abs(weight_scale) < RESCALE_BELOW or updated_since_fold >= coef.size:
        coef_squares = _fold_scale(coef, sum_coef, weight_scale, lazy_total)
        return 1.0, 0.0, coef_squares, 0
    return weight_scale, lazy_total, coef_squares, updated_since_fold


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _lazy_row_update(
    coef, sum_coef, o, data, indices, start, stop, step, averaging_step, lazy_total,
    track_squares,
):  # fmt: skip
    """``V[o] -= step x`` on one CSR row's columns (``data[start:stop]``), with the
    average's terms: ``averaging_step x`` for the data step, less ``lazy_total`` times
    each entry's change for the penalty's (see :func:`_csr_epoch`). Returns the change
    of ``||V[o]||^2`` where ``track_squares`` (the penalty needs it), else 0."""
    if not track_squares and averaging_step == 0.0 and lazy_total == 0.0:
        # The plain step (``step`` in float64: at extreme scales it is beyond float32's
        # range where its products with the row are not).
        for p in range(start, stop):
            coef[o, indices[p]] -= step * data[p]
        return 0.0
    squares = 0.0
    for p in range(start, stop):
        j = indices[p]
        before = coef[o, j]
        coef[o, j] = before - step * data[p]
        change = coef[o, j] - before  # as stored, in the weights' precision
        if track_squares:
            squares += change * (coef[o, j] + before)
        sum_coef[o, j] += averaging_step * data[p] - lazy_total * change
    return squares


@njit(cache=True, fastmath=_FASTMATH, **_KERNEL_ONLY)
def _fold_scale(coef, sum_coef, weight_scale, lazy_total):
    """Fold ``weight_scale`` into ``coef`` and the lazily averaged penalty terms
    (``lazy_total`` times the current ``V``) into ``sum_coef``; return ``||W||^2``."""
    squares = 0.0
    for o in range(coef.shape[0]):
        for j in range(coef.shape[1]):
            if lazy_total != 0.0:
                sum_coef[o, j] += lazy_total * coef[o, j]
            coef[o, j] *= weight_scale
            squares += coef[o, j] * coef[o, j]
    return squares


@njit(cache=True, fastmath=_FASTMATH)
def _csr_epoch(
    data, indices, indptr, Y, sample_weight, order, coef, intercept,
    knots, values, slopes, batch_size, alpha, rule, fixed_rate, rate_memory, window, rates,
    average_from, sum_coef, sum_intercept, unit, n_weighted, gradient, touched_mark,
    touched, exact_search,
):  # fmt: skip
    """The compiled kernel of :func:`csr_epoch` (``exact_search`` as in
    :func:`_dense_batch_epoch`).

    Nothing per step touches a weight the batch's rows do not store:

    - The data gradient ``G = sum_i r_i x_i^T`` is accumulated on the batch's columns
      only, in ``gradient`` (zeros of shape (n_outputs, n_features), cleared again
      over those columns, which ``touched`` lists and ``touched_mark`` flags). Its norm
      and its products ``G x_s`` with the batch rows come from there. With one row,
      ``G = r x^T``: ``||G||^2 = ||r||^2 ||x||^2`` and ``G x = r ||x||^2``, with
      ``||x||^2`` taken in the forward pass, and no buffer.
    - The penalty's gradient ``alpha W`` is dense, so the weights are held as
      ``W = weight_scale * V`` (as SGDRegressor holds them): its shrinkage ``1 - rate
      alpha`` multiplies the scale, and the data step updates ``V`` by ``-rate G /
      weight_scale``. ``||W||^2 = weight_scale^2 ||V||^2``, with ``||V||^2`` updated
      entry by entry. (``alpha`` is the batch's penalty: the model's times the batch's
      relative weight.) ``<G, W>`` is ``sum_t <r_t, W x_t>``, from the forward pass.
    - Averaging adds ``(t - a) rate (G + alpha W_t)`` at each step ``t`` from ``a =
      average_from`` on (see the module docstring). The data part is sparse; the
      penalty's, ``sum_t c_t V_t`` with ``c_t = (t - a) rate alpha weight_scale_t``, is
      summed by parts: ``C V - sum_t C_t (V_{t+1} - V_t)``, with ``C_t`` the running sum
      of the ``c_t`` (``lazy_total``) and ``V`` the final ``V``. Each update of an entry
      of ``V`` subtracts ``C_t`` times its change from ``sum_coef`` at once, and
      :func:`_fold_scale` adds ``C V`` where the scale is folded back into the weights:
      at the end of the call, and as :data:`RESCALE_BELOW` says.

    The updates equal the dense kernel's up to rounding.
    """
    n_outputs = coef.shape[0]
    linear = np.empty((batch_size, n_outputs))  # W x_i, without the intercept
    row_squares = np.empty(batch_size)  # ||x_i||^2
    scaled_backprop = np.empty((batch_size, n_outputs))
    (
        slope_buffer, backprop, grad_intercept, line_pre_activation, line_change, line_target,
        line_weight, event_step, event_delta,
    ) = _batch_scratch(batch_size, n_outputs, knots.shape[0])  # fmt: skip
    weight_scale = 1.0
    lazy_total = 0.0
    updated_since_fold = 0  # entries of V, as a measure of the work done
    coef_squares = _squared_norm(coef) if alpha > 0.0 else 0.0  # ||V||^2
    loss = 0.0
    n_steps = 0
    n_zero_gradient = 0
    n_rows = order.shape[0]  # the epoch, or a chunk of it (see the solver's progress)
    for start in range(0, n_rows, batch_size):
        stop = min(start + batch_size, n_rows)
        m = stop - start
        batch_rows, batch_norm, relative = _batch_norm(sample_weight, order, start, stop, unit)
        if batch_rows == 0:
            continue
        batch_alpha = alpha * relative  # the penalty takes the batch's weight too
        batch_loss = 0.0
        data_gradient = False
        largest_square = 0.0
        for t in range(m):
            row = order[start + t]
            _prefetch_csr_row(data, indices, indptr, order, start + t + PREFETCH_DISTANCE)
            weight = sample_weight[row] / batch_norm
            row_sq = _csr_row_products(coef, data, indices, indptr, row, weight_scale, linear[t])
            row_squares[t] = row_sq
            largest_square = max(largest_square, row_sq)
            for o in range(n_outputs):
                z = linear[t, o]
                value, slope = _activate(z + intercept[o], knots, values, slopes)
                error = value - Y[row, o]
                batch_loss += weight * error * error
                slope_buffer[t, o] = slope
                backprop[t, o] = weight * slope * error
                data_gradient |= backprop[t, o] != 0.0
                line_pre_activation[t * n_outputs + o] = z + intercept[o]
                line_target[t * n_outputs + o] = Y[row, o]
                line_weight[t * n_outputs + o] = weight
        # max(.., 0): the running ||V||^2 may round just below zero as weights vanish.
        penalty = weight_scale * weight_scale * max(coef_squares, 0.0) if batch_alpha > 0.0 else 0.0
        loss += 0.5 * (batch_loss + batch_alpha * penalty) * (batch_rows / n_weighted)
        # The squares below are taken of terms divided by a power of two near the largest
        # residual times the largest ||(x_t, 1)||, or near the penalty's pull alpha ||W||
        # where that is larger, which bounds ||G|| / ``presize`` by about m, so that they
        # neither overflow (residuals and features of 1e77 did) nor blow up under a tiny
        # residual's inverse.
        largest_residual = 0.0
        for t in range(m):
            for o in range(n_outputs):
                largest_residual = max(largest_residual, abs(backprop[t, o]))
        residual_size, residual_inverse = _power_of_two_scale(largest_residual, -511, 511)
        row_size, row_inverse = _power_of_two_scale(np.sqrt(largest_square + 1.0), -511, 511)
        presize = residual_size * row_size
        preinverse = residual_inverse * row_inverse
        if batch_alpha > 0.0:
            pull_size, pull_inverse = _power_of_two_scale(
                batch_alpha * np.sqrt(penalty), -1021, 1021
            )
            if pull_size > presize:
                presize, preinverse = pull_size, pull_inverse
        alpha_scaled = batch_alpha * preinverse
        for t in range(m):
            for o in range(n_outputs):
                scaled_backprop[t, o] = backprop[t, o] * preinverse
        # ||G||^2 = ||G_data||^2 + 2 alpha sum_t <r_t, W x_t> + alpha^2 ||W||^2 (alpha: the
        # batch's), here divided by presize**2.
        n_touched = 0
        data_squares = 0.0
        if m == 1:
            for o in range(n_outputs):
                data_squares += scaled_backprop[0, o] * scaled_backprop[0, o]
            data_squares *= row_squares[0]
        else:
            for t in range(m):
                row = order[start + t]
                for p in range(indptr[row], indptr[row + 1]):
                    j = indices[p]
                    if not touched_mark[j]:
                        touched_mark[j] = True
                        touched[n_touched] = j
                        n_touched += 1
                    for o in range(n_outputs):
                        gradient[o, j] += scaled_backprop[t, o] * data[p]
            for k in range(n_touched):
                j = touched[k]
                for o in range(n_outputs):
                    data_squares += gradient[o, j] * gradient[o, j]
        pull = alpha_scaled * np.sqrt(penalty)  # 0, not inf * 0, where ||W||^2 underflows
        grad_coef_sq = data_squares + pull * pull
        numerator = 0.0
        for o in range(n_outputs):
            g = 0.0
            for t in range(m):
                g += backprop[t, o]
                grad_coef_sq += 2.0 * alpha_scaled * scaled_backprop[t, o] * linear[t, o]
            grad_intercept[o] = g
            numerator += (g * preinverse) * (g * preinverse)
        numerator += grad_coef_sq
        # The step terms are those of the gradient divided by ``scale`` (see the module
        # docstring); the update below takes ``rate`` times the gradient itself.
        # Exponents within +-511, so that inverse**2 is finite however this is associated.
        rescale, reinverse = _power_of_two_scale(np.sqrt(numerator), -511, 511)
        numerator = numerator * reinverse * reinverse
        grad_coef_sq = grad_coef_sq * reinverse * reinverse
        scale, inverse = presize * rescale, preinverse * reinverse
        denominator = 0.0
        if rule != FIXED and data_gradient:
            # G x_s + g_b + alpha W x_s, divided by scale.
            for s in range(m):
                row = order[start + s]
                weight = sample_weight[row] / batch_norm
                for o in range(n_outputs):
                    slope = slope_buffer[s, o]
                    if slope != 0.0 or rule == EXACT:
                        change = grad_intercept[o] * preinverse + alpha_scaled * linear[s, o]
                        if m == 1:
                            change += scaled_backprop[0, o] * row_squares[0]
                        else:
                            for p in range(indptr[row], indptr[row + 1]):
                                change += gradient[o, indices[p]] * data[p]
                        change *= reinverse
                        line_change[s * n_outputs + o] = -change
                        change *= slope
                        denominator += weight * change * change
            denominator += batch_alpha * grad_coef_sq
        rate = 0.0  # no active unit, no step (the penalty alone is not followed)
        if exact_search is None:  # alone in its condition, to be pruned (as in the dense kernel)
            if data_gradient:
                rate = inverse * step_length(
                    rule, numerator, denominator, scale, fixed_rate, rate_memory, window,
                    batch_rows / batch_size, None,
                )  # fmt: skip
        elif data_gradient:
            # The exact search's line along -g / scale, with the penalty's quadratic;
            # <W, G> = sum_t <r_t, W x_t> + alpha ||W||^2, divided by presize.
            coef_dot_grad = 0.0
            if rule == EXACT:
                coef_dot_grad = alpha_scaled * penalty
                for t in range(m):
                    for o in range(n_outputs):
                        coef_dot_grad += scaled_backprop[t, o] * linear[t, o]
            line = (
                line_pre_activation, line_change, line_target, line_weight, m * n_outputs,
                knots, values, slopes,
                (
                    0.5 * batch_alpha * penalty, -batch_alpha * coef_dot_grad * reinverse,
                    batch_alpha * grad_coef_sq,
                ),
                np.inf, event_step, event_delta,
            )  # fmt: skip
            rate = inverse * step_length(
                rule, numerator, denominator, scale, fixed_rate, rate_memory, window,
                batch_rows / batch_size, line,
            )  # fmt: skip
        if not (
            np.isfinite(batch_loss) and np.isfinite(numerator) and np.isfinite(denominator)
            and np.isfinite(rate)
        ):  # fmt: skip
            _fold_scale(coef, sum_coef, weight_scale, lazy_total)
            return np.nan, n_steps, n_zero_gradient
        if not data_gradient:
            n_zero_gradient += 1
        averaging_weight = rate * (n_steps - average_from) if n_steps >= average_from else 0.0
        rates[n_steps] = rate
        n_steps += 1
        if rate != 0.0 and batch_alpha > 0.0:
            weight_scale, lazy_total, coef_squares, updated_since_fold = _penalty_step(
                coef, sum_coef, rate, batch_alpha, averaging_weight, weight_scale, lazy_total,
                coef_squares, updated_since_fold,
            )  # fmt: skip
        # The data step on V: -rate G / weight_scale, G = gradient * presize (a power of two).
        step = rate / weight_scale
        if batch_alpha > 0.0:
            updated_since_fold += n_outputs * (
                indptr[order[start] + 1] - indptr[order[start]] if m == 1 else n_touched
            )
        if m == 1:
            row = order[start]
            for o in range(n_outputs):
                r = backprop[0, o]
                if rate == 0.0 or r == 0.0:
                    continue
                coef_squares += _lazy_row_update(
                    coef, sum_coef, o, data, indices, indptr[row], indptr[row + 1], step * r,
                    r * averaging_weight, lazy_total, alpha > 0.0,
                )  # fmt: skip
        for k in range(n_touched):
            j = touched[k]
            touched_mark[j] = False
            for o in range(n_outputs):
                g = gradient[o, j] * presize
                gradient[o, j] = 0.0
                if rate == 0.0:
                    continue
                before = coef[o, j]
                coef[o, j] = before - step * g
                change = coef[o, j] - before
                if alpha > 0.0:
                    coef_squares += change * (coef[o, j] + before)
                sum_coef[o, j] += averaging_weight * g - lazy_total * change
        for o in range(n_outputs):
            intercept[o] -= rate * grad_intercept[o]
            sum_intercept[o] += averaging_weight * grad_intercept[o]
    if weight_scale != 1.0 or lazy_total != 0.0:
        _fold_scale(coef, sum_coef, weight_scale, lazy_total)
    return loss, n_steps, n_zero_gradient
