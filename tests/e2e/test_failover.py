"""One writer with failover: two real service processes on one PostgreSQL and one
simulated PLC (a third process). The writer is killed with SIGKILL mid-pour; the
standby takes over within 10 s with a higher fencing epoch and continues the pour
(paused, then continued), with the totals of the last checkpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import api_keys_setting, auth, fresh_postgres_database
from tests.e2e.helpers import approved_recipe
from tests.e2e.procs import (
    ServiceProcess,
    free_port,
    service_process,
    simulator_process,
    tag_map_without_diverter,
    until,
    wait_ready,
)


async def _status(proc: ServiceProcess) -> dict[str, Any] | None:
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=2.0) as c:
            r = await c.get("/api/v1/plant/status", headers=auth("hmi"))
    except httpx.TransportError:
        return None
    return r.json() if r.status_code == 200 else None


async def _pour(proc: ServiceProcess, pour_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=5.0) as c:
        r = await c.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_standby_takes_over_a_killed_writer(tmp_path: Path) -> None:
    sim_port = free_port()
    with simulator_process(sim_port, tmp_path / "sim.log"):
        async with fresh_postgres_database() as db_url:
            env = {
                "BACKFILL_DATABASE_URL": db_url,
                "BACKFILL_API_KEYS": api_keys_setting(),
                "BACKFILL_PLC__ENDPOINT": f"opc.tcp://127.0.0.1:{sim_port}",
                "BACKFILL_PLC__ALLOW_INSECURE": "true",  # the simulator
                # A plant without the dump diverter: the start's paste goes to the stope.
                "BACKFILL_PLC__TAG_MAP": str(tag_map_without_diverter(tmp_path)),
                "BACKFILL_PLC__PUBLISHING_INTERVAL_MS": "200",
                "BACKFILL_FAILOVER__ENABLED": "true",
                "BACKFILL_CHECKPOINT_INTERVAL_S": "1",
            }
            with (
                service_process(
                    env={**env, "BACKFILL_FAILOVER__INSTANCE_ID": "a"},
                    cwd=tmp_path,
                    port=free_port(),
                    log=tmp_path / "a.log",
                ) as a,
                service_process(
                    env={**env, "BACKFILL_FAILOVER__INSTANCE_ID": "b"},
                    cwd=tmp_path,
                    port=free_port(),
                    log=tmp_path / "b.log",
                ) as b,
            ):
                await wait_ready(a, within_s=60)
                await wait_ready(b, within_s=60)

                async def one_writer() -> tuple[ServiceProcess, ServiceProcess] | None:
                    sa, sb = await _status(a), await _status(b)
                    if sa is None or sb is None or not (sa["connected"] and sb["connected"]):
                        return None
                    if sa["writer"] != sb["writer"]:
                        return (a, b) if sa["writer"] else (b, a)
                    return None

                writer, standby = await until(one_writer, within_s=30, what="one writer")
                first_epoch = (await _status(writer) or {})["writer_epoch"]

                async with httpx.AsyncClient(base_url=standby.base_url, timeout=10) as c:
                    body = {
                        "stope_id": "S-7",
                        "recipe_id": await approved_recipe(c),
                        "target_volume_m3": 40.0,
                        "paste_flow_m3_h": 100.0,
                    }
                    r = await c.post("/api/v1/pours", json=body, headers=auth("scada"))
                    assert r.status_code == 201, r.text
                    pour_id = r.json()["id"]
                    # The standby reads, but never drives the plant.
                    r = await c.post(f"/api/v1/pours/{pour_id}/start", headers=auth("scada"))
                    assert r.status_code == 503
                    assert r.json()["code"] == "not_the_writer"
                async with httpx.AsyncClient(base_url=writer.base_url, timeout=10) as c:
                    r = await c.post(f"/api/v1/pours/{pour_id}/start", headers=auth("scada"))
                    assert r.status_code == 200, r.text

                async def placed() -> dict[str, Any] | None:
                    p = await _pour(writer, pour_id)
                    return p if p["poured_m3"] >= 0.2 else None

                before = await until(placed, within_s=90, what="paste placed by the writer")

                writer.kill()
                killed_at = time.monotonic()

                async def taken_over() -> dict[str, Any] | None:
                    st = await _status(standby)
                    return st if st is not None and st["writer"] else None

                st = await until(taken_over, within_s=15, what="the standby taking over")
                assert time.monotonic() - killed_at < 10.0
                assert st["writer_epoch"] > first_epoch

                async def continued() -> dict[str, Any] | None:
                    p = await _pour(standby, pour_id)
                    reasons = [i["reason"] for i in p["interruptions"]]
                    ok = p["state"] == "running" and "writer_failover" in reasons
                    return p if ok and p["interruptions"][-1].get("ended_at") else None

                after = await until(continued, within_s=120, what="the pour continued")
                # At most one checkpoint interval (1 s at 100 m3/h: 0.03 m3) is lost.
                assert after["poured_m3"] >= before["poured_m3"] - 0.05

                async with httpx.AsyncClient(base_url=standby.base_url, timeout=10) as c:

                    async def written_by_both() -> list[int] | None:
                        # The new writer's first write may still be on its way to the PLC
                        # and the audit log when the pour shows as running again.
                        r = await c.get(
                            f"/api/v1/audit?pour_id={pour_id}&limit=1000", headers=auth("hmi")
                        )
                        seqs = [e["seq"] for e in r.json()["items"] if e["seq"] is not None]
                        epochs = [seq >> 20 for seq in seqs]
                        both = first_epoch in epochs and st["writer_epoch"] in epochs
                        return epochs if both else None

                    epochs = await until(written_by_both, within_s=20, what="both epochs")
                    assert epochs == sorted(epochs)  # no write of the old writer after the new
                    r = await c.post(f"/api/v1/pours/{pour_id}/stop", headers=auth("scada"))
                    assert r.status_code == 200, r.text
                    assert r.json()["state"] == "stopped"
