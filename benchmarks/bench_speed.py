# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Per-epoch speed of OptimalLRRegressor at every batch size, side by side with its peers.

Run by hand (not in CI)::

    python benchmarks/bench_speed.py            # the full run, a few minutes
    python benchmarks/bench_speed.py --quick    # a smoke run on smaller data

Every figure is the cost of *extra* epochs: the time of a fit with ``SHORT`` epochs
plus enough extra epochs to take ``MIN_EXTRA_SECONDS`` (:func:`n_long_epochs`), minus
one with ``SHORT`` epochs, divided by the difference, so validation and set-up cancel
out. Configurations are measured in interleaved rounds and each run's fastest timing
is kept (:func:`per_epoch`), so the ratios compare figures taken side by side on a
noisy machine (full batch ``FULL_BATCH_REPEATS`` times a round).

Measured, on a ReLU-teacher problem (standardised Gaussian features):

- ``step="optimal"`` against a fixed ``step`` in the same code path, batch sizes 1,
  8, 32, 256, 4096 and full, (100,000 x 100) with 1 and 10 outputs, float64 and float32.
  The fixed rate is the one the optimal step typically takes on the same data and
  batch size (the median of its epochs' mean rates), so that both runs visit the same
  region of the weights: the elementwise work of an epoch depends on which units are
  active (a fixed 0.001 in full batch never left the all-active start, and its epochs
  were 3% cheaper than those of the same fixed-step code at the typical rate);
- identity activation, one output, batch size 1, against SGDRegressor (no penalty);
- PyTorch on the CPU (Linear + ReLU, plain SGD, same batch size), when installed;
- one pass over X (``X.sum()``), the memory floor an epoch is measured against.

The table is printed and written to ``docs/benchmarks/speed_results.rst``.
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from _common import machine_description, seconds, write_results
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor

from sklearn_optlr import OptimalLRRegressor

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "speed_results.rst"
BATCH_SIZES = [1, 8, 32, 256, 4096, "full"]
# The peers' learning rate (their cost does not depend on it).
FIXED_STEP = 1e-3
SHORT, LEAST_EXTRA_EPOCHS = 1, 3
# The extra epochs of one timing run at least this long, as timeit's autorange asks
# 0.2 s of a timing: this machine's scheduler adds tens of milliseconds to a run at
# random, which over 3 epochs of 40 ms moved a ratio of two configurations by 0.3.
MIN_EXTRA_SECONDS = 0.5
# A full-batch epoch is one step of a few milliseconds: time it more often too (its
# target, optimal within 1.05 times fixed, is finer than the machine's noise).
FULL_BATCH_REPEATS = 5


def relu_teacher(n_samples, n_features, n_outputs, dtype, seed=0):
    """Standardised Gaussian features and a noisy ReLU teacher's targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    teacher = rng.standard_normal((n_features, n_outputs)) / np.sqrt(n_features)
    Y = np.maximum(X @ teacher + 0.5, 0) + 0.05 * rng.standard_normal((n_samples, n_outputs))
    return X.astype(dtype), (Y[:, 0] if n_outputs == 1 else Y).astype(dtype)


def n_long_epochs(fit):
    """The epochs of the longer timed run: ``SHORT`` plus extra epochs, doubled from
    ``LEAST_EXTRA_EPOCHS`` until they take ``MIN_EXTRA_SECONDS`` (timeit's autorange).
    Measured on whole runs, so that one noisy epoch cannot ask for thousands."""
    short = seconds(lambda: fit(SHORT))
    extra = LEAST_EXTRA_EPOCHS
    while seconds(lambda: fit(SHORT + extra)) - short < MIN_EXTRA_SECONDS:
        extra *= 2
    return SHORT + extra


def time_extra_epochs(fit, long):
    """One timing of ``fit(long)`` and of ``fit(SHORT)``, with the epochs between: the
    cost of those extra epochs, once :func:`per_epoch` has taken each run's fastest."""
    return seconds(lambda: fit(long)), seconds(lambda: fit(SHORT)), long - SHORT


def per_epoch(timings):
    """Seconds per extra epoch from several :func:`time_extra_epochs` timings: the
    fastest long run minus the fastest short run, over the epochs between.

    On a shared machine other work only ever adds time to a run, so a run's least
    disturbed timing is its fastest (``timeit``'s convention). Each run's minimum is
    taken before the difference: the minimum of the differences would favour a round
    whose short run happened to be slowed.
    """
    longs, shorts, extra = zip(*timings)
    return (min(longs) - min(shorts)) / extra[0]


def our_fit(X, y, *, batch_size, step=None, activation="relu"):
    """``fit(n_epochs)``: the seed's plain method with ``step`` (optimal or fixed), or
    the default settings when ``step`` is None, for ``n_epochs`` epochs."""
    plain = {} if step is None else dict(step=step, solver="gd", average=False, precondition=False)

    def fit(n_epochs):
        model = OptimalLRRegressor(
            activation, batch_size=batch_size, max_iter=n_epochs, tol=0.0,
            n_iter_no_change=n_epochs + 1, random_state=0, **plain,
        )  # fmt: skip
        model.fit(X, y)

    return fit


def ours(X, y, *, long, **settings):
    """A timing (:func:`time_extra_epochs`) of :func:`our_fit` with these settings."""
    return time_extra_epochs(our_fit(X, y, **settings), long)


def typical_rate(X, y, batch_size, n_epochs):
    """The rate the optimal step takes on these data at this batch size: the median of
    its epochs' mean rates over a run of ``n_epochs``, as long as the timed ones."""
    model = OptimalLRRegressor(
        "relu", batch_size=batch_size, step="optimal", solver="gd", average=False,
        precondition=False, max_iter=n_epochs, tol=0.0, n_iter_no_change=n_epochs + 1,
        random_state=0,
    ).fit(X, y)  # fmt: skip
    return float(np.median(model.learning_rate_curve_))


def sgd_regressor(X, y, *, long):
    def fit(n_epochs):
        SGDRegressor(
            penalty=None, learning_rate="constant", eta0=FIXED_STEP, max_iter=n_epochs,
            tol=None, random_state=0,
        ).fit(X, y)  # fmt: skip

    return time_extra_epochs(fit, long)


def torch_fit(X, y, *, batch_size):
    """``fit(n_epochs)``: Linear + ReLU with plain SGD in PyTorch on the CPU; None when
    torch is missing."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    X_t = torch.from_numpy(X)
    Y_t = torch.from_numpy(y.reshape(len(y), -1))
    n_samples = X_t.shape[0]
    size = n_samples if batch_size == "full" else batch_size
    model = torch.nn.Sequential(torch.nn.Linear(X_t.shape[1], Y_t.shape[1]), torch.nn.ReLU())
    model = model.to(X_t.dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=FIXED_STEP)
    loss_function = torch.nn.MSELoss()

    def fit(n_epochs):
        for _ in range(n_epochs):
            order = torch.randperm(n_samples)
            for start in range(0, n_samples, size):
                rows = order[start : start + size]
                optimizer.zero_grad()
                loss_function(model(X_t[rows]), Y_t[rows]).backward()
                optimizer.step()

    return fit


def measure(n_samples, n_features, rounds, torch_batch_sizes):
    """Run every configuration ``rounds`` times, interleaved; return each one's seconds
    per epoch (:func:`per_epoch`), and the floor's fastest ``X.sum()``."""
    times = {}
    data = {
        (n_outputs, dtype): relu_teacher(n_samples, n_features, n_outputs, dtype)
        for n_outputs in (1, 10)
        for dtype in (np.float64, np.float32)
    }
    X_linear, y_linear = data[(1, np.float64)]
    y_linear = X_linear @ np.linspace(-1, 1, n_features) / np.sqrt(n_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Load every compiled kernel from the cache (or compile it) before timing anything.
        for X, y in data.values():
            for batch_size in BATCH_SIZES:
                for step in ("optimal", None):
                    our_fit(X[:64], y[:64], batch_size=batch_size, step=step)(SHORT)
        # One epoch count per cell, from the plain optimal step, for every configuration
        # of the cell: the fixed rate and the defaults then cover the same epochs.
        long = {
            (key, batch_size): n_long_epochs(our_fit(X, y, batch_size=batch_size, step="optimal"))
            for key, (X, y) in data.items()
            for batch_size in BATCH_SIZES
        }
        fixed_rates = {cell: typical_rate(*data[cell[0]], cell[1], long[cell]) for cell in long}
        # PyTorch's epochs cost more or less than ours: its own count.
        torch_fits = {
            (key, batch_size): (fit, n_long_epochs(fit))
            for key, (X, y) in data.items()
            for batch_size in torch_batch_sizes
            if (fit := torch_fit(X, y, batch_size=batch_size)) is not None
        }
        identity_long = n_long_epochs(
            our_fit(X_linear, y_linear, batch_size=1, step="optimal", activation="identity")
        )
        for round_ in range(rounds):
            print(f"round {round_ + 1}/{rounds}")
            for (n_outputs, dtype), (X, y) in data.items():
                key = (n_outputs, np.dtype(dtype).name)
                times.setdefault(("floor",) + key, []).append(seconds(X.sum))
                for batch_size in BATCH_SIZES:
                    cell = ((n_outputs, dtype), batch_size)
                    for repeat in range(FULL_BATCH_REPEATS if batch_size == "full" else 1):
                        # Alternate which of optimal and fixed runs first: the first run
                        # after another configuration tended to be the slower one.
                        pair = ("optimal", "fixed")[:: 1 if (round_ + repeat) % 2 else -1]
                        for label in (*pair, None):
                            step = fixed_rates[cell] if label == "fixed" else label
                            times.setdefault(("ours", label, batch_size) + key, []).append(
                                ours(X, y, batch_size=batch_size, step=step, long=long[cell])
                            )
                    if cell in torch_fits:
                        times.setdefault(("torch", batch_size) + key, []).append(
                            time_extra_epochs(*torch_fits[cell])
                        )
            for step in ("optimal", FIXED_STEP):
                times.setdefault(("identity", step), []).append(
                    ours(
                        X_linear,
                        y_linear,
                        batch_size=1,
                        step=step,
                        activation="identity",
                        long=identity_long,
                    )  # fmt: skip
                )
            times.setdefault(("sgdregressor",), []).append(
                sgd_regressor(X_linear, y_linear, long=identity_long)
            )
    return {
        key: min(values) if key[0] == "floor" else per_epoch(values)
        for key, values in times.items()
    }


def table(timings, n_samples, n_features):
    """The results as reStructuredText, with the ratios the targets are stated in."""
    header = [
        "outputs", "dtype", "batch", "optimal (ms/epoch)", "fixed (ms/epoch)", "optimal / fixed",
        "optimal / floor", "torch (ms/epoch)", "optimal / torch", "float32 / float64",
        "defaults (ms/epoch)",
    ]  # fmt: skip
    rows = []
    for n_outputs in (1, 10):
        for dtype in ("float64", "float32"):
            key = (n_outputs, dtype)
            floor = timings[("floor",) + key]
            for batch_size in BATCH_SIZES:
                optimal = timings[("ours", "optimal", batch_size) + key]
                fixed = timings[("ours", "fixed", batch_size) + key]
                torch = timings.get(("torch", batch_size) + key)
                optimal64 = timings[("ours", "optimal", batch_size, n_outputs, "float64")]
                rows.append([
                    str(n_outputs), dtype, str(batch_size), f"{1e3 * optimal:.1f}",
                    f"{1e3 * fixed:.1f}", f"{optimal / fixed:.3f}", f"{optimal / floor:.1f}",
                    "n/a" if torch is None else f"{1e3 * torch:.1f}",
                    "n/a" if torch is None else f"{optimal / torch:.2f}",
                    f"{optimal / optimal64:.2f}",
                    f"{1e3 * timings[('ours', None, batch_size) + key]:.1f}",
                ])  # fmt: skip
    lines = [
        f"Problem: {n_samples:,} x {n_features} ReLU teacher, per extra epoch: each timed "
        "run's fastest of the rounds (the longer run's less the shorter's, over the epochs "
        "between). "
        "'optimal' and 'fixed' run the seed's plain method (``solver='gd', average=False``) "
        "with the optimal step or a fixed step, in the same code path; the fixed rate is "
        "the one the optimal step typically takes on the same data and batch size (the "
        "median of its epochs' mean rates), so that both runs visit the same region of "
        "the weights; "
        "'defaults' adds what the default settings do on top (iterate averaging, whose "
        "loss costs one more pass over X an epoch, with the default step rule; conjugate "
        "gradients in full batch). Floor = one ``X.sum()``, its fastest: "
        + ", ".join(
            f"{1e3 * timings[('floor', k, d)]:.1f} ms ({k} output{'s' * (k > 1)}, {d})"
            for k in (1, 10)
            for d in ("float64", "float32")
            if ("floor", k, d) in timings
        )
        + ".",
        "",
        ".. csv-table::",
        "   :header: " + ", ".join(f'"{h}"' for h in header),
        "",
    ]
    lines += ["   " + ", ".join(f'"{cell}"' for cell in row) for row in rows]
    identity_optimal = timings[("identity", "optimal")]
    sgd = timings[("sgdregressor",)]
    lines += [
        "",
        f"Identity activation, one output, float64, batch size 1: optimal step "
        f"{1e3 * identity_optimal:.1f} ms/epoch, fixed step "
        f"{1e3 * timings[('identity', FIXED_STEP)]:.1f} ms/epoch, SGDRegressor (no penalty, "
        f"constant rate) {1e3 * sgd:.1f} ms/epoch: ratio optimal / SGDRegressor "
        f"**{identity_optimal / sgd:.2f}**.",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n_samples, n_features = (10_000, 20) if args.quick else (100_000, 100)
    rounds = 1 if args.quick else args.rounds
    timings = measure(n_samples, n_features, rounds, torch_batch_sizes=[32, 256, 4096, "full"])
    text = table(timings, n_samples, n_features)
    print(text)
    if not args.quick:
        write_results(RESULTS, machine_description(), text)


if __name__ == "__main__":
    main()
