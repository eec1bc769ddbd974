# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""sklearn-optlr: a single-layer piecewise-linear regressor trained with the optimal
learning rate."""

# Checked before any module compiles with it, so that its absence reads as advice.
try:
    import numba  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without numba
    raise ImportError(
        "sklearn-optlr needs numba for its compiled step math and kernels, and it could not "
        f"be imported ({exc}). Install it with `pip install numba` (it is a declared "
        "dependency of sklearn-optlr, so reinstalling the package also brings it)."
    ) from exc

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
