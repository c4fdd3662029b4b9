"""Site-calibrated UCS model of cemented paste backfill, fitted to laboratory cylinders.

The form is an Abrams-type binder/water law with a blend term and a logarithmic curing
time term, linear in its parameters in log space (so an ordinary least-squares fit):

    ln UCS = b0 + sum_i b_i f_i + n ln(Mb/Mw) + (c0 + sum_i c_i f_i) ln(t / 28)

- Mb/Mw = Bw Cw / ((1 + Bw)(1 - Cw)), the binder/water mass ratio (the inverse of
  W/C, Belem & Benzaazoua convention); UCS = A (Mb/Mw)^n is an Abrams-type law: strength
  governed by the water/cement ratio (Abrams, D.A. (1918), *Design of Concrete Mixtures*,
  Bulletin 1, Structural Materials Research Laboratory, Lewis Institute, Chicago; his
  form S = A / B^(W/C)), here as a power of the binder/water ratio, linear in ln(Mb/Mw).
- f_i is the mass fraction of binder component i in the blend; the reference component
  (cement by default) has no term, so b_i is the effect of replacing cement by i.
- (c0 + sum c_i f_i) ln(t/28) is the time factor, UCS(t) = UCS28 (t/28)^(c0 + ...),
  so a slag blend may gain strength more slowly than cement, or faster.

No coefficient is universal: a model is only as good as the mine's own cylinders, and
it refuses (or, when asked to, flags) predictions outside the tested range.

Validity is judged on the model's own regressors, u = ln(Mb/Mw), ln t and each blend
fraction f_i, not on Bw and Cw taken alone (they enter only through Mb/Mw): a point is
extrapolated when u or ln t lies outside its tested range widened by
``range_tolerance`` of its span (on the regressor's scale), when a blend fraction lies
outside its tested range at all (no tolerance: the blend term is linear, so a design
that is allowed past the tested blends always goes to the edge of what is allowed, on
a prediction no cylinder supports), or when its leverage
h0 = x0'(X'X)^-1 x0 exceeds the largest leverage of the data rows (hidden extrapolation
outside the regressor variable hull; Montgomery, Peck & Vining 2012, *Introduction to
Linear Regression Analysis*, 5th ed., §3.8). The fit keeps (X'X)^-1, s^2 = SSE/(n - p)
and n - p, so a prediction also gives the lower bound a chosen fraction of new cylinders
exceeds and the probability of reaching a requirement (:mod:`service.core.reliability`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core import reliability, tolerance
from service.core.reliability import RegressionStatistics
from service.errors import CalibrationRejected, InvalidInput, OutsideCalibrationRange

FORM = "abrams_blend_logtime_v1"
REFERENCE_DAYS = 28.0
DEFAULT_RANGE_TOLERANCE = 0.1
EXAMPLE_LABEL = "EXAMPLE calibration: synthetic data, illustrative only, not for design"

_BLEND_SUM_TOLERANCE = 1.0e-6
_CONSTANT_SPAN = 1.0e-9
_MAX_CONDITION = 1.0e12
_DAYS_MAX = 3650.0
_UCS_KPA_MAX = 1.0e6

FloatArray = NDArray[np.float64]


# --- data ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CylinderResult:
    """One laboratory cylinder: blend fractions by component name (summing to 1), Bw, Cw,
    curing age and measured UCS."""

    blend: Mapping[str, float] = field(hash=False)
    binder_ratio: float
    solids_fraction: float
    curing_days: float
    ucs_kpa: float
    sample_id: str | None = None


@dataclass(frozen=True, slots=True)
class DataRange:
    """Minimum and maximum of one variable in the calibration data."""

    minimum: float
    maximum: float

    def accepted(self, tolerance: float) -> tuple[float, float]:
        """The range widened by ``tolerance`` times its span on each side, never below 0."""
        pad = tolerance * (self.maximum - self.minimum)
        return max(0.0, self.minimum - pad), self.maximum + pad


# Names of the regressors in ``Prediction.outside`` (and OutsideCalibrationRange.variable).
LN_BINDER_WATER = "ln_binder_water"
LN_CURING_DAYS = "ln_curing_days"
REGRESSOR_HULL = "regressor_hull"


@dataclass(frozen=True)
class FitReport:
    """Goodness of fit. Residuals are measured minus predicted, in row order."""

    n_rows: int
    n_parameters: int
    r2_log: float
    r2_kpa: float
    rmse_log: float
    rmse_kpa: float
    predicted_kpa: tuple[float, ...]
    residuals_kpa: tuple[float, ...]
    residuals_log: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class OutsideRegressor:
    """One reason a point is extrapolated: a regressor outside its accepted range, or the
    leverage above the data's largest (``regressor_hull``).

    ``value`` / ``accepted_min`` / ``accepted_max`` are on the regressor's own scale:
    ln(Mb/Mw) for ``ln_binder_water``, ln(days) for ``ln_curing_days``, percent of the
    blend for ``binder.<name>.fraction_pct``, the leverage h0 and [0, h_max] for
    ``regressor_hull``; ``detail`` says it in plant units.
    """

    variable: str
    value: float
    accepted_min: float
    accepted_max: float
    detail: str


@dataclass(frozen=True, slots=True)
class Prediction:
    """A predicted UCS.

    ``ucs_kpa`` is the median (exp of the fitted ln UCS; about half the cylinders of
    the mix test below it). ``outside`` names why the point is extrapolated
    (``ln_binder_water``, ``ln_curing_days``, ``binder.<name>.fraction_pct``,
    ``regressor_hull``); ``extrapolated`` is true when there is any reason.
    ``lower_ucs_kpa`` is the strength a fraction ``pass_fraction`` of new cylinders is
    *expected* to exceed (the prediction bound: p on average over calibrations; None
    when no pass fraction was asked). ``tolerance_lower_ucs_kpa`` is the strength that
    a fraction ``pass_fraction`` of new cylinders exceeds with ``confidence``
    (:mod:`service.core.tolerance`; None when no confidence was asked). ``leverage`` is
    h0 and
    ``leverage_max`` the data's largest h_ii; ``standard_error_log`` is the standard
    error of a new observation of ln UCS, s sqrt(1 + h0), with ``degrees_of_freedom``
    n - p; :meth:`pass_probability` uses them. The defaults are for code that builds a
    Prediction by hand; :meth:`StrengthModel.predict` fills every field.
    """

    ucs_kpa: float
    extrapolated: bool
    outside: tuple[str, ...]
    lower_ucs_kpa: float | None = None
    pass_fraction: float | None = None
    leverage: float | None = None
    leverage_max: float | None = None
    standard_error_log: float | None = None
    degrees_of_freedom: int | None = None
    outside_details: tuple[OutsideRegressor, ...] = ()
    tolerance_lower_ucs_kpa: float | None = None
    confidence: float | None = None

    @property
    def median_ucs_kpa(self) -> float:
        """The median predicted UCS (the same as ``ucs_kpa``)."""
        return self.ucs_kpa

    def pass_probability(self, required_ucs_kpa: float) -> float:
        """The *expected* probability that a new cylinder of this mix reaches
        ``required_ucs_kpa`` (on average over calibrations): 1 - T_{n-p}((ln R - ln
        median)/se) (Montgomery, Peck & Vining 2012, §3.5)."""
        if self.standard_error_log is None or self.degrees_of_freedom is None:
            raise CalibrationRejected(
                "this prediction carries no prediction interval (no fit statistics)"
            )
        return reliability.pass_probability(
            math.log(self.ucs_kpa),
            self.standard_error_log,
            required_ucs_kpa,
            self.degrees_of_freedom,
        )


def binder_water_ratio(binder_ratio: float, solids_fraction: float) -> float:
    """Mb/Mw = Bw Cw / ((1 + Bw)(1 - Cw)), the inverse of W/C (Belem & Benzaazoua
    convention; the ratio of the Abrams-type law)."""
    return binder_ratio * solids_fraction / ((1.0 + binder_ratio) * (1.0 - solids_fraction))


def _fraction_variable(name: str) -> str:
    return f"binder.{name}.fraction_pct"


# --- the model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StrengthModel:
    """A fitted UCS model (see the module docstring for the form).

    ``components`` lists every binder seen in the data, the reference first;
    ``blend_coefficients`` / ``time_blend_coefficients`` are aligned with it (0 for the
    reference and for dropped terms). ``fraction_ranges`` is aligned with ``components``.
    ``regression`` holds what prediction intervals and the validity check need
    ((X'X)^-1 in ``terms`` order, s^2, n - p, the largest leverage, the tested
    ln(Mb/Mw)); every fitted model has it, and :meth:`from_dict` requires it (or the
    laboratory rows to recompute it).
    """

    components: tuple[str, ...]
    reference_component: str
    intercept: float
    blend_coefficients: tuple[float, ...]
    binder_water_exponent: float
    time_coefficient: float
    time_blend_coefficients: tuple[float, ...]
    binder_ratio_range: DataRange
    solids_fraction_range: DataRange
    curing_days_range: DataRange
    fraction_ranges: tuple[DataRange, ...]
    terms: tuple[str, ...]
    dropped_terms: tuple[str, ...]
    fit: FitReport
    label: str = ""
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE
    regression: RegressionStatistics | None = None

    # -- inputs

    def blend_vector(self, blend: Mapping[str, float]) -> tuple[float, ...]:
        """Blend fractions aligned with ``components``.

        Raises InvalidInput (field ``blend``) when fractions are not in 0-1 or do not sum
        to 1, and OutsideCalibrationRange when a component the model has no data for has a
        non-zero fraction (no coefficient exists for it, extrapolation or not).
        """
        total = 0.0
        for name, fraction in blend.items():
            if not 0.0 <= fraction <= 1.0:
                raise InvalidInput(
                    f"blend.{name}",
                    f"fraction of {name!r} must be between 0 and 100 % (got {fraction!r})",
                )
            total += fraction
            if fraction > 0.0 and name not in self.components:
                raise OutsideCalibrationRange(
                    f"the strength model has no laboratory data for binder {name!r}",
                    variable=_fraction_variable(name),
                )
        if not abs(total - 1.0) <= _BLEND_SUM_TOLERANCE:
            raise InvalidInput(
                "blend", f"blend fractions must sum to 100 % (got {total * 100.0:g} %)"
            )
        return tuple(float(blend.get(name, 0.0)) for name in self.components)

    def time_slope(self, fractions: Sequence[float]) -> float:
        """c0 + sum c_i f_i: the exponent of (t/28) for this blend."""
        return self.time_coefficient + sum(
            c * f for c, f in zip(self.time_blend_coefficients, fractions, strict=True)
        )

    def log_offset(self, fractions: Sequence[float], curing_days: float) -> float:
        """b0 + sum b_i f_i + (c0 + sum c_i f_i) ln(t/28): ln UCS at Mb/Mw = 1."""
        blend_term = sum(c * f for c, f in zip(self.blend_coefficients, fractions, strict=True))
        return (
            self.intercept
            + blend_term
            + self.time_slope(fractions) * math.log(curing_days / REFERENCE_DAYS)
        )

    # -- validity

    def statistics(self) -> RegressionStatistics:
        """The fit's regression statistics ((X'X)^-1, s^2, n - p, h_max, tested ln Mb/Mw).

        Raises CalibrationRejected when the model carries none (a model read from a
        stored dict written before they were kept, without its laboratory rows).
        """
        if self.regression is None:
            raise CalibrationRejected(
                "the strength model carries no regression statistics (prediction interval "
                "and tested combinations): refit it from its laboratory rows"
            )
        return self.regression

    def accepted_log_ratio_range(self) -> tuple[float, float]:
        """Accepted u = ln(Mb/Mw): the tested range widened by ``range_tolerance`` of its
        span in ln(Mb/Mw)."""
        stats = self.statistics()
        return reliability.widened(
            stats.ln_binder_water_min, stats.ln_binder_water_max, self.range_tolerance
        )

    def accepted_log_days_range(self) -> tuple[float, float]:
        """Accepted ln t (t in days): the tested range widened by ``range_tolerance`` of its
        span in ln t (a single tested age accepts that age only)."""
        return reliability.widened(
            math.log(self.curing_days_range.minimum),
            math.log(self.curing_days_range.maximum),
            self.range_tolerance,
        )

    def accepted_fraction_ranges(self) -> tuple[tuple[float, float], ...]:
        """Accepted fraction (0-1) of each component, aligned with ``components``: the
        tested range itself. ``range_tolerance`` does not widen it: a blend outside the
        tested blends is extrapolation (the linear blend term would otherwise always
        take a cheapest-blend search to the widened edge)."""
        return tuple((r.minimum, r.maximum) for r in self.fraction_ranges)

    def design_rows(
        self, fractions: FloatArray, curing_days: float, log_ratio: float = 0.0
    ) -> FloatArray:
        """Design-matrix rows x (one per row of ``fractions``, m x len(components)) in the
        order of ``terms``, at ``curing_days`` and u = ``log_ratio``; with u = 0 they are
        the rows c of x = c + u e_u that :mod:`service.core.reliability` designs with."""
        log_time = math.log(curing_days / REFERENCE_DAYS)
        count = fractions.shape[0]
        columns: list[FloatArray] = []
        for term in self.terms:
            kind, _, name = term.partition(":")
            if term == "intercept":
                columns.append(np.ones(count))
            elif term == "ln_binder_water":
                columns.append(np.full(count, log_ratio))
            elif term == "ln_time":
                columns.append(np.full(count, log_time))
            elif kind == "blend":
                columns.append(fractions[:, self.components.index(name)])
            elif kind == "time_blend":
                columns.append(fractions[:, self.components.index(name)] * log_time)
            else:  # from_dict refuses unknown terms
                raise CalibrationRejected(f"the strength model has an unknown term {term!r}")
        rows: FloatArray = np.column_stack(columns)
        return rows

    @property
    def log_ratio_index(self) -> int:
        """Position of u = ln(Mb/Mw) in ``terms`` (and in the design rows)."""
        return self.terms.index("ln_binder_water")

    def check_validity(
        self, fractions: Sequence[float], log_ratio: float, curing_days: float
    ) -> tuple[list[OutsideRegressor], float]:
        """Why the point (blend ``fractions``, u = ln(Mb/Mw), age) is extrapolated, if it
        is, and its leverage h0.

        A regressor outside its accepted range (see :meth:`accepted_log_ratio_range`,
        :meth:`accepted_log_days_range`, :meth:`accepted_fraction_ranges`), or
        h0 = x0'(X'X)^-1 x0 above the data's largest leverage (outside the regressor
        variable hull; Montgomery, Peck & Vining 2012, §3.8; Cook 1979).
        """
        stats = self.statistics()
        tolerance_pct = self.range_tolerance * 100.0
        row = self.design_rows(np.asarray([fractions], dtype=np.float64), curing_days, log_ratio)
        h0 = reliability.leverage(row[0], stats.covariance_matrix())
        outside: list[OutsideRegressor] = []
        slack = 1.0e-9
        low, high = self.accepted_log_ratio_range()
        if not low - slack <= log_ratio <= high + slack:
            outside.append(
                OutsideRegressor(
                    LN_BINDER_WATER,
                    log_ratio,
                    low,
                    high,
                    f"the binder/water ratio Mb/Mw {math.exp(log_ratio):.4g} is outside the "
                    f"tested combinations (accepted {math.exp(low):.4g} to "
                    f"{math.exp(high):.4g}: the tested "
                    f"{math.exp(stats.ln_binder_water_min):.4g}-"
                    f"{math.exp(stats.ln_binder_water_max):.4g} widened by {tolerance_pct:g} % "
                    "of the span of ln Mb/Mw; Bw and Cw enter the model only through Mb/Mw)",
                )
            )
        log_days = math.log(curing_days)
        low, high = self.accepted_log_days_range()
        if not low - slack <= log_days <= high + slack:
            outside.append(
                OutsideRegressor(
                    LN_CURING_DAYS,
                    log_days,
                    low,
                    high,
                    f"curing_days {curing_days:g} is outside the tested ages (accepted "
                    f"{math.exp(low):.3g} to {math.exp(high):.3g} days: the tested "
                    f"{self.curing_days_range.minimum:g}-{self.curing_days_range.maximum:g} "
                    f"widened by {tolerance_pct:g} % of the span of ln t)",
                )
            )
        for name, fraction, (low, high) in zip(
            self.components, fractions, self.accepted_fraction_ranges(), strict=True
        ):
            if not low - slack <= fraction <= high + slack:
                outside.append(
                    OutsideRegressor(
                        _fraction_variable(name),
                        fraction * 100.0,
                        low * 100.0,
                        high * 100.0,
                        f"{name} at {fraction * 100:g} % of the blend is outside the tested "
                        f"blends ({name} {low * 100:g}-{high * 100:g} %)",
                    )
                )
        if reliability.beyond_hull(h0, stats.leverage_max):
            outside.append(
                OutsideRegressor(
                    REGRESSOR_HULL,
                    h0,
                    0.0,
                    stats.leverage_max,
                    f"the leverage {h0:.4g} of this point exceeds the largest of the "
                    f"laboratory mixes ({stats.leverage_max:.4g}): the combination of "
                    "regressors lies outside the tested ones (hidden extrapolation)",
                )
            )
        return outside, h0

    def _refuse(
        self, outside: Sequence[OutsideRegressor], prefix: str = ""
    ) -> OutsideCalibrationRange:
        first = outside[0]
        detail = prefix + first.detail
        if len(outside) > 1:
            detail += "; also outside: " + ", ".join(item.variable for item in outside[1:])
        return OutsideCalibrationRange(
            detail,
            variable=first.variable,
            value=first.value,
            accepted_min=first.accepted_min,
            accepted_max=first.accepted_max,
            outside=[item.variable for item in outside],
        )

    # -- prediction

    def predict(
        self,
        blend: Mapping[str, float],
        binder_ratio: float,
        solids_fraction: float,
        curing_days: float,
        *,
        allow_extrapolation: bool = False,
        pass_fraction: float | None = None,
        confidence: float | None = None,
        extra_variance_log: float = 0.0,
    ) -> Prediction:
        """Predicted UCS (kPa) of a mix: the median, and with ``pass_fraction`` p the lower
        bound exp(x0'b - t_{p,n-p} s sqrt(1 + h0)) that a fraction p of new cylinders is
        expected to exceed (Montgomery, Peck & Vining 2012, §3.5; see
        :mod:`service.core.reliability`); with ``confidence`` c too, the tolerance bound
        exp(x0'b - k s), k = t'_c(n - p, z_p/sqrt(h0)) sqrt(h0), that a fraction p
        exceeds with confidence c (:mod:`service.core.tolerance`). ``extra_variance_log``
        adds the plant's own spread of ln UCS to what new cylinders show
        (:mod:`service.core.plant_spread`).

        Refuses (OutsideCalibrationRange, naming the regressor: ``ln_binder_water``,
        ``ln_curing_days``, ``binder.<name>.fraction_pct`` or ``regressor_hull``) a point
        outside the tested combinations (see :meth:`check_validity`), unless
        ``allow_extrapolation``, in which case the prediction is returned flagged
        ``extrapolated``. ``pass_fraction`` must be in [0.5, 0.9999] (InvalidInput
        ``pass_fraction_pct``), ``confidence`` in [0.5, 0.999] and given with it
        (``confidence_pct``).
        """
        _check_mix(binder_ratio, solids_fraction, curing_days)
        if pass_fraction is not None:
            reliability.check_pass_fraction(pass_fraction)
        if confidence is not None:
            tolerance.check_confidence(confidence)
            if pass_fraction is None:
                raise InvalidInput(
                    "confidence_pct", "a confidence is stated for a pass fraction: give both"
                )
        fractions = self.blend_vector(blend)
        stats = self.statistics()
        log_ratio = math.log(binder_water_ratio(binder_ratio, solids_fraction))
        outside, h0 = self.check_validity(fractions, log_ratio, curing_days)
        if outside and not allow_extrapolation:
            raise self._refuse(
                outside,
                f"binder_pct {binder_ratio * 100:g} at solids_pct {solids_fraction * 100:g}: ",
            )
        log_ucs = self.log_offset(fractions, curing_days) + self.binder_water_exponent * log_ratio
        # The plant's spread (service.core.plant_spread) widens what new cylinders show.
        se = reliability.total_sd_log(stats.residual_variance, h0, extra_variance_log)
        lower = tolerance_lower = None
        if pass_fraction is not None:
            lower = math.exp(
                reliability.lower_bound_log(log_ucs, se, pass_fraction, stats.degrees_of_freedom)
            )
        if pass_fraction is not None and confidence is not None:
            # With the plant's spread: a total sd sqrt(s^2 + v), the mean known to the share
            # s^2 h0 / (s^2 + v) of it (the approximation of the optimiser's search).
            total2 = stats.residual_variance + extra_variance_log
            scale = stats.residual_variance / total2 if total2 > 0.0 else 1.0
            tolerance_lower = math.exp(
                tolerance.lower_bound_log(
                    log_ucs,
                    math.sqrt(total2),
                    h0 * scale,
                    pass_fraction,
                    confidence,
                    stats.degrees_of_freedom,
                )
            )
        return Prediction(
            ucs_kpa=math.exp(log_ucs),
            extrapolated=bool(outside),
            outside=tuple(item.variable for item in outside),
            lower_ucs_kpa=lower,
            pass_fraction=pass_fraction,
            leverage=h0,
            leverage_max=stats.leverage_max,
            standard_error_log=se,
            degrees_of_freedom=stats.degrees_of_freedom,
            outside_details=tuple(outside),
            tolerance_lower_ucs_kpa=tolerance_lower,
            confidence=confidence if tolerance_lower is not None else None,
        )

    def binder_ratio_for_ucs(
        self,
        target_ucs_kpa: float,
        blend: Mapping[str, float],
        solids_fraction: float,
        curing_days: float,
    ) -> float:
        """Bw that makes the predicted UCS equal ``target_ucs_kpa`` (closed form).

        ln(Mb/Mw) = (ln UCS - offset) / n, then Bw/(1 + Bw) = k with
        k = (Mb/Mw)(1 - Cw)/Cw, so Bw = k/(1 - k); ``math.inf`` when k >= 1 (no Bw
        reaches the target at this Cw). No range check: the caller checks the result.
        """
        if not 0.0 < target_ucs_kpa <= _UCS_KPA_MAX:
            raise InvalidInput(
                "required_ucs_kpa",
                f"required_ucs_kpa must be above 0 and at most {_UCS_KPA_MAX:g} "
                f"(got {target_ucs_kpa!r})",
            )
        _check_mix(None, solids_fraction, curing_days)
        fractions = self.blend_vector(blend)
        log_ratio = (
            math.log(target_ucs_kpa) - self.log_offset(fractions, curing_days)
        ) / self.binder_water_exponent
        if log_ratio > 50.0:
            return math.inf
        k = math.exp(log_ratio) * (1.0 - solids_fraction) / solids_fraction
        return math.inf if k >= 1.0 else k / (1.0 - k)

    def log_offset_grid(self, fractions: FloatArray, curing_days: float) -> FloatArray:
        """:meth:`log_offset` for each row of ``fractions`` (m x len(components))."""
        log_time = math.log(curing_days / REFERENCE_DAYS)
        blend = np.asarray(self.blend_coefficients, dtype=np.float64)
        time_blend = np.asarray(self.time_blend_coefficients, dtype=np.float64)
        result: FloatArray = (
            self.intercept
            + fractions @ blend
            + (self.time_coefficient + fractions @ time_blend) * log_time
        )
        return result

    def binder_ratio_for_ucs_grid(
        self,
        target_ucs_kpa: float,
        fractions: FloatArray,
        solids_fractions: FloatArray,
        curing_days: float,
    ) -> FloatArray:
        """:meth:`binder_ratio_for_ucs` for every blend row x Cw: an (m, c) array, inf where
        unreachable. Inputs are trusted (the optimiser validated them)."""
        log_ratio = (
            math.log(target_ucs_kpa) - self.log_offset_grid(fractions, curing_days)
        ) / self.binder_water_exponent
        ratio = np.exp(np.minimum(log_ratio, 50.0))
        k = ratio[:, None] * ((1.0 - solids_fractions) / solids_fractions)[None, :]
        reachable = k < 1.0
        result = np.full(k.shape, np.inf)
        result[reachable] = k[reachable] / (1.0 - k[reachable])
        return result

    # -- storage

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back. Fractions are 0-1."""
        return {
            "form": FORM,
            "label": self.label,
            "reference_component": self.reference_component,
            "components": list(self.components),
            "coefficients": {
                "intercept": self.intercept,
                "blend": dict(zip(self.components, self.blend_coefficients, strict=True)),
                "binder_water_exponent": self.binder_water_exponent,
                "time": self.time_coefficient,
                "time_blend": dict(zip(self.components, self.time_blend_coefficients, strict=True)),
            },
            "terms": list(self.terms),
            "dropped_terms": list(self.dropped_terms),
            "range": {
                "binder_ratio": [self.binder_ratio_range.minimum, self.binder_ratio_range.maximum],
                "solids_fraction": [
                    self.solids_fraction_range.minimum,
                    self.solids_fraction_range.maximum,
                ],
                "curing_days": [self.curing_days_range.minimum, self.curing_days_range.maximum],
                "fractions": {
                    name: [r.minimum, r.maximum]
                    for name, r in zip(self.components, self.fraction_ranges, strict=True)
                },
            },
            "range_tolerance": self.range_tolerance,
            "fit": {
                "n_rows": self.fit.n_rows,
                "n_parameters": self.fit.n_parameters,
                "r2_log": self.fit.r2_log,
                "r2_kpa": self.fit.r2_kpa,
                "rmse_log": self.fit.rmse_log,
                "rmse_kpa": self.fit.rmse_kpa,
                "predicted_kpa": list(self.fit.predicted_kpa),
                "residuals_kpa": list(self.fit.residuals_kpa),
                "residuals_log": list(self.fit.residuals_log),
            },
            **({} if self.regression is None else {"regression": self.regression.to_dict()}),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], rows: Sequence[CylinderResult] | None = None
    ) -> StrengthModel:
        """Read a model written by :meth:`to_dict`; CalibrationRejected if malformed.

        A dict written before the regression statistics were kept (no ``regression``
        key) is completed by refitting ``rows``, the laboratory cylinders it was fitted
        on (the fit is deterministic; the refit must reproduce the stored coefficients);
        without rows it is refused (CalibrationRejected), because the model could then
        give no prediction interval and no validity check.
        """
        try:
            if data["form"] != FORM:
                raise CalibrationRejected(
                    f"stored strength model has form {data['form']!r}, expected {FORM!r}"
                )
            components = tuple(str(name) for name in data["components"])
            coefficients = data["coefficients"]
            ranges = data["range"]
            fit = data["fit"]

            def aligned(values: Mapping[str, Any]) -> tuple[float, ...]:
                return tuple(_finite(values[name]) for name in components)

            def data_range(pair: Sequence[Any]) -> DataRange:
                low, high = (_finite(value) for value in pair)
                return DataRange(low, high)

            model = cls(
                components=components,
                reference_component=str(data["reference_component"]),
                intercept=_finite(coefficients["intercept"]),
                blend_coefficients=aligned(coefficients["blend"]),
                binder_water_exponent=_finite(coefficients["binder_water_exponent"]),
                time_coefficient=_finite(coefficients["time"]),
                time_blend_coefficients=aligned(coefficients["time_blend"]),
                binder_ratio_range=data_range(ranges["binder_ratio"]),
                solids_fraction_range=data_range(ranges["solids_fraction"]),
                curing_days_range=data_range(ranges["curing_days"]),
                fraction_ranges=tuple(data_range(ranges["fractions"][n]) for n in components),
                terms=tuple(str(term) for term in data["terms"]),
                dropped_terms=tuple(str(term) for term in data["dropped_terms"]),
                fit=FitReport(
                    n_rows=int(fit["n_rows"]),
                    n_parameters=int(fit["n_parameters"]),
                    r2_log=_finite(fit["r2_log"]),
                    r2_kpa=_finite(fit["r2_kpa"]),
                    rmse_log=_finite(fit["rmse_log"]),
                    rmse_kpa=_finite(fit["rmse_kpa"]),
                    predicted_kpa=tuple(_finite(v) for v in fit["predicted_kpa"]),
                    residuals_kpa=tuple(_finite(v) for v in fit["residuals_kpa"]),
                    residuals_log=tuple(_finite(v) for v in fit["residuals_log"]),
                ),
                label=str(data.get("label", "")),
                range_tolerance=_finite(data.get("range_tolerance", DEFAULT_RANGE_TOLERANCE)),
            )
            _check_terms(model.terms, components)
            stored = data.get("regression")
            if stored is not None:
                model = replace(
                    model,
                    regression=RegressionStatistics.from_dict(stored, len(model.terms)),
                )
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationRejected(f"stored strength model is malformed: {err!r}") from err
        if model.binder_water_exponent <= 0.0 or model.reference_component not in components:
            raise CalibrationRejected("stored strength model is malformed: inconsistent values")
        if model.regression is None:
            if rows is None:
                raise CalibrationRejected(
                    "the stored strength model has no regression statistics (it was stored "
                    "before they were kept) and no laboratory rows were given to recompute them"
                )
            model = replace(model, regression=_refit_statistics(model, rows))
        return model


def _check_terms(terms: Sequence[str], components: Sequence[str]) -> None:
    """ValueError unless ``terms`` is intercept, ln_binder_water, then known terms."""
    if tuple(terms[:2]) != ("intercept", "ln_binder_water"):
        raise ValueError("terms must start with intercept, ln_binder_water")
    for term in terms[2:]:
        kind, _, name = term.partition(":")
        if term == "ln_time" or (kind in ("blend", "time_blend") and name in components):
            continue
        raise ValueError(f"unknown term {term!r}")


def _refit_statistics(model: StrengthModel, rows: Sequence[CylinderResult]) -> RegressionStatistics:
    """The regression statistics of ``model`` recomputed by refitting its ``rows``;
    CalibrationRejected when the refit does not reproduce the stored model."""
    refit = fit_strength_model(
        rows,
        reference_component=model.reference_component,
        label=model.label,
        range_tolerance=model.range_tolerance,
    )
    stored = (
        model.intercept,
        model.binder_water_exponent,
        model.time_coefficient,
        *model.blend_coefficients,
        *model.time_blend_coefficients,
    )
    again = (
        refit.intercept,
        refit.binder_water_exponent,
        refit.time_coefficient,
        *refit.blend_coefficients,
        *refit.time_blend_coefficients,
    )
    if (
        refit.components != model.components
        or refit.terms != model.terms
        or not np.allclose(stored, again, rtol=1.0e-6, atol=1.0e-9)
    ):
        raise CalibrationRejected(
            "the laboratory rows given do not reproduce the stored strength model: its "
            "regression statistics cannot be recomputed from them"
        )
    assert refit.regression is not None  # every fit computes them
    return refit.regression


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _check_mix(binder_ratio: float | None, solids_fraction: float, curing_days: float) -> None:
    if binder_ratio is not None and not 0.0 < binder_ratio <= 1.0:
        raise InvalidInput(
            "binder_pct", f"binder_pct must be above 0 and at most 100 (got {binder_ratio!r})"
        )
    if not 0.0 < solids_fraction < 1.0:
        raise InvalidInput(
            "solids_pct", f"solids_pct must be above 0 and below 100 (got {solids_fraction!r})"
        )
    if not 0.0 < curing_days <= _DAYS_MAX:
        raise InvalidInput(
            "curing_days",
            f"curing_days must be above 0 and at most {_DAYS_MAX:g} (got {curing_days!r})",
        )


# --- fitting ------------------------------------------------------------------------------


def _validate_rows(rows: Sequence[CylinderResult]) -> None:
    if not rows:
        raise CalibrationRejected("no laboratory rows to fit")
    for index, row in enumerate(rows):
        prefix = f"rows[{index}]"
        if not row.blend:
            raise InvalidInput(f"{prefix}.blend", "blend must name at least one binder")
        total = 0.0
        for name, fraction in row.blend.items():
            if not name:
                raise InvalidInput(f"{prefix}.blend", "binder names must not be empty")
            if not 0.0 <= fraction <= 1.0:
                raise InvalidInput(
                    f"{prefix}.blend.{name}",
                    f"fraction of {name!r} must be between 0 and 100 % (got {fraction!r})",
                )
            total += fraction
        if not abs(total - 1.0) <= _BLEND_SUM_TOLERANCE:
            raise InvalidInput(
                f"{prefix}.blend", f"blend fractions must sum to 100 % (got {total * 100.0:g} %)"
            )
        try:
            _check_mix(row.binder_ratio, row.solids_fraction, row.curing_days)
        except InvalidInput as err:
            raise InvalidInput(f"{prefix}.{err.field}", err.detail) from err
        if math.isnan(row.ucs_kpa) or row.ucs_kpa > _UCS_KPA_MAX:
            raise InvalidInput(
                f"{prefix}.ucs_kpa", f"ucs_kpa must be a finite number (got {row.ucs_kpa!r})"
            )
        if not row.ucs_kpa > 0.0:
            raise CalibrationRejected(
                f"{prefix}.ucs_kpa is {row.ucs_kpa!r}: a measured UCS must be positive",
                field=f"{prefix}.ucs_kpa",
            )


def _range(values: FloatArray) -> DataRange:
    return DataRange(float(values.min()), float(values.max()))


def fit_strength_model(
    rows: Sequence[CylinderResult],
    *,
    reference_component: str = "cement",
    label: str = "",
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
) -> StrengthModel:
    """Fit the model to laboratory cylinders by least squares on ln UCS (numpy), keeping
    the regression statistics of :mod:`service.core.reliability` ((X'X)^-1, s^2, n - p,
    the largest leverage and the tested ln(Mb/Mw)).

    A blend term is dropped when the data do not vary that component (or it is collinear
    with the terms already in); the time terms are dropped when every cylinder has the
    same age. Refuses (CalibrationRejected, saying why): no rows, a non-positive UCS,
    fewer rows than parameters + 2, a degenerate design (Mb/Mw not varied, collinear
    terms, condition number above 1e12), an exponent n <= 0 (more binder would predict
    less strength), or strength falling with curing time for a tested blend.
    ``reference_component`` is the blend's reference when present in the data (else the
    first name in alphabetical order).
    """
    _validate_rows(rows)
    if not 0.0 <= range_tolerance <= 1.0:
        raise InvalidInput("range_tolerance", "range_tolerance must be between 0 and 1")
    names = sorted({name for row in rows for name in row.blend})
    reference = reference_component if reference_component in names else names[0]
    components = (reference, *(name for name in names if name != reference))

    fractions = np.array(
        [[row.blend.get(name, 0.0) for name in components] for row in rows], dtype=np.float64
    )
    binder_ratio = np.array([row.binder_ratio for row in rows], dtype=np.float64)
    solids = np.array([row.solids_fraction for row in rows], dtype=np.float64)
    days = np.array([row.curing_days for row in rows], dtype=np.float64)
    ucs = np.array([row.ucs_kpa for row in rows], dtype=np.float64)
    log_ratio = np.log(binder_ratio * solids / ((1.0 + binder_ratio) * (1.0 - solids)))
    log_time = np.log(days / REFERENCE_DAYS)
    y = np.log(ucs)

    if np.ptp(log_ratio) <= _CONSTANT_SPAN:
        raise CalibrationRejected(
            "the binder/water ratio Mb/Mw is the same in every row: the exponent n cannot "
            "be fitted (vary Bw or Cw)"
        )
    columns: list[FloatArray] = [np.ones(len(rows)), log_ratio]
    terms: list[str] = ["intercept", "ln_binder_water"]
    dropped: list[str] = []
    has_time = np.ptp(log_time) > _CONSTANT_SPAN
    if has_time:
        columns.append(log_time)
        terms.append("ln_time")
    else:
        dropped.append(f"time (every cylinder cured {days[0]:g} days)")
    if np.linalg.matrix_rank(np.column_stack(columns)) < len(columns):
        raise CalibrationRejected(
            "degenerate design matrix: Mb/Mw and curing time are collinear in the data"
        )

    def try_add(term: str, column: FloatArray) -> bool:
        candidate = np.column_stack([*columns, column])
        if np.linalg.matrix_rank(candidate) > len(columns):
            columns.append(column)
            terms.append(term)
            return True
        dropped.append(f"{term} (collinear with the other terms)")
        return False

    blend_terms: list[int] = []
    for j, name in enumerate(components[1:], start=1):
        if np.ptp(fractions[:, j]) <= _CONSTANT_SPAN:
            dropped.append(f"blend:{name} (constant {fractions[0, j] * 100.0:g} % in the data)")
        elif try_add(f"blend:{name}", fractions[:, j]):
            blend_terms.append(j)
    time_terms: list[int] = []
    if has_time:
        for j in blend_terms:
            if try_add(f"time_blend:{components[j]}", fractions[:, j] * log_time):
                time_terms.append(j)

    design = np.column_stack(columns)
    n_rows, n_parameters = design.shape
    if n_rows < n_parameters + 2:
        raise CalibrationRejected(
            f"too few rows: {n_rows} rows for {n_parameters} parameters "
            f"({', '.join(terms)}); at least {n_parameters + 2} are needed"
        )
    coefficients, _, rank, singular = np.linalg.lstsq(design, y, rcond=None)
    if rank < n_parameters or singular[0] > _MAX_CONDITION * singular[-1]:
        raise CalibrationRejected("degenerate design matrix: the terms are (nearly) collinear")

    exponent = float(coefficients[1])
    if exponent <= 0.0:
        raise CalibrationRejected(
            f"the fitted binder/water exponent n = {exponent:.3g} is not positive: the model "
            "would predict less strength for more binder"
        )
    blend_coefficients = [0.0] * len(components)
    time_blend_coefficients = [0.0] * len(components)
    position = 3 if has_time else 2
    for j in blend_terms:
        blend_coefficients[j] = float(coefficients[position])
        position += 1
    for j in time_terms:
        time_blend_coefficients[j] = float(coefficients[position])
        position += 1
    time_coefficient = float(coefficients[2]) if has_time else 0.0
    if has_time:
        slopes = time_coefficient + fractions @ np.asarray(time_blend_coefficients)
        worst = int(np.argmin(slopes))
        if slopes[worst] <= 0.0:
            raise CalibrationRejected(
                "the fit predicts strength falling with curing time for the blend of row "
                f"{worst} (time exponent {slopes[worst]:.3g})"
            )

    fitted_log = design @ coefficients
    predicted = np.exp(fitted_log)
    residual_log = y - fitted_log
    regression = reliability.regression_statistics(design, residual_log, log_ratio)
    residual_kpa = ucs - predicted
    total_log = float(np.sum((y - y.mean()) ** 2))
    total_kpa = float(np.sum((ucs - ucs.mean()) ** 2))
    if total_log == 0.0 or total_kpa == 0.0:
        raise CalibrationRejected("every measured UCS is the same: nothing to fit")
    fit = FitReport(
        n_rows=n_rows,
        n_parameters=n_parameters,
        r2_log=1.0 - float(np.sum(residual_log**2)) / total_log,
        r2_kpa=1.0 - float(np.sum(residual_kpa**2)) / total_kpa,
        rmse_log=math.sqrt(float(np.mean(residual_log**2))),
        rmse_kpa=math.sqrt(float(np.mean(residual_kpa**2))),
        predicted_kpa=tuple(float(v) for v in predicted),
        residuals_kpa=tuple(float(v) for v in residual_kpa),
        residuals_log=tuple(float(v) for v in residual_log),
    )
    return StrengthModel(
        components=components,
        reference_component=reference,
        intercept=float(coefficients[0]),
        blend_coefficients=tuple(blend_coefficients),
        binder_water_exponent=exponent,
        time_coefficient=time_coefficient,
        time_blend_coefficients=tuple(time_blend_coefficients),
        binder_ratio_range=_range(binder_ratio),
        solids_fraction_range=_range(solids),
        curing_days_range=_range(days),
        fraction_ranges=tuple(_range(fractions[:, j]) for j in range(len(components))),
        terms=tuple(terms),
        dropped_terms=tuple(dropped),
        fit=fit,
        label=label,
        range_tolerance=range_tolerance,
        regression=regression,
    )


# --- CSV and the shipped example ----------------------------------------------------------

_FRACTION_SUFFIX = "_fraction_pct"


def parse_calibration_csv(text: str) -> tuple[CylinderResult, ...]:
    """Rows from a CSV of laboratory cylinders.

    Lines starting with ``#`` are comments. Columns: ``binder_pct`` (Bw, % of dry
    tailings), ``solids_pct`` (Cw), ``curing_days``, ``ucs_kpa``, one
    ``<binder>_fraction_pct`` per binder component (% of the blend) and optionally
    ``sample_id``. Errors are InvalidInput naming ``rows[i].<column>``.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = reader.fieldnames or []
    required = ("binder_pct", "solids_pct", "curing_days", "ucs_kpa")
    for column in required:
        if column not in header:
            raise InvalidInput("csv", f"the calibration CSV has no {column!r} column")
    blend_columns = [c for c in header if c.endswith(_FRACTION_SUFFIX)]
    if not blend_columns:
        raise InvalidInput("csv", "the calibration CSV has no <binder>_fraction_pct column")
    rows = []
    for index, record in enumerate(reader):

        def number(column: str, index: int = index, record: dict[str, str] = record) -> float:
            try:
                return float(record[column])
            except (TypeError, ValueError) as err:
                raise InvalidInput(
                    f"rows[{index}].{column}", f"{column} is not a number: {record[column]!r}"
                ) from err

        rows.append(
            CylinderResult(
                blend={c.removesuffix(_FRACTION_SUFFIX): number(c) / 100.0 for c in blend_columns},
                binder_ratio=number("binder_pct") / 100.0,
                solids_fraction=number("solids_pct") / 100.0,
                curing_days=number("curing_days"),
                ucs_kpa=number("ucs_kpa"),
                sample_id=record.get("sample_id") or None,
            )
        )
    return tuple(rows)


@cache
def load_example_model() -> StrengthModel:
    """The shipped EXAMPLE calibration (synthetic cement/slag data, not for design)."""
    text = resources.files("service.core.data").joinpath("example_calibration.csv").read_text()
    return fit_strength_model(parse_calibration_csv(text), label=EXAMPLE_LABEL)
