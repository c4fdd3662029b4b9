"""Compliance of the placed fill with its strength requirements, and recalibration.

A design holds for the cylinders, not on average (DOMAIN.md): a recipe is designed so
that a chosen fraction p of new cylinders reaches the requirement R at its age t
(:mod:`service.core.reliability`). The lab then tells whether it did:

- each tested UCS at the requirement's age passes when UCS >= R (one cylinder, the unit
  the design's pass fraction is stated for);
- per sample, pour, stage and stope the observed pass fraction k/n carries a confidence
  interval, Wilson's score interval (Wilson, E.B. (1927), "Probable inference, the law
  of succession, and statistical inference", J. Am. Stat. Assoc. 22(158):209-212) or
  the exact Clopper-Pearson interval (Clopper, C.J. & Pearson, E.S. (1934), "The use of
  confidence or fiducial limits illustrated in the case of the binomial", Biometrika
  26(4):404-413); the design's p is judged against it (below when the interval lies
  wholly below p), with the exact binomial probability P(X <= k | n, p) of seeing so few
  passes if the design held;
- a cylinder cast at t0 to be tested at d days and not tested by t0 + d + grace is
  overdue; a result before the requirement's age can be compared with the strength it
  should have on the way, R (t_test/t_req)^m with m the fitted model's time exponent for
  the blend (the time factor UCS(t) = UCS28 (t/28)^m of :mod:`service.core.strength_model`),
  an early warning, not a failure.

Recalibration: new lab results join the calibration's rows; the model is refitted
(:func:`service.core.strength_model.fit_strength_model`) and the proposal reports each
coefficient's change, R^2 before and after, and how well the *old* model predicted the
*new* results (RMSE and bias of ln UCS and of kPa, with a t test of the bias; Montgomery,
Peck & Vining 2012, *Introduction to Linear Regression Analysis*, 5th ed., §11.2 on
validating a model on new data), and the fraction of new cylinders above the old
model's lower prediction bound at the design pass fraction (it should be about p).

Values in, values out; ``now`` is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from service.core.control.alarms import Severity
from service.core.lab import LabResult
from service.core.lazy_scipy import bdtr, betaincinv, ndtri, stdtr
from service.core.strength_model import (
    CylinderResult,
    StrengthModel,
    fit_strength_model,
)
from service.errors import CalibrationRejected, InvalidInput, OutsideCalibrationRange

_DAY = timedelta(days=1)

GroupKind = Literal["sample", "pour", "stage", "stope"]
IntervalMethod = Literal["wilson", "clopper_pearson"]
GroupVerdict = Literal["no_results", "no_design", "below_design", "consistent", "above_design"]
NoticeKind = Literal["failed", "overdue", "behind", "below_design", "unknown_sample"]


# --- confidence intervals of a proportion -------------------------------------------------


def wilson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion k/n (Wilson 1927):
    (k + z^2/2 +- z sqrt(k(n - k)/n + z^2/4)) / (n + z^2), z = Phi^-1((1 + c)/2)."""
    _check_counts(passed, n)
    _check_confidence(confidence)
    z = float(ndtri(0.5 + confidence / 2.0))
    z2 = z * z
    centre = (passed + z2 / 2.0) / (n + z2)
    half = z / (n + z2) * math.sqrt(passed * (n - passed) / n + z2 / 4.0)
    # At k = 0 (k = n) the lower (upper) bound is exactly 0 (1); rounding must not move it.
    low = 0.0 if passed == 0 else max(0.0, centre - half)
    high = 1.0 if passed == n else min(1.0, centre + half)
    return low, high


def clopper_pearson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact interval (Clopper & Pearson 1934): the a/2 quantile of Beta(k, n - k + 1)
    and the 1 - a/2 quantile of Beta(k + 1, n - k), a = 1 - c (0 and 1 at the ends)."""
    _check_counts(passed, n)
    _check_confidence(confidence)
    alpha = 1.0 - confidence
    low = 0.0 if passed == 0 else float(betaincinv(passed, n - passed + 1, alpha / 2.0))
    high = 1.0 if passed == n else float(betaincinv(passed + 1, n - passed, 1.0 - alpha / 2.0))
    return low, high


def binomial_at_most(passed: int, n: int, probability: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p): the chance of so few passes if the design held."""
    _check_counts(passed, n)
    if not 0.0 <= probability <= 1.0:
        raise InvalidInput("probability", f"probability must be between 0 and 1 ({probability!r})")
    if passed >= n:
        return 1.0
    return float(bdtr(passed, n, probability))


