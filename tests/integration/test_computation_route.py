"""ComputationRoute answers every body exactly as FastAPI's own handler does: the same
bodies, good and bad, posted to a twin of each kind with the same model and the
service's error handlers, give the same status and the same JSON. And a route of a
shape it does not serve is refused when it is built, never half-served."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel

from service.api import errors
from service.api.computation_route import ComputationRoute, computation, is_json_media_type
from service.api.deps import RuntimeDep
from service.api.schemas.recipes import ProportionRequest
from tests.conftest import PROPORTION_EXAMPLE

GOOD: dict[str, Any] = PROPORTION_EXAMPLE
JSON = "application/json"


class Echo(BaseModel):
    binder_pct: float


def twins() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    router = APIRouter()

    # Each echoes the request as validated, whole: equal answers mean equal values.
    @router.post("/fastapi", response_model=ProportionRequest)
    async def by_fastapi(req: ProportionRequest) -> ProportionRequest:
        return req

    @computation(router, "/computation", response_model=ProportionRequest)
    async def by_computation(req: ProportionRequest, request: Request) -> ProportionRequest:
        assert request.url.path == "/computation"
        return req

    app.include_router(router)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=twins())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _with(**changes: Any) -> bytes:
    body = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        node = body
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        node[keys[-1]] = value
    return json.dumps(body).encode()


# (what, body bytes, content-type header or None for none)
CASES: list[tuple[str, bytes, str | None]] = [
    ("good", json.dumps(GOOD).encode(), JSON),
    ("good, JSON with a charset", json.dumps(GOOD).encode(), "application/json; charset=utf-8"),
    ("good, a +json type", json.dumps(GOOD).encode(), "application/vnd.backfill+json"),
    ("good, upper-case type", json.dumps(GOOD).encode(), "Application/JSON"),
    ("no body", b"", JSON),
    ("no content type", json.dumps(GOOD).encode(), None),
    ("text/plain", json.dumps(GOOD).encode(), "text/plain"),
    ("a form type", b"binder_pct=4.5", "application/x-www-form-urlencoded"),
    ("not JSON", b'{"tailings": ', JSON),
    ("trailing garbage", json.dumps(GOOD).encode() + b"}", JSON),
    ("not UTF-8", b'{"binder_pct": "\xff\xfe"}', JSON),
    ("UTF-16 JSON", json.dumps(GOOD).encode("utf-16"), JSON),
    ("null", b"null", JSON),
    ("an array", b"[1, 2]", JSON),
    ("a string", b'"x"', JSON),
    ("a nested wrong type", _with(binder__1__fraction_pct="eighty"), JSON),
    ("a number as a string", _with(binder_pct="4.5"), JSON),
    ("a boolean for a number", _with(solids_pct=True), JSON),
    ("NaN", _with(binder_pct=float("nan")), JSON),
    ("Infinity", _with(volume_m3=float("inf")), JSON),
    ("a missing field", _with(tailings={"moisture_pct": 31.58}), JSON),
    ("an unknown field", _with(binder_ratio=4.5), JSON),
    ("out of range", _with(binder_pct=-1), JSON),
    ("fractions not 100", _with(binder__0__fraction_pct=25), JSON),
    ("an empty blend", _with(binder=[]), JSON),
    # JSON the fast parser reads, or leaves to the standard one: the same values.
    ("a byte order mark", b"\xef\xbb\xbf" + json.dumps(GOOD).encode(), JSON),
    ("a repeated key: the last", json.dumps(GOOD).encode()[:-1] + b', "binder_pct": 5.5}', JSON),
    ("an escaped name", _with(binder__0__name="c\u00e9ment \ud83d\ude00"), JSON),
    ("a lone surrogate", json.dumps(GOOD).replace("cement", "\\ud800").encode(), JSON),
    ("a surrogate in UTF-8", json.dumps(GOOD).encode().replace(b"cement", b"\xed\xa0\x80"), JSON),
    ("long decimals", _with(binder_pct=4.50000000000000017763568394002504646778106689453125), JSON),
    ("exponents", json.dumps(GOOD).replace("70.0", "0.7E2").encode(), JSON),
    ("minus zero", _with(volume_m3=-0.0), JSON),
    ("a huge number", json.dumps(GOOD).replace("70.0", "1e400").encode(), JSON),
    ("a big integer", json.dumps(GOOD).replace("70.0", "7" * 30).encode(), JSON),
    ("a control character", json.dumps(GOOD).replace("cement", "ce\tment").encode(), JSON),
    ("a raw control character", json.dumps(GOOD).encode().replace(b"cement", b"ce\x01ment"), JSON),
    ("white space around", b" \r\n\t" + json.dumps(GOOD).encode() + b"\n ", JSON),
    ("a form feed around", b"\x0c" + json.dumps(GOOD).encode(), JSON),
    ("a trailing comma", json.dumps(GOOD).encode()[:-1] + b",}", JSON),
    ("nested too deep", b'{"tailings": ' + b"[" * 5000 + b"]" * 5000 + b"}", JSON),
]


@pytest.mark.parametrize(("what", "body", "content_type"), CASES, ids=[c[0] for c in CASES])
async def test_same_answer_as_fastapi(
    client: httpx.AsyncClient, what: str, body: bytes, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    by_fastapi = await client.post("/fastapi", content=body, headers=headers)
    by_computation = await client.post("/computation", content=body, headers=headers)
    assert by_computation.status_code == by_fastapi.status_code, (what, by_fastapi.text)
    assert by_computation.json() == by_fastapi.json(), what
    assert by_computation.headers["content-type"] == by_fastapi.headers["content-type"]


async def test_the_cases_cover_both_outcomes(client: httpx.AsyncClient) -> None:
    """The comparison above is only worth something if it sees successes and each kind
    of refusal."""
    statuses: dict[int, set[str]] = {}
    for _what, body, content_type in CASES:
        headers = {} if content_type is None else {"content-type": content_type}
        r = await client.post("/computation", content=body, headers=headers)
        statuses.setdefault(r.status_code, set()).add(r.json().get("code", "ok"))
    assert set(statuses) == {200, 422}
    assert statuses[422] == {"validation_error"}
    fields = set()
    for _what, body, _content_type in CASES[4:]:
        r = await client.post("/computation", content=body, headers={"content-type": JSON})
        fields.add(r.json().get("field"))
    assert {"body", "binder[1].fraction_pct", "binder_pct", "tailings.specific_gravity"} <= fields


async def test_a_wrong_return_is_an_error_not_a_guess() -> None:
    app = FastAPI()
    errors.install(app)
    router = APIRouter()

    @computation(router, "/c", response_model=Echo)
    async def returns_a_dict(req: ProportionRequest) -> Any:
        return {"binder_pct": req.binder_pct}

    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/c", json=GOOD)
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error"


def test_shapes_it_does_not_serve_are_refused_when_built() -> None:
    router = APIRouter()

    async def with_a_dependency(req: ProportionRequest, runtime: RuntimeDep) -> Echo:
        raise AssertionError

    async def with_a_query(req: ProportionRequest, unit: str = Query("kg")) -> Echo:
        raise AssertionError

    async def with_two_bodies(req: ProportionRequest, other: Echo) -> Echo:
        raise AssertionError

    def not_async(req: ProportionRequest) -> Echo:
        raise AssertionError

    for endpoint in (with_a_dependency, with_a_query, with_two_bodies, not_async):
        with pytest.raises(TypeError, match="a computation is"):
            router.add_api_route(
                "/x", endpoint, methods=["POST"], route_class_override=ComputationRoute
            )


def test_the_media_type_rule() -> None:
    assert is_json_media_type("application/json")
    assert is_json_media_type("application/json;charset=utf-8")
    assert is_json_media_type(" APPLICATION/problem+json ")
    assert not is_json_media_type("")
    assert not is_json_media_type("json")
    assert not is_json_media_type("text/json")
    assert not is_json_media_type("application/jsonx")
    assert not is_json_media_type("multipart/form-data; boundary=x")
