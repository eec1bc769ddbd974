# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The solver's configuration: every "auto" and cross-parameter rule, resolved once.

:func:`resolve` turns the estimator's parameters and the training data into a frozen
:class:`SolverConfig`; the training loop reads it and never looks at the parameters
again. Every rule that decides how to train from more than one parameter, or from a
parameter and the data, lives here, and so does every check that makes such a
combination an error (the single-parameter checks are scikit-learn's
``_parameter_constraints``; warnings about the data are :mod:`._diagnostics`').
"""

from dataclasses import dataclass

import numpy as np

from ._activations import PiecewiseLinear, resolve_activation
from ._batch_growth import is_full_batch_phase
from ._pooling import pooled_window
from ._preconditioning import MAX_FEATURES, auto_preconditions

__all__ = ["AveragingConfig", "SolverConfig", "resolve"]

#: ``batch_size="auto"``: at most this many rows a batch, as MLPRegressor's "auto" (the
#: first batches of ``fit``'s adaptive schedule, and every batch of ``partial_fit``).
AUTO_BATCH_SIZE = 200


@dataclass(frozen=True)
class AveragingConfig:
    """How the iterates are averaged (see :class:`._averaging.IterateAverage`).

    Attributes
    ----------
    start_sample : int or None
        Average from the step that brings the samples seen to this number (an
        integer ``average``); None: over roughly the last half of training.
    keep_better : bool
        At the end of ``fit``, keep the last iterate where it fits the training data
        better than the average (``average="auto"``).
    """

    start_sample: int | None
    keep_better: bool


@dataclass(frozen=True)
class SolverConfig:
    """Everything the training loop needs to know, with nothing left to resolve.

    Attributes
    ----------
    activation : PiecewiseLinear
    step : {"pooled", "optimal", "exact"} or float
        The step rule; a float is a fixed learning rate.
    batch_size : int
        Rows a batch, at most the training rows.
    conjugate : bool
        Conjugate-gradient directions (full batch only).
    alpha : float
    max_iter : int
        Epochs to run at most (1 for ``partial_fit``).
    tol : float or None
        The stopping rule's tolerance; None never stops early (``partial_fit``).
    n_iter_no_change : int
    shuffle : bool
    verbose : int
    window : float
        The pooled rule's window, in batches (1.0: the batch's own rate).
    averaging : AveragingConfig or None
        None: the model is the last iterate.
    precondition : bool
        Descend along the preconditioned gradient.
    track_moments : bool
        Keep the rows' moments (``partial_fit``), also for chunks that are not
        preconditioned, so that a later chunk's preconditioner covers the stream.
    incremental : bool
        A ``partial_fit`` call: one epoch, no stopping rule.
    larger_batches : tuple of SolverConfig
        ``batch_size="auto"`` in ``fit``: the configurations of the adaptive schedule's
        larger batches (:mod:`._batch_growth`), in increasing order: ``batch_size``
        doubled while below half the rows, then the full batch. Empty: the batch size
        stays.
    stops_by_extrapolation : bool
        Full batch with a line-search step, stopping on the training loss with
        ``tol > 0``: training stops once the last decreases, extrapolated geometrically,
        put the minimum within ``tol``, and the plateau rule only ends a fit that
        stopped moving.
    """

    activation: PiecewiseLinear
    step: object
    batch_size: int
    conjugate: bool
    alpha: float
    max_iter: int
    tol: float | None
    n_iter_no_change: int
    shuffle: bool
    verbose: int
    window: float
    averaging: AveragingConfig | None
    precondition: bool
    track_moments: bool
    incremental: bool
    stops_by_extrapolation: bool
    larger_batches: tuple = ()


def resolved_batch_size(batch_size, n_samples):
    """The rows a batch of ``batch_size`` (an int, ``"auto"`` or ``"full"``) takes."""
    if batch_size == "full":
        return n_samples
    if batch_size == "auto":
        return min(AUTO_BATCH_SIZE, n_samples)
    # int(): a numpy unsigned or narrow integer (a grid from an array) would wrap in the
    # solver's arithmetic on batch counts.
    return min(int(batch_size), n_samples)


def _check_activation_dtype(activation, dtype):
    with np.errstate(over="ignore"):
        parts = (activation.knots, activation.values, activation.slopes)
        representable = all(np.all(np.isfinite(part.astype(dtype))) for part in parts)
    if not representable:
        # Otherwise the kernels would see inf knots and report a divergence.
        raise ValueError(
            f"The activation's knots, values or slopes overflow {np.dtype(dtype).name}, the "
            f"dtype of X: {activation!r}. Pass float64 X, or rescale the activation."
        )


def _solver_is_conjugate(params, batch_size, n_samples, incremental):
    """Whether to run conjugate gradients, after the solver's cross-parameter checks."""
    full_batch = batch_size >= n_samples
    line_search = isinstance(params["step"], str)
    if params["solver"] == "cg":
        if not full_batch:
            raise ValueError(
                "solver='cg' needs the full batch (conjugate directions are built from "
                f"exact gradients); got batch_size={params['batch_size']!r} for {n_samples} "
                "samples. Use batch_size='full', or solver='gd'."
            )
        if not line_search:
            raise ValueError(
                "solver='cg' needs a line search along its directions: use "
                f"step='pooled', 'optimal' or 'exact', not a fixed step={params['step']!r}."
            )
        return True
    # "auto": a partial_fit call sees one chunk, where conjugate directions would not
    # carry over to the next.
    return params["solver"] == "auto" and full_batch and not incremental and line_search


