# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The exact line search and the conjugate-gradient solver.

Oracles: a brute-force grid over the step and scipy's bounded minimisation on each
piece between kink crossings, the quadratic step's own loss, scikit-learn's
LinearRegression for the conjugate-gradient solution, and scipy's
L-BFGS-B and Nelder-Mead started from the fitted weights for minima at kinks.
"""

import warnings
from collections import Counter
from itertools import pairwise
from typing import ClassVar

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import sparse
from scipy.optimize import minimize, minimize_scalar
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, Ridge

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear
from sklearn_optlr._activations import ACTIVATIONS, resolve_activation
from sklearn_optlr._preconditioning import moments_preconditioner
from sklearn_optlr._solver import _along_knots
from sklearn_optlr._step import exact_line, exact_line_step, quadratic_step

ACTIVATION_CASES = [*ACTIVATIONS, PiecewiseLinear([-1.0, 0.0, 2.0], [0.5, -1.0, 1.0], 0.3, -0.2)]


def random_line(seed, activation):
    """A batch, weights and a random search direction, with the oracle's loss along it."""
    rng = np.random.default_rng(seed)
    n_samples, n_features, n_outputs = rng.integers(1, 9), 3, rng.integers(1, 3)
    X = rng.standard_normal((n_samples, n_features))
    coef, intercept = rng.standard_normal((n_outputs, n_features)), rng.standard_normal(n_outputs)
    direction_coef, direction_intercept = (
        rng.standard_normal((n_outputs, n_features)),
        rng.standard_normal(n_outputs),
    )
    Y = rng.standard_normal((n_samples, n_outputs))
    weights = rng.random(n_samples)
    weights /= weights.sum()
    alpha = 0.1 * (seed % 2)
    z, v = X @ coef.T + intercept, X @ direction_coef.T + direction_intercept

    def loss(step):
        """The batch loss at one step, or at an array of steps (vectorised)."""
        steps = np.asarray(step, dtype=float)[..., None, None]
        residual = activation(z + steps * v) - Y
        moved = coef + steps * direction_coef
        penalty = 0.5 * alpha * np.sum(moved**2, axis=(-2, -1))
        return 0.5 * np.sum(weights[:, None] * residual**2, axis=(-2, -1)) + penalty

    return z, v, Y, weights, coef, direction_coef, alpha, loss


@pytest.mark.parametrize("activation", ACTIVATION_CASES, ids=str)
@pytest.mark.parametrize("seed", range(12))
def test_exact_step_is_the_global_minimiser_along_the_line(activation, seed):
    activation = resolve_activation(activation, negative_slope=0.05)
    z, v, Y, weights, coef, direction_coef, alpha, loss = random_line(seed, activation)
    step, value = exact_line_step(z, v, Y, weights, activation, coef, direction_coef, alpha)
    assert step >= 0
    assert_allclose(value, loss(step), rtol=1e-10, atol=1e-14)
    grid = np.concatenate([np.linspace(0, 20, 40_001), step * np.linspace(0.9, 1.1, 2001)])
    assert value <= loss(grid).min() + 1e-12


@pytest.mark.parametrize("activation", ACTIVATION_CASES, ids=str)
@pytest.mark.parametrize("seed", range(12))
def test_exact_step_never_loses_to_the_quadratic_step(activation, seed):
    activation = resolve_activation(activation, negative_slope=0.05)
    z, v, Y, weights, coef, direction_coef, alpha, loss = random_line(seed, activation)
    # The quadratic model's step along the same line: slope and curvature at a = 0.
    slope = activation.derivative(z)
    residual = activation(z) - Y
    slope_along = np.sum(weights[:, None] * residual * slope * v) + alpha * np.vdot(
        coef, direction_coef
    )
    curvature_along = np.sum(weights[:, None] * (slope * v) ** 2) + alpha * np.vdot(
        direction_coef, direction_coef
    )
    quadratic = quadratic_step(slope_along, curvature_along)
    step, value = exact_line_step(z, v, Y, weights, activation, coef, direction_coef, alpha)
    assert value <= loss(quadratic) + 1e-12
    assert value <= loss(0.0) + 1e-12


