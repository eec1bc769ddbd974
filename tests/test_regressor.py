# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""OptimalLRRegressor: reductions to scikit-learn's linear models, model selection, the
incremental and warm-start paths, fitted attributes, input types, warnings and validation."""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear, optimal_learning_rate
from sklearn_optlr._activations import resolve_activation

ignore_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# The seed's plain method: optimal-step gradient descent, no averaging, no conjugate
# directions. Tests that write the algorithm out pin it explicitly.
SEED_METHOD = dict(solver="gd", step="optimal", average=False, precondition=False)


def linear_data(n_outputs=None, n_samples=60, seed=0):
    """Well-conditioned features, a linear truth with an offset, a little noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, 4))
    coef = np.array([1.0, -2.0, 0.5, 3.0])
    y = X @ coef + 0.7 + 0.1 * rng.standard_normal(n_samples)
    if n_outputs is None:
        return X, y
    Y = np.column_stack([y + k * X[:, k % 4] - k for k in range(n_outputs)])
    return X, Y


def full_batch(activation="identity", **params):
    """Long enough gradient descent to reach the optimum to machine-level accuracy."""
    defaults = dict(batch_size="full", max_iter=500, tol=0.0, n_iter_no_change=1000)
    return OptimalLRRegressor(activation, **(defaults | params))


# --- Reductions to closed-form linear models -------------------------------------------------


@ignore_convergence
@pytest.mark.parametrize("n_outputs", [None, 1, 3])
def test_identity_matches_linear_regression(n_outputs):
    X, y = linear_data(n_outputs)
    model = full_batch().fit(X, y)
    reference = LinearRegression().fit(X, y)
    assert model.coef_.shape == reference.coef_.shape
    assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-6)
    assert_allclose(model.intercept_, reference.intercept_, rtol=0, atol=1e-6)


@ignore_convergence
@pytest.mark.parametrize("n_outputs", [None, 3])
@pytest.mark.parametrize("alpha", [0.05, 1.0])
def test_identity_with_penalty_matches_ridge(alpha, n_outputs):
    # Our objective 1/(2n) ||e||^2 + alpha/2 ||W||^2 is Ridge's ||e||^2 + (alpha n) ||W||^2 over n.
    X, y = linear_data(n_outputs)
    model = full_batch(alpha=alpha).fit(X, y)
    reference = Ridge(alpha=alpha * X.shape[0]).fit(X, y)
    assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-6)
    assert_allclose(model.intercept_, reference.intercept_, rtol=0, atol=1e-6)


@ignore_convergence
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_identity_with_sample_weight_matches_ridge(alpha):
    X, y = linear_data()
    sample_weight = np.random.default_rng(1).uniform(0.1, 3.0, X.shape[0])
    model = full_batch(alpha=alpha).fit(X, y, sample_weight=sample_weight)
    reference = (Ridge(alpha=alpha * sample_weight.sum()) if alpha else LinearRegression()).fit(
        X, y, sample_weight=sample_weight
    )
    assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-6)
    assert_allclose(model.intercept_, reference.intercept_, rtol=0, atol=1e-6)


# --- Scale of the targets ------------------------------------------------------------------


@ignore_convergence
@pytest.mark.parametrize("batch_size", [1, 16, "full"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "abs", "identity"])
def test_fits_scale_with_the_targets_for_homogeneous_activations(activation, batch_size):
    # sigma(c z) = c sigma(z): with the intercept starting at the targets' scale, every
    # iterate on c y is c times the one on y. Powers of two keep the arithmetic exact.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((120, 4))
    Y = np.abs(X @ rng.standard_normal((4, 2)) + [0.3, -0.2]) * [1.0, 3.0]
    params = dict(batch_size=batch_size, max_iter=5, tol=0.0, random_state=0)
    reference = OptimalLRRegressor(activation, **params).fit(X, Y)
    for scale in [2.0**-14, 2.0**14]:
        scaled = OptimalLRRegressor(activation, **params).fit(X, scale * Y)
        assert_allclose(scaled.coef_, scale * reference.coef_, rtol=1e-12, atol=0)
        assert_allclose(scaled.intercept_, scale * reference.intercept_, rtol=1e-12, atol=0)


@pytest.mark.parametrize("batch_size", [1, 32, 200])
def test_relu_fits_targets_of_any_size(batch_size):
    # From an intercept of 1, targets of size 1e-4 took a first step far too long for them,
    # past the kink on most rows, and every unit died (R^2 -0.51); each output on its own
    # scale too, in one model.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 5))
    y = np.maximum(X @ [1.0, -1.0, 2.0, 0.0, 3.0], 0.0)
    Y = np.column_stack([1e-4 * y, 1e3 * np.maximum(X @ [0.5, 1.0, 0.0, -1.0, 0.2], 0.0)])
    model = OptimalLRRegressor("relu", batch_size=batch_size, random_state=0).fit(X, Y)
    scores = r2_score(Y, model.predict(X), multioutput="raw_values")
    assert scores == pytest.approx([1.0, 1.0], abs=1e-3)


# --- Model selection -------------------------------------------------------------------------


