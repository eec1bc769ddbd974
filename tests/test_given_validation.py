# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""``fit(X, y, *, X_val, y_val, sample_weight_val)``: early stopping on a validation set
the user gives, with HistGradientBoostingRegressor's semantics, and its routing through
scikit-learn's metadata routing."""

import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def relu_data(n_samples, n_outputs=1, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, 4)) + offset
    Y = np.maximum(X @ rng.standard_normal((4, n_outputs)), 0.0)
    Y += 0.3 * rng.standard_normal(Y.shape)
    return X, Y[:, 0] if n_outputs == 1 else Y


@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_given_set_is_what_early_stopping_scores_and_keeps(n_outputs, weighted):
    X, y = relu_data(300, n_outputs)
    X_val, y_val = relu_data(80, n_outputs, seed=1)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, 80) if weighted else None
    model = OptimalLRRegressor(
        "relu", batch_size=32, early_stopping=True, n_iter_no_change=3, random_state=0
    ).fit(X, y, X_val=X_val, y_val=y_val, sample_weight_val=weights)
    # The model kept is the best epoch's on the given rows: its R^2 there, computed by
    # scikit-learn from the predictions, is the best score recorded.
    kept = r2_score(y_val, model.predict(X_val), sample_weight=weights)
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert kept == pytest.approx(model.best_validation_score_, rel=1e-12, abs=1e-12)
    # No rows were split off: every epoch trained on all 300.
    assert model.t_ == 300 * model.n_iter_


def test_the_given_set_replaces_the_split_and_changes_the_fit():
    X, y = relu_data(300)
    X_val, y_val = relu_data(80, seed=1)
    params = dict(batch_size=32, early_stopping=True, random_state=0)
    split = OptimalLRRegressor("relu", **params).fit(X, y)
    given = OptimalLRRegressor("relu", **params).fit(X, y, X_val=X_val, y_val=y_val)
    assert split.t_ == 270 * split.n_iter_  # validation_fraction=0.1 held out
    assert given.t_ == 300 * given.n_iter_
    assert not np.allclose(split.validation_scores_[:3], given.validation_scores_[:3])


@pytest.mark.parametrize(
    "parts, message",
    [
        (dict(X_val=True), "X_val alone"),
        (dict(y_val=True), "y_val alone"),
        (dict(sample_weight_val=True), "sample_weight_val alone"),
        (dict(X_val=True, sample_weight_val=True), "X_val, sample_weight_val alone"),
    ],
)
def test_a_validation_set_given_in_part_is_refused(parts, message):
    X, y = relu_data(100)
    given = dict(X_val=X[:10], y_val=y[:10], sample_weight_val=np.ones(10))
    model = OptimalLRRegressor(early_stopping=True)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, **{name: given[name] for name in parts})


def test_a_validation_set_without_early_stopping_is_refused():
    X, y = relu_data(100)
    with pytest.raises(ValueError, match="early_stopping=False"):
        OptimalLRRegressor().fit(X, y, X_val=X[:10], y_val=y[:10])


NAMED = r"The validation set \(X_val, y_val, sample_weight_val\): "


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda X, y, w: (X[:, :3], y, w), NAMED + "X has 3 features"),
        (lambda X, y, w: (np.where(X == X[0, 0], np.nan, X), y, w), NAMED + ".*NaN"),
        (lambda X, y, w: (X, np.where(y == y[0], np.inf, y), w), NAMED + ".*infinity"),
        (lambda X, y, w: (X, y[:-1], w), NAMED + "Found input variables with inconsistent"),
        (lambda X, y, w: (X, y, -w), NAMED + "Negative values"),
        (lambda X, y, w: (X, y, w[:-1]), NAMED + "sample_weight.shape"),
        (lambda X, y, w: (X, np.column_stack([y, y]), w), "2 outputs where y has 1"),
        (
            lambda X, y, w: (X[:1], y[:1], w[:1]),
            r"at least 2 rows of positive weight for its R\^2; got 1",
        ),
        (lambda X, y, w: (X, y, np.eye(1, len(w))[0]), "at least 2 rows of positive weight"),
        (lambda X, y, w: (X, np.full_like(y, 3.0), w), "y_val is constant"),
    ],
)
def test_a_bad_validation_set_raises_and_leaves_the_model_as_it_was(bad, message):
    X, y = relu_data(120)
    model = OptimalLRRegressor("relu", early_stopping=True, random_state=0).fit(X, y)
    coef, scores = model.coef_.copy(), list(model.validation_scores_)
    X_val, y_val, weights = bad(*relu_data(20, seed=1), np.ones(20))
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, X_val=X_val, y_val=y_val, sample_weight_val=weights)
    assert_array_equal(model.coef_, coef)
    assert model.validation_scores_ == scores


