# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The optimal learning rate against independent answers: the seed's O(M^3) sums written out
as loops, the normalised-LMS special case, and the exact minimum of the loss along -g."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import sparse

from sklearn_optlr import PiecewiseLinear, optimal_learning_rate
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._line_search import exact_line_search
from sklearn_optlr._solver import objective
from sklearn_optlr._step import (
    block_statistics,
    combine_blocks,
    exact_line,
    quadratic_step,
    scaled_direction,
)

NEGATIVE_SLOPE = 0.05
CUSTOM = PiecewiseLinear([-1.0, 0.0, 1.5], [-2.0, 0.0, 0.5], 0.3, -0.7)

# (sigma, right-hand sigma', knots) in closed form, independent of the library's activations.
ORACLES = {
    "identity": (lambda z: z, lambda z: np.ones_like(z), []),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z >= 0) * 1.0, [0.0]),
    "leaky_relu": (
        lambda z: np.where(z >= 0, z, NEGATIVE_SLOPE * z),
        lambda z: np.where(z >= 0, 1.0, NEGATIVE_SLOPE),
        [0.0],
    ),
    "abs": (np.abs, lambda z: np.where(z >= 0, 1.0, -1.0), [0.0]),
    "hard_tanh": (
        lambda z: np.clip(z, -1.0, 1.0),
        lambda z: ((z >= -1) & (z < 1)) * 1.0,
        [-1.0, 1.0],
    ),
    "custom": (
        lambda z: np.select(
            [z < -1.0, z < 0.0, z < 1.5],
            [-2.0 + 0.3 * (z + 1.0), 2.0 * z, z / 3.0],
            -0.7 * (z - 1.5) + 0.5,
        ),
        lambda z: np.select([z < -1.0, z < 0.0, z < 1.5], [0.3, 2.0, 1.0 / 3.0], -0.7),
        [-1.0, 0.0, 1.5],
    ),
}
NAMES = sorted(ORACLES)


def library_activation(name):
    return CUSTOM if name == "custom" else name


def rate(name, coef, intercept, X, y, **kwargs):
    return optimal_learning_rate(
        coef,
        intercept,
        X,
        y,
        activation=library_activation(name),
        negative_slope=NEGATIVE_SLOPE,
        **kwargs,
    )


def seed_formula(name, W, b, X, Y):
    """alpha* = M sum_ij (1 + x_i.x_j) <D_i D_j e_j, e_i>
    / sum_ijk (1 + x_i.x_j)(1 + x_i.x_k) <D_i D_j e_j, D_i D_k e_k>, literally."""
    sigma, dsigma, _ = ORACLES[name]
    M = X.shape[0]
    Z = [W @ X[i] + b for i in range(M)]
    D = [dsigma(Z[i]) for i in range(M)]  # diagonals of D_i
    E = [sigma(Z[i]) - Y[i] for i in range(M)]
    numerator = 0.0
    for i in range(M):
        for j in range(M):
            numerator += (1 + X[i] @ X[j]) * np.dot(D[i] * D[j] * E[j], E[i])
    denominator = 0.0
    for i in range(M):
        for j in range(M):
            for k in range(M):
                denominator += (
                    (1 + X[i] @ X[j])
                    * (1 + X[i] @ X[k])
                    * np.dot(D[i] * D[j] * E[j], D[i] * D[k] * E[k])
                )
    return M * numerator / denominator


