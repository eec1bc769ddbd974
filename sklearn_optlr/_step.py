# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The step math: loss, gradient, curvature and the optimal learning rate.

Pure functions on arrays, shared by the solver, the compiled kernels' tests and
the public :func:`optimal_learning_rate`. Notation (see the user guide):

- ``coef`` is ``W`` of shape ``(n_outputs, n_features)``, ``intercept`` is ``b``;
- ``z = X W^T + b``, ``e = sigma(z) - Y``, ``D = sigma'(z)`` (right-hand slopes);
- ``weights`` are the sample weights divided by their sum, so the batch loss is
  ``L = 1/2 sum_i w_i ||e_i||^2 + alpha/2 ||W||_F^2``.

Along a direction ``(dW, db)`` the model output moves by ``u_i = D_i (dW x_i + db)``.
Inside the current linear region the loss is exactly quadratic in the step, with
curvature ``sum_i w_i ||u_i||^2 + alpha ||dW||_F^2``, so the best step along ``d``
is ``-<g, d> / (d^T H d)``; for ``d = -g`` it is the seed's ``<g, g> / (g^T H g)``.
Everything costs O(M n_features n_outputs).

Every one of these quantities is a sum over rows, and :func:`block_statistics` computes
them for a block of rows as one record, :class:`BlockStatistics`: the numpy epochs take
their steps from it (a mini-batch is one block, the full batch another), and the records
of blocks add up to their union's (:func:`combine_blocks`).