def near_optimum_line(relu):
    """A line from 1e-7 off the least-squares optimum of a noisy, ill-conditioned design
    along the negative gradient: its loss falls by about 1e-14 of itself."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 4)) * [1.0, 1.0, 1.0, 30.0]
    # For ReLU, targets far above the kink: every unit active, the loss quadratic near
    # the optimum and far larger beyond the first kink crossing.
    y = X @ [1.0, -2.0, 0.5, 0.1] + (500.0 if relu else 0.5) + 3.0 * rng.standard_normal(300)
    A = np.column_stack([X, np.ones(len(X))])
    optimum = np.linalg.lstsq(A, y, rcond=None)[0]
    theta = optimum + 1e-7 * rng.standard_normal(5)
    weights = np.full(len(X), 1.0 / len(X))
    gradient = A.T @ (weights * (A @ theta - y))
    z, v = (A @ theta)[:, None], (-A @ gradient)[:, None]
    quadratic = quadratic_step(float(-(gradient @ gradient)), float(weights @ (v[:, 0] ** 2)))
    return z, v, y[:, None], weights, quadratic


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_exact_step_keeps_descending_where_the_decrease_is_below_the_losses_rounding(activation):
    # Deciding by comparing losses, the search read a decrease of 1e-14 of the loss as
    # none (ties within 1e-12) and stalled: full-batch fits stopped 1e-12 short of the
    # optimum and took no step ever after. On the first linear piece the quadratic model
    # is the loss, and its step needs no comparison.
    z, v, Y, weights, quadratic = near_optimum_line(activation == "relu")
    act = resolve_activation(activation)
    no_penalty = np.zeros((1, 4))
    step, _ = exact_line_step(z, v, Y, weights, act, no_penalty, no_penalty, 0.0)
    assert quadratic > 0 and step == pytest.approx(quadratic, rel=1e-9)


@pytest.mark.parametrize("solver", ["gd", "cg"])
def test_full_batch_exact_steps_reach_the_least_squares_solution(solver):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 5)) * [1.0, 1.0, 1.0, 1.0, 30.0]
    y = X @ [1.0, -2.0, 0.5, 3.0, 0.1] + 3.0 * rng.standard_normal(500)
    reference = LinearRegression().fit(X, y)
    model = OptimalLRRegressor(
        batch_size="full", solver=solver, step="exact", precondition=False, max_iter=2000,
        tol=0.0, n_iter_no_change=2001,
    ).fit(X, y)  # fmt: skip
    assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-10)
    assert_allclose(model.intercept_, reference.intercept_, rtol=0, atol=1e-10)


def test_exact_step_is_zero_when_no_step_lowers_the_loss():
    activation = resolve_activation("identity")
    z = np.array([[1.0]])
    step, value = exact_line_step(z, np.array([[1.0]]), np.array([[1.0]]), np.ones(1), activation,
                                  np.zeros((1, 1)), np.zeros((1, 1)), 0.0)  # fmt: skip
    assert step == 0.0 and value == 0.0


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_conjugate_gradients_reach_least_squares_in_n_features_plus_one_steps(n_outputs):
    rng = np.random.default_rng(0)
    n_features = 6
    # Correlated features: steepest descent would zig-zag here.
    X = rng.standard_normal((80, n_features)) @ rng.standard_normal((n_features, n_features))
    y = X @ rng.standard_normal((n_features, n_outputs)) + rng.standard_normal((80, n_outputs))
    y = y[:, 0] if n_outputs == 1 else y
    model = OptimalLRRegressor(
        batch_size="full", solver="cg", max_iter=n_features + 1, tol=0.0,
        n_iter_no_change=n_features + 2,
    )  # fmt: skip
    with pytest.warns(Warning):  # max_iter is the point: it stops exactly there
        model.fit(X, y)
    reference = LinearRegression().fit(X, y)
    assert model.n_iter_ == n_features + 1
    assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(model.intercept_, reference.intercept_, rtol=1e-6, atol=1e-8)


def test_steepest_descent_does_not_get_there_in_as_many_steps():
    # The same budget without conjugate directions falls short: CG is what does it.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6)) @ rng.standard_normal((6, 6))
    y = X @ rng.standard_normal(6) + rng.standard_normal(80)
    model = OptimalLRRegressor(
        batch_size="full", solver="gd", precondition=False, max_iter=7, tol=0.0
    )
    with pytest.warns(Warning):
        model.fit(X, y)
    assert not np.allclose(model.coef_, LinearRegression().fit(X, y).coef_, rtol=1e-3)


@pytest.mark.parametrize("precondition", [False, True])
@pytest.mark.parametrize("step", ["optimal", "exact"])
def test_conjugate_gradients_with_a_penalty_reach_ridge(step, precondition):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 5))
    y = X @ rng.standard_normal(5) + rng.standard_normal(50)
    model = OptimalLRRegressor(
        batch_size="full", solver="cg", step=step, alpha=0.1, tol=1e-12, max_iter=100,
        precondition=precondition,
    )  # fmt: skip
    model.fit(X, y)
    reference = Ridge(alpha=0.1 * len(X)).fit(X, y)

    def objective(coef, intercept):
        return 0.5 * np.mean((X @ coef + intercept - y) ** 2) + 0.05 * coef @ coef

    best = objective(reference.coef_, reference.intercept_)
    # The exact step treats gains below TIE_TOLERANCE (1e-12) of the loss as ties and
    # stops there, which leaves coefficients of flat directions about 1e-7 off.
    assert objective(model.coef_, model.intercept_) <= best * (1 + 1e-12)
    assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(solver="cg", batch_size=10), "needs the full batch"),
        (dict(solver="cg", batch_size="full", step=0.1), "line search"),
    ],
)
def test_conjugate_gradients_reject_what_they_cannot_do(params, message):
    X, y = np.random.default_rng(0).standard_normal((30, 2)), np.zeros(30)
    model = OptimalLRRegressor(**params)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
    assert not hasattr(model, "coef_")


def test_exact_step_fixes_the_quadratic_steps_overshoot_on_a_shallow_piece():
    # Targets mostly in the range of leaky ReLU's steep piece, a tenth below 0. A sample
    # whose unit sits on the 0.01 piece has 1e-4 of the curvature there, so the quadratic
    # model's one-sample step jumps far across the kink; the exact step stops where that
    # sample is fitted. (Neither fits well: the seed's rate one row at a time is not the
    # default; see the pooled rule.)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = X @ rng.standard_normal(5) + 3.0
    options = dict(
        activation="leaky_relu",
        batch_size=1,
        solver="gd",
        average=False,
        max_iter=3,
        tol=0.0,
        random_state=0,
    )
    with pytest.warns(Warning):
        quadratic = OptimalLRRegressor(step="optimal", **options).fit(X, y)
    with pytest.warns(Warning):
        exact = OptimalLRRegressor(step="exact", **options).fit(X, y)
    squared_error = [np.mean((model.predict(X) - y) ** 2) for model in (exact, quadratic)]
    assert squared_error[1] > 100 * squared_error[0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("step", ["pooled", "exact"])
@pytest.mark.parametrize("solver", ["gd", "cg"])
@pytest.mark.parametrize("activation", ACTIVATION_CASES, ids=str)
def test_full_batch_line_search_steps_never_raise_the_loss(activation, solver, step):
    # In full batch the batch loss is the objective, and a descent direction with a
    # line-search step can only lower it. The quadratic model's step overshoots once a
    # pre-activation crosses a knot where the slope changes sign or size: without a
    # check, 117 of 240 "pooled" fits (20 problems) raised the loss at some epoch, and
    # abs cycled between two points above where it started. "optimal" is the seed's
    # formula and is left unchecked.
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n_samples, n_features = rng.integers(20, 150), rng.integers(1, 8)
        X = rng.standard_normal((n_samples, n_features)) * rng.choice([0.3, 1.0, 3.0])
        y = X @ rng.standard_normal(n_features) + 0.3 * rng.standard_normal(n_samples)
        model = OptimalLRRegressor(
            activation, batch_size="full", solver=solver, step=step, alpha=[0.0, 1e-3][seed % 2],
            max_iter=60, tol=0.0, n_iter_no_change=100,
        ).fit(X, y)  # fmt: skip
        losses = np.array(model.loss_curve_)
        rises = np.diff(losses) / np.maximum(losses[:-1], 1e-300)
        assert rises.max() <= 1e-12, f"seed {seed}: the loss rose by {rises.max():.3g}"


def test_full_batch_abs_on_a_linear_target_ends_below_its_start():
    # The reported case: abs cannot fit the negative targets, and the quadratic step
    # jumped to the mirror region and back, ending at R^2 -0.99 (a constant does 0).
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 5))
    y = X @ rng.standard_normal(5) + 0.3 * rng.standard_normal(120)
    model = OptimalLRRegressor("abs", batch_size="full", random_state=0).fit(X, y)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert model.score(X, y) > 0.1


def relu_on_kinks():
    """ReLU in full batch whose steepest-descent search stops at rows on their kink."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 10))
    Y = np.maximum(X @ rng.standard_normal((10, 3)) / np.sqrt(10), 0.0)
    Y += 0.05 * rng.standard_normal(Y.shape)
    model = OptimalLRRegressor(
        "relu", batch_size="full", max_iter=80, tol=0.0, n_iter_no_change=100
    )
    return X, Y, model


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_full_batch_stops_searching_once_no_step_off_or_along_the_kinks_lowers_the_loss(
    monkeypatch,
):
    # Where steepest descent finds nothing lower and neither do the directions off and
    # along the kinks (here: said to find nothing), the weights stay put, so searching
    # again every epoch (64 searches in 80 epochs, each costing a sort of the kink
    # crossings) would only cost time. No search follows the stall.
    import sklearn_optlr._solver as solver

    searches, searches_at_kink_steps = [], []

    def counting_line(*args, **kwargs):
        searches.append(1)
        return exact_line(*args, **kwargs)

    def no_kink_step(*args):
        searches_at_kink_steps.append(len(searches))

    monkeypatch.setattr(solver, "exact_line", counting_line)
    monkeypatch.setattr(solver.FullBatchEpoch, "_kink_step", no_kink_step)
    X, Y, model = relu_on_kinks()
    model.fit(X, Y)
    assert searches_at_kink_steps == [len(searches)]
    assert 0 < len(searches) <= 16  # the stall comes early: a fifth of the 80 epochs
    losses = np.array(model.loss_curve_)
    assert np.all(np.diff(losses) <= 1e-12 * losses[:-1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_full_batch_leaves_a_kink_that_stopped_steepest_descent(monkeypatch):
    # ReLU rows left on their kink by a line search get the slope on the knot's right,
    # and the search along steepest descent finds nothing lower: the old solver stopped
    # there for good. The steps off and along the kinks keep lowering the loss, which
    # never rises, to a point L-BFGS-B cannot improve on.
    import sklearn_optlr._solver as solver

    X, Y, model = relu_on_kinks()
    model.fit(X, Y)
    with monkeypatch.context() as patch:
        patch.setattr(solver.FullBatchEpoch, "_kink_step", lambda *args: None)
        stalled = clone(model).fit(X, Y)
    assert np.count_nonzero(np.array(stalled.learning_rate_curve_) == 0.0) > 50
    assert model.loss_curve_[-1] < stalled.loss_curve_[-1] * (1.0 - 1e-7)
    losses = np.array(model.loss_curve_)
    assert np.all(np.diff(losses) <= 1e-12 * losses[:-1])
    theta = np.concatenate([model.coef_.ravel(), model.intercept_])
    relu = resolve_activation("relu")

    def objective(theta):
        coef, intercept = theta[:-3].reshape(3, -1), theta[-3:]
        output, slope = relu.value_and_slope(X @ coef.T + intercept)
        backprop = slope * (output - Y) / X.shape[0]
        grad = np.concatenate([(backprop.T @ X).ravel(), backprop.sum(axis=0)])
        return 0.5 * np.sum((output - Y) ** 2) / X.shape[0], grad

    polished = minimize(objective, theta, jac=True, method="L-BFGS-B", options=dict(ftol=0, gtol=0))
    assert objective(theta)[0] <= polished.fun * (1.0 + 1e-12)


@pytest.mark.parametrize(
    "seed, params",
    [(8, dict(solver="gd")), (47, {}), (186, {}), (94, dict(step="exact"))],
)
def test_full_batch_clipped_relu_reaches_a_minimum_derivative_free_search_cannot_improve(
    seed, params
):
    # Clipped to [0, 1] (ReLU6-like): a unit left at z = 1 by a line search has slope 0
    # on the knot's right, and steepest descent moved it left, up the loss. Fits stopped
    # there, 2e-4 (default conjugate gradients) to 3.5% (gd) above the minimum that
    # Nelder-Mead, which needs no gradient, finds from the fitted weights.
    clipped = PiecewiseLinear([0.0, 1.0], [0.0, 1.0], 0.0, 0.0)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 3))
    y = clipped(X @ rng.standard_normal(3) + 0.3) + 0.1 * rng.standard_normal(100)

    def objective(theta):
        return 0.5 * np.mean((clipped(X @ theta[:3] + theta[3]) - y) ** 2)

    model = OptimalLRRegressor(clipped, batch_size="full", tol=0.0, max_iter=300, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    theta = np.r_[model.coef_, model.intercept_]
    options = dict(xatol=1e-13, fatol=1e-18, maxiter=40_000, maxfev=40_000)
    polished = minimize(objective, theta, method="Nelder-Mead", options=options)
    assert objective(theta) <= polished.fun * (1.0 + 1e-9)


@pytest.mark.parametrize("preconditioned", [False, True])
@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_the_direction_along_the_knots_keeps_those_units_still_and_descends(preconditioned, fmt):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4)) + 1.0
    grad_coef, grad_intercept = rng.standard_normal((2, 4)), rng.standard_normal(2)
    on_knot = np.zeros((40, 2), dtype=bool)
    on_knot[[3, 7, 11], 0] = True  # output 1 has none: its direction is -P g
    P = moments_preconditioner(X) if preconditioned else None
    data = sparse.csr_matrix(X) if fmt == "csr" else X
    gradients = (grad_coef, grad_intercept)
    direction_coef, direction_intercept = _along_knots(data, on_knot, gradients, P)
    change = X @ direction_coef.T + direction_intercept
    scale = np.abs(X @ grad_coef.T + grad_intercept).max()
    assert np.all(np.abs(change[on_knot]) <= 1e-12 * scale)
    gradient = np.hstack([grad_coef, grad_intercept[:, None]])
    direction = np.hstack([direction_coef, direction_intercept[:, None]])
    # P in centred form (see moments_preconditioner); the metric is the matrix it stands for.
    from sklearn_optlr._preconditioning import dense_preconditioner

    metric = np.eye(5) if P is None else dense_preconditioner(P)
    assert_allclose(direction[1], -metric @ gradient[1], rtol=1e-12)
    # Steepest in P's metric under the constraints: the closed form of the KKT system.
    rows = np.hstack([X[[3, 7, 11]], np.ones((3, 1))])
    multipliers = np.linalg.solve(rows @ metric @ rows.T, rows @ metric @ gradient[0])
    assert_allclose(direction[0], -metric @ (gradient[0] - rows.T @ multipliers), atol=1e-12)
    assert np.sum(gradient * direction) < 0


