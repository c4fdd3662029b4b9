"""The plant simulator's OPC UA server, against a real asyncua Client on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.ua.uaerrors import BadSensorFailure, BadTypeMismatch, BadUserAccessDenied

from service.simulator import TAG_MAP_PATH
from service.simulator.server import (
    COMMANDS,
    CONTROLS,
    NAMESPACE_URI,
    PUBLISHED,
    TAG_NODE_IDS,
    SimulatorServer,
)

SPEED = 25.0  # plant seconds per wall second
HEARTBEAT_TIMEOUT_S = 1.0  # wall seconds


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    server = SimulatorServer(speed=SPEED, seed=1, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
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


def node(client: Client, tag: str) -> Any:
    return client.get_node(TAG_NODE_IDS[tag])


async def write(client: Client, path_or_tag: str, value: object, vtype: ua.VariantType) -> None:
    nodeid = TAG_NODE_IDS.get(path_or_tag, f"ns=2;s={path_or_tag}")
    await client.get_node(nodeid).write_value(ua.DataValue(ua.Variant(value, vtype)))


async def read(client: Client, tag: str) -> Any:
    return await node(client, tag).read_value()


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def heartbeat(client: Client, period_s: float = 0.2) -> AsyncIterator[None]:
    """Write the heartbeat like the service does, from a tracked task."""

    async def beat() -> None:
        count = 0
        while True:
            count += 1
            await write(client, "heartbeat", count, ua.VariantType.Int32)
            await asyncio.sleep(period_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def write_recipe(client: Client, seq: int) -> None:
    for tag, value in (
        ("tailings_flow_sp", 80.0),
        ("cement_rate_sp", 1.2),
        ("slag_rate_sp", 4.4),
        ("water_flow_sp", 6.0),
        ("paste_density_sp", 1860.0),
    ):
        await write(client, tag, value, ua.VariantType.Float)
    await write(client, "setpoint_seq", seq, ua.VariantType.Int32)


async def test_address_space_types_and_access(sim: SimulatorServer, client: Client) -> None:
    assert (await client.get_namespace_array())[2] == NAMESPACE_URI
    with TAG_MAP_PATH.open("rb") as f:
        assert tomllib.load(f)["tags"] == TAG_NODE_IDS
    for spec in (*PUBLISHED, *COMMANDS, *CONTROLS):
        n = client.get_node(f"ns=2;s={spec.path}")
        assert await n.read_data_type_as_variant_type() == spec.variant, spec.path
        assert (await n.read_data_value()).Value.VariantType == spec.variant, spec.path
    assert await node(client, "plant_mode").read_data_type_as_variant_type() is ua.VariantType.Int16
    assert await node(client, "paste_density_pv").read_data_type_as_variant_type() is (
        ua.VariantType.Float
    )
    # Measurements are read-only for clients; setpoints are writable with their own type.
    with pytest.raises(BadUserAccessDenied):
        await write(client, "paste_density_pv", 1.0, ua.VariantType.Float)
    with pytest.raises(BadTypeMismatch):
        await write(client, "cement_rate_sp", 1.0, ua.VariantType.Double)
    await write(client, "cement_rate_sp", 1.5, ua.VariantType.Float)
    assert await read(client, "cement_rate_sp") == pytest.approx(1.5)
    # Measurements carry source timestamps that move on.
    first = await node(client, "mixer_level_pv").read_data_value()
    assert first.SourceTimestamp is not None

    async def newer() -> bool:
        dv = await node(client, "mixer_level_pv").read_data_value()
        return bool(dv.SourceTimestamp > first.SourceTimestamp)

    await wait_until(newer, what="a fresh source timestamp")


async def test_mode_sequence_and_setpoint_ack(sim: SimulatorServer, client: Client) -> None:
    await write_recipe(client, seq=7)

    async def acked() -> bool:
        return bool(await read(client, "setpoint_ack") == 7)

    await wait_until(acked, what="setpoint_ack == 7")
    assert await read(client, "plant_mode") == 0
    modes: list[int] = []

    def mode_is(wanted: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            mode = int(await read(client, "plant_mode"))
            if not modes or modes[-1] != mode:
                modes.append(mode)
            return mode == wanted

        return check

    async with heartbeat(client):
        await write(client, "run_request", True, ua.VariantType.Boolean)
        await wait_until(mode_is(2), what="running")

        async def feeding() -> bool:
            flow = await read(client, "tailings_flow_pv")
            slag = await read(client, "slag_rate_pv")
            return bool(flow > 70.0 and slag > 3.0)

        await wait_until(feeding, what="feed and binder flowing")
        await write(client, "run_request", False, ua.VariantType.Boolean)
        await wait_until(mode_is(0), what="stopped")
    assert modes == [0, 1, 2, 1, 0]
    assert sim.state.plant.mass_in.slag_kg > 0.0


async def test_losing_the_heartbeat_trips_the_safe_state(
    sim: SimulatorServer, client: Client
) -> None:
    await write_recipe(client, seq=1)
    async with heartbeat(client):
        await write(client, "run_request", True, ua.VariantType.Boolean)

        async def binder_flowing() -> bool:
            return bool(await read(client, "cement_rate_pv") > 1.0)

        await wait_until(binder_flowing, what="binder flowing")
        assert await read(client, "plant_mode") == 2
    # The heartbeat stops; the run request stays true.
    comms_fault = client.get_node("ns=2;s=Backfill.Plant.CommsFault")

    async def tripped() -> bool:
        return bool(await comms_fault.read_value())

    await wait_until(tripped, timeout_s=HEARTBEAT_TIMEOUT_S + 3, what="comms fault")
    assert await read(client, "plant_mode") in (1, 0)
    assert sim.state.plc.comms_fault

    async def safe() -> bool:
        mode = await read(client, "plant_mode")
        cement = await read(client, "cement_rate_pv")
        return bool(mode == 0 and cement < 0.01)

    await wait_until(safe, what="stopped with binder off")
    # The heartbeat resumes: the fault clears, the plant waits for a fresh run request.
    async with heartbeat(client):

        async def cleared() -> bool:
            return not await comms_fault.read_value()

        await wait_until(cleared, what="comms fault cleared")
        await asyncio.sleep(0.3)
        assert await read(client, "plant_mode") == 0
        await write(client, "run_request", False, ua.VariantType.Boolean)
        await asyncio.sleep(0.2)
        await write(client, "run_request", True, ua.VariantType.Boolean)

        async def restarted() -> bool:
            return bool(await read(client, "plant_mode") in (1, 2))

        await wait_until(restarted, what="restart after a new run request")


async def test_remote_disabled_ignores_setpoints(sim: SimulatorServer, client: Client) -> None:
    await write_recipe(client, seq=3)

    async def acked() -> bool:
        return bool(await read(client, "setpoint_ack") == 3)

    await wait_until(acked, what="ack 3")
    await write(client, "Backfill.Sim.RemoteEnabled", False, ua.VariantType.Boolean)

    async def local() -> bool:
        return not await read(client, "remote_enabled")

    await wait_until(local, what="remote disabled")
    await write(client, "water_flow_sp", 30.0, ua.VariantType.Float)  # accepted by the node
    await write(client, "setpoint_seq", 4, ua.VariantType.Int32)
    await asyncio.sleep(0.4)
    assert await read(client, "setpoint_ack") == 3
    assert sim.state.plc.applied.water_m3_h == pytest.approx(6.0)
    await sim.set_fault(remote_enabled=True)
    await wait_until(lambda: _eq(read(client, "setpoint_ack"), 4), what="ack 4")
    assert sim.state.plc.applied.water_m3_h == pytest.approx(30.0)


async def _eq(value: Awaitable[Any], expected: object) -> bool:
    return bool(await value == expected)


async def test_faults_bad_quality_stuck_feeder(sim: SimulatorServer, client: Client) -> None:
    density = node(client, "paste_density_pv")
    await sim.set_fault(bad_tags="paste_density_pv")

    async def bad() -> bool:
        dv = await density.read_data_value(raise_on_bad_status=False)
        return bool(dv.StatusCode.is_bad())

    await wait_until(bad, what="a Bad status code")
    dv = await density.read_data_value(raise_on_bad_status=False)
    assert dv.StatusCode.value == ua.StatusCodes.BadSensorFailure
    with pytest.raises(BadSensorFailure):
        await density.read_value()
    await write(client, "Backfill.Sim.BadTag", "", ua.VariantType.String)

    async def good() -> bool:
        dv = await density.read_data_value(raise_on_bad_status=False)
        return bool(dv.StatusCode.is_good() and dv.Value.VariantType == ua.VariantType.Float)

    await wait_until(good, what="good again")

    # A stuck sensor: the value freezes while the source timestamp keeps moving.
    await write(client, "Backfill.Sim.StuckTag", "paste_density_pv", ua.VariantType.String)
    await asyncio.sleep(0.3)
    first = await density.read_data_value()
    await asyncio.sleep(0.4)
    later = await density.read_data_value()
    assert later.Value.Value == first.Value.Value
    assert later.SourceTimestamp > first.SourceTimestamp
    assert sim.measurements.paste_density_pv != first.Value.Value  # the truth is noisy

    # A feeder fault raises the fault flag.
    await write(client, "Backfill.Sim.FeederFault", "slag", ua.VariantType.String)
    await wait_until(lambda: _eq(read(client, "slag_fault"), True), what="slag fault flag")
    assert await read(client, "cement_fault") is False
    with pytest.raises(ValueError, match="unknown"):
        await sim.set_fault(feeder_faults="gravel")
    await sim.clear_faults()
    await wait_until(lambda: _eq(read(client, "slag_fault"), False), what="fault cleared")


async def test_restart_on_the_same_port(sim: SimulatorServer, client: Client) -> None:
    endpoint = sim.endpoint
    await write(client, "tailings_flow_sp", 55.0, ua.VariantType.Float)
    await write(client, "setpoint_seq", 9, ua.VariantType.Int32)
    await wait_until(lambda: _eq(read(client, "setpoint_ack"), 9), what="ack 9")
    await sim.stop()
    with pytest.raises((ConnectionError, OSError, asyncio.TimeoutError, ua.UaError)):
        async with Client(endpoint, timeout=1) as other:
            await other.get_namespace_array()
    await sim.start()
    assert sim.endpoint == endpoint
    async with Client(endpoint, timeout=4) as again:
        assert (await again.get_namespace_array())[2] == NAMESPACE_URI
        assert await read(again, "tailings_flow_sp") == pytest.approx(55.0)
        assert await read(again, "setpoint_ack") == 9

        async def fresh() -> bool:
            dv = await node(again, "mixer_level_pv").read_data_value()
            return dv.StatusCode.is_good() and dv.SourceTimestamp is not None

        await wait_until(fresh, what="publishing after the restart")


async def test_python_m_service_simulator_runs_and_stops_on_sigterm() -> None:
    env = {**os.environ, "BACKFILL_SIM__SPEED": "10"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.simulator",
        "--port",
        "0",
        "--seed",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        assert line.startswith("simulator listening on opc.tcp://127.0.0.1:")
        endpoint = line.rsplit(" ", 1)[1].strip()
        async with Client(endpoint, timeout=4) as c:
            assert await read(c, "plant_mode") == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
