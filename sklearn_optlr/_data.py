# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Training arrays from validated input: the checks scikit-learn's validation leaves to
the estimator, and the hold-out split of early stopping."""

import numpy as np
from scipy import sparse
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import validate_data

from ._step import check_sample_weight

__all__ = ["held_out_rows", "rows_of", "split_validation", "training_arrays"]


def rows_of(array, rows):
    """``array[rows]``: a batch's rows of a dense array, a CSR matrix or a vector.

    ``rows`` is a slice or an array of integer row indices (not a boolean mask). The
    rows of a C-ordered array are copied by ``np.take``, which copies a row at a time
    where fancy indexing copies entry by entry: on batches of thousands of rows that
    gather is a sizeable part of a mini-batch step (``benchmarks/bench_speed.py``).
    Other layouts are indexed: ``np.take`` would first copy the whole array.
    """
    if isinstance(rows, slice) or sparse.issparse(array) or not array.flags.c_contiguous:
        return array[rows]
    return np.take(array, rows, axis=0)


def training_arrays(X, y):
    """``X`` as the solver takes it and ``y`` as a 2-D array of ``X``'s dtype.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        From ``validate_data`` (float32 or float64, CSR or CSC).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)

    Returns
    -------
    X : {ndarray, CSR matrix}
        CSR with summed duplicates where sparse (batches are row slices, and the
        kernels take each stored entry as a whole value), never the user's matrix
        modified.
    Y : ndarray of shape (n_samples, n_outputs)
        In C order, as the batches gather its rows (a DataFrame's targets come in
        Fortran order).
    single_output : bool
        Whether ``y`` was 1-D.
    """
    if sparse.issparse(X):
        X = X.tocsr()
        if not X.has_canonical_format:
            # Duplicates of an entry would each count in a row's norm. Summed on a copy.
            X = X.copy()
            X.sum_duplicates()
    if sparse.issparse(y):
        # validate_data passes a sparse y through with multi_output=True.
        raise TypeError(
            "A sparse y was passed, but dense targets are required. Use y.toarray() to "
            "convert it to a dense array."
        )
    with np.errstate(over="ignore"):
        Y = np.asarray(y, dtype=X.dtype)
    if not np.all(np.isfinite(Y)):
        if not np.all(np.isfinite(np.asarray(y, dtype=np.float64))):
            # validate_data skips its check under sklearn.set_config(assume_finite=True).
            raise ValueError("Input y contains NaN or infinity.")
        raise ValueError(
            f"y has values beyond the range of {X.dtype.name}, the dtype of X (largest "
            f"magnitude {np.max(np.abs(y)):.3g}). Pass float64 X, or rescale y."
        )
    single_output = Y.ndim == 1
    Y = np.ascontiguousarray(Y.reshape(-1, 1) if single_output else Y)
    return X, Y, single_output


def split_validation(X, Y, sample_weight, validation_fraction, rng):
    """Early stopping's split: the training rows, and the held-out ones.

    Returns
    -------
    X, Y, sample_weight
        The training rows (copies).
    validation : tuple (X_val, Y_val, sample_weight_val)
    """
    n_samples = X.shape[0]
    n_validation = int(np.ceil(validation_fraction * n_samples))
    if n_validation < 2 or n_samples - n_validation < 1:
        fix = (
            "Use more data or a larger validation_fraction."
            if n_validation < 2
            else "Use a smaller validation_fraction."
        )
        raise ValueError(
            f"early_stopping needs at least 2 validation samples and 1 training sample; "
            f"validation_fraction={validation_fraction} of {n_samples} samples "
            f"gives {n_validation} for validation and {n_samples - n_validation} for "
            f"training. {fix}"
        )
    train_rows, validation_rows = train_test_split(
        np.arange(n_samples), test_size=n_validation, random_state=rng.integers(2**31)
    )
    parts = [
        (X[rows], Y[rows], None if sample_weight is None else sample_weight[rows])
        for rows in (train_rows, validation_rows)
    ]
    for (_, _, weights), name in zip(parts, ("training", "validation")):
        if weights is not None and not weights.sum() > 0:
            raise ValueError(
                f"early_stopping's random split left the {name} rows with zero total "
                "sample_weight: change random_state or validation_fraction, or give "
                "more rows a positive weight."
            )
    return *parts[0], parts[1]


def held_out_rows(estimator, X, Y, sample_weight, given, rng):
    """The training rows and the held-out ones that early stopping scores.

    Parameters
    ----------
    estimator : OptimalLRRegressor
        Fitted on ``X`` already by ``validate_data``: the given set must have its
        features (and their names).
    X, Y, sample_weight
        The training data, as :func:`training_arrays` and ``check_sample_weight`` gave
        them.
    given : tuple (X_val, y_val, sample_weight_val)
        ``fit``'s validation set, each None where not given.
    rng : numpy.random.Generator
        Draws the split where no set is given.

    Returns
    -------
    X, Y, sample_weight
        The training rows: all of them where a set is given (HistGradientBoosting's
        rule), else those :func:`split_validation` leaves; all of them without early
        stopping.
    validation : tuple (X_val, Y_val, sample_weight_val) or None
        None without early stopping.

    Raises
    ------
    ValueError
        Where a set is given in part, or without ``early_stopping``, or does not
        match the training data.
    """
    X_val, y_val, sample_weight_val = given
    if (X_val is None) != (y_val is None) or (sample_weight_val is not None and X_val is None):
        names = ("X_val", "y_val", "sample_weight_val")
        named = ", ".join(name for name, part in zip(names, given) if part is not None)
        raise ValueError(
            f"fit was given {named} alone: a validation set needs both X_val and y_val "
            "(and sample_weight_val only with them)."
        )
    if X_val is not None and not estimator.early_stopping:
        raise ValueError(
            "X_val and y_val were given but early_stopping=False: the validation set is "
            "only used to stop early. Set early_stopping=True, or do not pass them."
        )
    if not estimator.early_stopping:
        return X, Y, sample_weight, None
    if X_val is None:
        return split_validation(X, Y, sample_weight, estimator.validation_fraction, rng)
    try:
        X_val, y_val = validate_data(
            estimator, X_val, y_val, reset=False, accept_sparse=["csr", "csc"],
            dtype=X.dtype, order="C", multi_output=True, y_numeric=True,
        )  # fmt: skip
        X_val, Y_val, _ = training_arrays(X_val, y_val)
        # Checked whatever assume_finite says: one NaN made every epoch's R^2 NaN, and
        # early stopping ran to max_iter in silence.
        if not np.all(np.isfinite(X_val.data if sparse.issparse(X_val) else X_val)):
            raise ValueError("Input X contains NaN or infinity.")
        if sample_weight_val is not None:
            sample_weight_val = check_sample_weight(sample_weight_val, X_val, X.dtype)
    except (TypeError, ValueError) as error:
        # scikit-learn's checks name X, y and sample_weight.
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"The validation set (X_val, y_val, sample_weight_val): {error}") from error
    _check_scorable(Y_val, sample_weight_val, Y.shape[1])
    return X, Y, sample_weight, (X_val, Y_val, sample_weight_val)


def _check_scorable(Y_val, sample_weight_val, n_outputs):
    """Refuse a given validation set on which early stopping's R^2 is not defined: other
    outputs than the training targets', fewer than 2 rows of positive weight (as the
    split refuses), or targets constant on those rows (R^2 0 at every epoch, which
    would stop the fit after ``n_iter_no_change`` epochs and keep the first)."""
    if Y_val.shape[1] != n_outputs:
        raise ValueError(
            f"y_val has {Y_val.shape[1]} outputs where y has {n_outputs}: the validation "
            "set must have the training targets' outputs."
        )
    weighted = (
        np.ones(len(Y_val), dtype=bool) if sample_weight_val is None else sample_weight_val > 0
    )
    if np.count_nonzero(weighted) < 2:
        raise ValueError(
            "The validation set needs at least 2 rows of positive weight for its R^2; got "
            f"{np.count_nonzero(weighted)}."
        )
    if np.all(np.ptp(Y_val[weighted], axis=0) == 0):
        raise ValueError(
            "y_val is constant on the validation rows of positive weight: their R^2, which "
            "early stopping compares from epoch to epoch, is not defined."
        )
