# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Properties of the step math and the estimator on random small problems (hypothesis).

For random batches (1 to 8 rows, 1 to 4 features, 1 to 3 outputs, features scaled by 10**k
for k in [-100, 100], any built-in or random piecewise-linear activation, optional sample
weights and penalty):

- alpha* is finite and non-negative, and positive whenever the gradient is not zero;
- the batch's quadratic model (the network with every unit frozen on its current piece,
  evaluated here by a forward pass, not by the library's formula) never increases after the
  optimal step, which is its minimiser along -g;
- the exact line search's batch loss (evaluated here by a forward pass) is never above the
  optimal step's, nor above the starting loss;
- a fitted model's weights and predictions are finite.

The default run is short and derandomised (the same examples every time); the same
properties run as a long, random fuzz with ``-m slow`` (see docs/fuzzing.rst).
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear, optimal_learning_rate
from sklearn_optlr._activations import ACTIVATIONS, resolve_activation
from sklearn_optlr._step import exact_line_step

QUICK = settings(max_examples=60, deadline=None, derandomize=True, database=None)
FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def quick_and_fuzz(strategy, check):
    """Two tests of one property: a quick derandomised one, and a long fuzz marked slow."""
    return QUICK(given(strategy)(check)), pytest.mark.slow(FUZZ(given(strategy)(check)))


REALS = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
# Slopes and knot values of custom activations: zero, or at least 1e-8 in magnitude. A slope
# of 1e-300 makes the rate about 1e600, which no float can hold (the fuzz found it: the rate
# is then 0, a documented fallback, and the steps below find nothing to take).
SLOPES = st.one_of(st.just(0.0), st.floats(1e-8, 3), st.floats(-3, -1e-8))


@st.composite
def activations(draw):
    """A built-in activation, or a random continuous piecewise-linear one."""
    if draw(st.booleans()):
        return resolve_activation(draw(st.sampled_from(sorted(ACTIVATIONS))), 0.05)
    knots = sorted(draw(st.lists(st.integers(-12, 12), min_size=1, max_size=3, unique=True)))
    values = draw(st.lists(SLOPES, min_size=len(knots), max_size=len(knots)))
    slopes = draw(st.tuples(SLOPES, SLOPES))
    return PiecewiseLinear(np.array(knots) / 4.0, values, *slopes)


@st.composite
def batches(draw):
    """Weights and a batch whose features are scaled by 10**k and weights by 10**-k, so the
    pre-activations stay of unit scale while the gradient and curvature span 1e-200..1e200."""
    n_samples, n_features, n_outputs = (draw(st.integers(1, m)) for m in (8, 4, 3))
    scale = 10.0 ** draw(st.integers(-100, 100))
    X = draw(arrays(np.float64, (n_samples, n_features), elements=REALS)) * scale
    W = draw(arrays(np.float64, (n_outputs, n_features), elements=REALS)) / scale
    b = draw(arrays(np.float64, n_outputs, elements=REALS))
    Y = draw(arrays(np.float64, (n_samples, n_outputs), elements=REALS))
    sample_weight = None
    if draw(st.booleans()):
        sample_weight = draw(arrays(np.float64, n_samples, elements=st.floats(0, 5)))
        sample_weight[0] += 0.5  # a positive sum
    alpha = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    return dict(
        W=W, b=b, X=X, Y=Y, sample_weight=sample_weight, alpha=alpha, activation=draw(activations())
    )


def oracle(problem):
    """Gradient and forward passes written out here, independent of the library's step math."""
    W, b, X, Y, alpha, sigma = (problem[k] for k in ("W", "b", "X", "Y", "alpha", "activation"))
    s = np.ones(len(X)) if problem["sample_weight"] is None else problem["sample_weight"]
    # The documented contract: weights subnormal relative to the largest count as zero
    # (their reciprocal overflows; see test_numerics). Hypothesis drew 5e-324 beside 0.5.
    relative = np.ldexp(s, -np.frexp(s.max())[1])  # the largest scaled into [0.5, 1)
    s = np.where(relative < np.finfo(np.float64).tiny, 0.0, s)
    w = s / s.sum()
    z = X @ W.T + b
    output, slope = sigma(z), sigma.derivative(z)
    residual = w[:, None] * slope * (output - Y)
    G, g = residual.T @ X + alpha * W, residual.sum(axis=0)

    def penalty(a):
        return 0.5 * alpha * np.sum((W - a * G) ** 2)

    def frozen_loss(a):
        """Loss of the network with every unit kept on its current piece, at theta - a g."""
        moved = X @ (W - a * G).T + (b - a * g)
        return 0.5 * w @ np.sum((output + slope * (moved - z) - Y) ** 2, axis=1) + penalty(a)

    def loss(a):
        moved = X @ (W - a * G).T + (b - a * g)
        return 0.5 * w @ np.sum((sigma(moved) - Y) ** 2, axis=1) + penalty(a)

    return dict(z=z, w=w, G=G, g=g, frozen_loss=frozen_loss, loss=loss)


