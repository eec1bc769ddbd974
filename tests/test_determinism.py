# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Determinism: what is bit-identical, and under which conditions.

Guaranteed, and tested here:

- the same data in C or Fortran order, or as a DataFrame, give the same fit (``fit``
  takes X in C order);
- the same ``random_state`` (an int, or RandomState instances in the same state) gives
  bit-identical weights, curves and rates on every solver path, in one environment;
- the compiled kernels (mini-batches, except large batches with many outputs) do not
  depend on the number of BLAS threads, so their fits are bit-identical whatever it is;
- the BLAS paths (full batch, large batches with many outputs) are bit-identical for a
  given number of BLAS threads. OpenBLAS splits the reduction over samples in ``X^T R``
  (the gradient) across threads, so another thread count changes the last bits (measured:
  1e-15 relative after 15 epochs, 3000 x 60, 20 outputs); such fits agree to 1e-10;
- GridSearchCV gives the same results with ``n_jobs=1`` and ``n_jobs=2``: to the bit for
  the compiled paths, and for the BLAS paths when the parent runs with as many BLAS threads
  as joblib gives each worker (``cpu_count() // n_jobs``, or ``inner_max_num_threads``);
  with the parent's default thread count their scores agree to 1e-12 and pick the same
  parameters.

To reproduce a full-batch fit to the bit elsewhere, fix the BLAS thread count (for instance
``threadpoolctl.threadpool_limits(1)``); different CPUs or BLAS builds can still differ in
the last bits.
"""

import warnings

import numpy as np
import pytest
from joblib import parallel_config
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr._data import rows_of
from sklearn_optlr._preconditioning import auto_preconditions
from sklearn_optlr._solver import NUMPY_MIN_OUTPUTS, NUMPY_MIN_PRODUCTS, uses_numpy

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_FEATURES = 6
# The smallest dense batch of N_FEATURES that numpy runs (many outputs), and a CSR batch
# large enough to be preconditioned, which sends it to numpy.
NUMPY_BATCH = -(-NUMPY_MIN_PRODUCTS // (N_FEATURES * NUMPY_MIN_OUTPUTS))
CSR_NUMPY_BATCH = 256

# (parameters, sparse X, number of outputs): every way the estimator can train.
PATHS = {
    "compiled-dense": (dict(batch_size=8), False, 2),
    # Without the preconditioner, which sends sparse batches to numpy (as "numpy-csr").
    "compiled-csr": (dict(batch_size=8, precondition=False), True, 2),
    "compiled-exact": (dict(batch_size=8, step="exact"), False, 2),
    "compiled-batch-1": (dict(batch_size=1, average=30), False, 1),
    "early-stopping": (dict(batch_size=8, early_stopping=True), False, 1),
    "numpy": (dict(batch_size=NUMPY_BATCH), False, NUMPY_MIN_OUTPUTS),
    "numpy-exact": (dict(batch_size=NUMPY_BATCH, step="exact"), False, NUMPY_MIN_OUTPUTS),
    "numpy-csr": (dict(batch_size=CSR_NUMPY_BATCH), True, 2),
    "full-gd": (dict(batch_size="full", solver="gd"), False, 2),
    "full-cg": (dict(batch_size="full"), False, 2),
    "full-cg-exact": (dict(batch_size="full", step="exact"), True, 2),
}
COMPILED = [name for name in PATHS if name.startswith(("compiled", "early"))]
BLAS = [name for name in PATHS if name not in COMPILED]


def path_data(name, n_samples=None, n_features=N_FEATURES, n_outputs=None, seed=0):
    params, is_sparse, path_outputs = PATHS[name]
    n_outputs = n_outputs or path_outputs
    batch_size = params["batch_size"]
    large = isinstance(batch_size, int) and batch_size > 60
    n_samples = n_samples or (2 * batch_size if large else 120)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    X[rng.random(X.shape) < 0.3] = 0.0
    Y = np.abs(X @ rng.standard_normal((n_features, n_outputs))) + 0.1 * rng.standard_normal(
        (n_samples, n_outputs)
    )
    X = sparse.csr_matrix(X) if is_sparse else X
    if name.startswith("numpy"):  # the path named is the path taken
        assert (
            auto_preconditions(X, batch_size, "optimal")
            if is_sparse
            else uses_numpy(X, batch_size, n_outputs)
        )
    return X, Y


def fit(name, X, Y, random_state=0, **params):
    params = PATHS[name][0] | dict(max_iter=8, random_state=random_state) | params
    return OptimalLRRegressor("leaky_relu", **params).fit(X, Y)


def assert_bit_identical(model, reference):
    for attribute in ("coef_", "intercept_", "loss_curve_", "learning_rate_curve_", "n_iter_"):
        assert_array_equal(
            getattr(model, attribute), getattr(reference, attribute), err_msg=attribute
        )


@pytest.mark.parametrize("name", sorted(set(PATHS) - {"full-gd", "full-cg", "full-cg-exact"}))
def test_each_path_is_the_path_it_is_named_for(name, monkeypatch):
    import sklearn_optlr._solver as solver

    taken = set()
    for kind in ("compiled", "numpy"):
        original = getattr(solver, f"{kind}_epoch")

        def spy(*args, _kind=kind, _original=original, **kwargs):
            taken.add(_kind)
            return _original(*args, **kwargs)

        monkeypatch.setattr(solver, f"{kind}_epoch", spy)
    fit(name, *path_data(name))
    assert taken == {"compiled" if name in COMPILED else "numpy"}


@pytest.mark.parametrize("name", sorted(PATHS))
def test_same_random_state_gives_bit_identical_fits(name):
    X, Y = path_data(name)
    first = fit(name, X, Y)
    assert_bit_identical(fit(name, X, Y), first)
    # RandomState instances in the same state are the same seed.
    assert_bit_identical(
        fit(name, X, Y, np.random.RandomState(5)), fit(name, X, Y, np.random.RandomState(5))
    )


@pytest.mark.parametrize("name", ["compiled-dense", "compiled-csr", "numpy", "early-stopping"])
def test_another_random_state_gives_another_fit(name):
    # So that the equalities above are not vacuous: the seed drives shuffling and splitting.
    X, Y = path_data(name)
    assert not np.array_equal(fit(name, X, Y, 1).coef_, fit(name, X, Y, 2).coef_)


@pytest.mark.parametrize("name", COMPILED)
def test_compiled_paths_do_not_depend_on_the_blas_thread_count(name):
    X, Y = path_data(name)
    with threadpool_limits(1):
        single = fit(name, X, Y)
    with threadpool_limits(2):
        assert_bit_identical(fit(name, X, Y), single)


@pytest.mark.parametrize("name", BLAS)
def test_blas_paths_agree_across_thread_counts(name):
    """Bit-identical for one thread count; to 1e-10 across thread counts (at this size
    OpenBLAS does split the full-batch gradient's reduction: 1e-16 differences, measured)."""
    X, Y = path_data(name, n_samples=3000, n_features=60, n_outputs=20)
    fits = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            fits[threads] = fit(name, X, Y, max_iter=5)
            assert_bit_identical(fit(name, X, Y, max_iter=5), fits[threads])
    assert_allclose(fits[2].coef_, fits[1].coef_, rtol=1e-10, atol=1e-13)
    assert_allclose(fits[2].loss_curve_, fits[1].loss_curve_, rtol=1e-10)


def grid_search(n_jobs, batch_sizes, X, y):
    # Activations whose optima differ: with these non-negative targets identity and ReLU
    # share one optimum, which full batch reaches, and their tie would be broken by rounding.
    search = GridSearchCV(
        OptimalLRRegressor(random_state=0, max_iter=10),
        {"activation": ["identity", "hard_tanh"], "batch_size": batch_sizes},
        cv=3,
        n_jobs=n_jobs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(X, y)


def test_grid_search_is_identical_with_one_and_two_jobs():
    """Compiled paths: to the bit. Full batch, in the parent's default thread count against
    the workers' (one per job): the same parameters and scores to 1e-12."""
    small, large = path_data("compiled-dense"), path_data("full-gd", 3000, 60, n_outputs=20)
    for (X, Y), batch_sizes, exact in [(small, [8, 32], True), (large, ["full"], False)]:
        serial, parallel = (grid_search(n_jobs, batch_sizes, X, Y) for n_jobs in (1, 2))
        assert serial.best_params_ == parallel.best_params_
        for key in [f"split{k}_test_score" for k in range(3)]:
            if exact:
                assert_array_equal(serial.cv_results_[key], parallel.cv_results_[key])
            assert_allclose(serial.cv_results_[key], parallel.cv_results_[key], rtol=1e-12)


def test_grid_search_is_bit_identical_with_matched_blas_threads():
    X, Y = path_data("full-gd", n_samples=3000, n_features=60, n_outputs=20)
    with parallel_config(backend="loky", inner_max_num_threads=1):
        parallel = grid_search(2, ["full"], X, Y)
    with threadpool_limits(1):
        serial = grid_search(1, ["full"], X, Y)
    assert serial.best_params_ == parallel.best_params_
    for key in [f"split{k}_test_score" for k in range(3)]:
        assert_array_equal(serial.cv_results_[key], parallel.cv_results_[key])


def test_preconditioned_kernel_does_not_depend_on_where_its_buffers_lie():
    # A loop that both stored into one array and summed over another let LLVM choose, at
    # run time, between a vector and a scalar loop by how near the arrays lay in memory;
    # the two sum in different orders, so refits differed in the last bits (4 epochs of
    # the preconditioned kernel: 3 different results in 300 refits, with other arrays
    # allocated in between to move the kernel's own buffers around).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = np.abs(X @ [1.0, -2.0, 0.5, 0.3]) + 0.1 * rng.standard_normal(60)
    params = dict(batch_size=16, max_iter=4, tol=0.0, shuffle=False, step="optimal", average=False)
    results, heap = set(), []
    for size in rng.integers(1, 50, size=200):
        heap.append(np.empty(size))
        model = OptimalLRRegressor("leaky_relu", precondition=True, **params).fit(X, y)
        results.add(model.coef_.tobytes())
    assert len(results) == 1


def test_blas_on_more_threads_takes_large_batches_from_fewer_outputs(monkeypatch):
    # BLAS shares a batch's products among its threads, the kernel runs on one: on T
    # threads the outputs from which numpy's path is taken are NUMPY_MIN_OUTPUTS / T.
    from threadpoolctl import threadpool_limits

    import sklearn_optlr._solver as solver

    X = np.zeros((8192, 100))
    monkeypatch.setattr(solver.os, "cpu_count", lambda: 2)
    with threadpool_limits(1):  # what joblib's workers do, and a shared machine should
        assert not uses_numpy(X, 4096, NUMPY_MIN_OUTPUTS // 2)
    monkeypatch.setattr(solver, "_blas_threads", lambda: 2)
    assert uses_numpy(X, 4096, NUMPY_MIN_OUTPUTS // 2)
    assert not uses_numpy(X, 4096, NUMPY_MIN_OUTPUTS // 2 - 1)
    # A batch whose threads' shares are each too small to pay back numpy's fixed cost
    # stays in the kernel.
    rows = NUMPY_MIN_PRODUCTS * 2 // (100 * (NUMPY_MIN_OUTPUTS // 2))
    assert uses_numpy(X, rows, NUMPY_MIN_OUTPUTS // 2)
    assert not uses_numpy(X, rows - 1, NUMPY_MIN_OUTPUTS // 2)
    monkeypatch.setattr(solver.os, "cpu_count", lambda: 1)
    assert not uses_numpy(X, 4096, NUMPY_MIN_OUTPUTS // 2)


@pytest.mark.parametrize("activation", ["abs", "relu"])
def test_memory_layout_does_not_change_the_fit(activation):
    # abs has many minima on a signed linear target: before fit took X in C order, the
    # Fortran-ordered copy of these data rounded the full batch's sums differently and
    # ended in another minimum, predictions 1.6 apart.
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 10))
    y = X @ rng.standard_normal(10)
    fits = [
        OptimalLRRegressor(activation, random_state=0).fit(X_, y).predict(X)
        for X_ in (X, np.asfortranarray(X), pd.DataFrame(np.asfortranarray(X)))
    ]
    assert_array_equal(fits[0], fits[1])
    assert_array_equal(fits[0], fits[2])


@pytest.mark.parametrize("rows", [np.array([3, 0, 3, 7]), slice(2, 6), np.array([], dtype=int)])
def test_a_batch_gathers_the_same_rows_from_every_container(rows):
    # The numpy epoch gathers batches by rows_of, not by indexing: every container
    # must give what indexing gives, in the order asked, repeats included.
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((8, 5))
    dense[dense < 0.3] = 0.0
    for array in (dense, np.asfortranarray(dense), dense[:, 0], dense.astype(np.float32)):
        gathered = rows_of(array, rows)
        assert gathered.dtype == array.dtype
        assert_array_equal(gathered, array[rows])
    csr = sparse.csr_matrix(dense)
    assert_array_equal(rows_of(csr, rows).toarray(), dense[rows])


def test_a_batch_of_a_fortran_ordered_array_copies_only_its_rows():
    # np.take copies the whole of an array that is not C-ordered before it gathers;
    # a DataFrame's targets come in Fortran order, and each batch copied all of them.
    import tracemalloc

    from sklearn_optlr._data import training_arrays

    Y = np.asfortranarray(np.random.default_rng(0).standard_normal((20_000, 10)))
    tracemalloc.start()
    rows_of(Y, np.arange(0, 20_000, 1000))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < Y.nbytes / 10
    # The solver's targets are C-ordered whatever the caller's layout.
    _, Y_train, _ = training_arrays(np.ones((20_000, 1)), Y)
    assert Y_train.flags.c_contiguous
    assert_array_equal(Y_train, Y)
