# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The peers of ``bench_convergence.py``: constant-rate SGD and Adam on our model.

Same model and loss as OptimalLRRegressor: ``y_hat = sigma(W x + b)`` with a
piecewise-linear ``sigma`` given by its knots, values and slopes (right-hand slope
at a knot), batch loss ``1/(2 M) sum_i ||y_hat_i - y_i||^2``, the same
initialisation (``W = 0``, ``b`` from ``initial_weights``). A whole epoch
runs in one compiled call, so batch size 1 costs what it costs in our kernels.
Plus scikit-learn's SGDRegressor (constant ``eta0``, no penalty) for linear models.
"""

import time
import warnings

import numpy as np
from _convergence_problems import initial_weights, objective
from numba import njit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor

from sklearn_optlr._kernels import _activate  # the same activation as our kernels

#: Adam's moment decays and denominator offset: the defaults of PyTorch, Keras and
#: scikit-learn's MLP.
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8

#: A run whose training loss exceeds this multiple of its initial loss has diverged.
DIVERGED = 1e6


@njit(cache=True)
def peer_epoch(
    X, Y, order, coef, intercept, knots, values, slopes, batch_size, rate, adam, moments, step
):  # fmt: skip
    """One epoch of constant-rate SGD (``adam=False``) or Adam, in place.

    ``moments`` is ``(4, n_outputs, n_features + 1)``: Adam's first and second
    moments of ``(W | b)`` (rows 0 and 1; 2 and 3 unused). ``step`` counts Adam's
    steps so far (for the bias correction). Returns the new ``step``.
    """
    n_samples, n_features = X.shape
    n_outputs = Y.shape[1]
    grad = np.zeros((n_outputs, n_features + 1))
    backprop = np.empty(n_outputs)
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        size = stop - start
        grad[:] = 0.0
        for r in range(start, stop):
            i = order[r]
            for o in range(n_outputs):
                z = intercept[o]
                for j in range(n_features):
                    z += coef[o, j] * X[i, j]
                value, slope = _activate(z, knots, values, slopes)
                backprop[o] = slope * (value - Y[i, o]) / size
            for o in range(n_outputs):
                b = backprop[o]
                if b != 0.0:
                    for j in range(n_features):
                        grad[o, j] += b * X[i, j]
                    grad[o, n_features] += b
        step += 1
        if adam:
            correction1 = 1.0 - BETA1**step
            correction2 = 1.0 - BETA2**step
            for o in range(n_outputs):
                for j in range(n_features + 1):
                    g = grad[o, j]
                    moments[0, o, j] = BETA1 * moments[0, o, j] + (1.0 - BETA1) * g
                    moments[1, o, j] = BETA2 * moments[1, o, j] + (1.0 - BETA2) * g * g
                    update = (moments[0, o, j] / correction1) / (
                        np.sqrt(moments[1, o, j] / correction2) + EPSILON
                    )
                    if j < n_features:
                        coef[o, j] -= rate * update
                    else:
                        intercept[o] -= rate * update
        else:
            for o in range(n_outputs):
                for j in range(n_features):
                    coef[o, j] -= rate * grad[o, j]
                intercept[o] -= rate * grad[o, n_features]
    return step


def _curves(problem, n_epochs, run_epoch, coef, intercept):
    """Training and held-out loss after each epoch, and each epoch's seconds.

    ``run_epoch(epoch)`` returns False when the run failed (diverged); ``coef()``
    and ``intercept()`` return the current weights. Diverged runs are filled with
    inf from the epoch they diverge.
    """
    function = problem.function
    initial = objective(problem.X_train, problem.Y_train, *initial_weights(problem), function)
    train = np.full(n_epochs, np.inf)
    test = np.full(n_epochs, np.inf)
    seconds = np.zeros(n_epochs)
    for epoch in range(n_epochs):
        start = time.perf_counter()
        finished = run_epoch(epoch)
        seconds[epoch] = time.perf_counter() - start
        if not finished:
            break
        coef_now, intercept_now = coef(), intercept()
        with np.errstate(all="ignore"):
            loss = objective(problem.X_train, problem.Y_train, coef_now, intercept_now, function)
        if not np.isfinite(loss) or loss > DIVERGED * initial:
            break
        train[epoch] = loss
        test[epoch] = objective(problem.X_test, problem.Y_test, coef_now, intercept_now, function)
    return train, test, seconds


def run_peer(problem, method, rate, batch_size, n_epochs, seed=0):
    """Constant-rate ``"sgd"`` or ``"adam"``; returns ``(train, test, seconds)`` per epoch."""
    X, Y = problem.X_train, problem.Y_train
    function = problem.function
    coef, intercept = initial_weights(problem)
    moments = np.zeros((4, coef.shape[0], coef.shape[1] + 1))
    rng = np.random.default_rng(seed)
    state = {"step": 0}
    full_batch = batch_size >= X.shape[0]

    def run_epoch(epoch):
        order = np.arange(X.shape[0]) if full_batch else rng.permutation(X.shape[0])
        with np.errstate(all="ignore"):
            state["step"] = peer_epoch(
                X, Y, order, coef, intercept, function.knots, function.values, function.slopes,
                min(batch_size, X.shape[0]), rate, method == "adam", moments, state["step"],
            )  # fmt: skip
        return True

    return _curves(problem, n_epochs, run_epoch, lambda: coef, lambda: intercept)


def run_sgd_regressor(problem, rate, n_epochs, seed=0):
    """scikit-learn's SGDRegressor (constant ``eta0``, no penalty), one model per output."""
    X, Y = problem.X_train, problem.Y_train
    models = [
        SGDRegressor(
            penalty=None,
            learning_rate="constant",
            eta0=rate,
            tol=None,
            random_state=np.random.RandomState(seed + output),  # a new order every epoch
        )  # fmt: skip
        for output in range(Y.shape[1])
    ]

    def run_epoch(epoch):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", (ConvergenceWarning, RuntimeWarning))
            try:
                for output, model in enumerate(models):
                    model.partial_fit(X, Y[:, output])
            except ValueError:  # SGDRegressor's report of non-finite weights
                return False
        return True

    def coef():
        return np.array([model.coef_ for model in models])

    def intercept():
        return np.array([model.intercept_[0] for model in models])

    return _curves(problem, n_epochs, run_epoch, coef, intercept)
