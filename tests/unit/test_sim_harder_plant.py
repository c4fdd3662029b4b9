"""The simulator's harder plant: transport dead times, instrument calibration errors,
the true tailings Gs, and the Bingham-plastic pipe friction."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.simulator.dynamics import (
    Components,
    InstrumentErrors,
    PlantInputs,
    PlantParams,
    PlantState,
    _pipeline_pressure_kpa,
    bingham_wall_shear_stress_pa,
    delivery_residual,
    feed_in_transit,
    initial_state,
    mass_balance_residual,
    mix_density_kg_m3,
    outputs,
    paste_yield_stress_pa,
    slurry_solids_fraction,
    step,
)

FEED_ONLY = PlantInputs(feed_flow_sp_m3_h=80.0, pump_on=True)
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


def trace(
    params: PlantParams, schedule: list[tuple[PlantInputs, int]], dt_s: float = 0.5
) -> list[PlantState]:
    """The state after every step of ``dt_s``, for (inputs, number of steps) in turn."""
    state = initial_state(params)
    rng = random.Random(0)
    states = []
    for inputs, steps in schedule:
        for _ in range(steps):
            state = step(state, inputs, dt_s, params, rng)
            states.append(state)
    return states


def assert_closed(initial: PlantState, state: PlantState) -> None:
    scale = max(1.0, state.mass_in.total_kg + initial.mixer.total_kg)
    for residue in mass_balance_residual(initial, state).as_tuple():
        assert abs(residue) <= 1e-9 * scale
    for residue in delivery_residual(initial, state).as_tuple():
        assert abs(residue) <= 1e-9 * scale


# --- transport dead times -------------------------------------------------------------


def test_feed_dead_time_delays_what_reaches_the_mixer_by_exactly_that_time() -> None:
    dead_s, dt_s = 20.0, 0.5
    lag = round(dead_s / dt_s)
    schedule = [(PlantInputs(pump_on=True), 10), (FEED_ONLY, 200), (PlantInputs(pump_on=True), 100)]
    plain = trace(quiet(), schedule)
    delayed = trace(quiet(feed_dead_time_s=dead_s), schedule)
    # The meters see the same feed at once ...
    assert [s.feed_flow_m3_h for s in delayed] == [s.feed_flow_m3_h for s in plain]
    # ... the mixer gets it dead_s later, every packet, nothing lost.
    for k in range(len(plain)):
        if k < lag:
            assert delayed[k].mass_in.tailings_kg == 0.0
        else:
            assert delayed[k].mass_in.tailings_kg == pytest.approx(
                plain[k - lag].mass_in.tailings_kg, rel=1e-12, abs=1e-9
            )
        in_pipe = feed_in_transit(delayed[k])
        assert in_pipe.tailings_kg + delayed[k].mass_in.tailings_kg == pytest.approx(
            plain[k].mass_in.tailings_kg, rel=1e-12, abs=1e-9
        )
    assert plain[10].mass_in.tailings_kg > 0.0
    assert len(delayed[-1].feed_in_transit) <= lag + 1  # the pipe holds dead_s of feed
    assert_closed(initial_state(quiet()), delayed[-1])


def test_paste_dead_time_delays_the_density_gauge_by_exactly_that_time() -> None:
    dead_s, dt_s = 15.0, 0.5
    lag = round(dead_s / dt_s)
    schedule = [(PASTE, 240), (replace(PASTE, water_flow_sp_m3_h=25.0), 240)]
    plain = trace(quiet(density_gauge_tau_s=0.0), schedule)
    delayed = trace(quiet(density_gauge_tau_s=0.0, paste_dead_time_s=dead_s), schedule)
    # the mixer is the same plant; only the gauge sees it later
    assert [s.mixer for s in delayed] == [s.mixer for s in plain]
    rho_0 = mix_density_kg_m3(initial_state(quiet()).mixer, quiet())
    for k in range(len(plain)):
        expected = plain[k - lag].density_gauge_kg_m3 if k >= lag else rho_0
        assert delayed[k].density_gauge_kg_m3 == expected
    assert len(delayed[-1].paste_density_line) <= lag + 2  # the line stays short


def test_dead_times_changed_at_run_time_lose_nothing_and_keep_the_order() -> None:
    state = initial_state(quiet(feed_dead_time_s=60.0))
    s0 = state
    rng = random.Random(0)
    for dead in (60.0, 5.0, 120.0, 0.0):
        params = quiet(feed_dead_time_s=dead, paste_dead_time_s=dead)
        for _ in range(100):
            state = step(state, PASTE, 0.5, params, rng)
            arrivals = [t for t, _ in state.feed_in_transit]
            assert arrivals == sorted(arrivals)
            assert_closed(s0, state)
    params = quiet()
    for _ in range(300):  # feed off, dead time 0: the pipe empties into the mixer
        state = step(state, PlantInputs(pump_on=True), 0.5, params, rng)
    assert state.feed_in_transit == ()
    assert_closed(s0, state)


# --- instrument errors ----------------------------------------------------------------


def settle(params: PlantParams, inputs: PlantInputs, seconds: float = 120.0) -> PlantState:
    return trace(params, [(inputs, round(seconds))], dt_s=1.0)[-1]


@pytest.mark.parametrize("bias_pct", [5.0, -4.0])
def test_binder_scale_bias_reads_the_setpoint_while_delivering_less_or_more(
    bias_pct: float,
) -> None:
    params = quiet(hopper_refill_at_kg=0.0, hopper_capacity_kg=1e9)  # no refills
    errors = InstrumentErrors(slag_scale_bias_pct=bias_pct)
    state = settle(params, replace(PASTE, instrument_errors=errors))
    slag = state.feeders[1]
    assert slag.measured_t_h == pytest.approx(4.4, rel=1e-6)  # the PV: the setpoint
    assert slag.rate_t_h == pytest.approx(4.4 / (1 + bias_pct / 100), rel=1e-6)
    m = outputs(state, params, random.Random(0))
    assert m.slag_rate_pv == slag.measured_t_h
    assert m.cement_rate_pv == pytest.approx(1.2, rel=1e-6)  # the others are calibrated
    assert state.feeders[0].rate_t_h == pytest.approx(1.2, rel=1e-6)
    # what reached the mixer is the true rate
    later = trace(params, [(replace(PASTE, instrument_errors=errors), 180)], dt_s=1.0)
    delivered_t_h = (later[-1].mass_in.slag_kg - later[-61].mass_in.slag_kg) / 1000.0 * 60.0
    assert delivered_t_h == pytest.approx(slag.rate_t_h, rel=1e-4)


def test_feed_flow_meter_bias_is_hidden_by_the_feed_loop_paste_meter_bias_is_not() -> None:
    params = quiet()
    errors = InstrumentErrors(feed_flow_bias_pct=3.0, paste_flow_bias_pct=-2.0)
    state = settle(params, replace(PASTE, instrument_errors=errors), 900.0)
    m = outputs(state, params, random.Random(0))
    assert m.tailings_flow_pv == pytest.approx(80.0, rel=1e-6)
    assert state.feed_flow_m3_h == pytest.approx(80.0 / 1.03, rel=1e-6)
    assert m.paste_flow_pv == pytest.approx(state.paste_flow_m3_h * 0.98, rel=1e-12)


def test_density_gauge_bias_and_drift() -> None:
    params = quiet()
    errors = InstrumentErrors(
        feed_density_bias_kg_m3=-12.0,
        paste_density_bias_kg_m3=8.0,
        paste_density_drift_kg_m3_h=3.0,
    )
    state = initial_state(params)
    rng = random.Random(0)
    idle = PlantInputs(instrument_errors=errors)
    for _ in range(120):  # two plant hours, in 60-s steps
        state = step(state, idle, 60.0, params, rng)
    m = outputs(state, params, rng)
    assert m.tailings_density_pv == pytest.approx(state.feed_density_kg_m3 - 12.0, abs=1e-9)
    assert m.paste_density_pv == pytest.approx(state.density_gauge_kg_m3 + 8.0 + 6.0, abs=1e-6)
    assert state.feed_density_drift_kg_m3 == 0.0
    # a zero rate recalibrates the drift, the bias stays
    state = step(
        state,
        replace(idle, instrument_errors=replace(errors, paste_density_drift_kg_m3_h=0.0)),
        1.0,
        params,
        rng,
    )
    assert outputs(state, params, rng).paste_density_pv == pytest.approx(
        state.density_gauge_kg_m3 + 8.0, abs=1e-9
    )


def test_errors_only_change_the_readings_and_the_loops_that_hold_them() -> None:
    params = quiet()
    errors = InstrumentErrors(
        feed_density_bias_kg_m3=20.0,
        feed_density_drift_kg_m3_h=5.0,
        paste_density_bias_kg_m3=-15.0,
        paste_flow_bias_pct=4.0,
    )
    calibrated = settle(params, PASTE, 300.0)
    biased = settle(params, replace(PASTE, instrument_errors=errors), 300.0)
    assert biased.mixer == calibrated.mixer
    assert biased.density_gauge_kg_m3 == calibrated.density_gauge_kg_m3


# --- the true tailings Gs ---------------------------------------------------------------


def test_true_gs_sets_the_feed_solids_at_the_same_measured_density() -> None:
    state = initial_state(quiet())
    rng = random.Random(0)
    for _ in range(60):
        state = step(state, FEED_ONLY, 1.0, quiet(), rng)
    solids_28 = state.mass_in.tailings_kg
    heavier = quiet(tailings_gs=3.1)  # set at run time: the next steps use it
    before = state
    for _ in range(60):
        state = step(state, FEED_ONLY, 1.0, heavier, rng)
    solids_31 = state.mass_in.tailings_kg - before.mass_in.tailings_kg
    for _ in range(60):
        before = state
        state = step(state, FEED_ONLY, 1.0, quiet(), rng)
    solids_28_again = state.mass_in.tailings_kg - before.mass_in.tailings_kg
    assert outputs(state, quiet(), rng).tailings_density_pv == 1900.0  # the gauge is the same
    ratio = slurry_solids_fraction(1900.0, 3.1) / slurry_solids_fraction(1900.0, 2.8)
    assert solids_31 / (solids_28_again * 60) == pytest.approx(ratio, rel=1e-6)
    assert ratio < 0.98  # denser solids: less of them in the same slurry density
    assert solids_28 > 0.0


# --- Bingham friction -------------------------------------------------------------------


def test_default_friction_model_is_the_linear_one() -> None:
    params = PlantParams()
    assert params.friction_model == "linear"
    mix = Components(tailings_kg=750.0, water_kg=250.0)
    static = mix_density_kg_m3(mix, params) * 9.81 * params.static_head_m / 1000.0
    assert _pipeline_pressure_kpa(100.0, mix, params) == pytest.approx(static + 3000.0, rel=1e-12)


def test_bingham_defaults_match_the_linear_design_point() -> None:
    params = replace(PlantParams(), friction_model="bingham")
    mix = Components(tailings_kg=750.0, water_kg=250.0)  # the reference Cw, 0.75
    linear = _pipeline_pressure_kpa(100.0, mix, PlantParams())
    assert _pipeline_pressure_kpa(100.0, mix, params) == pytest.approx(linear, rel=0.02)


@settings(max_examples=200, deadline=None)
@given(
    velocity=st.floats(0.0, 5.0),
    tau_y=st.floats(0.0, 2000.0),
    mu=st.floats(1e-3, 5.0),
    diameter=st.floats(0.05, 0.5),
)
def test_bingham_wall_stress_solves_buckingham_reiner(
    velocity: float, tau_y: float, mu: float, diameter: float
) -> None:
    tau_w = bingham_wall_shear_stress_pa(velocity, diameter, tau_y, mu)
    shear_rate = 8.0 * velocity / diameter
    assert tau_y <= tau_w <= 4.0 / 3.0 * tau_y + mu * shear_rate + 1e-9
    if tau_w > 0.0:
        phi = tau_y / tau_w
        predicted = tau_w / mu * (1 - 4.0 / 3.0 * phi + phi**4 / 3.0)
        assert predicted == pytest.approx(shear_rate, rel=1e-6, abs=1e-6 * (tau_y / mu + 1e-9))


def test_bingham_wall_stress_tends_to_the_yield_stress_as_flow_falls() -> None:
    stresses = [bingham_wall_shear_stress_pa(v, 0.15, 100.0, 0.3) for v in (1.0, 0.1, 1e-3, 1e-6)]
    assert all(b < a for a, b in itertools.pairwise(stresses))
    assert stresses[-1] == pytest.approx(100.0, rel=1e-3)
    assert stresses[-1] > 100.0
    # and the line keeps a non-zero friction at a trickle
    params = replace(PlantParams(), friction_model="bingham")
    mix = Components(tailings_kg=750.0, water_kg=250.0)
    static = mix_density_kg_m3(mix, params) * 9.81 * params.static_head_m / 1000.0
    trickle = _pipeline_pressure_kpa(0.01, mix, params) - static
    yield_kpa = 4.0 * params.pipe_length_m * paste_yield_stress_pa(0.75, params) / 0.15 / 1000.0
    assert trickle == pytest.approx(yield_kpa, rel=0.01)
    assert trickle > 1000.0


@settings(max_examples=100, deadline=None)
@given(
    flow=st.floats(0.0, 200.0),
    more_flow=st.floats(1.0, 100.0),
    cw=st.floats(0.0, 0.85),
    more_cw=st.floats(0.005, 0.1),
)
def test_bingham_pressure_is_monotone_in_flow_and_solids(
    flow: float, more_flow: float, cw: float, more_cw: float
) -> None:
    params = replace(PlantParams(), friction_model="bingham")

    def mix(c: float) -> Components:
        return Components(tailings_kg=1000.0 * c, water_kg=1000.0 * (1 - c))

    p = _pipeline_pressure_kpa(flow, mix(cw), params)
    assert _pipeline_pressure_kpa(flow + more_flow, mix(cw), params) > p
    assert _pipeline_pressure_kpa(flow, mix(cw + more_cw), params) > p


def test_a_bingham_plant_runs_at_a_plausible_pressure() -> None:
    params = quiet(friction_model="bingham")
    state = settle(params, PASTE, 600.0)
    assert 1500.0 < state.pressure_kpa < 6000.0
    assert math.isfinite(outputs(state, params, random.Random(0)).pump_pressure_pv)


# --- all of it at once ------------------------------------------------------------------

hard_inputs = st.builds(
    PlantInputs,
    feed_flow_sp_m3_h=st.floats(0.0, 150.0),
    binder_sp_t_h=st.tuples(st.floats(0, 10), st.floats(0, 10), st.floats(0, 5)),
    water_flow_sp_m3_h=st.floats(0.0, 40.0),
    pump_on=st.booleans(),
    divert_to_dump=st.booleans(),
    flushing=st.booleans(),
    instrument_errors=st.builds(
        InstrumentErrors,
        cement_scale_bias_pct=st.floats(-49.0, 49.0),
        feed_flow_bias_pct=st.floats(-49.0, 49.0),
        paste_flow_bias_pct=st.floats(-49.0, 49.0),
        paste_density_drift_kg_m3_h=st.floats(-50.0, 50.0),
    ),
)


@settings(max_examples=40, deadline=None)
@given(
    schedule=st.lists(
        st.tuples(hard_inputs, st.floats(0.01, 120.0), st.floats(0.0, 60.0), st.floats(0.0, 60.0)),
        min_size=1,
        max_size=8,
    ),
    bingham=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_harder_plant_keeps_the_invariants(
    schedule: list[tuple[PlantInputs, float, float, float]], bingham: bool, seed: int
) -> None:
    base = replace(PlantParams(), friction_model="bingham" if bingham else "linear")
    rng = random.Random(seed)
    s0 = initial_state(base)
    state = s0
    for inputs, dt_s, feed_dead, paste_dead in schedule:
        params = replace(base, feed_dead_time_s=feed_dead, paste_dead_time_s=paste_dead)
        state = step(state, inputs, dt_s, params, rng)
        assert all(m >= 0.0 for m in state.mixer.as_tuple())
        assert all(math.isfinite(v) for v in outputs(state, params, rng).as_dict().values())
        assert_closed(s0, state)
