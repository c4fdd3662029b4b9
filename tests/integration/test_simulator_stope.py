"""The simulator's stope, dump diverter and harder plant through OPC UA: an asyncua
client on the address space, the Python API, and the service's own link."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asyncua import Client, ua

from service.plant.opcua import OpcUaPlantLink
from service.plant.tags import load_tag_map
from service.simulator import TAG_MAP_PATH
from service.simulator.server import TAG_NODE_IDS, SimulatorServer
from tests.integration.plc_server import eventually, fast_settings

SPEED = 40.0  # plant seconds per wall second
TICK_PLANT_S = 0.1 * SPEED  # the simulator's scan, in plant seconds

F, B, S, I32 = (
    ua.VariantType.Float,
    ua.VariantType.Boolean,
    ua.VariantType.String,
    ua.VariantType.Int32,
)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    server = SimulatorServer(speed=SPEED, seed=5, heartbeat_timeout_s=2.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(sim: SimulatorServer) -> AsyncIterator[Client]:
    c = Client(sim.endpoint, timeout=4)
    await c.connect()
    try:
        yield c
    finally:
        await c.disconnect()


def node(client: Client, tag_or_path: str) -> Any:
    return client.get_node(TAG_NODE_IDS.get(tag_or_path, f"ns=2;s={tag_or_path}"))


async def write(client: Client, tag_or_path: str, value: object, vtype: ua.VariantType) -> None:
    await node(client, tag_or_path).write_value(ua.DataValue(ua.Variant(value, vtype)))


async def read(client: Client, tag_or_path: str) -> Any:
    return await node(client, tag_or_path).read_value()


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 8.0, what: str = "condition"
) -> float:
    """Poll ``check``; returns the wall seconds it took."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@contextlib.asynccontextmanager
async def pouring(client: Client) -> AsyncIterator[None]:
    """A recipe written, run requested and a heartbeat kept, like the service does."""

    async def beat() -> None:
        count = 0
        while True:
            count += 1
            await write(client, "heartbeat", count, I32)
            await asyncio.sleep(0.2)

    for tag, value in (
        ("tailings_flow_sp", 80.0),
        ("cement_rate_sp", 1.2),
        ("slag_rate_sp", 4.4),
        ("water_flow_sp", 6.0),
        ("paste_density_sp", 1860.0),
    ):
        await write(client, tag, value, F)
    await write(client, "setpoint_seq", 1, I32)
    task = asyncio.create_task(beat())
    await write(client, "run_request", True, B)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await write(client, "run_request", False, B)


async def test_diverter_follows_the_command_after_its_travel_time(
    sim: SimulatorServer, client: Client
) -> None:
    travel_s = 40.0  # plant seconds: one wall second at this speed
    await write(client, "Backfill.Sim.DiverterTravel", travel_s, F)
    await wait_until(
        lambda: _true(sim.params.plant.diverter_travel_s == travel_s), what="travel time set"
    )
    assert await read(client, "diverted_to_dump_pv") is False

    async def diverted() -> bool:
        return bool(await read(client, "diverted_to_dump_pv"))

    await write(client, "divert_to_dump_sp", True, B)
    took_s = await wait_until(diverted, what="the diverter proven at the dump")
    # Not before the travel time (less one scan: the write lands anywhere in a scan).
    assert took_s * SPEED >= travel_s - TICK_PLANT_S
    assert took_s * SPEED <= travel_s + 3.0 * SPEED  # and not much later, even on a busy box
    assert sim.state.plant.diverted_to_dump

    # In local the PLC keeps the command in force, as it does the setpoints.
    await write(client, "Backfill.Sim.RemoteEnabled", False, B)
    await wait_until(lambda: _not(read(client, "remote_enabled")), what="local")
    await write(client, "divert_to_dump_sp", False, B)
    await asyncio.sleep(1.5 * travel_s / SPEED)
    assert await read(client, "diverted_to_dump_pv") is True
    await sim.set_fault(remote_enabled=True)

    # Stuck: told back to the stope, the valve stays at the dump until freed.
    await write(client, "Backfill.Sim.DiverterStuck", True, B)
    await wait_until(lambda: _true(sim.controls.diverter_stuck), what="stuck")
    await asyncio.sleep(1.5 * travel_s / SPEED)
    assert await read(client, "diverted_to_dump_pv") is True
    await sim.clear_faults()
    assert await read(client, "Backfill.Sim.DiverterStuck") is False
    await wait_until(lambda: _not(read(client, "diverted_to_dump_pv")), what="back to the stope")


async def test_barricade_pressure_rises_while_paste_flows_into_the_stope(
    sim: SimulatorServer, client: Client
) -> None:
    await write(client, "Backfill.Sim.StopePlanArea", 10.0, F)  # ~9 m/h of rise
    await write(client, "Backfill.Sim.DiverterTravel", 4.0, F)
    await wait_until(lambda: _true(sim.params.plant.stope_plan_area_m2 == 10.0), what="area")
    async with pouring(client):

        async def running() -> bool:
            return bool(await read(client, "plant_mode") == 2)

        await wait_until(running, what="running")
        assert await read(client, "Backfill.Stope.PlacedWater") > 0.0  # the start-up flush

        readings = []
        for _ in range(4):
            await asyncio.sleep(0.4)
            readings.append(float(await read(client, "barricade_pressure_pv")))
        assert all(b > a for a, b in itertools.pairwise(readings)), readings
        height = float(await read(client, "Backfill.Stope.FillHeight"))
        assert height > 0.05
        hydrostatic = float(await read(client, "Backfill.Stope.HydrostaticPressure"))
        assert 0.0 < readings[-1] <= hydrostatic * 1.001

        # To the dump: the stope stops rising, the dump fills, the pressure relaxes.
        await write(client, "divert_to_dump_sp", True, B)
        await wait_until(lambda: _true(sim.state.plant.diverted_to_dump), what="diverted")
        at_divert = float(await read(client, "barricade_pressure_pv"))
        placed = float(await read(client, "Backfill.Stope.PlacedPaste"))
        await asyncio.sleep(0.6)
        assert float(await read(client, "barricade_pressure_pv")) <= at_divert
        assert float(await read(client, "Backfill.Stope.PlacedPaste")) == pytest.approx(placed)
        assert float(await read(client, "Backfill.Stope.DumpedPaste")) > 0.0

    # A new stope: everything back to zero.
    await write(client, "Backfill.Sim.StopeReset", True, B)
    await wait_until(lambda: _eq(read(client, "barricade_pressure_pv"), 0.0), what="an empty stope")
    assert float(await read(client, "Backfill.Stope.FillHeight")) == 0.0
    await wait_until(lambda: _not(read(client, "Backfill.Sim.StopeReset")), what="pulse reset")


