# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The preconditioner: descent along ``P g`` instead of ``g``, still with the exact step.

Steepest descent zig-zags when the Hessian's eigenvalues are spread: each step along
``-g`` is optimal, but the directions of small curvature advance by a fraction of
their distance per step. For the models here the Hessian of a batch is
``sum_i w_i D_i^2 x~_i x~_i^T`` per output (``x~ = [x, 1]``, ``D_i`` the slopes of
the pieces the units are on): for the identity activation it is the rows' second
moment ``C = sum_i w_i x~_i x~_i^T / sum_i w_i``, and for piecewise-linear units it
is that moment over the active rows. ``P``, about ``C^{-1}`` (see
:func:`preconditioner_from_moments`), therefore undoes most of the spread, whatever
the activation. The step along ``d = P g`` is still the exact one,
``<g, d> / (d^T H d)`` (or its pooled or exact-line-search version), so the model
keeps its one guarantee: within a linear region every step minimises the batch loss
along its direction.

Measured on the convergence benchmark at batch size 256 (see ``docs/does_it_help.rst``):
on the ill-conditioned design the relative excess training loss after 2 epochs went
from 0.9 to under 0.001, on the leaky-ReLU teacher with correlated features from 3 to
0.001, while on uncorrelated features it changed nothing.

``C`` is computed from all the training rows: a random subset was tried and failed
badly on digits, where pixels that are rarely non-zero were missing from the subset,
so the preconditioner magnified them a thousand times and training stalled. For the
same reason ``partial_fit`` combines the moments of every chunk seen so far
(:class:`Moments`), rather than keeping the first chunk's.

The ridge is relative to each feature's own variance, and ``P`` is kept as the
inverse covariance and the mean (its centred form: centre the gradient, multiply by the
inverse covariance, un-centre), so neither a feature's scale nor its offset leaves it
unpreconditioned, and no product with ``P`` cancels the offsets' squares. A ridge relative
to the average second moment instead left features
a thousand times smaller than the largest under it (on unscaled features of scales
1e-3 to 1e4, 1,500 times the optimal loss after 5 epochs), and one relative to each
feature's second moment left features whose offsets are a thousand times their spread
(8 times the optimal loss after 5 epochs at batch size 64, 420 times in full batch).
The ridge bounds what ``P`` can magnify (a constant column, say) to
``1 / PRECONDITIONER_RIDGE`` times what the feature's scale calls for.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.utils import gen_batches

from ._rounding import sum_rounding

__all__ = [
    "AUTO_MAX_FEATURES",
    "MAX_FEATURES",
    "PRECONDITIONER_RIDGE",
    "Moments",
    "auto_preconditions",
    "column_size_spread",
    "column_statistics",
    "dense_preconditioner",
    "moments",
    "moments_preconditioner",
    "precondition",
    "preconditioner_from_moments",
    "preconditioner_root",
]

#: The ridge, relative to each feature's variance. On the
#: convergence benchmark at batch sizes 32 and 256, 1e-6, 1e-3 and 1e-2 gave about the
#: same losses; 0.1 to 1 was ten to a hundred times slower on the ill-conditioned
#: design. It bounds what the preconditioner can magnify, e.g. a constant column.
PRECONDITIONER_RIDGE = 1e-3

#: ``precondition="auto"`` stops at this many features: the moments cost
#: ``n_samples * n_features**2`` operations once per fit (BLAS), and a step
#: ``n_outputs * (n_features + 1)**2``, both growing faster than an epoch does.
AUTO_MAX_FEATURES = 256

#: ``precondition=True`` refuses more features than this: ``P`` and the moments are
#: dense ``(n_features + 1)**2`` matrices (0.5 GiB each at this width) and their
#: eigendecomposition costs ``n_features**3``; wide data, such as text features, would
#: run out of memory instead of training.
MAX_FEATURES = 8192

# Rows per chunk when the moments are accumulated in float64 (from float32 or CSR
# data), and at most this many entries a chunk (32 MiB), so that wide data stays bounded.
_CHUNK_ROWS = 4096
_CHUNK_ENTRIES = 2**22


