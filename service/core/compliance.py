"""Compliance of the placed fill with its strength requirements.

A design holds for the cylinders, not on average: a recipe is designed so that a chosen
fraction p of new cylinders reaches the requirement R at its age t
(:mod:`service.core.reliability`, :mod:`service.core.tolerance`). The lab then tells
whether it did:

- acceptance as concrete practice judges it (:mod:`service.core.acceptance`, ACI 318-19
  §26.12.3 adapted): a strength test is the mean of the cylinders of one pour cast
  together and tested at the requirement's age; every running average of the site's
  number of consecutive tests (3) of a stope must reach R, and a test below R by more
  than the site's gross-low margin is grossly low. Either failure is a high notice;
- each tested cylinder passes when UCS >= R, the unit the design's pass fraction is
  stated for; one below R is information, not an alarm (a design at p expects 1 - p);
- per sample, pour, stage and stope the observed pass fraction k/n carries a confidence
  interval, Wilson's score interval (Wilson, E.B. (1927), "Probable inference, the law
  of succession, and statistical inference", J. Am. Stat. Assoc. 22(158):209-212) or
  the exact Clopper-Pearson interval (Clopper, C.J. & Pearson, E.S. (1934), "The use of
  confidence or fiducial limits illustrated in the case of the binomial", Biometrika
  26(4):404-413); the design's p is judged against it (below when the interval lies
  wholly below p), with the binomial probability P(X <= k | n, p) of seeing so few
  passes if the design held. Cylinders of one pour share its paste and are not
  independent: the counts are those of clustered binary data, divided by the design
  effect d estimated from the clusters (Rao, J.N.K. & Scott, A.J. (1992), "A simple
  method for the analysis of clustered binary data", Biometrics 48(2):577-585): clusters
  are the pours in a stage or stope, the casts (cylinders cast together) in a pour;
  d = v_c / (p^(1 - p^)/n), v_c = m/(m - 1) sum_i (k_i - p^ n_i)^2 / n^2 the variance of
  the pass fraction over the m clusters (Cochran, W.G. (1977), *Sampling Techniques*, 3rd
  ed., Wiley, §6.2, the ratio estimator), kept between 1 (independent cylinders) and
  n/m (each cluster one observation), and n/m itself when it cannot be estimated (one
  cluster, or every cylinder passing or failing);
- a cylinder cast at t0 to be tested at d days and not tested by t0 + d + grace is
  overdue; a result before the requirement's age can be compared with the strength it
  should have on the way, R (t_test/t_req)^m with m the fitted model's time exponent for
  the blend (the time factor UCS(t) = UCS28 (t/28)^m of :mod:`service.core.strength_model`),
  an early warning, not a failure.

Recalibration from the same results is :mod:`service.core.recalibration`.

Values in, values out; ``now`` is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from service.core import acceptance
from service.core.lab import LabResult
from service.core.lazy_scipy import betainc, betaincinv, ndtri
from service.core.strength_model import (
    StrengthModel,
)
from service.errors import InvalidInput, OutsideCalibrationRange

_DAY = timedelta(days=1)

GroupKind = Literal["sample", "pour", "stage", "stope"]
IntervalMethod = Literal["wilson", "clopper_pearson"]
GroupVerdict = Literal["no_results", "no_design", "below_design", "consistent", "above_design"]
NoticeKind = Literal[
    "low_cylinder",
    "gross_low",
    "running_average",
    "overdue",
    "behind",
    "below_design",
    "unknown_sample",
]


class NoticeSeverity(StrEnum):
    """How much a notice asks of the engineer: ``info`` is expected and asks nothing
    (a single low cylinder of a design at p < 1), then low, medium and high."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# --- confidence intervals of a proportion -------------------------------------------------


