# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The compiled kernels and the full-batch step make the same updates as the numpy reference.

``numpy_epoch`` is the plain per-batch numpy implementation (itself checked against
the seed's formulas in ``test_step.py``); every faster path must reproduce its
weights, loss and learning rates to rounding, for every activation, both dtypes,
dense and sparse input, weights, penalty and fixed steps.
"""

import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from sklearn_optlr import PiecewiseLinear
from sklearn_optlr._activations import ACTIVATIONS, resolve_activation
from sklearn_optlr._solver import (
    FULL_BATCH_REFRESH,
    NUMPY_MIN_OUTPUTS,
    NUMPY_MIN_PRODUCTS,
    FullBatchEpoch,
    compiled_epoch,
    make_epoch,
    numpy_epoch,
)

ACTIVATION_CASES = [*ACTIVATIONS, PiecewiseLinear([-1.0, 0.0, 2.0], [0.5, -1.0, 1.0], 0.3, -0.2)]
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}


def make_problem(dtype, n_samples=40, n_features=5, n_outputs=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    X[rng.random(X.shape) < 0.4] = 0.0  # real zeros, so CSR differs from dense storage
    Y = rng.standard_normal((n_samples, n_outputs))
    coef = 0.4 * rng.standard_normal((n_outputs, n_features))
    intercept = 0.3 * rng.standard_normal(n_outputs)
    weights = rng.integers(0, 3, n_samples).astype(dtype)
    order = rng.permutation(n_samples)
    return (
        X.astype(dtype),
        Y.astype(dtype),
        coef.astype(dtype),
        intercept.astype(dtype),
        weights,
        order,
    )


def run(epoch, X, Y, weights, coef, intercept, order, **options):
    coef, intercept = coef.copy(), intercept.copy()
    record = epoch(X, Y, weights, coef, intercept, order=order, **options)
    return coef, intercept, record


def assert_same_epoch(result, expected, dtype):
    (coef, intercept, record), (coef_ref, intercept_ref, record_ref) = result, expected
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(coef, coef_ref, **tolerance)
    np.testing.assert_allclose(intercept, intercept_ref, **tolerance)
    np.testing.assert_allclose(record.loss, record_ref.loss, **tolerance)
    np.testing.assert_allclose(record.step_mean, record_ref.step_mean, **tolerance)
    np.testing.assert_allclose(record.step_max, record_ref.step_max, **tolerance)
    assert record.n_batches == record_ref.n_batches
    assert record.n_zero_gradient == record_ref.n_zero_gradient


@pytest.mark.parametrize("activation", ACTIVATION_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [1, 7, 40])
def test_compiled_epoch_matches_numpy_reference(activation, dtype, layout, batch_size):
    X, Y, coef, intercept, weights, order = make_problem(dtype)
    X_kernel = sparse.csr_matrix(X) if layout == "csr" else X
    activation = resolve_activation(activation, negative_slope=0.2)
    for step, alpha, sample_weight in [
        ("optimal", 0.0, None),
        ("optimal", 0.05, weights),
        ("pooled", 0.05, weights),
        (0.01, 0.05, None),
    ]:
        options = dict(
            activation=activation, step=step, batch_size=batch_size, alpha=alpha, window=3.0
        )
        expected = run(numpy_epoch, X, Y, sample_weight, coef, intercept, order, **options)
        result = run(compiled_epoch, X_kernel, Y, sample_weight, coef, intercept, order, **options)
        assert result[0].dtype == dtype
        assert_same_epoch(result, expected, dtype)


@pytest.mark.parametrize("activation", ["identity", "relu", "hard_tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_full_batch_epochs_match_numpy_reference(activation, dtype, layout):
    # Enough epochs to pass a refresh of the cached pre-activations.
    X, Y, coef, intercept, weights, _ = make_problem(dtype, n_samples=30)
    X_fast = sparse.csr_matrix(X) if layout == "csr" else X
    activation = resolve_activation(activation)
    options = dict(activation=activation, step="optimal", alpha=0.01)
    full_batch = FullBatchEpoch(X_fast, Y, weights, **options)
    coef_fast, intercept_fast = coef.copy(), intercept.copy()
    coef_ref, intercept_ref = coef.copy(), intercept.copy()
    # Near the optimum the residuals are small differences of large numbers, so in
    # float32 the updated and the recomputed pre-activations give rates that agree
    # to a few 1e-3 (each path is as far from a float64 run; the last epochs' rates are
    # ratios of float32 rounding noise, so the exact figure depends on the summation
    # order); float64 agrees to 1e-9.
    tolerance = TOLERANCE[dtype] if dtype == np.float64 else dict(rtol=5e-3, atol=1e-4)
    for _ in range(FULL_BATCH_REFRESH + 5):
        record = full_batch(coef_fast, intercept_fast)
        record_ref = numpy_epoch(
            X, Y, weights, coef_ref, intercept_ref, batch_size=X.shape[0], order=None, **options
        )
        np.testing.assert_allclose(record.loss, record_ref.loss, **tolerance)
        np.testing.assert_allclose(record.step_mean, record_ref.step_mean, **tolerance)
    np.testing.assert_allclose(coef_fast, coef_ref, **tolerance)
    np.testing.assert_allclose(intercept_fast, intercept_ref, **tolerance)


def test_full_batch_fixed_step_matches_reference():
    X, Y, coef, intercept, _, _ = make_problem(np.float64)
    options = dict(activation=resolve_activation("leaky_relu"), step=0.05, alpha=0.0)
    full_batch = FullBatchEpoch(X, Y, None, **options)
    coef_fast, intercept_fast, coef_ref, intercept_ref = (
        coef.copy(),
        intercept.copy(),
        coef.copy(),
        intercept.copy(),
    )
    for _ in range(3):
        full_batch(coef_fast, intercept_fast)
        numpy_epoch(X, Y, None, coef_ref, intercept_ref, batch_size=len(X), order=None, **options)
    np.testing.assert_allclose(coef_fast, coef_ref, rtol=1e-12)


def test_zero_weight_batches_are_skipped_by_every_path():
    X, Y, coef, intercept, _, order = make_problem(np.float64, n_samples=12)
    weights = np.ones(12)
    weights[order[4:8]] = 0.0  # the second batch of 4 carries no weight
    options = dict(activation=resolve_activation("relu"), step="optimal", batch_size=4, alpha=0.0)
    expected = run(numpy_epoch, X, Y, weights, coef, intercept, order, **options)
    assert expected[2].n_batches == 2
    for X_kernel in (X, sparse.csr_matrix(X)):
        assert_same_epoch(
            run(compiled_epoch, X_kernel, Y, weights, coef, intercept, order, **options),
            expected,
            np.float64,
        )


def test_dead_batches_take_no_step_even_with_a_penalty():
    # Every ReLU inactive: the gradient is the penalty's alone, whose optimal step
    # (1 / alpha) would zero the weights; every path must skip it instead.
    X, Y, coef, intercept, _, order = make_problem(np.float64)
    intercept[:] = -1e3
    options = dict(activation=resolve_activation("relu"), step="optimal", batch_size=8, alpha=0.1)
    for epoch, X_ in [
        (numpy_epoch, X),
        (compiled_epoch, X),
        (compiled_epoch, sparse.csr_matrix(X)),
    ]:
        new_coef, new_intercept, record = run(epoch, X_, Y, None, coef, intercept, order, **options)
        np.testing.assert_array_equal(new_coef, coef)
        assert record.n_zero_gradient == record.n_batches == 5
        assert record.step_max == 0.0


# Dense batches of 2 features: BLAS from NUMPY_MIN_PRODUCTS rows x features x outputs.
DENSE_NUMPY_ROWS = NUMPY_MIN_PRODUCTS // (2 * NUMPY_MIN_OUTPUTS)


@pytest.mark.parametrize(
    "batch_size, n_outputs, fmt, expected",
    [
        (1, 1, "dense", "compiled"),
        (5000, 1, "dense", "compiled"),  # one output: the kernel at every batch size
        (DENSE_NUMPY_ROWS - 1, NUMPY_MIN_OUTPUTS, "dense", "compiled"),
        (DENSE_NUMPY_ROWS, NUMPY_MIN_OUTPUTS, "dense", "numpy"),
        (DENSE_NUMPY_ROWS, NUMPY_MIN_OUTPUTS - 1, "dense", "compiled"),
        # CSR, two features: numpy's fixed cost a batch against the kernel's excess per
        # stored entry and output.
        (1024, 1, "csr", "compiled"),
        (5000, NUMPY_MIN_OUTPUTS, "csr", "numpy"),
        (20_000, 1, "dense", "full"),
    ],
)
def test_make_epoch_chooses_path_by_cost(batch_size, n_outputs, fmt, expected, monkeypatch):
    calls = []
    import sklearn_optlr._solver as solver

    monkeypatch.setattr(solver, "compiled_epoch", lambda *a, **k: calls.append("compiled"))
    monkeypatch.setattr(solver, "numpy_epoch", lambda *a, **k: calls.append("numpy"))
    X = np.zeros((20_000, 2))
    X[:, 0] = 1.0
    if fmt == "csr":
        X = sparse.csr_matrix(X)
    epoch = make_epoch(
        X, np.zeros((20_000, n_outputs)), None, activation=resolve_activation("relu"),
        step="optimal", batch_size=batch_size, alpha=0.0,
    )  # fmt: skip
    if expected == "full":
        assert isinstance(epoch, FullBatchEpoch)
    else:
        epoch(np.zeros((n_outputs, 2)), np.zeros(n_outputs), None)
        assert calls == [expected]


def test_missing_numba_fails_at_import_with_a_clear_message():
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "try:\n    import sklearn_optlr\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "needs numba" in output.stdout
    assert "pip install numba" in output.stdout


def test_csr_kernel_scales_for_the_penalty_when_the_residuals_are_tiny():
    # Units on a shallow piece of slope 1e-170 leave residuals of that size, while the
    # penalty pulls with alpha ||W|| of about 10: scaled by the residuals alone, the
    # penalty's square overflowed and the CSR kernel returned a NaN loss.
    rng = np.random.default_rng(0)
    X = sparse.random(40, 6, density=0.5, random_state=1, format="csr")
    X.data = np.abs(X.data)
    Y = -rng.uniform(1.0, 2.0, size=(40, 1))
    activation = resolve_activation("leaky_relu", 1e-170)
    records = []
    for epoch, data in [(numpy_epoch, X), (compiled_epoch, X)]:
        coef, intercept = np.full((1, 6), -5.0), np.array([-1.0])
        records.append(epoch(
            data, Y, None, coef, intercept, activation=activation, step="pooled",
            batch_size=8, alpha=1.0, order=np.arange(40),
        ))  # fmt: skip
    reference, compiled = records
    assert np.isfinite(compiled.loss)
    np.testing.assert_allclose(compiled.loss, reference.loss, rtol=1e-12)


def test_csr_kernel_with_a_penalty_whose_weights_square_underflows():
    # Weights of 1e-250 square to 0 while alpha is 1e197: scaled by the penalty's pull,
    # alpha / presize times ||W||^2 was inf * 0, a NaN loss.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) * 1e100
    Y = rng.standard_normal((40, 1)) * 1e-150
    start = rng.standard_normal((1, 6)) * 1e-250
    records = []
    for epoch, data in [(numpy_epoch, X), (compiled_epoch, sparse.csr_matrix(X))]:
        coef, intercept = start.copy(), np.zeros(1)
        records.append(epoch(
            data, Y, None, coef, intercept, activation=resolve_activation("identity"),
            step="optimal", batch_size=40, alpha=1e197, order=np.arange(40),
        ))  # fmt: skip
    reference, compiled = records
    assert np.isfinite(compiled.loss)
    np.testing.assert_allclose(compiled.loss, reference.loss, rtol=1e-9)


@pytest.mark.parametrize(
    "target_scale", [1.0, 1e60], ids=["squares overflow in the curvature", "in the gradient"]
)
@pytest.mark.parametrize("step", ["optimal", "pooled"])
def test_dense_kernel_hands_a_batch_of_extreme_scale_to_the_rescaling_kernel(step, target_scale):
    # The third of five batches has a feature of 1e100, where every other row has 0 and
    # the weights have 0: the predictions do not see it, but the gradient does. Its
    # entries are about 1e100 times the residuals, so the squares overflow in the
    # curvature (residuals of about 1) or already in the gradient's norm (targets, hence
    # residuals, of 1e60). The kernel that does not rescale then hands that batch back
    # mid-epoch, and the rescaling kernel takes the rest of the epoch on. The epoch must
    # be the reference's all the same: its loss summed over both kernels, its rates and
    # averaged iterates in one sequence.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    Y = rng.standard_normal((40, 2))
    order = rng.permutation(40)
    X[:, 4] = 0.0
    X[order[16:24], 4] = 1e100 * rng.uniform(1.0, 2.0, 8)
    Y[order[16:24]] *= target_scale
    coef, intercept = 0.1 * rng.standard_normal((2, 5)), np.zeros(2)
    coef[:, 4] = 0.0
    options = dict(
        activation=resolve_activation("identity"), step=step, batch_size=8, alpha=0.0,
        window=3.0, average_from=1,
    )  # fmt: skip
    expected = run(numpy_epoch, X, Y, None, coef, intercept, order, **options)
    result = run(compiled_epoch, X, Y, None, coef, intercept, order, **options)
    assert np.isfinite(result[2].loss)
    assert_same_epoch(result, expected, np.float64)
    for summed, summed_ref in zip(result[2].iterate_sum, expected[2].iterate_sum):
        np.testing.assert_allclose(summed, summed_ref, **TOLERANCE[np.float64])


def sparse_wide_problem(dtype, n_samples=90, n_features=400, seed=0):
    """Rows of a few stored entries on many columns, some of them popular (so that the
    rows of a batch share columns), and weights with zeros."""
    rng = np.random.default_rng(seed)
    entries_per_row = 6
    columns = np.minimum(rng.pareto(1.0, (n_samples, entries_per_row)) * 5, n_features - 1)
    rows = np.repeat(np.arange(n_samples), entries_per_row)
    X = sparse.csr_matrix(
        (rng.standard_normal(rows.size), (rows, columns.ravel().astype(np.int64))),
        shape=(n_samples, n_features),
    )
    X.sum_duplicates()
    Y = rng.standard_normal((n_samples, 2))
    coef = 0.3 * rng.standard_normal((2, n_features))
    intercept = 0.1 * rng.standard_normal(2)
    weights = rng.integers(0, 3, n_samples).astype(float)
    return X.astype(dtype), Y.astype(dtype), coef.astype(dtype), intercept.astype(dtype), weights


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [1, 4, 16])
@pytest.mark.parametrize("step", ["optimal", "pooled", "exact", 0.02])
@pytest.mark.parametrize("average_from", [None, 0, 9])
def test_lazy_sparse_updates_equal_the_dense_ones(dtype, batch_size, step, average_from):
    # The CSR kernel holds the weights as a scale times V and averages the penalty's
    # terms by parts; the numpy reference on the dense rows updates every weight at every
    # step. Three epochs in a row, with the penalty and averaging on.
    X, Y, coef, intercept, weights = sparse_wide_problem(dtype)
    activation = resolve_activation("leaky_relu", negative_slope=0.2)
    options = dict(activation=activation, step=step, batch_size=batch_size, alpha=0.05)
    results = {}
    for name, epoch, X_epoch in [("dense", numpy_epoch, X.toarray()), ("csr", compiled_epoch, X)]:
        state = (coef.copy(), intercept.copy())
        rng = np.random.default_rng(1)
        records = []
        for _ in range(3):
            order = rng.permutation(X.shape[0])
            records.append(
                epoch(
                    X_epoch, Y, weights, *state, order=order, average_from=average_from, **options
                )
            )
        results[name] = state, records
    (coef_csr, intercept_csr), records_csr = results["csr"]
    (coef_dense, intercept_dense), records_dense = results["dense"]
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(coef_csr, coef_dense, **tolerance)
    np.testing.assert_allclose(intercept_csr, intercept_dense, **tolerance)
    for record, expected in zip(records_csr, records_dense):
        np.testing.assert_allclose(record.loss, expected.loss, **tolerance)
        np.testing.assert_allclose(record.step_mean, expected.step_mean, **tolerance)
        if average_from is None or expected.iterate_sum is None:
            assert record.iterate_sum is expected.iterate_sum is None
            continue
        for part, part_expected in zip(record.iterate_sum, expected.iterate_sum):
            scale = np.abs(part_expected).max()  # sums of iterates: relative to their size
            np.testing.assert_allclose(part, part_expected, rtol=0, atol=tolerance["rtol"] * scale)


@pytest.mark.parametrize("rate_times_alpha", [0.5, 1.0, 1.5])
def test_lazy_penalty_folds_its_scale_when_it_shrinks_away(rate_times_alpha):
    # A fixed step whose shrinkage 1 - rate alpha halves the weights each step takes the
    # scale below RESCALE_BELOW within the epoch; 1 zeroes them at once, 1.5 flips their
    # sign. The weights and the average must still be the dense update's.
    X, Y, coef, intercept, weights = sparse_wide_problem(np.float64, n_samples=80)
    rate, alpha = 0.01, rate_times_alpha / 0.01
    options = dict(
        activation=resolve_activation("relu"), step=rate, batch_size=2, alpha=alpha,
        average_from=3,
    )  # fmt: skip
    order = np.random.default_rng(2).permutation(80)
    dense = run(numpy_epoch, X.toarray(), Y, weights, coef, intercept, order, **options)
    lazy = run(compiled_epoch, X, Y, weights, coef, intercept, order, **options)
    np.testing.assert_allclose(lazy[0], dense[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lazy[1], dense[1], rtol=1e-9, atol=1e-12)
    for part, expected in zip(lazy[2].iterate_sum, dense[2].iterate_sum):
        np.testing.assert_allclose(part, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
