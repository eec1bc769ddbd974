# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""The step rules and the exact line search, written once and compiled.

Small numba functions that Python calls as well as the compiled kernels (skglm's
pattern, which :func:`._pooling.pooled_rate` and :func:`._step.power_of_two_scale`
follow too): the numpy reference epoch, the full-batch epoch and the kernels all take
their step from :func:`step_length`, so a fix lands once and the reference path tests
what the kernels run. Nothing here imports the solver or the estimator.

A rule sees the search direction ``d`` divided by its power-of-two scale ``s`` (see
:func:`._step.scaled_direction`) through two forms: the numerator ``-<g, d> / s**2``
(``<g, g> / s**2`` along ``d = -g``) and the curvature ``d^T H d / s**2``. It returns
the step along ``d / s``, which is ``s`` times the learning rate along ``d``.

The exact search needs the line itself, as a tuple (see :func:`._step.exact_line`):
``(z, v, y, w, count, knots, values, slopes, penalty, bound, event_step, event_delta)``,
where the first ``count`` entries of ``z``, ``v``, ``y`` and ``w`` are the units'
pre-activations, their change per unit step, their targets and their weights,
``knots, values, slopes`` the activation, ``penalty`` the penalty's quadratic
``(c0, c1, c2)`` in the step, ``bound`` the longest step searched (``inf`` for the
whole line), and ``event_step, event_delta`` scratch for the kink crossings up to it
(:func:`count_crossings` of them plus one, ``event_delta`` with 5 rows).
"""

import numpy as np
from numba import njit

from ._pooling import pooled_rate
from ._rounding import EPS, loss_tie

__all__ = ["EXACT", "FIXED", "OPTIMAL", "POOLED", "exact_line_search", "step_length"]

# Reassociation lets the sums vectorise; no assumption about NaN or inf is made, so a
# diverging fit is still seen by the callers' finiteness checks.
_FASTMATH = {"reassoc", "contract", "arcp"}

# For compiled functions that only other compiled functions call: without the wrappers
# through which Python calls a numba function, which a first fit would compile for
# nothing (boxing the kernels' scratch, a tuple of nine arrays, took longer to compile
# than the function that allocates it).
_KERNEL_ONLY = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}

#: Step rules, as :func:`step_length` takes them.
FIXED, OPTIMAL, EXACT, POOLED = 0, 1, 2, 3

#: Relative to the loss at the start of the line, candidate minima of the exact line
#: search's sweep closer than this are ties, broken towards the shorter step. Not a
#: bound of :mod:`._rounding`: the candidates' values come from running sums over the
#: kink crossings, whose terms can be far larger than the loss they add up to, so their
#: error has no bound relative to it. The sweep only ranks candidates; its choice is
#: then checked against losses summed directly (:func:`._rounding.loss_tie`), so this
#: needs only to be small against any decrease that matters: ``2**12 eps``, about the
#: 1e-12 the search has used since it was written (the oracle tests pass with either).
TIE_TOLERANCE = 2**12 * EPS


def step_rule(step):
    """``(rule, fixed_rate)`` for the solver's ``step``: "optimal", "pooled", "exact" or a
    fixed learning rate."""
    if isinstance(step, str):
        return {"optimal": OPTIMAL, "pooled": POOLED, "exact": EXACT}[step], 0.0
    return FIXED, float(step)


def quadratic_step(slope_along, curvature_along):
    """Minimiser of ``a -> slope_along * a + curvature_along * a**2 / 2`` over ``a >= 0``.

    ``slope_along`` is the directional derivative of the loss (``-<g, g>`` along
    ``-g``). Returns 0 when the direction does not descend: a zero gradient, for
    instance every unit inactive on the batch, is never divided by. A descent
    direction of zero curvature (possible only through rounding, since zero
    curvature implies a zero gradient along ``-g``) also gives 0 rather than an
    infinite step. Plain Python, so the compiled step rules use it too.
    """
    if not slope_along < 0 or not curvature_along > 0:
        return 0.0
    step = -slope_along / curvature_along
    return step if np.isfinite(step) else 0.0


_quadratic_step = njit(cache=True, inline="always")(quadratic_step)
_loss_tie = njit(cache=True, inline="always")(loss_tie)
_pooled_rate = njit(cache=True, **_KERNEL_ONLY)(pooled_rate)


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def step_length(rule, numerator, curvature, scale, fixed_rate, rate_memory, window, share, line):
    """The step along ``d / scale`` by a step rule.

    Parameters
    ----------
    rule : int
        :data:`FIXED`, :data:`OPTIMAL` (the quadratic model's minimiser
        ``numerator / curvature``), :data:`POOLED` (see :mod:`._pooling`) or
        :data:`EXACT` (the minimiser of the loss along the line, :func:`exact_line_search`).
    numerator, curvature : float
        ``-<g, d> / scale**2`` and ``d^T H d / scale**2``; :data:`FIXED` reads the
        curvature only for its finiteness (pass 0.0 where it was not computed).
    scale : float
        The direction's power-of-two scale.
    fixed_rate : float
        :data:`FIXED`'s learning rate.
    rate_memory : ndarray of shape (4,), float64
        :data:`POOLED`'s memory, updated in place.
    window : float
        :data:`POOLED`'s window, in batches.
    share : float
        :data:`POOLED`'s weight of the batch: its rows over a full batch's.
    line : tuple or None
        :data:`EXACT`'s line along ``d / scale`` (see the module docstring). None for
        the other rules: then the search is not compiled at all (a first fit by
        another rule does not wait for it), and :data:`EXACT` gives NaN, so that a caller that
        forgot the line stops as diverged rather than silently not stepping.

    Returns
    -------
    float
        The step; 0.0 where the direction is zero (no direction, no step) or the rule
        finds no step that lowers the loss; NaN where the curvature is not finite
        (features beyond about 1e154 make it overflow float64), for the caller to stop.
    """
    # EXACT where there is no direction or its curvature is not finite: as every rule.
    if rule == EXACT and np.isfinite(curvature) and numerator != 0.0:
        return _search_or_nan(line)
    return step_from_forms(
        rule, numerator, curvature, scale, fixed_rate, rate_memory, window, share
    )


@njit(cache=True, **_KERNEL_ONLY)
def _search_or_nan(line):
    """:func:`exact_line_search` along ``line``; NaN where ``line`` is None.

    Not inlined: numba drops the branch of an ``is None`` test on an argument typed
    None before typing a function, so this function compiled for a None line never
    compiles the search.
    """
    if line is None:
        return np.nan
    return exact_line_search(*line)


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def step_from_forms(rule, numerator, curvature, scale, fixed_rate, rate_memory, window, share):
    """:func:`step_length` by the rules that need only the two forms (every rule but
    :data:`EXACT`), without a line; also :data:`EXACT`'s answer where the direction is
    zero or its curvature is not finite."""
    if not np.isfinite(curvature):
        return np.nan
    if numerator == 0.0:
        return 0.0
    if rule == FIXED:
        return fixed_rate * scale
    if rule == POOLED:
        return scale * _pooled_rate(rate_memory, numerator, curvature, scale, window, share)
    return scale * _quadratic_step(-numerator, curvature)


@njit(cache=True, inline="always")
def _knots_below(z, knots, inclusive):
    """How many knots lie below ``z`` (at or below it where ``inclusive``): the index of
    the piece ``z`` lies on, taking a unit on a knot to the piece right of it
    (``inclusive``) or left of it.

    One knot (ReLU, leaky ReLU, abs, identity) takes two comparisons and no branch, which
    leaves the loops over units free for the compiler to vectorise; more knots take a
    binary search, so the cost grows as the log of their number.
    """
    if knots.shape[0] == 1:
        return int((z > knots[0]) | (inclusive & (z == knots[0])))
    low, high = 0, knots.shape[0]
    while low < high:
        middle = (low + high) >> 1
        if z >= knots[middle] if inclusive else z > knots[middle]:
            low = middle + 1
        else:
            high = middle
    return low


@njit(cache=True)
def near_knots(z, knots, tolerance, out):
    """Whether each unit ``z[i, o]`` lies within ``tolerance * (spread_o + |k|)`` of
    its nearest knot ``k``, into ``out``; ``spread_o`` is the root-mean-square of
    output ``o``'s units (see :func:`._activations.on_knots`)."""
    n_knots = knots.shape[0]
    spread = np.zeros(z.shape[1])
    for i in range(z.shape[0]):
        for o in range(z.shape[1]):
            spread[o] += z[i, o] * z[i, o]
    spread = np.sqrt(spread / max(z.shape[0], 1))
    for i in range(z.shape[0]):
        for o in range(z.shape[1]):
            unit = z[i, o]
            piece = _knots_below(unit, knots, True)
            below, above = knots[max(piece - 1, 0)], knots[min(piece, n_knots - 1)]
            nearest = below if abs(unit - below) < abs(unit - above) else above
            out[i, o] = abs(unit - nearest) <= tolerance * (spread[o] + abs(nearest))


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _activate(z, knots, values, slopes):
    """Value and right-hand slope of the piecewise-linear function at ``z``."""
    piece = _knots_below(z, knots, True)
    anchor = max(piece - 1, 0)
    slope = slopes[piece]
    return values[anchor] + slope * (z - knots[anchor]), slope


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _piece_line(piece, z, v, y, knots, values, slopes):
    """Residual ``sigma(z + a v) - y = offset + gain * a`` while on ``piece``."""
    anchor = max(piece - 1, 0)
    slope = slopes[piece]
    return values[anchor] + slope * (z - knots[anchor]) - y, slope * v


