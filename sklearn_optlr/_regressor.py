"""The scikit-learn estimator: validation, initialisation and fitted attributes only."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._activations import ACTIVATIONS, PiecewiseLinear, initial_intercept, resolve_activation
from ._averaging import IterateAverage
from ._pooling import pooled_window
from ._preconditioning import (
    AUTO_MAX_FEATURES,
    MAX_FEATURES,
    auto_preconditions,
    column_size_spread,
    column_statistics,
    moments,
    preconditioner_from_moments,
)
from ._solver import TrainingHistory, TrainingState, train
from ._step import (
    batch_loss,
    check_sample_weight,
    forward,
    mean_prediction_losses,
    normalised_weights,
    standardised_gradient_gain,
)

__all__ = ["OptimalLRRegressor"]

#: A fit whose training R^2 ends below this warns that it is worse than the mean.
WORSE_THAN_THE_MEAN_R2 = -0.05

#: Without the preconditioner, a fit whose training R^2 ends below this also warns when
#: the columns' sizes are :data:`UNSCALED_SPREAD` or more apart and it is not at a
#: minimum (:data:`CRAWL_GAIN`): plain gradient descent then crawls, and a model that
#: predicts about the mean stops as if converged (R^2 0.0001 to 0.03 where Ridge
#: reaches 0.99, with one constant column of 2024 or one irrelevant feature of size 1000).
LITTLE_BETTER_THAN_THE_MEAN_R2 = 0.1

#: Columns of X (and the intercept's ones) whose root-mean-square sizes are this many
#: times apart give the identity model's Hessian a condition number of at least its
#: square, 1e4: plain gradient descent needs of the order of that many steps.
UNSCALED_SPREAD = 100.0

#: ...and one optimal step along the gradient on standardised (centred and scaled)
#: columns would lower the loss by more than this share, and by more than twice what
#: fitting noise could, (n_features + 1) / n_samples: the fit stopped, but far from a
#: minimum. On the crawls above that step gains 92% to 99.9%; on noise targets (where a
#: low R^2 is all there is) 0.1% to 3%.
CRAWL_GAIN = 0.1


class OptimalLRRegressor(RegressorMixin, BaseEstimator):
    r"""Single-layer piecewise-linear network trained with the optimal learning rate.

    Fits :math:`\hat y = \sigma(W x + b)`, with :math:`\sigma` a piecewise-linear
    activation applied element-wise, by mini-batch gradient descent that minimises

    .. math::

        \frac{1}{2 S} \sum_{i} s_i \lVert \sigma(W x_i + b) - y_i \rVert^2
        + \frac{\alpha}{2} \lVert W \rVert_F^2, \qquad S = \sum_i s_i,

    where :math:`s_i` are the sample weights (1 by default). This is the scaling of
    :class:`~sklearn.linear_model.SGDRegressor`: the identity model with penalty
    ``alpha`` is :class:`~sklearn.linear_model.Ridge` with ``alpha * S``.

    With ``step="optimal"`` every update on a batch with gradient :math:`g` and
    Hessian :math:`H` takes the learning rate

    .. math::

        a^* = \frac{\langle g, g \rangle}{g^\top H g},

    which, because the loss is exactly quadratic inside a linear region of
    :math:`\sigma`, minimises the batch loss along :math:`-g` (see
    :func:`optimal_learning_rate`). The default, ``step="pooled"``, sums both forms
    over the last few batches, so that small noisy batches do not each dictate their
    own step; for large batches it is the same rate. There is no learning rate to
    tune.

    Parameters
    ----------
    activation : str or PiecewiseLinear, default="identity"
        The activation :math:`\sigma`: one of ``"identity"``, ``"relu"``,
        ``"leaky_relu"``, ``"abs"``, ``"hard_tanh"`` (clips to [-1, 1]), or a
        :class:`PiecewiseLinear`. A
        :class:`PiecewiseLinear` gives any continuous piecewise-linear function.
        The default is the one that can fit any real-valued target; ReLU, abs
        and hard tanh restrict the range of the predictions.
    negative_slope : float, default=0.01
        Slope below zero of ``"leaky_relu"``; ignored by other activations.
    step : "pooled", "optimal", "exact" or float, default="pooled"
        How far to go along each search direction :math:`d` (:math:`-g` for
        ``solver="gd"``). ``"optimal"``: the minimiser of the batch loss's
        quadratic model, :math:`a^* = -\langle g, d \rangle / (d^\top H d)`, the
        seed's rate; exact until a pre-activation crosses a kink. ``"pooled"``:
        :math:`\sum_t -\langle g_t, d_t \rangle / \sum_t d_t^\top H_t d_t` over a
        window of recent batches (as many rows as half the model's weights,
        ``n_outputs * (n_features + 1)``, and at least 32 rows and one batch),
        capped at the batch's own :math:`a^*`: the one rate that is best for
        those batches together. One row at a time, :math:`a^*` fits each row
        exactly, noise included (on leaky ReLU's 0.01 piece it moves the
        pre-activation 100 times the row's error, and training diverged); pooled,
        a row no longer dictates its own step. With batches as large as the window,
        and in full batch, it is :math:`a^*` itself; in full batch, where
        :math:`a^*` would raise the training loss (past a kink), the exact step is
        taken instead, so the loss never rises. ``"exact"``:
        the exact minimiser of the batch loss along :math:`d`, found by sorting the
        points where pre-activations cross kinks (the loss is piecewise quadratic
        along the line). A positive float: a fixed learning rate, for ablations
        and comparisons (``solver="gd"`` only).
    solver : {"auto", "gd", "cg"}, default="auto"
        ``"gd"``: mini-batch gradient descent, the seed's method. ``"cg"``:
        full-batch nonlinear conjugate gradients (Polak-Ribiere+, restarted every
        50 steps and whenever the direction does not descend), which does not
        zig-zag on badly conditioned data; needs ``batch_size="full"``.
        ``"auto"``: ``"cg"`` for full-batch ``fit`` with a line-search ``step``,
        ``"gd"`` otherwise (``partial_fit``, mini-batches, a fixed rate).
    average : "auto", bool or int, default="auto"
        Polyak-Ruppert averaging of the iterates; ``coef_`` and ``intercept_``
        then hold the averaged weights. ``True``: average over roughly the last
        half of training (the window restarts at epochs 1, 2, 3, 4, 6, 8, 12,
        ..., keeping the latest start at or before half the epochs run), which
        forgets the early transient and keeps shrinking the noise. An int ``N``:
        average every iterate from the step that brings the training samples seen
        to ``N`` on, as in SGDRegressor.
        ``"auto"``: with mini-batches, the average of ``True``, except that at the
        end of an epoch where the last iterate fits the training data better (the
        iterates still making fast progress, which the average lags), the model
        is the last iterate; in full batch, where the iterates carry no noise to
        average, no averaging. ``partial_fit`` under ``"auto"`` averages as with
        ``True``: its chunks are batches of a longer stream, and the chunk the
        last iterate was just fitted to cannot tell which of the two is better.
    precondition : "auto" or bool, default="auto"
        Descend along the preconditioned gradient :math:`P g` instead of
        :math:`g`, with :math:`P = (C + 10^{-3} \operatorname{diag}(v, 0))^{-1}`:
        :math:`C` the second moment of the rows :math:`[x, 1]` and :math:`v` the
        features' variances (sample-weighted, from all the training rows: on
        100,000 rows, 0.8 to 2 times an epoch's time for 50 to 256 features), so
        that features of every scale and offset are treated alike. :math:`C` is the identity model's
        Hessian, and that of piecewise-linear units up to which rows are active,
        so :math:`P` undoes correlated, unscaled or uncentred features: at batch
        size 256 the convergence benchmark's ill-conditioned and correlated
        problems are within 0.1% of the optimal loss after 2 epochs, against 90%
        and 300% without it. The step along :math:`P g` is chosen by ``step`` as
        along :math:`g`, so it stays the optimal (or exact) one. Each step costs
        ``n_outputs * (n_features + 1)**2`` more operations. ``"auto"``: with a
        step rule that is a line search, when batches have at least as many rows
        as the model has inputs (``n_features + 1``, so the extra cost is at most a
        third of the batch's own), full batch included (as preconditioned
        conjugate gradients), and at most 256 features; never at batch size 1.
        ``True`` applies it everywhere, up to 8,192 features (with a fixed
        ``step``, the rate multiplies :math:`P g`); ``False``: plain gradient
        descent, the seed's method.
        ``warm_start`` keeps the first fit's :math:`P`; ``partial_fit`` computes it
        from all the chunks seen so far (each chunk counting by its rows, sample
        weights being relative within a call).
    batch_size : int, "auto" or "full", default="auto"
        Samples per update. ``"auto"`` is ``min(200, n_samples)``, ``"full"`` the
        whole training set (deterministic gradient descent).
    alpha : float, default=0.0
        Strength of the L2 penalty on ``W`` (the intercept is not penalised).
    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).
    tol : float, default=1e-4
        Training stops when, for ``n_iter_no_change`` consecutive epochs, the
        training loss has not fallen by more than ``tol`` times its best value
        (or, with ``early_stopping``, the validation R^2 has not risen by more
        than ``tol``). With ``tol > 0`` it also stops once the training loss is
        down to rounding errors of the targets (an exact fit). ``tol=0`` runs
        until ``max_iter`` or ``n_iter_no_change`` epochs without a lower loss.
    n_iter_no_change : int, default=10
        Epochs without improvement tolerated before stopping.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop on its
        R^2, and keep the weights of the best epoch.
    validation_fraction : float, default=0.1
        Share of the training data held out with ``early_stopping``.
    shuffle : bool, default=True
        Shuffle the row order at every epoch (indices only; ``X`` is not copied).
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling and the validation split.
    warm_start : bool, default=False
        Continue from the previous solution and extend its record when ``fit``
        is called again: from the solver's last iterate (``coef_`` is the average
        with averaging), or, where ``early_stopping`` kept an earlier epoch's
        model, from that model, as ``partial_fit`` does too.
    verbose : int, default=0
        1: print one line per epoch (epoch, loss, mean learning rate, time). 2 or
        more: also show a progress bar over each epoch's batches, with tqdm when
        it is installed (``pip install "sklearn-optlr[progress]"``), else as
        printed lines (one per twentieth of the epoch).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        The weights ``W``; 1-D when ``y`` was 1-D.
    intercept_ : float or ndarray of shape (n_outputs,)
        The biases ``b``; a float when ``y`` was 1-D.
    n_iter_ : int
        Epochs run over the model's life (``fit`` with ``warm_start`` and
        ``partial_fit`` add to it).
    t_ : int
        Training samples seen by the solver over the model's life.
    loss_ : float
        Training loss of the last epoch, ``loss_curve_[-1]``.
    loss_curve_ : list of float
        Training objective (penalty included), one entry per epoch. With averaging,
        that of the averaged weights on the training data after the epoch; without,
        the mean of the batches' losses, each taken before its update (no extra
        pass). In full batch (no averaging by default) an entry is therefore the
        loss of the weights the epoch started from, one step behind the fitted
        model.
    best_loss_ : float or None
        Lowest value in ``loss_curve_``; None with ``early_stopping``.
    validation_scores_ : list of float or None
        Validation R^2 after each epoch of an early-stopped ``fit`` since the last
        cold start (None if there was none); NaN for the epochs of ``partial_fit``
        calls and of warm-started fits without ``early_stopping``, so that there is
        one entry per epoch, as in ``loss_curve_``.
    best_validation_score_ : float or None
        Validation R^2 of the model kept, the best epoch of the last ``fit``; None
        without ``early_stopping``, and after a ``partial_fit`` call (whose model is
        no epoch that was validated).
    learning_rate_curve_ : list of float
        Mean learning rate taken in each epoch.
    learning_rate_bounds_ : list of tuple (float, float)
        Smallest and largest learning rate taken in each epoch.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` had string column names.

    See Also
    --------
    optimal_learning_rate : The seed's rate for one batch (``step="optimal"``).
    PiecewiseLinear : Custom piecewise-linear activations.
    sklearn.linear_model.SGDRegressor : Linear model by SGD with a tuned schedule.
    sklearn.neural_network.MLPRegressor : Multi-layer networks with tuned optimisers.

    Notes
    -----
    At a kink of :math:`\sigma` the derivative is the right-hand slope. A batch
    on which no unit is active is skipped: its gradient is zero, or the penalty's
    alone, whose optimal step (:math:`1/\alpha`) would zero ``W``. An epoch where
    that happens on every batch ends training with a
    :class:`~sklearn.exceptions.ConvergenceWarning`.

    ``W`` starts at zero and ``b`` inside the steepest piece of :math:`\sigma`
    (ReLU: each output's root mean square target; see the user guide), so every
    unit starts active whatever the scale of the data, and
    the fit is deterministic given ``random_state``: bit-identical from run to run.
    The compiled small-batch path does not depend on the number of BLAS threads;
    full-batch fits and large batches with many outputs use BLAS, whose reductions
    depend on it, so with another thread count (a joblib worker's, say) they can
    differ in the last bits (fix it with ``threadpoolctl`` to reproduce them exactly).
    Sparse ``X`` is used as CSR (CSC is converted once per call); float32 input
    trains in float32.

    With mini-batches, a batch's sample weights are taken relative to the mean
    weight of all the rows, so a batch of light rows moves the model little (with
    the default ``step``; the seed's ``"optimal"`` and ``"exact"`` fit each batch
    along its gradient whatever its total weight). Integer weights equal repeated
    rows exactly in full batch; with mini-batches each batch's loss estimates the
    same objective, but the batches and steps differ, and so do the fits.

    ``early_stopping`` trains on a copy of the rows it does not hold out.

    References
    ----------
    .. [1] "Optimal learning rates in a special class of fully-connected neural
       networks: The single-layer case", blog post, 2024-08-22.

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
    def fit(self, X, y, sample_weight=None):
        """Fit the model by mini-batch gradient descent with the optimal step.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows' losses (see the notes on mini-batches).

        Returns
        -------
        self : OptimalLRRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Make one pass over the given data, continuing from the current weights.

        The first call initialises the model. ``early_stopping`` and the
        stopping rule do not apply: each call is exactly one epoch.

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
        return self._fit(X, y, sample_weight, incremental=True)

    def _fit(self, X, y, sample_weight, incremental):
        # All or nothing: whatever fails (bad input, a diverging run, an interrupt),
        # the model keeps every attribute it had, fitted or not.
        snapshot = dict(self.__dict__)
        try:
            return self._fit_unchecked(X, y, sample_weight, incremental)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise

    def _fit_unchecked(self, X, y, sample_weight, incremental):
        continuing = hasattr(self, "_state") and (incremental or self.warm_start)
        X, y = validate_data(
            self,
            X,
            y,
            reset=not continuing,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        if sparse.issparse(X):
            X = X.tocsr()  # batches are row slices
            if not X.has_canonical_format:
                # The kernels take each stored entry as a whole value: duplicates of an
                # entry would each count in a row's norm. Summed on a copy, not the user's.
                X = X.copy()
                X.sum_duplicates()
        if sparse.issparse(y):
            # validate_data passes a sparse y through with multi_output=True.
            raise TypeError(
                "A sparse y was passed, but dense targets are required. Use y.toarray() to "
                "convert it to a dense array."
            )
        with np.errstate(over="ignore"):
            Y = np.asarray(y, dtype=X.dtype)
        if not np.all(np.isfinite(Y)):
            if not np.all(np.isfinite(np.asarray(y, dtype=np.float64))):
                # validate_data skips its check under sklearn.set_config(assume_finite=True).
                raise ValueError("Input y contains NaN or infinity.")
            # y is finite but overflows X's dtype.
            raise ValueError(
                f"y has values beyond the range of {X.dtype.name}, the dtype of X (largest "
                f"magnitude {np.max(np.abs(y)):.3g}). Pass float64 X, or rescale y."
            )
        single_output = Y.ndim == 1
        Y = Y.reshape(-1, 1) if single_output else Y
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X, X.dtype)
        activation = resolve_activation(self.activation, self.negative_slope)
        with np.errstate(over="ignore"):
            parts = (activation.knots, activation.values, activation.slopes)
            representable = all(np.all(np.isfinite(part.astype(X.dtype))) for part in parts)
        if not representable:
            # Otherwise the kernels would see inf knots and report a divergence.
            raise ValueError(
                f"The activation's knots, values or slopes overflow {X.dtype.name}, the dtype "
                f"of X: {activation!r}. Pass float64 X, or rescale the activation."
            )
        batch_size = self._resolved_batch_size(X.shape[0])
        solver = self._resolved_solver(batch_size, X.shape[0], incremental)
        if batch_size == 1 and self.step in ("optimal", "exact") and sample_weight is not None:
            positive = sample_weight[sample_weight > 0]
            if positive.min() < positive.max():
                warnings.warn(
                    f"With step={self.step!r} and batch_size=1 each step minimises its row's "
                    "loss along its gradient, which the row's weight does not change: sample "
                    "weights other than 0 change no step (only the loss the stopping rule "
                    "reads). Use the default step='pooled', or larger batches.",
                    UserWarning,
                )

        if continuing:
            state = self._state.copy()
            if state.coef.shape[0] != Y.shape[1]:
                raise ValueError(
                    f"y has {Y.shape[1]} outputs but the model was fitted with "
                    f"{state.coef.shape[0]}."
                )
            state.coef = state.coef.astype(X.dtype, copy=False)
            state.intercept = state.intercept.astype(X.dtype, copy=False)
            single_output = self._single_output
        else:
            state = TrainingState(
                coef=np.zeros((Y.shape[1], X.shape[1]), dtype=X.dtype),
                intercept=None,  # set from the training rows' targets, below
                history=TrainingHistory(),
                averager=None,
                rng=np.random.default_rng(check_random_state(self.random_state).randint(2**31)),
            )
        state.averager = self._averager(state.averager, batch_size, X.shape[0], incremental)

        validation = None
        if self.early_stopping and not incremental:
            X, Y, sample_weight, validation = self._split_validation(X, Y, sample_weight, state.rng)
            batch_size = min(batch_size, X.shape[0])
        if state.intercept is None:
            weights = normalised_weights(sample_weight, X.shape[0], np.float64)
            state.intercept = initial_intercept(activation, Y, weights).astype(X.dtype)
        preconditioner = self._preconditioner(state, X, sample_weight, batch_size, incremental)
        # The pooled rate averages out the noise of small batches; a full-batch fit has
        # none, while partial_fit's chunks are batches of a longer stream.
        noiseless = batch_size >= X.shape[0] and not incremental
        window = 1.0 if noiseless else pooled_window(Y.shape[1] * (X.shape[1] + 1), batch_size)
        epochs_before = len(state.history.loss_curve)
        # Python scalars: numpy ones (a grid from an array) would set the precision of
        # float64 arithmetic (np.float32) or wrap in integer arithmetic (np.uint8).
        step = self.step if isinstance(self.step, str) else float(self.step)
        state, coef, intercept, converged = train(
            X, Y, sample_weight, state,
            activation=activation, step=step, batch_size=batch_size, alpha=float(self.alpha),
            conjugate=solver == "cg", max_iter=1 if incremental else int(self.max_iter),
            tol=None if incremental else float(self.tol),
            n_iter_no_change=int(self.n_iter_no_change),
            shuffle=self.shuffle, validation=validation, verbose=self.verbose, window=window,
            preconditioner=preconditioner,
        )  # fmt: skip
        if not converged and not incremental:
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the optimization hasn't "
                "converged yet.",
                ConvergenceWarning,
            )
        if not incremental:
            # Under early stopping the model is the best epoch's, not the last.
            recorded = None if validation else state.history.loss_curve[-1]
            self._warn_if_worse_than_the_mean(
                X, Y, sample_weight, coef, intercept, activation, preconditioner, recorded
            )

        history = state.history
        self._state, self._single_output = state, single_output
        self.coef_ = coef[0] if single_output else coef
        self.intercept_ = float(intercept[0]) if single_output else intercept
        self.n_iter_ = len(history.loss_curve)
        self.t_ = history.t
        self.loss_curve_ = list(history.loss_curve)
        self.loss_ = self.loss_curve_[-1]
        self.learning_rate_curve_ = list(history.learning_rate_curve)
        self.learning_rate_bounds_ = list(history.learning_rate_bounds)
        # Scores from an earlier early-stopped fit stay, with NaN for the epochs since.
        scored = validation or not np.all(np.isnan(history.validation_scores))
        self.validation_scores_ = list(history.validation_scores) if scored else None
        # The score of the model kept: the best epoch of this fit (a warm-started fit
        # splits off new validation rows, and keeps only its own best epoch).
        self.best_validation_score_ = (
            max(history.validation_scores[epochs_before:]) if validation else None
        )
        self.best_loss_ = None if validation else min(history.loss_curve)
        return self

    def _resolved_solver(self, batch_size, n_samples, incremental):
        """The solver to run, after the cross-parameter checks (all of them live here)."""
        full_batch = batch_size >= n_samples
        if self.solver == "cg":
            if not full_batch:
                raise ValueError(
                    "solver='cg' needs the full batch (conjugate directions are built from "
                    f"exact gradients); got batch_size={self.batch_size!r} for {n_samples} "
                    "samples. Use batch_size='full', or solver='gd'."
                )
            if not isinstance(self.step, str):
                raise ValueError(
                    "solver='cg' needs a line search along its directions: use "
                    f"step='pooled', 'optimal' or 'exact', not a fixed step={self.step!r}."
                )
        if self.solver == "auto":
            # A partial_fit call sees one chunk: conjugate directions would not carry over.
            return "cg" if full_batch and not incremental and isinstance(self.step, str) else "gd"
        return self.solver

    def _preconditioner(self, state, X, sample_weight, batch_size, incremental):
        """The preconditioner ``precondition`` asks for, or None.

        ``fit`` computes it from its training rows on the first call that needs it,
        and ``warm_start`` keeps it, so that one fit of several epochs makes the same
        updates as several fits of one. ``partial_fit`` combines the moments of every
        chunk (and of the ``fit`` before it), whether or not the chunk was
        preconditioned, and recomputes ``P`` from them: a first chunk that lacks some
        feature's values must not set ``P`` for the whole stream.
        """
        if isinstance(self.precondition, str):  # "auto"
            # partial_fit keeps the moments of every chunk that a large enough chunk at
            # this batch_size would precondition (they cost a pass over the chunk).
            enabled = auto_preconditions(X, self._resolved_batch_size(np.inf), self.step)
            wanted = auto_preconditions(X, batch_size, self.step)
        else:
            enabled = wanted = bool(self.precondition)  # also numpy booleans, from a grid
            if wanted and X.shape[1] > MAX_FEATURES:
                raise ValueError(
                    f"precondition=True needs dense matrices of (n_features + 1)**2 entries, "
                    f"and X has {X.shape[1]:,} features (at most {MAX_FEATURES:,}): use "
                    "precondition='auto' or False for wide data."
                )
        width = X.shape[1] + 1
        known = state.moments is not None and state.moments.mean.shape[0] + 1 == width
        if incremental and enabled:
            chunk = moments(X, sample_weight)
            state.moments = state.moments + chunk if known else chunk
            if wanted:
                state.preconditioner = preconditioner_from_moments(state.moments)
        elif wanted and (state.preconditioner is None or state.preconditioner.shape[0] != width):
            state.moments = moments(X, sample_weight)
            state.preconditioner = preconditioner_from_moments(state.moments)
        return state.preconditioner if wanted else None

    def _warn_if_worse_than_the_mean(
        self, X, Y, sample_weight, coef, intercept, activation, preconditioner, recorded_loss
    ):
        """Warn when the fit predicts its training targets worse than their mean, or,
        on unscaled features without the preconditioner, little better.

        The stopping rule only sees the loss stop falling: on badly scaled features
        without the preconditioner, plain gradient descent crawls, and the loss can stop
        falling by ``tol`` far above the optimum's, near that of a constant. A low R^2
        alone is no sign of that (targets may be noise), so there the warning also
        needs the columns' sizes to be far apart (:func:`column_size_spread`) and one
        step on standardised columns to lower the loss (:func:`standardised_gradient_gain`).
        ``recorded_loss``, the last epoch's record (penalty included), spares the
        forward pass where it already clears the threshold; it is the loss of the model
        itself with averaging, and of the weights before the last step in full batch, so
        the pass runs wherever the model could be worse. None (early stopping, whose
        model is not the last epoch's) forces the pass.
        """
        weights = normalised_weights(sample_weight, X.shape[0], np.float64)
        mean_loss = float(mean_prediction_losses(Y, weights).sum())
        threshold = WORSE_THAN_THE_MEAN_R2
        if preconditioner is None:
            threshold = LITTLE_BETTER_THAN_THE_MEAN_R2
        if not mean_loss > 0 or (
            recorded_loss is not None and recorded_loss <= (1.0 - max(threshold, 0.0)) * mean_loss
        ):
            return
        output, slope = forward(X, coef, intercept, activation)
        if not np.any(slope):
            return  # every unit flat on every row: train() has said so, and how to fix it
        error = output - Y
        r2 = 1.0 - batch_loss(error, weights, coef, 0.0) / mean_loss
        unscaled = False
        if preconditioner is None and r2 < LITTLE_BETTER_THAN_THE_MEAN_R2:
            sizes, mean, deviation = column_statistics(X, weights)
            spread = column_size_spread(sizes)
            if spread >= UNSCALED_SPREAD:
                gain = standardised_gradient_gain(
                    X, error, slope, weights, coef, self.alpha, mean, deviation
                )
                loss = batch_loss(error, weights, coef, self.alpha)
                # Fitting noise also gains: least squares on pure noise reaches an R^2
                # of about (n_features + 1) / n_samples in-sample.
                noise = 2.0 * (X.shape[1] + 1) / max(np.count_nonzero(weights), 1)
                unscaled = gain > max(CRAWL_GAIN, noise) * loss
        # A margin below 0: a strong penalty and batch noise can leave R^2 a little below.
        if not (r2 < WORSE_THAN_THE_MEAN_R2 or unscaled):
            return
        causes = []
        if preconditioner is None:
            described = (
                f"columns of X whose root-mean-square sizes are up to {spread:.3g} times "
                "apart (the intercept's column of ones included, so offsets count), where "
                f"one step on standardised columns would lower the loss by {gain / loss:.0%}"
                if unscaled
                else "features on very different scales or far from zero"
            )
            remedy = "standardise X (e.g. StandardScaler)"
            if X.shape[1] <= MAX_FEATURES:
                remedy += " or pass precondition=True"
            causes.append(
                f"{described}, which make plain gradient descent crawl (the preconditioner, "
                "precondition='auto', needs batches of at least n_features + 1 = "
                f"{X.shape[1] + 1} rows and at most {AUTO_MAX_FEATURES} features): {remedy}"
            )
        else:
            causes.append("too few epochs, or unscaled X: standardise it (e.g. StandardScaler)")
        if self.alpha:
            causes.append(f"a penalty that dominates the fit (alpha={self.alpha})")
        causes.append("batch noise on small or noisy data (a larger batch_size, or averaging)")
        causes.append("targets outside the activation's range (e.g. negative ones with 'relu')")
        how = "worse than" if r2 < 0 else "little better than"
        warnings.warn(
            f"The fitted model predicts its training targets {how} their mean "
            f"(variance-weighted training R^2 = {r2:.3g}). Likely causes: "
            + "; ".join(causes) + ".",
            ConvergenceWarning,
        )

    def _averager(self, current, batch_size, n_samples, incremental):
        """The iterate averager the ``average`` parameter asks for, kept when it exists."""
        if isinstance(self.average, str):  # "auto"
            # partial_fit's chunks are batches of a longer stream: always averaged. The
            # last iterate has just fitted the chunk, so the chunk cannot tell which of
            # the two is better: only fit keeps the better one. A full-batch fit has no
            # noise to average, also after partial_fit calls or mini-batch fits.
            keep_better = not incremental
            wanted = incremental or batch_size < n_samples
            start_sample = None
        else:
            keep_better = False
            # numpy booleans too (a grid from an array), which `is True` would take for ints.
            is_bool = isinstance(self.average, (bool, np.bool_))
            wanted = bool(self.average) if is_bool else True
            start_sample = None if is_bool else int(self.average)
        if not wanted:
            return None
        if current is not None and current.start_sample == start_sample:
            current.keep_better = keep_better
            return current
        return IterateAverage(start_sample, keep_better)

    def _weights_2d(self, dtype):
        coef = np.array(self.coef_, dtype=dtype, ndmin=2)
        intercept = np.array(self.intercept_, dtype=dtype, ndmin=1)
        return coef, intercept

    def _resolved_batch_size(self, n_samples):
        if self.batch_size == "full":
            return n_samples
        if self.batch_size == "auto":
            return min(200, n_samples)
        # int(): a numpy unsigned or narrow integer (a grid from an array) would wrap
        # in the solver's arithmetic on batch counts.
        return min(int(self.batch_size), n_samples)

    def _split_validation(self, X, Y, sample_weight, rng):
        n_samples = X.shape[0]
        n_validation = int(np.ceil(self.validation_fraction * n_samples))
        if n_validation < 2 or n_samples - n_validation < 1:
            fix = (
                "Use more data or a larger validation_fraction."
                if n_validation < 2
                else "Use a smaller validation_fraction."
            )
            raise ValueError(
                f"early_stopping needs at least 2 validation samples and 1 training sample; "
                f"validation_fraction={self.validation_fraction} of {n_samples} samples "
                f"gives {n_validation} for validation and {n_samples - n_validation} for "
                f"training. {fix}"
            )
        train_rows, validation_rows = train_test_split(
            np.arange(n_samples), test_size=n_validation, random_state=rng.integers(2**31)
        )
        parts = [
            (X[rows], Y[rows], None if sample_weight is None else sample_weight[rows])
            for rows in (train_rows, validation_rows)
        ]
        for (_, _, weights), name in zip(parts, ("training", "validation")):
            if weights is not None and not weights.sum() > 0:
                raise ValueError(
                    f"early_stopping's random split left the {name} rows with zero total "
                    "sample_weight: change random_state or validation_fraction, or give "
                    "more rows a positive weight."
                )
        return *parts[0], parts[1]

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
        # In the wider of the model's and X's dtypes, as Ridge does: a float64 model
        # rounded to float32 X's precision would lose digits silently.
        wide_model = np.asarray(self.coef_).dtype == np.float64
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"],
            dtype=np.float64 if wide_model else [np.float64, np.float32],
        )  # fmt: skip
        coef, intercept = self._weights_2d(X.dtype)
        output, _ = forward(X, coef, intercept, resolve_activation(self.activation, self.negative_slope))
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
        # A single non-affine unit cannot fit centred, linear targets (those of
        # scikit-learn's checks) as well as a linear model: the global optimum of
        # leaky_relu there, found by L-BFGS from 30 starts, has R^2 0.40.
        tags.regressor_tags.poor_score = bool(np.ptp(slopes) > 0)
        return tags
