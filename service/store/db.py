"""Engine creation and schema migrations (Alembic, applied at start-up)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_MIGRATIONS = Path(__file__).with_name("migrations")
_WRITES = "backfill_writes"
log = logging.getLogger(__name__)


def create_engine(url: str) -> AsyncEngine:
    """Build the async engine for ``url``; SQLite gets WAL and full fsync so that a
    committed checkpoint survives a crash or power loss, and real transactions (see
    SQLAlchemy's pysqlite notes, "Serializable isolation / Savepoints / Transactional
    DDL")."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # Python's sqlite3 begins a transaction only before an INSERT/UPDATE/DELETE,
            # so a read followed by a write in one SQLAlchemy transaction would read
            # outside it and could lose a concurrent update. Take the BEGIN over.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get(_WRITES, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    # Bounded waits: a database that hangs must turn into an error, not a stalled task.
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 15},
    )


def for_writes(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for transactions that write. On SQLite they begin
    with ``BEGIN IMMEDIATE``: the write lock is taken up front (waiting up to the busy
    timeout for another writer), so a transaction that reads and then writes (the
    audit chain's previous hash, a version number, a pour's sample ids) can neither
    fail on a snapshot another writer overtook nor lose that writer's update. Reads
    keep a plain ``BEGIN`` and never wait for a writer (WAL)."""
    return engine.execution_options(**{_WRITES: True})


def store_error(err: BaseException) -> str:
    """A short, safe description of a database error for logs and API answers: the
    driver's own first line (e.g. "database or disk is full"), never SQL or values."""
    orig = getattr(err, "orig", None) or err
    text_ = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {text_[:160]}" if text_ else type(orig).__name__


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


_MIGRATION_LOCK = 0x6261636B66696C6C  # "backfill": one key for every instance


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent). Two instances starting
    together on one PostgreSQL take turns: the second finds the work done."""
    async with for_writes(engine).begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade)
    log.info("store schema is at the newest revision")
