"""A PLC that freezes in the middle of a pour (issue 6, "Proof"): the simulated PLC
(``python -m service.simulator``) and the service (``python -m service``) as real
processes; the PLC process is stopped with SIGSTOP while paste flows, as a hung
controller or a frozen OPC UA server would be: its socket stays open, nothing answers.

The service must notice the silence on its own (no TCP error arrives), mark every
measurement bad, pause the pour and refuse writes; nothing it writes in that time may
be acknowledged. When the PLC runs again (SIGCONT) the link comes back, the pour stays
paused until someone resumes it, and resumed it places paste again.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import api_keys_setting, auth
from tests.e2e.helpers import action, create_pour, get_pour, status
from tests.e2e.procs import (
    free_port,
    service_process,
    simulator_process,
    tag_map_without_diverter,
    until,
    wait_ready,
)

pytestmark = pytest.mark.slow

FROZEN_S = 10.0  # longer than the link's stale limit and the pause delay together,
# and than the PLC's own heartbeat watchdog (5 s)


async def _connected(client: httpx.AsyncClient) -> dict[str, Any] | None:
    st = await status(client)
    return st if st["connected"] and st["plc_mode"] is not None else None


async def _silent(client: httpx.AsyncClient) -> dict[str, Any] | None:
    st = await status(client)
    bad = all(m["quality"] != "good" for m in st["measurements"].values())
    return st if bad else None


async def _pour_if(
    client: httpx.AsyncClient, pour_id: str, *, state: str, min_m3: float = 0.0
) -> dict[str, Any] | None:
    p = await get_pour(client, pour_id)
    return p if p["state"] == state and p["poured_m3"] >= min_m3 else None


async def _audit(client: httpx.AsyncClient, pour_id: str) -> list[dict[str, Any]]:
    r = await client.get(
        f"/api/v1/audit?pour_id={pour_id}&kind=setpoints&limit=1000", headers=auth("hmi")
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_a_plc_freeze_mid_pour_pauses_it_and_writes_nothing(tmp_path: Path) -> None:
    sim_port = free_port()
    env = {
        "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'freeze.db'}",
        "BACKFILL_API_KEYS": api_keys_setting(),
        "BACKFILL_PLC__ENDPOINT": f"opc.tcp://127.0.0.1:{sim_port}",
        "BACKFILL_PLC__ALLOW_INSECURE": "true",  # the simulator
        # A plant without the dump diverter: the start's paste goes to the stope.
        "BACKFILL_PLC__TAG_MAP": str(tag_map_without_diverter(tmp_path)),
        "BACKFILL_PLC__PUBLISHING_INTERVAL_MS": "200",
        "BACKFILL_PLC__RECONNECT_MAX_S": "2",  # back within 2 s of the PLC's return
        "BACKFILL_CHECKPOINT_INTERVAL_S": "1",
        "BACKFILL_LOG_LEVEL": "INFO",
    }
    with (
        simulator_process(sim_port, tmp_path / "sim.log") as sim,
        service_process(env=env, cwd=tmp_path, port=free_port(), log=tmp_path / "svc.log") as svc,
    ):
        await wait_ready(svc, within_s=60)
        async with httpx.AsyncClient(base_url=svc.base_url, timeout=10.0) as client:
            await until(lambda: _connected(client), within_s=30, what="the PLC link")
            pour_id = await create_pour(client, target_m3=40.0)
            r = await action(client, pour_id, "start")
            assert r.status_code == 200, r.text
            await until(
                lambda: _pour_if(client, pour_id, state="running", min_m3=0.05),
                within_s=90,
                what="paste placed",
            )
            frozen_wall = datetime.now(UTC)
            sim.send_signal(signal.SIGSTOP)
            frozen_at = time.monotonic()
            try:
                down = await until(lambda: _silent(client), within_s=15, what="bad data")
                assert down["measurements"], down
                paused = await until(
                    lambda: _pour_if(client, pour_id, state="paused"),
                    within_s=20,
                    what="the pour paused",
                )
                assert paused["interruptions"][-1]["reason"] == "plant_link_lost"
                # Nothing may be driven into a PLC that does not answer.
                r = await action(client, pour_id, "resume")
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "plant_link_down"
                # The totals stop with the data: no paste is counted while blind.
                held = (await get_pour(client, pour_id))["poured_m3"]
                # Stay frozen for the whole window, watching what the service does.
                await asyncio.sleep(max(0.0, FROZEN_S - (time.monotonic() - frozen_at)))
                assert (await get_pour(client, pour_id))["poured_m3"] == held
                # Audit entries are written from a queue: select them by time. A set the
                # PLC acknowledged just before the freeze may be stamped a moment later.
                settled = frozen_wall + timedelta(seconds=0.5)
                entries = await _audit(client, pour_id)
                during = [e for e in entries if datetime.fromisoformat(e["at"]) > settled]
                assert not any(e["acknowledged"] for e in during), during
                # Once paused, anything attempted is a stop, never a new set of rates (the
                # cycle under way when the PLC froze may have tried one, on data that was
                # still fresh; it failed and is on record as failed).
                paused_at = datetime.fromisoformat(paused["interruptions"][-1]["started_at"])
                after_pause = [e for e in during if datetime.fromisoformat(e["at"]) > paused_at]
                assert all(e["new"].get("run_request") is False for e in after_pause), during
            finally:
                sim.send_signal(signal.SIGCONT)

            await until(lambda: _connected(client), within_s=40, what="the link back")
            # The stop the service could not deliver is delivered now; the pour does not
            # start again by itself.
            await until(
                lambda: _stop_written_after(client, paused_at),
                within_s=20,
                what="the stop delivered",
            )
            assert (await get_pour(client, pour_id))["state"] == "paused"

            r = await action(client, pour_id, "resume")
            assert r.status_code == 200, r.text
            resumed = await until(
                lambda: _pour_if(client, pour_id, state="running", min_m3=held + 0.05),
                within_s=90,
                what="paste placed after the freeze",
            )
            assert resumed["interruptions"][-1].get("ended_at")
            r = await action(client, pour_id, "stop")
            assert r.status_code == 200, r.text

            entries = await _audit(client, pour_id)
            seqs = [e["seq"] for e in entries if e["acknowledged"]]
            assert seqs == sorted(seqs)
        assert svc.alive, svc.log_tail()


async def _stop_written_after(client: httpx.AsyncClient, after: datetime) -> dict[str, Any] | None:
    st = await status(client)
    rr = st["setpoints"].get("run_request")
    if rr is None or rr["value"] is not False or not rr.get("written_at"):
        return None
    return st if datetime.fromisoformat(rr["written_at"]) > after else None
