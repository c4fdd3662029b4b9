"""Bulk export of the records as CSV or Parquet, streamed: the pours, the stopes' stages,
the measurement history by tag and time range, the audit log. Any key may read them, as
it may read each record (:mod:`service.operations.exports` says what each holds).

The first page is read before the answer starts, so a store that cannot be read is a
503 with the error body like any other; a failure after that ends the transfer without
its last chunk (an HTTP client reports it truncated), never as a shorter file that
looks whole.

An export holds one of the caller's export slots (``BACKFILL_API__MAX_EXPORTS_PER_KEY``)
and one of the service's (``BACKFILL_API__MAX_EXPORTS``) from its first page to its last
byte (or the client going away): beyond them a 429 ``too_many_exports`` with
Retry-After, at once. Each page is encoded (CSV or Parquet) in a worker thread, so the
event loop the control cycle runs on waits for none of it."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.deps import PrincipalDep, QueryInstant, RuntimeDep, utc_instant
from service.api.routes import api_router
from service.api.schemas.common import ID_PATTERN
from service.core import tabular
from service.core.pour_states import PourState
from service.errors import InvalidInput
from service.operations import exports as ex
from service.runtime import Runtime
from service.store.history import HISTORY_TAGS

router = api_router("export")


class Format(enum.StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


class Resolution(enum.StrEnum):
    RAW = "raw"
    MINUTE = "minute"


_MEDIA = {Format.CSV: "text/csv; charset=utf-8", Format.PARQUET: "application/vnd.apache.parquet"}
_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The table, streamed.",
        "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
    }
}
FormatQuery = Annotated[Format, Query(description="csv (the default) or parquet.")]
FromQuery = Annotated[
    QueryInstant | None, Query(alias="from", description="Inclusive, ISO 8601 with zone.")
]
ToQuery = Annotated[QueryInstant | None, Query(description="Exclusive, ISO 8601 with zone.")]
_TAGS = "Comma-separated (all by default): " + ", ".join(HISTORY_TAGS)


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    lo = None if start is None else utc_instant(start, "from")
    hi = None if end is None else utc_instant(end, "to")
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidInput("to", "'to' must be after 'from'")
    return lo, hi


class _Export(StreamingResponse):
    """A streamed table that gives its export slot back however the transfer ends (the
    last byte sent, a failure, the client gone)."""

    def __init__(self, *args: Any, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


async def _table(
    runtime: Runtime,
    who: PrincipalDep,
    fmt: Format,
    columns: Sequence[tabular.Column],
    batches: AsyncIterator[ex.Batch],
    name: str,
) -> StreamingResponse:
    runtime.exports.acquire(who.key_id)  # 429 too_many_exports when none is free
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            runtime.exports.release(who.key_id)

    try:
        writer = tabular.writer(fmt.value, columns)
        first = await anext(batches, None)  # a store error here is the answer's status
    except BaseException:
        release()
        raise

    async def body() -> AsyncIterator[bytes]:
        # Encoding a page is CPU work (Parquet above all): a worker thread does it,
        # one page at a time, the writer never used by two threads at once.
        yield await asyncio.to_thread(writer.header)
        if first is not None:
            yield await asyncio.to_thread(writer.rows, first)
            async for batch in batches:
                yield await asyncio.to_thread(writer.rows, batch)
        yield await asyncio.to_thread(writer.close)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _Export(
        (chunk async for chunk in body() if chunk),
        media_type=_MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt.value}"',
            "Cache-Control": "no-store",
        },
        on_close=release,
    )


@router.get("/export/pours", response_class=StreamingResponse, responses=_CONTENT)
async def export_pours(
    runtime: RuntimeDep,
    who: PrincipalDep,
    format: FormatQuery = Format.CSV,
    from_: FromQuery = None,
    to: ToQuery = None,
    state: PourState | None = None,
) -> StreamingResponse:
    """Every pour made in [from, to) (all by default), oldest first: its state and
    times, volumes placed, off-spec and dumped, materials (binder per component), Cw
    and Bw (average, minimum, maximum), interruptions, samples and the Cw correction
    it ran on. The running pour with its live totals."""
    lo, hi = _range(from_, to)
    batches = ex.pour_batches(
        runtime.store,
        runtime.supervisor,
        created_from=lo,
        created_to=hi,
        state=None if state is None else state.value,
    )
    return await _table(runtime, who, format, ex.POUR_COLUMNS, batches, "pours")


@router.get("/export/stope-stages", response_class=StreamingResponse, responses=_CONTENT)
async def export_stope_stages(
    runtime: RuntimeDep, who: PrincipalDep, format: FormatQuery = Format.CSV
) -> StreamingResponse:
    """One row per stage of every stope with a fill plan: the stage's plan (recipe,
    top, rise rate, hold), its times (started, top reached, hold end, release) and its
    figures as in the stope report (placed, dumped, off-spec, binder per component, Cw
    and Bw, pours, cylinders, interruptions)."""
    batches = ex.stage_batches(runtime.stopes, runtime.supervisor, runtime.history)
    return await _table(runtime, who, format, ex.STAGE_COLUMNS, batches, "stope-stages")


@router.get("/export/history", response_class=StreamingResponse, responses=_CONTENT)
async def export_history(
    runtime: RuntimeDep,
    who: PrincipalDep,
    format: FormatQuery = Format.CSV,
    tags: Annotated[
        str | None,
        Query(description="Comma-separated (all by default): " + ", ".join(HISTORY_TAGS)),
    ] = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    resolution: Annotated[
        Resolution, Query(description="raw (about one row a second) or minute rows.")
    ] = Resolution.RAW,
) -> StreamingResponse:
    """The stored history rows themselves, oldest first: raw (each tag as sampled) or
    minute (samples, and each tag's average, minimum and maximum). Default range: the
    last 24 hours. Units are in the Parquet schema's field metadata."""
    end = utc_instant(to, "to") if to is not None else datetime.now(UTC)
    start = utc_instant(from_, "from") if from_ is not None else end - timedelta(hours=24)
    if end <= start:
        raise InvalidInput("to", "'to' must be after 'from'")
    names = [t.strip() for t in (tags or "").split(",") if t.strip()]
    which = ex.HistoryExport.of(names, minute=resolution is Resolution.MINUTE)
    batches = which.batches(
        runtime.history, int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    )
    return await _table(runtime, who, format, which.columns, batches, f"history-{resolution.value}")


@router.get("/export/audit", response_class=StreamingResponse, responses=_CONTENT)
async def export_audit(
    runtime: RuntimeDep,
    who: PrincipalDep,
    format: FormatQuery = Format.CSV,
    from_: FromQuery = None,
    to: ToQuery = None,
    pour_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID_PATTERN)] = None,
) -> StreamingResponse:
    """The audit log in [from, to) (all by default), oldest first: every setpoint set
    written, approval and correction, ``old`` and ``new`` as JSON text, each entry's
    chain ``hash``."""
    lo, hi = _range(from_, to)
    batches = ex.audit_batches(runtime.store, at_from=lo, at_to=hi, pour_id=pour_id)
    return await _table(runtime, who, format, ex.AUDIT_COLUMNS, batches, "audit")
