"""The dynamics a plant profile adds: the feed's solids band and its random level steps,
noise on the flow readings, a feeder's bias and the water meter's bias."""

from __future__ import annotations

import copy
import itertools
import math
import random
import statistics
from dataclasses import replace

import pytest

from service.simulator.dynamics import (
    InstrumentErrors,
    PlantInputs,
    PlantParams,
    PlantState,
    initial_state,
    outputs,
    slurry_density_kg_m3,
    step,
)

FEED = PlantInputs(feed_flow_sp_m3_h=80.0, pump_on=True)
PASTE = PlantInputs(
    feed_flow_sp_m3_h=80.0, binder_sp_t_h=(1.2, 4.4, 0.3), water_flow_sp_m3_h=6.0, pump_on=True
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
    params: PlantParams, inputs: PlantInputs, steps: int, seed: int = 0, dt_s: float = 1.0
) -> list[PlantState]:
    state = initial_state(params)
    rng = random.Random(seed)
    states = []
    for _ in range(steps):
        state = step(state, inputs, dt_s, params, rng)
        states.append(state)
    return states


# --- the feed's band and its level steps ------------------------------------------------


def test_the_feeds_own_variation_stays_in_its_band() -> None:
    # A walk strong enough to leave a narrow band many times in two plant hours.
    low, high = slurry_density_kg_m3(0.72, 2.8), slurry_density_kg_m3(0.75, 2.8)
    params = replace(
        quiet(),
        feed_density_walk_kg_m3_sqrt_s=10.0,
        feed_density_min_kg_m3=low,
        feed_density_max_kg_m3=high,
    )
    densities = [s.feed_density_kg_m3 for s in run(params, FEED, 7200)]
    assert min(densities) >= low and max(densities) <= high
    # It reached both edges, and left them again (the walk does not stick behind them).
    assert min(densities) == pytest.approx(low) and max(densities) == pytest.approx(high)
    at_edge = sum(1 for d in densities if d in (low, high))
    assert 0 < at_edge < len(densities) / 2
    # Without the band the same walk goes far beyond it.
    wide = replace(params, feed_density_min_kg_m3=1000.0, feed_density_max_kg_m3=2800.0)
    free = [s.feed_density_kg_m3 for s in run(wide, FEED, 7200)]
    assert min(free) < low - 20.0 or max(free) > high + 20.0


def test_a_control_panel_step_and_the_wet_feed_go_beyond_the_band() -> None:
    params = quiet()
    stepped = run(params, replace(FEED, feed_density_step_kg_m3=-150.0), 5)[-1]
    assert stepped.feed_density_kg_m3 == pytest.approx(1750.0)
    assert stepped.feed_density_kg_m3 < params.feed_density_min_kg_m3
    wet = run(params, replace(FEED, wet_feed=True), 5)[-1]
    assert wet.feed_density_kg_m3 == pytest.approx(1900.0 - params.wet_feed_drop_kg_m3)


def test_random_level_steps_come_at_their_rate_in_their_size_inside_the_band() -> None:
    size, interval = 30.0, 60.0
    params = replace(quiet(), feed_step_kg_m3=size, feed_step_interval_s=interval)
    hours = 4
    states = run(params, FEED, hours * 3600)
    levels = [s.feed_density_level_kg_m3 for s in states]
    changes = [b - a for a, b in itertools.pairwise(levels) if b != a]
    expected = hours * 3600 / interval  # Poisson: 240, sd about 15.5
    assert abs(len(changes) - expected) < 4 * math.sqrt(expected)
    low, high = params.feed_density_min_kg_m3, params.feed_density_max_kg_m3
    for change in changes:
        # A full step, or a shorter one where the band's edge cut it.
        assert abs(change) <= size + 1e-9
    assert sum(1 for c in changes if abs(abs(c) - size) < 1e-9) > 0.8 * len(changes)
    densities = [s.feed_density_kg_m3 for s in states]
    assert min(densities) >= low - 1e-9 and max(densities) <= high + 1e-9
    # Both ways.
    assert any(c > 0 for c in changes) and any(c < 0 for c in changes)


