# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The full-batch epoch's search short of a rejected step (FullBatchEpoch)."""

import numpy as np
import pytest

from sklearn_optlr import PiecewiseLinear
from sklearn_optlr._activations import ACTIVATIONS, resolve_activation
from sklearn_optlr._solver import FullBatchEpoch
from sklearn_optlr._step import block_statistics, exact_line_step

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
    # As an epoch leaves them: the pre-activations and the record at them.
    epoch._pre_activation = z
    epoch._block = block_statistics(
        X, Y, weights, coef, intercept, activation, alpha, pre_activation=z
    )
    whole, _ = exact_line_step(z, v, Y, weights, activation, coef, direction_coef, alpha)
    for bound in [0.05, 0.3, 1.0, 3.0] + ([0.5 * whole, 2.0 * whole] if whole else []):
        step = epoch._exact_step_short_of(bound, v, coef, direction_coef)
        if step > bound:  # the search of the crossing units left [0, bound]: the whole line's
            assert step == whole
            continue
        assert step >= 0.0
        grid = np.linspace(0.0, bound, 20_001)
        assert loss(step) <= loss(grid).min() + 1e-12


def test_steps_along_the_knots_lower_the_loss_by_more_than_its_rounding(monkeypatch):
    # Oracle: the recorded losses. A ReLU fit with tol=0 reaches a minimum at kinks,
    # where each epoch's steepest-descent search finds no step and the search along the
    # knots runs (an SVD of the rows on knots). Its steps used to be taken wherever the
    # loss came out lower at all: near the optimum, by its rounding noise alone, so the
    # searches ran every epoch for as long as the fit was let (54 of 100 epochs here).
    # Each step it takes must lower the loss by more than the 64 ulps that count as a
    # tie, and once none does the fit stays where it is.
    from sklearn_optlr import OptimalLRRegressor
    from sklearn_optlr import _solver as solver

    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 20))
    teacher = rng.standard_normal((20, 5)) / np.sqrt(20)
    Y = np.maximum(X @ teacher + 0.5, 0) + 0.05 * rng.standard_normal((5000, 5))
    searched_at, original = [], solver.FullBatchEpoch._kink_step

    def recorded(self, *args):
        found = original(self, *args)
        searched_at.append((len(model_epochs), found is not None))
        return found

    model_epochs = []
    original_call = solver.FullBatchEpoch.__call__

    def counted(self, *args, **kwargs):
        model_epochs.append(None)
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(solver.FullBatchEpoch, "_kink_step", recorded)
    monkeypatch.setattr(solver.FullBatchEpoch, "__call__", counted)
    model = OptimalLRRegressor("relu", batch_size="full", max_iter=100, tol=0.0)
    model.fit(X, Y)
    losses = np.array(model.loss_curve_)
    assert searched_at, "the fit never searched along the knots: the test needs a new case"
    tie = 64 * np.finfo(np.float64).eps
    for epoch, stepped in searched_at:
        if stepped:  # the loss recorded at the next epoch's start is the step's
            assert losses[epoch] < losses[epoch - 1] * (1 - tie)
    # The last search found no step, and nothing moved after it.
    last_epoch, stepped = searched_at[-1]
    assert not stepped
    assert np.all(losses[last_epoch - 1 :] == losses[last_epoch - 1])
