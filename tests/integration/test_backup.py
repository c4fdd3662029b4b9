"""The SQLite store's online backup and its restore, by the shipped commands: a backup
taken while the service runs and writes is a sound snapshot; a restore is refused while
the service runs and, once it is stopped, gives back every table exactly."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import auth
from tests.e2e.procs import service_env
from tests.integration.conftest import running_app

V0 = Path(__file__).resolve().parents[1] / "data" / "v0_backfill.db"
MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 35.7},
    "binder": [{"name": "cement", "specific_gravity": 3.15, "fraction_pct": 100}],
    "binder_pct": 6.0,
    "solids_pct": 74.0,
}


async def backup_command(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service.backup", *args],
        env=service_env({"BACKFILL_DATABASE_URL": url}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        conn.close()


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_an_online_backup_and_a_restore_give_back_every_table(tmp_path: Path) -> None:
    live = tmp_path / "backfill.db"
    shutil.copyfile(V0, live)
    url = f"sqlite+aiosqlite:///{live}"
    copy = tmp_path / "backup.db"
    async with running_app(url) as (_app, client):
        # The service runs and writes (history every second, the heartbeat's records)
        # while the copy is taken.
        await asyncio.sleep(2.0)
        made = await backup_command(url, "create", str(copy))
        assert made.returncode == 0, made.stderr
        assert "audit:" in made.stdout
        # A change after the snapshot is in the live store only.
        r = await client.post(
            "/api/v1/recipes",
            json={"name": "after the backup", "mix": MIX, "approved_by": "A. Engineer"},
            headers=auth("engineer"),
        )
        assert r.status_code == 201, r.text
        # A restore is refused while the service has the store open: nothing changes.
        refused = await backup_command(url, "restore", str(copy))
        assert refused.returncode == 2
        assert "stop the service" in refused.stderr
        r = await client.get(
            "/api/v1/recipes", params={"name": "after the backup"}, headers=auth("hmi")
        )
        assert len(r.json()) == 1
        # A second backup to the same file needs --force.
        again = await backup_command(url, "create", str(copy))
        assert again.returncode == 2 and "--force" in again.stderr

    snapshot = dump(copy)
    before = dump(live)
    assert set(snapshot) == set(before)
    for table in ("calibrations", "pours", "audit"):
        assert set(snapshot[table]) <= set(before[table]), table
    assert len(before["recipes"]) == len(snapshot["recipes"]) + 1
    assert len(snapshot["history_raw"]) > 32  # the v0 history and what was recorded since

    restored = await backup_command(url, "restore", str(copy))
    assert restored.returncode == 0, restored.stderr
    assert dump(live) == snapshot
    # The restored store runs: today's service starts on it and reads it.
    async with running_app(url) as (_app, client):
        r = await client.get(
            "/api/v1/recipes", params={"name": "after the backup"}, headers=auth("hmi")
        )
        assert r.status_code == 200 and r.json() == []
        r = await client.get("/api/v1/pours", headers=auth("hmi"))
        assert len(r.json()["items"]) == len(snapshot["pours"])


async def test_a_damaged_backup_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    live = tmp_path / "backfill.db"
    shutil.copyfile(V0, live)
    url = f"sqlite+aiosqlite:///{live}"
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    before = dump(live)
    result = await backup_command(url, "restore", str(bad))
    assert result.returncode == 1
    assert "not a readable SQLite database" in result.stderr
    # An altered audit entry: the chain check refuses the backup.
    tampered = tmp_path / "tampered.db"
    shutil.copyfile(V0, tampered)
    conn = sqlite3.connect(tampered)
    conn.execute("UPDATE audit SET reason = 'edited' WHERE id = 5")
    conn.commit()
    conn.close()
    result = await backup_command(url, "restore", str(tampered))
    assert result.returncode == 1
    assert "audit chain is broken at entry 5" in result.stderr
    assert dump(live) == before
    # PostgreSQL has its own tools: the command says so.
    result = await backup_command("postgresql+asyncpg://u@h/db", "create", str(tmp_path / "x"))
    assert result.returncode == 2 and "pg_dump" in result.stderr


async def test_a_restore_leaves_no_journal_and_the_checks_leave_the_backup_untouched(
    tmp_path: Path,
) -> None:
    """A restore onto a new machine (no database yet) or over a database in rollback
    mode left the copy's zeroed ``-journal`` beside the store; the backup's own check
    turned the backup file into a WAL database (``-wal`` and ``-shm`` beside it)."""
    backup = tmp_path / "backup.db"
    shutil.copyfile(V0, backup)
    before = backup.read_bytes()
    fresh = tmp_path / "new" / "backfill.db"
    rollback = tmp_path / "rollback.db"
    shutil.copyfile(V0, rollback)  # a store that is in rollback-journal mode
    for database in (fresh, rollback):
        restored = await backup_command(f"sqlite+aiosqlite:///{database}", "restore", str(backup))
        assert restored.returncode == 0, restored.stderr
        beside = names_in(database.parent)
        assert f"{database.name}-journal" not in beside, beside
        conn = sqlite3.connect(database)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
        assert dump(database) == dump(V0)
    assert backup.read_bytes() == before
    assert [name for name in names_in(tmp_path) if name.startswith("backup")] == ["backup.db"]