class CountingPiecewiseLinear(PiecewiseLinear):
    """A PiecewiseLinear that counts how often its array properties are read: each read
    builds an array of all the knots, so a search that reads them once a knot costs the
    square of their number."""

    __slots__ = ()
    reads: ClassVar[Counter] = Counter()

    @property
    def knots(self):
        CountingPiecewiseLinear.reads["knots"] += 1
        return super().knots

    @property
    def values(self):
        CountingPiecewiseLinear.reads["values"] += 1
        return super().values

    @property
    def slopes(self):
        CountingPiecewiseLinear.reads["slopes"] += 1
        return super().slopes


def many_knots(n_knots, cls=PiecewiseLinear, seed=0):
    """A continuous zig-zag of ``n_knots`` knots on [-3, 3]."""
    rng = np.random.default_rng(seed)
    knots = np.sort(rng.uniform(-3.0, 3.0, n_knots))
    return cls(knots, np.cumsum(rng.uniform(-0.1, 0.1, n_knots)), 0.2, -0.3)


def test_exact_step_reads_the_activation_a_number_of_times_independent_of_its_knots():
    # Defect 8b of issue 15: the numpy search rebuilt the activation's arrays for every
    # knot (2 full-batch epochs took 0.16 s with 500 knots and 6 s with 4,000). The cost
    # of one search must not grow faster than its kink crossings: the arrays are read a
    # fixed number of times, however many knots there are.
    rng = np.random.default_rng(0)
    z, v = rng.uniform(-4.0, 4.0, (30, 2)), rng.standard_normal((30, 2))
    Y, weights = rng.standard_normal((30, 2)), np.full(30, 1.0 / 30)
    coef, direction_coef = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    reads = []
    for n_knots in (500, 4000):
        activation = many_knots(n_knots, CountingPiecewiseLinear)
        CountingPiecewiseLinear.reads.clear()
        step, value = exact_line_step(z, v, Y, weights, activation, coef, direction_coef, 0.1)
        assert step > 0 and np.isfinite(value)
        reads.append(sum(CountingPiecewiseLinear.reads.values()))
    assert reads[0] == reads[1] <= 6, reads


