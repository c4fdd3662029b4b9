"""Measurement history behind the trends: one wide row per sample (raw, about one a
second) and one per minute (average, minimum and maximum of each tag).

A trend query at steps of whole minutes reads the minute table, so a 24-hour trend
over a week of one-second history aggregates 1,440 rows, not 86,400. Raw rows are
kept ``raw_retention_days``, minute rows ``minute_retention_days``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    Table,
    delete,
    insert,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import InvalidInput, StoreUnavailable
from service.store.db import for_writes, store_error

#: The columns of the history, in order: measurements, setpoints, derived quality.
HISTORY_TAGS: tuple[str, ...] = (
    "tailings_flow_pv",
    "tailings_density_pv",
    "cement_rate_pv",
    "slag_rate_pv",
    "flyash_rate_pv",
    "water_flow_pv",
    "paste_flow_pv",
    "paste_density_pv",
    "pump_pressure_pv",
    "mixer_level_pv",
    "plant_mode",
    "tailings_flow_sp",
    "cement_rate_sp",
    "slag_rate_sp",
    "flyash_rate_sp",
    "water_flow_sp",
    "paste_density_sp",
    "solids_pct",
    "binder_pct",
    "solids_pct_target",
    "binder_pct_target",
    "barricade_pressure_pv",  # the first barricade's (revision 0006)
    "fill_height_m",  # of the stope the active pour fills
    # The balance across the mixer (revision 0007): in - out, t/h, each cycle judged;
    # the averaged disagreement over its alarm threshold (1: "instruments disagree").
    "mass_balance_residual_t_h",
    "instrument_disagreement",
)

MAX_BUCKETS = 5000

# Tables of their own metadata: the history is written by the recorder only.
history_metadata = MetaData()
history_raw = Table(
    "history_raw",
    history_metadata,
    Column("ts_ms", BigInteger, primary_key=True, autoincrement=False),
    *(Column(tag, Float, nullable=True) for tag in HISTORY_TAGS),
)
history_minute = Table(
    "history_minute",
    history_metadata,
    Column("ts_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("samples", Integer, nullable=False),
    *(
        Column(f"{tag}_{agg}", Float, nullable=True)
        for tag in HISTORY_TAGS
        for agg in ("avg", "min", "max")
    ),
)

Sample = Mapping[str, float | None]


@dataclass
class MinuteAccumulator:
    """Average, minimum and maximum of each tag over one minute, built sample by sample."""

    minute_ms: int
    samples: int = 0

    def __post_init__(self) -> None:
        self._sum: dict[str, float] = {}
        self._n: dict[str, int] = {}
        self._min: dict[str, float] = {}
        self._max: dict[str, float] = {}

    def add(self, sample: Sample) -> None:
        self.samples += 1
        for tag, value in sample.items():
            if value is None or not math.isfinite(value):
                continue
            self._sum[tag] = self._sum.get(tag, 0.0) + value
            self._n[tag] = self._n.get(tag, 0) + 1
            self._min[tag] = min(self._min.get(tag, value), value)
            self._max[tag] = max(self._max.get(tag, value), value)

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ts_ms": self.minute_ms, "samples": self.samples}
        for tag in HISTORY_TAGS:
            n = self._n.get(tag, 0)
            out[f"{tag}_avg"] = self._sum[tag] / n if n else None
            out[f"{tag}_min"] = self._min.get(tag)
            out[f"{tag}_max"] = self._max.get(tag)
        return out


@dataclass(frozen=True)
class Trend:
    step_s: int
    source: str
    t_ms: list[int]
    series: dict[str, dict[str, list[float | None]]]


def check_tags(tags: Sequence[str]) -> list[str]:
    unknown = [t for t in tags if t not in HISTORY_TAGS]
    if unknown:
        raise InvalidInput(
            "tags", f"unknown tag(s) {', '.join(unknown)}; known: {', '.join(HISTORY_TAGS)}"
        )
    if not tags:
        raise InvalidInput("tags", "name at least one tag")
    return list(dict.fromkeys(tags))


class HistoryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writes = for_writes(engine)

    async def write(self, raw: Sequence[dict[str, Any]], minutes: Sequence[dict[str, Any]]) -> None:
        """Append raw and minute rows in one transaction. Rows already there for the
        same instants are replaced: a flush cancelled after its commit (a stop) writes
        its rows again at the next one."""
        try:
            async with self._writes.begin() as conn:
                if raw:
                    stamps = [r["ts_ms"] for r in raw]
                    await conn.execute(
                        delete(history_raw).where(
                            history_raw.c.ts_ms.between(min(stamps), max(stamps))
                        )
                    )
                    await conn.execute(insert(history_raw), list(raw))
                if minutes:
                    # A minute can be written twice only after a restart inside it; the
                    # newer, partial aggregate replaces the older one.
                    keys = [m["ts_ms"] for m in minutes]
                    await conn.execute(
                        delete(history_minute).where(history_minute.c.ts_ms.in_(keys))
                    )
                    await conn.execute(insert(history_minute), list(minutes))
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable("could not write history", cause=store_error(err)) from err

    async def prune(self, *, raw_before_ms: int, minute_before_ms: int) -> None:
        try:
            async with self._writes.begin() as conn:
                await conn.execute(delete(history_raw).where(history_raw.c.ts_ms < raw_before_ms))
                await conn.execute(
                    delete(history_minute).where(history_minute.c.ts_ms < minute_before_ms)
                )
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable("could not prune history", cause=store_error(err)) from err

    async def rows(
        self,
        tags: Sequence[str],
        from_ms: int,
        to_ms: int,
        *,
        minute: bool,
        after_ms: int | None = None,
        limit: int = 2000,
    ) -> list[dict[str, Any]]:
        """The stored rows themselves, oldest first, a page after ``after_ms``: raw
        (``ts_ms`` and each tag) or minute rows (``ts_ms``, ``samples``, each tag's
        ``_avg``, ``_min``, ``_max``), ``from_ms`` inclusive, ``to_ms`` exclusive."""
        tags = check_tags(tags)
        table = history_minute if minute else history_raw
        names = (
            ["samples", *(f"{tag}_{agg}" for tag in tags for agg in ("avg", "min", "max"))]
            if minute
            else list(tags)
        )
        lo = from_ms if after_ms is None else max(from_ms, after_ms + 1)
        q = (
            select(table.c.ts_ms, *(table.c[name] for name in names))
            .where(table.c.ts_ms >= lo, table.c.ts_ms < to_ms)
            .order_by(table.c.ts_ms)
            .limit(limit)
        )
        try:
            async with self._engine.connect() as conn:
                result = await conn.execute(q)
                return [dict(row) for row in result.mappings().all()]
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable("could not read history", cause=store_error(err)) from err

    async def query(self, tags: Sequence[str], from_ms: int, to_ms: int, step_s: int) -> Trend:
        """Average, minimum and maximum of ``tags`` in buckets of ``step_s`` seconds."""
        tags = check_tags(tags)
        if to_ms <= from_ms:
            raise InvalidInput("to", "'to' must be after 'from'")
        if step_s < 1:
            raise InvalidInput("step", "step must be at least 1 second")
        if (to_ms - from_ms) / (step_s * 1000) > MAX_BUCKETS:
            raise InvalidInput("step", f"at most {MAX_BUCKETS} points per query; use a larger step")
        bucket_ms = step_s * 1000
        minute = step_s % 60 == 0
        # Column names come from HISTORY_TAGS (checked above), never from the caller.
        if minute:
            cols = ", ".join(
                f"AVG({t}_avg) AS {t}_avg, MIN({t}_min) AS {t}_min, MAX({t}_max) AS {t}_max"
                for t in tags
            )
            table = "history_minute"
        else:
            cols = ", ".join(
                f"AVG({t}) AS {t}_avg, MIN({t}) AS {t}_min, MAX({t}) AS {t}_max" for t in tags
            )
            table = "history_raw"
        sql = text(
            f"SELECT (ts_ms / :bucket) AS b, {cols} FROM {table} "
            "WHERE ts_ms >= :lo AND ts_ms < :hi GROUP BY b ORDER BY b"
        )
        try:
            async with self._engine.connect() as conn:
                result = await conn.execute(sql, {"bucket": bucket_ms, "lo": from_ms, "hi": to_ms})
                rows = result.all()
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable("could not read history", cause=store_error(err)) from err
        # Columns by position, in selection order: bucket, then avg/min/max per tag.
        columns = list(zip(*rows, strict=True)) if rows else [()] * (1 + 3 * len(tags))
        t_ms = [int(b) * bucket_ms for b in columns[0]]
        series: dict[str, dict[str, list[float | None]]] = {}
        for i, tag in enumerate(tags):
            series[tag] = {
                agg: [None if v is None else float(v) for v in columns[1 + 3 * i + j]]
                for j, agg in enumerate(("avg", "min", "max"))
            }
        return Trend(step_s, "minute" if minute else "raw", t_ms, series)
