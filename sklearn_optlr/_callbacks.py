# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""scikit-learn's callbacks (:mod:`sklearn.callback`, scikit-learn 1.9 and later) on
:class:`~sklearn_optlr.OptimalLRRegressor`.

A fit is one callback task and each epoch one subtask, so that ``ProgressBar`` counts
epochs and ``ScoringMonitor`` scores the model each epoch leaves. Batches are not
subtasks: they run inside compiled loops, and a hook per batch would leave the loop at
every step. With an older scikit-learn the estimator has no ``set_callbacks`` and fits
without callbacks.
"""

from ._fitted import model_attributes

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9

    class CallbackSupportMixin:
        """scikit-learn before 1.9 has no callbacks: nothing to add."""


__all__ = ["NO_CALLBACKS", "CallbackSupportMixin", "FitTasks"]


class FitTasks:
    """The callback tasks of one ``fit`` or ``partial_fit`` call.

    Open it before the call's snapshot of the estimator is taken: scikit-learn tears the
    callbacks down after the call only where the context it set on the estimator is
    still there, and a failed call restores the snapshot.

    Parameters
    ----------
    estimator : OptimalLRRegressor
    max_epochs : int
        The most epochs the call runs (each ``partial_fit`` call is one).
    """

    def __init__(self, estimator, max_epochs):
        self._estimator = estimator
        self._context = None
        if hasattr(estimator, "_init_callback_context"):
            self._context = estimator._init_callback_context(max_subtasks=max_epochs)
        self._epoch = None
        self._data = {}
        self._single_output = None

    def begin(self, X, Y, sample_weight, single_output):
        """Begin the call's task on its training rows (the validation rows held out)."""
        if self._context is None:
            return
        self._single_output = single_output
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        # ``y`` as the estimator's predict returns it, so that scorers compare alike.
        self._data = dict(X=X, y=Y[:, 0] if single_output else Y, metadata=metadata)
        self._context.call_on_fit_task_begin(estimator=self._estimator, **self._data)

    def begin_epoch(self, model):
        """Begin an epoch's subtask from ``model``, the (coef, intercept) it starts at."""
        if self._context is None:
            return
        self._epoch = self._context.subcontext(task_name="epoch")
        self._epoch.call_on_fit_task_begin(
            estimator=self._estimator, **self._data, reconstruction_attributes=self._fitted(model)
        )

    def end_epoch(self, model):
        """End the epoch's subtask with the model it leaves; True where a callback asks
        to stop training."""
        if self._context is None:
            return False
        return self._epoch.call_on_fit_task_end(
            estimator=self._estimator, **self._data, reconstruction_attributes=self._fitted(model)
        )

    def end(self):
        """End the call's task; the estimator is fitted by then."""
        if self._context is not None:
            self._context.call_on_fit_task_end(
                estimator=self._estimator, **self._data, reconstruction_attributes={}
            )

    def _fitted(self, model):
        # Evaluated only where a callback asks for a fitted estimator, and copied: the
        # training arrays change in place at the next step.
        def attributes():
            coef, intercept = (part.copy() for part in model)
            single = self._single_output
            return {**model_attributes(coef, intercept, single), "_single_output": single}

        return attributes


#: Tasks without a callback context, whose hooks do nothing: training outside an estimator.
NO_CALLBACKS = FitTasks(None, max_epochs=0)
