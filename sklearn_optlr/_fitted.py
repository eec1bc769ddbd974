# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The fitted attributes of :class:`~sklearn_optlr.OptimalLRRegressor`, read from the
state that training returned."""

import numpy as np

__all__ = ["fitted_attributes", "model_attributes"]


def model_attributes(coef, intercept, single_output):
    """``coef_`` and ``intercept_`` from the solver's 2-D ``coef`` and 1-D ``intercept``:
    1-D and a float where ``y`` was 1-D."""
    if single_output:
        return dict(coef_=coef[0], intercept_=float(intercept[0]))
    return dict(coef_=coef, intercept_=intercept)


def fitted_attributes(state, model, single_output, early_stopped, epochs_before):
    """The estimator's fitted attributes, by name.

    Parameters
    ----------
    state : TrainingState
        After training: its history covers the model's life.
    model : tuple (coef, intercept)
        The model training returned.
    single_output : bool
        Whether ``y`` was 1-D: ``coef_`` 1-D and ``intercept_`` a float then.
    early_stopped : bool
        Whether this fit stopped on held-out data.
    epochs_before : int
        The epochs recorded before this fit.

    Returns
    -------
    dict
    """
    history = state.history
    coef, intercept = model
    scores = history.validation_scores
    # Scores from an earlier early-stopped fit stay, with NaN for the epochs since.
    scored = early_stopped or not np.all(np.isnan(scores))
    return dict(
        **model_attributes(coef, intercept, single_output),
        n_iter_=len(history.loss_curve), t_=history.t,
        loss_curve_=list(history.loss_curve), loss_=history.loss_curve[-1],
        # None under early stopping: the model kept is the best epoch's on held-out data.
        best_loss_=None if early_stopped else min(history.loss_curve),
        learning_rate_curve_=list(history.learning_rate_curve),
        learning_rate_bounds_=list(history.learning_rate_bounds),
        batch_size_curve_=list(history.batch_size_curve),
        validation_scores_=list(scores) if scored else None,
        # The score of the model kept: the best epoch of this fit (a warm-started fit
        # holds out new rows, and keeps only its own best epoch).
        best_validation_score_=max(scores[epochs_before:]) if early_stopped else None,
    )  # fmt: skip
