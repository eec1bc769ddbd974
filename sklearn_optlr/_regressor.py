# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The scikit-learn estimator: parameters, validation and fitted attributes.

Everything else is delegated: :func:`._config.resolve` turns the parameters into the
solver's configuration, :func:`._solver.train` trains, and :mod:`._diagnostics` says
what went wrong.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._activations import ACTIVATIONS, PiecewiseLinear, resolve_activation
from ._callbacks import CallbackSupportMixin, FitTasks
from ._config import resolve
from ._data import held_out_rows, training_arrays
from ._diagnostics import check_before_training, report
from ._fitted import fitted_attributes
from ._solver import start, train
from ._step import check_sample_weight, forward

__all__ = ["OptimalLRRegressor"]


class OptimalLRRegressor(CallbackSupportMixin, RegressorMixin, BaseEstimator):
    r"""Single-layer piecewise-linear network trained with the optimal learning rate.

    Fits :math:`\hat y = \sigma(W x + b)`, with :math:`\sigma` a piecewise-linear
    activation applied element-wise, by gradient descent on

    .. math::

        \frac{1}{2 S} \sum_{i} s_i \lVert \sigma(W x_i + b) - y_i \rVert^2
        + \frac{\alpha}{2} \lVert W \rVert_F^2, \qquad S = \sum_i s_i,

    with sample weights :math:`s_i`. Each step goes to the minimiser of the batch loss
    along its direction: along the gradient, the optimal learning rate
    :math:`a^* = \langle g, g \rangle / (g^\top H g)` of the original post,
    exact inside a linear region of :math:`\sigma` (:func:`optimal_learning_rate`,
    which cites the post).
    There is no learning rate to tune. Read more in the :ref:`User Guide <model>`.

    Parameters
    ----------
    activation : str or PiecewiseLinear, default="identity"
        ``"identity"``, ``"relu"``, ``"leaky_relu"``, ``"abs"``, ``"hard_tanh"``
        (clips to [-1, 1]), or any :class:`PiecewiseLinear`. Choose one whose range
        covers ``y``: ``fit`` warns where it does not (:ref:`activations`).
    negative_slope : float, default=0.01
        Slope below zero of ``"leaky_relu"``; ignored by other activations.
    step : "pooled", "optimal", "exact" or float, default="pooled"
        ``"optimal"``: the seed's rate, the minimiser of the batch loss's quadratic
        model. ``"pooled"``: that rate with its two forms summed over recent small
        batches, so that a noisy row does not set its own step (the optimal step for
        large batches). ``"exact"``: the exact minimiser along the line, from its
        sorted kink crossings. A float: a fixed rate (:ref:`step-rules`).
    solver : {"auto", "gd", "cg"}, default="auto"
        ``"gd"``: gradient descent (the seed's method). ``"cg"``: nonlinear conjugate
        gradients, full batch only (``batch_size="auto"`` then gives it the full batch;
        :ref:`conjugate-directions`). ``"auto"``: ``"cg"`` for a full-batch line-search ``fit``.
    average : "auto", bool or int, default="auto"
        Polyak-Ruppert averaging, held in ``coef_``: ``True`` over roughly the last
        half of training; an int ``N`` from the ``N``-th sample seen, as SGDRegressor.
        ``"auto"``: ``True`` with mini-batches, or the last iterate where it fits
        better at the end of ``fit``; none in full batch (:ref:`iterate-averaging`).
    precondition : "auto" or bool, default="auto"
        Descend along the gradient times the inverse second moment of the rows
        ``[x, 1]`` (lightly regularised), which undoes correlated, unscaled or
        uncentred features; the step along it is still chosen by ``step``.
        ``"auto"``: with a line-search ``step``, batches of at least
        ``n_features + 1`` rows and at most 256 features. See :ref:`preconditioning`.
    batch_size : int, "auto" or "full", default="auto"
        Samples per update. ``"auto"``: ``fit`` starts at 200 (the full batch on up to 400
        rows) and doubles the batch while its gradient's noise outweighs the gradient,
        on to the full batch (:ref:`adaptive-batch-size`); ``partial_fit``, 200.
    alpha : float, default=0.0
        Strength of the L2 penalty on ``W`` (the intercept is not penalised).
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Full batch, line-search ``step``: stop once the last decreases put the minimum
        within about ``tol`` times the loss. Else: after ``n_iter_no_change`` epochs
        without a fall by ``tol`` times the best loss (validation R^2: a rise by ``tol``).
    n_iter_no_change : int, default=10
        Epochs without improvement tolerated before stopping.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (or take ``fit``'s ``X_val``),
        stop on its R^2, and keep the best epoch's model.
    validation_fraction : float, default=0.1
        Share of the training data held out with ``early_stopping``.
    shuffle : bool, default=True
        Shuffle the rows at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling and the validation split.
    warm_start : bool, default=False
        Continue from the previous solution when ``fit`` is called again.
    verbose : int, default=0
        1: one line per epoch; 2 or more: also a progress bar over its batches.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        The weights ``W``; 1-D when ``y`` was 1-D.
    intercept_ : float or ndarray of shape (n_outputs,)
        The biases ``b``; a float when ``y`` was 1-D.
    n_iter_ : int
        Epochs run over the model's life.
    t_ : int
        Training samples seen over the model's life.
    loss_, loss_curve_, best_loss_ : float, list of float, float or None
        Each epoch's training objective, its batches' losses before their updates
        (:ref:`diagnostics`); the last, and the lowest (None with early stopping).
    validation_scores_, best_validation_score_ : list of float or None, float or None
        Validation R^2 per epoch with ``early_stopping``, and that of the model kept.
    learning_rate_curve_, learning_rate_bounds_, batch_size_curve_ : list
        Mean, and smallest and largest, learning rate of each epoch; its batch size.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` had string column names.

    See Also
    --------
    optimal_learning_rate : The seed's rate for one batch.
    sklearn.linear_model.SGDRegressor : Linear model by SGD with a tuned schedule.

    Notes
    -----
    ``fit`` raises :class:`TrainingDivergedError`, a :class:`ValueError`, where the
    loss or the weights stop being finite; a failed call leaves the model as it was.
    Fits are deterministic given ``random_state``; float32 input trains in float32.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_optlr import OptimalLRRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), OptimalLRRegressor(batch_size="full"))
    >>> round(model.fit(X, y).score(X, y), 2)
    0.52
    """

    _parameter_constraints = {
        "activation": [StrOptions(set(ACTIVATIONS)), PiecewiseLinear],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "step": [
            StrOptions({"pooled", "optimal", "exact"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "solver": [StrOptions({"auto", "gd", "cg"})],
        "average": [StrOptions({"auto"}), "boolean", Interval(Integral, 1, None, closed="left")],
        "precondition": [StrOptions({"auto"}), "boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto", "full"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        activation="identity",
        *,
        negative_slope=0.01,
        step="pooled",
        solver="auto",
        average="auto",
        precondition="auto",
        batch_size="auto",
        alpha=0.0,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.activation = activation
        self.negative_slope = negative_slope
        self.step = step
        self.solver = solver
        self.average = average
        self.precondition = precondition
        self.batch_size = batch_size
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the model by gradient descent with the optimal step.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows' losses (see the notes on mini-batches).
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            With ``early_stopping=True``: the rows to stop on, instead of a random
            ``validation_fraction`` of ``X`` (which then all trains), as
            HistGradientBoostingRegressor takes them. In a Pipeline, pass
            ``transform_input=["X_val"]`` to transform them as ``X`` is.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Their targets.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation rows' R^2.

        Returns
        -------
        self : OptimalLRRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, False, (X_val, y_val, sample_weight_val))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Make one pass over the given data, continuing from the current weights.

        The first call initialises the model. The stopping rule does not apply (each
        call is exactly one epoch), and ``early_stopping=True`` raises a ValueError.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, with as many outputs as in earlier calls.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        self : OptimalLRRegressor
            The updated estimator.
        """
        if self.early_stopping:  # as SGDRegressor and MLPRegressor refuse it
            raise ValueError("partial_fit does not support early_stopping=True.")
        return self._fit(X, y, sample_weight, True, (None, None, None))

    def _fit(self, X, y, sample_weight, incremental, given):
        # All or nothing: whatever fails (bad input, a diverging run, an interrupt),
        # the model keeps every attribute it had, fitted or not.
        tasks = FitTasks(self, max_epochs=1 if incremental else self.max_iter)
        snapshot = dict(self.__dict__)
        try:
            return self._fit_unchecked(X, y, sample_weight, incremental, given, tasks)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise

    def _fit_unchecked(self, X, y, sample_weight, incremental, given, tasks):
        continuing = hasattr(self, "_state") and (incremental or self.warm_start)
        # C order (as SGDRegressor): another layout rounds sums, and so fits, differently.
        X, y = validate_data(
            self, X, y, reset=not continuing, accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32], order="C", multi_output=True, y_numeric=True,
        )  # fmt: skip
        X, Y, single_output = training_arrays(X, y)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X, X.dtype)
        previous = self._state if continuing else None
        state = start(previous, Y.shape[1], X.shape[1], X.dtype, self.random_state)
        single_output = self._single_output if continuing else single_output
        X, Y, sample_weight, validation = held_out_rows(self, X, Y, sample_weight, given, state.rng)
        config = resolve(self.get_params(deep=False), X, Y.shape[1], incremental)
        range_cause = check_before_training(config, self.activation, X, Y, sample_weight)
        epochs_before = len(state.history.loss_curve)
        tasks.begin(X, Y, sample_weight, single_output)
        state, model, status = train(
            X, Y, sample_weight, state, config, validation, callbacks=tasks
        )
        report(status, state, model, X, Y, sample_weight, status.config or config, range_cause)
        self._state, self._single_output = state, single_output
        attributes = fitted_attributes(
            state, model, single_output, validation is not None, epochs_before
        )
        for name, value in attributes.items():
            setattr(self, name, value)
        tasks.end()
        return self

    def predict(self, X):
        """Predict with the fitted network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            ``sigma(X W^T + b)``; 1-D when the model was fitted on 1-D ``y``. In the
            wider of the model's and ``X``'s dtypes.
        """
        check_is_fitted(self)
        # As Ridge: a float64 model rounded to float32 X's precision would lose digits.
        wide_model = np.asarray(self.coef_).dtype == np.float64
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"],
            dtype=np.float64 if wide_model else [np.float64, np.float32],
        )  # fmt: skip
        coef = np.array(self.coef_, dtype=X.dtype, ndmin=2)
        intercept = np.array(self.intercept_, dtype=X.dtype, ndmin=1)
        activation = resolve_activation(self.activation, self.negative_slope)
        output, _ = forward(X, coef, intercept, activation)
        return output[:, 0] if self._single_output else output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        try:
            slopes = resolve_activation(self.activation, self.negative_slope).slopes
        except (ValueError, TypeError):  # invalid parameters are reported by fit, not here
            return tags
        # One non-affine unit fits the checks' centred, linear targets worse than a linear
        # model: leaky_relu's global optimum there (L-BFGS, 30 starts) has R^2 0.40.
        tags.regressor_tags.poor_score = bool(np.ptp(slopes) > 0)
        return tags
