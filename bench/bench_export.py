"""Bulk export of the history: streamed a page at a time against the same rows read in
one piece, side by side in one run.

A fresh SQLite store (a temporary folder), migrated, filled with ``--hours`` (default 24)
of one-second raw history with every ``HISTORY_TAGS`` column. Then, for CSV and Parquet:

* streamed: ``HistoryExport.batches`` (the export route's source, pages of
  ``exports.PAGE`` rows) through the format's writer, every chunk taken and dropped as
  the HTTP response would send it;
* in one piece: the same rows in one ``HistoryStore.rows`` read, then written in one
  writer call (what a non-streamed export would do).

Printed per format: rows, bytes out, seconds and rows/s of each, the peak of Python
memory (tracemalloc) of each, and the ratios streamed / in one piece (time, peak
memory). The claim checked: streaming holds memory to about one page whatever the
range (peak ratio well under 1 for a day of rows) at a time cost of at most 1.3x.

Run: ``.venv/bin/python bench/bench_export.py [--hours 24]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from service.core import tabular
from service.operations import exports
from service.store.db import create_engine, migrate
from service.store.history import HISTORY_TAGS, HistoryStore

TIME_RATIO_MAX = 1.3


async def fill(history: HistoryStore, start_ms: int, hours: float) -> int:
    rng = random.Random(7)
    n = int(hours * 3600)
    batch: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {"ts_ms": start_ms + 1000 * i}
        for tag in HISTORY_TAGS:
            row[tag] = None if rng.random() < 0.005 else round(rng.uniform(0, 2000), 3)
        batch.append(row)
        if len(batch) == 3600:
            await history.write(batch, [])
            batch = []
    if batch:
        await history.write(batch, [])
    return n


async def drain(chunks: AsyncIterator[bytes]) -> int:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
    return size


async def measure(work: Callable[[], Awaitable[int]]) -> tuple[int, float, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    began = time.perf_counter()
    size = await work()
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size, seconds, peak


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'export.db'}")
        await migrate(engine)
        history = HistoryStore(engine)
        start_ms = int(time.time() * 1000) - int(args.hours * 3600 * 1000)
        began = time.perf_counter()
        rows = await fill(history, start_ms, args.hours)
        print(f"filled {rows:,} raw rows in {time.perf_counter() - began:.1f} s")
        end_ms = start_ms + rows * 1000
        which = exports.HistoryExport.of([], minute=False)

        verdict = True
        print(f"{'format':8} {'how':10} {'bytes':>12} {'s':>7} {'rows/s':>10} {'peak MB':>9}")
        for fmt in ("csv", "parquet"):

            async def streamed(fmt: str = fmt) -> int:
                writer = tabular.writer(fmt, which.columns)

                async def chunks() -> AsyncIterator[bytes]:
                    yield writer.header()
                    async for batch in which.batches(history, start_ms, end_ms):
                        yield writer.rows(batch)
                    yield writer.close()

                return await drain(chunks())

            async def whole(fmt: str = fmt) -> int:
                writer = tabular.writer(fmt, which.columns)
                page = await history.rows(which.tags, start_ms, end_ms, minute=False, limit=rows)
                for row in page:
                    row["time"] = datetime.fromtimestamp(row["ts_ms"] / 1000, UTC)
                return len(writer.header() + writer.rows(page) + writer.close())

            results = {}
            for how, work in (("streamed", streamed), ("one piece", whole)):
                size, seconds, peak = await measure(work)
                results[how] = (size, seconds, peak)
                print(
                    f"{fmt:8} {how:10} {size:>12,} {seconds:>7.2f} {rows / seconds:>10,.0f}"
                    f" {peak / 1e6:>9.1f}"
                )
            time_ratio = results["streamed"][1] / results["one piece"][1]
            peak_ratio = results["streamed"][2] / results["one piece"][2]
            ok = time_ratio <= TIME_RATIO_MAX and peak_ratio < 0.5
            verdict = verdict and ok
            print(
                f"{fmt:8} streamed / one piece: time {time_ratio:.2f}x, peak memory "
                f"{peak_ratio:.3f}x  {'PASS' if ok else 'FAIL'}"
            )
        await engine.dispose()
        print("PASS" if verdict else "FAIL")


if __name__ == "__main__":
    asyncio.run(main())