def _row_chunks(n_samples, n_features):
    """Slices of rows for chunked passes: :data:`_CHUNK_ROWS`, fewer for wide data."""
    rows = max(1, min(_CHUNK_ROWS, _CHUNK_ENTRIES // max(n_features, 1)))
    return gen_batches(n_samples, rows)


# CSR with at least this share of entries stored is summarised by dense chunks of rows,
# as dense X is: BLAS's product of a chunk with itself beats the sparse x x^T from about
# 5% to 10% (50,000 x 200: 0.05 s dense against 0.1 s sparse at 10%, 4.8 s at 100%).
_SPARSE_MOMENTS_MAX_DENSITY = 0.05


def auto_preconditions(X, batch_size, step):
    """Whether ``precondition="auto"`` preconditions this fit.

    Yes for batches of at least as many rows as the model has inputs
    (``n_features + 1``), full batch included, at most :data:`AUTO_MAX_FEATURES`
    features, and a step that is a line search (not a fixed rate, whose meaning would
    change). Then multiplying a batch's gradient by ``P`` costs
    ``n_outputs * (n_features + 1)**2``, at most a third of the batch's own three
    products with its rows, ``3 * batch_size * (n_features + 1) * n_outputs``. Smaller
    batches are left alone: at batch size 1 ``P`` would cost ``n_features`` times a
    step, and below ``n_features + 1`` rows ``P g`` leaves the span of the batch's
    rows, where the batch loss is flat and the optimal step cannot weigh the move (on
    digits at batch size 32 that raised the held-out loss by a fifth, while it sped up
    training on correlated features; see the user guide). Sparse ``X`` is treated as
    dense ``X`` is, so that the two fit the same model; its preconditioned mini-batches
    run through numpy.
    """
    n_features = X.shape[1]
    return isinstance(step, str) and n_features <= AUTO_MAX_FEATURES and n_features < batch_size


@dataclass(frozen=True)
class Moments:
    """The rows' first two moments, in a form that chunks combine into.

    Attributes
    ----------
    count : float
        Rows summarised (each chunk counts by its rows; weights are relative within a
        chunk, as ``partial_fit``'s steps take them).
    mean : ndarray of shape (n_features,)
        The sample-weighted mean of the rows.
    scatter : ndarray of shape (n_features, n_features)
        ``count`` times the sample-weighted covariance of the rows.
    """

    count: float
    mean: np.ndarray
    scatter: np.ndarray

    def __add__(self, other):
        """The moments of both sets of rows (Chan et al.'s pairwise update)."""
        count = self.count + other.count
        delta = other.mean - self.mean
        share = other.count / count
        return Moments(
            count,
            self.mean + share * delta,
            self.scatter + other.scatter + np.outer(delta, delta) * (self.count * share),
        )


def _centre_offset_columns(X, weights, mean, total, covariance):
    """Recompute, about the mean, the covariance entries of the columns of CSR ``X``
    whose offset exceeds their spread; in place.

    ``x x^T`` minus ``m m^T`` cancels where ``m^2`` dwarfs the variance: a timestamp's
    variance came out as rounding noise, and two such columns' correlation as 3.7. Such
    columns are stored in nearly every row anyway, so they are centred densely, a chunk
    of rows at a time; their products with the other columns are taken from the centred
    values, ``sum_i w_i x_ij (x_id - m_d) - m_j sum_i w_i (x_id - m_d)``, accurate to
    rounding of the centred ones.

    Parameters
    ----------
    X : CSR matrix of shape (n_samples, n_features)
    weights : ndarray of shape (n_samples,)
    mean : ndarray of shape (n_features,)
    total : float
        ``weights.sum()``.
    covariance : ndarray of shape (n_features, n_features)
        The weighted covariance from ``x x^T`` minus ``m m^T``; updated.
    """
    offset = np.flatnonzero(mean * mean > np.abs(np.diag(covariance)))
    if offset.size == 0:
        return
    cross = np.zeros((offset.size, X.shape[1]))
    block = np.zeros((offset.size, offset.size))
    centred_sum = np.zeros(offset.size)
    for rows in _row_chunks(*X.shape):
        centred = X[rows][:, offset].toarray() - mean[offset]
        weighted = centred * weights[rows, None]
        cross += np.asarray(X[rows].T @ weighted).T
        block += centred.T @ weighted
        centred_sum += weighted.sum(axis=0)
    cross = (cross - np.outer(centred_sum, mean)) / total
    covariance[offset, :] = cross
    covariance[:, offset] = cross.T
    covariance[np.ix_(offset, offset)] = block / total


def _float64_rows(X, rows):
    """Rows of dense or CSR ``X`` as a dense float64 array."""
    chunk = X[rows].toarray() if sparse.issparse(X) else X[rows]
    return np.asarray(chunk, dtype=np.float64)


def moments(X, sample_weight=None):
    """:class:`Moments` of the rows of ``X``, in float64.

    The covariance is accumulated about the mean (two passes), not as a second moment
    minus the squared mean, which cancels for features whose offset dwarfs their spread.
    CSR with few stored entries is the exception: its rows are not densified, except
    for the columns whose offset exceeds their spread (:func:`_centre_offset_columns`).

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    Moments
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        total = weights.sum()
        stored = X.nnz if sparse.issparse(X) else n_samples * n_features
        if stored < _SPARSE_MOMENTS_MAX_DENSITY * n_samples * n_features:
            mean = np.asarray(X.T @ weights).ravel() / total
            # Sparse rows cannot be centred without densifying them: sum x x^T, then
            # subtract the mean's part, except for columns whose offset exceeds their
            # spread (few, and stored in nearly every row), which are centred.
            second = (X.T @ (sparse.diags(weights) @ X)).toarray() / total
            covariance = second - np.outer(mean, mean)
            _centre_offset_columns(X, weights, mean, total, covariance)
        else:
            mean = np.zeros(n_features)
            for rows in _row_chunks(n_samples, n_features):
                mean += weights[rows] @ _float64_rows(X, rows)
            mean /= total
            covariance = np.zeros((n_features, n_features))
            root_weights = np.sqrt(weights)
            # Chunks of float64 rows: no full copy of float32 X, and float64 sums. Rows
            # times the root of their weight make the product A^T A, which BLAS computes
            # as a symmetric rank update at half the cost of a general product.
            for rows in _row_chunks(n_samples, n_features):
                centred = _float64_rows(X, rows) - mean
                centred *= root_weights[rows, None]
                covariance += centred.T @ centred
            covariance /= total
    return Moments(float(n_samples), mean, covariance * n_samples)


def preconditioner_from_moments(summary, ridge=PRECONDITIONER_RIDGE):
    """``P = (C + ridge diag(v, 0))^{-1}`` in centred form, where ``C`` is the second
    moment of the rows ``[x, 1]`` and ``v`` each feature's variance (its second moment
    if it is constant, 1 if it is all zeros); None where that is not finite.

    With ``m`` the mean and ``S`` the covariance plus the ridge, ``P = A^T B A`` where
    ``A = [[I, -m], [0, 1]]`` centres ``[g_w, g_b]`` into ``[g_w - g_b m, g_b]`` and
    ``B = diag(S^-1, 1)``. The matrix ``P`` itself is never formed: its intercept
    entries are ``1 + m^T S^-1 m``, and a product with them cancels terms
    ``(offset / spread)**2`` times larger than its result, so a feature of 1e9 +- 1
    loses every digit of the intercept's direction (the fit then stalls far from least
    squares). :func:`precondition` applies the factors instead.
    ``S^-1`` is ``J (J S J)^{-1} J`` with ``J = diag(v)^{-1/2}``, so the inverse is
    taken of a matrix with a unit diagonal whatever the features' scales and offsets.

    Parameters
    ----------
    summary : Moments
    ridge : float, default=PRECONDITIONER_RIDGE

    Returns
    -------
    ndarray of shape (n_features + 1, n_features + 1), float64, or None
        ``[[S^-1, m], [m^T, 1]]``: what :func:`precondition`, the compiled kernels and
        :func:`dense_preconditioner` take. None when a square overflows (features beyond
        about 1e154) or a feature is so small that its inverse variance does (below
        about 1e-154): then training runs without a preconditioner.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        covariance = summary.scatter / summary.count
        mean = summary.mean
        variance = np.diag(covariance).copy()
        second = variance + mean * mean
        # A constant column (variance 0 up to rounding) is scaled by its second moment. The
        # variances are taken about the mean, whose rounding error (a sum of n rows) is at
        # most sum_rounding(n) of the offset: a constant column can show a spread of that
        # size and nothing larger. A timestamp in seconds spread over minutes (a spread
        # 1e-7 of its offset) is a feature; a ratio of 1e-12 used to call it constant, and
        # preconditioned it by its second moment, 1e10 times too little to move.
        rounding = sum_rounding(max(summary.count, 1.0))
        constant = ~(variance > rounding * rounding * second)
        variance[constant] = second[constant]
        variance[variance == 0] = 1.0
        inverse_root = 1.0 / np.sqrt(variance)
        correlation = covariance * inverse_root[:, None] * inverse_root[None, :]
        if not (np.all(np.isfinite(correlation)) and np.all(np.isfinite(inverse_root))):
            return None
        eigenvalues, eigenvectors = np.linalg.eigh(correlation)
        # The covariance is positive semi-definite; rounding can leave eigenvalues of -1e-16.
        inverse = 1.0 / (np.maximum(eigenvalues, 0.0) + ridge)
        inverse_covariance = (eigenvectors * inverse) @ eigenvectors.T
        inverse_covariance *= inverse_root[:, None] * inverse_root[None, :]
        n_features = mean.shape[0]
        centred = np.empty((n_features + 1, n_features + 1))
        centred[:-1, :-1] = inverse_covariance
        centred[:-1, -1] = centred[-1, :-1] = mean
        centred[-1, -1] = 1.0
    if not np.all(np.isfinite(centred)):
        return None
    return centred


