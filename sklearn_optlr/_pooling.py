# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The pooled learning rate: the optimal rate of the recent batches taken together.

One row at a time, the seed's optimal rate ``<g, g> / (g^T H g)`` is the normalised-LMS
step: it fits the row exactly, noise included. On a piece of slope ``s`` it moves the
pre-activation by ``1 / s`` times the row's error (100 times on leaky ReLU's default
0.01 piece), so noisy rows there throw the weights far off, and training diverged.

The pooled rule keeps the seed's two quadratic forms but sums them over a window of
recent batches: ``rate = sum_t <g_t, g_t> / sum_t g_t^T H_t g_t`` is the one learning
rate that minimises the sum of those batches' quadratic models, each along its own
gradient. A row on a shallow piece has small forms in both, so it no longer dictates
its own step. The step is also never longer than the batch's own optimal rate, so
within the current linear region the batch loss never increases.

The window covers ``POOLED_WINDOW_PER_WEIGHT`` times the number of weights
``n_outputs * (n_features + 1)`` rows, about the rows it takes for rank-one updates to
have moved most directions of the weights, and at least ``POOLED_MIN_ROWS`` rows, the
batch size from which the seed's rate (with averaging) met its targets on every
problem of our convergence benchmark. In batches that is at least one, where the rule
is the seed's. The sums are running means, cumulative over the first ``window``
batches and then exponential with weight ``1 / window`` on the newest, so the first
step of a fit is the seed's and the memory of early, large gradients fades. A batch
counts in proportion to its rows: the last batch of an epoch, often a few rows, would
otherwise weigh as much as a full one, and at a window of one batch it would take its
own rate, where one row on leaky ReLU's 0.01 piece moves the weights by 100 times its
error (the reason for the pooled rule above).

Scale safety: the kernels work on the gradient divided by a power of two (see
:mod:`._step`), and the forms of different batches can differ by hundreds of orders of
magnitude at extreme feature scales, so the memory keeps its sums as mantissas of a
shared power of two. Plain Python on scalars and a small float64 array, so the
compiled kernels use the same function.
"""

import math

import numpy as np

__all__ = [
    "POOLED_MIN_ROWS",
    "POOLED_WINDOW_PER_WEIGHT",
    "new_rate_memory",
    "pooled_rate",
    "pooled_window",
]

#: The window, in rows, per weight of the model. On the convergence benchmark's problems
#: 0.5, 2 and 4 gave about the same losses at batch sizes 1 and 8; at 32 and 256 the
#: longer windows lost on the ill-conditioned and leaky-ReLU problems and on digits.
POOLED_WINDOW_PER_WEIGHT = 0.5

#: The window covers at least this many rows. Without it, a model with few weights
#: (diabetes: 11) was left with a window of one batch of 8 rows, where leaky ReLU's
#: shallow piece made the seed's rate fail (cross-validated R^2 -2.3, against 0.49).
POOLED_MIN_ROWS = 32

# The memory's slots.
_NUMERATOR, _DENOMINATOR, _EXPONENT, _COUNT = 0, 1, 2, 3


def new_rate_memory():
    """An empty memory for :func:`pooled_rate`: running means of the numerators and
    denominators (as mantissas of ``2**exponent``), the exponent, and the batches seen
    (in full batches)."""
    return np.zeros(4)


def pooled_window(n_weights, batch_size):
    """The window of the pooled rate, in batches (a float, at least 1)."""
    rows = max(POOLED_WINDOW_PER_WEIGHT * n_weights, POOLED_MIN_ROWS)
    return max(1.0, rows / batch_size)


def pooled_rate(memory, numerator, denominator, scale, window, share=1.0):
    """Add one batch to the pooled sums, updating ``memory`` in place; return the rate.

    Parameters
    ----------
    memory : ndarray of shape (4,), float64
        From :func:`new_rate_memory`, carried from batch to batch (and across epochs).
    numerator, denominator : float
        The batch's ``-<g, d>`` and ``d^T H d`` along its descent direction ``d``
        (``-g`` for gradient descent), both divided by ``scale**2``: the forms of
        ``d / scale``, as the solver and the kernels compute them.
    scale : float
        A power of two (see :func:`._step.scaled_direction`); 1 when not scaled.
    window : float
        From :func:`pooled_window`.
    share : float, default=1.0
        The batch's rows over a full batch's (at most 1): its weight in the sums, and
        in the window, which counts full batches.

    Returns
    -------
    float
        ``min(pooled numerator / pooled denominator, numerator / denominator)``: the
        pooled rate, never beyond the batch's own optimal rate. 0 for a batch along
        which the loss does not descend or has no curvature (nothing is pooled).
    """
    if not (numerator > 0.0 and denominator > 0.0):
        return 0.0
    own_rate = numerator / denominator
    if not math.isfinite(own_rate):
        return 0.0
    exponent = 2 * (math.frexp(scale)[1] - 1)  # the forms are divided by 2**exponent
    count = memory[_COUNT]
    newest = min(1.0, share / min(count + share, window))
    if newest == 1.0:
        # Nothing of the old sums is kept (the first batch, or a window of one batch).
        memory[_NUMERATOR] = numerator
        memory[_DENOMINATOR] = denominator
        memory[_EXPONENT] = exponent
    else:
        shift = int(exponent - memory[_EXPONENT])
        if shift > 0:
            # Bring the old sums to the new, larger power of two (exact unless they
            # underflow, which happens only when they are negligible).
            memory[_NUMERATOR] = math.ldexp(memory[_NUMERATOR], -shift)
            memory[_DENOMINATOR] = math.ldexp(memory[_DENOMINATOR], -shift)
            memory[_EXPONENT] = exponent
            shift = 0
        memory[_NUMERATOR] = (1.0 - newest) * memory[_NUMERATOR] + newest * math.ldexp(
            numerator, shift
        )
        memory[_DENOMINATOR] = (1.0 - newest) * memory[_DENOMINATOR] + newest * math.ldexp(
            denominator, shift
        )
    memory[_COUNT] = count + share
    if not memory[_DENOMINATOR] > 0.0:
        # Every pooled form underflowed: the batch's direction is smaller than the
        # remembered ones by more than float64's range, and the batch decides alone.
        return own_rate
    rate = memory[_NUMERATOR] / memory[_DENOMINATOR]
    if not (rate >= 0.0 and rate < own_rate):  # also catches overflow (inf)
        return own_rate
    return rate