def straddling_problem(name, n_outputs, seed, M=7, n_features=3):
    """Weights and data whose pre-activations fall on several pieces of the activation."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((M, n_features))
    W = 1.5 * rng.standard_normal((n_outputs, n_features))
    b = 0.5 * rng.standard_normal(n_outputs)
    knots = ORACLES[name][2]
    if knots:
        # Centre each unit's pre-activations on one of the knots, so samples fall on both sides.
        centre = np.array([knots[o % len(knots)] for o in range(n_outputs)])
        b = centre - np.median(X @ W.T, axis=0) + 0.1 * rng.standard_normal(n_outputs)
    Y = rng.standard_normal((M, n_outputs))
    return W, b, X, Y


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_matches_seed_triple_sum(name, n_outputs):
    for seed in range(3):
        W, b, X, Y = straddling_problem(name, n_outputs, seed)
        slopes = ORACLES[name][1](X @ W.T + b)
        if name != "identity":
            # Otherwise the test would not exercise the kinks at all.
            assert all(len(np.unique(column)) >= 2 for column in slopes.T)
        expected = seed_formula(name, W, b, X, Y)
        assert expected > 0
        if n_outputs == 1:
            # The public shapes of a single-output model: 1-D coef and y, scalar intercept.
            actual = rate(name, W[0], float(b[0]), X, Y[:, 0])
        else:
            actual = rate(name, W, b, X, Y)
        assert_allclose(actual, expected, rtol=1e-10)


@pytest.mark.parametrize("name", ["relu", "hard_tanh", "custom"])
def test_pre_activation_on_a_knot_uses_right_hand_slope(name):
    rng = np.random.default_rng(5)
    knot = ORACLES[name][2][0]
    X = rng.standard_normal((5, 2))
    X[0] = [2.0, 2.0]
    W = np.array([[0.75, -0.75]])  # sends X[0] exactly to the intercept
    b = np.array([knot])
    Y = rng.standard_normal((5, 1))
    assert (X @ W.T + b)[0, 0] == knot
    assert_allclose(rate(name, W, b, X, Y), seed_formula(name, W, b, X, Y), rtol=1e-10)


@pytest.mark.parametrize("n_outputs", [1, 4])
def test_single_sample_relu_is_normalised_lms(n_outputs):
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal((1, 6)) * rng.uniform(0.1, 10)
        W = rng.standard_normal((n_outputs, 6))
        # Unit 0 active, the rest whatever they are: D^2 = D for ReLU.
        b = -(W @ x[0]) + np.r_[1.0, rng.standard_normal(n_outputs - 1)]
        y = rng.standard_normal((1, n_outputs))
        assert_allclose(optimal_learning_rate(W, b, x, y), 1.0 / (1.0 + x[0] @ x[0]), rtol=1e-14)


def loss(W, b, X, Y, sigma, sample_weight, alpha):
    """1/(2S) sum_i s_i ||sigma(W x_i + b) - y_i||^2 + alpha/2 ||W||_F^2."""
    s = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    residual = sigma(X @ W.T + b) - Y
    return 0.5 * np.sum(s * np.sum(residual**2, axis=1)) / s.sum() + 0.5 * alpha * np.sum(W**2)


def unpack(theta, coef_shape):
    size = int(np.prod(coef_shape))
    return theta[:size].reshape(coef_shape), theta[size:]


def finite_difference_gradient(W, b, X, Y, sigma, sample_weight, alpha, h=1e-6):
    theta = np.concatenate([W.ravel(), b])
    grad = np.empty_like(theta)
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = h
        up, down = theta + step, theta - step
        grad[k] = (
            loss(*unpack(up, W.shape), X, Y, sigma, sample_weight, alpha)
            - loss(*unpack(down, W.shape), X, Y, sigma, sample_weight, alpha)
        ) / (2 * h)
    return grad[: W.size].reshape(W.shape), grad[W.size :]


def near_fit_problem(name, sample_weighted, seed, M=40, n_features=4, n_outputs=2):
    """Targets close to the model's outputs, pre-activations at least 0.2 away from any knot:
    the gradient is small, so a step of a few times alpha* stays in the current linear region."""
    sigma, _, knots = ORACLES[name]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((M, n_features))
    W = 0.5 * rng.standard_normal((n_outputs, n_features))
    b = 0.3 * rng.standard_normal(n_outputs)
    Z = X @ W.T + b
    keep = np.ones(M, dtype=bool)
    for knot in knots:
        keep &= np.abs(Z - knot).min(axis=1) > 0.2
    X = X[keep]
    Y = sigma(X @ W.T + b) + 0.01 * rng.standard_normal((X.shape[0], n_outputs))
    sample_weight = rng.uniform(0.2, 3.0, X.shape[0]) if sample_weighted else None
    return W, b, X, Y, sample_weight


def pieces(Z, knots):
    return np.searchsorted(np.asarray(knots), Z, side="right")


# A small penalty keeps the gradient small enough to stay in the region, yet changes alpha* by
# far more than the tolerance.
@pytest.mark.parametrize("alpha", [0.0, 0.01])
@pytest.mark.parametrize("sample_weighted", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_minimises_the_loss_along_the_negative_gradient(name, sample_weighted, alpha):
    sigma, _, knots = ORACLES[name]
    W, b, X, Y, sample_weight = near_fit_problem(name, sample_weighted, seed=1)
    assert X.shape[0] >= 10
    grad_W, grad_b = finite_difference_gradient(W, b, X, Y, sigma, sample_weight, alpha)
    best = optimal_learning_rate(
        W, b, X, Y, activation=library_activation(name), negative_slope=NEGATIVE_SLOPE,
        sample_weight=sample_weight, alpha=alpha,
    )  # fmt: skip
    assert best > 0

    def along(a):
        return loss(W - a * grad_W, b - a * grad_b, X, Y, sigma, sample_weight, alpha)

    # No pre-activation changes piece on [0, 1.5 alpha*]; z is affine in the step, so checking
    # the end point is enough, and the loss there is exactly the Taylor parabola.
    start = pieces(X @ W.T + b, knots)
    end = pieces(X @ (W - 1.5 * best * grad_W).T + b - 1.5 * best * grad_b, knots)
    np.testing.assert_array_equal(start, end)

    for eps in (1e-3, 1e-2, 0.1, 0.5):
        assert along(best) <= along(best * (1 - eps))
        assert along(best) <= along(best * (1 + eps))

    # The vertex of the parabola through three step sizes is alpha*.
    steps = best * np.array([0.5, 1.0, 1.5])
    quadratic, linear, _ = np.polyfit(steps, [along(a) for a in steps], 2)
    assert_allclose(-linear / (2 * quadratic), best, rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("name", NAMES)
def test_step_terms_match_finite_differences(name, alpha):
    """The loss, gradient, <g, g> and g^T H g behind the rate, each against a difference
    quotient of the loss written above."""
    sigma, _, _ = ORACLES[name]
    W, b, X, Y, sample_weight = near_fit_problem(name, True, seed=2)
    activation = resolve_activation(library_activation(name), NEGATIVE_SLOPE)
    weights = sample_weight / sample_weight.sum()
    block = block_statistics(X, Y, weights, W, b, activation, alpha)
    value, grad_W, grad_b = block.loss, block.grad_coef, block.grad_intercept
    # Along -g / scale: the slope is -<g, g> / scale and the curvature g^T H g / scale**2.
    *direction, scale = scaled_direction(-grad_W, -grad_b)
    along = block.along(X, *direction)
    numerator, denominator = -scale * along.slope, scale**2 * along.curvature
    expected_W, expected_b = finite_difference_gradient(W, b, X, Y, sigma, sample_weight, alpha)
    assert_allclose(value, loss(W, b, X, Y, sigma, sample_weight, alpha), rtol=1e-13)
    assert_allclose(grad_W, expected_W, rtol=1e-6, atol=1e-9)
    assert_allclose(grad_b, expected_b, rtol=1e-6, atol=1e-9)
    assert_allclose(numerator, np.sum(expected_W**2) + np.sum(expected_b**2), rtol=1e-6)

    # Second difference along -g with a step small enough to stay in the linear region
    # (where the loss is exactly quadratic, so the quotient has no truncation error).
    h = 1e-3 / np.sqrt(numerator)
    along = [
        loss(W - a * grad_W, b - a * grad_b, X, Y, sigma, sample_weight, alpha)
        for a in (-h, 0.0, h)
    ]
    assert_allclose(denominator, (along[0] - 2 * along[1] + along[2]) / h**2, rtol=1e-5)


@pytest.mark.parametrize("n_blocks", [1, 3, "rows"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("name", NAMES)
def test_block_statistics_add_up_to_the_whole(name, alpha, n_blocks):
    """The records of 1, 3 or one-row blocks, combined, are the whole's, and each sum is
    the objective's: the loss, its gradient by finite differences, and along a direction
    its slope and curvature by central and second differences (the loss is quadratic in
    the step until a unit meets a knot) and the seed's sum for the curvature."""
    sigma, derivative, knots = ORACLES[name]
    W, b, X, Y, sample_weight = near_fit_problem(name, True, seed=3)
    activation = resolve_activation(library_activation(name), NEGATIVE_SLOPE)
    weights = sample_weight / sample_weight.sum()
    # A descent direction that is not the gradient's, so that no term hides behind another.
    whole = block_statistics(X, Y, weights, W, b, activation, alpha)
    rng = np.random.default_rng(4)
    noise = 0.3 * max(np.abs(whole.grad_coef).max(), np.abs(whole.grad_intercept).max())
    dW = -whole.grad_coef + noise * rng.standard_normal(W.shape)
    db = -whole.grad_intercept + noise * rng.standard_normal(b.shape)
    whole = whole.along(X, dW, db)
    n_rows = X.shape[0]
    blocks = [
        # Each block carries its share of the weight and so of the penalty.
        block_statistics(
            X[rows], Y[rows], weights[rows], W, b, activation, alpha * weights[rows].sum(), (dW, db)
        )
        for rows in np.array_split(np.arange(n_rows), n_rows if n_blocks == "rows" else n_blocks)
    ]
    combined = combine_blocks(blocks)

    def along(step):
        return loss(W + step * dW, b + step * db, X, Y, sigma, sample_weight, alpha)

    Z, V = X @ W.T + b, X @ dW.T + db
    # Half the step at which the first unit would meet a knot: the loss is exactly
    # quadratic on [-h, h].
    h = 0.5 * min((np.abs(Z - knot) / np.abs(V)).min() for knot in knots) if knots else 0.1
    expected_W, expected_b = finite_difference_gradient(W, b, X, Y, sigma, sample_weight, alpha)
    seed_curvature = weights @ np.sum((derivative(Z) * V) ** 2, axis=1) + alpha * np.sum(dW**2)
    for record in (combined, whole):
        assert_allclose(record.loss, loss(W, b, X, Y, sigma, sample_weight, alpha), rtol=1e-13)
        assert_allclose(
            record.loss, objective(X, Y, sample_weight, W, b, activation, alpha), rtol=1e-13
        )
        assert_allclose(record.grad_coef, expected_W, rtol=1e-6, atol=1e-9)
        assert_allclose(record.grad_intercept, expected_b, rtol=1e-6, atol=1e-9)
        assert_allclose(record.slope, (along(h) - along(-h)) / (2 * h), rtol=1e-6)
        assert_allclose(record.curvature, (along(h) - 2 * along(0.0) + along(-h)) / h**2, rtol=1e-5)
        assert_allclose(record.curvature, seed_curvature, rtol=1e-12)
        assert_allclose(record.pre_activation, Z, rtol=1e-13, atol=1e-15)
        assert_allclose(record.change, V, rtol=1e-13, atol=1e-15)
    assert combined.data_gradient and whole.data_gradient
    assert_allclose(combined.alpha, alpha, rtol=1e-13)
    # The exact line search along the combined record's units is the whole's.
    steps = [
        exact_line_search(
            *exact_line(
                record.pre_activation,
                record.change,
                record.target,
                record.weights,
                activation,
                W,
                dW,
                record.alpha,
            )
        )  # fmt: skip
        for record in (combined, whole)
    ]
    assert steps[0] > 0
    assert_allclose(steps[0], steps[1], rtol=1e-10)