def wilson_interval(passed: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion k/n (Wilson 1927):
    (k + z^2/2 +- z sqrt(k(n - k)/n + z^2/4)) / (n + z^2), z = Phi^-1((1 + c)/2); k and n
    may be effective (non-integer) counts."""
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


def clopper_pearson_interval(
    passed: float, n: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The exact interval (Clopper & Pearson 1934): the a/2 quantile of Beta(k, n - k + 1)
    and the 1 - a/2 quantile of Beta(k + 1, n - k), a = 1 - c (0 and 1 at the ends); k and
    n may be effective (non-integer) counts."""
    _check_counts(passed, n)
    _check_confidence(confidence)
    alpha = 1.0 - confidence
    low = 0.0 if passed == 0 else float(betaincinv(passed, n - passed + 1, alpha / 2.0))
    high = 1.0 if passed == n else float(betaincinv(passed + 1, n - passed, 1.0 - alpha / 2.0))
    return low, high


def binomial_at_most(passed: float, n: float, probability: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p): the chance of so few passes if the design held;
    I_{1-p}(n - k, k + 1), the regularised incomplete beta function, which extends it to
    effective (non-integer) counts."""
    _check_counts(passed, n)
    if not 0.0 <= probability <= 1.0:
        raise InvalidInput("probability", f"probability must be between 0 and 1 ({probability!r})")
    if passed >= n:
        return 1.0
    return float(betainc(n - passed, passed + 1.0, 1.0 - probability))


def _check_counts(passed: float, n: float) -> None:
    if not n >= 1 or not 0 <= passed <= n:
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
    overdue ``overdue_grace_days`` after it fell due; ``acceptance`` the site's rules for
    strength tests (consecutive tests averaged, gross-low margin)."""

    confidence: float = 0.95
    interval: IntervalMethod = "wilson"
    age_tolerance_fraction: float = 0.1
    age_tolerance_min_days: float = 0.5
    overdue_grace_days: float = 2.0
    acceptance: acceptance.AcceptanceRules = field(default_factory=acceptance.AcceptanceRules)

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

    def interval_of(self, passed: float, n: float) -> tuple[float, float]:
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
    requirement: ``passed`` of ``n`` cylinders in ``clusters`` clusters (pours in a stage
    or stope, casts in a pour), ``fraction`` (None without results), the
    ``design_effect`` d and the ``effective_n`` n/d the interval [``low``, ``high``] at
    ``confidence`` and ``p_at_most`` (the probability of so few passes had the design
    held) are computed on, and the design's pass fraction."""

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
    clusters: int = 0
    design_effect: float | None = None
    effective_n: float | None = None

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
            "clusters": self.clusters,
            "design_effect": self.design_effect,
            "effective_n": self.effective_n,
        }


@dataclass(frozen=True)
class Notice:
    """Something the engineer should see: a grossly low test or a running average below
    the requirement (high), a group below its design pass fraction (high), an overdue
    test (medium), a cylinder behind its strength curve or a result for an unknown
    sample (low), a single cylinder below the requirement (information)."""

    kind: NoticeKind
    severity: NoticeSeverity
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


NOTICE_SEVERITY: Mapping[NoticeKind, NoticeSeverity] = {
    "gross_low": NoticeSeverity.HIGH,
    "running_average": NoticeSeverity.HIGH,
    "below_design": NoticeSeverity.HIGH,
    "overdue": NoticeSeverity.MEDIUM,
    "behind": NoticeSeverity.LOW,
    "unknown_sample": NoticeSeverity.LOW,
    "low_cylinder": NoticeSeverity.INFO,
}


@dataclass(frozen=True)
class ComplianceReport:
    """Every judgement, every group's pass fraction, the notices (most severe first),
    the results that belong to no known sample, the strength tests and the running
    averages of consecutive tests (:mod:`service.core.acceptance`)."""

    judgements: tuple[Judgement, ...]
    pass_fractions: tuple[PassFraction, ...]
    notices: tuple[Notice, ...]
    unmatched_results: tuple[LabResult, ...]
    tests: tuple[acceptance.StrengthTest, ...] = ()
    running_averages: tuple[acceptance.RunningAverage, ...] = ()

    def pass_fraction(
        self, group: GroupKind, group_id: str, requirement: str
    ) -> PassFraction | None:
        """The group's entry for a requirement (None when there is none)."""
        for entry in self.pass_fractions:
            if (entry.group, entry.group_id, entry.requirement) == (group, group_id, requirement):
                return entry
        return None


# --- assessment ---------------------------------------------------------------------------

