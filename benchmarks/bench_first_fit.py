"""Time to the first fitted model in a fresh Python process, with numba's cache cold and warm.

Run by hand (not in CI)::

    python benchmarks/bench_first_fit.py

Each measurement starts a new interpreter that imports sklearn-optlr and fits a
small model on every compiled path a user meets first (dense and CSR mini-batches,
batch size 1, full batch), and reports the wall time of the whole process. "Cold"
points numba's cache at an empty folder, so every kernel is compiled; "warm" runs
again with that folder filled, so the kernels load from disk. The Python start-up
and the imports of numpy, scipy and scikit-learn are included: they are part of
what a user waits for.

The result is printed and written to ``docs/benchmarks/first_fit_results.rst``.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_description, median, write_results

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "first_fit_results.rst"
WARM_REPEATS = 5

FIRST_FIT = """
import numpy as np
from scipy import sparse
from sklearn_optlr import OptimalLRRegressor

rng = np.random.default_rng(0)
X = rng.standard_normal((200, 5))
y = X @ rng.standard_normal(5)
for batch_size in (1, 32, "full"):
    OptimalLRRegressor("relu", batch_size=batch_size, max_iter=3).fit(X, y)
OptimalLRRegressor(batch_size=32, max_iter=3).fit(sparse.csr_matrix(X), y)
"""


def process_seconds(cache_dir):
    """Wall time of one fresh interpreter running ``FIRST_FIT`` with the given numba cache."""
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", FIRST_FIT], check=True, env=environment)
    return time.perf_counter() - start


def main():
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = process_seconds(cache_dir)
        warm = median([process_seconds(cache_dir) for _ in range(WARM_REPEATS)])
    baseline = median([
        process_seconds_of("import numpy, scipy.sparse, sklearn.linear_model")
        for _ in range(WARM_REPEATS)
    ])  # fmt: skip
    text = (
        "A fresh Python process that imports sklearn-optlr and fits small models on the "
        "dense batch-size-1, mini-batch and full-batch paths and the CSR mini-batch path: "
        f"**{warm:.1f} s** with numba's on-disk cache warm (median of {WARM_REPEATS}), "
        f"**{cold:.1f} s** cold (every kernel compiled). Starting Python and importing "
        f"numpy, scipy and scikit-learn alone takes {baseline:.1f} s of that."
    )
    print(text)
    write_results(RESULTS, machine_description(), text)


def process_seconds_of(code):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
