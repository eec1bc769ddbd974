# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""``precompile`` compiles every kernel that fits run, so that fits afterwards compile nothing.

The oracle is numba's own record: each compiled function (a numba dispatcher) lists
the type signatures it has compiled in ``.signatures``, one per specialisation.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher
from scipy import sparse

import sklearn_optlr
from sklearn_optlr import OptimalLRRegressor, precompile


def compiled_signatures():
    """Every signature compiled so far by every numba function of the package."""
    signatures = {}
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] != "sklearn_optlr":
            continue
        for name, value in vars(module).items():
            if isinstance(value, Dispatcher):
                signatures[f"{module_name}.{name}"] = set(value.signatures)
    return signatures


def new_signatures(before, after):
    return {
        name: after[name] - before.get(name, set())
        for name in after
        if after[name] - before.get(name, set())
    }


def fit_everything(dtype):
    """Fits through the paths users meet: activations, batch sizes, step rules,
    sample weights, penalties, CSR input, several outputs in Fortran order, partial_fit,
    features of extreme scale."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4)).astype(dtype)
    y = (X @ rng.standard_normal(4)).astype(dtype)
    Y_fortran = np.asfortranarray(np.c_[y, -y])
    weights = rng.random(60)
    options = [
        {},
        {"activation": "relu"},
        {"batch_size": 1},
        {"batch_size": 1, "step": "optimal", "alpha": 0.1},
        {"batch_size": 8, "step": "exact"},
        {"batch_size": 1, "step": "exact"},
        {"batch_size": 8, "step": 0.01, "precondition": False},
        {"batch_size": "full"},
        {"early_stopping": True},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for X_ in (X, sparse.csr_matrix(X)):
            for kwargs in options:
                OptimalLRRegressor(max_iter=2, **kwargs).fit(X_, y)
            OptimalLRRegressor(max_iter=2).fit(X_, y, sample_weight=weights)
            OptimalLRRegressor(max_iter=2, batch_size=1).fit(X_, y, sample_weight=weights)
            for batch_size in (1, "auto"):
                OptimalLRRegressor(max_iter=2, batch_size=batch_size).fit(X_, Y_fortran)
                OptimalLRRegressor(batch_size=batch_size).partial_fit(X_, y)
        if dtype == "float64":
            # Gradients whose squares underflow take the rescaled step, at batch size 1
            # and in mini-batches, with and without the preconditioner (features whose
            # own squares underflow, below 1.5e-154, are refused before training).
            for batch_size, precondition in [(1, "auto"), (8, "auto"), (8, False)]:
                OptimalLRRegressor(
                    max_iter=2, batch_size=batch_size, precondition=precondition
                ).fit(X * 1e-150, y * 1e-150)


def check_fits_compile_nothing_after_precompile():
    """In this process: precompile, then every fit; raise if a fit compiled anything."""
    precompile()
    before = compiled_signatures()
    for dtype in ("float64", "float32"):
        fit_everything(dtype)
    new = new_signatures(before, compiled_signatures())
    assert new == {}, f"fits compiled after precompile(): {new}"


def test_fits_after_precompile_compile_nothing():
    run_in_fresh_interpreter(check_fits_compile_nothing_after_precompile)


def check_a_fit_compiles_only_what_it_runs():
    """In this process: a default fit (mini-batches of 200 rows first, on 1,000 rows)
    and a batch-size-1 fit by the pooled rule, neither of which runs the exact search
    nor, for the first, the one-row kernel; raise if those were compiled (or loaded)
    all the same."""
    kernels = sklearn_optlr._kernels
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 3))
    y = X @ rng.standard_normal(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        OptimalLRRegressor(max_iter=2).fit(X, y)
        assert kernels._dense_batch_epoch.signatures
        assert not kernels._dense_one_row_epoch.signatures
        OptimalLRRegressor(max_iter=2, batch_size=1).fit(X, y)
        assert kernels._dense_one_row_epoch.signatures
    assert not sklearn_optlr._line_search.exact_line_search.signatures
    assert not kernels._dense_one_row_rescue.signatures
    # Nor the rescaling of gradients whose squares overflow or underflow.
    assert not kernels._scale_gradient.signatures


def run_in_fresh_interpreter(check, numba_cache_dir=None):
    """Run ``check`` (a function of this module) in a new Python process, where no
    kernel is compiled or loaded yet: in this one, other tests may have run them.

    With ``numba_cache_dir`` (an empty folder), nothing is loaded from numba's cache
    either: a kernel loaded from the cache brings the functions it calls compiled
    into it, without compiling them through their own dispatchers, so only a cold
    cache shows which functions a fit compiles.
    """
    package_root = Path(sklearn_optlr.__file__).resolve().parents[1]
    paths = [str(package_root), str(Path(__file__).resolve().parent)]
    code = (
        f"import sys; sys.path[:0] = {paths!r}; import test_precompile; "
        f"test_precompile.{check.__name__}()"
    )
    env = dict(os.environ)
    if numba_cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache_dir)
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_fit_compiles_only_what_it_runs(tmp_path):
    run_in_fresh_interpreter(check_a_fit_compiles_only_what_it_runs, tmp_path)


def test_precompile_is_idempotent():
    precompile(dtypes=["float32"], sparse_input=False)
    before = compiled_signatures()
    precompile(dtypes=[np.float32], sparse_input=False)
    assert new_signatures(before, compiled_signatures()) == {}


@pytest.mark.parametrize("dtype", ["float16", "int64", "complex128"])
def test_precompile_rejects_dtypes_fits_do_not_compute_in(dtype):
    with pytest.raises(ValueError, match="float64 or float32, not"):
        precompile(dtypes=[dtype])