@njit(cache=True, inline="always")
def _first_piece(z, v, knots):
    """The piece a unit at ``z`` moving by ``v`` lies on just after the start: a unit on
    a knot and moving left is already on the piece left of it."""
    return _knots_below(z, knots, v >= 0.0)


@njit(cache=True, inline="always")
def _crossings_ahead(z, v, piece, knots, bound):
    """How many knots a unit at ``z`` on ``piece`` (:func:`_first_piece`), moving by
    ``v``, crosses for ``0 < a <= bound``: those between ``z`` and its end,
    ``z + bound v``.

    :func:`_kink_crossings` walks these crossings, and :func:`count_crossings` sizes its
    scratch with them, counted a little further (:data:`_COUNT_REACH`). A NaN ``bound``
    would make the count negative: :func:`._step.exact_line` refuses it.
    """
    end = z + bound * v
    if v > 0.0:
        return _knots_below(end, knots, True) - piece
    if v < 0.0:
        return piece - _knots_below(end, knots, False)
    return 0  # also a NaN v: no crossing


#: count_crossings counts to a bound this much longer, relative, than the search's. The
#: end ``z + bound v`` rounds differently where the compiler fuses its multiply and add
#: (it did in the search compiled from a fit, not in the count), by at most the rounding
#: of the product, an ulp; counted 4 ulps further, the scratch holds every crossing the
#: search can find however either was compiled. Where it held one too few, the search
#: dropped the last crossing in unit order and could return no step.
_COUNT_REACH = 1.0 + 4.0 * EPS


