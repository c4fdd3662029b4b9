"""The labels of the HTTP request metrics (the edge, ``service/api/edge.py``, counts and
times every request): method, route *template* (``/api/v1/pours/{pour_id}``, never the
path a client sent: the number of series stays bounded whatever the clients ask) and
status code.

The template is the route FastAPI chose, read from the request's scope once the
response is done. A request that reached no route (a 404, or one the edge refused
before routing: 401, 408, 413, 429) is labelled ``route="unrouted"``, and a method
outside the standard ones ``method="other"``. A request whose handler failed before
answering counts as the 500 the server then sends.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match, Mount, Route

Scope = dict[str, Any]

UNROUTED = "unrouted"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope, path: str, root_path: str) -> str:
    """The template of the route that served the request, else ``UNROUTED``."""
    # FastAPI (0.16x) keeps a route included through routers, with their prefixes, here.
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        template = getattr(fastapi_scope.get("effective_route_context"), "path_format", None)
        if isinstance(template, str) and template:
            return template
    # A route of the application itself (and, in older FastAPI, any API route).
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str) and template:
        return template
    # Starlette's own routes (the OpenAPI document, the docs pages) and mounts (the
    # page's assets) leave no trace in the scope: match them again, only for these.
    app = scope.get("app")
    routes: list[BaseRoute] = getattr(getattr(app, "router", None), "routes", [])
    probe = {"type": "http", "path": path, "root_path": root_path, "method": scope["method"]}
    for route in routes:
        if isinstance(route, Route | Mount) and route.matches(probe)[0] is not Match.NONE:
            return route.path_format
    return UNROUTED
