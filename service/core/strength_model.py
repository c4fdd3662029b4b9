"""Site-calibrated UCS model of cemented paste backfill, fitted to laboratory cylinders.

The form is an Abrams-type binder/water law with a blend term and a logarithmic curing
time term, linear in its parameters in log space (so an ordinary least-squares fit):

    ln UCS = b0 + sum_i b_i f_i + n ln(Mb/Mw) + (c0 + sum_i c_i f_i) ln(t / 28)

- Mb/Mw = Bw Cw / ((1 + Bw)(1 - Cw)), the binder/water mass ratio (the inverse of
  W/C, Belem & Benzaazoua convention); UCS = A (Mb/Mw)^n is the Abrams-type law of
  DOMAIN.md "Strength models".
- f_i is the mass fraction of binder component i in the blend; the reference component
  (cement by default) has no term, so b_i is the effect of replacing cement by i.
- (c0 + sum c_i f_i) ln(t/28) is the time factor, UCS(t) = UCS28 (t/28)^(c0 + ...),
  so a slag blend may gain strength more slowly than cement, or faster.

No coefficient is universal: a model is only as good as the mine's own cylinders, and
it refuses (or, when asked to, flags) predictions outside the tested range.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
class Prediction:
    """A predicted UCS. ``outside`` names the variables (API names, e.g. ``binder_pct``)
    outside the calibrated range; ``extrapolated`` is true when there is any."""

    ucs_kpa: float
    extrapolated: bool
    outside: tuple[str, ...]


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

    def outside_range(
        self,
        fractions: Sequence[float],
        binder_ratio: float | None,
        solids_fraction: float,
        curing_days: float,
    ) -> list[tuple[str, float, float, float]]:
        """Variables outside the accepted range: (API name, value, low, high), in API units
        (percent for fractions, days). ``binder_ratio`` None skips the Bw check."""
        checks: list[tuple[str, float, DataRange, float]] = [
            ("solids_pct", solids_fraction, self.solids_fraction_range, 100.0),
            ("curing_days", curing_days, self.curing_days_range, 1.0),
        ]
        if binder_ratio is not None:
            checks.insert(0, ("binder_pct", binder_ratio, self.binder_ratio_range, 100.0))
        for name, fraction, data_range in zip(
            self.components, fractions, self.fraction_ranges, strict=True
        ):
            checks.append((_fraction_variable(name), fraction, data_range, 100.0))
        outside = []
        for variable, value, data_range, scale in checks:
            low, high = data_range.accepted(self.range_tolerance)
            # A hair of slack so a value read back from its own percentage is not refused.
            slack = 1.0e-9 * max(1.0, abs(high))
            if not low - slack <= value <= high + slack:
                outside.append((variable, value * scale, low * scale, high * scale))
        return outside

    def _refuse(self, outside: list[tuple[str, float, float, float]]) -> OutsideCalibrationRange:
        variable, value, low, high = outside[0]
        others = [item[0] for item in outside[1:]]
        detail = (
            f"{variable} {value:g} is outside the calibrated range (accepted {low:g} to "
            f"{high:g}, the data range widened by {self.range_tolerance * 100:g} % of its span)"
        )
        if others:
            detail += "; also outside: " + ", ".join(others)
        return OutsideCalibrationRange(
            detail,
            variable=variable,
            value=value,
            accepted_min=low,
            accepted_max=high,
            outside=[item[0] for item in outside],
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
    ) -> Prediction:
        """Predicted UCS (kPa) of a mix.

        Refuses (OutsideCalibrationRange, naming the variable) a mix outside the data range
        widened by ``range_tolerance`` of its span, unless ``allow_extrapolation``, in which
        case the prediction is returned flagged ``extrapolated``.
        """
        _check_mix(binder_ratio, solids_fraction, curing_days)
        fractions = self.blend_vector(blend)
        outside = self.outside_range(fractions, binder_ratio, solids_fraction, curing_days)
        if outside and not allow_extrapolation:
            raise self._refuse(outside)
        log_ucs = self.log_offset(fractions, curing_days) + self.binder_water_exponent * math.log(
            binder_water_ratio(binder_ratio, solids_fraction)
        )
        return Prediction(
            ucs_kpa=math.exp(log_ucs),
            extrapolated=bool(outside),
            outside=tuple(item[0] for item in outside),
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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrengthModel:
        """Read a model written by :meth:`to_dict`; CalibrationRejected if malformed."""
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
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationRejected(f"stored strength model is malformed: {err!r}") from err
        if model.binder_water_exponent <= 0.0 or model.reference_component not in components:
            raise CalibrationRejected("stored strength model is malformed: inconsistent values")
        return model


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
    """Fit the model to laboratory cylinders by least squares on ln UCS (numpy).

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
