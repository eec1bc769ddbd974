# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""What a fit warns and raises, from one place (``sklearn_optlr._diagnostics``).

The targets' range check is tested against distances to the range written out here,
independently of the module's own sums.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear, TrainingDivergedError
from sklearn_optlr._diagnostics import RANGE_LOSS_SHARE

RANGE_WARNING = "The targets leave the activation's range"


def standardised_diabetes():
    X, y = load_diabetes(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()


def range_warnings(record):
    """The warnings before training (later ones may repeat the cause first)."""
    return [
        str(w.message)
        for w in record
        if w.category is UserWarning and str(w.message).startswith(RANGE_WARNING)
    ]


def fit_recording(model, X, y, **fit_params):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(X, y, **fit_params)
    return record


@pytest.mark.parametrize(
    "activation, expected",
    [
        ("relu", r"\d+% of y is below 0.*'relu' predicts only values >= 0"),
        ("abs", r"\d+% of y is below 0.*'abs' predicts only values >= 0"),
        ("hard_tanh", r"\d+% of y is below -1 and \d+% of y is above 1.*\[-1, 1\]"),
        # Bounded above only: falls on both sides of 0.
        (PiecewiseLinear([0.0], [0.0], 1.0, -1.0), r"above 0.*PiecewiseLinear.*values <= 0"),
        # A clip to [0, 0.5]: bounded on both sides.
        (PiecewiseLinear([0.0, 0.5], [0.0, 0.5], 0.0, 0.0), r"values in \[0, 0.5\]"),
    ],
)
def test_targets_outside_the_range_warn_before_training_with_the_specifics(activation, expected):
    X, y = standardised_diabetes()
    if not isinstance(activation, str) and activation.slopes[-1] < 0:
        y = np.abs(y) + 1.0  # all above the range's top, 0
    model = OptimalLRRegressor(activation, batch_size="full", max_iter=3)
    messages = range_warnings(fit_recording(model, X, 2.0 * y))
    assert len(messages) == 1, messages
    assert re.search(expected, messages[0]), messages[0]


def test_the_share_below_is_that_of_the_targets():
    X, y = standardised_diabetes()
    messages = range_warnings(fit_recording(OptimalLRRegressor("relu", max_iter=2), X, y))
    share = round(100 * np.mean(y < 0))
    assert f"{share}% of y is below 0" in messages[0]


@pytest.mark.parametrize(
    "activation, shift",
    [
        ("relu", 0.0),  # targets >= 0
        ("abs", 0.0),
        ("identity", -5.0),
        ("leaky_relu", -5.0),
        ("hard_tanh", None),  # targets in [-1, 1]
    ],
)
def test_targets_inside_the_range_are_silent(activation, shift):
    X, y = standardised_diabetes()
    y = y - y.min() + shift if shift is not None else np.clip(y / 3, -1, 1)
    model = OptimalLRRegressor(activation, batch_size="full", max_iter=3)
    assert not range_warnings(fit_recording(model, X, y))


def test_noise_around_a_relu_teachers_zeros_is_silent():
    # A ReLU teacher's targets plus noise dip below 0 on many rows, by the noise only:
    # ReLU is the right model, and no warning should say otherwise.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 5))
    y = np.maximum(X @ rng.standard_normal(5), 0) + 0.05 * rng.standard_normal(2000)
    assert np.mean(y < 0) > 0.2
    model = OptimalLRRegressor("relu", batch_size="full", max_iter=3)
    assert not range_warnings(fit_recording(model, X, y))


@pytest.mark.parametrize("high, above", [(2.0, True), (10.0, False)])
def test_the_range_warning_threshold_is_a_share_of_the_variance(high, above):
    # 30 targets at -1, 10 at `high`, 60 at 0: ReLU's range leaves the distance 1 on the
    # 30 rows, whatever the weights; how much of the variance that is depends on `high`.
    y = np.repeat([-1.0, high, 0.0], [30, 10, 60])
    X = np.random.default_rng(0).standard_normal((y.size, 2))
    share = np.mean(np.minimum(y, 0.0) ** 2) / y.var()
    assert (share >= RANGE_LOSS_SHARE) == above  # the two cases straddle the threshold
    messages = range_warnings(fit_recording(OptimalLRRegressor("relu", max_iter=2), X, y))
    assert bool(messages) == above


def test_sample_weights_enter_the_range_check():
    X, y = standardised_diabetes()
    y = np.abs(y)
    y[:10] = -3.0
    weights = np.ones_like(y)
    model = OptimalLRRegressor("relu", batch_size="full", max_iter=2)
    assert range_warnings(fit_recording(model, X, y, sample_weight=weights))
    weights[:10] = 0.0  # the rows below the range no longer count
    assert not range_warnings(fit_recording(model, X, y, sample_weight=weights))


def test_later_convergence_warnings_name_the_range_first():
    X, y = load_diabetes(return_X_y=True)  # targets 25 to 346
    X = (X - X.mean(0)) / X.std(0)
    model = OptimalLRRegressor("hard_tanh", batch_size="full", max_iter=2)
    record = fit_recording(model, X, y)
    later = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert later
    for message in later:
        assert message.startswith(RANGE_WARNING), message
        assert message.index("above 1") < message.lower().find("standardise")


def test_divergence_is_a_value_error_that_model_selection_catches():
    X, y = standardised_diabetes()
    model = OptimalLRRegressor(step=1e12, solver="gd", precondition=False, batch_size=32)
    with pytest.raises(ValueError, match="diverged") as error:
        model.fit(X, y)
    assert isinstance(error.value, TrainingDivergedError)
    assert isinstance(error.value, FloatingPointError)
    # scikit-learn's model selection catches it (as a ValueError) and scores the split NaN.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(model, {"step": [1e12, "pooled"]}, cv=2, error_score=np.nan)
        search.fit(X, y)
    assert np.all(np.isnan(search.cv_results_["split0_test_score"][:1]))
    assert search.best_params_ == {"step": "pooled"}


@pytest.mark.parametrize("dtype, limit", [(np.float64, "1e+154"), (np.float32, "2e+19")])
def test_divergence_names_the_overflow_limit_of_the_datas_dtype(dtype, limit):
    X, y = standardised_diabetes()
    model = OptimalLRRegressor(step=1e12, solver="gd", precondition=False, batch_size=32)
    with pytest.raises(TrainingDivergedError) as error:
        model.fit(X.astype(dtype), y.astype(dtype))
    message = str(error.value)
    assert f"beyond about {limit} overflow {np.dtype(dtype).name}" in message


@pytest.mark.parametrize("batch_size, step", [("full", 10.0), (16, 2.0)])
def test_a_fixed_step_that_raises_the_loss_says_so(batch_size, step):
    # The stopping rule reads a rising loss as one that stopped falling: without this
    # warning these fits ended as converged, at losses of 1e22 and 1e40.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = X @ [1.0, 2.0, -1.0, 0.5]
    model = OptimalLRRegressor(step=step, batch_size=batch_size, solver="gd", random_state=0)
    record = fit_recording(model, X, y)
    assert model.loss_curve_[-1] > 1e6 * model.loss_curve_[0]
    messages = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert any(f"the fixed step={step} is too large" in message for message in messages)


def test_a_fixed_step_that_lowers_the_loss_does_not_warn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = X @ [1.0, 2.0, -1.0, 0.5]
    model = OptimalLRRegressor(step=0.01, batch_size=16, solver="gd", max_iter=5, random_state=0)
    record = fit_recording(model, X, y)
    assert not [w for w in record if "too large" in str(w.message)]


def test_targets_of_1e200_are_checked_without_overflow():
    X, y = standardised_diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = OptimalLRRegressor("relu", batch_size="full", max_iter=2)
        try:
            messages = range_warnings(fit_recording(model, X, np.abs(y) * 1e200))
        except TrainingDivergedError:
            messages = []
    assert not messages  # all targets are >= 0: inside ReLU's range
    from sklearn_optlr._activations import resolve_activation
    from sklearn_optlr._diagnostics import targets_outside_range

    weights = np.full(y.size, 1.0 / y.size)
    cause = targets_outside_range(resolve_activation("relu"), "relu", (y * 1e200)[:, None], weights)
    assert cause.startswith(f"{round(100 * np.mean(y < 0))}% of y is below 0")


# --- Stopped far from a minimum --------------------------------------------------------

FAR = "far from a minimum"


def convergence_messages(record):
    return [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]


def offset_column_data(n_samples=1000):
    """A column of 1e9 +- 1 (uniform) next to a unit-scale one, y linear in both."""
    rng = np.random.default_rng(0)
    X = np.column_stack([1e9 + rng.uniform(-1.0, 1.0, n_samples), rng.standard_normal(n_samples)])
    return X, 3.0 * (X[:, 0] - 1e9) + X[:, 1]


def test_a_column_far_from_zero_that_stalls_plain_descent_warns_with_its_cause_first():
    # Full batch without the preconditioner: the fit stopped at R^2 0.26, where least
    # squares reaches 1, and said nothing.
    X, y = offset_column_data()
    model = OptimalLRRegressor(batch_size="full", precondition=False, random_state=0)
    messages = convergence_messages(fit_recording(model, X, y))
    assert model.score(X, y) < 0.5
    assert len(messages) == 1, messages
    assert messages[0].startswith("Columns of X on very different scales or far from zero")
    assert FAR in messages[0] and "precondition=True" in messages[0]
    # The preconditioned fit reaches least squares, to the rounding of 1e9 x coef, and
    # a step that would "gain" at that level is rounding, not a reason to warn.
    model = OptimalLRRegressor(batch_size="full", precondition=True, random_state=0)
    assert not convergence_messages(fit_recording(model, X, y))
    assert model.score(X, y) > 1 - 1e-9


@pytest.mark.parametrize("condition", [1.5, 10.0, 1000.0])
def test_steps_per_tenfold_is_steepest_descents_worst_case(condition):
    # Oracle: steepest descent with the optimal step on diag(1, condition) from the
    # start whose gradient weighs both directions equally, Kantorovich's worst case.
    from sklearn_optlr._diagnostics import _steps_per_tenfold

    A, x = np.diag([1.0, condition]), np.array([1.0, 1.0 / condition])
    start, n_steps = 0.5 * x @ A @ x, 0
    while 0.5 * x @ A @ x > start / 10:
        g = A @ x
        x, n_steps = x - (g @ g) / (g @ A @ g) * g, n_steps + 1
    assert n_steps - 1 < _steps_per_tenfold(condition) <= n_steps


def test_a_short_fit_on_standardised_columns_does_not_blame_their_scales():
    # Columns' sizes 1.01 times apart: plain descent needs a quarter of a step per
    # tenfold decrease, and a one-epoch fit was told its columns were on very different
    # scales (the rule compared the condition number, 1.02, with the one step taken).
    X, y = noisy_linear_data()
    model = OptimalLRRegressor(batch_size="full", max_iter=1, precondition=False, random_state=0)
    messages = convergence_messages(fit_recording(model, X, y))
    assert len(messages) == 1 and "Maximum iterations (1)" in messages[0], messages
    assert "scales" not in messages[0]


def noisy_linear_data(n_samples=2000, n_features=5):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, n_features))
    return X, X @ rng.standard_normal(n_features) + 0.5 * rng.standard_normal(n_samples)


