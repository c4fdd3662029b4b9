"""Shutdown and restart are safe states, against the node-opcua stand-in PLC (an OPC UA
server the project did not write, which starts its plant on a rising edge of RunRequest
and stops it when the heartbeat stops).

- SIGTERM mid-pour, with an event-stream client attached: the process pauses the pour,
  writes RunRequest = false (confirmed), closes the stream and exits within its grace
  (BACKFILL_SHUTDOWN_GRACE_S, 20 s; the deployment files allow 30 s before SIGKILL).
- ``kill -9`` mid-pour, then a restart: the new process writes RunRequest = false first,
  so the first resume gives the PLC the rising edge it needs and the plant runs.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import Client

from service.store.db import create_engine
from service.store.repository import Store
from tests.conftest import api_keys_setting, auth, need
from tests.e2e.helpers import action, create_pour
from tests.e2e.procs import (
    NODE_PLC_TAG_MAP,
    NodePlcProcess,
    free_port,
    install_node_opcua,
    node_plc,
    service_process,
    until,
    wait_ready,
)

pytestmark = [pytest.mark.node_opcua, pytest.mark.slow]

GRACE_S = 20.0
NAMESPACE = "urn:backfill:s7-test-plc"


def _env(db: Path, plc: NodePlcProcess) -> dict[str, str]:
    return {
        "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "BACKFILL_API_KEYS": api_keys_setting(),
        "BACKFILL_PLC__ENDPOINT": plc.endpoint,
        "BACKFILL_PLC__TAG_MAP": str(NODE_PLC_TAG_MAP),
        "BACKFILL_PLC__ALLOW_INSECURE": "true",
        "BACKFILL_PLC__PUBLISHING_INTERVAL_MS": "100",
        "BACKFILL_CHECKPOINT_INTERVAL_S": "1",
    }


@asynccontextmanager
async def running_plc(tmp_path: Path) -> AsyncIterator[NodePlcProcess]:
    node, npm = shutil.which("node"), shutil.which("npm")
    need(node is not None and npm is not None, "the node-opcua PLC needs Node.js and npm")
    assert node is not None and npm is not None
    await install_node_opcua(npm)
    async with node_plc(node, plant=True, log=tmp_path / "node-plc.log") as plc:
        yield plc


async def plc_value(plc: NodePlcProcess, name: str) -> Any:
    """A value of the PLC read straight from its address space."""
    async with Client(plc.endpoint, timeout=5) as client:
        ns = await client.get_namespace_index(NAMESPACE)
        node = client.get_node(f'ns={ns};s="DB_Backfill"."{name}"')
        return await node.read_value()


async def _plant(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/plant/status", headers=auth("hmi"))
    return r.json() if r.status_code == 200 else {}


async def _running_with_paste(client: httpx.AsyncClient) -> bool:
    st = await _plant(client)
    paste = st.get("measurements", {}).get("paste_flow_pv", {}).get("value") or 0.0
    return st.get("plc_mode") == "running" and paste > 5.0


async def _stream(base_url: str, opened: asyncio.Event) -> float:
    """Read /plant/stream until the server ends it; the monotonic time it ended."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(5.0, read=60.0)) as c,
        c.stream("GET", "/api/v1/plant/stream", headers=auth("hmi")) as stream,
    ):
        assert stream.status_code == 200
        async for chunk in stream.aiter_bytes():
            if b"event: status" in chunk:
                opened.set()
    return time.monotonic()