def dense_preconditioner(centred):
    """The matrix ``P = A^T B A`` of a preconditioner in centred form (see
    :func:`preconditioner_from_moments`), for reference: products with it lose the
    digits that the centred form keeps.

    Parameters
    ----------
    centred : ndarray of shape (n_features + 1, n_features + 1)

    Returns
    -------
    ndarray of shape (n_features + 1, n_features + 1)
    """
    inverse_covariance, mean = centred[:-1, :-1], centred[-1, :-1]
    coupling = inverse_covariance @ mean
    dense = np.empty_like(centred)
    dense[:-1, :-1] = inverse_covariance
    dense[:-1, -1] = dense[-1, :-1] = -coupling
    dense[-1, -1] = 1.0 + mean @ coupling
    return dense


def preconditioner_root(centred):
    """``L`` with ``P = L L^T``, from a preconditioner in centred form: ``L = A^T
    diag(R, 1)`` with ``R`` the Cholesky factor of ``S^-1``, so that ``L`` is never taken
    from ``P``'s cancelling entries; None where ``S^-1`` is not positive definite in
    floating point.

    Parameters
    ----------
    centred : ndarray of shape (n_features + 1, n_features + 1)

    Returns
    -------
    ndarray of shape (n_features + 1, n_features + 1), lower triangular, or None
    """
    try:
        factor = np.linalg.cholesky(centred[:-1, :-1])
    except np.linalg.LinAlgError:
        return None
    root = np.zeros_like(centred)
    root[:-1, :-1] = factor
    root[-1, :-1] = -centred[-1, :-1] @ factor
    root[-1, -1] = 1.0
    return root


