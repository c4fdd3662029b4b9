"""The simulator's stope: placed and dumped volumes, fill height, the barricade
pressure model, and the dump diverter (process valve and PLC command)."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.simulator.dynamics import (
    GRAVITY_M_S2,
    PlantInputs,
    PlantMode,
    PlantParams,
    PlantState,
    PlcCommands,
    PlcParams,
    PlcState,
    Setpoints,
    SimControls,
    SimParams,
    barricade_pressure_kpa,
    delivery_residual,
    fill_height_m,
    fill_unit_weight_kn_m3,
    hydrostatic_pressure_kpa,
    initial_sim_state,
    initial_state,
    mass_balance_residual,
    outputs,
    plc_actuators,
    plc_scan,
    reset_stope,
    simulate,
    step,
)

RECIPE = Setpoints(80.0, 1.2, 4.4, 0.0, 6.0, 1860.0)
PASTE = PlantInputs(
    feed_flow_sp_m3_h=80.0, binder_sp_t_h=(1.2, 4.4, 0.0), water_flow_sp_m3_h=6.0, pump_on=True
)


def quiet(**changes: object) -> PlantParams:
    base: dict[str, object] = {
        "feed_density_walk_kg_m3_sqrt_s": 0.0,
        "feed_density_noise_kg_m3": 0.0,
        "paste_density_noise_kg_m3": 0.0,
        "pressure_noise_kpa": 0.0,
    }
    return replace(PlantParams(), **{**base, **changes})  # type: ignore[arg-type]


def run(
    state: PlantState, inputs: PlantInputs, seconds: float, params: PlantParams, dt_s: float = 1.0
) -> PlantState:
    rng = random.Random(0)
    for _ in range(round(seconds / dt_s)):
        state = step(state, inputs, dt_s, params, rng)
    return state


def assert_closed(initial: PlantState, state: PlantState) -> None:
    scale = max(1.0, state.mass_in.total_kg + initial.mixer.total_kg)
    for residue in mass_balance_residual(initial, state).as_tuple():
        assert abs(residue) <= 1e-9 * scale
    for residue in delivery_residual(initial, state).as_tuple():
        assert abs(residue) <= 1e-9 * scale


def primed(params: PlantParams) -> PlantState:
    """A mixer full of settled paste (start-up sent to the dump), and an empty stope."""
    to_dump = replace(PASTE, divert_to_dump=True)
    return reset_stope(run(initial_state(params), to_dump, 600, params, dt_s=5.0))


# --- bookkeeping --------------------------------------------------------------------


def test_placed_and_dumped_volumes_are_kept_apart_and_close_the_balance() -> None:
    params = quiet(diverter_travel_s=5.0, stope_plan_area_m2=50.0)
    s0 = initial_state(params)
    # Start-up flush into the stope line: placed water, no paste, no fill height.
    flushed = run(s0, PlantInputs(water_flow_sp_m3_h=30.0, pump_on=True, flushing=True), 60, params)
    assert flushed.stope.placed_water_m3 > 0.2
    assert flushed.stope.placed_paste_m3 == 0.0
    assert fill_height_m(flushed, params) == 0.0
    assert barricade_pressure_kpa(flushed, params) == 0.0
    # Paste with the diverter commanded to the dump: the first 5 s (travel) still go
    # to the stope, the rest to the dump.
    rng = random.Random(0)
    state = flushed
    pumped_in_travel = 0.0
    for i in range(60):
        before = state
        state = step(state, replace(PASTE, divert_to_dump=True), 0.5, params, rng)
        if i < 10:  # the flow follows the proven position: 9 steps + the one it arrives in
            pumped_in_travel += (state.mass_out - before.mass_out).total_kg
        assert state.diverted_to_dump == (i >= 9)
    dumping = run(state, replace(PASTE, divert_to_dump=True), 270, params)
    assert dumping.stope.placed.total_kg - flushed.stope.placed.total_kg == pytest.approx(
        pumped_in_travel, rel=1e-12
    )
    assert dumping.stope.dumped_paste_m3 > 5.0
    assert dumping.stope.dumped_water_m3 == 0.0
    # In spec: back to the stope.
    placing = run(dumping, PASTE, 600, params)
    travel_m3 = 5.0 * dumping.paste_flow_m3_h / 3600.0  # the valve's travel back
    dumped_in_travel = placing.stope.dumped_paste_m3 - dumping.stope.dumped_paste_m3
    assert dumped_in_travel == pytest.approx(travel_m3, rel=0.05)
    assert placing.stope.placed_paste_m3 > 14.0  # 10 minutes at about 88 m3/h
    # End flush to the dump: dumped water.
    end = run(
        placing,
        PlantInputs(water_flow_sp_m3_h=30.0, pump_on=True, flushing=True, divert_to_dump=True),
        60,
        params,
    )
    assert end.stope.dumped_water_m3 > 0.2
    assert end.stope.placed_paste_m3 == pytest.approx(placing.stope.placed_paste_m3, abs=0.05)
    # Volumes: what the pump sent out, split four ways.
    stope = end.stope
    total_m3 = (
        stope.placed_paste_m3
        + stope.placed_water_m3
        + stope.dumped_paste_m3
        + stope.dumped_water_m3
    )
    pumped_m3 = 0.0
    rng = random.Random(0)
    replay = s0
    for inputs, seconds in (
        (PlantInputs(water_flow_sp_m3_h=30.0, pump_on=True, flushing=True), 60),
        (replace(PASTE, divert_to_dump=True), 300),
        (PASTE, 600),
        (PlantInputs(water_flow_sp_m3_h=30.0, pump_on=True, flushing=True), 60),
    ):
        for _ in range(round(seconds / 0.5)):
            replay = step(replay, inputs, 0.5, params, rng)
            pumped_m3 += replay.paste_flow_m3_h * 0.5 / 3600.0
    assert total_m3 == pytest.approx(pumped_m3, rel=1e-3)
    # Per component: placed + dumped is the pump's outflow, and the mixer balance holds.
    assert_closed(s0, end)
    assert fill_height_m(end, params) == pytest.approx(stope.placed_paste_m3 / 50.0)
    assert end.stope.dumped.cement_kg > 0.0 and end.stope.placed.cement_kg > 0.0


def test_the_diverter_only_routes_the_flow() -> None:
    params = quiet()
    stope_run = run(initial_state(params), PASTE, 300, params)
    dump_run = run(initial_state(params), replace(PASTE, divert_to_dump=True), 300, params)
    assert dump_run.mixer == stope_run.mixer
    assert dump_run.mass_out == stope_run.mass_out
    assert dump_run.pressure_kpa == stope_run.pressure_kpa
    assert dump_run.stope.placed.total_kg < stope_run.stope.placed.total_kg


def test_reset_stope_starts_an_empty_stope() -> None:
    params = quiet(stope_plan_area_m2=20.0)
    filled = run(primed(params), PASTE, 600, params)
    assert fill_height_m(filled, params) > 0.5
    assert barricade_pressure_kpa(filled, params) > 0.0
    new = reset_stope(filled)
    assert fill_height_m(new, params) == 0.0
    assert barricade_pressure_kpa(new, params) == 0.0
    assert new.stope.dumped_paste_m3 == 0.0
    assert new.mixer == filled.mixer and new.mass_out == filled.mass_out


# --- the barricade --------------------------------------------------------------------


# Shorter time scales than the defaults keep the tests quick; the behaviour is the same.
FAST_CURE = {"barricade_consolidation_tau_h": 2.0, "barricade_cure_rate_per_h_per_binder_pct": 0.3}


def fill_to(height_m: float, params: PlantParams, inputs: PlantInputs = PASTE) -> PlantState:
    """Fill an empty stope with paste to ``height_m``."""
    state = primed(params)
    rng = random.Random(0)
    while fill_height_m(state, params) < height_m:
        state = step(state, inputs, 2.0, params, rng)
    return state


def pressure_ratio(state: PlantState, params: PlantParams) -> float:
    return barricade_pressure_kpa(state, params) / hydrostatic_pressure_kpa(state, params)


def test_fast_rise_stays_near_hydrostatic_slow_rise_lags_below() -> None:
    fast_params = quiet(stope_plan_area_m2=5.0, diverter_travel_s=0.0, **FAST_CURE)  # ~20 m/h
    slow_params = quiet(stope_plan_area_m2=100.0, diverter_travel_s=0.0, **FAST_CURE)  # ~1 m/h
    fast = fill_to(1.0, fast_params)
    slow = fill_to(1.0, slow_params)
    assert pressure_ratio(fast, fast_params) > 0.9
    assert pressure_ratio(slow, slow_params) < 0.6
    # gamma is the paste's: about 19 kN/m3 here, so gamma h is about 19 kPa at 1 m.
    assert fill_unit_weight_kn_m3(fast) == pytest.approx(
        fast.stope.placed_paste_kg / fast.stope.placed_paste_m3 * GRAVITY_M_S2 / 1000.0
    )
    assert 17.0 < fill_unit_weight_kn_m3(fast) < 21.0
    assert hydrostatic_pressure_kpa(fast, fast_params) == pytest.approx(
        fill_unit_weight_kn_m3(fast) * fill_height_m(fast, fast_params)
    )


def test_more_binder_relieves_the_barricade_at_the_same_rise() -> None:
    params = quiet(stope_plan_area_m2=100.0, diverter_travel_s=0.0, **FAST_CURE)
    lean = fill_to(1.0, params, replace(PASTE, binder_sp_t_h=(0.4, 1.2, 0.0)))  # Bw ~1.4 %
    rich = fill_to(1.0, params, replace(PASTE, binder_sp_t_h=(2.0, 8.0, 0.0)))  # Bw ~9 %
    assert pressure_ratio(lean, params) > pressure_ratio(rich, params) + 0.1


def test_pressure_relaxes_at_the_cure_rate_once_filling_stops() -> None:
    params = quiet(stope_plan_area_m2=20.0, diverter_travel_s=0.0)
    filled = fill_to(2.0, params)
    stopped = PlantInputs()  # pump off: nothing is placed
    p0 = barricade_pressure_kpa(filled, params)
    idle = replace(params, max_substep_s=600.0)  # nothing flows: long steps are exact
    later = run(filled, stopped, 3600.0, idle, dt_s=60.0)
    placed = filled.stope.placed
    bw_pct = 100.0 * (placed.cement_kg + placed.slag_kg + placed.flyash_kg) / placed.tailings_kg
    k_per_h = (
        1.0 / params.barricade_consolidation_tau_h
        + params.barricade_cure_rate_per_h_per_binder_pct * bw_pct
    )
    assert barricade_pressure_kpa(later, params) == pytest.approx(p0 * math.exp(-k_per_h), rel=1e-9)
    assert fill_height_m(later, params) == fill_height_m(filled, params)
    much_later = run(later, stopped, 20 * 3600.0, idle, dt_s=600.0)
    assert barricade_pressure_kpa(much_later, params) < 0.01 * p0
    assert barricade_pressure_kpa(much_later, params) >= 0.0


def test_diverted_paste_and_flush_water_do_not_load_the_barricade() -> None:
    params = quiet(stope_plan_area_m2=20.0, diverter_travel_s=0.0)
    state = primed(params)
    dumped = run(state, replace(PASTE, divert_to_dump=True), 600, params)
    assert barricade_pressure_kpa(dumped, params) == 0.0
    flushed = run(
        dumped, PlantInputs(water_flow_sp_m3_h=30.0, pump_on=True, flushing=True), 300, params
    )
    assert fill_height_m(flushed, params) == 0.0
    assert barricade_pressure_kpa(flushed, params) == 0.0
    assert flushed.stope.placed_water_m3 > 1.0


def test_plan_area_changed_at_run_time_keeps_the_bounds() -> None:
    params = quiet(stope_plan_area_m2=20.0, diverter_travel_s=0.0)
    filled = fill_to(1.0, params)
    wider = replace(params, stope_plan_area_m2=80.0)
    assert fill_height_m(filled, wider) == pytest.approx(fill_height_m(filled, params) / 4.0)
    assert barricade_pressure_kpa(filled, wider) == pytest.approx(
        barricade_pressure_kpa(filled, params) / 4.0
    )
    assert barricade_pressure_kpa(filled, wider) <= hydrostatic_pressure_kpa(filled, wider)


def test_the_instrument_reads_the_model() -> None:
    params = quiet(stope_plan_area_m2=20.0, diverter_travel_s=0.0)
    assert outputs(initial_state(params), params, random.Random(0)).barricade_pressure_pv == 0.0
    filled = fill_to(0.5, params)
    reading = outputs(filled, params, random.Random(0)).barricade_pressure_pv
    assert reading == barricade_pressure_kpa(filled, params) > 0.0


stope_inputs = st.builds(
    PlantInputs,
    feed_flow_sp_m3_h=st.floats(0.0, 150.0),
    binder_sp_t_h=st.tuples(st.floats(0, 10), st.floats(0, 10), st.floats(0, 5)),
    water_flow_sp_m3_h=st.floats(0.0, 40.0),
    pump_on=st.booleans(),
    divert_to_dump=st.booleans(),
    diverter_stuck=st.booleans(),
    flushing=st.booleans(),
    blockage=st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(
    schedule=st.lists(st.tuples(stope_inputs, st.floats(0.01, 300.0)), min_size=1, max_size=8),
    area=st.floats(1.0, 500.0),
    tau_h=st.floats(0.01, 100.0),
    cure=st.floats(0.0, 5.0),
    travel_s=st.floats(0.0, 30.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_barricade_within_zero_and_hydrostatic_and_balances_close(
    schedule: list[tuple[PlantInputs, float]],
    area: float,
    tau_h: float,
    cure: float,
    travel_s: float,
    seed: int,
) -> None:
    params = replace(
        PlantParams(),
        stope_plan_area_m2=area,
        barricade_consolidation_tau_h=tau_h,
        barricade_cure_rate_per_h_per_binder_pct=cure,
        diverter_travel_s=travel_s,
        max_substep_s=2.0,  # fewer sub-steps: the bounds hold for any step length
    )
    rng = random.Random(seed)
    s0 = initial_state(params)
    state = s0
    for inputs, dt_s in schedule:
        state = step(state, inputs, dt_s, params, rng)
        p = barricade_pressure_kpa(state, params)
        assert 0.0 <= p <= hydrostatic_pressure_kpa(state, params) * (1 + 1e-12) + 1e-12
        assert 0.0 <= state.stope.barricade_load_m3 <= state.stope.placed_paste_m3 + 1e-12
        assert math.isfinite(outputs(state, params, rng).barricade_pressure_pv)
        assert_closed(s0, state)


# --- the diverter valve ---------------------------------------------------------------


def valve_trace(
    commands: list[bool], stuck: list[bool] | None = None, travel_s: float = 5.0
) -> list[bool]:
    params = quiet(diverter_travel_s=travel_s)
    state = initial_state(params)
    rng = random.Random(0)
    trace = []
    for i, command in enumerate(commands):
        inputs = PlantInputs(divert_to_dump=command, diverter_stuck=bool(stuck and stuck[i]))
        state = step(state, inputs, 0.5, params, rng)
        trace.append(state.diverted_to_dump)
    return trace


def test_diverter_proven_position_follows_after_the_travel_time() -> None:
    trace = valve_trace([True] * 20 + [False] * 20)
    # 5 s at 0.5 s a step: the old position for 9 steps, the new one from the 10th.
    assert trace[:9] == [False] * 9
    assert trace[9:20] == [True] * 11
    assert trace[20:29] == [True] * 9
    assert trace[29:] == [False] * 11
    assert valve_trace([True], travel_s=0.0) == [True]


def test_a_command_withdrawn_mid_travel_leaves_the_valve_where_it_was() -> None:
    trace = valve_trace([True] * 6 + [False] * 4 + [True] * 12)
    assert trace[:10] == [False] * 10
    # the travel starts again from the start of the new command
    assert trace[10:19] == [False] * 9
    assert trace[19:] == [True] * 3


def test_stuck_diverter_stays_and_a_travel_under_way_pauses() -> None:
    stuck_all = valve_trace([True] * 30, stuck=[True] * 30)
    assert stuck_all == [False] * 30
    # 2 s of travel, stuck for 10 s, then free: 3 s more to go.
    stuck = [False] * 4 + [True] * 20 + [False] * 10
    trace = valve_trace([True] * 34, stuck=stuck)
    assert trace[:29] == [False] * 29
    assert trace[29:] == [True] * 5
    # and a valve stuck on the dump side stays there when told back
    to_dump = valve_trace([True] * 12 + [False] * 12, stuck=[False] * 12 + [True] * 12)
    assert to_dump[-12:] == [True] * 12


# --- the PLC side -----------------------------------------------------------------------


def test_plc_applies_the_diverter_command_only_in_remote_and_in_every_mode() -> None:
    params = PlcParams()
    plant = initial_state(PlantParams())
    plc = plc_scan(PlcState(), PlcCommands(divert_to_dump=True), plant, True, 1.0, 0.1, params)
    assert plc.divert_to_dump
    local = plc_scan(plc, PlcCommands(divert_to_dump=False), plant, False, 1.0, 0.1, params)
    assert local.divert_to_dump  # kept in local, like the setpoints
    back = plc_scan(local, PlcCommands(divert_to_dump=False), plant, True, 1.0, 0.1, params)
    assert not back.divert_to_dump
    for mode in PlantMode:
        inputs = plc_actuators(replace(plc, mode=mode), plant, params)
        assert inputs.divert_to_dump
        assert inputs.flushing == (mode is PlantMode.FLUSHING)


def test_simulate_routes_a_pour_through_the_diverter_and_the_stuck_fault() -> None:
    sim_params = SimParams(plant=quiet(diverter_travel_s=4.0, stope_plan_area_m2=30.0))
    sim = initial_sim_state(sim_params)
    rng = random.Random(0)
    cmd = PlcCommands(RECIPE, run_request=True, setpoint_seq=1, divert_to_dump=True)
    for i in range(120):  # flush (10 s) to the dump, then paste to the dump
        sim = simulate(sim, replace(cmd, heartbeat=i), SimControls(), 1.0, 0.1, sim_params, rng)
    assert sim.plc.mode is PlantMode.RUNNING and sim.plant.diverted_to_dump
    assert sim.plant.stope.dumped_water_m3 > 0.0 and sim.plant.stope.dumped_paste_m3 > 0.0
    placed_before = sim.plant.stope.placed_paste_m3
    stuck = SimControls(diverter_stuck=True)
    for i in range(60):  # told to the stope, but stuck: still to the dump
        c = replace(cmd, heartbeat=200 + i, divert_to_dump=False)
        sim = simulate(sim, c, stuck, 1.0, 0.1, sim_params, rng)
    assert sim.plant.diverted_to_dump
    assert sim.plant.stope.placed_paste_m3 == placed_before
    for i in range(60):  # freed: the stope fills
        c = replace(cmd, heartbeat=300 + i, divert_to_dump=False)
        sim = simulate(sim, c, SimControls(), 1.0, 0.1, sim_params, rng)
    assert not sim.plant.diverted_to_dump
    assert sim.plant.stope.placed_paste_m3 > placed_before + 1.0
    assert barricade_pressure_kpa(sim.plant, sim_params.plant) > 0.0
