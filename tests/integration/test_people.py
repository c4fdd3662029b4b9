"""Credentials that name a person and a role, on the HTTP API (several people per role,
in ``BACKFILL_API_KEYS`` and in a key file): a person's key revoked (the key file read
again, no restart) while another person's key of the same role keeps working, and the
old ``role:key`` entries working as before, as the role and the key's id."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.core.people import Role, key_file_entry
from service.runtime import Runtime
from service.settings import Settings
from tests.e2e.helpers import eventually

ANNA = "anna-engineer-key-0123456789abcdef"  # engineer a.ivanova, plain in the setting
BORIS = "boris-engineer-key-0123456789abcdef"  # engineer b.petrov, digest in the setting
CHEN = "chen-scada-key-0123456789abcdef"  # scada c.operator, key file
DANA = "dana-lab-key-0123456789abcdef"  # lab d.lab, key file
FRED = "fred-scada-key-0123456789abcdef"  # scada f.night, key file (revoked below)
EVE = "eve-hmi-key-0123456789abcdef"  # hmi e.viewer
OLD = "old-scada-key-0123456789abcdef"  # a key of the role alone, as before
OLD_PERSON = f"scada:{hashlib.sha256(OLD.encode()).hexdigest()[:8]}"
SPEED = 50.0
AREA_M2 = 1.5


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def key_file_text(*, with_fred: bool = True) -> str:
    tables = [
        key_file_entry("c.operator", Role.SCADA, CHEN),
        key_file_entry("d.lab", Role.LAB, DANA),
    ]
    if with_fred:
        tables.append(key_file_entry("f.night", Role.SCADA, FRED))
    return "# the plant's people\n" + "\n".join(tables)


def people_settings(tmp_path: Path, key_file: Path) -> Settings:
    boris = hashlib.sha256(BORIS.encode()).hexdigest()
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'people.db'}",
        api_keys=(
            f"engineer:a.ivanova:{ANNA},engineer:b.petrov:sha256:{boris},"
            f"hmi:e.viewer:{EVE},scada:{OLD}"
        ),
        key_file=key_file,
        sim={"speed": SPEED, "seed": 11},
        checkpoint_interval_s=1.0,
        api={"write_rate_per_s": 1000.0, "write_burst": 1000},
    )


@asynccontextmanager
async def serving(s: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    app = create_app(s)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app.state.runtime


async def ok(r: Any, status: int = 200) -> dict[str, Any]:
    response: httpx.Response = await r
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_revoked_key_is_refused_while_the_others_of_its_role_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    people = tmp_path / "people.toml"
    people.write_text(key_file_text())
    s = people_settings(tmp_path, people)
    async with serving(s) as (api, runtime):
        for key in (FRED, CHEN, OLD):
            assert (await api.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
        # f.night leaves: their table goes from the file, the service reads it again.
        people.write_text(key_file_text(with_fred=False))

        async def revoked() -> bool:
            r = await api.get("/api/v1/whoami", headers=bearer(FRED))
            return r.status_code == 401

        await eventually(revoked, within_s=10, what="f.night's key refused")
        r = await api.post("/api/v1/pours/x/pause", headers=bearer(FRED))
        assert r.status_code == 401
        who = await ok(api.get("/api/v1/whoami", headers=bearer(CHEN)))
        assert (who["role"], who["person"]) == ("scada", "c.operator")  # same role: works
        assert (await api.get("/api/v1/whoami", headers=bearer(OLD))).status_code == 200
        assert (await api.get("/api/v1/whoami", headers=bearer(ANNA))).status_code == 200

        # A bad edit is logged and changes nothing: the people stay as they were.
        people.write_text(key_file_text() + "[[person]]\nname = 'x'\n")

        async def logged() -> bool:
            return "not taken" in caplog.text

        await eventually(logged, within_s=10, what="the bad file logged")
        assert (await api.get("/api/v1/whoami", headers=bearer(FRED))).status_code == 401
        assert (await api.get("/api/v1/whoami", headers=bearer(CHEN))).status_code == 200
        assert runtime.keys.roles_of("c.operator") == {Role.SCADA}

    # In BACKFILL_API_KEYS: an entry removed is a key revoked at the next start.
    boris = hashlib.sha256(BORIS.encode()).hexdigest()
    only_boris = Settings(api_keys=f"engineer:b.petrov:sha256:{boris}").api_keys
    again = s.model_copy(update={"api_keys": only_boris, "key_file": None})
    async with serving(again) as (api, _runtime):
        assert (await api.get("/api/v1/whoami", headers=bearer(ANNA))).status_code == 401
        who = await ok(api.get("/api/v1/whoami", headers=bearer(BORIS)))
        assert (who["role"], who["person"]) == ("engineer", "b.petrov")


async def test_a_bad_key_file_stops_the_start_naming_the_problem(tmp_path: Path) -> None:
    people = tmp_path / "people.toml"
    people.write_text(key_file_text().replace('role = "lab"', 'role = "chemist"'))
    app = create_app(people_settings(tmp_path, people))
    with pytest.raises(Exception, match=r"person\[1\]\.role"):
        async with app.router.lifespan_context(app):
            pass
