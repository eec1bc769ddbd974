# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Iterate averaging: the window, the compiled sums, and the estimator's averaged weights.

Oracles: plain Python means over explicitly collected iterates.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.linear_model import LinearRegression

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._averaging import IterateAverage
from sklearn_optlr._solver import compiled_epoch, numpy_epoch

# Short fixed budgets are the point of these tests.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def feed_constant_epochs(averager, n_epochs, iterates_per_epoch=3):
    """Epoch e contributes iterates all equal to e, so window means are easy to write down."""
    for epoch in range(1, n_epochs + 1):
        value = np.full((1, 2), float(epoch))
        averager.add_epoch(
            iterates_per_epoch * value, iterates_per_epoch * value[0], iterates_per_epoch
        )


@pytest.mark.parametrize("n_epochs", [1, 2, 3, 5, 8, 10, 13, 40])
def test_suffix_window_covers_the_epochs_after_the_latest_checkpoint_at_half(n_epochs):
    checkpoints = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]
    start = max(c for c in checkpoints if 2 * c <= n_epochs)
    averager = IterateAverage()
    feed_constant_epochs(averager, n_epochs)
    coef, intercept = averager.average(np.float64)
    window = list(range(start + 1, n_epochs + 1))
    assert_allclose(coef, np.mean(window))
    assert_allclose(intercept, np.mean(window))
    # Between half and two thirds of the epochs, and only a few copies kept.
    assert n_epochs / 2 <= len(window) <= max(1, 2 * n_epochs / 3 + 1)
    assert len(averager.checkpoints) <= 3


def test_window_from_a_sample_count_averages_everything_after_it():
    averager = IterateAverage(start_sample=25)
    # 10 samples an epoch in batches of 4 (3 steps): the third epoch starts at sample 20,
    # and its second batch (samples 25 to 28) is the first to bring the count to 25, so
    # its steps from index 1 on are averaged.
    every_batch = np.ones(3, dtype=bool)
    assert averager.first_averaged_step(0, every_batch, 4) == 3
    assert averager.first_averaged_step(20, every_batch, 4) == 1
    assert averager.first_averaged_step(24, every_batch, 4) == 0
    assert averager.first_averaged_step(30, every_batch, 4) == 0
    # A batch without weight before the start takes no step: one step fewer precedes it.
    later = IterateAverage(start_sample=29)
    assert later.first_averaged_step(20, every_batch, 4) == 2
    assert later.first_averaged_step(20, np.array([False, True, True]), 4) == 1
    assert averager.average(np.float64) is None
    feed_constant_epochs(averager, 4)
    assert_allclose(averager.average(np.float64)[0], 2.5)


@pytest.mark.parametrize("epoch", [numpy_epoch, compiled_epoch])
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("step", ["optimal", "exact", 0.05])
@pytest.mark.parametrize("average_from", [0, 3])
@pytest.mark.parametrize("batch_size, alpha", [(5, 0.02), (1, 0.02), (1, 0.0)])
def test_epoch_iterate_sums_equal_the_sum_of_the_iterates(
    epoch, layout, step, average_from, batch_size, alpha
):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((23, 4))
    X[rng.random(X.shape) < 0.3] = 0.0
    Y = rng.standard_normal((23, 2))
    coef, intercept = 0.3 * rng.standard_normal((2, 4)), rng.standard_normal(2)
    options = dict(activation=resolve_activation("leaky_relu", 0.1), step=step, alpha=alpha)
    X_in = sparse.csr_matrix(X) if layout == "csr" else X
    # Oracle: one batch at a time, collecting every iterate.
    order = rng.permutation(23)
    c, b, iterates = coef.copy(), intercept.copy(), []
    for start in range(0, 23, batch_size):
        rows = order[start : start + batch_size]
        numpy_epoch(X[rows], Y[rows], None, c, b, batch_size=batch_size, order=None, **options)
        iterates.append((c.copy(), b.copy()))
    c, b = coef.copy(), intercept.copy()
    record = epoch(
        X_in, Y, None, c, b, batch_size=batch_size, order=order, average_from=average_from,
        **options,
    )  # fmt: skip
    sum_coef, sum_intercept, count = record.iterate_sum
    assert count == len(iterates) - average_from
    assert_allclose(sum_coef, sum(i[0] for i in iterates[average_from:]), rtol=1e-9)
    assert_allclose(sum_intercept, sum(i[1] for i in iterates[average_from:]), rtol=1e-9)