def column_statistics(X, weights):
    """Each column's root mean square (about zero, so that offsets count), mean and
    standard deviation, weighted.

    Two passes over ``X``'s stored entries: the first finds each column's largest
    magnitude and its mean (weights summing to one, so no sum overflows); the second,
    divided by that magnitude so that no square overflows, sums the squares of the
    deviations from the mean (the mean square about zero adds the mean's), so that
    the deviation keeps every digit whatever the offset (taken from the two moments,
    it kept ``16 - 2 log10(offset / spread)``: none for 1e9 +- 1). Both work on chunks
    of rows, in float64.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n_samples, n_features)
    weights : ndarray of shape (n_samples,)
        Sample weights summing to one.

    Returns
    -------
    size, mean, spread : ndarray of shape (n_features,)
    """
    n_samples, n_features = X.shape
    if sparse.issparse(X):
        return _sparse_column_statistics(sparse.csr_matrix(X), weights)
    peak, mean = np.zeros(n_features), np.zeros(n_features)
    for rows in _row_chunks(n_samples, n_features):
        chunk = _float64_rows(X, rows)
        peak = np.maximum(peak, np.maximum(-chunk.min(axis=0), chunk.max(axis=0)))
        mean += weights[rows] @ chunk
    divisor = np.where(peak > 0, peak, 1.0)
    first = mean / divisor
    variance = np.zeros(n_features)
    for rows in _row_chunks(n_samples, n_features):
        deviation = (_float64_rows(X, rows) - mean) / divisor
        variance += np.einsum("i,ij,ij->j", weights[rows], deviation, deviation)
    # The mean square about zero from that about the mean: a sum of two squares.
    second = variance + first * first
    return divisor * np.sqrt(second), divisor * first, divisor * np.sqrt(variance)


