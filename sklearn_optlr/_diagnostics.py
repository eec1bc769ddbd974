# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Warnings and errors about a fit: what happened, and what to do about it, from one place.

The solver reports how training ended (:class:`._solver.TrainingStatus`); this module
turns that, and what can be read off the data before training, into the one warning
or error a user sees. Advice that names the estimator's parameters lives here only.

- Before training, :func:`targets_outside_range` compares the targets with the
  activation's range: targets that no model of this activation can reach are the most
  common reason for a poor fit, and the cheapest to detect. Its finding comes first
  in every later warning of the fit.
- After training, :func:`report` raises :class:`TrainingDivergedError` for a diverged
  run, and warns where the stopping rule did not end it (``max_iter``), where no unit
  could move, and where training ended far from a minimum: where one optimal step
  along the preconditioned gradient would still lower the training loss by more than
  ``tol`` and than fitting noise could (:func:`_far_from_a_minimum`).
"""

import warnings

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from ._preconditioning import (
    AUTO_MAX_FEATURES,
    MAX_FEATURES,
    _row_chunks,
    column_size_spread,
    column_statistics,
    precondition,
)
from ._rounding import loss_tie, sum_rounding
from ._solver import rounding_losses
from ._step import (
    batch_loss,
    block_statistics,
    forward,
    mean_prediction_losses,
    normalised_weights,
    power_of_two_scale,
    quadratic_step,
    scaled_direction,
    sum_of_squares,
)

__all__ = [
    "TrainingDivergedError",
    "report",
    "targets_outside_range",
    "check_before_training",
]

#: Targets outside the activation's range warn when the part of them that no model of
#: this activation can fit (their squared distance to the range) is at least this share
#: of their variance: the range alone then caps the fit's R^2 at 0.9. Noise around a
#: target that touches the range's end (a ReLU teacher's zeros) costs far less.
RANGE_LOSS_SHARE = 0.1


class TrainingDivergedError(ValueError, FloatingPointError):
    """Training produced a loss, step or weights that are no longer finite.

    A :class:`ValueError`, as scikit-learn's SGD raises for the same event, so that
    ``except ValueError`` in a model-selection loop catches it; and a
    :class:`FloatingPointError`, as earlier versions raised. The model is left as it
    was before the call.

    See Also
    --------
    OptimalLRRegressor : Raises it from ``fit`` and ``partial_fit``.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn_optlr import OptimalLRRegressor, TrainingDivergedError
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = OptimalLRRegressor(step=1e12, precondition=False)  # a fixed rate, far too large
    >>> try:
    ...     model.fit(X, y)
    ... except ValueError as error:
    ...     print(type(error).__name__)
    TrainingDivergedError
    """


def _activation_name(activation):
    return repr(activation) if isinstance(activation, str) else "this PiecewiseLinear"


def _range_advice(low, high):
    # Targets that are only noise about the range's end are not a reason to switch.
    unless = "unless those targets are noise about the range's end"
    if np.isfinite(low) and np.isfinite(high):
        return (
            f"map y into [{low:g}, {high:g}] (e.g. with sklearn.compose."
            f"TransformedTargetRegressor), or use 'identity', {unless}"
        )
    return (
        "use an activation whose range covers y ('identity', or 'leaky_relu' with "
        f"negative_slope > 0), or shift y, {unless}"
    )


def targets_outside_range(activation, name, Y, weights):
    """Why the targets cannot be fitted by this activation's range, or None.

    ``sigma`` is continuous and piecewise linear, so its range runs from the lowest to
    the highest of its knots' values, and on to infinity on a side where an end piece
    rises or falls. A target outside it leaves at least its squared distance to the
    range in the loss, whatever the weights.

    Parameters
    ----------
    activation : PiecewiseLinear
    name : str or PiecewiseLinear
        The ``activation`` parameter, to name it in the message.
    Y : ndarray of shape (n_samples, n_outputs)
    weights : ndarray of shape (n_samples,)
        Sample weights summing to one.

    Returns
    -------
    str or None
        A sentence naming the share of targets outside the range and what to do, where
        their distance to the range is at least :data:`RANGE_LOSS_SHARE` of their
        variance (for some output).
    """
    slopes, values = activation.slopes, activation.values
    low = -np.inf if slopes[0] > 0 or slopes[-1] < 0 else values.min()
    high = np.inf if slopes[0] < 0 or slopes[-1] > 0 else values.max()
    if low == -np.inf and high == np.inf:
        return None
    Y = Y.astype(np.float64, copy=False)
    below, above = Y < low, Y > high
    # Both losses are squares: taken on y and the bounds divided by a power of two near
    # their size, so that targets of 1e200 neither overflow nor change the ratio.
    sizes = np.abs([bound for bound in (low, high) if np.isfinite(bound)])
    inverse = power_of_two_scale(max(np.abs(Y).max(initial=0.0), sizes.max()))[1]
    scaled = Y * inverse
    distance = np.where(below, low * inverse - scaled, 0.0)
    distance += np.where(above, scaled - high * inverse, 0.0)
    unavoidable = 0.5 * (weights @ (distance * distance))
    variance = mean_prediction_losses(scaled, weights)
    # A constant target outside the range has no variance, and cannot be fitted at all.
    failing = np.flatnonzero((unavoidable > 0) & (unavoidable >= RANGE_LOSS_SHARE * variance))
    if failing.size == 0:
        return None
    output = failing[np.argmax(unavoidable[failing])]
    sides = [
        f"{share:.0%} of y is {where} {bound:g}"
        for share, where, bound in (
            (weights @ below[:, output], "below", low),
            (weights @ above[:, output], "above", high),
        )
        if share > 0
    ]
    which = f" (output {output})" if Y.shape[1] > 1 else ""
    if np.isfinite(low) and np.isfinite(high):
        predicts = f"values in [{low:g}, {high:g}]"
    else:
        predicts = f"values >= {low:g}" if np.isfinite(low) else f"values <= {high:g}"
    return (
        f"{' and '.join(sides)}{which}, and {_activation_name(name)} predicts only "
        f"{predicts}: {_range_advice(low, high)}"
    )


def check_before_training(config, name, X, Y, sample_weight):
    """Raise or warn about what can be read off the data before training; return the
    targets' range cause (:func:`targets_outside_range`), for the warnings after training.

    Parameters
    ----------
    config : SolverConfig
    name, Y
        As :func:`targets_outside_range` takes them.
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
        None: every row weighs the same.

    Returns
    -------
    str or None

    Raises
    ------
    ValueError
        Where every entry of ``X`` that is not zero is below the square root of
        float64's smallest normal number in magnitude (about 1.5e-154), and, with
        ``tol > 0``, every target likewise.
    """
    _check_feature_scale(X)
    if config.tol:  # the stopping rule reads the training loss
        _check_target_scale(Y)
    if config.batch_size == 1 and config.step in ("optimal", "exact") and sample_weight is not None:
        positive = sample_weight[sample_weight > 0]
        if positive.min() < positive.max():
            warnings.warn(
                f"With step={config.step!r} and batch_size=1 each step minimises its row's "
                "loss along its gradient, which the row's weight does not change: sample "
                "weights other than 0 change no step (only the loss the stopping rule "
                "reads). Use the default step='pooled', or larger batches.",
                UserWarning,
            )
    weights = normalised_weights(sample_weight, Y.shape[0], np.float64)
    cause = targets_outside_range(config.activation, name, Y, weights)
    if cause is not None:
        warnings.warn(f"The targets leave the activation's range: {cause}.", UserWarning)
    return cause


def _largest_magnitude(values):
    """The largest magnitude among ``values`` (0 for none), by max and -min: no
    temporary the size of ``values``."""
    return float(max(values.max(), -values.min())) if values.size else 0.0


def _refuse_underflowing_squares(largest, what, consequence):
    """Raise where ``largest`` is not zero but its square underflows float64."""
    smallest_square_root = np.sqrt(np.finfo(np.float64).tiny)
    if 0.0 < largest < smallest_square_root:
        raise ValueError(
            f"The largest {what} is {largest:.3g} in magnitude: squares of values below "
            f"{smallest_square_root:.2g} underflow float64, so {consequence}"
        )


def _check_feature_scale(X):
    """Refuse features so small that the square of the largest underflows float64.

    Curvatures along every direction of the weights are sums of squares of the
    features, in float64 whatever ``X``'s dtype (float32's range ends well above this
    scale); where even the largest entry's square underflows, every curvature is 0 and no
    step is ever taken, and the fit would return the targets' mean as if it had
    converged. Zero features (a column the intercept covers) are not small features.
    """
    _refuse_underflowing_squares(
        _largest_magnitude(X.data if sparse.issparse(X) else X), "feature value of X",
        "no step can be computed and the fit would stay at its start. Rescale X, e.g. "
        "with StandardScaler.",
    )  # fmt: skip


def _check_target_scale(Y):
    """Refuse targets so small that the square of the largest underflows float64, for
    a fit whose stopping rule reads the training loss.

    The loss is a sum of squared residuals of the targets' size: below this scale it
    underflows to 0 at the start, which the stopping rule read as an exact fit, and the
    fit ended after one epoch, far from least squares and without a word. The steps
    themselves are ratios of forms that scale exactly, so ``tol=0`` trains. All-zero
    targets are fitted exactly, not small."""
    _refuse_underflowing_squares(
        _largest_magnitude(Y), "target of y",
        "the training loss that tol is measured on cannot be. Rescale y (multiply it by "
        "a power of ten, and divide the predictions by it), or pass tol=0 and set "
        "max_iter.",
    )  # fmt: skip


def _first(range_cause, message):
    """``message``, led by the targets' range where that was found to be a cause."""
    if range_cause is None:
        return message
    return f"The targets leave the activation's range: {range_cause}. {message}"


