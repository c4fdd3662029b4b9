"""The supervisor: one task that runs the control law against the PLC link.

Each cycle it takes the link's snapshot (no I/O), runs the pure control law, writes
one confirmed setpoint set when something changed, integrates the pour totals,
evaluates the alarms, and checkpoints the active pour to the store. Pour actions
from the API (start, pause, resume, stop) come through here too, under one lock, so
that the loop and two callers at once never interleave on the PLC or the record.

Safety rules kept here (the law keeps its own): nothing is written unless the PLC
is connected and in remote; a PLC that drops out of remote, faults, stops, or a
link lost for longer than ``link_loss_pause_s`` pauses the running pour with an
interruption; after a restart of the service a pour found running is paused, never
silently continued, and ``run_request = false`` is the first setpoint written; a
shutdown (:meth:`Supervisor.quiesce`) pauses the running pour and stops the plant
before the process exits; a pour runs only a plausible recipe, and only an approved
one unless the site allows otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from service.core import control as law
from service.core import diversion as dv
from service.core.plans import PlanEvent, PlanEventKind
from service.core.pour_states import PourAction, PourState, next_state
from service.core.recipe_limits import RecipeLimits, check_mix
from service.errors import (
    BackfillError,
    Conflict,
    InvalidInput,
    NotTheWriter,
    PlantLinkDown,
    PlantLinkError,
    PlantNotReady,
    ServiceStopping,
    StoreUnavailable,
)
from service.logs import current_pour_id
from service.metrics import ServiceMetrics
from service.operations import guards
from service.operations import instruments as ins
from service.operations.corrections import (
    Correction,
    active_correction,
    controlled_mix,
    corrected_density_kg_m3,
    correction_for,
)
from service.operations.pour_context import PlantClock, PourContext, StagePort
from service.plant.port import PlantLink, PlantSnapshot, Quality, SetpointValue
from service.settings import InstrumentSettings
from service.store.records import PourRecord, RecipeRecord
from service.store.repository import Store

log = logging.getLogger(__name__)

PLANT_MODES = {0: "stopped", 1: "flushing", 2: "running", 3: "fault"}
MODE_FLUSHING = 1
MODE_RUNNING = 2
MODE_FAULT = 3
#: Measurements whose noise proves they are alive (stuck-sensor detection).
NOISY_TAGS = ("tailings_density_pv", "paste_density_pv")


@dataclass(frozen=True)
class SupervisorConfig:
    """Timing and limits of the supervisor (plant seconds unless named wall)."""

    cycle_s: float = 1.0
    min_cycle_wall_s: float = 0.05
    checkpoint_interval_wall_s: float = 5.0
    link_loss_pause_wall_s: float = 5.0
    write_refresh_s: float = 30.0
    # A nuclear or Coriolis densitometer always carries noise: a reading that does not
    # change at all for this long while paste flows is a stuck sensor, treated as bad.
    stuck_after_s: float = 20.0
    # After a start or resume the PLC flushes, then runs; a plant still not running
    # this long after run_request went true (a start refused, an edge the PLC did not
    # see, a permit missing) pauses the pour instead of leaving it "running" idle.
    start_timeout_s: float = 300.0
    # What a recipe must be to run (issue: a SCADA key could run a made-up recipe).
    recipe_limits: RecipeLimits = field(default_factory=RecipeLimits)
    allow_unapproved: bool = False
    # The dump diverter (used when the tag map has it): settle and travel times.
    diverter: dv.DiverterConfig = field(default_factory=dv.DiverterConfig)
    # A dead feed gauge: how long its last correction may stand in (plant seconds).
    fallback: law.FallbackConfig = field(default_factory=law.FallbackConfig)
    # The balance across the mixer ("instruments disagree"); its ``check`` turns it off.
    instruments: InstrumentSettings = field(default_factory=InstrumentSettings)
    # Plant seconds of steady production before the balance is judged (the mixer and
    # the transport dead times settle after a start, a resume or a rate change).
    balance_settle_s: float = 60.0
    control: law.ControlConfig = field(default_factory=law.ControlConfig)
    alarms: law.AlarmConfig = field(default_factory=law.AlarmConfig)


def control_recipe(mix: Mapping[str, Any]) -> law.Recipe:
    """The control law's recipe from a stored mix (API percentages -> fractions).

    Binder components must be feeders the plant has (cement, slag, flyash)."""
    blend: dict[str, float] = {}
    sg: dict[str, float] = {}
    for i, comp in enumerate(mix["binder"]):
        name = str(comp["name"])
        if name not in law.BINDER_COMPONENTS:
            raise InvalidInput(
                f"recipe.binder[{i}].name",
                f"the plant has no feeder for {name!r}; feeders: "
                + ", ".join(law.BINDER_COMPONENTS),
            )
        blend[name] = float(comp["fraction_pct"]) / 100.0
        sg[name] = float(comp["specific_gravity"])
    return law.make_recipe(
        binder_ratio=float(mix["binder_pct"]) / 100.0,
        solids_fraction=float(mix["solids_pct"]) / 100.0,
        tailings_sg=float(mix["tailings"]["specific_gravity"]),
        blend=blend,
        binder_sg=sg,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _totals_record(totals: law.PourTotals) -> dict[str, Any]:
    return {**totals.summary(), "integrator": totals.to_dict()}


@dataclass
class ActivePour:
    record: PourRecord
    recipe: law.Recipe
    control: law.ControlState
    totals: law.PourTotals
    interruptions: list[dict[str, Any]]
    plant_was_running: bool = False
    run_requested_mono: float | None = None  # when run_request last went true
    last_checkpoint_wall: float = 0.0
    checkpoint_seq: int = 0
    context: PourContext | None = None  # the stope it fills, when planned
    diverter: dv.DiverterState = field(default_factory=dv.DiverterState)
    binder: ins.BinderSource = field(default_factory=ins.BinderSource)
    steady_since: datetime | None = None  # plant time the balance's conditions began
    # The approved Cw correction the pour runs on (its record's ``correction``): a
    # tailings Gs already in ``recipe``, or a paste density gauge bias taken off.
    correction: Correction | None = None

    @property
    def state(self) -> PourState:
        return PourState(self.record.state)


class Supervisor:
    def __init__(
        self,
        *,
        store: Store,
        link: PlantLink,
        metrics: ServiceMetrics,
        config: SupervisorConfig | None = None,
        time_scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _now,
        stages: StagePort | None = None,
        plant_clock: PlantClock | None = None,
    ) -> None:
        self._store = store
        self._stages = stages
        self._plant_clock = plant_clock or PlantClock(time_scale, wall_clock, monotonic)
        self._link = link
        self._metrics = metrics
        self.config = config or SupervisorConfig()
        self._scale = time_scale
        self._monotonic = monotonic
        self._clock = wall_clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._active: ActivePour | None = None
        self._alarms = law.AlarmBook.empty(self.config.alarms)
        self._last_written: dict[str, SetpointValue] = {}
        self._last_write_mono = -math.inf
        self._link_down_since: float | None = None
        self._last_output: law.ControlOutput | None = None
        self._last_error: str | None = None
        self._stop_pending: tuple[str, str] | None = None
        self._auto_resume: str | None = None
        self._unsaved: dict[str, ActivePour] = {}
        self._audit_outbox: deque[dict[str, Any]] = deque()
        self._store_down = False
        self._store_wanted = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._writer_task: asyncio.Task[None] | None = None
        self._running = False
        self._closing = False
        self._last_cycle_mono: float | None = None
        self._unchanged: dict[str, tuple[object, float]] = {}
        self.stuck: frozenset[str] = frozenset()
        self.cycles = 0
        self._fallback: law.FallbackDecision | None = None
        self.balance: ins.BalanceCheck | None = None
        if self.config.instruments.check:
            self.balance = ins.BalanceCheck(
                ins.disagreement_config(self.config.instruments, self.config.cycle_s),
                ins.GaugeErrors.from_settings(self.config.instruments),
            )

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while this instance supervises (it is the writer)."""
        return self._running

    async def start(self, *, takeover: bool = False, run_loop: bool = True) -> None:
        """Start supervising. A pour found running is paused; with ``takeover`` (an
        elected writer replacing one that died) it is continued as soon as the plant
        accepts setpoints, otherwise it waits for an operator. ``run_loop=False``
        leaves the cycles to the caller (tests step :meth:`cycle` with their clock)."""
        await self._recover(takeover=takeover)
        self._running = True
        self._writer_task = asyncio.create_task(self._store_writer(), name="pour-store-writer")
        if run_loop:
            self._task = asyncio.create_task(self._run(), name="supervisor")

    async def quiesce(self) -> None:
        """Shutdown (SIGTERM): refuse further pour actions, pause the running pour with
        an interruption (``service_shutdown``), which asks the PLC to stop and waits for
        its confirmation, then store the pour's record and the audit entries. The caller
        bounds the time; the process may exit after it. Idempotent."""
        if self._closing:
            return
        self._closing = True
        self._auto_resume = None
        if not self._running:
            return
        async with self._lock:
            pour = self._active
            if pour is not None and pour.state is PourState.RUNNING:
                await self._pause(pour.record.id, role="service", reason="service_shutdown")
            else:
                await self._send_pending_stop()
            if self._stop_pending is not None:
                log.error(
                    "shutting down without the PLC's confirmation of run_request = false: "
                    "its heartbeat watchdog stops the plant"
                )
            if self._active is not None:
                await self._checkpoint(self._active)
        await self._flush_unsaved()

    @property
    def closing(self) -> bool:
        return self._closing

    async def flush_records(self) -> None:
        """Write queued pour records and audit entries now (tests; orderly stops)."""
        await self._flush_unsaved()

    async def stop(self, *, checkpoint: bool = True) -> None:
        """Stop supervising. ``checkpoint=False`` when another instance has taken over:
        the pour record is then the new writer's to update."""
        for task in (self._task, self._writer_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._writer_task = None
        self._running = False
        if self._active is not None and checkpoint:
            await self._checkpoint(self._active)
        if checkpoint and (self._unsaved or self._audit_outbox):
            try:
                async with asyncio.timeout(5.0):
                    await self._flush_unsaved()
            except TimeoutError:
                pass
            if self._unsaved or self._audit_outbox:
                log.error(
                    "stopping with %d pour records and %d audit entries not stored",
                    len(self._unsaved),
                    len(self._audit_outbox),
                )
        if not checkpoint:
            # Deposed: the pour records are the new writer's now; queued records of ours
            # would overwrite newer ones. Audit entries of writes we made stay queued.
            self._unsaved.clear()
            self._stop_pending = None
            self._last_written.clear()
        self._active = None
        self._auto_resume = None
        self._last_cycle_mono = None

    async def _recover(self, *, takeover: bool) -> None:
        """A pour left running is paused: the plant may have been told to stop by its
        own watchdog. After a restart only an operator decides to go on; after a
        writer take-over the pour continues by itself (paused, then continued)."""
        reason = "writer_failover" if takeover else "service_restart"
        for record in await self._store.list_pours(state=PourState.RUNNING.value):
            interruptions = [
                *record.interruptions,
                {"reason": reason, "started_at": self._clock().isoformat()},
            ]
            paused = await self._store.update_pour(
                record.id,
                expect_state=PourState.RUNNING.value,
                state=PourState.PAUSED.value,
                interruptions=interruptions,
            )
            log.warning("pour %s was running at restart: paused (%s)", record.id, reason)
            if await self._recover_one(paused) and takeover:
                self._auto_resume = record.id
        if self._active is None:
            for paused in await self._store.list_pours(state=PourState.PAUSED.value):
                if await self._recover_one(paused):
                    break
        if self._active is not None and not takeover:
            # Whatever the plant was told before the restart, it is told to stop first:
            # a resume then gives it a clean rising edge of run_request.
            self._stop_pending = (self._active.record.id, reason)
            await self._send_pending_stop()

    async def _recover_one(self, record: PourRecord) -> bool:
        """Make a paused pour found at start the active one; a pour whose recipe cannot
        be run (a record stored before the plausibility rules) is left paused, and can
        be stopped, but never supervised."""
        try:
            await self._activate(record)
        except BackfillError as err:
            log.error("pour %s cannot be supervised (%s): %s", record.id, err.code, err.detail)
            return False
        return True

    async def _activate(self, record: PourRecord) -> ActivePour:
        recipe_rec = await self._store.get_recipe(record.recipe_id)
        integrator = record.totals.get("integrator")
        totals = law.PourTotals.from_dict(integrator) if integrator else law.PourTotals()
        context = None if self._stages is None else await self._stages.context_of(record)
        correction = None if record.correction is None else Correction.from_pour(record.correction)
        self._active = ActivePour(
            record=record,
            recipe=control_recipe(controlled_mix(recipe_rec.mix, correction)),
            correction=correction,
            control=law.ControlState.initial(),
            totals=totals,
            interruptions=list(record.interruptions),
            checkpoint_seq=record.checkpoint_seq,
            last_checkpoint_wall=self._monotonic(),
            context=context,
        )
        return self._active

    # --- views (no I/O) -------------------------------------------------------------------

    @property
    def active_pour(self) -> ActivePour | None:
        return self._active

    def alarms(self) -> list[law.Alarm]:
        return self._alarms.annunciated()

    def instruments_view(self) -> dict[str, Any]:
        """Where the binder comes from and whether the flows agree (no I/O)."""
        return ins.instruments_view(self._fallback, self.balance)

    def active_pour_view(self) -> dict[str, Any] | None:
        pour = self._active
        if pour is None:
            return None
        return {
            "id": pour.record.id,
            "stope_id": pour.record.stope_id,
            "state": pour.record.state,
            "target_volume_m3": pour.record.target_volume_m3,
            "paste_flow_m3_h": pour.record.paste_flow_m3_h,
            "stop_pending": self._stop_pending is not None,
            # The recipe in force, as control runs on it (an approved Gs correction in).
            "targets": {
                "solids_pct": 100.0 * pour.recipe.solids_fraction,
                "binder_pct": 100.0 * pour.recipe.binder_ratio,
                "tailings_sg": pour.recipe.tailings_sg,
                "blend_pct": {c.name: 100.0 * c.fraction for c in pour.recipe.binder},
            },
            **pour.totals.summary(),
        }

    def live_totals(self, pour_id: str) -> law.PourTotals | None:
        """The in-memory totals of the active pour, newer than its last checkpoint."""
        pour = self._live(pour_id)
        return pour.totals if pour is not None else None

    def live_record(self, pour_id: str) -> PourRecord | None:
        """The in-memory record of the active pour, or of one whose last change (a
        pause, its end) still waits for the store: newer than what the store holds."""
        pour = self._live(pour_id)
        if pour is None:
            return None
        return replace(pour.record, interruptions=list(pour.interruptions))

    def _live(self, pour_id: str) -> ActivePour | None:
        if self._active is not None and self._active.record.id == pour_id:
            return self._active
        return self._unsaved.get(pour_id)

    def last_output(self) -> law.ControlOutput | None:
        return self._last_output

    # --- pour actions ---------------------------------------------------------------------

    async def start_pour(self, pour_id: str, role: str) -> PourRecord:
        current_pour_id.set(pour_id)
        async with self._lock:
            self._require_running()
            record = await self._store.get_pour(pour_id)
            target = next_state(PourState(record.state), PourAction.START)
            if self._active is not None and self._active.record.id != pour_id:
                raise Conflict(
                    f"pour {self._active.record.id} is {self._active.record.state}; "
                    "one pour at a time per plant",
                    code="pour_already_active",
                    active_pour_id=self._active.record.id,
                )
            self._require_plant_ready(self._link.snapshot())
            recipe = await self._store.get_recipe(record.recipe_id)
            self._require_runnable(recipe)
            self._require_feeders(control_recipe(recipe.mix))
            started = await self._store.update_pour(
                pour_id,
                expect_state=record.state,
                state=target.value,
                started_at=self._clock(),
            )
            pour = await self._activate(started)
            try:
                await self._run_edge(pour, role=role)
                await self._write_cycle(pour, reason="recipe", role=role, force=True)
                pour.run_requested_mono = self._monotonic()
            except BackfillError:
                # The PLC did not take the start: the pour has not begun.
                self._active = None
                await self._store.update_pour(
                    pour_id, expect_state=target.value, state=record.state, started_at=None
                )
                raise
            if self._stages is not None and pour.context is not None:
                await self._stages.started(pour.record)
            log.info("pour %s started for stope %s", pour_id, record.stope_id)
            return pour.record

    async def pause_pour(self, pour_id: str, role: str, reason: str = "operator") -> PourRecord:
        current_pour_id.set(pour_id)
        async with self._lock:
            self._require_running()
            return await self._pause(pour_id, role=role, reason=reason)

    async def resume_pour(self, pour_id: str, role: str) -> PourRecord:
        current_pour_id.set(pour_id)
        async with self._lock:
            return await self._resume(pour_id, role)

    async def _resume(self, pour_id: str, role: str) -> PourRecord:
        self._require_running()
        pour = self._require_active(pour_id)
        target = next_state(pour.state, PourAction.RESUME)
        self._require_plant_ready(self._link.snapshot())
        # Site limits and approvals may have changed since the start.
        self._require_runnable(await self._store.get_recipe(pour.record.recipe_id))
        now = self._clock()
        interruptions = list(pour.interruptions)
        if interruptions and "ended_at" not in interruptions[-1]:
            interruptions[-1] = {**interruptions[-1], "ended_at": now.isoformat()}
        async with self._flush_lock:
            # The pause may still be queued for the store writer: write it first, and
            # hold the writer off meanwhile, so that the stored state is the one this
            # resume moves from and no queued write lands after it and undoes it.
            await self._flush_unsaved_locked()
            pour.record = await self._store.update_pour(
                pour_id,
                expect_state=pour.record.state,
                state=target.value,
                interruptions=interruptions,
            )
            pour.interruptions = interruptions
        pour.plant_was_running = False
        pour.binder = pour.binder.resumed()
        self._auto_resume = None
        await self._run_edge(pour, role=role)
        await self._write_cycle(pour, reason="recipe", role=role, force=True)
        pour.run_requested_mono = self._monotonic()
        log.info("pour %s resumed", pour_id)
        return pour.record

    async def stop_pour(self, pour_id: str, role: str) -> PourRecord:
        current_pour_id.set(pour_id)
        async with self._lock:
            self._require_running()
            record = await self._store.get_pour(pour_id)
            target = next_state(PourState(record.state), PourAction.STOP)
            active = self._active is not None and self._active.record.id == pour_id
            if target is PourState.ABORTED or not active:
                # Planned, or not supervised by this process (a pour left paused that
                # cannot be run): the plant is not running it, only the record ends.
                return await self._store.update_pour(
                    pour_id, expect_state=record.state, state=target.value, ended_at=self._clock()
                )
            return await self._finish(self._require_active(pour_id), target, role=role)

    def acknowledge_alarm(self, code: str, by: str) -> law.Alarm:
        self._alarms = law.acknowledge(self._alarms, code, by, self._clock())
        return self._alarms[code]

    # --- internals of the actions ---------------------------------------------------------

    def _require_runnable(self, recipe: RecipeRecord) -> None:
        """A plausible recipe (by today's site limits, whenever it was stored) and,
        unless the site allows otherwise, an approved one."""
        check_mix(recipe.mix, self.config.recipe_limits, prefix="recipe.")
        if recipe.approved_at is None and not self.config.allow_unapproved:
            raise Conflict(
                f"recipe {recipe.name!r} version {recipe.version} is not approved: an "
                f"engineer approves it (POST /api/v1/recipes/{recipe.id}/approve), or the "
                "site allows unapproved recipes (BACKFILL_RECIPES__ALLOW_UNAPPROVED)",
                code="recipe_not_approved",
                recipe_id=recipe.id,
            )

    def _require_feeders(self, recipe: law.Recipe) -> None:
        """Refuse a recipe whose binder needs a feeder this plant's tag map lacks."""
        mapped = self._link.setpoint_tags
        for i, name in enumerate(recipe.component_names):
            if f"{name}_rate_sp" not in mapped:
                raise InvalidInput(
                    f"recipe.binder[{i}].name",
                    f"this plant has no {name} feeder in its tag map ({name}_rate_sp)",
                    code="feeder_not_available",
                )

    def require_running(self) -> None:
        """Refuse a pour action now, as the supervisor would, before anything is read or
        written for it: the service is shutting down, or this instance is a standby."""
        self._require_running()

    def _require_running(self) -> None:
        if self._closing:
            raise ServiceStopping("the service is shutting down; no further pour actions")
        if not self._running:
            raise NotTheWriter("this instance is a standby; pour actions go to the writer instance")

    def _require_active(self, pour_id: str) -> ActivePour:
        pour = self._active
        if pour is None or pour.record.id != pour_id:
            raise Conflict(f"pour {pour_id} is not the active pour", code="pour_not_active")
        return pour

    def _require_plant_ready(self, snap: PlantSnapshot) -> None:
        if not snap.connected:
            raise PlantLinkDown("the PLC link is down; cannot start the plant")
        remote = snap.measurements.get("remote_enabled")
        if remote is None or remote.quality is not Quality.GOOD or remote.value is not True:
            raise PlantNotReady("the PLC is not in remote: it does not accept setpoints")
        mode = snap.measurements.get("plant_mode")
        if mode is not None and mode.quality is Quality.GOOD and mode.value == MODE_FAULT:
            raise PlantNotReady("the PLC reports a fault; reset it at the plant first")

    async def _pause(self, pour_id: str, *, role: str, reason: str) -> PourRecord:
        """Pause: the new record is queued for the store writer in the same step that
        makes it (a store outage never holds up a stop), then the PLC is asked to stop.
        Queued before anything waits: a write of the older record that the writer has
        under way then cannot put the older state back over it (:meth:`_persist`)."""
        pour = self._require_active(pour_id)
        target = next_state(pour.state, PourAction.PAUSE)
        pour.interruptions.append({"reason": reason, "started_at": self._clock().isoformat()})
        pour.record = replace(pour.record, state=target.value)
        await self._persist(pour)
        log.warning("pour %s paused: %s", pour_id, reason)
        await self._request_stop(
            pour, role=role, reason="operator" if role != "service" else reason
        )
        return pour.record

    async def _finish(self, pour: ActivePour, target: PourState, *, role: str) -> PourRecord:
        now = self._clock()
        if pour.interruptions and "ended_at" not in pour.interruptions[-1]:
            pour.interruptions[-1] = {**pour.interruptions[-1], "ended_at": now.isoformat()}
        pour.record = replace(pour.record, state=target.value, ended_at=now)
        self._active = None
        await self._persist(pour)  # before any wait, as in _pause
        log.info("pour %s %s at %.2f m3", pour.record.id, target.value, pour.totals.poured_m3)
        await self._request_stop(
            pour, role=role, reason="operator" if role != "service" else "complete"
        )
        return pour.record

    async def _request_stop(self, pour: ActivePour, *, role: str, reason: str) -> None:
        """Ask the PLC to stop (it flushes by itself). If the link is down or the write
        fails, the request stays pending and is sent as soon as the link is back (the
        PLC's own watchdog has stopped the plant meanwhile); the record is already safe."""
        self._stop_pending = (pour.record.id, reason)
        await self._send_pending_stop(role=role)

    async def _send_pending_stop(self, *, role: str = "service") -> None:
        if self._stop_pending is None:
            return
        pour_id, reason = self._stop_pending
        if not self._link.snapshot().connected:
            log.warning("pour %s: PLC link down, stop request pending", pour_id)
            return
        values: dict[str, SetpointValue] = {"run_request": False}
        for name in law.BINDER_COMPONENTS:
            if f"{name}_rate_sp" in self._last_written:
                values[f"{name}_rate_sp"] = 0.0
        if guards.diverter_installed(self._link.snapshot(), self._link.setpoint_tags):
            values[dv.DIVERT_SP_TAG] = True  # the flush goes to the dump
        try:
            await self._write(values, pour_id=pour_id, reason=reason, role=role)
        except PlantLinkError as err:
            log.warning("pour %s: stop request not confirmed (%s); will retry", pour_id, err.code)
            return
        self._stop_pending = None

    async def _run_edge(self, pour: ActivePour, *, role: str) -> None:
        """A PLC starts on a rising edge of run_request: unless the link's last write of
        it was false (a stop), or the plant runs already, drop it first. It may still be
        true from before a trip or a lost link (a reconnecting link re-sends its last
        set); after a restart the process does not know what the PLC holds, so its
        first start or resume always drops it."""
        snap = self._link.snapshot()
        held = snap.setpoints.get("run_request")  # what this process's link last wrote
        mode = snap.measurements.get("plant_mode")
        running = mode is not None and mode.quality is Quality.GOOD and mode.value == MODE_RUNNING
        dropped = held is not None and held.value is False
        if (not running and not dropped) or self._stop_pending:
            self._stop_pending = (pour.record.id, "falling_edge")
            await self._send_pending_stop(role=role)
            if self._stop_pending is not None:
                raise PlantLinkDown("could not reset run_request before the start")

    async def _write(
        self,
        values: dict[str, SetpointValue],
        *,
        pour_id: str | None,
        reason: str,
        role: str,
    ) -> None:
        old = {k: self._last_written[k] for k in values if k in self._last_written}
        started = time.perf_counter()
        try:
            result = await self._link.write_setpoints(values)
        except PlantLinkError as err:
            self._metrics.setpoint_write_failures.inc(code=err.code)
            self._last_error = f"{err.code}: {err.detail}"
            await self._audit(
                values, old, pour_id, reason, role, seq=None, ack=False, detail=str(err)
            )
            raise
        self._metrics.setpoint_write_seconds.observe(time.perf_counter() - started)
        self._last_written.update(values)
        self._last_write_mono = self._monotonic()
        await self._audit(
            values, old, pour_id, reason, role, seq=result.seq, ack=result.acknowledged
        )

    async def _audit(
        self,
        new: Mapping[str, SetpointValue],
        old: Mapping[str, SetpointValue],
        pour_id: str | None,
        reason: str,
        role: str,
        *,
        seq: int | None,
        ack: bool,
        detail: str | None = None,
    ) -> None:
        # In order, through the outbox: a store outage delays the entry, never drops it.
        self._store_wanted.set()
        self._audit_outbox.append(
            {
                "kind": "setpoints",
                "reason": reason,
                "role": role,
                "new": dict(new),
                "old": dict(old) or None,
                "pour_id": pour_id,
                "seq": seq,
                "acknowledged": ack,
                "detail": detail,
                "at": self._clock(),
            }
        )

    # --- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        period_wall = max(self.config.cycle_s / self._scale, self.config.min_cycle_wall_s)
        next_at = self._monotonic()
        while True:
            next_at += period_wall
            started = time.perf_counter()
            try:
                async with self._lock:
                    await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a loop boundary: record it, keep supervising
                self._last_error = f"{type(err).__name__}: {err}"
                log.exception("control cycle failed")
            self._metrics.control_cycle_seconds.observe(time.perf_counter() - started)
            delay = next_at - self._monotonic()
            if delay < 0:
                self._metrics.control_cycle_overruns.inc()
                next_at = self._monotonic()
                delay = 0
            await asyncio.sleep(delay)

    async def cycle(self) -> None:
        """One supervision cycle; public so that tests can step it without the task."""
        now_mono = self._monotonic()
        dt_wall = 0.0 if self._last_cycle_mono is None else now_mono - self._last_cycle_mono
        self._last_cycle_mono = now_mono
        dt_s = dt_wall * self._scale
        self.cycles += 1
        snap = self._link.snapshot()
        self._metrics.plc_connected.set(1.0 if snap.connected else 0.0)
        if snap.connected:
            self._link_down_since = None
        elif self._link_down_since is None:
            self._link_down_since = now_mono

        self._track_stuck(snap, now_mono)
        if self._stop_pending is not None and snap.connected:
            await self._send_pending_stop()
        pour = self._active
        current_pour_id.set(pour.record.id if pour is not None else None)
        if pour is not None and self._auto_resume == pour.record.id:
            await self._try_auto_resume(pour, snap)
        output: law.ControlOutput | None = None
        inputs: law.ControlInputs | None = None
        context = pour.context if pour is not None else None
        stope_alarms, at_rating = guards.barricade(
            snap,
            None if context is None else context.barricade_rating_kpa,
            1.0 if context is None else context.barricade_high_fraction,
        )
        if pour is not None and pour.state is PourState.RUNNING:
            reason = self._dropout_reason(snap, pour, now_mono) or at_rating
            if reason is not None:
                await self._pause(pour.record.id, role="service", reason=reason)
            elif snap.connected:
                inputs = self._binder_source(pour, snap, self._inputs(snap, pour))
            # With the link down nothing is judged (the diverter's position, the gauges
            # are unknown, not wrong): the pour pauses once the loss has lasted.
            if inputs is not None and self._fallback is not None and self._fallback.pause:
                await self._pause(pour.record.id, role="service", reason=ins.PAUSE_REASON)
                inputs = None
            elif inputs is not None:
                pour.control, output = law.step(pour.control, inputs, self.config.control, dt_s)
                self._last_output = output
                if output.mode is law.ControlMode.ACTIVE:
                    pour.plant_was_running = True
                self._check_balance(pour, snap, inputs, output)
                divert = self._divert(pour, snap, output)
                stope_alarms[law.AlarmCode.DIVERTER_NOT_IN_POSITION] = law.Condition(
                    divert.fault is not None, "" if divert.fault is None else divert.fault.detail
                )
                if divert.pause_requested:
                    await self._pause(pour.record.id, role="service", reason=dv.FAULT_CODE)
                else:
                    await self._run_cycle(pour, snap, inputs, output, divert, dt_s)
        if pour is None or pour.state is not PourState.RUNNING:
            self._fallback = None
        self._evaluate_alarms(snap, pour, inputs, output, stope_alarms)
        active = self._active
        if active is not None:
            self._metrics.pour_volume_m3.set(active.totals.poured_m3)
            if now_mono - active.last_checkpoint_wall >= self.config.checkpoint_interval_wall_s:
                await self._checkpoint(active)

    async def _run_cycle(
        self,
        pour: ActivePour,
        snap: PlantSnapshot,
        inputs: law.ControlInputs,
        output: law.ControlOutput,
        divert: dv.DiverterOutput,
        dt_s: float,
    ) -> None:
        """Write the law's setpoints (and the diverter's command), add the step to the
        totals (to the dump's, when the valve is proven there), and follow the plan."""
        if output.mode is not law.ControlMode.HOLD:
            try:
                await self._write_cycle(
                    pour,
                    reason="correction",
                    role="service",
                    output=output,
                    divert_to_dump=divert.divert_to_dump_sp,
                )
            except PlantLinkError as err:
                # Counted and audited in _write; the next cycle tries again and a lasting
                # loss pauses the pour.
                log.warning("setpoint write failed: %s", err.code)
        sample = law.sample_from_step(
            inputs,
            output,
            paste_flow_m3_h=self._measurement(snap, "paste_flow_pv"),
            water_flow_m3_h=self._measurement(snap, "water_flow_pv"),
            flushing=self._mode_is(snap, MODE_FLUSHING),
            to_dump=divert.to_dump,
        )
        pour.totals = law.accumulate(pour.totals, sample, dt_s, self.config.alarms)
        if await self._follow_plan(pour):
            return
        if pour.totals.poured_m3 >= pour.record.target_volume_m3:
            await self._finish(pour, PourState.COMPLETED, role="service")

    def _binder_source(
        self, pour: ActivePour, snap: PlantSnapshot, inputs: law.ControlInputs
    ) -> law.ControlInputs:
        """The dead-gauge fallback, judged while the plant produces: the law's inputs with
        the binder on the paste flow meter when the feed gauges cannot carry it."""
        if law.mode_of(inputs) is not law.ControlMode.ACTIVE:
            self._fallback = None
            return inputs
        before = pour.binder.state.mode
        pour.binder, decision, inputs = ins.binder_source_step(
            pour.binder,
            inputs,
            self._measurement(snap, "paste_flow_pv"),
            self._plant_clock.now(),
            self.config.fallback,
        )
        if decision.mode is not before:
            log.warning(
                "pour %s: binder source %s: %s", pour.record.id, decision.mode, decision.reason
            )
        self._fallback = decision
        return inputs

    def _check_balance(
        self,
        pour: ActivePour,
        snap: PlantSnapshot,
        inputs: law.ControlInputs,
        output: law.ControlOutput,
    ) -> None:
        """One cycle of "instruments disagree", judged at steady production only
        (:func:`ins.steady_step`: from the first paste in band for
        ``balance_settle_s``, held while a feeder refills or a reading is unusable).
        The mixer's hold-up is not measured: at steady production in - out is 0."""
        if self.balance is None:
            return
        now = self._plant_clock.now()
        recipe = pour.recipe
        in_band = all(
            dv.in_band(measured, target, solids=solids, config=self.config.alarms) is True
            for measured, target, solids in (
                (output.measured_solids_fraction, recipe.solids_fraction, True),
                (output.measured_binder_ratio, recipe.binder_ratio, False),
            )
        )
        pour.steady_since, judge = ins.steady_step(
            pour.steady_since,
            producing=(
                output.mode is law.ControlMode.ACTIVE
                and inputs.binder_on_paste_flow_t_h is None
                and not self._mode_is(snap, MODE_FLUSHING)
            ),
            in_band=in_band,
            holding=bool(output.stale_inputs)
            or bool(inputs.refilling & set(recipe.component_names)),
            now=now,
            settle_s=self.config.balance_settle_s,
        )
        measurements = (
            ins.flow_measurements(
                lambda tag: (
                    self._paste_density(snap, pour)
                    if tag == "paste_density_pv"
                    else self._measurement(snap, tag)
                ),
                recipe,
                self.balance.errors,
            )
            if judge
            else None
        )
        status = self.balance.observe(measurements, now)
        if status.raised:
            log.warning("%s", status.detail)

    def _divert(
        self, pour: ActivePour, snap: PlantSnapshot, output: law.ControlOutput
    ) -> dv.DiverterOutput:
        """The dump diverter's decision for this cycle (inactive without its tags)."""
        config = replace(
            self.config.diverter,
            installed=guards.diverter_installed(snap, self._link.setpoint_tags),
        )
        recipe = pour.recipe
        plant_running = self._mode_is(snap, MODE_RUNNING)
        pour.diverter, decision = guards.diverter_step(
            pour.diverter,
            phase=dv.PourPhase.RUNNING if pour.plant_was_running else dv.PourPhase.STARTING,
            solids_in_band=dv.in_band(
                output.measured_solids_fraction,
                recipe.solids_fraction,
                solids=True,
                config=self.config.alarms,
            ),
            binder_in_band=dv.in_band(
                output.measured_binder_ratio,
                recipe.binder_ratio,
                solids=False,
                config=self.config.alarms,
            ),
            snap=snap,
            plant_running=plant_running,
            plant_flushing=self._mode_is(snap, MODE_FLUSHING),
            now=self._plant_clock.now(),
            config=config,
        )
        return decision

    async def _follow_plan(self, pour: ActivePour) -> bool:
        """Tell the stope's plan what the pour placed; carry out its answer: stop at a
        stage's top (the hold starts), or hand over to the next stage's recipe without
        stopping (a continuous plan). True when the pour ended here."""
        if self._stages is None or pour.context is None:
            return False
        events = await self._stages.placed(pour.record, pour.context, pour.totals.poured_m3)
        for event in events:
            if event.kind is PlanEventKind.SWITCH_RECIPE:
                await self._handover(pour, event)
                return True
            if event.stop_pour:
                log.info("pour %s: stage top reached (%s)", pour.record.id, event.detail)
                await self._finish(pour, PourState.COMPLETED, role="service")
                return True
        return False

    async def _handover(self, pour: ActivePour, event: PlanEvent) -> None:
        """A continuous plan reached a stage's top: the stage's pour ends and the next
        stage's pour takes over at once, without a stop (run_request stays true). The
        controller's state carries over, so the new recipe's setpoints ramp in at the
        law's rate limits (bumpless); the switch point is in the plan's record."""
        assert self._stages is not None
        following = await self._stages.next_pour(pour.record, event)
        # The next stage's pour starts now, as a start does: on the correction in force.
        if following.correction is None:
            mix = (await self._store.get_recipe(following.recipe_id)).mix
            applies = correction_for(mix, await active_correction(self._store))
            if applies is not None:
                following = await self._store.update_pour(
                    following.id, expect_state=following.state, correction=applies.to_pour()
                )
        pour.record = replace(pour.record, state=PourState.COMPLETED.value, ended_at=self._clock())
        await self._persist(pour)
        nxt = await self._activate(following)
        nxt.control = pour.control
        nxt.plant_was_running = pour.plant_was_running
        nxt.run_requested_mono = pour.run_requested_mono
        nxt.diverter = pour.diverter
        nxt.binder = pour.binder
        log.info(
            "pour %s handed over to pour %s (%s) without a stop",
            pour.record.id,
            following.id,
            event.detail,
        )

    async def _try_auto_resume(self, pour: ActivePour, snap: PlantSnapshot) -> None:
        try:
            self._require_plant_ready(snap)
        except PlantLinkError:
            return  # not yet: the new writer waits for the plant to accept setpoints
        try:
            await self._resume(pour.record.id, "service")
        except PlantLinkError as err:
            log.warning(
                "pour %s: continuing after the take-over failed: %s", pour.record.id, err.code
            )

    def _track_stuck(self, snap: PlantSnapshot, now_mono: float) -> None:
        """Flag a noisy measurement whose value has not moved for ``stuck_after_s``
        (plant seconds) while the plant runs; it counts as bad until it moves again."""
        mode = snap.measurements.get("plant_mode")
        running = mode is not None and mode.quality is Quality.GOOD and mode.value == MODE_RUNNING
        stuck: set[str] = set()
        for tag in NOISY_TAGS:
            m = snap.measurements.get(tag)
            if m is None or m.quality is not Quality.GOOD or not running:
                self._unchanged.pop(tag, None)
                continue
            last = self._unchanged.get(tag)
            if last is None or last[0] != m.value:
                self._unchanged[tag] = (m.value, now_mono)
                continue
            if (now_mono - last[1]) * self._scale >= self.config.stuck_after_s:
                stuck.add(tag)
        if stuck != self.stuck:
            for tag in stuck - self.stuck:
                log.warning(
                    "%s has not changed for %.0f s: treated as a stuck sensor",
                    tag,
                    self.config.stuck_after_s,
                )
            for tag in self.stuck - stuck:
                log.warning("%s moves again", tag)
        self.stuck = frozenset(stuck)

    def _dropout_reason(self, snap: PlantSnapshot, pour: ActivePour, now_mono: float) -> str | None:
        if not snap.connected:
            down_for = now_mono - (self._link_down_since or now_mono)
            if down_for >= self.config.link_loss_pause_wall_s:
                return "plant_link_lost"
            return None
        remote = snap.measurements.get("remote_enabled")
        if remote is not None and remote.quality is Quality.GOOD and remote.value is False:
            return "plc_not_remote"
        mode = snap.measurements.get("plant_mode")
        if mode is not None and mode.quality is Quality.GOOD:
            if mode.value == MODE_FAULT:
                return "plc_fault"
            if pour.plant_was_running and mode.value != MODE_RUNNING:
                return "plc_stopped"
        requested = pour.run_requested_mono
        waited_s = None if requested is None else (now_mono - requested) * self._scale
        if not pour.plant_was_running and waited_s is not None:
            return "plc_did_not_start" if waited_s >= self.config.start_timeout_s else None
        return None

    def _measurement(self, snap: PlantSnapshot, tag: str) -> law.Measurement:
        m = snap.measurements.get(tag)
        if m is None or m.quality is not Quality.GOOD or isinstance(m.value, bool):
            return law.BAD
        if tag in self.stuck:
            return law.BAD
        if not isinstance(m.value, int | float):
            return law.BAD
        return law.Measurement(float(m.value))

    def _paste_density(self, snap: PlantSnapshot, pour: ActivePour) -> law.Measurement:
        """The paste density as control uses it: an approved gauge bias taken off."""
        m = self._measurement(snap, "paste_density_pv")
        if not m.usable or pour.correction is None:
            return m
        return law.Measurement(corrected_density_kg_m3(m.value, pour.correction))

    @staticmethod
    def _mode_is(snap: PlantSnapshot, mode: int) -> bool:
        m = snap.measurements.get("plant_mode")
        return m is not None and m.quality is Quality.GOOD and m.value == mode

    @staticmethod
    def _flag(snap: PlantSnapshot, tag: str) -> bool:
        m = snap.measurements.get(tag)
        return m is not None and m.quality is Quality.GOOD and m.value is True

    def _inputs(self, snap: PlantSnapshot, pour: ActivePour) -> law.ControlInputs:
        components = pour.recipe.component_names
        mode = snap.measurements.get("plant_mode")
        plant_running = (
            mode is not None and mode.quality is Quality.GOOD and mode.value == MODE_RUNNING
        )
        current: law.Setpoints | None = None
        if snap.setpoints:
            written = {
                tag: float(sp.value)
                for tag, sp in snap.setpoints.items()
                if tag in law.SETPOINT_TAGS and not isinstance(sp.value, bool)
            }
            if written:
                current = law.Setpoints.from_tags(written)
        flow = pour.record.paste_flow_m3_h
        limit = None if pour.context is None else pour.context.paste_flow_limit_m3_h()
        return law.ControlInputs(
            recipe=pour.recipe,
            # The stage's rise rate bounds the paste flow (rise = flow / plan area).
            paste_flow_request_m3_h=flow if limit is None else min(flow, limit),
            tailings_flow_m3_h=self._measurement(snap, "tailings_flow_pv"),
            tailings_density_kg_m3=self._measurement(snap, "tailings_density_pv"),
            paste_density_kg_m3=self._paste_density(snap, pour),
            binder_rates_t_h={c: self._measurement(snap, f"{c}_rate_pv") for c in components},
            refilling=frozenset(c for c in components if self._flag(snap, f"{c}_refill")),
            faulted=frozenset(c for c in components if self._flag(snap, f"{c}_fault")),
            pour_running=True,
            remote_enabled=self._flag(snap, "remote_enabled"),
            plant_running=plant_running,
            current_setpoints=current,
        )

    async def _write_cycle(
        self,
        pour: ActivePour,
        *,
        reason: str,
        role: str,
        output: law.ControlOutput | None = None,
        force: bool = False,
        divert_to_dump: bool | None = None,
    ) -> None:
        """Write the law's setpoints (and run_request, and the diverter's command when
        the plant has one) when they changed enough, or every ``write_refresh_s``; on
        start/resume compute a first output now (a start goes to the dump first)."""
        if output is None:
            snap = self._link.snapshot()
            inputs = self._inputs(snap, pour)
            pour.control, output = law.step(pour.control, inputs, self.config.control, 0.0)
            self._last_output = output
        # Only the setpoints this plant has: a plant without a fly ash feeder has no
        # flyash_rate_sp (a recipe that needs a missing feeder is refused at start).
        mapped = self._link.setpoint_tags
        values: dict[str, SetpointValue] = {
            tag: value for tag, value in output.setpoints.as_tags().items() if tag in mapped
        }
        values["run_request"] = True
        if guards.diverter_installed(self._link.snapshot(), mapped):
            values[dv.DIVERT_SP_TAG] = True if divert_to_dump is None else divert_to_dump
        if not force and not self._changed(values):
            return
        await self._write(values, pour_id=pour.record.id, reason=reason, role=role)

    def _changed(self, values: Mapping[str, SetpointValue]) -> bool:
        if self._monotonic() - self._last_write_mono >= self.config.write_refresh_s / self._scale:
            return True
        for tag, value in values.items():
            old = self._last_written.get(tag)
            if old is None or type(old) is not type(value):
                return True
            if isinstance(value, bool):
                if value != old:
                    return True
                continue
            span = self.config.control.limit(tag).maximum if tag in law.SETPOINT_TAGS else 1.0
            if abs(float(value) - float(old)) > 1e-3 * max(span, 1.0):
                return True
        return False

    def _evaluate_alarms(
        self,
        snap: PlantSnapshot,
        pour: ActivePour | None,
        inputs: law.ControlInputs | None,
        output: law.ControlOutput | None,
        stope: Mapping[law.AlarmCode, law.Condition],
    ) -> None:
        pressure = self._measurement(snap, "pump_pressure_pv")
        producing = output is not None and output.mode is law.ControlMode.ACTIVE
        recipe = pour.recipe if pour is not None else None
        conditions = law.detect(
            solids_fraction_target=recipe.solids_fraction if recipe else math.nan,
            binder_ratio_target=recipe.binder_ratio if recipe else math.nan,
            measured_solids_fraction=output.measured_solids_fraction if output else None,
            measured_binder_ratio=output.measured_binder_ratio if output else None,
            pump_pressure_kpa=pressure.value if pressure.usable else None,
            faulted_feeders=inputs.faulted if inputs else frozenset(),
            link_up=snap.connected,
            stale_inputs=output.stale_inputs if output else (),
            recipe_unreachable=output.recipe_unreachable if output else False,
            remote_enabled=self._flag(snap, "remote_enabled"),
            producing=producing,
            config=self.config.alarms,
        )
        conditions.update(stope if snap.connected else {})
        conditions.update(
            ins.fallback_conditions(self._fallback, None if pour is None else pour.binder)
        )
        balance = None if self.balance is None else self.balance.condition()
        if balance is not None:
            conditions[law.AlarmCode.INSTRUMENTS_DISAGREE] = balance
        new_book = law.evaluate(self._alarms, conditions, self._clock(), self.config.alarms)
        for change in law.changes(self._alarms, new_book):
            log.warning("alarm %s", change)
        self._alarms = new_book
        counts: dict[str, float] = {}
        for alarm in new_book.annunciated():
            if alarm.active:
                counts[alarm.severity.value] = counts.get(alarm.severity.value, 0.0) + 1
        for severity in law.Severity:
            self._metrics.alarms_active.set(
                counts.get(severity.value, 0.0), severity=severity.value
            )

    async def _checkpoint(self, pour: ActivePour) -> None:
        pour.last_checkpoint_wall = self._monotonic()
        await self._persist(pour)

    async def _persist(self, pour: ActivePour) -> None:
        """Queue the pour's record (state, times, totals, interruptions) for the store
        writer task. The control cycle never waits on the database: while the store is
        down the newest values wait in memory and go out as soon as it answers.

        It waits for nothing: a caller that changes the record and queues it with no
        wait between is safe from a write of the older record under way, whose answer
        the writer keeps only if nothing was queued since (``checkpoint_seq``)."""
        pour.checkpoint_seq += 1
        self._unsaved[pour.record.id] = pour
        self._store_wanted.set()

    async def _store_writer(self) -> None:
        """Writes queued pour records and audit entries, in order; retries every
        second while the store is down."""
        while True:
            if self._store_down:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._store_wanted.wait()
            else:
                await self._store_wanted.wait()
            self._store_wanted.clear()
            try:
                await self._flush_unsaved()
            except Exception:  # a loop boundary: record it, keep writing
                log.exception("store writer failed")
                self._store_down = True

    async def _flush_unsaved(self) -> None:
        async with self._flush_lock:
            await self._flush_unsaved_locked()

    async def _flush_unsaved_locked(self) -> None:
        """Write queued pour records, then audit entries (the caller holds the flush lock)."""
        for pour_id, pour in list(self._unsaved.items()):
            seq = pour.checkpoint_seq
            try:
                stored = await self._store.update_pour(
                    pour_id,
                    state=pour.record.state,
                    started_at=pour.record.started_at,
                    ended_at=pour.record.ended_at,
                    totals=_totals_record(pour.totals),
                    interruptions=pour.interruptions,
                    checkpoint_seq=seq,
                )
            except StoreUnavailable as err:
                if not self._store_down:
                    log.warning("store unavailable, pour records kept in memory: %s", err)
                    self._store_down = True
                return
            if pour.checkpoint_seq == seq:  # nothing newer was queued meanwhile
                pour.record = stored
                if self._unsaved.get(pour_id) is pour:
                    del self._unsaved[pour_id]
        await self._flush_audit()
        if self._store_down and not self._unsaved and not self._audit_outbox:
            log.warning("store reachable again: buffered records and audit entries written")
            self._store_down = False

    async def _flush_audit(self) -> None:
        while self._audit_outbox:
            entry = self._audit_outbox[0]
            try:
                await self._store.append_audit(**entry)
            except StoreUnavailable as err:
                if not self._store_down:
                    log.warning("store unavailable, audit entries kept in memory: %s", err.detail)
                    self._store_down = True
                return
            self._audit_outbox.popleft()
