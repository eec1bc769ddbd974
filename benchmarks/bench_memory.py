# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Peak memory of a fit, against the bytes of X.

Run by hand (not in CI)::

    python benchmarks/bench_memory.py

Fits a 1,000,000 x 100 float32 problem (400 MB) at several batch sizes, each in a
fresh process, and reports the peak of the memory allocated *during* ``fit``
(tracemalloc, which sees numpy's allocations) and the process's peak resident set
size, both against the bytes of X. The target: X plus everything the fit allocates
stays within 1.3x the bytes of X plus O(batch_size x (n_features + n_outputs)).
The table is printed and written to ``docs/benchmarks/memory_results.rst``.
"""

import json
import subprocess
import sys
from pathlib import Path

from _common import machine_description, write_results

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "memory_results.rst"
N_SAMPLES, N_FEATURES = 1_000_000, 100
BATCH_SIZES = [1, 32, 4096, "full"]

CHILD = """
import json, resource, sys, tracemalloc, warnings
import numpy as np
from sklearn_optlr import OptimalLRRegressor
batch_size = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.standard_normal(({n}, {d}), dtype=np.float32)
y = np.maximum(X[:, :10].sum(axis=1), 0).astype(np.float32)
OptimalLRRegressor("relu", batch_size=batch_size, max_iter=1).fit(X[:100], y[:100])  # load kernels
tracemalloc.start()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    OptimalLRRegressor("relu", batch_size=batch_size, max_iter=2, random_state=0).fit(X, y)
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({{"x_bytes": X.nbytes, "fit_peak": peak,
                   "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""


BASELINE = """
import resource, warnings
import numpy as np
from sklearn_optlr import OptimalLRRegressor
warnings.simplefilter("ignore")
for batch_size in [1, "full"]:
    OptimalLRRegressor("relu", batch_size=batch_size, max_iter=1).fit(
        np.ones((100, 100), np.float32), np.ones(100, np.float32))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def baseline_rss():
    """Peak RSS of a process that imported everything and fitted tiny data, in bytes."""
    output = subprocess.run(
        [sys.executable, "-c", BASELINE], capture_output=True, text=True, check=True
    )
    return int(output.stdout.strip().splitlines()[-1])


def measure(batch_size):
    child = CHILD.format(n=N_SAMPLES, d=N_FEATURES)
    output = subprocess.run(
        [sys.executable, "-c", child, json.dumps(batch_size)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(output.stdout.strip().splitlines()[-1])


def main():
    rows = []
    for batch_size in BATCH_SIZES:
        result = measure(batch_size)
        x_bytes = result["x_bytes"]
        rows.append(
            f'   "{batch_size}", "{result["fit_peak"] / 2**20:.1f}", '
            f'"{(x_bytes + result["fit_peak"]) / x_bytes:.3f}", "{result["max_rss"] / 2**20:.0f}"'
        )
        print(batch_size, result)
    text = "\n".join(
        [
            f"Problem: {N_SAMPLES:,} x {N_FEATURES} float32, X = "
            f"{N_SAMPLES * N_FEATURES * 4 / 2**20:.0f} MiB, ReLU, 2 epochs.",
            "",
            ".. csv-table::",
            '   :header: "batch", "allocated during fit, peak (MiB)", '
            '"(X + fit peak) / X", "process peak RSS (MiB)"',
            "",
            *rows,
            "",
            "The process peak RSS also counts the interpreter, numpy, scikit-learn, numba "
            f"and the compiled kernels: {baseline_rss() / 2**20:.0f} MiB after a fit on "
            "100 x 100 data, before any of the large arrays exist.",
        ]
    )
    print(text)
    write_results(RESULTS, machine_description(), text)


if __name__ == "__main__":
    main()