def line_problem(seed, activation, weighted, alpha):
    """A random line with units on knots, and the loss along it (vectorised in the step)."""
    rng = np.random.default_rng(seed)
    n_samples, n_outputs = rng.integers(1, 7), rng.integers(1, 3)
    knots = activation.knots
    z = rng.uniform(knots[0] - 1.0, knots[-1] + 1.0, (n_samples, n_outputs))
    z.flat[0] = knots[rng.integers(len(knots))]  # a unit on a knot, moving either way
    v = rng.standard_normal((n_samples, n_outputs))
    Y = rng.standard_normal((n_samples, n_outputs))
    weights = rng.random(n_samples) if weighted else np.ones(n_samples)
    weights /= weights.sum()
    coef, direction_coef = rng.standard_normal((2, n_outputs, 3))

    def loss(step):
        steps = np.asarray(step, dtype=float)[..., None, None]
        residual = activation(z + steps * v) - Y
        penalty = 0.5 * alpha * np.sum((coef + steps * direction_coef) ** 2, axis=(-2, -1))
        return 0.5 * np.sum(weights[:, None] * residual**2, axis=(-2, -1)) + penalty

    return z, v, Y, weights, coef, direction_coef, loss


def brute_force_minimum(z, v, activation, loss):
    """The loss's minimum along the line by brute force: a dense grid, and scipy's bounded
    scalar minimisation on every piece between consecutive kink crossings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        crossings = (activation.knots - z[..., None]) / v[..., None]
    crossings = np.unique(crossings[np.isfinite(crossings) & (crossings > 0)])
    end = 2.0 * crossings[-1] + 50.0 if crossings.size else 50.0
    bounds = np.concatenate([[0.0], crossings, [end]])
    lowest = loss(np.linspace(0.0, end, 20_001)).min()
    for low, high in pairwise(bounds):
        found = minimize_scalar(
            loss, bounds=(low, high), method="bounded", options={"xatol": 1e-10}
        )
        lowest = min(lowest, found.fun, loss(low), loss(high))
    return lowest


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "activation",
    [*ACTIVATION_CASES, many_knots(40, seed=1)],
    ids=[*map(str, ACTIVATION_CASES), "40 knots"],
)
@pytest.mark.parametrize("seed", range(4))
def test_exact_step_matches_a_brute_force_minimisation_along_the_line(
    activation, weighted, alpha, seed
):
    activation = resolve_activation(activation, negative_slope=0.05)
    z, v, Y, weights, coef, direction_coef, loss = line_problem(seed, activation, weighted, alpha)
    step, value = exact_line_step(z, v, Y, weights, activation, coef, direction_coef, alpha)
    assert step >= 0
    assert_allclose(value, loss(step), rtol=1e-12, atol=1e-15)  # a loss it really reaches
    lowest = brute_force_minimum(z, v, activation, loss)
    assert value <= lowest + 1e-12 * loss(0.0)


def test_a_bound_within_rounding_of_many_crossings_stays_inside_the_scratch():
    # count_crossings sizes the scratch and the fastmath-compiled crossing loop fills it;
    # the two can disagree on crossings within an ulp of the bound, and the loop then
    # wrote past the scratch (a segfault here, so the search runs in a child process).
    # Oracle: the loss on a fine grid of [0, bound].
    import subprocess
    import sys

    code = """
