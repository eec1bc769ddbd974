# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Activations: closed forms, the right-hand derivative convention, and the value semantics
(validation, equality, pickling, cloning) that let a PiecewiseLinear sit in a parameter grid."""

import copy
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear
from sklearn_optlr._activations import ACTIVATIONS, on_knots, resolve_activation

NEGATIVE_SLOPE = 0.2

# Closed forms written independently of the knot representation.
CLOSED_FORMS = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z >= 0, z, NEGATIVE_SLOPE * z),
    "abs": np.abs,
    "hard_tanh": lambda z: np.clip(z, -1.0, 1.0),
}

# Right-hand slopes: at a knot, the slope of the piece that starts there.
RIGHT_SLOPES = {
    "identity": lambda z: np.ones_like(z),
    "relu": lambda z: (z >= 0).astype(float),
    "leaky_relu": lambda z: np.where(z >= 0, 1.0, NEGATIVE_SLOPE),
    "abs": lambda z: np.where(z >= 0, 1.0, -1.0),
    "hard_tanh": lambda z: ((z >= -1) & (z < 1)).astype(float),
}

# Multiples of 1/4 hit every built-in knot (-1, 0, 1) exactly and stay at least 1/4 from the
# next knot, so a one-sided difference with H << 1/4 never straddles two kinks.
GRID = np.arange(-12, 13) / 4.0
H = 1e-4

# Three knots, a falling left tail and a rising right tail: nothing a built-in covers.
CUSTOM_KNOTS = [-1.0, 0.5, 2.0]
CUSTOM_VALUES = [-0.5, 0.5, 0.0]
CUSTOM_LEFT, CUSTOM_RIGHT = -0.25, 1.5


def custom():
    return PiecewiseLinear(CUSTOM_KNOTS, CUSTOM_VALUES, CUSTOM_LEFT, CUSTOM_RIGHT)


def builtin(name):
    return resolve_activation(name, NEGATIVE_SLOPE)


def test_builtin_names_are_the_documented_ones():
    assert set(ACTIVATIONS) == set(CLOSED_FORMS)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_builtin_matches_closed_form(name):
    assert_allclose(builtin(name)(GRID), CLOSED_FORMS[name](GRID), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_builtin_derivative_is_right_hand_slope(name):
    activation = builtin(name)
    derivative = activation.derivative(GRID)
    assert_array_equal(derivative, RIGHT_SLOPES[name](GRID))
    # The one-sided difference of the closed form agrees, knots included.
    forward_difference = (CLOSED_FORMS[name](GRID + H) - CLOSED_FORMS[name](GRID)) / H
    assert_allclose(derivative, forward_difference, rtol=0, atol=1e-9)


def test_leaky_relu_uses_negative_slope():
    z = np.array([-2.0, -0.5, 0.0, 3.0])
    leaky = resolve_activation("leaky_relu", negative_slope=0.3)
    assert_allclose(leaky(z), [-0.6, -0.15, 0.0, 3.0])
    assert_allclose(leaky.derivative(z), [0.3, 0.3, 1.0, 1.0])
    # Other activations ignore it.
    assert resolve_activation("relu", negative_slope=0.3) == resolve_activation("relu")


def test_value_and_slope_agree_with_call_and_derivative():
    activation = custom()
    value, slope = activation.value_and_slope(GRID)
    assert_array_equal(value, activation(GRID))
    assert_array_equal(slope, activation.derivative(GRID))


def custom_closed_form(z):
    """The custom activation, piece by piece."""
    return np.select(
        [z < -1.0, z < 0.5, z < 2.0],
        [-0.5 + CUSTOM_LEFT * (z + 1.0), -0.5 + 2.0 * (z + 1.0) / 3.0, 0.5 - (z - 0.5) / 3.0],
        default=0.0 + CUSTOM_RIGHT * (z - 2.0),
    )


def test_custom_passes_through_knots_and_extends_with_slopes():
    activation = custom()
    assert_allclose(activation(CUSTOM_KNOTS), CUSTOM_VALUES, rtol=0, atol=1e-15)
    far = np.array([-100.0, -3.0, 5.0, 100.0])
    assert_allclose(activation(far), custom_closed_form(far), rtol=1e-14)
    assert_allclose(activation(GRID), custom_closed_form(GRID), rtol=0, atol=1e-14)
    assert_allclose(activation.slopes, [CUSTOM_LEFT, 2.0 / 3.0, -1.0 / 3.0, CUSTOM_RIGHT])


def test_custom_derivative_matches_forward_difference():
    activation = custom()
    z = np.concatenate([GRID, CUSTOM_KNOTS])
    forward_difference = (custom_closed_form(z + H) - custom_closed_form(z)) / H
    assert_allclose(activation.derivative(z), forward_difference, rtol=0, atol=1e-9)
    assert_allclose(activation.derivative(CUSTOM_KNOTS), [2.0 / 3.0, -1.0 / 3.0, CUSTOM_RIGHT])


def test_custom_is_continuous_at_knots():
    activation = custom()
    for knot, value in zip(CUSTOM_KNOTS, CUSTOM_VALUES):
        for side in (-1e-9, 1e-9):
            assert activation(np.array([knot + side]))[0] == pytest.approx(value, abs=1e-8)


def test_single_knot_matches_interpolation():
    # One knot is the fast path in value_and_slope; check it against np.interp-free algebra.
    activation = PiecewiseLinear([0.5], [2.0], -3.0, 0.25)
    z = np.array([-2.0, 0.5, 0.50001, 4.0])
    expected = np.where(z >= 0.5, 2.0 + 0.25 * (z - 0.5), 2.0 - 3.0 * (z - 0.5))
    assert_allclose(activation(z), expected, rtol=1e-15)
    assert_array_equal(activation.derivative(z), [-3.0, 0.25, 0.25, 0.25])


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "identity"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_knot_values_are_the_closed_forms_to_the_bit(name, dtype):
    # The one-knot path multiplies by the slope and skips the shift by a zero knot; its
    # outputs must still be the closed forms exactly, dtype kept, and never -0.0
    # (0 * a negative z), which a user would see printed in predictions.
    activation = resolve_activation(name, NEGATIVE_SLOPE)
    z = np.concatenate([np.linspace(-3.0, 3.0, 61), [0.0, -0.0, 1e-300, -1e-300]]).astype(dtype)
    value, slope = activation.value_and_slope(z.reshape(13, 5))
    assert value.dtype == slope.dtype == dtype
    expected = CLOSED_FORMS[name](z).astype(dtype)
    assert_array_equal(value.ravel(), expected)
    assert not np.any(np.signbit(value.ravel()) & (value.ravel() == 0))
    assert_array_equal(slope.ravel(), np.asarray(RIGHT_SLOPES[name](z), dtype=dtype))


def test_a_knot_at_negative_zero_is_shifted_by():
    # z - (-0.0) is +0.0 for z = -0.0, where skipping the shift (as for a knot at +0.0,
    # where z - 0 is z to the bit) would keep -0.0. Oracle: the formula written out.
    activation = PiecewiseLinear([-0.0], [-0.0], 0.5, 2.0)
    z = np.array([-0.0, 0.0, -1.0, 3.0])
    slope = np.where(z >= -0.0, 2.0, 0.5)
    expected = -0.0 + slope * (z - -0.0)
    value = activation(z)
    assert_array_equal(value, expected)
    assert_array_equal(np.signbit(value), np.signbit(expected))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(x=[1.0, 0.0], y=[0.0, 1.0]), ValueError, "strictly increasing"),
        (dict(x=[0.0, 0.0], y=[0.0, 1.0]), ValueError, "strictly increasing"),
        (dict(x=[0.0, np.nan], y=[0.0, 1.0]), ValueError, "x must be finite"),
        (dict(x=[0.0, np.inf], y=[0.0, 1.0]), ValueError, "x must be finite"),
        (dict(x=[0.0, 1.0], y=[0.0, np.nan]), ValueError, "y must be finite"),
        (dict(x=[0.0, 1.0], y=[-np.inf, 1.0]), ValueError, "y must be finite"),
        (dict(left_slope=np.nan), ValueError, "left_slope must be finite"),
        (dict(right_slope=np.inf), ValueError, "right_slope must be finite"),
        (dict(x=[0.0, 1.0], y=[0.0]), ValueError, "same length"),
        (dict(x=[], y=[]), ValueError, "x must be a non-empty"),
        (dict(x=[[0.0, 1.0]], y=[[0.0, 1.0]]), ValueError, "1-D"),
        (dict(left_slope="1"), TypeError, "left_slope must be a real number"),
        (dict(right_slope=None), TypeError, "right_slope must be a real number"),
        (dict(left_slope=True), TypeError, "left_slope must be a real number"),
        (dict(x=["a"], y=[0.0]), TypeError, "x must be real numbers"),
        # Finite knots so close that the slope between them overflows.
        (dict(x=[0.0, 1e-310], y=[0.0, 1.0]), ValueError, "not finite"),
    ],
)
def test_invalid_knots_raise_naming_the_problem(kwargs, error, message):
    arguments = dict(x=[0.0], y=[0.0], left_slope=0.0, right_slope=1.0) | kwargs
    with pytest.raises(error, match=message):
        PiecewiseLinear(**arguments)


def test_equality_and_hash_follow_the_function():
    relu = PiecewiseLinear([0.0], [0.0], 0.0, 1.0)
    # Ints, tuples, arrays and numpy scalars describe the same function.
    same = PiecewiseLinear(np.array([0]), (0,), np.float32(0), 1)
    assert relu == same and hash(relu) == hash(same)
    assert relu == resolve_activation("relu")
    assert relu != PiecewiseLinear([0.0], [0.0], 0.01, 1.0)
    assert relu != PiecewiseLinear([0.0], [1.0], 0.0, 1.0)
    assert relu != PiecewiseLinear([1.0], [0.0], 0.0, 1.0)
    assert relu != "relu"
    assert len({relu, same, resolve_activation("identity")}) == 2


def test_repr_round_trips():
    activation = custom()
    text = repr(activation)
    assert text.startswith("PiecewiseLinear(")
    assert eval(text, {"PiecewiseLinear": PiecewiseLinear}) == activation


def test_immutable():
    activation = custom()
    with pytest.raises(AttributeError, match="immutable"):
        activation._x = (0.0,)
    # Properties hand out copies, so mutating them cannot change the function.
    activation.knots[0] = 100.0
    activation.slopes[0] = 100.0
    assert activation == custom()


def test_pickle_and_deepcopy_round_trip():
    activation = custom()
    pickled = pickle.loads(pickle.dumps(activation))
    copies = (pickled, copy.deepcopy(activation), copy.copy(activation))
    for restored in copies:
        assert restored == activation
        assert_array_equal(restored(GRID), activation(GRID))


def test_clone_keeps_an_equal_activation():
    estimator = OptimalLRRegressor(custom(), alpha=0.1)
    cloned = clone(estimator)
    assert cloned.activation == estimator.activation
    assert cloned.get_params()["alpha"] == 0.1


ALL_ACTIVATIONS = [builtin(n) for n in sorted(CLOSED_FORMS)] + [custom()]


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=repr)
def test_float32_in_float32_out(activation):
    z = GRID.astype(np.float32)
    value, slope = activation.value_and_slope(z)
    assert value.dtype == np.float32 and slope.dtype == np.float32
    assert_allclose(value, activation(GRID), rtol=1e-6, atol=1e-7)
    # Integer input is promoted rather than truncated.
    assert activation(np.array([1, 2])).dtype == np.float64


STEEP_CASES = [builtin(n) for n in sorted(CLOSED_FORMS)] + [
    custom(),
    # Flat everywhere but one short piece far from 0: the start must land inside it.
    PiecewiseLinear([3.0, 3.5], [0.0, 1.0], 0.0, 0.0),
    # Flat around 0, rising on the left only.
    PiecewiseLinear([-2.0], [0.0], 0.5, 0.0),
]


@pytest.mark.parametrize("activation", STEEP_CASES, ids=repr)
def test_steep_point_is_inside_a_steepest_piece(activation):
    point = activation.steep_point()
    slope = activation.derivative(np.array([point - 1e-6, point, point + 1e-6]))
    steepest = np.abs(activation.slopes).max()
    # Not on a kink: both neighbours share the piece, and it is the steepest one.
    assert_array_equal(np.abs(slope), steepest)
    assert steepest > 0


def test_steep_point_of_builtins():
    # ReLU starts units at 1 (active whatever the scale of X), identity at 0.
    assert builtin("relu").steep_point() == 1.0
    assert builtin("identity").steep_point() == 0.0
    assert -1.0 < builtin("hard_tanh").steep_point() < 1.0


def test_on_knots_flags_units_at_a_knot_up_to_rounding_and_no_others():
    clipped = PiecewiseLinear([0.0, 1.0], [0.0, 1.0], 0.0, 0.0)
    z = np.array([[1.0, 0.0], [1.0 + 1e-13, -1e-13], [0.5, 1e-3], [2.0, -3.0]])
    expected = np.array([[True, True], [True, True], [False, False], [False, False]])
    assert_array_equal(on_knots(clipped, z), expected)
    # Relative to the pre-activations' spread: the same layout a million times larger.
    shifted = PiecewiseLinear([0.0, 1e6], [0.0, 1e6], 0.0, 0.0)
    assert_array_equal(on_knots(shifted, z * 1e6), expected)
