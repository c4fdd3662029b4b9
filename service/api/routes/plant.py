"""Plant status for HMIs and SCADA: a snapshot (with ETag) and a server-sent stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from service.api.deps import PrincipalDep, RuntimeDep
from service.api.plant_status import encode, status_body
from service.api.schemas.plant import PlantStatusPublic

router = APIRouter(tags=["plant"])

_STREAM_KEEPALIVE_S = 15.0


@router.get(
    "/plant/status",
    response_model=PlantStatusPublic,
    responses={304: {"description": "Not modified (If-None-Match matched the ETag)."}},
)
async def plant_status(request: Request, runtime: RuntimeDep, _: PrincipalDep) -> Response:
    """The HMI snapshot from memory; ``If-None-Match`` with the last ETag answers 304."""
    raw, etag = encode(status_body(runtime))
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(raw, media_type="application/json", headers=headers)


@router.get("/plant/stream", responses={200: {"content": {"text/event-stream": {}}}})
async def plant_stream(request: Request, runtime: RuntimeDep, _: PrincipalDep) -> Response:
    """The same snapshot as server-sent events, sent on every change (at most about
    every publishing interval), with a comment line every 15 s to keep proxies open."""

    async def events() -> AsyncIterator[bytes]:
        last_etag = None
        version = -1
        while not await request.is_disconnected():
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

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