def regression_data(n_samples=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 * rng.standard_normal(n_samples)
    return X, y


def test_average_from_a_sample_count_equals_the_mean_of_the_plain_iterates():
    X, y = regression_data()
    # Oracle: the plain method one row at a time is the same sequence of iterates.
    plain = OptimalLRRegressor(batch_size=1, average=False, shuffle=False)
    iterates = []
    for row in range(len(X)):
        plain.partial_fit(X[row : row + 1], y[row : row + 1])
        iterates.append(np.append(plain.coef_, plain.intercept_))
    model = OptimalLRRegressor(batch_size=1, average=20, shuffle=False, max_iter=1).fit(X, y)
    expected = np.mean(iterates[19:], axis=0)  # from the iterate after the 20th sample on
    assert_allclose(np.append(model.coef_, model.intercept_), expected, rtol=1e-10)


def test_averaging_continues_across_partial_fit_and_warm_start():
    X, y = regression_data()
    options = dict(batch_size=8, average=True, shuffle=False, tol=0.0, n_iter_no_change=50)
    reference = OptimalLRRegressor(max_iter=5, **options).fit(X, y)

    incremental = OptimalLRRegressor(**options)
    for _ in range(5):
        incremental.partial_fit(X, y)
    assert_allclose(incremental.coef_, reference.coef_, rtol=1e-12)
    assert_allclose(incremental.loss_curve_, reference.loss_curve_, rtol=1e-12)

    warm = OptimalLRRegressor(max_iter=2, warm_start=True, **options).fit(X, y)
    warm.set_params(max_iter=3).fit(X, y)
    assert warm.n_iter_ == 5
    assert_allclose(warm.coef_, reference.coef_, rtol=1e-12)


@pytest.mark.parametrize("batch_size", [4, "full"])
def test_averaging_changes_neither_the_iterates_nor_the_record(batch_size):
    # The record is the batches' own losses before their updates (no pass over X for
    # the average, as in SGDRegressor), and averaging only reads the iterates.
    X, y = regression_data()
    options = dict(batch_size=batch_size, solver="gd", max_iter=3, tol=0.0, random_state=0)
    averaged = OptimalLRRegressor(average=True, **options).fit(X, y)
    plain = OptimalLRRegressor(average=False, **options).fit(X, y)
    assert_array_equal(averaged.loss_curve_, plain.loss_curve_)
    assert_array_equal(averaged._state.coef, plain._state.coef)
    assert not np.array_equal(averaged.coef_, plain.coef_)


def test_averaging_removes_the_noise_floor_of_small_batches():
    # The reason for the feature: on noisy data the plain optimal step at batch size 1
    # fits each sample and wanders; the average settles near the least-squares fit.
    X, y = regression_data(n_samples=400, seed=1)
    best = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    optimum = 0.5 * np.mean((np.c_[X, np.ones(len(X))] @ best - y) ** 2)

    def excess(average):
        model = OptimalLRRegressor(
            batch_size=1, average=average, max_iter=10, tol=0.0, random_state=0
        )
        model.fit(X, y)
        return 0.5 * np.mean((model.predict(X) - y) ** 2) / optimum - 1

    assert excess(True) < 0.01 < excess(False)


def test_first_epoch_averages_only_its_second_half():
    # Its first half is the transient from the initial weights: a first partial_fit
    # call averaging it would be far off (measured 30x the plain method's error).
    averager = IterateAverage()
    assert averager.first_averaged_step(0, np.ones(10, dtype=bool), 10) == 5
    feed_constant_epochs(averager, 1)
    assert averager.first_averaged_step(100, np.ones(10, dtype=bool), 10) == 0


@pytest.mark.parametrize("batch_size", [1, 16])
def test_auto_keeps_the_better_of_the_average_and_the_last_iterate(batch_size):
    # The iterates do not depend on averaging, so with the stopping rule off the
    # "auto" model must be exactly the better-fitting of the two others.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 5))  # correlated: slow progress
    y = np.maximum(X @ rng.standard_normal(5), 0) + 0.1 * rng.standard_normal(200)
    options = dict(batch_size=batch_size, max_iter=4, tol=0.0, n_iter_no_change=10, random_state=0)
    models = {
        average: OptimalLRRegressor("leaky_relu", average=average, **options).fit(X, y)
        for average in ("auto", True, False)
    }

    def objective(model):
        return 0.5 * np.mean((model.predict(X) - y) ** 2)

    better = min(objective(models[True]), objective(models[False]))
    assert objective(models["auto"]) == pytest.approx(better, rel=1e-12)
    assert models["auto"].loss_curve_ == models[False].loss_curve_


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_averaging_starts_when_half_the_rows_weigh_nothing(seed):
    # One row a batch, half of them of zero weight: the first epoch takes about half as
    # many steps as it has batches. Averaging from "half the epoch's batches" waited for
    # a step the epoch never reached, every epoch, and the model stayed the last iterate.
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 4))
    y = X @ [1.0, -2.0, 3.0, 0.5] + 1.0 + 0.3 * rng.standard_normal(300)
    sample_weight = np.ones(300)
    sample_weight[:150] = 0.0
    reference = LinearRegression().fit(X, y, sample_weight=sample_weight).coef_
    model = OptimalLRRegressor(batch_size=1, average=True, max_iter=10, tol=0.0, random_state=seed)
    model.fit(X, y, sample_weight=sample_weight)
    assert model._state.averager.n_epochs == model.n_iter_ == 10
    averaged_error = np.abs(model.coef_ - reference).max()
    last_iterate_error = np.abs(model._state.coef - reference).max()
    # Measured: averaged 0.006 to 0.012, last iterate 0.07 to 0.11.
    assert averaged_error < 0.02 < 0.05 < last_iterate_error


