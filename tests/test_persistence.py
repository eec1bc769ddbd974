# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Pickle and joblib round trips, in this interpreter and a fresh one.

The oracle is the model before the round trip: predictions must agree to the bit, for every
activation (a custom PiecewiseLinear included), and a loaded model must continue training
(partial_fit, warm_start) exactly as the original does, since the training state (the solver's
iterate, the averaging sums and the random generator) travels in the private ``_state``.
"""

import io
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from sklearn_optlr import OptimalLRRegressor, PiecewiseLinear

# Short budgets, and hard tanh cannot reach these targets: convergence is not the point here.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = [
    "identity",
    "relu",
    "leaky_relu",
    "abs",
    "hard_tanh",
    PiecewiseLinear([-1.0, 0.0, 2.0], [0.5, -1.0, 1.0], 0.3, -0.2),
]


def data(n_outputs=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((60, 4))
    y = np.abs(X @ [1.0, -2.0, 0.5, 0.3]) + 0.1 * rng.standard_normal(60)
    return X, (y if n_outputs is None else np.column_stack([y] * n_outputs))


def fitted(activation, **params):
    X, y = data()
    # Several batches an epoch, so averaging, shuffling and the rng are all in the state.
    params = dict(batch_size=16, max_iter=4, random_state=0, negative_slope=0.2) | params
    return OptimalLRRegressor(activation, **params).fit(X, y)


def round_trip(model, how):
    if how == "pickle":
        return pickle.loads(pickle.dumps(model))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


@pytest.mark.parametrize("how", ["pickle", "joblib"])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_round_trip_predicts_identically(activation, how):
    X, _ = data()
    model = fitted(activation)
    loaded = round_trip(model, how)
    assert loaded.get_params() == model.get_params()
    assert_array_equal(loaded.predict(X), model.predict(X))
    X_sparse = sparse.csr_matrix(X)
    assert_array_equal(loaded.predict(X_sparse), model.predict(X_sparse))
    for name in ("coef_", "intercept_", "loss_curve_", "n_iter_", "t_", "n_features_in_"):
        assert_array_equal(getattr(loaded, name), getattr(model, name))


@pytest.mark.parametrize("how", ["pickle", "joblib"])
@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(dtype=np.float32),
        dict(n_outputs=3),
        dict(batch_size="full"),
        dict(average=False),
    ],
    ids=["averaged", "float32", "3-outputs", "full-batch", "not-averaged"],
)
def test_loaded_model_continues_training_identically(params, how):
    params = dict(params)
    dtype, n_outputs = params.pop("dtype", np.float64), params.pop("n_outputs", None)
    X, y = data(n_outputs)
    X, y = X.astype(dtype), y.astype(dtype)
    model = OptimalLRRegressor("relu", **(dict(batch_size=16, random_state=0) | params))
    model.partial_fit(X, y).partial_fit(X, y)
    loaded = round_trip(model, how)
    for _ in range(2):
        model.partial_fit(X, y)
        loaded.partial_fit(X, y)
    assert loaded.coef_.dtype == dtype
    assert_array_equal(loaded.coef_, model.coef_)
    assert_array_equal(loaded.intercept_, model.intercept_)
    assert loaded.loss_curve_ == model.loss_curve_
    assert loaded.t_ == model.t_


def test_loaded_model_continues_a_warm_start_fit_identically():
    X, y = data()
    model = fitted("leaky_relu", warm_start=True, max_iter=3)
    loaded = round_trip(model, "pickle")
    model.fit(X, y)
    loaded.fit(X, y)
    assert_array_equal(loaded.coef_, model.coef_)
    assert loaded.loss_curve_ == model.loss_curve_


def test_unfitted_model_round_trips():
    model = OptimalLRRegressor(ACTIVATIONS[-1], alpha=0.1)
    loaded = round_trip(model, "pickle")
    assert loaded.get_params() == model.get_params()
    assert not hasattr(loaded, "coef_")


def test_fresh_interpreter_predicts_and_continues_identically(tmp_path):
    """A model saved here is loaded by a new Python process (no shared module state, kernels
    loaded from numba's cache or compiled anew): it must predict, and continue training,
    to the same bits as this process."""
    X, y = data()
    models = [fitted(activation) for activation in ACTIVATIONS]
    joblib.dump(models, tmp_path / "models.joblib")
    with open(tmp_path / "models.pkl", "wb") as file:
        pickle.dump(models, file)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    script = textwrap.dedent(
        f"""
        import pickle
        import joblib
        import numpy as np
        X, y = np.load({str(tmp_path / "X.npy")!r}), np.load({str(tmp_path / "y.npy")!r})
        from_joblib = joblib.load({str(tmp_path / "models.joblib")!r})
        with open({str(tmp_path / "models.pkl")!r}, "rb") as file:
            from_pickle = pickle.load(file)
        np.save({str(tmp_path / "joblib.npy")!r}, np.stack([m.predict(X) for m in from_joblib]))
        np.save({str(tmp_path / "pickle.npy")!r}, np.stack([m.predict(X) for m in from_pickle]))
        np.save(
            {str(tmp_path / "continued.npy")!r},
            np.stack([m.partial_fit(X, y).coef_ for m in from_pickle]),
        )
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    expected = np.stack([model.predict(X) for model in models])
    assert_array_equal(np.load(tmp_path / "joblib.npy"), expected)
    assert_array_equal(np.load(tmp_path / "pickle.npy"), expected)
    continued = np.stack([model.partial_fit(X, y).coef_ for model in models])
    assert_array_equal(np.load(tmp_path / "continued.npy"), continued)


def test_a_model_pickled_with_the_dense_preconditioner_continues_as_a_current_one():
    # Version 0.1.0 kept P as a dense matrix; the centred form replaced it. A model
    # pickled then is continued with the centred P rebuilt from its moments.
    from sklearn_optlr._preconditioning import dense_preconditioner

    X, y = data()
    X = X + [0.0, 0.0, 3.0, -2.0]  # offsets, so that the two forms differ
    current = OptimalLRRegressor(batch_size=16, warm_start=True, max_iter=2, random_state=0)
    current.fit(X, y)
    old = pickle.loads(pickle.dumps(current))
    old._state.preconditioner = dense_preconditioner(old._state.preconditioner)
    assert old._state.preconditioner[-1, -1] > 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        current.fit(X, y)
        old.fit(X, y)
    assert_array_equal(old.coef_, current.coef_)


def test_copying_the_state_shares_the_history_rather_than_copying_it():
    # partial_fit copies the state on every call: a deep copy of the history made each
    # call cost as much as the epochs recorded (32 ms a call after 4,000 calls).
    import copy

    model = OptimalLRRegressor(random_state=0)
    X = np.random.default_rng(0).standard_normal((20, 2))
    for _ in range(3):
        model.partial_fit(X, X[:, 0])
    state = model._state
    assert state.copy().history is state.history
    assert copy.deepcopy(state.history) is state.history
    assert model.n_iter_ == 3
