"""The node-opcua stand-in PLC's optional tags (tags_optional.toml) through the
service's link: a barricade pressure that rises while paste is placed, and a dump
diverter whose proven position follows after its travel time.

node-opcua is installed into tests/interop/node_opcua_plc when node_modules is
missing; without node or npm the test skips with the reason (CI turns skips into
failures)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from service.plant.opcua import OpcUaPlantLink
from service.plant.tags import load_tag_map
from tests.e2e.procs import NODE_PLC_DIR, NodePlcProcess, install_node_opcua, node_plc
from tests.integration.plc_server import eventually, fast_settings

pytestmark = pytest.mark.node_opcua

TAG_MAP = NODE_PLC_DIR / "tags_optional.toml"
TRAVEL_S = 2.0  # DIVERTER_TRAVEL_MS in server.js


@pytest_asyncio.fixture
async def plc(tmp_path: Path) -> AsyncIterator[NodePlcProcess]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node-opcua interop needs Node.js and npm on PATH (not found)")
    await install_node_opcua(npm)
    async with node_plc(node, plant=True, log=tmp_path / "node-plc.log") as process:
        yield process


def value(link: OpcUaPlantLink, tag: str) -> object:
    m = link.snapshot().measurements.get(tag)
    return None if m is None else m.value


async def test_optional_tags_of_the_stand_in_plc(plc: NodePlcProcess) -> None:
    tags = load_tag_map(TAG_MAP)
    assert set(load_tag_map(NODE_PLC_DIR / "tags.toml").node_ids) < set(tags.node_ids)
    link = OpcUaPlantLink(fast_settings(plc.endpoint), tags)
    await link.start()
    try:
        await eventually(lambda: link.connected, within=10.0, what="connected")
        await eventually(lambda: value(link, "barricade_pressure_pv") == 0.0, what="barricade")
        assert link.snapshot().measurements["barricade_pressure_pv"].unit == "kPa"
        assert value(link, "diverted_to_dump_pv") is False

        await link.write_setpoints(
            {
                "tailings_flow_sp": 80.0,
                "cement_rate_sp": 1.2,
                "slag_rate_sp": 4.4,
                "water_flow_sp": 6.0,
                "paste_density_sp": 1860.0,
                "run_request": True,
            }
        )
        await eventually(lambda: value(link, "plant_mode") == 2, within=10.0, what="running")

        def pressure() -> float:
            reading = value(link, "barricade_pressure_pv")
            assert isinstance(reading, float)
            return reading

        await eventually(lambda: pressure() > 0.1, within=10.0, what="barricade loaded")
        first = pressure()
        await eventually(lambda: pressure() > first + 0.2, within=10.0, what="pressure rising")

        # To the dump: proven after the travel time, and the stope stops rising.
        written = time.monotonic()
        result = await link.write_setpoints({"divert_to_dump_sp": True})
        assert result.acknowledged
        took_s = await eventually(
            lambda: value(link, "diverted_to_dump_pv") is True, within=10.0, what="diverted"
        )
        assert time.monotonic() - written >= TRAVEL_S - 0.2
        assert took_s < TRAVEL_S + 3.0
        held = pressure()
        await asyncio.sleep(1.0)  # placing, it would rise by about 0.25 kPa a second
        assert pressure() == pytest.approx(held, abs=0.02)
        await link.write_setpoints({"run_request": False})
    finally:
        await link.stop()
