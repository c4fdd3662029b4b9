"""The pour machine alone: no link, no store, no clock. Each test hands it the plant's
readings and the time and reads the effects it asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.core import plant_readings as pr
from service.core import pour_machine as pm
from service.core.fill_plan import StopeGeometry
from service.core.pour_machine.actions import inputs_of
from service.core.pour_machine.recovery import recover, totaliser_volume
from service.core.pour_states import PourState
from service.core.stope_geometry import VolumeCurve
from service.errors import Conflict, PlantLinkDown, PlantNotReady

MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 35.7},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20.0},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80.0},
    ],
    "binder_pct": 5.0,
    "solids_pct": 72.0,
}
RECIPE = pm.RecipeFacts(id="r1", name="body", version=1, mix=MIX, approved=True)
SETPOINTS = frozenset(
    {
        "tailings_flow_sp",
        "cement_rate_sp",
        "slag_rate_sp",
        "water_flow_sp",
        "paste_density_sp",
        "run_request",
    }
)
PLANT = {
    "tailings_flow_pv": 60.0,
    "tailings_density_pv": 1900.0,
    "cement_rate_pv": 0.9,
    "slag_rate_pv": 3.6,
    "water_flow_pv": 10.0,
    "paste_flow_pv": 100.0,
    "paste_density_pv": 1860.0,
    "pump_pressure_pv": 3000.0,
    "plant_mode": 0,
    "remote_enabled": True,
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = pm.MachineConfig()


def readings(connected: bool = True, **values: Any) -> pr.Readings:
    plant = {**PLANT, **values}
    return pr.Readings(
        connected=connected,
        values={tag: pr.Reading(v, "good" if connected else "bad") for tag, v in plant.items()},
        setpoint_tags=SETPOINTS,
    )


def tick(s: float = 0.0) -> pm.Tick:
    return pm.Tick(mono=1000.0 + s, plant=T0 + timedelta(seconds=s), wall=T0 + timedelta(seconds=s))


def planned(context: pm.PourContext | None = None, **fields: Any) -> pm.PourRun:
    return pm.PourRun(
        id="p1",
        stope_id="S-1",
        state=PourState(fields.pop("state", "planned")),
        target_volume_m3=fields.pop("target", 50.0),
        paste_flow_m3_h=100.0,
        recipe=pm.control_recipe(MIX),
        context=context,
        **fields,
    )


def context(**fields: Any) -> pm.PourContext:
    base: dict[str, Any] = {
        "stope": "S-1",
        "stage": 0,
        "stage_name": "plug",
        "plan_area_m2": 100.0,
        "barricade_rating_kpa": 150.0,
        "barricade_high_fraction": 0.8,
        "max_rise_rate_m_h": None,
        "placed_before_m3": 0.0,
        "plan_version": 1,
        "stage_state": "ready",
    }
    return pm.PourContext(**{**base, **fields})


def writes(decision: pm.Decision) -> list[pm.Write]:
    return [e for e in decision.effects if isinstance(e, pm.Write)]


def started(state: pm.MachineState | None = None) -> pm.MachineState:
    state = state or pm.MachineState.initial(CONFIG)
    decision = pm.start(state, planned(), RECIPE, readings(), tick(), CONFIG, role="scada")
    for write in writes(decision):
        decision = replace(decision, state=pm.written(decision.state, write, True, 1000.0))
    return decision.state


# --- a start ----------------------------------------------------------------------------


def test_a_start_drops_run_request_first_then_writes_the_first_set() -> None:
    decision = pm.start(
        pm.MachineState.initial(CONFIG), planned(), RECIPE, readings(), tick(), CONFIG, role="scada"
    )
    first, second = writes(decision)
    assert first.kind is pm.WriteKind.EDGE and first.values["run_request"] is False
    assert second.kind is pm.WriteKind.COMMAND and second.values["run_request"] is True
    assert set(second.values) <= SETPOINTS
    assert decision.state.pour is not None and decision.state.pour.state is PourState.RUNNING
    assert decision.state.pour.started_at == tick().wall


def test_a_start_after_a_stop_the_plc_took_needs_no_falling_edge() -> None:
    held = replace(readings(), held={"run_request": False})
    decision = pm.start(
        pm.MachineState.initial(CONFIG), planned(), RECIPE, held, tick(), CONFIG, role="scada"
    )
    assert [w.kind for w in writes(decision)] == [pm.WriteKind.COMMAND]


@pytest.mark.parametrize(
    ("plant", "error"),
    [
        (readings(connected=False), PlantLinkDown),
        (readings(remote_enabled=False), PlantNotReady),
        (readings(plant_mode=3), PlantNotReady),
    ],
)
def test_a_plant_that_cannot_take_it_refuses_a_start(plant: pr.Readings, error: type) -> None:
    with pytest.raises(error):
        pm.start(
            pm.MachineState.initial(CONFIG), planned(), RECIPE, plant, tick(), CONFIG, role="s"
        )


def test_one_pour_at_a_time_and_only_an_approved_recipe() -> None:
    state = started()
    other = replace(planned(), id="p2")
    with pytest.raises(Conflict) as err:
        pm.start(state, other, RECIPE, readings(), tick(), CONFIG, role="scada")
    assert err.value.code == "pour_already_active"
    unapproved = replace(RECIPE, approved=False)
    with pytest.raises(Conflict) as err:
        pm.start(
            pm.MachineState.initial(CONFIG), planned(), unapproved, readings(), tick(), CONFIG,
            role="scada",
        )  # fmt: skip
    assert err.value.code == "recipe_not_approved"


@pytest.mark.parametrize(
    ("ctx", "code"),
    [
        (context(stage_state="curing"), "stage_not_ready"),
        (context(stage_state="not_current"), "stage_not_ready"),
        (context(stage_state="closed"), "stage_not_ready"),
        (context(stage=None, stage_name=None, stage_state=None), "stope_planned"),
    ],
)
def test_a_stope_takes_paste_only_through_its_filling_stage(ctx: pm.PourContext, code: str) -> None:
    with pytest.raises(Conflict) as err:
        pm.start(
            pm.MachineState.initial(CONFIG), planned(ctx), RECIPE, readings(), tick(), CONFIG,
            role="scada",
        )  # fmt: skip
    assert err.value.code == code


def test_a_stope_without_a_plan_and_a_ready_stage_take_a_start() -> None:
    for ctx in (context(plan_version=None, stage=None, stage_state=None), context()):
        decision = pm.start(
            pm.MachineState.initial(CONFIG), planned(ctx), RECIPE, readings(), tick(), CONFIG,
            role="scada",
        )  # fmt: skip
        assert decision.state.pour is not None


# --- stops that must reach the PLC --------------------------------------------------------


def test_a_pause_keeps_the_record_before_it_asks_the_plc_to_stop() -> None:
    state = started()
    decision = pm.pause(state, "p1", tick(5), readings(), role="scada", reason="operator")
    kinds = [type(e) for e in decision.effects if not isinstance(e, pm.Note)]
    assert kinds == [pm.Keep, pm.Write]
    stop = writes(decision)[0]
    assert stop.kind is pm.WriteKind.STOP and stop.values["run_request"] is False
    assert stop.values["cement_rate_sp"] == 0.0 and stop.values["slag_rate_sp"] == 0.0
    assert decision.state.stop_pending == ("p1", "operator")
    paused = decision.state.pour
    assert paused is not None and paused.state is PourState.PAUSED
    assert paused.interruptions[-1]["reason"] == "operator"
    # Not written: it stays pending and the next cycle with the link up sends it again.
    failed = pm.written(decision.state, stop, False, 1005.0)
    assert failed.stop_pending == ("p1", "operator")
    again = pm.cycle(failed, readings(), tick(6), CONFIG)
    assert [w.kind for w in writes(again)] == [pm.WriteKind.STOP]
    assert pm.written(again.state, writes(again)[0], True, 1006.0).stop_pending is None


def test_with_the_link_down_a_stop_waits_and_the_pour_pauses_after_the_loss_lasts() -> None:
    state = started()
    down = readings(connected=False)
    for s in range(1, 5):
        decision = pm.cycle(state, down, tick(s), CONFIG)
        state = decision.state
        assert state.pour is not None and state.pour.state is PourState.RUNNING
    decision = pm.cycle(state, down, tick(6), CONFIG)
    assert decision.state.pour is not None
    assert decision.state.pour.state is PourState.PAUSED
    assert decision.state.pour.interruptions[-1]["reason"] == "plant_link_lost"
    assert not writes(decision)  # nothing can go out; the stop is pending
    assert decision.state.stop_pending is not None


def test_the_barricade_at_its_rating_pauses_the_pour_naming_it() -> None:
    state = pm.start(
        pm.MachineState.initial(CONFIG), planned(context()), RECIPE, readings(), tick(), CONFIG,
        role="scada",
    ).state  # fmt: skip
    decision = pm.cycle(state, readings(barricade_pressure_pv=151.0), tick(1), CONFIG)
    assert decision.state.pour is not None
    assert decision.state.pour.interruptions[-1]["reason"] == (
        "barricade_at_rating:barricade_pressure_pv"
    )


def test_the_input_state_is_never_changed() -> None:
    state = started()
    before = repr(state)
    pm.cycle(state, readings(plant_mode=2), tick(1), CONFIG)
    pm.pause(state, "p1", tick(1), readings(), role="scada", reason="operator")
    assert repr(state) == before


# --- paste placed around a crash ----------------------------------------------------------


def crashed(**fields: Any) -> pm.MachineState:
    run = planned(state="paused", unrecorded=True, **fields)
    run = run.interrupted("service_restart", T0)
    return replace(pm.MachineState.initial(CONFIG), pour=run)


def test_the_totaliser_gives_the_paste_placed_since_the_checkpoint() -> None:
    totals = replace(planned().totals, poured_m3=2.024)
    state = crashed(totals=totals, totaliser_m3=512.0)
    decision = pm.cycle(state, readings(paste_volume_total_pv=512.294), tick(1), CONFIG)
    pour = decision.state.pour
    assert pour is not None and not pour.unrecorded
    assert pour.totals.poured_m3 == pytest.approx(2.318)
    assert pour.totals.recovered_m3 == pytest.approx(0.294)
    assert pour.totals.unmeasured_m3 == pytest.approx(0.294)
    assert pour.totals.binder_total_t > 0.0  # at the recipe's proportions
    last = pour.interruptions[-1]
    assert last["recovered_basis"] == "plc_totaliser" and last["recovered_to"] == "stope"
    assert last["recovered_m3"] == pytest.approx(0.294)
    assert any(isinstance(e, pm.Keep) for e in decision.effects)


def test_paste_recovered_from_the_totaliser_is_not_counted_again_after_the_resume() -> None:
    # Checkpoint at 512.0; 0.3 m3 placed while the service was down; 0.05 m3 a cycle after.
    state = crashed(totaliser_m3=512.0)
    plant = {"plant_mode": 0, "paste_flow_pv": 0.0}
    state = pm.cycle(state, readings(paste_volume_total_pv=512.3, **plant), tick(1), CONFIG).state
    assert state.pour is not None and state.pour.totals.poured_m3 == pytest.approx(0.3)
    state = pm.resume(
        state, "p1", RECIPE, readings(paste_volume_total_pv=512.3, **plant), tick(2), CONFIG,
        role="scada",
    ).state  # fmt: skip
    running = {"plant_mode": 2, "paste_flow_pv": 180.0}
    # A long first cycle (a loaded machine): 0.3 m3 in 4 s would pass for a flow (270 m3/h).
    for s, total in ((6, 512.35), (7, 512.40)):
        state = pm.cycle(
            state, readings(paste_volume_total_pv=total, **running), tick(s), CONFIG
        ).state
    assert state.pour is not None
    assert state.pour.totals.poured_m3 == pytest.approx(0.3 + 0.1)


def test_a_resume_counts_on_from_the_totaliser_as_it_reads_then() -> None:
    # Paused with the totaliser at 100; the plant ran locally (to the dump, say) while
    # paused: 2 m3 that are not this pour's.
    state = started()
    running = {"plant_mode": 2, "paste_flow_pv": 180.0}
    state = pm.cycle(state, readings(paste_volume_total_pv=100.0, **running), tick(1), CONFIG).state
    state = pm.pause(state, "p1", tick(2), readings(), role="scada", reason="operator").state
    stopped = {"plant_mode": 0, "paste_flow_pv": 0.0}
    state = pm.resume(
        state, "p1", RECIPE, readings(paste_volume_total_pv=102.0, **stopped), tick(30), CONFIG,
        role="scada",
    ).state  # fmt: skip
    state = pm.cycle(
        state, readings(paste_volume_total_pv=102.05, **running), tick(40), CONFIG
    ).state
    assert state.pour is not None
    assert state.pour.totals.poured_m3 == pytest.approx(0.05)


def test_paste_that_went_to_the_dump_is_recovered_as_dumped() -> None:
    state = crashed(totaliser_m3=10.0, to_dump=True)
    pour = pm.cycle(state, readings(paste_volume_total_pv=10.5), tick(1), CONFIG).state.pour
    assert pour is not None
    assert pour.totals.poured_m3 == 0.0 and pour.totals.dumped_m3 == pytest.approx(0.5)


def test_a_totaliser_that_restarted_says_the_volume_is_not_known() -> None:
    state = crashed(totaliser_m3=500.0)
    pour = pm.cycle(state, readings(paste_volume_total_pv=3.0), tick(1), CONFIG).state.pour
    assert pour is not None and not pour.unrecorded
    assert pour.totals.recovered_m3 == 0.0
    assert pour.interruptions[-1]["recovered_basis"] == "none"
    assert "restarted" in pour.interruptions[-1]["recovered_detail"]
    assert totaliser_volume(None, pr.Readings(True, {}).measurement("x"))[0] is None


def test_until_the_totaliser_reads_the_pour_waits_and_cannot_resume() -> None:
    state = crashed(totaliser_m3=500.0)
    bad = replace(
        readings(), values={**readings().values, "paste_volume_total_pv": pr.Reading(1.0, "bad")}
    )
    decision = pm.cycle(state, bad, tick(1), CONFIG)
    assert decision.state.pour is not None and decision.state.pour.unrecorded
    with pytest.raises(Conflict) as err:
        pm.resume(decision.state, "p1", RECIPE, bad, tick(2), CONFIG, role="scada")
    assert err.value.code == "pour_volume_unknown"


def test_a_history_volume_is_taken_as_given_with_its_basis() -> None:
    decision = recover(
        crashed(), "p1", 0.2, basis="paste_flow_history", detail="12 rows", tick=tick(1)
    )
    pour = decision.state.pour
    assert pour is not None and pour.totals.poured_m3 == pytest.approx(0.2)
    assert pour.interruptions[-1]["recovered_basis"] == "paste_flow_history"


def test_with_a_totaliser_each_cycle_places_what_it_counted() -> None:
    state = started()
    plant = {"plant_mode": 2, "paste_flow_pv": 500.0}  # a flow reading far off the truth
    state = pm.cycle(state, readings(paste_volume_total_pv=100.0, **plant), tick(1), CONFIG).state
    for s, total in ((2, 100.02), (3, 100.05), (4, 100.05)):
        state = pm.cycle(
            state, readings(paste_volume_total_pv=total, **plant), tick(s), CONFIG
        ).state
    assert state.pour is not None
    assert state.pour.totals.poured_m3 == pytest.approx(0.05)  # the first cycle has no dt
    # A totaliser that goes back (a PLC restart) is no volume: the flow reading is used.
    after = pm.cycle(state, readings(paste_volume_total_pv=1.0, **plant), tick(5), CONFIG).state
    assert after.pour is not None
    assert after.pour.totals.poured_m3 == pytest.approx(0.05 + 500.0 / 3600.0)


# --- the dump's allowance ---------------------------------------------------------------

DIVERTER = SETPOINTS | {"divert_to_dump_sp"}


def dumping(**values: Any) -> pr.Readings:
    plant = readings(**{"plant_mode": 2, "diverted_to_dump_pv": True, **values})
    return replace(plant, setpoint_tags=DIVERTER)


def run_until_paused(state: pm.MachineState, plant: pr.Readings, seconds: int) -> pm.Decision:
    decision = pm.Decision(state)
    for s in range(1, seconds + 1):
        decision = pm.cycle(decision.state, plant, tick(s), CONFIG)
        pour = decision.state.pour
        assert pour is not None
        if pour.state is PourState.PAUSED:
            return decision
    raise AssertionError(f"still running after {seconds} s")


def test_paste_never_in_spec_pauses_at_the_dump_allowance_naming_the_cause() -> None:
    state = started()
    # Paste far too light for 72 % Cw: the diverter never lets it into the stope.
    decision = run_until_paused(state, dumping(paste_density_pv=1500.0), 1200)
    pour = decision.state.pour
    assert pour is not None
    dumped = pour.totals.dumped_m3
    assert dumped == pytest.approx(10.0, abs=100.0 / 3600.0 + 1e-6)  # one cycle past the limit
    assert pour.totals.poured_m3 == 0.0
    last = pour.interruptions[-1]
    assert last["reason"] == "dump_limit"
    assert "never settled in spec" in last["detail"] and "limit 10 m3" in last["detail"]
    assert any(w.values.get("run_request") is False for w in writes(decision))
    alarms = {a.code.value: a for a in decision.state.alarms.annunciated()}
    assert alarms["dump_limit_pause"].active and alarms["dump_limit_pause"].severity.value == "high"
    # The alarm stays until an operator resumes: then the allowance starts again.
    later = pm.cycle(decision.state, dumping(paste_density_pv=1500.0), tick(1300), CONFIG)
    assert later.state.alarms["dump_limit_pause"].active
    resumed = pm.resume(
        later.state, "p1", RECIPE, dumping(plant_mode=0), tick(1301), CONFIG, role="scada"
    )
    assert resumed.state.pour is not None
    assert resumed.state.pour.dump_base_m3 == pytest.approx(dumped)
    after = pm.Decision(resumed.state)
    for s in range(1302, 1310):  # past the alarms' off-delay
        after = pm.cycle(after.state, dumping(paste_density_pv=1500.0), tick(s), CONFIG)
    assert not after.state.alarms["dump_limit_pause"].active


def test_a_recipe_the_feed_cannot_reach_pauses_after_its_allowance() -> None:
    state = started()
    # A feed at 1,450 kg/m3 (about 47 % solids) cannot make 72 % Cw by adding water.
    wet = readings(plant_mode=2, tailings_density_pv=1450.0)
    decision = run_until_paused(state, wet, 400)
    pour = decision.state.pour
    assert pour is not None
    assert pour.interruptions[-1]["reason"] == "recipe_unreachable"
    assert pour.unreachable_s == pytest.approx(300.0, abs=1.0)
    assert decision.state.alarms["recipe_unreachable_pause"].active


def test_a_limit_of_zero_is_off() -> None:
    off = replace(CONFIG, dump=pm.DumpLimits(max_volume_m3=0.0, max_s=0.0, unreachable_s=0.0))
    decision = pm.Decision(started())
    for s in range(1, 900):
        decision = pm.cycle(decision.state, dumping(paste_density_pv=1500.0), tick(s), off)
    assert decision.state.pour is not None
    assert decision.state.pour.state is PourState.RUNNING
    assert decision.state.pour.totals.dumped_m3 > 20.0


# --- the stope's own barricade, its curve, and the record at a stage top -----------------


def paused_at_the_barricade(ctx: pm.PourContext) -> pm.MachineState:
    state = pm.start(
        pm.MachineState.initial(CONFIG), planned(ctx), RECIPE, readings(), tick(), CONFIG,
        role="scada",
    ).state  # fmt: skip
    state = pm.cycle(state, readings(barricade_pressure_pv=151.0), tick(1), CONFIG).state
    assert state.pour is not None and state.pour.state is PourState.PAUSED
    return state


def test_a_resume_while_the_barricade_is_at_its_rating_is_refused_naming_it() -> None:
    state = paused_at_the_barricade(context(barricade_tags=("barricade_pressure_pv",)))
    with pytest.raises(Conflict) as err:
        pm.resume(state, "p1", RECIPE, readings(barricade_pressure_pv=150.5), tick(2), CONFIG,
                  role="scada")  # fmt: skip
    assert err.value.code == "barricade_at_rating"
    assert err.value.extra["barricade"] == "barricade_pressure_pv"
    assert "barricade_pressure_pv" in err.value.detail and "150 kPa" in err.value.detail
    # Below its rating again (the fill consolidates), the resume goes ahead.
    decision = pm.resume(
        state, "p1", RECIPE, readings(barricade_pressure_pv=120.0), tick(3), CONFIG, role="scada"
    )
    assert decision.state.pour is not None and decision.state.pour.state is PourState.RUNNING


def test_a_new_writer_does_not_resume_by_itself_into_a_barricade_at_its_rating() -> None:
    state = paused_at_the_barricade(context())
    state = replace(state, auto_resume="p1")
    decision = pm.cycle(state, readings(barricade_pressure_pv=155.0), tick(2), CONFIG)
    assert not [e for e in decision.effects if isinstance(e, pm.Resume)]
    decision = pm.cycle(state, readings(barricade_pressure_pv=90.0), tick(3), CONFIG)
    assert [e for e in decision.effects if isinstance(e, pm.Resume)]


def test_only_the_stopes_own_barricade_pauses_its_pour() -> None:
    ctx = context(barricade_tags=("barricade_2_pressure_pv",))
    state = pm.start(
        pm.MachineState.initial(CONFIG), planned(ctx), RECIPE, readings(), tick(), CONFIG,
        role="scada",
    ).state  # fmt: skip
    # Another stope's barricade at 300 kPa is not this pour's business.
    other = readings(barricade_pressure_pv=300.0, barricade_2_pressure_pv=20.0)
    state = pm.cycle(state, other, tick(1), CONFIG).state
    assert state.pour is not None and state.pour.state is PourState.RUNNING
    own = readings(barricade_pressure_pv=0.0, barricade_2_pressure_pv=151.0)
    state = pm.cycle(state, own, tick(2), CONFIG).state
    assert state.pour is not None
    assert state.pour.interruptions[-1]["reason"] == "barricade_at_rating:barricade_2_pressure_pv"
    # A barricade of the stope the plant does not read is unknown, never low: an alarm.
    unread = planned(context(barricade_tags=("barricade_3_pressure_pv",)))
    state = pm.start(
        pm.MachineState.initial(CONFIG), unread, RECIPE, readings(), tick(), CONFIG, role="scada"
    ).state
    for s in range(1, 60):  # an alarm stands once its condition has lasted
        state = pm.cycle(state, readings(), tick(s), CONFIG).state
    assert state.alarms["barricade_pressure_unknown"].active


def test_the_rise_rate_limits_the_flow_by_the_plan_area_where_the_fill_is() -> None:
    # 10 m2 up to 2 m, then 40 m2: a stope that widens above its brow.
    geometry = StopeGeometry.from_curve(VolumeCurve((0.0, 2.0, 6.0), (0.0, 20.0, 180.0), "table"))
    ctx = context(max_rise_rate_m_h=2.0, plan_area_m2=10.0, geometry=geometry, placed_before_m3=5.0)
    pour = planned(ctx)
    assert inputs_of(readings(), pour).paste_flow_request_m3_h == pytest.approx(20.0)
    assert ctx.paste_flow_limit_m3_h(14.0) == pytest.approx(20.0)  # 19 m3: still 10 m2
    assert ctx.paste_flow_limit_m3_h(16.0) == pytest.approx(80.0)  # 21 m3: 40 m2, 2 m/h
    wide = replace(ctx, placed_before_m3=30.0)
    assert inputs_of(readings(), planned(wide)).paste_flow_request_m3_h == pytest.approx(80.0)


def test_a_checkpoint_in_the_cycle_that_follows_the_plan_is_kept_before_the_plans_answer() -> None:
    # The plan may answer a cycle's volume with the end of the pour (a stage top): that
    # newer record must be the last kept, not the cycle's own checkpoint of it running.
    state = pm.start(
        pm.MachineState.initial(CONFIG), planned(context(stage_state="filling")), RECIPE,
        readings(), tick(), CONFIG, role="scada",
    ).state  # fmt: skip
    running = readings(plant_mode=2)
    found = False
    for s in range(1, 12):
        effects = pm.cycle(state, running, tick(s), CONFIG).effects
        state = pm.cycle(state, running, tick(s), CONFIG).state
        kinds = [type(e).__name__ for e in effects if isinstance(e, pm.Keep | pm.FollowPlan)]
        if "Keep" in kinds and "FollowPlan" in kinds:
            assert kinds.index("Keep") < kinds.index("FollowPlan"), kinds
            found = True
    assert found


def run_on_a_stale_link(seconds: int, stale: Callable[[int], bool]) -> tuple[pm.PourRun, bool]:
    """A started pour run for ``seconds`` one-second cycles on an in-spec plant (the
    binder feeders at Bw 5 %) whose readings all go bad in the cycles ``stale`` names,
    the diverter's valve following its command; (the pour, commanded to the dump)."""
    decision, to_dump = pm.Decision(started()), True
    for s in range(1, seconds + 1):
        plant = dumping(
            plant_mode=2, diverted_to_dump_pv=to_dump, cement_rate_pv=0.84, slag_rate_pv=3.36
        )
        if stale(s):
            plant = replace(
                plant, values={t: pr.Reading(r.value, "bad") for t, r in plant.values.items()}
            )
        decision = pm.cycle(decision.state, plant, tick(s), CONFIG)
        for w in writes(decision):
            to_dump = bool(w.values.get("divert_to_dump_sp", to_dump))
    pour = decision.state.pour
    assert pour is not None
    return pour, to_dump


