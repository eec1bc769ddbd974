# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Every "auto" and cross-parameter rule is resolved once, by ``_config.resolve``."""

import dataclasses

import numpy as np
import pytest
from scipy import sparse

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr._config import AUTO_BATCH_SIZE, resolve


def params(**changes):
    return OptimalLRRegressor(**changes).get_params(deep=False)


def X_of(n_samples=500, n_features=5):
    return np.random.default_rng(0).standard_normal((n_samples, n_features))


def test_the_configuration_is_frozen():
    config = resolve(params(), X_of(), 1, incremental=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 1


@pytest.mark.parametrize(
    "n_samples, batch_size, expected",
    [(500, "auto", AUTO_BATCH_SIZE), (50, "auto", 50), (500, "full", 500), (500, 7, 7), (5, 7, 5)],
)
def test_batch_size(n_samples, batch_size, expected):
    config = resolve(params(batch_size=batch_size), X_of(n_samples), 1, incremental=False)
    assert config.batch_size == expected


@pytest.mark.parametrize(
    "changes, incremental, conjugate, averaged",
    [
        ({}, False, False, True),  # mini-batches: gradient descent, averaged
        ({"batch_size": "full"}, False, True, False),  # full batch: CG, no averaging
        ({"batch_size": "full"}, True, False, True),  # partial_fit: a chunk of a stream
        ({"batch_size": "full", "step": 0.1}, False, False, False),  # a fixed rate: gd
        ({"batch_size": "full", "average": True}, False, True, True),
        ({"average": False}, False, False, False),
    ],
)
def test_solver_and_averaging(changes, incremental, conjugate, averaged):
    config = resolve(params(**changes), X_of(), 1, incremental=incremental)
    assert config.conjugate == conjugate
    assert (config.averaging is not None) == averaged
    if averaged and not incremental and changes.get("average", "auto") == "auto":
        assert config.averaging.keep_better


@pytest.mark.parametrize(
    "changes, precondition",
    [
        ({}, True),  # 200 rows a batch, 6 inputs
        ({"batch_size": 4}, False),  # fewer rows than inputs
        ({"step": 0.1}, False),  # no line search
        ({"precondition": False}, False),
        ({"precondition": True, "batch_size": 1}, True),
    ],
)
def test_preconditioning(changes, precondition):
    assert resolve(params(**changes), X_of(), 1, incremental=False).precondition == precondition


def test_partial_fit_tracks_moments_of_chunks_too_small_to_precondition():
    config = resolve(params(batch_size=100), X_of(n_samples=50, n_features=60), 1, incremental=True)
    assert not config.precondition and config.track_moments


def test_numpy_scalars_from_a_grid_become_python_scalars():
    config = resolve(
        params(
            step=np.float32(0.1),
            alpha=np.float32(0.5),
            max_iter=np.uint8(3),
            batch_size=np.uint8(200),
        ),
        X_of(),
        1,
        incremental=False,
    )
    assert type(config.step) is float and type(config.alpha) is float
    assert type(config.max_iter) is int and type(config.batch_size) is int


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"solver": "cg", "batch_size": 10}, "solver='cg' needs the full batch"),
        ({"solver": "cg", "batch_size": "full", "step": 0.5}, "needs a line search"),
    ],
)
def test_contradicting_parameters_raise(changes, message):
    with pytest.raises(ValueError, match=message):
        resolve(params(**changes), X_of(), 1, incremental=False)


def test_conjugate_gradients_asked_for_take_the_full_batch_that_auto_chooses():
    # batch_size="auto" is the default: solver="cg" alone raised "needs the full batch"
    # on more than 400 rows, a size "auto" chose itself (a grid over solvers failed).
    config = resolve(params(solver="cg"), X_of(1000), 1, incremental=False)
    assert config.batch_size == 1000 and config.conjugate and not config.larger_batches
    X = X_of(1000)
    y = X @ np.arange(1.0, 6.0)
    chosen = OptimalLRRegressor(solver="cg", random_state=0).fit(X, y)
    full = OptimalLRRegressor(solver="cg", batch_size="full", random_state=0).fit(X, y)
    np.testing.assert_array_equal(chosen.coef_, full.coef_)
    assert chosen.batch_size_curve_ == [1000] * chosen.n_iter_


def test_wide_data_cannot_be_preconditioned_densely():
    X = sparse.random(10, 9000, density=0.001, format="csr", random_state=0)
    with pytest.raises(ValueError, match="precondition=True needs dense matrices"):
        resolve(params(precondition=True), X, 1, incremental=False)


def test_an_activation_beyond_float32_is_refused_for_float32_data():
    from sklearn_optlr import PiecewiseLinear

    huge = PiecewiseLinear([0.0], [0.0], 0.0, 1e300)
    with pytest.raises(ValueError, match="overflow float32"):
        resolve(params(activation=huge), X_of().astype(np.float32), 1, incremental=False)


def test_partial_fit_with_conjugate_gradients_takes_each_chunk_whole():
    # Chunks of up to 200 rows trained and a larger chunk of the same stream raised
    # "needs the full batch": "auto" now gives solver="cg" each chunk as one batch.
    X = X_of(400)
    y = X @ np.arange(1.0, 6.0)
    model = OptimalLRRegressor(solver="cg").partial_fit(X[:150], y[:150])
    model.partial_fit(X[:300], y[:300])
    assert model.batch_size_curve_ == [150, 300]
