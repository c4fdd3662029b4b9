"""Every text a client can send is Unicode or a 422 naming its field, on SQLite and on
PostgreSQL: a lone UTF-16 surrogate (JSON ``"\\ud800"``, or the bytes ED A0 80) in any
request field was a 500 with a traceback on SQLite and a 503 carrying asyncpg's words
on PostgreSQL. The fields are found by walking the request models of every route that
takes a body, so a text field added later is tested without being listed here. And
what a database driver says never reaches an answer."""

from __future__ import annotations

import copy
import json
import logging
import types
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import text

from service.api.examples import REQUEST_EXAMPLES
from tests.conftest import auth, fresh_postgres_database
from tests.integration.conftest import running_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = auth("admin")
LONE = "S-1\ud800"
# Request models a route's example does not contain (a calibration given as rows
# instead of CSV): a valid instance, so that only the text under test is wrong.
INSTANCES: dict[str, dict[str, Any]] = {
    "CylinderIn": {
        "blend": {"cement": 100},
        "binder_pct": 4.5,
        "solids_pct": 76,
        "curing_days": 28,
        "ucs_kpa": 500,
    },
    "StopeIn": REQUEST_EXAMPLES["strength_required"],
    "SurveyIn": {"csv": "height_m,volume_m3\n0,0\n10,1500\n"},
}


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["sqlite", "postgresql"])
async def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('unicode') / 'backfill.db'}"
        async with running_app(url) as pair:
            yield pair
        return
    async with fresh_postgres_database() as url, running_app(url) as pair:
        yield pair


# --- the request models, walked ------------------------------------------------------


