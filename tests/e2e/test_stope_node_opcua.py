"""The stope plan against the node-opcua stand-in PLC with the optional tags (a dump
diverter with a proven position, a barricade pressure): an OPC UA server the project did
not write, S7-style node ids, a plant that fills a 2 m2 stope (server.js --plant).

The same plan as on the simulator, scaled to wall time (an external PLC runs at speed
1): a plug that stops at its top and cures (the plan's clock moved over the 48 h hold),
then a body whose recipe switches part way up without a stop. Start-up paste goes to
the dump until Cw and Bw settle; the diverter's proven position decides where it went.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import auth, need
from tests.e2e.helpers import RECIPE, action, eventually, get_pour, running_service, settings
from tests.e2e.procs import NODE_PLC_DIR, install_node_opcua, node_plc

pytestmark = [pytest.mark.node_opcua, pytest.mark.slow]

TAG_MAP = NODE_PLC_DIR / "tags_optional.toml"
AREA_M2 = 2.0  # the stand-in PLC's stope
RISE_M_H = 60.0  # 120 m3/h


async def approved(client: httpx.AsyncClient, name: str, binder_pct: float) -> str:
    r = await client.post(
        "/api/v1/recipes",
        json={
            "name": name,
            "mix": {**RECIPE, "binder_pct": binder_pct},
            "approved_by": "E2E Engineer",
        },
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    recipe_id: str = r.json()["id"]
    return recipe_id


async def stope(client: httpx.AsyncClient, stope_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/stopes/{stope_id}", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _completed(client: httpx.AsyncClient, pour_id: str) -> Any:
    pour = await get_pour(client, pour_id)
    return pour if pour["state"] == "completed" else None


async def _mode(client: httpx.AsyncClient, mode: str) -> bool:
    r = await client.get("/api/v1/plant/status", headers=auth("hmi"))
    st = r.json()
    return bool(st["connected"] and st["plc_mode"] == mode)


async def test_a_stope_plan_against_the_node_opcua_plc(tmp_path: Path) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    need(node is not None and npm is not None, "the node-opcua PLC needs Node.js and npm")
    assert node is not None and npm is not None
    await install_node_opcua(npm)
    async with node_plc(node, plant=True, log=tmp_path / "node-plc.log") as plc:
        s = settings(
            f"sqlite+aiosqlite:///{tmp_path / 'node-stope.db'}",
            plc={
                "endpoint": plc.endpoint,
                "allow_insecure": True,
                "tag_map": TAG_MAP,
                "publishing_interval_ms": 100,
            },
            diverter={"settle_s": 3.0, "travel_timeout_s": 10.0},
        )
        async with running_service(s) as (client, runtime):
            await eventually(lambda: _mode(client, "stopped"), within_s=20, what="the PLC")
            status = (await client.get("/api/v1/plant/status", headers=auth("hmi"))).json()
            # The optional tags are read: the diverter's position and the barricade.
            assert status["measurements"]["diverted_to_dump_pv"]["value"] is False
            assert "barricade_pressure_pv" in status["measurements"]
            r = await client.post(
                "/api/v1/stopes",
                json={
                    "name": "S-N1",
                    "plan_area_m2": AREA_M2,
                    "height_m": 1.0,
                    "barricade_rating_kpa": 500.0,
                    "barricade_tags": ["barricade_pressure_pv"],
                },
                headers=auth("engineer"),
            )
            assert r.status_code == 201, r.text
            stope_id = r.json()["id"]
            stages = [
                ("plug", 8.0, 0.1, {"cure_hold_h": 48.0}),
                ("lower_body", 5.0, 0.2, {"switch_at_top": True}),
                ("upper_body", 4.0, 0.3, {}),
            ]
            plan = [
                {
                    "name": name,
                    "recipe_id": await approved(client, f"S-N1 {name}", bw),
                    "top_height_m": top,
                    "max_rise_rate_m_h": RISE_M_H,
                    **extra,
                }
                for name, bw, top, extra in stages
            ]
            r = await client.post(
                f"/api/v1/stopes/{stope_id}/plans", json={"stages": plan}, headers=auth("engineer")
            )
            assert r.status_code == 200, r.text

            # The plug: its start-up goes to the dump, then to the stope up to 0.1 m.
            r = await client.post(
                f"/api/v1/stopes/{stope_id}/pours",
                json={"paste_flow_m3_h": 200.0},
                headers=auth("scada"),
            )
            assert r.status_code == 201, r.text
            plug = r.json()["id"]
            assert r.json()["flow"]["granted_m3_h"] == pytest.approx(RISE_M_H * AREA_M2)
            assert (await action(client, plug, "start")).status_code == 200
            done = await eventually(lambda: _completed(client, plug), within_s=150, what="0.1 m")
            assert done["dumped_m3"] > 0.0  # the start-up, by the proven position
            writes = await plc.writes()
            assert set(writes.get("DivertToDumpSP", {})) == {"Boolean"}
            st = await stope(client, stope_id)
            assert st["state"] == "curing"
            assert st["fill_height_m"] == pytest.approx(0.1, abs=0.03)

            runtime.plant_clock.offset += timedelta(hours=48)
            r = await client.post(f"/api/v1/stopes/{stope_id}/release", headers=auth("engineer"))
            assert r.status_code == 200, r.text
            await eventually(lambda: _mode(client, "stopped"), within_s=30, what="the flush")

            # The body: the recipe switches at 0.2 m without a stop, then 0.3 m.
            r = await client.post(
                f"/api/v1/stopes/{stope_id}/pours",
                json={"paste_flow_m3_h": 200.0},
                headers=auth("scada"),
            )
            assert r.status_code == 201, r.text
            lower = r.json()["id"]
            assert (await action(client, lower, "start")).status_code == 200
            await eventually(lambda: _completed(client, lower), within_s=150, what="0.2 m")

            # The next stage's pour takes over without a stop: stored a moment after the
            # lower one ends (a poll may fall between the two).
            async def next_pour() -> str | None:
                active = (await stope(client, stope_id))["active_pour_id"]
                return active if active not in (None, lower) else None

            upper = await eventually(next_pour, within_s=10, what="the upper stage's pour")
            await eventually(lambda: _completed(client, upper), within_s=150, what="0.3 m")
            st = await stope(client, stope_id)
            assert st["fill_height_m"] == pytest.approx(0.3, abs=0.03)
            assert [s["state"] for s in st["stages"]] == ["released", "done", "curing"]
            assert len(st["switch_points"]) == 1
            assert st["barricade_pressure_kpa"]["barricade_pressure_pv"] > 0.0
