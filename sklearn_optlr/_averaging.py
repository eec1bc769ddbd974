# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Polyak-Ruppert iterate averaging over a suffix of training.

With mini-batches the optimal step fits each batch greedily, so the iterates
settle into a noise ball around the optimum (normalised LMS behaves the same way on
noisy data). Their average does not: it removes the noise floor with nothing to
tune. Which iterates to average matters. Averaging since the first step drags the
early transient along for many epochs; a fixed one-epoch window stops improving
once an epoch's noise dominates. A *suffix* average, over roughly the last half of
the iterates, does both: it forgets the transient and keeps shrinking the noise.

Within the first epoch only its second half is averaged, for the same reason.
Epochs report the sum of their iterates; :class:`IterateAverage` adds them to a
running total and keeps copies of that total at a few epochs (0, 1, 2, 3, 4, 6,
8, 12, 16, ...: powers of two and three times powers of two), so that the average
over the epochs since the latest checkpoint at or before half the epochs run is a
difference of two totals. The checkpoints no longer reachable are dropped, so the
memory is a handful of copies of the weights whatever the number of epochs.
"""

import copy

import numpy as np

__all__ = ["IterateAverage"]


def _is_checkpoint(epoch):
    """Epochs whose totals are kept: 0, powers of two and three times powers of two."""
    if epoch == 0:
        return True
    core = epoch // 3 if epoch % 3 == 0 else epoch
    return core & (core - 1) == 0


class IterateAverage:
    """Running average of the weights taken by the solver.

    Parameters
    ----------
    start_sample : int or None, default=None
        None: average over the suffix of training described in the module
        docstring. An int: average every iterate from the step that brings the
        training samples seen to this many on (``average=int`` in SGDRegressor).
    keep_better : bool, default=False
        Let the solver use the last iterate instead of the average at the end of
        ``fit`` when it fits the training data better (``average="auto"``).
    """

    def __init__(self, start_sample=None, keep_better=False):
        self.start_sample = start_sample
        self.keep_better = keep_better
        self.n_epochs = 0
        self.total = None  # (sum of coef iterates, sum of intercept iterates, count)
        self.checkpoints = {}

    def first_averaged_step(self, samples_seen, steps, batch_size):
        """Index of the first step of the coming epoch whose iterate is averaged.

        Parameters
        ----------
        samples_seen : int
            Training samples seen before the epoch.
        steps : ndarray of bool, one per batch of the epoch
            Which batches take a step: those that carry weight (a batch of zero-weight
            rows takes none).
        batch_size : int

        Returns
        -------
        int
            0 to average every step; the number of steps or more averages none.
        """
        n_steps = int(np.count_nonzero(steps))
        if self.start_sample is None:
            # The suffix rule inside the first epoch too: its first half is the transient
            # from the initial weights (what a first partial_fit call would average).
            return n_steps // 2 if self.n_epochs == 0 else 0
        if samples_seen >= self.start_sample:
            return 0
        # As in SGDRegressor, the iterate after a step is averaged once the samples seen,
        # that step's included, reach the start: the batch holding the start sample is the
        # first averaged, and the steps before it are those of the earlier batches that
        # carry weight.
        remaining = self.start_sample - samples_seen
        return int(np.count_nonzero(steps[: (remaining - 1) // batch_size]))

    def add_epoch(self, iterate_sum_coef, iterate_sum_intercept, n_iterates):
        """Add one epoch's sum of iterates (in float64) and count."""
        if self.total is None:
            self.total = (np.zeros_like(iterate_sum_coef), np.zeros_like(iterate_sum_intercept), 0)
            if self.start_sample is None:
                self.checkpoints[0] = self.total
        total_coef, total_intercept, count = self.total
        self.total = (
            total_coef + iterate_sum_coef,
            total_intercept + iterate_sum_intercept,
            count + n_iterates,
        )
        self.n_epochs += 1
        if self.start_sample is None:
            if _is_checkpoint(self.n_epochs):
                self.checkpoints[self.n_epochs] = self.total
            # The window's start only moves forward: older totals are never needed again.
            start = self._window_start()
            self.checkpoints = {e: t for e, t in self.checkpoints.items() if e >= start}

    def _window_start(self):
        """The latest kept epoch at or before half the epochs run."""
        return max(epoch for epoch in self.checkpoints if 2 * epoch <= self.n_epochs)

    def average(self, dtype):
        """The averaged weights, or None before any iterate was averaged.

        Returns
        -------
        (coef, intercept) or None
        """
        if self.total is None:
            return None
        total_coef, total_intercept, count = self.total
        if self.start_sample is None:
            start_coef, start_intercept, start_count = self.checkpoints[self._window_start()]
            total_coef = total_coef - start_coef
            total_intercept = total_intercept - start_intercept
            count -= start_count
        if count == 0:
            return None
        return (total_coef / count).astype(dtype), (total_intercept / count).astype(dtype)

    def fresh(self):
        """An averager with the same settings and nothing averaged yet."""
        return IterateAverage(self.start_sample, self.keep_better)

    def copy(self):
        return copy.deepcopy(self)
