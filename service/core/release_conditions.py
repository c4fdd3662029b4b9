"""When a stage on hold may be released, on evidence: its hold, its strength, the
barricade. Pure: the evidence in, each condition with its figure and basis out.

Practice releases the body pour when the plug has the strength its requirement names
and the barricade pressure has fallen back (Thompson, B.D., Bawden, W.F. & Grabinsky,
M.W. (2012), "In situ measurements of cemented paste backfill at the Cayeli Mine",
Can. Geotech. J. 49(7):755-772: the barricade load peaks while the plug is young and
falls as it consolidates and cures; Grabinsky, M., Jafari, M. & Pan, A. (2021),
"Required plug strength for continuously poured cemented paste backfill in longhole
stopes", Mining 1(1):80-99: the plug must reach its required strength before the body
loads it). The conditions of the stage on hold:

- ``hold``: the plan's cure hold has elapsed (plant time);
- ``strength``: the stage's release requirement (its earliest: R at t days), judged on
  its cylinders when the lab has tested them at t (every strength test of the stage at
  that age, the mean of the cylinders of a pour cast together as ACI 318-19
  §26.12.1.1 defines a test, reaches R), else on the calibration's estimate at the
  stage's age now (the strength a design's pass fraction p of cylinders of that paste
  is expected to exceed, exp(x0'b - t_{p,n-p} s sqrt(1 + h0)), Montgomery, Peck & Vining
  (2012), Introduction to Linear Regression Analysis, 5th ed., §3.5). The age is
  counted from the stage's top (its youngest paste) on the plant's clock, taken as the
  equivalent age at the calibration's curing temperature: the fill's own temperature
  is not measured, so no maturity correction is made (the equivalent-age method of
  ASTM C1074, Standard Practice for Estimating Concrete Strength by the Maturity
  Method, with the fill at the laboratory's temperature). Which of the two the figure
  rests on is stated;
- ``barricade``: each of the stope's barricades reads below the site's fraction of its
  rating now (a stope without an instrumented barricade: not applicable; a bad reading:
  unknown, not met).

A condition is met, not met, unknown (no evidence either way: not met) or not
applicable (counts as met). A stage is ready for release when every condition is met;
an engineer may release it before only with a reason, which the audit log keeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from service.core.acceptance import StrengthTest
from service.errors import InvalidInput

ConditionKind = Literal["hold", "strength", "barricade"]
ConditionStatus = Literal["met", "not_met", "unknown", "not_applicable"]
_DAY_S = 86400.0


@dataclass(frozen=True)
class ReleaseCondition:
    """One condition: its ``status``, the ``figure`` it is judged on against ``limit``
    (in ``unit``), what the figure rests on (``basis``), a sentence (``detail``) and the
    evidence itself."""

    kind: ConditionKind
    status: ConditionStatus
    basis: str
    detail: str
    figure: float | None = None
    limit: float | None = None
    unit: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.status in ("met", "not_applicable")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "met": self.met,
            "figure": self.figure,
            "limit": self.limit,
            "unit": self.unit,
            "basis": self.basis,
            "detail": self.detail,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class ReleaseAssessment:
    """The release conditions of the stage on hold, at ``evaluated_at`` (plant time)."""

    stage: int
    stage_name: str
    evaluated_at: datetime
    conditions: tuple[ReleaseCondition, ...]

    @property
    def ready(self) -> bool:
        return all(c.met for c in self.conditions)

    @property
    def unmet(self) -> tuple[ReleaseCondition, ...]:
        return tuple(c for c in self.conditions if not c.met)

    def condition(self, kind: ConditionKind) -> ReleaseCondition:
        return next(c for c in self.conditions if c.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "stage_name": self.stage_name,
            "evaluated_at": self.evaluated_at.isoformat(),
            "clock": "plant",
            "ready": self.ready,
            "conditions": [c.to_dict() for c in self.conditions],
        }


@dataclass(frozen=True)
class StrengthEstimate:
    """The calibration's estimate of the stage's paste at an age: the median and the
    strength a fraction ``pass_fraction`` of cylinders is expected to exceed, with what
    it rests on (the calibration, the paste's Cw and Bw and where they come from)."""

    calibration_id: str
    calibration: str
    age_days: float
    median_kpa: float
    lower_kpa: float
    pass_fraction: float
    solids_pct: float
    binder_pct: float
    paste_basis: str  # "as placed" (the pours' estimates) or "as designed" (the recipe)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration_id": self.calibration_id,
            "calibration": self.calibration,
            "age_days": self.age_days,
            "median_kpa": self.median_kpa,
            "lower_kpa": self.lower_kpa,
            "pass_pct": 100.0 * self.pass_fraction,
            "solids_pct": self.solids_pct,
            "binder_pct": self.binder_pct,
            "paste": self.paste_basis,
        }


