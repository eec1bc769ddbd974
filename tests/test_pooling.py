# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The pooled step rule: its running sums, its paths, and why it is the default.

Oracles: the definition written out on plain floats (running means of the forms, the
cap at the batch's own rate), the public ``optimal_learning_rate`` for each batch's own
rate, and scipy's L-BFGS-B for the optimum of a leaky-ReLU fit.
"""

import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import sparse
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from sklearn_optlr import OptimalLRRegressor, optimal_learning_rate
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._pooling import (
    POOLED_MIN_ROWS,
    POOLED_WINDOW_PER_WEIGHT,
    new_rate_memory,
    pooled_rate,
    pooled_window,
)
from sklearn_optlr._solver import compiled_epoch, numpy_epoch


def pooled_rates_by_definition(forms, window, shares=None):
    """Rates of the pooled rule over a sequence of ``(numerator, denominator)``, on plain
    floats: means over the last ``window`` batches (all of them while fewer), exponentially
    weighted after that, capped at each batch's own ratio; a batch of ``share`` of a full
    batch's rows weighs ``share`` times as much, and fills ``share`` of the window."""
    shares = [1.0] * len(forms) if shares is None else shares
    rates, mean_numerator, mean_denominator, seen = [], 0.0, 0.0, 0.0
    for (numerator, denominator), share in zip(forms, shares):
        seen += share
        newest = min(1.0, share / min(seen, window))
        mean_numerator = (1 - newest) * mean_numerator + newest * numerator
        mean_denominator = (1 - newest) * mean_denominator + newest * denominator
        rates.append(min(mean_numerator / mean_denominator, numerator / denominator))
    return rates


@pytest.mark.parametrize("window", [1.0, 3.0, 7.5])
def test_pooled_rate_follows_its_definition_whatever_the_scaling(window):
    rng = np.random.default_rng(0)
    forms = [(rng.uniform(0.1, 2.0), rng.uniform(0.1, 2.0)) for _ in range(30)]
    expected = pooled_rates_by_definition(forms, window)
    # The kernels pass the forms of the gradient divided by a power of two, a new one
    # every batch: the forms are divided by its square.
    memory = new_rate_memory()
    for (numerator, denominator), rate in zip(forms, expected):
        power = int(rng.integers(-30, 30))
        scaled = math.ldexp(numerator, -2 * power), math.ldexp(denominator, -2 * power)
        scale = math.ldexp(1.0, power)
        assert_allclose(pooled_rate(memory, *scaled, scale, window), rate, rtol=1e-12)
    assert memory[3] == len(forms)


@pytest.mark.parametrize("window", [1.0, 3.0, 7.5])
def test_a_partial_batch_weighs_in_proportion_to_its_rows(window):
    rng = np.random.default_rng(1)
    forms = [(rng.uniform(0.1, 2.0), rng.uniform(0.1, 2.0)) for _ in range(30)]
    shares = rng.choice([1.0, 1.0, 0.5, 1 / 32], size=len(forms)).tolist()
    memory = new_rate_memory()
    rates = [pooled_rate(memory, *form, 1.0, window, share) for form, share in zip(forms, shares)]
    assert_allclose(rates, pooled_rates_by_definition(forms, window, shares), rtol=1e-12)
    assert_allclose(memory[3], sum(shares))


def test_a_one_row_batch_does_not_take_its_own_rate():
    # At a window of one batch, a last batch of one row on a shallow piece (a rate 100
    # times the others') keeps the full batch's forms 31 to 1.
    memory = new_rate_memory()
    pooled_rate(memory, 1.0, 1.0, 1.0, 1.0)
    rate = pooled_rate(memory, 1e-4, 1e-6, 1.0, 1.0, 1 / 32)
    assert_allclose(rate, (31 + 1e-4) / (31 + 1e-6), rtol=1e-12)
    # The next full batch fills the window alone again.
    assert pooled_rate(memory, 2.0, 1.0, 1.0, 1.0) == 2.0


def test_leaky_relu_iterates_stay_near_the_optimum_with_a_one_row_last_batch():
    # The README demo's diabetes folds (353 training rows, a last batch of one row at
    # batch size 32), without averaging: that row, on leaky ReLU's 0.01 piece, took its
    # own rate and threw the iterates to losses of 1e6 and more (test R^2 -2222).
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    train, test = next(iter(list(KFold(5, shuffle=True, random_state=0).split(X))[1:]))
    scaler = StandardScaler().fit(X[train])
    model = OptimalLRRegressor("leaky_relu", batch_size=32, average=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(X[train]), y[train])
    # The optimum's training loss is about 1,430 (1,800 to 2,100 for batch-32 iterates).
    assert max(model.loss_curve_) < 2 * min(model.loss_curve_)
    assert model.score(scaler.transform(X[test]), y[test]) > 0.3


def test_window_of_one_is_the_batch_own_rate():
    memory = new_rate_memory()
    for numerator, denominator in [(1.0, 4.0), (3.0, 0.5), (2.0, 2.0)]:
        assert pooled_rate(memory, numerator, denominator, 1.0, 1.0) == numerator / denominator


def test_pooled_rate_never_exceeds_the_batch_own_rate():
    memory = new_rate_memory()
    pooled_rate(memory, 1.0, 1.0, 1.0, 10.0)  # a history of rate 1
    assert pooled_rate(memory, 1.0, 100.0, 1.0, 10.0) == 0.01  # a much more curved batch
    # A shallow batch (both forms small) barely moves the pooled rate, however large its own.
    assert pooled_rate(memory, 1e-4, 1e-8, 1.0, 10.0) < 0.2


def test_batches_without_descent_are_not_pooled():
    memory = new_rate_memory()
    pooled_rate(memory, 2.0, 1.0, 1.0, 5.0)
    before = memory.copy()
    assert pooled_rate(memory, 0.0, 0.0, 1.0, 5.0) == 0.0
    assert pooled_rate(memory, 1.0, 0.0, 1.0, 5.0) == 0.0
    np.testing.assert_array_equal(memory, before)


def test_forms_hundreds_of_orders_apart_stay_finite():
    # Mantissas of powers of two that no float64 can hold side by side: the old sums give
    # way to the new, larger ones instead of overflowing, and a tiny batch leaves them be.
    tiny, huge = math.ldexp(1.0, -750), math.ldexp(1.0, 750)  # forms of 2**-1500, 2**1500
    memory = new_rate_memory()
    assert pooled_rate(memory, 0.75, 0.5, tiny, 4.0) == 1.5
    assert_allclose(pooled_rate(memory, 0.5, 0.25, huge, 4.0), 2.0, rtol=1e-12)
    assert_allclose(pooled_rate(memory, 0.5, 1.0, tiny, 4.0), 0.5, rtol=1e-12)  # its own cap
    rate = pooled_rate(memory, 0.5, 0.125, 1.0, 4.0)
    assert math.isfinite(rate) and rate > 0


def test_window_of_one_forgets_a_direction_far_larger_than_the_new_one():
    # Preconditioned full batch at 1e-150 features: a first direction of about 2**500 and
    # later ones of about 2**-300. The old memory must not turn the new forms into 0 / 0.
    memory = new_rate_memory()
    assert pooled_rate(memory, 0.5, 0.25, math.ldexp(1.0, 500), 1.0) == 2.0
    assert pooled_rate(memory, 0.75, 0.25, math.ldexp(1.0, -300), 1.0) == 3.0


def test_window_is_half_as_many_rows_as_weights_and_at_least_32_rows():
    assert (POOLED_WINDOW_PER_WEIGHT, POOLED_MIN_ROWS) == (0.5, 32)
    assert pooled_window(n_weights=110, batch_size=1) == 55.0
    assert pooled_window(n_weights=110, batch_size=11) == 5.0
    assert pooled_window(n_weights=110, batch_size=200) == 1.0
    assert pooled_window(n_weights=11, batch_size=1) == 32.0
    assert pooled_window(n_weights=11, batch_size=8) == 4.0
    assert pooled_window(n_weights=11, batch_size=32) == 1.0


def gradient(X, Y, coef, intercept, activation):
    """The batch gradient written out: ``1/M sum_i (D_i e_i) [x_i, 1]``."""
    value, slope = activation.value_and_slope(X @ coef.T + intercept)
    residual = slope * (value - Y) / len(X)
    return residual.T @ X, residual.sum(axis=0)


@pytest.mark.parametrize("activation", ["identity", "relu", "leaky_relu"])
@pytest.mark.parametrize("batch_size", [1, 5])
def test_epoch_takes_the_pooled_rate_of_the_seed_forms(activation, batch_size):
    """Both epoch paths against the rule run by hand: each batch's numerator <g, g> from the
    written-out gradient, its denominator from the public optimal rate, the pooled rate by
    definition."""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((23, 4)), rng.standard_normal((23, 2))
    coef0, intercept0 = 0.3 * rng.standard_normal((2, 4)), rng.standard_normal(2)
    function = resolve_activation(activation, negative_slope=0.1)
    order, window = rng.permutation(23), 3.0
    coef, intercept, forms, shares, rates = coef0.copy(), intercept0.copy(), [], [], []
    for start in range(0, 23, batch_size):
        rows = order[start : start + batch_size]
        grad_coef, grad_intercept = gradient(X[rows], Y[rows], coef, intercept, function)
        numerator = np.sum(grad_coef**2) + np.sum(grad_intercept**2)
        own = optimal_learning_rate(coef, intercept, X[rows], Y[rows], activation=function)
        if numerator == 0.0:
            rates.append(0.0)
            continue
        forms.append((numerator, numerator / own))
        shares.append(len(rows) / batch_size)  # the last batch has 3 rows at batch size 5
        rates.append(pooled_rates_by_definition(forms, window, shares)[-1])
        coef -= rates[-1] * grad_coef
        intercept -= rates[-1] * grad_intercept
    paths = [(numpy_epoch, X), (compiled_epoch, X), (compiled_epoch, sparse.csr_matrix(X))]
    for epoch, X_in in paths:
        c, b, memory = coef0.copy(), intercept0.copy(), new_rate_memory()
        record = epoch(
            X_in, Y, None, c, b, activation=function, step="pooled", batch_size=batch_size,
            alpha=0.0, order=order, rate_memory=memory, window=window,
        )  # fmt: skip
        assert_allclose(c, coef, rtol=1e-9, atol=1e-12)
        assert_allclose(b, intercept, rtol=1e-9, atol=1e-12)
        assert_allclose(record.step_mean, np.mean(rates), rtol=1e-9)
        assert_allclose(memory[3], sum(shares))


def leaky_teacher(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2000, 10))
    function = resolve_activation("leaky_relu")
    y = function(X @ rng.standard_normal(10) / np.sqrt(10)) + 0.05 * rng.standard_normal(2000)

    def objective(theta):
        return 0.5 * np.mean((function(X @ theta[:-1] + theta[-1]) - y) ** 2)

    optimum = min(
        minimize(objective, 0.1 * rng.standard_normal(11), method="L-BFGS-B").fun for _ in range(3)
    )
    return X, y, objective, optimum


