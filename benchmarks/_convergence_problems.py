# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The problems of ``bench_convergence.py``, their training objective, and its optimum.

Every problem is generated or bundled with scikit-learn (nothing is downloaded),
split 80/20 into training and held-out rows, with ``X`` standardised on the
training rows. Targets are always 2-D, ``(n_samples, n_outputs)``.

The objective is the estimator's, with no penalty:
``L(W, b) = 1/(2 n) sum_i ||sigma(W x_i + b) - y_i||^2``, right-hand slopes at the kinks.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_optlr import OptimalLRRegressor
from sklearn_optlr._activations import initial_intercept, resolve_activation

NOISE = 0.05
#: The small random start of L-BFGS-B in the time-to-accuracy target: the start a scipy
#: user would write without our initialisation, the common ``0.01 * randn`` for every
#: weight and intercept. On standardised inputs the pre-activations start within about
#: 0.1 of 0 (sd 0.01 sqrt(n_features)), next to the flat function W = 0 that ours starts
#: from.
SMALL_START_SD = 0.01


@dataclass
class Problem:
    name: str  # file-name friendly
    title: str
    activation: str
    description: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray

    @property
    def function(self):
        return resolve_activation(self.activation)

    @property
    def shape(self):
        return self.X_train.shape[0], self.X_train.shape[1], self.Y_train.shape[1]


def _split_and_scale(X, Y, seed=0):
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.2, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return (
        np.ascontiguousarray(scaler.transform(X_train)),
        np.ascontiguousarray(Y_train, dtype=np.float64),
        np.ascontiguousarray(scaler.transform(X_test)),
        np.ascontiguousarray(Y_test, dtype=np.float64),
    )


def _teacher(X, covariance, activation, n_outputs, rng):
    """Targets of a noisy teacher whose pre-activations have unit variance and mean 0.

    With mean 0 about half of each unit's pre-activations are positive (active).
    """
    weights = rng.standard_normal((X.shape[1], n_outputs))
    weights /= np.sqrt(np.einsum("ik,ij,jk->k", weights, covariance, weights))
    return resolve_activation(activation)(X @ weights) + NOISE * rng.standard_normal(
        (X.shape[0], n_outputs)
    )


def relu_teacher(n_samples=20_000, n_features=50, n_outputs=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    Y = _teacher(X, np.eye(n_features), "relu", n_outputs, rng)
    return Problem(
        "relu_teacher", "ReLU teacher", "relu",
        f"{n_samples:,} x {n_features} standard Gaussian X, {n_outputs} outputs "
        f"y = relu(X V) + noise (sd {NOISE}), teacher pre-activations of mean 0 and "
        "variance 1 (about half the units active); activation relu.",
        *_split_and_scale(X, Y, seed),
    )  # fmt: skip


def leaky_relu_teacher(n_samples=20_000, n_features=50, n_outputs=5, rho=0.9, seed=1):
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(n_features), np.arange(n_features)))
    covariance = rho**lag
    X = rng.standard_normal((n_samples, n_features)) @ np.linalg.cholesky(covariance).T
    Y = _teacher(X, covariance, "leaky_relu", n_outputs, rng)
    return Problem(
        "leaky_relu_correlated", "Leaky-ReLU teacher, correlated features", "leaky_relu",
        f"{n_samples:,} x {n_features} Gaussian X with AR(1) correlation {rho} between "
        f"features (condition number of the correlation {np.linalg.cond(covariance):.0f}), "
        f"{n_outputs} outputs y = leaky_relu(X V) + noise (sd {NOISE}), teacher "
        "pre-activations of mean 0 and variance 1; activation leaky_relu (negative slope "
        "0.01, the estimator's default, in the teacher too).",
        *_split_and_scale(X, Y, seed),
    )  # fmt: skip


