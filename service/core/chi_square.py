"""The chi-square distribution's upper tail and its inverse for whole degrees of freedom,
in plain Python, for the control cycle's balance check (``service.core.reconcile``).

The check runs every plant second of a pour, and importing scipy for two numbers a cycle
would put scipy.special (about 20 MB resident, 0.2 s to load on the event loop) into
every process that runs a pour. Named as scipy's functions, whose values they match to
about 1e-12 relative (``tests/unit/test_chi_square.py``).

For k degrees of freedom and y = x/2, the upper tail is the regularised upper incomplete
gamma function Q(k/2, y), which for whole k is a finite sum (Abramowitz, M. & Stegun,
I.A. (1964), *Handbook of Mathematical Functions*, NBS Applied Mathematics Series 55,
26.4.4 and 26.4.5; the recurrence Q(a + 1, y) = Q(a, y) + y^a e^-y / Gamma(a + 1),
6.5.21):

    k even: Q = sum_{r=0}^{k/2-1} e^-y y^r / r!
    k odd:  Q = erfc(sqrt(y)) + sum_{r=1}^{(k-1)/2} e^-y y^(r-1/2) / Gamma(r + 1/2)

each term taken through its logarithm, so neither y^r nor r! overflows. The quantile
solves Q(x) = p by Newton's method on ln Q (the density is
f(x) = x^(k/2-1) e^(-x/2) / (2^(k/2) Gamma(k/2)), A&S 26.4.1), kept inside a bracket
that bisection shrinks whenever a Newton step would leave it. Above p = 1/2 it solves
the lower tail P = 1 - Q = 1 - p instead (exact in floating point there), P from its
series P(a, y) = y^a e^-y / Gamma(a + 1) sum_{n>=0} y^n / ((a + 1) ... (a + n))
(A&S 6.5.29), so a quantile near 0 keeps its relative precision.
"""

from __future__ import annotations

import functools
import math

_MAX_ITERATIONS = 200
_RELATIVE_TOLERANCE = 1.0e-14


def _check_dof(degrees_of_freedom: int) -> int:
    k = int(degrees_of_freedom)
    if k != degrees_of_freedom or k < 1:
        raise ValueError(
            f"degrees of freedom must be a whole number >= 1, got {degrees_of_freedom!r}"
        )
    return k


def chdtrc(degrees_of_freedom: int, x: float) -> float:
    """P(chi^2_k > x), as ``scipy.special.chdtrc(k, x)`` (1 for x <= 0, NaN for NaN)."""
    k = _check_dof(degrees_of_freedom)
    x = float(x)
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    y = 0.5 * x
    log_y = math.log(y)
    if k % 2 == 0:
        total = 0.0
        a = 0.0
    else:
        total = math.erfc(math.sqrt(y))
        a = 0.5
    # Terms y^a e^-y / Gamma(a + 1) for a = 0 (even k) or 1/2 (odd k) up to k/2 - 1.
    while a < 0.5 * k - 0.25:
        total += math.exp(a * log_y - y - math.lgamma(a + 1.0))
        a += 1.0
    return min(total, 1.0)


def _log_density(k: int, x: float) -> float:
    half = 0.5 * k
    return (half - 1.0) * math.log(x) - 0.5 * x - half * math.log(2.0) - math.lgamma(half)


def _lower_tail(k: int, x: float) -> float:
    """P(chi^2_k <= x) by its series, for x up to about the mean (where it converges
    fast)."""
    if x <= 0.0:
        return 0.0
    a = 0.5 * k
    y = 0.5 * x
    term = 1.0
    total = 1.0
    n = 0
    while term > total * 1.0e-17 and n < 10_000:
        n += 1
        term *= y / (a + n)
        total += term
    return math.exp(a * math.log(y) - y - math.lgamma(a + 1.0)) * total


@functools.lru_cache(maxsize=64)
def chdtri(degrees_of_freedom: int, probability: float) -> float:
    """x with P(chi^2_k > x) = ``probability``, as ``scipy.special.chdtri(k, p)``
    (0 < p < 1; p = 1 gives 0, p = 0 infinity). Cached: the balance check asks for
    the same few thresholds every cycle."""
    k = _check_dof(degrees_of_freedom)
    p = float(probability)
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        return math.nan
    if p == 1.0:
        return 0.0
    if p == 0.0:
        return math.inf
    # The tail solved for: the upper one up to p = 1/2, else the lower (which 1 - p
    # states exactly); it falls with x for the upper tail and rises for the lower.
    upper = p <= 0.5
    target = p if upper else 1.0 - p
    log_target = math.log(target)

    def tail(x: float) -> float:
        return chdtrc(k, x) if upper else _lower_tail(k, x)

    def beyond(value: float) -> bool:
        """True when x lies above the root."""
        return value < target if upper else value > target

    low, high = 0.0, max(1.0, float(k))
    while not beyond(tail(high)):
        low, high = high, 2.0 * high
    x = 0.5 * (low + high)
    for _ in range(_MAX_ITERATIONS):
        value = tail(x)
        if beyond(value):
            high = x
        else:
            low = x
        candidate = math.inf
        if value > 0.0:
            # g(x) = ln tail(x) - ln target; g'(x) = -+f(x) / tail(x)
            slope = math.exp(_log_density(k, x) - math.log(value))
            slope = -slope if upper else slope
            if slope != 0.0:
                candidate = x - (math.log(value) - log_target) / slope
        if not low < candidate < high:
            candidate = 0.5 * (low + high)
        if abs(candidate - x) <= _RELATIVE_TOLERANCE * abs(x):
            return candidate
        x = candidate
        if high - low <= _RELATIVE_TOLERANCE * high:
            return x
    return x
