"""The same link against an OPC UA server the project did not write: node-opcua (npm),
with S7-style node ids ("DB_Backfill"."PasteDensity") and PLC types.

node-opcua is installed into tests/interop/node_opcua_plc by this fixture when
node_modules is missing; without node or npm the tests skip with the reason (CI
turns skips into failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Client, ua

from service.errors import SetpointUnconfirmed
from service.plant.opcua import OpcUaPlantLink
from service.plant.port import Quality
from service.plant.tags import TagMap, parse_tag_map
from tests.integration.plc_server import all_good, eventually, fast_settings, free_port

pytestmark = [pytest.mark.node_opcua, pytest.mark.asyncio(loop_scope="module")]

PLC_DIR = Path(__file__).resolve().parents[1] / "interop" / "node_opcua_plc"

# logical tag -> name in DB_Backfill
S7_NAMES = {
    "tailings_flow_pv": "FeedFlow",
    "tailings_density_pv": "FeedDensity",
    "cement_rate_pv": "CementRate",
    "slag_rate_pv": "SlagRate",
    "water_flow_pv": "WaterFlow",
    "paste_flow_pv": "PasteFlow",
    "paste_density_pv": "PasteDensity",
    "pump_pressure_pv": "PumpPressure",
    "mixer_level_pv": "MixerLevel",
    "plant_mode": "PlantMode",
    "remote_enabled": "RemoteEnabled",
    "setpoint_ack": "SetpointAck",
    "tailings_flow_sp": "FeedFlowSP",
    "cement_rate_sp": "CementRateSP",
    "slag_rate_sp": "SlagRateSP",
    "water_flow_sp": "WaterFlowSP",
    "paste_density_sp": "PasteDensitySP",
    "run_request": "RunRequest",
    "setpoint_seq": "SetpointSeq",
    "heartbeat": "Heartbeat",
}


@dataclass
class NodePlc:
    process: asyncio.subprocess.Process
    port: int
    ns: int

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    def node_id(self, tag: str) -> str:
        return f'ns={self.ns};s="DB_Backfill"."{S7_NAMES[tag]}"'

    def tag_map(self) -> TagMap:
        return parse_tag_map({"tags": {t: self.node_id(t) for t in S7_NAMES}})

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()


async def _run(*args: str, cwd: Path, within: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(within):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"timed out after {within} s"
    return proc.returncode or 0, out.decode(errors="replace")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node_plc() -> AsyncIterator[NodePlc]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node-opcua interop needs Node.js and npm on PATH (not found)")
    if not (PLC_DIR / "node_modules" / "node-opcua").is_dir():
        code, out = await _run(npm, "install", "--no-audit", "--no-fund", cwd=PLC_DIR, within=600)
        if code != 0:
            pytest.fail(f"npm install of node-opcua failed ({code}):\n{out[-3000:]}")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        node,
        "server.js",
        "--port",
        str(port),
        cwd=PLC_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_ENV": "test"},
    )
    try:
        assert proc.stdout is not None
        ns = None
        async with asyncio.timeout(60):
            while ns is None:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    pytest.fail("node-opcua PLC exited before it was ready")
                if line.startswith("READY"):
                    fields = dict(f.split("=", 1) for f in line.split()[1:])
                    ns = int(fields["ns"])
        yield NodePlc(proc, port, ns)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest_asyncio.fixture(loop_scope="module")
async def link(node_plc: NodePlc) -> AsyncIterator[OpcUaPlantLink]:
    link = OpcUaPlantLink(fast_settings(node_plc.endpoint), node_plc.tag_map())
    await link.start()
    yield link
    await link.stop()


async def read_plc(node_plc: NodePlc, tags: list[str]) -> list[ua.DataValue]:
    """What the node-opcua PLC holds, read by an independent client."""
    async with Client(node_plc.endpoint, timeout=2) as client:
        nodes = [client.get_node(node_plc.node_id(t)) for t in tags]
        return await client.read_attributes(nodes)


async def test_measurements_from_s7_style_nodes(node_plc: NodePlc, link: OpcUaPlantLink) -> None:
    await eventually(lambda: all_good(link), what="all measurements good")
    snap = link.snapshot()
    assert snap.measurements["paste_density_pv"].value == pytest.approx(1880.0)
    assert snap.measurements["plant_mode"].value == 2
    assert snap.measurements["remote_enabled"].value is True


async def test_setpoints_written_as_plc_types_without_timestamps(
    node_plc: NodePlc, link: OpcUaPlantLink
) -> None:
    # node-opcua here refuses timestamped writes (BadWriteNotSupported) and a
    # Double sent to a Float (BadTypeMismatch): success proves neither happened
    result = await link.write_setpoints(
        {"cement_rate_sp": 1.25, "water_flow_sp": 20, "run_request": True}
    )
    assert result.acknowledged
    cement, water, run, seq, ack = await read_plc(
        node_plc, ["cement_rate_sp", "water_flow_sp", "run_request", "setpoint_seq", "setpoint_ack"]
    )
    assert cement.Value.VariantType is ua.VariantType.Float
    assert cement.Value.Value == pytest.approx(1.25)
    assert water.Value.VariantType is ua.VariantType.Float
    assert water.Value.Value == pytest.approx(20.0)
    assert run.Value.Value is True
    assert seq.Value.VariantType is ua.VariantType.Int32
    assert seq.Value.Value == ack.Value.Value == result.seq


async def test_heartbeat_reaches_the_plc(node_plc: NodePlc, link: OpcUaPlantLink) -> None:
    await eventually(lambda: link.connected)
    (first,) = await read_plc(node_plc, ["heartbeat"])
    await asyncio.sleep(0.5)
    (later,) = await read_plc(node_plc, ["heartbeat"])
    assert later.Value.VariantType is ua.VariantType.Int32
    assert later.Value.Value != first.Value.Value


async def test_bad_status_from_node_opcua_is_bad(node_plc: NodePlc, link: OpcUaPlantLink) -> None:
    await eventually(lambda: all_good(link))
    await node_plc.command("set PasteDensity 1890 BadSensorFailure")
    await eventually(
        lambda: link.snapshot().measurements["paste_density_pv"].quality is Quality.BAD
    )
    await node_plc.command("set PasteDensity 1895")
    await eventually(
        lambda: link.snapshot().measurements["paste_density_pv"].quality is Quality.GOOD
    )
    assert link.snapshot().measurements["paste_density_pv"].value == pytest.approx(1895.0)


async def test_missing_ack_is_unconfirmed(node_plc: NodePlc, link: OpcUaPlantLink) -> None:
    await eventually(lambda: link.connected)
    await node_plc.command("ack off")
    try:
        with pytest.raises(SetpointUnconfirmed):
            await link.write_setpoints({"slag_rate_sp": 3.0})
    finally:
        await node_plc.command("ack on")


async def test_the_node_plc_is_as_strict_as_a_real_one(node_plc: NodePlc) -> None:
    """The proof above holds only if this PLC refuses what the link avoids."""
    stamped = ua.DataValue(ua.Variant(1.0, ua.VariantType.Float), SourceTimestamp=datetime.now(UTC))
    double = ua.DataValue(ua.Variant(1.0, ua.VariantType.Double), StatusCode=None)
    async with Client(node_plc.endpoint, timeout=2) as client:
        node = client.get_node(node_plc.node_id("cement_rate_sp"))
        statuses = await client.write_values([node, node], [stamped, double], False)
    assert [s.name for s in statuses] == ["BadWriteNotSupported", "BadTypeMismatch"]
