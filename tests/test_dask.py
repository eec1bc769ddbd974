# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Scale-out with dask: blockwise ``partial_fit`` under dask-ml, grid search on a dask cluster.

Skipped unless the ``dask`` extra (dask[array], dask-ml, distributed) is installed;
the ``tests`` extra brings it, so CI runs these.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_optlr import OptimalLRRegressor

da = pytest.importorskip("dask.array")
wrappers = pytest.importorskip("dask_ml.wrappers")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

N_SAMPLES, N_FEATURES, BLOCK = 2000, 5, 500


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    y = X @ rng.standard_normal(N_FEATURES) + 0.1 * rng.standard_normal(N_SAMPLES)
    return X, y


def test_incremental_learns_blockwise(data):
    X, y = data
    X_dask, y_dask = da.from_array(X, chunks=(BLOCK, -1)), da.from_array(y, chunks=BLOCK)
    assert X_dask.numblocks[0] == N_SAMPLES // BLOCK > 1
    # dask-ml issue 1012: its r2 scorer breaks with recent dask; MSE works.
    model = wrappers.Incremental(
        OptimalLRRegressor(batch_size=64, random_state=0),
        scoring="neg_mean_squared_error",
        random_state=0,
    )
    model.fit(X_dask, y_dask)

    fitted = model.estimator_
    assert fitted.n_iter_ == X_dask.numblocks[0]  # one partial_fit call (one epoch) per block
    assert fitted.t_ == N_SAMPLES
    mse = -model.score(X_dask, y_dask)
    assert mse < 0.05 * y.var()
    predictions = model.predict(X_dask)
    assert isinstance(predictions, da.Array)
    np.testing.assert_allclose(predictions.compute(), fitted.predict(X))


def test_grid_search_on_a_local_cluster_matches_serial(data):
    X, y = data[0][:400], data[1][:400]
    grid = {"activation": ["identity", "relu", "abs"], "batch_size": [32, "full"]}

    def search():
        estimator = OptimalLRRegressor(max_iter=30, random_state=0)
        cv = KFold(n_splits=3, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs, for speed
            return GridSearchCV(estimator, grid, cv=cv).fit(X, y)

    serial = search()
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_backend("dask"),
    ):
        on_dask = search()
        ran_on_cluster = bool(cluster.scheduler.task_prefixes)

    assert ran_on_cluster
    assert on_dask.best_params_ == serial.best_params_
    np.testing.assert_allclose(
        on_dask.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
