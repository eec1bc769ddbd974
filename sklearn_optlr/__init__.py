"""sklearn-optlr: a single-layer piecewise-linear regressor trained with the optimal learning rate."""

from ._activations import PiecewiseLinear
from ._regressor import OptimalLRRegressor
from ._step import optimal_learning_rate

__all__ = ["OptimalLRRegressor", "PiecewiseLinear", "optimal_learning_rate"]
__version__ = "0.1.0"
