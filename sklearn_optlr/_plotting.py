# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Visual diagnostics of a fit: the loss and the learning rates, epoch by epoch.

matplotlib is optional: nothing here imports it until something is drawn, so
``import sklearn_optlr`` works without it and :meth:`TrainingCurveDisplay.plot`
says which extra to install when it is missing.
"""

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils._plotting import _validate_style_kwargs
from sklearn.utils.validation import check_is_fitted

from ._regressor import OptimalLRRegressor

__all__ = ["TrainingCurveDisplay"]


def _import_pyplot(caller_name):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib, which could not be imported. Install the "
            'plotting extra with `pip install "sklearn-optlr[plot]"` (or `pip install '
            "matplotlib`)."
        ) from exc
    return plt


def _as_curve(values, name, length=None):
    curve = np.asarray(values, dtype=np.float64)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence; got shape {curve.shape}.")
    if length is not None and curve.size != length:
        raise ValueError(
            f"{name} must have one value per epoch ({length}, as loss_curve); got {curve.size}."
        )
    return curve


def _batch_size_changes(batch_sizes):
    """(epoch, new size) for each epoch, numbered from 1, whose batch size differs from
    the last one recorded before it. Epochs without a record (NaN) are skipped: they
    neither change the size nor start a change."""
    recorded = np.flatnonzero(~np.isnan(batch_sizes))
    sizes = batch_sizes[recorded]
    changed = np.flatnonzero(sizes[1:] != sizes[:-1]) + 1
    return [(int(recorded[i]) + 1, int(sizes[i])) for i in changed]


def _final_regressor(estimator):
    """The fitted OptimalLRRegressor inside ``estimator``: itself, a Pipeline's last
    step, a fitted search's ``best_estimator_``, a TransformedTargetRegressor's
    ``regressor_``, or any nesting of these."""
    regressor = estimator
    while True:
        if isinstance(regressor, Pipeline):
            regressor = regressor[-1]
        elif hasattr(regressor, "best_estimator_"):  # a fitted search, refit=True
            regressor = regressor.best_estimator_
        elif isinstance(regressor, TransformedTargetRegressor):
            check_is_fitted(regressor)
            regressor = regressor.regressor_
        else:
            break
    if not isinstance(regressor, OptimalLRRegressor):
        raise TypeError(
            "TrainingCurveDisplay.from_estimator needs a fitted OptimalLRRegressor, or a "
            "Pipeline, fitted search (refit=True) or TransformedTargetRegressor holding "
            f"one; got {type(estimator).__name__}"
            + (f" holding {type(regressor).__name__}." if regressor is not estimator else ".")
        )
    check_is_fitted(regressor)
    return regressor


def _panels(plt, ax):
    """The loss's and the rates' Axes for :meth:`TrainingCurveDisplay.plot`'s ``ax``, and
    whether the rates are on a twin of the loss's Axes."""
    if ax is None:
        _, (loss_ax, rate_ax) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        return loss_ax, rate_ax, False
    if np.ndim(ax) == 0:
        return ax, ax.twinx(), True
    pair = np.ravel(np.asarray(ax, dtype=object))
    if pair.size != 2:
        raise ValueError(f"ax must be one Axes or two Axes; got {pair.size} Axes.")
    loss_ax, rate_ax = pair
    return loss_ax, rate_ax, False


def _plain_log_ticks(axis):
    """Label a log-scaled ``axis`` with plain numbers (3.4305, 0.002, 1e-06), each with
    as many significant digits as tell its neighbours apart: matplotlib's default
    labels a narrow range as 3.4305x10^0. Which ticks carry a label is matplotlib's
    rule (every decade, and the minor ticks of a range under a couple of decades)."""
    import math

    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        digits = 6

        def set_locs(self, locs=None):
            super().set_locs(locs)
            shown = {float(loc) for loc in (() if locs is None else locs) if loc > 0}
            self.digits = 1
            # 17 significant digits tell any two float64 values apart.
            while self.digits < 17 and len({f"{v:.{self.digits}g}" for v in shown}) < len(shown):
                self.digits += 1

        def __call__(self, x, pos=None):
            if not super().__call__(x, pos):
                return ""
            # Whole numbers up to 10,000 in full (10, not 1e+01).
            whole = int(math.floor(math.log10(x))) + 1 if 1.0 <= x < 1e5 else 0
            return f"{x:.{max(self.digits, whole)}g}"

    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _label_epochs(*axes_list):
    from matplotlib.ticker import MaxNLocator

    for axes in axes_list:
        locator = axes.xaxis.get_major_locator()
        if isinstance(locator, MaxNLocator):  # the default; epochs are whole numbers
            locator.set_params(integer=True)


