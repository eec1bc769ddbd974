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
  could move, and where the model predicts its training targets worse than their mean.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._preconditioning import AUTO_MAX_FEATURES, MAX_FEATURES, column_size_spread, column_statistics
from ._solver import rounding_losses
from ._step import (
    batch_loss,
    forward,
    mean_prediction_losses,
    normalised_weights,
    power_of_two_scale,
    standardised_gradient_gain,
    sum_of_squares,
)

__all__ = [
    "TrainingDivergedError",
    "report",
    "targets_outside_range",
    "warn_before_training",
]

#: Targets outside the activation's range warn when the part of them that no model of
#: this activation can fit (their squared distance to the range) is at least this share
#: of their variance: the range alone then caps the fit's R^2 at 0.9. Noise around a
#: target that touches the range's end (a ReLU teacher's zeros) costs far less.
RANGE_LOSS_SHARE = 0.1

#: A fit whose training R^2 ends below this warns that it is worse than the mean. A
#: margin below 0: a strong penalty and batch noise can leave R^2 a little below.
WORSE_THAN_THE_MEAN_R2 = -0.05

#: Without the preconditioner, a fit whose training R^2 ends below this also warns when
#: the columns' sizes are :data:`UNSCALED_SPREAD` or more apart and it is not at a
#: minimum (:data:`CRAWL_GAIN`): plain gradient descent then crawls, and a model that
#: predicts about the mean stops as if converged.
LITTLE_BETTER_THAN_THE_MEAN_R2 = 0.1

#: Columns of X (and the intercept's ones) whose root-mean-square sizes are this many
#: times apart give the identity model's Hessian a condition number of at least its
#: square, 1e4: plain gradient descent needs of the order of that many steps.
UNSCALED_SPREAD = 100.0

#: ...and one optimal step along the gradient on standardised (centred and scaled)
#: columns would lower the loss by more than this share, and by more than twice what
#: fitting noise could, (n_features + 1) / n_samples: the fit stopped, but far from a
#: minimum.
CRAWL_GAIN = 0.1


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


def warn_before_training(config, name, Y, sample_weight):
    """Warn about what can be read off the data before training; return the targets'
    range cause (:func:`targets_outside_range`), for the warnings after training.

    Parameters
    ----------
    config : SolverConfig
    name, Y
        As :func:`targets_outside_range` takes them.
    sample_weight : ndarray of shape (n_samples,) or None
        None: every row weighs the same.

    Returns
    -------
    str or None
    """
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


def _first(range_cause, message):
    """``message``, led by the targets' range where that was found to be a cause."""
    if range_cause is None:
        return message
    return f"The targets leave the activation's range: {range_cause}. {message}"


def _diverged(status, dtype):
    limit = float(np.sqrt(np.finfo(dtype).max))
    return TrainingDivergedError(
        f"Training diverged in epoch {status.epoch}: the loss, the gradient, the step or "
        "the weights are no longer finite (the update was not kept; the model is as "
        "before this call). With a fixed `step`, lower it; with step='optimal' or "
        f"'exact', rescale X and y (e.g. StandardScaler): squares of values beyond about "
        f"{limit:.0e} overflow {np.dtype(dtype).name}."
    )


def _warn_if_a_fixed_step_raised_the_loss(state, status, config):
    """Warn where a fixed learning rate left the training loss higher than it started.

    The stopping rule sees a rising loss as one that stopped falling, and ends the fit
    as if it had converged; the optimal and exact steps never raise a batch's loss along
    their direction, so only a fixed rate can.
    """
    if isinstance(config.step, str):
        return
    curve = state.history.loss_curve[status.first_epoch - 1 :]
    if len(curve) > 1 and curve[-1] > curve[0]:
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


def _crawl(X, error, slope, weights, coef, alpha):
    """``(spread, gain / loss)`` where plain gradient descent crawls on unscaled columns
    far from a minimum, else None (see :data:`UNSCALED_SPREAD`, :data:`CRAWL_GAIN`)."""
    sizes, mean, deviation = column_statistics(X, weights)
    spread = column_size_spread(sizes)
    if spread < UNSCALED_SPREAD:
        return None
    gain = standardised_gradient_gain(X, error, slope, weights, coef, alpha, mean, deviation)
    loss = batch_loss(error, weights, coef, alpha)
    # Fitting noise also gains: least squares on pure noise reaches an R^2 of about
    # (n_features + 1) / n_samples in-sample.
    noise = 2.0 * (X.shape[1] + 1) / max(np.count_nonzero(weights), 1)
    return (spread, gain / loss) if gain > max(CRAWL_GAIN, noise) * loss else None