@pytest.mark.parametrize("batch_size", [1, 8, 32, "auto"])
@pytest.mark.parametrize("average", ["auto", True, False])
def test_converged_mini_batch_fits_stay_silent(batch_size, average):
    # The step is taken on the whole objective, which carries no batch noise; a model
    # close to the minimum (the average, or the last iterate) gains less than noise.
    X, y = noisy_linear_data()
    model = OptimalLRRegressor(batch_size=batch_size, average=average, random_state=0)
    assert not convergence_messages(fit_recording(model, X, y))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_stalled_last_iterate_of_mini_batches_warns(batch_size):
    # Without averaging the last iterate sits at its batches' noise floor, so the rule
    # asks a step to halve its loss; a column 1e6 times the others (too few rows a
    # batch to precondition) leaves it at R^2 below 0, far above any such floor. It
    # stayed silent when the rule skipped last iterates altogether.
    X, y = noisy_linear_data()
    X[:, 1] *= 1e6
    model = OptimalLRRegressor(batch_size=batch_size, average=False, random_state=0)
    messages = convergence_messages(fit_recording(model, X, y))
    assert model.score(X, y) < 0.5
    assert len(messages) == 1, messages
    assert messages[0].startswith("Columns of X on very different scales")


def test_the_readme_demo_stays_silent():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    model = make_pipeline(
        StandardScaler(), OptimalLRRegressor("relu", batch_size="full", random_state=0)
    )
    assert not convergence_messages(fit_recording(model, X, y))


