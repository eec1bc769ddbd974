# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""How far a floating-point result can be from the exact one, in units of ``eps``.

Every tolerance of the package that says "equal up to rounding" is derived here.
"""

import numpy as np

__all__ = ["sum_rounding"]


def sum_rounding(n_terms, dtype=np.float64):
    """Bound on the relative rounding error of a sum of ``n_terms`` terms of one sign.

    Summed one after the other in floating point, the error is at most ``(n - 1) u``
    times the sum of the terms' magnitudes, ``u = eps / 2`` the unit roundoff
    (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, section 4.2); a
    product of two vectors of length ``n`` adds one rounding per term, ``n u``. The
    worst case, not the typical ``sqrt(n) u`` of independent errors, so that a
    difference within the bound is never taken for a real one. Pairwise and blocked
    summation (numpy, BLAS) stay within it.

    Parameters
    ----------
    n_terms : int
    dtype : dtype, default=np.float64
        The precision the sum is computed in.

    Returns
    -------
    float
        ``n_terms * eps / 2``.
    """
    return 0.5 * n_terms * float(np.finfo(dtype).eps)