def _check_counts(passed: int, n: int) -> None:
    if n < 1 or not 0 <= passed <= n:
        raise InvalidInput("n", f"need n >= 1 and 0 <= passed <= n (got {passed}/{n})")


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise InvalidInput("confidence", f"confidence must be in [0.5, 1) ({confidence!r})")


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """A required UCS at a curing age, and the pass fraction the recipe was designed for
    (e.g. 0.9; or its predicted pass probability; None for a median design with no stated
    fraction). ``name`` says which (``plug``, ``body``, ``liquefaction`` ...)."""

    name: str
    required_ucs_kpa: float
    curing_days: float
    design_pass_fraction: float | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("requirements.name", "a requirement needs a name")
        if not 0.0 < self.required_ucs_kpa <= 1.0e5:
            raise InvalidInput(
                "requirements.required_ucs_kpa",
                f"required_ucs_kpa must be above 0 and at most 1e5 ({self.required_ucs_kpa!r})",
            )
        if not 0.0 < self.curing_days <= 3650.0:
            raise InvalidInput(
                "requirements.curing_days",
                f"curing_days must be above 0 and at most 3650 ({self.curing_days!r})",
            )
        fraction = self.design_pass_fraction
        if fraction is not None and not 0.0 < fraction < 1.0:
            raise InvalidInput(
                "requirements.design_pass_fraction",
                f"design_pass_fraction must be between 0 and 1 ({fraction!r})",
            )


@dataclass(frozen=True)
class SamplePlan:
    """Cylinders cast from a pour: when, the test ages scheduled, where the paste went and
    what it must reach.

    ``blend`` / ``binder_ratio`` / ``solids_fraction`` are the paste's as produced
    (fractions 0-1: blend of the binder, Bw over dry tailings, Cw, best the reconciled
    Cw); they are needed for the on-track check and for recalibration rows.
    """

    sample_id: str
    pour_id: str
    stope_id: str
    cast_at: datetime
    test_ages_days: tuple[float, ...]
    requirements: tuple[Requirement, ...] = ()
    stage_id: str | None = None
    blend: Mapping[str, float] | None = field(default=None, hash=False)
    binder_ratio: float | None = None
    solids_fraction: float | None = None