import numpy as np
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._line_search import exact_line_search
from sklearn_optlr._step import exact_line
rng = np.random.default_rng(0)
v = rng.uniform(0.1, 10, size=(5000, 1))
z, y, w = -0.7 * v, rng.uniform(0, 1, size=(5000, 1)), np.full(5000, 1 / 5000)
relu = resolve_activation("relu")
bound = 0.6999999999999998  # an ulp short of every unit's crossing
line = exact_line(z, v, y, w, relu, np.zeros((1, 1)), np.zeros((1, 1)), 0.0, bound)
step = exact_line_search(*line)
grid = np.linspace(0.0, bound, 20001)[:, None, None]
losses = 0.5 * np.sum(w[:, None] * (relu(z + grid * v) - y) ** 2, axis=(1, 2))
loss = 0.5 * np.sum(w[:, None] * (relu(z + step * v) - y) ** 2)
assert 0.0 <= step <= bound and loss <= losses.min() + 1e-12, (step, loss, losses.min())
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("n_knots", [1, 2, 7, 300])
@pytest.mark.parametrize("bound", [0.5, np.inf])
def test_count_crossings_and_pieces_match_a_direct_count(n_knots, bound):
    # Oracle: numpy's searchsorted for the pieces, and for the crossings every knot
    # tested against the unit's path, with units on knots, still and moving left.
    from sklearn_optlr._line_search import count_crossings, loss_along

    rng = np.random.default_rng(n_knots)
    knots = np.sort(rng.standard_normal(n_knots)) * 2
    z = rng.standard_normal(2000) * 2
    z[::10] = rng.choice(knots, size=200)
    v = rng.standard_normal(2000)
    v[::7] = 0.0
    steps = (knots[None, :] - z[:, None]) / np.where(v == 0, np.nan, v)[:, None]
    expected = np.sum((steps > 0) & (steps <= bound))
    assert count_crossings(z, v, z.size, knots, bound) == expected
    # The pieces: loss_along evaluates the activation at every unit.
    values, slopes = rng.standard_normal(n_knots), rng.standard_normal(n_knots + 1)
    slopes[1:-1] = np.diff(values) / np.diff(knots)
    activation = PiecewiseLinear(knots, values, slopes[0], slopes[-1])
    y, w = rng.standard_normal(2000), rng.uniform(0, 1, 2000)
    args = (z, v, y, w, z.size, activation.knots, activation.values, activation.slopes)
    direct = 0.5 * np.sum(w * (activation(z + 0.3 * v) - y) ** 2)
    assert_allclose(loss_along(0.3, *args, (0.0, 0.0, 0.0)), direct, rtol=1e-12)


