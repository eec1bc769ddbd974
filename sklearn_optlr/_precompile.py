# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Compile the numba kernels ahead of the first fit: for container images, CI and demos.

Small batches run in kernels that numba compiles the first time a fit needs them and
caches on disk (next to the package's sources, or under ``NUMBA_CACHE_DIR``). A
fresh environment therefore pays for the compilation at its first fits.
:func:`precompile` pays for it at a moment of the user's choosing, by fitting tiny
models on every path that a fit can take, so it compiles exactly the code that fits
run, and nothing that they do not.
"""

import warnings

import numpy as np
from scipy import sparse

__all__ = ["precompile"]

#: The dtypes that fits compute in (``X`` of any other dtype is converted to float64).
_FIT_DTYPES = ("float64", "float32")

#: The paths a fit can take: a batch size below the tiny data's rows (with
#: ``precondition="auto"``: 1 runs the one-row kernel, 2 the batch kernel without a
#: preconditioner, fewer rows than ``n_features + 1``, 4 the batch kernel with one,
#: which CSR batches take in numpy) or the full batch, by a step rule that needs no
#: search ("pooled"; "optimal" and fixed rates run the same code) or by the exact search.
_BATCH_SIZES = (1, 2, 4, "full")
_STEPS = ("pooled", "exact")

#: Features and targets this small have gradients whose squares underflow float64
#: (below 2**-960, the kernels' safe range), which sends rows and mini-batches to the
#: rescaled step: the kernel that takes it is compiled only where data need it.
#: float32 data cannot reach that scale.
_UNDERFLOWING_SCALE = 2.0**-500


def precompile(dtypes=_FIT_DTYPES, *, sparse_input=True):
    """Compile the kernels that :class:`OptimalLRRegressor` fits run, now.

    Fits with small batches run in kernels that numba compiles when a fit first
    needs them, once for each dtype, and then caches on disk, so the first fits
    in a fresh environment wait for the compiler (:doc:`/benchmarks` says how
    long). Call this once where that wait is better spent: when building a
    container image, in a CI job's setup, or before timing a demo. It fits tiny
    models on every path a fit can take (batch size 1, mini-batches, full batch;
    each step rule; dense and, with ``sparse_input``, CSR ``X``), so later fits
    on these dtypes load everything from numba's cache.

    Calling it again, in the same process or in a later one with the cache in
    place, compiles nothing and returns quickly. numba caches next to the
    package's sources, or under the folder that the ``NUMBA_CACHE_DIR``
    environment variable names: set the same value for this call and for the
    fits. A CSR matrix whose index arrays are int64 (more stored entries than
    int32 can count) still compiles its kernel at its first fit.

    Parameters
    ----------
    dtypes : iterable of {"float64", "float32"} or numpy dtypes, \
            default=("float64", "float32")
        The dtypes of ``X`` to compile for. Fits compute in ``X``'s dtype when it is
        float32 and in float64 otherwise.
    sparse_input : bool, default=True
        Whether to compile the kernels for CSR ``X`` too.

    Returns
    -------
    None
        The compiled kernels are kept in numba's cache and in this process.

    Raises
    ------
    ValueError
        If a dtype is not float64 or float32.

    See Also
    --------
    OptimalLRRegressor : The estimator whose kernels this compiles.

    Examples
    --------
    >>> import sklearn_optlr
    >>> sklearn_optlr.precompile(dtypes=["float64"])
    """
    from ._regressor import OptimalLRRegressor

    names = []
    for dtype in dtypes:
        name = np.dtype(dtype).name
        if name not in _FIT_DTYPES:
            raise ValueError(f"Fits compute in float64 or float32, not {name}.")
        names.append(name)
    # Eight rows on two features: more rows than the largest mini-batch, and a batch of
    # at least n_features + 1 rows, from which "auto" preconditions.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 2))
    y = X @ np.array([1.0, -1.0]) + 0.5
    with warnings.catch_warnings():
        # A model of one or two epochs on eight rows warns that it did not converge.
        warnings.simplefilter("ignore")
        for name in names:
            inputs = [X.astype(name)]
            if sparse_input:
                inputs.append(sparse.csr_matrix(inputs[0]))
            for X_ in inputs:
                for batch_size in _BATCH_SIZES:
                    for step in _STEPS:
                        model = OptimalLRRegressor(
                            "relu", step=step, batch_size=batch_size, max_iter=2, tol=0.0,
                            random_state=0,
                        )  # fmt: skip
                        model.fit(X_, y.astype(name))
            if name == "float64":
                # Batch size 1 compiles the rescaling kernel into the one-row rescue;
                # mini-batches call it from Python, which a warm cache loads separately.
                for batch_size in (1, 4):
                    model = OptimalLRRegressor(
                        batch_size=batch_size, max_iter=1, precondition=False
                    )
                    model.fit(X * _UNDERFLOWING_SCALE, y * _UNDERFLOWING_SCALE)
