"""The in-memory fake honours the PlantLink port (so other layers can rely on it)."""

from __future__ import annotations

import math

import pytest

from service.errors import InvalidInput, PlantLinkDown, SetpointUnconfirmed
from service.plant.fake import FakePlantLink
from service.plant.port import PlantLink, Quality


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_is_a_plant_link() -> None:
    assert isinstance(FakePlantLink(), PlantLink)


async def test_measurements_quality_and_staleness() -> None:
    clock = Clock()
    link = FakePlantLink(measurements={"paste_density_pv": 1880.0}, clock=clock, stale_after_s=2)
    snap = link.snapshot()
    m = snap.measurements["paste_density_pv"]
    assert (m.value, m.unit, m.quality) == (1880.0, "kg/m3", Quality.GOOD)
    clock.now += 3
    aged = link.snapshot()
    assert aged.measurements["paste_density_pv"].quality is Quality.BAD
    assert aged.version > snap.version  # aging into bad moves the ETag
    link.set_quality("paste_density_pv", Quality.UNCERTAIN)
    assert link.snapshot().measurements["paste_density_pv"].quality is Quality.UNCERTAIN
    link.set_connected(False, "cable cut")
    down = link.snapshot()
    assert not down.connected and down.last_error == "cable cut"
    assert down.measurements["paste_density_pv"].quality is Quality.BAD


async def test_writes_are_recorded_and_failures_configurable() -> None:
    link = FakePlantLink()
    result = await link.write_setpoints({"cement_rate_sp": 1.5, "run_request": True})
    assert result.acknowledged and result.seq == 1
    assert link.writes == [{"cement_rate_sp": 1.5, "run_request": True}]
    assert link.snapshot().setpoints["cement_rate_sp"].unit == "t/h"
    link.fail_next_write = "unacknowledged"
    with pytest.raises(SetpointUnconfirmed):
        await link.write_setpoints({"cement_rate_sp": 2.0})
    with pytest.raises(InvalidInput):
        await link.write_setpoints({"heartbeat": 1})
    with pytest.raises(InvalidInput):
        await link.write_setpoints({"cement_rate_sp": math.nan})
    link.set_connected(False)
    with pytest.raises(PlantLinkDown):
        await link.write_setpoints({"cement_rate_sp": 1.0})


async def test_wait_changed() -> None:
    link = FakePlantLink(measurements={"mixer_level_pv": 50.0})
    version = link.snapshot().version
    same = await link.wait_changed(version, timeout=0.05)
    assert same.version == version
    link.set_measurement("mixer_level_pv", 51.0)
    changed = await link.wait_changed(version, timeout=1)
    assert changed.measurements["mixer_level_pv"].value == 51.0
