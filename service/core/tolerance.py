"""One-sided tolerance bounds of a log-linear strength model: a fraction p of the cylinders
of a mix exceed the bound, with confidence c.

A prediction bound (:mod:`service.core.reliability`) gives p *on average over
calibrations*: with few cylinders one calibration can deliver well under p. A tolerance
bound says both numbers. For the regression model y = x'b + e, e ~ N(0, sigma^2), fitted
by least squares (s^2 on n - p degrees of freedom), the lower bound at x0 that the
p-quantile of y exceeds with confidence c is

    x0'b - k s,   k = t'_{c}(n - p, delta) sqrt(h0),   delta = z_p / sqrt(h0),

h0 = x0'(X'X)^-1 x0 the leverage of x0, z_p the standard normal p-quantile and t'_c the
c-quantile of the noncentral t distribution with n - p degrees of freedom and
noncentrality delta: (x0'b - mu0)/(sigma sqrt h0) is standard normal and independent of
(n - p) s^2/sigma^2 ~ chi^2, so P(x0'b - k s <= mu0 - z_p sigma) = c exactly (Owen, D.B.
(1968), "A survey of properties and applications of the noncentral t-distribution",
Technometrics 10(3):445-478; Hahn, G.J. & Meeker, W.Q. (1991), *Statistical Intervals:
A Guide for Practitioners*, Wiley, ch. 4 and §10.4 for regression; for a single sample,
h0 = 1/n, it is the factor of ISO 16269-6:2014 tables: 2.21 at n = 12, 1.78 at n = 30 for
p = 90 %, c = 95 %). On ln UCS the bound is exp(x0'b - k s).

Designing for it needs the smallest u = ln(Mb/Mw) with a' + n u - ln R >= s k(h(u)),
h(u) quadratic in u (the design row x = c + u e_u of :mod:`service.core.reliability`);
k has no closed form in h, so :class:`ToleranceTable` tabulates k against sqrt(h) once
per (p, c, n - p) and the optimiser solves the condition by bracketing and bisection,
vectorised over the blends. Linear interpolation of k, convex in sqrt(h) for c > 1/2,
errs on the high side (a slightly stronger design), and a relative margin of
:data:`TABLE_MARGIN` covers the rest.

Values in, values out; scipy.special gives the normal and noncentral t quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from service.core.chi_square import chdtri
from service.core.lazy_scipy import nctdtrit, ndtri
from service.errors import InvalidInput

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

CONFIDENCE_MIN = 0.5
CONFIDENCE_MAX = 0.999
# sqrt(h) tabulated from 0.01 (h = 1e-4, 10,000 cylinders) to 100 (far extrapolation),
# 60 points a decade; outside it the factor is computed directly.
_ROOT_LEVERAGE_MIN = 1.0e-2
_ROOT_LEVERAGE_MAX = 1.0e2
_POINTS = 241
TABLE_MARGIN = 2.0e-6
# Bracketing: steps of 1e-4 in u = ln(Mb/Mw) doubled up to about 100 (Mb/Mw e^100: no
# design lies further); bisection to 1e-10 in u (_U_TOLERANCE).
_STEP = 1.0e-4
_DOUBLINGS = 21
_BISECTIONS = 48
_U_TOLERANCE = 1.0e-10  # ln(Mb/Mw): a bracket this narrow ends the bisection


def check_confidence(confidence: float, field: str = "confidence_pct") -> float:
    """``confidence`` if it is in [0.5, 0.999]; InvalidInput naming ``field`` else."""
    if not CONFIDENCE_MIN <= confidence <= CONFIDENCE_MAX:
        raise InvalidInput(
            field,
            f"{field} must be between {CONFIDENCE_MIN * 100:g} and {CONFIDENCE_MAX * 100:g} "
            f"(got {confidence * 100!r})",
        )
    return float(confidence)


def tolerance_factor(
    pass_fraction: float,
    confidence: float,
    degrees_of_freedom: int,
    leverage: FloatArray | float,
) -> FloatArray:
    """k = t'_{c}(df, z_p/sqrt(h)) sqrt(h), elementwise in ``leverage`` h (Owen 1968).

    Where scipy's noncentral t quantile does not converge (a noncentrality of thousands:
    a leverage far below any data set's), the limit of k as h -> 0 is used,
    z_p sqrt(df / chi^2_{1-c, df}): the bound of a known mean with an estimated sigma.
    """
    h = np.asarray(leverage, dtype=np.float64)
    root = np.sqrt(h)
    z = float(ndtri(pass_fraction))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.asarray(nctdtrit(degrees_of_freedom, z / root, confidence), dtype=np.float64)
    factor = factor * root
    limit = z * math.sqrt(degrees_of_freedom / float(chdtri(degrees_of_freedom, confidence)))
    result: FloatArray = np.where(np.isfinite(factor), factor, limit)
    return result


@dataclass(frozen=True)
class ToleranceTable:
    """k against sqrt(h) for one (p, c, df), for :meth:`factor` by interpolation."""

    pass_fraction: float
    confidence: float
    degrees_of_freedom: int
    root_leverage: FloatArray
    factors: FloatArray

    def factor(self, leverage: FloatArray) -> FloatArray:
        """k at each leverage: interpolated in sqrt(h) and raised by :data:`TABLE_MARGIN`
        inside the table, computed directly outside it (see the module docstring)."""
        root = np.sqrt(np.maximum(leverage, 0.0))
        inside = (root >= _ROOT_LEVERAGE_MIN) & (root <= _ROOT_LEVERAGE_MAX)
        result: FloatArray = np.interp(root, self.root_leverage, self.factors) * (
            1.0 + TABLE_MARGIN
        )
        if not inside.all():
            result = result.copy()
            result[~inside] = tolerance_factor(
                self.pass_fraction,
                self.confidence,
                self.degrees_of_freedom,
                np.maximum(leverage[~inside], 1.0e-300),
            )
        return result


@lru_cache(maxsize=32)
def tolerance_table(
    pass_fraction: float, confidence: float, degrees_of_freedom: int
) -> ToleranceTable:
    """The table of one (p, c, df), computed once (a few tens of milliseconds) and kept."""
    root = np.geomspace(_ROOT_LEVERAGE_MIN, _ROOT_LEVERAGE_MAX, _POINTS)
    factors = tolerance_factor(pass_fraction, confidence, degrees_of_freedom, root * root)
    root.setflags(write=False)
    factors.setflags(write=False)
    return ToleranceTable(pass_fraction, confidence, degrees_of_freedom, root, factors)


def lower_bound_log(
    fitted_log: float,
    residual_sd: float,
    leverage: float,
    pass_fraction: float,
    confidence: float,
    degrees_of_freedom: int,
) -> float:
    """x0'b - k s: ln of the value a fraction p of new cylinders exceed with confidence c."""
    k = float(tolerance_factor(pass_fraction, confidence, degrees_of_freedom, leverage))
    return fitted_log - k * residual_sd