async def test_sigterm_mid_pour_stops_the_plc_and_exits_within_the_grace(tmp_path: Path) -> None:
    db = tmp_path / "sigterm.db"
    async with running_plc(tmp_path) as plc:
        with service_process(
            env=_env(db, plc), cwd=tmp_path, port=free_port(), log=tmp_path / "service.log"
        ) as service:
            await wait_ready(service, within_s=30)
            async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as client:
                await until(
                    lambda: _plant_mode(client, "stopped"), within_s=20, what="the PLC, stopped"
                )
                pour_id = await create_pour(client, target_m3=50.0, flow_m3_h=150.0)
                r = await action(client, pour_id, "start")
                assert r.status_code == 200, r.text
                await until(
                    lambda: _poured_at_least(client, pour_id, 0.1), within_s=60, what="0.1 m3"
                )
                assert await plc_value(plc, "RunRequest") is True
                opened = asyncio.Event()
                stream = asyncio.create_task(_stream(service.base_url, opened))
                async with asyncio.timeout(10):
                    await opened.wait()

                sent = time.monotonic()
                service.popen.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(service.popen.wait, GRACE_S + 10)
                exited = time.monotonic()
                stream_ended = await asyncio.wait_for(stream, 5)
            assert exited - sent <= GRACE_S, f"exit took {exited - sent:.1f} s"
            assert code == 0, service.log_tail()  # as --help says: a clean stop is 0
            assert stream_ended <= exited + 0.5  # the stream was closed, not cut by the exit
            log = service.log_tail()
            assert "pausing the plant first" in log
            assert "without the PLC's confirmation" not in log

        # The PLC was left told to stop, and stops (flush, then stopped).
        assert await plc_value(plc, "RunRequest") is False
        await until(lambda: _plc_mode_at_most_flushing(plc), within_s=15, what="the PLC to stop")

    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        store = Store(engine)
        pour = await store.get_pour(pour_id)
        assert pour.state == "paused"
        assert pour.interruptions[-1]["reason"] == "service_shutdown"
        assert pour.totals["poured_m3"] >= 0.1  # the last checkpoint, at the pause
        entries = [e for e in await store.list_audit(limit=1000) if e.kind == "setpoints"]
        assert entries[-1].new["run_request"] is False and entries[-1].acknowledged
        assert await store.verify_audit_chain() == (True, None)
    finally:
        await engine.dispose()


async def test_after_a_kill_9_the_first_resume_starts_the_plc(tmp_path: Path) -> None:
    db = tmp_path / "restart.db"
    async with running_plc(tmp_path) as plc:
        env = _env(db, plc)
        log = tmp_path / "service.log"
        with service_process(env=env, cwd=tmp_path, port=free_port(), log=log) as first:
            await wait_ready(first, within_s=30)
            async with httpx.AsyncClient(base_url=first.base_url, timeout=10.0) as client:
                await until(
                    lambda: _plant_mode(client, "stopped"), within_s=20, what="the PLC, stopped"
                )
                pour_id = await create_pour(client, target_m3=50.0, flow_m3_h=150.0)
                assert (await action(client, pour_id, "start")).status_code == 200
                await until(lambda: _running_with_paste(client), within_s=30, what="paste flowing")
            first.kill()
        # The PLC holds RunRequest true; its heartbeat watchdog stops the plant.
        assert await plc_value(plc, "RunRequest") is True
        await until(lambda: _plc_mode_at_most_flushing(plc), within_s=20, what="the watchdog stop")

        with service_process(env=env, cwd=tmp_path, port=free_port(), log=log) as second:
            await wait_ready(second, within_s=30)
            async with httpx.AsyncClient(base_url=second.base_url, timeout=10.0) as client:
                # Before anything else the restarted service tells the PLC to stop.
                await until(
                    lambda: _is(plc_value(plc, "RunRequest"), False),
                    within_s=15,
                    what="RunRequest false after the restart",
                )
                r = await client.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
                assert r.json()["state"] == "paused"
                assert r.json()["interruptions"][-1]["reason"] == "service_restart"
                await until(
                    lambda: _plant_mode(client, "stopped"), within_s=30, what="the PLC, stopped"
                )
                r = await action(client, pour_id, "resume")
                assert r.status_code == 200, r.text
                # The rising edge starts the plant: seconds, not the 300 s start timeout.
                await until(
                    lambda: _running_with_paste(client),
                    within_s=30,
                    what="the resumed pour to run",
                )


async def _poured_at_least(client: httpx.AsyncClient, pour_id: str, m3: float) -> bool:
    r = await client.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
    return r.status_code == 200 and float(r.json()["poured_m3"]) >= m3


async def _plant_mode(client: httpx.AsyncClient, mode: str) -> dict[str, Any] | None:
    st = await _plant(client)
    return st if st.get("connected") and st.get("plc_mode") == mode else None


async def _plc_mode_at_most_flushing(plc: NodePlcProcess) -> bool:
    return int(await plc_value(plc, "PlantMode")) in (0, 1)


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
