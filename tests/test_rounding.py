# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The rounding bounds of ``sklearn_optlr._rounding``, against sums summed exactly
(``math.fsum``) and one term after the other in float64."""

import math

import numpy as np

from sklearn_optlr._rounding import EPS, loss_tie, sum_rounding


def recursive_sum(terms):
    total = 0.0
    for term in terms:
        total += term
    return total


def test_the_worst_case_bound_holds_and_is_reached_within_a_factor_two():
    # 1 followed by terms of 0.75 eps: every addition rounds up by 0.25 eps, the same
    # way each time, so the error grows as n, not sqrt(n).
    n_terms = 10_000
    terms = [1.0] + [0.75 * EPS] * (n_terms - 1)
    exact = math.fsum(terms)
    error = abs(recursive_sum(terms) - exact) / exact
    assert error <= sum_rounding(n_terms)
    assert error >= 0.5 * sum_rounding(n_terms) * 0.9
    # Random terms of one sign stay within it too.
    rng = np.random.default_rng(0)
    for _ in range(10):
        terms = rng.random(n_terms) ** 2
        exact = math.fsum(terms)
        assert abs(recursive_sum(terms) - exact) <= sum_rounding(n_terms) * exact


def test_two_orders_of_a_sum_of_squares_tie_within_the_typical_bound():
    # Summed forwards and backwards, the same squares differ by their rounding errors,
    # which add like a random walk: within loss_tie(n), and not vacuously far below it.
    rng = np.random.default_rng(0)
    for n_terms in (100, 10_000):
        differences = []
        for _ in range(20):
            squares = rng.standard_normal(n_terms) ** 2
            forward, backward = recursive_sum(squares), recursive_sum(squares[::-1])
            differences.append(abs(forward - backward) / math.fsum(squares))
        assert max(differences) <= loss_tie(n_terms)
        assert np.median(differences) >= 0.01 * loss_tie(n_terms)
