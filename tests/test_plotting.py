# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""TrainingCurveDisplay: what it draws is the model's record, and matplotlib stays optional."""

import copy
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor, TrainingCurveDisplay

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(300)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    model = OptimalLRRegressor(batch_size=32, max_iter=12, n_iter_no_change=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 12 epochs, on purpose
        return model.fit(*data)


@pytest.fixture(scope="module")
def fitted_early_stopping(data):
    return OptimalLRRegressor(batch_size=32, early_stopping=True, random_state=0).fit(*data)


@pytest.fixture(scope="module")
def fitted_growing_batch():
    """A noisy ReLU teacher, where batch_size="auto" grows the batch more than once."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 20))
    W = rng.standard_normal((20, 1))
    Y = np.maximum(X @ W / np.sqrt(20) + 0.5, 0) + 0.5 * rng.standard_normal((20000, 1))
    return OptimalLRRegressor("relu", random_state=0).fit(X, Y)


def band_per_epoch(fill_between):
    """The (lowest, highest) y of the band's outline at each epoch."""
    vertices = fill_between.get_paths()[0].vertices
    epochs = np.unique(vertices[:, 0])
    return np.array([
        (vertices[vertices[:, 0] == x, 1].min(), vertices[vertices[:, 0] == x, 1].max())
        for x in epochs
    ])  # fmt: skip


def test_import_does_not_import_matplotlib():
    code = "import sys, sklearn_optlr; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_plot_without_matplotlib_names_the_extra(monkeypatch, fitted):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "sklearn-optlr\[plot\]"'):
        TrainingCurveDisplay.from_estimator(fitted)
    display = TrainingCurveDisplay([1.0, 0.5], [0.1, 0.2])
    with pytest.raises(ImportError, match="TrainingCurveDisplay.plot requires matplotlib"):
        display.plot()


def test_from_estimator_draws_the_record(fitted):
    display = TrainingCurveDisplay.from_estimator(fitted)
    epochs = np.arange(1, fitted.n_iter_ + 1)

    np.testing.assert_array_equal(display.loss_line_.get_xdata(), epochs)
    np.testing.assert_allclose(display.loss_line_.get_ydata(), fitted.loss_curve_)
    np.testing.assert_array_equal(display.learning_rate_line_.get_xdata(), epochs)
    np.testing.assert_allclose(display.learning_rate_line_.get_ydata(), fitted.learning_rate_curve_)
    np.testing.assert_allclose(band_per_epoch(display.fill_between_), fitted.learning_rate_bounds_)

    assert display.ax_.get_yscale() == "log"
    assert display.ax_learning_rate_.get_yscale() == "log"  # every rate is positive here
    assert display.ax_.get_xlabel() == "Epoch"
    assert np.all(np.mod(display.ax_.get_xticks(), 1) == 0)  # whole epochs only
    assert display.ax_learning_rate_.get_ylabel() == "Learning rate"
    # Side by side by default: two panels of one figure, not twins.
    assert display.figure_.axes == [display.ax_, display.ax_learning_rate_]
    assert not display.ax_.get_shared_x_axes().joined(display.ax_, display.ax_learning_rate_)
    assert display.ax_validation_ is None and display.validation_line_ is None
    # No name: no title, and lines labelled by what they show.
    assert display.figure_.get_suptitle() == "" and display.name is None
    assert display.loss_line_.get_label() == "Training loss"


def test_batch_size_changes_are_marked(fitted_growing_batch):
    model = fitted_growing_batch
    sizes = np.asarray(model.batch_size_curve_)
    assert len(sizes) == model.n_iter_
    changes = np.flatnonzero(sizes[1:] != sizes[:-1]) + 1  # 0-based epochs with a new size
    assert len(changes) >= 2, f"the batch should grow more than once: {model.batch_size_curve_}"

    display = TrainingCurveDisplay.from_estimator(model)
    assert len(display.batch_size_lines_) == len(display.batch_size_labels_) == len(changes)
    assert len(display.ax_.lines) == 1 + len(changes)
    for line, label, epoch in zip(display.batch_size_lines_, display.batch_size_labels_, changes):
        assert line.axes is display.ax_
        np.testing.assert_array_equal(line.get_xdata(), [epoch + 1, epoch + 1])  # epochs from 1
        assert label.get_text() == f"batch {sizes[epoch]:,}"
        assert label.get_position()[0] == epoch + 1
    assert label.get_text() == f"batch {model.batch_size_curve_[-1]:,}"  # the full batch
    # One legend entry for all the changes.
    labels = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert labels == ["Training loss", "Batch size changes"]


@pytest.mark.parametrize("batch_size", [32, "full"])
def test_a_fixed_batch_size_marks_no_change(data, batch_size):
    model = OptimalLRRegressor(batch_size=batch_size, max_iter=12, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(*data)
    assert len(set(model.batch_size_curve_)) == 1 and len(model.batch_size_curve_) > 1
    display = TrainingCurveDisplay.from_estimator(model)
    assert display.batch_size_lines_ == [] and display.batch_size_labels_ == []
    assert list(display.ax_.lines) == [display.loss_line_]
    labels = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert labels == ["Training loss"]


@pytest.mark.parametrize(
    "batch_size_curve, marked",
    [
        # Epochs without a record (version 0.1.0) neither change the size nor start a change.
        ([None, None, 200, 200, 400], [(5, "batch 400")]),
        ([200, None, 400, None, 400], [(3, "batch 400")]),
        ([200, None, 200, 200, 200], []),
        ([None] * 5, []),
    ],
)
def test_epochs_without_a_batch_size_are_skipped(batch_size_curve, marked):
    display = TrainingCurveDisplay(
        [5.0, 4.0, 3.0, 2.0, 1.0], [0.1] * 5, batch_size_curve=batch_size_curve
    ).plot()
    drawn = [
        (line.get_xdata()[0], label.get_text())
        for line, label in zip(display.batch_size_lines_, display.batch_size_labels_)
    ]
    assert drawn == marked


def test_a_model_without_batch_sizes_still_plots(fitted_growing_batch):
    model = copy.deepcopy(fitted_growing_batch)
    del model.batch_size_curve_  # as in a model pickled by version 0.1.0
    display = TrainingCurveDisplay.from_estimator(model)
    assert display.batch_size_curve is None and display.batch_size_lines_ == []
    np.testing.assert_allclose(display.loss_line_.get_ydata(), model.loss_curve_)


def test_early_stopping_adds_the_validation_scores(fitted_early_stopping):
    model = fitted_early_stopping
    display = TrainingCurveDisplay.from_estimator(model)
    np.testing.assert_allclose(display.validation_line_.get_ydata(), model.validation_scores_)
    assert display.validation_line_.axes is display.ax_validation_
    # The validation R^2 shares the loss panel, on its own (linear) scale.
    assert display.ax_.get_shared_x_axes().joined(display.ax_, display.ax_validation_)
    assert display.ax_validation_.get_yscale() == "linear"
    labels = [text.get_text() for text in display.ax_validation_.get_legend().get_texts()]
    assert labels == ["Training loss", "Validation R$^2$", "Epoch kept"]
    # The marker sits on the epoch whose model was kept: the best of this fit.
    kept = display.kept_epoch_marker_
    assert kept.get_ydata()[0] == model.best_validation_score_
    assert (
        kept.get_xdata()[0]
        == np.flatnonzero(np.asarray(model.validation_scores_) == model.best_validation_score_)[-1]
        + 1
    )


@pytest.mark.parametrize("size", [(10, 4), (8, 3), (6.4, 4.8)])
def test_the_validation_scale_keeps_clear_of_the_rates_panel(fitted_early_stopping, size):
    # Its label and ticks sit between the two panels; the layout must make room.
    display = TrainingCurveDisplay.from_estimator(fitted_early_stopping)
    display.figure_.set_size_inches(*size)
    display.figure_.canvas.draw()
    renderer = display.figure_.canvas.get_renderer()
    validation_scale = display.ax_validation_.get_tightbbox(renderer)
    rates_panel = display.ax_learning_rate_.get_tightbbox(renderer)
    assert validation_scale.x1 < rates_panel.x0


def test_validation_scores_after_epochs_without_them(data):
    # A partial_fit epoch, then early stopping: the first epoch has no score (NaN, a
    # gap in the line), and the scores still line up with the losses.
    model = OptimalLRRegressor(batch_size=32, warm_start=True, random_state=0)
    model.partial_fit(*data).set_params(early_stopping=True).fit(*data)
    display = TrainingCurveDisplay.from_estimator(model)
    drawn = display.validation_line_.get_ydata()
    assert len(drawn) == len(display.loss_line_.get_ydata()) == model.n_iter_
    assert np.isnan(drawn[0])
    np.testing.assert_allclose(drawn[1:], model.validation_scores_[1:])


def test_pipeline_is_unwrapped(data):
    pipeline = make_pipeline(StandardScaler(), OptimalLRRegressor(batch_size="full", max_iter=20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(*data)
    display = TrainingCurveDisplay.from_estimator(pipeline, name="scaled")
    np.testing.assert_allclose(display.loss_line_.get_ydata(), pipeline[-1].loss_curve_)
    # Full batch takes one step an epoch: the band collapses onto the mean.
    np.testing.assert_allclose(
        band_per_epoch(display.fill_between_)[:, 0], pipeline[-1].learning_rate_curve_
    )
    # The name labels the model's lines (scikit-learn's displays' convention).
    assert display.loss_line_.get_label() == "scaled"
    assert display.learning_rate_line_.get_label() == "scaled: learning rate, epoch mean"
    assert display.figure_.get_suptitle() == ""


def test_single_axes_puts_the_rates_on_twins(fitted_early_stopping):
    fig, ax = plt.subplots()
    display = TrainingCurveDisplay.from_estimator(fitted_early_stopping, ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert len(fig.axes) == 3
    for twin in (display.ax_learning_rate_, display.ax_validation_):
        assert ax.get_shared_x_axes().joined(ax, twin)
    # The user's figure and panel are not retitled.
    assert fig.get_suptitle() == "" and ax.get_title() == ""
    labels = [text.get_text() for text in display.ax_validation_.get_legend().get_texts()]
    assert labels == [
        "Training loss", "Validation R$^2$", "Epoch kept", "Learning rate, epoch mean",
        "min to max",
    ]  # fmt: skip


def test_two_axes_are_used_as_panels(fitted):
    fig, axes = plt.subplots(2, 1)
    display = TrainingCurveDisplay.from_estimator(fitted, ax=axes)
    assert display.ax_ is axes[0] and display.ax_learning_rate_ is axes[1]
    assert len(fig.axes) == 2


def test_partial_fit_record_has_one_epoch_per_call(data):
    X, y = data
    model = OptimalLRRegressor(batch_size=50, random_state=0)
    for chunk in np.array_split(np.arange(len(y)), 5):
        model.partial_fit(X[chunk], y[chunk])
    display = TrainingCurveDisplay.from_estimator(model)
    np.testing.assert_array_equal(display.loss_line_.get_xdata(), [1, 2, 3, 4, 5])


def test_zero_rates_switch_the_rate_axis_to_linear():
    display = TrainingCurveDisplay(
        [1.0, 0.5, 0.25], [0.3, 0.2, 0.1], learning_rate_bounds=[(0.0, 0.6), (0.1, 0.3), (0.1, 0.1)]
    ).plot()
    assert display.ax_learning_rate_.get_yscale() == "linear"
    assert display.ax_.get_yscale() == "log"


def test_style_keywords_reach_the_artists(fitted):
    display = TrainingCurveDisplay.from_estimator(
        fitted,
        loss_kw={"c": "red", "label": "loss"},
        learning_rate_kw={"linestyle": ":"},
        fill_between_kw={"alpha": 0.5},
    )
    assert display.loss_line_.get_color() == "red"
    assert display.loss_line_.get_label() == "loss"
    assert display.learning_rate_line_.get_linestyle() == ":"
    assert display.fill_between_.get_alpha() == 0.5


def test_batch_size_keywords_reach_the_lines_and_their_labels():
    display = TrainingCurveDisplay([3.0, 2.0, 1.0], [0.1] * 3, batch_size_curve=[1, 2, 4]).plot(
        batch_size_kw={"c": "red", "ls": "--", "label": "grown"}
    )
    for line, label in zip(display.batch_size_lines_, display.batch_size_labels_, strict=True):
        assert line.get_color() == label.get_color() == "red"
        assert line.get_linestyle() == "--"
    labels = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert labels == ["Training loss", "grown"]


def test_without_bounds_or_name():
    display = TrainingCurveDisplay([2.0, 1.0], [0.5, 0.25]).plot(name=None)
    assert display.fill_between_ is None
    assert display.figure_.get_suptitle() == ""


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(loss_curve=[], learning_rate_curve=[]), "loss_curve must be a non-empty"),
        (dict(loss_curve=[1.0, 0.5], learning_rate_curve=[0.1]), "one value per epoch"),
        (
            dict(loss_curve=[1.0], learning_rate_curve=[0.1], learning_rate_bounds=[0.1, 0.2]),
            r"shape \(1, 2\)",
        ),
        (
            dict(loss_curve=[1.0], learning_rate_curve=[0.1], validation_scores=[0.1, 0.2]),
            "validation_scores must have one value per epoch",
        ),
        (
            dict(loss_curve=[1.0, 0.5], learning_rate_curve=[0.1, 0.1], batch_size_curve=[200]),
            r"batch_size_curve must have one value per epoch \(2, as loss_curve\); got 1",
        ),
        (
            dict(loss_curve=[1.0], learning_rate_curve=[0.1], batch_size_curve=[[200]]),
            "batch_size_curve must be a non-empty 1-D",
        ),
    ],
)
def test_inconsistent_curves_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingCurveDisplay(**kwargs).plot()


def test_three_axes_are_rejected(fitted):
    _, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="one Axes or two Axes; got 3"):
        TrainingCurveDisplay.from_estimator(fitted, ax=axes)


def test_from_estimator_needs_a_fitted_optimal_lr_regressor(data):
    with pytest.raises(NotFittedError):
        TrainingCurveDisplay.from_estimator(OptimalLRRegressor())
    with pytest.raises(TypeError, match="got Ridge"):
        TrainingCurveDisplay.from_estimator(Ridge().fit(*data))
    with pytest.raises(TypeError, match="got Pipeline holding Ridge"):
        TrainingCurveDisplay.from_estimator(make_pipeline(StandardScaler(), Ridge()).fit(*data))
    search = GridSearchCV(OptimalLRRegressor(), {"alpha": [0.0]}, refit=False).fit(*data)
    with pytest.raises(TypeError, match="got GridSearchCV"):
        TrainingCurveDisplay.from_estimator(search)  # refit=False: no best_estimator_
    with pytest.raises(NotFittedError):
        TrainingCurveDisplay.from_estimator(TransformedTargetRegressor(OptimalLRRegressor()))


def test_searches_and_transformed_targets_are_unwrapped(data):
    # A comparison script plots what GridSearchCV chose, or a model fitted on log y:
    # the curves are those of the OptimalLRRegressor inside.
    X, y = data
    inner = make_pipeline(StandardScaler(), OptimalLRRegressor(random_state=0))
    search = GridSearchCV(inner, {"optimallrregressor__alpha": [0.0, 0.1]}, cv=2).fit(X, y)
    transformed = TransformedTargetRegressor(
        search, func=np.arcsinh, inverse_func=np.sinh, check_inverse=False
    ).fit(X, y)
    for estimator in (search, transformed):
        display = TrainingCurveDisplay.from_estimator(estimator)
        fitted = transformed.regressor_ if estimator is transformed else search
        expected = fitted.best_estimator_[-1].loss_curve_
        np.testing.assert_allclose(display.loss_line_.get_ydata(), expected)


@pytest.mark.parametrize(
    "loss", [[3.4315, 3.431, 3.4306, 3.4305], [1.0, 1e-2, 1e-5, 1e-8], [20.0, 5.0, 3.0, 3.0]]
)
def test_log_scales_are_labelled_with_plain_distinct_numbers(loss):
    # A loss on a narrow range was labelled "3.431x10^0, 3.4305x10^0" (matplotlib's
    # scientific minor labels); now plain numbers, each one apart from its neighbours,
    # that read back as the ticks' values.
    display = TrainingCurveDisplay(loss_curve=loss, learning_rate_curve=[0.5, 0.51, 0.52, 0.53])
    display.plot().figure_.canvas.draw()
    for axes in (display.ax_, display.ax_learning_rate_):
        for minor in (False, True):
            ticks = zip(axes.yaxis.get_ticklocs(minor=minor), axes.get_yticklabels(minor=minor))
            shown = [(loc, label.get_text()) for loc, label in ticks if label.get_text()]
            labels = [label for _, label in shown]
            assert not any("times" in label or "mathdefault" in label for label in labels)
            assert len(set(labels)) == len(labels)
            values = [float(label) for label in labels]
            np.testing.assert_allclose(values, [loc for loc, _ in shown], rtol=1e-3)


def test_models_drawn_on_the_same_axes_take_their_own_colours_and_names(data):
    # Three models on one pair of Axes all came out in C0, each labelled "Training
    # loss", and the name went to the title.
    fig, axes = plt.subplots(1, 2)
    displays = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for batch_size in (8, 32, "full"):
            model = OptimalLRRegressor(batch_size=batch_size, max_iter=5, random_state=0)
            name = f"batch_size={batch_size}"
            display = TrainingCurveDisplay.from_estimator(model.fit(*data), ax=axes, name=name)
            displays.append(display)
    colors = [display.loss_line_.get_color() for display in displays]
    assert len(set(colors)) == 3
    for display, color in zip(displays, colors):
        # A model's lines share its colour across the panels.
        assert display.learning_rate_line_.get_color() == color
    labels = [text.get_text() for text in axes[0].get_legend().get_texts()]
    assert labels == ["batch_size=8", "batch_size=32", "batch_size=full"]
    assert fig.get_suptitle() == "" and axes[0].get_title() == ""