def test_first_epoch_averages_the_second_half_of_its_weighted_steps():
    # Zero-weight rows grouped at the start (no shuffling): 12 of the 30 batches of 10 rows
    # carry weight, so the first epoch averages its last 6 steps.
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 3))
    y = X @ [1.0, 2.0, -1.0] + 0.1 * rng.standard_normal(300)
    sample_weight = np.ones(300)
    sample_weight[:180] = 0.0
    params = dict(batch_size=10, shuffle=False, max_iter=1, precondition=False)
    averaged = OptimalLRRegressor(average=True, **params).fit(X, y, sample_weight=sample_weight)
    assert averaged._state.averager.total[2] == 6
    assert not np.allclose(averaged.coef_, averaged._state.coef)


def stream_in_chunks(model, X, y, chunk_rows):
    for start in range(0, X.shape[0], chunk_rows):
        model.partial_fit(X[start : start + chunk_rows], y[start : start + chunk_rows])
    return model


def test_partial_fit_auto_averages_a_stream_of_small_chunks():
    # Each chunk is one batch of the stream. "auto" used to decide on the first chunk that
    # it was a full batch (no averaging, for good), and to compare the average with the
    # last iterate on the chunk that iterate had just been fitted to: the model was about
    # as good as least squares on the last chunk alone.
    rng = np.random.default_rng(17)
    X = rng.standard_normal((5000, 5))
    y = X @ rng.standard_normal(5) + 1.0 + rng.standard_normal(5000)
    reference = LinearRegression().fit(X, y).coef_
    auto = stream_in_chunks(OptimalLRRegressor(random_state=0), X, y, 100)
    explicit = stream_in_chunks(OptimalLRRegressor(average=True, random_state=0), X, y, 100)
    assert_allclose(auto.coef_, explicit.coef_, rtol=1e-12)
    # Measured: averaged 0.013, last iterate 0.087.
    assert np.abs(auto.coef_ - reference).max() < 0.03 < np.abs(auto._state.coef - reference).max()


@pytest.mark.parametrize("value", [False, True])
def test_numpy_booleans_mean_what_python_booleans_do(value):
    # A grid built from a numpy array passes np.bool_, which `is True` took for the
    # integer 1 (average from the first sample) and np.False_ for 0.
    X, y = np.random.default_rng(5).standard_normal((120, 3)), np.arange(120.0) % 7
    params = dict(batch_size=8, max_iter=3, tol=0.0, random_state=0)
    python = OptimalLRRegressor(average=value, **params).fit(X, y)
    numpy_ = OptimalLRRegressor(average=np.bool_(value), **params).fit(X, y)
    assert_allclose(numpy_.coef_, python.coef_, rtol=0, atol=0)


