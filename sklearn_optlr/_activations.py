# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Piecewise-linear activation functions, represented by their knots.

Every activation, built in or user-given, is a :class:`PiecewiseLinear`: a sorted
array of knots, the function's values there, and one slope per piece. One
representation lets one solver (and one compiled kernel) serve them all, and its
second derivative is zero away from the knots, which is what makes the optimal
learning rate exact inside a linear region.
"""

import math
import numbers

import numpy as np

from ._line_search import near_knots

__all__ = [
    "PiecewiseLinear",
    "ACTIVATIONS",
    "initial_intercept",
    "on_knots",
    "resolve_activation",
    "unit_slope_form",
]


def _as_finite_vector(values, name):
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"PiecewiseLinear: {name} must be real numbers; got {values!r}.") from exc
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"PiecewiseLinear: {name} must be a non-empty 1-D sequence; got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"PiecewiseLinear: {name} must be finite; got {array.tolist()}.")
    return array


def _as_finite_scalar(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"PiecewiseLinear: {name} must be a real number; got {value!r}.")
    if not np.isfinite(value):
        raise ValueError(f"PiecewiseLinear: {name} must be finite; got {value!r}.")
    return float(value)


class PiecewiseLinear:
    """A continuous piecewise-linear activation function.

    The function passes through the points ``(x[k], y[k])``, is linear between
    consecutive knots, and is extended beyond the first and last knot with
    ``left_slope`` and ``right_slope``.

    Parameters
    ----------
    x : array-like of shape (n_knots,)
        Knot positions, finite and strictly increasing. At least one knot.
    y : array-like of shape (n_knots,)
        Function values at the knots, finite.
    left_slope : float
        Slope for inputs below ``x[0]``.
    right_slope : float
        Slope for inputs at or above ``x[-1]``.

    Attributes
    ----------
    knots : ndarray of shape (n_knots,)
        The knot positions, as float64.
    values : ndarray of shape (n_knots,)
        The function values at the knots.
    slopes : ndarray of shape (n_knots + 1,)
        The slope of each piece, from left to right: ``slopes[0]`` is
        ``left_slope``, ``slopes[k]`` the slope on ``[x[k-1], x[k])``,
        ``slopes[-1]`` is ``right_slope``.

    See Also
    --------
    OptimalLRRegressor : The estimator, which takes one as ``activation``.
    optimal_learning_rate : The optimal step for a batch, for any activation.

    Notes
    -----
    At a knot the derivative is taken to be the **right-hand** slope, the slope
    of the piece that starts there. So ``relu`` has derivative 1 at 0.

    Instances are immutable, compare equal when their knots and slopes are
    equal, hash, pickle and deep-copy, so they can be used as values in a
    parameter grid and survive :func:`sklearn.base.clone`.

    Examples
    --------
    A ReLU capped at 6 ("ReLU6"):

    >>> from sklearn_optlr import PiecewiseLinear
    >>> relu6 = PiecewiseLinear(x=[0.0, 6.0], y=[0.0, 6.0], left_slope=0.0, right_slope=0.0)
    >>> relu6([-1.0, 3.0, 10.0])
    array([0., 3., 6.])
    >>> relu6.derivative([-1.0, 3.0, 10.0])
    array([0., 1., 0.])
    """

    __slots__ = ("_x", "_y", "_left_slope", "_right_slope", "_arrays")

    def __init__(self, x, y, left_slope, right_slope):
        knots = _as_finite_vector(x, "x")
        values = _as_finite_vector(y, "y")
        if knots.shape != values.shape:
            raise ValueError(
                f"PiecewiseLinear: x and y must have the same length; got {knots.size} knots "
                f"and {values.size} values."
            )
        if np.any(np.diff(knots) <= 0):
            raise ValueError(
                f"PiecewiseLinear: x must be strictly increasing; got {knots.tolist()}."
            )
        self._x = tuple(knots.tolist())
        self._y = tuple(values.tolist())
        left, right = (_as_finite_scalar(left_slope, "left_slope"),
                       _as_finite_scalar(right_slope, "right_slope"))  # fmt: skip
        # The knots, values and slopes as arrays, made once: a fit reads them a dozen
        # times, and on small data rebuilding them was a tenth of its time. Knots too
        # close for float64 overflow the slopes here; the check below refuses them.
        knots, values = np.array(self._x), np.array(self._y)
        with np.errstate(over="ignore", divide="ignore"):
            slopes = np.concatenate(([left], np.diff(values) / np.diff(knots), [right]))
        self._arrays = (knots, values, slopes)
        self._left_slope = left
        self._right_slope = right  # last: from here on the instance is immutable
        # Differences of finite knots can still overflow (e.g. 1e308 and -1e308).
        if not np.all(np.isfinite(slopes)):
            raise ValueError(
                "PiecewiseLinear: the slopes between consecutive knots are not finite; "
                "the knots are too far apart or too close for float64."
            )

    # Immutable: the representation is derived once from the constructor arguments.
    def __setattr__(self, name, value):
        if hasattr(self, "_right_slope"):
            raise AttributeError("PiecewiseLinear is immutable; create a new instance instead.")
        object.__setattr__(self, name, value)

    def __reduce__(self):
        return (type(self), (list(self._x), list(self._y), self._left_slope, self._right_slope))

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    # Copies of the arrays made once: mutating them cannot change the function.
    @property
    def knots(self):
        return self._arrays[0].copy()

    @property
    def values(self):
        return self._arrays[1].copy()

    @property
    def slopes(self):
        return self._arrays[2].copy()

    def _key(self):
        return (self._x, self._y, self._left_slope, self._right_slope)

    def __eq__(self, other):
        if not isinstance(other, PiecewiseLinear):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return (
            f"PiecewiseLinear(x={list(self._x)}, y={list(self._y)}, "
            f"left_slope={self._left_slope}, right_slope={self._right_slope})"
        )

    def value_and_slope(self, z):
        """Evaluate the function and its (right-hand) derivative.

        Parameters
        ----------
        z : ndarray
            Pre-activations, any shape. Float32 input gives float32 output.

        Returns
        -------
        value : ndarray
            ``sigma(z)``, same shape as ``z``.
        slope : ndarray
            ``sigma'(z)``, the slope of the piece each entry lies in.
        """
        z = np.asarray(z)
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float64)
        dtype = z.dtype.type
        if len(self._x) == 1:
            # The common case (relu, leaky relu, abs, identity): one comparison, no search.
            knot, value_at_knot = dtype(self._x[0]), dtype(self._y[0])
            # A lookup in the two slopes by the comparison's bytes (numpy's booleans are
            # 0 or 1): np.where with scalar choices is several times slower.
            slopes = np.array([self._left_slope, self._right_slope], dtype=dtype)
            slope = slopes.take(np.asarray(z >= knot).view(np.int8))
            # z - 0 is z to the bit (z - (-0) is not, for z = -0), so the usual knot at
            # zero skips a pass.
            at_zero = knot == 0 and not np.signbit(knot)
            value = slope * (z if at_zero else z - knot)
            value += value_at_knot
            return value, slope
        knots = self.knots.astype(dtype)
        piece = np.searchsorted(knots, z, side="right")
        slope = self.slopes.astype(dtype)[piece]
        anchor = np.maximum(piece - 1, 0)
        return self.values.astype(dtype)[anchor] + slope * (z - knots[anchor]), slope

    def __call__(self, z):
        """Evaluate the function element-wise.

        Parameters
        ----------
        z : array-like
            Pre-activations, any shape (their dtype as in :meth:`value_and_slope`).

        Returns
        -------
        ndarray
            ``sigma(z)``, same shape as ``z``.
        """
        return self.value_and_slope(z)[0]

    def derivative(self, z):
        """Evaluate the right-hand derivative element-wise.

        It is the slope that :meth:`value_and_slope` returns.

        Parameters
        ----------
        z : array-like
            Where to take the slope, as :meth:`__call__` takes it.

        Returns
        -------
        ndarray
            ``sigma'(z)``, same shape as ``z``: at a knot, the slope of the piece that
            starts there.
        """
        return self.value_and_slope(z)[1]

    def _steepest_piece(self):
        """``(start, end, slope)`` of the steepest piece nearest to 0, after merging
        neighbouring pieces of equal slope (so identity is one piece around 0)."""
        slopes = self.slopes
        bounds = np.concatenate(([-np.inf], self.knots, [np.inf]))
        keep = np.concatenate(([True], slopes[1:] != slopes[:-1]))
        starts = bounds[:-1][keep]
        ends = np.append(starts[1:], np.inf)
        slopes = slopes[keep]
        steepest = np.flatnonzero(np.abs(slopes) == np.abs(slopes).max())
        distance = np.maximum(np.maximum(starts[steepest], 0.0), np.maximum(-ends[steepest], 0.0))
        piece = steepest[np.argmin(distance)]
        return float(starts[piece]), float(ends[piece]), float(slopes[piece])

    def _anchor(self):
        """The point of the steepest piece that a start's depth is measured from: its
        one finite end, or where the piece is nearest to 0 (0 itself on a piece with
        no end or two)."""
        start, end, _ = self._steepest_piece()
        if np.isfinite(start) != np.isfinite(end):
            return start if np.isfinite(start) else end
        return float(np.clip(0.0, start, end))

    def steep_point(self, depth=1.0):
        """A pre-activation ``depth`` inside the steepest piece.

        Starting every unit here keeps it alive (non-zero slope) whatever the data,
        which is how the solver initialises the intercept (with a ``depth`` from the
        targets' scale: see :func:`initial_intercept`).

        Parameters
        ----------
        depth : float, default=1.0
            How far inside the piece, from its end: at most half its width.

        Returns
        -------
        float
            On a piece with one end (ReLU's), ``depth`` from that end, so that the point
            moves with the knot and scales with ``depth``: the same start relative to
            the kink, wherever the kink is. On a piece with two ends, the point nearest
            to 0 at least ``depth`` (or half the width) from both; on one with none
            (identity), 0.
        """
        start, end, _ = self._steepest_piece()
        if np.isfinite(start) != np.isfinite(end):
            return float(start + depth if np.isfinite(start) else end - depth)
        margin = min(depth, (end - start) / 2)
        return float(np.clip(0.0, start + margin, end - margin))

    @property
    def is_homogeneous(self):
        """Whether ``sigma(c z) = c sigma(z)`` for every ``c > 0``.

        So it is when every knot, and the value there, is 0: identity, ReLU, leaky
        ReLU and abs, not hard_tanh.
        """
        return bool(np.all(self.knots == 0.0) and np.all(self.values == 0.0))


#: A pre-activation this close to a knot, relative to the spread of its output's
#: pre-activations plus the knot's size, counts as on the knot for :func:`on_knots`.
#: A line search that stops at a kink leaves the unit on it up to the rounding of the
#: step (about 1e-16 relative; the solver's cached pre-activations drift by a few more
#: units between refreshes). A generous margin costs little: it only holds a few more
#: units in place in a direction whose step is then searched on the true loss. Not a
#: rounding bound of :mod:`._rounding`, which would be as tight as the rounding itself:
#: a margin on positions, where missing a unit on a knot stalls the fit and holding one
#: that is not costs nothing, so it stays 1e-9 (about ``2**22 eps``), far above them.
KNOT_TOLERANCE = 1e-9


def on_knots(activation, pre_activation):
    """Which units sit on a knot, within :data:`KNOT_TOLERANCE`.

    Parameters
    ----------
    activation : PiecewiseLinear
    pre_activation : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    ndarray of bool, shape (n_samples, n_outputs)
    """
    # The knots as the units' dtype has them: a float32 unit on the knot 0.1 sits on
    # float32's 0.1, off float64's by more than the tolerance.
    knots = activation.knots.astype(pre_activation.dtype).astype(np.float64)
    z = np.ascontiguousarray(pre_activation, dtype=np.float64)
    out = np.empty(z.shape, dtype=bool)
    near_knots(z, knots, KNOT_TOLERANCE, out)
    return out


def initial_intercept(activation, Y, weights):
    """Where the intercepts start: inside the steepest piece, as deep as the targets
    lie from the activation's value there.

    With ``W = 0`` every row's pre-activation is ``b``. Each output's ``b`` is the
    :meth:`PiecewiseLinear.steep_point` at depth ``d = rms(y - v) / |s|``, with ``s``
    the steepest piece's slope and ``v`` the activation's value where that depth is
    measured from (ReLU's kink): the start's output then lies about as far from ``v``
    as the targets do, and the first steps, which move the outputs by about the
    targets' size, leave most units on the piece. A depth fixed in pre-activation
    units instead kills every unit where the targets are small next to it (ReLU on
    targets of size 1e-4) or the slope is steep (ReLU times 100): the first steps
    overshoot the kink. Targets all equal to ``v`` start on the piece's end (ReLU's
    all-zero output at 0, which fits it).

    As the optimal steps are equivariant, so are the fits that start here:

    - ``c sigma`` (``c > 0``) on ``y`` is fitted as ``sigma`` on ``y / c``, with the
      same weights, whatever ``sigma`` (both ``v`` and ``s`` scale by ``c``);
    - where ``c sigma`` is the same model as ``sigma``, ``c sigma(z) = sigma(k + c (z -
      k))`` for a single knot ``k`` of value 0 (ReLU, leaky ReLU, abs, identity,
      shifted or not), the fit with ``c sigma`` is the fit with ``sigma``, its
      pre-activations mapped likewise (``W`` and ``b - k`` divided by ``c``);
    - a homogeneous ``sigma`` on ``c y`` fits ``c`` times the model on ``y``, and
      ``sigma + t`` on ``y + t`` fits the model of ``sigma`` on ``y``.

    Parameters
    ----------
    activation : PiecewiseLinear
    Y : ndarray of shape (n_samples, n_outputs)
        The targets, whose root mean square about ``v`` sets the depth.
    weights : ndarray of shape (n_samples,)
        The weights of that mean: the sample weights, summing to one.

    Returns
    -------
    ndarray of shape (n_outputs,), float64
        Each output's starting ``b``.
    """
    slope = activation._steepest_piece()[2]
    reference = float(activation(activation._anchor()))
    # Halved, so that targets and v of 1e308 and opposite signs do not overflow; the root
    # mean square has the largest distance factored out, since squares of 1e200 overflow.
    distance = np.abs(0.5 * Y.astype(np.float64) - 0.5 * reference)
    largest = np.max(distance, axis=0)
    ratio = distance / np.where(largest > 0, largest, 1.0)
    spread = 2.0 * largest * np.sqrt(weights.astype(np.float64) @ (ratio * ratio))
    # A constant activation (every slope 0) fits nothing whatever the start.
    depth = spread / abs(slope) if slope != 0 else np.ones_like(spread)
    return np.array([activation.steep_point(each) for each in depth])


def unit_slope_form(activation, dtype=np.float64):
    """The activation reparametrised so that its steepest slope is between 1 and 2.

    ``sigma(z) = tau(s z)``, where ``tau`` has the knots times ``s``, the same values and
    the slopes over ``s``, and ``s`` is the power of two with ``s <= max |slope| < 2 s``.
    So ``sigma(W x + b)`` is ``tau(W' x + b')`` with ``W' = s W`` and ``b' = s b``: the
    same model, the same loss, and, since the factor is a power of two, the same numbers
    to the bit wherever nothing overflows. The solver trains in these units: its scale
    safety divides by the sizes of the features, the residuals and the gradient, but a
    slope of 1e200 squared (in the curvature) overflowed at any weights.

    Parameters
    ----------
    activation : PiecewiseLinear
    dtype : numpy floating type, default=np.float64
        The training data's, whose range the knots times ``s`` must stay in.

    Returns
    -------
    tau : PiecewiseLinear
        ``activation`` itself where ``s`` is 1 (every built-in one).
    scale : float
        ``s``, at most what keeps the knots times ``s`` finite in ``dtype``.
    """
    steepest = float(np.abs(activation.slopes).max())
    if steepest == 0.0:
        return activation, 1.0
    exponent = math.frexp(steepest)[1] - 1
    widest = float(np.abs(activation.knots).max())
    if widest > 0.0:
        exponent = min(exponent, np.finfo(dtype).maxexp - 1 - math.frexp(widest)[1])
    if exponent == 0:
        return activation, 1.0
    scale, inverse = math.ldexp(1.0, exponent), math.ldexp(1.0, -exponent)
    slopes = activation.slopes
    tau = PiecewiseLinear(
        activation.knots * scale, activation.values, slopes[0] * inverse, slopes[-1] * inverse
    )
    return tau, scale


def _identity(negative_slope):
    return PiecewiseLinear([0.0], [0.0], 1.0, 1.0)


def _relu(negative_slope):
    return PiecewiseLinear([0.0], [0.0], 0.0, 1.0)


def _leaky_relu(negative_slope):
    return PiecewiseLinear([0.0], [0.0], negative_slope, 1.0)


def _abs(negative_slope):
    return PiecewiseLinear([0.0], [0.0], -1.0, 1.0)


def _hard_tanh(negative_slope):
    return PiecewiseLinear([-1.0, 1.0], [-1.0, 1.0], 0.0, 0.0)


#: The built-in activations, keyed by the strings users pass as ``activation``.
#: Each factory takes ``negative_slope`` (used by ``"leaky_relu"`` only).
ACTIVATIONS = {
    "identity": _identity,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "abs": _abs,
    "hard_tanh": _hard_tanh,
}


def resolve_activation(activation, negative_slope=0.01):
    """Turn an ``activation`` parameter into a :class:`PiecewiseLinear`.

    Parameters
    ----------
    activation : str or PiecewiseLinear
        One of the keys of :data:`ACTIVATIONS`, or a custom function.
    negative_slope : float, default=0.01
        Slope below zero of ``"leaky_relu"``.

    Returns
    -------
    PiecewiseLinear
    """
    if isinstance(activation, PiecewiseLinear):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation](negative_slope)
    raise ValueError(
        f"Unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)} "
        "or a PiecewiseLinear instance."
    )
