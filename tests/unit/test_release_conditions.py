"""A stage on hold is released on evidence: each condition with its figure and what it
rests on (cylinders before the calibration's estimate; a barricade reading)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.core import release_conditions as RC
from service.core.acceptance import StrengthTest
from service.core.fill_plan import Requirement, Stage
from service.errors import InvalidInput

NOW = datetime(2026, 3, 5, 6, 0, tzinfo=UTC)
PLUG_REQ = ("plug", 150.0, 3.0)


def strength_test(strength: float, pour: str = "P-1") -> StrengthTest:
    return StrengthTest(
        pour_id=pour,
        stope_id="S-1",
        stage_id="S-1/plug",
        cast_at=NOW - timedelta(days=3),
        requirement="plug",
        required_ucs_kpa=150.0,
        curing_days=3.0,
        sample_ids=(f"{pour}-a", f"{pour}-b"),
        cylinders_kpa=(strength - 5.0, strength + 5.0),
        strength_kpa=strength,
        gross_low_limit_kpa=112.5,
    )


ESTIMATE = RC.StrengthEstimate(
    calibration_id="cal-1",
    calibration="site v2",
    age_days=2.5,
    median_kpa=240.0,
    lower_kpa=171.0,
    pass_fraction=0.9,
    solids_pct=76.2,
    binder_pct=6.1,
    paste_basis="as placed",
)


def test_the_hold_is_met_once_it_has_ended() -> None:
    assert RC.hold_condition(NOW - timedelta(seconds=1), NOW).status == "met"
    running = RC.hold_condition(NOW + timedelta(hours=2), NOW)
    assert running.status == "not_met" and running.figure == pytest.approx(7200.0)
    assert "2.00 h left" in running.detail


def test_strength_rests_on_cylinders_when_the_lab_has_them() -> None:
    passed = RC.strength_condition(
        PLUG_REQ, [strength_test(180.0), strength_test(162.0, "P-2")], ESTIMATE
    )
    assert (passed.status, passed.basis, passed.figure) == ("met", "cylinders", 162.0)
    assert len(passed.evidence["tests"]) == 2
    # One test below R is not met, whatever the estimate says.
    low = RC.strength_condition(
        PLUG_REQ, [strength_test(180.0), strength_test(140.0, "P-2")], ESTIMATE
    )
    assert (low.status, low.basis, low.figure) == ("not_met", "cylinders", 140.0)
    assert "lowest 140 kPa is below plug: 150 kPa at 3 d" in low.detail


def test_without_cylinders_strength_rests_on_the_calibrations_estimate() -> None:
    met = RC.strength_condition(PLUG_REQ, [], ESTIMATE)
    assert (met.status, met.basis, met.figure, met.limit) == (
        "met",
        "calibration_estimate",
        171.0,
        150.0,
    )
    assert "site v2" in met.detail and "2.50 d" in met.detail and "90 %" in met.detail
    assert met.evidence["estimate"]["paste"] == "as placed"
    weak = RC.StrengthEstimate(**{**ESTIMATE.__dict__, "lower_kpa": 120.0})
    assert RC.strength_condition(PLUG_REQ, [], weak).status == "not_met"
    unknown = RC.strength_condition(PLUG_REQ, [], None, "the age is outside the tested ages")
    assert (unknown.status, unknown.met) == ("unknown", False)
    assert "outside the tested ages" in unknown.detail
    none = RC.strength_condition(None, [], None)
    assert (none.status, none.met) == ("not_applicable", True)


def test_the_barricade_must_read_below_its_release_fraction() -> None:
    met = RC.barricade_condition({"barricade_pressure_pv": (40.0, "good")}, 150.0, 0.5)
    assert (met.status, met.figure, met.limit) == ("met", 40.0, 75.0)
    high = RC.barricade_condition(
        {"barricade_pressure_pv": (40.0, "good"), "barricade_2_pressure_pv": (80.0, "good")},
        150.0,
        0.5,
    )
    assert high.status == "not_met" and high.figure == 80.0
    assert "barricade_2_pressure_pv reads 80.0 kPa" in high.detail
    bad = RC.barricade_condition({"barricade_pressure_pv": (None, "bad")}, 150.0, 0.5)
    assert (bad.status, bad.met) == ("unknown", False)
    stale = RC.barricade_condition({"barricade_pressure_pv": (10.0, "bad")}, 150.0, 0.5)
    assert stale.status == "unknown"
    none = RC.barricade_condition({}, 150.0, 0.5)
    assert (none.status, none.met) == ("not_applicable", True)
    with pytest.raises(InvalidInput):
        RC.barricade_condition({}, 150.0, 0.0)


def test_a_stage_is_ready_only_when_every_condition_is_met() -> None:
    hold = RC.hold_condition(NOW - timedelta(hours=1), NOW)
    strength = RC.strength_condition(PLUG_REQ, [], ESTIMATE)
    barricade = RC.barricade_condition({"barricade_pressure_pv": (90.0, "good")}, 150.0, 0.5)
    a = RC.assess_release(0, "plug", NOW, hold=hold, strength=strength, barricade=barricade)
    assert not a.ready and [c.kind for c in a.unmet] == ["barricade"]
    d = a.to_dict()
    assert d["clock"] == "plant" and [c["met"] for c in d["conditions"]] == [True, True, False]
    calm = RC.barricade_condition({"barricade_pressure_pv": (20.0, "good")}, 150.0, 0.5)
    assert RC.assess_release(0, "plug", NOW, hold=hold, strength=strength, barricade=calm).ready


def test_the_release_requirement_is_the_stages_earliest() -> None:
    stage = Stage(
        "plug", "R", 1.0, top_height_m=4.0,
        requirements=(Requirement(500.0, 28.0, "exposure"), Requirement(150.0, 3.0, "plug")),
    )  # fmt: skip
    assert stage.release_requirement == Requirement(150.0, 3.0, "plug")
    assert Stage("b", "R", 1.0, top_height_m=4.0).release_requirement is None
    assert RC.age_days(NOW - timedelta(hours=36), NOW) == pytest.approx(1.5)
