"""Plant status for HMIs and SCADA: a snapshot (with ETag) and a server-sent stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request, Response

from service.api.deps import PrincipalDep, QueryInstant, RuntimeDep, utc_instant
from service.api.plant_status import encode, status_body
from service.api.routes import api_router
from service.api.schemas.plant import PlantProfilePublic, PlantStatusPublic, TrendPublic
from service.api.streams import EventStream
from service.errors import InvalidInput
from service.store.history import HISTORY_TAGS

router = api_router("plant")

_STREAM_KEEPALIVE_S = 15.0


@router.get(
    "/plant/status",
    response_model=PlantStatusPublic,
    responses={304: {"description": "Not modified (If-None-Match matched the ETag)."}},
)
async def plant_status(request: Request, runtime: RuntimeDep) -> Response:
    """The HMI snapshot from memory; ``If-None-Match`` with the last ETag answers 304."""
    raw, etag = encode(status_body(runtime))
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(raw, media_type="application/json", headers=headers)


@router.get(
    "/plant/stream",
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {"description": "Too many event streams open for this key or in all."},
    },
)
async def plant_stream(runtime: RuntimeDep, who: PrincipalDep) -> Response:
    """The same snapshot as server-sent events, sent on every change (at most about
    every publishing interval), with a comment line every 15 s to keep proxies open.
    A key may hold ``BACKFILL_API__MAX_STREAMS_PER_KEY`` streams at once; a stream ends
    when its client stops taking data, and at shutdown."""
    caller = who.key_id
    runtime.streams.acquire(caller)

    async def events() -> AsyncIterator[bytes]:
        last_etag = None
        version = -1
        while True:
            snap = await runtime.link.wait_changed(version, _STREAM_KEEPALIVE_S)
            version = snap.version
            raw, etag = encode(status_body(runtime, snap))
            if etag != last_etag:
                last_etag = etag
                yield (
                    b"event: status\nid: " + etag.strip('"').encode() + b"\ndata: " + raw + b"\n\n"
                )
            else:
                yield b": keep-alive\n\n"
            # A short pause bounds the rate when the plant changes continuously.
            await asyncio.sleep(0.2)

    return EventStream(
        events(),
        closing=runtime.closing,
        send_timeout_s=runtime.settings.api.stream_send_timeout_s,
        on_close=lambda: runtime.streams.release(caller),
    )


_AUTO_STEPS_S = (1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
_AUTO_POINTS = 900


@router.get("/plant/history", response_model=TrendPublic)
async def plant_history(
    runtime: RuntimeDep,
    tags: Annotated[str, Query(description="Comma-separated: " + ", ".join(HISTORY_TAGS))],
    from_: Annotated[QueryInstant | None, Query(alias="from")] = None,
    to: QueryInstant | None = None,
    step: Annotated[int | None, Query(ge=1, le=86400, description="Seconds per point.")] = None,
) -> TrendPublic:
    """Average, minimum and maximum of each tag per step (default: the last 15 minutes,
    a step giving at most about 900 points). Whole-minute steps read the minute table."""
    end = utc_instant(to, "to") if to is not None else datetime.now(UTC)
    start = utc_instant(from_, "from") if from_ is not None else end - timedelta(minutes=15)
    span_s = (end - start).total_seconds()
    if span_s <= 0:
        raise InvalidInput("to", "'to' must be after 'from'")
    if step is None:
        step = next((s for s in _AUTO_STEPS_S if span_s / s <= _AUTO_POINTS), 86400)
    trend = await runtime.history.query(
        [t.strip() for t in tags.split(",") if t.strip()],
        int(start.timestamp() * 1000),
        int(end.timestamp() * 1000),
        step,
    )
    return TrendPublic(
        from_=start,
        to=end,
        step_s=trend.step_s,
        source=trend.source,
        t=[datetime.fromtimestamp(ms / 1000, UTC) for ms in trend.t_ms],
        series=trend.series,
    )


@router.get("/plant/profile", response_model=PlantProfilePublic)
async def plant_profile(runtime: RuntimeDep) -> dict[str, Any]:
    """What the plant can make: its feed, the Cw window it holds and its pump's limit, as
    the site states them (``BACKFILL_PLANT__*``, or the built-in simulator's profile)
    beside what the history showed over its recent window (percentiles while the plant
    ran, with the period and the running hours they rest on), and which of them every
    makeability check uses now."""
    profile = await runtime.plant_profiles.profile()
    feed, window = profile.feed(), profile.cw_window()
    return {
        "tailings_sg": profile.tailings_sg,
        "feed": {
            "stated": None if profile.feed_stated is None else profile.feed_stated.to_dict(),
            "seen": None if profile.feed_seen is None else profile.feed_seen.to_dict(),
            "used": None if feed is None else feed.basis,
            "min_history_hours": profile.min_history_hours,
        },
        "cw_window": {
            "stated": None
            if profile.cw_window_stated is None
            else profile.cw_window_stated.to_dict(),
            "seen": None if profile.cw_seen is None else profile.cw_seen.to_dict(),
            "used": None if window is None else window.basis,
        },
        "pump_pressure": {
            "max_kpa": profile.pump_pressure_max_kpa,
            "seen_p99_kpa": profile.pump_pressure_seen_p99_kpa,
        },
    }
