"""Every act is a named person's, on the HTTP API: credentials that name a person and a
role (several people per role, in ``BACKFILL_API_KEYS`` and in a key file), every
approval, pour command, alarm acknowledgement, lab entry, stage release and stope close
recorded under the person in its record and in the audit log, an approval under another
name refused, a person's key revoked (the key file read again, no restart) while another
person's key of the same role keeps working, and the old ``role:key`` entries working
as before, recorded as the role and the key's id."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.core.people import Role, key_file_entry
from service.operations.calibrations import seed_example_calibration
from service.runtime import Runtime
from service.settings import Settings
from tests.e2e.helpers import RECIPE, eventually

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


async def audit(client: httpx.AsyncClient, runtime: Runtime, **params: Any) -> list[dict[str, Any]]:
    await runtime.supervisor.flush_records()  # the supervisor's entries are queued
    r = await client.get("/api/v1/audit", params={"limit": 1000, **params}, headers=bearer(EVE))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def start(client: httpx.AsyncClient, pour_id: str, key: str) -> dict[str, Any]:
    """Start once the built-in plant accepts setpoints."""
    deadline = time.monotonic() + 30.0
    while True:
        r = await client.post(f"/api/v1/pours/{pour_id}/start", headers=bearer(key))
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body
        await asyncio.sleep(0.3)


async def test_every_act_on_the_api_names_its_person(tmp_path: Path) -> None:
    people = tmp_path / "people.toml"
    people.write_text(key_file_text())
    async with serving(people_settings(tmp_path, people)) as (api, runtime):
        await seed_example_calibration(runtime.store)
        who = await ok(api.get("/api/v1/whoami", headers=bearer(CHEN)))
        assert (who["role"], who["person"], who["named"]) == ("scada", "c.operator", True)
        who = await ok(api.get("/api/v1/whoami", headers=bearer(OLD)))
        assert (who["person"], who["named"]) == (OLD_PERSON, False)

        # --- approvals: the key's person, never another name -----------------------
        body = {"name": "people mix", "mix": RECIPE}
        refused = await api.post(
            "/api/v1/recipes", json={**body, "approved_by": "b.petrov"}, headers=bearer(ANNA)
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "approved_by_mismatch")
        assert refused.json()["field"] == "approved_by"
        assert await ok(api.get("/api/v1/recipes", headers=bearer(EVE))) == []  # nothing stored
        draft = await ok(api.post("/api/v1/recipes", json=body, headers=bearer(ANNA)), 201)
        assert draft["approved_by"] is None
        approve = f"/api/v1/recipes/{draft['id']}/approve"
        r = await api.post(approve, json={"approved_by": "a.ivanova"}, headers=bearer(BORIS))
        assert (r.status_code, r.json()["code"]) == (403, "approved_by_mismatch")
        recipe = await ok(api.post(approve, json={}, headers=bearer(BORIS)))
        assert recipe["approved_by"] == "b.petrov"
        stored = await ok(
            api.post(
                "/api/v1/recipes",
                json={**body, "name": "people mix 2", "approved_by": "a.ivanova"},
                headers=bearer(ANNA),
            ),
            201,
        )
        assert stored["approved_by"] == "a.ivanova"

        example = next(
            c
            for c in await runtime.store.list_calibrations()
            if c.example and c.status == "approved"
        )
        uploaded = await ok(
            api.post(
                "/api/v1/calibrations",
                json={"name": "people cylinders", "rows": example.rows},
                headers=bearer(ANNA),
            ),
            201,
        )
        assert (uploaded["status"], uploaded["approved_by"]) == ("approved", "a.ivanova")
        proposed = await runtime.store.add_calibration(
            name="people cylinders",
            model=example.model,
            rows=example.rows,
            created_by="engineer",
            proposed_from=uploaded["id"],
            proposal={"n_new": 0},
        )
        approved = await ok(
            api.post(f"/api/v1/calibrations/{proposed.id}/approve", json={}, headers=bearer(BORIS))
        )
        assert approved["approved_by"] == "b.petrov"
        rheology = await ok(
            api.post(
                "/api/v1/rheology/calibrations",
                json={
                    "name": "people slumps",
                    "rows": [
                        {"solids_pct": cw, "binder_pct": bw, "yield_stress_pa": tau}
                        for cw, bw, tau in (
                            (70, 4, 150),
                            (72, 5, 240),
                            (74, 6, 390),
                            (76, 4, 640),
                            (78, 5, 1050),
                            (73, 6, 330),
                        )
                    ],
                },
                headers=bearer(ANNA),
            ),
            201,
        )
        assert rheology["approved_by"] == "a.ivanova"

        # --- pour commands: the person of each key ----------------------------------
        pour = await ok(
            api.post(
                "/api/v1/pours",
                json={
                    "stope_id": "S-PEOPLE",
                    "recipe_id": recipe["id"],
                    "target_volume_m3": 500.0,
                    "paste_flow_m3_h": 100.0,
                    "sample_ids": ["PEOPLE-1"],
                },
                headers=bearer(CHEN),
            ),
            201,
        )
        assert pour["created_by"] == "scada"
        pour_id = pour["id"]
        await start(api, pour_id, CHEN)
        await ok(api.post(f"/api/v1/pours/{pour_id}/pause", headers=bearer(FRED)))
        await ok(api.post(f"/api/v1/pours/{pour_id}/resume", headers=bearer(CHEN)))
        await ok(
            api.post(
                f"/api/v1/pours/{pour_id}/samples",
                json={"sample_ids": ["PEOPLE-2"]},
                headers=bearer(OLD),
            )
        )
        await ok(api.post(f"/api/v1/pours/{pour_id}/stop", headers=bearer(CHEN)))
        await runtime.supervisor.flush_records()
        read = await ok(api.get(f"/api/v1/pours/{pour_id}", headers=bearer(EVE)))
        assert [(c["action"], c["role"], c["person"]) for c in read["commands"]] == [
            ("create", "scada", "c.operator"),
            ("start", "scada", "c.operator"),
            ("pause", "scada", "f.night"),
            ("resume", "scada", "c.operator"),
            ("samples", "scada", OLD_PERSON),
            ("stop", "scada", "c.operator"),
        ]
        entries = await audit(api, runtime, pour_id=pour_id)
        # The setpoint writes of a command name its person too; the service's own don't.
        writes = [e for e in entries if e["kind"] == "setpoints" and e["reason"] != "correction"]
        assert writes and {e["person"] for e in writes} <= {"c.operator", "f.night"}
        assert {e["person"] for e in entries if e["reason"] == "correction"} <= {None}

        # --- the lab's entries --------------------------------------------------------
        runtime.lab.clock = lambda: datetime.now(UTC) + timedelta(days=30)
        entered = await ok(
            api.post(
                "/api/v1/samples/PEOPLE-1/results",
                json={"curing_days": 7, "ucs_kpa": 210.0},
                headers=bearer(DANA),
            ),
            201,
        )
        assert entered["entered_by"] == "d.lab"
        cast = (await ok(api.get("/api/v1/samples/PEOPLE-2", headers=bearer(EVE))))["cast_at"]
        sheet = await ok(
            api.post(
                "/api/v1/lab/sheets",
                json={"csv": f"sample_id,cast_at,curing_days,ucs_kpa\nPEOPLE-2,{cast},7,205\n"},
                headers=bearer(DANA),
            ),
            201,
        )
        assert [e["entered_by"] for e in sheet["results"]] == ["d.lab"]

        # --- an alarm acknowledged ----------------------------------------------------
        sim = runtime.simulator
        assert sim is not None
        await sim.stop()  # the PLC goes away: plant_link_lost

        async def lost() -> bool:
            alarms = await ok(api.get("/api/v1/alarms", headers=bearer(EVE)))
            return any(a["code"] == "plant_link_lost" for a in alarms)

        await eventually(lost, within_s=30, what="plant_link_lost")
        acked = await ok(
            api.post("/api/v1/alarms/plant_link_lost/acknowledge", headers=bearer(CHEN))
        )
        assert acked["acknowledged_by"] == "c.operator"
        await sim.start()

        # --- a stage released and its stope closed ------------------------------------
        await sim.reset_stope(plan_area_m2=AREA_M2)
        stope = await ok(
            api.post(
                "/api/v1/stopes",
                json={
                    "name": "S-PEOPLE-2",
                    "plan_area_m2": AREA_M2,
                    "height_m": 10.0,
                    "barricade_rating_kpa": 2000.0,
                },
                headers=bearer(ANNA),
            ),
            201,
        )
        await ok(
            api.post(
                f"/api/v1/stopes/{stope['id']}/plans",
                json={
                    "stages": [
                        {
                            "name": "plug",
                            "recipe_id": recipe["id"],
                            "top_height_m": 0.4,
                            "max_rise_rate_m_h": 60.0,
                            "cure_hold_h": 1.0,
                        }
                    ]
                },
                headers=bearer(ANNA),
            )
        )

        async def connected() -> bool:
            return bool(
                (await ok(api.get("/api/v1/plant/status", headers=bearer(EVE))))["connected"]
            )

        await eventually(connected, within_s=30, what="the PLC link back")
        plug = await ok(
            api.post(
                f"/api/v1/stopes/{stope['id']}/pours",
                json={"paste_flow_m3_h": 90.0},
                headers=bearer(CHEN),
            ),
            201,
        )
        await start(api, plug["id"], CHEN)

        async def curing() -> bool:
            got = await ok(api.get(f"/api/v1/stopes/{stope['id']}", headers=bearer(EVE)))
            return bool(got["state"] == "curing")

        await eventually(curing, within_s=120, what="the plug's top")
        runtime.plant_clock.offset += timedelta(hours=2)  # its hold elapses
        released = await ok(api.post(f"/api/v1/stopes/{stope['id']}/release", headers=bearer(ANNA)))
        assert released["stages"][0]["released_by"] == "a.ivanova"
        closed = await ok(api.post(f"/api/v1/stopes/{stope['id']}/close", headers=bearer(BORIS)))
        assert closed["state"] == "closed"

        # --- the audit log: every act, its person ---------------------------------------
        # In the order done (a command queued with its writes may be stored a moment
        # after an act stored with its own record).
        entries = sorted(await audit(api, runtime), key=lambda e: (e["at"], e["id"]))
        acts = [
            (e["kind"], e["reason"], e["role"], e["person"])
            for e in entries
            if e["kind"] != "setpoints"
        ]
        expected = [
            ("recipe_approval", "approved", "engineer", "b.petrov"),
            ("recipe_approval", "approved", "engineer", "a.ivanova"),
            ("calibration_approval", "stored", "engineer", "a.ivanova"),
            ("calibration_approval", "approved", "engineer", "b.petrov"),
            ("rheology_approval", "stored", "engineer", "a.ivanova"),
            ("pour_command", "create", "scada", "c.operator"),
            ("pour_command", "start", "scada", "c.operator"),
            ("pour_command", "pause", "scada", "f.night"),
            ("pour_command", "resume", "scada", "c.operator"),
            ("pour_command", "samples", "scada", OLD_PERSON),
            ("pour_command", "stop", "scada", "c.operator"),
            ("lab_result", "api", "lab", "d.lab"),
            ("lab_result", "sheet", "lab", "d.lab"),
            ("alarm_acknowledgement", "plant_link_lost", "scada", "c.operator"),
            ("pour_command", "create", "scada", "c.operator"),  # the stage's pour
            ("pour_command", "start", "scada", "c.operator"),
            ("stope_release", "on_evidence", "engineer", "a.ivanova"),
            ("stope_closed", "closed", "engineer", "b.petrov"),
        ]
        assert acts == expected
        mine = await audit(api, runtime, person="f.night")
        assert [(e["kind"], e["reason"]) for e in mine if e["kind"] != "setpoints"] == [
            ("pour_command", "pause")
        ]
        assert all(e["person"] == "f.night" for e in mine)
        assert await runtime.store.verify_audit_chain() == (True, None)


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
