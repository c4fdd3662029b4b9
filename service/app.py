"""``create_app(settings)``: builds the FastAPI application; the lifespan owns every
connection and task (nothing is built at import time)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from service.api import errors, openapi
from service.api.limits import RequestLimits
from service.api.routes import (
    alarms,
    calibrations,
    health,
    plant,
    pours,
    recipe_store,
    recipes,
    reports,
    strength,
    whoami,
)
from service.runtime import Runtime
from service.settings import Settings

API_PREFIX = "/api/v1"
WEB_DIR = Path(__file__).resolve().parent / "web"
# The page loads nothing but its own files and talks to nothing but this service.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Cache-Control": "no-cache",
}


def create_app(settings: Settings, *, freeze_heap: bool = False) -> FastAPI:
    """``freeze_heap``: once started, move every object that exists then (modules, the
    OPC UA address space of a built-in simulator, the tag map ...) out of the garbage
    collector's reach with ``gc.freeze()``. A full collection then scans only what was
    made since, instead of stalling the event loop (and with it the control cycle and
    every request) for 100-300 ms every minute or so. For the process that owns the
    service (``python -m service``); the tests build many apps in one process and leave
    it off."""
    runtime = Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if freeze_heap:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if freeze_heap:
                gc.unfreeze()
            await runtime.stop()

    app = FastAPI(
        title="Paste backfill control-integration service",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    openapi.install(app)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.api.max_body_bytes,
        write_rate_per_s=settings.api.write_rate_per_s,
        write_burst=settings.api.write_burst,
    )
    app.include_router(health.router)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(recipes.router)
    api.include_router(recipe_store.router)
    api.include_router(strength.router)
    api.include_router(calibrations.router)
    api.include_router(plant.router)
    api.include_router(pours.router)
    api.include_router(alarms.router)
    api.include_router(reports.router)
    api.include_router(whoami.router)
    app.include_router(api)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers=_PAGE_HEADERS)

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    return app
