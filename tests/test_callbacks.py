# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""scikit-learn's callbacks (``sklearn.callback``, scikit-learn 1.9 and later): a task
per fit, a subtask per epoch, a fitted model at each epoch's end, and a callback's
request to stop honoured as ``max_iter`` would end training."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr._callbacks import FitTasks

try:
    from sklearn import callback
except ImportError:  # scikit-learn < 1.9 (CI's oldest-scikit-learn job)
    callback = None

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: The tests extra brings scikit-learn 1.9 or later; older versions have no callbacks.
needs_callbacks = pytest.mark.skipif(callback is None, reason="scikit-learn < 1.9")


class Recorder:
    """Records each hook call: (hook, task name, the fitted estimator's predictions)."""

    def __init__(self, X_probe=None, stop_after=None):
        self.calls = []
        self.kept = []  # the fitted estimators handed to on_fit_task_end
        self.X_probe = X_probe
        self.stop_after = stop_after

    def setup(self, estimator, context):
        self.calls.append(("setup", context.task_name, None))

    def teardown(self, estimator, context):
        self.calls.append(("teardown", context.task_name, None))

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        self.calls.append(("begin", context.task_name, None))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        probe = self.X_probe
        predictions = None
        if probe is not None and fitted_estimator is not None:
            predictions = fitted_estimator.predict(probe)
        self.calls.append(("end", context.task_name, predictions))
        self.kept.append(fitted_estimator)
        epochs_ended = sum(1 for hook, task, _ in self.calls if (hook, task) == ("end", "epoch"))
        return self.stop_after is not None and epochs_ended >= self.stop_after

    def count(self, hook, task):
        return sum(1 for call in self.calls if call[:2] == (hook, task))


class PropagatedRecorder(Recorder):
    max_propagation_depth = None  # propagated by meta-estimators, to every depth


def _data(n_outputs=1):
    X, y = make_regression(200, 6, n_targets=n_outputs, noise=5.0, random_state=0)
    return StandardScaler().fit_transform(X), y / np.std(y)