@dataclass(frozen=True)
class ComplianceConfig:
    """``confidence`` of the pass-fraction intervals (``interval``: ``wilson`` or
    ``clopper_pearson``); a result matches an age d when its nominal age is within
    max(``age_tolerance_min_days``, ``age_tolerance_fraction`` d); a scheduled test is
    overdue ``overdue_grace_days`` after it fell due."""

    confidence: float = 0.95
    interval: IntervalMethod = "wilson"
    age_tolerance_fraction: float = 0.1
    age_tolerance_min_days: float = 0.5
    overdue_grace_days: float = 2.0

    def __post_init__(self) -> None:
        _check_confidence(self.confidence)
        if self.interval not in ("wilson", "clopper_pearson"):
            raise InvalidInput("interval", f"unknown interval method {self.interval!r}")
        for name in ("age_tolerance_fraction", "age_tolerance_min_days", "overdue_grace_days"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise InvalidInput(name, f"{name} must be finite and >= 0 ({value!r})")

    def age_matches(self, age_days: float, target_days: float) -> bool:
        allowed = max(self.age_tolerance_min_days, self.age_tolerance_fraction * target_days)
        return abs(age_days - target_days) <= allowed

    def interval_of(self, passed: int, n: int) -> tuple[float, float]:
        if self.interval == "wilson":
            return wilson_interval(passed, n, self.confidence)
        return clopper_pearson_interval(passed, n, self.confidence)


# --- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """One tested cylinder against one requirement at its age."""

    sample_id: str
    pour_id: str
    stope_id: str
    stage_id: str | None
    requirement: str
    required_ucs_kpa: float
    requirement_days: float
    age_days: float
    ucs_kpa: float
    passed: bool

    @property
    def margin_kpa(self) -> float:
        """Tested minus required UCS (negative: failed by that much)."""
        return self.ucs_kpa - self.required_ucs_kpa


@dataclass(frozen=True)
class PassFraction:
    """The pass fraction of one group (a sample, pour, stage or stope) for one
    requirement: ``passed`` of ``n`` cylinders, ``fraction`` (None without results),
    its interval [``low``, ``high``] at ``confidence``, the design's pass fraction and
    the probability of at most ``passed`` passes had the design held (``p_at_most``)."""

    group: GroupKind
    group_id: str
    requirement: str
    required_ucs_kpa: float
    curing_days: float
    n: int
    passed: int
    fraction: float | None
    low: float | None
    high: float | None
    confidence: float
    design_pass_fraction: float | None
    p_at_most: float | None
    verdict: GroupVerdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "group_id": self.group_id,
            "requirement": self.requirement,
            "required_ucs_kpa": self.required_ucs_kpa,
            "curing_days": self.curing_days,
            "n": self.n,
            "passed": self.passed,
            "pass_pct": None if self.fraction is None else self.fraction * 100.0,
            "pass_pct_low": None if self.low is None else self.low * 100.0,
            "pass_pct_high": None if self.high is None else self.high * 100.0,
            "confidence_pct": self.confidence * 100.0,
            "design_pass_pct": (
                None if self.design_pass_fraction is None else self.design_pass_fraction * 100.0
            ),
            "p_at_most": self.p_at_most,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Notice:
    """Something the engineer must see: a failed or behind-schedule cylinder, an overdue
    test, a group below its design pass fraction, a result for an unknown sample."""

    kind: NoticeKind
    severity: Severity
    detail: str
    sample_id: str | None = None
    pour_id: str | None = None
    stope_id: str | None = None
    stage_id: str | None = None
    requirement: str | None = None
    due_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity.value,
            "detail": self.detail,
            "sample_id": self.sample_id,
            "pour_id": self.pour_id,
            "stope_id": self.stope_id,
            "stage_id": self.stage_id,
            "requirement": self.requirement,
            "due_at": None if self.due_at is None else self.due_at.isoformat(),
        }


NOTICE_SEVERITY: Mapping[NoticeKind, Severity] = {
    "failed": Severity.HIGH,
    "below_design": Severity.HIGH,
    "overdue": Severity.MEDIUM,
    "behind": Severity.LOW,
    "unknown_sample": Severity.LOW,
}


@dataclass(frozen=True)
class ComplianceReport:
    """Every judgement, every group's pass fraction, the notices (most severe first) and
    the results that belong to no known sample."""

    judgements: tuple[Judgement, ...]
    pass_fractions: tuple[PassFraction, ...]
    notices: tuple[Notice, ...]
    unmatched_results: tuple[LabResult, ...]

    def pass_fraction(
        self, group: GroupKind, group_id: str, requirement: str
    ) -> PassFraction | None:
        """The group's entry for a requirement (None when there is none)."""
        for entry in self.pass_fractions:
            if (entry.group, entry.group_id, entry.requirement) == (group, group_id, requirement):
                return entry
        return None


# --- assessment ---------------------------------------------------------------------------

_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


def _on_track_ucs_kpa(
    model: StrengthModel, plan: SamplePlan, requirement: Requirement, age_days: float
) -> float | None:
    """R (t/t_req)^m, m the model's time exponent for the plan's blend; None when the
    blend is unknown or not in the model."""
    if plan.blend is None:
        return None
    try:
        slope = model.time_slope(model.blend_vector(plan.blend))
    except (InvalidInput, OutsideCalibrationRange):
        return None
    ratio = age_days / requirement.curing_days
    return float(requirement.required_ucs_kpa * ratio**slope)