def test_a_constant_output_beside_a_varying_one_is_scored():
    # R^2 is defined where some output varies: only an all-constant y_val is refused.
    X, Y = relu_data(200, n_outputs=2)
    X_val, Y_val = relu_data(40, n_outputs=2, seed=1)
    Y_val[:, 1] = 1.0
    model = OptimalLRRegressor("relu", early_stopping=True, random_state=0)
    model.fit(X, Y, X_val=X_val, y_val=Y_val)
    assert np.all(np.isfinite(model.validation_scores_))


def test_partial_fit_refuses_early_stopping_and_keeps_the_model():
    # It used to be ignored in silence; SGDRegressor and MLPRegressor refuse it.
    X, y = relu_data(100)
    model = OptimalLRRegressor(random_state=0).partial_fit(X, y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        model.set_params(early_stopping=True).partial_fit(X, y)
    assert_array_equal(model.coef_, coef)
    assert model.n_iter_ == 1


def test_grid_search_routes_the_validation_set_and_a_pipeline_transforms_it():
    # Offset features: the scaler's transform changes them, so a validation set that
    # skipped it would score the model on other inputs.
    X, y = relu_data(300, offset=3.0)
    X_val, y_val = relu_data(80, seed=1, offset=3.0)
    params = dict(batch_size=32, early_stopping=True, n_iter_no_change=3, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        model = OptimalLRRegressor("relu", **params).set_fit_request(X_val=True, y_val=True)
        pipeline = Pipeline(
            [("scale", StandardScaler()), ("model", model)], transform_input=["X_val"]
        )
        pipeline.fit(X, y, X_val=X_val, y_val=y_val)
        search = GridSearchCV(model, {"activation": ["relu", "leaky_relu"]}, cv=2)
        search.fit(X, y, X_val=X_val, y_val=y_val)
    # The pipeline's model is the one fitted on the scaled rows, stopped on the scaled
    # validation rows.
    scaler = StandardScaler().fit(X)
    alone = OptimalLRRegressor("relu", **params).fit(
        scaler.transform(X), y, X_val=scaler.transform(X_val), y_val=y_val
    )
    assert_allclose(pipeline[-1].validation_scores_, alone.validation_scores_, rtol=1e-12)
    # Every candidate of the search stopped on the given rows (none was split).
    best = search.best_estimator_
    assert best.t_ == 300 * best.n_iter_
    assert best.best_validation_score_ == pytest.approx(
        r2_score(y_val, best.predict(X_val)), rel=1e-12
    )


def test_warm_start_stops_each_fit_on_the_given_set():
    X, y = relu_data(200)
    X_val, y_val = relu_data(60, seed=1)
    model = OptimalLRRegressor(
        "relu", batch_size=32, early_stopping=True, warm_start=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, X_val=X_val, y_val=y_val)
        n_before = model.n_iter_
        model.fit(X, y, X_val=X_val, y_val=y_val)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_[n_before:])
    assert model.best_validation_score_ == pytest.approx(
        r2_score(y_val, model.predict(X_val)), rel=1e-12
    )


def test_nan_in_the_validation_set_is_refused_even_when_scikit_learn_assumes_finite():
    X, y = relu_data(100)
    X_val, y_val = relu_data(20, seed=1)
    X_val[3, 2] = np.nan
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match=NAMED + "Input X contains NaN"):
            OptimalLRRegressor(early_stopping=True).fit(X, y, X_val=X_val, y_val=y_val)
