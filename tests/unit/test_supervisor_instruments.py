"""The supervisor's instrument checks against the fake link and a real SQLite store: a
dead feed gauge holds its last correction for a settable time only, then the binder
follows the paste flow meter, and with that dead too the pour pauses with a high
alarm; the flows across the mixer reconciled every cycle, and "instruments disagree"
naming the gauge that is off."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.control import FallbackConfig, make_recipe, paste_flow_binder
from service.core.control.massbalance import slurry_solids_fraction
from service.plant.port import Quality
from service.store.repository import Store
from tests.unit.test_supervisor import MIX, MakeRig, Rig, make_rig, new_pour, store

__all__ = ["make_rig", "store"]  # the fixtures this module borrows

GS_T = float(MIX["tailings"]["specific_gravity"])
BW = MIX["binder_pct"] / 100.0
CW = MIX["solids_pct"] / 100.0
BLEND = {c["name"]: c["fraction_pct"] / 100.0 for c in MIX["binder"]}
BINDER_SG = {c["name"]: c["specific_gravity"] for c in MIX["binder"]}
RECIPE = make_recipe(
    binder_ratio=BW, solids_fraction=CW, tailings_sg=GS_T, blend=BLEND, binder_sg=BINDER_SG
)


def consistent_plant(feed_m3_h: float = 60.0, feed_density: float = 1900.0) -> dict[str, float]:
    """Gauge readings of a plant making the recipe exactly: the feed's dry tailings
    (slurry relation), the binder Bw x dry by blend, the water to the target Cw, and the
    paste's volume and density by adding the volumes of what goes in."""
    cw_feed = slurry_solids_fraction(feed_density, GS_T)
    feed_t_h = feed_m3_h * feed_density / 1000.0
    dry = feed_t_h * cw_feed
    binder = {name: BW * dry * f for name, f in BLEND.items()}
    paste_t_h = dry * (1.0 + BW) / CW
    water = paste_t_h - feed_t_h - sum(binder.values())
    volume = feed_m3_h + sum(t / BINDER_SG[n] for n, t in binder.items()) + water
    return {
        "tailings_flow_pv": feed_m3_h,
        "tailings_density_pv": feed_density,
        "cement_rate_pv": binder["cement"],
        "slag_rate_pv": binder["slag"],
        "water_flow_pv": water,
        "paste_flow_pv": volume,
        "paste_density_pv": paste_t_h / volume * 1000.0,
    }


async def running(make: MakeRig, store: Store, **config: Any) -> tuple[Rig, str]:
    rig = await make(store, **config)
    for tag, value in consistent_plant().items():
        rig.link.set_measurement(tag, value)
    pour_id = await new_pour(store, target_m3=10_000)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    return rig, pour_id


def active(rig: Rig) -> dict[str, Any]:
    return {a.code.value: a for a in rig.sup.alarms() if a.active}


def last_write(rig: Rig, tag: str) -> float:
    value = next(w[tag] for w in reversed(rig.link.writes) if tag in w)
    assert isinstance(value, float)
    return value


