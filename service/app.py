"""``create_app(settings)``: builds the FastAPI application; the lifespan owns every
connection and task (nothing is built at import time)."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.api import errors, openapi
from service.api.access_log import AccessLog
from service.api.edge import ApiEdge
from service.api.routes import (
    API_PREFIX,
    alarms,
    calibrations,
    exports,
    health,
    plant,
    pours,
    recipe_store,
    recipes,
    reconciliations,
    reports,
    rheology,
    samples,
    stopes,
    strength,
    whoami,
)
from service.runtime import Runtime
from service.settings import Settings

# In the order they are matched: the computations, then the plant view the HMIs poll.
_ROUTE_MODULES = (
    recipes,
    strength,
    plant,
    recipe_store,
    calibrations,
    rheology,
    pours,
    stopes,
    samples,
    reconciliations,
    alarms,
    reports,
    exports,
    whoami,
    health,
)
WEB_DIR = Path(__file__).resolve().parent / "web"
API_DESCRIPTION = (
    "Mix recipes, pours under closed-loop control, stopes, laboratory results and the "
    "plant's status for SCADA and HMIs. Every request under /api/ takes "
    "`Authorization: Bearer <key>`; units are in the field names and percentages say what "
    "they are a percentage of (`binder_pct` is Bw, of the dry tailings; `solids_pct` is "
    'Cw, of the paste). Errors are `{"code", "detail", "field"}`. The integration '
    "contract for SCADA integrators and PLC programmers (conventions, errors, roles, the "
    "PLC's OPC UA tags and handshake) is docs/INTEGRATION.md in the service's source tree."
)
_PAGE_HEADERS = {"Cache-Control": "no-cache"}
# Pure computations: they change nothing, so they have their own, higher rate limit.
_COMPUTATIONS = re.compile(
    rf"^{API_PREFIX}/(recipes/proportion|recipes/optimize|strength/required|strength/arching"
    r"|calibrations/[^/]+/predict|rheology/calibrations/[^/]+/predict)$"
)


class PageAssets(StaticFiles):
    """The page's own files only: markup, script, style and images; nothing else in
    the folder (its ``__init__.py``, say) is served."""

    SUFFIXES = (".html", ".js", ".css", ".svg", ".png", ".ico")

    async def get_response(self, path: str, scope: Any) -> Response:
        name = Path(path).name
        if not name.endswith(self.SUFFIXES) or name.startswith(("_", ".")):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def add_routes_flat(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The routers' routes, in their order, put at the head of the application's own
    table as they are: ahead of the interactive docs' routes the application made
    itself, since a request is matched route by route.

    ``app.include_router`` of FastAPI 0.16x keeps an included router as a node that
    matches its routes anew on every request, twice (to choose it, then to dispatch
    into it), one level more for each nesting. Every route module's router carries its
    full prefix and operationIds (``service.api.routes.api_router``), so its routes go
    straight into one flat table: a request is matched once, as Starlette does."""
    app.router.routes[:0] = [route for router in routers for route in router.routes]


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

    # The interactive docs (Swagger UI, ReDoc) are served with their assets from the
    # fastapi-offline package: they work on a plant network with no internet.
    app = FastAPIOffline(
        title="Paste backfill control-integration service",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Short, stable operationIds (the route functions' names): the method names of
        # every client generated from the schema.
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.runtime = runtime
    errors.install(app, max_errors_listed=settings.api.max_errors_listed)
    openapi.install(app)
    app.add_middleware(
        ApiEdge,
        authenticate=runtime.keys.authenticate,
        metrics=runtime.metrics.http,
        is_computation=lambda path: _COMPUTATIONS.match(path) is not None,
        max_body_bytes=settings.api.max_body_bytes,
        write_rate_per_s=settings.api.write_rate_per_s,
        write_burst=settings.api.write_burst,
        compute_rate_per_s=settings.api.compute_rate_per_s,
        compute_burst=settings.api.compute_burst,
        body_timeout_s=settings.api.idle_timeout_s,
        access_log=AccessLog(settings.access_log),
    )
    add_routes_flat(app, [module.router for module in _ROUTE_MODULES])

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers=_PAGE_HEADERS)

    app.mount("/web", PageAssets(directory=WEB_DIR), name="web")
    return app
