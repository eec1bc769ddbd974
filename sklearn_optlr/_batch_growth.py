# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The adaptive batch size of ``batch_size="auto"``: the norm test and the growth rule.

Small batches make fast progress far from the optimum, where the batches' gradients
agree, and end on a noise floor near it, where their sampling noise outweighs the
gradient they estimate. Growing the batch when that happens keeps the fast start and
removes the floor (Byrd, Chin, Nocedal and Wu, "Sample size selection in optimization
methods for machine learning", Math. Programming 2012; Smith, Kindermans, Ying and Le,
"Don't decay the learning rate, increase the batch size", ICLR 2018). With the optimal
step there is no learning rate to decay: the schedule ends in full-batch (conjugate)
gradients, whose steps are exact.

After each epoch, the test measures at the model (the averaged weights) the full
gradient ``g`` and the variance of a batch's estimate of it. The data term of the
gradient is the mean of the rows' terms ``v_i = n w_i D_i e_i x~_i`` (``x~_i = (x_i, 1)``,
``w_i`` the normalised weights), so a batch of ``b`` rows drawn without replacement
estimates it with variance ``sigma^2 / b * (n - b) / (n - 1)``, where
``sigma^2 = mean_i ||v_i||^2 - ||g_data||^2``. The test asks that this noise not
exceed ``||g||^2``, the squared norm of the whole objective's gradient (the penalty's
included): then a batch's gradient is, in mean square, nearer ``g`` than ``g`` is to
zero, as a descent direction's must be. The smallest batch that passes is

    b* = n sigma^2 / ((n - 1) ||g||^2 + sigma^2)   (at most n).

The penalty is left out of the noise: a batch charges it in proportion to the batch's
weight, which varies only with sample weights. Near a penalised minimum the data
gradient does not vanish (it balances ``alpha W``), so only the whole gradient tells
that the minimum is near.
"""

import math

import numpy as np
from scipy import sparse

from ._step import backpropagate, block_statistics, power_of_two_scale

__all__ = ["BatchGrowth", "grown_batch_size", "is_full_batch_phase", "row_norms_squared"]


def row_norms_squared(X):
    """``||x_i||^2 + 1`` for every row: the squared norms of the rows with the intercept's
    constant, summed in float64 (scikit-learn's ``row_norms`` sums in X's dtype)."""
    if sparse.issparse(X):
        squares = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    else:
        squares = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    return squares + 1.0


class BatchGrowth:
    """The norm test over one fit's training rows.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
    weights : ndarray of shape (n_samples,)
        The rows' normalised weights (:func:`._step.normalised_weights`).
    activation : PiecewiseLinear
    alpha : float
        The penalty's strength.
    """

    def __init__(self, X, Y, weights, activation, alpha):
        self.X, self.Y, self.weights, self.activation = X, Y, weights, activation
        self.alpha = alpha
        self._row_norms = row_norms_squared(X)

    def noise_and_signal(self, coef, intercept):
        """``(sigma^2, ||g||^2)`` at ``(coef, intercept)``, both divided by the same
        power of two: the variance of one row's term of the data gradient, and the
        squared norm of the objective's gradient (two products with X). Non-finite where
        the squares overflow even so."""
        block = block_statistics(
            self.X, self.Y, self.weights, coef, intercept, self.activation, self.alpha
        )
        backprop = backpropagate(block.error, block.derivative, block.weights)
        # In float64 whatever the data's dtype, divided by the largest residual so that
        # the squares of tiny or huge gradients do not underflow or overflow.
        _, inverse_scale = power_of_two_scale(float(np.max(np.abs(backprop), initial=0.0)))
        grad_coef = block.grad_coef.astype(np.float64) * inverse_scale
        grad_intercept = block.grad_intercept.astype(np.float64) * inverse_scale
        penalty = self.alpha * inverse_scale * coef.astype(np.float64)
        data_square = np.sum(np.square(grad_coef - penalty)) + np.sum(np.square(grad_intercept))
        signal = float(np.sum(np.square(grad_coef)) + np.sum(np.square(grad_intercept)))
        backprop = backprop.astype(np.float64) * inverse_scale
        terms = np.einsum("ij,ij->i", backprop, backprop) * self._row_norms
        mean_square = self.X.shape[0] * float(np.sum(terms))
        return max(mean_square - float(data_square), 0.0), signal

    def needed_batch_size(self, coef, intercept):
        """The smallest batch size whose gradient passes the norm test at these weights:
        ``n_samples`` where the gradient is zero (nothing left but noise) or its
        statistics are not finite."""
        noise, signal = self.noise_and_signal(coef, intercept)
        n_samples = self.X.shape[0]
        if not (signal > 0.0 and np.isfinite(signal) and np.isfinite(noise)):
            return n_samples
        with np.errstate(over="ignore", invalid="ignore"):
            needed = n_samples * noise / ((n_samples - 1) * signal + noise)
        if not math.isfinite(needed):  # finite statistics whose products overflow
            return n_samples
        return min(n_samples, max(1, math.ceil(needed)))


def grown_batch_size(batch_size, needed):
    """The next epoch's batch size: ``batch_size`` doubled until it is at least
    ``needed``. On this ladder (the first size times powers of two) the schedule visits
    a number of sizes logarithmic in the rows, and no size lands just short of the
    switch to the full batch (half the rows), where an epoch would be two steps and a
    remainder."""
    while batch_size < needed:
        batch_size *= 2
    return batch_size


def is_full_batch_phase(batch_size, n_samples):
    """Whether the schedule trains by the full batch at this size: from half the rows,
    where an epoch is at most two steps, each a pass over half of them, and the full
    batch's one exact (conjugate) step costs as much."""
    return 2 * batch_size >= n_samples