def ill_conditioned(n_samples=20_000, n_features=50, spread=3.0, seed=2):
    """Identity model on X whose singular values are log-uniform over ``spread`` decades."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    scales = np.logspace(0, -spread, n_features)
    X = (rng.standard_normal((n_samples, n_features)) * scales) @ rotation.T
    X = StandardScaler().fit_transform(X)
    weights = rng.standard_normal(n_features)
    signal = X @ (weights / np.std(X @ weights))
    Y = (signal + NOISE * rng.standard_normal(n_samples))[:, None]
    problem = Problem(
        "ill_conditioned", "Identity model, ill-conditioned design", "identity", "",
        *_split_and_scale(X, Y, seed),
    )  # fmt: skip
    singular = np.linalg.svd(problem.X_train, compute_uv=False)
    problem.description = (
        f"{n_samples:,} x {n_features}, singular values of the design spread log-uniformly "
        f"over {spread:.0f} decades (condition number of the standardised training X "
        f"{singular[0] / singular[-1]:.0f}, of the Hessian its square), one output "
        f"y = X w + noise (sd {NOISE}), signal variance 1; activation identity."
    )
    return problem


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X_train, Y_train, X_test, Y_test = _split_and_scale(X, y[:, None], seed=3)
    mean, scale = Y_train.mean(), Y_train.std()
    return Problem(
        "diabetes", "Diabetes (bundled)", "identity",
        f"scikit-learn's diabetes data, {X.shape[0]} x {X.shape[1]}, X and y standardised "
        "on the training rows; activation identity (linear least squares: y is a "
        "continuous score of either sign once standardised, so an activation with a flat "
        "piece would only remove range, and the identity model makes the problem convex "
        "and comparable with SGDRegressor).",
        X_train, (Y_train - mean) / scale, X_test, (Y_test - mean) / scale,
    )  # fmt: skip


def _digits_one_hot():
    """scikit-learn's digits with one-hot targets, split and standardised; its shape."""
    X, y = load_digits(return_X_y=True)
    one_hot = (y[:, None] == np.arange(10)).astype(np.float64)
    return _split_and_scale(X, one_hot, seed=4), X.shape


def digits():
    data, (n_samples, n_features) = _digits_one_hot()
    return Problem(
        "digits", "Digits, one-hot targets (bundled)", "identity",
        f"scikit-learn's digits, {n_samples} x {n_features} pixels standardised on the "
        "training rows, 10 one-hot outputs; activation identity: least-squares regression "
        "on one-hot targets is the classical linear classifier, it is convex (the optimum "
        "is certain) and SGDRegressor applies (one per output).",
        *data,
    )  # fmt: skip


def relu_digits():
    """The digits problem's data with a ReLU: small data, many outputs, not convex."""
    data, (n_samples, n_features) = _digits_one_hot()
    return Problem(
        "relu_digits", "ReLU on one-hot digits, standardised (bundled)", "relu",
        f"scikit-learn's digits, {n_samples} x {n_features} pixels standardised on the "
        "training rows (the same split as the digits problem), 10 one-hot outputs; "
        "activation relu: small data with many outputs, and not convex (a unit whose "
        "pre-activations are all negative has no gradient).",
        *data,
    )  # fmt: skip


def initial_weights(problem):
    """The initialisation of OptimalLRRegressor: W = 0, b at the activation's steep point
    (for ReLU and leaky ReLU times each output's root mean square target)."""
    n_samples, n_features = problem.X_train.shape
    uniform = np.full(n_samples, 1.0 / n_samples)
    return (
        np.zeros((problem.Y_train.shape[1], n_features)),
        initial_intercept(problem.function, problem.Y_train, uniform),
    )


def objective(X, Y, coef, intercept, function):
    """``1/(2 n) sum_i ||sigma(W x_i + b) - y_i||^2``."""
    error = function(X @ np.atleast_2d(coef).T + intercept) - Y
    return 0.5 * float(np.einsum("ij,ij->", error, error)) / X.shape[0]


def _objective_and_gradient(theta, X, Y, function, trace):
    n_outputs = Y.shape[1]
    coef = theta[:-n_outputs].reshape(n_outputs, -1)
    intercept = theta[-n_outputs:]
    output, slope = function.value_and_slope(X @ coef.T + intercept)
    error = output - Y
    loss = 0.5 * float(np.einsum("ij,ij->", error, error)) / X.shape[0]
    backprop = slope * error / X.shape[0]
    gradient = np.concatenate([(backprop.T @ X).ravel(), backprop.sum(axis=0)])
    trace.append((loss, time.perf_counter()))
    return loss, gradient


@dataclass
class LBFGSResult:
    loss: float
    coef: np.ndarray
    intercept: np.ndarray
    trace: np.ndarray  # the objective at every function-and-gradient evaluation
    seconds: np.ndarray  # cumulative seconds at every evaluation
    message: str


#: scipy's defaults, tolerances tightened. ftol is relative to max(|f|, 1), so it must be
#: 0 for losses below 1; a run ends when an iteration no longer lowers f at all, or on gtol.
LBFGS_OPTIONS = dict(maxiter=50_000, maxfun=100_000, ftol=0.0, gtol=1e-12)


def lbfgs(problem, coef, intercept):
    """L-BFGS-B (scipy's defaults, tolerances tightened) from ``(coef, intercept)``.

    Every evaluation computes the objective and its gradient: one pass over X, two
    products with it.
    """
    trace = []
    theta = np.concatenate([np.ravel(coef), np.ravel(intercept)])
    start = time.perf_counter()
    result = minimize(
        _objective_and_gradient, theta, method="L-BFGS-B", jac=True,
        args=(problem.X_train, problem.Y_train, problem.function, trace),
        options=LBFGS_OPTIONS,
    )  # fmt: skip
    n_outputs = problem.Y_train.shape[1]
    losses, times = np.array(trace).T
    return LBFGSResult(
        float(result.fun), result.x[:-n_outputs].reshape(n_outputs, -1), result.x[-n_outputs:],
        losses, times - start, str(result.message),
    )  # fmt: skip


