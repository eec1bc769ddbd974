"""Compiled small-batch kernels: whole epochs of optimal-step updates in one call.

With small batches the cost of a numpy step is Python overhead, not arithmetic
(4 s an epoch at batch size 1 on 100,000 x 100, against 6 ms to read X once), so
these kernels run an entire epoch without returning to Python: forward pass,
gradient, the curvature term of the optimal rate, and the update, for every
piecewise-linear activation through its knots, values and slopes.

Contract (every kernel): ``coef`` (n_outputs, n_features) and ``intercept``
(n_outputs,) are updated **in place**; ``rates`` (one slot per batch) receives the
learning rate of each batch that carried weight; the return value is
``(loss, n_steps, n_zero_gradient)`` where ``loss`` is the epoch's objective,
each batch's taken before its update and weighted by its share of the total
sample weight, exactly as in :func:`sklearn_optlr._solver.run_epoch`.
Accumulations are in float64 whatever the input dtype.
"""

try:
    from numba import njit
except ImportError as exc:  # pragma: no cover - exercised only without numba
    raise ImportError(
        "sklearn-optlr needs numba for its compiled small-batch kernels, and it could not be "
        f"imported ({exc}). Install it with `pip install numba` (it is a declared dependency "
        "of sklearn-optlr, so reinstalling the package also brings it)."
    ) from exc

import numpy as np

__all__ = ["dense_epoch", "csr_epoch"]

# Reassociation lets the dot products vectorise; no assumption about NaN or inf is
# made, so a diverging fit is still seen by the caller's finiteness check.
_FASTMATH = {"reassoc", "contract", "arcp"}


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _activate(z, knots, values, slopes):
    """Value and right-hand slope of the piecewise-linear function at ``z``."""
    piece = 0
    while piece < knots.shape[0] and z >= knots[piece]:
        piece += 1
    anchor = max(piece - 1, 0)
    slope = slopes[piece]
    return values[anchor] + slope * (z - knots[anchor]), slope


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _rate(numerator, denominator, optimal, fixed_rate, data_gradient):
    # As in the solver: no active unit, no step (the penalty alone is not followed).
    if numerator == 0.0 or not data_gradient:
        return 0.0
    if not optimal:
        return fixed_rate
    if not denominator > 0.0:
        return 0.0
    rate = numerator / denominator
    return rate if np.isfinite(rate) else 0.0


@njit(cache=True, fastmath=_FASTMATH)
def dense_epoch(
    X, Y, sample_weight, order, coef, intercept, knots, values, slopes,
    batch_size, alpha, optimal, fixed_rate, rates,
):  # fmt: skip
    """One epoch of mini-batch updates on dense ``X`` (C-contiguous rows).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,)
        All ones when the user gave none.
    order : ndarray of shape (n_samples,), int64
        Row visiting order.
    coef, intercept : ndarray
        Updated in place.
    knots, values, slopes : ndarray
        The activation (see :class:`PiecewiseLinear`), in X's dtype.
    batch_size : int
    alpha : float
        L2 penalty.
    optimal : bool
        Take the optimal rate; otherwise ``fixed_rate``.
    fixed_rate : float
    rates : ndarray of shape (n_batches,), float64
        Receives the rate of each step.

    Returns
    -------
    loss : float
    n_steps : int
    n_zero_gradient : int
    """
    n_samples, n_features = X.shape
    n_outputs = coef.shape[0]
    total_weight = 0.0
    for i in range(n_samples):
        total_weight += sample_weight[i]
    slope_buffer = np.empty((batch_size, n_outputs))
    backprop = np.empty((batch_size, n_outputs))
    grad_coef = np.empty((n_outputs, n_features))
    grad_intercept = np.empty(n_outputs)
    loss = 0.0
    n_steps = 0
    n_zero_gradient = 0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        batch_weight = 0.0
        for t in range(start, stop):
            batch_weight += sample_weight[order[t]]
        if batch_weight == 0.0:
            continue
        # Forward pass: errors, slopes and the back-propagated residuals.
        batch_loss = 0.0
        data_gradient = False
        for t in range(start, stop):
            row = order[t]
            weight = sample_weight[row] / batch_weight
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
        penalty = 0.0
        if alpha > 0.0:
            for o in range(n_outputs):
                for j in range(n_features):
                    penalty += coef[o, j] * coef[o, j]
        loss += 0.5 * (batch_loss + alpha * penalty) * (batch_weight / total_weight)
        # Gradient.
        for o in range(n_outputs):
            grad_intercept[o] = 0.0
            for j in range(n_features):
                grad_coef[o, j] = alpha * coef[o, j]
        for t in range(start, stop):
            row = order[t]
            for o in range(n_outputs):
                r = backprop[t - start, o]
                if r != 0.0:
                    grad_intercept[o] += r
                    for j in range(n_features):
                        grad_coef[o, j] += r * X[row, j]
        grad_coef_sq = 0.0
        numerator = 0.0
        for o in range(n_outputs):
            numerator += grad_intercept[o] * grad_intercept[o]
            for j in range(n_features):
                grad_coef_sq += grad_coef[o, j] * grad_coef[o, j]
        numerator += grad_coef_sq
        # Curvature along the gradient: sum_i w_i ||D_i (G x_i + g_b)||^2 + alpha ||G||^2.
        denominator = 0.0
        if optimal and data_gradient:
            for t in range(start, stop):
                row = order[t]
                weight = sample_weight[row] / batch_weight
                for o in range(n_outputs):
                    slope = slope_buffer[t - start, o]
                    if slope != 0.0:
                        change = grad_intercept[o]
                        for j in range(n_features):
                            change += grad_coef[o, j] * X[row, j]
                        change *= slope
                        denominator += weight * change * change
            denominator += alpha * grad_coef_sq
        rate = _rate(numerator, denominator, optimal, fixed_rate, data_gradient)
        if not data_gradient:
            n_zero_gradient += 1
        rates[n_steps] = rate
        n_steps += 1
        if rate != 0.0:
            for o in range(n_outputs):
                intercept[o] -= rate * grad_intercept[o]
                for j in range(n_features):
                    coef[o, j] -= rate * grad_coef[o, j]
    return loss, n_steps, n_zero_gradient


