"""Faults with real processes and sockets: PLC restart, network cut, frozen server.

Each must end with the link reconnected, resubscribed and the last setpoint set
re-sent; while down the link says so, reports every value bad and writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from service.errors import PlantLinkDown
from service.plant.opcua import OpcUaPlantLink
from tests.integration.plc_server import (
    PlcServer,
    all_bad,
    all_good,
    eventually,
    fast_settings,
    free_port,
)
from tests.proxy import TcpProxy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plc() -> AsyncIterator[PlcServer]:
    server = PlcServer()
    await server.start()
    yield server
    await server.stop()


async def test_plc_restart_reconnects_resubscribes_and_resends(plc: PlcServer) -> None:
    link = OpcUaPlantLink(fast_settings(plc.endpoint), plc.tag_map())
    await link.start()
    try:
        await eventually(lambda: all_good(link))
        first = await link.write_setpoints({"cement_rate_sp": 2.5, "water_flow_sp": 12.0})
        await plc.stop()
        await eventually(lambda: not link.connected, within=3, what="link down")
        assert all_bad(link)
        assert link.snapshot().last_error
        with pytest.raises(PlantLinkDown):
            await link.write_setpoints({"cement_rate_sp": 3.0})
        # the PLC comes back having lost the setpoints (cold restart)
        await plc.set("cement_rate_sp", 0.0)
        await plc.set("water_flow_sp", 0.0)
        await plc.start()
        await eventually(lambda: all_good(link), within=5, what="link recovered")
        await eventually(lambda: plc.get("cement_rate_sp") == 2.5, what="setpoints re-sent")
        assert plc.get("water_flow_sp") == 12.0
        await eventually(lambda: plc.get("setpoint_ack") == first.seq + 1)
        await plc.set("paste_density_pv", 1901.0)  # the new subscription delivers
        await eventually(
            lambda: link.snapshot().measurements["paste_density_pv"].value == 1901.0, within=2
        )
    finally:
        await link.stop()


async def test_network_cut_through_a_proxy(plc: PlcServer) -> None:
    proxy = TcpProxy(plc.port)
    await proxy.allow()
    link = OpcUaPlantLink(fast_settings(proxy.endpoint), plc.tag_map())
    await link.start()
    try:
        await eventually(lambda: all_good(link))
        await link.write_setpoints({"slag_rate_sp": 6.0})
        await proxy.cut()
        await eventually(lambda: not link.connected, within=3, what="link down")
        assert all_bad(link)
        with pytest.raises(PlantLinkDown):
            await link.write_setpoints({"slag_rate_sp": 7.0})
        await asyncio.sleep(0.6)  # refused for a while: several reconnect attempts fail
        assert not link.connected and all_bad(link)
        await plc.set("slag_rate_sp", 0.0)
        await proxy.allow()
        await eventually(lambda: all_good(link), within=5, what="link recovered")
        await eventually(lambda: plc.get("slag_rate_sp") == 6.0, what="setpoints re-sent")
        result = await link.write_setpoints({"slag_rate_sp": 7.0})
        assert result.acknowledged
    finally:
        await link.stop()
        await proxy.cut()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")
async def test_frozen_server_is_detected_and_recovered() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.plc_server",
        "--port",
        str(port),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        assert line.decode().startswith("READY"), line
        server = PlcServer(port)  # only for its tag map (same layout, namespace index 2)
        link = OpcUaPlantLink(fast_settings(server.endpoint), server.tag_map())
        await link.start()
        try:
            await eventually(lambda: all_good(link), what="connected")
            await link.write_setpoints({"paste_density_sp": 1910.0})
            proc.send_signal(signal.SIGSTOP)
            took = await eventually(lambda: not link.connected, within=5, what="freeze detected")
            assert took < 4  # a few request timeouts (1 s each)
            assert all_bad(link)
            with pytest.raises(PlantLinkDown):
                await link.write_setpoints({"paste_density_sp": 1920.0})
            proc.send_signal(signal.SIGCONT)
            await eventually(lambda: all_good(link), within=8, what="recovered after SIGCONT")
            result = await link.write_setpoints({"paste_density_sp": 1920.0})
            assert result.acknowledged
        finally:
            await link.stop()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        await proc.wait()
