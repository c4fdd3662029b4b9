"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from service.api.deps import RuntimeDep
from service.api.routes import api_router
from service.errors import StoreUnavailable

router = api_router("health", prefix="")
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the store answers; the PLC link state is reported, not required
    (the service keeps serving records while the link reconnects). Unauthenticated, so
    it says no more than that: what the database said (its host, its port) goes to the
    log."""
    body: dict[str, Any] = {"status": "ready", "store": "ok"}
    status = 200
    try:
        await runtime.store.ping()
    except StoreUnavailable as err:
        log.warning("not ready: %s", err.detail)
        body.update(status="not_ready", store="unreachable", code=err.code)
        status = 503
    return JSONResponse(body, status_code=status)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(runtime: RuntimeDep, request: Request) -> Response:
    """Prometheus text exposition format (OpenMetrics for a scraper that asks for it)."""
    body, content_type = runtime.metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)