def _averaging(average, full_batch, incremental):
    """The averaging ``average`` asks for, or None."""
    if isinstance(average, str):  # "auto"
        # partial_fit's chunks are batches of a longer stream: always averaged, and the
        # last iterate has just fitted the chunk, so the chunk cannot tell which of the
        # two is better: only fit keeps the better one. A full-batch fit has no noise to
        # average.
        if full_batch and not incremental:
            return None
        return AveragingConfig(start_sample=None, keep_better=not incremental)
    # numpy booleans too (a grid from an array), which `is True` would take for ints.
    if isinstance(average, (bool, np.bool_)):
        return AveragingConfig(start_sample=None, keep_better=False) if average else None
    return AveragingConfig(start_sample=int(average), keep_better=False)


def _preconditioning(params, X, batch_size):
    """``(precondition, track_moments)``: whether to precondition, and whether to keep
    the rows' moments for a later chunk that would be (``partial_fit``)."""
    precondition = params["precondition"]
    if isinstance(precondition, str):  # "auto"
        # A chunk that a large enough chunk at this batch_size would precondition keeps
        # its moments too (they cost a pass over the chunk).
        largest_batch = resolved_batch_size(params["batch_size"], np.inf)
        return (
            auto_preconditions(X, batch_size, params["step"]),
            auto_preconditions(X, largest_batch, params["step"]),
        )
    wanted = bool(precondition)  # also numpy booleans, from a grid
    if wanted and X.shape[1] > MAX_FEATURES:
        raise ValueError(
            "precondition=True needs dense matrices of (n_features + 1)**2 entries, "
            f"and X has {X.shape[1]:,} features (at most {MAX_FEATURES:,}): use "
            "precondition='auto' or False for wide data."
        )
    return wanted, wanted


def resolve(params, X, n_outputs, incremental):
    """The configuration of one ``fit`` or ``partial_fit`` call on its training rows.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params(deep=False)``), already checked one
        by one against its ``_parameter_constraints``.
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
        The training rows (without those held out for early stopping).
    n_outputs : int
    incremental : bool
        A ``partial_fit`` call.

    Returns
    -------
    SolverConfig

    Raises
    ------
    ValueError
        For parameters that contradict each other or the data.
    """
    n_samples, n_features = X.shape
    activation = resolve_activation(params["activation"], params["negative_slope"])
    _check_activation_dtype(activation, X.dtype)
    batch_size = resolved_batch_size(params["batch_size"], n_samples)
    # "auto" in fit grows the batch (partial_fit's chunks are one batch each), from a
    # size where the schedule may already train by the full batch.
    adaptive = params["batch_size"] == "auto" and not incremental
    # Conjugate directions are built from exact gradients: asked for, "auto" gives them
    # the full batch (a partial_fit chunk whole) rather than refusing a size it chose.
    cg_asked = params["batch_size"] == "auto" and params["solver"] == "cg"
    if cg_asked or (adaptive and is_full_batch_phase(batch_size, n_samples)):
        batch_size = n_samples
    full_batch = batch_size >= n_samples
    conjugate = _solver_is_conjugate(params, batch_size, n_samples, incremental)
    precondition, track_moments = _preconditioning(params, X, batch_size)
    # The pooled rate averages out the noise of small batches; a full-batch fit has none,
    # while partial_fit's chunks are batches of a longer stream.
    noiseless = full_batch and not incremental
    larger_batches = ()
    if adaptive and not full_batch:
        # The ladder of doublings, each size resolved as if asked for, the last from
        # half the rows on being the full batch.
        sizes = [2 * batch_size]
        while not is_full_batch_phase(sizes[-1], n_samples):
            sizes.append(2 * sizes[-1])
        sizes[-1] = "full"
        larger_batches = tuple(
            resolve({**params, "batch_size": size}, X, n_outputs, incremental) for size in sizes
        )
    # Python scalars: numpy ones (a grid from an array) would set the precision of
    # float64 arithmetic (np.float32) or wrap in integer arithmetic (np.uint8).
    step = params["step"]
    line_search = isinstance(step, str)
    on_training_loss = not (params["early_stopping"] or incremental)
    return SolverConfig(
        activation=activation,
        step=step if isinstance(step, str) else float(step),
        batch_size=batch_size,
        conjugate=conjugate,
        alpha=float(params["alpha"]),
        max_iter=1 if incremental else int(params["max_iter"]),
        tol=None if incremental else float(params["tol"]),
        n_iter_no_change=int(params["n_iter_no_change"]),
        shuffle=bool(params["shuffle"]),
        verbose=int(params["verbose"]),
        window=1.0 if noiseless else pooled_window(n_outputs * (n_features + 1), batch_size),
        averaging=_averaging(params["average"], full_batch, incremental),
        precondition=precondition,
        track_moments=track_moments,
        incremental=incremental,
        stops_by_extrapolation=(
            full_batch and line_search and on_training_loss and float(params["tol"]) > 0
        ),
        larger_batches=larger_batches,
    )
