"""Acceptance by strength tests (ACI 318-19 §26.12.3 adapted): tests as the mean of the
cylinders cast together, running averages of consecutive tests, gross-low tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.core import acceptance as ac
from service.core import compliance as cp
from service.errors import InvalidInput
from tests.unit.test_compliance import BODY, CAST, plan, result_of

# A stope's body pours in cast order, each test the cylinders cast together:
# (pour, cylinders' UCS at 28 days) against 300 kPa.
SEQUENCE = [
    ("P-1", (320.0, 300.0)),  # 310
    ("P-2", (290.0, 280.0)),  # 285: low, not grossly; 3-test average not yet
    ("P-3", (300.0, 290.0)),  # 295: (310 + 285 + 295)/3 = 296.7 < 300
    ("P-4", (200.0,)),  # 200: grossly low (below 225); (285 + 295 + 200)/3 = 260
    ("P-5", (360.0, 380.0)),  # 370: (295 + 200 + 370)/3 = 288.3
    ("P-6", (350.0, 350.0)),  # 350: (200 + 370 + 350)/3 = 306.7
]


def _sequence() -> tuple[list[cp.SamplePlan], list[object]]:
    plans, results = [], []
    for day, (pour, cylinders) in enumerate(SEQUENCE):
        cast = CAST + timedelta(days=day)
        for i, ucs in enumerate(cylinders):
            sample = f"{pour}-{i}"
            plans.append(plan(sample, pour, cast_at=cast, ages=(28.0,)))
            results.append(result_of(sample, 28, ucs))
    return plans, results


def test_an_acceptance_sequence_flags_the_running_average_and_the_gross_low_test() -> None:
    plans, results = _sequence()
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=40))  # type: ignore[arg-type]
    assert [t.pour_id for t in report.tests] == [pour for pour, _ in SEQUENCE]
    assert [t.strength_kpa for t in report.tests] == pytest.approx(
        [310.0, 285.0, 295.0, 200.0, 370.0, 350.0]
    )
    assert [t.gross_low for t in report.tests] == [False, False, False, True, False, False]
    assert [round(a.average_kpa, 1) for a in report.running_averages] == [
        296.7,
        260.0,
        288.3,
        306.7,
    ]
    assert [a.passed for a in report.running_averages] == [False, False, False, True]
    high = [n for n in report.notices if n.severity is cp.NoticeSeverity.HIGH]
    acceptance = [n for n in high if n.kind in ("gross_low", "running_average")]
    assert sorted((n.kind, n.pour_id) for n in acceptance) == [
        ("gross_low", "P-4"),
        ("running_average", "P-3"),
        ("running_average", "P-4"),
        ("running_average", "P-5"),
    ]
    # 7 of 11 cylinders passed, clustered by pour: below the design's 90 % as well.
    stope = report.pass_fraction("stope", "S-101", "body")
    assert stope is not None and (stope.passed, stope.n, stope.clusters) == (7, 11, 6)
    assert stope.verdict == "below_design"
    assert {n.kind for n in high} == {"gross_low", "running_average", "below_design"}
    gross = next(n for n in high if n.kind == "gross_low")
    assert "200 kPa" in gross.detail and "25 %" in gross.detail and gross.sample_id == "P-4-0"
    average = next(n for n in high if n.pour_id == "P-3")
    assert "P-1, P-2, P-3" in average.detail and "297 kPa" in average.detail
    # The single low cylinders are information, not alarms.
    low = [n for n in report.notices if n.kind == "low_cylinder"]
    assert {n.sample_id for n in low} == {"P-2-0", "P-2-1", "P-3-1", "P-4-0"}
    assert all(n.severity is cp.NoticeSeverity.INFO for n in low)
    # High notices come first.
    assert report.notices[0].severity is cp.NoticeSeverity.HIGH
    assert report.notices[-1].severity is cp.NoticeSeverity.INFO
    assert report.tests[3].to_dict()["gross_low"] is True
    assert report.running_averages[0].to_dict()["tests"][0]["pour_id"] == "P-1"


def test_the_site_sets_the_consecutive_tests_and_the_gross_low_margin() -> None:
    plans, results = _sequence()
    rules = ac.AcceptanceRules(consecutive_tests=2, gross_low_margin=0.1)
    config = cp.ComplianceConfig(acceptance=rules)
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=40), config)  # type: ignore[arg-type]
    assert [a.average_kpa for a in report.running_averages] == pytest.approx(
        [297.5, 290.0, 247.5, 285.0, 360.0]
    )
    # 10 % below 300 is 270: P-4 only (P-2 at 285 is within it).
    assert [t.pour_id for t in report.tests if t.gross_low] == ["P-4"]
    assert report.tests[0].gross_low_limit_kpa == pytest.approx(270.0)
    failing = [n.pour_id for n in report.notices if n.kind == "running_average"]
    assert failing == ["P-2", "P-3", "P-4", "P-5"]


def test_tests_of_other_stopes_or_requirements_are_other_sequences() -> None:
    plug = cp.Requirement("plug", 150.0, 7.0, design_pass_fraction=0.9)
    plans = [
        plan("A", "P-1", "S-1", cast_at=CAST, requirements=(BODY,)),
        plan("B", "P-2", "S-2", cast_at=CAST + timedelta(days=1), requirements=(BODY,)),
        plan("C", "P-3", "S-1", cast_at=CAST + timedelta(days=2), requirements=(plug,)),
    ]
    results = [result_of("A", 28, 250.0), result_of("B", 28, 250.0), result_of("C", 7, 100.0)]
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=40))
    assert len(report.tests) == 3
    assert report.running_averages == ()  # no sequence has three tests yet


def test_cylinders_cast_at_other_times_are_other_tests() -> None:
    plans = [
        plan("A", "P-1", cast_at=CAST),
        plan("B", "P-1", cast_at=CAST),
        plan("C", "P-1", cast_at=CAST + timedelta(hours=3)),
    ]
    results = [result_of("A", 28, 310.0), result_of("B", 28, 330.0), result_of("C", 28, 280.0)]
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=40))
    assert [(t.sample_ids, t.strength_kpa) for t in report.tests] == [
        (("A", "B"), 320.0),
        (("C",), 280.0),
    ]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"consecutive_tests": 0}, "consecutive_tests"),
        ({"consecutive_tests": 11}, "consecutive_tests"),
        ({"gross_low_margin": 1.0}, "gross_low_margin_pct"),
        ({"gross_low_margin": -0.1}, "gross_low_margin_pct"),
    ],
)
def test_bad_rules_name_the_field(arguments: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ac.AcceptanceRules(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field