def test_an_averaged_fit_within_noise_of_the_minimum_stays_silent():
    # The demo's abs at batch size 1, second fold: its one step would gain 3.2% of the
    # loss, just above fitting noise's expectation (11 / 353 = 3.1%), well within its
    # spread (two standard deviations more: 5.8%). The bound used to be the expectation.
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    train, _ = list(KFold(5, shuffle=True, random_state=0).split(X))[1]
    model = make_pipeline(StandardScaler(), OptimalLRRegressor("abs", batch_size=1, random_state=0))
    assert not convergence_messages(fit_recording(model, X[train], y[train]))


def test_an_unfinished_fit_on_scaled_columns_names_no_scale_cause():
    # Three steps of plain descent on correlated columns: far from the minimum, but the
    # columns are standardised, so the advice is more epochs, not scaling.
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    Z = rng.standard_normal((2000, 5))
    X = StandardScaler().fit_transform(Z + 3.0 * Z[:, :1])
    y = X @ [3.0, -3.0, 2.0, -2.0, 1.0] + 0.5 * rng.standard_normal(2000)
    model = OptimalLRRegressor(batch_size="full", solver="gd", precondition=False, max_iter=3)
    messages = convergence_messages(fit_recording(model, X, y))
    assert len(messages) == 1, messages
    assert messages[0].startswith("Maximum iterations (3) reached") and FAR not in messages[0]
    assert "one optimal step" in messages[0] and "Raise max_iter" in messages[0]
    assert "Standardise X" not in messages[0] and "scales" not in messages[0]