def _diverged(status, X):
    values = X.data if sparse.issparse(X) else X
    if not np.all(np.isfinite(values)):
        # Only where scikit-learn's check was skipped (sklearn.set_config(assume_finite=
        # True)): the data, not the step, made the loss non-finite.
        return TrainingDivergedError(
            f"Training diverged in epoch {status.epoch} because X contains NaN or "
            "infinity (scikit-learn's check is off under assume_finite=True); the model "
            "is as before this call. Remove or impute those values."
        )
    dtype = X.dtype
    limit = float(np.sqrt(np.finfo(dtype).max))
    return TrainingDivergedError(
        f"Training diverged in epoch {status.epoch}: the loss, the gradient, the step or "
        "the weights are no longer finite (the update was not kept; the model is as "
        "before this call). With a fixed `step`, lower it; with step='optimal' or "
        f"'exact', rescale X and y (e.g. StandardScaler): squares of values beyond about "
        f"{limit:.0e} overflow {np.dtype(dtype).name}."
    )


def _warn_if_a_fixed_step_raised_the_loss(state, status, config, n_samples):
    """Warn where a fixed learning rate left the training loss higher than it started.

    The stopping rule sees a rising loss as one that stopped falling, and ends the fit
    as if it had converged; the optimal and exact steps never raise a batch's loss along
    their direction, so only a fixed rate can.
    """
    if isinstance(config.step, str):
        return
    curve = state.history.loss_curve[status.first_epoch - 1 :]
    # A rise within the sums' rounding is no rise (a converged model refitted rose by
    # one unit in the last place, and was told its step was too large).
    if len(curve) > 1 and curve[-1] > curve[0] * (1.0 + loss_tie(n_samples)):
        warnings.warn(
            f"The training loss rose from {curve[0]:.3g} to {curve[-1]:.3g} during this fit: "
            f"the fixed step={config.step} is too large for these data. Lower it, or use "
            "step='pooled' (the default), which takes the optimal step and needs no tuning.",
            ConvergenceWarning,
        )


