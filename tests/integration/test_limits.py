"""Request limits with the application running: body size, write and computation
rates per caller (whatever the spelling of its header), strict bodies, headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.conftest import CAKE_PLANT, KEYS, api_keys_setting, auth


def limited_settings(tmp_path: Path, **api: float) -> Settings:
    return Settings(
        plant=CAKE_PLANT,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
        api_keys=api_keys_setting(),
        api={
            "max_body_bytes": 2048,
            "write_rate_per_s": 1.0,
            "write_burst": 3,
            "compute_rate_per_s": 1.0,
            "compute_burst": 6,
            **api,
        },
    )


async def test_large_bodies_and_write_floods_are_refused(tmp_path: Path) -> None:
    app = create_app(limited_settings(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            big = b'{"x": "' + b"a" * 4096 + b'"}'
            r = await client.post(
                "/api/v1/recipes/proportion",
                content=big,
                headers={**auth("hmi"), "content-type": "application/json"},
            )
            assert r.status_code == 413
            assert r.json()["code"] == "payload_too_large"

            codes = []
            for _ in range(5):
                r = await client.post("/api/v1/pours", json={}, headers=auth("scada"))
                codes.append(r.status_code)
            assert codes[:3] == [422, 422, 422]  # within the burst: validated as usual
            assert codes[3:] == [429, 429]
            assert r.json()["code"] == "too_many_requests"
            assert int(r.headers["retry-after"]) >= 1
            # Another key has its own budget; reads are never rate-limited.
            r = await client.post("/api/v1/pours", json={}, headers=auth("admin"))
            assert r.status_code == 422
            for _ in range(10):
                assert (await client.get("/healthz")).status_code == 200


async def test_the_limiter_keys_on_the_caller_not_the_header_spelling(tmp_path: Path) -> None:
    app = create_app(limited_settings(tmp_path))
    key = KEYS["scada"]
    spellings = [f"Bearer {key}", f"bearer {key}", f"BEARER {key}", f"Bearer   {key}  "]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            codes = []
            for spelling in spellings + spellings:
                r = await client.post("/api/v1/pours", json={}, headers={"Authorization": spelling})
                codes.append(r.status_code)
            # One caller: three in the burst, then refused, however the header is written.
            assert codes == [422, 422, 422] + [429] * 5
            # Made-up keys count against the address, not as new callers each.
            made_up = [
                (
                    await client.post(
                        "/api/v1/pours", json={}, headers={"Authorization": f"Bearer x{i:030d}"}
                    )
                ).status_code
                for i in range(5)
            ]
            assert made_up == [401, 401, 401, 429, 429]


async def test_pure_computations_have_their_own_higher_limit(tmp_path: Path) -> None:
    app = create_app(limited_settings(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(3):  # the write budget is spent ...
                await client.post("/api/v1/pours", json={}, headers=auth("hmi"))
            codes = [
                (
                    await client.post("/api/v1/strength/required", json={}, headers=auth("hmi"))
                ).status_code
                for _ in range(8)
            ]
            # ... and computations still have theirs (6 at once here).
            assert codes == [422] * 6 + [429] * 2
            r = await client.post("/api/v1/strength/required", json={}, headers=auth("hmi"))
            assert "computations per second" in r.json()["detail"]


async def test_the_default_computation_limit_serves_a_calculator(tmp_path: Path) -> None:
    """200 proportioning requests in a burst (the old write limit refused all but 40)."""
    settings = Settings(
        plant=CAKE_PLANT,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        api_keys=api_keys_setting(),
    )
    app = create_app(settings)
    mix = {
        "tailings": {"specific_gravity": 2.8, "moisture_pct": 30.0},
        "binder": [{"name": "cement", "specific_gravity": 3.15, "fraction_pct": 100}],
        "binder_pct": 5.0,
        "solids_pct": 75.0,
    }
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            codes = {
                (
                    await client.post("/api/v1/recipes/proportion", json=mix, headers=auth("hmi"))
                ).status_code
                for _ in range(200)
            }
            assert codes == {200}


async def _trickle(chunks: list[bytes], pause_s: float) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(pause_s)


async def test_bodies_chunked_unreadable_or_stalled(tmp_path: Path) -> None:
    app = create_app(limited_settings(tmp_path, idle_timeout_s=0.5, compute_burst=100))
    url = "/api/v1/recipes/proportion"
    json_type = {**auth("hmi"), "content-type": "application/json"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            # A chunked body (no Content-Length) above the limit: 413, not a parse error.
            r = await client.post(
                url, content=_trickle([b"x" * 1024] * 2048, 0.0), headers=json_type
            )
            assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
            # Not JSON, not UTF-8: the documented 422 naming the body.
            for raw in (b'{"binder_pct": ', b"\xff\xfe{}", b"garbage"):
                r = await client.post(url, content=raw, headers=json_type)
                assert r.status_code == 422, (raw, r.text)
                assert (r.json()["code"], r.json()["field"]) == ("validation_error", "body")
            # A body that stops arriving: 408 after the idle timeout, not a task held.
            r = await client.post(
                url, content=_trickle([b'{"binder', b"_pct"], 5.0), headers=json_type
            )
            assert (r.status_code, r.json()["code"]) == (408, "request_timeout")


@pytest.mark.parametrize(
    ("value", "why"),
    [(True, "a flag"), ("5", "a numeric string"), ("1e1", "a numeric string"), (None, "null")],
)
async def test_numbers_are_numbers(tmp_path: Path, value: object, why: str) -> None:
    app = create_app(limited_settings(tmp_path, compute_burst=100, write_burst=100))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post(
                "/api/v1/pours",
                json={
                    "stope_id": "S-1",
                    "recipe_id": "x",
                    "target_volume_m3": value,
                    "paste_flow_m3_h": 100,
                },
                headers=auth("scada"),
            )
            assert r.status_code == 422, why
            assert r.json()["field"] == "target_volume_m3"


async def test_security_headers_and_only_page_assets(tmp_path: Path) -> None:
    app = create_app(limited_settings(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in ("/", "/web/index.html", "/web/app.js", "/api/v1/plant/status", "/healthz"):
                r = await client.get(path, headers=auth("hmi"))
                assert r.status_code == 200, path
                assert r.headers["x-content-type-options"] == "nosniff", path
                assert r.headers["x-frame-options"] == "DENY", path
                assert r.headers["referrer-policy"] == "no-referrer", path
                assert "default-src 'self'" in r.headers["content-security-policy"], path
            for path in ("/web/__init__.py", "/web/.hidden.js", "/web/nothing.js"):
                r = await client.get(path)
                assert r.status_code == 404, path
            r = await client.get("/readyz")
            assert r.status_code == 200 and r.json() == {"status": "ready", "store": "ok"}
