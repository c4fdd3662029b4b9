"""The supervisor against the hand-written fake link and a real SQLite store, with an
injected clock: pour actions, drop-outs, pending stops, stuck sensors, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.core.control import PourTotals
from service.core.people import Actor
from service.core.recipe_limits import RecipeLimits
from service.errors import (
    Conflict,
    InvalidInput,
    PlantLinkDown,
    PlantNotReady,
    ServiceStopping,
    SetpointUnconfirmed,
)
from service.metrics import ServiceMetrics
from service.operations.pours import create_pour, pour_view
from service.operations.supervisor import Supervisor, SupervisorConfig
from service.plant.fake import FakePlantLink
from service.plant.port import Quality
from service.store.db import create_engine, migrate
from service.store.repository import Store

MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 35.7},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20.0},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80.0},
    ],
    "binder_pct": 5.0,
    "solids_pct": 72.0,
}

PLANT = {
    "tailings_flow_pv": 60.0,
    "tailings_density_pv": 1900.0,
    "cement_rate_pv": 0.9,
    "slag_rate_pv": 3.6,
    "flyash_rate_pv": 0.0,
    "water_flow_pv": 10.0,
    "paste_flow_pv": 100.0,
    "paste_density_pv": 1860.0,
    "pump_pressure_pv": 3000.0,
    "mixer_level_pv": 50.0,
    "plant_mode": 0,
    "remote_enabled": True,
    "setpoint_ack": 0,
}


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.now)


@dataclass
class Rig:
    store: Store
    link: FakePlantLink
    sup: Supervisor
    clock: Clock

    async def step(self, seconds: float, *, every: float = 1.0) -> None:
        t = 0.0
        while t < seconds:
            self.clock.now += every
            t += every
            # The plant's gauges carry noise: keep the densities moving.
            for tag in ("tailings_density_pv", "paste_density_pv"):
                m = self.link.snapshot().measurements[tag]
                if (
                    m.quality is Quality.GOOD
                    and isinstance(m.value, float)
                    and tag not in self.frozen
                ):
                    self.link.set_measurement(
                        tag, m.value + (0.01 if int(self.clock.now) % 2 else -0.01)
                    )
            await self.sup.cycle()
        await self.sup.flush_records()

    frozen: frozenset[str] = frozenset()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    await migrate(engine)
    try:
        yield Store(engine)
    finally:
        await engine.dispose()


async def _make_rig(store: Store, **config: Any) -> Rig:
    clock = Clock()
    link = FakePlantLink(measurements=PLANT, clock=clock, wall_clock=clock.wall)
    sup = Supervisor(
        store=store,
        link=link,
        metrics=ServiceMetrics(),
        config=SupervisorConfig(**config),
        monotonic=clock,
        wall_clock=clock.wall,
    )
    await sup.start(run_loop=False)
    return Rig(store, link, sup, clock)


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(store: Store) -> AsyncIterator[MakeRig]:
    made: list[Rig] = []

    async def make(_store: Store, **config: Any) -> Rig:
        rig = await _make_rig(_store, **config)
        made.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in made:
            await rig.sup.stop()


async def new_pour(store: Store, target_m3: float = 5.0, *, approved: bool = True) -> str:
    """A planned pour of MIX: an approved recipe version, or (``approved=False``) the
    mix inline, as SCADA may send it (stored unapproved)."""
    recipe_id = None
    if approved:
        recipe = await store.add_recipe(
            name="S-1 body",
            mix=MIX,
            design=None,
            calibration_id=None,
            approved_by="A. Engineer",
            created_by="engineer",
        )
        recipe_id = recipe.id
    pour = await create_pour(
        store,
        stope_id="S-1",
        mix=None if approved else MIX,
        recipe_id=recipe_id,
        target_volume_m3=target_m3,
        paste_flow_m3_h=100.0,
        sample_ids=[],
        role="scada",
        limits=RecipeLimits(),
    )
    return pour.id


class CountingStore(Store):
    """The real store, counting the writes of pour records."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.engine)
        self.pour_writes: list[dict[str, Any]] = []

    async def update_pour(self, pour_id: str, **fields: Any) -> Any:
        self.pour_writes.append(fields)
        return await super().update_pour(pour_id, **fields)


