"""A root of a scalar function in a bracket, by Brent's method, in plain Python.

The rheology (``service.core.rheology``) solves a handful of scalar equations (a slump's
yield stress, a pipe's plug radius and flow); scipy's ``brentq`` did it, which loaded
scipy.optimize (about 45 MB resident with what it pulls in) into every process, since
the shipped example rheology is fitted when a fresh store is seeded. This is the same
algorithm, step for step as scipy's ``brentq`` (scipy/optimize/Zeros/brentq.c, after
Brent, R.P. (1973), *Algorithms for Minimization without Derivatives*, Prentice-Hall,
ch. 4: inverse quadratic interpolation or the secant step when it stays well inside the
bracket and shrinks fast enough, bisection otherwise), with its defaults and its
errors; ``tests/unit/test_roots.py`` compares the two.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

XTOL = 2.0e-12
RTOL = 4.0 * sys.float_info.epsilon
MAXITER = 100


def brentq(
    f: Callable[[float], float],
    a: float,
    b: float,
    *,
    xtol: float = XTOL,
    rtol: float = RTOL,
    maxiter: int = MAXITER,
) -> float:
    """x in [a, b] with f(x) = 0 to within ``xtol + rtol |x|``; f(a) and f(b) must have
    opposite signs (ValueError otherwise, as scipy; RuntimeError when ``maxiter``
    iterations do not converge)."""
    if not xtol > 0.0:
        raise ValueError(f"xtol too small ({xtol:g} <= 0)")
    if rtol < RTOL:
        raise ValueError(f"rtol too small ({rtol:g} < {RTOL:g})")
    if maxiter < 0:
        raise ValueError("maxiter should be > 0")
    x_pre, x_cur = float(a), float(b)
    f_pre, f_cur = float(f(x_pre)), float(f(x_cur))
    if f_pre == 0.0:
        return x_pre
    if f_cur == 0.0:
        return x_cur
    if math.copysign(1.0, f_pre) == math.copysign(1.0, f_cur):
        raise ValueError("f(a) and f(b) must have different signs")
    x_blk = f_blk = s_pre = s_cur = 0.0
    for _ in range(maxiter):
        if (
            f_pre != 0.0
            and f_cur != 0.0
            and (math.copysign(1.0, f_pre) != math.copysign(1.0, f_cur))
        ):
            x_blk, f_blk = x_pre, f_pre
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (xtol + rtol * abs(x_cur)) / 2.0
        s_bis = (x_blk - x_cur) / 2.0
        if f_cur == 0.0 or abs(s_bis) < delta:
            return x_cur
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            if x_pre == x_blk:  # interpolate (secant)
                s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
            else:  # extrapolate (inverse quadratic)
                d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
            if 2.0 * abs(s_try) < min(abs(s_pre), 3.0 * abs(s_bis) - delta):
                s_pre, s_cur = s_cur, s_try  # a good short step
            else:
                s_pre = s_cur = s_bis
        else:
            s_pre = s_cur = s_bis
        x_pre, f_pre = x_cur, f_cur
        if abs(s_cur) > delta:
            x_cur += s_cur
        else:
            x_cur += delta if s_bis > 0.0 else -delta
        f_cur = float(f(x_cur))
    raise RuntimeError(f"Failed to converge after {maxiter} iterations, value is {x_cur!r}")
