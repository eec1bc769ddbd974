# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Progress over batches (``verbose >= 2``): the epoch runs in chunks so that a bar can
move, and must make exactly the updates of one call."""

import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._solver import PROGRESS_UPDATES, make_epoch

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("method", ["compiled", "numpy"])
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("average_from", [None, 0, 7])
@pytest.mark.parametrize("step", ["optimal", "pooled"])
def test_chunked_epoch_makes_the_same_updates(method, layout, average_from, step):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((203, 4))
    Y = rng.standard_normal((203, 2))
    weights = rng.integers(0, 3, 203).astype(float)
    X_in = sparse.csr_matrix(X) if layout == "csr" else X
    # One epoch runner each (the pooled rule's memory lives in the runner).
    whole_epoch, chunked_epoch = (
        make_epoch(
            X_in, Y, weights, activation=resolve_activation("leaky_relu", 0.1), step=step,
            batch_size=3, alpha=0.01, method=method, window=4.0,
        )
        for _ in range(2)
    )  # fmt: skip
    order = rng.permutation(203)
    start = (0.1 * rng.standard_normal((2, 4)), rng.standard_normal(2))
    whole_coef, whole_intercept = (part.copy() for part in start)
    whole = whole_epoch(whole_coef, whole_intercept, order, average_from)
    done = []
    chunked_coef, chunked_intercept = (part.copy() for part in start)
    chunked = chunked_epoch(chunked_coef, chunked_intercept, order, average_from, done.append)

    # Chunks of whole batches: 68 batches of 3 in chunks of 4, so 17 updates.
    assert sum(done) == 203 and 1 < len(done) <= PROGRESS_UPDATES
    assert_allclose(chunked_coef, whole_coef, rtol=1e-12)
    assert_allclose(chunked_intercept, whole_intercept, rtol=1e-12)
    assert chunked.n_batches == whole.n_batches
    assert_allclose(chunked.loss, whole.loss, rtol=1e-12)
    assert_allclose(
        [chunked.step_mean, chunked.step_min, chunked.step_max],
        [whole.step_mean, whole.step_min, whole.step_max],
        rtol=1e-12,
    )
    if average_from is None:
        assert chunked.iterate_sum is None
    else:
        # The CSR kernel sums the penalty's terms of the average by parts, folding them
        # in at the end of each call: chunks round them differently (see _csr_epoch).
        lazy = layout == "csr" and method == "compiled"
        for part, expected in zip(chunked.iterate_sum, whole.iterate_sum):
            assert_allclose(part, expected, rtol=1e-9 if lazy else 1e-12)


def make_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    return X, X @ np.array([1.0, -1.0, 0.5])


@pytest.mark.parametrize("batch_size", [8, "full"])
def test_verbose_2_shows_a_progress_bar(batch_size, capsys):
    pytest.importorskip("tqdm")  # the tests extra installs it; CI runs this test
    X, y = make_data()
    OptimalLRRegressor(batch_size=batch_size, max_iter=2, verbose=2).fit(X, y)
    captured = capsys.readouterr()
    assert "Epoch 1" in captured.err  # tqdm writes to stderr
    assert captured.out.count("loss=") == 2  # and the per-epoch lines remain


def test_verbose_2_without_tqdm_prints_lines(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = make_data()
    OptimalLRRegressor(batch_size=8, max_iter=1, verbose=2).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if "samples" in line]
    # A line at each quarter of the epoch, not one per batch (38 batches here).
    assert len(progress) == 4
    assert progress[-1] == "Epoch 1: 300/300 samples"


def test_verbose_2_fits_the_same_model():
    X, y = make_data()
    quiet = OptimalLRRegressor(batch_size=8, max_iter=3, random_state=0).fit(X, y)
    loud = OptimalLRRegressor(batch_size=8, max_iter=3, random_state=0, verbose=2).fit(X, y)
    assert_allclose(loud.coef_, quiet.coef_, rtol=1e-12)


def noisy_data(n_samples=600):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, 3))
    return X, X @ np.array([1.0, 2.0, 3.0]) + 0.1 * rng.standard_normal(n_samples)


@pytest.mark.parametrize(
    "params, exact, expected",
    [
        ({}, False, "put its minimum within tol=0.0001"),
        ({"early_stopping": True}, False, "the validation R^2 rose by no more than tol"),
        ({"batch_size": 50}, False, "fell by no more than tol=0.0001 of its best"),
        ({"max_iter": 2}, False, "Training ended after max_iter=2 epochs."),
        ({"max_iter": 1}, False, "Training ended after max_iter=1 epoch."),
        # abs on a linear target: a minimum at the kinks, where the full batch's
        # decreases do not shrink geometrically and the plateau rule (tol 0) ends it.
        ({"batch_size": "full", "activation": "abs"}, False, "stopped falling for n_iter"),
        ({}, True, "down to the rounding of the targets (an exact fit)"),
    ],
)
def test_verbose_ends_with_why_training_stopped(params, exact, expected, capsys):
    X, y = noisy_data()
    if exact:
        y = X @ np.array([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = OptimalLRRegressor(verbose=1, random_state=0, **params).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == model.n_iter_ + 1
    assert expected in lines[-1]
    assert lines[-1].startswith(("Training stopped: ", "Training ended "))


def test_verbose_names_partial_fit_calls_as_such(capsys):
    X, y = noisy_data()
    OptimalLRRegressor(verbose=1, random_state=0).partial_fit(X, y).partial_fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Epoch 1 (partial_fit)",
        "Epoch 2 (partial_fit)",
    ]