def test_grid_search_picks_relu_for_a_relu_teacher():
    # Positive targets from a ReLU teacher: only ReLU fits both the zero floor and the slope.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 5)) * [1.0, 2.0, 0.5, 3.0, 1.0] + 1.0
    y = np.maximum((X - 1.0) @ [1.0, -0.5, 2.0, 0.3, 0.0] + 0.5, 0.0)
    y += 0.05 * rng.standard_normal(y.shape)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), OptimalLRRegressor(random_state=0)),
        {
            "optimallrregressor__activation": ["identity", "relu", "abs", "hard_tanh"],
            "optimallrregressor__batch_size": ["full", 32],
        },
        cv=3,
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert search.best_params_["optimallrregressor__activation"] == "relu"
    assert search.best_score_ > 0.99
    scores = search.cv_results_["mean_test_score"]
    is_relu = search.cv_results_["param_optimallrregressor__activation"] == "relu"
    # Both batch sizes find the ReLU fit, and beat every other activation clearly.
    assert scores[is_relu].min() > scores[~is_relu].max() + 0.1


# --- partial_fit, warm_start -----------------------------------------------------------------


@ignore_convergence
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("activation", ["identity", "relu"])
# partial_fit's "auto" averages as True does (a chunk cannot choose between the average
# and the last iterate it was just fitted to); fit's "auto" may keep the last iterate.
@pytest.mark.parametrize("fit_average, partial_average", [(True, "auto"), (False, False)])
def test_one_partial_fit_equals_fit_with_one_epoch(
    activation, shuffle, fit_average, partial_average
):
    X, y = linear_data(n_outputs=2)
    params = dict(batch_size=10, shuffle=shuffle, random_state=3)
    fitted = OptimalLRRegressor(activation, max_iter=1, average=fit_average, **params).fit(X, y)
    incremental = OptimalLRRegressor(activation, average=partial_average, **params)
    incremental.partial_fit(X, y)
    for name in ("coef_", "intercept_", "loss_curve_", "learning_rate_curve_"):
        assert_allclose(getattr(incremental, name), getattr(fitted, name), rtol=1e-12)
    assert incremental.t_ == fitted.t_ == X.shape[0]
    assert incremental.n_iter_ == fitted.n_iter_ == 1


def test_partial_fit_accumulates_epochs():
    X, y = linear_data()
    model = OptimalLRRegressor(batch_size=16, random_state=0)
    for _ in range(3):
        model.partial_fit(X, y)
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    assert model.t_ == 3 * X.shape[0]
    assert model.loss_curve_[-1] < model.loss_curve_[0]


@ignore_convergence
def test_warm_start_continues():
    X, y = linear_data()
    model = OptimalLRRegressor(batch_size=20, max_iter=3, tol=0.0, warm_start=True, random_state=0)
    model.fit(X, y)
    first_curve = list(model.loss_curve_)
    model.set_params(max_iter=2).fit(X, y)
    assert model.n_iter_ == 5
    assert model.t_ == 5 * X.shape[0]
    assert model.loss_curve_[:3] == first_curve
    # Continuing from the fitted weights, not from the initial ones.
    assert model.loss_curve_[3] < first_curve[0]

    # Without warm_start a second fit starts over.
    model.set_params(warm_start=False, max_iter=2).fit(X, y)
    assert model.n_iter_ == 2
    assert_allclose(model.loss_curve_[0], first_curve[0])


@pytest.mark.parametrize("kind", ["outputs", "features"])
def test_partial_fit_with_other_shape_raises_and_keeps_model(kind):
    X, Y = linear_data(n_outputs=2)
    model = OptimalLRRegressor(batch_size=16, random_state=0).partial_fit(X, Y)
    coef, intercept, n_iter = model.coef_.copy(), model.intercept_.copy(), model.n_iter_
    if kind == "outputs":
        bad_X, bad_Y, message = X, np.column_stack([Y, Y[:, 0]]), "outputs"
    else:
        bad_X, bad_Y, message = X[:, :3], Y, "features"
    with pytest.raises(ValueError, match=message):
        model.partial_fit(bad_X, bad_Y)
    assert_array_equal(model.coef_, coef)
    assert_array_equal(model.intercept_, intercept)
    assert model.n_iter_ == n_iter


# --- Fitted attributes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_outputs, coef_shape",
    [(None, (4,)), (1, (1, 4)), (3, (3, 4))],
    ids=["1d", "n-by-1", "n-by-3"],
)
def test_fitted_attribute_shapes(n_outputs, coef_shape):
    X, y = linear_data(n_outputs)
    model = OptimalLRRegressor(batch_size=16, random_state=0).fit(X, y)
    assert model.coef_.shape == coef_shape
    if n_outputs is None:
        assert isinstance(model.intercept_, float)
    else:
        assert model.intercept_.shape == (n_outputs,)
    assert model.predict(X).shape == y.shape
    assert model.n_features_in_ == 4


def test_fitted_records_are_consistent():
    X, y = linear_data()
    model = OptimalLRRegressor("leaky_relu", batch_size=16, random_state=0).fit(X, y)
    assert model.n_iter_ == len(model.loss_curve_) > 1
    assert model.t_ == model.n_iter_ * X.shape[0]
    assert model.best_loss_ == min(model.loss_curve_)
    assert model.loss_ == model.loss_curve_[-1]
    assert len(model.learning_rate_curve_) == len(model.learning_rate_bounds_) == model.n_iter_
    for mean, (low, high) in zip(model.learning_rate_curve_, model.learning_rate_bounds_):
        assert 0 < low <= mean <= high
    # Several batches per epoch with different rows: the rates vary within an epoch.
    assert any(low < high for low, high in model.learning_rate_bounds_)
    assert model.validation_scores_ is None and model.best_validation_score_ is None


def test_early_stopping_records_validation_scores():
    X, y = linear_data(n_samples=100)
    model = OptimalLRRegressor(batch_size=16, early_stopping=True, random_state=0).fit(X, y)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.best_validation_score_ > 0.9
    assert model.best_loss_ is None
    # Only the training part of the split is seen by the solver.
    assert model.t_ == model.n_iter_ * (100 - 10)


