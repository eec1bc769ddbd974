# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The adaptive batch size of ``batch_size="auto"`` (:mod:`sklearn_optlr._batch_growth`)
and the full batch's stopping rule."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from scipy.optimize import minimize
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr import _solver as solver
from sklearn_optlr._activations import resolve_activation
from sklearn_optlr._batch_growth import BatchGrowth, grown_batch_size
from sklearn_optlr._step import normalised_weights

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def relu_teacher(n_samples, n_features, n_outputs, noise, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    teacher = rng.standard_normal((n_features, n_outputs)) / np.sqrt(n_features)
    Y = np.maximum(X @ teacher + 0.5, 0) + noise * rng.standard_normal((n_samples, n_outputs))
    return X, Y


def relu_loss_and_gradient(params, X, Y):
    """The mean squared loss of ReLU(X W^T + b) over 2, and its gradient, written out
    with numpy alone: the oracle's objective."""
    n_outputs, n_features = Y.shape[1], X.shape[1]
    coef = params[: n_outputs * n_features].reshape(n_outputs, n_features)
    intercept = params[n_outputs * n_features :]
    z = X @ coef.T + intercept
    error = np.maximum(z, 0) - Y
    residual = error * (z > 0) / len(X)
    loss = 0.5 * np.sum(error**2) / len(X)
    return loss, np.concatenate([(residual.T @ X).ravel(), residual.sum(axis=0)])


def lbfgs_minimum_from(model, X, Y):
    """The loss at the minimum that scipy's L-BFGS-B reaches from the fitted weights."""
    start = np.concatenate([np.ravel(model.coef_), np.ravel(model.intercept_)])
    result = minimize(
        relu_loss_and_gradient, start, args=(X, Y), jac=True, method="L-BFGS-B",
        options={"maxiter": 5_000, "ftol": 1e-10, "gtol": 1e-12},
    )  # fmt: skip
    return result.fun, relu_loss_and_gradient(start, X, Y)[0]


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_norm_test_is_the_variance_of_the_rows_gradients(weighted, sparse_input, alpha):
    # Oracle: every row's term of the data gradient written out as a vector,
    # v_i = n w_i (D_i e_i) (x) (x_i, 1), and their variance about their mean, against
    # the objective's whole gradient (the penalty's alpha W included).
    rng = np.random.default_rng(0)
    X, Y = relu_teacher(300, 4, 2, noise=0.3)
    weights = normalised_weights(rng.uniform(0.1, 3.0, 300) if weighted else None, 300, np.float64)
    coef, intercept = rng.standard_normal((2, 4)) * 0.3, np.array([0.2, 0.4])
    z = X @ coef.T + intercept
    residuals = (z > 0) * (np.maximum(z, 0) - Y)
    rows = np.hstack([X, np.ones((300, 1))])
    terms = 300 * weights[:, None] * np.einsum("io,if->iof", residuals, rows).reshape(300, -1)
    mean = terms.mean(axis=0)
    variance = np.mean(np.sum((terms - mean) ** 2, axis=1))
    gradient = mean + alpha * np.concatenate([coef, np.zeros((2, 1))], axis=1).ravel()

    growth = BatchGrowth(
        sparse.csr_matrix(X) if sparse_input else X, Y, weights, resolve_activation("relu", 0.0),
        alpha,
    )  # fmt: skip
    noise, signal = growth.noise_and_signal(coef, intercept)
    assert_allclose(noise / signal, variance / np.sum(gradient**2), rtol=1e-10)

    # The smallest batch whose mean's variance, drawn without replacement, is at most
    # the squared gradient.
    needed = growth.needed_batch_size(coef, intercept)

    def batch_variance(b):
        return variance / b * (300 - b) / 299

    assert batch_variance(needed) <= np.sum(gradient**2) < batch_variance(needed - 1)


def test_batch_sizes_double_up_to_what_is_needed():
    assert grown_batch_size(200, 150) == 200
    assert grown_batch_size(200, 200) == 200
    assert grown_batch_size(200, 201) == 400
    assert grown_batch_size(200, 1500) == 1600


def test_noisy_targets_grow_the_batch_and_end_at_the_minimum():
    X, Y = relu_teacher(20_000, 20, 2, noise=0.5)
    model = OptimalLRRegressor("relu", random_state=0).fit(X, Y)
    sizes = model.batch_size_curve_
    assert sizes[0] == 200
    assert sizes[-1] == len(X)
    assert np.all(np.diff(sizes) >= 0)
    # Grown by the norm test after the first epoch (a plateau takes n_iter_no_change).
    assert sizes[1] > 200
    assert len(sizes) == model.n_iter_
    # Within tol (1e-4) of the minimum L-BFGS-B reaches from there; the fixed default
    # size of earlier versions ended on its noise floor, 1e-3 above it.
    minimum, loss = lbfgs_minimum_from(model, X, Y)
    assert (loss - minimum) / minimum < 1e-4
    fixed = OptimalLRRegressor("relu", batch_size=200, random_state=0).fit(X, Y)
    fixed_minimum, fixed_loss = lbfgs_minimum_from(fixed, X, Y)
    assert (fixed_loss - fixed_minimum) / fixed_minimum > 5e-4


def test_noiseless_targets_keep_the_start_size_while_the_batches_agree():
    # With targets a function of the features, a batch's gradient and the full one
    # agree (the rows' terms vanish with the residuals): the norm test keeps the
    # start size, and the fit reaches the targets' rounding, where it ends (rather
    # than handing the average, further from it than the last iterate, to the full
    # batch, as a plateau would).
    X, Y = relu_teacher(20_000, 20, 2, noise=0.0)
    model = OptimalLRRegressor("relu", random_state=0).fit(X, Y)
    assert set(model.batch_size_curve_) == {200}
    assert model.score(X, Y) > 1 - 1e-8


def test_the_larger_batch_starts_from_the_averaged_weights(monkeypatch):
    X, Y = relu_teacher(20_000, 20, 2, noise=0.5)
    params = dict(activation="relu", average=True, random_state=0)
    first_epoch = OptimalLRRegressor(max_iter=1, **params).fit(X, Y)
    starts = []
    original = solver._epoch_runner

    def recording_runner(*args):
        run = original(*args)

        def recorded(coef, intercept, *rest):
            if len(starts) < len(runners):
                starts.append((coef.copy(), intercept.copy()))
            return run(coef, intercept, *rest)

        runners.append(recorded)
        return recorded

    runners = []
    monkeypatch.setattr(solver, "_epoch_runner", recording_runner)
    model = OptimalLRRegressor(max_iter=2, **params).fit(X, Y)
    assert model.batch_size_curve_[1] > 200, "no growth after the first epoch"
    assert len(starts) == 2
    assert_array_equal(starts[1][0], first_epoch.coef_)
    assert_array_equal(starts[1][1], first_epoch.intercept_)


def test_warm_start_continues_at_the_size_reached():
    X, Y = relu_teacher(20_000, 20, 2, noise=0.5)
    model = OptimalLRRegressor("relu", max_iter=3, warm_start=True, random_state=0).fit(X, Y)
    reached = model.batch_size_curve_[-1]
    assert reached > 200
    model.set_params(max_iter=2).fit(X, Y)
    assert model.batch_size_curve_[3:] == [max(reached, model.batch_size_curve_[3])] * 2
    assert model.batch_size_curve_[3] >= reached


@pytest.mark.parametrize("batch_size", [1, 32, "full"])
def test_fixed_sizes_and_partial_fit_keep_their_batches(batch_size):
    X, Y = relu_teacher(1000, 5, 1, noise=0.5)
    model = OptimalLRRegressor("relu", batch_size=batch_size, max_iter=5, random_state=0)
    expected = 1000 if batch_size == "full" else batch_size
    assert model.fit(X, Y).batch_size_curve_ == [expected] * model.n_iter_
    streamed = OptimalLRRegressor("relu", random_state=0)
    for _ in range(3):
        streamed.partial_fit(X, Y)
    assert streamed.batch_size_curve_ == [200] * 3


def test_models_that_did_not_record_batch_sizes_pad_their_curve():
    # Version 0.1.0 pickled histories without batch sizes.
    X, Y = relu_teacher(500, 5, 1, noise=0.5)
    model = OptimalLRRegressor("relu", batch_size=50, max_iter=3, warm_start=True).fit(X, Y)
    state = model._state
    state.history = solver.replace(state.history, batch_sizes=())
    restored = pickle.loads(pickle.dumps(model))
    restored.set_params(max_iter=2).fit(X, Y)
    assert restored.batch_size_curve_ == [None] * 3 + [50, 50]


def digits_one_hot():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), OneHotEncoder(sparse_output=False).fit_transform(
        y[:, None]
    )