@njit(cache=True)
def count_crossings(z, v, count, knots, bound):
    """At least as many as the knots the first ``count`` units cross along ``z + a v``,
    ``0 < a <= bound``: the size the exact search's scratch needs (less one)."""
    reach = bound * _COUNT_REACH
    n_events = 0
    for e in range(count):
        ze, ve = z[e], v[e]
        n_events += _crossings_ahead(ze, ve, _first_piece(ze, ve, knots), knots, reach)
    return n_events


@njit(cache=True)
def _kink_crossings(
    z, v, y, w, count, knots, values, slopes, penalty, bound, event_step, event_delta
):  # fmt: skip
    """The loss's quadratic coefficients on the first piece of the line, and each kink
    crossing's step (up to ``bound``) and change of them, in ``event_step`` and
    ``event_delta``'s first 3 rows.

    Returns
    -------
    n_events : int
    c0, c1, c2 : float
        The loss on the first piece is ``c0 + c1 a + c2 a^2 / 2``, the penalty's included.
    model1, model2 : float
        The quadratic model's slope and curvature at ``a = 0`` with right-hand slopes,
        the penalty's not included.
    on_knot_falling : bool
        Whether some unit sits on a knot and moves left, where the model's right-hand
        slope is not its piece's.
    """
    n_knots = knots.shape[0]
    # The scratch holds count_crossings' count (plus the sweep's one more), at least
    # this loop's (_COUNT_REACH); the capacity is checked anyway, since a scratch too
    # small would be written past.
    capacity = event_step.shape[0] - 1
    n_events = 0
    c0, c1, c2 = penalty
    model1, model2 = 0.0, 0.0
    on_knot_falling = False
    for e in range(count):
        ze, ve, ye, we = z[e], v[e], y[e], w[e]
        piece = _first_piece(ze, ve, knots)
        ahead = _crossings_ahead(ze, ve, piece, knots, bound)
        offset, gain = _piece_line(piece, ze, ve, ye, knots, values, slopes)
        c0 += 0.5 * we * offset * offset
        c1 += we * offset * gain
        c2 += we * gain * gain
        right_gain = gain
        if ve < 0.0 and piece < n_knots and ze == knots[piece]:
            right_gain = slopes[piece + 1] * ve
            on_knot_falling = True
        model1 += we * offset * right_gain
        model2 += we * right_gain * right_gain
        # Crossings ahead, in order: upwards through knots[piece:], downwards through
        # knots[:piece] from the top. A crossing step that rounds past ``bound`` is taken
        # at it (the sweep's last piece ends there).
        for j in range(min(ahead, capacity - n_events)):
            k = piece + j if ve > 0.0 else piece - 1 - j
            crossing = min((knots[k] - ze) / ve, bound)
            after = k + 1 if ve > 0.0 else k
            new_offset, new_gain = _piece_line(after, ze, ve, ye, knots, values, slopes)
            event_step[n_events] = crossing
            event_delta[0, n_events] = 0.5 * we * (new_offset * new_offset - offset * offset)
            event_delta[1, n_events] = we * (new_offset * new_gain - offset * gain)
            event_delta[2, n_events] = we * (new_gain * new_gain - gain * gain)
            offset, gain = new_offset, new_gain
            n_events += 1
    return n_events, c0, c1, c2, model1, model2, on_knot_falling