def _why_zero_gradients_stop(X, Y, sample_weight, coef, intercept, config):
    """Why an epoch of zero data gradients (no step taken) ended training, or None.

    A batch's data gradient is zero where every unit of a row of positive weight is flat
    or predicts its target exactly, and such a batch takes no step (following the
    penalty alone would be a step of ``1 / alpha``). With no unit both flat and wrong,
    the data are fitted exactly: nothing to report unless a penalty that still matters
    (above the targets' rounding level) pulls on the weights.
    """
    output, slope = forward(X, coef, intercept, config.activation)
    wrong = (slope == 0) & (output != Y)
    weights = normalised_weights(sample_weight, X.shape[0], np.float64)
    if np.any(wrong & (weights > 0)[:, None]):
        return (
            "every unit is inactive (its activation is flat) on the training rows it "
            "mispredicts, so training cannot progress. Standardise X (e.g. StandardScaler), "
            "check that y lies in the activation's range (e.g. hard_tanh predicts only "
            "[-1, 1]), or use an activation with no flat piece such as 'leaky_relu' or "
            "'identity'."
        )
    penalty = 0.5 * config.alpha * sum_of_squares(coef)
    if not penalty > float(rounding_losses(Y, weights).sum()):
        return None
    return (
        "every row is fitted exactly or sits on a flat piece of the activation, so no "
        f"step was taken, although the penalty (alpha={config.alpha}) still pulls on the "
        "weights: the model is not the penalised optimum. Refit from a cold start "
        "(warm_start=False), or use an activation with no flat piece such as "
        "'leaky_relu' or 'identity'."
    )