@pytest.mark.parametrize("n_knots", [1, 3])
def test_the_scratch_count_equals_the_crossings_walked_at_a_bound_on_a_crossing(n_knots):
    # The exact search's scratch is sized by count_crossings and filled by the crossing
    # loop; where the two rounded the end of a line differently (a bound within an ulp
    # of a crossing; a fit compiled the loop with a fused multiply-add, the count
    # without), the loop dropped the last crossing in unit order, wherever it lay, and
    # the search could return no step where one lowered the loss to ~0. Oracle: the
    # loop's own count, and the search's step, given ample scratch. A fit compiles the
    # loop first, as the cached copy a later fit runs.
    from sklearn_optlr._line_search import _kink_crossings, count_crossings, exact_line_search

    rows = np.random.default_rng(0).standard_normal((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        OptimalLRRegressor("relu", batch_size="full", step="exact", max_iter=2).fit(
            rows, rows @ [1.0, -1.0, 0.5]
        )

    rng = np.random.default_rng(n_knots)
    knots = np.sort(rng.uniform(-1, 1, n_knots))
    values, slopes = np.zeros(n_knots), np.linspace(0.5, 1.5, n_knots + 1)
    mismatches = 0
    for _ in range(300):
        z = rng.uniform(-3, 3, 50) * 10.0 ** rng.integers(-3, 3)
        v = rng.standard_normal(50) * 10.0 ** rng.integers(-6, 2)
        unit, knot = rng.integers(50), rng.choice(knots)
        step = (knot - z[unit]) / v[unit]
        if not step > 0:
            continue
        for bound in (np.nextafter(step, 0.0), step, np.nextafter(step, np.inf)):
            counted = count_crossings(z, v, z.size, knots, bound)
            ample = 50 * n_knots + 1
            walked = _kink_crossings(
                z, v, np.zeros(50), np.ones(50), 50, knots, values, slopes, (0.0, 0.0, 0.0),
                bound, np.empty(ample), np.empty((5, ample)),
            )[0]  # fmt: skip
            y, w = rng.standard_normal(50), np.ones(50)
            line = (z, v, y, w, 50, knots, values, slopes, (0.0, 0.0, 0.0), bound)
            sized = exact_line_search(*line, np.empty(counted + 1), np.empty((5, counted + 1)))
            amply = exact_line_search(*line, np.empty(ample), np.empty((5, ample)))
            mismatches += counted < walked or sized != amply
    assert mismatches == 0


def test_the_loss_along_a_line_of_float32_units_is_their_float64_loss():
    # Full batch checks float32 fits' steps on their units without converting them;
    # the loss must be that of the same values in float64 (oracle: NumPy in float64).
    from sklearn_optlr._line_search import loss_along
    from sklearn_optlr._step import line_units, unit_targets

    rng = np.random.default_rng(0)
    relu = resolve_activation("relu")
    z, v = rng.standard_normal((2, 3000, 2)).astype(np.float32)
    Y, weights = rng.standard_normal((3000, 2)), np.full(3000, 1 / 3000)
    units = line_units(z, v, unit_targets(Y, weights), relu, np.ones((2, 3)), np.ones((2, 3)), 0.5)
    expected = 0.5 * np.sum(weights[:, None] * (relu(z + 0.25 * v.astype(np.float64)) - Y) ** 2)
    expected += 0.25 * np.sum((1.0 + 0.25) ** 2 * np.ones((2, 3)))
    assert_allclose(loss_along(0.25, *units), expected, rtol=1e-12)