def test_a_start_on_a_link_stale_every_few_seconds_settles_and_reaches_the_stope() -> None:
    """A loaded link drops every reading for 2 s in every 10 from the start: the start's
    settling pauses over each gap instead of restarting, so in-spec paste reaches the
    stope instead of going to the dump until the pour's dump limit pauses it."""
    pour, to_dump = run_on_a_stale_link(600, lambda s: s % 10 < 2)
    assert pour.state is PourState.RUNNING
    assert not to_dump
    assert pour.totals.poured_m3 > 5.0, pour.totals.poured_m3


def test_moments_of_stale_readings_do_not_send_a_settled_run_back_to_the_dump() -> None:
    """A slow link makes every reading stale (bad) for a moment now and then: the run
    that settled at the stope stays there (the diverter holds on bad data) instead of
    sending a minute of good paste to the dump each time to settle again."""
    # 2 s of stale readings every minute, once the run has settled.
    pour, to_dump = run_on_a_stale_link(1800, lambda s: s > 300 and s % 60 < 2)
    assert pour.state is PourState.RUNNING
    assert not to_dump
    # What settled the start (a minute and the valve's travel at 100 m3/h), nothing more.
    assert pour.totals.dumped_m3 < 3.0, pour.totals.dumped_m3
    assert pour.totals.poured_m3 > 40.0
    # The record holds the run as the valve does: the last cycle read stale, and the run
    # is still the one that settled (an upset now would be control, not start-up).
    assert pour.totals.settled
    assert pour.totals.startup_off_spec_m3 == 0.0