def assess_compliance(
    plans: Sequence[SamplePlan],
    results: Iterable[LabResult],
    now: datetime,
    config: ComplianceConfig | None = None,
    model: StrengthModel | None = None,
) -> ComplianceReport:
    """Judge every tested cylinder, summarise per sample / pour / stage / stope, and list
    the notices (failed, overdue, behind, below the design's pass fraction, unknown
    sample) at ``now``.

    A result is judged against each of its plan's requirements whose age it matches
    (its nominal age, see :class:`ComplianceConfig`); ``ucs_kpa`` 0 (too weak to test)
    fails. Results at other ages are not judged; with ``model`` an earlier one below
    the on-track strength R (t/t_req)^m is a ``behind`` notice. A scheduled age with no
    tested result by due + grace is ``overdue``. A pour, stage or stope whose interval
    lies wholly below the design's pass fraction is ``below_design``.
    """
    cfg = config or ComplianceConfig()
    if now.tzinfo is None:
        raise InvalidInput("now", "now must carry a time zone")
    by_id: dict[str, SamplePlan] = {}
    for index, plan in enumerate(plans):
        if plan.sample_id in by_id:
            raise InvalidInput(
                f"plans[{index}].sample_id", f"sample {plan.sample_id!r} is planned twice"
            )
        by_id[plan.sample_id] = plan
    judgements: list[Judgement] = []
    notices: list[Notice] = []
    unmatched: list[LabResult] = []
    tested: dict[str, list[float]] = {}
    for result in results:
        found = by_id.get(result.sample_id)
        if found is None:
            unmatched.append(result)
            notices.append(
                Notice(
                    "unknown_sample",
                    NOTICE_SEVERITY["unknown_sample"],
                    f"a result for sample {result.sample_id!r}, which no pour cast",
                    sample_id=result.sample_id,
                )
            )
            continue
        plan = found
        if result.ucs_kpa is None:
            continue
        nominal = result.nominal_days
        tested.setdefault(plan.sample_id, []).append(nominal)
        for requirement in plan.requirements:
            if cfg.age_matches(nominal, requirement.curing_days):
                judgement = Judgement(
                    sample_id=plan.sample_id,
                    pour_id=plan.pour_id,
                    stope_id=plan.stope_id,
                    stage_id=plan.stage_id,
                    requirement=requirement.name,
                    required_ucs_kpa=requirement.required_ucs_kpa,
                    requirement_days=requirement.curing_days,
                    age_days=result.age_days,
                    ucs_kpa=result.ucs_kpa,
                    passed=result.ucs_kpa >= requirement.required_ucs_kpa,
                )
                judgements.append(judgement)
                if not judgement.passed:
                    notices.append(
                        Notice(
                            "failed",
                            NOTICE_SEVERITY["failed"],
                            f"sample {plan.sample_id} (pour {plan.pour_id}, stope "
                            f"{plan.stope_id}) tested {result.ucs_kpa:g} kPa at "
                            f"{result.age_days:.1f} days, below the {requirement.name} "
                            f"requirement of {requirement.required_ucs_kpa:g} kPa at "
                            f"{requirement.curing_days:g} days",
                            sample_id=plan.sample_id,
                            pour_id=plan.pour_id,
                            stope_id=plan.stope_id,
                            stage_id=plan.stage_id,
                            requirement=requirement.name,
                        )
                    )
            elif model is not None and nominal < requirement.curing_days:
                on_track = _on_track_ucs_kpa(model, plan, requirement, result.age_days)
                if on_track is not None and result.ucs_kpa < on_track:
                    notices.append(
                        Notice(
                            "behind",
                            NOTICE_SEVERITY["behind"],
                            f"sample {plan.sample_id} tested {result.ucs_kpa:g} kPa at "
                            f"{result.age_days:.1f} days; on track for the {requirement.name} "
                            f"requirement ({requirement.required_ucs_kpa:g} kPa at "
                            f"{requirement.curing_days:g} days) it should have about "
                            f"{on_track:.0f} kPa",
                            sample_id=plan.sample_id,
                            pour_id=plan.pour_id,
                            stope_id=plan.stope_id,
                            stage_id=plan.stage_id,
                            requirement=requirement.name,
                        )
                    )
    for plan in plans:
        for age in plan.test_ages_days:
            due_at = plan.cast_at + age * _DAY
            late = now - due_at - cfg.overdue_grace_days * _DAY
            if late.total_seconds() <= 0.0:
                continue
            if any(cfg.age_matches(done, age) for done in tested.get(plan.sample_id, [])):
                continue
            notices.append(
                Notice(
                    "overdue",
                    NOTICE_SEVERITY["overdue"],
                    f"sample {plan.sample_id} (pour {plan.pour_id}) was due for its "
                    f"{age:g}-day test on {due_at.date().isoformat()}; no result "
                    f"{(now - due_at).total_seconds() / 86400.0:.1f} days later",
                    sample_id=plan.sample_id,
                    pour_id=plan.pour_id,
                    stope_id=plan.stope_id,
                    stage_id=plan.stage_id,
                    due_at=due_at,
                )
            )
    fractions = _pass_fractions(plans, judgements, cfg)
    for entry in fractions:
        if entry.verdict == "below_design" and entry.group != "sample":
            assert entry.design_pass_fraction is not None and entry.fraction is not None
            assert entry.low is not None and entry.high is not None
            notices.append(
                Notice(
                    "below_design",
                    NOTICE_SEVERITY["below_design"],
                    f"{entry.group} {entry.group_id}: {entry.passed} of {entry.n} cylinders "
                    f"passed the {entry.requirement} requirement ({entry.fraction * 100:.0f} %, "
                    f"{cfg.confidence * 100:g} % interval {entry.low * 100:.0f}-"
                    f"{entry.high * 100:.0f} %), below the design's "
                    f"{entry.design_pass_fraction * 100:g} %",
                    pour_id=entry.group_id if entry.group == "pour" else None,
                    stope_id=entry.group_id if entry.group == "stope" else None,
                    stage_id=entry.group_id if entry.group == "stage" else None,
                    requirement=entry.requirement,
                )
            )
    notices.sort(key=lambda n: _SEVERITY_ORDER[n.severity])
    return ComplianceReport(tuple(judgements), tuple(fractions), tuple(notices), tuple(unmatched))