def rate(problem):
    return optimal_learning_rate(
        problem["W"], problem["b"], problem["X"], problem["Y"], activation=problem["activation"],
        sample_weight=problem["sample_weight"], alpha=problem["alpha"],
    )  # fmt: skip


def tolerance(value):
    # Rounding of a float64 loss of this size, with a wide margin.
    return 1e-10 * abs(value) + 1e-290


def rate_is_finite_non_negative_and_positive_on_a_gradient(problem):
    alpha_star = rate(problem)
    assert np.isfinite(alpha_star) and alpha_star >= 0
    reference = oracle(problem)
    if np.any(reference["G"]) or np.any(reference["g"]):
        assert alpha_star > 0


def quadratic_model_never_increases_after_the_optimal_step(problem):
    alpha_star = rate(problem)
    model = oracle(problem)["frozen_loss"]
    start, after = model(0.0), model(alpha_star)
    assert after <= start + tolerance(start)
    # And alpha* is the model's minimiser along -g.
    for factor in (0.5, 0.9, 1.1, 2.0):
        assert after <= model(factor * alpha_star) + tolerance(start)


def exact_step_is_never_worse_than_the_optimal_step_or_no_step(problem):
    reference = oracle(problem)
    # The solver searches along the gradient divided by a power of two near its largest
    # entry (so that its squares cannot overflow); so does this test.
    G, g = reference["G"], reference["g"]
    largest = max(np.abs(G).max(), np.abs(g).max())
    scale = np.ldexp(1.0, np.frexp(largest)[1]) if largest > 0 else 1.0
    X, W = problem["X"], problem["W"]
    change = -(X @ (G / scale).T + g / scale)
    step, _ = exact_line_step(
        reference["z"], change, problem["Y"], reference["w"], problem["activation"], W,
        -G / scale, problem["alpha"],
    )  # fmt: skip
    loss = reference["loss"]
    start, exact = loss(0.0), loss(step / scale)
    assert step >= 0
    assert exact <= start + tolerance(start)
    assert exact <= loss(rate(problem)) + tolerance(start)


@st.composite
def training_problems(draw):
    problem = draw(batches())
    batch_size = draw(st.sampled_from([1, 3, "full"]))
    step = draw(st.sampled_from(["pooled", "optimal", "exact"]))
    y = problem["Y"][:, 0] if draw(st.booleans()) else problem["Y"]
    return problem, dict(batch_size=batch_size, step=step, alpha=problem["alpha"]), y


def fitted_model_is_finite(case):
    problem, params, y = case
    model = OptimalLRRegressor(problem["activation"], max_iter=3, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short budgets, units that die: not the point
        model.fit(problem["X"], y, sample_weight=problem["sample_weight"])
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    assert np.all(np.isfinite(model.predict(problem["X"])))
    assert np.all(np.isfinite(model.loss_curve_))


test_rate, test_rate_fuzz = quick_and_fuzz(
    batches(), rate_is_finite_non_negative_and_positive_on_a_gradient
)
test_quadratic_model, test_quadratic_model_fuzz = quick_and_fuzz(
    batches(), quadratic_model_never_increases_after_the_optimal_step
)
test_exact_step, test_exact_step_fuzz = quick_and_fuzz(
    batches(), exact_step_is_never_worse_than_the_optimal_step_or_no_step
)
test_fitted_model, test_fitted_model_fuzz = quick_and_fuzz(
    training_problems(), fitted_model_is_finite
)
