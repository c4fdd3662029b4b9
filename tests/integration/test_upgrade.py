"""An upgrade loses nothing: a database written by the service at 2ee9c63 (schema 0003,
``tests/data/v0_backfill.db``, made by ``tests/data/make_v0_database.py`` against that
commit) is migrated forward by today's code at start, with every calibration, recipe,
pour, audit entry and history row intact and the audit chain still verifying; the
sample ids kept on its pours become sample records, its calibrations approved ones.

On PostgreSQL the same rows are written into a database at revision 0003 (by that
revision's own migrations), then today's code starts on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store import tables as t
from service.store.db import _alembic_config, create_engine
from service.store.history import history_minute, history_raw
from service.store.repository import Store
from tests.conftest import KEYS, auth, fresh_postgres_database
from tests.e2e.procs import service_env
from tests.integration.conftest import running_app

V0 = Path(__file__).resolve().parents[1] / "data" / "v0_backfill.db"
V0_TABLES = ("calibrations", "recipes", "pours", "audit", "history_raw", "history_minute")
JSON_COLUMNS = {
    "calibrations": ("model", "rows"),
    "recipes": ("mix", "design"),
    "pours": ("totals", "interruptions", "sample_ids"),
    "audit": ("old", "new"),
}


def _rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of the v0 tables, JSON decoded, keyed by table."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        found: dict[str, list[dict[str, Any]]] = {}
        for table in V0_TABLES:
            rows = [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
            for row in rows:
                for column in JSON_COLUMNS.get(table, ()):
                    if row[column] is not None:
                        row[column] = json.loads(row[column])
            found[table] = rows
        return found
    finally:
        conn.close()


@pytest.fixture
def v0_copy(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "backfill.db"
    shutil.copyfile(V0, path)
    yield path


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _same(table: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    for column, old in before.items():
        new = after[column]
        if column.endswith("_at") or column == "at":
            assert (old is None) == (new is None), (table, column)
            if old is not None:
                assert _instant(old) == _instant(new), (table, column)
        elif isinstance(old, float):
            assert new == pytest.approx(old, rel=1e-12, abs=1e-12), (table, column)
        else:
            assert new == old, (table, column, old, new)


async def _assert_intact(url: str, v0: dict[str, list[dict[str, Any]]]) -> None:
    """Start today's service on the database and read everything back."""
    async with running_app(url) as (app, client):
        store: Store = app.state.runtime.store
        for table, rows in v0.items():
            now = await _table_rows(store.engine, table)
            assert len(now) >= len(rows), table
            by_key = {_key(table, r): r for r in now}
            for row in rows:
                _same(table, row, by_key[_key(table, row)])
        # The approval column of the new revision: stored versions were approved when
        # stored (an approver was required), inline ones were not.
        for recipe in await store.list_recipes():
            assert (recipe.approved_at is not None) == (recipe.approved_by is not None)
            if recipe.approved_at is not None:
                assert recipe.approved_at == recipe.created_at
        assert await store.verify_audit_chain() == (True, None)

        r = await client.get("/api/v1/recipes", headers=auth("hmi"))
        assert r.status_code == 200, r.text
        recipes = {x["id"]: x for x in r.json()}
        assert set(recipes) >= {x["id"] for x in v0["recipes"]}
        inline = [x for x in recipes.values() if x["name"].startswith("inline ")]
        assert inline and not any(x["approved"] for x in inline)
        assert all(x["per_m3"] is not None and not x["problems"] for x in recipes.values())
        r = await client.get("/api/v1/pours", headers=auth("hmi"))
        assert r.status_code == 200, r.text
        pours = {p["id"]: p for p in r.json()["items"]}
        for old in v0["pours"]:
            pour = pours[old["id"]]
            assert pour["state"] == old["state"]
            assert pour["poured_m3"] == pytest.approx(old["totals"]["poured_m3"])
            assert pour["sample_ids"] == old["sample_ids"]
        await _assert_samples(client, v0)
        await _assert_no_correction(client, v0)
        completed = next(p for p in v0["pours"] if p["state"] == "completed")
        r = await client.get(f"/api/v1/pours/{completed['id']}/report.csv", headers=auth("hmi"))
        assert r.status_code == 200 and completed["stope_id"] in r.text
        assert "compliance.notices" in r.text
        r = await client.get("/api/v1/audit", params={"limit": 1000}, headers=auth("hmi"))
        items = r.json()["items"]
        # The old entries named no person (revision 0010_people); the one act since, the
        # lab result entered above, names its key's person.
        assert [e["id"] for e in items[: len(v0["audit"])]] == [e["id"] for e in v0["audit"]]
        assert all(e["person"] is None for e in items[: len(v0["audit"])])
        admin = f"admin:{hashlib.sha256(KEYS['admin'].encode()).hexdigest()[:8]}"
        assert [(e["kind"], e["person"]) for e in items[len(v0["audit"]) :]] == [
            ("lab_result", admin)
        ]
        r = await client.get("/api/v1/calibrations", headers=auth("hmi"))
        assert {c["id"] for c in r.json()} == {c["id"] for c in v0["calibrations"]}
        stamps = [row["ts_ms"] for row in v0["history_raw"]]
        r = await client.get(
            "/api/v1/plant/history",
            params={
                "tags": "paste_density_pv",
                "from": datetime.fromtimestamp(min(stamps) / 1000 - 1, UTC).isoformat(),
                "to": datetime.fromtimestamp(max(stamps) / 1000 + 1, UTC).isoformat(),
                "step": 1,
            },
            headers=auth("hmi"),
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["t"]) == len(stamps), "every v0 history sample reads back"


