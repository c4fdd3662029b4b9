"""The one place where errors become HTTP responses: ``{"code", "detail", ...}``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import errors as e

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[e.BackfillError], int]] = [
    (e.InvalidInput, 422),
    (e.RecipeInfeasible, 422),
    (e.OutsideCalibrationRange, 422),
    (e.CalibrationRejected, 422),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.PlantNotReady, 409),
    (e.TagMapError, 503),
    (e.SetpointRejected, 502),
    (e.SetpointUnconfirmed, 504),
    (e.PlantLinkError, 503),
    (e.StoreUnavailable, 503),
    (e.ServiceStopping, 503),
    (e.TooManyStreams, 429),
    (e.TooManyExports, 429),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def status_for(err: e.BackfillError) -> int:
    for cls, status in _STATUS:
        if isinstance(err, cls):
            return status
    return 500


def field_path(loc: Sequence[Any]) -> str:
    """("body", "binder", 1, "fraction_pct") -> "binder[1].fraction_pct"."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            # A key of a client's mapping may be no Unicode text (a lone surrogate):
            # it is named by its escapes, never echoed.
            name = str(p).encode("utf-8", "backslashreplace").decode("utf-8")
            out += f".{name}" if out else name
    return out or "body"


def _validation_payload(err: RequestValidationError) -> dict[str, Any]:
    items = []
    for item in err.errors():
        if item.get("type") == "json_invalid":
            # FastAPI puts the character position where a field name would be.
            position = item.get("loc", ("body", "?"))[-1]
            reason = (item.get("ctx") or {}).get("error", "invalid")
            message = f"the body is not valid JSON: {reason} at character {position}"
            items.append({"field": "body", "message": message})
            continue
        # pydantic puts the validator name (e.g. a union branch or "function-after") in
        # the location; drop what is not a field name or an index.
        loc = [p for p in item.get("loc", ()) if isinstance(p, int) or "[" not in str(p)]
        items.append({"field": field_path(loc), "message": str(item.get("msg", "invalid"))})
    first = items[0] if items else {"field": "body", "message": "invalid request"}
    return {
        "code": "validation_error",
        "detail": f"{first['field']}: {first['message']}",
        "field": first["field"],
        "errors": items,
    }


def capped(body: dict[str, Any], max_errors_listed: int) -> dict[str, Any]:
    """An error body whose ``errors`` list (a lab sheet's bad rows, a body's bad fields)
    holds at most ``max_errors_listed`` items, the first ones; ``errors_omitted`` says
    how many more there are (a bad 1 MB sheet once answered 2.58 MB of errors)."""
    items = body.get("errors")
    if not isinstance(items, list) or len(items) <= max_errors_listed:
        return body
    omitted = len(items) - max_errors_listed
    return {
        **body,
        "detail": f"{body.get('detail', '')} ({omitted} more errors not listed)",
        "errors": items[:max_errors_listed],
        "errors_omitted": omitted,
    }


def install(app: FastAPI, *, max_errors_listed: int = 100) -> None:
    @app.exception_handler(e.BackfillError)
    async def _backfill(_req: Request, err: e.BackfillError) -> JSONResponse:
        status = status_for(err)
        if status >= 500:
            log.warning("request failed: %s: %s", err.code, err.detail)
        retry = err.retry_after_s or (5 if status == 503 else None)
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return JSONResponse(
            capped(err.to_dict(), max_errors_listed), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(capped(_validation_payload(err), max_errors_listed), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, err: StarletteHTTPException) -> JSONResponse:
        if err.status_code == 400:
            # FastAPI's only 400: a body it could not decode (not UTF-8, say). Every
            # body error is the documented 422 naming the field.
            detail = "body: the body could not be read as JSON text (UTF-8)"
            return JSONResponse(
                {"code": "validation_error", "detail": detail, "field": "body", "errors": []},
                status_code=422,
            )
        code = _HTTP_CODES.get(err.status_code, "http_error")
        return JSONResponse(
            {"code": code, "detail": str(err.detail)},
            status_code=err.status_code,
            headers=getattr(err, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error: %s", type(err).__name__)
        return JSONResponse(
            {"code": "internal_error", "detail": "an internal error occurred"}, status_code=500
        )