@njit(cache=True, fastmath=_FASTMATH)
def _sweep(c0, c1, c2, n_events, order, bound, event_step, event_delta):
    """The minimiser of the piecewise quadratic over ``0 <= a <= bound``, from its coefficients on
    the first piece and the crossings sorted by ``order``: each piece's minimiser clipped
    to it, then the shortest step among the minima equal to rounding.

    Returns the step and the index of its piece; ``event_delta``'s last 2 rows are scratch.
    """
    tie = TIE_TOLERANCE * abs(c0)
    start = 0.0
    lowest = np.inf
    candidates, candidate_values = event_delta[3], event_delta[4]
    for i in range(n_events + 1):
        end = event_step[order[i]] if i < n_events else bound
        if c2 > 0.0:
            candidate = min(max(-c1 / c2, start), end)
        else:
            candidate = end if c1 < 0.0 else start
        # A loss bounded below cannot fall forever: an unbounded piece (rounding can make
        # one where the slope should be zero) is taken at its start.
        if not np.isfinite(candidate):
            candidate = start
        candidates[i] = candidate
        value = c0 + c1 * candidate + 0.5 * c2 * candidate * candidate
        # A value that overflows is no minimum (a nearly flat piece can put the vertex far).
        candidate_values[i] = value if np.isfinite(value) else np.inf
        lowest = min(lowest, candidate_values[i])
        if i < n_events:
            event = order[i]
            c0 += event_delta[0, event]
            c1 += event_delta[1, event]
            c2 += event_delta[2, event]
            start = end
    # The loss can be flat along the line (every unit inactive beyond some step).
    for i in range(n_events + 1):
        if candidate_values[i] <= lowest + tie:
            return candidates[i], i
    return 0.0, 0