class _Labels:
    """The legend labels of one model's lines: by what they show, led by the model's
    name where it has one."""

    def __init__(self, name):
        def label(what):
            return what[0].upper() + what[1:] if name is None else f"{name}: {what}"

        self.loss = "Training loss" if name is None else str(name)
        self.validation = label("validation R$^2$")
        self.rate = label("learning rate, epoch mean")
        self.band = "min to max" if name is None else f"{name}: min to max"
        self.batch = label("batch size changes")
        self.kept = label("epoch kept")


class TrainingCurveDisplay:
    """Training curves of an :class:`OptimalLRRegressor`: loss and learning rates per epoch.

    Shows the training loss of each epoch (log scale), the validation R^2 of
    each epoch when the model was fitted with ``early_stopping=True``, and the
    learning rates the solver took: their mean in each epoch, with a band from
    the smallest to the largest. A thin vertical line on the loss marks each
    epoch where the batch size changes. Use :meth:`from_estimator` to build one
    from a fitted model; all parameters are stored as attributes.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training loss of each epoch, as ``OptimalLRRegressor.loss_curve_``.
    learning_rate_curve : array-like of shape (n_epochs,)
        Mean learning rate of each epoch, as ``learning_rate_curve_``.
    learning_rate_bounds : array-like of shape (n_epochs, 2), default=None
        Smallest and largest learning rate of each epoch, as
        ``learning_rate_bounds_``. None draws no band.
    validation_scores : array-like of shape (n_epochs,), default=None
        Validation R^2 of each epoch, as ``validation_scores_``. None draws no
        validation curve.
    batch_size_curve : array-like of shape (n_epochs,), default=None
        Batch size of each epoch, as ``batch_size_curve_``. A None entry (an
        epoch that did not record its size) is skipped. None marks no changes.
    best_validation_score : float, default=None
        The validation R^2 of the model early stopping kept, as
        ``best_validation_score_``: its last epoch with that score is marked. None
        marks none.
    name : str, default=None
        Name of the model, which labels its lines in the legends (as scikit-learn's
        displays do), so that several models drawn on the same Axes can be told
        apart: their colours follow the Axes' colour cycle, one colour a model. None
        labels them by what they show only.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the training loss.
    ax_learning_rate_ : matplotlib Axes
        Axes with the learning rates: the second panel, or a twin of ``ax_``
        when :meth:`plot` was given a single Axes.
    ax_validation_ : matplotlib Axes or None
        Twin of ``ax_`` (right-hand scale) with the validation R^2; None
        without validation scores.
    figure_ : matplotlib Figure
        Figure containing the axes.
    loss_line_ : matplotlib Line2D
        The training loss.
    validation_line_ : matplotlib Line2D or None
        The validation R^2; None without validation scores.
    kept_epoch_marker_ : matplotlib Line2D or None
        A marker on the validation R^2 at the epoch whose model early stopping kept;
        None without ``best_validation_score``.
    learning_rate_line_ : matplotlib Line2D
        The mean learning rate of each epoch.
    fill_between_ : matplotlib PolyCollection or None
        The band between the smallest and the largest learning rate of each
        epoch; None without ``learning_rate_bounds``.
    batch_size_lines_ : list of matplotlib Line2D
        One vertical line on ``ax_`` at each epoch where the batch size
        changes; empty when it never changes or ``batch_size_curve`` is None.
    batch_size_labels_ : list of matplotlib Text
        The new batch size beside each of ``batch_size_lines_``.

    See Also
    --------
    OptimalLRRegressor : The estimator whose record this displays.
    sklearn.model_selection.LearningCurveDisplay : Scores against training set size.

    Notes
    -----
    Epochs are numbered from 1 and cover the model's whole life: with
    ``warm_start=True`` or :meth:`OptimalLRRegressor.partial_fit`, every call
    extends the record (each ``partial_fit`` call is one epoch).

    A batch size change is drawn at the first epoch run at the new size, which
    is compared with the last size recorded before it: epochs without a record
    (run by version 0.1.0) change nothing. The legend has one entry for all the
    changes.

    The learning-rate axis is logarithmic when every rate shown is positive,
    linear otherwise: a batch with a zero gradient records a rate of 0.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_optlr import OptimalLRRegressor, TrainingCurveDisplay
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), OptimalLRRegressor(batch_size=32, random_state=0))
    >>> display = TrainingCurveDisplay.from_estimator(model.fit(X, y))
    >>> len(display.loss_line_.get_ydata()) == model[-1].n_iter_
    True
    >>> display.ax_.get_yscale()
    'log'
    >>> plt.close(display.figure_)
    """

    def __init__(
        self,
        loss_curve,
        learning_rate_curve,
        *,
        learning_rate_bounds=None,
        validation_scores=None,
        batch_size_curve=None,
        best_validation_score=None,
        name=None,
    ):
        self.loss_curve = loss_curve
        self.learning_rate_curve = learning_rate_curve
        self.learning_rate_bounds = learning_rate_bounds
        self.validation_scores = validation_scores
        self.batch_size_curve = batch_size_curve
        self.best_validation_score = best_validation_score
        self.name = name

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        ax=None,
        name=None,
        loss_kw=None,
        validation_kw=None,
        learning_rate_kw=None,
        fill_between_kw=None,
        batch_size_kw=None,
    ):
        """Plot the training curves of a fitted model.

        Parameters
        ----------
        estimator : OptimalLRRegressor, Pipeline, search or TransformedTargetRegressor
            A fitted :class:`OptimalLRRegressor`, or a fitted
            :class:`~sklearn.pipeline.Pipeline` whose last step is one, a fitted
            :class:`~sklearn.model_selection.GridSearchCV` (or another search, with
            ``refit=True``) whose best estimator is one, a fitted
            :class:`~sklearn.compose.TransformedTargetRegressor` around one (its curves
            are in the transformed targets' units), or any nesting of these.
        ax : matplotlib Axes or sequence of two Axes, default=None
            Where to draw; passed to :meth:`plot`, which describes it.
        name : str, default=None
            Name of the model, for the legends' labels (see the class). None labels
            the lines by what they show only.
        loss_kw, validation_kw, learning_rate_kw, fill_between_kw : dict, default=None
            Style of the lines and of the band; passed to :meth:`plot`, which
            describes them.
        batch_size_kw : dict, default=None
            Style of the lines marking the batch size changes; passed to
            :meth:`plot`.

        Returns
        -------
        display : TrainingCurveDisplay
            The display, with its axes and artists set.

        See Also
        --------
        TrainingCurveDisplay.plot : Draw a display built from arrays.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> import numpy as np
        >>> from sklearn_optlr import OptimalLRRegressor, TrainingCurveDisplay
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((500, 3))
        >>> y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(500)
        >>> model = OptimalLRRegressor(early_stopping=True, random_state=0).fit(X, y)
        >>> display = TrainingCurveDisplay.from_estimator(model)
        >>> display.ax_validation_.get_ylabel()
        'Validation R$^2$'
        >>> plt.close(display.figure_)
        """
        regressor = _final_regressor(estimator)
        display = cls(
            loss_curve=regressor.loss_curve_,
            learning_rate_curve=regressor.learning_rate_curve_,
            learning_rate_bounds=regressor.learning_rate_bounds_,
            validation_scores=regressor.validation_scores_,
            # Absent from a model pickled by version 0.1.0, which did not record it.
            batch_size_curve=getattr(regressor, "batch_size_curve_", None),
            best_validation_score=regressor.best_validation_score_,
            name=name,
        )
        return display.plot(
            ax=ax,
            loss_kw=loss_kw,
            validation_kw=validation_kw,
            learning_rate_kw=learning_rate_kw,
            fill_between_kw=fill_between_kw,
            batch_size_kw=batch_size_kw,
        )

    def plot(
        self,
        ax=None,
        *,
        name=None,
        loss_kw=None,
        validation_kw=None,
        learning_rate_kw=None,
        fill_between_kw=None,
        batch_size_kw=None,
    ):
        """Draw the training curves.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of two Axes, default=None
            None creates a figure with two panels side by side: the loss (and
            the validation R^2 on a right-hand scale), then the learning rates.
            Two Axes are used as those two panels. A single Axes holds the
            loss, with the learning rates on a twin right-hand scale (and the
            validation R^2, if any, on a second one, offset to the right).
        name : str, default=None
            Name of the model, for the legends' labels. None uses the name given at
            construction.
        loss_kw : dict, default=None
            Keyword arguments for the loss line (``matplotlib.axes.Axes.plot``).
        validation_kw : dict, default=None
            Keyword arguments for the validation line.
        learning_rate_kw : dict, default=None
            Keyword arguments for the mean learning-rate line.
        fill_between_kw : dict, default=None
            Keyword arguments for the learning-rate band
            (``matplotlib.axes.Axes.fill_between``).
        batch_size_kw : dict, default=None
            Keyword arguments for the lines marking the batch size changes
            (``matplotlib.axes.Axes.axvline``); their labels take the lines'
            colour.

        Returns
        -------
        display : TrainingCurveDisplay
            This display, with ``ax_``, ``ax_learning_rate_``,
            ``ax_validation_``, ``figure_`` and the artists set.

        Raises
        ------
        ImportError
            If matplotlib is not installed.

        See Also
        --------
        TrainingCurveDisplay.from_estimator : Build and draw from a fitted model.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from sklearn_optlr import TrainingCurveDisplay
        >>> display = TrainingCurveDisplay(
        ...     loss_curve=[1.0, 0.1, 0.01],
        ...     learning_rate_curve=[0.5, 0.4, 0.45],
        ...     learning_rate_bounds=[(0.2, 0.9), (0.3, 0.6), (0.4, 0.5)],
        ...     batch_size_curve=[200, 200, 1000],
        ... )
        >>> fig, ax = plt.subplots()
        >>> display = display.plot(ax=ax)  # learning rates on a twin axis
        >>> display.ax_learning_rate_.get_ylabel()
        'Learning rate'
        >>> display.batch_size_labels_[0].get_text()  # the batch grew at epoch 3
        'batch 1,000'
        >>> plt.close(fig)
        """
        plt = _import_pyplot(f"{type(self).__name__}.plot")
        loss, rates, bounds, scores, batch_sizes = self._checked_curves()
        epochs = np.arange(1, loss.size + 1)
        loss_ax, rate_ax, twin = _panels(plt, ax)
        name = self.name if name is None else name
        self._labels = _Labels(name)
        # One colour a model, the next of the loss Axes' cycle: a model's lines share it.
        self._draw_loss(loss_ax, epochs, loss, loss_kw)
        color = self.loss_line_.get_color()
        self._draw_batch_size_changes(loss_ax, batch_sizes, batch_size_kw)
        self._draw_validation(loss_ax, epochs, scores, twin, validation_kw, color)
        self._draw_rates(
            rate_ax, epochs, rates, bounds, twin, learning_rate_kw, fill_between_kw, color
        )
        if twin:
            # Several scales on one panel: colour each label like its line.
            for axes, line in (
                (loss_ax, self.loss_line_),
                (rate_ax, self.learning_rate_line_),
                (self.ax_validation_, self.validation_line_),
            ):
                if line is not None:
                    axes.yaxis.label.set_color(line.get_color())
        self._add_legends(loss_ax, rate_ax, twin)
        _label_epochs(loss_ax, rate_ax)
        self.ax_, self.ax_learning_rate_ = loss_ax, rate_ax
        self.figure_ = loss_ax.figure
        return self

    def _checked_curves(self):
        """The loss, the mean rates, the rates' bounds (or None), the validation
        scores (or None) and the batch sizes (or None; NaN for an epoch without
        one) as float64 arrays, one value (or pair) per epoch."""
        loss = _as_curve(self.loss_curve, "loss_curve")
        n_epochs = loss.size
        rates = _as_curve(self.learning_rate_curve, "learning_rate_curve", n_epochs)
        bounds = None
        if self.learning_rate_bounds is not None:
            bounds = np.asarray(self.learning_rate_bounds, dtype=np.float64)
            if bounds.shape != (n_epochs, 2):
                raise ValueError(
                    f"learning_rate_bounds must have shape ({n_epochs}, 2), one (min, max) pair "
                    f"per epoch; got {bounds.shape}."
                )
        scores = None
        if self.validation_scores is not None:
            scores = _as_curve(self.validation_scores, "validation_scores", n_epochs)
        batch_sizes = None
        if self.batch_size_curve is not None:
            batch_sizes = _as_curve(self.batch_size_curve, "batch_size_curve", n_epochs)
        return loss, rates, bounds, scores, batch_sizes

    def _draw_loss(self, loss_ax, epochs, loss, loss_kw):
        self.loss_line_ = loss_ax.plot(
            epochs,
            loss,
            **_validate_style_kwargs({"label": self._labels.loss}, loss_kw or {}),
        )[0]
        loss_ax.set_yscale("log")
        _plain_log_ticks(loss_ax.yaxis)
        loss_ax.set_xlabel("Epoch")
        loss_ax.set_ylabel("Training loss")

    def _draw_batch_size_changes(self, loss_ax, batch_sizes, batch_size_kw):
        self.batch_size_lines_, self.batch_size_labels_ = [], []
        if batch_sizes is None:
            return
        style = _validate_style_kwargs(
            {"color": "0.5", "linestyle": ":", "linewidth": 1.0, "label": self._labels.batch},
            batch_size_kw or {},
        )
        for epoch, size in _batch_size_changes(batch_sizes):
            line = loss_ax.axvline(epoch, **style)
            style["label"] = "_nolegend_"  # one legend entry for all the changes
            self.batch_size_lines_.append(line)
            self.batch_size_labels_.append(
                loss_ax.text(
                    epoch,
                    0.98,  # near the top, in axes coordinates, clear of the frame
                    f"batch {size:,}",
                    transform=loss_ax.get_xaxis_transform(),
                    rotation=90,
                    horizontalalignment="right",
                    verticalalignment="top",
                    fontsize="small",
                    color=line.get_color(),
                )
            )

    def _draw_validation(self, loss_ax, epochs, scores, twin, validation_kw, color):
        self.ax_validation_ = self.validation_line_ = self.kept_epoch_marker_ = None
        if scores is None:
            return
        self.ax_validation_ = loss_ax.twinx()
        if twin:
            # The learning rates already use the right-hand spine: move this scale out.
            self.ax_validation_.spines["right"].set_position(("axes", 1.15))
        self.validation_line_ = self.ax_validation_.plot(
            epochs,
            scores,
            **_validate_style_kwargs(
                {"color": color, "linestyle": "--", "label": self._labels.validation},
                validation_kw or {},
            ),
        )[0]
        self.ax_validation_.set_ylabel("Validation R$^2$")
        if self.best_validation_score is None:
            return
        kept = np.flatnonzero(scores == self.best_validation_score)
        if kept.size:
            self.kept_epoch_marker_ = self.ax_validation_.plot(
                epochs[kept[-1]], scores[kept[-1]], marker="o", linestyle="none",
                color=self.validation_line_.get_color(), label=self._labels.kept,
            )[0]  # fmt: skip

    def _draw_rates(
        self, rate_ax, epochs, rates, bounds, twin, learning_rate_kw, fill_between_kw, color
    ):
        # On one panel with the loss (twin), dash-dotted to tell it from the loss.
        style = {"color": color, "label": self._labels.rate}
        if twin:
            style["linestyle"] = "-."
        self.learning_rate_line_ = rate_ax.plot(
            epochs, rates, **_validate_style_kwargs(style, learning_rate_kw or {})
        )[0]
        rate_color = self.learning_rate_line_.get_color()
        self.fill_between_ = None
        if bounds is not None:
            self.fill_between_ = rate_ax.fill_between(
                epochs,
                bounds[:, 0],
                bounds[:, 1],
                **_validate_style_kwargs(
                    {"color": rate_color, "alpha": 0.25, "linewidth": 0},
                    {"label": self._labels.band, **(fill_between_kw or {})},
                ),
            )
        shown_rates = rates if bounds is None else np.concatenate([rates, bounds.ravel()])
        if np.all(shown_rates > 0):
            rate_ax.set_yscale("log")
            _plain_log_ticks(rate_ax.yaxis)
        else:
            rate_ax.set_yscale("linear")
        rate_ax.set_xlabel("Epoch")
        rate_ax.set_ylabel("Learning rate")

    def _add_legends(self, loss_ax, rate_ax, twin):
        """One legend per panel, listing the lines of its twin axes too, drawn on the axes
        created last so that no twin's lines cover it."""
        validation = [] if self.ax_validation_ is None else [self.ax_validation_]
        if twin:
            groups = [([loss_ax, *validation, rate_ax], [rate_ax, *validation][-1])]
        else:
            groups = [([loss_ax, *validation], [loss_ax, *validation][-1]), ([rate_ax], rate_ax)]
        for shown, host in groups:
            handles = [h for axes in shown for h in axes.get_legend_handles_labels()[0]]
            host.legend(handles=handles, loc="best")
