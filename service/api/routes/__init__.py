"""The HTTP routes, a module per concern, each with one :func:`api_router`; every one
but ``health`` lives under :data:`API_PREFIX`."""

from fastapi import APIRouter

from service.api.openapi import operation_id

API_PREFIX = "/api/v1"


def api_router(tag: str, *, prefix: str = API_PREFIX) -> APIRouter:
    """A route module's router: its routes carry their full path and their operationId
    (the route function's name), so the application adds them as they are
    (``service.app.add_routes_flat``)."""
    return APIRouter(prefix=prefix, tags=[tag], generate_unique_id_function=operation_id)
