"""The application with its lifespan running, one instance per test module.

Starting the application starts the built-in plant simulator and the PLC link (a few
seconds), so the API tests share one application per module: a module using the
``client`` / ``app`` fixtures marks its tests
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from service.app import create_app
from service.operations.calibrations import seed_example_calibration
from service.settings import Settings
from tests.conftest import CAKE_PLANT, api_keys_setting


def app_settings(database_url: str) -> Settings:
    # The API tests send many writes with one key in a burst; the write rate limit
    # itself is tested in test_limits.py.
    return Settings(
        database_url=database_url,
        api_keys=api_keys_setting(),
        api={"write_rate_per_s": 1000.0, "write_burst": 1000},
        plant=CAKE_PLANT,
    )


@asynccontextmanager
async def running_app(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The application with its lifespan running and an HTTP client talking to it."""
    app = create_app(app_settings(database_url))
    async with app.router.lifespan_context(app):
        # What start-up does too; idempotent, so harmless if the lifespan did it already.
        await seed_example_calibration(app.state.runtime.store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('api') / 'backfill.db'}"
    async with running_app(url) as pair:
        yield pair


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def app(running: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return running[0]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(running: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return running[1]
