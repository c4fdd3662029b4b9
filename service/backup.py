"""``python -m service.backup create FILE`` / ``restore FILE``: an online backup of the
SQLite store, and its restore.

``create`` copies the database while the service runs, with SQLite's online backup API
(https://www.sqlite.org/backup.html): the copy is one consistent snapshot (a write that
commits meanwhile is in it whole or not at all), taken in steps so that the service's
writes are never held up for long. The copy is checked (``PRAGMA integrity_check``, the
schema revision, the audit chain) and moved into place only when it is sound.

``restore`` writes a backup over the database named by ``BACKFILL_DATABASE_URL``; the
service must be stopped (the command refuses a database another process has open).
The backup is checked first; a newer service migrates it forward at its next start.

PostgreSQL has its own tools: ``pg_dump --format=custom`` while the service runs, and
``pg_restore --clean --if-exists`` into a stopped service's database (README,
"Operations"). Exit status 0 on success, 1 when the backup is unsound, 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from service.settings import ConfigurationError, load_settings
from service.store.repository import Store

_PAGES_PER_STEP = 256
_STEP_PAUSE_S = 0.005


class BackupError(Exception):
    """What went wrong, in one line; ``unsound`` when it is the backup file itself."""

    def __init__(self, message: str, *, unsound: bool = False) -> None:
        super().__init__(message)
        self.unsound = unsound


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError(
            "the backup command is for the SQLite store; for PostgreSQL use pg_dump and "
            "pg_restore (README, Operations)"
        )
    return Path(url.database)


@contextlib.contextmanager
def _connect(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def check(path: Path) -> str:
    """Refuse (BackupError) a file that is no sound backup of this service; return the
    schema revision it holds."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    try:
        with _connect(path, read_only=True) as conn:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if result != "ok":
                raise BackupError(f"{path} is damaged: {result}", unsound=True)
            tables = _tables(conn)
            if "alembic_version" not in tables or "audit" not in tables:
                raise BackupError(f"{path} is not a database of this service", unsound=True)
            revision: str = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    except sqlite3.DatabaseError as err:
        raise BackupError(f"{path} is not a readable SQLite database: {err}", unsound=True) from err
    intact, broken = asyncio.run(_audit_chain(path))
    if not intact:
        raise BackupError(f"{path}: the audit chain is broken at entry {broken}", unsound=True)
    return revision


async def _audit_chain(path: Path) -> tuple[bool, int | None]:
    # Read-only and without the service's pragmas: checking a backup must not turn it
    # into a WAL database (with -wal and -shm files beside it) or change it at all.
    engine = create_async_engine(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    try:
        return await Store(engine).verify_audit_chain()
    finally:
        await engine.dispose()


def create(database: Path, target: Path, *, force: bool = False) -> dict[str, int]:
    """Copy ``database`` (in use or not) to ``target``; returns the rows per table."""
    if not database.is_file():
        raise BackupError(f"there is no database at {database}")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; give --force to replace it")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with _connect(database, read_only=True) as source, _connect(partial) as copy:
            source.backup(copy, pages=_PAGES_PER_STEP, sleep=_STEP_PAUSE_S)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            counts = _tables(copy)
        check(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return counts


def restore(source: Path, database: Path) -> dict[str, int]:
    """Write the backup ``source`` over ``database``; refuses while another process has
    the database open (the service must be stopped)."""
    check(source)
    database.parent.mkdir(parents=True, exist_ok=True)
    with _connect(database) as target:
        try:
            # Exclusive locking: refused while any other connection (a running service)
            # holds the database, and holds every other one off until the end.
            target.execute("PRAGMA locking_mode=EXCLUSIVE")
            target.execute("BEGIN EXCLUSIVE")
            target.execute("COMMIT")
        except sqlite3.OperationalError as err:
            raise BackupError(
                f"{database} is in use ({err}): stop the service before a restore"
            ) from err
        with _connect(source, read_only=True) as backup:
            backup.backup(target)
        # The copy's rollback journal stays beside the database under the exclusive
        # lock (zeroed, not deleted), and a switch to WAL would leave it there for good:
        # back to a deleting journal, the lock given up, then WAL as the service runs.
        target.execute("PRAGMA journal_mode=DELETE")
        target.execute("PRAGMA locking_mode=NORMAL")
        target.execute("SELECT count(*) FROM sqlite_master").fetchone()  # drops the lock
        target.execute("PRAGMA journal_mode=WAL")
        counts = _tables(target)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="copy the running service's SQLite store")
    make.add_argument("file", type=Path)
    make.add_argument("--force", action="store_true", help="replace FILE if it exists")
    back = sub.add_parser("restore", help="write a backup over the store (service stopped)")
    back.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        database = sqlite_path(load_settings().database_url)
        if args.command == "create":
            counts = create(database, args.file, force=args.force)
            print(f"backup of {database} written to {args.file}")
        else:
            counts = restore(args.file, database)
            print(f"{args.file} restored to {database}")
    except ConfigurationError as err:
        for line in err.lines:
            print(f"configuration error: {line}", file=sys.stderr)
        return 2
    except BackupError as err:
        print(f"backup: {err}", file=sys.stderr)
        return 1 if err.unsound else 2
    for table, rows in counts.items():
        print(f"  {table}: {rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
