"""Helpers of the end-to-end tests: the service in-process on the simulator, in
accelerated plant time, and polling with deadlines (never a bare long sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from service.app import create_app
from service.runtime import Runtime
from service.settings import Settings
from tests.conftest import api_keys_setting, auth

SPEED = 20.0

RECIPE: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 35.7},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 5.0,
    "solids_pct": 72.0,
}


def settings(database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "api_keys": api_keys_setting(),
        "sim": {"speed": SPEED, "seed": 7},
        "checkpoint_interval_s": 1.0,
    }
    values.update(extra)
    return Settings(**values)


@asynccontextmanager
async def running_service(
    s: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    app: FastAPI = create_app(s)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app.state.runtime


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, within_s: float, what: str, interval: float = 0.2
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + within_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within_s:.0f} s waiting for {what}; last: {last!r}")


async def get_pour(client: httpx.AsyncClient, pour_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def status(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/plant/status", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def approved_recipe(client: httpx.AsyncClient, mix: dict[str, Any] | None = None) -> str:
    """A recipe version an engineer stored and approved (only those run); its id."""
    r = await client.post(
        "/api/v1/recipes",
        json={"name": "S-101 body", "mix": mix or RECIPE, "approved_by": "E2E Engineer"},
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    recipe_id: str = r.json()["id"]
    return recipe_id


async def create_pour(
    client: httpx.AsyncClient, *, target_m3: float, flow_m3_h: float = 100.0
) -> str:
    body = {
        "stope_id": "S-101",
        "recipe_id": await approved_recipe(client),
        "target_volume_m3": target_m3,
        "paste_flow_m3_h": flow_m3_h,
    }
    r = await client.post("/api/v1/pours", json=body, headers=auth("scada"))
    assert r.status_code == 201, r.text
    pour_id: str = r.json()["id"]
    return pour_id


async def action(client: httpx.AsyncClient, pour_id: str, verb: str) -> httpx.Response:
    return await client.post(f"/api/v1/pours/{pour_id}/{verb}", headers=auth("scada"))