async def test_a_dead_feed_gauge_holds_then_ratios_binder_on_the_paste_flow_then_pauses(
    store: Store, make_rig: MakeRig
) -> None:
    rig, pour_id = await running(make_rig, store, fallback=FallbackConfig(hold_s=30.0))
    await rig.step(40)
    assert rig.sup.instruments_view()["binder_source"]["mode"] == "normal"
    cement_before = last_write(rig, "cement_rate_sp")

    # The feed flow meter dies: the last correction is held, for 30 s only.
    rig.link.set_quality("tailings_flow_pv", Quality.BAD)
    await rig.step(10)
    view = rig.sup.instruments_view()["binder_source"]
    assert view["mode"] == "holding" and view["held"] == "feed"
    assert 15.0 <= view["hold_left_s"] <= 21.0
    assert "feed_gauge_holding" in active(rig)
    assert "tailings_flow_pv" in active(rig)["feed_gauge_holding"].detail
    assert last_write(rig, "cement_rate_sp") == pytest.approx(cement_before, rel=1e-4)

    # The hold runs out: the binder follows the paste flow meter. Halve the paste flow:
    # the binder follows it down (rate-limited), the feed and water setpoints hold.
    await rig.step(25)
    assert rig.sup.instruments_view()["binder_source"]["mode"] == "paste_flow_ratio"
    assert "binder_on_paste_flow" in active(rig)
    assert "feed_gauge_holding" not in active(rig)
    before = {tag: last_write(rig, tag) for tag in ("tailings_flow_sp", "water_flow_sp")}
    paste = consistent_plant()
    rig.link.set_measurement("paste_flow_pv", paste["paste_flow_pv"] / 2.0)
    await rig.step(20)
    expected = paste_flow_binder(RECIPE, paste["paste_flow_pv"] / 2.0, paste["paste_density_pv"])
    assert expected.density_source == "measured"
    factor = rig.sup.last_output().binder_factors["cement"]  # type: ignore[union-attr]
    assert last_write(rig, "cement_rate_sp") == pytest.approx(
        expected.binder_t_h["cement"] * factor, rel=1e-3
    )
    assert last_write(rig, "cement_rate_sp") < 0.6 * cement_before
    for tag, value in before.items():
        assert last_write(rig, tag) == pytest.approx(value, rel=1e-6), tag
    assert (await store.get_pour(pour_id)).state == "running"

    # The paste flow meter dies too: its last ratio is held for 30 s, then the pour
    # pauses with a high alarm that stays until the operator resumes.
    rig.link.set_quality("paste_flow_pv", Quality.BAD)
    await rig.step(10)
    view = rig.sup.instruments_view()["binder_source"]
    assert view["mode"] == "holding" and view["held"] == "paste_flow"
    await rig.step(25)
    record = await store.get_pour(pour_id)
    assert record.state == "paused"
    assert record.interruptions[-1]["reason"] == "gauges_dead"
    alarm = active(rig)["gauges_dead_pause"]
    assert alarm.severity.value == "high"
    assert "binder_on_paste_flow" not in active(rig)
    await rig.step(10)
    assert "gauges_dead_pause" in active(rig)
    assert next(w["run_request"] for w in reversed(rig.link.writes) if "run_request" in w) is False

    # Gauges repaired, the operator resumes: judged afresh, the alarm clears.
    rig.link.set_quality("tailings_flow_pv", Quality.GOOD)
    rig.link.set_measurement("paste_flow_pv", paste["paste_flow_pv"])
    await rig.sup.resume_pour(pour_id, "scada")
    await rig.step(15)
    assert rig.sup.instruments_view()["binder_source"]["mode"] == "normal"
    assert "gauges_dead_pause" not in active(rig)
    assert (await store.get_pour(pour_id)).state == "running"


async def test_feed_and_paste_flow_dead_together_pause_after_the_hold(
    store: Store, make_rig: MakeRig
) -> None:
    rig, pour_id = await running(make_rig, store, fallback=FallbackConfig(hold_s=20.0))
    await rig.step(30)
    rig.link.set_quality("tailings_density_pv", Quality.BAD)
    rig.link.set_quality("paste_flow_pv", Quality.BAD)
    await rig.step(10)
    assert (await store.get_pour(pour_id)).state == "running"
    assert "tailings_density_pv" in active(rig)["feed_gauge_holding"].detail
    await rig.step(15)
    assert (await store.get_pour(pour_id)).state == "paused"
    assert "gauges_dead_pause" in active(rig)


async def test_a_feed_gauge_back_within_the_hold_changes_nothing(
    store: Store, make_rig: MakeRig
) -> None:
    rig, pour_id = await running(make_rig, store, fallback=FallbackConfig(hold_s=30.0))
    await rig.step(30)
    rig.link.set_quality("tailings_flow_pv", Quality.BAD)
    await rig.step(10)
    rig.link.set_quality("tailings_flow_pv", Quality.GOOD)
    await rig.step(10)
    assert rig.sup.instruments_view()["binder_source"]["mode"] == "normal"
    assert not {"feed_gauge_holding", "binder_on_paste_flow"} & set(active(rig))
    assert (await store.get_pour(pour_id)).state == "running"


async def test_flows_that_agree_raise_nothing_and_a_biased_flow_meter_is_named(
    store: Store, make_rig: MakeRig
) -> None:
    rig, _ = await running(make_rig, store)
    await rig.step(300)
    balance = rig.sup.instruments_view()["balance"]
    assert balance["judged"] and balance["samples"] >= 200
    assert balance["residual_mass_t_h"] == pytest.approx(0.0, abs=0.05)
    assert balance["disagreement"] < 0.2
    assert "instruments_disagree" not in active(rig)

    # The feed flow meter reads 3 % high: mass in no longer matches mass out, while Cw
    # and Bw still read in band (the paste looks right; only the balance tells).
    truth = consistent_plant()["tailings_flow_pv"]
    rig.link.set_measurement("tailings_flow_pv", truth * 1.03)
    await rig.step(240)
    alarm = active(rig).get("instruments_disagree")
    assert alarm is not None and alarm.severity.value == "medium"
    assert not {"solids_off_spec", "binder_off_spec"} & set(active(rig))
    balance = rig.sup.instruments_view()["balance"]
    assert balance["alarm"]
    named = {balance["most_likely"], *balance["indistinguishable"]}
    assert "tailings_flow_pv" in named
    assert "tailings_flow_pv" in alarm.detail

    # Repaired: the alarm clears once the average is back within the noise.
    rig.link.set_measurement("tailings_flow_pv", truth)
    await rig.step(900)
    assert "instruments_disagree" not in active(rig)