def _strip(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


Path_ = tuple[str | int, ...]


def text_fields(model: type[BaseModel], prefix: Path_ = ()) -> Iterator[tuple[Path_, str, Any]]:
    """(path, kind, model at the end) of every field that holds client text: kind
    ``str``, ``list`` (of str), ``keys`` (a mapping keyed by text) or ``json`` (free)."""
    for name, info in model.model_fields.items():
        inner = _strip(info.annotation)
        origin = typing.get_origin(inner)
        args = [_strip(a) for a in typing.get_args(inner)]
        if inner is str:
            yield (*prefix, name), "str", model
        elif _is_model(inner):
            yield from text_fields(inner, (*prefix, name))
        elif origin is list and args and _is_model(args[0]):
            yield from text_fields(args[0], (*prefix, name, 0))
        elif origin is list and args == [str]:
            yield (*prefix, name), "list", model
        elif origin is dict and args and args[0] is str:
            yield (*prefix, name), ("json" if args[1] is Any else "keys"), model
        elif inner is Any:
            yield (*prefix, name), "json", model


def _field_name(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _model_at(model: type[BaseModel], path: Path_) -> type[BaseModel]:
    for part in path:
        if isinstance(part, int):
            continue
        inner = _strip(model.model_fields[part].annotation)
        if typing.get_origin(inner) is list:
            inner = _strip(typing.get_args(inner)[0])
        model = inner
    return model


def with_lone_surrogate(
    example: dict[str, Any], model: type[BaseModel], path: Path_, kind: str
) -> dict[str, Any]:
    """The example with the text at ``path`` made a lone surrogate (the models on the
    way put in where the example has none)."""
    body = copy.deepcopy(example)
    here: Any = body
    for i, part in enumerate(path[:-1]):
        inner = _model_at(model, path[: i + 1])
        if isinstance(part, int):
            if not here:
                here.append(copy.deepcopy(INSTANCES[inner.__name__]))
        elif here.get(part) is None:
            if isinstance(path[i + 1], int):
                here[part] = []
            else:
                here[part] = copy.deepcopy(INSTANCES[inner.__name__])
        here = here[part]
    leaf = path[-1]
    if kind == "str":
        here[leaf] = LONE
    elif kind == "list":
        here[leaf] = [LONE]
    elif kind == "keys":
        current = here.get(leaf) or {"x": 1}
        first = next(iter(current.values()))
        here[leaf] = {LONE: first}
    else:
        here[leaf] = {"note": [1, {"by": LONE}]}
    return body


def body_routes(app: FastAPI) -> list[tuple[str, str, type[BaseModel]]]:
    """(path, operation id, body model) of every route that takes a JSON body."""
    out = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        model = _strip(route.body_field.field_info.annotation)
        assert _is_model(model), route.path
        path = route.path_format.replace("{", "").replace("}", "")  # ids of nothing
        out.append((path, route.name, model))
    return out


async def post_json(client: httpx.AsyncClient, url: str, body: Any) -> httpx.Response:
    """The body as JSON with ASCII escapes (``\\ud800``), as a JavaScript client's
    ``JSON.stringify`` sends a lone surrogate."""
    return await client.post(
        url, content=json.dumps(body), headers={**ADMIN, "Content-Type": "application/json"}
    )


# --- tests -----------------------------------------------------------------------------


async def test_a_lone_surrogate_in_any_request_text_is_a_422_naming_the_field(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = running
    routes = body_routes(app)
    tried: list[str] = []
    for url, op_id, model in routes:
        example = REQUEST_EXAMPLES[op_id]
        for path, kind, _owner in text_fields(model):
            body = with_lone_surrogate(example, model, path, kind)
            field = _field_name(path)
            r = await post_json(client, url, body)
            assert r.status_code == 422, (op_id, field, r.status_code, r.text)
            # An item of a list is named with its index, a key by its escapes
            # ("blend.S-1\\ud800").
            named = [
                e
                for e in r.json()["errors"]
                if e["field"] == field or e["field"].startswith((f"{field}.", f"{field}["))
            ]
            assert named, (op_id, field, r.json())
            assert "unicode" in named[0]["message"].lower(), (op_id, field, named)
            tried.append(f"{op_id}:{field}")
    # The fields that reached a store in the report: none may be missed by the walk.
    for stored in (
        "create_recipe:name",
        "create_recipe:approved_by",
        "create_recipe:design",
        "approve_recipe:approved_by",
        "create_stope:name",
        "create_pour:stope_id",
        "create_pour:sample_ids",
        "enter_result:note",
        "import_sheet:csv",
        "create_calibration:rows[0].sample_id",
        "create_rheology_calibration:rows[0].sample_id",
        "approve_calibration:approved_by",
        "approve_reconciliation:approved_by",
        "add_plan:stages[0].name",
    ):
        assert stored in tried, (stored, sorted(tried))
    assert len(tried) >= 40


async def test_a_lab_sheet_cell_and_raw_bytes_are_named_by_line(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _app, client = running
    sheet = "sample_id,cast_at,curing_days,ucs_kpa,note\nA-1,2026-01-01T08:00:00+00:00,7,100,ok\n"
    sheet += "A-2,2026-01-01T08:00:00+00:00,7,100,bad \ud800 cell\n"
    r = await post_json(client, "/api/v1/lab/sheets", {"csv": sheet})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "csv"
    assert "line 3, character 41" in r.json()["detail"], r.json()
    # The same character as raw bytes (not valid UTF-8, but Python's JSON reader takes
    # them as a surrogate), in a stored name.
    raw = b'{"name": "S-\xed\xa0\x80", "height_m": 30, "plan_area_m2": 150, '
    raw += b'"barricade_rating_kpa": 200}'
    r = await client.post(
        "/api/v1/stopes", content=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["field"]) == (422, "name"), r.text


async def test_text_beyond_the_basic_plane_is_stored_and_read_back(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """A surrogate pair is a character (here U+1F9F1, a brick): it is stored whole and
    comes back the same from either database."""
    _app, client = running
    name = "Ступень \U0001f9f1 mélange"
    body = {**REQUEST_EXAMPLES["create_recipe"], "name": name, "approved_by": "Zoë \U0001f9f1"}
    r = await client.post("/api/v1/recipes", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    stored = (await client.get(f"/api/v1/recipes/{r.json()['id']}", headers=ADMIN)).json()
    assert (stored["name"], stored["approved_by"]) == (name, "Zoë \U0001f9f1")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_store_error_answers_without_the_drivers_words(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(url: str) -> None:
        async with running_app(url) as (app, client):
            async with app.state.runtime.store.engine.begin() as conn:
                await conn.execute(text("ALTER TABLE samples RENAME TO samples_gone"))
            with caplog.at_level(logging.WARNING, logger="service.api.errors"):
                r = await client.get("/api/v1/samples", headers=ADMIN)
            assert r.status_code == 503, r.text
            assert r.json() == {"code": "store_unavailable", "detail": "could not read"}
            # The driver's words (the table's name in them) are the log's.
            assert "samples" in caplog.text, caplog.text
            async with app.state.runtime.store.engine.begin() as conn:
                await conn.execute(text("ALTER TABLE samples_gone RENAME TO samples"))

    if backend == "sqlite":
        await check(f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}")
        return
    async with fresh_postgres_database() as url:
        await check(url)