def hold_condition(hold_ends_at: datetime | None, now: datetime) -> ReleaseCondition:
    """The plan's cure hold has elapsed (both times plant time)."""
    if hold_ends_at is None:
        return ReleaseCondition("hold", "not_applicable", "plan_hold", "the stage has no hold")
    remaining = (hold_ends_at - now).total_seconds()
    if remaining <= 0.0:
        return ReleaseCondition(
            "hold", "met", "plan_hold", f"the hold ended at {hold_ends_at.isoformat()}",
            figure=0.0, limit=0.0, unit="s",
            evidence={"hold_ends_at": hold_ends_at.isoformat()},
        )  # fmt: skip
    return ReleaseCondition(
        "hold",
        "not_met",
        "plan_hold",
        f"the hold runs until {hold_ends_at.isoformat()} (plant time): "
        f"{remaining / 3600.0:.2f} h left before it can be released",
        figure=remaining,
        limit=0.0,
        unit="s",
        evidence={"hold_ends_at": hold_ends_at.isoformat(), "remaining_s": remaining},
    )


def _test_dict(test: StrengthTest) -> dict[str, Any]:
    return {
        "pour_id": test.pour_id,
        "cast_at": test.cast_at.isoformat(),
        "sample_ids": list(test.sample_ids),
        "cylinders_kpa": list(test.cylinders_kpa),
        "strength_kpa": test.strength_kpa,
        "curing_days": test.curing_days,
    }


def strength_condition(
    requirement: tuple[str, float, float] | None,
    tests: Sequence[StrengthTest],
    estimate: StrengthEstimate | None,
    no_estimate: str = "",
) -> ReleaseCondition:
    """The stage's strength against its release requirement (name, R kPa, t days):
    on its strength tests at t when there are any, else on the calibration's estimate
    (``no_estimate`` says why there is none). Module docstring."""
    if requirement is None:
        return ReleaseCondition(
            "strength",
            "not_applicable",
            "none",
            "the stage names no strength requirement: its release rests on its hold",
        )
    name, required, days = requirement
    if not (math.isfinite(required) and required > 0.0 and days > 0.0):
        raise InvalidInput("requirement", "a release requirement needs R > 0 at t > 0 days")
    label = f"{name + ': ' if name else ''}{required:g} kPa at {days:g} d"
    if tests:
        weakest = min(tests, key=lambda t: t.strength_kpa)
        met = weakest.strength_kpa >= required
        return ReleaseCondition(
            "strength",
            "met" if met else "not_met",
            "cylinders",
            f"{len(tests)} strength test(s) of the stage's cylinders at {days:g} d; the "
            f"lowest {weakest.strength_kpa:.0f} kPa {'reaches' if met else 'is below'} "
            f"{label}",
            figure=weakest.strength_kpa,
            limit=required,
            unit="kPa",
            evidence={"requirement": label, "tests": [_test_dict(t) for t in tests]},
        )
    if estimate is None:
        return ReleaseCondition(
            "strength",
            "unknown",
            "none",
            f"no cylinder of the stage tested at {days:g} d yet, and no estimate"
            + (f" ({no_estimate})" if no_estimate else "")
            + f": {label} is not shown",
            limit=required,
            unit="kPa",
            evidence={"requirement": label},
        )
    met = estimate.lower_kpa >= required
    return ReleaseCondition(
        "strength",
        "met" if met else "not_met",
        "calibration_estimate",
        f"no cylinder of the stage tested at {days:g} d yet; calibration "
        f"{estimate.calibration!r} estimates the paste {estimate.paste_basis} (Cw "
        f"{estimate.solids_pct:.1f} %, Bw {estimate.binder_pct:.2f} %) at its age of "
        f"{estimate.age_days:.2f} d: {100 * estimate.pass_fraction:g} % of cylinders expected "
        f"above {estimate.lower_kpa:.0f} kPa (median {estimate.median_kpa:.0f} kPa), "
        f"{'reaching' if met else 'below'} {label}",
        figure=estimate.lower_kpa,
        limit=required,
        unit="kPa",
        evidence={"requirement": label, "estimate": estimate.to_dict()},
    )