async def _assert_samples(client: httpx.AsyncClient, v0: dict[str, list[dict[str, Any]]]) -> None:
    """Revision 0008: every sample id kept on a v0 pour is a sample record, cast at the
    pour's start (its creation if it never started), its placed volume unknown; every
    stored calibration is approved."""
    expected = {sample: pour for pour in v0["pours"] for sample in pour["sample_ids"] or []}
    assert len(expected) == 3  # CYL-7-1, CYL-7-2 at creation, CYL-7-3 while it ran
    for sample_id, pour in expected.items():
        r = await client.get(f"/api/v1/samples/{sample_id}", headers=auth("hmi"))
        assert r.status_code == 200, r.text
        sample = r.json()
        assert sample["pour_id"] == pour["id"]
        assert _instant(sample["cast_at"]) == _instant(pour["started_at"] or pour["created_at"])
        assert sample["placed_m3"] is None
        assert sample["source"] == "migrated"
        assert sample["test_ages_days"] == [3.0, 7.0, 28.0]
        assert sample["results"] == []
    r = await client.get("/api/v1/samples", headers=auth("hmi"))
    assert {s["id"] for s in r.json()["items"]} >= set(expected)
    pour_id = next(iter(expected.values()))["id"]
    r = await client.get(f"/api/v1/pours/{pour_id}/compliance", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    compliance = r.json()
    assert compliance["samples"] == 3
    # Never tested: each planned test is overdue 2 days (the grace) after it fell due.
    evaluated = _instant(compliance["evaluated_at"])
    cast = _instant(expected["CYL-7-1"]["started_at"])
    due = [cast + timedelta(days=d) for d in (3.0, 7.0, 28.0)]
    late = {(s, d) for s in expected for d in due if evaluated > d + timedelta(days=2)}
    overdue = [n for n in compliance["notices"] if n["kind"] == "overdue"]
    assert {(n["sample_id"], _instant(n["due_at"])) for n in overdue} == late
    # A migrated sample takes its results as any other.
    r = await client.post(
        "/api/v1/samples/CYL-7-1/results",
        json={"curing_days": 3.0, "ucs_kpa": 180.0, "wet_mass_g": 400.0, "dry_mass_g": 300.0},
        headers=auth("admin"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["solids_pct"] == pytest.approx(75.0)
    r = await client.get(f"/api/v1/pours/{pour_id}/compliance", headers=auth("hmi"))
    assert ("CYL-7-1", due[0]) not in {
        (n["sample_id"], _instant(n["due_at"])) for n in r.json()["notices"] if n["due_at"]
    }
    r = await client.get("/api/v1/calibrations", headers=auth("hmi"))
    assert {c["status"] for c in r.json()} == {"approved"}


async def _assert_no_correction(
    client: httpx.AsyncClient, v0: dict[str, list[dict[str, Any]]]
) -> None:
    """Revision 0009: no correction is approved and no pour ran under one, so every v0
    pour reads its Cw as controlled as the best estimate, its record's off-spec volume
    on that basis."""
    r = await client.get("/api/v1/lab/correction", headers=auth("hmi"))
    assert r.status_code == 200 and r.json() == {"correction": None}, r.text
    r = await client.get("/api/v1/lab/reconciliations", headers=auth("hmi"))
    assert r.status_code == 200 and r.json() == {"items": []}, r.text
    for old in v0["pours"]:
        r = await client.get(f"/api/v1/pours/{old['id']}", headers=auth("hmi"))
        assert r.status_code == 200, r.text
        pour = r.json()
        assert pour["correction"] is None
        reconciled = pour["reconciliation"]
        assert reconciled["basis"] == "as_controlled" and reconciled["reconciled"] is None
        assert reconciled["as_controlled"]["average_solids_pct"] == pour["average_solids_pct"]
        assert reconciled["off_spec"]["volume_m3"] == pytest.approx(old["totals"]["off_spec_m3"])


def _key(table: str, row: dict[str, Any]) -> Any:
    return row["ts_ms"] if table.startswith("history_") else row["id"]


def _table(name: str) -> Table:
    history: dict[str, Table] = {"history_raw": history_raw, "history_minute": history_minute}
    return history[name] if name in history else t.metadata.tables[name]


async def _table_rows(engine: AsyncEngine, name: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(_table(name)))
        return [dict(r) for r in result.mappings()]


async def test_a_v0_sqlite_database_migrates_forward_intact(v0_copy: Path) -> None:
    v0 = _rows(V0)
    assert {k: len(v) for k, v in v0.items()} == {
        "calibrations": 2,
        "recipes": 3,
        "pours": 3,
        "audit": 144,
        "history_raw": 32,
        "history_minute": 2,
    }
    url = f"sqlite+aiosqlite:///{v0_copy}"
    await _assert_intact(url, v0)
    # The command-line check agrees.
    verified = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service.audit", "verify"],
        env=service_env({"BACKFILL_DATABASE_URL": url}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout


def _load_v0(conn: Connection, v0: dict[str, list[dict[str, Any]]]) -> None:
    """Revision 0003 by its own migrations, then the v0 rows as they are."""
    cfg = _alembic_config(conn)
    command.upgrade(cfg, "0003")
    for name in V0_TABLES:
        table = _table(name)
        rows = []
        for row in v0[name]:
            values = {k: v for k, v in row.items() if k in table.c}
            for column, value in values.items():
                if (column.endswith("_at") or column == "at") and isinstance(value, str):
                    values[column] = _instant(value)
            rows.append(values)
        if rows:
            conn.execute(insert(table), rows)
    if v0["audit"]:  # the ids came with the rows: move the sequence past them
        conn.exec_driver_sql("SELECT setval('audit_id_seq', (SELECT max(id) FROM audit))")


@pytest.mark.postgres
async def test_the_v0_rows_on_postgresql_migrate_forward_intact() -> None:
    v0 = _rows(V0)
    async with fresh_postgres_database() as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_load_v0, v0)
        finally:
            await engine.dispose()
        await _assert_intact(url, v0)