Scale safety: ``<g, g> / (g^T H g)`` is a ratio of two quadratic forms in ``g``, so it
is the same for ``g / s``. The step math works on the direction divided by a power of
two ``s`` near its largest entry (:func:`scaled_direction`): its entries are below 1, so
neither ``X d^T`` nor its squares overflow or underflow when the features are of
magnitude 1e150 (or 1e30 in float32), and dividing by a power of two is exact, so at
ordinary scales every bit is as without it. Squares are summed in float64.
"""

import math
from dataclasses import dataclass, replace
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import _check_sample_weight, check_array, check_consistent_length

from ._activations import ACTIVATIONS, PiecewiseLinear, resolve_activation
from ._line_search import count_crossings, exact_line_search, loss_along, quadratic_step

__all__ = ["optimal_learning_rate"]


def forward(X, coef, intercept, activation):
    """Pre-activations, outputs and slopes of the network on a batch.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    coef : ndarray of shape (n_outputs, n_features)
    intercept : ndarray of shape (n_outputs,)
    activation : PiecewiseLinear

    Returns
    -------
    output : ndarray of shape (n_samples, n_outputs)
        ``sigma(X coef^T + intercept)``.
    slope : ndarray of shape (n_samples, n_outputs)
        ``sigma'`` at the pre-activations.
    """
    pre_activation = safe_sparse_dot(X, coef.T, dense_output=True) + intercept
    return activation.value_and_slope(pre_activation)


def power_of_two_scale(largest, min_exponent=-1021, max_exponent=1023):
    """A power of two ``s`` with ``largest / s`` in [0.5, 1), and ``1 / s``.

    Dividing by a power of two is exact, so results computed on ``v / s`` and scaled
    back are those computed on ``v`` to the bit, except that they do not overflow or
    underflow. ``largest`` zero or not finite gives ``(1.0, 1.0)``. The exponent is
    clipped to ``[min_exponent, max_exponent]`` so that ``s`` and ``1 / s`` are finite
    (the defaults suit float64). Plain Python, so the compiled kernels use it too.
    """
    if not (largest > 0.0 and math.isfinite(largest)):
        return 1.0, 1.0
    exponent = min(max(math.frexp(largest)[1], min_exponent), max_exponent)
    return math.ldexp(1.0, exponent), math.ldexp(1.0, -exponent)


def scaled_direction(direction_coef, direction_intercept):
    """The direction divided by a power of two ``s`` near its largest entry, and ``s``.

    Step lengths along ``d`` are ratios of forms in ``d`` (see the module docstring):
    ``<g, g> / (g^T H g)`` is the same for ``g / s``, and the step along ``d / s`` is
    ``s`` times the step along ``d``. A zero or non-finite direction is returned as is.

    Returns
    -------
    direction_coef, direction_intercept : ndarray
        Of the input dtype, entries of magnitude below 1.
    scale : float
        ``s``.
    """
    largest = np.maximum(
        np.abs(direction_coef).max(initial=0.0), np.abs(direction_intercept).max(initial=0.0)
    )
    info = np.finfo(direction_coef.dtype)
    scale, inverse = power_of_two_scale(float(largest), info.minexp + 1, info.maxexp - 1)
    if scale == 1.0:
        return direction_coef, direction_intercept, scale
    inverse = direction_coef.dtype.type(inverse)
    return direction_coef * inverse, direction_intercept * inverse, scale


def sum_of_squares(array):
    """``sum(array**2)`` accumulated in float64 (squares of 1e20 overflow float32)."""
    flat = np.ravel(array).astype(np.float64)
    return float(flat @ flat)


def inner(first, second):
    """``<first, second>`` of two arrays of one shape, accumulated in float64."""
    return float(np.ravel(first).astype(np.float64) @ np.ravel(second).astype(np.float64))


def check_sample_weight(sample_weight, X, dtype):
    """Validate sample weights, and rescale them so that the largest is in [0.5, 1).

    Only ratios of weights enter the loss, and the rescaling is by a power of two, so
    the model is the same to the bit; but weights of 1e308 no longer make their sum
    overflow, and float64 weights beyond float32's range still train a float32 model.
    Weights below ``2.2e-308`` times the largest (subnormal after the rescaling) are set
    to zero: a batch of them alone could not be normalised (1 / weight overflows).

    Returns
    -------
    ndarray of shape (n_samples,), of ``dtype``
    """
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    if not np.all(np.isfinite(sample_weight)):
        # scikit-learn's check skips this under sklearn.set_config(assume_finite=True).
        raise ValueError("sample_weight contains NaN or infinity.")
    largest = sample_weight.max()
    if not largest > 0:
        raise ValueError("sample_weight must have a positive sum; got all zeros.")
    sample_weight = sample_weight * power_of_two_scale(largest)[1]
    sample_weight[sample_weight < np.finfo(np.float64).tiny] = 0.0
    return sample_weight.astype(dtype, copy=False)


def normalised_weights(sample_weight, n_samples, dtype):
    """Sample weights scaled to sum to one (uniform when ``sample_weight`` is None)."""
    if sample_weight is None:
        return np.full(n_samples, 1.0 / n_samples, dtype=dtype)
    return (sample_weight / sample_weight.sum()).astype(dtype, copy=False)


def weight_unit(sample_weight, n_samples):
    """The mean of the positive sample weights, and how many there are.

    Returns
    -------
    unit : float
        1.0 when ``sample_weight`` is None.
    n_weighted : int
        The rows of positive weight (``n_samples`` when ``sample_weight`` is None).
    """
    if sample_weight is None:
        return 1.0, n_samples
    n_weighted = int(np.count_nonzero(sample_weight))
    return float(sample_weight.sum(dtype=np.float64)) / n_weighted, n_weighted


def batch_weights(sample_weight, batch_rows, unit, dtype):
    """A mini-batch's sample weights relative to the training rows' mean weight, and
    their sum: the batch's weight relative to the data's.

    A mini-batch's loss is its rows' loss normalised within the batch, penalty
    included, times the batch's relative weight: ``sum_i w_i ||e_i||^2 / 2 + r alpha
    ||W||^2 / 2`` with ``w_i = s_i / (m unit)`` summing to ``r``, where ``m`` counts the
    batch's rows of positive weight and ``unit`` is the mean positive weight of all
    the training rows. Averaged over the batches (by their rows ``m``) it is the
    weighted training objective, and its gradient is in proportion to the batch's
    weight: with a rate shared by the batches (the pooled or a fixed step) a batch of
    light rows moves the weights little, where weights normalised within each batch
    gave it the pull of any other (at batch size 1, the weights had no effect). The
    penalty takes the same factor, so that a light batch does not shrink ``W`` as a
    full one would, and the per-batch rules (``"optimal"``, ``"exact"``), which scaling
    a batch's loss does not change, take the steps they took before. Rows of weight 0
    count as absent.

    Parameters
    ----------
    sample_weight : ndarray of shape (n_rows,) or None
        The batch's weights; None for uniform ones.
    batch_rows : int
        The batch's rows of positive weight (all its rows when ``sample_weight`` is
        None), counted by the caller, which skips a batch with none.
    unit : float
        From :func:`weight_unit` on all the training rows.
    dtype : dtype

    Returns
    -------
    weights : ndarray of shape (n_rows,)
    relative : float
        Their sum, the factor of the batch's penalty (1.0 without sample weights).
    """
    if sample_weight is None:
        return np.full(batch_rows, 1.0 / batch_rows, dtype=dtype), 1.0
    norm = batch_rows * unit
    relative = float(sample_weight.sum(dtype=np.float64)) / norm
    return (sample_weight / norm).astype(dtype, copy=False), relative


def batch_loss(error, weights, coef, alpha):
    """``1/2 sum_i w_i ||e_i||^2 + alpha/2 ||W||_F^2``."""
    loss = 0.5 * float(weights @ np.einsum("ij,ij->i", error, error, dtype=np.float64))
    if alpha:
        loss += 0.5 * alpha * sum_of_squares(coef)
    return loss


def mean_prediction_losses(Y, weights):
    """``1/2 sum_i w_i (y_io - m_o)^2`` for each output ``o``: the loss of predicting
    the weighted mean ``m``, output by output.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_outputs)
    weights : ndarray of shape (n_samples,)
        Sample weights summing to one.

    Returns
    -------
    ndarray of shape (n_outputs,), float64
    """
    weights = weights.astype(np.float64)
    centred = Y - weights @ Y
    return 0.5 * (weights @ (centred * centred))


def backpropagate(error, slope, weights):
    """Per-sample residuals seen by the weights, ``w_i D_i e_i``, shape (n_samples, n_outputs)."""
    return (weights[:, None] * slope) * error


def gradient(X, backprop, coef, alpha):
    """Gradient of the batch loss from the back-propagated residuals.

    Returns
    -------
    grad_coef : ndarray of shape (n_outputs, n_features)
        ``sum_i w_i (D_i e_i) x_i^T + alpha W``: in ``X``'s dtype, or in float64 where
        float32 sums overflow.
    grad_intercept : ndarray of shape (n_outputs,)
        ``sum_i w_i D_i e_i``, in the same dtype.
    """
    # (X^T R)^T rather than R^T X: OpenBLAS runs the latter up to 12x slower for a
    # batch of thousands of rows and tens of outputs (measured, 4096 x 100, 50 outputs).
    with np.errstate(over="ignore", invalid="ignore"):
        grad_coef = np.asarray(safe_sparse_dot(X.T, backprop, dense_output=True)).T
    if X.dtype != np.float64 and not np.all(np.isfinite(grad_coef)):
        # Float32 features of 1e30 times residuals of 1e10 overflow float32's sums where
        # the gradient is a float64 number, as the compiled kernels accumulate it: summed
        # again in float64. The direction built from it is float64 too, so the products
        # along it run in float64, for such data only.
        backprop = backprop.astype(np.float64)
        grad_coef = np.asarray(safe_sparse_dot(X.T, backprop, dense_output=True)).T
    if alpha:
        grad_coef += alpha * coef
    # einsum sums the rows in one pass; ndarray.sum(axis=0) over a C-ordered array of a
    # few columns loops row by row, at several times the cost of the pass.
    return grad_coef, np.einsum("ij->j", backprop)


def preactivation_change(X, direction_coef, direction_intercept):
    """Directional derivative of the pre-activations, ``dW x_i + db``, shape
    (n_samples, n_outputs)."""
    return safe_sparse_dot(X, direction_coef.T, dense_output=True) + direction_intercept


def curvature(change, weights, direction_coef, alpha):
    """Second derivative of the batch loss along a direction,
    ``sum_i w_i ||u_i||^2 + alpha ||dW||^2``.

    Accumulated in float64; the direction should be scaled (:func:`scaled_direction`).
    """
    value = float(weights @ np.einsum("ij,ij->i", change, change, dtype=np.float64))
    if alpha:
        value += alpha * sum_of_squares(direction_coef)
    return value


@dataclass(frozen=True)
class BlockStatistics:
    """Everything a step needs from a block of rows at the current weights.

    A block is any set of rows: a mini-batch, the full batch, or a part of either.
    The loss, the gradient and, along a direction ``d``, the curvature and the slope
    are sums over the block's rows, so the records of a partition's blocks add up to
    the whole's (:func:`combine_blocks`): the full batch is one block or the sum of
    several, as a dask or GPU path would map :func:`block_statistics` over blocks and
    reduce. The penalty is shared out like the rows: each block is charged its part
    ``alpha`` (the data's ``alpha`` times the block's share of the weight), and the
    parts add up to the whole's.

    Attributes
    ----------
    loss : float
        ``1/2 sum_i w_i ||e_i||^2 + alpha/2 ||W||_F^2``.
    grad_coef : ndarray of shape (n_outputs, n_features)
        ``sum_i w_i (D_i e_i) x_i^T + alpha W``.
    grad_intercept : ndarray of shape (n_outputs,)
        ``sum_i w_i D_i e_i``.
    data_gradient : bool
        Whether the rows contribute to the gradient (some unit active with a non-zero
        error); where none does, only the penalty would move the weights.
    alpha : float
        The block's part of the penalty.
    pre_activation, derivative, error : ndarray of shape (n_rows, n_outputs)
        The units' ``z``, ``sigma'(z)`` (right-hand) and ``sigma(z) - y``.
    target : ndarray of shape (n_rows, n_outputs)
    weights : ndarray of shape (n_rows,)
    change : ndarray of shape (n_rows, n_outputs) or None
        Along a direction (:meth:`along`): ``v_i = dW x_i + db``, the change of ``z``
        per unit step, from which the exact line search finds the kink crossings
        (with ``pre_activation``, ``target``, ``weights`` and ``alpha``: see
        :func:`exact_line`).
    curvature : float or None
        Along a direction: ``d^T H d = sum_i w_i ||D_i v_i||^2 + alpha ||dW||_F^2``.
    slope : float or None
        Along a direction: ``<g, d>``.
    """

    loss: float
    grad_coef: np.ndarray
    grad_intercept: np.ndarray
    data_gradient: bool
    alpha: float
    pre_activation: np.ndarray
    derivative: np.ndarray
    error: np.ndarray
    target: np.ndarray
    weights: np.ndarray
    change: np.ndarray = None
    curvature: float = None
    slope: float = None

    def along(self, X, direction_coef, direction_intercept, *, second_order=True):
        """The record with the slope along ``d``, and with ``second_order`` the change
        of the units and the curvature along ``d`` (one product with the block's rows).

        ``X`` is the block's rows. Accumulated in float64; the direction should be scaled
        (:func:`scaled_direction`) so that its squares neither overflow nor underflow.
        """
        slope = inner(self.grad_coef, direction_coef)
        slope += inner(self.grad_intercept, direction_intercept)
        if not second_order:
            return replace(self, slope=slope)
        change = preactivation_change(X, direction_coef, direction_intercept)
        second = curvature(self.derivative * change, self.weights, direction_coef, self.alpha)
        return replace(self, change=change, curvature=second, slope=slope)


def block_statistics(
    X, Y, weights, coef, intercept, activation, alpha=0.0, direction=None, *, pre_activation=None
):
    """The :class:`BlockStatistics` of a block of rows at ``(coef, intercept)``.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_rows, n_features)
    Y : ndarray of shape (n_rows, n_outputs)
    weights : ndarray of shape (n_rows,)
        The rows' weights as the loss takes them: the data's normalised weights in a
        block of the full batch (:func:`normalised_weights`), a mini-batch's from
        :func:`batch_weights`.
    coef : ndarray of shape (n_outputs, n_features)
    intercept : ndarray of shape (n_outputs,)
    activation : PiecewiseLinear
    alpha : float, default=0.0
        The block's part of the penalty (see :class:`BlockStatistics`).
    direction : (ndarray, ndarray) or None, default=None
        ``(dW, db)``, for the change, curvature and slope along it (:meth:`~BlockStatistics.along`).
        None where the direction is built from this record's gradient: add it with
        :meth:`~BlockStatistics.along` then, without a second forward pass.
    pre_activation : ndarray of shape (n_rows, n_outputs) or None, default=None
        ``X coef^T + intercept`` where the caller keeps it (the full batch updates it
        along each step's change); computed here otherwise.

    Returns
    -------
    BlockStatistics
    """
    if pre_activation is None:
        pre_activation = preactivation_change(X, coef, intercept)
    output, derivative = activation.value_and_slope(pre_activation)
    error = output - Y
    backprop = backpropagate(error, derivative, weights)
    grad_coef, grad_intercept = gradient(X, backprop, coef, alpha)
    record = BlockStatistics(
        loss=batch_loss(error, weights, coef, alpha), grad_coef=grad_coef,
        grad_intercept=grad_intercept, data_gradient=bool(np.any(backprop)), alpha=alpha,
        pre_activation=pre_activation, derivative=derivative, error=error, target=Y,
        weights=weights,
    )  # fmt: skip
    return record if direction is None else record.along(X, *direction)


def combine_blocks(records):
    """The record of the union of disjoint blocks' rows, from theirs.

    The reduction a blocked evaluation needs (X in row blocks, as dask arrays hold it);
    the solver's own paths evaluate one block a step.

    The sums add (the loss, the gradient, the penalty's parts, the curvature and slope
    along a direction that every block was given), and the units are stacked in the
    blocks' order: the exact line search along the combined record is the whole's.
    """
    records = list(records)
    along = all(record.slope is not None for record in records)
    second_order = along and all(record.change is not None for record in records)

    def total(name):
        return sum(getattr(record, name) for record in records)

    def stacked(name):
        return np.concatenate([getattr(record, name) for record in records])

    return BlockStatistics(
        loss=total("loss"), grad_coef=total("grad_coef"), grad_intercept=total("grad_intercept"),
        data_gradient=any(record.data_gradient for record in records), alpha=total("alpha"),
        pre_activation=stacked("pre_activation"), derivative=stacked("derivative"),
        error=stacked("error"), target=stacked("target"), weights=stacked("weights"),
        change=stacked("change") if second_order else None,
        curvature=total("curvature") if second_order else None,
        slope=total("slope") if along else None,
    )  # fmt: skip


@validate_params(
    {
        "coef": ["array-like"],
        "intercept": ["array-like", Real],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS)), PiecewiseLinear],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "sample_weight": ["array-like", None],
        "alpha": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def optimal_learning_rate(
    coef, intercept, X, y, *, activation="relu", negative_slope=0.01, sample_weight=None, alpha=0.0
):
    r"""The optimal learning rate of one gradient step on one batch.

    For the network :math:`\hat y = \sigma(W x + b)` with a piecewise-linear
    :math:`\sigma` and the (weighted) squared loss

    .. math::

        L(W, b) = \frac{1}{2 S} \sum_i s_i \lVert \sigma(W x_i + b) - y_i \rVert^2
                  + \frac{\alpha}{2} \lVert W \rVert_F^2, \qquad S = \sum_i s_i,

    the loss is exactly quadratic inside the current linear region, so the step
    :math:`a` minimising :math:`L(\theta - a g)` there is

    .. math::

        a^* = \frac{\langle g, g \rangle}{g^\top H g}
            = \frac{\lVert G_W \rVert_F^2 + \lVert g_b \rVert^2}
                   {\frac{1}{S}\sum_i s_i \lVert D_i (G_W x_i + g_b) \rVert^2
                    + \alpha \lVert G_W \rVert_F^2},

    computed in O(M n_features n_outputs) rather than with the O(M^3) sums of
    the original derivation [1]_.

    Parameters
    ----------
    coef : array-like of shape (n_outputs, n_features) or (n_features,)
        The weights ``W``, shaped as ``OptimalLRRegressor.coef_``.
    intercept : array-like of shape (n_outputs,) or float
        The biases ``b``, shaped as ``OptimalLRRegressor.intercept_``.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The batch.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The targets; 1-D when ``coef`` is 1-D.
    activation : str or PiecewiseLinear, default="relu"
        The activation :math:`\sigma`: one of ``"identity"``, ``"relu"``,
        ``"leaky_relu"``, ``"abs"``, ``"hard_tanh"``, or a :class:`PiecewiseLinear`.
        Its derivative at a knot is the right-hand slope.
    negative_slope : float, default=0.01
        Slope below zero of ``"leaky_relu"``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights :math:`s_i`, read as frequencies: an integer weight
        gives the same rate as repeating the row.
    alpha : float, default=0.0
        L2 penalty strength.

    Returns
    -------
    float
        :math:`a^*`, or 0.0 when the gradient is zero (for instance every unit
        inactive on the batch): there is then no direction to step along.

    See Also
    --------
    OptimalLRRegressor : The estimator; with ``solver="gd"``, ``step="optimal"``,
        ``precondition=False`` and ``average=False`` it takes this step at every update.

    Notes
    -----
    With one sample and an active ReLU unit the rate is :math:`1 / (1 + x^\top x)`,
    the normalised-LMS (Kaczmarz) step.

    References
    ----------
    .. [1] "Optimal learning rates in a special class of fully-connected neural
       networks: The single-layer case", blog post, 2024-08-22.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_optlr import optimal_learning_rate
    >>> x = np.array([[1.0, 2.0]])
    >>> optimal_learning_rate(np.array([0.5, 0.5]), 0.0, x, np.array([0.0]))
    0.16666666666666666
    """
    X = check_array(X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], input_name="X")
    dtype = X.dtype
    coef = check_array(coef, ensure_2d=False, allow_nd=True, dtype=dtype, input_name="coef")
    single_output = coef.ndim == 1
    coef2d = coef.reshape(1, -1) if single_output else coef
    if coef2d.ndim != 2 or coef2d.shape[1] != X.shape[1]:
        raise ValueError(
            f"coef must have shape (n_outputs, n_features) or (n_features,) with "
            f"n_features={X.shape[1]} matching X; got shape {coef.shape}."
        )
    n_outputs = coef2d.shape[0]
    scalar_intercept = np.ndim(intercept) == 0
    intercept = check_array(
        np.atleast_1d(intercept),
        ensure_2d=False,
        allow_nd=True,
        dtype=dtype,
        input_name="intercept",
    )
    if scalar_intercept:
        intercept = np.full(n_outputs, intercept[0], dtype=dtype)
    if intercept.shape != (n_outputs,):
        raise ValueError(
            f"intercept must have shape ({n_outputs},) to match coef; got {intercept.shape}."
        )
    y = check_array(y, ensure_2d=False, dtype=dtype, input_name="y")
    Y = y.reshape(-1, 1) if y.ndim == 1 else y
    if Y.shape[1] != n_outputs:
        raise ValueError(f"y has {Y.shape[1]} outputs but coef has {n_outputs}.")
    check_consistent_length(X, Y)
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, X, dtype)
    weights = normalised_weights(sample_weight, X.shape[0], dtype)
    activation = resolve_activation(activation, negative_slope)
    # float(): an np.float32 alpha would pull float64 sums down to float32 (numpy 2).
    block = block_statistics(X, Y, weights, coef2d, intercept, activation, float(alpha))
    *direction, scale = scaled_direction(-block.grad_coef, -block.grad_intercept)
    block = block.along(X, *direction)
    return quadratic_step(block.slope / scale, block.curvature)


def unit_targets(Y, weights):
    """Each unit's target and weight, flattened as a line's units are, in float64: a
    caller that searches along many lines through the same rows keeps them."""
    y = np.ravel(Y).astype(np.float64, copy=False)
    return y, np.repeat(weights.astype(np.float64, copy=False), Y.shape[1])


def line_units(pre_activation, change, targets, activation, coef, direction_coef, alpha):
    """The line ``theta + a d`` as :func:`._line_search.loss_along` takes it.

    Parameters
    ----------
    pre_activation, change : ndarray of shape (n_samples, n_outputs)
        As in :func:`exact_line_step`; flattened without a copy in their own dtype
        (``loss_along`` compiles once per dtype, and a float32 fit's units are not
        converted for every loss it checks).
    targets : tuple of two ndarrays
        :func:`unit_targets` of the rows.
    activation, coef, direction_coef, alpha
        As in :func:`exact_line_step`.

    Returns
    -------
    tuple
        ``(z, v, y, w, count, knots, values, slopes, penalty)`` (see
        :mod:`._line_search`): the activation's arrays built once here, and the penalty
        ``alpha/2 ||W + a dW||^2`` as ``(c0, c1, c2)``.
    """
    z, v = np.ravel(pre_activation), np.ravel(change)
    knots, values, slopes = activation.knots, activation.values, activation.slopes
    penalty = (0.0, 0.0, 0.0)
    if alpha:
        penalty = (
            0.5 * alpha * sum_of_squares(coef),
            alpha * inner(coef, direction_coef),
            alpha * sum_of_squares(direction_coef),
        )
    return z, v, *targets, z.size, knots, values, slopes, penalty


def exact_line(
    pre_activation, change, Y, weights, activation, coef, direction_coef, alpha, bound=np.inf,
    *, targets=None,
):  # fmt: skip
    """The line ``theta + a d`` as :func:`._line_search.step_length` and
    :func:`._line_search.exact_line_search` take it, with scratch for its kink crossings.

    Parameters are those of :func:`exact_line_step`, ``bound``, the longest step
    searched, and ``targets``, :func:`unit_targets` of ``Y`` and ``weights`` where the
    caller keeps them.

    Returns
    -------
    tuple
        :func:`line_units`' tuple, its units in float64 (the search compiles once),
        followed by ``(bound, event_step, event_delta)`` (see :mod:`._line_search`).
    """
    z = np.ravel(pre_activation).astype(np.float64, copy=False)
    v = np.ravel(change).astype(np.float64, copy=False)
    targets = unit_targets(Y, weights) if targets is None else targets
    units = line_units(z, v, targets, activation, coef, direction_coef, alpha)
    bound = float(bound)
    if not bound >= 0.0:
        raise ValueError(f"The line search's bound must be a step of at least 0; got {bound}.")
    n_events = count_crossings(z, v, z.size, activation.knots, bound)
    event_step, event_delta = np.empty(n_events + 1), np.empty((5, n_events + 1))
    return *units, bound, event_step, event_delta


def exact_line_step(pre_activation, change, Y, weights, activation, coef, direction_coef, alpha):
    """Exact minimiser of the batch loss along a direction, over steps ``a >= 0``.

    Along ``theta + a d`` every pre-activation moves linearly, ``z_io + a v_io``, so
    the loss is piecewise quadratic in ``a``; :func:`._line_search.exact_line_search`
    finds its minimum in O(B log B) for the B kink crossings.

    Parameters
    ----------
    pre_activation : ndarray of shape (n_samples, n_outputs)
        ``z`` at the current weights.
    change : ndarray of shape (n_samples, n_outputs)
        ``v = dW x + db``, the change of ``z`` per unit step along the direction.
    Y : ndarray of shape (n_samples, n_outputs)
    weights : ndarray of shape (n_samples,)
        Sample weights: summing to one in full batch, to the batch's relative weight
        in a mini-batch (:func:`batch_weights`).
    activation : PiecewiseLinear
    coef, direction_coef : ndarray of shape (n_outputs, n_features)
        ``W`` and ``dW``, for the penalty ``alpha/2 ||W + a dW||^2``.
    alpha : float

    Returns
    -------
    step : float
        The minimising ``a`` (0.0 when no step lowers the loss).
    loss : float
        The batch loss there, evaluated directly.
    """
    line = exact_line(pre_activation, change, Y, weights, activation, coef, direction_coef, alpha)
    step = exact_line_search(*line)
    return step, loss_along(step, *line[:9])