_SEVERITY_ORDER = {
    NoticeSeverity.HIGH: 0,
    NoticeSeverity.MEDIUM: 1,
    NoticeSeverity.LOW: 2,
    NoticeSeverity.INFO: 3,
}


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
    """Judge every tested cylinder and every strength test, summarise per sample / pour
    / stage / stope, and list the notices at ``now`` (see :data:`NOTICE_SEVERITY`).

    A result is judged against each of its plan's requirements whose age it matches
    (its nominal age, see :class:`ComplianceConfig`); ``ucs_kpa`` 0 (too weak to test)
    fails. A cylinder below R is a ``low_cylinder`` notice (information). The cylinders
    of a pour cast together make a strength test (:mod:`service.core.acceptance`): one
    grossly low is ``gross_low``, a running average of consecutive tests of a stope below
    R is ``running_average``. Results at other ages are not judged; with ``model`` an
    earlier one below the on-track strength R (t/t_req)^m is a ``behind`` notice. A
    scheduled age with no tested result by due + grace is ``overdue``. A pour, stage or
    stope whose (clustered) interval lies wholly below the design's pass fraction is
    ``below_design``.
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
                    expected = requirement.design_pass_fraction
                    notices.append(
                        Notice(
                            "low_cylinder",
                            NOTICE_SEVERITY["low_cylinder"],
                            f"sample {plan.sample_id} (pour {plan.pour_id}, stope "
                            f"{plan.stope_id}) tested {result.ucs_kpa:g} kPa at "
                            f"{result.age_days:.1f} days, below the {requirement.name} "
                            f"requirement of {requirement.required_ucs_kpa:g} kPa at "
                            f"{requirement.curing_days:g} days"
                            + (
                                ""
                                if expected is None
                                else f"; a design at {expected * 100:g} % expects "
                                f"{(1.0 - expected) * 100:g} % of its cylinders below it"
                            )
                            + " (the tests and running averages judge the fill)",
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
    tests = acceptance.strength_tests(
        (
            acceptance.JudgedCylinder(
                sample_id=j.sample_id,
                pour_id=j.pour_id,
                stope_id=j.stope_id,
                stage_id=j.stage_id,
                cast_at=by_id[j.sample_id].cast_at,
                requirement=j.requirement,
                required_ucs_kpa=j.required_ucs_kpa,
                curing_days=j.requirement_days,
                ucs_kpa=j.ucs_kpa,
            )
            for j in judgements
        ),
        cfg.acceptance,
    )
    averages = acceptance.running_averages(tests, cfg.acceptance)
    notices += _acceptance_notices(tests, averages, cfg.acceptance)
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
    return ComplianceReport(
        tuple(judgements),
        tuple(fractions),
        tuple(notices),
        tuple(unmatched),
        tests,
        averages,
    )


def _acceptance_notices(
    tests: Sequence[acceptance.StrengthTest],
    averages: Sequence[acceptance.RunningAverage],
    rules: acceptance.AcceptanceRules,
) -> list[Notice]:
    """A ``gross_low`` notice per grossly low test, a ``running_average`` notice per
    average of consecutive tests below the requirement (both high)."""
    out = []
    for test in tests:
        if test.gross_low:
            out.append(
                Notice(
                    "gross_low",
                    NOTICE_SEVERITY["gross_low"],
                    f"pour {test.pour_id} (stope {test.stope_id}): the test of "
                    f"{len(test.sample_ids)} cylinder(s) cast {test.cast_at.isoformat()} "
                    f"({', '.join(test.sample_ids)}) averaged {test.strength_kpa:.0f} kPa, "
                    f"more than {rules.gross_low_margin * 100:g} % below the "
                    f"{test.requirement} requirement of {test.required_ucs_kpa:g} kPa at "
                    f"{test.curing_days:g} days (limit {test.gross_low_limit_kpa:.0f} kPa)",
                    sample_id=test.sample_ids[0] if len(test.sample_ids) == 1 else None,
                    pour_id=test.pour_id,
                    stope_id=test.stope_id,
                    stage_id=test.stage_id,
                    requirement=test.requirement,
                )
            )
    for average in averages:
        if not average.passed:
            pours = ", ".join(pour for pour, _ in average.tests)
            out.append(
                Notice(
                    "running_average",
                    NOTICE_SEVERITY["running_average"],
                    f"stope {average.stope_id}: {len(average.tests)} consecutive tests (pours "
                    f"{pours}) averaged {average.average_kpa:.0f} kPa, below the "
                    f"{average.requirement} requirement of {average.required_ucs_kpa:g} kPa "
                    f"at {average.curing_days:g} days",
                    pour_id=average.tests[-1][0],
                    stope_id=average.stope_id,
                    requirement=average.requirement,
                )
            )
    return out


# (group kind, group id, requirement name, required kPa, days, design pass fraction)
_GroupKey = tuple[GroupKind, str, str, float, float, float | None]


def design_effect(clusters: Sequence[tuple[int, int]]) -> float:
    """The design effect d of clustered pass/fail counts ``(n_i, k_i)`` (Rao & Scott 1992):
    the cluster variance of the pass fraction over the binomial one, kept in [1, n/m];
    n/m (each cluster one observation) when it cannot be estimated."""
    m = len(clusters)
    n = sum(size for size, _ in clusters)
    passed = sum(k for _, k in clusters)
    if n == 0:
        return 1.0
    worst = n / m
    if m < 2 or passed in (0, n):
        return worst
    p = passed / n
    variance = m / (m - 1) * sum((k - p * size) ** 2 for size, k in clusters) / (n * n)
    return min(worst, max(1.0, variance / (p * (1.0 - p) / n)))


def _pass_fractions(
    plans: Sequence[SamplePlan], judgements: Sequence[Judgement], cfg: ComplianceConfig
) -> list[PassFraction]:
    # One entry per group and requirement that any plan of the group carries, so a group
    # with no results yet is listed as such. Within a group, cylinders are counted per
    # cluster: the pour in a stage or stope, the cast in a pour, the sample itself.
    counts: dict[_GroupKey, dict[str, list[int]]] = {}
    cast_of = {plan.sample_id: plan.cast_at.isoformat() for plan in plans}

    def keys(
        sample_id: str, pour_id: str, stage_id: str | None, stope_id: str, req: Requirement
    ) -> list[tuple[_GroupKey, str]]:
        groups: list[tuple[GroupKind, str, str]] = [
            ("sample", sample_id, sample_id),
            ("pour", pour_id, cast_of[sample_id]),
            ("stope", stope_id, pour_id),
        ]
        if stage_id is not None:
            groups.append(("stage", stage_id, pour_id))
        fraction = req.design_pass_fraction
        return [
            ((kind, gid, req.name, req.required_ucs_kpa, req.curing_days, fraction), cluster)
            for kind, gid, cluster in groups
        ]

    requirement_of: dict[tuple[str, str], Requirement] = {}
    for plan in plans:
        for req in plan.requirements:
            requirement_of[(plan.sample_id, req.name)] = req
            for key, _ in keys(plan.sample_id, plan.pour_id, plan.stage_id, plan.stope_id, req):
                counts.setdefault(key, {})
    for j in judgements:
        req = requirement_of[(j.sample_id, j.requirement)]
        for key, cluster in keys(j.sample_id, j.pour_id, j.stage_id, j.stope_id, req):
            tally = counts.setdefault(key, {}).setdefault(cluster, [0, 0])
            tally[0] += 1
            tally[1] += int(j.passed)
    order: dict[GroupKind, int] = {"stope": 0, "stage": 1, "pour": 2, "sample": 3}
    out: list[PassFraction] = []
    for key in sorted(counts, key=lambda k: (order[k[0]], k[1], k[2], k[4])):
        kind, gid, name, required, days, design = key
        clusters = [(size, k) for size, k in counts[key].values()]
        n = sum(size for size, _ in clusters)
        passed = sum(k for _, k in clusters)
        fraction = low = high = p_at_most = effect = effective_n = None
        verdict: GroupVerdict
        if n == 0:
            verdict = "no_results"
        else:
            fraction = passed / n
            effect = design_effect(clusters)
            effective_n = n / effect
            low, high = cfg.interval_of(passed / effect, effective_n)
            if design is None:
                verdict = "no_design"
            else:
                p_at_most = binomial_at_most(passed / effect, effective_n, design)
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
                clusters=len(clusters),
                design_effect=effect,
                effective_n=effective_n,
            )
        )
    return out