def test_full_batch_fit_does_not_average_after_partial_fit():
    # partial_fit under "auto" averages; a warm-started full-batch fit afterwards has no
    # noise to average, and used to keep averaging (the average mixing in the chunk's
    # iterates) because an averager existed.
    rng = np.random.default_rng(8)
    X = rng.standard_normal((200, 4))
    y = X @ [1.0, -1.0, 2.0, 0.5] + 0.1 * rng.standard_normal(200)
    model = OptimalLRRegressor(batch_size="full", warm_start=True, max_iter=5, random_state=0)
    model.fit(X, y)
    model.partial_fit(X[:50], y[:50])
    assert model._state.averager is not None
    model.fit(X, y)
    assert model._state.averager is None
    assert_allclose(model.coef_, model._state.coef[0], rtol=0, atol=0)


@pytest.mark.parametrize("batch_size, start", [(1, 5), (4, 9), (4, 8), (4, 1)])
def test_sample_count_start_averages_from_the_batch_that_reaches_it(batch_size, start):
    # SGDRegressor's rule: the iterate after a step is averaged once the samples seen,
    # that step's included, reach ``average``. The oracle: the iterates, one chunk of
    # batch_size rows per partial_fit call without averaging, averaged by hand.
    rng = np.random.default_rng(7)
    X = rng.standard_normal((20, 2))
    y = X @ [1.0, 2.0] + 0.5 + 0.1 * rng.standard_normal(20)
    params = dict(batch_size=batch_size, step="optimal", precondition=False, shuffle=False)
    averaged = OptimalLRRegressor(average=start, max_iter=1, tol=0.0, **params).fit(X, y)
    stepper = OptimalLRRegressor(average=False, **params)
    iterates, seen = [], []
    for first in range(0, 20, batch_size):
        stepper.partial_fit(X[first : first + batch_size], y[first : first + batch_size])
        iterates.append(np.r_[stepper.coef_, stepper.intercept_])
        seen.append(first + batch_size)
    expected = np.mean([w for w, t in zip(iterates, seen) if t >= start], axis=0)
    assert_allclose(np.r_[averaged.coef_, averaged.intercept_], expected, rtol=1e-12)


def test_sample_count_start_skips_zero_weight_rows_as_the_steps_do():
    # average=N starts after N samples seen, zero-weight ones included, but those take no
    # step: with 40 such rows first (no shuffling), average=40 + m must average the same
    # iterates as average=m on the rows that carry weight. The start used to be counted
    # in batches and read as a step index, 40 steps too late.
    rng = np.random.default_rng(6)
    X = rng.standard_normal((140, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.2 * rng.standard_normal(140)
    sample_weight = np.ones(140)
    sample_weight[:40] = 0.0
    params = dict(batch_size=1, shuffle=False, max_iter=1, precondition=False)
    weighted = OptimalLRRegressor(average=40 + 30, **params).fit(X, y, sample_weight=sample_weight)
    dropped = OptimalLRRegressor(average=30, **params).fit(X[40:], y[40:])
    assert_allclose(weighted.coef_, dropped.coef_, rtol=1e-12)
    assert_allclose(weighted.intercept_, dropped.intercept_, rtol=1e-12)


def test_the_average_is_not_dragged_by_iterates_that_blow_up():
    # The README demo's diabetes folds: at batch size 32, leaky_relu's iterates reach
    # losses of 1e6 and more in later epochs (targets of 25..346, its 0.01 piece). The
    # stopping rule on the averaged weights' loss ends the fit while the average is good;
    # one on the iterates' own losses ran on and averaged the blown-up iterates (test
    # R^2 -3.47 on the second fold).
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    model = make_pipeline(
        StandardScaler(), OptimalLRRegressor("leaky_relu", batch_size=32, random_state=0)
    )
    scores = cross_val_score(model, X, y, cv=KFold(5, shuffle=True, random_state=0))
    assert scores.min() > 0.3
