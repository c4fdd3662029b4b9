"""The supervisor: the running shell of the pour machine (:mod:`service.core.pour_machine`).

It does the I/O and nothing else: one task takes the link's snapshot every plant second,
asks the machine what to do and does it (setpoint sets written and audited, records
queued for the store, the stope's plan told what a pour placed); pour actions come
through here too, under one lock. A start reads once, decides once and writes the pour
once before the PLC is told. A pour found running at start is paused and what it placed
meanwhile taken from the plant (:mod:`service.operations.pour_recovery`); a shutdown
(:meth:`Supervisor.quiesce`) pauses it and stops the plant before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from service.core import acts
from service.core import control as law
from service.core import plant_readings as pr
from service.core import pour_machine as pm
from service.core.people import Actor
from service.core.pour_machine.recovery import recover
from service.core.pour_states import PourAction, PourState, next_state
from service.errors import (
    BackfillError,
    NotTheWriter,
    PlantLinkError,
    ServiceStopping,
)
from service.logs import current_pour_id
from service.metrics import ServiceMetrics
from service.operations import pour_recovery
from service.operations.pour_context import PlantClock, StagePort
from service.operations.pour_records import PourRecords
from service.operations.pour_runs import (
    SupervisorConfig,
    next_stage_facts,
    readings_of,
    recipe_facts,
    resume_facts,
    start_facts,
)
from service.operations.setpoint_writer import SetpointWriter
from service.operations.supervisor_views import SupervisorViews
from service.plant.port import PlantLink
from service.store.records import PourRecord
from service.store.repository import Store

log = logging.getLogger(__name__)

__all__ = ["Supervisor", "SupervisorConfig"]


class Supervisor(SupervisorViews):
    def __init__(
        self,
        *,
        store: Store,
        link: PlantLink,
        metrics: ServiceMetrics,
        config: SupervisorConfig | None = None,
        time_scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stages: StagePort | None = None,
        plant_clock: PlantClock | None = None,
    ) -> None:
        self._store = store
        self._stages = stages
        self._plant_clock = plant_clock or PlantClock(time_scale, wall_clock, monotonic)
        self._link = link
        self._metrics = metrics
        self.config = config or SupervisorConfig()
        self.machine_config = self.config.machine(time_scale)
        self._monotonic = monotonic
        self._clock = wall_clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._state = pm.MachineState.initial(self.machine_config)
        self._records = PourRecords(store)
        self._writer = SetpointWriter(link, self._records, metrics, wall_clock)
        self.running = False  # this instance supervises (it is the writer)
        self.closing = False  # shutting down: no further pour actions
        self.cycles = 0

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, *, takeover: bool = False, run_loop: bool = True) -> None:
        """Start supervising. A pour found running is paused; with ``takeover`` (an
        elected writer replacing one that died) it is continued as soon as the plant
        accepts setpoints, otherwise it waits for an operator. ``run_loop=False``
        leaves the cycles to the caller (tests step :meth:`cycle` with their clock)."""
        await self._recover(takeover=takeover)
        self.running = True
        self._records.start()
        if run_loop:
            self._task = asyncio.create_task(self._run(), name="supervisor")

    async def quiesce(self) -> None:
        """Shutdown (SIGTERM): refuse further pour actions, pause the running pour
        (``service_shutdown``), which asks the PLC to stop, then store the records. The
        caller bounds the time. Idempotent."""
        if self.closing:
            return
        self.closing = True
        self._state = replace(self._state, auto_resume=None)
        if not self.running:
            return
        async with self._lock:
            pour = self._state.pour
            if pour is not None and pour.state is PourState.RUNNING:
                await self._decide(pm.pause, pour.id, role="service", reason="service_shutdown")
            else:
                await self._send_pending_stop()
            if self._state.stop_pending is not None:
                log.error(
                    "shutting down without the PLC's confirmation of run_request = false: "
                    "its heartbeat watchdog stops the plant"
                )
        await self._records.flush()

    async def flush_records(self) -> None:
        """Write queued pour records and audit entries now (tests; orderly stops)."""
        await self._records.flush()

    async def stop(self, *, checkpoint: bool = True) -> None:
        """Stop supervising. ``checkpoint=False`` when another instance has taken over:
        the pour record is then the new writer's to update."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        await self._records.stop()
        self.running = False
        pour = self._state.pour
        if checkpoint:
            if pour is not None and pour.state is PourState.RUNNING:
                self._records.keep(pour)
            await self._records.drain(5.0)
        else:
            self._records.forget_pours()
            self._state = replace(self._state, stop_pending=None, written={})
        self._state = replace(self._state, pour=None, auto_resume=None, last_cycle_mono=None)

    async def _recover(self, *, takeover: bool) -> None:
        """The pour found running or paused at start becomes the active one, paused,
        with what it placed since its last checkpoint settled (a crash: the history
        here, the PLC's totaliser once the link reads it). After a restart only an
        operator decides to go on; after a writer take-over it continues by itself.
        Whatever the plant was told before, it is told to stop first, so that a resume
        gives it a clean rising edge of run_request."""
        reason = "writer_failover" if takeover else "service_restart"
        found = await pour_recovery.found_at_start(
            self._store, reason, self._clock(), self._resumable, self._measurement_tags()
        )
        if found is None:
            return
        self._records.track(found.record)
        run = replace(found.run, last_checkpoint_mono=self._monotonic())
        auto = found.record.id if takeover and run.unrecorded else None
        self._state = replace(self._state, pour=run, auto_resume=auto)
        if found.history is not None:
            volume, detail = found.history
            await self._apply(recover(self._state, run.id, volume, basis="paste_flow_history",
                                      detail=detail, tick=self._tick()))  # fmt: skip
        if not takeover:
            self._state = replace(self._state, stop_pending=(run.id, reason))
            await self._send_pending_stop()

    async def _resumable(self, record: PourRecord) -> pm.PourRun:
        return (await resume_facts(self._store, self._stages, record)).run

    # --- pour actions ---------------------------------------------------------------------

    def require_running(self) -> None:
        """Refuse a pour action now, before anything is read or written for it: the
        service is shutting down, or this instance is a standby."""
        if self.closing:
            raise ServiceStopping("the service is shutting down; no further pour actions")
        if not self.running:
            raise NotTheWriter("this instance is a standby; pour actions go to the writer instance")

    async def start_pour(self, pour_id: str, role: str, person: str | None = None) -> PourRecord:
        """Start a planned pour under the Cw correction in force (the newest approved one
        that applies to its recipe, written on the pour: the record says what control
        ran on, and a later approval never changes a pour under way). ``person`` (who
        asked) is named in the audit entries of the command and of its writes."""
        current_pour_id.set(pour_id)
        async with self._lock:
            self.require_running()
            facts = await start_facts(self._store, self._stages, pour_id)
            record, run = facts.record, facts.run
            decision = _by(pm.start(
                self._state, run, recipe_facts(facts.recipe), self._readings(),
                tick := self._tick(), self.machine_config, role=role,
            ), person)  # fmt: skip
            started = await self._store.update_pour(
                pour_id, expect_state=PourState.PLANNED.value, state=PourState.RUNNING.value,
                started_at=tick.wall, correction=record.correction,
            )  # fmt: skip
            await self._command(decision, started, undo={"started_at": None}, before=record)
            self._commanded("start", pour_id, role, person)
            if self._stages is not None and run.context is not None:
                await self._stages.started(started)
            log.info("pour %s started for stope %s", pour_id, record.stope_id)
            return started

    async def pause_pour(
        self, pour_id: str, role: str, reason: str = "operator", person: str | None = None
    ) -> PourRecord:
        current_pour_id.set(pour_id)
        async with self._lock:
            self.require_running()
            await self._decide(pm.pause, pour_id, role=role, reason=reason, person=person)
            self._commanded("pause", pour_id, role, person)
            return await self._view_record(pour_id)

    async def resume_pour(self, pour_id: str, role: str, person: str | None = None) -> PourRecord:
        current_pour_id.set(pour_id)
        async with self._lock:
            resumed = await self._resume(pour_id, role, person)
            self._commanded("resume", pour_id, role, person)
            return resumed

    async def _resume(self, pour_id: str, role: str, person: str | None = None) -> PourRecord:
        """Resume the paused pour: decided, stored (a pause still queued is written first,
        with the writer held off, so no queued write lands after this one and undoes
        it), then the PLC is told."""
        self.require_running()
        pour = pm.require_active(self._state, pour_id)
        # Site limits, approvals and the stope's plan may have changed since the start.
        facts = await resume_facts(self._store, self._stages, self._records.stored[pour.id])
        self._state = replace(self._state, pour=replace(pour, context=facts.run.context))
        decision = _by(pm.resume(
            self._state, pour_id, recipe_facts(facts.recipe), self._readings(), self._tick(),
            self.machine_config, role=role,
        ), person)  # fmt: skip
        resumed = decision.state.pour
        assert resumed is not None
        async with self._records.flush_lock:
            await self._records.flush_locked()
            stored = await self._store.update_pour(
                pour_id, expect_state=PourState.PAUSED.value, state=PourState.RUNNING.value,
                interruptions=[dict(i) for i in resumed.interruptions],
            )  # fmt: skip
        before = self._records.stored[pour_id]
        await self._command(decision, stored, undo={"interruptions": before.interruptions},
                            before=before)  # fmt: skip
        log.info("pour %s resumed", pour_id)
        return stored

    async def stop_pour(self, pour_id: str, role: str, person: str | None = None) -> PourRecord:
        current_pour_id.set(pour_id)
        async with self._lock:
            self.require_running()
            pour = self._state.pour
            if pour is None or pour.id != pour_id:
                # Planned, or not supervised by this process (a pour left paused that
                # cannot be run): the plant is not running it, only the record ends.
                record = await self._store.get_pour(pour_id)
                target = next_state(PourState(record.state), PourAction.STOP)
                stopped = await self._store.update_pour(
                    pour_id, expect_state=record.state, state=target.value, ended_at=self._clock()
                )
                self._commanded("stop", pour_id, role, person)
                return stopped
            await self._decide(pm.finish, pour_id, PourState.STOPPED, role=role, person=person)
            self._commanded("stop", pour_id, role, person)
            return await self._view_record(pour_id)

    def acknowledge_alarm(self, code: str, by: Actor) -> law.Alarm:
        """Acknowledge an alarm as ``by`` (its person, else its role, on the alarm), with
        an audit entry naming them (kind ``alarm_acknowledgement``)."""
        now = self._clock()
        self._state = pm.acknowledge(self._state, code, by.person or by.role, now)
        alarm = self._state.alarms[code]
        pour = self._state.pour
        self._records.audit(acts.alarm_acknowledgement(
            by, code, alarm.severity.value, alarm.state.value, pour.id if pour else None, now
        ))  # fmt: skip
        return alarm

    def _commanded(self, action: str, pour_id: str, role: str, person: str | None) -> None:
        """The audit entry of an operator's pour command, queued in order with its writes."""
        self._records.audit(
            acts.pour_command(Actor(role, person), action, pour_id, at=self._clock())
        )

    async def _view_record(self, pour_id: str) -> PourRecord:
        """The pour as it is now: in memory, else (its end already stored) as stored."""
        return self.live_record(pour_id) or await self._store.get_pour(pour_id)

    # --- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        period_wall = max(
            self.config.cycle_s / self.machine_config.scale, self.config.min_cycle_wall_s
        )
        next_at = self._monotonic()
        while True:
            next_at += period_wall
            started = time.perf_counter()
            try:
                async with self._lock:
                    await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop boundary: record it, keep supervising
                log.exception("control cycle failed")
            self._metrics.control_cycle_seconds.observe(time.perf_counter() - started)
            delay = next_at - self._monotonic()
            if delay < 0:
                self._metrics.control_cycle_overruns.inc()
                next_at, delay = self._monotonic(), 0
            await asyncio.sleep(delay)

    async def cycle(self) -> None:
        """One supervision cycle; public so that tests can step it without the task."""
        self.cycles += 1
        readings = self._readings()
        self._metrics.plc_connected.set(1.0 if readings.connected else 0.0)
        current_pour_id.set(None if self._state.pour is None else self._state.pour.id)
        await self._apply(pm.cycle(self._state, readings, self._tick(), self.machine_config))
        pour = self._state.pour
        self._metrics.observe_alarms(self._state.alarms.annunciated())
        if pour is not None:
            self._metrics.pour_volume_m3.set(pour.totals.poured_m3)

    # --- carrying out the machine's decisions -----------------------------------------------

    def _tick(self) -> pm.Tick:
        return pm.Tick(self._monotonic(), self._plant_clock.now(), self._clock())

    def _readings(self) -> pr.Readings:
        return readings_of(self._link.snapshot(), self._link.setpoint_tags)

    def _measurement_tags(self) -> frozenset[str]:
        return frozenset(self._link.snapshot().measurements)

    async def _decide(
        self, action: Any, *args: Any, person: str | None = None, **kwargs: Any
    ) -> None:
        """Ask the machine for an action on the state, readings and time of now, and do it
        (its writes audited as ``person``'s when a person asked)."""
        decision = action(self._state, *args, self._tick(), self._readings(), **kwargs)
        await self._apply(_by(decision, person))

    async def _send_pending_stop(self) -> None:
        effects = pm.send_pending_stop(self._state, self._readings())
        await self._apply(pm.Decision(self._state, effects))

    async def _command(
        self, decision: pm.Decision, stored: PourRecord, *, undo: dict[str, Any],
        before: PourRecord,
    ) -> None:  # fmt: skip
        """Carry out a start's or resume's writes (the pour is stored already): when the
        PLC does not take them, the pour goes back to what it was and the state stays."""
        try:
            await self._apply(decision, command=True)
        except BackfillError:
            await self._store.update_pour(
                stored.id, expect_state=stored.state, state=before.state, **undo
            )
            raise
        self._records.track(stored)

    async def _apply(self, decision: pm.Decision, *, command: bool = False) -> None:
        """Carry out a decision's effects in order. In a cycle the new state is taken
        first and a failed write is retried by a later cycle (a stop stays pending); for
        a start or resume (``command``) a failed write fails the action and the state
        stays as it was."""
        if not command:
            self._state = decision.state
        for effect in decision.effects:
            if isinstance(effect, pm.Write):
                ok = await self._writer.write(effect, self._state.written, raise_on_failure=command)
                self._state = pm.written(self._state, effect, ok, self._monotonic())
            elif isinstance(effect, pm.Keep):
                self._records.keep(effect.pour)
            elif isinstance(effect, pm.Note):
                log.log(effect.level, effect.message, *effect.args)
            elif isinstance(effect, pm.FollowPlan):
                await self._follow_plan(effect.pour)
            elif isinstance(effect, pm.Handover):
                await self._handover(effect)
            elif isinstance(effect, pm.Resume):
                try:
                    await self._resume(effect.pour_id, "service")
                except PlantLinkError as err:
                    log.warning("pour %s: continuing after the take-over failed: %s",
                                effect.pour_id, err.code)  # fmt: skip
        if command:
            written, mono = self._state.written, self._state.last_write_mono
            self._state = replace(decision.state, written=written, last_write_mono=mono)

    async def _follow_plan(self, pour: pm.PourRun) -> None:
        """Tell the stope's plan what the pour placed and carry out its answer."""
        record = self._records.stored.get(pour.id)
        if self._stages is None or pour.context is None or record is None:
            return
        events = await self._stages.placed(record, pour.context, pour.totals.poured_m3)
        await self._decide(pm.plan_answer, pour.id, events)

    async def _handover(self, effect: pm.Handover) -> None:
        """A continuous plan reached a stage's top: the stage's pour ends and the next
        stage's pour takes over at once, on the correction in force, without a stop. A
        next pour that cannot be made (the store down, the plan changed) stops the plant
        at the top instead."""
        assert self._stages is not None
        # Stored first: the next stage's volume to its top is measured from it.
        self._records.keep(effect.ended)
        try:
            await self._records.flush()
            facts = await next_stage_facts(self._store, self._stages, effect.ended.id, effect.event)
        except BackfillError as err:
            log.error("pour %s: the next stage cannot take over (%s): stopping at the top",
                      effect.ended.id, err.detail)  # fmt: skip
            await self._decide(pm.finish, effect.ended.id, PourState.COMPLETED, role="service")
            return
        self._records.track(facts.record)
        await self._apply(pm.take_over(self._state, facts.run, effect.event, self._tick()))


def _by(decision: pm.Decision, person: str | None) -> pm.Decision:
    """The decision with its setpoint writes named as ``person``'s (who asked for it)."""
    if person is None:
        return decision
    effects = tuple(
        replace(e, person=person) if isinstance(e, pm.Write) else e for e in decision.effects
    )
    return replace(decision, effects=effects)