# (group kind, group id, requirement name, required kPa, days, design pass fraction)
_GroupKey = tuple[GroupKind, str, str, float, float, float | None]


def _pass_fractions(
    plans: Sequence[SamplePlan], judgements: Sequence[Judgement], cfg: ComplianceConfig
) -> list[PassFraction]:
    # One entry per group and requirement that any plan of the group carries, so a group
    # with no results yet is listed as such.
    counts: dict[_GroupKey, list[int]] = {}

    def keys(
        sample_id: str, pour_id: str, stage_id: str | None, stope_id: str, req: Requirement
    ) -> list[_GroupKey]:
        groups: list[tuple[GroupKind, str]] = [
            ("sample", sample_id),
            ("pour", pour_id),
            ("stope", stope_id),
        ]
        if stage_id is not None:
            groups.append(("stage", stage_id))
        return [
            (kind, gid, req.name, req.required_ucs_kpa, req.curing_days, req.design_pass_fraction)
            for kind, gid in groups
        ]

    requirement_of: dict[tuple[str, str], Requirement] = {}
    for plan in plans:
        for req in plan.requirements:
            requirement_of[(plan.sample_id, req.name)] = req
            for key in keys(plan.sample_id, plan.pour_id, plan.stage_id, plan.stope_id, req):
                counts.setdefault(key, [0, 0])
    for j in judgements:
        req = requirement_of[(j.sample_id, j.requirement)]
        for key in keys(j.sample_id, j.pour_id, j.stage_id, j.stope_id, req):
            tally = counts.setdefault(key, [0, 0])
            tally[0] += 1
            tally[1] += int(j.passed)
    order: dict[GroupKind, int] = {"stope": 0, "stage": 1, "pour": 2, "sample": 3}
    out: list[PassFraction] = []
    for key in sorted(counts, key=lambda k: (order[k[0]], k[1], k[2], k[4])):
        kind, gid, name, required, days, design = key
        n, passed = counts[key]
        fraction = low = high = p_at_most = None
        verdict: GroupVerdict
        if n == 0:
            verdict = "no_results"
        else:
            fraction = passed / n
            low, high = cfg.interval_of(passed, n)
            if design is None:
                verdict = "no_design"
            else:
                p_at_most = binomial_at_most(passed, n, design)
                if high < design:
                    verdict = "below_design"
                elif low > design:
                    verdict = "above_design"
                else:
                    verdict = "consistent"
        out.append(
            PassFraction(
                group=kind,
                group_id=gid,
                requirement=name,
                required_ucs_kpa=required,
                curing_days=days,
                n=n,
                passed=passed,
                fraction=fraction,
                low=low,
                high=high,
                confidence=cfg.confidence,
                design_pass_fraction=design,
                p_at_most=p_at_most,
                verdict=verdict,
            )
        )
    return out


# --- recalibration ------------------------------------------------------------------------


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