def _standardising_direction(X, weights, grad_coef, grad_intercept):
    """Steepest descent on the columns ``(x_j - mean_j) / spread_j`` (what standardising
    ``X`` does), mapped back to the model's weights; and the spread of the columns'
    root-mean-square sizes (:func:`._preconditioning.column_size_spread`).

    There ``dL/dw'_j = (g_j - mean_j g_b) / spread_j``, and the step ``-g'`` moves the
    model's weights by ``d_j = -(g_j - mean_j g_b) / spread_j**2`` and ``d_b = -g_b -
    sum_j d_j mean_j``: the centred form of :func:`._preconditioning.precondition` with
    the covariance's diagonal. Columns of spread 0 (constant ones, which the intercept
    covers) stay where they are.
    """
    sizes, mean, spread = column_statistics(X, weights)
    grad_intercept = grad_intercept.astype(np.float64)
    centred = grad_coef.astype(np.float64) - grad_intercept[:, None] * mean
    varying = spread > 0
    inverse = np.where(varying, 1.0 / np.where(varying, spread, 1.0), 0.0)
    # Divided by the spread twice rather than by its square, which under- or overflows
    # for columns of size 1e-160 or 1e160.
    direction_coef = -(centred * inverse) * inverse
    direction_intercept = -grad_intercept - direction_coef @ mean
    dtype = grad_coef.dtype
    direction = (direction_coef.astype(dtype), direction_intercept.astype(dtype))
    return direction, column_size_spread(sizes)


def _magnitudes(X, coef, intercept):
    """``|X| |W|^T + |b|``: the sizes of the terms summed into each pre-activation, in
    float64, without a copy of ``X``."""
    magnitude = np.abs(coef).T.astype(np.float64)
    if sparse.issparse(X):
        product = abs(X) @ magnitude
    else:
        product = np.empty((X.shape[0], coef.shape[0]))
        for rows in _row_chunks(*X.shape):
            product[rows] = np.abs(X[rows]) @ magnitude
    return product + np.abs(intercept)


class _OneStep:
    """Optimal steps from a fitted model on the whole training objective, and their gains.

    Holds the model's :func:`._step.block_statistics` on all the training rows (two
    passes over ``X``); each :meth:`gain` and :meth:`rounding` costs one more. The loss
    before and after a step is evaluated in float64 from the same pre-activations.

    Attributes
    ----------
    loss : float
    gradient : tuple (ndarray, ndarray)
    """

    def __init__(self, X, Y, weights, model, config):
        coef, intercept = model
        self.X, self.Y, self.weights, self.model = X, Y, weights, model
        self.activation, self.alpha = config.activation, config.alpha
        self.block = block_statistics(
            X, Y, weights.astype(coef.dtype), coef, intercept, self.activation, self.alpha
        )
        self.gradient = self.block.grad_coef, self.block.grad_intercept
        self.pre_activation = np.asarray(self.block.pre_activation, dtype=np.float64)
        self.loss = self._loss(self.pre_activation, coef.astype(np.float64))

    def _loss(self, pre_activation, coef):
        output, _ = self.activation.value_and_slope(pre_activation)
        return batch_loss(output - self.Y, self.weights, coef, self.alpha)

    def rounding(self):
        """``1/2 sum_i w_i ||delta_i||^2`` for a bound ``delta`` on the rounding errors of
        the pre-activations, each a sum of ``n_features + 1`` terms
        (:func:`._rounding.sum_rounding`). Measured from pre-activations off by
        ``delta``, a step can seem to gain at most this (by undoing ``delta``): a gain up
        to it can be rounding alone."""
        coef, intercept = self.model
        eps = float(np.finfo(coef.dtype).eps)
        bound = sum_rounding(self.X.shape[1] + 1, eps) * _magnitudes(self.X, coef, intercept)
        return batch_loss(bound, self.weights, coef, 0.0)

    def gain(self, direction_coef, direction_intercept):
        """How much the optimal step along the direction lowers the loss: the minimiser
        of the loss's quadratic model (the step ``step="optimal"`` takes), evaluated on
        the loss itself; 0 where the direction does not descend or the step does not
        lower the loss."""
        direction_coef, direction_intercept, _ = scaled_direction(
            direction_coef, direction_intercept
        )
        along = self.block.along(self.X, direction_coef, direction_intercept)
        step = quadratic_step(along.slope, along.curvature)
        if not step:
            return 0.0
        change = np.asarray(along.change, dtype=np.float64)
        coef = self.model[0].astype(np.float64) + step * direction_coef.astype(np.float64)
        return max(self.loss - self._loss(self.pre_activation + step * change, coef), 0.0)


