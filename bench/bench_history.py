"""History trend queries over a week of one-second history, on SQLite and PostgreSQL.

For each backend: a fresh store (an SQLite file in a temporary folder; a PostgreSQL
database created for the run and dropped after it, also on Ctrl-C), migrated to the
newest revision, then filled with ``--days`` (default 7) of one-second history: one raw
row per second with every ``HISTORY_TAGS`` column (plausible values of a plant that
pours 8 h in every 12, with some values None as the recorder stores them when their
quality is not good or no pour is running), and one minute row per minute built with
``MinuteAccumulator`` exactly as ``HistoryRecorder.record`` does. SQLite is filled
through ``HistoryStore.write`` (one transaction per day); PostgreSQL gets its raw rows
by COPY (``--pg-fill write`` uses ``HistoryStore.write`` there too) and its minute rows
through ``HistoryStore.write``, then ``ANALYZE`` as autovacuum would run it.

Then, side by side in the same run, ``HistoryStore.query`` is timed (``--runs`` each,
default 20, after 2 warm-up runs), always over the newest data:

* (a) the last 24 h at 60 s steps for ``--tags`` (minute table): the target, < 100 ms;
* (a*) the same with every history tag (minute table), for information;
* (b) the same 24 h at 30 s steps (raw table; 10 s would be 8,640 points, over
  ``MAX_BUCKETS``, so the query refuses it);
* (c) the last 15 minutes at 1 s steps (raw table), the live page's default trend.

Printed: fill time, table rows and on-disk size, median and p95 per query, the SQL
alone for (a), and (a)'s median against the 100 ms target (PASS/FAIL). ``--explain``
also prints the database's plan of (a).

Run: ``.venv/bin/python bench/bench_history.py [--backend both] [--days 7]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.db import create_engine, migrate
from service.store.history import (
    HISTORY_TAGS,
    HistoryStore,
    MinuteAccumulator,
    history_metadata,
)

TARGET_MS = 100.0
DAY_S = 86_400
MINUTE_MS = 60_000
WARMUP_RUNS = 2
DEFAULT_TAGS = ("paste_density_pv", "solids_pct", "binder_pct", "cement_rate_pv")
PG_ADMIN_DSN = os.environ.get("BACKFILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

POUR_PERIOD_S = 12 * 3600  # a pour of 8 h, then 4 h stopped, round the clock
POUR_LENGTH_S = 8 * 3600
NOT_GOOD_CHANCE = 0.005  # a measurement's quality is not good, so it is stored as None
OUTAGE_EVERY_S = DAY_S  # once a day the link is down for ten minutes: every PV None
OUTAGE_LENGTH_S = 600
PV_TAGS = tuple(t for t in HISTORY_TAGS if t.endswith("_pv"))


# --- the history ---------------------------------------------------------------------


class PlantHistory:
    """One plausible sample per second, deterministic for a seed."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def sample(self, t_s: int) -> dict[str, float | None]:
        rng = self._rng
        gauss = rng.gauss
        in_cycle = t_s % POUR_PERIOD_S
        running = in_cycle < POUR_LENGTH_S
        slow = math.sin(2 * math.pi * t_s / 3700.0)
        if running:
            step = float((t_s // 1800) % 4)  # the operator moves the setpoints now and then
            flow_sp = 100.0 + 2.5 * step
            cement_sp, slag_sp, flyash_sp = 2.4 + 0.1 * step, 7.2 + 0.3 * step, 0.0
            water_sp, density_sp = 21.0 + 0.4 * step, 1880.0 + 5.0 * step
            out: dict[str, float | None] = {
                "tailings_flow_pv": flow_sp + 1.5 * slow + gauss(0.0, 0.8),
                "tailings_density_pv": 1610.0 + 12.0 * slow + gauss(0.0, 3.0),
                "cement_rate_pv": cement_sp + gauss(0.0, 0.05),
                "slag_rate_pv": slag_sp + gauss(0.0, 0.12),
                "flyash_rate_pv": abs(gauss(0.0, 0.01)),
                "water_flow_pv": water_sp + gauss(0.0, 0.3),
                "paste_flow_pv": 62.0 + 1.2 * slow + gauss(0.0, 0.6),
                "paste_density_pv": density_sp + 6.0 * slow + gauss(0.0, 2.0),
                "pump_pressure_pv": 48.0 + 3.0 * slow + gauss(0.0, 0.7),
                "mixer_level_pv": 60.0 + 4.0 * slow + gauss(0.0, 1.0),
                "plant_mode": 2.0,
                "tailings_flow_sp": flow_sp,
                "cement_rate_sp": cement_sp,
                "slag_rate_sp": slag_sp,
                "flyash_rate_sp": flyash_sp,
                "water_flow_sp": water_sp,
                "paste_density_sp": density_sp,
                "solids_pct": 75.5 + 0.4 * slow + gauss(0.0, 0.15),
                "binder_pct": 4.5 + gauss(0.0, 0.05),
                "solids_pct_target": 75.5,
                "binder_pct_target": 4.5,
                "mass_balance_residual_t_h": gauss(0.0, 0.8),
                "instrument_disagreement": 0.0,
            }
        else:
            flushing = in_cycle < POUR_LENGTH_S + 900
            out = {
                "tailings_flow_pv": abs(gauss(0.0, 0.2)),
                "tailings_density_pv": 1000.0 + gauss(0.0, 1.0),
                "cement_rate_pv": 0.0,
                "slag_rate_pv": 0.0,
                "flyash_rate_pv": 0.0,
                "water_flow_pv": (30.0 if flushing else 0.0) + abs(gauss(0.0, 0.2)),
                "paste_flow_pv": (28.0 if flushing else 0.0) + abs(gauss(0.0, 0.3)),
                "paste_density_pv": 1000.0 + gauss(0.0, 1.0),
                "pump_pressure_pv": (12.0 if flushing else 0.5) + gauss(0.0, 0.2),
                "mixer_level_pv": 15.0 + gauss(0.0, 0.5),
                "plant_mode": 1.0 if flushing else 0.0,
                "tailings_flow_sp": 0.0,
                "cement_rate_sp": 0.0,
                "slag_rate_sp": 0.0,
                "flyash_rate_sp": 0.0,
                "water_flow_sp": 30.0 if flushing else 0.0,
                "paste_density_sp": 0.0,
                "solids_pct": None,
                "binder_pct": None,
                "solids_pct_target": None,
                "binder_pct_target": None,
            }
        # This plant has no instrumented barricade and pours without a stope plan; the
        # balance is judged only while it runs. Those columns are empty otherwise.
        for tag in HISTORY_TAGS:
            out.setdefault(tag, None)
        if t_s % OUTAGE_EVERY_S < OUTAGE_LENGTH_S:
            for tag in PV_TAGS:
                out[tag] = None
            out["plant_mode"] = None
        elif rng.random() < NOT_GOOD_CHANCE * len(PV_TAGS):
            out[PV_TAGS[rng.randrange(len(PV_TAGS))]] = None
        return out


def history_days(
    days: int, end_ms: int, seed: int
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Raw and minute rows, one day at a time, ending at ``end_ms`` (a whole minute).

    Minutes are closed as ``HistoryRecorder.record`` closes them: a minute row is due
    when the first sample of the next minute arrives; the last one when the run ends.
    """
    plant = PlantHistory(seed)
    start_s = end_ms // 1000 - days * DAY_S
    minute: MinuteAccumulator | None = None
    for day in range(days):
        raw: list[dict[str, Any]] = []
        minutes: list[dict[str, Any]] = []
        first = start_s + day * DAY_S
        for t_s in range(first, first + DAY_S):
            now_ms = t_s * 1000
            sample = plant.sample(t_s)
            minute_ms = now_ms - now_ms % MINUTE_MS
            if minute is not None and minute.minute_ms != minute_ms:
                minutes.append(minute.row())
                minute = None
            if minute is None:
                minute = MinuteAccumulator(minute_ms)
            minute.add(sample)
            raw.append({"ts_ms": now_ms, **sample})
        if day == days - 1 and minute is not None:
            minutes.append(minute.row())
        yield raw, minutes


# --- the backends --------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    url: str
    engine: AsyncEngine
    pg_dsn: str | None = None  # a plain asyncpg DSN of the same database
    sqlite_path: Path | None = None


@contextlib.asynccontextmanager
async def sqlite_backend() -> AsyncIterator[Backend]:
    with tempfile.TemporaryDirectory(prefix="bench_history_") as folder:
        path = Path(folder) / "backfill.db"
        url = f"sqlite+aiosqlite:///{path}"
        engine = create_engine(url)
        try:
            yield Backend("sqlite", url, engine, sqlite_path=path)
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def postgres_backend(admin_dsn: str) -> AsyncIterator[Backend]:
    name = f"bench_history_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = admin_dsn.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    engine = create_engine(url)
    try:
        yield Backend("postgresql", url, engine, pg_dsn=f"{base}/{name}")
    finally:
        try:
            await asyncio.wait_for(engine.dispose(), timeout=10)
        finally:
            admin = await asyncpg.connect(admin_dsn, timeout=5)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            print(f"  dropped database {name}")


async def fill(backend: Backend, args: argparse.Namespace, end_ms: int) -> tuple[int, int]:
    store = HistoryStore(backend.engine)
    copy_raw = backend.name == "postgresql" and args.pg_fill == "copy"
    pg: asyncpg.Connection | None = None
    if copy_raw:
        assert backend.pg_dsn is not None
        pg = await asyncpg.connect(backend.pg_dsn, timeout=5)
    columns = ("ts_ms", *HISTORY_TAGS)
    n_raw = n_minute = 0
    gen_s = 0.0
    try:
        started = time.perf_counter()
        days = history_days(args.days, end_ms, args.seed)
        while True:
            t0 = time.perf_counter()
            chunk = next(days, None)
            gen_s += time.perf_counter() - t0
            if chunk is None:
                break
            raw, minutes = chunk
            if pg is not None:
                records = [tuple(row[c] for c in columns) for row in raw]
                await pg.copy_records_to_table("history_raw", records=records, columns=columns)
                await store.write([], minutes)
            else:
                await store.write(raw, minutes)
            n_raw += len(raw)
            n_minute += len(minutes)
            print(f"    day {n_raw // DAY_S}/{args.days} written", flush=True)
        if backend.name == "postgresql":
            async with backend.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE history_raw")
                await conn.exec_driver_sql("ANALYZE history_minute")
        total = time.perf_counter() - started
    finally:
        if pg is not None:
            await pg.close()
    how = "COPY raw + HistoryStore.write minutes" if copy_raw else "HistoryStore.write"
    print(
        f"  fill: {n_raw:,} raw + {n_minute:,} minute rows in {total:.1f} s "
        f"({gen_s:.1f} s generating them in Python; {how})"
    )
    return n_raw, n_minute


async def table_sizes(backend: Backend) -> list[str]:
    lines = []
    async with backend.engine.connect() as conn:
        for table in ("history_raw", "history_minute"):
            count = (await conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            size = ""
            if backend.name == "postgresql":
                row = (
                    await conn.exec_driver_sql(
                        f"SELECT pg_relation_size('{table}'), pg_indexes_size('{table}'),"
                        f" pg_total_relation_size('{table}')"
                    )
                ).one()
                size = (
                    f"{row[2] / 1e6:.1f} MB (heap {row[0] / 1e6:.1f} MB, "
                    f"indexes {row[1] / 1e6:.1f} MB)"
                )
            lines.append(f"  {table:15s} {count:>9,} rows  {size}")
    if backend.name == "sqlite" and backend.sqlite_path is not None:
        lines.extend(sqlite_sizes(backend.sqlite_path))
    return lines


def sqlite_sizes(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        file_mb = path.stat().st_size / 1e6
        try:
            rows = db.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        except sqlite3.OperationalError:  # SQLite built without the dbstat table
            rows = []
    out = [f"  file {file_mb:.1f} MB"]
    out.extend(f"    {name:32s} {size / 1e6:8.1f} MB" for name, size in rows[:4])
    return out


# --- the queries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    label: str
    tags: tuple[str, ...]
    span_s: int
    step_s: int


@dataclass
class Timing:
    query: Query
    ms: list[float]
    points: int
    source: str

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        return percentile(self.ms, 0.95)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class StatementLog:
    """The last statement the engine sent, so that the exact SQL can be explained."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statement = ""
        self.parameters: Any = None
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statement, self.parameters = statement, parameters


async def time_queries(
    backend: Backend, queries: list[Query], end_ms: int, runs: int
) -> list[Timing]:
    store = HistoryStore(backend.engine)
    timings = [Timing(q, [], 0, "") for q in queries]
    for timing in timings:  # warm-up, and the shape of each answer
        q = timing.query
        for _ in range(WARMUP_RUNS):
            trend = await store.query(q.tags, end_ms - q.span_s * 1000, end_ms, q.step_s)
        timing.points, timing.source = len(trend.t_ms), trend.source
    for _ in range(runs):  # round robin, so that a busy moment hits every query alike
        for timing in timings:
            q = timing.query
            t0 = time.perf_counter()
            await store.query(q.tags, end_ms - q.span_s * 1000, end_ms, q.step_s)
            timing.ms.append((time.perf_counter() - t0) * 1000.0)
    return timings


async def time_sql_only(backend: Backend, query: Query, end_ms: int, runs: int) -> float:
    """Median ms of the statement ``query`` sends, executed and fetched without the
    building of the ``Trend``."""
    log = StatementLog(backend.engine)
    await HistoryStore(backend.engine).query(
        query.tags, end_ms - query.span_s * 1000, end_ms, query.step_s
    )
    statement, params = log.statement, log.parameters
    event.remove(backend.engine.sync_engine, "before_cursor_execute", log._seen)
    out = []
    async with backend.engine.connect() as conn:
        for _ in range(WARMUP_RUNS + runs):
            t0 = time.perf_counter()
            (await conn.exec_driver_sql(statement, params)).all()
            out.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(out[WARMUP_RUNS:])


async def explain(backend: Backend, query: Query, end_ms: int) -> list[str]:
    log = StatementLog(backend.engine)
    await HistoryStore(backend.engine).query(
        query.tags, end_ms - query.span_s * 1000, end_ms, query.step_s
    )
    event.remove(backend.engine.sync_engine, "before_cursor_execute", log._seen)
    prefix = "EXPLAIN QUERY PLAN " if backend.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    async with backend.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + log.statement, log.parameters)).all()
    lines = [f"  plan of ({query.label}): {log.statement[:90]}..."]
    lines.extend(f"    {' | '.join(str(c) for c in row)}" for row in rows)
    return lines


# --- the run -------------------------------------------------------------------------


async def run_backend(backend: Backend, args: argparse.Namespace, end_ms: int) -> bool:
    print(f"\n== {backend.name} ==")
    t0 = time.perf_counter()
    try:
        await migrate(backend.engine)
        print(f"  migrate: {time.perf_counter() - t0:.2f} s")
    except SQLAlchemyError as err:
        # A broken later migration must not hide the history figures; it is reported.
        print(f"  WARNING: migrate failed ({str(err).splitlines()[0][:160]})")
        print("  WARNING: history tables created from HistoryStore's metadata instead")
        async with backend.engine.begin() as conn:
            await conn.run_sync(history_metadata.create_all)
    await fill(backend, args, end_ms)
    for line in await table_sizes(backend):
        print(line)

    tags = tuple(args.tags)
    queries = [
        Query("a", tags, DAY_S, 60),
        Query("a*", HISTORY_TAGS, DAY_S, 60),
        Query("b", tags, DAY_S, 30),
        Query("c", tags, 900, 1),
    ]
    timings = await time_queries(backend, queries, end_ms, args.runs)
    sql_a = await time_sql_only(backend, queries[0], end_ms, args.runs)
    print(f"  HistoryStore.query, {args.runs} runs each after {WARMUP_RUNS} warm-up:")
    print(f"    {'query':40s} {'table':>6s} {'points':>6s} {'median ms':>10s} {'p95 ms':>8s}")
    for t in timings:
        q = t.query
        span = f"{q.span_s // 3600} h" if q.span_s >= 3600 else f"{q.span_s // 60} min"
        what = f"({q.label}) {span} at {q.step_s} s, {len(q.tags)} tags"
        print(f"    {what:40s} {t.source:>6s} {t.points:>6d} {t.median:10.2f} {t.p95:8.2f}")
    print(f"    (a) its SQL alone, executed and fetched: median {sql_a:.2f} ms")
    if args.explain:
        for line in await explain(backend, queries[0], end_ms):
            print(line)
    a = timings[0]
    ok = a.median < TARGET_MS
    print(
        f"  RESULT {backend.name}: (a) median {a.median:.2f} ms / target {TARGET_MS:.0f} ms "
        f"= {a.median / TARGET_MS:.3f} (p95 {a.p95:.2f} ms) -> {'PASS' if ok else 'FAIL'}"
    )
    return ok


async def bench(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError):  # SIGTERM cleans up like Ctrl-C
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    # The newest data ends at the last whole minute, as a live plant's would.
    end_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
    print(
        f"history: {args.days} days x {DAY_S:,} s = {args.days * DAY_S:,} raw rows of "
        f"{len(HISTORY_TAGS)} tags; query tags: {', '.join(args.tags)}"
    )
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, bool] = {}
    for name in backends:
        if name == "sqlite":
            async with sqlite_backend() as backend:
                results[name] = await run_backend(backend, args, end_ms)
        else:
            async with postgres_backend(args.pg_admin) as backend:
                results[name] = await run_backend(backend, args, end_ms)
    print()
    for name, ok in results.items():
        print(f"{name}: {'PASS' if ok else 'FAIL'} (24 h trend at 60 s steps < {TARGET_MS:.0f} ms)")
    return 0 if all(results.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--days", type=int, default=7, help="days of 1-second history")
    parser.add_argument(
        "--tags",
        nargs="+",
        default=list(DEFAULT_TAGS),
        choices=HISTORY_TAGS,
        metavar="TAG",
        help=f"tags of the timed trends (default: {' '.join(DEFAULT_TAGS)})",
    )
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each query")
    parser.add_argument(
        "--pg-fill",
        choices=("copy", "write"),
        default="copy",
        help="PostgreSQL raw rows by COPY (default) or by HistoryStore.write",
    )
    parser.add_argument("--pg-admin", default=PG_ADMIN_DSN, help="admin DSN (env BACKFILL_TEST_PG)")
    parser.add_argument("--explain", action="store_true", help="print the plan of (a)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    if args.days < 2 or args.runs < 1:
        parser.error("--days must be at least 2 and --runs at least 1")
    try:
        return asyncio.run(bench(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; temporary files and the benchmark database are removed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
