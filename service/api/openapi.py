"""The OpenAPI schema says what the service really answers on errors: one shape,
``{"code", "detail", ...}`` (``service/api/errors.py``), for 422 and for the other
statuses a caller must handle (400, 401, 403, 404, 409, 413, 429, 503); it declares the
bearer API key every ``/api/`` operation needs (the docs' Authorize button, a generated
client's auth); its operationIds are the route functions' names, short and stable
(``start_pour``, not ``start_pour_api_v1_pours__pour_id__start_post``); and every
request body carries an example (``service/api/examples.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.api.examples import REQUEST_EXAMPLES

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "description": "Stable snake_case code."},
        "detail": {"type": "string", "description": "Human-readable explanation."},
        "field": {"type": "string", "description": "The offending field (422)."},
    },
    "additionalProperties": True,
}

_ERRORS = {
    "400": "The body could not be read (not JSON, or not UTF-8).",
    "401": "No or an unknown API key.",
    "403": "The key's role may not do this.",
    "404": "No such resource.",
    "409": "Conflicts with the current state (pour state, plant not ready).",
    "413": "Request body too large.",
    "422": "A malformed or out-of-range request; `field` names it.",
    "429": "Too many writes; see Retry-After.",
    "503": "The store or the PLC link is unavailable; see Retry-After.",
}
_REF = {"$ref": "#/components/schemas/Error"}
BEARER = "bearerAuth"
BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (BACKFILL_API_KEYS); its role decides what it may do.",
}


def operation_id(route: APIRoute) -> str:
    """The route function's name (unique across the service: :func:`install` checks)."""
    return route.name


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        schema["components"]["securitySchemes"] = {BEARER: BEARER_SCHEME}
        seen: dict[str, str] = {}
        for path, item in schema.get("paths", {}).items():
            for op in item.values():
                op_id = op.get("operationId", "")
                if op_id in seen:
                    raise RuntimeError(f"operationId {op_id!r} of {path} is {seen[op_id]}'s too")
                seen[op_id] = path
                _add_example(op, op_id, path)
            if not path.startswith("/api/"):
                continue
            for op in item.values():
                op["security"] = [{BEARER: []}]
                responses = op.setdefault("responses", {})
                for status, text in _ERRORS.items():
                    responses[status] = {
                        "description": text,
                        "content": {"application/json": {"schema": _REF}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_example(op: dict[str, Any], op_id: str, path: str) -> None:
    """Put the operation's example on its JSON body; a body without one is an error of
    the service, caught when the schema is first built (every test that reads it)."""
    body = op.get("requestBody")
    if body is None:
        return
    if op_id not in REQUEST_EXAMPLES:
        raise RuntimeError(f"the request body of {op_id} ({path}) has no example")
    body["content"]["application/json"]["example"] = REQUEST_EXAMPLES[op_id]