def _far_from_a_minimum(X, Y, sample_weight, model, state, config, n_steps):
    """``(cause, finding, remedy)`` where training ended far from a minimum, else None;
    ``cause`` and ``remedy`` are None where no cause more specific than stopping too
    early was found.

    The rule: one optimal step from the fitted model along the gradient of the whole
    training objective, preconditioned as the fit could have been (by the fit's own
    preconditioner, or, where it had none, as standardising ``X`` would), lowers the
    loss by more than ``tol`` of it, and by more than fitting noise could. On pure noise
    targets the share of their variance that least squares gains is a chi-square of
    ``k = n_features + 1`` degrees of freedom over ``n_samples``: ``k / n_samples`` in
    expectation, with a standard deviation of ``sqrt(2 k) / n_samples``; the bound is
    the expectation plus two of those. Below the first, the stopping rule was right to
    stop; below the second, the model is no further from the minimum than noise could
    place it. The gain must also exceed what the rounding of
    the pre-activations alone can show (:meth:`_OneStep.rounding`). The whole objective's
    gradient carries no batch noise: an averaged mini-batch model gains only by its
    own distance from the minimum. The last iterate of mini-batches without averaging
    sits at the batches' noise floor by design: each step fits its own batch, as
    normalised LMS at its full step does, whose misadjustment is 1 (an excess loss as
    large as the minimum's). So there the step must halve the loss: it is then more
    than twice what one step reaches, beyond that floor.

    Without the preconditioner, the cause named is the columns' scales and offsets
    where their root-mean-square sizes (the intercept's ones included) are ``S`` apart:
    the identity model's Hessian then has a condition number of at least ``S**2``, and
    the cause is named where plain gradient descent on that condition number needs
    more steps for a tenfold decrease of the loss than the fit took
    (:func:`_steps_per_tenfold`).

    Costs three passes over ``X`` and ``n_outputs (n_features + 1)**2`` for the fit's
    preconditioner; without one, three more for the columns' statistics; one more to
    bound the rounding where the step gains enough to warn. The standardising
    preconditioner is diagonal, so no width is skipped: it costs ``n_features`` per
    output where ``P`` would cost ``n_features**2`` (and is refused beyond
    :data:`MAX_FEATURES` features, not formed by "auto" beyond
    :data:`AUTO_MAX_FEATURES`).
    """
    weights = normalised_weights(sample_weight, X.shape[0], np.float64)
    n_weights, n_rows = X.shape[1] + 1, np.count_nonzero(weights)
    noise = (n_weights + 2.0 * np.sqrt(2.0 * n_weights)) / n_rows
    share_bound = max(0.0 if config.tol is None else config.tol, noise)
    if config.averaging is None and config.batch_size < X.shape[0]:
        share_bound = max(share_bound, 0.5)  # the last iterate's noise floor (above)
    if share_bound >= 1.0:
        return None  # as many weights as rows: noise alone can be fitted exactly
    with np.errstate(over="ignore", invalid="ignore"):
        one_step = _OneStep(X, Y, weights, model, config)
        if not (0.0 < one_step.loss < np.inf):
            return None
        # A loss down to the targets' rounding is an exact fit, whatever share of it a
        # step could still gain (a perfect clip was told it stopped far from a minimum).
        if one_step.loss <= float(np.sum(rounding_losses(Y, weights))):
            return None
        preconditioned = config.precondition and state.preconditioner is not None
        grad_coef, grad_intercept = one_step.gradient
        if preconditioned:
            direction = precondition(-grad_coef, -grad_intercept, state.preconditioner)
        else:
            direction, spread = _standardising_direction(X, weights, grad_coef, grad_intercept)
        gain = one_step.gain(*direction)
        if not (gain > share_bound * one_step.loss and gain > one_step.rounding()):
            return None
        along = "preconditioned" if preconditioned else "standardised"
        finding = (
            f"one optimal step along the {along} gradient would lower the training loss by "
            f"{gain / one_step.loss:.3%} (more than tol={config.tol:g} of it, and than fitting "
            f"noise could, {noise:.2%})"
        )
    steps = None if preconditioned else _steps_per_tenfold(spread * spread)
    if steps is None or not steps > n_steps:
        return None, finding, None
    remedy = "standardise X (e.g. StandardScaler)"
    if X.shape[1] <= MAX_FEATURES:
        remedy += (
            " or pass precondition=True (precondition='auto' preconditions only batches of "
            f"at least n_features + 1 = {X.shape[1] + 1} rows, with at most "
            f"{AUTO_MAX_FEATURES} features)"
        )
    cause = (
        "columns of X on very different scales or far from zero (their root-mean-square "
        f"sizes, the intercept's ones included, are up to {spread:.3g} times apart, so plain "
        f"gradient descent needs about {steps:.3g} steps for each tenfold decrease of the "
        f"loss; it took {n_steps})"
    )
    return cause, finding, remedy


