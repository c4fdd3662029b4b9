"""A pour across a ``kill -9`` of the service (issue 4, "Proof"): ``python -m service``
as a real subprocess on its built-in simulator in accelerated time, killed in the
middle of a pour and started again on the same database file.

After the restart the pour must be paused (never silently running), its interruptions
must end with ``service_restart``, and its stored totals may lag what was last seen by
at most one checkpoint interval of flow. Resumed, it completes; the audit log of
setpoint writes stays intact across the kill.
"""

from __future__ import annotations

import asyncio
import math
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.store.db import create_engine
from service.store.repository import Store
from tests.conftest import api_keys_setting, auth
from tests.e2e.helpers import action, create_pour, get_pour, status
from tests.e2e.procs import free_port, service_process, until, wait_ready

pytestmark = pytest.mark.slow

SPEED = 20.0
CHECKPOINT_S = 1.0  # wall seconds
TARGET_M3 = 8.0
FLOW_M3_H = 100.0
KILL_AT_M3 = 2.0
# One checkpoint interval of paste flow: 100 m3/h x 1 s wall x speed 20 / 3600 = 0.56 m3.
CHECKPOINT_M3 = FLOW_M3_H * CHECKPOINT_S * SPEED / 3600.0
# Polling latency and one control cycle (0.05 s wall) on top of that, and a paste flow
# somewhat above the request while the plant settles.
MARGIN_M3 = 0.3
POLL_S = 0.1


def _env(db: Path) -> dict[str, str]:
    return {
        "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "BACKFILL_API_KEYS": api_keys_setting(),
        "BACKFILL_SIM__SPEED": f"{SPEED:g}",
        "BACKFILL_CHECKPOINT_INTERVAL_S": f"{CHECKPOINT_S:g}",
        "BACKFILL_LOG_LEVEL": "INFO",
    }