@needs_callbacks
@pytest.mark.parametrize("batch_size", [16, "full"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_each_epoch_is_a_task_whose_model_is_the_fit_stopped_there(batch_size, n_outputs):
    # Oracle: the same fit run with max_iter set to that epoch, without callbacks. Without
    # averaging, so that the model an epoch leaves is the one such a fit returns.
    X, y = _data(n_outputs)
    batch_size = X.shape[0] if batch_size == "full" else batch_size
    params = dict(
        activation="leaky_relu", batch_size=batch_size, average=False, tol=0.0,
        n_iter_no_change=100, random_state=0,
    )  # fmt: skip
    recorder = Recorder(X_probe=X[:7])
    model = OptimalLRRegressor(max_iter=5, **params).set_callbacks(recorder)
    model.fit(X, y)
    assert recorder.count("setup", "fit") == recorder.count("teardown", "fit") == 1
    assert recorder.count("begin", "epoch") == recorder.count("end", "epoch") == 5
    epoch_predictions = [p for hook, task, p in recorder.calls if (hook, task) == ("end", "epoch")]
    for epochs in (1, 3, 5):
        stopped_there = OptimalLRRegressor(max_iter=epochs, **params).fit(X, y)
        assert_allclose(epoch_predictions[epochs - 1], stopped_there.predict(X[:7]), rtol=1e-12)
    # Kept past their epoch, they still hold the model of their epoch.
    later = [estimator.predict(X[:7]) for estimator in recorder.kept[:-1]]
    assert_array_equal(later, epoch_predictions)
    # The last hook is the fit's own end, with the fitted model itself.
    assert recorder.calls[-2][:2] == ("end", "fit")
    assert_array_equal(recorder.calls[-2][2], model.predict(X[:7]))


@needs_callbacks
def test_an_epochs_model_is_the_one_its_validation_score_records():
    # With averaging the model an epoch leaves is the averaged one, which early stopping
    # scores on the validation rows each epoch (validation_scores_).
    X, y = _data()
    X_val, y_val = X[:60] + 0.1, y[:60]
    recorder = Recorder(X_probe=X_val)
    model = OptimalLRRegressor(
        batch_size=16, average=True, early_stopping=True, max_iter=6, tol=0.0,
        n_iter_no_change=100, random_state=0,
    )  # fmt: skip
    model.set_callbacks(recorder).fit(X, y, X_val=X_val, y_val=y_val)
    epoch_predictions = [p for hook, task, p in recorder.calls if (hook, task) == ("end", "epoch")]
    assert len(epoch_predictions) == len(model.validation_scores_) == 6
    r2 = [
        1 - np.sum((p - y_val) ** 2) / np.sum((y_val - y_val.mean()) ** 2)
        for p in epoch_predictions
    ]
    assert_allclose(r2, model.validation_scores_, rtol=1e-10)


@needs_callbacks
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_callback_asking_to_stop_ends_training_as_max_iter_would(early_stopping, capsys):
    X, y = _data()
    X_val, y_val = X[:60] + 0.1, y[:60]
    params = dict(batch_size=32, tol=1e-12, n_iter_no_change=50, random_state=0)
    fit_params = dict(X_val=X_val, y_val=y_val) if early_stopping else {}
    params["early_stopping"] = early_stopping
    stopped = OptimalLRRegressor(max_iter=50, verbose=1, **params)
    stopped.set_callbacks(Recorder(stop_after=4)).fit(X, y, **fit_params)
    assert "Training stopped: a callback asked to stop after epoch 4" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        oracle = OptimalLRRegressor(max_iter=4, **params).fit(X, y, **fit_params)
    assert stopped.n_iter_ == 4
    assert_allclose(stopped.coef_, oracle.coef_, rtol=1e-12)
    assert_allclose(stopped.intercept_, oracle.intercept_, rtol=1e-12)
    assert stopped.best_validation_score_ == oracle.best_validation_score_


@needs_callbacks
def test_a_stop_asked_by_a_callback_raises_no_convergence_warning():
    X, y = _data()
    model = OptimalLRRegressor(batch_size=32, max_iter=50, tol=1e-12, n_iter_no_change=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.set_callbacks(Recorder(stop_after=2)).fit(X, y)
    assert model.n_iter_ == 2


@needs_callbacks
def test_scoring_monitor_scores_every_epoch_on_the_training_rows():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    monitor = callback.ScoringMonitor(scoring="neg_mean_squared_error")
    model = OptimalLRRegressor(
        activation="relu", batch_size=64, max_iter=6, tol=0.0, n_iter_no_change=100
    )
    model.set_callbacks(monitor).fit(X, y)
    rows = monitor.get_logs().data
    epochs = [row for row in rows if row["task_name"] == "epoch"]
    assert len(epochs) == model.n_iter_ == 6
    # The fit's own row scores the fitted model; the last epoch left that same model.
    (fit_row,) = [row for row in rows if row["task_name"] == "fit"]
    expected = -np.mean((model.predict(X) - y) ** 2)
    assert_allclose(fit_row["neg_mean_squared_error"], expected, rtol=1e-12)
    assert_allclose(epochs[-1]["neg_mean_squared_error"], expected, rtol=1e-12)


@needs_callbacks
def test_partial_fit_is_one_epoch_task_per_call():
    X, y = _data()
    recorder = Recorder()
    model = OptimalLRRegressor(batch_size=20).set_callbacks(recorder)
    for _ in range(3):
        model.partial_fit(X, y)
    assert recorder.count("begin", "epoch") == recorder.count("end", "epoch") == 3
    assert recorder.count("teardown", "fit") == 3


@needs_callbacks
@pytest.mark.parametrize("in_a_pipeline", [False, True])
def test_callbacks_propagate_from_a_grid_search_to_every_epoch(in_a_pipeline):
    X, y = _data()
    model = OptimalLRRegressor(batch_size=50, max_iter=3, tol=0.0, n_iter_no_change=100)
    if in_a_pipeline:
        model, prefix = make_pipeline(StandardScaler(), model), "optimallrregressor__"
    else:
        prefix = ""
    recorder = PropagatedRecorder()
    search = GridSearchCV(model, {f"{prefix}activation": ["identity", "leaky_relu"]}, cv=2)
    search.set_callbacks(recorder).fit(X, y)
    # 2 candidates x 2 splits, and the refit: 5 fits of 3 epochs each.
    assert recorder.count("begin", "epoch") == recorder.count("end", "epoch") == 15
    assert recorder.count("setup", "fit") == recorder.count("teardown", "fit") == 1


@needs_callbacks
def test_progress_bar_runs_over_epochs(capsys):
    pytest.importorskip("rich")  # the progress extra (in the tests extra) brings it
    X, y = _data()
    model = OptimalLRRegressor(batch_size=50, max_iter=3, tol=0.0, n_iter_no_change=100)
    model.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert model.n_iter_ == 3
    assert not hasattr(model, "_callback_fit_ctx")  # torn down


@needs_callbacks
def test_a_failed_fit_tears_its_callbacks_down_and_keeps_the_model():
    X, y = _data()
    recorder = Recorder()
    model = OptimalLRRegressor(max_iter=3, random_state=0).set_callbacks(recorder).fit(X, y)
    coef = model.coef_.copy()
    y_bad = y.copy()
    y_bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X, y_bad)
    assert recorder.count("setup", "fit") == recorder.count("teardown", "fit") == 2
    assert_array_equal(model.coef_, coef)
    assert not hasattr(model, "_callback_fit_ctx")


@needs_callbacks
def test_callbacks_survive_clone_and_leave_parameters_alone():
    recorder = Recorder()
    model = OptimalLRRegressor(max_iter=2).set_callbacks(recorder)
    assert "callbacks" not in model.get_params()
    X, y = _data()
    clone(model).fit(X, y)
    assert recorder.count("end", "epoch") == 2


def test_without_callbacks_the_estimator_fits_and_its_tasks_do_nothing():
    # What an estimator sees on scikit-learn before 1.9: no _init_callback_context.
    X, y = _data()
    model = OptimalLRRegressor(max_iter=3, random_state=0).fit(X, y)
    assert hasattr(model, "set_callbacks") == (callback is not None)
    tasks = FitTasks(object(), max_epochs=3)
    tasks.begin(X, y[:, None], None, True)
    tasks.begin_epoch((np.zeros((1, 6)), np.zeros(1)))
    assert tasks.end_epoch((np.zeros((1, 6)), np.zeros(1))) is False
    tasks.end()
