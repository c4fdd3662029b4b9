"""Recalibration of a strength model from the lab's results.

New lab results join the calibration's rows (:func:`cylinder_rows` makes them from the
cylinders cast from pours); the model is refitted
(:func:`service.core.strength_model.fit_strength_model`) and the proposal reports each
coefficient's change, R^2 before and after, and how well the *old* model predicted the
*new* results (RMSE and bias of ln UCS and of kPa, with a t test of the bias; Montgomery,
D.C., Peck, E.A. & Vining, G.G. (2012), *Introduction to Linear Regression Analysis*,
5th ed., Wiley, §11.2 on validating a model on new data), and the fraction of new
cylinders above the old model's lower prediction bound at the design pass fraction (it
should be about p, the expected pass fraction).

Values in, values out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from service.core.compliance import SamplePlan
from service.core.lab import LabResult
from service.core.lazy_scipy import stdtr
from service.core.strength_model import CylinderResult, StrengthModel, fit_strength_model
from service.errors import CalibrationRejected, InvalidInput, OutsideCalibrationRange


@dataclass(frozen=True)
class SkippedRow:
    """A lab result that could not become a calibration row, and why."""

    sample_id: str
    reason: str


def cylinder_rows(
    plans: Sequence[SamplePlan],
    results: Iterable[LabResult],
    *,
    prefer_lab_solids: bool = True,
) -> tuple[tuple[CylinderResult, ...], tuple[SkippedRow, ...]]:
    """Calibration rows (blend, Bw, Cw, age, UCS) from lab results and their plans.

    The age is the actual one (tested_at - cast_at) when known. Cw is the sample's own
    (lab dry/wet) when ``prefer_lab_solids`` and the masses were measured, else the plan's
    (as produced, best reconciled); the lab's Cw of a cured cylinder reads high by the
    bound water (see :mod:`service.core.lab`): pass corrected values in the plans and
    ``prefer_lab_solids`` False when that matters. Skipped (with the reason): unknown
    sample, no UCS, UCS 0 (too weak to test: ln 0 has no place in a log-linear fit), no
    blend or Bw, no Cw.
    """
    by_id = {plan.sample_id: plan for plan in plans}
    rows: list[CylinderResult] = []
    skipped: list[SkippedRow] = []
    for result in results:
        plan = by_id.get(result.sample_id)
        reason = None
        if plan is None:
            reason = "no pour cast this sample"
        elif result.ucs_kpa is None:
            reason = "no UCS"
        elif result.ucs_kpa <= 0.0:
            reason = "UCS 0 (too weak to test) cannot enter a log-linear fit"
        elif plan.blend is None or plan.binder_ratio is None:
            reason = "the pour's blend or Bw is unknown"
        if reason is not None or plan is None or result.ucs_kpa is None:
            skipped.append(SkippedRow(result.sample_id, reason or "unusable"))
            continue
        solids = result.solids_fraction if prefer_lab_solids else None
        if solids is None:
            solids = plan.solids_fraction
        if solids is None or plan.blend is None or plan.binder_ratio is None:
            skipped.append(
                SkippedRow(result.sample_id, "no Cw (neither lab masses nor the pour's)")
            )
            continue
        rows.append(
            CylinderResult(
                blend=dict(plan.blend),
                binder_ratio=plan.binder_ratio,
                solids_fraction=solids,
                curing_days=result.age_days,
                ucs_kpa=result.ucs_kpa,
                sample_id=result.sample_id,
            )
        )
    return tuple(rows), tuple(skipped)


@dataclass(frozen=True)
class CoefficientChange:
    """One model term before and after the refit (None when the term is absent)."""

    term: str
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


@dataclass(frozen=True)
class PredictionError:
    """How a model predicted a set of results.

    Residuals are measured minus predicted: ``rmse_log`` / ``bias_log`` of ln UCS,
    ``rmse_kpa`` / ``bias_kpa`` in kPa (a positive bias: the model under-predicts).
    ``bias_t`` / ``bias_p_value``: the one-sample t test of the mean ln residual (two
    sided; None with fewer than two results). ``above_lower_fraction``: the fraction of
    results at or above the model's lower bound at ``pass_fraction`` (about that
    fraction when the model's spread holds). ``n_extrapolated`` results lay outside the
    model's tested combinations; ``n_not_predictable`` had a binder the model has no
    data for (not counted in the statistics).
    """

    n: int
    n_not_predictable: int
    n_extrapolated: int
    rmse_log: float | None
    bias_log: float | None
    rmse_kpa: float | None
    bias_kpa: float | None
    bias_t: float | None
    bias_p_value: float | None
    pass_fraction: float
    above_lower_fraction: float | None


@dataclass(frozen=True)
class RecalibrationProposal:
    """A proposed new calibration version, for an engineer to approve.

    ``model`` is refitted on ``rows`` (the current calibration's ``n_old`` rows then the
    ``n_new`` new ones); ``changes`` lists every term; R^2 of ln UCS and of kPa before
    (the current fit on its rows) and after (the refit on all rows);
    ``old_model_on_new`` is the current model's prediction error on the new results and
    ``new_model_on_new`` the refit's (in-sample).
    """

    model: StrengthModel
    rows: tuple[CylinderResult, ...]
    n_old: int
    n_new: int
    changes: tuple[CoefficientChange, ...]
    r2_log_before: float
    r2_log_after: float
    r2_kpa_before: float
    r2_kpa_after: float
    residual_sd_log_before: float | None
    residual_sd_log_after: float | None
    old_model_on_new: PredictionError
    new_model_on_new: PredictionError


def model_coefficients(model: StrengthModel) -> dict[str, float]:
    """The model's coefficients by term name (``intercept``, ``ln_binder_water``,
    ``ln_time``, ``blend:<name>``, ``time_blend:<name>``)."""
    out: dict[str, float] = {}
    for term in model.terms:
        kind, _, name = term.partition(":")
        if term == "intercept":
            out[term] = model.intercept
        elif term == "ln_binder_water":
            out[term] = model.binder_water_exponent
        elif term == "ln_time":
            out[term] = model.time_coefficient
        elif kind == "blend":
            out[term] = model.blend_coefficients[model.components.index(name)]
        elif kind == "time_blend":
            out[term] = model.time_blend_coefficients[model.components.index(name)]
    return out


def prediction_error(
    model: StrengthModel, rows: Sequence[CylinderResult], pass_fraction: float = 0.9
) -> PredictionError:
    """The model's error on ``rows`` (see :class:`PredictionError`); predictions outside
    the tested combinations are made (flagged, counted), a binder unknown to the model
    cannot be."""
    if not 0.5 <= pass_fraction < 1.0:
        raise InvalidInput(
            "pass_fraction_pct", f"pass_fraction must be in [0.5, 1) ({pass_fraction!r})"
        )
    residual_log: list[float] = []
    residual_kpa: list[float] = []
    above = 0
    not_predictable = extrapolated = 0
    for row in rows:
        try:
            prediction = model.predict(
                row.blend,
                row.binder_ratio,
                row.solids_fraction,
                row.curing_days,
                allow_extrapolation=True,
                pass_fraction=pass_fraction,
            )
        except OutsideCalibrationRange:
            not_predictable += 1
            continue
        extrapolated += int(prediction.extrapolated)
        residual_log.append(math.log(row.ucs_kpa) - math.log(prediction.ucs_kpa))
        residual_kpa.append(row.ucs_kpa - prediction.ucs_kpa)
        assert prediction.lower_ucs_kpa is not None  # a pass fraction was asked
        above += int(row.ucs_kpa >= prediction.lower_ucs_kpa)
    m = len(residual_log)
    if m == 0:
        return PredictionError(
            0,
            not_predictable,
            extrapolated,
            None,
            None,
            None,
            None,
            None,
            None,
            pass_fraction,
            None,
        )
    logs = np.asarray(residual_log)
    kpa = np.asarray(residual_kpa)
    bias_t = p_value = None
    if m >= 2:
        sd = float(logs.std(ddof=1))
        if sd > 0.0:
            bias_t = float(logs.mean()) / (sd / math.sqrt(m))
            p_value = float(2.0 * stdtr(m - 1, -abs(bias_t)))
    return PredictionError(
        n=m,
        n_not_predictable=not_predictable,
        n_extrapolated=extrapolated,
        rmse_log=math.sqrt(float(np.mean(logs**2))),
        bias_log=float(logs.mean()),
        rmse_kpa=math.sqrt(float(np.mean(kpa**2))),
        bias_kpa=float(kpa.mean()),
        bias_t=bias_t,
        bias_p_value=p_value,
        pass_fraction=pass_fraction,
        above_lower_fraction=above / m,
    )


def _check_reproduces(model: StrengthModel, rows: Sequence[CylinderResult]) -> None:
    """CalibrationRejected unless refitting ``rows`` gives ``model`` (the rows are the
    calibration's own)."""
    refit = fit_strength_model(
        rows,
        reference_component=model.reference_component,
        label=model.label,
        range_tolerance=model.range_tolerance,
    )
    before, again = model_coefficients(model), model_coefficients(refit)
    if refit.terms != model.terms or not np.allclose(
        [before[t] for t in model.terms], [again[t] for t in model.terms], rtol=1e-6, atol=1e-9
    ):
        raise CalibrationRejected(
            "the calibration rows given do not reproduce the current strength model: "
            "recalibrate from the rows the current version was fitted on"
        )


def propose_recalibration(
    current_model: StrengthModel,
    current_rows: Sequence[CylinderResult],
    new_rows: Sequence[CylinderResult],
    *,
    label: str = "",
    pass_fraction: float = 0.9,
) -> RecalibrationProposal:
    """Refit the strength model on the current calibration's rows plus the new lab
    results and report what changed (see the module docstring).

    Refuses (CalibrationRejected) when ``current_rows`` do not reproduce
    ``current_model``, when there are no new rows, and whatever
    :func:`fit_strength_model` refuses on the combined rows. The refit keeps the current
    reference component and range tolerance.
    """
    if not new_rows:
        raise CalibrationRejected("no new laboratory results to recalibrate with")
    _check_reproduces(current_model, current_rows)
    rows = (*current_rows, *new_rows)
    refit = fit_strength_model(
        rows,
        reference_component=current_model.reference_component,
        label=label or current_model.label,
        range_tolerance=current_model.range_tolerance,
    )
    before = model_coefficients(current_model)
    after = model_coefficients(refit)
    terms = [*current_model.terms, *(t for t in refit.terms if t not in before)]
    changes = tuple(CoefficientChange(t, before.get(t), after.get(t)) for t in terms)

    def residual_sd(model: StrengthModel) -> float | None:
        return None if model.regression is None else model.regression.residual_sd

    return RecalibrationProposal(
        model=refit,
        rows=rows,
        n_old=len(current_rows),
        n_new=len(new_rows),
        changes=changes,
        r2_log_before=current_model.fit.r2_log,
        r2_log_after=refit.fit.r2_log,
        r2_kpa_before=current_model.fit.r2_kpa,
        r2_kpa_after=refit.fit.r2_kpa,
        residual_sd_log_before=residual_sd(current_model),
        residual_sd_log_after=residual_sd(refit),
        old_model_on_new=prediction_error(current_model, new_rows, pass_fraction),
        new_model_on_new=prediction_error(refit, new_rows, pass_fraction),
    )