def overfitting_data(seed=0):
    """Few noisy rows and many features: validation R^2 peaks early, then falls."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 80))
    y = X[:, :5].sum(axis=1) + rng.standard_normal(120)
    return X, y


@ignore_convergence
@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_training_after_early_stopping_continues_from_the_model_kept(average, method):
    X, y = overfitting_data()
    model = OptimalLRRegressor(
        batch_size=8, average=average, early_stopping=True, validation_fraction=0.25,
        n_iter_no_change=30, max_iter=500, warm_start=True, random_state=0,
    ).fit(X, y)  # fmt: skip
    best = int(np.argmax(model.validation_scores_))
    assert best < model.n_iter_ - 30  # the epochs after the best were rejected
    kept = model.coef_.copy(), model.intercept_
    # A step of 1e-300 leaves the weights where training resumes (and the average of
    # iterates that do not move is those iterates): they must be the model kept, not
    # the rejected last iterate, nor mixed with the rejected iterates' average.
    model.set_params(step=1e-300, solver="gd", early_stopping=False, max_iter=1)
    getattr(model, method)(X, y)
    assert_allclose(model.coef_, kept[0], rtol=0, atol=1e-12)
    assert_allclose(model.intercept_, kept[1], rtol=0, atol=1e-12)


def test_validation_scores_stay_one_per_epoch_across_warm_starts():
    X, y = linear_data(n_samples=100)
    model = OptimalLRRegressor(batch_size=16, warm_start=True, random_state=0)
    model.partial_fit(X, y)
    model.set_params(early_stopping=True).fit(X, y)
    scores = model.validation_scores_
    assert len(scores) == len(model.loss_curve_) == model.n_iter_
    # The partial_fit epoch had no held-out data.
    assert np.isnan(scores[0]) and not np.any(np.isnan(scores[1:]))
    assert model.best_validation_score_ == max(scores[1:])
    # A second early-stopped fit splits off new rows: its best is the model's score.
    n_before = model.n_iter_
    model.fit(X, y)
    assert model.best_validation_score_ == max(model.validation_scores_[n_before:])
    # Epochs without held-out data after it keep the record, with NaN for themselves; the
    # model is then no validated epoch, so there is no best score to report.
    recorded = list(model.validation_scores_)
    model.set_params(early_stopping=False).partial_fit(X, y)
    model.fit(X, y)
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_
    assert_array_equal(scores[: len(recorded)], recorded)
    assert np.all(np.isnan(scores[len(recorded) :]))
    assert model.best_validation_score_ is None


@pytest.mark.parametrize(
    "fraction, fix",
    [(0.1, "more data or a larger validation_fraction"), (0.99, "a smaller validation_fraction")],
)
def test_early_stopping_with_too_little_data_raises_and_says_which_way(fraction, fix):
    X, y = linear_data(n_samples=10)
    with pytest.raises(ValueError, match=fix):
        OptimalLRRegressor(early_stopping=True, validation_fraction=fraction).fit(X, y)


def test_feature_names_from_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = linear_data()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = OptimalLRRegressor(random_state=0).fit(frame, y)
    assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    assert_allclose(model.predict(frame), X @ model.coef_ + model.intercept_, rtol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"a": "z"}))
    assert not hasattr(OptimalLRRegressor(random_state=0).fit(X, y), "feature_names_in_")


# --- Input types -----------------------------------------------------------------------------


@pytest.mark.parametrize("n_outputs", [None, 2])
def test_float32_stays_float32(n_outputs):
    X, y = linear_data(n_outputs)
    model = OptimalLRRegressor(batch_size=16, random_state=0)
    model.fit(X.astype(np.float32), y.astype(np.float32))
    assert model.coef_.dtype == np.float32
    assert model.predict(X.astype(np.float32)).dtype == np.float32
    if n_outputs:
        assert model.intercept_.dtype == np.float32
    reference = OptimalLRRegressor(batch_size=16, random_state=0).fit(X, y)
    assert_allclose(model.coef_, reference.coef_, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("sparse_format", [None, "csr"])
def test_float64_model_predicts_float32_x_in_float64(sparse_format):
    # Targets near 1e5 with a small signal: float32 weights would lose the signal's digits.
    rng = np.random.default_rng(0)
    X = rng.integers(-8, 8, size=(200, 3)).astype(np.float64)  # exact in float32
    y = 1e5 + X @ [0.3, -0.2, 0.1]
    model = OptimalLRRegressor(batch_size="full", max_iter=50, random_state=0).fit(X, y)
    X32 = X.astype(np.float32)
    if sparse_format:
        X, X32 = sparse.csr_matrix(X), sparse.csr_matrix(X32)
    predictions = model.predict(X32)
    assert predictions.dtype == np.float64
    assert_array_equal(predictions, model.predict(X))
    # The float32 model, in turn, predicts float64 X in float64 (as Ridge does).
    small = OptimalLRRegressor(batch_size=16, random_state=0).fit(X32, y.astype(np.float32))
    assert small.predict(X).dtype == np.float64


@ignore_convergence
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize(
    "activation", ["identity", "relu", PiecewiseLinear([-1, 1], [-1, 1], 0.1, 0.1)]
)
def test_sparse_equals_dense(activation, fmt):
    X, y = linear_data(n_outputs=2)
    X[np.random.default_rng(0).random(X.shape) < 0.4] = 0.0
    params = dict(batch_size=16, random_state=0, max_iter=20)
    dense = OptimalLRRegressor(activation, **params).fit(X, y)
    X_sparse = sparse.csr_matrix(X).asformat(fmt)
    sparse_model = OptimalLRRegressor(activation, **params).fit(X_sparse, y)
    assert sparse_model.n_iter_ == dense.n_iter_
    assert_allclose(sparse_model.coef_, dense.coef_, rtol=1e-6, atol=1e-12)
    assert_allclose(sparse_model.intercept_, dense.intercept_, rtol=1e-6, atol=1e-12)
    assert_allclose(sparse_model.predict(sparse.csc_matrix(X)), dense.predict(X), rtol=1e-6)


def test_same_random_state_is_deterministic():
    X, y = linear_data(n_outputs=2)
    first = OptimalLRRegressor("relu", batch_size=8, random_state=7).fit(X, y)
    second = OptimalLRRegressor("relu", batch_size=8, random_state=7).fit(X, y)
    assert_array_equal(first.coef_, second.coef_)
    assert first.loss_curve_ == second.loss_curve_
    # The seed does matter when shuffling, so the equality above is not vacuous.
    other = OptimalLRRegressor("relu", batch_size=8, random_state=8).fit(X, y)
    assert not np.array_equal(first.coef_, other.coef_)


# --- Step rules ------------------------------------------------------------------------------


@ignore_convergence
def test_constant_step_is_used():
    X, y = linear_data()
    model = OptimalLRRegressor(step=0.05, batch_size=16, max_iter=5, random_state=0).fit(X, y)
    assert model.learning_rate_curve_ == [0.05] * model.n_iter_
    assert model.learning_rate_bounds_ == [(0.05, 0.05)] * model.n_iter_


@ignore_convergence
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_optimal_full_batch_never_increases_a_quadratic_loss(alpha):
    # Identity makes the loss quadratic, so every step is an exact line search.
    X, y = linear_data(n_outputs=2)
    X = X * [1.0, 10.0, 0.1, 1.0]  # badly conditioned: the descent zig-zags, but never climbs
    model = full_batch(alpha=alpha, max_iter=50).fit(X, y)
    curve = np.array(model.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-12 * curve[:-1])
    assert curve[-1] < 0.5 * curve[0]


# --- Warnings and printing -------------------------------------------------------------------


def test_convergence_warning_at_max_iter():
    X, y = linear_data()
    with pytest.warns(ConvergenceWarning, match=re.escape("Maximum iterations (2)")):
        OptimalLRRegressor(batch_size=16, max_iter=2, random_state=0).fit(X, y)


def test_no_convergence_warning_when_converged():
    X, y = linear_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = OptimalLRRegressor(batch_size="full", max_iter=200).fit(X, y)
    assert model.n_iter_ < 200


def test_dead_relu_warns_and_still_predicts():
    X, y = linear_data()
    y = -100.0 - np.abs(y)  # unreachable by ReLU: the first step drives every unit inactive
    model = OptimalLRRegressor("relu", batch_size="full", random_state=0)
    with pytest.warns(ConvergenceWarning, match="inactive"):
        model.fit(X, y)
    assert model.n_iter_ < model.max_iter
    prediction = model.predict(X)
    assert np.all(np.isfinite(prediction))
    assert_array_equal(prediction, 0.0)


def test_a_fit_worse_than_the_mean_warns_and_says_why():
    # Raw linnerud (features from 30 to 250, targets up to 200) one row at a time: the
    # preconditioner is off, plain descent crawls, and the loss stops falling by tol
    # far above that of predicting the mean. The stopping rule alone would call it done.
    from sklearn.datasets import load_linnerud

    X, Y = load_linnerud(return_X_y=True)
    model = OptimalLRRegressor(batch_size=1, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"scales.*far from a minimum.*precondition=True"):
        model.fit(X, Y)
    assert model.score(X, Y) < 0
    # Standardised, the same fit is fine and says nothing.
    scaled = make_pipeline(StandardScaler(), OptimalLRRegressor(batch_size=1, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        scaled.fit(X, Y)
    assert scaled.score(X, Y) > 0


def test_an_informative_column_far_from_zero_warns():
    # The signal is a feature of spread 1 about 1000: the column is nearly collinear with
    # the intercept's, and plain descent crawls (R^2 0.0000 where least squares gets
    # 0.99). A gain measured on columns scaled but not centred missed it.
    rng = np.random.default_rng(0)
    z = rng.standard_normal(1000)
    X, y = (1000.0 + z)[:, None], z + 0.1 * rng.standard_normal(1000)
    model = OptimalLRRegressor(batch_size=8, precondition=False, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"times apart.*far from a minimum"):
        model.fit(X, y)
    assert model.score(X, y) < 0.1


@pytest.mark.parametrize(
    "extra_column, batch_size",
    [("constant", 1), ("constant", 4), ("large noise", 1), ("constant", 200)],
)
def test_a_fit_little_better_than_the_mean_on_unscaled_columns_warns(extra_column, batch_size):
    # A constant column of 2024 (a year, say) or an irrelevant feature of size 1000 next to
    # standardised ones: without the preconditioner (batches below n_features + 1 rows,
    # or more than 256 features) plain descent crawls, and the loss stops falling by tol
    # near the mean's (R^2 0.004 to 0.03), where Ridge reaches 0.99 and the stopping rule
    # alone would call it converged. The preconditioned fit (batches of 200) reaches it.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 3))
    y = X @ [1.0, 2.0, 3.0] + 0.1 * rng.standard_normal(1000)
    column = 1e3 * rng.standard_normal(1000)
    if extra_column == "constant":
        column = np.full(1000, 2024.0)
    X = np.column_stack([X, column])
    model = OptimalLRRegressor(batch_size=batch_size, random_state=0)
    if batch_size > X.shape[1]:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model.fit(X, y)
        assert model.score(X, y) > 0.99
        return
    with pytest.warns(ConvergenceWarning, match=r"times apart.*far from a minimum"):
        model.fit(X, y)
    assert model.score(X, y) < 0.1
    assert Ridge(alpha=1e-6).fit(X, y).score(X, y) > 0.99


@pytest.mark.parametrize("batch_size", ["auto", "full"])
def test_a_low_r2_at_the_optimum_on_unscaled_columns_does_not_warn(batch_size):
    # Raw linnerud (features from 30 to 250) predicting pulse: least squares itself
    # reaches only R^2 0.075. The fit gets there, so a standardised step gains nothing:
    # a low R^2 on unscaled columns is no sign of a crawl by itself.
    from sklearn.datasets import load_linnerud

    X, Y = load_linnerud(return_X_y=True)
    y = Y[:, 2]
    model = OptimalLRRegressor(batch_size=batch_size, precondition=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    ols = LinearRegression().fit(X, y).score(X, y)
    assert model.score(X, y) < 0.1
    assert model.score(X, y) == pytest.approx(ols, abs=1e-3)


@pytest.mark.parametrize("large_column", [False, True])
def test_noise_targets_do_not_warn(large_column):
    # R^2 near 0 is all there is to find. With one column 1000 times the others the
    # mini-batch fit stops short of least squares on the noise (whose R^2 is about
    # n_features / n_samples, 0.01 here), and that is no crawl to warn about.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2000, 20)), rng.standard_normal(2000)
    if large_column:
        X[:, 0] *= 1000.0
    model = OptimalLRRegressor(batch_size=8, precondition=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    assert model.score(X, y) < 0.1


@pytest.mark.parametrize("offset", [0.0, 1000.0])
@pytest.mark.parametrize("batch_size", ["auto", "full"])
def test_an_exact_fit_stops_at_the_rounding_level_without_a_warning(batch_size, offset):
    # More features than rows: the fit interpolates, and the loss falls to rounding noise
    # (4e-28 from 2e4), whose jitter the relative tol took for progress until max_iter.
    # Rounding grows with the targets' size: an offset raises the level.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 60))
    y = X @ rng.standard_normal(60) + offset
    model = OptimalLRRegressor(batch_size=batch_size, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    assert model.n_iter_ < model.max_iter
    assert model.score(X, y) > 1 - 1e-12


@pytest.mark.parametrize("batch_size", [32, "full"])
def test_the_rounding_floor_waits_for_the_output_of_least_spread(batch_size, monkeypatch):
    # float32 outputs whose spreads differ by 1e6: a floor from their summed spread lay
    # above the small output's whole loss, and stopped the fit once the large one fitted.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 10)).astype(np.float32)
    Y = np.column_stack([1e3 * X @ rng.standard_normal(10), 1e-3 * X @ rng.standard_normal(10)])
    Y = Y.astype(np.float32)
    model = OptimalLRRegressor(batch_size=batch_size, random_state=0).fit(X, Y)
    import sklearn_optlr._solver as solver

    monkeypatch.setattr(solver, "ROUNDING_FLOOR_ULPS", 0)  # no floor: only tol stops
    reference = OptimalLRRegressor(batch_size=batch_size, random_state=0).fit(X, Y)
    assert model.n_iter_ == reference.n_iter_


def test_a_strong_penalty_slightly_below_the_mean_does_not_warn():
    # Shrunk to the intercept, with batch noise on top: R^2 just below 0 is the penalty's
    # doing, not a failed fit.
    X, y = linear_data(n_samples=200)
    model = OptimalLRRegressor(alpha=1e4, batch_size=16, average=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    assert -0.05 < model.score(X, y) < 0  # below the mean, within the margin


@pytest.mark.parametrize("batch_size", [1, "full"])
def test_an_exact_fit_with_a_penalty_is_not_called_inactive(batch_size):
    # One row, a penalty: the Ridge optimum (coef 0, intercept y) fits the row exactly,
    # so every residual, and with it the gradient, is 0. The solver took that for units
    # on flat pieces and warned that training could not progress.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((1, 3)), rng.standard_normal(1)
    model = OptimalLRRegressor(batch_size=batch_size, alpha=0.01, tol=0.0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    reference = Ridge(alpha=0.01).fit(X, y)
    assert_allclose(model.coef_, reference.coef_, atol=1e-12)
    assert_allclose(model.intercept_, reference.intercept_, rtol=1e-12)


@pytest.mark.parametrize("batch_size", [8, "full"])
def test_saturated_units_that_fit_exactly_but_feel_the_penalty_still_warn(batch_size):
    # Units clipped to [0, 1], saturated on every row and right on every row, with a
    # penalty: the data gradient is zero, so no step is taken, but the penalty pulls on
    # W. That is stuck, not an exact fit, and must not stop without a word.
    clipped = PiecewiseLinear([0.0, 1.0], [0.0, 1.0], 0.0, 0.0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    X[:, 0] += np.where(X[:, 0] > 0, 3.0, -3.0)
    y = (X[:, 0] > 0).astype(float)
    model = OptimalLRRegressor(clipped, batch_size=batch_size, max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    model._state.coef[:] = [[10.0, 0.0]]  # saturates every row on the right side
    model._state.intercept[:] = 0.5
    with pytest.warns(ConvergenceWarning, match=r"penalty \(alpha=0.01\) still pulls"):
        model.set_params(alpha=0.01, max_iter=50).fit(X, y)


def test_an_exact_fit_off_the_penalised_optimum_says_so():
    # An exact fit set by warm start, then a penalty: no batch has a data gradient, so no
    # step follows the penalty. With identity (no flat piece) the fit stopped silently;
    # with ReLU it said every unit was inactive, though 4 of 6 rows were active.
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [-3.0, -3.0], [-4.0, -2.0]])
    for activation in ["identity", "relu"]:
        y = resolve_activation(activation)(X @ [1.0, 2.0] + 0.5)
        model = OptimalLRRegressor(activation, batch_size="full", max_iter=1, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        model._state.coef[:] = [[1.0, 2.0]]
        model._state.intercept[:] = 0.5
        with pytest.warns(ConvergenceWarning, match="not the penalised optimum"):
            model.set_params(alpha=0.1, max_iter=20).fit(X, y)


def test_a_dead_network_is_not_also_called_worse_than_the_mean():
    X, y = linear_data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OptimalLRRegressor("relu", batch_size="full", random_state=0).fit(X, -100.0 - np.abs(y))
    messages = [str(warning.message) for warning in caught]
    assert any("inactive" in message for message in messages)
    assert not any("far from a minimum" in message for message in messages)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = linear_data()
    model = OptimalLRRegressor(batch_size=16, verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == model.n_iter_ + 1  # and the line that says why it stopped
    for line in lines[:-1]:
        assert "loss" in line and "learning rate" in line
    assert lines[-1].startswith("Training stopped: ")


# --- Validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size="all"), "batch_size"),
        (dict(step=-1), "step"),
        (dict(step=0.0), "step"),
        (dict(step="best"), "step"),
        (dict(activation="tanh"), "activation"),
        (dict(validation_fraction=1.5), "validation_fraction"),
        (dict(alpha=-0.1), "alpha"),
        (dict(max_iter=0), "max_iter"),
        (dict(negative_slope=-0.5), "negative_slope"),
    ],
)
def test_invalid_params_raise_naming_the_parameter(params, name):
    X, y = linear_data()
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        OptimalLRRegressor(**params).fit(X, y)


ALPHA32 = np.float32(0.1)


@ignore_convergence
@pytest.mark.parametrize(
    "numpy_params, python_params",
    [
        # Numpy scalars, as a grid built from an array gives them.
        (dict(batch_size=np.uint32(8)), dict(batch_size=8)),
        (dict(batch_size=np.int8(8)), dict(batch_size=8)),
        (dict(batch_size=np.uint64(1)), dict(batch_size=1)),
        (
            dict(max_iter=np.uint8(4), n_iter_no_change=np.uint8(2)),
            dict(max_iter=4, n_iter_no_change=2),
        ),
        (dict(average=np.uint16(30)), dict(average=30)),
        (dict(alpha=ALPHA32, batch_size="full"), dict(alpha=float(ALPHA32), batch_size="full")),
        (dict(alpha=ALPHA32, step="exact"), dict(alpha=float(ALPHA32), step="exact")),
        (
            dict(step=np.float32(0.05), tol=np.float32(1e-3)),
            dict(step=float(np.float32(0.05)), tol=float(np.float32(1e-3))),
        ),
    ],
)
def test_numpy_scalar_params_fit_as_python_ones(numpy_params, python_params):
    X, y = linear_data(n_outputs=2)
    fitted = OptimalLRRegressor(random_state=0, **numpy_params).fit(X, y)
    reference = OptimalLRRegressor(random_state=0, **python_params).fit(X, y)
    assert_array_equal(fitted.coef_, reference.coef_)
    assert fitted.coef_.dtype == np.float64
    assert fitted.loss_curve_ == reference.loss_curve_
    assert type(fitted.loss_) is float


def test_optimal_learning_rate_with_a_float32_alpha_stays_in_float64():
    X, y = linear_data()
    coef = np.full(4, 0.5)
    rate = optimal_learning_rate(coef, 0.0, X, y, activation="identity", alpha=ALPHA32)
    reference = optimal_learning_rate(coef, 0.0, X, y, activation="identity", alpha=float(ALPHA32))
    assert rate == reference and np.asarray(rate).dtype == np.float64


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_zero_weight_equals_dropping_the_row(activation):
    X, y = linear_data(n_outputs=2)
    sample_weight = np.ones(X.shape[0])
    dropped = [0, 5, 17, 40]
    sample_weight[dropped] = 0.0
    keep = sample_weight > 0
    # Every epoch runs (n_iter_no_change beyond max_iter): once converged, whether an
    # epoch still lowers the loss is a matter of rounding, which the two fits round apart.
    params = dict(batch_size="full", max_iter=30, tol=0.0, n_iter_no_change=31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = OptimalLRRegressor(activation, **params).fit(X, y, sample_weight=sample_weight)
        reference = OptimalLRRegressor(activation, **params).fit(X[keep], y[keep])
    assert_allclose(weighted.coef_, reference.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(weighted.intercept_, reference.intercept_, rtol=1e-10, atol=1e-12)
    assert_allclose(weighted.loss_curve_, reference.loss_curve_, rtol=1e-10)


def test_integer_weights_equal_repeated_rows_full_batch():
    X, y = linear_data()
    counts = np.random.default_rng(0).integers(1, 4, X.shape[0])
    params = dict(batch_size="full", max_iter=30, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = OptimalLRRegressor("relu", **params).fit(X, y, sample_weight=counts)
        repeated = OptimalLRRegressor("relu", **params)
        repeated.fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9, atol=1e-12)


@ignore_convergence
@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_light_rows_pull_little_with_mini_batches(batch_size, fmt):
    # Half the rows contradict the other half at a thousandth of their weight. Weights
    # normalised within each batch gave a light batch the pull of any other: at batch
    # size 1 the weights had no effect and the fit was the contradiction's (W near 0).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 3))
    y = X @ [1.0, 2.0, -1.0] + 0.1 * rng.standard_normal(2000)
    y[1000:] *= -1.0
    sample_weight = np.r_[np.ones(1000), np.full(1000, 1e-3)]
    reference = LinearRegression().fit(X, y, sample_weight=sample_weight)
    model = OptimalLRRegressor(batch_size=batch_size, max_iter=20, random_state=0)
    model.fit(sparse.csr_matrix(X) if fmt == "csr" else X, y, sample_weight=sample_weight)
    assert_allclose(model.coef_, reference.coef_, atol=0.05)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("step", ["optimal", "exact"])
def test_per_batch_steps_ignore_a_batchs_total_weight_penalty_included(step, batch_size, fmt):
    # The seed's rules minimise each batch's loss along its gradient, which scaling that
    # loss does not change. Scaling only its data term by the batch's weight, not its
    # penalty, left the penalty alone on light batches, and its step (about 1 / alpha) set
    # W to zero (R^2 -0.02 against 0.97 at batch size 1). Weights constant within each
    # batch must give the unweighted fit.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ [1.0, 2.0, -1.0] + 0.1 * rng.standard_normal(40)
    sample_weight = np.repeat(np.tile([1.0, 1e-6], 20 // batch_size + 1), batch_size)[:40]
    X_fit = sparse.csr_matrix(X) if fmt == "csr" else X
    params = dict(batch_size=batch_size, step=step, alpha=0.01, shuffle=False, average=False)
    params.update(precondition=False, max_iter=3, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the batch-size-1 warning, and ConvergenceWarning
        weighted = OptimalLRRegressor(**params).fit(X_fit, y, sample_weight=sample_weight)
        unweighted = OptimalLRRegressor(**params).fit(X_fit, y)
    assert_allclose(weighted.coef_, unweighted.coef_, rtol=1e-8)
    assert unweighted.score(X, y) > 0.9


@pytest.mark.parametrize("step", ["optimal", "exact"])
def test_per_batch_steps_at_batch_size_one_warn_that_weights_do_nothing(step):
    X, y = linear_data()
    sample_weight = np.linspace(0.5, 2.0, X.shape[0])
    model = OptimalLRRegressor(batch_size=1, step=step, max_iter=2)
    with pytest.warns(UserWarning, match="weights other than 0 change no step"):
        model.fit(X, y, sample_weight=sample_weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, sample_weight=np.where(sample_weight > 1, 1.0, 0.0))  # 0 drops rows
        OptimalLRRegressor(batch_size=1, max_iter=2).fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_all_zero_weights_raise(method):
    X, y = linear_data()
    # scikit-learn's own check words it "Sample weights"; ours "sample_weight".
    with pytest.raises(ValueError, match="[Ss]ample.weight"):
        getattr(OptimalLRRegressor(), method)(X, y, sample_weight=np.zeros(X.shape[0]))


def test_negative_weights_raise():
    X, y = linear_data()
    with pytest.raises(ValueError, match="[Nn]egative"):
        OptimalLRRegressor().fit(X, y, sample_weight=-np.ones(X.shape[0]))


@pytest.mark.parametrize(
    "activation, poor_score",
    [("identity", False), ("relu", True), ("leaky_relu", True), ("abs", True), ("hard_tanh", True)],
)
def test_poor_score_tag_marks_non_affine_activations(activation, poor_score):
    # One non-affine unit cannot fit a signed linear target (leaky ReLU's optimum on the
    # estimator checks' data has R^2 0.40), so the check's R^2 > 0.5 must be skipped for it.
    assert get_tags(OptimalLRRegressor(activation)).regressor_tags.poor_score is poor_score


@pytest.mark.parametrize("params", [dict(activation="swish"), dict(negative_slope="0.1")])
def test_tags_of_invalid_parameters_leave_the_error_to_fit(params):
    # Tools read the tags before fitting (GridSearchCV, check_estimator): an invalid
    # parameter must reach fit's validation, which names it, not fail inside get_tags.
    model = OptimalLRRegressor(**{"activation": "leaky_relu", **params})
    assert get_tags(model).regressor_tags.poor_score is False
    with pytest.raises(ValueError, match=next(iter(params))):
        model.fit(np.eye(3), np.arange(3.0))


# --- One epoch against gradient descent written out here --------------------------------------

SIGMAS = {
    # (sigma, right-hand sigma', the documented starting intercept: inside the steepest
    # piece, and for ReLU at the scale of the targets: as a function of Y and the weights)
    "identity": (lambda z: z, lambda z: np.ones_like(z), lambda Y, s: np.zeros(Y.shape[1])),
    "relu": (
        lambda z: np.maximum(z, 0.0),
        lambda z: (z >= 0) * 1.0,
        lambda Y, s: np.sqrt(s @ Y**2 / s.sum()),  # 1 times each output's RMS target
    ),
    "hard_tanh": (
        lambda z: np.clip(z, -1.0, 1.0),
        lambda z: ((z >= -1) & (z < 1)) * 1.0,
        lambda Y, s: np.zeros(Y.shape[1]),
    ),
}


def reference_epoch(X, Y, sample_weight, activation, batch_size, alpha, W=None, b=None):
    """One shuffle-free epoch (from the initial weights by default), each batch taking
    <g,g>/(g^T H g)."""
    sigma, dsigma, start = SIGMAS[activation]
    W = np.zeros((Y.shape[1], X.shape[1])) if W is None else W
    b = start(Y, sample_weight) if b is None else b
    loss, rates = 0.0, []
    # A batch's weights are relative to the mean weight of all the rows, and its penalty
    # takes their sum (its relative weight), so that its loss estimates the weighted
    # training objective and light batches move the weights little.
    mean_weight = sample_weight.mean()
    for first in range(0, X.shape[0], batch_size):
        rows = slice(first, first + batch_size)
        x, y, s = X[rows], Y[rows], sample_weight[rows]
        w = s / (len(s) * mean_weight)
        batch_alpha = alpha * w.sum()
        z = x @ W.T + b
        e, d = sigma(z) - y, dsigma(z)
        batch_loss = 0.5 * w @ np.sum(e**2, axis=1) + 0.5 * batch_alpha * np.sum(W**2)
        loss += batch_loss * len(s) / len(sample_weight)
        r = w[:, None] * d * e
        G, g = r.T @ x + batch_alpha * W, r.sum(axis=0)
        u = d * (x @ G.T + g)
        curvature = w @ np.sum(u**2, axis=1) + batch_alpha * np.sum(G**2)
        # No active unit: no step, even though the penalty alone has a gradient.
        rate = (np.sum(G**2) + g @ g) / curvature if r.any() else 0.0
        W, b = W - rate * G, b - rate * g
        rates.append(rate)
    return W, b, loss, rates


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [1, 7, 200])
@pytest.mark.parametrize("activation", sorted(SIGMAS))
def test_one_epoch_matches_written_out_gradient_descent(activation, batch_size, fmt):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((45, 3))
    X[rng.random(X.shape) < 0.3] = 0.0
    Y = np.column_stack([np.maximum(X @ [1.0, -1.0, 0.5] + 0.2, 0), 0.3 * X[:, 0] - 0.1])
    sample_weight = rng.uniform(0.5, 2.0, X.shape[0])
    alpha = 0.05
    W, b, loss, rates = reference_epoch(X, Y, sample_weight, activation, batch_size, alpha)
    model = OptimalLRRegressor(
        activation, batch_size=batch_size, alpha=alpha, shuffle=False, **SEED_METHOD
    )
    model.partial_fit(sparse.csr_matrix(X) if fmt == "csr" else X, Y, sample_weight=sample_weight)
    assert_allclose(model.coef_, W, rtol=1e-9, atol=1e-12)
    assert_allclose(model.intercept_, b, rtol=1e-9, atol=1e-12)
    assert_allclose(model.loss_curve_, [loss], rtol=1e-9)
    assert_allclose(model.learning_rate_curve_, [np.mean(rates)], rtol=1e-9)
    assert_allclose(model.learning_rate_bounds_, [(min(rates), max(rates))], rtol=1e-9)


@ignore_convergence
@pytest.mark.parametrize("activation", sorted(SIGMAS))
def test_full_batch_epochs_match_written_out_gradient_descent(activation):
    # Full batch reuses each step's directional product as the next forward pass; over many
    # epochs that bookkeeping must still give the plain gradient-descent iterates.
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 3))
    Y = np.column_stack([np.clip(X @ [1.0, -1.0, 0.5] + 0.2, -0.8, 2.0), 0.3 * X[:, 0] - 0.1])
    sample_weight = rng.uniform(0.5, 2.0, X.shape[0])
    W = b = None
    losses = []
    for _ in range(25):
        W, b, loss, _ = reference_epoch(X, Y, sample_weight, activation, X.shape[0], 0.05, W, b)
        losses.append(loss)
    model = OptimalLRRegressor(
        activation, batch_size="full", alpha=0.05, max_iter=25, tol=0.0, **SEED_METHOD
    )
    model.fit(X, Y, sample_weight=sample_weight)
    assert model.n_iter_ == 25
    assert_allclose(model.loss_curve_, losses, rtol=1e-9)
    assert_allclose(model.coef_, W, rtol=1e-8, atol=1e-12)
    assert_allclose(model.intercept_, b, rtol=1e-8, atol=1e-12)


def test_penalty_alone_does_not_move_a_dead_network():
    # With every unit inactive the data say nothing; following the penalty alone (rate 1/alpha)
    # would zero W in one step, so the solver takes no step at all.
    X, y = linear_data()
    model = OptimalLRRegressor("relu", batch_size="full", alpha=0.1)
    with pytest.warns(ConvergenceWarning, match="inactive"):
        model.fit(X, -100.0 - np.abs(y))
    assert np.any(model.coef_ != 0)
    coef, intercept = model.coef_.copy(), model.intercept_
    with pytest.warns(ConvergenceWarning, match="inactive"):
        model.partial_fit(X, -100.0 - np.abs(y))
    assert_array_equal(model.coef_, coef)
    assert model.intercept_ == intercept
    assert model.learning_rate_curve_[-1] == 0.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("batch_size", ["full", 16])
def test_divergence_raises_and_keeps_the_fitted_model(batch_size):
    # A fixed rate far above 2 / lambda_max blows up; the error must say so, and the weights
    # of the earlier fit must survive (the solver works on copies).
    X, y = linear_data()
    model = OptimalLRRegressor(batch_size=batch_size, warm_start=True, random_state=0).fit(X, y)
    coef, intercept, n_iter = model.coef_.copy(), model.intercept_, model.n_iter_
    model.set_params(step=10.0, max_iter=1000, n_iter_no_change=1000)
    with pytest.raises(FloatingPointError, match="diverged"):
        model.fit(X, y)
    assert_array_equal(model.coef_, coef)
    assert model.intercept_ == intercept
    assert model.n_iter_ == n_iter