def test_no_level_steps_by_default() -> None:
    states = run(PlantParams(), FEED, 3600, seed=3)
    assert all(s.feed_density_level_kg_m3 == 0.0 for s in states)


# --- flow reading noise -------------------------------------------------------------------


def test_flow_readings_carry_their_noise_and_none_by_default() -> None:
    params = quiet(
        feed_flow_noise_pct=1.0,
        paste_flow_noise_pct=0.5,
        water_flow_noise_pct=2.0,
        binder_scale_noise_pct=3.0,
    )
    state = run(params, PASTE, 300)[-1]
    rng = random.Random(5)
    exact = outputs(state, quiet(), rng)
    samples = [outputs(state, params, rng) for _ in range(4000)]
    for tag, pct in (
        ("tailings_flow_pv", 1.0),
        ("paste_flow_pv", 0.5),
        ("water_flow_pv", 2.0),
        ("cement_rate_pv", 3.0),
        ("slag_rate_pv", 3.0),
    ):
        true = getattr(exact, tag)
        relative = [getattr(m, tag) / true - 1.0 for m in samples]
        assert statistics.fmean(relative) == pytest.approx(0.0, abs=4 * pct / 100 / 60)
        assert statistics.stdev(relative) == pytest.approx(pct / 100, rel=0.06), tag
    # The default plant's flow readings are exact.
    assert outputs(state, PlantParams(), rng).tailings_flow_pv == state.feed_flow_m3_h


def test_a_plant_without_flow_noise_keeps_its_random_sequence() -> None:
    """Flow noise of 0 draws nothing: the default plant's seeded runs are unchanged."""
    state = run(PlantParams(), PASTE, 60)[-1]
    rng = random.Random(11)
    mirror = copy.deepcopy(rng)
    outputs(state, PlantParams(), rng)
    for _ in range(3):  # the two density gauges and the pressure transmitter
        mirror.gauss(0.0, 1.0)
    assert rng.getstate() == mirror.getstate()


def test_a_scale_held_through_a_hopper_refill_carries_no_noise() -> None:
    params = quiet(binder_scale_noise_pct=5.0)
    states = run(params, PASTE, 600)
    refilling = next(s for s in states if s.feeders[1].refilling)
    rng = random.Random(2)
    readings = {outputs(refilling, params, rng).slag_rate_pv for _ in range(20)}
    assert readings == {refilling.feeders[1].measured_t_h}


# --- a feeder's bias, the water meter's bias ------------------------------------------------


def test_a_feeder_bias_delivers_off_its_setpoint_and_the_scale_shows_it() -> None:
    params = quiet(feeder_bias_pct=(-7.0, 0.0, 0.0))
    state = run(params, PASTE, 120)[-1]
    read = outputs(state, params, random.Random(0))
    assert state.feeders[0].rate_t_h == pytest.approx(1.2 * 0.93, rel=1e-6)
    assert read.cement_rate_pv == pytest.approx(1.2 * 0.93, rel=1e-6)  # the scale reads true
    assert state.feeders[1].rate_t_h == pytest.approx(4.4, rel=1e-6)
    # A scale's bias instead: the reading stays at the setpoint, the delivery does not.
    high_scale = replace(PASTE, instrument_errors=InstrumentErrors(cement_scale_bias_pct=7.0))
    scale = run(quiet(), high_scale, 120)[-1]
    assert outputs(scale, quiet(), random.Random(0)).cement_rate_pv == pytest.approx(1.2)
    assert scale.feeders[0].rate_t_h == pytest.approx(1.2 / 1.07, rel=1e-6)


def test_a_water_meter_bias_is_held_at_the_setpoint_and_delivers_off_it() -> None:
    errors = InstrumentErrors(water_flow_bias_pct=5.0)
    params = quiet()
    state = run(params, replace(PASTE, instrument_errors=errors), 120)[-1]
    assert state.water_flow_m3_h == pytest.approx(6.0 / 1.05, rel=1e-6)
    assert outputs(state, params, random.Random(0)).water_flow_pv == pytest.approx(6.0, rel=1e-6)
    # The water the mixer got is the true flow, not the reading.
    plain = run(params, PASTE, 120)[-1]
    assert state.mass_in.water_kg < plain.mass_in.water_kg
