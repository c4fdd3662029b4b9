"""``ComputationRoute``: the route class of the pure computations (``POST
/recipes/proportion``, ``/strength/required``, ``/strength/arching``), the calls a SCADA
or a calculator page makes most often and that change nothing.

FastAPI's general request handler solves a dependency graph for every request (each
dependency costs about as much as the computation itself) and walks options these
routes never use (forms, files, streams, background tasks, response headers). A
computation has one shape: a JSON body validated into one model, perhaps the
``Request`` (for the application's runtime), and a ``Response`` or an instance of the
route's response model back. This class serves exactly that shape and refuses any
other when the route is built, so a dependency added later cannot be silently ignored.

Everything a caller sees is FastAPI's: the route is an ``APIRoute`` (the OpenAPI
document, operationId, examples and response model are unchanged); the body is read,
decoded and validated as FastAPI reads a JSON body (the same media-type rule, the same
``RequestValidationError`` with locations under ``"body"``, the same 400 for a body
that is not text), so the error handlers answer exactly as for any other route.
``tests/integration/test_computation_route.py`` posts the same bad bodies to both
kinds of route and compares the answers.

Authentication and the request limits are the edge's (``service/api/edge.py``), before
any route.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json
from starlette.responses import Response
from starlette.routing import request_response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_MISSING = object()


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters and case aside
    (the rule FastAPI applies before it decodes a body as JSON)."""
    media = content_type.partition(";")[0].strip().lower()
    maintype, slash, subtype = media.partition("/")
    return (
        bool(slash)
        and maintype == "application"
        and (subtype == "json" or subtype.endswith("+json"))
    )


async def read_json_body(request: Request) -> Any:
    """The decoded body; the raw bytes when it is not declared JSON (validation then
    refuses them); ``_MISSING`` when there is none. A body that cannot be read or
    decoded is FastAPI's errors: a ``RequestValidationError`` for bad JSON, a 400 for
    anything else (not UTF-8, nested beyond the parser, the client gone)."""
    try:
        raw = await request.body()
        if not raw:
            return _MISSING
        if not is_json_media_type(request.headers.get("content-type", "")):
            return raw
        try:
            # pydantic's JSON parser, a quarter of the time of the standard library's.
            # It takes nothing ``json.loads`` refuses (NaN and Infinity it reads as
            # json.loads does); what it refuses (a BOM, UTF-16, a lone surrogate, a
            # syntax error) goes the standard way below, so the value or the error is
            # exactly FastAPI's.
            return from_json(raw)
        except ValueError:
            return json.loads(raw)
    except json.JSONDecodeError as err:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", err.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": err.msg},
                }
            ],
            body=err.doc,
        ) from err
    except Exception as err:  # FastAPI's one 400, which the error handlers turn to a 422
        raise HTTPException(400, "There was an error parsing the body") from err


class ComputationRoute(APIRoute):
    """Use with ``router.add_api_route(..., route_class_override=ComputationRoute)``, or
    :func:`computation`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # Starlette's own wrapper: the request, the application's exception handlers,
        # the response. FastAPI's adds two exit stacks per request, for dependencies
        # with ``yield``, which a computation has none of.
        self.app = request_response(self.get_route_handler())

    def get_route_handler(self) -> Handler:
        body_name, model, request_name = self._shape()
        adapter: TypeAdapter[Any] = TypeAdapter(model)
        response_model = self.response_model
        response_adapter: TypeAdapter[Any] | None = (
            TypeAdapter(response_model) if response_model is not None else None
        )
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            body = await read_json_body(request)
            if body is _MISSING:
                missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
                raise RequestValidationError([{**missing, "input": None}])
            try:
                value = adapter.validate_python(body, from_attributes=True)
            except ValidationError as err:
                raise RequestValidationError(
                    [
                        {**item, "loc": ("body", *item["loc"])}
                        for item in err.errors(include_url=False)
                    ],
                    body=body,
                ) from err
            arguments = {body_name: value}
            if request_name is not None:
                arguments[request_name] = request
            result = await endpoint(**arguments)
            if isinstance(result, Response):
                return result
            if response_adapter is None or type(result) is not response_model:
                wanted = getattr(response_model, "__name__", "none declared")
                raise TypeError(
                    f"{self.name} returned {type(result).__name__}: a computation returns "
                    f"a Response or its response model ({wanted})"
                )
            return Response(
                response_adapter.dump_json(result, by_alias=True), media_type="application/json"
            )

        return handler

    def _shape(self) -> tuple[str, type[BaseModel], str | None]:
        """(body parameter, its model, request parameter if any), or a TypeError naming
        what this route has that a computation may not."""
        dependant = self.dependant
        others = (
            dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.dependencies
        )
        if (
            not inspect.iscoroutinefunction(self.endpoint)
            or others
            or len(dependant.body_params) != 1
            or set(inspect.signature(self.endpoint).parameters)
            != {dependant.body_params[0].name, dependant.request_param_name} - {None}
        ):
            raise TypeError(
                f"{self.path}: a computation is `async def f(body: Model[, request: Request])`;"
                " no dependencies, path, query or header parameters"
            )
        field = dependant.body_params[0]
        model = field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{self.path}: the body of a computation is a pydantic model")
        return field.name, model, dependant.request_param_name


def computation(
    router: Any, path: str, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@computation(router, "/recipes/proportion", response_model=...)``: a POST route
    served by :class:`ComputationRoute`."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=ComputationRoute, **kwargs
        )
        return endpoint

    return register
