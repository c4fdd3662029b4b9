"""What the plant can make, against the mass balance worked by hand and by the
proportioning module."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core import plant_profile as pp
from service.core import proportioning as prop
from service.operations.plant_profile import learned, simulated_plant
from service.settings import PlantSettings
from service.simulator.dynamics import PlantParams


def test_the_issue_s_cake_makes_at_most_76_8_pct_at_bw_4_36() -> None:
    # A 76 % solids cake (w0 = 31.58 %) with Bw 4.36 %: (1.0436)/(1.0436 + 0.3158).
    assert 100 * pp.driest_cw(0.0436, 0.3158) == pytest.approx(76.77, abs=0.01)
    assert pp.moisture_of_solids(76.0) == pytest.approx(0.3158, abs=1e-4)


@given(
    bw=st.floats(0.01, 0.15),
    w0=st.floats(0.05, 0.8),
    gs=st.floats(2.5, 3.6),
)
def test_at_the_driest_cw_no_water_is_added(bw: float, w0: float, gs: float) -> None:
    cw = pp.driest_cw(bw, w0)
    mix = prop.proportion(
        tailings=prop.Tailings(gs, w0),
        binder=(prop.BinderComponent("cement", 3.15, 1.0),),
        binder_ratio=bw,
        solids_fraction=cw,
    )
    assert mix.per_m3.water_to_add_kg == pytest.approx(0.0, abs=1e-6)


def profile(**kw: object) -> pp.PlantProfile:
    return pp.PlantProfile(**kw)  # type: ignore[arg-type]


MIX = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 31.58},
    "binder": [{"name": "cement", "specific_gravity": 3.15, "fraction_pct": 100}],
    "binder_pct": 4.36,
    "solids_pct": 77.25,
}


def test_a_mix_drier_than_its_own_tailings_allow_is_unmakeable_naming_the_limit() -> None:
    checked = pp.makeability(MIX, profile(), prefix="mix.")
    assert not checked.makeable
    (broken,) = checked.broken
    assert broken.name == "feed_reach_recipe_moisture" and broken.field == "mix.solids_pct"
    assert broken.value == pytest.approx(76.77, abs=0.01)
    assert checked.best_solids_pct == pytest.approx(76.77, abs=0.01)


def test_the_plant_s_wettest_feed_and_its_window_bind_too_each_with_its_basis() -> None:
    plant = profile(
        feed_stated=pp.FeedRange(72.0, 74.0, "settings"),
        cw_window_stated=pp.Window(65.0, 78.0, "settings"),
    )
    ok = {**MIX, "solids_pct": 70.0}
    assert pp.makeability(ok, plant).makeable
    wet = {**MIX, "solids_pct": 74.0}  # fine at the recipe's 31.58 %, not at the 72 % feed
    checked = pp.makeability(wet, plant)
    assert [limit.name for limit in checked.broken] == ["feed_reach_plant_feed"]
    assert checked.broken[0].basis == "settings"
    low = {**MIX, "solids_pct": 60.0}
    assert [limit.name for limit in pp.makeability(low, plant).broken] == ["cw_window_low"]


def test_history_is_used_only_once_it_has_enough_running_hours() -> None:
    seen = pp.FeedRange(71.0, 75.0, "history", hours=2.0)
    assert profile(feed_seen=seen).feed() is None
    enough = pp.FeedRange(71.0, 75.0, "history", hours=6.0)
    assert profile(feed_seen=enough).feed() == enough
    stated = pp.FeedRange(70.0, 72.0, "settings")
    assert profile(feed_seen=enough, feed_stated=stated).feed() == stated


def test_the_history_s_percentiles_while_the_plant_ran() -> None:
    gs = 2.8
    densities = [1850.0 + i for i in range(100)]  # a minute row each
    rows = [
        {
            "plant_mode_avg": 2.0,
            "tailings_density_pv_avg": d,
            "solids_pct_avg": 70.0,
            "pump_pressure_pv_max": 3000.0,
        }
        for d in densities
    ]
    rows += [{"plant_mode_avg": 0.0, "tailings_density_pv_avg": 1200.0}] * 50  # stopped
    period = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
    feed, cw, pressure = learned(rows, gs, period)
    assert feed is not None and cw is not None
    expected = 100 * pp.solids_of_density(pp.percentile(densities, 0.10), gs)
    assert feed.solids_low_pct == pytest.approx(expected)
    assert feed.hours == pytest.approx(100 / 60)
    assert feed.period_from == period[0] and feed.basis == "history"
    assert pressure == pytest.approx(3000.0)


def test_the_simulator_states_its_feed_from_its_own_variation() -> None:
    plant = simulated_plant(PlantSettings(), PlantParams())
    assert plant.tailings_sg == 2.8
    assert plant.feed_solids_min_pct is not None and plant.feed_solids_max_pct is not None
    # 1,900 kg/m3 is 73.7 % solids at Gs 2.8; the walk's sd is 17.3 kg/m3.
    nominal = 100 * pp.solids_of_density(1900.0, 2.8)
    assert plant.feed_solids_min_pct < nominal < plant.feed_solids_max_pct
    assert plant.feed_solids_min_pct == pytest.approx(72.72, abs=0.05)
    stated = PlantSettings(feed_solids_min_pct=60.0, feed_solids_max_pct=65.0, tailings_sg=3.0)
    assert simulated_plant(stated, PlantParams()) == stated  # the site's word stands


def test_reach_names_the_tightest_limit() -> None:
    plant = profile(feed_stated=pp.FeedRange(72.0, 74.0, "settings"))
    value, name = pp.reach_cw_max(0.05, 0.3158, plant)
    assert name == "feed_reach_plant_feed"
    assert value == pytest.approx(pp.driest_cw(0.05, pp.moisture_of_solids(72.0)))
