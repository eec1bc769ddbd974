# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""How far a floating-point sum can be from the exact one, in units of ``eps``.

A sum of ``n`` terms of one sign (a loss, a mean, a pre-activation), added one after
the other, is off by at most ``(n - 1) u`` of itself, ``u = eps / 2`` the unit
roundoff (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, section 4.2),
and typically by about ``sqrt(n) u``, its errors adding like a random walk; the
pairwise and blocked sums of numpy and BLAS do no worse. Each "equal up to rounding"
of the package is one of the two:

- :func:`sum_rounding`, the worst case ``n u``, where a difference within it must
  never be taken for a real one: a column's spread (:mod:`._preconditioning`), what a
  step from a fitted model gains (:mod:`._diagnostics`);
- :func:`loss_tie`, the typical size, where two evaluations of a loss within it are a
  tie, broken towards the shorter step (the exact line search's check; in full batch,
  the check of the pooled step and of a step along the knots). Too large a tie
  declines real decreases and stalls a search short of the optimum (a loss ``r`` of
  itself too high leaves a flat direction's coefficients about ``sqrt(r)`` off); too
  small a one takes a step whose decrease is rounding, which leaves the loss within
  rounding. The smaller error is the second, so a tie is the typical size, not the
  worst case.

Tolerances that are not about the rounding of a sum say why where they are defined:
the sweep's ``_line_search.TIE_TOLERANCE``, ``_activations.KNOT_TOLERANCE`` (a margin
on positions) and ``_solver.ROUNDING_FLOOR_ULPS`` (a size of residuals). Plain Python,
so that the compiled line search calls them too.
"""

import math

import numpy as np

__all__ = ["EPS", "loss_tie", "sum_rounding"]

#: float64's machine epsilon, ``2**-52``.
EPS = float(np.finfo(np.float64).eps)


def sum_rounding(n_terms, eps=EPS):
    """The worst-case relative rounding error of a sum of ``n_terms`` terms of one sign,
    ``n u``, in the precision of machine epsilon ``eps``."""
    return 0.5 * n_terms * eps


def loss_tie(n_terms, eps=EPS):
    """Relative to either, the difference below which two sums of ``n_terms`` squares
    (two evaluations of a loss) are a tie: the typical size of the difference of their
    rounding errors, ``sqrt(2 n) u``, rounded up to ``sqrt(n) eps``."""
    return math.sqrt(n_terms) * eps
