# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Which path runs a mini-batch epoch: the compiled kernel or numpy (BLAS, scipy.sparse).

Run by hand (not in CI)::

    python benchmarks/bench_dispatch.py

``make_epoch(method="auto")`` sends mini-batches to the compiled kernel or to numpy
by a rule (``_solver.uses_numpy``). This times one epoch of each path, on one thread,
BLAS included, over a grid of dense and CSR problems (identity activation, the default
step), and reports which path the rule picks and how far it is from the faster one.
The table is printed and written to ``docs/benchmarks/dispatch_results.rst``.
"""

import time
from pathlib import Path

import numpy as np
from _common import csv_table, machine_description, source_fingerprint, write_results
from scipy import sparse
from threadpoolctl import threadpool_limits

from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._solver import make_epoch, uses_numpy

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "dispatch_results.rst"
ROUNDS = 3  # the best of this many epochs, per path

# (rows, features, non-zeros per row or None for dense, outputs, batch sizes)
DENSE = [
    (20_000, features, None, outputs, [32, 64, 128, 200, 256, 1024])
    for features in (20, 200)
    for outputs in (1, 16, 32, 64, 256)
]
SPARSE = [
    (20_000, features, per_row, outputs, [8, 32, 64, 200, 1024])
    for features, per_row in ((200, 20), (1_000, 10), (5_000, 50), (100_000, 50))
    for outputs in (1, 10)
]


def problem(n_samples, n_features, per_row, n_outputs, seed=0):
    rng = np.random.default_rng(seed)
    if per_row is None:
        X = rng.standard_normal((n_samples, n_features))
    else:
        rows = np.repeat(np.arange(n_samples), per_row)
        columns = rng.integers(0, n_features, n_samples * per_row)
        values = rng.standard_normal(n_samples * per_row)
        X = sparse.csr_matrix((values, (rows, columns)), shape=(n_samples, n_features))
        X.sum_duplicates()
    Y = np.asarray(X @ rng.standard_normal((n_features, n_outputs)))
    return X, Y + rng.standard_normal(Y.shape)


def epoch_seconds(X, Y, batch_size, method, seed=0):
    activation = resolve_activation("identity")
    epoch = make_epoch(
        X, Y, None, activation=activation, step="pooled", batch_size=batch_size, alpha=0.0,
        method=method,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    coef, intercept = np.zeros((Y.shape[1], X.shape[1])), np.zeros(Y.shape[1])
    epoch(coef, intercept, None)  # compile, warm the caches
    best = np.inf
    for _ in range(ROUNDS):
        coef[:], intercept[:] = 0.0, 0.0
        order = rng.permutation(X.shape[0])
        start = time.perf_counter()
        epoch(coef, intercept, order)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    rows = []
    source = source_fingerprint()
    with threadpool_limits(1):
        machine = machine_description()
        for n_samples, n_features, per_row, n_outputs, batch_sizes in DENSE + SPARSE:
            X, Y = problem(n_samples, n_features, per_row, n_outputs)
            for batch_size in batch_sizes:
                compiled = epoch_seconds(X, Y, batch_size, "compiled")
                numpy_ = epoch_seconds(X, Y, batch_size, "numpy")
                picked = numpy_ if uses_numpy(X, batch_size, n_outputs) else compiled
                row = [
                    "dense" if per_row is None else f"CSR, {per_row} per row",
                    f"{n_features:,}", str(n_outputs), str(batch_size),
                    f"{compiled * 1e3:.1f}", f"{numpy_ * 1e3:.1f}",
                    "numpy" if picked is numpy_ else "compiled",
                    f"{picked / min(compiled, numpy_):.2f}",
                ]  # fmt: skip
                rows.append(row)
                print(", ".join(row), flush=True)
    ratios = [float(row[-1]) for row in rows]
    header = ["X", "features", "outputs", "batch", "compiled (ms)", "numpy (ms)", "auto picks",
              "auto / faster"]  # fmt: skip
    text = "\n".join([
        f"{DENSE[0][0]:,} rows; one epoch of the identity model at the default step, the best "
        f"of {ROUNDS}, on one thread. \"auto / faster\": the time of the path the rule picks "
        "over that of the faster path. Over the grid it is at most "
        f"{max(ratios):.2f}, and at most 1.10 in {sum(r <= 1.10 for r in ratios)} of "
        f"{len(ratios)} cells.",
        "",
        csv_table(header, rows),
    ])  # fmt: skip
    print(text)
    write_results(RESULTS, f"{machine} sklearn_optlr {source}.", text)


if __name__ == "__main__":
    main()