def barricade_condition(
    readings: Mapping[str, tuple[float | None, str]],
    rating_kpa: float,
    release_fraction: float,
) -> ReleaseCondition:
    """Every barricade of the stope below ``release_fraction`` of its rating now.
    ``readings``: tag -> (kPa or None, quality ``good``/``uncertain``/``bad``); no tag:
    not applicable; a bad or missing reading: unknown."""
    if not 0.0 < release_fraction <= 1.0:
        raise InvalidInput("release_fraction", "the release fraction is in (0, 1]")
    if not (math.isfinite(rating_kpa) and rating_kpa > 0.0):
        raise InvalidInput("rating_kpa", "a barricade rating is above 0")
    limit = release_fraction * rating_kpa
    if not readings:
        return ReleaseCondition(
            "barricade",
            "not_applicable",
            "no_barricade",
            "the stope has no instrumented barricade: no pressure to wait for",
            limit=limit,
            unit="kPa",
        )
    values = {tag: readings[tag] for tag in sorted(readings)}
    evidence = {
        "readings": {tag: {"kpa": v, "quality": q} for tag, (v, q) in values.items()},
        "rating_kpa": rating_kpa,
        "release_pct": 100.0 * release_fraction,
    }
    unknown = [
        tag for tag, (v, q) in values.items() if v is None or q == "bad" or not math.isfinite(v)
    ]
    if unknown:
        return ReleaseCondition(
            "barricade",
            "unknown",
            "barricade_reading",
            f"barricade {', '.join(unknown)} does not read (quality bad or no value): its "
            "pressure is not known to have fallen",
            limit=limit,
            unit="kPa",
            evidence=evidence,
        )
    tag, (highest, _) = max(values.items(), key=lambda item: item[1][0] or 0.0)
    assert highest is not None
    met = highest < limit
    return ReleaseCondition(
        "barricade",
        "met" if met else "not_met",
        "barricade_reading",
        f"barricade {tag} reads {highest:.1f} kPa, {'below' if met else 'not below'} "
        f"{100 * release_fraction:g} % of its rating ({limit:.1f} of {rating_kpa:g} kPa)",
        figure=highest,
        limit=limit,
        unit="kPa",
        evidence=evidence,
    )


def assess_release(
    stage: int,
    stage_name: str,
    now: datetime,
    *,
    hold: ReleaseCondition,
    strength: ReleaseCondition,
    barricade: ReleaseCondition,
) -> ReleaseAssessment:
    return ReleaseAssessment(stage, stage_name, now, (hold, strength, barricade))


def age_days(since: datetime | None, now: datetime) -> float | None:
    """Days from ``since`` to ``now`` (None without a start)."""
    if since is None:
        return None
    return max((now - since).total_seconds(), 0.0) / _DAY_S