async def test_a_start_writes_the_pour_once_with_its_correction(store: Store) -> None:
    counting = CountingStore(store)
    rig = await _make_rig(counting)
    try:
        pour_id = await new_pour(store)
        started = await rig.sup.start_pour(pour_id, "scada")
        assert started.state == "running"
        assert len(counting.pour_writes) == 1, counting.pour_writes
        (write,) = counting.pour_writes
        assert write["state"] == "running" and write["expect_state"] == "planned"
        assert "correction" in write and "started_at" in write
        # The PLC was told after the record: a falling edge, then the first set.
        assert [w["run_request"] for w in rig.link.writes] == [False, True]
    finally:
        await rig.sup.stop()


async def test_start_refuses_a_plant_that_cannot_take_it(store: Store, make_rig: MakeRig) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store)
    rig.link.set_connected(False)
    with pytest.raises(PlantLinkDown):
        await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_connected(True)
    rig.link.set_measurement("remote_enabled", False)
    with pytest.raises(PlantNotReady):
        await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("remote_enabled", True)
    rig.link.set_measurement("plant_mode", 3)
    with pytest.raises(PlantNotReady):
        await rig.sup.start_pour(pour_id, "scada")
    assert rig.link.writes == []
    assert (await store.get_pour(pour_id)).state == "planned"


async def test_an_unconfirmed_start_leaves_the_pour_planned(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store)
    # The falling edge is confirmed, the run request is not.
    rig.link.fail_write_if = lambda values: (
        "unacknowledged" if values.get("run_request") is True else None
    )
    with pytest.raises(SetpointUnconfirmed):
        await rig.sup.start_pour(pour_id, "scada")
    record = await store.get_pour(pour_id)
    assert record.state == "planned"
    assert record.started_at is None
    assert rig.sup.active_pour is None
    await rig.sup.flush_records()
    audit = [e for e in await store.list_audit() if e.kind == "setpoints"]
    assert [(e.new["run_request"], e.acknowledged) for e in audit] == [(False, True), (True, False)]
    # A start whose falling edge cannot be confirmed does not begin either: run_request
    # is held true again (the unconfirmed write above may have reached the PLC).
    rig.link.fail_write_if = None
    rig.link.fail_next_write = "unacknowledged"
    with pytest.raises(PlantLinkDown, match="could not reset run_request"):
        await rig.sup.start_pour(pour_id, "scada")
    assert (await store.get_pour(pour_id)).state == "planned"


async def test_two_callers_start_at_once_one_wins(store: Store, make_rig: MakeRig) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store)
    results = await asyncio.gather(
        rig.sup.start_pour(pour_id, "scada"),
        rig.sup.start_pour(pour_id, "scada"),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, Conflict)) == 1
    assert (await store.get_pour(pour_id)).state == "running"
    other = await new_pour(store)
    with pytest.raises(Conflict) as err:
        await rig.sup.start_pour(other, "scada")
    assert err.value.code == "pour_already_active"


async def test_a_pour_runs_and_completes_with_its_totals(store: Store, make_rig: MakeRig) -> None:
    rig = await make_rig(store, checkpoint_interval_wall_s=5.0)
    pour_id = await new_pour(store, target_m3=2.0)
    await rig.sup.start_pour(pour_id, "scada")
    # A fresh process does not know what the PLC holds: a falling edge, then the run.
    assert rig.link.writes[0] == {"run_request": False}
    assert rig.link.writes[1]["run_request"] is True
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(30)
    assert (await store.get_pour(pour_id)).checkpoint_seq >= 5
    await rig.step(60)  # 100 m3/h for 90 s = 2.5 m3 > 2 m3
    record = await store.get_pour(pour_id)
    assert record.state == "completed"
    totals = PourTotals.from_dict(record.totals["integrator"])
    assert totals.poured_m3 >= 2.0
    assert rig.link.writes[-1]["run_request"] is False
    assert rig.link.writes[-1]["cement_rate_sp"] == 0.0
    assert rig.sup.active_pour is None
    for write in rig.link.writes:
        for tag, value in write.items():
            if isinstance(value, float):
                lim = rig.sup.config.control.limit(tag)
                assert lim.minimum <= value <= lim.maximum, (tag, value)


