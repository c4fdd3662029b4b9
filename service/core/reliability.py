"""Prediction intervals and validity of a log-linear least-squares strength model.

The strength model (:mod:`service.core.strength_model`) is an ordinary least-squares fit
of ln UCS on a design row x = (1, u, ln(t/28), f_i, f_i ln(t/28)), u = ln(Mb/Mw). What a
design must hold for is a *new* cylinder, not the fitted mean, so this module keeps what
the fit knows about its own uncertainty and where it was tested:

- Prediction of a new observation (Montgomery, D.C., Peck, E.A. & Vining, G.G. (2012),
  *Introduction to Linear Regression Analysis*, 5th ed., Wiley, §3.5): at x0 the
  fitted value is x0'b, and a new observation y0 has standard error
  se = s sqrt(1 + h0), h0 = x0'(X'X)^-1 x0, s^2 = SSE/(n - p), with a Student t
  distribution of n - p degrees of freedom. On ln UCS the fitted value is the log of
  the *median* UCS (the back-transform of a log-normal mean is its median). The lower
  bound that a fraction p of new cylinders exceeds is exp(x0'b - t_{p,n-p} se) and the
  probability that a new cylinder reaches R is 1 - T_{n-p}((ln R - x0'b)/se).
  (The concrete analogue is ACI 318's required average strength f'cr = f'c + 1.34 s,
  ACI 214R-11 for the statistics: design above the specified value by a multiple of
  the spread so that few tests fall below it.)
- The *expected* pass fraction: a design whose lower prediction bound meets R passes a
  fraction p of new cylinders on average over the calibrations a laboratory could have
  drawn; one calibration of few cylinders can deliver well under p. The tolerance
  bound, which holds p with a stated confidence, is :mod:`service.core.tolerance`.
- Hidden extrapolation (Montgomery, Peck & Vining 2012, §3.8; Cook, R.D. (1979),
  "Influential observations in linear regression", J. Am. Stat. Assoc. 74(365):169-174,
  for the leverage h_ii): the regressor variable hull (RVH) of the data is approximated
  by the ellipsoid h = x'(X'X)^-1 x <= h_max, h_max the largest leverage of a data row.
  A point with h0 > h_max lies outside it even when every regressor taken alone is
  inside its range.

Everything is values in, values out; scipy gives the Student t distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core.lazy_scipy import stdtr, stdtrit
from service.errors import InvalidInput

FloatArray = NDArray[np.float64]

# A design below the median is not a design; above this the t quantile runs away.
PASS_FRACTION_MIN = 0.5
PASS_FRACTION_MAX = 0.9999
# Slack on the leverage test so that a data row (h0 == h_max up to rounding) and a design
# placed exactly on the hull's edge are not flagged.
LEVERAGE_RELATIVE_SLACK = 1.0e-7


def check_pass_fraction(pass_fraction: float, field: str = "pass_fraction_pct") -> float:
    """``pass_fraction`` if it is in [0.5, 0.9999]; InvalidInput naming ``field`` else."""
    if not PASS_FRACTION_MIN <= pass_fraction <= PASS_FRACTION_MAX:
        raise InvalidInput(
            field,
            f"{field} must be between {PASS_FRACTION_MIN * 100:g} and "
            f"{PASS_FRACTION_MAX * 100:g} (got {pass_fraction * 100!r})",
        )
    return float(pass_fraction)


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """t_{p, dof}: the Student t quantile (scipy.special.stdtrit)."""
    return float(stdtrit(degrees_of_freedom, probability))


def t_cdf(value: float, degrees_of_freedom: int) -> float:
    """T_dof(value): the Student t distribution function (scipy.special.stdtr)."""
    return float(stdtr(degrees_of_freedom, value))


@dataclass(frozen=True)
class RegressionStatistics:
    """What a least-squares fit keeps for prediction intervals and validity.

    ``unscaled_covariance`` is (X'X)^-1 in the order of the model's ``terms``;
    ``residual_variance`` is s^2 = SSE/(n - p) of ln UCS; ``leverage_max`` the largest
    h_ii of the data rows; ``ln_binder_water_min`` / ``_max`` the tested range of
    u = ln(Mb/Mw) (the ranges of ln t and of the blend fractions are kept by the model).
    """

    unscaled_covariance: tuple[tuple[float, ...], ...]
    residual_variance: float
    degrees_of_freedom: int
    leverage_max: float
    ln_binder_water_min: float
    ln_binder_water_max: float

    @property
    def residual_sd(self) -> float:
        """s, the residual standard deviation of ln UCS."""
        return math.sqrt(self.residual_variance)

    def covariance_matrix(self) -> FloatArray:
        """(X'X)^-1 as a (p, p) array."""
        return np.asarray(self.unscaled_covariance, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "unscaled_covariance": [list(row) for row in self.unscaled_covariance],
            "residual_variance_log": self.residual_variance,
            "degrees_of_freedom": self.degrees_of_freedom,
            "leverage_max": self.leverage_max,
            "ln_binder_water_range": [self.ln_binder_water_min, self.ln_binder_water_max],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], n_parameters: int) -> RegressionStatistics:
        """Read :meth:`to_dict`; ValueError / KeyError / TypeError when malformed."""
        covariance = tuple(
            tuple(_finite(value) for value in row) for row in data["unscaled_covariance"]
        )
        if len(covariance) != n_parameters or any(len(row) != n_parameters for row in covariance):
            raise ValueError(
                f"unscaled_covariance must be {n_parameters} x {n_parameters} (one per term)"
            )
        matrix = np.asarray(covariance)
        if not np.allclose(matrix, matrix.T, rtol=1e-9, atol=1e-12):
            raise ValueError("unscaled_covariance is not symmetric")
        if np.any(np.diag(matrix) <= 0.0):
            raise ValueError("unscaled_covariance has a non-positive diagonal")
        dof = int(data["degrees_of_freedom"])
        low, high = (_finite(v) for v in data["ln_binder_water_range"])
        stats = cls(
            unscaled_covariance=covariance,
            residual_variance=_finite(data["residual_variance_log"]),
            degrees_of_freedom=dof,
            leverage_max=_finite(data["leverage_max"]),
            ln_binder_water_min=low,
            ln_binder_water_max=high,
        )
        if stats.residual_variance < 0.0 or dof < 1 or not 0.0 < stats.leverage_max <= 1.0:
            raise ValueError("residual variance, degrees of freedom or leverage out of range")
        if low > high:
            raise ValueError("ln_binder_water_range is reversed")
        return stats


def regression_statistics(
    design: FloatArray, residuals_log: FloatArray, log_binder_water: FloatArray
) -> RegressionStatistics:
    """The statistics of an OLS fit of full column rank (n x p ``design``).

    (X'X)^-1 = R^-1 R^-T from the QR factorisation X = QR, and the leverages are
    h_ii = sum_j Q_ij^2 (the diagonal of the hat matrix H = X(X'X)^-1 X' = QQ'),
    which avoids forming X'X (Montgomery, Peck & Vining 2012, §3.2 and §6.2).
    """
    n_rows, n_parameters = design.shape
    q, r = np.linalg.qr(design)
    r_inverse = np.linalg.inv(r)
    covariance = r_inverse @ r_inverse.T
    covariance = (covariance + covariance.T) / 2.0
    leverages = np.sum(q * q, axis=1)
    dof = n_rows - n_parameters
    return RegressionStatistics(
        unscaled_covariance=tuple(tuple(float(v) for v in row) for row in covariance),
        residual_variance=float(np.sum(residuals_log**2)) / dof,
        degrees_of_freedom=dof,
        leverage_max=float(leverages.max()),
        ln_binder_water_min=float(log_binder_water.min()),
        ln_binder_water_max=float(log_binder_water.max()),
    )


def leverage(row: Sequence[float] | FloatArray, covariance: FloatArray) -> float:
    """h0 = x0'(X'X)^-1 x0 (Montgomery, Peck & Vining 2012, §3.8)."""
    x = np.asarray(row, dtype=np.float64)
    return float(x @ covariance @ x)


def beyond_hull(h0: float, leverage_max: float) -> bool:
    """True when h0 > h_max: outside the regressor variable hull's ellipsoid (§3.8)."""
    return h0 > leverage_max * (1.0 + LEVERAGE_RELATIVE_SLACK)


def total_sd_log(residual_variance: float, h0: float, extra_variance_log: float = 0.0) -> float:
    """The standard deviation of a new cylinder's ln UCS about the fitted value:
    sqrt(s^2 (1 + h0) + v), the fit's new-observation variance s^2 (1 + h0) (§3.5) plus
    any further independent variance ``extra_variance_log`` v of ln UCS (e.g. the
    plant's own Cw and Bw spread carried through the model; 0 by default). Every
    prediction bound and pass probability takes its spread from here."""
    if not (extra_variance_log >= 0.0 and math.isfinite(extra_variance_log)):
        raise InvalidInput(
            "extra_variance_log", f"extra_variance_log must be >= 0 ({extra_variance_log!r})"
        )
    return math.sqrt(residual_variance * (1.0 + h0) + extra_variance_log)


def new_observation_se(residual_variance: float, h0: float) -> float:
    """se = s sqrt(1 + h0), the standard error of a new observation (§3.5): the fit's
    part of :func:`total_sd_log`."""
    return total_sd_log(residual_variance, h0)


def lower_bound_log(
    median_log: float, standard_error: float, pass_fraction: float, degrees_of_freedom: int
) -> float:
    """ln of the value a fraction ``pass_fraction`` of new observations exceeds:
    x0'b - t_{p, n-p} se (the one-sided prediction bound of §3.5)."""
    return median_log - t_quantile(pass_fraction, degrees_of_freedom) * standard_error


def pass_probability(
    median_log: float, standard_error: float, required: float, degrees_of_freedom: int
) -> float:
    """P(new observation >= ``required``) = 1 - T_{n-p}((ln R - x0'b)/se) (§3.5).

    With se = 0 (a noise-free fit) it is 1 when the median reaches R, else 0.
    """
    if not required > 0.0:
        raise InvalidInput("required_ucs_kpa", f"required_ucs_kpa must be above 0 ({required!r})")
    gap = math.log(required) - median_log
    if standard_error == 0.0:
        return 1.0 if gap <= 0.0 else 0.0
    return 1.0 - t_cdf(gap / standard_error, degrees_of_freedom)


def widened(low: float, high: float, tolerance: float) -> tuple[float, float]:
    """[low, high] widened by ``tolerance`` times its span on each side (no clamping: the
    bounds are on a regressor's own scale, which may be negative)."""
    pad = tolerance * (high - low)
    return low - pad, high + pad


# --- design for a pass fraction (vectorised) ---------------------------------------------


def log_ratio_interval_for_lower_bound(
    offset_log: FloatArray,
    exponent: float,
    q0: FloatArray,
    q1: FloatArray,
    q2: float,
    required_log: float,
    k: float,
) -> tuple[FloatArray, FloatArray]:
    """The u = ln(Mb/Mw) where the lower prediction bound meets ln R, elementwise.

    With the other regressors fixed the design row is x = c + u e_u, so the median is
    a + n u (a = ``offset_log`` = c'b, n = ``exponent``) and the leverage is the
    quadratic h(u) = q0 + 2 q1 u + q2 u^2 (q0 = c'Mc, q1 = c'M e_u, q2 = e_u'M e_u,
    M = (X'X)^-1). The condition is g(u) = n u + a - ln R >= k sqrt(1 + h(u)),
    k = t_{p, n-p} s >= 0. Its right side is convex in u and the left linear, so the
    solutions form one interval; squaring with g >= 0 gives
    A u^2 + B u + C >= 0, A = n^2 - k^2 q2, B = 2(n d - k^2 q1),
    C = d^2 - k^2 (1 + q0), d = a - ln R, roots (-B/2 +- k sqrt(E))/A with E below,
    whose right root is the smallest u when
    A > 0 (then the interval is [root, inf); g(root) > 0 because the quadratic is
    negative where g = 0). When A < 0 the prediction spread grows faster than the
    median, the solutions are [left root, right root] if g >= 0 there, else none;
    A = 0 is treated as none (conservative). With k = 0 it is u >= (ln R - a)/n, the
    median design. Returns (low, high); an empty interval is (inf, -inf).
    """
    d = offset_log - required_log
    if k == 0.0:
        return -d / exponent, np.full(d.shape, np.inf)
    k2 = k * k
    a_coef = exponent * exponent - k2 * q2
    half_b = exponent * d - k2 * q1
    c_coef = d * d - k2 * (1.0 + q0)
    # (B/2)^2 - AC without cancellation: k^2 E, E = n^2 (1 + q0) - 2 n d q1 + q2 d^2
    # - k^2 (q2 (1 + q0) - q1^2) (expanded by hand; the naive form loses half the digits
    # when k is small and the two roots nearly coincide).
    e_term = (
        exponent * exponent * (1.0 + q0)
        - 2.0 * exponent * d * q1
        + q2 * d * d
        - k2 * (q2 * (1.0 + q0) - q1 * q1)
    )
    real = e_term >= 0.0
    root = k * np.sqrt(np.where(real, e_term, 0.0))
    empty_low = np.full(d.shape, np.inf)
    empty_high = np.full(d.shape, -np.inf)
    if a_coef > 0.0:
        # The larger root, (-B/2 + k sqrt E)/A, or C/(-B/2 - k sqrt E) when B > 0 (their
        # product is C/A), without cancellation.
        with np.errstate(divide="ignore", invalid="ignore"):
            right = np.where(half_b <= 0.0, (-half_b + root) / a_coef, c_coef / (-half_b - root))
        return right, np.full(d.shape, np.inf)
    if a_coef == 0.0:
        return empty_low, empty_high
    left = (-half_b + root) / a_coef
    right = (-half_b - root) / a_coef
    valid = real & (exponent * left + d >= 0.0)
    return np.where(valid, left, empty_low), np.where(valid, right, empty_high)


def log_ratio_interval_inside_hull(
    q0: FloatArray, q1: FloatArray, q2: float, leverage_max: float
) -> tuple[FloatArray, FloatArray]:
    """The u where h(u) = q0 + 2 q1 u + q2 u^2 <= h_max (inside the RVH ellipsoid, §3.8),
    elementwise: the roots of the quadratic, or (inf, -inf) when it never dips below."""
    discriminant = q1 * q1 - q2 * (q0 - leverage_max)
    real = discriminant >= 0.0
    root = np.sqrt(np.where(real, discriminant, 0.0))
    low = np.where(real, (-q1 - root) / q2, np.inf)
    high = np.where(real, (-q1 + root) / q2, -np.inf)
    return low, high


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number
