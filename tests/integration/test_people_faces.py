"""Every act is a named person's on the SCADA faces too. OPC UA: a key that names its
person logs in only under that person's user name and acts as them; a key of a role
alone logs in under any user name and acts as its role and key id. Sparkplug: a DCMD
carries no user, so the host names the person in the value (``<pour id> by <person>``),
who must hold a scada (or admin) key of the service; a value naming nobody is the host's
own act, or refused where the site requires a person."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import Client
from asyncua.ua import uaerrors

from service.app import create_app
from service.runtime import Runtime
from service.settings import Settings
from tests.conftest import KEYS, api_keys_setting, auth
from tests.e2e.helpers import create_pour, eventually
from tests.e2e.procs import free_port
from tests.integration.test_opcua_face import _node
from tests.integration.test_sparkplug import _sparkplug, host

CHEN = "chen-scada-key-0123456789abcdef"  # scada c.operator
EVE = "eve-hmi-key-0123456789abcdef"  # hmi e.viewer
ROLE_SCADA = f"scada:{hashlib.sha256(KEYS['scada'].encode()).hexdigest()[:8]}"


def people_keys() -> str:
    """The test suite's keys of the roles alone, and two people's."""
    return f"{api_keys_setting()},scada:c.operator:{CHEN},hmi:e.viewer:{EVE}"


@asynccontextmanager
async def serving(tmp_path: Path, **extra: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'faces.db'}",
        api_keys=people_keys(),
        sim={"speed": 20.0, "seed": 3},
        **extra,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app.state.runtime


async def commands(api: httpx.AsyncClient, runtime: Runtime, pour_id: str) -> list[Any]:
    await runtime.supervisor.flush_records()
    r = await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
    return [(c["action"], c["role"], c["person"]) for c in r.json()["commands"]]


@asynccontextmanager
async def session(endpoint: str, user: str, key: str) -> AsyncIterator[Client]:
    client = Client(endpoint, timeout=10)
    client.set_user(user)
    client.set_password(key)
    async with client:
        yield client


async def test_an_opcua_session_acts_as_its_keys_person(tmp_path: Path) -> None:
    opcua = {"enabled": True, "port": free_port(), "security_mode": "None", "allow_insecure": True}
    async with serving(tmp_path, opcua_server=opcua) as (api, runtime):
        face = runtime.opcua_face
        assert face is not None
        endpoint = face.endpoint
        # c.operator's key under another user name: refused at login.
        with pytest.raises(uaerrors.BadUserAccessDenied):
            async with session(endpoint, "night-shift", CHEN):
                pass
        pour_id = await create_pour(api, target_m3=200)
        async with (
            session(endpoint, "c.operator", CHEN) as chen,
            session(endpoint, "night-shift", KEYS["scada"]) as old,
        ):
            pour = await _node(chen, "Pour")
            deadline = time.monotonic() + 30
            while True:
                try:
                    state = await pour.call_method(await _node(chen, "Pour.Start"), pour_id)
                    break
                except uaerrors.BadInvalidState:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)  # the built-in plant is not ready yet
            assert state == "running"
            paused = await (await _node(old, "Pour")).call_method(
                await _node(old, "Pour.Pause"), pour_id
            )
            assert paused == "paused"
            assert await pour.call_method(await _node(chen, "Pour.Stop"), pour_id) == "stopped"
            assert await commands(api, runtime, pour_id) == [
                ("create", "scada", ROLE_SCADA),
                ("start", "scada", "c.operator"),
                ("pause", "scada", ROLE_SCADA),  # a key of the role alone: any user name
                ("stop", "scada", "c.operator"),
            ]

            # An alarm acknowledged through the method: the person on the alarm and in
            # the log.
            sim = runtime.simulator
            assert sim is not None
            await sim.stop()

            async def lost() -> bool:
                alarms = (await api.get("/api/v1/alarms", headers=auth("hmi"))).json()
                return any(a["code"] == "plant_link_lost" for a in alarms)

            await eventually(lost, within_s=30, what="plant_link_lost")
            await (await _node(chen, "Alarms")).call_method(
                await _node(chen, "Alarms.Acknowledge"), "plant_link_lost"
            )
            alarms = (await api.get("/api/v1/alarms", headers=auth("hmi"))).json()
            (lost_alarm,) = [a for a in alarms if a["code"] == "plant_link_lost"]
            assert lost_alarm["acknowledged_by"] == "c.operator"
            await runtime.supervisor.flush_records()
            r = await api.get(
                "/api/v1/audit",
                params={"kind": "alarm_acknowledgement", "limit": 100},
                headers=auth("hmi"),
            )
            assert [(e["reason"], e["person"]) for e in r.json()["items"]] == [
                ("plant_link_lost", "c.operator")
            ]
            await sim.start()


async def test_a_sparkplug_host_names_the_person_who_commands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="service.scada.sparkplug")
    async with host() as h:
        spb = _sparkplug(h.group, tmp_path, commands_enabled=True)
        async with serving(tmp_path, sparkplug=spb) as (api, runtime):
            await h.wait("DBIRTH", lambda: h.of("DBIRTH"))
            pour_id = await create_pour(api, target_m3=200)

            async def state() -> str:
                r = await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
                return str(r.json()["state"])

            async def command(name: str, value: str, wanted: str) -> None:
                deadline = time.monotonic() + 30
                while await state() != wanted:
                    assert time.monotonic() < deadline, f"{name} {value!r} did not give {wanted}"
                    await h.command("DCMD", name, value, device="Plant")
                    await asyncio.sleep(1.0)

            await command("Pour/Start", f"{pour_id} by c.operator", "running")
            # A person without a scada key, or no person of the service at all: refused.
            for who in ("e.viewer", "z.stranger"):
                await h.command("DCMD", "Pour/Pause", f"{pour_id} by {who}", device="Plant")
                await h.wait(
                    f"{who} refused",
                    lambda who=who: f"{who!r} holds no scada or admin key" in caplog.text,
                    within_s=10,
                )
            assert await state() == "running"
            # Naming nobody: the host's own act.
            await command("Pour/Pause", pour_id, "paused")
            await command("Pour/Stop", f"{pour_id} by c.operator", "stopped")
            assert await commands(api, runtime, pour_id) == [
                ("create", "scada", ROLE_SCADA),
                ("start", "scada", "c.operator"),
                ("pause", "scada", "sparkplug:host"),
                ("stop", "scada", "c.operator"),
            ]


async def test_a_site_may_require_every_command_to_name_its_person(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="service.scada.sparkplug")
    async with host() as h:
        spb = _sparkplug(h.group, tmp_path, commands_enabled=True, require_person=True)
        async with serving(tmp_path, sparkplug=spb) as (api, _runtime):
            await h.wait("DBIRTH", lambda: h.of("DBIRTH"))
            pour_id = await create_pour(api, target_m3=200)
            await h.command("DCMD", "Pour/Start", pour_id, device="Plant")
            await h.wait("the refusal", lambda: "it names no person" in caplog.text, within_s=10)
            r = await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
            assert r.json()["state"] == "planned"
