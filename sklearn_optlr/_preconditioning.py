"""The preconditioner: descent along ``P g`` instead of ``g``, still with the exact step.

Steepest descent zig-zags when the Hessian's eigenvalues are spread: each step along
``-g`` is optimal, but the directions of small curvature advance by a fraction of
their distance per step. For the models here the Hessian of a batch is
``sum_i w_i D_i^2 x~_i x~_i^T`` per output (``x~ = [x, 1]``, ``D_i`` the slopes of
the pieces the units are on): for the identity activation it is the rows' second
moment ``C = sum_i w_i x~_i x~_i^T / sum_i w_i``, and for piecewise-linear units it
is that moment over the active rows. ``P``, about ``C^{-1}`` (see
:func:`preconditioner_from_moment`), therefore undoes most of the spread, whatever
the activation. The step along ``d = P g`` is still the exact
one, ``<g, d> / (d^T H d)`` (or its pooled or exact-line-search version), so the
model keeps its one guarantee: within a linear region every step minimises the
batch loss along its direction.

Measured on the convergence benchmark at batch size 256 (see ``docs/does_it_help.rst``):
on the ill-conditioned design the relative excess training loss after 2 epochs went
from 0.9 to under 0.001, on the leaky-ReLU teacher with correlated features from 3 to
0.001, while on uncorrelated features it changed nothing.

``C`` is computed from all the training rows: a random subset was tried and failed
badly on digits, where pixels that are rarely non-zero were missing from the subset,
so the preconditioner magnified them a thousand times and training stalled. For the
same reason ``partial_fit`` sums the moment over every chunk seen so far
(:func:`moment_sum`), rather than keeping the first chunk's.

The ridge is relative to each feature's own second moment, which bounds what ``P``
can magnify (a constant column, say) to ``1 / PRECONDITIONER_RIDGE`` times what the
feature's scale calls for.
"""

import numpy as np
from scipy import sparse
from sklearn.utils import gen_batches

__all__ = [
    "AUTO_MAX_FEATURES",
    "PRECONDITIONER_RIDGE",
    "auto_preconditions",
    "moment_sum",
    "precondition",
    "preconditioner_from_moment",
    "second_moment",
    "second_moment_preconditioner",
]

#: The ridge added to the second moment scaled to a unit diagonal. On the
#: convergence benchmark at batch sizes 32 and 256, 1e-6, 1e-3 and 1e-2 gave about the
#: same losses; 0.1 to 1 was ten to a hundred times slower on the ill-conditioned
#: design. It bounds what the preconditioner can magnify, e.g. a constant column.
PRECONDITIONER_RIDGE = 1e-3

#: ``precondition="auto"`` stops at this many features: the second moment costs
#: ``n_samples * (n_features + 1)**2`` operations once per fit (BLAS), and a step
#: ``n_outputs * (n_features + 1)**2``, both growing faster than an epoch does.
AUTO_MAX_FEATURES = 256

# Rows per chunk when the second moment is accumulated in float64 from float32 data.
_CHUNK_ROWS = 4096


def auto_preconditions(X, batch_size, step):
    """Whether ``precondition="auto"`` preconditions this fit.

    Yes for batches of more rows than the model has inputs (``n_features + 1``), full
    batch included, at most :data:`AUTO_MAX_FEATURES` features, and a step that is a
    line search (not a fixed rate, whose meaning would change). Then multiplying a
    batch's gradient by ``P`` costs ``n_outputs * (n_features + 1)**2``, less than the
    batch's own three products with its rows, ``3 * batch_size * (n_features + 1) *
    n_outputs``. Smaller batches are left alone: at batch size 1 ``P`` would cost
    ``n_features`` times a step, and the pooled rate meets its targets without it.
    Sparse ``X`` is treated as dense ``X`` is, so that the two fit the same model; its
    preconditioned mini-batches run through numpy.
    """
    n_features = X.shape[1]
    return isinstance(step, str) and n_features <= AUTO_MAX_FEATURES and n_features < batch_size


