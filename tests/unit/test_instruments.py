"""The balance across the mixer as the supervisor runs it: when it is judged, an alarm
that a restarted average cannot clear at once, and a bias estimate with the right sign
while the other gauges sit at in-tolerance offsets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from service.core import control as law
from service.core import instruments as ins
from service.settings import InstrumentSettings
from tests.unit.test_supervisor_instruments import RECIPE, consistent_plant

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_steady_production_begins_in_band_and_only_a_stop_ends_it() -> None:
    def step(since: datetime | None, t: float, **kw: bool) -> tuple[datetime | None, bool]:
        flags = {"producing": True, "in_band": True, "holding": False, **kw}
        return ins.steady_step(since, now=at(t), settle_s=60.0, **flags)

    assert step(None, 0, in_band=False) == (None, False)  # a start's water, not yet
    since, judge = step(None, 10)
    assert since == at(10) and not judge
    assert step(since, 69) == (at(10), False)
    assert step(since, 70) == (at(10), True)
    # A reading out of band later on, or a refill, does not end steady production.
    assert step(since, 71, in_band=False) == (at(10), True)
    assert step(since, 72, holding=True) == (at(10), False)
    assert step(since, 73) == (at(10), True)
    # A stop (or a flush, or the fallback) does.
    assert step(since, 74, producing=False) == (None, False)


def _check() -> ins.BalanceCheck:
    settings = InstrumentSettings()
    return ins.BalanceCheck(
        ins.disagreement_config(settings, 1.0), ins.GaugeErrors.from_settings(settings)
    )


def _readings(rng: random.Random, offsets: dict[str, float]) -> ins.Measure:
    """Readings of the consistent plant: each gauge's offset (fraction of the reading, or
    kg/m3 for the densities) and its noise (the settings' sd)."""
    truth = consistent_plant()
    values: dict[str, float] = {}
    for tag, value in truth.items():
        density = tag.endswith("density_pv")
        offset = offsets.get(tag, 0.0)
        biased = value + offset if density else value * (1.0 + offset)
        sd = 5.0 if density else 0.01 * value
        values[tag] = biased + rng.gauss(0.0, sd)
    return lambda tag: law.Measurement(values[tag])


# In-tolerance offsets of a real plant (within 0.5 % of flow, 5 kg/m3, 1 % on a feeder).
CALIBRATED = {
    "tailings_flow_pv": 0.003,
    "paste_flow_pv": -0.003,
    "tailings_density_pv": 3.0,
    "cement_rate_pv": 0.008,
    "slag_rate_pv": -0.006,
}


def test_a_biased_paste_gauge_is_named_with_its_bias_and_a_gap_does_not_clear_it() -> None:
    rng = random.Random(3)
    check = _check()
    t = 0.0
    for _ in range(600):  # ten minutes of clean, calibrated noise: nothing
        t += 1.0
        check = check.observe(
            ins.flow_measurements(_readings(rng, CALIBRATED), RECIPE, check.errors), at(t)
        )
    assert check.status is not None and not check.status.alarm
    faulty = {**CALIBRATED, "paste_density_pv": 36.0}
    for _ in range(600):
        t += 1.0
        check = check.observe(
            ins.flow_measurements(_readings(rng, faulty), RECIPE, check.errors), at(t)
        )
    status = check.status
    assert status is not None and status.alarm
    assert "paste_density_pv" in {status.most_likely, *status.indistinguishable}
    (paste,) = [s for s in status.suspects if s.name == "paste_density_pv"]
    assert paste.bias == pytest.approx(36.0, abs=12.0)  # high, as it reads

    # Nothing judged for longer than the averaging (a long hold), then half a minute of
    # good readings: a fresh average knows too little to clear the alarm yet.
    t += 300.0
    for _ in range(30):
        t += 1.0
        good = _readings(rng, CALIBRATED)
        check = check.observe(ins.flow_measurements(good, RECIPE, check.errors), at(t))
    assert check.status is not None and check.status.alarm
    # Repaired: it clears once the average has run its time constant.
    for _ in range(900):
        t += 1.0
        check = check.observe(
            ins.flow_measurements(_readings(rng, CALIBRATED), RECIPE, check.errors), at(t)
        )
    assert check.status is not None and not check.status.alarm
