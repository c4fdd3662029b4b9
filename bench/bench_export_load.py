"""Bulk exports against the control loop: completed control cycles with six Parquet
history exports at once, without and with the export limits, side by side in one run.

``python bench/bench_export_load.py [--seconds 40] [--clients 6] [--speed 50]``

Two service processes one after the other (``python -m service``: SQLite in a temporary
folder, the built-in plant simulator at ``--speed``, one pour running throughout, so
that every control cycle computes and writes a setpoint set), each on a store filled
beforehand with ``--hours`` (default 24) of one-second history, the range a history
export takes by default:

* "unlimited": ``BACKFILL_API__MAX_EXPORTS_PER_KEY`` and ``BACKFILL_API__MAX_EXPORTS``
  at 100, which no run reaches: every export runs at once (the service before the
  limits);
* "limited": the limits at their defaults (2 per key, 3 in all).

``--before-limits`` runs one process with neither setting instead, to measure a
revision of the service that predates them (copy this script and ``bench_load.py`` into
its ``bench/`` folder).

For each process: a window of ``--seconds`` with no HTTP load but two ``/metrics`` reads,
then a window of the same length in which ``--clients`` clients of one hmi key each
ask for ``GET /api/v1/export/history?format=parquet`` again and again (reading each
answer to its end), waiting the answer's Retry-After after a 429. The control loop's
figures come from ``/metrics`` (``backfill_control_cycle_seconds`` and
``backfill_control_cycle_overruns_total``) read at the start and the end of each
window. At ``--speed`` 50 the cycle period is its floor of 50 ms of wall time, so a
window of 40 s holds at most 800 cycles.

Printed per process: cycles completed idle and loaded and their ratio (loaded / idle),
overruns, the cycle's mean and p99 bucket, exports completed and refused (429), and the
service's CPU. The claim checked: with the limits, the loaded window completes at least
0.8 of the idle window's cycles. Loopback only; every child process is killed on the
way out.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_load import CycleStats, Instance, le_text

from service.store.db import create_engine, migrate
from service.store.history import HISTORY_TAGS, HistoryStore

CLAIM = 0.8
UNLIMITED = {"BACKFILL_API__MAX_EXPORTS_PER_KEY": "100", "BACKFILL_API__MAX_EXPORTS": "100"}


async def fill(database: Path, hours: float) -> int:
    """``hours`` of one-second raw history ending now, every history column."""
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        await migrate(engine)
        history = HistoryStore(engine)
        rng = random.Random(7)
        end_ms = int(time.time() * 1000) - 60_000
        n = int(hours * 3600)
        batch: list[dict[str, object]] = []
        for i in range(n):
            row: dict[str, object] = {"ts_ms": end_ms - 1000 * (n - i)}
            for tag in HISTORY_TAGS:
                row[tag] = round(rng.uniform(0, 2000), 3)
            batch.append(row)
            if len(batch) == 3600:
                await history.write(batch, [])
                batch = []
        if batch:
            await history.write(batch, [])
        return n
    finally:
        await engine.dispose()


@dataclass
class Exports:
    completed: int = 0
    refused: int = 0
    failed: int = 0
    bytes: int = 0


async def exporter(base_url: str, key: str, until: float, tally: Exports) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    params = {"format": "parquet"}
    timeout = httpx.Timeout(10.0, read=120.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        while time.monotonic() < until:
            try:
                async with client.stream(
                    "GET", "/api/v1/export/history", params=params, headers=headers
                ) as r:
                    if r.status_code == 429:
                        tally.refused += 1
                        wait = float(r.headers.get("retry-after", "1"))
                        await asyncio.sleep(min(wait, max(0.0, until - time.monotonic())))
                        continue
                    size = 0
                    async for chunk in r.aiter_bytes():
                        size += len(chunk)
                        if time.monotonic() > until + 60:
                            break
                    if r.status_code == 200:
                        tally.completed += 1
                        tally.bytes += size
                    else:
                        tally.failed += 1
            except httpx.HTTPError:
                tally.failed += 1


@dataclass
class Result:
    name: str
    idle: CycleStats
    loaded: CycleStats
    idle_cpu: float
    loaded_cpu: float
    exports: Exports


def measure(inst: Instance, args: argparse.Namespace) -> Result:
    before, cpu0 = inst.metrics(), inst.cpu_s()
    time.sleep(args.seconds)
    middle, cpu1 = inst.metrics(), inst.cpu_s()
    tally = Exports()

    async def load() -> None:
        until = time.monotonic() + args.seconds
        await asyncio.gather(
            *(exporter(inst.base_url, inst.hmi_key, until, tally) for _ in range(args.clients))
        )

    started = time.monotonic()
    loaded_metrics = None

    async def window() -> None:
        nonlocal loaded_metrics
        task = asyncio.create_task(load())
        await asyncio.sleep(args.seconds)
        loaded_metrics = await asyncio.to_thread(inst.metrics)
        await task  # the exports under way finish (not counted in the window)

    asyncio.run(window())
    assert loaded_metrics is not None
    cpu2 = inst.cpu_s()
    loaded_s = time.monotonic() - started
    return Result(
        inst.name,
        CycleStats.between(before, middle),
        CycleStats.between(middle, loaded_metrics),
        (cpu1 - cpu0) / args.seconds,
        (cpu2 - cpu1) / loaded_s,
        tally,
    )


@contextmanager
def service(
    name: str, workdir: Path, args: argparse.Namespace, env: dict[str, str]
) -> Iterator[Instance]:
    inst = Instance(name, workdir, env={"BACKFILL_SIM__SPEED": str(args.speed), **env})
    try:
        rows = asyncio.run(fill(inst.dir / "backfill.db", args.hours))
        print(f"{name}: {rows} history rows stored", flush=True)
        inst.start()
        inst.wait_ready()
        inst.start_pour()
        yield inst
    finally:
        inst.stop()


def report(results: list[Result], args: argparse.Namespace) -> bool:
    print()
    print(
        f"{args.clients} Parquet history exports ({args.hours:g} h each) against the control "
        f"loop at simulator speed {args.speed:g}, {args.seconds:g} s windows"
    )
    header = (
        f"{'':12} {'cycles idle':>12} {'loaded':>8} {'ratio':>6} {'overruns':>9} "
        f"{'mean ms':>8} {'p99':>12} {'exports':>8} {'429':>5} {'CPU idle/loaded':>16}"
    )
    print(header)
    ok = True
    for r in results:
        ratio = r.loaded.cycles / r.idle.cycles if r.idle.cycles else float("nan")
        print(
            f"{r.name:12} {r.idle.cycles:>12} {r.loaded.cycles:>8} {ratio:>6.2f} "
            f"{r.idle.overruns:>4}/{r.loaded.overruns:<4} {r.loaded.mean_ms:>8.1f} "
            f"{le_text(r.loaded.p99_le_ms):>12} {r.exports.completed:>8} "
            f"{r.exports.refused:>5} {r.idle_cpu * 100:>7.0f}%/{r.loaded_cpu * 100:.0f}%"
        )
        if r.name == "limited":
            ok = ratio >= CLAIM
            print(f"\nlimited: loaded / idle cycles >= {CLAIM}: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--speed", type=float, default=50.0)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument(
        "--before-limits",
        action="store_true",
        help="one process without the limit settings (a revision that predates them)",
    )
    args = parser.parse_args(argv)
    results = []
    runs = [("before", {})] if args.before_limits else [("unlimited", UNLIMITED), ("limited", {})]
    with tempfile.TemporaryDirectory(prefix="bench-export-load-") as tmp:
        for name, env in runs:
            with service(name, Path(tmp), args, env) as inst:
                results.append(measure(inst, args))
    return 0 if report(results, args) else 1


if __name__ == "__main__":
    sys.exit(main())
