"""Nothing enters a stope but through its plan: callers at once get one stage pour, a
pour does not start while its stage cures, and a plain pour naming a planned stope is
refused. On SQLite and on PostgreSQL, through the API of a running service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.runtime import Runtime
from tests.conftest import PROPORTION_EXAMPLE, auth, fresh_postgres_database
from tests.integration.conftest import running_app

MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 35.7},
    "binder": PROPORTION_EXAMPLE["binder"],
    "binder_pct": 6.0,
    "solids_pct": 72.0,
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def service(
    request: pytest.FixtureRequest, tmp_path: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    if request.param == "sqlite":
        async with running_app(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}") as pair:
            yield pair
        return
    async with fresh_postgres_database() as url, running_app(url) as pair:
        yield pair


async def planned_stope(client: httpx.AsyncClient) -> dict[str, Any]:
    name = f"S-{uuid.uuid4().hex[:6]}"
    r = await client.post(
        "/api/v1/recipes",
        json={"name": f"{name} plug", "mix": MIX, "approved_by": "A. Engineer"},
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    recipe_id = r.json()["id"]
    r = await client.post(
        "/api/v1/stopes",
        json={"name": name, "plan_area_m2": 1.0, "height_m": 10.0, "barricade_rating_kpa": 150},
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    stope: dict[str, Any] = r.json()
    r = await client.post(
        f"/api/v1/stopes/{stope['id']}/plans",
        json={
            "continuous": False,
            "stages": [
                {
                    "name": "plug",
                    "recipe_id": recipe_id,
                    "top_height_m": 0.5,
                    "max_rise_rate_m_h": 10.0,
                    "cure_hold_h": 5,
                },
                {
                    "name": "body",
                    "recipe_id": recipe_id,
                    "top_height_m": 10.0,
                    "max_rise_rate_m_h": 10.0,
                },
            ],
        },
        headers=auth("engineer"),
    )
    assert r.status_code == 200, r.text
    return stope


async def test_twenty_callers_at_once_get_one_stage_pour(
    service: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = service
    stope = await planned_stope(client)

    async def ask() -> httpx.Response:
        return await client.post(
            f"/api/v1/stopes/{stope['id']}/pours",
            json={"paste_flow_m3_h": 100.0},
            headers=auth("scada"),
        )

    answers = await asyncio.gather(*(ask() for _ in range(20)))
    created = [r for r in answers if r.status_code == 201]
    assert len(created) == 1, [r.status_code for r in answers]
    refused = [r.json()["code"] for r in answers if r.status_code != 201]
    assert set(refused) == {"stope_pour_open"}, refused
    pours = (await client.get("/api/v1/pours", headers=auth("hmi"))).json()["items"]
    assert [p["id"] for p in pours if p["stope_id"] == stope["name"]] == [created[0].json()["id"]]
    assert created[0].json()["target_volume_m3"] == pytest.approx(0.5)


async def test_a_pour_does_not_start_while_its_stage_cures(
    service: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = service
    runtime: Runtime = app.state.runtime
    stope = await planned_stope(client)
    r = await client.post(
        f"/api/v1/stopes/{stope['id']}/pours",
        json={"paste_flow_m3_h": 100.0},
        headers=auth("scada"),
    )
    assert r.status_code == 201, r.text
    pour = await runtime.store.get_pour(r.json()["id"])
    # The plug reaches its top by paste placed elsewhere (a pour of the stage before the
    # fix, a plant that ran on): the stage cures, and this pour may not start.
    await runtime.stopes.started(pour)
    context = await runtime.stopes.context_of(pour)
    assert context is not None
    await runtime.stopes.placed(pour, context, 0.6)
    view = await runtime.stopes.view(stope["id"])
    assert view.progress is not None and view.progress.current_stage.state.value == "curing"
    r = await client.post(f"/api/v1/pours/{pour.id}/start", headers=auth("scada"))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "stage_not_ready"
    assert "curing" in r.json()["detail"] and "release" in r.json()["detail"]
    assert (await runtime.store.get_pour(pour.id)).state == "planned"
    # A new pour for the curing stage is refused too, saying what to do.
    r = await client.post(
        f"/api/v1/stopes/{stope['id']}/pours",
        json={"paste_flow_m3_h": 100.0},
        headers=auth("scada"),
    )
    assert r.status_code == 409 and r.json()["code"] in ("stage_not_ready", "stope_pour_open")


async def test_a_plain_pour_naming_a_planned_stope_is_refused(
    service: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = service
    stope = await planned_stope(client)
    r = await client.post(
        "/api/v1/pours",
        json={
            "stope_id": stope["name"],
            "recipe": MIX,
            "target_volume_m3": 3,
            "paste_flow_m3_h": 400,
        },
        headers=auth("scada"),
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "stope_planned"
    assert "fill plan" in body["detail"] and stope["id"] in body["detail"]
    # A stope with no plan takes plain pours as before.
    r = await client.post(
        "/api/v1/pours",
        json={"stope_id": f"free-{uuid.uuid4().hex[:6]}", "recipe": MIX,
              "target_volume_m3": 3, "paste_flow_m3_h": 100},
        headers=auth("scada"),
    )  # fmt: skip
    assert r.status_code == 201, r.text
