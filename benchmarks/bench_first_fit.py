# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Time to the first fitted models in a fresh Python process, with numba's cache cold and warm.

Run by hand (not in CI)::

    python benchmarks/bench_first_fit.py

Each measurement starts a new interpreter, imports sklearn-optlr and fits models on
2,000 x 10 one after the other, timing each fit. "Cold" points numba's cache
(``NUMBA_CACHE_DIR``) at an empty folder, so every kernel a fit uses is compiled
there and then (the median of ``COLD_REPEATS`` such processes); "warm" runs again
with that folder filled, so the kernels load from disk. Without ``NUMBA_CACHE_DIR``
numba caches next to the package's sources (in ``__pycache__``), which is why every
run here sets it.

Measured:

- the sequence of issue 15: a default fit, then a ReLU fit (target: at most 5 s
  together, cold), then a float32 fit and a batch-size-1 fit (at most 8 s for all
  four, cold);
- the first fit in each dtype, each alone in a fresh process (what a first fit
  costs, per dtype);
- :func:`sklearn_optlr.precompile`, cold and warm, and a default fit after it.

The import of sklearn-optlr (with numpy, scipy and scikit-learn) is timed apart,
and the whole process's wall time is reported too: Python's start-up is part of
what a user waits for. The result is printed and written to
``docs/benchmarks/first_fit_results.rst``.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, csv_table, machine_description, median, source_fingerprint, write_results

RESULTS = ROOT / "docs" / "benchmarks" / "first_fit_results.rst"
WARM_REPEATS = 3
#: Cold processes per measurement, each with its own empty cache; the median is
#: reported. Single cold runs of the same code on a shared 2-core machine varied by
#: up to a third with the other work on it, more than the targets' margins.
COLD_REPEATS = 3

#: The targets of issue 15 on the cold sequence, in seconds: the first two fits, all four.
TARGET_TWO, TARGET_FOUR = 5.0, 8.0

#: Each fit of the issue's sequence: (label, code building the estimator, dtype of X).
SEQUENCE = [
    ("default", "OptimalLRRegressor()", "float64"),
    ("relu", "OptimalLRRegressor('relu')", "float64"),
    ("float32", "OptimalLRRegressor()", "float32"),
    ("batch_size=1", "OptimalLRRegressor(batch_size=1)", "float64"),
]

WORKER = """
import json, sys, time
start = time.perf_counter()
import numpy as np
import sklearn_optlr
from sklearn_optlr import OptimalLRRegressor
timings = {"import": time.perf_counter() - start}
rng = np.random.default_rng(0)
X = rng.standard_normal((2000, 10))
y = X @ rng.standard_normal(10) + 0.1 * rng.standard_normal(2000)
for label, estimator, dtype in json.loads(sys.argv[1]):
    start, start_cpu = time.perf_counter(), time.process_time()
    if label == "precompile":
        sklearn_optlr.precompile()
    else:
        eval(estimator).fit(X.astype(dtype), y.astype(dtype))
    timings[label] = time.perf_counter() - start
    timings[label + " cpu"] = time.process_time() - start_cpu
print(json.dumps(timings))
"""


def run_process(steps, cache_dir):
    """Per-step seconds of one fresh interpreter running ``steps``, and its wall time."""
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONWARNINGS="ignore")
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(steps)], check=True, env=environment,
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    wall = time.perf_counter() - start
    timings = json.loads(completed.stdout.strip().splitlines()[-1])
    timings["process"] = wall
    return timings


def cold_and_warm(steps, cold_repeats=COLD_REPEATS):
    """The median timings of ``steps`` over ``cold_repeats`` processes, each with an empty
    cache, then the median of warm reruns; and the cold processes' own timings."""
    runs = []
    for _ in range(cold_repeats):
        with tempfile.TemporaryDirectory() as cache_dir:
            runs.append(run_process(steps, cache_dir))
            if len(runs) == cold_repeats:
                reruns = [run_process(steps, cache_dir) for _ in range(WARM_REPEATS)]
    cold = {key: median([run[key] for run in runs]) for key in runs[0]}
    warm = {key: median([rerun[key] for rerun in reruns]) for key in cold}
    return cold, warm, runs


def verdict(seconds, target):
    return "met" if seconds <= target else "**missed**"


