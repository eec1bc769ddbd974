# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Bad input gets a clear error, and a failing call loses nothing.

Each kind of bad input must raise a ValueError or TypeError whose message names the problem
(not a traceback from deep inside the solver), from ``fit``, ``partial_fit``, ``predict``,
``optimal_learning_rate`` and ``PiecewiseLinear``. A failing ``partial_fit`` or ``fit``
(with or without ``warm_start``, on bad input or a diverging run) must leave a fitted model
exactly as it was: the oracle is a twin model that never saw the failing call, which must
agree with it to the bit, then and after more training.
"""

import pickle
from functools import partial

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_array_equal
from scipy import sparse

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear, optimal_learning_rate

# Short fixed budgets are the point here, not convergence.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_SAMPLES, N_FEATURES = 30, 3


def good_data(n_outputs=None):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    y = X @ [1.0, -2.0, 0.5] + 0.3
    if n_outputs is not None:
        y = np.column_stack([y + k for k in range(n_outputs)])
    return X, y, np.ones(N_SAMPLES)


def with_entry(array, value, dtype=None):
    array = np.array(array, dtype=dtype or np.asarray(array).dtype)
    array.flat[0] = value
    return array


# (X, y, sample_weight) -> the bad version, and a regular expression the message must match.
BAD_TRAINING_INPUTS = {
    "X with NaN": (lambda X, y, w: (with_entry(X, np.nan), y, w), "X contains NaN"),
    "sparse X with NaN": (
        lambda X, y, w: (sparse.csr_matrix(with_entry(X, np.nan)), y, w),
        "X contains NaN",
    ),
    "X with inf": (lambda X, y, w: (with_entry(X, np.inf), y, w), "X contains infinity"),
    "y with NaN": (lambda X, y, w: (X, with_entry(y, np.nan), w), "y contains NaN"),
    "y with inf": (lambda X, y, w: (X, with_entry(y, -np.inf), w), "y contains infinity"),
    "sample_weight with NaN": (
        lambda X, y, w: (X, y, with_entry(w, np.nan)),
        "sample_weight contains NaN",
    ),
    "sample_weight with inf": (
        lambda X, y, w: (X, y, with_entry(w, np.inf)),
        "sample_weight contains infinity",
    ),
    "negative sample_weight": (
        lambda X, y, w: (X, y, with_entry(w, -1.0)),
        "Negative values .*sample_weight",
    ),
    "all-zero sample_weight": (
        lambda X, y, w: (X, y, 0 * w),
        "[Ss]ample.weight.* non-zero|positive sum",
    ),
    "complex X": (lambda X, y, w: (X + 1j, y, w), "Complex data not supported"),
    "complex y": (lambda X, y, w: (X, y + 1j, w), "Complex data not supported"),
    "complex sample_weight": (lambda X, y, w: (X, y, w + 1j), "Complex data not supported"),
    "string X": (
        lambda X, y, w: (X.astype(str).astype(object) + "a", y, w),
        "could not convert string to float",
    ),
    "string y": (
        lambda X, y, w: (X, np.array(["a"] * len(y), dtype=object), w),
        "could not convert string to float",
    ),
    "string sample_weight": (
        lambda X, y, w: (X, y, np.array(["a"] * len(w))),
        "could not convert string to float",
    ),
    "no samples": (lambda X, y, w: (X[:0], y[:0], None), "0 sample"),
    "no features": (lambda X, y, w: (X[:, :0], y, w), "0 feature"),
    "X and y of different lengths": (
        lambda X, y, w: (X, y[:-1], w),
        "inconsistent numbers of samples",
    ),
    "sample_weight of another length": (lambda X, y, w: (X, y, w[:-1]), "sample_weight.shape"),
    "2-D sample_weight": (
        lambda X, y, w: (X, y, np.ones((len(w), 2))),
        "Sample weights must be 1D",
    ),
    "1-D X": (lambda X, y, w: (X[:, 0], y, w), "Expected 2D array"),
    "3-D y": (lambda X, y, w: (X, y[:, None, None], w), "dim 3"),
    "sparse y": (lambda X, y, w: (X, sparse.csr_matrix(y[:, None]), w), "sparse y.*toarray"),
    "y beyond float32 X's range": (
        lambda X, y, w: (X.astype(np.float32), 1e39 * y, w),
        "y has values beyond .*float32",
    ),
}


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("case", sorted(BAD_TRAINING_INPUTS))
def test_bad_training_input_raises_a_clear_error(case, method):
    make_bad, message = BAD_TRAINING_INPUTS[case]
    X, y, sample_weight = make_bad(*good_data())
    model = OptimalLRRegressor()
    with pytest.raises((ValueError, TypeError), match=message):
        getattr(model, method)(X, y, sample_weight=sample_weight)
    assert not hasattr(model, "coef_") and not hasattr(model, "n_features_in_")


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_y_is_named_also_when_scikit_learn_assumes_finite_input(bad, method):
    # assume_finite=True skips validate_data's check; the overflow check for float32 X came
    # next and called NaN "beyond the range of float64", telling the user to pass float64.
    X, y, _ = good_data()
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match="y contains NaN or infinity"):
            getattr(OptimalLRRegressor(), method)(X, with_entry(y, bad))


BAD_PREDICT_INPUTS = {
    "other number of features": (lambda X: X[:, :2], "X has 2 features, but .* expecting 3"),
    "X with NaN": (lambda X: with_entry(X, np.nan), "X contains NaN"),
    "complex X": (lambda X: X + 1j, "Complex data not supported"),
    "string X": (lambda X: X.astype(str).astype(object) + "a", "could not convert string to float"),
    "no samples": (lambda X: X[:0], "0 sample"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICT_INPUTS))
def test_bad_predict_input_raises_a_clear_error(case):
    X, y, _ = good_data()
    model = OptimalLRRegressor(max_iter=3).fit(X, y)
    make_bad, message = BAD_PREDICT_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        model.predict(make_bad(X))


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(ValueError, match="not fitted"):
        OptimalLRRegressor().predict(np.zeros((2, 3)))


@pytest.mark.parametrize(
    "n_outputs, new_y, message",
    [
        (
            None,
            lambda y: np.column_stack([y, y]),
            "y has 2 outputs but the model was fitted with 1",
        ),
        (
            2,
            lambda y: np.column_stack([y, y[:, 0]]),
            "y has 3 outputs but the model was fitted with 2",
        ),
        (3, lambda y: y[:, 0], "y has 1 outputs but the model was fitted with 3"),
    ],
)
def test_partial_fit_with_another_number_of_outputs_raises(n_outputs, new_y, message):
    X, y, _ = good_data(n_outputs)
    model = OptimalLRRegressor(batch_size=8).partial_fit(X, y)
    with pytest.raises(ValueError, match=message):
        model.partial_fit(X, new_y(y))


@pytest.mark.parametrize("method", ["partial_fit", "warm_start"])
def test_continuing_with_another_number_of_features_raises(method):
    X, y, _ = good_data()
    model = OptimalLRRegressor(batch_size=8, max_iter=2, warm_start=True).fit(X, y)
    fit = model.partial_fit if method == "partial_fit" else model.fit
    with pytest.raises(ValueError, match="X has 4 features, but .* expecting 3"):
        fit(np.column_stack([X, X[:, 0]]), y)


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(activation="tanh"), "activation"),
        (dict(activation=None), "activation"),
        (dict(activation=PiecewiseLinear), "activation"),  # the class, not an instance
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=-5), "batch_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(batch_size="half"), "batch_size"),
        (dict(step=np.nan), "step"),
        (dict(step=np.inf), "step"),
        (dict(alpha=np.nan), "alpha"),
        (dict(average=0), "average"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(params, name):
    X, y, _ = good_data()
    for method in ("fit", "partial_fit"):
        with pytest.raises(ValueError, match=f"'{name}' parameter"):
            getattr(OptimalLRRegressor(**params), method)(X, y)


BAD_KNOTS = {
    "decreasing knots": (
        ([1.0, 0.0], [0.0, 0.0], 0.0, 1.0),
        ValueError,
        "x must be strictly increasing",
    ),
    "repeated knot": (
        ([0.0, 0.0], [0.0, 1.0], 0.0, 1.0),
        ValueError,
        "x must be strictly increasing",
    ),
    "NaN knot": (([np.nan], [0.0], 0.0, 1.0), ValueError, "x must be finite"),
    "infinite knot": (([0.0, np.inf], [0.0, 1.0], 0.0, 1.0), ValueError, "x must be finite"),
    "NaN value": (([0.0], [np.nan], 0.0, 1.0), ValueError, "y must be finite"),
    "infinite value": (([0.0], [-np.inf], 0.0, 1.0), ValueError, "y must be finite"),
    "NaN left slope": (([0.0], [0.0], np.nan, 1.0), ValueError, "left_slope must be finite"),
    "infinite right slope": (([0.0], [0.0], 0.0, np.inf), ValueError, "right_slope must be finite"),
    "string slope": (([0.0], [0.0], "steep", 1.0), TypeError, "left_slope must be a real number"),
    "string knots": ((["a"], [0.0], 0.0, 1.0), TypeError, "x must be real numbers"),
    "no knots": (([], [], 0.0, 1.0), ValueError, "non-empty"),
    "knots and values of different lengths": (
        ([0.0, 1.0], [0.0], 0.0, 1.0),
        ValueError,
        "same length",
    ),
    "slope between knots overflows": (
        ([0.0, 1e-300], [0.0, 1e300], 0.0, 1.0),
        ValueError,
        "slopes between consecutive knots are not finite",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_KNOTS))
def test_piecewise_linear_rejects_bad_knots_and_slopes(case):
    args, error, message = BAD_KNOTS[case]
    with pytest.raises(error, match=message):
        PiecewiseLinear(*args)


def rate_arguments(n_outputs=2):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    return dict(
        coef=rng.standard_normal((n_outputs, 3)), intercept=np.zeros(n_outputs), X=X,
        y=rng.standard_normal((6, n_outputs)), sample_weight=np.ones(6),
    )  # fmt: skip


BAD_RATE_INPUTS = {
    "coef with NaN": ("coef", lambda v: with_entry(v, np.nan), "coef contains NaN"),
    "coef with inf": ("coef", lambda v: with_entry(v, np.inf), "coef contains infinity"),
    "complex coef": ("coef", lambda v: v + 1j, "Complex data not supported"),
    "string coef": ("coef", lambda v: np.full(v.shape, "a"), "could not convert string to float"),
    "intercept with NaN": ("intercept", lambda v: with_entry(v, np.nan), "intercept contains NaN"),
    "NaN scalar intercept": ("intercept", lambda v: np.nan, "intercept contains NaN"),
    "complex intercept": ("intercept", lambda v: v + 1j, "Complex data not supported"),
    "X with NaN": ("X", lambda v: with_entry(v, np.nan), "X contains NaN"),
    "y with inf": ("y", lambda v: with_entry(v, np.inf), "y contains infinity"),
    "sample_weight with NaN": (
        "sample_weight",
        lambda v: with_entry(v, np.nan),
        "sample_weight contains NaN",
    ),
    "all-zero sample_weight": ("sample_weight", lambda v: 0 * v, "non-zero|positive sum"),
    "negative sample_weight": ("sample_weight", lambda v: -v, "Negative values"),
    "no samples": ("X", lambda v: v[:0], "0 sample"),
    "y of another length": ("y", lambda v: v[:-1], "inconsistent numbers of samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_RATE_INPUTS))
def test_optimal_learning_rate_rejects_bad_input(case):
    """Before, NaN or complex weights went through and gave a NaN (or a silently truncated) rate."""
    name, make_bad, message = BAD_RATE_INPUTS[case]
    arguments = rate_arguments()
    arguments[name] = make_bad(arguments[name])
    if name == "X" and case == "no samples":
        arguments["y"], arguments["sample_weight"] = arguments["y"][:0], None
    coef, intercept, X, y = (arguments.pop(key) for key in ("coef", "intercept", "X", "y"))
    with pytest.raises((ValueError, TypeError), match=message):
        optimal_learning_rate(coef, intercept, X, y, **arguments)


def test_optimal_learning_rate_rejects_unknown_activation():
    arguments = rate_arguments()
    with pytest.raises(ValueError, match="'activation' parameter"):
        optimal_learning_rate(
            *(arguments[k] for k in ("coef", "intercept", "X", "y")), activation="tanh"
        )


# --- Nothing lost ------------------------------------------------------------------------


def snapshot(model):
    """Everything a model carries, training state included, as bytes: equal bytes mean the
    very same weights, curves, counters, averaging sums and random generator state."""
    return pickle.dumps(model.__dict__)


def assert_same_model(model, reference):
    for name in (
        "coef_",
        "intercept_",
        "loss_curve_",
        "learning_rate_curve_",
        "n_iter_",
        "t_",
        "n_features_in_",
    ):
        assert_array_equal(getattr(model, name), getattr(reference, name), err_msg=name)
    state, reference_state = model._state, reference._state
    assert_array_equal(state.coef, reference_state.coef)
    assert state.history == reference_state.history
    assert state.rng.bit_generator.state == reference_state.rng.bit_generator.state


# Each failing call: a bad input, or (fixed step 1e300) a diverging run.
FAILING_CALLS = {
    "X with NaN": lambda X, y: dict(X=with_entry(X, np.nan), y=y),
    "other number of features": lambda X, y: dict(X=X[:, :2], y=y),
    "other number of outputs": lambda X, y: dict(X=X, y=np.column_stack([y, y])),
    "negative sample_weight": lambda X, y: dict(X=X, y=y, sample_weight=-np.ones(len(y))),
    "string y": lambda X, y: dict(X=X, y=np.array(["a"] * len(y), dtype=object)),
    "diverging run": lambda X, y: dict(X=X, y=y, step=1e300),
    # Valid data for a new fit, so X is accepted (and n_features_in_ reset) before the failure.
    "new features, negative sample_weight": lambda X, y: dict(
        X=np.column_stack([X, X]), y=y, sample_weight=-np.ones(len(y))
    ),
    "new features, diverging run": lambda X, y: dict(X=np.column_stack([X, X]), y=y, step=1e300),
}


def trained_twins(**params):
    """Two models with the same two epochs behind them (with averaging, so its sums matter)."""
    X, y, _ = good_data()
    params = dict(batch_size=8, average=True, random_state=0) | params
    models = [OptimalLRRegressor(**params) for _ in range(2)]
    for model in models:
        model.partial_fit(X, y).partial_fit(X, y)
    return models, X, y


def call_failing(method, model, X, y, step=None, **kwargs):
    original = model.get_params()
    if step is not None:
        model.set_params(step=step, solver="gd")
    try:
        with pytest.raises((ValueError, TypeError, FloatingPointError)):
            getattr(model, method)(X, y, **kwargs)
    finally:
        model.set_params(step=original["step"], solver=original["solver"])


@pytest.mark.parametrize(
    "case",
    sorted(
        set(FAILING_CALLS) - {"new features, negative sample_weight", "new features, diverging run"}
    ),
)
@pytest.mark.parametrize("method", ["partial_fit", "fit"])
def test_failing_call_leaves_the_model_exactly_as_it_was(method, case):
    """partial_fit, and fit with warm_start, continue from the model; either failing must
    leave every attribute and the training state (averaging sums, random generator) as they
    were, so that the next call continues exactly as it would have without the failure."""
    (model, twin), X, y = trained_twins(warm_start=method == "fit", max_iter=2)
    before = snapshot(model)
    call_failing(method, model, **FAILING_CALLS[case](X, y))
    assert snapshot(model) == before
    assert_same_model(model, twin)
    getattr(model, method)(X, y)
    getattr(twin, method)(X, y)
    assert_same_model(model, twin)


@pytest.mark.parametrize(
    "case",
    ["X with NaN", "string y", "diverging run", "new features, negative sample_weight",
     "new features, diverging run"],
)  # fmt: skip
def test_failing_fit_without_warm_start_keeps_the_previous_fit(case):
    # A fresh fit resets n_features_in_ as it validates X; failing later must undo that, or
    # the old weights would be left with a new number of features.
    (model, twin), X, y = trained_twins()
    before = snapshot(model)
    call_failing("fit", model, **FAILING_CALLS[case](X, y))
    assert snapshot(model) == before
    assert_same_model(model, twin)


def test_interrupted_fit_keeps_the_previous_fit(monkeypatch):
    """A KeyboardInterrupt in the middle of training (here, raised from the epoch loop after
    the first epoch) must not leave a half-updated model behind either."""
    import sklearn_optlr._solver as solver

    (model, twin), X, y = trained_twins(warm_start=True, max_iter=5)
    real_make_epoch = solver.make_epoch

    def make_interrupted_epoch(*args, **kwargs):
        epoch = real_make_epoch(*args, **kwargs)
        calls = []

        def run(*run_args, **run_kwargs):
            calls.append(None)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return epoch(*run_args, **run_kwargs)

        return run

    monkeypatch.setattr(solver, "make_epoch", make_interrupted_epoch)
    before = snapshot(model)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert snapshot(model) == before
    monkeypatch.setattr(solver, "make_epoch", real_make_epoch)
    model.fit(X, y)
    twin.fit(X, y)
    assert_same_model(model, twin)


def test_failing_first_call_leaves_an_unfitted_model():
    X, y, _ = good_data()
    model = OptimalLRRegressor(step=1e300, batch_size=4)
    for call in (model.fit, model.partial_fit, partial(model.fit, sample_weight=-np.ones(len(y)))):
        with pytest.raises((ValueError, FloatingPointError)):
            call(X, y)
        assert not hasattr(model, "coef_") and not hasattr(model, "_state")
        assert not hasattr(model, "n_features_in_")


@pytest.mark.parametrize("batch_size", [1, "full"])
def test_early_stopping_split_with_no_weight_on_one_side_raises(batch_size):
    # One row carries all the weight, so whichever side of the split it lands on, the
    # other has none. That used to train on 0/0 (NaN losses, a fit that "succeeded" at the
    # initial weights), report a divergence, or blame the user's weights from r2_score.
    X, y, _ = good_data()
    sample_weight = np.zeros(N_SAMPLES)
    sample_weight[7] = 1.0
    sides = set()
    for seed in range(12):
        model = OptimalLRRegressor(
            batch_size=batch_size, early_stopping=True, validation_fraction=0.5, random_state=seed
        )
        message = "left the .* rows with zero total sample_weight"
        with pytest.raises(ValueError, match=message) as error:
            model.fit(X, y, sample_weight=sample_weight)
        sides.add(str(error.value).split(" rows")[0].rsplit(" ", 1)[1])
        assert not hasattr(model, "coef_")
    assert sides == {"training", "validation"}


def test_csr_with_duplicate_entries_fits_as_its_sum():
    # scipy sums duplicate (row, column) entries; the kernels took each stored entry as a
    # whole value, so rows' norms and the rates were wrong (R^2 of -1e196 at batch size 1).
    rng = np.random.default_rng(19)
    X = rng.standard_normal((200, 6))
    y = X @ np.arange(1.0, 7.0) + 1.0 + 0.1 * rng.standard_normal(200)
    columns = np.tile(np.repeat(np.arange(6), 4), 200)  # each entry stored as 4 quarters
    duplicated = sparse.csr_matrix(
        (np.repeat(X.ravel() / 4, 4), columns, np.arange(0, 200 * 24 + 1, 24)), shape=X.shape
    )
    assert not duplicated.has_canonical_format
    stored = duplicated.data.copy()
    for batch_size in [1, 16]:
        params = dict(batch_size=batch_size, max_iter=3, tol=0.0, random_state=0)
        reference = OptimalLRRegressor(**params).fit(sparse.csr_matrix(X), y)
        model = OptimalLRRegressor(**params).fit(duplicated, y)
        np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-10)
    # The user's matrix is left as it was.
    assert not duplicated.has_canonical_format
    assert_array_equal(duplicated.data, stored)


def test_activation_beyond_the_range_of_float32_x_raises_a_clear_error():
    # Knots of 1e40 are finite in float64 but inf in float32: the fit used to report a
    # divergence and advise rescaling X and y.
    X, y, _ = good_data()
    activation = PiecewiseLinear([-1e40, 1e40], [-1e40, 1e40], 0.0, 0.0)
    model = OptimalLRRegressor(activation, max_iter=2)
    with pytest.raises(ValueError, match="overflow float32, the dtype of X"):
        model.fit(X.astype(np.float32), y.astype(np.float32))
    model.fit(X, y)  # float64 represents it
    assert np.all(np.isfinite(model.predict(X)))


def test_nan_sample_weight_is_named_even_when_scikit_learn_assumes_finite_input():
    # With assume_finite=True scikit-learn's check lets NaN through, and the fit said
    # "sample_weight must have a positive sum; got all zeros".
    X = np.random.default_rng(0).standard_normal((50, 3))
    weights = np.ones(50)
    weights[3] = np.nan
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match="sample_weight contains NaN or infinity"):
            OptimalLRRegressor().fit(X, X[:, 0], sample_weight=weights)


def test_nan_in_x_is_named_when_scikit_learn_assumes_finite_input():
    # The divergence it causes was blamed on values beyond 1e154 and the step.
    X = np.random.default_rng(0).standard_normal((50, 3))
    y = X[:, 0].copy()
    X[7, 1] = np.nan
    model = OptimalLRRegressor(batch_size="full")
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            model.fit(X, y)
    assert not hasattr(model, "coef_")