def _steps_per_tenfold(condition):
    """Steps of steepest descent with the optimal step that a quadratic of condition
    number ``condition`` needs, at worst, to lower its loss tenfold: each step
    multiplies it by at most ``((condition - 1) / (condition + 1))**2`` (Kantorovich's
    bound). Below one step for nearly equal scales, about ``0.58 condition`` for large
    ones, where the columns' scales, not the number of steps, hold the fit back."""
    if not condition > 1.0:
        return 0.0  # equal scales: one step reaches the minimum
    per_step = 2.0 * np.log1p(2.0 / (np.float64(condition) - 1.0))
    return np.inf if per_step == 0.0 else float(np.log(10.0) / per_step)


def _sentence(text):
    return text[0].upper() + text[1:]


def _warn_if_far_from_a_minimum(status, X, Y, sample_weight, model, state, config, range_cause):
    """Warn at ``max_iter``, and where training stopped far from a minimum
    (:func:`_far_from_a_minimum`), naming the cause found first."""
    sizes = state.history.batch_size_curve[status.first_epoch - 1 :]
    n_steps = sum(-(-X.shape[0] // size) for size in sizes)
    far = _far_from_a_minimum(X, Y, sample_weight, model, state, config, n_steps)
    if status.reason == "max_iter":
        ended = (
            f"Maximum iterations ({config.max_iter}) reached and the optimization hasn't "
            "converged yet"
        )
        remedy = "raise max_iter"
    elif far is not None:
        ended = "Training stopped far from a minimum"
        remedy = "lower tol or raise n_iter_no_change"
    else:
        return
    message = f"{ended}."
    if far is not None:
        cause, finding, specific = far
        # batch_size="auto" grows its batches itself: nothing for the user to do there.
        if config.batch_size < X.shape[0] and not config.larger_batches and specific is None:
            remedy += "; larger batches also help"
        message = f"{ended}: {finding}. {_sentence(specific or remedy)}."
        if cause is not None:
            message = f"{_sentence(cause)}. {message}"
    warnings.warn(_first(range_cause, message), ConvergenceWarning)


def report(status, state, model, X, Y, sample_weight, config, range_cause=None):
    """Raise or warn about how training ended.

    Parameters
    ----------
    status : TrainingStatus
        How :func:`._solver.train` ended.
    state : TrainingState
        The state it returned: its iterate, preconditioner and record.
    model : tuple (coef, intercept) or None
        The fitted model (None where training diverged).
    X, Y, sample_weight
        The training rows.
    config : SolverConfig
    range_cause : str or None
        What :func:`check_before_training` found, named first in any warning.

    Raises
    ------
    TrainingDivergedError
        Where training diverged.
    """
    if status.reason == "diverged":
        raise _diverged(status, X)
    if status.reason == "zero_gradient":
        why = _why_zero_gradients_stop(X, Y, sample_weight, state.coef, state.intercept, config)
        if why is not None:
            message = f"The gradient was zero on every batch of epoch {status.epoch}: {why}"
            warnings.warn(_first(range_cause, message), ConvergenceWarning)
    if config.incremental:
        return
    _warn_if_a_fixed_step_raised_the_loss(state, status, config, X.shape[0])
    if status.reason in ("stopped", "max_iter"):
        _warn_if_far_from_a_minimum(status, X, Y, sample_weight, model, state, config, range_cause)