async def test_a_pour_across_a_kill_9_of_the_service(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    env = _env(db)
    log = tmp_path / "service.log"

    # --- first run: start a pour and kill -9 the service in the middle of it -----------
    with service_process(env=env, cwd=tmp_path, port=free_port(), log=log) as first:
        await wait_ready(first, within_s=30)
        async with httpx.AsyncClient(base_url=first.base_url, timeout=5.0) as client:
            await until(lambda: _connected(client), within_s=20, what="the PLC link")
            pour_id = await create_pour(client, target_m3=TARGET_M3, flow_m3_h=FLOW_M3_H)
            r = await action(client, pour_id, "start")
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "running"
            seen = await until(
                lambda: _poured_at_least(client, pour_id, KILL_AT_M3),
                within_s=90,
                interval=POLL_S,
                what=f"{KILL_AT_M3} m3 poured",
            )
        assert seen["state"] == "running"
        last_seen = float(seen["poured_m3"])
        code = first.kill()
        assert code == -signal.SIGKILL, f"exit status {code}\n{first.log_tail()}"

    # The store as the kill left it: the audit hash chain is intact.
    before_restart = await _audit_from_store(db)
    assert before_restart, "no setpoint write was audited before the kill"
    last_id_before = before_restart[-1]["id"]

    # --- second run: same database, the pour is found running and paused ----------------
    with service_process(env=env, cwd=tmp_path, port=free_port(), log=log) as second:
        await wait_ready(second, within_s=30)
        async with httpx.AsyncClient(base_url=second.base_url, timeout=5.0) as client:
            paused = await get_pour(client, pour_id)
            assert paused["state"] == "paused", paused
            assert paused["interruptions"], paused
            last = paused["interruptions"][-1]
            assert last["reason"] == "service_restart", paused["interruptions"]
            assert "ended_at" not in last
            stored = float(paused["poured_m3"])
            assert stored >= last_seen - CHECKPOINT_M3 - MARGIN_M3, (stored, last_seen)
            # Not more than the plant could place between the last look and the kill.
            assert stored <= last_seen + CHECKPOINT_M3, (stored, last_seen)
            _assert_not_negative(paused)

            # Never silently running: the plant is not asked to run and nothing is added
            # while the pour waits for an operator (1 s wall = 20 s of plant time).
            await until(lambda: _connected(client), within_s=20, what="the PLC link")
            await _assert_stays_paused(client, pour_id, stored, wall_s=1.0)

            r = await action(client, pour_id, "resume")
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "running"
            done = await until(
                lambda: _state_in(client, pour_id, {"completed"}),
                within_s=120,
                what="completion after the resume",
            )
            assert done["poured_m3"] >= TARGET_M3
            assert done["ended_at"] is not None
            _assert_not_negative(done)
            reasons = [i["reason"] for i in done["interruptions"]]
            assert reasons[-1] == "service_restart", reasons
            assert done["interruptions"][-1].get("ended_at"), done["interruptions"]

            # The stop request follows the completion (record first, then the PLC).
            await until(lambda: _plc_mode_is(client, "stopped"), within_s=15, what="PLC stop")
            entries = await until(
                lambda: _audit_ending_with_stop(client), within_s=10, what="the stop audited"
            )
        # A clean stop of the second run before the store is read directly (uvicorn
        # ends on SIGTERM after its shutdown, with that signal as its status).
        assert second.terminate() in (0, -signal.SIGTERM), second.log_tail()
    assert "was running at restart: paused" in log.read_text(errors="replace")

    _assert_audit(entries, last_id_before, pour_id)
    after = await _audit_from_store(db)
    assert [e["id"] for e in after] == [e["id"] for e in entries]


# --- checks ------------------------------------------------------------------------------

TOTAL_KEYS = (
    "poured_m3",
    "dry_tailings_t",
    "binder_t",
    "water_m3",
    "off_spec_m3",
    "startup_off_spec_m3",
    "flush_water_m3",
    "average_solids_pct",
    "average_binder_pct",
)


def _assert_not_negative(pour: dict[str, Any]) -> None:
    for key in TOTAL_KEYS:
        value = pour[key]
        assert isinstance(value, int | float) and math.isfinite(value), (key, value)
        assert value >= 0.0, (key, value)
    for name, value in pour.get("binder_t_by_component", {}).items():
        assert math.isfinite(value) and value >= 0.0, (name, value)


async def _assert_stays_paused(
    client: httpx.AsyncClient, pour_id: str, poured_m3: float, *, wall_s: float
) -> None:
    checks = max(int(wall_s / POLL_S), 1)
    for _ in range(checks):
        pour = await get_pour(client, pour_id)
        assert pour["state"] == "paused", pour
        assert pour["poured_m3"] == pytest.approx(poured_m3, abs=1e-9)
        st = await status(client)
        run = st["setpoints"].get("run_request")
        assert run is None or run["value"] is not True, st["setpoints"]
        assert st["plc_mode"] != "running", st
        await asyncio.sleep(POLL_S)


def _assert_audit(entries: list[dict[str, Any]], last_id_before: int, pour_id: str) -> None:
    entries = [e for e in entries if e["kind"] == "setpoints"]  # not the recipe approvals
    assert entries, "the audit log is empty"
    ids = [e["id"] for e in entries]
    assert ids == sorted(set(ids)), "audit ids are not strictly increasing"
    assert all(e["acknowledged"] for e in entries), [e for e in entries if not e["acknowledged"]]
    assert all(e["pour_id"] == pour_id for e in entries)
    # setpoint_seq restarts with the (restarted, built-in) PLC: increasing within a run.
    runs = (
        [e for e in entries if e["id"] <= last_id_before],
        [e for e in entries if e["id"] > last_id_before],
    )
    for run in runs:
        assert run, "a run of the service wrote no setpoints"
        seqs = [e["seq"] for e in run]
        assert all(isinstance(s, int) for s in seqs), seqs
        assert seqs == sorted(set(seqs)), f"setpoint_seq not increasing: {seqs}"
    first, second = runs
    # A fresh process drops run_request before its first run request: a clean edge.
    assert first[0]["reason"] == "falling_edge" and first[0]["new"]["run_request"] is False
    assert first[1]["reason"] == "recipe" and first[1]["new"]["run_request"] is True
    # After the kill, the restarted process tells the PLC to stop before anything else,
    # then the operator resumes.
    assert second[0]["reason"] == "service_restart" and second[0]["new"]["run_request"] is False
    assert second[1]["role"] == "scada"  # the resume, by the operator
    assert any(e["new"].get("run_request") is True for e in second)
    assert second[-1]["new"]["run_request"] is False  # completed: the PLC is told to stop


async def _audit_from_api(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    for _ in range(100):  # bounded paging
        r = await client.get(f"/api/v1/audit?after_id={after}&limit=1000", headers=auth("hmi"))
        assert r.status_code == 200, r.text
        page = r.json()
        if not page["items"]:
            return entries
        entries.extend(page["items"])
        after = page["next_after_id"]
    raise AssertionError("the audit log did not end within 100 pages")


async def _audit_from_store(db: Path) -> list[dict[str, Any]]:
    """The audit log read straight from the database file, its hash chain verified."""
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        store = Store(engine)
        intact, broken = await store.verify_audit_chain()
        assert intact, f"the audit hash chain is broken at entry {broken}"
        records = await store.list_audit(limit=100_000)
        return [{"id": r.id, "seq": r.seq, "acknowledged": r.acknowledged} for r in records]
    finally:
        await engine.dispose()


# --- probes --------------------------------------------------------------------------------


async def _connected(client: httpx.AsyncClient) -> dict[str, Any] | None:
    st = await status(client)
    return st if st["connected"] and st["plc_mode"] is not None else None


async def _plc_mode_is(client: httpx.AsyncClient, mode: str) -> dict[str, Any] | None:
    st = await status(client)
    return st if st["plc_mode"] == mode else None


async def _audit_ending_with_stop(client: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    entries = await _audit_from_api(client)
    return entries if entries and entries[-1]["new"].get("run_request") is False else None


async def _state_in(client: httpx.AsyncClient, pour_id: str, states: set[str]) -> Any:
    p = await get_pour(client, pour_id)
    return p if p["state"] in states else None


async def _poured_at_least(client: httpx.AsyncClient, pour_id: str, m3: float) -> Any:
    p = await get_pour(client, pour_id)
    return p if p["poured_m3"] >= m3 else None