def _sparse_column_statistics(X, weights):
    """:func:`column_statistics` of a CSR matrix, from its stored entries in chunks of
    rows: three passes (each column's largest magnitude, its mean, the squared
    deviations from it), each with temporaries the size of a chunk's entries, where
    whole-matrix copies needed several times the matrix's memory."""
    n_samples, n_features = X.shape
    # Chunks of about _CHUNK_ENTRIES stored entries (rows, for dense data, bound them).
    rows_per_chunk = max(1, _CHUNK_ENTRIES * n_samples // max(X.nnz, 1))

    def entries():
        for rows in gen_batches(n_samples, rows_per_chunk):
            chunk = X[rows]
            row_weights = np.repeat(weights[rows], np.diff(chunk.indptr))
            yield chunk.indices, chunk.data.astype(np.float64), row_weights

    def column_sums(indices, values):
        return np.bincount(indices, values, minlength=n_features)

    peak = np.zeros(n_features)
    for indices, values, _ in entries():
        if values.size:
            np.maximum.at(peak, indices, np.abs(values))
    divisor = np.where(peak > 0, peak, 1.0)
    first, stored_weight = np.zeros(n_features), np.zeros(n_features)
    for indices, values, row_weights in entries():
        first += column_sums(indices, row_weights * (values / divisor[indices]))
        stored_weight += column_sums(indices, row_weights)
    variance = np.zeros(n_features)
    for indices, values, row_weights in entries():
        deviation = values / divisor[indices] - first[indices]
        variance += column_sums(indices, row_weights * deviation * deviation)
    # The rows that store no entry of a column deviate by its mean.
    variance += (weights.sum() - stored_weight) * first * first
    second = variance + first * first
    return divisor * np.sqrt(second), divisor * first, divisor * np.sqrt(variance)


def column_size_spread(sizes):
    """How far apart the sizes of the model's input columns are: what ``P`` would undo.

    The intercept's column of ones has size 1. The Hessian of the identity model has
    these sizes, squared, on its diagonal, so its condition number is at least the
    square of their ratio.

    Parameters
    ----------
    sizes : ndarray of shape (n_features,)
        The columns' root mean squares, from :func:`column_statistics`.

    Returns
    -------
    float
        The largest size over the smallest, at least 1. Columns of zeros are left out:
        gradient descent never moves their weights.
    """
    sizes = np.append(sizes[sizes > 0], 1.0)
    return float(sizes.max() / sizes.min())


def moments_preconditioner(X, sample_weight=None, ridge=PRECONDITIONER_RIDGE):
    """:func:`preconditioner_from_moments` of the rows of ``X``."""
    return preconditioner_from_moments(moments(X, sample_weight), ridge)


def precondition(grad_coef, grad_intercept, preconditioner):
    """The direction ``[G, g_b] P``, split into its coef and intercept parts.

    Applied in centred form (see :func:`preconditioner_from_moments`): the centred
    gradient ``G - g_b m^T`` times ``S^-1`` is the coef part ``D``, and ``g_b - D m`` the
    intercept's. No step subtracts terms larger than the features' offsets times the
    direction, where ``P``'s own entries would subtract their squares.

    Parameters
    ----------
    grad_coef : ndarray of shape (n_outputs, n_features)
    grad_intercept : ndarray of shape (n_outputs,)
    preconditioner : ndarray of shape (n_features + 1, n_features + 1)
        In centred form, from :func:`preconditioner_from_moments`.

    Returns
    -------
    direction_coef, direction_intercept : ndarray, in the gradient's dtype
    """
    inverse_covariance, mean = preconditioner[:-1, :-1], preconditioner[-1, :-1]
    grad_intercept = grad_intercept.astype(np.float64)
    centred = grad_coef.astype(np.float64) - grad_intercept[:, None] * mean
    direction_coef = centred @ inverse_covariance
    direction_intercept = grad_intercept - direction_coef @ mean
    dtype = grad_coef.dtype
    return (
        np.ascontiguousarray(direction_coef.astype(dtype, copy=False)),
        np.ascontiguousarray(direction_intercept.astype(dtype, copy=False)),
    )


def descent_direction(grad_coef, grad_intercept, preconditioner=None):
    """The direction of (preconditioned) steepest descent, ``-[G, g_b] P``, or ``-g``
    where ``preconditioner`` is None.

    Every numpy path starts from it: a mini-batch steps along it, and the full batch's
    conjugate directions are built on it (see :class:`._solver.FullBatchEpoch`). The
    compiled kernels apply ``P`` in a loop of their own (``_kernels._precondition``, held
    to this one by ``tests/test_preconditioning.py``) rather than calling a compiled
    version from here: BLAS multiplies by a wide ``P`` several times faster than that
    loop, and the numpy paths would wait for it to compile on a fit that runs no kernel.

    Returns
    -------
    direction_coef, direction_intercept : ndarray, in the gradient's dtype
    """
    if preconditioner is not None:
        grad_coef, grad_intercept = precondition(grad_coef, grad_intercept, preconditioner)
    return -grad_coef, -grad_intercept