def test_full_batch_stops_within_tol_where_the_plateau_rule_stopped_early():
    # Conjugate gradients on ReLU over one-hot digits slow down for a few epochs and
    # speed up again: the plateau rule (n_iter_no_change epochs of less than tol
    # progress) stopped there, 1.5e-3 above the minimum.
    X, Y = digits_one_hot()
    model = OptimalLRRegressor("relu", batch_size="full").fit(X, Y)
    minimum, loss = lbfgs_minimum_from(model, X, Y)
    assert (loss - minimum) / minimum < 1e-4

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        long_run = OptimalLRRegressor("relu", batch_size="full", tol=0.0, max_iter=model.n_iter_)
        losses = long_run.fit(X, Y).loss_curve_
    plateau = solver._Stopper(tol=1e-4, n_iter_no_change=10)
    stop = next(epoch for epoch, loss in enumerate(losses) if plateau.update(loss, epoch, True))
    assert (losses[stop] - minimum) / minimum > 1e-3


@pytest.mark.parametrize(
    "losses, expected",
    [
        # Decreases 0.4, 0.2, 0.1, 0.05: ratio 1/2, so 0.05 more to lose, 2.5% of 2.
        ([3.0, 2.6, 2.4, 2.3, 2.05, 2.0], False),
        # Decreases 1e-3 ... 1e-5 at ratio 1/10: 1.1e-6 more to lose, 1e-6 of the loss.
        ([1.0111, 1.0011, 1.0001, 1.00001], True),
        # The last step raised the loss by 4% of it: an overshoot, not the end.
        ([10.0, 6.0, 4.0, 3.0, 2.5, 2.3, 2.4], False),
        # ... by less than tol of it, but the decreases before it left 6% to lose (and
        # a step twice too long along a quadratic changes nothing either).
        ([10.0, 6.0, 4.0, 3.0, 2.5, 2.3, 2.3000001], False),
        # A rise of 1e-9 after decreases at ratio 1/10 that left 1e-5 to lose.
        ([1.0111, 1.0011, 1.0001, 1.00001, 1.000010001], True),
        # Nothing lowered after decreases that left 5% to lose.
        ([1.0, 0.9, 0.85, 0.85], False),
        # Decreases that grew (ratio 2), then nothing: not evidence of a minimum.
        ([1.0, 0.9999, 0.9997, 0.9993, 0.99930001], False),
        # A decrease before the last one was not positive: no geometric history.
        ([1.0, 1.0, 0.9, 0.8999999], False),
        # Decreases that grow (ratio 2): far from converging however small they are.
        ([1.0, 0.9999999, 0.9999997, 0.9999993], False),
        # Too few losses for two ratios.
        ([1.0, 1.0, 1.0], False),
    ],
)
def test_full_batch_stopping_rule_extrapolates_geometric_decreases(losses, expected):
    assert solver._converged_in_full_batch(losses, 1e-4) is expected
    assert not solver._converged_in_full_batch(losses, 0.0)


