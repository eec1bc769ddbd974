# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The preconditioned descent: its matrix, its step against a written-out oracle, every
path against the numpy reference, the ``"auto"`` rule, and what it is for (badly
conditioned data)."""

import warnings
from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._preconditioning import (
    AUTO_MAX_FEATURES,
    MAX_FEATURES,
    PRECONDITIONER_RIDGE,
    auto_preconditions,
    column_size_spread,
    column_statistics,
    dense_preconditioner,
    moments,
    moments_preconditioner,
)
from sklearn_optlr._preconditioning import precondition as preconditioned_direction
from sklearn_optlr._solver import FullBatchEpoch, compiled_epoch, numpy_epoch

ignore_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def correlated_data(n_samples=300, n_features=6, n_outputs=2, seed=0, rho=0.95):
    """Features with AR(1) correlation ``rho`` (badly conditioned) and a noisy linear target."""
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(n_features), np.arange(n_features)))
    X = rng.standard_normal((n_samples, n_features)) @ np.linalg.cholesky(rho**lag).T
    X = X * rng.uniform(0.5, 3.0, n_features) + rng.uniform(-1, 1, n_features)
    Y = X @ rng.standard_normal((n_features, n_outputs)) + 0.1 * rng.standard_normal(
        (n_samples, n_outputs)
    )
    return X, Y


def ridge_scales(mean, covariance, n_rows):
    """Each feature's variance; its second moment if it is constant (a spread below
    ``n_rows`` rounding units of its offset); 1 if it is zero."""
    variance = np.diag(covariance).copy()
    second = variance + mean**2
    constant = np.sqrt(variance) <= n_rows * np.finfo(float).eps * np.sqrt(second)
    variance[constant] = second[constant]
    variance[variance == 0] = 1.0
    return variance


def written_out_preconditioner(X, sample_weight, chunks=None):
    """``(C + ridge diag(v, 0))^{-1}`` by the definition, with numpy's inverse; with
    ``chunks`` (slices of the rows), the moments combined chunk by chunk, each chunk
    counting by its rows and its weights relative within it."""
    counts, means, covariances = [], [], []
    for rows in [slice(None)] if chunks is None else chunks:
        x, w = X[rows], sample_weight[rows] / sample_weight[rows].sum()
        counts.append(len(x))
        means.append(w @ x)
        covariances.append((x - means[-1]).T @ ((x - means[-1]) * w[:, None]))
    shares = np.array(counts, dtype=float) / sum(counts)
    mean = shares @ np.array(means)
    covariance = sum(
        c * (cov + np.outer(m - mean, m - mean)) for c, m, cov in zip(shares, means, covariances)
    )
    moment = np.zeros((X.shape[1] + 1,) * 2)
    moment[:-1, :-1] = covariance + np.outer(mean, mean)
    moment[:-1, -1] = moment[-1, :-1] = mean
    moment[-1, -1] = 1.0
    ridge = np.append(ridge_scales(mean, covariance, X.shape[0]), 0.0)
    return np.linalg.inv(moment + PRECONDITIONER_RIDGE * np.diag(ridge))


def test_moments_are_the_weighted_mean_and_covariance_for_every_input_kind():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((9000, 4)) + [0.0, 5.0, -3.0, 1e4]  # more rows than a chunk
    X[rng.random(X.shape) < 0.5] = 0.0
    weights = rng.uniform(0.0, 2.0, X.shape[0])
    for data in [X, X.astype(np.float32), sparse.csr_matrix(X)]:
        expected = X if data.dtype == np.float64 else X.astype(np.float32).astype(np.float64)
        summary = moments(data, weights)
        assert summary.count == X.shape[0]
        assert_allclose(summary.mean, np.average(expected, axis=0, weights=weights), rtol=1e-10)
        covariance = np.cov(expected, rowvar=False, aweights=weights, bias=True)
        tolerance = 1e-6 if sparse.issparse(data) else 1e-10  # sparse: x x^T minus m m^T
        assert_allclose(summary.scatter / X.shape[0], covariance, rtol=tolerance, atol=tolerance)


def test_wide_rows_are_summarised_in_smaller_chunks(monkeypatch):
    import sklearn_optlr._preconditioning as preconditioning

    monkeypatch.setattr(preconditioning, "_CHUNK_ENTRIES", 40)  # 5 rows of 8 a chunk
    rng = np.random.default_rng(6)
    X = rng.standard_normal((23, 8)) + 3.0
    weights = rng.uniform(0.5, 2.0, 23)
    assert len(list(preconditioning._row_chunks(*X.shape))) == 5
    for data in (X, X.astype(np.float32)):
        summary = moments(data, weights)
        expected = np.asarray(data, dtype=np.float64)
        assert_allclose(summary.mean, np.average(expected, axis=0, weights=weights), rtol=1e-12)
        covariance = np.cov(expected, rowvar=False, aweights=weights, bias=True)
        assert_allclose(summary.scatter / 23, covariance, rtol=1e-10, atol=1e-12)


def test_dense_enough_csr_is_summarised_as_dense_rows_are():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 8)) + [0.0, 1e9, 0, 0, 0, 0, 0, 0]
    X[rng.random(X.shape) < 0.5] = 0.0
    dense, csr = moments(X), moments(sparse.csr_matrix(X))
    assert_allclose(csr.mean, dense.mean, rtol=1e-14)
    assert_allclose(csr.scatter, dense.scatter, rtol=1e-12, atol=1e-9)


def test_moments_of_chunks_combine_into_the_moments_of_all_rows():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((700, 3)) * [1.0, 10.0, 0.1] + [100.0, 0.0, -5.0]
    whole = moments(X)
    combined = moments(X[:100]) + moments(X[100:450]) + moments(X[450:])
    assert combined.count == whole.count
    assert_allclose(combined.mean, whole.mean, rtol=1e-12)
    assert_allclose(combined.scatter, whole.scatter, rtol=1e-10)


@pytest.mark.parametrize("kind", ["dense", "float32", "csr"])
def test_column_statistics_and_the_spread_of_their_sizes(kind):
    rng = np.random.default_rng(0)
    X = np.column_stack([
        rng.standard_normal(200), 0.01 * rng.standard_normal(200), np.full(200, 3.0),
        np.zeros(200), 5.0 + rng.standard_normal(200),
    ])  # fmt: skip
    X[rng.random(200) < 0.5, 1] = 0.0
    weights = rng.random(200)
    weights /= weights.sum()
    sizes = np.sqrt(weights @ X[:, [0, 1, 2, 4]] ** 2)  # the zero column is left out
    expected = max(sizes.max(), 1.0) / min(sizes.min(), 1.0)  # the intercept's ones: 1
    tiny = {"dense": 1.0, "float32": 1e-30, "csr": 1e-200}[kind]  # squares would underflow
    scaled = X * tiny
    dtype = np.float32 if kind == "float32" else np.float64
    data = sparse.csr_matrix(scaled, dtype=dtype) if kind == "csr" else scaled.astype(dtype)
    size, mean, deviation = column_statistics(data, weights)
    assert_allclose(size[[0, 1, 2, 4]], sizes * tiny, rtol=1e-5)
    assert size[3] == 0.0
    assert_allclose(mean, weights @ X * tiny, rtol=1e-5, atol=1e-12 * tiny)
    reference_deviation = np.sqrt(weights @ (X - weights @ X) ** 2) * tiny
    assert_allclose(deviation, reference_deviation, rtol=1e-4, atol=1e-7 * tiny)
    spread = column_size_spread(size)
    # Scaling every column scales every size but the intercept's.
    scaled_sizes = np.append(sizes * tiny, 1.0)
    assert_allclose(spread, scaled_sizes.max() / scaled_sizes.min(), rtol=1e-5)
    assert_allclose(column_size_spread(column_statistics(X, weights)[0]), expected, rtol=1e-12)


def test_preconditioner_is_its_definition_and_refuses_what_overflows():
    X, _ = correlated_data()
    weights = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    X[:, 2] = 4.0  # a constant column: the ridge keeps the matrix invertible
    X[:, 3] = 0.0  # an all-zero one: no scale to divide by
    X[:, 4] += 1e3  # an offset a thousand times the spread
    assert_allclose(
        dense_preconditioner(moments_preconditioner(X, weights)),
        written_out_preconditioner(X, weights),
        rtol=1e-7,
        atol=1e-9,
    )
    rows = np.random.default_rng(3).standard_normal((5, 2))
    assert moments_preconditioner(rows * 1e200) is None  # squares overflow
    assert moments_preconditioner(rows * [1.0, 1e-160]) is None  # 1 / variance overflows


def written_out_preconditioned_epoch(X, Y, sample_weight, batch_size, P):
    """Shuffle-free epoch of the identity model from W = 0, b = 0, along d = P g with the
    step that minimises the batch loss along d, found by its own closed form: the batch
    loss along d is the quadratic ``L(a) = 1/2 sum_i w_i ||r_i - a u_i||^2``."""
    W = np.zeros((Y.shape[1], X.shape[1]))
    b = np.zeros(Y.shape[1])
    for first in range(0, X.shape[0], batch_size):
        rows = slice(first, first + batch_size)
        x, y, s = X[rows], Y[rows], sample_weight[rows]
        w = s / s.sum()
        residual = x @ W.T + b - y
        gradient = np.hstack([(w[:, None] * residual).T @ x, (w @ residual)[:, None]])
        direction = gradient @ P
        change = x @ direction[:, :-1].T + direction[:, -1]
        step = np.sum(w[:, None] * residual * change) / np.sum(w[:, None] * change**2)
        W, b = W - step * direction[:, :-1], b - step * direction[:, -1]
    return W, b


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [7, 50])
def test_one_epoch_matches_written_out_preconditioned_descent(batch_size, fmt):
    X, Y = correlated_data(n_samples=120)
    sample_weight = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0])
    W, b = written_out_preconditioned_epoch(
        X, Y, sample_weight, batch_size, written_out_preconditioner(X, sample_weight)
    )
    model = OptimalLRRegressor(
        batch_size=batch_size, step="optimal", average=False, precondition=True, shuffle=False
    )
    model.partial_fit(sparse.csr_matrix(X) if fmt == "csr" else X, Y, sample_weight=sample_weight)
    assert_allclose(model.coef_, W, rtol=1e-8, atol=1e-10)
    assert_allclose(model.intercept_, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("activation", ["identity", "relu", "leaky_relu", "hard_tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [1, 7, 40])
def test_compiled_preconditioned_epoch_matches_numpy_reference(activation, dtype, batch_size):
    rng = np.random.default_rng(4)
    X, Y = correlated_data(n_samples=40, n_features=5)
    X, Y = X.astype(dtype), Y.astype(dtype)
    coef = (0.4 * rng.standard_normal((2, 5))).astype(dtype)
    intercept = (0.3 * rng.standard_normal(2)).astype(dtype)
    weights = rng.integers(0, 3, X.shape[0]).astype(dtype)
    order = rng.permutation(X.shape[0])
    P = moments_preconditioner(X, weights)
    tolerance = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for step, alpha, average_from in [
        ("optimal", 0.0, None),
        ("pooled", 0.05, 2),
        ("exact", 0.05, None),
        (0.01, 0.05, 0),
    ]:
        options = dict(
            activation=resolve_activation(activation), step=step, batch_size=batch_size,
            alpha=alpha, order=order, window=3.0, preconditioner=P, average_from=average_from,
        )  # fmt: skip
        results = []
        for epoch in (numpy_epoch, compiled_epoch):
            W, b = coef.copy(), intercept.copy()
            record = epoch(X, Y, weights, W, b, **options)
            results.append((W, b, record))
        (W_ref, b_ref, ref), (W, b, record) = results
        assert_allclose(W, W_ref, **tolerance)
        assert_allclose(b, b_ref, **tolerance)
        assert_allclose(record.loss, ref.loss, **tolerance)
        assert_allclose(record.step_mean, ref.step_mean, **tolerance)
        assert (record.iterate_sum is None) == (ref.iterate_sum is None)
        if ref.iterate_sum is not None:
            for part, part_ref in zip(record.iterate_sum, ref.iterate_sum):
                assert_allclose(part, part_ref, **tolerance)


def test_full_batch_preconditioned_cg_solves_least_squares_in_n_features_plus_one_steps():
    # Preconditioned CG keeps CG's finite termination on a quadratic (with the plain
    # Polak-Ribiere ratio instead of the preconditioned one it is 30% off here).
    X, Y = correlated_data(n_samples=80, n_features=10, n_outputs=1, rho=0.99)
    model = OptimalLRRegressor(batch_size="full", precondition=True, max_iter=11, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y[:, 0])
    exact = LinearRegression().fit(X, Y[:, 0])
    assert_allclose(model.coef_, exact.coef_, rtol=1e-9)
    assert_allclose(model.intercept_, exact.intercept_, rtol=1e-9)


def test_full_batch_preconditioned_steepest_descent_matches_numpy_reference():
    X, Y = correlated_data(n_samples=50)
    P = moments_preconditioner(X)
    options = dict(activation=resolve_activation("relu"), step="optimal", alpha=0.01)
    full_batch = FullBatchEpoch(X, Y, None, preconditioner=P, **options)
    W, b = np.zeros((2, X.shape[1])), np.ones(2)
    W_ref, b_ref = W.copy(), b.copy()
    for _ in range(5):
        full_batch(W, b)
        numpy_epoch(
            X, Y, None, W_ref, b_ref, batch_size=len(X), order=None, preconditioner=P, **options
        )
    assert_allclose(W, W_ref, rtol=1e-9, atol=1e-12)
    assert_allclose(b, b_ref, rtol=1e-9, atol=1e-12)


@ignore_convergence
@pytest.mark.parametrize("activation", ["identity", "leaky_relu"])
def test_preconditioning_overcomes_bad_conditioning(activation):
    # What it is for: with correlated, unevenly scaled features plain descent is still far
    # from the least-squares solution after a few epochs; preconditioned, it is there.
    X, Y = correlated_data(n_samples=2000, n_features=10, n_outputs=1, rho=0.99)
    y = Y[:, 0] - Y[:, 0].min() + 1.0 if activation == "leaky_relu" else Y[:, 0]
    exact = LinearRegression().fit(X, y)  # leaky ReLU with y > 0 is linear at the optimum
    best = np.mean((exact.predict(X) - y) ** 2)
    excess = {}
    for precondition in (False, True):
        model = OptimalLRRegressor(
            activation, batch_size=64, precondition=precondition, max_iter=3, tol=0.0,
            random_state=0,
        ).fit(X, y)  # fmt: skip
        excess[precondition] = np.mean((model.predict(X) - y) ** 2) / best - 1
    assert excess[True] < 1e-2
    assert excess[True] < excess[False] / 10


@ignore_convergence
def test_preconditioner_is_kept_across_warm_start():
    X, Y = correlated_data(n_samples=200)
    params = dict(batch_size=16, random_state=0, tol=0.0)
    once = OptimalLRRegressor(max_iter=3, **params).fit(X, Y)
    warm = OptimalLRRegressor(max_iter=1, warm_start=True, **params)
    for _ in range(3):
        warm.fit(X, Y)
    assert_allclose(warm.coef_, once.coef_, rtol=1e-12)
    # On other rows, warm_start continues with the first fit's preconditioner.
    first = warm._state.preconditioner.copy()
    warm.fit(X[:50] * 2.0, Y[:50])
    assert_array_equal(warm._state.preconditioner, first)


def test_auto_rule():
    X = np.zeros((1000, 9))
    assert auto_preconditions(X, 10, "pooled")  # 10 rows a batch for 10 inputs
    assert not auto_preconditions(X, 9, "pooled")  # fewer rows than inputs
    assert auto_preconditions(X, 1000, "optimal")  # full batch: preconditioned CG
    assert not auto_preconditions(X, 64, 0.01)  # a fixed rate keeps its meaning
    assert auto_preconditions(sparse.csr_matrix(X), 64, "exact")
    wide = np.zeros((5000, AUTO_MAX_FEATURES + 1))
    assert not auto_preconditions(wide, 4096, "pooled")


@ignore_convergence
def test_auto_treats_sparse_input_as_dense():
    X, Y = correlated_data(n_samples=200)
    X[np.random.default_rng(5).random(X.shape) < 0.3] = 0.0
    params = dict(batch_size=16, random_state=0, max_iter=5, tol=0.0)
    dense = OptimalLRRegressor(**params).fit(X, Y)
    assert dense._state.preconditioner is not None
    sparse_model = OptimalLRRegressor(**params).fit(sparse.csr_matrix(X), Y)
    assert_allclose(sparse_model.coef_, dense.coef_, rtol=1e-8, atol=1e-10)


@ignore_convergence
@pytest.mark.parametrize("scale", [1e150, 1e-150, 1.0])
def test_extreme_feature_scales_are_fitted(scale):
    # At 1e-150 the intercept's curvature is 1e300 times the weights', and plain descent
    # cannot move W (R^2 0); the preconditioner divides each feature by its own scale.
    X, Y = correlated_data(n_samples=100, n_outputs=1)
    model = OptimalLRRegressor(batch_size=16, max_iter=20, random_state=0)
    model.fit(X * scale, Y[:, 0])
    assert model._state.preconditioner is not None
    assert model.score(X * scale, Y[:, 0]) > 0.99


@ignore_convergence
def test_a_feature_too_small_to_invert_falls_back_to_plain_descent():
    # A column of 1e-156: its variance is subnormal and 1 / variance overflows, so no
    # preconditioner is used, and the fit is the plain one (it used to diverge).
    X, Y = correlated_data(n_samples=100, n_outputs=1)
    X[:, 0] *= 1e-156
    params = dict(batch_size=16, max_iter=20, random_state=0)
    model = OptimalLRRegressor(**params).fit(X, Y[:, 0])
    assert model._state.preconditioner is None
    plain = OptimalLRRegressor(precondition=False, **params).fit(X, Y[:, 0])
    assert_array_equal(model.coef_, plain.coef_)


@ignore_convergence
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_tiny_float32_features_on_the_numpy_path(layout):
    # 16 outputs and batches of 512 run by numpy, as does sparse input with a
    # preconditioner. <g, P g> must be formed in float64: g / scale underflows float32.
    rng = np.random.default_rng(8)
    X = (rng.standard_normal((2000, 5)) * 1e-30).astype(np.float32)
    Y = (X.astype(np.float64) * 1e30 @ rng.standard_normal((5, 16))).astype(np.float32)
    X_in = sparse.csr_matrix(X) if layout == "csr" else X
    model = OptimalLRRegressor(batch_size=512 if layout == "dense" else 32, max_iter=5, tol=0.0)
    model.fit(X_in, Y)
    assert model._state.preconditioner is not None
    assert model.score(X_in, Y) > 0.99


@ignore_convergence
def test_numpy_booleans_from_a_grid_are_honoured():
    X, Y = correlated_data(n_samples=100)
    for value, expected in [(np.True_, True), (np.False_, False)]:
        model = OptimalLRRegressor(batch_size=4, precondition=value, max_iter=1).fit(X, Y)
        assert (model._state.preconditioner is not None) == expected


@ignore_convergence
def test_partial_fit_preconditions_with_every_chunk_seen():
    # A feature that is zero throughout the first chunk: that chunk's P alone would
    # magnify it a thousand times for the rest of the stream (measured: 2% to 37%
    # relative excess loss after 3 passes, against 0.1% to 1% with every chunk's).
    rng = np.random.default_rng(6)
    X, _ = correlated_data(n_samples=3000, n_features=8, n_outputs=1)
    X[:300, 0] = 0.0
    y = X @ rng.standard_normal(8) + 0.1 * rng.standard_normal(3000)
    chunks = [slice(start, start + 300) for start in range(0, 3000, 300)]
    # Weights on scales a thousand times apart from chunk to chunk: only their ratios
    # within a call count, as within a batch.
    weights = rng.uniform(0.5, 2.0, X.shape[0]) * np.repeat(10.0 ** np.arange(-5, 5), 300)
    stream = OptimalLRRegressor(batch_size=32, precondition=True, random_state=0)
    for n_passes in range(3):
        for k, chunk in enumerate(chunks):
            stream.partial_fit(X[chunk], y[chunk], sample_weight=weights[chunk])
            if n_passes == 0:
                assert_allclose(
                    dense_preconditioner(stream._state.preconditioner),
                    written_out_preconditioner(X, weights, chunks[: k + 1]),
                    rtol=1e-8,
                    atol=1e-8,
                )
    best = LinearRegression().fit(X, y)
    loss = np.mean((stream.predict(X) - y) ** 2)
    assert loss / np.mean((best.predict(X) - y) ** 2) - 1 < 0.02


@ignore_convergence
def test_partial_fit_after_fit_keeps_the_fit_rows_in_the_preconditioner():
    X, Y = correlated_data(n_samples=400)
    model = OptimalLRRegressor(batch_size=16, random_state=0, max_iter=2).fit(X[:300], Y[:300])
    # A chunk of 5 rows for 7 inputs: "auto" does not precondition its batch, but its
    # rows still count in the preconditioner of the later, larger chunks.
    model.partial_fit(X[300:305], Y[300:305])
    model.partial_fit(X[305:], Y[305:])
    weights = np.ones(len(X))
    chunks = [slice(0, 300), slice(300, 305), slice(305, 400)]
    assert_allclose(
        dense_preconditioner(model._state.preconditioner),
        written_out_preconditioner(X, weights, chunks),
        rtol=1e-8,
    )
    # At a batch size that can never be preconditioned, chunks cost no moments.
    narrow = OptimalLRRegressor(batch_size=4, random_state=0).partial_fit(X, Y)
    assert narrow._state.moments is None and narrow._state.preconditioner is None


@ignore_convergence
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_unscaled_and_uncentred_features_are_preconditioned_to_their_own_scale(offset):
    # Feature scales from 1e-3 to 1e4, and offsets a thousand times the spread: a ridge
    # relative to the largest feature left the small ones unpreconditioned (1,500 times
    # the optimal loss after 5 epochs), one relative to each feature's second moment the
    # offset ones (8 times at batch size 64, 420 in full batch); each feature's own
    # variance, and the mean handled apart, get it there.
    rng = np.random.default_rng(7)
    scales = 10 ** rng.uniform(-3, 4, 12)
    X, _ = correlated_data(n_samples=5000, n_features=12, n_outputs=1, rho=0.5)
    X = (X + offset * rng.uniform(-1, 1, 12)) * scales
    y = (X / scales) @ rng.standard_normal(12) + 0.1 * rng.standard_normal(5000)
    best = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    best_loss = np.mean((best.predict(X) - y) ** 2)
    for batch_size in (64, "full"):
        model = OptimalLRRegressor(batch_size=batch_size, max_iter=5, tol=0.0, random_state=0)
        model.fit(X, y)
        assert np.mean((model.predict(X) - y) ** 2) / best_loss - 1 < 1e-3


@ignore_convergence
@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [32, "auto"])
def test_a_feature_whose_offset_dwarfs_its_spread_is_still_a_feature(fmt, batch_size):
    # Unix times in seconds within half an hour: a spread 1e-7 of the offset. Taken for
    # a constant column, it was preconditioned by its second moment, 1e10 times too
    # little, and mini-batch fits ignored it (R^2 0.1 against 0.97).
    rng = np.random.default_rng(0)
    seconds = rng.uniform(0, 1800, 1000)
    other = rng.standard_normal(1000)
    X = np.column_stack([1.7e9 + seconds, other, np.full(1000, 1.7e9)])  # and a constant
    y = 0.01 * seconds + 2 * other + rng.standard_normal(1000)
    best = LinearRegression().fit(X, y)
    data = sparse.csr_matrix(X) if fmt == "csr" else X
    model = OptimalLRRegressor(batch_size=batch_size, random_state=0).fit(data, y)
    assert model.score(data, y) > best.score(X, y) - 1e-3
    assert_allclose(model.coef_[:2], best.coef_[:2], rtol=0.02)


def test_sparse_covariance_of_offset_columns_is_taken_about_the_mean():
    # x x^T minus m m^T cancels for columns whose offset dwarfs their spread: two such
    # columns came out with a correlation of 3.7, and a constant one (non-uniform
    # weights) with a variance of 1e-16 of its square, so not constant.
    rng = np.random.default_rng(4)
    first = 1e8 + rng.standard_normal(5000)
    rare = rng.standard_normal((5000, 120)) * (rng.random((5000, 120)) < 0.01)
    X = np.column_stack([
        first, 1e8 + 0.7 * (first - 1e8) + rng.standard_normal(5000), np.full(5000, 1.7e9), rare,
    ])  # fmt: skip
    CSR = sparse.csr_matrix(X)
    assert CSR.nnz < 0.05 * X.size  # summarised sparsely, not by dense chunks
    weights = rng.uniform(0.5, 2.0, 5000)
    expected = np.cov(X, rowvar=False, aweights=weights, bias=True)
    summary = moments(CSR, weights)
    varying = np.r_[0, 1, 3 : X.shape[1]]
    assert_allclose(
        summary.scatter[np.ix_(varying, varying)] / 5000, expected[np.ix_(varying, varying)],
        rtol=1e-8, atol=1e-10,
    )  # fmt: skip
    assert np.all(np.abs(summary.scatter[2]) / 5000 <= (5000 * 2.3e-16 * 1.7e9) ** 2)
    assert_allclose(
        moments_preconditioner(CSR, weights), moments_preconditioner(X, weights),
        rtol=1e-9, atol=1e-9,
    )  # fmt: skip


@ignore_convergence
def test_precondition_true_refuses_data_too_wide_for_a_dense_preconditioner():
    X = sparse.random(20, MAX_FEATURES + 1, density=0.01, format="csr", random_state=0)
    model = OptimalLRRegressor(precondition=True)
    with pytest.raises(ValueError, match="precondition=True needs dense matrices"):
        model.fit(X, np.arange(20.0))
    assert not hasattr(model, "coef_")
    OptimalLRRegressor(max_iter=2).fit(X, np.arange(20.0))  # "auto" leaves it off


def offset_data(offset, n_samples=1000, seed=1):
    """One feature of ``offset`` +- 1 next to a unit-scale one, both informative."""
    rng = np.random.default_rng(seed)
    spread, other = rng.standard_normal((2, n_samples))
    X = np.column_stack([offset + spread, other])
    return X, 3.0 * spread + 2.0 * other + 0.05 * rng.standard_normal(n_samples)


@ignore_convergence
@pytest.mark.parametrize("batch_size", ["auto", "full"])
@pytest.mark.parametrize("offset", [1e9, 1e12])
def test_a_feature_far_from_zero_next_to_a_unit_one_is_fitted(offset, batch_size):
    # The dense P has intercept entries (offset / spread)**2: applied as a matrix, its
    # product cancelled terms 1e18 times larger than the intercept's direction, and fits
    # stalled silently (R^2 0.05 in full batch at 1e9, -0.006 at the defaults at 1e12,
    # where least squares reaches 0.9998). The centred form keeps those digits.
    X, y = offset_data(offset)
    best = LinearRegression().fit(X, y).score(X, y)
    model = OptimalLRRegressor(batch_size=batch_size, random_state=0).fit(X, y)
    assert model.score(X, y) > best - 1e-3


def rational_inverse(matrix):
    """The inverse of a positive definite matrix of Fractions, by Gauss-Jordan elimination
    (its leading minors are positive: no pivoting)."""
    width = len(matrix)
    identity = [[Fraction(int(i == j)) for j in range(width)] for i in range(width)]
    rows = [list(row) + unit for row, unit in zip(matrix, identity)]
    for i in range(width):
        rows[i] = [v / rows[i][i] for v in rows[i]]
        for k in range(width):
            if k != i:
                rows[k] = [a - rows[k][i] * b for a, b in zip(rows[k], rows[i])]
    return [row[width:] for row in rows]


def exact_changes(X, weights, gradient, direction=None):
    """The pre-activations' changes ``[x_i, 1] d`` in rational arithmetic, along the given
    direction or along ``d = gradient P`` with ``P`` by its definition (see
    :func:`written_out_preconditioner`)."""
    rows = [[Fraction(v) for v in row] + [Fraction(1)] for row in X]
    width = len(rows[0])
    if direction is None:
        w = [Fraction(v) for v in weights]
        w = [v / sum(w) for v in w]  # exactly: a float normalisation leaves 1e-16 of 1
        mean = [sum(wi * row[j] for wi, row in zip(w, rows)) for j in range(width)]
        moment = [
            [sum(wi * row[i] * row[j] for wi, row in zip(w, rows)) for j in range(width)]
            for i in range(width)
        ]
        for j in range(width - 1):  # the ridge, relative to each feature's variance
            moment[j][j] += Fraction(PRECONDITIONER_RIDGE) * (moment[j][j] - mean[j] * mean[j])
        inverse = rational_inverse(moment)
        exact = [Fraction(v) for v in gradient]
        direction = [sum(g * row[j] for g, row in zip(exact, inverse)) for j in range(width)]
    direction = [Fraction(v) for v in direction]
    return np.array([float(sum(x * d for x, d in zip(row, direction))) for row in rows])


@pytest.mark.parametrize("offset", [1e6, 1e9])
def test_the_preconditioned_direction_keeps_its_digits_next_to_a_large_offset(offset):
    # The dense P's products lose about (offset / spread)**2 rounding units of the
    # intercept's direction (its entries are that large), and with it the pre-activations'
    # changes about their mean; the centred form loses about offset / spread, as rounding
    # the features themselves does.
    X, _ = offset_data(offset, n_samples=40)
    rng = np.random.default_rng(2)
    weights, residual = rng.uniform(0.5, 2.0, 40), rng.standard_normal(40)
    gradient = (weights / weights.sum() * residual) @ np.column_stack([X, np.ones(40)])
    expected = exact_changes(X, weights, gradient)
    P = moments_preconditioner(X, weights)
    direction_coef, direction_intercept = preconditioned_direction(
        gradient[None, :-1], gradient[-1:], P
    )
    direction = np.append(direction_coef[0], direction_intercept)
    changes = exact_changes(X, weights, gradient, direction)
    tolerance = 100 * offset * np.finfo(np.float64).eps * np.abs(expected).max()
    assert_allclose(changes, expected, rtol=0, atol=tolerance)


def test_sparse_column_statistics_in_many_chunks_are_the_dense_ones(monkeypatch):
    # The CSR statistics run over chunks of stored entries (whole-matrix copies took
    # several times the matrix's memory): chunks of a few entries, rows storing none,
    # and columns of one offset value must give what the dense pass gives.
    from sklearn_optlr import _preconditioning

    monkeypatch.setattr(_preconditioning, "_CHUNK_ENTRIES", 16)
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((300, 6)) * [1.0, 1e-3, 1e3, 1.0, 1.0, 1.0]
    dense[rng.random(dense.shape) < 0.6] = 0.0
    dense[:40] = 0.0  # rows that store nothing
    dense[:, 5] = np.where(rng.random(300) < 0.5, 1e9, 0.0)  # an offset, half stored
    weights = rng.random(300)
    weights /= weights.sum()
    for chunked, whole in zip(
        column_statistics(sparse.csr_matrix(dense), weights),
        column_statistics(dense, weights),
        strict=True,
    ):
        assert_allclose(chunked, whole, rtol=1e-12, atol=1e-300)
