"""The SQLite file on a full disk: a clear error, nothing corrupt, and writing works
again once there is room. The disk is a small tmpfs mounted by the test (as root)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.errors import StoreUnavailable
from service.store.db import create_engine, migrate
from service.store.repository import Store
from tests.conftest import need


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    can_mount = os.geteuid() == 0 and shutil.which("mount") is not None
    need(can_mount, "mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    need(done.returncode == 0, f"mount -t tmpfs failed: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        done = subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        if done.returncode != 0:  # still busy: detach it so nothing is left mounted
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


async def test_a_full_disk_is_a_clear_error_and_corrupts_nothing(small_disk: Path) -> None:
    db = small_disk / "backfill.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await migrate(engine)
        store = Store(engine)
        for i in range(5):
            await store.append_audit(kind="setpoints", reason="recipe", role="scada", new={"i": i})
        # Fill the disk to the last byte.
        filler = small_disk / "filler"
        with filler.open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        with pytest.raises(StoreUnavailable) as err:
            for i in range(200):  # a page or two of room may be left: fill it
                await store.append_audit(
                    kind="setpoints",
                    reason="correction",
                    role="service",
                    new={"x": "y" * 4000, "i": i},
                )
        assert "full" in err.value.detail.lower()
        assert err.value.code == "store_unavailable"
        filler.unlink()
        await store.append_audit(kind="setpoints", reason="recipe", role="scada", new={"i": 99})
        assert await store.verify_audit_chain() == (True, None)
    finally:
        await engine.dispose()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