@pytest.mark.parametrize("data", ["dense", "weighted", "sparse"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("step", ["pooled", "optimal", "exact"])
def test_a_full_batch_epoch_measures_the_fall_of_its_step(step, dtype, data):
    # The stopping rule judges the iterate an epoch leaves by the fall its record
    # carries: it must be the objective's, before the step less after it, as numpy
    # computes the objective on copies of the weights.
    X, Y = relu_teacher(500, 6, 2, noise=0.3)
    X, Y = X.astype(dtype), Y.astype(dtype)
    X[X < -0.5] = 0.0  # zeros for the sparse case
    alpha = 0.01
    rng = np.random.default_rng(1)
    sample_weight = rng.uniform(0.0, 2.0, 500) if data == "weighted" else None
    epoch = solver.FullBatchEpoch(
        sparse.csr_matrix(X) if data == "sparse" else X, Y,
        None if sample_weight is None else sample_weight.astype(dtype),
        activation=resolve_activation("relu"), step=step, alpha=alpha, conjugate=True,
        measure_decrease=True,
    )  # fmt: skip
    coef = (0.3 * rng.standard_normal((2, 6))).astype(dtype)
    intercept = np.full(2, 0.1, dtype=dtype)
    weights = np.ones(500) if sample_weight is None else sample_weight

    def objective(coef, intercept):
        coef, intercept = coef.astype(np.float64), intercept.astype(np.float64)
        error = np.maximum(X.astype(np.float64) @ coef.T + intercept, 0.0) - Y
        loss = 0.5 * weights @ np.sum(error**2, axis=1) / weights.sum()
        return loss + 0.5 * alpha * np.sum(coef**2)

    falls = []
    for _ in range(6):
        before = objective(coef, intercept)
        record = epoch(coef, intercept)
        falls.append(record.decrease)
        # float32: the weights are rounded to float32 after the step, the fall is not.
        rounding = 1e-12 if dtype == np.float64 else 1e-6
        assert record.decrease == pytest.approx(
            before - objective(coef, intercept), abs=rounding * before
        )
    assert falls[0] > 0


def test_a_fall_that_is_not_finite_is_left_to_the_next_epoch():
    # A loss that overflowed after the step is a divergence, not a rise within tol of
    # an infinite loss: appended, it made the rule stop on a blown-up model.
    assert solver._converged_in_full_batch((10.0, 5.0, 2.5, 1.25, np.inf), 1e-4)
    history = solver.TrainingHistory(loss_curve=(10.0, 5.0, 2.5, 1.25))
    for fall in (-np.inf, np.nan):
        record = solver._record(1.25, [1.0], 0, decrease=fall)
        assert solver._phase_losses(history, 1, record) == history.loss_curve
    record = solver._record(1.25, [1.0], 0, decrease=0.625)
    assert solver._phase_losses(history, 2, record) == (5.0, 2.5, 1.25, 0.625)


def test_the_measured_fall_saves_the_epoch_that_only_confirmed_it(monkeypatch):
    # Judged on the losses before each step, the rule needed one more epoch to see the
    # loss its last step had already reached.
    X, Y = relu_teacher(3000, 8, 3, noise=0.3)
    model = OptimalLRRegressor("relu", batch_size="full").fit(X, Y)
    minimum, loss = lbfgs_minimum_from(model, X, Y)
    assert (loss - minimum) / minimum < 1e-4

    measuring = solver.FullBatchEpoch.__init__

    def without_the_fall(self, *args, **kwargs):
        measuring(self, *args, **{**kwargs, "measure_decrease": False})

    monkeypatch.setattr(solver.FullBatchEpoch, "__init__", without_the_fall)
    unmeasured = OptimalLRRegressor("relu", batch_size="full").fit(X, Y)
    assert unmeasured.n_iter_ == model.n_iter_ + 1
    assert_allclose(unmeasured.loss_curve_[:-1], model.loss_curve_, rtol=1e-12)


def test_the_penalty_counts_in_the_gradient_the_noise_is_measured_against():
    # Near a penalised minimum the data gradient balances alpha W and does not vanish:
    # measured against it, the noise never dominates, and the batch stayed at 200 rows
    # until the plateau rule (12 epochs at alpha 1).
    X, Y = relu_teacher(20_000, 20, 2, noise=0.5)
    model = OptimalLRRegressor("relu", alpha=1.0, random_state=0).fit(X, Y)
    assert model.batch_size_curve_[1] > 200
    assert model.batch_size_curve_[-1] == len(X)


@pytest.mark.parametrize("n_samples, first", [(399, 399), (400, 400), (401, 200)])
def test_the_full_batch_from_half_the_rows(n_samples, first):
    X, Y = relu_teacher(n_samples, 3, 1, noise=0.5)
    model = OptimalLRRegressor("relu", max_iter=3, random_state=0).fit(X, Y[:, 0])
    assert model.batch_size_curve_[0] == first


def test_early_stopping_stops_the_schedule_on_held_out_data():
    X, Y = relu_teacher(5000, 10, 1, noise=0.5)
    model = OptimalLRRegressor("relu", early_stopping=True, random_state=0).fit(X, Y[:, 0])
    assert model.n_iter_ < 200
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.batch_size_curve_[0] == 200


def test_the_diagnostics_count_the_steps_of_every_batch_size():
    # Badly scaled columns, unpreconditioned: the warning names the steps the fit took,
    # over the batch sizes it ran (counted here from batch_size_curve_).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 6)) * np.array([1, 30, 0.03, 3, 1, 10]) + 5
    y = np.maximum(X @ rng.standard_normal(6) / 10, 0) + 0.3 * rng.standard_normal(20_000)
    with pytest.warns(ConvergenceWarning, match="different scales") as record:
        model = OptimalLRRegressor("relu", precondition=False, max_iter=30, random_state=0)
        model.fit(X, y)
    assert len(set(model.batch_size_curve_)) > 1
    steps = sum(-(-len(X) // size) for size in model.batch_size_curve_)
    assert f"it took {steps})" in str(record[0].message)


def test_verbose_names_each_epochs_batch_size(capsys):
    X, Y = relu_teacher(20_000, 20, 1, noise=0.5)
    model = OptimalLRRegressor("relu", max_iter=3, verbose=1, random_state=0).fit(X, Y[:, 0])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[:-1]] == [
        f"Epoch {epoch}: batch size={size}"
        for epoch, size in enumerate(model.batch_size_curve_, start=1)
    ]
    assert lines[-1] == "Training ended after max_iter=3 epochs."


@pytest.mark.parametrize("scale", [3e149, 1e150, 1e151])
def test_the_norm_test_survives_products_of_finite_statistics_that_overflow(scale):
    # Features of 1e150: the noise and the signal were finite, their products in the
    # needed size not, and math.ceil raised "cannot convert float infinity to integer".
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    y = X @ np.array([1.0, 2.0, 3.0, 4.0])
    model = OptimalLRRegressor(random_state=0).fit(X * scale, y)
    assert model.score(X * scale, y) > 0.99