@pytest.mark.parametrize("precondition", [True, False])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_the_rule_is_one_optimal_step_against_tol_and_noise(precondition, alpha):
    # Identity units make the loss quadratic, so the optimal step along a direction is
    # the minimum along it, found here by a 1-D search. The direction is written out:
    # minus the dense P times the gradient, or steepest descent on standardised columns
    # mapped back to (W, b) by the chain rule: on x'_j = (x_j - m_j) / s_j,
    # dL/dw'_j = (g_j - m_j g_b) / s_j, so dw_j = -(g_j - m_j g_b) / s_j**2 and
    # db = -g_b - sum_j dw_j m_j. The rule must warn exactly where that step gains more
    # than max(tol, what fitting noise could gain) of the loss.
    from scipy.optimize import minimize_scalar
    from sklearn.linear_model import Ridge

    from sklearn_optlr._config import resolve
    from sklearn_optlr._diagnostics import _far_from_a_minimum
    from sklearn_optlr._preconditioning import dense_preconditioner, moments_preconditioner
    from sklearn_optlr._solver import start

    rng = np.random.default_rng(0)
    n_samples, n_features = 400, 3
    X = rng.standard_normal((n_samples, n_features)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 0.0]
    X[:, 2] += 0.05 * X[:, 0]  # correlated
    y = X @ [1.0, 0.2, 5.0] + 0.5 * rng.standard_normal(n_samples)
    optimum = Ridge(alpha=alpha * n_samples).fit(X, y)
    preconditioner = moments_preconditioner(X)
    # Fitting noise's gain: a chi-square of k degrees of freedom over n, mean plus 2 sd.
    k = n_features + 1
    noise = (k + 2 * np.sqrt(2 * k)) / n_samples

    def loss(coef, intercept):
        error = X @ coef + intercept - y
        return 0.5 * np.mean(error**2) + 0.5 * alpha * coef @ coef

    checked = set()
    for size in np.geomspace(1e-3, 10.0, 25):
        coef = optimum.coef_ + size * np.array([0.3, -0.05, 1.0])
        intercept = optimum.intercept_ + size
        error = X @ coef + intercept - y
        grad_coef, grad_intercept = error @ X / n_samples + alpha * coef, error.mean()
        if precondition:
            direction = -dense_preconditioner(preconditioner) @ np.append(grad_coef, grad_intercept)
        else:
            mean, spread = X.mean(0), X.std(0)
            direction_coef = -(grad_coef - mean * grad_intercept) / spread**2
            direction = np.append(direction_coef, -grad_intercept - direction_coef @ mean)
        best = minimize_scalar(
            lambda a: loss(coef + a * direction[:-1], intercept + a * direction[-1]),
            bounds=(0.0, 100.0), method="bounded", options=dict(xatol=1e-12),
        )  # fmt: skip
        share = (loss(coef, intercept) - best.fun) / loss(coef, intercept)
        for tol in (0.0, 0.05, 0.2):
            bound = max(tol, noise)
            if abs(share / bound - 1.0) < 0.01:
                continue  # too close to call for the 1-D search
            params = OptimalLRRegressor(
                "identity", batch_size="full", alpha=alpha, tol=tol, precondition=precondition
            ).get_params()
            config = resolve(params, X, 1, incremental=False)
            state = start(None, 1, n_features, np.float64, 0)
            state.preconditioner = preconditioner if precondition else None
            model = (coef[None, :], np.array([intercept]))
            found = _far_from_a_minimum(X, y[:, None], None, model, state, config, n_steps=10)
            assert (found is not None) == (share > bound), (size, tol, share)
            checked.add(share > bound)
    assert checked == {True, False}


