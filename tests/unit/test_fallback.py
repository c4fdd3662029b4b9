"""A dead gauge is not a last value: the fallback state machine and binder on paste flow."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.control import massbalance as mb
from service.core.control.alarms import Severity
from service.core.control.fallback import (
    ALARM_HOLDING,
    ALARM_PASTE_FLOW_RATIO,
    ALARM_PAUSE,
    FallbackConfig,
    FallbackDecision,
    FallbackMode,
    FallbackState,
    GaugeHealth,
    fallback_step,
    paste_flow_binder,
    resume_fallback,
)
from service.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GOOD = GaugeHealth(feed_flow=True, feed_density=True, paste_flow=True, paste_density=True)
FEED_FLOW_DEAD = GaugeHealth(
    feed_flow=False, feed_density=True, paste_flow=True, paste_density=True
)
FEED_DENSITY_DEAD = GaugeHealth(
    feed_flow=True, feed_density=False, paste_flow=True, paste_density=True
)
FEED_AND_PASTE_FLOW_DEAD = GaugeHealth(
    feed_flow=False, feed_density=True, paste_flow=False, paste_density=True
)
ONLY_PASTE_FLOW_DEAD = GaugeHealth(
    feed_flow=True, feed_density=True, paste_flow=False, paste_density=True
)
CONFIG = FallbackConfig(hold_s=60.0, recover_s=10.0)


def run(
    state: FallbackState, health: GaugeHealth, start_s: float, end_s: float, step_s: float = 1.0
) -> tuple[FallbackState, list[tuple[float, FallbackDecision]]]:
    """Step the machine once a second over [start_s, end_s] with the same health."""
    decisions = []
    t = start_s
    while t <= end_s + 1e-9:
        state, decision = fallback_step(state, health, T0 + timedelta(seconds=t), CONFIG)
        decisions.append((t, decision))
        t += step_s
    return state, decisions


def normal_for(seconds: float) -> FallbackState:
    state, decisions = run(FallbackState.initial(), GOOD, 0.0, seconds)
    assert all(d.mode is FallbackMode.NORMAL and d.alarm_code is None for _, d in decisions)
    return state


def test_good_gauges_stay_normal() -> None:
    state = normal_for(100.0)
    assert state.feed_last_good_at == T0 + timedelta(seconds=100)
    assert state.mode is FallbackMode.NORMAL


@pytest.mark.parametrize("health", [FEED_FLOW_DEAD, FEED_DENSITY_DEAD])
def test_a_dead_feed_gauge_holds_then_falls_back_to_the_paste_flow(health: GaugeHealth) -> None:
    state = normal_for(100.0)  # last good at 100 s
    state, decisions = run(state, health, 101.0, 200.0)
    modes = {t: d for t, d in decisions}
    first = modes[101.0]
    assert first.mode is FallbackMode.HOLDING and first.held == "feed" and first.changed
    assert first.hold_left_s == pytest.approx(59.0)
    assert first.alarm_code == ALARM_HOLDING and first.severity is Severity.MEDIUM
    dead = "tailings_flow_pv" if not health.feed_flow else "tailings_density_pv"
    assert dead in first.reason
    assert modes[159.0].mode is FallbackMode.HOLDING
    assert modes[159.0].hold_left_s == pytest.approx(1.0)
    assert not modes[159.0].changed
    # 60 s after the last good reading the hold is over.
    assert modes[160.0].mode is FallbackMode.PASTE_FLOW_RATIO and modes[160.0].changed
    assert modes[160.0].alarm_code == ALARM_PASTE_FLOW_RATIO
    assert modes[160.0].hold_left_s is None
    assert modes[200.0].mode is FallbackMode.PASTE_FLOW_RATIO
    assert modes[200.0].use_paste_density


def test_without_a_good_paste_flow_the_pour_pauses_with_a_high_alarm() -> None:
    state = normal_for(10.0)
    state, decisions = run(state, FEED_AND_PASTE_FLOW_DEAD, 11.0, 100.0)
    modes = {t: d for t, d in decisions}
    assert modes[69.0].mode is FallbackMode.HOLDING and modes[69.0].held == "feed"
    pause = modes[70.0]
    assert pause.mode is FallbackMode.PAUSE and pause.pause
    assert pause.alarm_code == ALARM_PAUSE and pause.severity is Severity.HIGH
    assert "paused" in pause.reason and "paste flow" in pause.reason
    assert modes[100.0].pause and not modes[100.0].changed


def test_no_good_feed_reading_yet_means_nothing_to_hold() -> None:
    _, decision = fallback_step(FallbackState.initial(), FEED_FLOW_DEAD, T0, CONFIG)
    assert decision.mode is FallbackMode.PASTE_FLOW_RATIO
    _, decision = fallback_step(FallbackState.initial(), FEED_AND_PASTE_FLOW_DEAD, T0, CONFIG)
    assert decision.pause


def test_the_feed_recovers_from_holding_at_once() -> None:
    state = normal_for(10.0)
    state, _ = run(state, FEED_DENSITY_DEAD, 11.0, 40.0)
    state, decision = fallback_step(state, GOOD, T0 + timedelta(seconds=41), CONFIG)
    assert decision.mode is FallbackMode.NORMAL and decision.changed
    assert decision.alarm_code is None and decision.reason == ""
    # A new failure holds for the whole hold time again, from the new last good reading.
    state, decision = fallback_step(state, FEED_DENSITY_DEAD, T0 + timedelta(seconds=42), CONFIG)
    assert decision.mode is FallbackMode.HOLDING
    assert decision.hold_left_s == pytest.approx(59.0)


def test_the_feed_recovers_from_the_paste_flow_after_it_stays_good() -> None:
    state = normal_for(10.0)
    state, _ = run(state, FEED_FLOW_DEAD, 11.0, 100.0)
    assert state.mode is FallbackMode.PASTE_FLOW_RATIO
    state, decisions = run(state, GOOD, 101.0, 115.0)
    modes = {t: d for t, d in decisions}
    assert modes[101.0].mode is FallbackMode.PASTE_FLOW_RATIO  # good for 0 s
    assert "returns to the feed" in modes[105.0].reason
    assert modes[110.0].mode is FallbackMode.PASTE_FLOW_RATIO  # good for 9 s
    assert modes[111.0].mode is FallbackMode.NORMAL and modes[111.0].changed  # 10 s
    assert modes[115.0].mode is FallbackMode.NORMAL


def test_a_flickering_feed_gauge_does_not_bounce_the_binder() -> None:
    state = normal_for(10.0)
    state, _ = run(state, FEED_FLOW_DEAD, 11.0, 100.0)
    for t in range(101, 161):
        health = GOOD if t % 5 else FEED_FLOW_DEAD  # bad one cycle in five
        state, decision = fallback_step(state, health, T0 + timedelta(seconds=t), CONFIG)
        # Good readings in between never last 10 s, and a bad one goes straight back to
        # the paste flow (no new hold on a flickering gauge).
        assert decision.mode is FallbackMode.PASTE_FLOW_RATIO


def test_a_dead_paste_flow_in_ratio_mode_holds_then_pauses() -> None:
    state = normal_for(10.0)
    state, _ = run(state, FEED_FLOW_DEAD, 11.0, 100.0)  # paste-flow ratio since 70 s
    state, decisions = run(state, FEED_AND_PASTE_FLOW_DEAD, 101.0, 170.0)
    modes = {t: d for t, d in decisions}
    assert modes[101.0].mode is FallbackMode.HOLDING and modes[101.0].held == "paste_flow"
    assert modes[101.0].hold_left_s == pytest.approx(59.0)
    assert modes[101.0].changed
    assert modes[159.0].mode is FallbackMode.HOLDING
    assert modes[160.0].pause


def test_the_feed_takes_over_at_once_when_the_paste_flow_dies() -> None:
    state = normal_for(10.0)
    state, _ = run(state, FEED_FLOW_DEAD, 11.0, 100.0)
    state, decision = fallback_step(
        state, ONLY_PASTE_FLOW_DEAD, T0 + timedelta(seconds=101), CONFIG
    )
    assert decision.mode is FallbackMode.NORMAL


def test_a_dead_paste_flow_alone_changes_nothing_in_normal() -> None:
    state = normal_for(10.0)
    state, decisions = run(state, ONLY_PASTE_FLOW_DEAD, 11.0, 200.0)
    assert all(d.mode is FallbackMode.NORMAL for _, d in decisions)


def test_pause_is_latched_until_the_operator_resumes() -> None:
    state = normal_for(10.0)
    state, _ = run(state, FEED_AND_PASTE_FLOW_DEAD, 11.0, 100.0)
    assert state.mode is FallbackMode.PAUSE
    # The gauges come back: still paused, with the reason.
    state, decision = fallback_step(state, GOOD, T0 + timedelta(seconds=101), CONFIG)
    assert decision.pause and "paused" in decision.reason
    resumed = resume_fallback(state)
    assert resumed.mode is FallbackMode.NORMAL and resumed.reason == ""
    state, decision = fallback_step(resumed, GOOD, T0 + timedelta(seconds=102), CONFIG)
    # The transition was the resume itself; the next cycle confirms it.
    assert decision.mode is FallbackMode.NORMAL and not decision.changed


def test_resuming_on_dead_gauges_does_not_hold_a_stale_correction() -> None:
    state = normal_for(10.0)
    state, _ = run(state, FEED_AND_PASTE_FLOW_DEAD, 11.0, 100.0)
    resumed = resume_fallback(state)
    # The feed was last good at 10 s, 90 s ago: nothing left to hold.
    _, decision = fallback_step(
        resumed, FEED_AND_PASTE_FLOW_DEAD, T0 + timedelta(seconds=100), CONFIG
    )
    assert decision.pause
    _, decision = fallback_step(resumed, FEED_FLOW_DEAD, T0 + timedelta(seconds=100), CONFIG)
    assert decision.mode is FallbackMode.PASTE_FLOW_RATIO


def test_a_zero_hold_falls_back_at_the_first_bad_cycle() -> None:
    state = normal_for(10.0)
    _, decision = fallback_step(
        state, FEED_FLOW_DEAD, T0 + timedelta(seconds=11), FallbackConfig(hold_s=0.0)
    )
    assert decision.mode is FallbackMode.PASTE_FLOW_RATIO


def test_a_late_cycle_uses_the_time_that_passed() -> None:
    state = normal_for(10.0)
    # The loop stalled: the next cycle comes 75 s later with the feed dead.
    _, decision = fallback_step(state, FEED_FLOW_DEAD, T0 + timedelta(seconds=85), CONFIG)
    assert decision.mode is FallbackMode.PASTE_FLOW_RATIO


def test_the_paste_density_health_is_passed_on() -> None:
    health = GaugeHealth(feed_flow=False, feed_density=True, paste_flow=True, paste_density=False)
    _, decision = fallback_step(FallbackState.initial(), health, T0, CONFIG)
    assert decision.mode is FallbackMode.PASTE_FLOW_RATIO
    assert not decision.use_paste_density


def test_config_is_checked() -> None:
    with pytest.raises(InvalidInput) as err:
        FallbackConfig(hold_s=-1.0)
    assert err.value.field == "hold_s"
    with pytest.raises(InvalidInput) as err:
        FallbackConfig(recover_s=math.nan)
    assert err.value.field == "recover_s"


# --- binder on the paste flow -------------------------------------------------------------


def recipe(bw: float = 0.05, cw: float = 0.72, gs_t: float = 2.8) -> mb.Recipe:
    return mb.make_recipe(
        binder_ratio=bw,
        solids_fraction=cw,
        tailings_sg=gs_t,
        blend={"cement": 0.3, "slag": 0.7},
        binder_sg={"cement": 3.15, "slag": 2.90},
    )


def test_binder_on_the_paste_flow_at_the_recipe_density() -> None:
    r = recipe()
    rho = mb.paste_density_kg_m3(r)
    out = paste_flow_binder(r, 100.0)
    assert out.density_source == "recipe" and out.density_kg_m3 == pytest.approx(rho)
    # By hand: dry solids Q rho Cw (Wills & Finch 2016), dry tailings /(1 + Bw), binder
    # x Bw (Belem & Benzaazoua 2008), x blend fraction per component.
    total = 100.0 * rho / 1000.0 * 0.72 / 1.05 * 0.05
    assert out.total_binder_t_h == pytest.approx(total)
    assert out.binder_t_h == pytest.approx(
        {"cement": 0.3 * total, "slag": 0.7 * total, "flyash": 0.0}
    )
    assert out.dry_solids_t_h == pytest.approx(out.dry_tailings_t_h + out.total_binder_t_h)


@given(
    feed_flow=st.floats(20.0, 200.0),
    feed_density=st.floats(1700.0, 2000.0),
    bw=st.floats(0.02, 0.1),
    cw=st.floats(0.65, 0.72),
)
def test_paste_flow_ratio_gives_the_feed_ratio_in_steady_state(
    feed_flow: float, feed_density: float, bw: float, cw: float
) -> None:
    # A plant in steady state making the recipe from the feed: the binder ratioed on the
    # paste flow and its measured density equals the binder ratioed on the feed.
    r = recipe(bw=bw, cw=cw)
    ff = mb.feed_forward(
        r, feed_flow_m3_h=feed_flow, feed_density_kg_m3=feed_density, paste_flow_request_m3_h=0.0
    )
    assert ff is not None
    paste_flow = ff.dry_tailings_t_h * mb.paste_volume_per_dry_tailings_m3_t(r)
    out = paste_flow_binder(r, paste_flow, mb.paste_density_kg_m3(r))
    assert out.density_source == "measured"
    assert out.dry_tailings_t_h == pytest.approx(ff.dry_tailings_t_h, rel=1e-9)
    for name in mb.BINDER_COMPONENTS:
        assert out.binder_t_h[name] == pytest.approx(ff.binder_t_h[name], rel=1e-9, abs=1e-12)


def test_a_wetter_paste_gets_less_binder_per_cubic_metre() -> None:
    # The measured density says the paste carries fewer dry tailings per m3: the binder
    # follows them (ratio control), where the recipe density would overdose.
    r = recipe()
    wet = paste_flow_binder(r, 100.0, mb.paste_density_kg_m3(r) - 40.0)
    at_recipe = paste_flow_binder(r, 100.0)
    assert wet.solids_fraction < r.solids_fraction
    assert wet.total_binder_t_h < at_recipe.total_binder_t_h


@pytest.mark.parametrize("density", [None, math.nan, 900.0, 1000.0, 5000.0])
def test_an_unusable_paste_density_falls_back_to_the_recipe(density: float | None) -> None:
    out = paste_flow_binder(recipe(), 100.0, density)
    assert out.density_source == "recipe"
    assert out.solids_fraction == 0.72


def test_no_paste_flow_doses_nothing_and_nan_is_refused() -> None:
    assert paste_flow_binder(recipe(), -5.0).total_binder_t_h == 0.0
    with pytest.raises(InvalidInput) as err:
        paste_flow_binder(recipe(), math.nan)
    assert err.value.field == "paste_flow_m3_h"
