# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""sklearn-optlr: a single-layer piecewise-linear regressor trained with the optimal
learning rate."""

from ._activations import PiecewiseLinear
from ._diagnostics import TrainingDivergedError
from ._plotting import TrainingCurveDisplay
from ._precompile import precompile
from ._regressor import OptimalLRRegressor
from ._step import optimal_learning_rate

__all__ = [
    "OptimalLRRegressor",
    "PiecewiseLinear",
    "TrainingCurveDisplay",
    "TrainingDivergedError",
    "optimal_learning_rate",
    "precompile",
]
__version__ = "0.1.0"
