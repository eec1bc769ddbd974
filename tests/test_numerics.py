# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Numerical edge cases: extreme feature scales on every solver path, degenerate data, dead
units, and non-finite updates.

Oracles: the optimal rate in exact rational arithmetic (``fractions.Fraction`` on the very
floats the library sees, so no rounding, overflow or underflow), closed forms (one sample is
fitted in one normalised-LMS step; all-zero features leave only the weighted mean), and
scikit-learn's LinearRegression.
"""

import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, Ridge

from sklearn_optlr import OptimalLRRegressor, optimal_learning_rate
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._preconditioning import auto_preconditions
from sklearn_optlr._solver import (
    NUMPY_MIN_OUTPUTS,
    NUMPY_MIN_PRODUCTS,
    FullBatchEpoch,
    compiled_epoch,
    numpy_epoch,
    uses_numpy,
)

ignore_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Features of these magnitudes: the squares of float64 1e150 are 1e300 (close to overflow),
# those of 1e-150 underflow to subnormals, and 1e30 squared overflows float32.
SCALES = [
    pytest.param(1e150, np.float64, id="1e150-float64"),
    pytest.param(1e-150, np.float64, id="1e-150-float64"),
    pytest.param(1e30, np.float32, id="1e30-float32"),
]

# (sigma, right-hand sigma') on Fractions, written independently of the knot representation.
EXACT_ACTIVATIONS = {
    "identity": (lambda z: z, lambda z: 1),
    "relu": (lambda z: max(z, 0), lambda z: 1 if z >= 0 else 0),
    "abs": (abs, lambda z: 1 if z >= 0 else -1),
}


def exact_rate(W, b, X, Y, activation, sample_weight=None, alpha=0.0):
    """<g, g> / (g^T H g) in exact rational arithmetic on the given floats."""
    sigma, dsigma = EXACT_ACTIVATIONS[activation]

    def exact(array):
        return [[Fraction(float(v)) for v in row] for row in np.atleast_2d(array)]

    x, w, y, b = exact(X), exact(W), exact(Y), exact(b)[0]
    s = [Fraction(1)] * len(x) if sample_weight is None else exact(sample_weight)[0]
    s = [v / sum(s) for v in s]
    alpha = Fraction(alpha)
    samples, outputs, features = range(len(x)), range(len(w)), range(len(w[0]))
    z = [[sum(w[o][j] * x[i][j] for j in features) + b[o] for o in outputs] for i in samples]
    d = [[dsigma(z[i][o]) for o in outputs] for i in samples]
    r = [[s[i] * d[i][o] * (sigma(z[i][o]) - y[i][o]) for o in outputs] for i in samples]
    G = [
        [sum(r[i][o] * x[i][j] for i in samples) + alpha * w[o][j] for j in features]
        for o in outputs
    ]
    g = [sum(r[i][o] for i in samples) for o in outputs]
    G_squared = sum(v * v for row in G for v in row)
    numerator = G_squared + sum(v * v for v in g)
    u = [
        [d[i][o] * (sum(G[o][j] * x[i][j] for j in features) + g[o]) for o in outputs]
        for i in samples
    ]
    denominator = sum(s[i] * sum(v * v for v in u[i]) for i in samples) + alpha * G_squared
    return float(numerator / denominator)


def scaled_problem(
    scale, dtype, activation="relu", n_samples=12, n_features=3, n_outputs=2, seed=0
):
    """Weights and a batch whose pre-activations are those of a unit-scale problem (at least 0.1
    from the kink, on both sides of it), with features multiplied by ``scale`` and the weights
    divided by it."""
    rng = np.random.default_rng(seed)
    X0 = rng.standard_normal((n_samples, n_features))
    W0 = rng.standard_normal((n_outputs, n_features))
    b = 0.3 * rng.standard_normal(n_outputs)
    keep = np.abs(X0 @ W0.T + b).min(axis=1) > 0.1
    X0 = X0[keep]
    Y = rng.standard_normal((X0.shape[0], n_outputs))
    X = (X0 * scale).astype(dtype)
    W = (W0 / scale).astype(dtype)
    if activation == "relu":
        z = X0 @ W0.T + b
        assert (z > 0).any() and (z < 0).any()  # both pieces present
    return W, b.astype(dtype), X, Y.astype(dtype)


@pytest.mark.parametrize("activation", sorted(EXACT_ACTIVATIONS))
@pytest.mark.parametrize("scale, dtype", SCALES)
def test_optimal_learning_rate_is_exact_at_extreme_scales(scale, dtype, activation):
    """Before the scale-safe ratio, 1e150 and float32 1e30 gave 0.0 (g^T H g overflowed)."""
    W, b, X, Y = scaled_problem(scale, dtype, activation)
    sample_weight = np.linspace(0.5, 2.0, X.shape[0])
    for weights, alpha in [(None, 0.0), (sample_weight, 0.0), (None, 0.3)]:
        rate = optimal_learning_rate(
            W, b, X, Y, activation=activation, sample_weight=weights, alpha=alpha
        )
        expected = exact_rate(W, b, X, Y, activation, weights, alpha)
        assert np.isfinite(rate) and rate > 0
        assert_allclose(rate, expected, rtol=1e-12 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("scale, dtype", SCALES)
def test_single_sample_rate_is_normalised_lms_at_extreme_scales(scale, dtype):
    # One sample, active ReLU: alpha* = 1 / (1 + x^T x), however large or small x is.
    x = (np.array([[3.0, -1.0, 2.0]]) * scale).astype(dtype)
    coef = (np.array([0.5, 0.5, 0.5]) / scale).astype(dtype)
    rate = optimal_learning_rate(coef, 1.0, x, np.array([-2.0], dtype=dtype))
    expected = 1.0 / (1.0 + float(x[0].astype(np.float64) @ x[0].astype(np.float64)))
    assert_allclose(rate, expected, rtol=1e-12 if dtype == np.float64 else 1e-6)


def run_one_batch(path, X, Y, W, b, activation, step):
    """One step on the whole batch through one of the solver's paths; returns the rate and the
    new weights."""
    coef, intercept = W.copy(), b.copy()
    options = dict(activation=resolve_activation(activation), step=step, alpha=0.0)
    if path == "full batch":
        record = FullBatchEpoch(X, Y, None, **options)(coef, intercept)
    else:
        epoch = numpy_epoch if path == "numpy" else compiled_epoch
        X_in = sparse.csr_matrix(X) if path == "compiled csr" else X
        record = epoch(X_in, Y, None, coef, intercept, batch_size=len(X), order=None, **options)
    return record.step_mean, coef, intercept


@pytest.mark.parametrize(
    "path", ["compiled dense", "compiled dense, one row", "compiled csr", "numpy", "full batch"]
)
@pytest.mark.parametrize("scale, dtype", SCALES)
def test_every_path_takes_the_exact_rate_at_extreme_scales(scale, dtype, path):
    """The compiled kernels, the BLAS path and the full-batch step each take the exact rate,
    and for the identity (a quadratic loss) the exact line search finds the same step.
    A batch of one row goes through the dense kernel's closed form, which hands rows whose
    squares overflow or underflow to the general, rescaled step."""
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    for activation, step in [("relu", "optimal"), ("abs", "optimal"), ("identity", "exact")]:
        W, b, X, Y = scaled_problem(scale, dtype, activation)
        if path.endswith("one row"):
            active = np.flatnonzero(np.all(X @ W.T + b > 0, axis=1))[0]  # every unit alive
            X, Y = X[active : active + 1], Y[active : active + 1]
        rate, coef, intercept = run_one_batch(path, X, Y, W, b, activation, step)
        assert_allclose(rate, exact_rate(W, b, X, Y, activation), rtol=tolerance)
        assert coef.dtype == dtype and np.all(np.isfinite(coef))
        # The step was taken, not underflowed to nothing. It moves the weights at large
        # scales, the intercept at small ones (the other's change is 1e-300 of its size).
        assert not np.array_equal(coef, W) if scale > 1 else not np.array_equal(intercept, b)


# linear_problem's 3 features: the smallest dense batch that numpy runs (many outputs),
# and a CSR batch large enough for it.
NUMPY_BATCH = -(-NUMPY_MIN_PRODUCTS // (3 * NUMPY_MIN_OUTPUTS))
CSR_NUMPY_BATCH = 512

# Every way the estimator can train: the compiled kernel (dense and CSR, optimal and exact
# steps; dense one row at a time), the numpy path for large dense batches with many
# outputs and for preconditioned CSR batches, full-batch gradient descent, conjugate gradients
# with the optimal and the exact step.
PATHS = {
    "compiled-dense": (dict(batch_size=8), False, 1),
    "compiled-dense-one-row": (dict(batch_size=1), False, 1),
    # Without the preconditioner, which sends sparse batches to numpy (as "numpy-csr").
    "compiled-csr": (dict(batch_size=8, precondition=False), True, 1),
    "compiled-dense-exact": (dict(batch_size=8, step="exact"), False, 1),
    "compiled-csr-exact": (dict(batch_size=8, step="exact", precondition=False), True, 1),
    "compiled-csr-one-row": (dict(batch_size=1), True, 1),
    "numpy": (dict(batch_size=NUMPY_BATCH), False, NUMPY_MIN_OUTPUTS),
    "numpy-exact": (dict(batch_size=NUMPY_BATCH, step="exact"), False, NUMPY_MIN_OUTPUTS),
    "numpy-csr": (dict(batch_size=CSR_NUMPY_BATCH), True, 1),
    "full-gd": (dict(batch_size="full", solver="gd"), False, 1),
    "full-cg": (dict(batch_size="full"), False, 1),
    "full-cg-exact": (dict(batch_size="full", step="exact"), False, 1),
}


def linear_problem(scale, dtype, n_outputs, n_samples=None, seed=0):
    """Centred linear targets of unit scale from features of the given scale."""
    n_samples = n_samples or (2 * NUMPY_BATCH if n_outputs > 1 else 2 * CSR_NUMPY_BATCH)
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_samples, 3))
    Y = Z @ rng.standard_normal((3, n_outputs)) + 0.05 * rng.standard_normal((n_samples, n_outputs))
    return (Z * scale).astype(dtype), (Y[:, 0] if n_outputs == 1 else Y).astype(dtype)


def r2(model, X, y):
    # scikit-learn's score would square float32 predictions of any size in float32.
    prediction = model.predict(X).astype(np.float64)
    y = y.astype(np.float64)
    return 1 - np.sum((prediction - y) ** 2) / np.sum((y - y.mean(axis=0)) ** 2)


@ignore_convergence
@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("scale, dtype", SCALES)
def test_fit_at_extreme_scales_gives_finite_weights_on_every_path(scale, dtype, path):
    """At 1e150 (and float32 1e30) every path used to take rate 0 and learn nothing; now it
    fits. At 1e-150 the intercept's curvature is 1e300 times the weights', so gradient descent
    cannot move W (conditioning, not overflow): there the weights must only stay finite."""
    params, is_sparse, n_outputs = PATHS[path]
    X, y = linear_problem(scale, dtype, n_outputs)
    X_in = sparse.csr_matrix(X) if is_sparse else X
    if path.startswith("numpy"):  # the path named is the path taken
        batch_size = params["batch_size"]
        assert (
            auto_preconditions(X_in, batch_size, "optimal")
            if is_sparse
            else uses_numpy(X_in, batch_size, n_outputs)
        )
    model = OptimalLRRegressor(max_iter=15, random_state=0, **params).fit(X_in, y)
    assert model.coef_.dtype == dtype
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    assert np.all(np.isfinite(model.predict(X_in)))
    rates = np.array(model.learning_rate_curve_)
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0)
    if scale > 1:
        # Steps are taken (a step of 0 is right only once the fit cannot be improved).
        assert rates[0] > 0
        assert r2(model, X_in, y) > 0.9


@ignore_convergence
@pytest.mark.parametrize("path", sorted(PATHS))
def test_features_and_targets_both_near_1e78_are_fitted_on_every_path(path):
    """Residuals and features of 1e78 each: the squares of their products overflow float64.
    The CSR kernel, which never forms the gradient, squared them before scaling and reported
    a diverging fit; dense input trained. Every path now fits (as at unit scale)."""
    params, is_sparse, n_outputs = PATHS[path]
    X, y = linear_problem(1.0, np.float64, n_outputs)
    scale = 2.0**260
    X_in = sparse.csr_matrix(X * scale) if is_sparse else X * scale
    model = OptimalLRRegressor(max_iter=5, random_state=0, **params).fit(X_in, y * scale)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    assert r2(model, X_in, y * scale) > 0.9


@ignore_convergence
def test_sample_weights_at_the_edge_of_float64_give_the_same_model():
    """Weights of 1e308 used to make their sum overflow (no step was ever taken); weights are
    now rescaled by a power of two, so 2**1000 times the weights is the same model to the bit."""
    X, y = linear_problem(1.0, np.float64, 1)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    params = dict(batch_size=8, max_iter=5, random_state=0)
    reference = OptimalLRRegressor(**params).fit(X, y, sample_weight=weights)
    huge = OptimalLRRegressor(**params).fit(X, y, sample_weight=weights * 2.0**1000)
    assert_array_equal(huge.coef_, reference.coef_)
    # Subnormal weights: about 2**-1060 keeps only 14 significant bits (a relative error of
    # 6e-5 in each weight), so the model agrees to that precision, not to the bit.
    tiny = OptimalLRRegressor(**params).fit(X, y, sample_weight=weights * 2.0**-1060)
    assert_allclose(tiny.coef_, reference.coef_, rtol=1e-4)
    extreme = OptimalLRRegressor(**params).fit(X, y, sample_weight=np.full(len(X), 1e308))
    uniform = OptimalLRRegressor(**params).fit(X, y)
    assert_allclose(extreme.coef_, uniform.coef_, rtol=1e-12)
    # float64 weights beyond float32's range still train a float32 model.
    single = OptimalLRRegressor(**params).fit(
        X.astype(np.float32), y.astype(np.float32), sample_weight=weights * 1e300
    )
    assert_allclose(single.coef_, reference.coef_, rtol=1e-3)


@ignore_convergence
def test_float32_targets_whose_squares_overflow_float32():
    # 1e30 squared overflows float32: the loss is accumulated in float64, so this used to
    # raise "Training diverged" in full batch.
    X, y = linear_problem(1.0, np.float32, 1)
    for batch_size in (8, "full"):
        model = OptimalLRRegressor(batch_size=batch_size, max_iter=30).fit(X, y * np.float32(1e30))
        assert np.all(np.isfinite(model.loss_curve_))
        assert r2(model, X, y * np.float32(1e30)) > 0.99


def test_features_beyond_the_float64_range_of_squares_raise_a_clear_error():
    # At 1e300 no rate can be represented (it is about 1e-600): a clear error rather than a
    # model that silently never moves, as before.
    X, y = linear_problem(1e300, np.float64, 1)
    for batch_size in (8, "full"):
        with pytest.raises(FloatingPointError, match="rescale X and y"):
            OptimalLRRegressor(batch_size=batch_size).fit(X, y)


@pytest.mark.parametrize("batch_size", [1, 8, "full"])
def test_features_whose_squares_underflow_raise_a_clear_error(batch_size):
    # At 1e-200 every curvature underflows to 0, so no step was ever taken and the fit
    # returned the mean of y (R^2 0) without a word. A fitted model that is then given
    # such a chunk stays as it was. Just above the limit (1e-150), the fit runs.
    X, y = linear_problem(1.0, np.float64, 1)
    for X_tiny in (X * 1e-200, sparse.csr_matrix(X * 1e-200)):
        with pytest.raises(ValueError, match="squares of values below 1.5e-154 underflow"):
            OptimalLRRegressor(batch_size=batch_size).fit(X_tiny, y)
    model = OptimalLRRegressor(batch_size=batch_size, random_state=0).partial_fit(X, y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match="largest feature value of X is 3.*e-200"):
        model.partial_fit(X * 1e-200, y)
    assert_array_equal(model.coef_, coef)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        OptimalLRRegressor(batch_size=batch_size, max_iter=2).fit(X * 1e-150, y)


# --- Degenerate data ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 8, "full"])
@pytest.mark.parametrize("activation", ["identity", "relu", "abs"])
def test_constant_target_is_fitted(activation, batch_size):
    X, _ = linear_problem(1.0, np.float64, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = OptimalLRRegressor(activation, batch_size=batch_size, random_state=0)
        model.fit(X, np.full(len(X), 3.0))
    assert_allclose(model.predict(X), 3.0, atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 8, "full"])
def test_all_zero_features_fit_the_weighted_mean(batch_size):
    # With X = 0 the gradient of W is exactly zero, so W stays at its start (zero) and the
    # model is the intercept alone: the weighted mean of y.
    rng = np.random.default_rng(0)
    y = rng.standard_normal(40) + 2.0
    weights = rng.uniform(0.5, 2.0, 40)
    for X in (np.zeros((40, 3)), sparse.csr_matrix((40, 3))):
        model = OptimalLRRegressor(batch_size=batch_size, average=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # batch noise with batch_size=1
            model.fit(X, y, sample_weight=weights)
        assert_array_equal(model.coef_, 0.0)
        if batch_size == "full":
            assert_allclose(model.intercept_, np.average(y, weights=weights), rtol=1e-12)
        assert np.all(np.isfinite(model.predict(X)))


@pytest.mark.parametrize("batch_size", [1, "full"])
@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_one_sample_is_fitted_in_one_step_and_training_stops(activation, batch_size):
    """The optimal step on one sample is normalised LMS, which fits it exactly; the loss is
    then zero and the stopping rule must see that (it used to run to max_iter and warn):
    a loss at the targets' rounding level (here that of one row's mean: zero) stops it.
    ReLU starts at its one target's scale, which fits it before any step."""
    X, y = np.array([[2.0, -1.0, 0.5]]), np.array([3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = OptimalLRRegressor(activation, batch_size=batch_size).fit(X, y)
    assert_allclose(model.predict(X), y, rtol=1e-12)
    # One epoch to fit (its record is the loss before the step), one to record zero.
    assert model.n_iter_ == (2 if activation == "identity" else 1)
    assert model.loss_curve_[-1] == 0.0


@ignore_convergence
def test_duplicated_rows_equal_the_original_data_in_full_batch():
    # Every row twice: the same normalised weights, so the same model (to rounding).
    X, y = linear_problem(1.0, np.float64, 1, n_samples=30)
    params = dict(batch_size="full", max_iter=20, tol=0.0)
    model = OptimalLRRegressor("relu", **params).fit(np.repeat(X, 2, axis=0), np.repeat(y, 2))
    reference = OptimalLRRegressor("relu", **params).fit(X, y)
    assert_allclose(model.coef_, reference.coef_, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("batch_size", [4, "full"])
def test_identical_rows_fit_the_mean(batch_size):
    # Rank one data: the least-squares fit predicts the mean of y on the repeated row.
    X = np.tile([[1.0, -2.0, 0.5]], (20, 1))
    y = np.random.default_rng(0).standard_normal(20)
    model = OptimalLRRegressor(batch_size=batch_size, shuffle=False, random_state=0).fit(X, y)
    assert np.all(np.isfinite(model.coef_))
    assert_allclose(model.predict(X[:1]), y.mean(), atol=1e-6 if batch_size == "full" else 0.2)
    reference = LinearRegression().fit(X, y).predict(X[:1])
    assert_allclose(model.predict(X[:1]), reference, atol=1e-6 if batch_size == "full" else 0.2)


# --- Dead units --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, is_sparse, n_outputs",
    [PATHS["compiled-dense"], PATHS["compiled-csr"], PATHS["numpy"], PATHS["full-cg"]],
    ids=["compiled-dense", "compiled-csr", "numpy", "full-batch"],
)
@pytest.mark.parametrize("activation", ["relu", "hard_tanh"])
def test_every_unit_dead_warns_with_cause_and_remedy_and_still_predicts(
    activation, params, is_sparse, n_outputs
):
    """Targets out of the activation's range drive every unit onto a flat piece (ReLU below
    zero, hard tanh above one): a ConvergenceWarning naming the cause and the remedies, and
    a model that still predicts finite values."""
    X, y = linear_problem(1.0, np.float64, n_outputs)
    y = -100.0 - np.abs(y) if activation == "relu" else 100.0 + np.abs(y)
    X_in = sparse.csr_matrix(X) if is_sparse else X
    model = OptimalLRRegressor(activation, random_state=0, **params)
    with pytest.warns(ConvergenceWarning) as record:
        model.fit(X_in, y)
    message = " ".join(str(w.message) for w in record)
    assert "inactive" in message  # the cause
    assert "StandardScaler" in message and "leaky_relu" in message  # the remedies
    assert model.n_iter_ < model.max_iter  # training ended there, not at max_iter
    prediction = model.predict(X_in)
    assert np.all(np.isfinite(prediction))
    # Flat units predict a flat piece's value: ReLU's 0, hard tanh's -1 or 1.
    assert np.all(np.isin(prediction, [0.0] if activation == "relu" else [-1.0, 1.0]))


def test_dead_units_warn_in_partial_fit_too():
    X, y = linear_problem(1.0, np.float64, 1)
    model = OptimalLRRegressor("relu", batch_size="full").partial_fit(X, -100.0 - np.abs(y))
    with pytest.warns(ConvergenceWarning, match="inactive"):
        model.partial_fit(X, -100.0 - np.abs(y))
    assert np.all(np.isfinite(model.predict(X)))


# --- Non-finite updates ------------------------------------------------------------------


def diverging_batches(dtype=np.float64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(dtype)
    Y = rng.standard_normal((40, 1)).astype(dtype)
    return X, Y, np.zeros((1, 3), dtype=dtype), np.zeros(1, dtype=dtype)


@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("epoch", [numpy_epoch, compiled_epoch], ids=["numpy", "compiled"])
def test_first_non_finite_batch_ends_the_epoch_before_its_update(epoch, layout):
    """A rate of 1e300 sends the weights to about 1e300 on the first batch, so the second
    batch's loss overflows: the epoch stops there, with a NaN loss, and does not apply that
    batch's update (it used to run all 10 batches on NaN weights)."""
    X, Y, coef, intercept = diverging_batches()
    X_in = sparse.csr_matrix(X) if layout == "csr" else X
    options = dict(activation=resolve_activation("identity"), step=1e300, batch_size=4, alpha=0.0)
    record = epoch(X_in, Y, None, coef, intercept, order=None, **options)
    assert np.isnan(record.loss)
    assert record.n_batches == 1  # one update taken, the second batch refused
    assert np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))
    assert np.abs(coef).max() > 1e299


def test_full_batch_does_not_apply_a_non_finite_step():
    X, Y, coef, intercept = diverging_batches()
    full_batch = FullBatchEpoch(
        X, Y, None, activation=resolve_activation("identity"), step=1e300, alpha=0.0
    )
    assert np.isfinite(full_batch(coef, intercept).loss)
    after_first = coef.copy()
    assert np.isnan(full_batch(coef, intercept).loss)
    assert_array_equal(coef, after_first)


@pytest.mark.parametrize("batch_size", [4, "full"])
def test_diverging_fit_raises_naming_the_cause(batch_size):
    X, Y, _, _ = diverging_batches()
    model = OptimalLRRegressor(step=1e300, batch_size=batch_size, solver="gd")
    with pytest.raises(
        FloatingPointError, match=re.escape("With a fixed `step`, lower it")
    ) as error:
        model.fit(X, Y[:, 0])
    assert "no longer finite" in str(error.value)
    assert not hasattr(model, "coef_")  # nothing stored


# --- The exact line search on lines found by fuzzing (docs/fuzzing.rst) ------------------


def one_step(epoch, X, Y, coef, intercept, activation, step):
    coef, intercept = np.array(coef, dtype=float), np.array(intercept, dtype=float)
    epoch(
        X, Y, None, coef, intercept, activation=resolve_activation(activation, 0.05), step=step,
        batch_size=len(X), alpha=0.0, order=None,
    )  # fmt: skip
    return coef, intercept


def batch_loss_of(X, Y, coef, intercept, activation):
    return 0.5 * np.mean(
        np.sum((resolve_activation(activation, 0.05)(X @ coef.T + intercept) - Y) ** 2, axis=1)
    )


@pytest.mark.parametrize("epoch", [numpy_epoch, compiled_epoch], ids=["numpy", "compiled"])
def test_exact_step_for_a_unit_on_a_knot_moving_down(epoch):
    """A unit exactly on a knot and moving down is already on the lower piece. The numpy
    sweep counted that knot as a crossing a second time, and stopped short (the compiled
    twin did not). Here leaky ReLU (0.05) at z = 0 with target -1: along -g, z = -a, and
    the loss is 0 at a = 20."""
    X, Y = np.zeros((1, 1)), np.array([[-1.0]])
    coef, intercept = one_step(epoch, X, Y, [[0.0]], [0.0], "leaky_relu", "exact")
    assert_allclose(intercept, [-20.0], rtol=1e-12)
    assert batch_loss_of(X, Y, coef, intercept, "leaky_relu") < 1e-20


@pytest.mark.parametrize("epoch", [numpy_epoch, compiled_epoch], ids=["numpy", "compiled"])
def test_exact_step_is_not_misled_by_breakpoints_of_very_different_scales(epoch):
    """Two units cross their kink near a = 1.5, two others (changing 1e12 times more slowly)
    near a = 6e12. Running sums of the pieces' coefficients then cancel catastrophically
    (the sweep saw a loss of -1.17 at 6e12, where it is 0.17); the exact step must still do
    at least as well as the optimal step (loss 5e-26)."""
    X, Y = np.array([[-2e6], [1e-6], [0.0]]), np.zeros((3, 2))
    start = dict(coef=[[1e-6], [1e-6]], intercept=[0.0, 1.0], activation="relu")
    exact = one_step(epoch, X, Y, step="exact", **start)
    optimal = one_step(epoch, X, Y, step="optimal", **start)
    optimal_loss = batch_loss_of(X, Y, *optimal, "relu")
    assert optimal_loss < 1e-20
    assert batch_loss_of(X, Y, *exact, "relu") <= optimal_loss * (1 + 1e-9)


@pytest.mark.parametrize(
    "params",
    [dict(batch_size="full"), dict(batch_size="full", solver="gd"), dict(batch_size=8)],
    ids=["cg", "full-gd", "compiled-dense"],
)
def test_tiny_targets_scale_the_model_exactly(params):
    """Targets 2**-600 (about 1e-181) times smaller give weights exactly 2**-600 times
    smaller: every optimal step is a ratio of forms in the gradient, and scaling by a power
    of two is exact. Conjugate gradients used to divide 0 by 0 there (the gradients' squares
    underflow; found by fuzzing), and the compiled kernel took no step at all. (The exact
    line search compares losses, whose squares underflow here: it takes no step.)"""
    X, y = linear_problem(1.0, np.float64, 1)
    factor = 2.0**-600
    params = (
        dict(max_iter=6, tol=0.0, n_iter_no_change=10, shuffle=False, activation="identity")
        | params
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = OptimalLRRegressor(**params).fit(X, y)
        tiny = OptimalLRRegressor(**params).fit(X, y * factor)
    assert_array_equal(tiny.coef_, reference.coef_ * factor)
    assert_array_equal(tiny.intercept_, reference.intercept_ * factor)


def test_subnormal_sample_weights_are_zero_weights():
    # A batch whose only row has a weight of 2e-311 divided by it (overflowing to NaN in the
    # compiled kernel; found by fuzzing). Such weights are now zeros.
    X, y = linear_problem(1.0, np.float64, 1, n_samples=20)
    weights = np.ones(20)
    weights[::2] = 2e-311
    params = dict(batch_size=1, shuffle=False, max_iter=3, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = OptimalLRRegressor(**params).fit(X, y, sample_weight=weights)
        reference = OptimalLRRegressor(**params).fit(X, y, sample_weight=(weights == 1.0) * 1.0)
    assert_array_equal(model.coef_, reference.coef_)


def float32_problem(feature_scale, target_scale, n_samples, seed=0):
    """Float32 features of the given size, correlated, and linear targets of the given size."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_samples, 5)) @ (np.eye(5) + 0.5)
    y = (Z @ rng.standard_normal(5) + 0.3 + 0.05 * rng.standard_normal(n_samples)) * target_scale
    return (Z * feature_scale).astype(np.float32), y.astype(np.float32)


@ignore_convergence
@pytest.mark.parametrize("n_samples", [150, 1000])  # the default batch: full, 200 rows
@pytest.mark.parametrize("feature_scale", [1e30, 1e-30])
def test_the_defaults_train_on_float32_features_far_from_unit_size(feature_scale, n_samples):
    # Their squares leave float32's range (1e60, 1e-60): the preconditioner's moments are
    # float64 sums, and the default fit must reach least squares as unit-size ones do
    # (at 1e-30 plain descent does not move W at all: R^2 0).
    X, y = float32_problem(feature_scale, 1.0, n_samples)
    X64, y64 = X.astype(np.float64), y.astype(np.float64)
    best = Ridge(alpha=0.0).fit(X64, y64).score(X64, y64)
    model = OptimalLRRegressor(random_state=0).fit(X, y)
    assert model._state.preconditioner is not None
    assert r2(model, X, y) > best - 1e-3


@ignore_convergence
@pytest.mark.parametrize("n_samples", [150, 1000])  # the default batch: full, grown to full
def test_the_default_full_batch_trains_where_float32_mini_batches_do(n_samples):
    # Features of 1e30 times residuals of 1e10: float32's sums in the gradient X^T r
    # overflowed, and the default fit (which ends in full batch) raised "diverged" where
    # batches of 32, whose compiled kernels accumulate in float64, train.
    X, y = float32_problem(1e30, 1e10, n_samples)
    assert r2(OptimalLRRegressor(batch_size=32, random_state=0).fit(X, y), X, y) > 0.99
    model = OptimalLRRegressor(random_state=0).fit(X, y)
    assert model.coef_.dtype == np.float32
    assert model.batch_size_curve_[-1] == n_samples
    assert r2(model, X, y) > 0.99