def log_ratio_interval_for_tolerance_bound(
    offset_log: FloatArray,
    exponent: float,
    q0: FloatArray,
    q1: FloatArray,
    q2: float,
    required_log: float,
    residual_sd: float,
    table: ToleranceTable,
) -> tuple[FloatArray, FloatArray]:
    """The u = ln(Mb/Mw) where the tolerance bound reaches ln R, elementwise: (low, high),
    (inf, -inf) where no u does.

    F(u) = n u + a - ln R - s k(h(u)), h(u) = q0 + 2 q1 u + q2 u^2 (the notation of
    :func:`service.core.reliability.log_ratio_interval_for_lower_bound`). Since k(h) is
    increasing in h and h(u) >= h_min = q0 - q1^2/q2, every root lies at or above
    u0 = (ln R - a + s k(h_min))/n, where F <= 0. The first of u0 and u0 + 1e-4 2^j
    (j = 0..19, up to about 100 beyond u0) with F >= 0 brackets the smallest root with
    the point before it, and bisection finds it (``low``, on the passing side); the
    passing set's end ``high`` is found the same way beyond it (inf when F stays >= 0).
    A passing window narrower than the doubling steps is missed, which can only refuse
    a design, never accept a failing one.
    """
    count = offset_log.shape[0]
    h_min = np.maximum(q0 - q1 * q1 / q2, 0.0)
    start = (required_log - offset_log + residual_sd * table.factor(h_min)) / exponent

    def margin(u: FloatArray) -> FloatArray:
        # u is (count,) or (count, points): the blend's terms broadcast along its row.
        shape = (count,) + (1,) * (u.ndim - 1)
        a, c0, c1 = offset_log.reshape(shape), q0.reshape(shape), q1.reshape(shape)
        h = c0 + 2.0 * c1 * u + q2 * u * u
        result: FloatArray = exponent * u + a - required_log - residual_sd * table.factor(h)
        return result

    rows = np.arange(count)
    powers = np.concatenate([[0.0], np.exp2(np.arange(_DOUBLINGS - 1, dtype=np.float64))])
    points = start[:, None] + _STEP * powers[None, :]
    passing = margin(points) >= 0.0
    found: BoolArray = np.asarray(passing.any(axis=1))
    first = np.argmax(passing, axis=1)
    hi = points[rows, first]
    lo = np.where(first > 0, points[rows, np.maximum(first - 1, 0)], hi)
    _, hi = _bisect(margin, lo, hi, passing_high=True)
    low = np.where(found, hi, np.inf)

    # The end of the passing set: the first doubling point beyond low where F < 0.
    beyond = np.where(found, low, 0.0)[:, None] + _STEP * powers[None, 1:]
    failing = (margin(beyond) < 0.0) & found[:, None]
    ends = failing.any(axis=1)
    if not ends.any():
        return low, np.where(found, np.inf, -np.inf)
    first_fail = np.argmax(failing, axis=1)
    fail_at = np.where(ends, beyond[rows, first_fail], 0.0)
    pass_at = np.where(ends & (first_fail > 0), beyond[rows, np.maximum(first_fail - 1, 0)], low)
    pass_at, _ = _bisect(margin, np.where(ends, pass_at, 0.0), fail_at)
    high = np.where(found, np.where(ends, pass_at, np.inf), -np.inf)
    return low, high


def _bisect(
    margin: Callable[[FloatArray], FloatArray],
    lo: FloatArray,
    hi: FloatArray,
    *,
    passing_high: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Halve [lo, hi] keeping the sign change (with ``passing_high`` F(lo) < 0 <= F(hi),
    else F(lo) >= 0 > F(hi)) until every bracket is narrower than ``_U_TOLERANCE`` (or
    ``_BISECTIONS`` times): u to 1e-10 is Bw to a relative 1e-10."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(_BISECTIONS):
        if not np.any(hi - lo > _U_TOLERANCE):
            break
        mid = 0.5 * (lo + hi)
        passes = margin(mid) >= 0.0
        if passing_high:
            hi = np.where(passes, mid, hi)
            lo = np.where(passes, lo, mid)
        else:
            lo = np.where(passes, mid, lo)
            hi = np.where(passes, hi, mid)
    return lo, hi