def small_problem(n_outputs=2, seed=0, M=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((M, 5))
    X[rng.random(X.shape) < 0.5] = 0.0  # sparse-looking, so CSR/CSC differ from dense storage
    W = rng.standard_normal((n_outputs, 5))
    b = rng.standard_normal(n_outputs)
    Y = rng.standard_normal((M, n_outputs))
    return W, b, X, Y


@pytest.mark.parametrize("name", NAMES)
def test_integer_weights_equal_repeated_rows(name):
    W, b, X, Y = small_problem()
    counts = np.array([1, 3, 0, 2, 1, 1, 4, 1, 2, 1, 1, 5])
    weighted = rate(name, W, b, X, Y, sample_weight=counts, alpha=0.1)
    repeated = rate(name, W, b, np.repeat(X, counts, 0), np.repeat(Y, counts, 0), alpha=0.1)
    assert_allclose(weighted, repeated, rtol=1e-12)


def test_uniform_weights_equal_no_weights():
    W, b, X, Y = small_problem()
    assert_allclose(
        optimal_learning_rate(W, b, X, Y, sample_weight=np.full(len(X), 3.7), alpha=0.2),
        optimal_learning_rate(W, b, X, Y, alpha=0.2),
        rtol=1e-13,
    )


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("name", NAMES)
def test_sparse_equals_dense(name, fmt):
    W, b, X, Y = small_problem()
    weights = np.linspace(0.5, 2.0, len(X))
    dense = rate(name, W, b, X, Y, sample_weight=weights, alpha=0.1)
    X_sparse = sparse.csr_matrix(X).asformat(fmt)
    sparse_rate = rate(name, W, b, X_sparse, Y, sample_weight=weights, alpha=0.1)
    assert_allclose(sparse_rate, dense, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_float32_input(name):
    W, b, X, Y = small_problem()
    expected = seed_formula(name, W, b, X, Y)
    actual = rate(
        name, W.astype(np.float32), b.astype(np.float32), X.astype(np.float32), Y.astype(np.float32)
    )
    assert_allclose(actual, expected, rtol=1e-4)


def test_single_output_shapes_agree():
    W, b, X, Y = small_problem(n_outputs=1)
    reference = optimal_learning_rate(W, b, X, Y)
    assert_allclose(optimal_learning_rate(W[0], b[0], X, Y[:, 0]), reference, rtol=1e-15)
    assert_allclose(optimal_learning_rate(W[0], b, X, Y[:, 0]), reference, rtol=1e-15)
    assert_allclose(optimal_learning_rate(W, float(b[0]), X, Y[:, 0]), reference, rtol=1e-15)
    # Lists are array-like too.
    from_lists = optimal_learning_rate(W[0].tolist(), b.tolist(), X.tolist(), Y[:, 0].tolist())
    assert_allclose(from_lists, reference, rtol=1e-15)


def test_scalar_intercept_broadcasts_over_outputs():
    W, b, X, Y = small_problem(n_outputs=3)
    scalar = optimal_learning_rate(W, 0.4, X, Y)
    assert_allclose(scalar, optimal_learning_rate(W, np.full(3, 0.4), X, Y), rtol=1e-15)


def test_zero_gradient_returns_zero_without_warning():
    W, b, X, Y = small_problem(n_outputs=2)
    X = np.abs(X)
    W = -np.abs(W)
    b = np.array([-0.1, -3.0])  # every pre-activation negative: every ReLU unit inactive
    assert np.all(X @ W.T + b < 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = optimal_learning_rate(W, b, X, Y, activation="relu", alpha=0.0)
    assert result == 0.0 and isinstance(result, float)


def test_perfect_fit_returns_zero():
    W, b, X, _ = small_problem(n_outputs=2)
    Y = X @ W.T + b
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert optimal_learning_rate(W, b, X, Y, activation="identity") == 0.0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda W, b, X, Y: (W[:, :4], b, X, Y), "coef must have shape"),
        (lambda W, b, X, Y: (W[None], b, X, Y), "coef must have shape"),
        (lambda W, b, X, Y: (W, b[:1], X, Y), "intercept must have shape"),
        (lambda W, b, X, Y: (W, np.ones((2, 1)), X, Y), "intercept must have shape"),
        (lambda W, b, X, Y: (W, b, X, Y[:, :1]), "outputs"),
        (lambda W, b, X, Y: (W[0], b[0], X, Y), "outputs"),
        (lambda W, b, X, Y: (W, b, X, Y[:-1]), "inconsistent numbers of samples"),
    ],
)
def test_bad_shapes_raise(change, message):
    W, b, X, Y = small_problem(n_outputs=2)
    W, b, X, Y = change(W, b, X, Y)
    with pytest.raises(ValueError, match=message):
        optimal_learning_rate(W, b, X, Y)


def test_bad_parameters_raise():
    W, b, X, Y = small_problem(n_outputs=2)
    with pytest.raises(ValueError, match="activation"):
        optimal_learning_rate(W, b, X, Y, activation="tanh")
    with pytest.raises(ValueError, match="alpha"):
        optimal_learning_rate(W, b, X, Y, alpha=-1.0)
    with pytest.raises(ValueError, match="sample_weight"):
        optimal_learning_rate(W, b, X, Y, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="sample_weight"):
        optimal_learning_rate(W, b, X, Y, sample_weight=np.ones(len(X) + 1))


def test_quadratic_step():
    # Minimiser of s a + c a^2 / 2 is -s / c.
    assert quadratic_step(-3.0, 2.0) == 1.5
    # Not a descent direction, or a flat one: no step.
    assert quadratic_step(0.0, 2.0) == 0.0
    assert quadratic_step(1.0, 2.0) == 0.0
    assert quadratic_step(np.nan, 2.0) == 0.0
    # Zero or negative curvature: never an infinite or backwards step.
    assert quadratic_step(-1.0, 0.0) == 0.0
    assert quadratic_step(-1.0, -2.0) == 0.0
    assert quadratic_step(-1e308, 1e-308) == 0.0