def _causes(X, config, preconditioned, crawl, range_cause):
    causes = [range_cause] if range_cause is not None else []
    if preconditioned:
        causes.append("too few epochs, or unscaled X: standardise it (e.g. StandardScaler)")
    else:
        described = "features on very different scales or far from zero"
        if crawl is not None:
            described = (
                f"columns of X whose root-mean-square sizes are up to {crawl[0]:.3g} times "
                "apart (the intercept's column of ones included, so offsets count), where "
                f"one step on standardised columns would lower the loss by {crawl[1]:.0%}"
            )
        remedy = "standardise X (e.g. StandardScaler)"
        if X.shape[1] <= MAX_FEATURES:
            remedy += " or pass precondition=True"
        causes.append(
            f"{described}, which make plain gradient descent crawl (the preconditioner, "
            "precondition='auto', needs batches of at least n_features + 1 = "
            f"{X.shape[1] + 1} rows and at most {AUTO_MAX_FEATURES} features): {remedy}"
        )
    if config.alpha:
        causes.append(f"a penalty that dominates the fit (alpha={config.alpha})")
    causes.append("batch noise on small or noisy data (a larger batch_size, or averaging)")
    if range_cause is None:
        causes.append("targets outside the activation's range (e.g. negative ones with 'relu')")
    return causes


def _warn_if_worse_than_the_mean(
    X, Y, sample_weight, model, config, preconditioned, recorded, range_cause
):
    """Warn when the fit predicts its training targets worse than their mean, or, on
    unscaled features without the preconditioner, little better.

    The stopping rule only sees the loss stop falling: on badly scaled features without
    the preconditioner, plain gradient descent crawls, and the loss can stop falling by
    ``tol`` far above the optimum's. A low R^2 alone is no sign of that (targets may be
    noise), so there the warning also needs the columns' sizes to be far apart and one
    step on standardised columns to lower the loss (:func:`_crawl`). ``recorded``, the
    last epoch's loss (None under early stopping), spares the forward pass where it
    already clears the threshold: the loss of the iterates during the last epoch
    (before the last step in full batch), which the model, their average or the
    better of the two, rarely fits worse.
    """
    weights = normalised_weights(sample_weight, X.shape[0], np.float64)
    mean_loss = float(mean_prediction_losses(Y, weights).sum())
    threshold = WORSE_THAN_THE_MEAN_R2 if preconditioned else LITTLE_BETTER_THAN_THE_MEAN_R2
    if not mean_loss > 0 or (
        recorded is not None and recorded <= (1.0 - max(threshold, 0.0)) * mean_loss
    ):
        return
    coef = model[0]
    output, slope = forward(X, *model, config.activation)
    if not np.any(slope):
        return  # every unit flat on every row: the zero-gradient warning said so
    error = output - Y
    r2 = 1.0 - batch_loss(error, weights, coef, 0.0) / mean_loss
    crawl = None
    if not preconditioned and r2 < LITTLE_BETTER_THAN_THE_MEAN_R2:
        crawl = _crawl(X, error, slope, weights, coef, config.alpha)
    if not (r2 < WORSE_THAN_THE_MEAN_R2 or crawl is not None):
        return
    how = "worse than" if r2 < 0 else "little better than"
    warnings.warn(
        f"The fitted model predicts its training targets {how} their mean "
        f"(variance-weighted training R^2 = {r2:.3g}). Likely causes: "
        + "; ".join(_causes(X, config, preconditioned, crawl, range_cause))
        + ".",
        ConvergenceWarning,
    )


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
        What :func:`warn_before_training` found, named first in any warning.

    Raises
    ------
    TrainingDivergedError
        Where training diverged.
    """
    if status.reason == "diverged":
        raise _diverged(status, X.dtype)
    if status.reason == "zero_gradient":
        why = _why_zero_gradients_stop(X, Y, sample_weight, state.coef, state.intercept, config)
        if why is not None:
            message = f"The gradient was zero on every batch of epoch {status.epoch}: {why}"
            warnings.warn(_first(range_cause, message), ConvergenceWarning)
    if config.incremental:
        return
    _warn_if_a_fixed_step_raised_the_loss(state, status, config)
    if status.reason == "max_iter":
        message = (
            f"Maximum iterations ({config.max_iter}) reached and the optimization hasn't "
            "converged yet."
        )
        warnings.warn(_first(range_cause, message), ConvergenceWarning)
    # Under early stopping the model is the best epoch's, not the last one recorded.
    recorded = None if status.early_stopped else state.history.loss_curve[-1]
    preconditioned = config.precondition and state.preconditioner is not None
    _warn_if_worse_than_the_mean(
        X, Y, sample_weight, model, config, preconditioned, recorded, range_cause
    )