async def test_a_lost_link_pauses_and_the_stop_is_sent_when_it_returns(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store, link_loss_pause_wall_s=5.0)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(10)
    rig.link.set_connected(False)
    await rig.step(3)
    assert (await store.get_pour(pour_id)).state == "running"  # a blip is not a loss
    await rig.step(3)
    record = await store.get_pour(pour_id)
    assert record.state == "paused"
    assert record.interruptions[-1]["reason"] == "plant_link_lost"
    writes_before = len(rig.link.writes)
    rig.link.set_connected(True)
    rig.link.set_measurement("plant_mode", 1)
    await rig.step(1)
    assert len(rig.link.writes) == writes_before + 1
    assert rig.link.writes[-1]["run_request"] is False
    # Resuming drops run_request first only if it is still held true; it is not.
    await rig.sup.resume_pour(pour_id, "scada")
    assert rig.link.writes[-1]["run_request"] is True


async def test_resume_makes_a_rising_edge_when_run_request_is_still_true(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(5)
    # The PLC's watchdog stopped the plant: the pour pauses and run_request drops.
    rig.link.set_measurement("plant_mode", 0)
    await rig.step(1)
    assert (await store.get_pour(pour_id)).interruptions[-1]["reason"] == "plc_stopped"
    assert rig.link.writes[-1]["run_request"] is False
    # A reconnecting link re-sends its last confirmed set, which still says run.
    await rig.link.write_setpoints({"run_request": True})
    await rig.sup.resume_pour(pour_id, "scada")
    assert [w["run_request"] for w in rig.link.writes[-2:]] == [False, True]


async def test_remote_off_pauses_and_nothing_is_written_while_holding(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(5)
    rig.link.set_measurement("remote_enabled", False)
    await rig.step(1)
    record = await store.get_pour(pour_id)
    assert record.state == "paused"
    assert record.interruptions[-1]["reason"] == "plc_not_remote"
    count = len(rig.link.writes)
    await rig.step(20)
    assert len(rig.link.writes) <= count + 1  # at most the pending stop
    codes = {a.code.value for a in rig.sup.alarms() if a.active}
    assert "plc_not_remote" in codes


async def test_a_stuck_density_gauge_is_bad_data(store: Store, make_rig: MakeRig) -> None:
    rig = await make_rig(store, stuck_after_s=20.0)
    pour_id = await new_pour(store, target_m3=500)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(10)
    assert rig.sup.stuck == frozenset()
    rig.frozen = frozenset({"paste_density_pv"})
    await rig.step(25)
    assert rig.sup.stuck == {"paste_density_pv"}
    output = rig.sup.last_output()
    assert output is not None
    assert "paste_density_pv" in output.stale_inputs
    assert output.measured_solids_fraction is None
    await rig.step(10)
    assert "stale_data" in {a.code.value for a in rig.sup.alarms() if a.active}
    rig.frozen = frozenset()
    await rig.step(2)
    assert rig.sup.stuck == frozenset()


async def test_a_restart_finds_the_running_pour_and_pauses_it(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(20)
    poured = rig.sup.active_pour.totals.poured_m3 if rig.sup.active_pour else 0.0
    await rig.sup.stop()  # final checkpoint
    again = await make_rig(store)
    try:
        record = await store.get_pour(pour_id)
        assert record.state == "paused"
        assert record.interruptions[-1]["reason"] == "service_restart"
        active = again.sup.active_pour
        assert active is not None and active.totals.poured_m3 == pytest.approx(poured)
    finally:
        await again.sup.stop()


async def test_a_paused_pour_that_stands_still_keeps_its_updated_at_across_restarts(
    store: Store, make_rig: MakeRig
) -> None:
    """Nothing changes on a paused pour while it waits, nor when the service restarts:
    its record's updated_at stays at the pause (it moved at every restart, and with
    every checkpoint in between)."""
    rig = await make_rig(store, checkpoint_interval_wall_s=2.0)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(10)
    await rig.sup.pause_pour(pour_id, "scada")
    await rig.step(3)
    paused = await store.get_pour(pour_id)
    assert paused.state == "paused"
    await rig.step(10)  # checkpoints of a pour that stands still
    await rig.sup.stop()
    for _ in range(2):
        again = await make_rig(store, checkpoint_interval_wall_s=2.0)
        await again.step(10)
        await again.sup.stop()
    record = await store.get_pour(pour_id)
    assert (record.state, record.totals) == ("paused", paused.totals)
    assert record.updated_at == paused.updated_at
    # A change still moves it.
    again = await make_rig(store)
    await again.sup.stop_pour(pour_id, "scada")
    await again.sup.flush_records()
    stopped = await store.get_pour(pour_id)
    assert stopped.state == "stopped" and stopped.updated_at > paused.updated_at


async def test_a_store_outage_loses_nothing(tmp_path: Path, make_rig: MakeRig) -> None:
    import shutil

    folder = tmp_path / "db"
    folder.mkdir()
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'o.db'}")
    await migrate(engine)
    store = Store(engine)
    try:
        rig = await make_rig(store, checkpoint_interval_wall_s=2.0)
        pour_id = await new_pour(store, target_m3=3.0)
        await rig.sup.start_pour(pour_id, "scada")
        rig.link.set_measurement("plant_mode", 2)
        await rig.step(20)
        await engine.dispose()
        shutil.move(folder, tmp_path / "away")  # the database is gone
        writes_before = len(rig.link.writes)
        await rig.step(120)  # control goes on: 100 m3/h for 140 s in all > 3 m3
        assert len(rig.link.writes) > writes_before
        assert rig.sup.active_pour is None  # completed, in memory
        assert rig.link.writes[-1]["run_request"] is False
        shutil.move(tmp_path / "away", folder)  # the database is back
        await rig.sup.flush_records()
        record = await store.get_pour(pour_id)
        assert record.state == "completed"
        assert PourTotals.from_dict(record.totals["integrator"]).poured_m3 >= 3.0
        audit = [e for e in await store.list_audit(limit=1000) if e.kind == "setpoints"]
        assert len(audit) == len(rig.link.writes)
        assert [e.new for e in audit] == rig.link.writes
        assert await store.verify_audit_chain() == (True, None)
    finally:
        await engine.dispose()


async def test_a_plant_that_never_starts_pauses_the_pour(store: Store, make_rig: MakeRig) -> None:
    """A start the PLC does not act on (a refused start, an edge it did not see, a
    missing permit) must not leave the pour "running" while nothing flows."""
    rig = await make_rig(store, start_timeout_s=120.0)
    pour_id = await new_pour(store)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 1)  # flushing, then stuck there
    await rig.step(110)
    assert (await store.get_pour(pour_id)).state == "running"
    await rig.step(15)
    record = await store.get_pour(pour_id)
    assert record.state == "paused"
    assert record.interruptions[-1]["reason"] == "plc_did_not_start"
    assert rig.link.writes[-1]["run_request"] is False

    # Resumed, and this time the plant runs: no timeout however long it pours.
    rig.link.set_measurement("plant_mode", 0)
    await rig.sup.resume_pour(pour_id, "scada")
    await rig.step(5)
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(200)
    assert (await store.get_pour(pour_id)).state in {"running", "completed"}


async def test_a_resume_is_never_undone_by_the_pause_record_still_being_written(
    store: Store, make_rig: MakeRig
) -> None:
    """The pause's record goes to the store from a queue; a resume that comes while
    it is being written must win, in memory and in the store (else the PLC runs while
    the service believes the pour paused and supervises nothing)."""
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(3)
    for delay in (0.0, 0.0005, 0.001, 0.002, 0.004):
        await rig.sup.pause_pour(pour_id, "scada")  # queued for the store writer
        rig.link.set_measurement("plant_mode", 0)

        async def flush_later(wait: float = delay) -> None:
            await asyncio.sleep(wait)
            await rig.sup.flush_records()

        await asyncio.gather(rig.sup.resume_pour(pour_id, "scada"), flush_later())
        active = rig.sup.active_pour
        assert active is not None and active.state.value == "running", delay
        await rig.sup.flush_records()
        assert (await store.get_pour(pour_id)).state == "running", delay
        rig.link.set_measurement("plant_mode", 2)
        await rig.step(2)
        assert (await store.get_pour(pour_id)).state == "running", delay


@pytest.mark.parametrize("action", ["pause", "stop"])
async def test_a_pause_or_stop_is_never_undone_by_an_older_record_being_written(
    store: Store, make_rig: MakeRig, action: str
) -> None:
    """The store writer may be writing the pour's older record (a running checkpoint, a
    pause) when a pause or stop comes while the PLC takes its time to answer the stop:
    the older record's answer must not replace the newer one, in memory or in the
    store (else the record says running or paused while the PLC was told to stop)."""
    rig = await make_rig(store)
    rig.link.write_latency_s = 0.003
    for delay in (0.0, 0.0005, 0.001, 0.002, 0.004):
        pour_id = await new_pour(store, target_m3=50)
        await rig.sup.start_pour(pour_id, "scada")
        rig.link.set_measurement("plant_mode", 2)
        await rig.step(2)
        if action == "pause":
            older, newer = "running", "paused"
            rig.clock.now += 10.0
            await rig.sup.cycle()  # a checkpoint of the running pour, queued
            act = rig.sup.pause_pour(pour_id, "scada")
        else:
            older, newer = "paused", "stopped"
            await rig.sup.pause_pour(pour_id, "scada")  # queued
            act = rig.sup.stop_pour(pour_id, "scada")
        assert rig.sup.live_record(pour_id) is not None
        assert (await store.get_pour(pour_id)).state != newer

        async def flush_later(wait: float = delay) -> None:
            await asyncio.sleep(wait)
            await rig.sup.flush_records()

        answered, _ = await asyncio.gather(act, flush_later())
        assert answered.state == newer, (delay, older)
        await rig.sup.flush_records()
        assert (await store.get_pour(pour_id)).state == newer, delay
        assert pour_view(await store.get_pour(pour_id), rig.sup)["state"] == newer, delay
        if action == "pause":
            active = rig.sup.active_pour
            assert active is not None and active.state.value == "paused", delay
            await rig.sup.stop_pour(pour_id, "scada")
            await rig.sup.flush_records()
        rig.link.set_measurement("plant_mode", 0)


async def test_a_pause_not_yet_stored_shows_with_its_interruption(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    await rig.sup.pause_pour(pour_id, "scada")  # queued for the store writer
    view = pour_view(await store.get_pour(pour_id), rig.sup)
    assert view["state"] == "paused"
    assert view["interruptions"][-1]["reason"] == "operator"
    await rig.sup.stop_pour(pour_id, "scada")  # ended: no longer active, not yet stored
    view = pour_view(await store.get_pour(pour_id), rig.sup)
    assert view["state"] == "stopped" and view["ended_at"] is not None
    await rig.sup.flush_records()
    assert pour_view(await store.get_pour(pour_id), rig.sup)["state"] == "stopped"


# --- day one: restart, shutdown, what a pour may run ------------------------------------


async def test_after_a_restart_run_request_false_is_written_first_and_a_resume_starts(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(10)
    await rig.sup.stop()  # the process dies; the PLC still holds run_request true
    again = await make_rig(store)  # a new process, a new link: it knows nothing written
    assert again.link.writes[:1] == [{"run_request": False}]
    assert (await store.get_pour(pour_id)).state == "paused"
    # The watchdog stopped the plant meanwhile; a resume gives it a clean rising edge.
    again.link.set_measurement("plant_mode", 0)
    await again.sup.resume_pour(pour_id, "scada")
    assert [w["run_request"] for w in again.link.writes] == [False, True]
    assert (await store.get_pour(pour_id)).state == "running"


async def test_a_restart_with_the_link_down_stops_the_plant_as_soon_as_it_is_back(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    await rig.sup.stop()
    clock = Clock()
    link = FakePlantLink(measurements=PLANT, clock=clock, wall_clock=clock.wall)
    link.set_connected(False)
    sup = Supervisor(
        store=store, link=link, metrics=ServiceMetrics(), monotonic=clock, wall_clock=clock.wall
    )
    await sup.start(run_loop=False)
    try:
        assert link.writes == []
        link.set_connected(True)
        clock.now += 1
        await sup.cycle()
        assert link.writes == [{"run_request": False}]
    finally:
        await sup.stop()


async def test_quiesce_pauses_the_running_pour_and_stops_the_plant(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(10)
    await rig.sup.quiesce()
    record = await store.get_pour(pour_id)
    assert record.state == "paused"
    assert record.interruptions[-1]["reason"] == "service_shutdown"
    assert rig.link.writes[-1]["run_request"] is False
    assert rig.link.writes[-1]["cement_rate_sp"] == 0.0
    stored = PourTotals.from_dict(record.totals["integrator"]).poured_m3
    assert stored > 0.2 and stored == pytest.approx(rig.sup.active_pour.totals.poured_m3)  # type: ignore[union-attr]
    audit = [e for e in await store.list_audit() if e.kind == "setpoints"]
    assert audit[-1].new["run_request"] is False and audit[-1].acknowledged
    for action in (rig.sup.resume_pour, rig.sup.stop_pour, rig.sup.pause_pour):
        with pytest.raises(ServiceStopping):
            await action(pour_id, "scada")
    await rig.sup.quiesce()  # a second call does nothing more
    assert rig.link.writes[-1]["run_request"] is False


async def test_quiesce_with_the_link_down_keeps_the_stop_pending(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, target_m3=50)
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_connected(False)
    writes = len(rig.link.writes)
    await rig.sup.quiesce()
    assert len(rig.link.writes) == writes  # nothing could be sent
    assert rig.sup.active_pour is not None
    assert rig.sup.stop_pending is True
    assert (await store.get_pour(pour_id)).state == "paused"


async def test_only_an_approved_recipe_runs_unless_the_site_allows(
    store: Store, make_rig: MakeRig
) -> None:
    rig = await make_rig(store)
    pour_id = await new_pour(store, approved=False)
    with pytest.raises(Conflict) as err:
        await rig.sup.start_pour(pour_id, "scada")
    assert err.value.code == "recipe_not_approved"
    assert rig.link.writes == []
    recipe_id = (await store.get_pour(pour_id)).recipe_id
    await store.approve_recipe(
        recipe_id, approved_by="A. Engineer", actor=Actor("engineer", "A. Engineer")
    )
    await rig.sup.start_pour(pour_id, "scada")
    assert (await store.get_pour(pour_id)).state == "running"
    approvals = [e for e in await store.list_audit() if e.kind == "recipe_approval"]
    assert [e.new["recipe_id"] for e in approvals] == [recipe_id]
    assert approvals[0].new["approved_by"] == "A. Engineer"
    assert await store.verify_audit_chain() == (True, None)


async def test_a_site_may_run_unapproved_recipes(store: Store, make_rig: MakeRig) -> None:
    rig = await make_rig(store, allow_unapproved=True)
    pour_id = await new_pour(store, approved=False)
    await rig.sup.start_pour(pour_id, "scada")
    assert (await store.get_pour(pour_id)).state == "running"


async def test_a_stored_implausible_recipe_never_runs_nor_breaks_a_restart(
    store: Store, make_rig: MakeRig
) -> None:
    # Stored before the plausibility rules: Bw 1e-300 % (no binder at all).
    bad = await store.add_recipe(
        name="typo",
        mix={**MIX, "binder_pct": 1e-300},
        design=None,
        calibration_id=None,
        approved_by="A. Engineer",
        created_by="engineer",
    )
    planned = await store.add_pour(
        stope_id="S-1",
        recipe_id=bad.id,
        target_volume_m3=5.0,
        paste_flow_m3_h=100.0,
        created_by="scada",
        totals=PourTotals().summary(),
    )
    rig = await make_rig(store)
    with pytest.raises(InvalidInput) as err:
        await rig.sup.start_pour(planned.id, "scada")
    assert err.value.code == "recipe_implausible"
    assert err.value.field == "recipe.binder_pct"
    assert rig.link.writes == []
    # A pour of it left paused (stored so by an older version) does not stop a start,
    # cannot be resumed, and can be stopped.
    await store.update_pour(planned.id, state="paused")
    again = await make_rig(store)
    with pytest.raises(InvalidInput) as err:
        await again.sup.resume_pour(planned.id, "scada")
    assert err.value.code == "recipe_implausible"
    assert all(w["run_request"] is False for w in again.link.writes)
    stopped = await again.sup.stop_pour(planned.id, "scada")
    assert stopped.state == "stopped"