def sequence_table(cold, warm):
    rows = []
    total_cold = total_cpu = 0.0
    for label, estimator, dtype in SEQUENCE:
        total_cold += cold[label]
        total_cpu += cold[label + " cpu"]
        rows.append([
            f"``{estimator}`` on {dtype}", f"{cold[label]:.2f}", f"{cold[label + ' cpu']:.2f}",
            f"{total_cold:.2f}", f"{total_cpu:.2f}", f"{warm[label]:.2f}",
        ])  # fmt: skip
    rows.append(
        ["import sklearn_optlr", f"{cold['import']:.2f}", "", "", "", f"{warm['import']:.2f}"]
    )
    rows.append(["whole process", f"{cold['process']:.2f}", "", "", "", f"{warm['process']:.2f}"])
    header = [
        "fit", "cold (s)", "cold, CPU (s)", "cold, running total (s)",
        "cold, CPU running total (s)", "warm (s)",
    ]  # fmt: skip
    return csv_table(header, rows)


def main():
    load_before = os.getloadavg()[0]
    steps = [list(step) for step in SEQUENCE]
    cold, warm, cold_runs = cold_and_warm(steps)
    print("sequence cold", cold_runs)
    print("sequence warm", warm)
    # The verdicts on each cold process's own totals, the median of them reported.
    twos = sorted(run["default"] + run["relu"] for run in cold_runs)
    fours = sorted(sum(run[label] for label, _, _ in SEQUENCE) for run in cold_runs)
    two, four = median(twos), median(fours)
    per_dtype = {}
    for dtype in ("float64", "float32"):
        per_dtype[dtype] = cold_and_warm([["first", "OptimalLRRegressor()", dtype]])[:2]
        print(dtype, per_dtype[dtype])
    # One cold process: precompile() takes long enough for the machine's noise not to matter.
    precompiled = cold_and_warm(
        [["precompile", "", ""], ["default", "OptimalLRRegressor()", "float64"]], 1
    )[:2]
    print("precompile", precompiled)

    dtype_rows = [
        [dtype, f"{cold_['first']:.2f}", f"{cold_['first cpu']:.2f}", f"{warm_['first']:.2f}"]
        for dtype, (cold_, warm_) in per_dtype.items()
    ]
    precompile_rows = [
        ["``sklearn_optlr.precompile()``", f"{precompiled[0]['precompile']:.2f}",
         f"{precompiled[0]['precompile cpu']:.2f}", f"{precompiled[1]['precompile']:.2f}"],
        ["then ``OptimalLRRegressor().fit``", f"{precompiled[0]['default']:.2f}",
         f"{precompiled[0]['default cpu']:.2f}", f"{precompiled[1]['default']:.2f}"],
    ]  # fmt: skip
    load_after = os.getloadavg()[0]
    introduction = (
        f"On {source_fingerprint()}. Seconds of each fit on 2,000 x 10 in a fresh process, "
        "in order; cold: numba's cache empty (every kernel a fit uses is compiled; median "
        f"of {COLD_REPEATS} processes, each with its own empty cache), warm: the same "
        f"cache filled (median of {WARM_REPEATS} processes). The wall "
        "times are the targets'; the CPU times (the process's own) show what other "
        "work on the machine added: its load average was "
        f"{load_before:.1f} before the run and {load_after:.1f} after."
    )
    verdicts = (
        f"Cold, the first two fits take **{two:.1f} s** (target {TARGET_TWO:.0f} s: "
        f"{verdict(two, TARGET_TWO)}) and all four **{four:.1f} s** (target "
        f"{TARGET_FOUR:.0f} s: {verdict(four, TARGET_FOUR)}): the median of the "
        f"{COLD_REPEATS} cold processes' totals, which ranged from {twos[0]:.1f} to "
        f"{twos[-1]:.1f} s and from {fours[0]:.1f} to {fours[-1]:.1f} s."
    )
    per_dtype_text = (
        "The first fit in each dtype, each in its own fresh process (the default "
        "estimator, 2,000 x 10):"
    )
    text = "\n\n".join([
        introduction,
        sequence_table(cold, warm),
        verdicts,
        per_dtype_text,
        csv_table(["dtype", "cold (s)", "cold, CPU (s)", "warm (s)"], dtype_rows),
        "Compiling ahead of time, in a fresh process (float64 and float32):",
        csv_table(["step", "cold (s)", "cold, CPU (s)", "warm (s)"], precompile_rows),
    ])  # fmt: skip
    print(text)
    write_results(RESULTS, machine_description(), text)


if __name__ == "__main__":
    main()
