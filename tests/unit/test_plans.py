"""Stope fill plans: geometry, stages, the stage state machine, rise rate, barricade."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.barricade import (
    BarricadeLevel,
    barricade_conditions,
    barricade_pause,
    is_barricade_tag,
)
from service.core.plan_acts import adopt_revision, close, release
from service.core.plans import (
    FillPlan,
    PlanEventKind,
    PlanLogKind,
    PlanProgress,
    Requirement,
    Stage,
    StageAction,
    StageState,
    Stope,
    StopeGeometry,
    StopeState,
    current_max_rise_rate_m_h,
    current_recipe_id,
    hold_remaining_s,
    next_stage_state,
    on_volume,
    start_plan,
    start_stage,
    stope_state,
)
from service.core.rise_rate import (
    RiseRateMeter,
    rise_rate_exceeded,
    rise_rate_limited_flow_m3_h,
    rise_rate_m_h,
)
from service.errors import Conflict, InvalidInput

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
GEOMETRY = StopeGeometry.from_dimensions(length_m=20.0, width_m=15.0, height_m=30.0)  # 300 m2
PLUG = Stage(
    "plug",
    "R-plug",
    max_rise_rate_m_h=0.5,
    cure_hold_h=24.0,
    top_height_m=5.0,
    requirements=(Requirement(150.0, 3.0, "plug early"),),
)
BODY = Stage(
    "body",
    "R-body",
    max_rise_rate_m_h=1.0,
    cure_hold_h=12.0,
    top_height_m=30.0,
    requirements=(Requirement(500.0, 28.0, "exposure"),),
)
STAGED = FillPlan(GEOMETRY, (PLUG, BODY))
CONTINUOUS = FillPlan(GEOMETRY, (PLUG, BODY), continuous=True)


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


# --- geometry and plan validation -------------------------------------------------------


def test_geometry_from_dimensions_and_from_volume() -> None:
    assert GEOMETRY.plan_area_m2 == 300.0
    assert GEOMETRY.volume_m3 == 9000.0
    by_volume = StopeGeometry.from_volume(volume_m3=9000.0, height_m=30.0)
    assert by_volume.plan_area_m2 == pytest.approx(300.0)
    assert GEOMETRY.fill_height_m(1500.0) == pytest.approx(5.0)  # h = V / A
    assert GEOMETRY.volume_at_m3(5.0) == pytest.approx(1500.0)
    assert GEOMETRY.fill_height_m(-3.0) == 0.0
    assert StopeGeometry.from_dict(GEOMETRY.to_dict()) == GEOMETRY


@pytest.mark.parametrize(
    ("build", "field_name"),
    [
        (lambda: StopeGeometry(0.0, 30.0), "plan_area_m2"),
        (lambda: StopeGeometry(300.0, -1.0), "height_m"),
        (lambda: StopeGeometry(math.nan, 30.0), "plan_area_m2"),
        (lambda: StopeGeometry(300.0, math.inf), "height_m"),
        (lambda: StopeGeometry(True, 30.0), "plan_area_m2"),
        (lambda: StopeGeometry.from_dimensions(length_m=0, width_m=5, height_m=5), "length_m"),
        (lambda: StopeGeometry.from_dimensions(length_m=5, width_m=-5, height_m=5), "width_m"),
        (lambda: StopeGeometry.from_volume(volume_m3=-1.0, height_m=5.0), "volume_m3"),
        (lambda: StopeGeometry.from_volume(volume_m3=100.0, height_m=0.0), "height_m"),
        (lambda: Requirement(0.0, 28.0), "ucs_kpa"),
        (lambda: Requirement(100.0, -1.0), "curing_days"),
        (lambda: Stage("", "R", 1.0, top_height_m=5.0), "name"),
        (lambda: Stage("plug", " ", 1.0, top_height_m=5.0), "recipe_id"),
        (lambda: Stage("plug", "R", 0.0, top_height_m=5.0), "max_rise_rate_m_h"),
        (lambda: Stage("plug", "R", 1.0, cure_hold_h=-1.0, top_height_m=5.0), "cure_hold_h"),
        (lambda: Stage("plug", "R", 1.0, cure_hold_h=math.nan, top_height_m=5.0), "cure_hold_h"),
        (lambda: Stage("plug", "R", 1.0), "top_height_m"),
        (lambda: Stage("plug", "R", 1.0, top_height_m=5.0, stage_volume_m3=9.0), "top_height_m"),
        (lambda: Stage("plug", "R", 1.0, top_height_m=-5.0), "top_height_m"),
        (lambda: Stage("plug", "R", 1.0, stage_volume_m3=0.0), "stage_volume_m3"),
        (lambda: FillPlan(GEOMETRY, ()), "stages"),
        (lambda: FillPlan(GEOMETRY, (PLUG,), version=0), "version"),
        (lambda: FillPlan(GEOMETRY, (PLUG,), version=True), "version"),
        (lambda: FillPlan(GEOMETRY, (PLUG, replace(BODY, name="plug"))), "stages[1].name"),
        (
            lambda: FillPlan(GEOMETRY, (PLUG, replace(BODY, top_height_m=5.0))),
            "stages[1].top_height_m",
        ),
        (
            lambda: FillPlan(GEOMETRY, (PLUG, replace(BODY, top_height_m=4.0))),
            "stages[1].top_height_m",
        ),
        (
            lambda: FillPlan(GEOMETRY, (PLUG, replace(BODY, top_height_m=30.5))),
            "stages[1].top_height_m",
        ),
        (
            lambda: FillPlan(
                GEOMETRY, (PLUG, replace(BODY, top_height_m=None, stage_volume_m3=7600.0))
            ),
            "stages[1].stage_volume_m3",
        ),
        (lambda: Stope("", GEOMETRY, 180.0), "name"),
        (lambda: Stope("S-101", GEOMETRY, 0.0), "barricade_rating_kpa"),
        (
            lambda: Stope("S-101", GEOMETRY, 180.0, barricade_high_fraction=1.2),
            "barricade_high_fraction",
        ),
        (
            lambda: Stope("S-101", GEOMETRY, 180.0, barricade_high_fraction=0.0),
            "barricade_high_fraction",
        ),
    ],
)
def test_invalid_definitions_name_the_field(build: Callable[[], object], field_name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        build()
    assert err.value.field == field_name


def test_stage_tops_from_heights_and_volumes() -> None:
    plan = FillPlan(
        GEOMETRY,
        (
            Stage("plug", "R1", 0.5, stage_volume_m3=1500.0),  # 5 m over 300 m2
            Stage("lower", "R2", 1.0, top_height_m=12.0),
            Stage("upper", "R3", 1.0, stage_volume_m3=5400.0),  # 18 m more: to 30 m
        ),
    )
    assert plan.top_heights_m == pytest.approx((5.0, 12.0, 30.0))
    assert plan.top_volumes_m3 == pytest.approx((1500.0, 3600.0, 9000.0))
    assert FillPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_a_plan_that_cannot_be_read_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as err:
        FillPlan.from_dict({"geometry": {"plan_area_m2": 300.0}, "stages": []})
    assert err.value.field == "plan"
    with pytest.raises(InvalidInput):
        FillPlan.from_dict({**STAGED.to_dict(), "stages": []})


# --- the transition table ---------------------------------------------------------------

ALLOWED = {
    (StageState.PENDING, StageAction.AWAIT_RELEASE): StageState.WAITING_RELEASE,
    (StageState.PENDING, StageAction.SWITCH): StageState.FILLING,
    (StageState.WAITING_RELEASE, StageAction.RELEASE): StageState.READY,
    (StageState.READY, StageAction.START): StageState.FILLING,
    (StageState.FILLING, StageAction.REACH_TOP): StageState.CURING,
    (StageState.FILLING, StageAction.SWITCH): StageState.DONE,
    (StageState.CURING, StageAction.RELEASE): StageState.RELEASED,
    (StageState.READY, StageAction.ABANDON): StageState.ABANDONED,
    (StageState.FILLING, StageAction.ABANDON): StageState.ABANDONED,
    (StageState.PENDING, StageAction.FOLLOW): StageState.READY,
}


@pytest.mark.parametrize("state", list(StageState))
@pytest.mark.parametrize("action", list(StageAction))
def test_transition_table(state: StageState, action: StageAction) -> None:
    if (state, action) in ALLOWED:
        assert next_stage_state(state, action) is ALLOWED[(state, action)]
    else:
        with pytest.raises(Conflict) as err:
            next_stage_state(state, action)
        assert err.value.code == "stage_state_conflict"
        assert err.value.extra["state"] == state.value
        assert state.value in err.value.detail
        # Every refusal says what to do instead, after the colon.
        refused, instead = err.value.detail.split(": ", 1)
        assert f"a {state.value} stage cannot" in refused
        assert len(instead) > 20, err.value.detail


# --- a staged plug and body -------------------------------------------------------------


def test_a_staged_plan_stops_at_the_plug_holds_and_waits_for_a_release() -> None:
    p = start_plan(STAGED)
    assert [s.state for s in p.stages] == [StageState.READY, StageState.PENDING]
    assert stope_state(p) is StopeState.PLANNED
    assert current_recipe_id(p, STAGED) == "R-plug"
    assert current_max_rise_rate_m_h(p, STAGED) == 0.5

    p = start_stage(p, STAGED, hours(0), by="scada")
    assert p.current_stage.state is StageState.FILLING
    assert p.current_stage.start_volume_m3 == 0.0
    assert stope_state(p) is StopeState.FILLING

    p, events = on_volume(p, STAGED, 1000.0, hours(6))
    assert events == ()
    assert p.height_m == pytest.approx(1000.0 / 300.0)

    p, events = on_volume(p, STAGED, 1502.0, hours(9))  # passes 1500 m3 = 5 m
    assert [e.kind for e in events] == [PlanEventKind.HOLD_STARTED]
    assert events[0].stop_pour and events[0].stage == 0
    plug = p.stages[0]
    assert plug.state is StageState.CURING
    assert plug.top_reached_at == hours(9) and plug.top_volume_m3 == 1502.0
    assert plug.hold_started_at == hours(9)
    assert plug.hold_ends_at == hours(9 + 24)
    assert p.stages[1].state is StageState.WAITING_RELEASE
    assert p.current == 0
    assert stope_state(p) is StopeState.CURING
    assert hold_remaining_s(p, hours(10)) == pytest.approx(23 * 3600.0)

    # The pour ran on a little after the stop: recorded, no transition, logged once.
    p, events = on_volume(p, STAGED, 1510.0, hours(9.1))
    assert [e.kind for e in events] == [PlanEventKind.PLACED_OUTSIDE_FILLING]
    assert events[0].volume_m3 == pytest.approx(8.0)
    assert not events[0].stop_pour
    assert p.placed_m3 == 1510.0
    assert p.history[-1].kind is PlanLogKind.PLACED_OUTSIDE_FILLING
    assert "8.000 m3 placed while stage 'plug' was curing" in p.history[-1].detail
    p, events = on_volume(p, STAGED, 1511.0, hours(9.2))
    assert [e.kind for e in events] == [PlanEventKind.PLACED_OUTSIDE_FILLING]
    assert p.placed_m3 == 1511.0 and len(p.history) == 3

    with pytest.raises(Conflict) as err:
        start_stage(p, STAGED, hours(20))  # body is waiting for the release
    assert err.value.code == "stage_state_conflict"
    assert err.value.extra["state"] == "curing"

    with pytest.raises(Conflict) as err:
        release(p, STAGED, "engineer", hours(21))
    assert err.value.code == "hold_not_elapsed"
    assert err.value.extra["remaining_s"] == pytest.approx(12 * 3600.0)
    assert "12.00 h left" in err.value.detail

    p = release(p, STAGED, "engineer:ana", hours(33))  # exactly at the hold's end
    assert p.stages[0].state is StageState.RELEASED
    assert p.stages[0].released_by == "engineer:ana" and p.stages[0].released_at == hours(33)
    assert p.stages[1].state is StageState.READY and p.current == 1
    assert stope_state(p) is StopeState.FILLING
    assert current_recipe_id(p, STAGED) == "R-body"
    assert hold_remaining_s(p, hours(33)) is None

    p = start_stage(p, STAGED, hours(34))
    assert p.stages[1].start_volume_m3 == 1511.0
    p, events = on_volume(p, STAGED, 9000.0, hours(60))
    assert [e.kind for e in events] == [PlanEventKind.PLAN_COMPLETE]
    assert events[0].stop_pour
    assert stope_state(p) is StopeState.CURING
    with pytest.raises(Conflict) as err:
        close(p, STAGED, "engineer", hours(61))
    assert err.value.extra["state"] == "curing"
    p = release(p, STAGED, "engineer:ana", hours(72))
    assert stope_state(p) is StopeState.FILLED
    assert p.current == 1
    p = close(p, STAGED, "engineer:ana", hours(80))
    assert stope_state(p) is StopeState.CLOSED
    with pytest.raises(Conflict):
        close(p, STAGED, "engineer:ana", hours(81))
    with pytest.raises(Conflict):
        release(p, STAGED, "engineer:ana", hours(81))

    assert [(e.kind, e.stage, e.by) for e in p.history] == [
        (PlanLogKind.STAGE_STARTED, 0, "scada"),
        (PlanLogKind.HOLD_STARTED, 0, "service"),
        (PlanLogKind.PLACED_OUTSIDE_FILLING, 0, "service"),
        (PlanLogKind.RELEASED, 0, "engineer:ana"),
        (PlanLogKind.STAGE_STARTED, 1, "service"),
        (PlanLogKind.HOLD_STARTED, 1, "service"),
        (PlanLogKind.RELEASED, 1, "engineer:ana"),
        (PlanLogKind.CLOSED, 1, "engineer:ana"),
    ]
    back = PlanProgress.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p


def test_a_stage_top_given_as_volume_is_reached_at_that_volume() -> None:
    plan = FillPlan(
        GEOMETRY, (Stage("plug", "R1", 0.5, stage_volume_m3=900.0), replace(BODY, name="b"))
    )
    p = start_stage(start_plan(plan), plan, T0)
    p, events = on_volume(p, plan, 899.9, hours(1))
    assert events == ()
    # A float sum of many steps that lands a hair under the top still reaches it.
    p, events = on_volume(p, plan, 900.0 * (1 - 1e-12), hours(2))
    assert [e.kind for e in events] == [PlanEventKind.HOLD_STARTED]


def test_a_zero_hold_releases_at_once_but_still_needs_the_release() -> None:
    plan = FillPlan(GEOMETRY, (replace(PLUG, cure_hold_h=0.0), BODY))
    p = start_stage(start_plan(plan), plan, T0)
    p, _ = on_volume(p, plan, 1500.0, hours(1))
    assert hold_remaining_s(p, hours(1)) == 0.0
    with pytest.raises(Conflict):
        start_stage(p, plan, hours(1))
    p = release(p, plan, "engineer", hours(1))
    assert p.current_stage.state is StageState.READY


def test_a_lower_reading_is_a_late_checkpoint_not_volume_taken_out() -> None:
    p = start_stage(start_plan(STAGED), STAGED, T0)
    p, _ = on_volume(p, STAGED, 800.0, hours(1))
    p, events = on_volume(p, STAGED, 790.0, hours(1.01))
    assert p.placed_m3 == 800.0 and events == ()


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_a_bad_volume_reading_is_invalid_input(bad: float) -> None:
    p = start_stage(start_plan(STAGED), STAGED, T0)
    with pytest.raises(InvalidInput) as err:
        on_volume(p, STAGED, bad, hours(1))
    assert err.value.field == "placed_m3"


def test_times_must_be_aware_and_names_given() -> None:
    p = start_plan(STAGED)
    with pytest.raises(InvalidInput) as err:
        start_stage(p, STAGED, datetime(2026, 3, 1))
    assert err.value.field == "now"
    p = start_stage(p, STAGED, T0)
    p, _ = on_volume(p, STAGED, 1500.0, hours(1))
    with pytest.raises(InvalidInput) as err:
        release(p, STAGED, " ", hours(30))
    assert err.value.field == "by"


def test_volume_before_the_first_stage_starts_is_reported_and_the_stope_is_filling() -> None:
    p, events = on_volume(start_plan(STAGED), STAGED, 10.0, T0)
    assert [e.kind for e in events] == [PlanEventKind.PLACED_OUTSIDE_FILLING]
    assert stope_state(p) is StopeState.FILLING
    assert p.current_stage.state is StageState.READY


def test_progress_of_another_plan_version_is_refused() -> None:
    p = start_plan(STAGED)
    revised = replace(STAGED, version=2)
    with pytest.raises(Conflict) as err:
        start_stage(p, revised, T0)
    assert err.value.code == "plan_version_conflict"
    with pytest.raises(Conflict):
        on_volume(p, FillPlan(GEOMETRY, (PLUG,)), 1.0, T0)


def test_unreadable_progress_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        PlanProgress.from_dict({"stages": []})
    data = start_plan(STAGED).to_dict()
    with pytest.raises(InvalidInput):
        PlanProgress.from_dict({**data, "current": 5})
    with pytest.raises(InvalidInput):
        PlanProgress.from_dict({**data, "stages": [{"state": "molten"}]})


# --- continuous -------------------------------------------------------------------------


def test_a_continuous_plan_switches_recipe_at_the_plug_height_without_stopping() -> None:
    p = start_stage(start_plan(CONTINUOUS), CONTINUOUS, T0)
    p, events = on_volume(p, CONTINUOUS, 1503.0, hours(10))
    assert [e.kind for e in events] == [PlanEventKind.SWITCH_RECIPE]
    switch = events[0]
    assert not switch.stop_pour
    assert switch.recipe_id == "R-body" and switch.stage == 1
    assert p.current == 1
    assert [s.state for s in p.stages] == [StageState.DONE, StageState.FILLING]
    assert p.stages[1].start_volume_m3 == 1503.0 and p.stages[1].started_at == hours(10)
    (point,) = p.switch_points
    assert point.at == hours(10)
    assert point.volume_m3 == 1503.0 and point.height_m == pytest.approx(1503.0 / 300.0)
    assert point.planned_height_m == 5.0
    assert (point.from_stage, point.to_stage) == (0, 1)
    assert (point.from_recipe_id, point.to_recipe_id) == ("R-plug", "R-body")
    assert stope_state(p) is StopeState.FILLING
    p, events = on_volume(p, CONTINUOUS, 9000.0, hours(40))
    assert [e.kind for e in events] == [PlanEventKind.PLAN_COMPLETE]
    assert stope_state(p) is StopeState.CURING
    assert PlanProgress.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_a_plan_may_hold_after_the_plug_and_switch_recipe_in_the_body() -> None:
    lower = Stage(
        "lower_body", "R-lower", max_rise_rate_m_h=1.0, top_height_m=15.0, switch_at_top=True
    )
    upper = Stage("upper_body", "R-upper", max_rise_rate_m_h=1.0, top_height_m=30.0)
    plan = FillPlan(GEOMETRY, (PLUG, lower, upper))
    assert [plan.switches_at(i) for i in range(3)] == [False, True, False]
    p = start_stage(start_plan(plan), plan, T0)
    p, events = on_volume(p, plan, 1500.0, hours(10))  # the plug's top: stop and cure
    assert [e.kind for e in events] == [PlanEventKind.HOLD_STARTED] and events[0].stop_pour
    p = release(p, plan, "engineer", hours(40))
    p = start_stage(p, plan, hours(41))
    p, events = on_volume(p, plan, 4500.0, hours(50))  # 15 m: the recipe switches on
    assert [e.kind for e in events] == [PlanEventKind.SWITCH_RECIPE]
    assert not events[0].stop_pour and events[0].recipe_id == "R-upper"
    assert [s.state for s in p.stages] == [
        StageState.RELEASED,
        StageState.DONE,
        StageState.FILLING,
    ]
    p, events = on_volume(p, plan, 9000.0, hours(70))
    assert [e.kind for e in events] == [PlanEventKind.PLAN_COMPLETE]
    assert FillPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_a_switch_needs_a_next_stage_and_no_hold() -> None:
    with pytest.raises(InvalidInput) as err:
        Stage(
            "x", "R", max_rise_rate_m_h=1.0, top_height_m=5.0, cure_hold_h=2.0, switch_at_top=True
        )
    assert err.value.field == "cure_hold_h"
    last = Stage("x", "R", max_rise_rate_m_h=1.0, top_height_m=5.0, switch_at_top=True)
    with pytest.raises(InvalidInput) as err:
        FillPlan(GEOMETRY, (last,))
    assert err.value.field == "stages[0].switch_at_top"


def test_one_reading_past_two_tops_records_both_switches_in_order() -> None:
    plan = FillPlan(
        GEOMETRY,
        (
            PLUG,
            Stage("lower", "R-lower", 1.0, top_height_m=6.0),
            Stage("upper", "R-upper", 1.0, top_height_m=30.0),
        ),
        continuous=True,
    )
    p = start_stage(start_plan(plan), plan, T0)
    p, events = on_volume(p, plan, 2000.0, hours(5))  # 6.67 m: past 5 m and 6 m
    assert [(e.kind, e.recipe_id) for e in events] == [
        (PlanEventKind.SWITCH_RECIPE, "R-lower"),
        (PlanEventKind.SWITCH_RECIPE, "R-upper"),
    ]
    assert p.current == 2
    assert [sp.planned_height_m for sp in p.switch_points] == [5.0, 6.0]
    assert [s.state for s in p.stages] == [StageState.DONE, StageState.DONE, StageState.FILLING]


# --- revisions --------------------------------------------------------------------------


def curing_plug() -> PlanProgress:
    p = start_stage(start_plan(STAGED), STAGED, T0)
    p, _ = on_volume(p, STAGED, 1500.0, hours(8))
    return p


def test_a_revision_can_lengthen_a_running_hold() -> None:
    revised = replace(STAGED, stages=(replace(PLUG, cure_hold_h=48.0), BODY), version=2)
    p = adopt_revision(curing_plug(), STAGED, revised, "engineer", hours(9))
    assert p.plan_version == 2
    assert p.stages[0].hold_ends_at == hours(8 + 48)
    assert p.stages[1].state is StageState.WAITING_RELEASE
    assert p.history[-1].kind is PlanLogKind.REVISED
    with pytest.raises(Conflict) as err:
        release(p, revised, "engineer", hours(40))
    assert err.value.code == "hold_not_elapsed"


def test_a_revision_cannot_rewrite_what_was_poured() -> None:
    p = curing_plug()
    new_recipe = replace(STAGED, stages=(replace(PLUG, recipe_id="R-other"), BODY), version=2)
    with pytest.raises(Conflict) as err:
        adopt_revision(p, STAGED, new_recipe, "engineer", hours(9))
    assert err.value.code == "plan_revision_conflict"
    new_top = replace(STAGED, stages=(replace(PLUG, top_height_m=6.0), BODY), version=2)
    with pytest.raises(Conflict):
        adopt_revision(p, STAGED, new_top, "engineer", hours(9))
    p = release(p, STAGED, "engineer", hours(40))
    finished = replace(STAGED, stages=(replace(PLUG, cure_hold_h=1.0), BODY), version=2)
    with pytest.raises(Conflict):
        adopt_revision(p, STAGED, finished, "engineer", hours(41))
    with pytest.raises(InvalidInput) as err2:
        adopt_revision(p, STAGED, STAGED, "engineer", hours(41))
    assert err2.value.field == "version"
    fewer = FillPlan(GEOMETRY, (PLUG,), version=2)
    assert adopt_revision(start_plan(STAGED), STAGED, fewer, "engineer", hours(41)).stages == (
        start_plan(fewer).stages
    )
    with pytest.raises(Conflict):
        adopt_revision(p, STAGED, fewer, "engineer", hours(41))  # drops the current stage


def test_a_filling_stage_top_may_move_but_not_below_the_fill() -> None:
    p = start_stage(start_plan(STAGED), STAGED, T0)
    p, _ = on_volume(p, STAGED, 1200.0, hours(4))  # 4 m
    higher = replace(STAGED, stages=(replace(PLUG, top_height_m=6.0), BODY), version=2)
    q = adopt_revision(p, STAGED, higher, "engineer", hours(5))
    q, events = on_volume(q, higher, 1600.0, hours(6))
    assert events == ()  # 5.33 m: under the new top
    lower = replace(STAGED, stages=(replace(PLUG, top_height_m=3.5), BODY), version=2)
    with pytest.raises(Conflict):
        adopt_revision(p, STAGED, lower, "engineer", hours(5))


def test_a_new_survey_recomputes_the_height_and_a_new_stage_reopens_a_filled_stope() -> None:
    single = FillPlan(GEOMETRY, (replace(PLUG, top_height_m=30.0, cure_hold_h=0.0),))
    p = start_stage(start_plan(single), single, T0)
    p, _ = on_volume(p, single, 9000.0, hours(30))
    p = release(p, single, "engineer", hours(30))
    assert stope_state(p) is StopeState.FILLED
    bigger = StopeGeometry(300.0, 40.0)
    extended = FillPlan(
        bigger, (*single.stages, Stage("cap", "R-cap", 0.5, top_height_m=40.0)), version=2
    )
    q = adopt_revision(p, single, extended, "engineer", hours(31))
    assert q.current == 1 and q.current_stage.state is StageState.READY
    assert stope_state(q) is StopeState.FILLING
    resurveyed = FillPlan(StopeGeometry(250.0, 40.0), extended.stages, version=3)
    r = adopt_revision(q, extended, resurveyed, "engineer", hours(32))
    assert r.height_m == pytest.approx(9000.0 / 250.0)


# --- properties -------------------------------------------------------------------------

stage_tops = st.lists(st.floats(0.5, 7.0), min_size=1, max_size=4)  # <= 28 m of 30
ops = st.lists(
    st.one_of(
        st.tuples(st.just("vol"), st.floats(0.0, 1500.0), st.floats(0.0, 10.0), st.booleans()),
        st.tuples(st.just("release"), st.just(0.0), st.floats(0.0, 40.0), st.booleans()),
        st.tuples(st.just("start"), st.just(0.0), st.floats(0.0, 2.0), st.just(False)),
    ),
    min_size=5,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(stage_tops, st.lists(st.floats(0.0, 30.0), min_size=4, max_size=4), st.booleans(), ops)
def test_tops_are_reached_in_order_and_no_stage_starts_without_hold_and_release(
    thicknesses: list[float],
    holds: list[float],
    continuous: bool,
    steps: list[tuple[str, float, float, bool]],
) -> None:
    stages = tuple(
        Stage(f"s{i}", f"R{i}", 1.0, cure_hold_h=holds[i], stage_volume_m3=t * 300.0)
        for i, t in enumerate(thicknesses)
    )
    plan = FillPlan(GEOMETRY, stages, continuous=continuous)
    p = start_plan(plan)
    now, placed, previous_current = T0, 0.0, 0
    for kind, amount, dt_h, then_start in steps:
        now += timedelta(hours=dt_h)
        try:
            if kind == "vol":
                placed += amount
                p, events = on_volume(p, plan, placed, now)
                for e in events:
                    assert e.height_m == pytest.approx(placed / 300.0)
            elif kind == "release":
                p = release(p, plan, "engineer", now)
            else:
                p = start_stage(p, plan, now)
        except Conflict:
            pass
        if then_start:  # a scada start as soon as one is allowed, refused otherwise
            with contextlib.suppress(Conflict):
                p = start_stage(p, plan, now)
        assert p.current >= previous_current
        previous_current = p.current
        assert p.height_m == pytest.approx(p.placed_m3 / 300.0)
        for i, s in enumerate(p.stages):
            if i < p.current:
                assert s.state in (StageState.RELEASED, StageState.DONE)
            elif i == p.current + 1 and p.stages[p.current].state is StageState.CURING:
                assert s.state is StageState.WAITING_RELEASE
            elif i > p.current:
                assert s.state is StageState.PENDING
        reached = [(i, s) for i, s in enumerate(p.stages) if s.top_reached_at is not None]
        tops = plan.top_volumes_m3
        times = [s.top_reached_at for _, s in reached]
        assert times == sorted(t for t in times if t is not None)
        assert [i for i, _ in reached] == list(range(len(reached)))  # in order, none skipped
        for i, s in reached:
            assert s.top_volume_m3 is not None and s.top_volume_m3 >= tops[i] * (1 - 1e-9)
        for j in range(1, len(p.stages)):
            later = p.stages[j]
            if later.started_at is None:
                continue
            before = p.stages[j - 1]
            if continuous:
                assert before.state is StageState.DONE
                assert later.started_at == before.top_reached_at
            else:
                assert before.state is StageState.RELEASED
                assert before.hold_ends_at is not None and before.released_at is not None
                assert before.released_at >= before.hold_ends_at
                assert later.started_at >= before.released_at
                assert before.top_reached_at is not None
                assert before.hold_ends_at - before.top_reached_at == timedelta(hours=holds[j - 1])
        if continuous:
            assert [sp.from_stage for sp in p.switch_points] == list(range(len(p.switch_points)))
        else:
            assert p.switch_points == ()


# --- rise rate --------------------------------------------------------------------------


def test_rise_rate_and_the_flow_that_holds_it() -> None:
    assert rise_rate_m_h(120.0, 400.0) == pytest.approx(0.3)  # dh/dt = Q / A
    assert rise_rate_m_h(-5.0, 400.0) == 0.0
    assert rise_rate_limited_flow_m3_h(100.0, 0.3, 400.0) == 100.0  # under the limit
    assert rise_rate_limited_flow_m3_h(150.0, 0.3, 400.0) == pytest.approx(120.0)
    assert rise_rate_limited_flow_m3_h(-1.0, 0.3, 400.0) == 0.0
    assert rise_rate_exceeded(0.316, 0.3)  # more than 5 % over
    assert not rise_rate_exceeded(0.314, 0.3)
    assert rise_rate_exceeded(0.31, 0.3, tolerance_fraction=0.0)


@pytest.mark.parametrize(
    ("args", "field_name"),
    [
        ((math.nan, 0.3, 400.0), "requested_flow_m3_h"),
        ((100.0, 0.0, 400.0), "max_rise_rate_m_h"),
        ((100.0, 0.3, -4.0), "plan_area_m2"),
        ((100.0, math.inf, 400.0), "max_rise_rate_m_h"),
    ],
)
def test_bad_rise_rate_inputs(args: tuple[float, float, float], field_name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        rise_rate_limited_flow_m3_h(*args)
    assert err.value.field == field_name


@given(st.floats(-1e4, 1e4), st.floats(0.01, 10.0), st.floats(1.0, 1e5))
def test_the_limited_flow_never_exceeds_the_rise_rate(
    requested: float, max_rise: float, area: float
) -> None:
    flow = rise_rate_limited_flow_m3_h(requested, max_rise, area)
    assert 0.0 <= flow <= max_rise * area
    assert flow <= max(requested, 0.0)
    assert rise_rate_m_h(flow, area) <= max_rise * (1 + 1e-12)
    if 0.0 <= requested <= max_rise * area:
        assert flow == requested


def test_the_meter_measures_a_constant_rise_over_its_window() -> None:
    meter = RiseRateMeter(plan_area_m2=400.0, window_s=600.0, min_span_s=60.0)
    meter = meter.add(T0, 0.0)
    assert meter.rise_rate_m_h is None
    meter = meter.add(T0 + timedelta(seconds=30), 1.0)
    assert meter.rise_rate_m_h is None  # under min_span_s
    for s in range(40, 1201, 10):
        meter = meter.add(T0 + timedelta(seconds=s), 120.0 * s / 3600.0)
    assert meter.span_s == 600.0
    assert meter.rise_rate_m_h == pytest.approx(0.3)
    assert len(meter.samples) <= 62  # the window, not the whole pour


def test_the_meter_forgets_what_fell_out_of_the_window() -> None:
    meter = RiseRateMeter(plan_area_m2=100.0, window_s=600.0)
    volume = 0.0
    for s in range(0, 3601, 15):  # one hour at 200 m3/h (2 m/h) ...
        volume = 200.0 * s / 3600.0
        meter = meter.add(T0 + timedelta(seconds=s), volume)
    assert meter.rise_rate_m_h == pytest.approx(2.0)
    for s in range(3615, 3600 + 601, 15):  # ... then ten minutes at 50 m3/h
        meter = meter.add(T0 + timedelta(seconds=s), volume + 50.0 * (s - 3600) / 3600.0)
    assert meter.rise_rate_m_h == pytest.approx(0.5)


def test_the_meter_interpolates_the_window_start_between_samples() -> None:
    meter = RiseRateMeter(plan_area_m2=1.0, window_s=600.0, min_span_s=60.0)
    meter = meter.add(T0, 0.0).add(T0 + timedelta(seconds=500), 0.0)
    meter = meter.add(T0 + timedelta(seconds=700), 10.0)  # 10 m3 in the last 200 s
    # Window 100..700 s: V(100) = 0, V(700) = 10: 10 m over 600 s = 60 m/h.
    assert meter.rise_rate_m_h == pytest.approx(60.0)


def test_the_meter_refuses_time_going_back_and_keeps_a_late_lower_reading_flat() -> None:
    meter = RiseRateMeter(plan_area_m2=100.0).add(T0, 10.0)
    with pytest.raises(InvalidInput):
        meter.add(T0 - timedelta(seconds=1), 11.0)
    meter = meter.add(T0 + timedelta(seconds=120), 5.0)
    assert meter.samples[-1][1] == 10.0 and meter.rise_rate_m_h == 0.0
    with pytest.raises(InvalidInput):
        RiseRateMeter(plan_area_m2=100.0, window_s=60.0, min_span_s=120.0)


def test_a_limited_pour_holds_its_rise_rate_within_5_percent() -> None:
    """A pour asked for 150 m3/h into a 400 m2 stope limited to 0.3 m/h: the pump
    follows the limited setpoint with a +-3 % ripple; the measured rise holds."""
    area, max_rise = 400.0, 0.3
    limited = rise_rate_limited_flow_m3_h(150.0, max_rise, area)
    meter = RiseRateMeter(plan_area_m2=area, window_s=600.0)
    unlimited = RiseRateMeter(plan_area_m2=area, window_s=600.0)
    placed = placed_unlimited = 0.0
    seen = 0
    for s in range(0, 2 * 3600 + 1, 5):
        ripple = 1.0 + 0.03 * math.sin(2 * math.pi * s / 300.0)
        placed += limited * ripple * 5.0 / 3600.0
        placed_unlimited += 150.0 * ripple * 5.0 / 3600.0
        now = T0 + timedelta(seconds=s)
        meter = meter.add(now, placed)
        unlimited = unlimited.add(now, placed_unlimited)
        rate = meter.rise_rate_m_h
        if s >= 600 and rate is not None:
            seen += 1
            assert not rise_rate_exceeded(rate, max_rise)
            assert rate == pytest.approx(max_rise, rel=0.05)
            other = unlimited.rise_rate_m_h
            assert other is not None and rise_rate_exceeded(other, max_rise)
    assert seen > 1000


# --- barricade pressure -----------------------------------------------------------------


def test_barricade_levels_at_the_high_fraction_and_the_rating() -> None:
    good = {"barricade_pressure_pv": "good", "barricade_2_pressure_pv": "good"}
    conds = barricade_conditions(
        {"barricade_pressure_pv": 143.9, "barricade_2_pressure_pv": 144.0}, 180.0, 0.8, good
    )
    assert [(c.tag, c.level) for c in conds] == [
        ("barricade_2_pressure_pv", BarricadeLevel.HIGH),
        ("barricade_pressure_pv", BarricadeLevel.NORMAL),
    ]
    assert conds[0].alarm and not conds[0].pause and conds[0].code == "barricade_pressure_high"
    assert not conds[1].alarm and conds[1].code is None
    assert conds[0].high_kpa == pytest.approx(144.0)
    conds = barricade_conditions(
        {"barricade_pressure_pv": 100.0, "barricade_2_pressure_pv": 180.0}, 180.0, 0.8, good
    )
    assert conds[0].level is BarricadeLevel.AT_RATING and conds[0].pause
    assert conds[0].code == "barricade_pressure_at_rating"
    paused = barricade_pause(conds)
    assert paused is not None and paused.tag == "barricade_2_pressure_pv"
    assert "barricade_2_pressure_pv" in paused.detail and "180" in paused.detail


def test_the_pause_names_the_barricade_closest_over_its_own_rating() -> None:
    q = {"barricade_pressure_pv": "good", "barricade_2_pressure_pv": "good"}
    conds = barricade_conditions(
        {"barricade_pressure_pv": 210.0, "barricade_2_pressure_pv": 160.0},
        {"barricade_pressure_pv": 200.0, "barricade_2_pressure_pv": 140.0},
        0.8,
        q,
    )
    assert all(c.pause for c in conds)
    paused = barricade_pause(conds)
    assert paused is not None and paused.tag == "barricade_2_pressure_pv"  # 160/140 > 210/200
    assert barricade_pause(conds[:0]) is None
    with pytest.raises(InvalidInput) as err:
        barricade_conditions({"barricade_3_pressure_pv": 1.0}, {"x": 1.0}, 0.8, q)
    assert err.value.field == "rating_kpa"


@pytest.mark.parametrize(
    ("value", "quality"),
    [(20.0, "bad"), (None, "good"), (math.nan, "good"), (math.inf, "uncertain"), (20.0, None)],
)
def test_a_bad_reading_is_reported_never_taken_as_low(
    value: float | None, quality: str | None
) -> None:
    qualities = {} if quality is None else {"barricade_pressure_pv": quality}
    (cond,) = barricade_conditions({"barricade_pressure_pv": value}, 180.0, 0.8, qualities)
    assert cond.level is BarricadeLevel.UNKNOWN
    assert cond.alarm and not cond.pause
    assert cond.code == "barricade_pressure_unknown"
    assert cond.pressure_kpa is None


def test_an_uncertain_reading_is_judged_on_its_value() -> None:
    (cond,) = barricade_conditions(
        {"barricade_pressure_pv": 185.0}, 180.0, 0.8, {"barricade_pressure_pv": "uncertain"}
    )
    assert cond.pause and "uncertain" in cond.detail
    with pytest.raises(InvalidInput) as err:
        barricade_conditions(
            {"barricade_pressure_pv": 1.0}, 180.0, 0.8, {"barricade_pressure_pv": "fine"}
        )
    assert err.value.field == "quality"
    with pytest.raises(InvalidInput) as err:
        barricade_conditions({}, 180.0, 0.0, {})
    assert err.value.field == "high_fraction"


@given(st.floats(-50.0, 500.0), st.floats(10.0, 400.0), st.floats(0.05, 1.0))
def test_barricade_level_follows_the_pressure(
    pressure: float, rating: float, fraction: float
) -> None:
    (cond,) = barricade_conditions({"b": pressure}, rating, fraction, {"b": "good"})
    assert cond.pause == (pressure >= rating)
    assert cond.alarm == (pressure >= fraction * rating)


def test_barricade_tags_of_the_contract() -> None:
    assert is_barricade_tag("barricade_pressure_pv")
    assert is_barricade_tag("barricade_12_pressure_pv")
    assert not is_barricade_tag("barricade_pressure_sp")
    assert not is_barricade_tag("pump_pressure_pv")
    assert not is_barricade_tag("barricade_x_pressure_pv")
