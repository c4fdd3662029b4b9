"""Acceptance of the placed fill by strength tests, as concrete practice judges it.

ACI 318 (American Concrete Institute (2019), *Building Code Requirements for Structural
Concrete* (ACI 318-19), §26.12.3, "Acceptance criteria for standard-cured specimens")
judges *strength tests*, not cylinders, and states two conditions:

- a strength test is the average strength of the cylinders made from one sample and
  tested at one age (§26.12.1.1; two 150 x 300 mm or three 100 x 200 mm cylinders);
- every arithmetic average of any three consecutive strength tests reaches the specified
  strength (§26.12.3.1(a));
- no strength test falls below the specified strength by more than 500 psi (3.5 MPa)
  when it is 5,000 psi or less, or by more than 10 % above that (§26.12.3.1(b)).

Adapted to paste backfill: a test is the mean UCS of the cylinders of one pour cast
together (one cast time) and tested at a requirement's age; the consecutive tests are
those of one stope against one requirement, in the order they were cast; the number of
consecutive tests averaged is the site's (``consecutive_tests``, 3 as in ACI 318); a
fixed 3.5 MPa margin means nothing at 0.15-1 MPa, so the gross-low margin is the site's
fraction of the requirement (``gross_low_margin``): a test below (1 - margin) R is
grossly low. A single cylinder below R is not a failure: a design at pass fraction p
expects 1 - p of its cylinders to test below R (``service.core.compliance`` says so as
information).

Values in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.errors import InvalidInput

CONSECUTIVE_TESTS_DEFAULT = 3
GROSS_LOW_MARGIN_DEFAULT = 0.25


@dataclass(frozen=True)
class AcceptanceRules:
    """The site's acceptance rules: how many consecutive tests are averaged
    (``consecutive_tests``, 3 in ACI 318) and the gross-low margin as a fraction of the
    requirement (``gross_low_margin``: a test below (1 - margin) R is grossly low)."""

    consecutive_tests: int = CONSECUTIVE_TESTS_DEFAULT
    gross_low_margin: float = GROSS_LOW_MARGIN_DEFAULT

    def __post_init__(self) -> None:
        if not 1 <= self.consecutive_tests <= 10:
            raise InvalidInput(
                "consecutive_tests",
                f"consecutive_tests must be between 1 and 10 (got {self.consecutive_tests!r})",
            )
        if not 0.0 <= self.gross_low_margin < 1.0:
            raise InvalidInput(
                "gross_low_margin_pct",
                "the gross-low margin must be at least 0 and below 100 % of the requirement "
                f"(got {self.gross_low_margin * 100.0!r})",
            )


@dataclass(frozen=True)
class JudgedCylinder:
    """One cylinder tested at a requirement's age: its sample, pour, stope (and stage),
    when it was cast, the requirement it is judged against and its UCS."""

    sample_id: str
    pour_id: str
    stope_id: str
    stage_id: str | None
    cast_at: datetime
    requirement: str
    required_ucs_kpa: float
    curing_days: float
    ucs_kpa: float


@dataclass(frozen=True)
class StrengthTest:
    """The cylinders of one pour cast together and tested at one requirement's age:
    ``strength_kpa`` is their mean; ``below_requirement`` when it is under R,
    ``gross_low`` when it is under ``gross_low_limit_kpa`` = (1 - margin) R."""

    pour_id: str
    stope_id: str
    stage_id: str | None
    cast_at: datetime
    requirement: str
    required_ucs_kpa: float
    curing_days: float
    sample_ids: tuple[str, ...]
    cylinders_kpa: tuple[float, ...]
    strength_kpa: float
    gross_low_limit_kpa: float

    @property
    def below_requirement(self) -> bool:
        return self.strength_kpa < self.required_ucs_kpa

    @property
    def gross_low(self) -> bool:
        return self.strength_kpa < self.gross_low_limit_kpa

    def to_dict(self) -> dict[str, Any]:
        return {
            "pour_id": self.pour_id,
            "stope_id": self.stope_id,
            "stage_id": self.stage_id,
            "cast_at": self.cast_at.isoformat(),
            "requirement": self.requirement,
            "required_ucs_kpa": self.required_ucs_kpa,
            "curing_days": self.curing_days,
            "sample_ids": list(self.sample_ids),
            "cylinders_kpa": list(self.cylinders_kpa),
            "strength_kpa": self.strength_kpa,
            "gross_low_limit_kpa": self.gross_low_limit_kpa,
            "below_requirement": self.below_requirement,
            "gross_low": self.gross_low,
        }


@dataclass(frozen=True)
class RunningAverage:
    """The mean of consecutive tests of one stope against one requirement (in cast
    order): ``tests`` are their (pour id, cast time); ``passed`` when the mean reaches R."""

    stope_id: str
    requirement: str
    required_ucs_kpa: float
    curing_days: float
    tests: tuple[tuple[str, datetime], ...]
    average_kpa: float

    @property
    def passed(self) -> bool:
        return self.average_kpa >= self.required_ucs_kpa

    def to_dict(self) -> dict[str, Any]:
        return {
            "stope_id": self.stope_id,
            "requirement": self.requirement,
            "required_ucs_kpa": self.required_ucs_kpa,
            "curing_days": self.curing_days,
            "tests": [{"pour_id": p, "cast_at": t.isoformat()} for p, t in self.tests],
            "average_kpa": self.average_kpa,
            "passed": self.passed,
        }


# (stope, requirement, required kPa, days): one sequence of consecutive tests.
_SequenceKey = tuple[str, str, float, float]


def strength_tests(
    cylinders: Iterable[JudgedCylinder], rules: AcceptanceRules
) -> tuple[StrengthTest, ...]:
    """The strength tests of ``cylinders``: those of one pour, cast together (one cast
    time) and judged against one requirement make one test, their mean UCS its strength
    (ACI 318-19 §26.12.1.1). Ordered by stope, requirement, cast time and pour."""
    groups: dict[tuple[str, datetime, str, float, float], list[JudgedCylinder]] = {}
    for cylinder in cylinders:
        key = (
            cylinder.pour_id,
            cylinder.cast_at,
            cylinder.requirement,
            cylinder.required_ucs_kpa,
            cylinder.curing_days,
        )
        groups.setdefault(key, []).append(cylinder)
    tests = []
    for members in groups.values():
        first = members[0]
        members.sort(key=lambda c: c.sample_id)
        strengths = tuple(c.ucs_kpa for c in members)
        tests.append(
            StrengthTest(
                pour_id=first.pour_id,
                stope_id=first.stope_id,
                stage_id=first.stage_id,
                cast_at=first.cast_at,
                requirement=first.requirement,
                required_ucs_kpa=first.required_ucs_kpa,
                curing_days=first.curing_days,
                sample_ids=tuple(c.sample_id for c in members),
                cylinders_kpa=strengths,
                strength_kpa=sum(strengths) / len(strengths),
                gross_low_limit_kpa=(1.0 - rules.gross_low_margin) * first.required_ucs_kpa,
            )
        )
    tests.sort(key=lambda t: (*_sequence(t), t.cast_at, t.pour_id))
    return tuple(tests)


def _sequence(test: StrengthTest) -> _SequenceKey:
    return (test.stope_id, test.requirement, test.required_ucs_kpa, test.curing_days)


def running_averages(
    tests: Iterable[StrengthTest], rules: AcceptanceRules
) -> tuple[RunningAverage, ...]:
    """Every average of ``rules.consecutive_tests`` consecutive tests of a stope against
    a requirement, in cast order (ACI 318-19 §26.12.3.1(a)); a sequence with fewer tests
    has none yet."""
    sequences: dict[_SequenceKey, list[StrengthTest]] = {}
    for test in tests:
        sequences.setdefault(_sequence(test), []).append(test)
    count = rules.consecutive_tests
    out = []
    for (stope, requirement, required, days), members in sequences.items():
        members.sort(key=lambda t: (t.cast_at, t.pour_id))
        for start in range(len(members) - count + 1):
            window = members[start : start + count]
            out.append(
                RunningAverage(
                    stope_id=stope,
                    requirement=requirement,
                    required_ucs_kpa=required,
                    curing_days=days,
                    tests=tuple((t.pour_id, t.cast_at) for t in window),
                    average_kpa=sum(t.strength_kpa for t in window) / count,
                )
            )
    return tuple(out)
