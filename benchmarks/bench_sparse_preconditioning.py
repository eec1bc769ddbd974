# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Sparse, wide data: does a diagonal (column-scaling) preconditioner help?

Run by hand (not in CI)::

    python benchmarks/bench_sparse_preconditioning.py    # about a minute

``precondition="auto"`` preconditions at most 256 features: the dense preconditioner
of ``(n_features + 1)**2`` entries cannot be formed for wide data. The cheap
alternative is diagonal, dividing each column by the root of its second moment.
Without a penalty, gradient descent with a diagonal preconditioner ``D`` takes the
same steps as gradient descent on the columns scaled by ``D^(1/2)`` (in the scaled
variables), so this script measures that preconditioner by fitting the scaled
columns. It uses bench_sparse's tf-idf-like data at 100,000 features, with the
default schedule and with ten epochs at batch size 32. It reports the time, the
epochs, and the training and held-out R^2.

The table is printed and written to
``docs/benchmarks/sparse_preconditioning_results.rst``.
"""

import time
import warnings

import numpy as np
from _common import csv_table, machine_description, source_fingerprint, write_results
from bench_sparse import HELD_OUT, ROOT, tfidf_like
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from sklearn_optlr import OptimalLRRegressor

RESULTS = ROOT / "docs" / "benchmarks" / "sparse_preconditioning_results.rst"
N_ROWS, N_FEATURES = 40_000, 100_000
SETTINGS = {
    "the defaults": {},
    "batch size 32, 10 epochs": dict(batch_size=32, max_iter=10),
}


def column_scaled(X, X_test):
    """Both sets with each column divided by the root of its second moment on ``X``."""
    second = np.asarray(X.multiply(X).mean(axis=0)).ravel()
    scale = sparse.diags(np.where(second > 0, 1 / np.sqrt(np.where(second > 0, second, 1)), 1))
    return (X @ scale).tocsr(), (X_test @ scale).tocsr()


def main():
    (X, y), (X_test, y_test) = tfidf_like(N_ROWS, N_FEATURES)
    variants = {"none (auto)": (X, X_test), "diagonal": column_scaled(X, X_test)}
    rows = []
    for name, settings in SETTINGS.items():
        for preconditioner, (train, test) in variants.items():
            model = OptimalLRRegressor(random_state=0, **settings)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(train, y)
            seconds = time.perf_counter() - start
            rows.append([
                name, preconditioner, f"{seconds:.1f}", str(model.n_iter_),
                f"{model.score(train, y):.3f}", f"{model.score(test, y_test):.3f}",
            ])  # fmt: skip
            print(*rows[-1], sep=" | ")
    header = ["fit", "preconditioner", "seconds", "epochs", "training R^2", "held-out R^2"]
    text = (
        f"bench_sparse's tf-idf-like data, {N_ROWS:,} rows ({int(HELD_OUT * N_ROWS):,} held out) "
        f"on {N_FEATURES:,} features, identity activation, ``alpha=0``. 'diagonal': "
        "the columns divided by the roots of their second moments, the same steps as a "
        "diagonal preconditioner without a penalty.\n\n" + csv_table(header, rows)
    )
    write_results(RESULTS, f"{machine_description()} Code: {source_fingerprint()}.", text)


if __name__ == "__main__":
    main()
