"""Pours under closed-loop control on the built-in simulator, in accelerated time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import auth
from tests.e2e.helpers import (
    action,
    create_pour,
    eventually,
    get_pour,
    running_service,
    settings,
    status,
)


async def test_a_pour_runs_to_completion_and_is_recorded(tmp_path: Path) -> None:
    s = settings(f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}")
    async with running_service(s) as (client, _runtime):
        await eventually(lambda: _connected(client), within_s=15, what="the PLC link")
        pour_id = await create_pour(client, target_m3=6.0)
        r = await action(client, pour_id, "start")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "running"

        # A second pour cannot start while this one is active.
        other = await create_pour(client, target_m3=5.0)
        r = await action(client, other, "start")
        assert r.status_code == 409
        assert r.json()["code"] == "pour_already_active"

        running = await eventually(
            lambda: _plc_mode_is(client, "running"), within_s=20, what="the PLC to run"
        )
        assert running["setpoints"]["run_request"]["value"] is True

        done = await eventually(
            lambda: _state_in(client, pour_id, {"completed"}), within_s=120, what="completion"
        )
        assert done["poured_m3"] >= 6.0
        assert done["ended_at"] is not None
        # Binder placed follows the recipe: Bw within the off-spec band on average.
        assert abs(done["average_binder_pct"] - 5.0) <= 0.25, done
        # The PLC flushed the line before running: water, apart from the paste. The
        # start-up's off-spec paste (the mixer's water being displaced) went to the dump
        # through the diverter until Cw and Bw had settled in band: counted apart, not
        # placed, and next to nothing off spec in the stope.
        assert done["flush_water_m3"] > 0.0, done
        assert done["dumped_m3"] > 0.0, done
        assert done["startup_off_spec_m3"] <= done["off_spec_m3"], done
        assert done["off_spec_m3"] <= 0.05 * done["poured_m3"], done
        assert done["binder_t_by_component"]["slag"] > 3 * done["binder_t_by_component"]["cement"]
        # The PLC was asked to stop once the target was reached.
        await eventually(lambda: _plc_mode_is(client, "stopped"), within_s=20, what="PLC stop")

        audit = (
            await client.get(f"/api/v1/audit?pour_id={pour_id}&limit=1000", headers=auth("hmi"))
        ).json()
        # The operator's commands, each an entry of its own, then the setpoint writes.
        commands = [e for e in audit["items"] if e["kind"] == "pour_command"]
        assert [(e["reason"], e["role"]) for e in commands] == [
            ("create", "scada"),
            ("start", "scada"),
        ]
        entries = [e for e in audit["items"] if e["kind"] == "setpoints"]
        # A fresh process does not know what the PLC holds: a falling edge, then the run.
        # (The simulator has a dump diverter: a stopped plant's line points at the dump.)
        assert (entries[0]["reason"], entries[0]["new"]) == (
            "falling_edge",
            {"run_request": False, "divert_to_dump_sp": True},
        )
        assert entries[1]["reason"] == "recipe" and entries[1]["new"]["run_request"] is True
        assert all(e["acknowledged"] for e in entries)
        assert entries[-1]["new"]["run_request"] is False
        seqs = [e["seq"] for e in entries]
        assert seqs == sorted(seqs)


async def test_a_pour_survives_a_plc_restart(tmp_path: Path) -> None:
    s = settings(f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}")
    async with running_service(s) as (client, runtime):
        await eventually(lambda: _connected(client), within_s=15, what="the PLC link")
        pour_id = await create_pour(client, target_m3=6.0)
        assert (await action(client, pour_id, "start")).status_code == 200
        await eventually(
            lambda: _poured_at_least(client, pour_id, 2.0), within_s=90, what="2 m3 poured"
        )
        sim = runtime.simulator
        assert sim is not None
        await sim.stop()
        down = await eventually(lambda: _disconnected(client), within_s=20, what="link down")
        assert all(m["quality"] == "bad" for m in down["measurements"].values())
        paused = await eventually(
            lambda: _state_in(client, pour_id, {"paused"}), within_s=20, what="pause on link loss"
        )
        assert paused["interruptions"][-1]["reason"] == "plant_link_lost"
        before = paused["poured_m3"]
        # Writes while down are refused with a clear error; nothing changes.
        r = await action(client, pour_id, "resume")
        assert r.status_code == 503
        assert r.json()["code"] == "plant_link_down"

        await sim.start()
        await eventually(lambda: _connected(client), within_s=30, what="reconnection")
        r = await action(client, pour_id, "resume")
        assert r.status_code == 200, r.text
        done = await eventually(
            lambda: _state_in(client, pour_id, {"completed"}), within_s=90, what="completion"
        )
        assert done["poured_m3"] >= 6.0 > before
        assert done["interruptions"][-1].get("ended_at")


async def test_bad_input_and_roles_on_pours(tmp_path: Path) -> None:
    s = settings(f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}")
    async with running_service(s) as (client, _runtime):
        body = {
            "stope_id": "S-1",
            "recipe_id": "nope",
            "target_volume_m3": 5,
            "paste_flow_m3_h": 80,
        }
        r = await client.post("/api/v1/pours", json=body, headers=auth("hmi"))
        assert r.status_code == 403
        r = await client.post("/api/v1/pours", json=body)
        assert r.status_code == 401
        r = await client.post("/api/v1/pours", json=body, headers=auth("scada"))
        assert r.status_code == 404
        assert r.json()["code"] == "recipe_not_found"
        bad = {**body, "target_volume_m3": -5}
        r = await client.post("/api/v1/pours", json=bad, headers=auth("scada"))
        assert r.status_code == 422
        assert r.json()["field"] == "target_volume_m3"
        from tests.e2e.helpers import RECIPE

        unfeedable = {
            **RECIPE,
            "binder": [{"name": "lime", "specific_gravity": 2.2, "fraction_pct": 100}],
        }
        r = await client.post(
            "/api/v1/pours",
            json={
                "stope_id": "S-1",
                "recipe": unfeedable,
                "target_volume_m3": 5,
                "paste_flow_m3_h": 80,
            },
            headers=auth("scada"),
        )
        assert r.status_code == 422
        assert r.json()["field"] == "recipe.binder[0].name"
        assert (await client.get("/api/v1/pours?state=planned", headers=auth("hmi"))).json()[
            "items"
        ] == []


async def _connected(client: Any) -> dict[str, Any] | None:
    st = await status(client)
    return st if st["connected"] and st["plc_mode"] is not None else None


async def _disconnected(client: Any) -> dict[str, Any] | None:
    st = await status(client)
    return st if not st["connected"] else None


async def _plc_mode_is(client: Any, mode: str) -> dict[str, Any] | None:
    st = await status(client)
    return st if st["plc_mode"] == mode else None


async def _state_in(client: Any, pour_id: str, states: set[str]) -> dict[str, Any] | None:
    p = await get_pour(client, pour_id)
    return p if p["state"] in states else None


async def _poured_at_least(client: Any, pour_id: str, m3: float) -> dict[str, Any] | None:
    p = await get_pour(client, pour_id)
    return p if p["poured_m3"] >= m3 else None
