"""The control law, stepped with a fake clock (dt_s passed in, nothing sleeps)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.control import massbalance as mb
from service.core.control.law import (
    BAD,
    SETPOINT_TAGS,
    ControlConfig,
    ControlInputs,
    ControlMode,
    ControlOutput,
    ControlState,
    Measurement,
    SetpointLimit,
    Setpoints,
    step,
)
from service.errors import InvalidInput

RECIPE = mb.make_recipe(
    binder_ratio=0.05,
    solids_fraction=0.72,
    tailings_sg=2.8,
    blend={"cement": 0.2, "slag": 0.8},
    binder_sg={"cement": 3.15, "slag": 2.90},
)
RHO_TARGET = mb.paste_density_kg_m3(RECIPE)
FEED_RHO = 1900.0  # Cw 0.737 at Gs 2.8: a little drier than the recipe
FEED_FLOW = 90.0
CONFIG = ControlConfig()


def feed(flow: float = FEED_FLOW, rho: float = FEED_RHO) -> mb.FeedForward:
    ff = mb.feed_forward(
        RECIPE, feed_flow_m3_h=flow, feed_density_kg_m3=rho, paste_flow_request_m3_h=100.0
    )
    assert ff is not None
    return ff


def inputs(**changes: object) -> ControlInputs:
    """Plant at steady state on the recipe: feeders deliver what the FF demands."""
    demand = feed().binder_t_h
    base = ControlInputs(
        recipe=RECIPE,
        paste_flow_request_m3_h=100.0,
        tailings_flow_m3_h=Measurement(FEED_FLOW),
        tailings_density_kg_m3=Measurement(FEED_RHO),
        paste_density_kg_m3=Measurement(RHO_TARGET),
        binder_rates_t_h={n: Measurement(demand[n]) for n in ("cement", "slag")},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def run(
    state: ControlState,
    inp: ControlInputs,
    seconds: float,
    dt_s: float = 1.0,
    config: ControlConfig = CONFIG,
) -> tuple[ControlState, ControlOutput]:
    out: ControlOutput | None = None
    for _ in range(round(seconds / dt_s)):
        state, out = step(state, inp, config, dt_s)
    assert out is not None
    return state, out


def settled() -> tuple[ControlState, ControlOutput]:
    return run(ControlState.initial(), inputs(), 300)


def assert_sane(sp: Setpoints, config: ControlConfig = CONFIG) -> None:
    for tag, value in sp.as_tags().items():
        lim = config.limit(tag)
        assert math.isfinite(value), tag
        assert lim.minimum <= value <= lim.maximum, (tag, value)


# --- feed-forward -----------------------------------------------------------------------


def test_settles_on_the_feed_forward_setpoints() -> None:
    _, out = settled()
    ff = feed()
    sp = out.setpoints
    assert out.mode is ControlMode.ACTIVE
    assert sp.tailings_flow_sp == pytest.approx(ff.tailings_flow_m3_h)
    assert sp.cement_rate_sp == pytest.approx(ff.binder_t_h["cement"])
    assert sp.slag_rate_sp == pytest.approx(ff.binder_t_h["slag"])
    assert sp.flyash_rate_sp == 0.0
    assert sp.water_flow_sp == pytest.approx(ff.water_m3_h)
    assert ff.water_m3_h > 0.0
    assert sp.paste_density_sp == pytest.approx(RHO_TARGET)
    assert out.water_trim_m3_h == 0.0
    assert out.measured_solids_fraction == pytest.approx(0.72)
    assert out.measured_binder_ratio == pytest.approx(0.05)
    assert not out.holding_water and not out.holding_binder
    assert out.stale_inputs == () and out.nonfinite_held == ()


def test_feed_density_step_moves_the_water_at_once_within_the_rate_limit() -> None:
    state, before = settled()
    wetter_target = feed(rho=FEED_RHO * 1.05).water_m3_h
    state, out = step(state, inputs(tailings_density_kg_m3=Measurement(FEED_RHO * 1.05)), CONFIG, 1)
    rate = CONFIG.water_flow_limit.max_rate_per_s
    assert out.setpoints.water_flow_sp == pytest.approx(before.setpoints.water_flow_sp + rate)
    _, out = run(state, inputs(tailings_density_kg_m3=Measurement(FEED_RHO * 1.05)), 60)
    assert out.setpoints.water_flow_sp == pytest.approx(wetter_target)


# --- water trim ---------------------------------------------------------------------------


def test_dense_paste_adds_water_and_wet_paste_removes_it() -> None:
    state, base = settled()
    _, dense = run(state, inputs(paste_density_kg_m3=Measurement(RHO_TARGET + 20)), 10)
    _, wet = run(state, inputs(paste_density_kg_m3=Measurement(RHO_TARGET - 20)), 10)
    assert dense.water_trim_m3_h > 0.0 > wet.water_trim_m3_h
    assert dense.setpoints.water_flow_sp > base.setpoints.water_flow_sp
    assert wet.setpoints.water_flow_sp < base.setpoints.water_flow_sp


def test_integral_keeps_growing_under_a_constant_error_until_the_trim_limit() -> None:
    state, _ = settled()
    inp = inputs(paste_density_kg_m3=Measurement(RHO_TARGET + 60))
    trims = []
    for _ in range(400):
        state, out = step(state, inp, CONFIG, 1.0)
        trims.append(out.water_trim_m3_h)
    assert all(b >= a for a, b in itertools.pairwise(trims))
    limit = min(
        max(CONFIG.water_trim_fraction * feed().water_m3_h, CONFIG.water_trim_min_m3_h),
        CONFIG.water_trim_max_m3_h,
    )
    assert trims[-1] == pytest.approx(limit)
    assert state.water_pi.integral <= limit


def test_trim_waits_for_the_mixer_to_turn_over_after_a_start() -> None:
    inp = inputs(paste_density_kg_m3=Measurement(RHO_TARGET + 20))
    state, out = run(ControlState.initial(), inp, CONFIG.trim_start_delay_s - 1)
    assert out.water_trim_m3_h == 0.0 and out.holding_water
    _, out = run(state, inp, 5)
    assert out.water_trim_m3_h > 0.0 and not out.holding_water


def test_deadband_ignores_small_density_errors() -> None:
    state, _ = settled()
    db = CONFIG.density_deadband_kg_m3
    _, out = run(state, inputs(paste_density_kg_m3=Measurement(RHO_TARGET + 0.9 * db)), 100)
    assert out.water_trim_m3_h == 0.0


def test_error_outside_the_trim_window_holds_the_trim() -> None:
    # Start-up: the mixer is full of flush water, the density is far below target.
    state, _ = settled()
    _, out = run(state, inputs(paste_density_kg_m3=Measurement(1100.0)), 60)
    assert out.water_trim_m3_h == 0.0
    assert out.holding_water


# --- limits ---------------------------------------------------------------------------


def test_every_setpoint_is_clamped_to_its_plant_limits() -> None:
    config = replace(
        CONFIG,
        tailings_flow_limit=SetpointLimit(0.0, 50.0, 100.0),
        slag_rate_limit=SetpointLimit(0.0, 2.0, 100.0),
        water_flow_limit=SetpointLimit(10.0, 11.0, 100.0),
        paste_density_limit=SetpointLimit(1200.0, 1500.0, 100.0),
    )
    _, out = run(ControlState.initial(), inputs(), 60, config=config)
    sp = out.setpoints
    assert sp.tailings_flow_sp == 50.0
    assert sp.slag_rate_sp == 2.0
    assert 10.0 <= sp.water_flow_sp <= 11.0
    assert sp.paste_density_sp == 1500.0


def test_rate_limit_from_the_plcs_current_setpoints() -> None:
    start = Setpoints(paste_density_sp=1500.0)
    state, out = step(ControlState.initial(), inputs(current_setpoints=start), CONFIG, 1.0)
    assert out.setpoints.tailings_flow_sp == CONFIG.tailings_flow_limit.max_rate_per_s
    assert out.setpoints.cement_rate_sp == CONFIG.cement_rate_limit.max_rate_per_s
    assert out.setpoints.paste_density_sp == 1500.0 + CONFIG.paste_density_limit.max_rate_per_s
    # A late step (10 s) moves no more than max_dt_s allows.
    _, late = step(state, inputs(), CONFIG, 10.0)
    moved = late.setpoints.tailings_flow_sp - out.setpoints.tailings_flow_sp
    assert moved == pytest.approx(CONFIG.tailings_flow_limit.max_rate_per_s * CONFIG.max_dt_s)


def test_zero_dt_changes_nothing() -> None:
    state, before = settled()
    _, out = step(state, inputs(tailings_density_kg_m3=Measurement(2000.0)), CONFIG, 0.0)
    assert out.setpoints == before.setpoints


# --- bad data ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e308, -1e308])
def test_non_finite_or_absurd_measurements_never_reach_the_setpoints(bad: float) -> None:
    state, _ = settled()
    inp = inputs(
        tailings_flow_m3_h=Measurement(bad),
        tailings_density_kg_m3=Measurement(bad),
        paste_density_kg_m3=Measurement(bad),
        binder_rates_t_h={"cement": Measurement(bad), "slag": Measurement(bad)},
        paste_flow_request_m3_h=bad,
    )
    for _ in range(20):
        state, out = step(state, inp, CONFIG, 1.0)
        assert_sane(out.setpoints)
        assert math.isfinite(out.water_trim_m3_h)
        assert all(math.isfinite(f) for f in out.binder_factors.values())


def test_a_non_finite_target_holds_the_previous_setpoint_and_says_so() -> None:
    state, before = settled()
    _, out = step(state, inputs(paste_flow_request_m3_h=math.nan), CONFIG, 1.0)
    assert "tailings_flow_sp" in out.nonfinite_held
    assert out.setpoints.tailings_flow_sp == before.setpoints.tailings_flow_sp


def test_bad_paste_density_holds_the_last_good_trim() -> None:
    state, _ = settled()
    state, built = run(state, inputs(paste_density_kg_m3=Measurement(RHO_TARGET + 20)), 30)
    assert built.water_trim_m3_h > 0.0
    for bad in (Measurement(RHO_TARGET + 50, good=False), BAD, Measurement(math.nan)):
        state, out = run(state, inputs(paste_density_kg_m3=bad), 100)
        assert out.water_trim_m3_h == built.water_trim_m3_h
        assert out.setpoints.water_flow_sp == pytest.approx(built.setpoints.water_flow_sp)
        assert out.holding_water
        assert "paste_density_pv" in out.stale_inputs
        assert out.measured_solids_fraction is None


def test_bad_feed_measurements_freeze_the_feed_forward_at_the_last_good_values() -> None:
    state, before = settled()
    inp = inputs(
        tailings_flow_m3_h=Measurement(10.0, good=False),
        tailings_density_kg_m3=Measurement(1500.0, good=False),
        binder_rates_t_h={"cement": Measurement(0.0), "slag": Measurement(0.0)},
    )
    _, out = run(state, inp, 100)
    assert out.setpoints == before.setpoints
    assert {"tailings_flow_pv", "tailings_density_pv"} <= set(out.stale_inputs)
    assert out.holding_water
    assert out.holding_binder == {"cement", "slag"}
    assert out.binder_factors == before.binder_factors
    assert out.measured_binder_ratio is None


def test_no_feed_measurement_ever_holds_everything_but_the_density_target() -> None:
    start = Setpoints(tailings_flow_sp=80.0, water_flow_sp=5.0, paste_density_sp=RHO_TARGET)
    inp = inputs(tailings_flow_m3_h=BAD, tailings_density_kg_m3=BAD, current_setpoints=start)
    _, out = run(ControlState.initial(), inp, 30)
    assert out.feed_forward is None
    assert out.setpoints == start


# --- binder ratio control --------------------------------------------------------------


def test_a_feeder_that_under_delivers_gets_a_bounded_correction() -> None:
    state, _ = settled()
    demand = feed().binder_t_h
    slow = {"cement": Measurement(0.9 * demand["cement"]), "slag": Measurement(demand["slag"])}
    state, out = run(state, inputs(binder_rates_t_h=slow), 60)
    assert out.binder_factors["cement"] > 1.0
    assert out.binder_factors["slag"] == pytest.approx(1.0)
    assert out.setpoints.cement_rate_sp > demand["cement"]
    weak = {"cement": Measurement(0.3 * demand["cement"]), "slag": Measurement(demand["slag"])}
    _, out = run(state, inputs(binder_rates_t_h=weak), 3600)
    assert out.binder_factors["cement"] == CONFIG.binder_factor_max
    assert out.setpoints.cement_rate_sp == pytest.approx(1.2 * demand["cement"])


@pytest.mark.parametrize("flag", ["refilling", "faulted"])
def test_refill_or_fault_holds_the_binder_correction(flag: str) -> None:
    state, _ = settled()
    demand = feed().binder_t_h
    slow = {"cement": Measurement(0.9 * demand["cement"]), "slag": Measurement(demand["slag"])}
    state, built = run(state, inputs(binder_rates_t_h=slow), 60)
    # The loss-in-weight reading is meaningless now (it reads 0 here).
    stuck = {"cement": Measurement(0.0), "slag": Measurement(demand["slag"])}
    _, out = run(state, inputs(binder_rates_t_h=stuck, **{flag: frozenset({"cement"})}), 120)
    assert out.binder_factors["cement"] == built.binder_factors["cement"]
    assert "cement" in out.holding_binder and "slag" not in out.holding_binder
    assert out.setpoints.cement_rate_sp == pytest.approx(built.setpoints.cement_rate_sp)


def test_binder_factor_holds_while_the_demand_ramps() -> None:
    state = ControlState.initial()
    for k in range(1, 30):
        flow = 3.0 * k  # the feed ramps up; the feeders lag (they read 0 here)
        inp = inputs(
            tailings_flow_m3_h=Measurement(flow),
            binder_rates_t_h={"cement": Measurement(0.0), "slag": Measurement(0.0)},
        )
        state, out = step(state, inp, CONFIG, 1.0)
        assert out.binder_factors == {"cement": 1.0, "slag": 1.0}


# --- recipe not reachable ---------------------------------------------------------------


WET_FEED = 1.0 / (0.65 / 2800.0 + 0.35 / 1000.0)  # Cw 0.65 < recipe 0.72


def test_wet_feed_is_unreachable_water_goes_to_minimum_and_nothing_winds_up() -> None:
    state, _ = settled()
    state, built = run(state, inputs(paste_density_kg_m3=Measurement(RHO_TARGET + 20)), 30)
    trim = built.water_trim_m3_h
    integral = state.water_pi.integral
    wet = inputs(
        tailings_density_kg_m3=Measurement(WET_FEED),
        paste_density_kg_m3=Measurement(RHO_TARGET - 80),  # the paste is too wet too
    )
    state, out = run(state, wet, 3600)
    assert out.recipe_unreachable
    assert out.setpoints.water_flow_sp == CONFIG.water_flow_limit.minimum
    assert out.water_trim_m3_h == trim
    assert out.holding_water
    assert state.water_pi.integral == integral
    # The feed recovers (paste on target): the water is back on feed-forward + the old
    # integral within the time the rate limiter needs, not after unwinding an hour of it.
    state, out = run(state, inputs(), 10)
    assert not out.recipe_unreachable
    assert out.setpoints.water_flow_sp == pytest.approx(feed().water_m3_h + integral)


def test_water_saturated_at_minimum_does_not_wind_the_integral_down() -> None:
    # Feed-forward water small, paste too wet: the trim pulls the water to 0 and stops.
    slightly_dry = 1.0 / (0.722 / 2800.0 + 0.278 / 1000.0)
    inp = inputs(
        tailings_density_kg_m3=Measurement(slightly_dry),
        paste_density_kg_m3=Measurement(RHO_TARGET - 30),
    )
    state, out = run(ControlState.initial(), inp, 1800)
    ff_water = out.feed_forward.water_m3_h if out.feed_forward else math.nan
    assert out.setpoints.water_flow_sp == 0.0
    assert not out.recipe_unreachable
    assert state.water_pi.integral >= -ff_water - 0.05 * CONFIG.water_trim_min_m3_h - 1.0


# --- modes and bumpless transfer --------------------------------------------------------


def test_hold_mode_follows_the_plc_and_writes_nothing_new() -> None:
    plc = Setpoints(tailings_flow_sp=70.0, cement_rate_sp=1.0, paste_density_sp=1900.0)
    _, out = run(ControlState.initial(), inputs(pour_running=False, current_setpoints=plc), 10)
    assert out.mode is ControlMode.HOLD
    assert out.setpoints == plc


def test_standby_zeroes_binder_and_water_and_prepares_the_feed() -> None:
    state, _ = settled()
    state, out = step(state, inputs(plant_running=False), CONFIG, 1.0)
    assert out.mode is ControlMode.STANDBY
    sp = out.setpoints
    assert sp.cement_rate_sp == sp.slag_rate_sp == sp.flyash_rate_sp == sp.water_flow_sp == 0.0
    assert sp.tailings_flow_sp == pytest.approx(feed().tailings_flow_m3_h)
    assert sp.paste_density_sp == pytest.approx(RHO_TARGET)


def test_return_to_remote_is_bumpless_and_keeps_the_learned_trims() -> None:
    state, _ = settled()
    state, built = run(state, inputs(paste_density_kg_m3=Measurement(RHO_TARGET + 20)), 30)
    integral = state.water_pi.integral
    assert integral > 0.0
    # Local control: an operator moved the water and the feed on the PLC.
    local = replace(built.setpoints, water_flow_sp=0.0, tailings_flow_sp=40.0)
    state, held = run(state, inputs(remote_enabled=False, current_setpoints=local), 60)
    assert held.mode is ControlMode.HOLD and held.setpoints == local
    state, back = step(state, inputs(current_setpoints=local), CONFIG, 1.0)
    assert back.mode is ControlMode.ACTIVE
    assert back.setpoints.water_flow_sp == CONFIG.water_flow_limit.max_rate_per_s
    assert back.setpoints.tailings_flow_sp == 40.0 + CONFIG.tailings_flow_limit.max_rate_per_s
    # The trim holds its last value until the mixer has turned over, then resumes from
    # the kept integral (paste on target: no P action).
    assert back.water_trim_m3_h == built.water_trim_m3_h and back.holding_water
    _, later = run(state, inputs(), CONFIG.trim_start_delay_s + 5)
    assert later.water_trim_m3_h == pytest.approx(integral)


def test_start_is_bumpless_from_the_plcs_values() -> None:
    plc = Setpoints(tailings_flow_sp=60.0, water_flow_sp=3.0, paste_density_sp=1950.0)
    inp = inputs(current_setpoints=plc)
    _, out = step(ControlState.initial(), inp, CONFIG, 0.5)
    for tag in SETPOINT_TAGS:
        lim = CONFIG.limit(tag)
        assert abs(out.setpoints.as_tags()[tag] - plc.as_tags()[tag]) <= lim.max_rate_per_s * 0.5
    assert out.water_trim_m3_h == 0.0


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("dt", [-1.0, math.nan, math.inf])
def test_bad_time_step_is_invalid_input(dt: float) -> None:
    with pytest.raises(InvalidInput) as err:
        step(ControlState.initial(), inputs(), CONFIG, dt)
    assert err.value.field == "dt_s"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"water_kp": -1.0}, "water_kp"),
        ({"water_flow_limit": SetpointLimit(5.0, 1.0, 1.0)}, "water_flow_limit"),
        ({"cement_rate_limit": SetpointLimit(0.0, 1.0, 0.0)}, "cement_rate_limit"),
        ({"binder_factor_max": 0.9}, "binder_factor_min"),
        ({"max_dt_s": math.nan}, "max_dt_s"),
    ],
)
def test_bad_configuration_is_invalid_input(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        replace(CONFIG, **change)  # type: ignore[arg-type]
    assert err.value.field == field


def test_an_unusable_recipe_is_invalid_input() -> None:
    bad = replace(RECIPE, solids_fraction=math.nan)
    with pytest.raises(InvalidInput):
        step(ControlState.initial(), inputs(recipe=bad), CONFIG, 1.0)


# --- invariants -------------------------------------------------------------------------

any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10.0, 3000.0),
)
measurement = st.builds(Measurement, any_float, st.booleans())


def plausible(lo: float, hi: float) -> st.SearchStrategy[Measurement]:
    return st.builds(Measurement, st.floats(lo, hi))


step_inputs = st.fixed_dictionaries(
    {
        "paste_flow_request_m3_h": any_float,
        "tailings_flow_m3_h": measurement,
        "tailings_density_kg_m3": st.one_of(measurement, plausible(1000.0, 2800.0)),
        "paste_density_kg_m3": st.one_of(measurement, plausible(1500.0, 2300.0)),
        "binder_rates_t_h": st.fixed_dictionaries({"cement": measurement, "slag": measurement}),
        "refilling": st.frozensets(st.sampled_from(["cement", "slag"])),
        "faulted": st.frozensets(st.sampled_from(["cement", "slag"])),
        "pour_running": st.booleans(),
        "remote_enabled": st.booleans(),
        "plant_running": st.booleans(),
        "current_setpoints": st.one_of(
            st.none(), st.builds(Setpoints, any_float, any_float, any_float, any_float, any_float)
        ),
    }
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(step_inputs, st.floats(0.0, 20.0)), min_size=1, max_size=25))
def test_setpoints_always_finite_within_limits_and_rate_limited(
    steps: list[tuple[dict[str, object], float]],
) -> None:
    state = ControlState.initial()
    previous: ControlOutput | None = None
    for changes, dt in steps:
        state, out = step(state, inputs(**changes), CONFIG, dt)
        assert_sane(out.setpoints)
        assert math.isfinite(out.water_trim_m3_h)
        assert all(
            CONFIG.binder_factor_min <= f <= CONFIG.binder_factor_max
            for f in out.binder_factors.values()
        )
        if previous is not None and previous.mode is out.mode is ControlMode.ACTIVE:
            for tag in SETPOINT_TAGS:
                limit = CONFIG.limit(tag).max_rate_per_s * min(dt, CONFIG.max_dt_s)
                delta = out.setpoints.as_tags()[tag] - previous.setpoints.as_tags()[tag]
                assert abs(delta) <= limit + 1e-9, (tag, delta, limit)
        previous = out
