# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The full-batch epoch's search short of a rejected step (FullBatchEpoch)."""

import numpy as np
import pytest

from sklearn_optlr import PiecewiseLinear
from sklearn_optlr._activations import ACTIVATIONS, resolve_activation
from sklearn_optlr._solver import FullBatchEpoch
from sklearn_optlr._step import exact_line_step

ACTIVATION_CASES = [*ACTIVATIONS, PiecewiseLinear([-1.0, 0.0, 2.0], [0.5, -1.0, 1.0], 0.3, -0.2)]


@pytest.mark.parametrize("activation", ACTIVATION_CASES, ids=str)
@pytest.mark.parametrize("seed", range(8))
def test_search_short_of_a_step_is_the_minimiser_up_to_it(activation, seed):
    # Oracle: the loss evaluated directly on a fine grid of [0, bound], for bounds short
    # of the whole line's minimiser (where the units that cross no knot are summed into
    # one quadratic) and beyond it; where it returns a step beyond the bound, the
    # whole line's exact search (an independent oracle along all units).
    activation = resolve_activation(activation, negative_slope=0.05)
    rng = np.random.default_rng(seed)
    n_samples, n_features, n_outputs = 40, 3, 1 + seed % 2
    X = rng.standard_normal((n_samples, n_features))
    coef, intercept = rng.standard_normal((n_outputs, n_features)), rng.standard_normal(n_outputs)
    direction_coef = rng.standard_normal((n_outputs, n_features))
    direction_intercept = rng.standard_normal(n_outputs)
    Y = rng.standard_normal((n_samples, n_outputs))
    sample_weight = rng.random(n_samples)
    weights = sample_weight / sample_weight.sum()
    alpha = 0.1 * (seed % 2)
    z, v = X @ coef.T + intercept, X @ direction_coef.T + direction_intercept
    # A quarter of the units on knots, as a line search that stopped at kinks leaves them:
    # those moving left are on the left piece at once.
    z[::4] = rng.choice(activation.knots, size=z[::4].shape)

    def loss(steps):
        steps = np.asarray(steps, dtype=float)[..., None, None]
        residual = activation(z + steps * v) - Y
        penalty = 0.5 * alpha * np.sum((coef + steps * direction_coef) ** 2, axis=(-2, -1))
        return 0.5 * np.sum(weights[:, None] * residual**2, axis=(-2, -1)) + penalty

    epoch = FullBatchEpoch(X, Y, sample_weight, activation=activation, step="pooled", alpha=alpha)
    epoch._pre_activation, epoch._error = z, activation(z) - Y  # as an epoch leaves them
    whole, _ = exact_line_step(z, v, Y, weights, activation, coef, direction_coef, alpha)
    for bound in [0.05, 0.3, 1.0, 3.0] + ([0.5 * whole, 2.0 * whole] if whole else []):
        step = epoch._exact_step_short_of(bound, v, coef, direction_coef)
        if step > bound:  # the search of the crossing units left [0, bound]: the whole line's
            assert step == whole
            continue
        assert step >= 0.0
        grid = np.linspace(0.0, bound, 20_001)
        assert loss(step) <= loss(grid).min() + 1e-12
