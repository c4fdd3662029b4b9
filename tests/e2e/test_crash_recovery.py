"""Paste placed around a crash is recorded: the service is killed (SIGKILL) in the middle
of a stage's pour while the plant, an external PLC (``python -m service.simulator``), runs
on until its heartbeat watchdog stops it. Started again, the service takes what the plant
placed since the last checkpoint from the PLC's paste totaliser, so the pour and the
stope hold what the stope truly received (within 1 %), and the stage's top is judged on
it when the pour is resumed."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import Client

from service.simulator.server import TAG_NODE_IDS
from tests.conftest import api_keys_setting, auth
from tests.e2e.helpers import RECIPE, action, get_pour, status
from tests.e2e.procs import (
    free_port,
    service_process,
    simulator_process,
    tag_map_without_diverter,
    until,
    wait_ready,
)

pytestmark = pytest.mark.slow

PLACED_NODE = "ns=2;s=Backfill.Stope.PlacedPaste"
KILL_AT_M3 = 0.6
AREA_M2 = 2.0
TOP_M3 = 2.0  # the plug's top: 1 m over 2 m2


async def placed_truth(endpoint: str) -> float:
    """The paste the simulated stope holds (the plant's truth, not a PLC tag)."""
    async with Client(endpoint, timeout=5) as client:
        value = await client.get_node(PLACED_NODE).read_value()
    return float(value)


async def plant_stopped(client: httpx.AsyncClient) -> dict[str, Any] | None:
    st = await status(client)
    return st if st["connected"] and st["plc_mode"] == "stopped" else None


async def test_paste_placed_around_a_kill_9_is_in_the_record(tmp_path: Path) -> None:
    assert "paste_volume_total_pv" in TAG_NODE_IDS
    sim_port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{sim_port}"
    env = {
        "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}",
        "BACKFILL_API_KEYS": api_keys_setting(),
        "BACKFILL_PLC__ENDPOINT": endpoint,
        "BACKFILL_PLC__ALLOW_INSECURE": "true",  # the simulator
        "BACKFILL_PLC__TAG_MAP": str(tag_map_without_diverter(tmp_path)),
        "BACKFILL_PLC__PUBLISHING_INTERVAL_MS": "200",
        "BACKFILL_CHECKPOINT_INTERVAL_S": "2",
        "BACKFILL_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "svc.log"
    with simulator_process(sim_port, tmp_path / "sim.log"):
        with service_process(env=env, cwd=tmp_path, port=free_port(), log=log) as first:
            await wait_ready(first, within_s=60)
            async with httpx.AsyncClient(base_url=first.base_url, timeout=10.0) as client:
                await until(lambda: _connected(client), within_s=30, what="the PLC link")
                stope = await _planned_stope(client)
                r = await client.post(
                    f"/api/v1/stopes/{stope['id']}/pours",
                    json={"paste_flow_m3_h": 150.0},
                    headers=auth("scada"),
                )
                assert r.status_code == 201, r.text
                pour_id = r.json()["id"]
                r = await action(client, pour_id, "start")
                assert r.status_code == 200, r.text
                seen = await until(
                    lambda: _poured(client, pour_id, KILL_AT_M3),
                    within_s=150,
                    interval=0.1,
                    what=f"{KILL_AT_M3} m3 placed",
                )
            assert first.kill() == -signal.SIGKILL
        # The PLC runs on, unwatched, until its heartbeat watchdog stops the plant.
        readings: list[float] = []
        truth_at_stop = await until(
            lambda: _settled(endpoint, readings),
            within_s=60,
            interval=1.0,
            what="the plant stopped by its watchdog",
        )
        assert truth_at_stop > float(seen["poured_m3"]) + 0.05, (truth_at_stop, seen)

        with service_process(env=env, cwd=tmp_path, port=free_port(), log=log) as second:
            await wait_ready(second, within_s=60)
            async with httpx.AsyncClient(base_url=second.base_url, timeout=10.0) as client:
                recovered = await until(
                    lambda: _recovered(client, pour_id), within_s=30, what="the recovery"
                )
                assert recovered["state"] == "paused"
                last = recovered["interruptions"][-1]
                assert last["reason"] == "service_restart"
                assert (
                    last["recovered_basis"] == "plc_totaliser" and last["recovered_to"] == "stope"
                )
                assert recovered["recovered_m3"] == pytest.approx(last["recovered_m3"])
                assert recovered["poured_m3"] == pytest.approx(truth_at_stop, rel=0.01), (
                    recovered["poured_m3"],
                    truth_at_stop,
                )
                view = (
                    await client.get(f"/api/v1/stopes/{stope['id']}", headers=auth("hmi"))
                ).json()
                assert view["placed_m3"] == pytest.approx(truth_at_stop, rel=0.01), view
                # Resumed, the pour stops at the plug's top, judged on the true volume.
                await until(lambda: plant_stopped(client), within_s=30, what="the plant ready")
                r = await action(client, pour_id, "resume")
                assert r.status_code == 200, r.text
                done = await until(
                    lambda: _ended(client, pour_id), within_s=150, what="the plug's top"
                )
                assert done["state"] == "completed"
                await until(lambda: plant_stopped(client), within_s=60, what="the flush done")
                truth = await placed_truth(endpoint)
                record = await get_pour(client, pour_id)
                assert record["poured_m3"] == pytest.approx(truth, rel=0.01), (record, truth)
                assert truth == pytest.approx(TOP_M3, rel=0.02), truth


async def _planned_stope(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/recipes",
        json={"name": "plug", "mix": RECIPE, "approved_by": "E2E Engineer"},
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    recipe_id = r.json()["id"]
    r = await client.post(
        "/api/v1/stopes",
        json={
            "name": "S-CRASH",
            "plan_area_m2": AREA_M2,
            "height_m": 20.0,
            "barricade_rating_kpa": 500,
            "barricade_tags": ["barricade_pressure_pv"],
        },
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    stope: dict[str, Any] = r.json()
    r = await client.post(
        f"/api/v1/stopes/{stope['id']}/plans",
        json={
            "continuous": False,
            "stages": [
                {"name": "plug", "recipe_id": recipe_id, "top_height_m": TOP_M3 / AREA_M2,
                 "max_rise_rate_m_h": 75.0, "cure_hold_h": 24},
                {"name": "body", "recipe_id": recipe_id, "top_height_m": 20.0,
                 "max_rise_rate_m_h": 75.0},
            ],
        },
        headers=auth("engineer"),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return stope


async def _connected(client: httpx.AsyncClient) -> bool:
    st = await status(client)
    return bool(st["connected"]) and st["plc_mode"] is not None


async def _poured(client: httpx.AsyncClient, pour_id: str, m3: float) -> dict[str, Any] | None:
    pour = await get_pour(client, pour_id)
    return pour if pour["poured_m3"] >= m3 else None


async def _settled(endpoint: str, seen: list[float]) -> float | None:
    """The stope's paste once it stops growing (the pump stopped)."""
    value = await placed_truth(endpoint)
    settled = bool(seen) and abs(value - seen[-1]) < 1e-6 and value > 0.0
    seen.append(value)
    return value if settled else None


async def _recovered(client: httpx.AsyncClient, pour_id: str) -> dict[str, Any] | None:
    pour = await get_pour(client, pour_id)
    last = pour["interruptions"][-1] if pour["interruptions"] else {}
    return pour if "recovered_basis" in last else None


async def _ended(client: httpx.AsyncClient, pour_id: str) -> dict[str, Any] | None:
    pour = await get_pour(client, pour_id)
    return pour if pour["state"] in ("completed", "stopped") else None
