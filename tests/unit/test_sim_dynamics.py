"""The plant simulator's pure dynamics and PLC logic: plain, fast, exhaustive."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.simulator.dynamics import (
    BINDERS,
    MEASUREMENT_TAGS,
    Components,
    InstrumentErrors,
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
    SimState,
    clamp_setpoints,
    initial_sim_state,
    initial_state,
    mass_balance_residual,
    mix_density_kg_m3,
    outputs,
    plc_actuators,
    plc_scan,
    simulate,
    slurry_solids_fraction,
    solids_fraction,
    step,
    volume_m3,
)

PARAMS = PlantParams()
SIM = SimParams()
RECIPE = Setpoints(
    tailings_flow_m3_h=80.0,
    cement_t_h=1.2,
    slag_t_h=4.4,
    flyash_t_h=0.0,
    water_m3_h=6.0,
    paste_density_kg_m3=1860.0,
)


def quiet(**changes: float) -> PlantParams:
    """Plant parameters without random disturbances or noise."""
    base = {
        "feed_density_walk_kg_m3_sqrt_s": 0.0,
        "feed_density_noise_kg_m3": 0.0,
        "paste_density_noise_kg_m3": 0.0,
        "pressure_noise_kpa": 0.0,
    }
    return replace(PARAMS, **{**base, **changes})  # type: ignore[arg-type]


def run(
    state: PlantState, inputs: PlantInputs, seconds: float, params: PlantParams, dt_s: float = 1.0
) -> PlantState:
    rng = random.Random(0)
    for _ in range(round(seconds / dt_s)):
        state = step(state, inputs, dt_s, params, rng)
    return state


def assert_balance(initial: PlantState, state: PlantState) -> None:
    scale = max(1.0, state.mass_in.total_kg + initial.mixer.total_kg)
    for residue in mass_balance_residual(initial, state).as_tuple():
        assert abs(residue) <= 1e-9 * scale


# --- mass-volume relations --------------------------------------------------------------


def test_slurry_solids_fraction_follows_the_pulp_density_relation() -> None:
    # Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w)) (Wills & Finch 2016, ch. 3) with
    # Gs 2.8 and 1900 kg/m3
    assert slurry_solids_fraction(1900.0, 2.8) == pytest.approx(2800 * 900 / (1900 * 1800))
    assert slurry_solids_fraction(1000.0, 2.8) == 0.0
    assert slurry_solids_fraction(2800.0, 2.8) == pytest.approx(1.0)


def test_mix_density_of_a_saturated_paste() -> None:
    # 720 kg of Gs 2.8 solids and 280 kg water: rho = 1 / (0.72/2800 + 0.28/1000)
    mix = Components(tailings_kg=720.0, water_kg=280.0)
    assert mix_density_kg_m3(mix, PARAMS) == pytest.approx(1 / (0.72 / 2800 + 0.28 / 1000))
    assert solids_fraction(mix) == pytest.approx(0.72)


# --- lags and limits ------------------------------------------------------------------


def test_feed_flow_is_a_first_order_lag_with_a_maximum() -> None:
    params = quiet()
    s0 = initial_state(params)
    inputs = PlantInputs(feed_flow_sp_m3_h=100.0, pump_on=True)
    tau = params.feed_flow_tau_s
    after_tau = run(s0, inputs, tau, params, dt_s=0.1)
    assert after_tau.feed_flow_m3_h == pytest.approx(100.0 * (1 - math.exp(-1)), rel=1e-6)
    settled = run(s0, inputs, 10 * tau, params)
    assert settled.feed_flow_m3_h == pytest.approx(100.0, abs=0.01)
    limited = run(s0, replace(inputs, feed_flow_sp_m3_h=1e6), 10 * tau, params)
    assert limited.feed_flow_m3_h == pytest.approx(params.feed_flow_max_m3_h, abs=0.01)


def test_water_valve_lag_and_maximum() -> None:
    params = quiet()
    s0 = initial_state(params)
    inputs = PlantInputs(water_flow_sp_m3_h=20.0, pump_on=True)
    after_tau = run(s0, inputs, params.water_tau_s, params, dt_s=0.5)
    assert after_tau.water_flow_m3_h == pytest.approx(20.0 * (1 - math.exp(-1)), rel=1e-6)
    limited = run(s0, replace(inputs, water_flow_sp_m3_h=500.0), 60, params)
    assert limited.water_flow_m3_h == pytest.approx(params.water_max_m3_h, abs=0.01)


def test_lags_are_exact_for_any_step_length() -> None:
    params = quiet()
    s0 = initial_state(params)
    inputs = PlantInputs(feed_flow_sp_m3_h=100.0, water_flow_sp_m3_h=10.0, pump_on=True)
    one = run(s0, inputs, 20.0, params, dt_s=20.0)
    many = run(s0, inputs, 20.0, params, dt_s=0.1)
    assert one.feed_flow_m3_h == pytest.approx(many.feed_flow_m3_h, rel=1e-9)
    assert one.water_flow_m3_h == pytest.approx(many.water_flow_m3_h, rel=1e-9)


def test_binder_feeders_lag_and_limit() -> None:
    params = quiet()
    s0 = initial_state(params)
    inputs = PlantInputs(feed_flow_sp_m3_h=80, binder_sp_t_h=(2.0, 50.0, 1.0), pump_on=True)
    after = run(s0, inputs, params.feeder_tau_s, params, dt_s=0.5)
    assert after.feeders[0].rate_t_h == pytest.approx(2.0 * (1 - math.exp(-1)), rel=1e-6)
    settled = run(s0, inputs, 20, params)
    assert settled.feeders[0].rate_t_h == pytest.approx(2.0, abs=1e-3)
    assert settled.feeders[1].rate_t_h == pytest.approx(params.binder_max_t_h[1], abs=1e-3)
    assert settled.feeders[2].rate_t_h == pytest.approx(1.0, abs=1e-3)


def test_hopper_refill_holds_the_measured_rate_while_the_actual_rate_goes_on() -> None:
    params = quiet()
    rng = random.Random(0)
    state = initial_state(params)
    sp = PlantInputs(feed_flow_sp_m3_h=80, binder_sp_t_h=(6.0, 0.0, 0.0), pump_on=True)
    refills = 0
    last_measured = 0.0
    was_refilling = False
    for i in range(1200):
        # change the setpoint during the run so a held reading is visibly stale
        inputs = sp if i < 150 else replace(sp, binder_sp_t_h=(3.0, 0.0, 0.0))
        state = step(state, inputs, 0.5, params, rng)
        feeder = state.feeders[0]
        if feeder.refilling:
            assert feeder.measured_t_h == last_measured  # held
            assert feeder.rate_t_h > 0.0  # the screw keeps feeding
        else:
            assert feeder.measured_t_h == feeder.rate_t_h
        if feeder.refilling and not was_refilling:
            refills += 1
        was_refilling = feeder.refilling
        last_measured = feeder.measured_t_h
        assert 0.0 <= feeder.hopper_kg <= params.hopper_capacity_kg
        assert outputs(state, params, rng).cement_rate_pv == feeder.measured_t_h
    assert refills >= 2  # the hopper empties and refills periodically


def test_feeder_fault_stops_the_actual_rate_and_raises_the_flag() -> None:
    params = quiet()
    state = run(
        initial_state(params),
        PlantInputs(feed_flow_sp_m3_h=80, binder_sp_t_h=(1.0, 4.0, 0.0), pump_on=True),
        30,
        params,
    )
    faulted = step(
        state,
        PlantInputs(
            feed_flow_sp_m3_h=80,
            binder_sp_t_h=(1.0, 4.0, 0.0),
            pump_on=True,
            feeder_faults=frozenset({"slag"}),
        ),
        1.0,
        params,
        random.Random(0),
    )
    assert faulted.feeders[1].rate_t_h == 0.0
    assert faulted.feeders[1].fault
    assert not faulted.feeders[0].fault
    assert faulted.feeders[0].rate_t_h == pytest.approx(1.0, abs=1e-3)


# --- mixer, density, pressure ----------------------------------------------------------


def test_paste_density_settles_at_what_went_in() -> None:
    params = quiet()
    inputs = PlantInputs(
        feed_flow_sp_m3_h=80.0, binder_sp_t_h=(1.2, 4.4, 0.0), water_flow_sp_m3_h=6.0, pump_on=True
    )
    state = run(initial_state(params), inputs, 900, params)
    # The steady-state mixer composition is the inflow composition.
    rho_f = params.feed_density_kg_m3
    feed_kg_h = 80.0 * rho_f
    tail_kg_h = feed_kg_h * slurry_solids_fraction(rho_f, params.tailings_gs)
    inflow = Components(
        tailings_kg=tail_kg_h,
        cement_kg=1200.0,
        slag_kg=4400.0,
        water_kg=feed_kg_h - tail_kg_h + 6000.0,
    )
    expected = mix_density_kg_m3(inflow, params)
    assert mix_density_kg_m3(state.mixer, params) == pytest.approx(expected, rel=1e-4)
    assert state.density_gauge_kg_m3 == pytest.approx(expected, rel=1e-4)
    assert state.paste_flow_m3_h == pytest.approx(volume_m3(inflow, params), rel=1e-3)
    level = outputs(state, params, random.Random(0)).mixer_level_pv
    assert level == pytest.approx(params.mixer_level_sp_pct, abs=2.0)
    # residence time at this flow is within the design 30-60 s
    residence_s = volume_m3(state.mixer, params) / (state.paste_flow_m3_h / 3600.0)
    assert 30.0 <= residence_s <= 60.0


def test_more_water_gives_lighter_paste_and_lower_pressure() -> None:
    params = quiet()
    base = PlantInputs(
        feed_flow_sp_m3_h=80.0, binder_sp_t_h=(1.2, 4.4, 0.0), water_flow_sp_m3_h=4.0, pump_on=True
    )
    dry = run(initial_state(params), base, 900, params)
    wet = run(dry, replace(base, water_flow_sp_m3_h=20.0), 60, params)
    wetter = run(wet, replace(base, water_flow_sp_m3_h=20.0), 600, params)
    rho = [mix_density_kg_m3(s.mixer, params) for s in (dry, wet, wetter)]
    assert rho[0] > rho[1] > rho[2]  # the mixer responds with its residence time
    assert dry.pressure_kpa > wetter.pressure_kpa


@settings(max_examples=60, deadline=None)
@given(
    flow=st.floats(0.0, 200.0),
    more_flow=st.floats(1.0, 100.0),
    cw=st.floats(0.0, 0.85),
    more_cw=st.floats(0.005, 0.1),
)
def test_pump_pressure_is_monotone_in_flow_and_solids(
    flow: float, more_flow: float, cw: float, more_cw: float
) -> None:
    from service.simulator.dynamics import _pipeline_pressure_kpa

    def mix(c: float) -> Components:
        return Components(tailings_kg=1000.0 * c, water_kg=1000.0 * (1 - c))

    p = _pipeline_pressure_kpa(flow, mix(cw), PARAMS)
    assert _pipeline_pressure_kpa(flow + more_flow, mix(cw), PARAMS) > p
    assert _pipeline_pressure_kpa(flow, mix(cw + more_cw), PARAMS) > p


def test_blockage_ramps_the_pressure_up() -> None:
    params = quiet()
    inputs = PlantInputs(feed_flow_sp_m3_h=80.0, water_flow_sp_m3_h=6.0, pump_on=True)
    state = run(initial_state(params), inputs, 600, params)
    blocked = [state]
    for _ in range(5):
        blocked.append(run(blocked[-1], replace(inputs, blockage=True), 10, params))
    pressures = [s.pressure_kpa for s in blocked]
    assert all(b > a for a, b in itertools.pairwise(pressures))
    assert pressures[-1] - pressures[0] > 0.8 * params.blockage_ramp_kpa_s * 50
    cleared = run(blocked[-1], inputs, 120, params)
    assert cleared.pressure_kpa == pytest.approx(state.pressure_kpa, rel=0.02)


def test_wet_feed_is_wetter_than_any_paste_target() -> None:
    params = quiet()
    state = run(initial_state(params), PlantInputs(feed_flow_sp_m3_h=80, wet_feed=True), 5, params)
    feed_cw = slurry_solids_fraction(state.feed_density_kg_m3, params.tailings_gs)
    assert feed_cw < 0.70  # paste is 72-85 % solids: adding water cannot reach it
    # with no dilution water and a 5 % binder dose, the paste is still too wet
    inputs = PlantInputs(feed_flow_sp_m3_h=80.0, binder_sp_t_h=(2.0, 2.0, 0.0), wet_feed=True)
    settled = run(initial_state(params), replace(inputs, pump_on=True), 900, params)
    assert solids_fraction(settled.mixer) < 0.70
    normal = run(initial_state(params), PlantInputs(feed_flow_sp_m3_h=80), 5, params)
    assert slurry_solids_fraction(normal.feed_density_kg_m3, params.tailings_gs) > 0.72


def test_feed_density_disturbance_walks_and_steps() -> None:
    params = PARAMS
    inputs = PlantInputs(feed_flow_sp_m3_h=80.0, pump_on=True)
    walked = run(initial_state(params), inputs, 600, params)
    assert walked.feed_density_kg_m3 != params.feed_density_kg_m3
    assert abs(walked.feed_density_kg_m3 - params.feed_density_kg_m3) < 200.0
    quiet_params = quiet()
    stepped = run(
        initial_state(quiet_params),
        replace(inputs, feed_density_step_kg_m3=-50.0),
        1,
        quiet_params,
    )
    assert stepped.feed_density_kg_m3 == pytest.approx(quiet_params.feed_density_kg_m3 - 50.0)


# --- mass balance, determinism, invariants ------------------------------------------


def test_mass_balance_closes_per_component_over_a_pour() -> None:
    params = PARAMS
    s0 = initial_state(params)
    inputs = PlantInputs(
        feed_flow_sp_m3_h=80.0,
        binder_sp_t_h=(1.2, 4.4, 0.5),
        water_flow_sp_m3_h=6.0,
        pump_on=True,
    )
    state = run(s0, inputs, 1800, params)
    assert_balance(s0, state)
    assert state.mass_out.cement_kg > 0 and state.mass_out.flyash_kg > 0
    # and across a stop (pump off): nothing leaves, the inflow accumulates
    stopped = run(state, replace(inputs, pump_on=False, feed_flow_sp_m3_h=0.0), 5, params)
    assert stopped.mass_out == state.mass_out
    assert_balance(s0, stopped)


def test_seeded_runs_are_deterministic() -> None:
    def trace(seed: int) -> list[float]:
        rng = random.Random(seed)
        sim = initial_sim_state(SIM)
        cmd = PlcCommands(RECIPE, run_request=True, setpoint_seq=1, heartbeat=0)
        out: list[float] = []
        for i in range(100):
            sim = simulate(sim, replace(cmd, heartbeat=i), SimControls(), 2.0, 0.1, SIM, rng)
            out.extend(outputs(sim.plant, SIM.plant, rng).as_dict().values())
        return out

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)


def test_step_refuses_a_non_positive_dt() -> None:
    with pytest.raises(ValueError, match="dt_s"):
        step(initial_state(PARAMS), PlantInputs(), 0.0, PARAMS, random.Random(0))


inputs_strategy = st.builds(
    PlantInputs,
    feed_flow_sp_m3_h=st.floats(-50.0, 500.0),
    binder_sp_t_h=st.tuples(st.floats(-5, 50), st.floats(-5, 50), st.floats(-5, 50)),
    water_flow_sp_m3_h=st.floats(-10.0, 200.0),
    pump_on=st.booleans(),
    feeder_faults=st.frozensets(st.sampled_from(BINDERS)),
    feed_density_step_kg_m3=st.floats(-1500.0, 1500.0),
    wet_feed=st.booleans(),
    blockage=st.booleans(),
)


@settings(max_examples=80, deadline=None)
@given(
    schedule=st.lists(st.tuples(inputs_strategy, st.floats(0.01, 30.0)), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariants_no_nan_non_negative_masses_balance_closes(
    schedule: list[tuple[PlantInputs, float]], seed: int
) -> None:
    rng = random.Random(seed)
    s0 = initial_state(PARAMS)
    state = s0
    for inputs, dt_s in schedule:
        state = step(state, inputs, dt_s, PARAMS, rng)
        assert all(m >= 0.0 for m in state.mixer.as_tuple())
        assert all(math.isfinite(v) for v in outputs(state, PARAMS, rng).as_dict().values())
        assert all(0.0 <= f.hopper_kg <= PARAMS.hopper_capacity_kg for f in state.feeders)
        # (no upper bound: with the pump off the process lets the mixer overfill; the
        # PLC never feeds with the pump off)
        assert outputs(state, PARAMS, rng).mixer_level_pv >= 0.0
        assert_balance(s0, state)


# --- PLC -------------------------------------------------------------------------------


def scan(
    plc: PlcState,
    cmd: PlcCommands,
    *,
    plant: PlantState | None = None,
    remote: bool = True,
    dt_s: float = 1.0,
    wall_dt_s: float = 0.1,
    params: PlcParams | None = None,
) -> PlcState:
    return plc_scan(
        plc,
        cmd,
        plant or initial_state(PARAMS),
        remote,
        dt_s,
        wall_dt_s,
        params or PlcParams(),
    )


def test_mode_sequence_with_run_request() -> None:
    params = PlcParams(flush_s=5.0)
    plc = PlcState()
    run_cmd = PlcCommands(RECIPE, run_request=True)
    modes = []
    for i in range(8):
        plc = scan(plc, replace(run_cmd, heartbeat=i), params=params)
        modes.append(plc.mode)
    assert modes[0] is PlantMode.FLUSHING
    assert PlantMode.RUNNING in modes
    assert modes.index(PlantMode.RUNNING) == 5  # flush_s plant seconds of water first
    stop_cmd = replace(run_cmd, run_request=False)
    modes = []
    for i in range(8):
        plc = scan(plc, replace(stop_cmd, heartbeat=100 + i), params=params)
        modes.append(plc.mode)
    assert modes[0] is PlantMode.FLUSHING
    assert modes[-1] is PlantMode.STOPPED


def test_flushing_is_water_only_and_stopped_is_nothing() -> None:
    plant = initial_state(PARAMS)
    params = PlcParams()
    flushing = plc_actuators(PlcState(mode=PlantMode.FLUSHING, applied=RECIPE), plant, params)
    assert flushing.feed_flow_sp_m3_h == 0.0
    assert flushing.binder_sp_t_h == (0.0, 0.0, 0.0)
    assert flushing.water_flow_sp_m3_h == params.flush_water_m3_h
    assert flushing.pump_on
    stopped = plc_actuators(PlcState(mode=PlantMode.STOPPED, applied=RECIPE), plant, params)
    assert stopped == PlantInputs()


def test_no_binder_without_proven_tailings_flow() -> None:
    params = PlcParams()
    running = PlcState(mode=PlantMode.RUNNING, applied=RECIPE)
    no_flow = plc_actuators(running, initial_state(PARAMS), params)
    assert no_flow.binder_sp_t_h == (0.0, 0.0, 0.0)
    assert no_flow.feed_flow_sp_m3_h == RECIPE.tailings_flow_m3_h
    flowing = replace(initial_state(PARAMS), feed_flow_m3_h=params.proven_flow_m3_h + 1)
    proven = plc_actuators(running, flowing, params)
    assert proven.binder_sp_t_h == (RECIPE.cement_t_h, RECIPE.slag_t_h, RECIPE.flyash_t_h)
    # and end to end: a zero feed setpoint never lets binder into the mixer
    sim = initial_sim_state(SIM)
    rng = random.Random(0)
    cmd = PlcCommands(replace(RECIPE, tailings_flow_m3_h=0.0), run_request=True)
    for i in range(120):
        sim = simulate(sim, replace(cmd, heartbeat=i), SimControls(), 1.0, 0.1, SIM, rng)
    assert sim.plc.mode is PlantMode.RUNNING
    assert sim.plant.mass_in.cement_kg == 0.0 and sim.plant.mass_in.slag_kg == 0.0


def test_ack_copies_seq_and_setpoints_are_clamped() -> None:
    params = PlcParams()
    wild = Setpoints(1e6, -3.0, 4.0, math.nan, 500.0, 99999.0)
    plc = scan(PlcState(), PlcCommands(wild, setpoint_seq=41))
    assert plc.setpoint_ack == 41
    assert plc.applied == clamp_setpoints(wild, params)
    assert plc.applied.tailings_flow_m3_h == params.max_setpoints.tailings_flow_m3_h
    assert plc.applied.cement_t_h == 0.0
    assert plc.applied.slag_t_h == 4.0
    assert plc.applied.flyash_t_h == 0.0
    assert plc.applied.paste_density_kg_m3 == params.max_setpoints.paste_density_kg_m3


def test_remote_disabled_ignores_the_service() -> None:
    plc = scan(PlcState(), PlcCommands(RECIPE, run_request=True, setpoint_seq=1))
    assert plc.mode is PlantMode.FLUSHING
    changed = PlcCommands(replace(RECIPE, water_m3_h=30.0), run_request=False, setpoint_seq=2)
    local = scan(plc, changed, remote=False)
    assert local.applied == plc.applied  # keeps its own last values
    assert local.setpoint_ack == 1
    assert local.mode is PlantMode.FLUSHING and local.run_latched  # run is the operator's
    assert not local.remote_enabled
    back = scan(local, changed, remote=True)
    assert back.setpoint_ack == 2
    assert back.applied.water_m3_h == 30.0
    assert not back.run_latched


def test_heartbeat_watchdog_trips_to_the_safe_state() -> None:
    params = PlcParams(heartbeat_timeout_s=5.0, flush_s=3.0)
    sim_params = replace(SIM, plc=params)
    sim = initial_sim_state(sim_params)
    rng = random.Random(0)

    def tick(state: SimState, cmd: PlcCommands) -> SimState:
        # one plant second per 0.1 wall second (speed 10)
        return simulate(state, cmd, SimControls(), 1.0, 0.1, sim_params, rng)

    cmd = PlcCommands(RECIPE, run_request=True, setpoint_seq=1)
    for i in range(60):  # healthy: the heartbeat changes every wall second
        sim = tick(sim, replace(cmd, heartbeat=i // 10))
    assert sim.plc.mode is PlantMode.RUNNING and not sim.plc.comms_fault
    assert sim.plant.feeders[1].rate_t_h > 1.0
    frozen = replace(cmd, heartbeat=99)
    for _ in range(50):  # changed once, then 4.9 wall seconds without a change: fine
        sim = tick(sim, frozen)
    assert not sim.plc.comms_fault and sim.plc.mode is PlantMode.RUNNING
    for _ in range(2):
        sim = tick(sim, frozen)
    assert sim.plc.comms_fault
    assert sim.plc.mode is PlantMode.FLUSHING  # run dropped
    assert plc_actuators(sim.plc, sim.plant, params).binder_sp_t_h == (0.0, 0.0, 0.0)
    for _ in range(5):
        sim = tick(sim, frozen)
    assert sim.plc.mode is PlantMode.STOPPED
    # heartbeat back: the fault clears, but no automatic restart ...
    sim = tick(sim, replace(frozen, heartbeat=100))
    assert not sim.plc.comms_fault and sim.plc.mode is PlantMode.STOPPED
    # ... until run_request goes false, then true again
    sim = tick(sim, replace(frozen, heartbeat=101, run_request=False))
    sim = tick(sim, replace(frozen, heartbeat=102))
    assert sim.plc.mode is PlantMode.FLUSHING


def test_watchdog_can_allow_a_restart_and_sleeps_while_stopped() -> None:
    params = PlcParams(heartbeat_timeout_s=1.0, restart_after_comms_fault=True)
    plc = PlcState()
    for _ in range(50):  # stopped, no heartbeat: the watchdog is not armed
        plc = scan(plc, PlcCommands(), wall_dt_s=0.1, params=params)
    assert not plc.comms_fault
    cmd = PlcCommands(RECIPE, run_request=True)
    plc = scan(plc, cmd, params=params)
    assert plc.mode is PlantMode.FLUSHING  # a new run gets a full timeout
    for _ in range(11):
        plc = scan(plc, cmd, wall_dt_s=0.1, params=params)
    assert plc.comms_fault and not plc.run_latched
    plc = scan(plc, replace(cmd, heartbeat=1), params=params)
    assert not plc.comms_fault and plc.run_latched


def test_pressure_trip_goes_to_fault_and_resets_when_run_is_dropped() -> None:
    params = PlcParams()
    high = replace(initial_state(PARAMS), pressure_kpa=params.pressure_trip_kpa + 1)
    low = replace(initial_state(PARAMS), pressure_kpa=params.pressure_reset_kpa - 1)
    running = PlcState(mode=PlantMode.RUNNING, run_latched=True, applied=RECIPE)
    cmd = PlcCommands(RECIPE, run_request=True)
    plc = scan(running, cmd, plant=high)
    assert plc.mode is PlantMode.FAULT
    assert plc_actuators(plc, high, params) == PlantInputs()  # pump off, nothing fed
    plc = scan(plc, cmd, plant=low)
    assert plc.mode is PlantMode.FAULT  # run_request still true: stays in fault
    plc = scan(plc, replace(cmd, run_request=False), plant=low)
    assert plc.mode is PlantMode.STOPPED


def test_blockage_end_to_end_trips_the_pump() -> None:
    sim = initial_sim_state(SIM)
    rng = random.Random(0)
    cmd = PlcCommands(RECIPE, run_request=True)
    modes: set[PlantMode] = set()
    for i in range(400):
        sim = simulate(
            sim, replace(cmd, heartbeat=i), SimControls(blockage=i > 100), 1.0, 0.1, SIM, rng
        )
        modes.add(sim.plc.mode)
    assert PlantMode.RUNNING in modes
    assert sim.plc.mode is PlantMode.FAULT and sim.plc.pressure_trip


def test_measurement_names_are_the_contract_tags() -> None:
    m = outputs(initial_state(PARAMS), PARAMS, random.Random(0))
    assert tuple(m.as_dict()) == MEASUREMENT_TAGS
    assert MEASUREMENT_TAGS[-1] == "barricade_pressure_pv"  # an optional tag


def test_the_newer_effects_are_off_by_default() -> None:
    """Dead times, instrument errors and the Bingham friction stay out of a default run,
    and the diverter stays on the stope side: the plant of before, exactly."""
    assert PARAMS.feed_dead_time_s == PARAMS.paste_dead_time_s == 0.0
    assert PARAMS.friction_model == "linear"
    assert SimControls().instrument_errors == InstrumentErrors()
    assert not SimControls().diverter_stuck
    assert PlcCommands().divert_to_dump is False
    sim = initial_sim_state(SIM)
    rng = random.Random(1)
    cmd = PlcCommands(RECIPE, run_request=True, setpoint_seq=1)
    for i in range(200):
        sim = simulate(sim, replace(cmd, heartbeat=i), SimControls(), 2.0, 0.1, SIM, rng)
    plant = sim.plant
    assert plant.feed_in_transit == () and plant.paste_density_line == ()
    assert plant.feed_density_drift_kg_m3 == plant.paste_density_drift_kg_m3 == 0.0
    assert not plant.diverted_to_dump and plant.stope.dumped.total_kg == 0.0
    assert plant.stope.placed.total_kg == pytest.approx(plant.mass_out.total_kg, rel=1e-12)
    assert plant.stope.placed_water_m3 > 0.0  # the start-up flush


def test_simulate_keeps_the_balance_through_the_whole_sequence() -> None:
    sim: SimState = initial_sim_state(SIM)
    s0 = sim.plant
    rng = random.Random(3)
    cmd = PlcCommands(RECIPE, run_request=True, setpoint_seq=1)
    for i in range(300):
        c = replace(cmd, heartbeat=i, run_request=i < 200)
        sim = simulate(sim, c, SimControls(feeder_faults=frozenset({"cement"})), 1.0, 0.1, SIM, rng)
    assert sim.plc.mode is PlantMode.STOPPED
    assert sim.plant.mass_in.cement_kg == 0.0
    assert_balance(s0, sim.plant)
