"""A client generated from the running service's OpenAPI document (openapi-python-client,
as an integrator would make one) runs a pour through the service: the bearer key from the
declared scheme, the request models from the body schemas, the answers parsed into the
response models, refusals parsed into the one error shape, method names the short
operationIds."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from service.api.examples import REQUEST_EXAMPLES
from service.app import create_app
from service.settings import Settings
from tests.conftest import CAKE_PLANT, KEYS, api_keys_setting, need
from tests.e2e.helpers import eventually
from tests.e2e.procs import free_port

PACKAGE = "backfill_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@asynccontextmanager
async def _served(tmp_path: Path) -> AsyncIterator[str]:
    """The service (built-in simulator, SQLite) behind uvicorn on a loopback port."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}",
        api_keys=api_keys_setting(),
        plant=CAKE_PLANT,  # the examples' recipes are made from a 76 % cake
    )
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _started(server), within_s=30, what="the server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def _started(server: uvicorn.Server) -> bool:
    return bool(server.started)


async def _generate(schema: dict[str, Any], into: Path) -> None:
    """Run the generator on the schema; fail with what it said on any warning."""
    (into / "openapi.json").write_text(json.dumps(schema))
    (into / "config.yaml").write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    proc = await asyncio.create_subprocess_exec(
        str(GENERATOR),
        "generate",
        "--path",
        "openapi.json",
        "--config",
        "config.yaml",
        "--meta",
        "none",
        "--output-path",
        PACKAGE,
        cwd=into,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    said = out.decode()
    assert proc.returncode == 0, said
    # A schema the generator cannot read it drops with a warning: every operation and
    # model must come through.
    assert "Warning" not in said and "Unable" not in said, said


@contextmanager
def _imported(root: Path) -> Iterator[ModuleType]:
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _op(name: str) -> Any:
    """The generated module of an operation, e.g. ``pours.start_pour``."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


async def test_a_generated_client_runs_a_pour(tmp_path: Path) -> None:
    need(GENERATOR.exists(), f"openapi-python-client is not installed ({GENERATOR})")
    async with _served(tmp_path) as url:
        async with httpx.AsyncClient(base_url=url) as plain_client:
            schema = (await plain_client.get("/openapi.json")).json()
            plain = (
                await plain_client.post(
                    "/api/v1/recipes/proportion",
                    json=REQUEST_EXAMPLES["proportion"],
                    headers={"Authorization": f"Bearer {KEYS['engineer']}"},
                )
            ).json()
        await _generate(schema, tmp_path)
        with _imported(tmp_path) as pkg:
            await _run_a_pour(pkg, url, plain)


async def _run_a_pour(pkg: ModuleType, url: str, plain: dict[str, Any]) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    async with contextlib.AsyncExitStack() as clients:

        async def key(role: str | None) -> Any:
            client = (
                pkg.Client(base_url=url)
                if role is None
                else pkg.AuthenticatedClient(base_url=url, token=KEYS[role])
            )
            return await clients.enter_async_context(client)

        engineer, scada, hmi = await key("engineer"), await key("scada"), await key("hmi")
        anonymous = await key(None)

        # A computation: the request model from the body's example, the answer
        # parsed, the same numbers as a plain HTTP call.
        body = models.ProportionRequest.from_dict(REQUEST_EXAMPLES["proportion"])
        r = await _op("recipes.proportion").asyncio_detailed(client=engineer, body=body)
        assert r.status_code == 200, r.content
        assert r.parsed.per_m3.wet_density_kg_m3 == plain["per_m3"]["wet_density_kg_m3"]
        assert r.parsed.per_m3.binder_components_kg["slag"] == pytest.approx(
            plain["per_m3"]["binder_components_kg"]["slag"]
        )

        # A recipe stored and approved by the engineer.
        body = models.RecipeCreate.from_dict(REQUEST_EXAMPLES["create_recipe"])
        recipe = await _op("recipes.create_recipe").asyncio(client=engineer, body=body)
        assert isinstance(recipe, models.RecipePublic), recipe
        body = models.RecipeApprove.from_dict(REQUEST_EXAMPLES["approve_recipe"])
        approved = await _op("recipes.approve_recipe").asyncio(
            recipe.id, client=engineer, body=body
        )
        assert approved.approved is True

        # The pour: planned by SCADA, refused to an HMI and to no key, run, paused,
        # stopped, each answer the pour's record.
        pours = "pours."
        made = dict(REQUEST_EXAMPLES["create_pour"], recipe_id=recipe.id, sample_ids=[])
        del made["recipe"]
        pour = await _op(pours + "create_pour").asyncio(
            client=scada, body=models.PourCreate.from_dict(made)
        )
        assert isinstance(pour, models.PourPublic), pour
        assert str(pour.state) == "planned"
        refused = await _op(pours + "start_pour").asyncio(pour.id, client=hmi)
        assert isinstance(refused, models.Error) and refused.code == "forbidden", refused
        refused = await _op(pours + "start_pour").asyncio(pour.id, client=anonymous)
        assert isinstance(refused, models.Error) and refused.code == "unauthorized"

        running = await _start(pour.id, scada)
        assert str(running.state) == "running"
        paused = await _op(pours + "pause_pour").asyncio(pour.id, client=scada)
        assert str(paused.state) == "paused", paused
        stopped = await _op(pours + "stop_pour").asyncio(pour.id, client=scada)
        assert str(stopped.state) == "stopped", stopped
        read = await _op(pours + "get_pour").asyncio(pour.id, client=hmi)
        assert read.id == pour.id and str(read.state) == "stopped"

        status = await _op("plant.plant_status").asyncio(client=hmi)
        assert status.simulator is True


async def _start(pour_id: str, client: Any) -> Any:
    """Start the pour once the built-in plant accepts setpoints."""
    models = importlib.import_module(f"{PACKAGE}.models")
    deadline = time.monotonic() + 30.0
    while True:
        out = await _op("pours.start_pour").asyncio(pour_id, client=client)
        if isinstance(out, models.PourPublic) or time.monotonic() > deadline:
            break
        assert out.code in ("plant_not_ready", "plant_link_down"), out
        await asyncio.sleep(0.2)
    assert isinstance(out, models.PourPublic), out
    return out
