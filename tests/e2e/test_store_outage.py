"""PostgreSQL unreachable for 30 s mid-pour (a network cut through a proxy in front of
the real server): control goes on from memory, records and history wait in memory
and are written when the database is back; nothing is lost."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from service.store.db import create_engine
from service.store.repository import Store
from tests.conftest import auth, fresh_postgres_database
from tests.e2e.helpers import create_pour, eventually, get_pour, running_service, settings, status
from tests.proxy import TcpProxy

OUTAGE_S = 30.0


async def test_a_database_outage_mid_pour_loses_nothing(tmp_path: Path) -> None:
    async with fresh_postgres_database() as direct_url:
        url = make_url(direct_url)
        proxy = TcpProxy(url.port or 5432)
        await proxy.allow()
        through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
        try:
            s = settings(through_proxy, history={"flush_interval_s": 1.0})
            async with running_service(s) as (client, runtime):
                await eventually(lambda: _connected(client), within_s=20, what="the PLC link")
                pour_id = await create_pour(client, target_m3=30.0)
                r = await client.post(f"/api/v1/pours/{pour_id}/start", headers=auth("scada"))
                assert r.status_code == 200, r.text

                async def placed() -> bool:
                    return (await get_pour(client, pour_id))["poured_m3"] >= 3.0

                await eventually(placed, within_s=120, what="3 m3 placed")
                cut_at = datetime.now(UTC)
                await proxy.cut()

                # The database is gone: readiness says so, the plant is still controlled.
                r = await client.get("/readyz")
                assert r.status_code == 503
                first = (await status(client))["setpoints"]["water_flow_sp"]["written_at"]
                deadline = time.monotonic() + OUTAGE_S
                seen_writes: set[str] = set()
                while time.monotonic() < deadline:
                    st = await status(client)
                    assert st["connected"]
                    seen_writes.add(st["setpoints"]["water_flow_sp"]["written_at"])
                    await asyncio.sleep(1.0)
                assert len(seen_writes - {first}) >= 3, "setpoints kept being written"
                live = runtime.supervisor.live_totals(pour_id)
                during = live.poured_m3 if live is not None else None
                restored_at = datetime.now(UTC)
                await proxy.allow()

                last_seen: list[str] = []

                async def completed() -> dict[str, Any] | None:
                    r = await client.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
                    last_seen[:] = [f"{r.status_code} {r.text[:300]}"]
                    if r.status_code != 200:
                        return None
                    p: dict[str, Any] = r.json()
                    return p if p["state"] == "completed" else None

                try:
                    done = await eventually(completed, within_s=120, what="completion")
                except AssertionError as err:
                    raise AssertionError(f"{err}; last answer: {last_seen}") from None
                assert done["poured_m3"] >= 30.0
                assert during is not None and during < 30.0

                # Every write of the outage is in the audit log, in order, chain intact.
                audit: list[dict[str, Any]] = []
                after = 0
                while True:
                    page = (
                        await client.get(
                            f"/api/v1/audit?after_id={after}&limit=1000", headers=auth("hmi")
                        )
                    ).json()
                    audit += page["items"]
                    if not page["items"]:
                        break
                    after = page["next_after_id"]
                in_outage = [
                    e for e in audit if cut_at < datetime.fromisoformat(e["at"]) < restored_at
                ]
                assert len(in_outage) >= 3
                assert [e["id"] for e in audit] == sorted(e["id"] for e in audit)

                # The history of the outage was buffered and written.
                async def history_written() -> bool:
                    r = await client.get(
                        "/api/v1/plant/history",
                        params={
                            "tags": "paste_density_pv",
                            "from": cut_at.isoformat(),
                            "to": restored_at.isoformat(),
                            "step": 1,
                        },
                        headers=auth("hmi"),
                    )
                    return r.status_code == 200 and len(r.json()["t"]) >= OUTAGE_S * 0.8

                await eventually(history_written, within_s=20, what="the outage's history")
        finally:
            await proxy.cut()
        engine = create_engine(direct_url)
        try:
            assert await Store(engine).verify_audit_chain() == (True, None)
        finally:
            await engine.dispose()


async def _connected(client: Any) -> bool:
    st = await status(client)
    return bool(st["connected"] and st["plc_mode"] is not None)