# --- Found by an adversarial review ---------------------------------------------------


@pytest.mark.parametrize(
    "activation, target",
    [
        ("hard_tanh", lambda z: np.clip(z, -1.0, 1.0)),
        ("leaky_relu", lambda z: np.where(z >= 0, z, 0.01 * z)),
    ],
)
def test_an_exact_fit_is_not_called_far_from_a_minimum(activation, target):
    # A noiseless teacher fitted to a loss of 1e-29 (R^2 1.0) was told that one step
    # "would lower the training loss by 36.5%": a share of a loss at the targets'
    # rounding, which no step can gain in any sense that matters.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2000, 5))
    y = target(X @ rng.normal(size=5) + 0.3)
    model = OptimalLRRegressor(activation, batch_size="full", random_state=0)
    assert not convergence_messages(fit_recording(model, X, y))
    assert model.score(X, y) > 1 - 1e-12


def test_a_rise_within_rounding_is_not_blamed_on_the_fixed_step():
    # A converged model refitted with a fixed step rose by one unit in the last place
    # and was told "step=0.1 is too large".
    X, y = noisy_linear_data()
    model = OptimalLRRegressor(warm_start=True, random_state=0).fit(X, y)
    model.set_params(step=0.1)
    assert not [m for m in convergence_messages(fit_recording(model, X, y)) if "rose" in m]


def test_targets_whose_squares_underflow_are_refused_and_the_model_kept():
    # The loss underflowed to 0 at the start, read as an exact fit: one epoch, 4.5 times
    # the least-squares loss, no word.
    X, y = noisy_linear_data()
    model = OptimalLRRegressor(random_state=0).fit(X, y)
    coef = model.coef_.copy()
    tiny = y / np.max(np.abs(y)) * 1e-170
    with pytest.raises(ValueError, match="largest target of y is 1.*e-170 in magnitude"):
        model.fit(X, tiny)
    np.testing.assert_array_equal(model.coef_, coef)
    # With tol=0 the loss is not read: the steps scale exactly (tests/test_numerics.py).
    OptimalLRRegressor(tol=0.0, max_iter=3).fit(X, tiny)
    # All-zero targets are an exact fit, not small ones.
    assert OptimalLRRegressor().fit(X, np.zeros(len(y))).score(X, np.zeros(len(y))) == 1.0