@dataclass
class Reference:
    loss: float  # L*, the best training objective found
    test_loss: float  # the held-out loss of the weights that reach it
    starts: list  # (start, final loss, evaluations, L-BFGS-B's message)
    from_initialisation: LBFGSResult  # the run from ours' initialisation
    small_start: tuple  # (coef, intercept): the small random start
    from_small_start: LBFGSResult  # the run from it


def reference_optimum(problem, n_random=3, long_run_epochs=1000, seed=0):
    """Best L-BFGS-B optimum over several starts.

    Starts: OptimalLRRegressor's initialisation; ``n_random`` random ones
    (``W ~ N(0, 1/n_features)``, ``b`` at ours' plus ``N(0, 0.1^2)``); the small random
    start of the time-to-accuracy target (:func:`small_random_start`); and the end of
    a long full-batch run of ours (conjugate gradients, ``long_run_epochs`` steps),
    itself a candidate too.
    """
    rng = np.random.default_rng(seed)
    coef0, intercept0 = initial_weights(problem)
    starts = [("ours' initialisation", coef0, intercept0)]
    for k in range(n_random):
        starts.append((
            f"random {k + 1}",
            rng.standard_normal(coef0.shape) / np.sqrt(coef0.shape[1]),
            intercept0 + 0.1 * rng.standard_normal(intercept0.shape),
        ))  # fmt: skip
    small_start = small_random_start(problem, seed)
    starts.append((f"small random, N(0, {SMALL_START_SD}^2)", *small_start))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        long_run = OptimalLRRegressor(
            problem.activation, batch_size="full", max_iter=long_run_epochs, tol=0.0,
            n_iter_no_change=long_run_epochs + 1,
        ).fit(problem.X_train, problem.Y_train)  # fmt: skip
    long_weights = (np.atleast_2d(long_run.coef_), np.atleast_1d(long_run.intercept_))
    starts.append((f"end of {long_run_epochs} CG steps of ours", *long_weights))
    rows, candidates, runs = [], [], []
    for name, coef, intercept in starts:
        runs.append(lbfgs(problem, coef, intercept))
        rows.append((name, runs[-1].loss, len(runs[-1].trace), runs[-1].message))
        candidates.append((runs[-1].loss, runs[-1].coef, runs[-1].intercept))
    long_loss = objective(problem.X_train, problem.Y_train, *long_weights, problem.function)
    rows.append((f"{long_run_epochs} CG steps of ours, not polished", long_loss, 0, "-"))
    candidates.append((long_loss, *long_weights))
    loss, coef, intercept = min(candidates, key=lambda candidate: candidate[0])
    test_loss = objective(problem.X_test, problem.Y_test, coef, intercept, problem.function)
    small_run = runs[n_random + 1]
    return Reference(loss, test_loss, rows, runs[0], small_start, small_run)


def small_random_start(problem, seed=0):
    """Every weight and intercept ``N(0, SMALL_START_SD^2)``, from a generator of its own
    (the other random starts stay as they were)."""
    coef0, intercept0 = initial_weights(problem)
    rng = np.random.default_rng([seed, 1])
    return (
        SMALL_START_SD * rng.standard_normal(coef0.shape),
        SMALL_START_SD * rng.standard_normal(intercept0.shape),
    )


class _TargetReached(Exception):
    """Ends a timed L-BFGS-B run at its first evaluation at or below the target."""


def lbfgs_seconds_to(problem, coef, intercept, target):
    """Seconds :func:`lbfgs` takes from ``(coef, intercept)`` to its first evaluation
    at or below ``target``, or None where it ends above it.

    The same run as :func:`lbfgs` (L-BFGS-B is deterministic), stopped there: timed again
    on its own, it can be repeated at the cost of the time to the target only.
    """
    trace = []

    def stop_at_target(theta, *args):
        loss, gradient = _objective_and_gradient(theta, *args)
        if loss <= target:
            raise _TargetReached
        return loss, gradient

    theta = np.concatenate([np.ravel(coef), np.ravel(intercept)])
    start = time.perf_counter()
    try:
        minimize(
            stop_at_target, theta, method="L-BFGS-B", jac=True,
            args=(problem.X_train, problem.Y_train, problem.function, trace),
            options=LBFGS_OPTIONS,
        )  # fmt: skip
    except _TargetReached:
        return trace[-1][1] - start
    return None