def test_pooled_default_trains_leaky_relu_one_row_at_a_time():
    """The reason for the default: one row at a time on leaky ReLU, the seed's rate fits each
    noisy row on the 0.01 piece by moving its pre-activation 100 times the error; pooled, the
    fit gets within 1% of the L-BFGS-B optimum in 5 epochs."""
    X, y, objective, optimum = leaky_teacher()
    excess = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for step in ("pooled", "optimal"):
            model = OptimalLRRegressor(
                "leaky_relu", step=step, batch_size=1, max_iter=5, tol=0.0, random_state=0
            ).fit(X, y)
            excess[step] = (objective(np.r_[model.coef_, model.intercept_]) - optimum) / optimum
    assert excess["pooled"] < 0.01
    assert excess["optimal"] > 10
    assert OptimalLRRegressor().step == "pooled"


def test_pooled_memory_carries_across_warm_start_and_partial_fit():
    X, y, _, _ = leaky_teacher()
    X, y = X[:300], y[:300]
    options = dict(batch_size=1, shuffle=False, tol=0.0, n_iter_no_change=50)
    reference = OptimalLRRegressor("leaky_relu", max_iter=3, **options).fit(X, y)
    warm = OptimalLRRegressor("leaky_relu", max_iter=1, warm_start=True, **options).fit(X, y)
    warm.set_params(max_iter=2).fit(X, y)
    incremental = OptimalLRRegressor("leaky_relu", **options)
    for _ in range(3):
        incremental.partial_fit(X, y)
    for model in (warm, incremental):
        assert_allclose(model.coef_, reference.coef_, rtol=1e-12)
        assert_allclose(model.learning_rate_curve_, reference.learning_rate_curve_, rtol=1e-12)


def test_full_batch_fit_is_the_optimal_step_but_partial_fit_chunks_are_pooled():
    X, y, _, _ = leaky_teacher()
    X, y = X[:40], y[:40]  # fewer rows than half the weights would make a window of 1
    fits = {
        step: OptimalLRRegressor("leaky_relu", step=step, batch_size="full", max_iter=5, tol=0.0)
        for step in ("pooled", "optimal")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in fits.values():
            model.fit(X, y)
    assert_allclose(fits["pooled"].coef_, fits["optimal"].coef_, rtol=1e-12)
    # partial_fit on chunks of 2 rows (each chunk its own full batch): pooled across calls.
    chunked = {step: OptimalLRRegressor("leaky_relu", step=step) for step in ("pooled", "optimal")}
    for start in range(0, 40, 2):
        for model in chunked.values():
            model.partial_fit(X[start : start + 2], y[start : start + 2])
    pooled, optimal = (np.array(chunked[s].learning_rate_curve_) for s in ("pooled", "optimal"))
    assert pooled[0] == optimal[0]  # the first step of a fit is the seed's
    assert not np.allclose(pooled[1:], optimal[1:])
