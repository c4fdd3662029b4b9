"""Request limits with the application running: body size and write rate."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.app import create_app
from service.settings import Settings
from tests.conftest import api_keys_setting, auth


async def test_large_bodies_and_write_floods_are_refused(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
        api_keys=api_keys_setting(),
        api={"max_body_bytes": 2048, "write_rate_per_s": 1.0, "write_burst": 3},
    )
    app = create_app(settings)
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
                r = await client.post("/api/v1/strength/required", json={}, headers=auth("hmi"))
                codes.append(r.status_code)
            assert codes[:3] == [422, 422, 422]  # within the burst: validated as usual
            assert codes[3:] == [429, 429]
            assert r.json()["code"] == "too_many_requests"
            assert int(r.headers["retry-after"]) >= 1
            # Another key has its own budget; reads are never rate-limited.
            r = await client.post("/api/v1/strength/required", json={}, headers=auth("scada"))
            assert r.status_code == 422
            for _ in range(10):
                assert (await client.get("/healthz")).status_code == 200