@njit(cache=True, fastmath=_FASTMATH)
def exact_line_search(
    z, v, y, w, count, knots, values, slopes, penalty, bound, event_step, event_delta
):  # fmt: skip
    """Exact minimiser over ``0 <= a <= bound`` of ``1/2 sum_e w_e (sigma(z_e + a v_e) -
    y_e)^2`` plus the penalty's quadratic ``c0 + c1 a + c2 a^2 / 2``, over the first
    ``count`` units.

    Along the line every pre-activation moves linearly, so the loss is piecewise quadratic
    in ``a``, with a breakpoint wherever some ``z_e + a v_e`` meets a knot. On each piece
    every residual is linear in ``a`` with known coefficients, so the loss's quadratic
    coefficients on every piece follow from one sort of the breakpoints and running sums;
    each piece's minimiser is clipped to it and the best is kept. The cost is O(B log B)
    for B breakpoints (those short of ``bound``: a search short of a rejected step
    sorts only the crossings before it). The choice is then checked, with the quadratic
    model's step and no step, against the loss evaluated directly (up to two more passes
    over the units), since the running sums can lose precision when the breakpoints span
    many orders of magnitude (one unit's tiny change, another's large one: fuzzing found
    such lines).

    Parameters are the line's (see the module docstring). Returns the step, 0.0 when no
    step lowers the loss.
    """
    n_events, c0, c1, c2, model1, model2, on_knot_falling = _kink_crossings(
        z, v, y, w, count, knots, values, slopes, penalty, bound, event_step, event_delta
    )
    start_loss = c0  # a direct sum, not a running one: the loss at a = 0 as it is
    order = np.argsort(event_step[:n_events])
    best, best_piece = _sweep(c0, c1, c2, n_events, order, bound, event_step, event_delta)
    first_crossing = event_step[order[0]] if n_events > 0 else np.inf
    optimal = min(_quadratic_step(model1 + penalty[1], model2 + penalty[2]), bound)
    # Up to the first kink crossing the loss is the quadratic model itself (unless a unit
    # sits on a knot moving left, where the model's right-hand slope is not its piece's).
    # Where the sweep finds the minimum on that first piece, the model's step, short of
    # the crossing, is it, with a decrease of slope^2 / (2 curvature), and needs no check:
    # checked by comparing losses, a decrease below their rounding would read as none, and
    # the search would stall short of the optimum (1e-12 of the loss, then no step ever).
    if best_piece == 0 and 0.0 < optimal <= first_crossing and not on_knot_falling:
        return optimal
    # Otherwise the sweep's choice, the model's step and no step are compared by the loss
    # itself: the exact step is never worse than the optimal step, nor than no step.
    best_loss = start_loss
    if best != 0.0:
        best_loss = loss_along(best, z, v, y, w, count, knots, values, slopes, penalty)
    optimal_loss = best_loss
    if optimal != best:
        optimal_loss = loss_along(optimal, z, v, y, w, count, knots, values, slopes, penalty)
    lowest = min(best_loss, optimal_loss, start_loss)
    # Losses evaluated directly (the sweep's choice, the model's step, no step): ties to
    # their rounding (see _rounding.loss_tie). The sweep's looser TIE_TOLERANCE here made
    # the search stop 1e-12 short of the optimum and take no step ever after.
    tie = _loss_tie(count) * abs(start_loss)
    step = np.inf
    if best_loss <= lowest + tie:
        step = best
    if optimal_loss <= lowest + tie:
        step = min(step, optimal)
    if start_loss <= lowest + tie:
        step = 0.0
    return step if np.isfinite(step) else 0.0


@njit(cache=True, fastmath=_FASTMATH)
def loss_along(step, z, v, y, w, count, knots, values, slopes, penalty):
    """``1/2 sum_e w_e (sigma(z_e + step v_e) - y_e)^2`` plus the penalty's quadratic over
    the first ``count`` units of a line; infinity where that overflows."""
    loss = penalty[0] + step * penalty[1] + 0.5 * step * step * penalty[2]
    for e in range(count):
        value, _ = _activate(z[e] + step * v[e], knots, values, slopes)
        residual = value - y[e]
        loss += 0.5 * w[e] * residual * residual
    return loss if np.isfinite(loss) else np.inf
