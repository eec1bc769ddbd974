"""
====================================
Scaling out with dask and dask-ml
====================================

Two ways to take :class:`~sklearn_optlr.OptimalLRRegressor` beyond one machine's
memory or cores, with the ``dask`` extra (``pip install "sklearn-optlr[dask]"``):

- dask-ml's :class:`~dask_ml.wrappers.Incremental` trains on a dask array block
  by block, calling ``partial_fit`` on each, so only one block is in memory at a
  time;
- joblib's ``"dask"`` backend runs the fits of a
  :class:`~sklearn.model_selection.GridSearchCV` on a dask cluster.

Both run here on a small local "cluster" in this process; pointed at a real
cluster, the code is the same.
"""

# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# A dask array larger than one block
# ----------------------------------
# Here the array is generated; in practice it would come from files
# (``dask.array.from_zarr``, ``dask.dataframe.read_parquet(...).to_dask_array``).
import dask.array as da
import numpy as np

rng = np.random.default_rng(0)
n_samples, n_features = 40_000, 20
X_np = rng.standard_normal((n_samples, n_features))
y_np = np.maximum(X_np @ rng.standard_normal(n_features), 0.0) + 0.1 * rng.standard_normal(
    n_samples
)
X = da.from_array(X_np, chunks=(5_000, n_features))
y = da.from_array(y_np, chunks=5_000)
print(f"{X.numblocks[0]} blocks of {X.chunksize[0]:,} rows")

# %%
# Blockwise training with ``Incremental``
# ---------------------------------------
# ``Incremental`` calls ``partial_fit`` once per block, so each block is one
# epoch in the model's record. dask-ml's default scoring (R^2) breaks with
# recent dask versions (dask-ml issue 1012); give a scoring explicitly, such as
# ``"neg_mean_squared_error"``.
from dask_ml.wrappers import Incremental

from sklearn_optlr import OptimalLRRegressor

incremental = Incremental(
    OptimalLRRegressor("relu", batch_size=256, random_state=0),
    scoring="neg_mean_squared_error",
    random_state=0,
)
incremental.fit(X, y)
fitted = incremental.estimator_
print(f"{fitted.n_iter_} partial_fit calls, {fitted.t_:,} samples seen")
print(f"MSE {-incremental.score(X, y):.4f} (noise variance 0.01, variance of y {y_np.var():.2f})")

# %%
# Predictions stay lazy: ``predict`` returns a dask array, computed block by
# block when asked for.
predictions = incremental.predict(X)
print(type(predictions).__name__, predictions[:5].compute().round(3))

# %%
# The fitted estimator is a plain ``OptimalLRRegressor``, with its record.
import matplotlib.pyplot as plt

from sklearn_optlr import TrainingCurveDisplay

display = TrainingCurveDisplay.from_estimator(fitted)
display.figure_.suptitle("Incremental: one epoch per block")
display.ax_.set_xlabel("Block")
display.ax_learning_rate_.set_xlabel("Block")

# %%
# Grid search on a dask cluster
# -----------------------------
# Inside ``joblib.parallel_backend("dask")``, scikit-learn's parallel loops send
# their tasks to the cluster of the active :class:`distributed.Client`. The data
# is a NumPy array here: each candidate sees all of it.
import joblib
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV

param_grid = {"activation": ["identity", "relu", "abs"], "batch_size": [64, "full"]}
search = GridSearchCV(OptimalLRRegressor(random_state=0), param_grid, cv=3)
X_small, y_small = X_np[:5_000], y_np[:5_000]

with (
    LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster,
    Client(cluster) as client,
    joblib.parallel_backend("dask"),
):
    search.fit(X_small, y_small)

print("Best parameters:", search.best_params_)
print(f"Best mean CV R^2: {search.best_score_:.4f}")
plt.show()