def moment_sum(X, sample_weight=None):
    """``S = sum_i w_i x~_i x~_i^T`` with ``x~ = [x, 1]``, in float64; ``S[-1, -1]`` is
    the total weight, so ``S / S[-1, -1]`` is the second moment and sums of ``S`` over
    chunks of rows are the sum over all of them.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    ndarray of shape (n_features + 1, n_features + 1)
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, float)
    moment = np.zeros((n_features + 1, n_features + 1))
    with np.errstate(over="ignore", invalid="ignore"):
        if sparse.issparse(X):
            weighted = sparse.diags(weights) @ X
            moment[:-1, :-1] = (X.T @ weighted).toarray()
            moment[-1, :-1] = np.asarray(weighted.sum(axis=0)).ravel()
        else:
            # Chunks of float64 rows: no full copy of float32 X, and float64 sums.
            for rows in gen_batches(n_samples, _CHUNK_ROWS):
                chunk = np.asarray(X[rows], dtype=np.float64)
                weighted = chunk * weights[rows, None]
                moment[:-1, :-1] += weighted.T @ chunk
                moment[-1, :-1] += weighted.sum(axis=0)
    moment[:-1, -1] = moment[-1, :-1]
    moment[-1, -1] = weights.sum()
    return moment


def second_moment(X, sample_weight=None):
    """``C = sum_i w_i x~_i x~_i^T / sum_i w_i`` with ``x~ = [x, 1]``, in float64.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    ndarray of shape (n_features + 1, n_features + 1)
    """
    moment = moment_sum(X, sample_weight)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return moment / moment[-1, -1]


def preconditioner_from_moment(moment, ridge=PRECONDITIONER_RIDGE):
    """``P = J (J C J + ridge I)^{-1} J`` for ``C = moment / moment[-1, -1]`` (a second
    moment or a :func:`moment_sum`; the normalisation makes them the same) and
    ``J = diag(C)^{-1/2}`` (1 for an all-zero column); None where that is not finite
    (features beyond about 1e154 overflow the squares, or no weight yet: then training
    runs unpreconditioned).

    ``J C J`` has a unit diagonal, so the ridge is relative to each feature's own
    second moment, and features of any scale are preconditioned alike: with a ridge
    relative to the mean of all of them instead, features a thousand times smaller
    than the largest fell under the ridge, and on unscaled data (scales 1e-3 to 1e4)
    the fit stayed 1,500 times above the optimal loss, where this one reached it.

    Returns
    -------
    ndarray of shape (n_features + 1, n_features + 1), float64, or None
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        second = moment / moment[-1, -1]
        diagonal = np.diag(second).copy()
        diagonal[diagonal == 0] = 1.0
        inverse_root = 1.0 / np.sqrt(diagonal)
        correlation = second * inverse_root[:, None] * inverse_root[None, :]
    if not (np.all(np.isfinite(correlation)) and np.all(np.isfinite(inverse_root))):
        return None
    eigenvalues, eigenvectors = np.linalg.eigh(correlation)
    # The moment is positive semi-definite; rounding can leave eigenvalues of -1e-16.
    inverse = 1.0 / (np.maximum(eigenvalues, 0.0) + ridge)
    preconditioner = (eigenvectors * inverse) @ eigenvectors.T
    preconditioner *= inverse_root[:, None] * inverse_root[None, :]
    return np.ascontiguousarray(preconditioner)


def second_moment_preconditioner(X, sample_weight=None, ridge=PRECONDITIONER_RIDGE):
    """:func:`preconditioner_from_moment` of the rows of ``X``.

    Returns
    -------
    ndarray of shape (n_features + 1, n_features + 1), float64, or None
    """
    return preconditioner_from_moment(moment_sum(X, sample_weight), ridge)


def precondition(grad_coef, grad_intercept, preconditioner):
    """The direction ``[G, g_b] P``, split into its coef and intercept parts.

    Parameters
    ----------
    grad_coef : ndarray of shape (n_outputs, n_features)
    grad_intercept : ndarray of shape (n_outputs,)
    preconditioner : ndarray of shape (n_features + 1, n_features + 1)

    Returns
    -------
    direction_coef, direction_intercept : ndarray, in the gradient's dtype
    """
    augmented = np.hstack([grad_coef, grad_intercept[:, None]]).astype(np.float64)
    direction = (augmented @ preconditioner).astype(grad_coef.dtype, copy=False)
    return np.ascontiguousarray(direction[:, :-1]), np.ascontiguousarray(direction[:, -1])
