"""An engineer's acts on a plan: abandoning a stage that cannot be poured, closing a
stope early with a reason, releasing before the hold with one, and a new version after
an abandoned stage; every refusal says what to do instead."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.core.plan_acts import abandon_stage, adopt_revision, close, release
from service.core.plans import (
    FillPlan,
    PlanEventKind,
    PlanLogKind,
    PlanProgress,
    Stage,
    StageState,
    StopeGeometry,
    StopeState,
    on_volume,
    start_plan,
    start_stage,
    stope_state,
)
from service.errors import Conflict, InvalidInput

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
GEOMETRY = StopeGeometry(300.0, 30.0)
PLUG = Stage("plug", "R-plug", 0.5, cure_hold_h=24.0, top_height_m=5.0)
BODY = Stage("body", "R-body", 1.0, cure_hold_h=12.0, top_height_m=30.0)
PLAN = FillPlan(GEOMETRY, (PLUG, BODY))


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def filling_plug(volume: float = 600.0) -> PlanProgress:
    p = start_stage(start_plan(PLAN), PLAN, T0, by="scada")
    p, _ = on_volume(p, PLAN, volume, hours(2))
    return p


def test_a_stage_that_cannot_be_poured_is_abandoned_with_a_reason() -> None:
    p = filling_plug()
    with pytest.raises(InvalidInput) as err:
        abandon_stage(p, PLAN, "engineer:ana", hours(3), reason="  ")
    assert err.value.field == "reason"
    q = abandon_stage(p, PLAN, "engineer:ana", hours(3), reason="the feed cannot make R-plug")
    plug = q.stages[0]
    assert plug.state is StageState.ABANDONED and plug.reason == "the feed cannot make R-plug"
    assert plug.top_volume_m3 == 600.0 and plug.top_reached_at == hours(3)
    assert q.current == 1 and q.current_stage.state is StageState.READY
    assert stope_state(q) is StopeState.FILLING
    entry = q.history[-1]
    assert (entry.kind, entry.stage, entry.by) == (PlanLogKind.ABANDONED, 0, "engineer:ana")
    assert "the feed cannot make R-plug" in entry.detail and "600.000 m3" in entry.detail
    # The body then fills from where the plug was left to its own top.
    r = start_stage(q, PLAN, hours(4))
    r, events = on_volume(r, PLAN, 9000.0, hours(20))
    assert [e.kind for e in events] == [PlanEventKind.PLAN_COMPLETE]
    assert PlanProgress.from_dict(q.to_dict()) == q


def test_after_an_abandoned_stage_a_new_version_may_change_what_follows() -> None:
    p = filling_plug()
    # While it fills, its recipe cannot change: the refusal says what to do instead.
    other = replace(PLAN, stages=(replace(PLUG, recipe_id="R-new"), BODY), version=2)
    with pytest.raises(Conflict) as err:
        adopt_revision(p, PLAN, other, "engineer", hours(3))
    assert err.value.code == "plan_revision_conflict"
    assert "abandon it with a reason" in err.value.detail
    q = abandon_stage(p, PLAN, "engineer", hours(3), reason="R-plug unmakeable")
    # The abandoned plug's top comes down to where it was left (no lower), nothing else
    # of it changes; a new plug stage with another recipe follows it.
    plug2 = Stage("plug2", "R-new", 0.5, cure_hold_h=24.0, top_height_m=5.0)
    left = replace(PLUG, top_height_m=None, top_volume_m3=600.0)
    for bad in (replace(left, top_volume_m3=500.0), replace(left, max_rise_rate_m_h=2.0)):
        with pytest.raises(Conflict) as refused:
            adopt_revision(
                q, PLAN, FillPlan(GEOMETRY, (bad, plug2, BODY), version=2), "engineer", hours(4)
            )
        assert "abandoned" in refused.value.detail
    revised = FillPlan(GEOMETRY, (left, plug2, BODY), version=2)
    r = adopt_revision(q, PLAN, revised, "engineer", hours(4))
    assert r.current == 1 and r.current_stage.state is StageState.READY
    assert r.stages[0].state is StageState.ABANDONED
    r = start_stage(r, revised, hours(5))
    r, events = on_volume(r, revised, 1500.0, hours(6))
    assert [e.kind for e in events] == [PlanEventKind.HOLD_STARTED]
    assert r.stages[1].state is StageState.CURING


def test_abandoning_the_last_stage_leaves_the_stope_filled_and_closable() -> None:
    single = FillPlan(GEOMETRY, (replace(BODY, top_height_m=30.0),))
    p = start_stage(start_plan(single), single, T0)
    p, _ = on_volume(p, single, 4000.0, hours(5))
    q = abandon_stage(p, single, "engineer", hours(6), reason="the stope is to be left")
    assert stope_state(q) is StopeState.FILLED
    assert close(q, single, "engineer", hours(7)).closed_at == hours(7)


@pytest.mark.parametrize("state", ["curing", "closed"])
def test_what_cannot_be_abandoned_says_what_to_do(state: str) -> None:
    p, _ = on_volume(filling_plug(), PLAN, 1500.0, hours(4))  # the plug cures
    if state == "closed":
        p = close(p, PLAN, "engineer", hours(5), reason="flooded")
    with pytest.raises(Conflict) as err:
        abandon_stage(p, PLAN, "engineer", hours(6), reason="why not")
    detail = err.value.detail
    assert ("release" in detail) if state == "curing" else ("new stope" in detail)


def test_a_stope_not_yet_filled_closes_only_with_a_reason() -> None:
    p = filling_plug()
    with pytest.raises(Conflict) as err:
        close(p, PLAN, "engineer", hours(3))
    assert err.value.extra["state"] == "filling"
    assert "reason" in err.value.detail and "release the last" in err.value.detail
    q = close(p, PLAN, "engineer:ana", hours(3), reason="hanging wall failure")
    assert stope_state(q) is StopeState.CLOSED
    assert q.closed_reason == "hanging wall failure"
    assert q.history[-1].kind is PlanLogKind.CLOSED
    assert q.history[-1].detail == "closed while filling: hanging wall failure"
    for act in (
        lambda: start_stage(q, PLAN, hours(4)),
        lambda: release(q, PLAN, "engineer", hours(4)),
        lambda: close(q, PLAN, "engineer", hours(4), reason="again"),
        lambda: adopt_revision(q, PLAN, replace(PLAN, version=2), "engineer", hours(4)),
    ):
        with pytest.raises(Conflict) as refused:
            act()
        assert "new stope" in refused.value.detail
    assert PlanProgress.from_dict(q.to_dict()) == q
    assert q.to_dict()["clock"] == "plant"


def test_a_hold_is_released_early_only_with_a_reason_kept_with_the_stage() -> None:
    p, _ = on_volume(filling_plug(), PLAN, 1500.0, hours(4))
    with pytest.raises(Conflict) as err:
        release(p, PLAN, "engineer", hours(10))
    assert err.value.code == "hold_not_elapsed"
    assert "reason" in err.value.detail and "plant time" in err.value.detail
    q = release(p, PLAN, "engineer:ana", hours(10), reason="cylinders at 2 d show 210 kPa")
    assert q.stages[0].state is StageState.RELEASED
    assert q.stages[0].reason == "cylinders at 2 d show 210 kPa"
    assert "released before its conditions" in q.history[-1].detail
    assert q.current_stage.state is StageState.READY


def test_releasing_a_stage_that_is_not_curing_says_what_to_do() -> None:
    with pytest.raises(Conflict) as err:
        release(filling_plug(), PLAN, "engineer", hours(3))
    assert err.value.code == "stage_state_conflict"
    assert "abandon" in err.value.detail
