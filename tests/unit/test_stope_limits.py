"""A site's plausible stope and fill plan (pure): the values no plant has are refused
naming the field and the setting; the plans the service's own tests and examples run
pass."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from service.core.plans import FillPlan, Stage, StopeGeometry
from service.core.stope_limits import (
    PLAN_CODE,
    STOPE_CODE,
    StopeLimits,
    check_geometry,
    check_plan,
)
from service.errors import InvalidInput

LIMITS = StopeLimits()
STOPE = StopeGeometry(plan_area_m2=150.0, height_m=30.0)


def stage(name: str, top: float | None = None, **extra: object) -> Stage:
    values: dict[str, object] = {"max_rise_rate_m_h": 0.5, **extra}
    if top is not None:
        values["top_height_m"] = top
    return Stage(name=name, recipe_id="R-1", **values)  # type: ignore[arg-type]


def refused(plan: FillPlan) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        check_plan(plan, LIMITS)
    assert err.value.code == PLAN_CODE
    return err.value


def test_a_stope_of_no_area_or_no_height_is_refused() -> None:
    for geometry, field, setting in (
        (StopeGeometry(1e-300, 30.0), "plan_area_m2", "PLAN_AREA_M2_MIN"),
        (StopeGeometry(1e6, 30.0), "plan_area_m2", "PLAN_AREA_M2_MAX"),
        (StopeGeometry(150.0, 1e-9), "height_m", "HEIGHT_M_MIN"),
        (StopeGeometry(150.0, 5000.0), "height_m", "HEIGHT_M_MAX"),
    ):
        with pytest.raises(InvalidInput) as err:
            check_geometry(geometry, LIMITS)
        assert (err.value.code, err.value.field) == (STOPE_CODE, field)
        assert f"BACKFILL_STOPES__{setting}" in err.value.detail
    # The area given by length and width is named by them.
    tiny = StopeGeometry.from_dimensions(length_m=1e-3, width_m=1e-3, height_m=30.0)
    with pytest.raises(InvalidInput) as err:
        check_geometry(tiny, LIMITS, area_field="length_m")
    assert err.value.field == "length_m" and "plan area" in err.value.detail
    check_geometry(STOPE, LIMITS)


def test_a_stage_that_is_full_before_it_starts_is_refused() -> None:
    err = refused(FillPlan(STOPE, (stage("plug", 1e-9), stage("body", 30.0))))
    assert err.field == "stages[0].top_height_m"
    assert "BACKFILL_STOPES__STAGE_HEIGHT_M_MIN" in err.detail
    err = refused(FillPlan(STOPE, (stage("plug", 4.0), stage("body", 4.0 + 1e-9))))
    assert err.field == "stages[1].top_height_m"
    by_volume = Stage(name="plug", recipe_id="R-1", max_rise_rate_m_h=0.5, stage_volume_m3=1e-6)
    err = refused(FillPlan(STOPE, (by_volume, stage("body", 30.0))))
    assert err.field == "stages[0].stage_volume_m3"


def test_a_rise_rate_no_pour_can_follow_is_refused() -> None:
    for rate, setting in ((1e-9, "RISE_RATE_M_H_MIN"), (500.0, "RISE_RATE_M_H_MAX")):
        err = refused(FillPlan(STOPE, (stage("plug", 4.0, max_rise_rate_m_h=rate),)))
        assert err.field == "stages[0].max_rise_rate_m_h"
        assert f"BACKFILL_STOPES__{setting}" in err.detail


def test_a_hold_a_continuous_plan_would_skip_is_refused() -> None:
    plan = FillPlan(
        STOPE, (stage("plug", 4.0, cure_hold_h=48.0), stage("body", 30.0)), continuous=True
    )
    err = refused(plan)
    assert err.field == "stages[0].cure_hold_h" and "continuous" in err.detail
    # Its last stage's hold is the stope's cure; a staged plan holds where it says.
    check_plan(
        FillPlan(
            STOPE, (stage("plug", 4.0), stage("body", 30.0, cure_hold_h=48.0)), continuous=True
        ),
        LIMITS,
    )
    check_plan(FillPlan(STOPE, (stage("plug", 4.0, cure_hold_h=48.0), stage("body", 30.0))), LIMITS)
    err = refused(FillPlan(STOPE, (stage("plug", 4.0, cure_hold_h=5000.0),)))
    assert err.field == "stages[0].cure_hold_h" and "CURE_HOLD_H_MAX" in err.detail


def test_a_stage_past_what_a_pour_may_hold_is_refused() -> None:
    huge = StopeGeometry(plan_area_m2=1e5, height_m=1000.0)
    err = refused(FillPlan(huge, (stage("plug", 4.0), stage("body", 1000.0))))
    assert err.field == "stages[1].top_height_m" and "STAGE_VOLUME_M3_MAX" in err.detail
    assert err.extra["limit_max"] == 1e6
    check_plan(FillPlan(huge, (stage("plug", 4.0), stage("body", 10.0))), LIMITS)


def test_the_plans_of_the_examples_and_the_end_to_end_tests_pass() -> None:
    # The API example (30 m stope, 15 x 10 m), the 1.5 m2 stopes the simulator fills in
    # minutes (60 m/h), and a 1 m stope in stages of 0.1 m (the node-opcua test PLC's).
    check_plan(
        FillPlan(
            StopeGeometry(150.0, 30.0),
            (stage("plug", 4.0, cure_hold_h=48.0), stage("body", 30.0, max_rise_rate_m_h=1.0)),
        ),
        LIMITS,
    )
    fast = {"max_rise_rate_m_h": 60.0}
    check_plan(
        FillPlan(
            StopeGeometry(1.5, 30.0),
            (
                stage("plug", 4.0, cure_hold_h=48.0, **fast),
                stage("lower_body", 15.0, switch_at_top=True, **fast),
                stage("upper_body", 30.0, **fast),
            ),
        ),
        LIMITS,
    )
    check_plan(
        FillPlan(
            StopeGeometry(2.0, 1.0),
            (
                stage("plug", 0.1, cure_hold_h=48.0, **fast),
                stage("lower_body", 0.2, switch_at_top=True, **fast),
                stage("upper_body", 0.3, **fast),
            ),
        ),
        LIMITS,
    )


@given(
    area=st.floats(1.0, 1e5),
    height=st.floats(1.0, 1000.0),
    split=st.floats(0.05, 0.95),
    rise=st.floats(0.01, 100.0),
    hold=st.floats(0.0, 720.0),
)
def test_every_plan_inside_the_limits_passes(
    area: float, height: float, split: float, rise: float, hold: float
) -> None:
    """Within the limits nothing is refused: a stage's own height at least the minimum
    and its own volume at most the maximum."""
    top = split * height
    geometry = StopeGeometry(area, height)
    plan = FillPlan(
        geometry,
        (
            stage("plug", top, max_rise_rate_m_h=rise, cure_hold_h=hold),
            stage("body", height, max_rise_rate_m_h=rise),
        ),
    )
    volumes = (top * area, (height - top) * area)
    heights = (top, height - top)
    # Not within a rounding error of a limit, where either answer is right.
    assume(all(abs(v / LIMITS.stage_volume_m3_max - 1.0) > 1e-6 for v in volumes))
    assume(all(abs(h / LIMITS.stage_height_m_min - 1.0) > 1e-6 for h in heights))
    inside = all(v <= LIMITS.stage_volume_m3_max for v in volumes) and all(
        h >= LIMITS.stage_height_m_min for h in heights
    )
    if inside:
        check_plan(plan, LIMITS)
    else:
        with pytest.raises(InvalidInput):
            check_plan(plan, LIMITS)
