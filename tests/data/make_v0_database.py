"""Writes ``v0_backfill.db``: a database as the service at commit 2ee9c63 (schema revision
0003) leaves it after real use, for the upgrade test (tests/integration/test_upgrade.py).

Run it against a checkout of that commit, not against the current code:

    git worktree add /tmp/v0 2ee9c63
    cd /tmp/v0 && PYTHONPATH=/tmp/v0 /path/to/.venv/bin/python \\
        /path/to/tests/data/make_v0_database.py /path/to/tests/data/v0_backfill.db

It runs the service in-process on its built-in simulator (20x plant time) and uses
the API as a plant would: a calibration uploaded, recipe versions (stored and
inline), a pour run to completion with a pause and a resume, a pour stopped, a
planned one, sample ids, alarms and setpoint writes in the audit log, and the
measurement history the recorder keeps.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.app import create_app
from service.settings import Settings

KEYS = {
    "hmi": "hmi-key-0123456789abcdef",
    "scada": "scada-key-0123456789abcdef",
    "engineer": "engineer-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
}
MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 35.7},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 5.0,
    "solids_pct": 72.0,
}
CALIBRATION_CSV = """binder_pct,solids_pct,curing_days,ucs_kpa,cement_fraction_pct,slag_fraction_pct
3,72,7,180,100,0
3,72,28,310,100,0
5,72,7,330,100,0
5,72,28,560,100,0
7,74,28,900,100,0
4,72,28,420,30,70
4,72,7,200,30,70
6,74,28,780,30,70
6,74,7,390,30,70
5,73,14,470,50,50
"""


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


async def until(client: httpx.AsyncClient, pour_id: str, states: set[str], within_s: float) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        pour = (await client.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))).json()
        if pour["state"] in states:
            return pour
        await asyncio.sleep(0.5)
    raise RuntimeError(f"pour {pour_id} never reached {states}")


async def use(db: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        api_keys=",".join(f"{role}:{key}" for role, key in KEYS.items()),
        sim={"speed": 20.0, "seed": 11},
        checkpoint_interval_s=1.0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://v0") as c:
            r = await c.post(
                "/api/v1/calibrations",
                json={"name": "mine lab 2026-10", "csv": CALIBRATION_CSV},
                headers=auth("engineer"),
            )
            assert r.status_code == 201, r.text
            calibration_id = r.json()["id"]
            for version in (1, 2):
                mix = {**MIX, "binder_pct": 5.0 + version * 0.25}
                r = await c.post(
                    "/api/v1/recipes",
                    json={
                        "name": "body S-7",
                        "mix": mix,
                        "approved_by": "J. Okafor",
                        "calibration_id": calibration_id,
                        "design": {"note": f"version {version}"},
                    },
                    headers=auth("engineer"),
                )
                assert r.status_code == 201, r.text
            recipe_id = r.json()["id"]
            await asyncio.sleep(3.0)  # a connected link first
            r = await c.post(
                "/api/v1/pours",
                json={
                    "stope_id": "S-7",
                    "recipe_id": recipe_id,
                    "target_volume_m3": 6.0,
                    "paste_flow_m3_h": 100.0,
                    "sample_ids": ["CYL-7-1", "CYL-7-2"],
                },
                headers=auth("scada"),
            )
            assert r.status_code == 201, r.text
            completed = r.json()["id"]
            r = await c.post(f"/api/v1/pours/{completed}/start", headers=auth("scada"))
            assert r.status_code == 200, r.text
            await asyncio.sleep(4.0)
            assert (
                await c.post(f"/api/v1/pours/{completed}/pause", headers=auth("scada"))
            ).is_success
            await asyncio.sleep(2.0)
            r = await c.post(f"/api/v1/pours/{completed}/resume", headers=auth("scada"))
            assert r.status_code == 200, r.text
            await c.post(
                f"/api/v1/pours/{completed}/samples",
                json={"sample_ids": ["CYL-7-3"]},
                headers=auth("scada"),
            )
            await until(c, completed, {"completed"}, 120.0)
            r = await c.post(
                "/api/v1/pours",
                json={
                    "stope_id": "S-8",
                    "recipe": MIX,
                    "target_volume_m3": 50.0,
                    "paste_flow_m3_h": 100.0,
                },
                headers=auth("scada"),
            )
            assert r.status_code == 201, r.text
            stopped = r.json()["id"]
            await asyncio.sleep(3.0)
            r = await c.post(f"/api/v1/pours/{stopped}/start", headers=auth("scada"))
            assert r.status_code == 200, r.text
            await asyncio.sleep(6.0)
            assert (await c.post(f"/api/v1/pours/{stopped}/stop", headers=auth("scada"))).is_success
            r = await c.post(
                "/api/v1/pours",
                json={
                    "stope_id": "S-9",
                    "recipe_id": recipe_id,
                    "target_volume_m3": 400.0,
                    "paste_flow_m3_h": 90.0,
                },
                headers=auth("scada"),
            )
            assert r.status_code == 201, r.text
            await asyncio.sleep(4.0)  # the recorder's last flush


def main(target: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "backfill.db"
        asyncio.run(use(db))
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("VACUUM")
        conn.close()
        shutil.copyfile(db, target)


if __name__ == "__main__":
    main(sys.argv[1])