@njit(cache=True, fastmath=_FASTMATH)
def csr_epoch(
    data, indices, indptr, n_features, Y, sample_weight, order, coef, intercept,
    knots, values, slopes, batch_size, alpha, optimal, fixed_rate, rates,
):  # fmt: skip
    """One epoch of mini-batch updates on CSR ``X``, at O(nnz) cost per row.

    The gradient ``G = sum_i r_i x_i^T + alpha W`` is never formed: its products
    with the batch rows and its norm come from the batch Gram matrix
    ``K_ij = x_i . x_j`` (computed through a dense scatter buffer), and ``W x_i`` is
    known from the forward pass. The cost per batch is O(m nnz + m^2 n_outputs),
    plus O(n_features n_outputs) when ``alpha > 0`` (the penalty touches every weight).

    Parameters are those of :func:`dense_epoch`, with ``X`` given as its CSR
    arrays ``data, indices, indptr`` and ``n_features``.
    """
    n_samples = indptr.shape[0] - 1
    n_outputs = coef.shape[0]
    total_weight = 0.0
    for i in range(n_samples):
        total_weight += sample_weight[i]
    scatter = np.zeros(n_features)
    gram = np.empty((batch_size, batch_size))
    linear = np.empty((batch_size, n_outputs))  # W x_i, without the intercept
    slope_buffer = np.empty((batch_size, n_outputs))
    backprop = np.empty((batch_size, n_outputs))
    grad_intercept = np.empty(n_outputs)
    loss = 0.0
    n_steps = 0
    n_zero_gradient = 0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        m = stop - start
        batch_weight = 0.0
        for t in range(start, stop):
            batch_weight += sample_weight[order[t]]
        if batch_weight == 0.0:
            continue
        batch_loss = 0.0
        data_gradient = False
        for t in range(m):
            row = order[start + t]
            weight = sample_weight[row] / batch_weight
            for o in range(n_outputs):
                z = 0.0
                for p in range(indptr[row], indptr[row + 1]):
                    z += coef[o, indices[p]] * data[p]
                linear[t, o] = z
                value, slope = _activate(z + intercept[o], knots, values, slopes)
                error = value - Y[row, o]
                batch_loss += weight * error * error
                slope_buffer[t, o] = slope
                backprop[t, o] = weight * slope * error
                data_gradient |= backprop[t, o] != 0.0
        penalty = 0.0
        if alpha > 0.0:
            for o in range(n_outputs):
                for j in range(n_features):
                    penalty += coef[o, j] * coef[o, j]
        loss += 0.5 * (batch_loss + alpha * penalty) * (batch_weight / total_weight)
        # Gram matrix of the batch rows.
        for t in range(m):
            row = order[start + t]
            for p in range(indptr[row], indptr[row + 1]):
                scatter[indices[p]] = data[p]
            for s in range(t, m):
                other = order[start + s]
                dot = 0.0
                for p in range(indptr[other], indptr[other + 1]):
                    dot += scatter[indices[p]] * data[p]
                gram[t, s] = dot
                gram[s, t] = dot
            for p in range(indptr[row], indptr[row + 1]):
                scatter[indices[p]] = 0.0
        # ||G||^2 = sum_ts <r_t, r_s> K_ts + 2 alpha sum_t <r_t, W x_t> + alpha^2 ||W||^2.
        grad_coef_sq = alpha * alpha * penalty
        numerator = 0.0
        for o in range(n_outputs):
            g = 0.0
            for t in range(m):
                r = backprop[t, o]
                g += r
                if r != 0.0:
                    grad_coef_sq += 2.0 * alpha * r * linear[t, o]
                    for s in range(m):
                        grad_coef_sq += r * backprop[s, o] * gram[t, s]
            grad_intercept[o] = g
            numerator += g * g
        numerator += grad_coef_sq
        denominator = 0.0
        if optimal and data_gradient:
            # G x_s + g_b = sum_t r_t K_ts + alpha W x_s + g_b.
            for s in range(m):
                weight = sample_weight[order[start + s]] / batch_weight
                for o in range(n_outputs):
                    slope = slope_buffer[s, o]
                    if slope != 0.0:
                        change = grad_intercept[o] + alpha * linear[s, o]
                        for t in range(m):
                            change += backprop[t, o] * gram[t, s]
                        change *= slope
                        denominator += weight * change * change
            denominator += alpha * grad_coef_sq
        rate = _rate(numerator, denominator, optimal, fixed_rate, data_gradient)
        if not data_gradient:
            n_zero_gradient += 1
        rates[n_steps] = rate
        n_steps += 1
        if rate != 0.0:
            if alpha > 0.0:
                shrink = 1.0 - rate * alpha
                for o in range(n_outputs):
                    for j in range(n_features):
                        coef[o, j] *= shrink
            for t in range(m):
                row = order[start + t]
                for o in range(n_outputs):
                    r = rate * backprop[t, o]
                    if r != 0.0:
                        for p in range(indptr[row], indptr[row + 1]):
                            coef[o, indices[p]] -= r * data[p]
            for o in range(n_outputs):
                intercept[o] -= rate * grad_intercept[o]
    return loss, n_steps, n_zero_gradient