async def test_fault_and_plant_controls_through_the_api_and_the_nodes(
    sim: SimulatorServer, client: Client
) -> None:
    # Python API -> nodes
    await sim.set_fault(paste_density_bias_kg_m3=25.0, slag_scale_bias_pct=4.0)
    assert await read(client, "Backfill.Sim.PasteDensityBias") == pytest.approx(25.0)
    assert await read(client, "Backfill.Sim.SlagScaleBias") == pytest.approx(4.0)

    async def biased() -> bool:
        m, plant = sim.measurements, sim.state.plant
        return abs(m.paste_density_pv - plant.density_gauge_kg_m3 - 25.0) < 15.0

    await wait_until(biased, what="the paste gauge reading 25 kg/m3 high")
    await sim.set_plant(tailings_gs=2.95, friction_model="bingham", paste_dead_time_s=30.0)
    assert await read(client, "Backfill.Sim.TailingsGs") == pytest.approx(2.95)
    assert await read(client, "Backfill.Sim.FrictionModel") == "bingham"
    with pytest.raises(ValueError, match="tailings_gs"):
        await sim.set_plant(tailings_gs=0.9)
    with pytest.raises(ValueError, match="feed_flow_bias_pct"):
        await sim.set_fault(feed_flow_bias_pct=75.0)

    # nodes -> simulation (a client's Float arrives in single precision)
    await write(client, "Backfill.Sim.FeedDensityDrift", 12.5, F)
    await write(client, "Backfill.Sim.FeedDeadTime", 20.0, F)
    await write(client, "Backfill.Sim.FrictionModel", "linear", S)

    async def taken() -> bool:
        return (
            sim.controls.instrument_errors.feed_density_drift_kg_m3_h == 12.5
            and sim.params.plant.feed_dead_time_s == 20.0
            and sim.params.plant.friction_model == "linear"
        )

    await wait_until(taken, what="the node writes taken")
    assert sim.params.plant.tailings_gs == 2.95  # untouched controls keep their exact value

    # an invalid value is refused and the node shows the value in force again
    await write(client, "Backfill.Sim.CementScaleBias", 80.0, F)
    await write(client, "Backfill.Sim.FrictionModel", "turbulent", S)
    await wait_until(
        lambda: _eq(read(client, "Backfill.Sim.FrictionModel"), "linear"), what="refused"
    )
    assert await read(client, "Backfill.Sim.CementScaleBias") == 0.0
    assert sim.controls.instrument_errors.cement_scale_bias_pct == 0.0

    await sim.clear_faults()
    assert sim.controls.instrument_errors.feed_density_drift_kg_m3_h == 0.0
    assert await read(client, "Backfill.Sim.PasteDensityBias") == 0.0
    await sim.reset_plant()
    assert sim.params == SimulatorServer(seed=5, heartbeat_timeout_s=2.0).params
    assert await read(client, "Backfill.Sim.FeedDeadTime") == 0.0


async def test_the_service_link_maps_the_optional_tags(sim: SimulatorServer) -> None:
    tags = load_tag_map(TAG_MAP_PATH)
    assert {"barricade_pressure_pv", "diverted_to_dump_pv"} <= set(tags.measurements)
    assert "divert_to_dump_sp" in tags.setpoints
    link = OpcUaPlantLink(fast_settings(sim.endpoint), tags)
    await link.start()
    try:
        await eventually(lambda: link.connected, what="connected")
        assert "divert_to_dump_sp" in link.setpoint_tags

        def reported(tag: str) -> bool:
            m = link.snapshot().measurements.get(tag)
            return m is not None and m.value is not None

        await eventually(lambda: reported("barricade_pressure_pv"), what="barricade reported")
        snap = link.snapshot()
        assert snap.measurements["barricade_pressure_pv"].unit == "kPa"
        assert snap.measurements["barricade_pressure_pv"].value == 0.0
        assert snap.measurements["diverted_to_dump_pv"].value is False
        result = await link.write_setpoints({"divert_to_dump_sp": True})
        assert result.acknowledged and result.values == {"divert_to_dump_sp": True}

        def diverted() -> bool:
            m = link.snapshot().measurements["diverted_to_dump_pv"]
            return m.value is True

        await eventually(diverted, within=5.0, what="diverted_to_dump_pv true")
        assert link.snapshot().setpoints["divert_to_dump_sp"].unit == "bool"
    finally:
        await link.stop()


async def _true(value: bool) -> bool:
    return value


async def _not(value: Awaitable[Any]) -> bool:
    return not await value


async def _eq(value: Awaitable[Any], expected: object) -> bool:
    return bool(await value == expected)
