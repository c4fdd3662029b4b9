"""Stopes as the unit of work: their fill plans, the pours of each stage, the plan's
progress as paste is placed, holds and their release, and the stope report.

The pure rules are in ``service.core.plans`` (the plan's progress), ``service.core
.plan_acts`` (an engineer's release, abandonment, closing, new version) and
``service.core.fill_plan`` (the stope, its curve, its barricades); this module wires
them to the store and to the supervisor, whose
:class:`~service.operations.pour_context.StagePort` it implements. The progress row is
the one mutable record of a stope: it is written by compare-and-set (a release by an
engineer and the plan following a pour cannot undo each other), and only when
something happens (a stage starts, reaches its top, is released), never every control
cycle: the placed volume between events is the pours' own. An engineer's act on a
plan is stored with its audit entry in one transaction.

A stope is addressed by its id or by its name (a pour's ``stope_id`` holds the name;
names are unique and no name is another stope's id). Its plan's times are plant time;
the pours it makes keep wall time, as every pour does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from service.core import plan_acts as A
from service.core import plans as P
from service.core.control import PourTotals
from service.core.fill_plan import check_barricade_tags
from service.core.people import Actor
from service.core.pour_states import PourState
from service.core.recipe_limits import RecipeLimits, check_mix
from service.core.release_conditions import ReleaseAssessment
from service.core.rise_rate import RiseRateMeter, rise_rate_limited_flow_m3_h
from service.errors import Conflict, InvalidInput, NotFound
from service.operations.pour_context import PlantClock, PourContext
from service.store.records import PlanRecord, PourRecord, ProgressRecord, StopeRecord
from service.store.repository import Store
from service.store.stopes import StopeStore

log = logging.getLogger(__name__)

_POUR_PAGE = 500


_OPEN_POUR_STATES = ("planned", "running", "paused")


@dataclass(frozen=True)
class StopeView:
    """A stope with its plan in force and its progress (None before the first plan)."""

    record: StopeRecord
    stope: P.Stope
    plan_record: PlanRecord | None
    plan: P.FillPlan | None
    progress: P.PlanProgress | None
    revision: int | None

    @property
    def barricade_tags(self) -> tuple[str, ...] | None:
        """The barricades in force: the plan's when it names them, else the stope's
        (None: a stope stored before barricades belonged to stopes: every one)."""
        return self.stope.barricades(self.plan)

    @property
    def closed(self) -> bool:
        return self.progress is not None and self.progress.closed_at is not None


@dataclass(frozen=True)
class StageFlow:
    """A stage pour's paste flow: the one asked for and the one its stage's rise-rate
    limit grants where the fill is now (max rise x the plan area there)."""

    requested_m3_h: float
    granted_m3_h: float
    max_rise_rate_m_h: float
    area_m2: float
    fill_height_m: float

    @property
    def limited(self) -> bool:
        return self.granted_m3_h < self.requested_m3_h

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested_m3_h": self.requested_m3_h,
            "granted_m3_h": self.granted_m3_h,
            "limited_by_rise_rate": self.limited,
            "max_rise_rate_m_h": self.max_rise_rate_m_h,
            "plan_area_m2": self.area_m2,
            "at_fill_height_m": self.fill_height_m,
            "detail": (
                f"{self.requested_m3_h:g} m3/h asked; the stage's rise-rate limit of "
                f"{self.max_rise_rate_m_h:g} m/h over {self.area_m2:.2f} m2 at "
                f"{self.fill_height_m:.2f} m grants {self.granted_m3_h:.2f} m3/h (it follows "
                "the plan area as the fill rises)"
                if self.limited
                else f"{self.requested_m3_h:g} m3/h asked, within the stage's rise-rate limit"
            ),
        }


class ReleaseEvidencePort(Protocol):
    async def assess(self, view: StopeView, now: datetime) -> ReleaseAssessment | None:
        """The release conditions of the stope's stage on hold (None: none on hold)."""
        ...


def stope_of(record: StopeRecord) -> P.Stope:
    d = record.definition
    tags = d.get("barricade_tags")
    return P.Stope(
        name=record.name,
        geometry=P.StopeGeometry.from_dict(d["geometry"]),
        barricade_rating_kpa=float(d["barricade_rating_kpa"]),
        barricade_high_fraction=float(d["barricade_high_fraction"]),
        barricade_tags=None if tags is None else tuple(str(t) for t in tags),
    )


class StopeService:
    """Stopes, plans and the running of their stages (see the module docstring)."""

    def __init__(
        self,
        *,
        stopes: StopeStore,
        store: Store,
        clock: PlantClock,
        limits: RecipeLimits,
        allow_unapproved: bool = False,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        plant_tags: Callable[[], frozenset[str]] | None = None,
        rise_window_s: float = 600.0,
    ) -> None:
        self._stopes = stopes
        self._allow_unapproved = allow_unapproved
        self._store = store
        self.clock = clock
        self.wall = wall
        self._limits = limits
        self._plant_tags = plant_tags
        self._rise_window_s = rise_window_s
        self.evidence: ReleaseEvidencePort | None = None
        self._lock = asyncio.Lock()  # one change of a progress row at a time, here
        # The view of each stope whose pour runs: the control loop asks the plan every
        # cycle and must not read the store each time. Every change made here updates
        # it; a change made elsewhere (the other instance) shows as a revision conflict.
        self._cached: dict[str, StopeView] = {}
        # The rise each stope's fill achieved, from its placed volume (plant time).
        self._meters: dict[str, RiseRateMeter] = {}

    # --- definitions ----------------------------------------------------------------------

    async def create_stope(
        self,
        *,
        name: str,
        geometry: P.StopeGeometry,
        barricade_rating_kpa: float,
        barricade_high_fraction: float,
        barricade_tags: Sequence[str] = (),
        by: str,
    ) -> StopeView:
        """A stope. Its barricade tags must be ones the plant's tag map reads and no
        other open stope's (a barricade belongs to one stope)."""
        try:
            await self._stopes.get_stope(name)
        except NotFound:
            pass
        else:  # a stope is addressed by id or name: no name may be another's id
            raise InvalidInput("name", f"{name!r} is another stope's id: choose another name")
        tags = check_barricade_tags(list(barricade_tags), "barricade_tags")
        await self._check_barricades(tags, "barricade_tags", owner=None)
        stope = P.Stope(name, geometry, barricade_rating_kpa, barricade_high_fraction, tags)
        record = await self._stopes.add_stope(
            name=name,
            definition={
                "geometry": geometry.to_dict(),
                "barricade_rating_kpa": stope.barricade_rating_kpa,
                "barricade_high_fraction": stope.barricade_high_fraction,
                "barricade_tags": list(tags),
            },
            created_by=by,
        )
        return StopeView(record, stope, None, None, None, None)

    async def _check_barricades(
        self, tags: Sequence[str], field: str, *, owner: str | None
    ) -> None:
        """Each tag read by the plant, and held by no other open stope (``owner``: the
        stope that takes them)."""
        known = self._plant_tags() if self._plant_tags is not None else None
        for i, tag in enumerate(tags):
            if known is not None and tag not in known:
                present = sorted(t for t in known if t.startswith("barricade"))
                raise InvalidInput(
                    f"{field}[{i}]",
                    f"the plant's tag map has no {tag!r} (barricade tags it has: "
                    f"{', '.join(present) or 'none'})",
                    code="barricade_not_in_tag_map",
                )
        if not tags:
            return
        for other in await self.views():
            if other.record.id == owner or other.closed:
                continue
            held = set(other.barricade_tags or ())
            for i, tag in enumerate(tags):
                if tag in held:
                    raise Conflict(
                        f"barricade {tag!r} belongs to stope {other.record.name!r}, which is "
                        "not closed: choose this stope's own barricade, or close that stope "
                        "first",
                        code="barricade_in_use",
                        field=f"{field}[{i}]",
                        stope_id=other.record.id,
                    )

    async def view(self, stope_id: str) -> StopeView:
        """The stope as stored now, by id or name (refreshes the cached view)."""
        view = await self._read(stope_id)
        self._cached[view.record.name] = view
        return view

    async def _read(self, ref: str) -> StopeView:
        record = await self._stopes.resolve(ref)
        stope_id = record.id
        progress = await self._stopes.get_progress(stope_id)
        if progress is None:
            return StopeView(record, stope_of(record), None, None, None, None)
        plan_record = await self._stopes.get_plan(progress.plan_id)
        return StopeView(
            record,
            stope_of(record),
            plan_record,
            P.FillPlan.from_dict(plan_record.plan),
            P.PlanProgress.from_dict(progress.progress),
            progress.revision,
        )

    async def views(self) -> list[StopeView]:
        return [await self.view(r.id) for r in await self._stopes.list_stopes()]

    async def add_plan(
        self,
        stope_id: str,
        stages: Sequence[P.Stage],
        *,
        continuous: bool,
        by: str,
        barricade_tags: Sequence[str] | None = None,
    ) -> StopeView:
        """A new version of the stope's plan. Every stage's recipe must exist, lie in
        the site's plausible ranges and be approved (unless the site allows otherwise);
        a plan in progress carries its progress over (finished stages and started
        recipes cannot change). ``barricade_tags``: the barricades this plan watches
        (None: the stope's)."""
        async with self._lock:
            current = await self.view(stope_id)
            tags = None
            if barricade_tags is not None:
                tags = check_barricade_tags(list(barricade_tags), "barricade_tags")
                await self._check_barricades(tags, "barricade_tags", owner=current.record.id)
            for i, stage in enumerate(stages):
                recipe = await self._store.get_recipe(stage.recipe_id)
                check_mix(recipe.mix, self._limits, prefix=f"stages[{i}].recipe.")
                if recipe.approved_at is None and not self._allow_unapproved:
                    raise Conflict(
                        f"stage {stage.name!r}: recipe {recipe.name!r} version "
                        f"{recipe.version} is not approved",
                        code="recipe_not_approved",
                        recipe_id=recipe.id,
                        field=f"stages[{i}].recipe_id",
                    )
            version = 1 if current.plan is None else current.plan.version + 1
            plan = P.FillPlan(current.stope.geometry, tuple(stages), continuous, version, tags)
            now = self.clock.now()
            if current.plan is None or current.progress is None:
                progress = P.start_plan(plan)
            else:
                progress = A.adopt_revision(current.progress, current.plan, plan, by, now)
            await self._stopes.add_plan(
                stope_id=current.record.id,
                plan=plan.to_dict(),
                progress=progress.to_dict(),
                expect_revision=current.revision,
                created_by=by,
            )
        return await self.view(stope_id)

    # --- the pours of a stage -------------------------------------------------------------

    async def pours(self, stope: str) -> list[PourRecord]:
        return await self._store.list_pours(stope=stope, limit=_POUR_PAGE)

    async def create_stage_pour(
        self,
        stope_id: str,
        *,
        paste_flow_m3_h: float,
        sample_ids: Sequence[str],
        role: str,
        handing_over: PourRecord | None = None,
        actor: Actor | None = None,
    ) -> PourRecord:
        """The pour of the stope's current stage: its recipe, the volume to the stage's
        top, and the paste flow asked for, which control holds to the stage's rise rate
        where the fill is (:meth:`stage_flow` says what it grants). One open pour per stope:
        the check and the insert are one transaction that takes the stope's progress
        row, so of callers at once exactly one gets the pour. ``handing_over``: a
        continuous plan's pour whose next stage takes over (the new pour runs at once)."""
        for _ in range(5):
            view = await self.view(stope_id)
            if view.plan is None or view.progress is None or view.plan_record is None:
                raise Conflict(
                    f"stope {view.record.name!r} has no fill plan: an engineer gives it one "
                    f"(POST /api/v1/stopes/{view.record.id}/plans)",
                    code="plan_not_found",
                )
            progress, plan, index = view.progress, view.plan, view.progress.current
            stage_state = progress.current_stage.state
            if progress.closed_at is not None or stage_state not in (
                P.StageState.READY,
                P.StageState.FILLING,
            ):
                raise Conflict(
                    _not_ready(view.record.name, plan.stages[index].name, progress),
                    code="stage_not_ready",
                    state="closed" if progress.closed_at is not None else stage_state.value,
                )
            placed = _placed(await self.pours(view.record.name))
            remaining = plan.top_volumes_m3[index] - placed
            if remaining <= 1e-6:
                raise Conflict(
                    f"stage {plan.stages[index].name!r} is full (the stope holds "
                    f"{placed:.2f} m3, its top is {plan.top_volumes_m3[index]:.2f} m3): an "
                    "engineer abandons it where it is (POST /api/v1/stopes/{id}/abandon), or "
                    "gives it a higher top in a new plan version",
                    code="stage_not_ready",
                    state="full",
                )
            stage = plan.stages[index]
            stope, revision = view.record, view.revision
            assert revision is not None

            claim = functools.partial(
                StopeStore.claim_stage,
                stope_id=stope.id,
                stope_name=stope.name,
                expect_revision=revision,
                handing_over=None if handing_over is None else handing_over.id,
            )
            try:
                return await self._store.add_pour(
                    stope_id=stope.name,
                    recipe_id=stage.recipe_id,
                    target_volume_m3=remaining,
                    # The flow asked for: control holds it to the stage's rise-rate
                    # limit at the plan area where the fill is, cycle by cycle.
                    paste_flow_m3_h=paste_flow_m3_h,
                    created_by=role,
                    totals=PourTotals().summary(),
                    sample_ids=list(sample_ids),
                    plan_id=view.plan_record.id,
                    stage=index,
                    state="planned" if handing_over is None else PourState.RUNNING.value,
                    # A pour's times are wall time, whatever the plant's clock.
                    started_at=None if handing_over is None else self.wall(),
                    guard=claim,
                    actor=actor,
                )
            except Conflict as err:
                if err.code != "plan_progress_conflict":
                    raise
                self._cached.pop(stope.name, None)  # moved meanwhile: read it again
        raise Conflict("the plan progress kept changing; try again", code="plan_busy")

    # --- the StagePort of the supervisor --------------------------------------------------

    async def context_of(self, record: PourRecord) -> PourContext | None:
        stope = await self._stopes.stope_named(record.stope_id)
        if stope is None:
            return None
        view = await self.view(stope.id)
        rise = None
        name = None
        if (
            view.plan is not None
            and record.stage is not None
            and record.stage < len(view.plan.stages)
        ):
            rise = view.plan.stages[record.stage].max_rise_rate_m_h
            name = view.plan.stages[record.stage].name
        others = [p for p in await self.pours(stope.name) if p.id != record.id]
        stage_state = None
        if view.progress is not None and record.stage is not None:
            progress = view.progress
            stage_state = (
                "closed"
                if progress.closed_at is not None
                else progress.stages[record.stage].state.value
                if record.stage == progress.current
                else "not_current"
            )
        geometry = view.stope.geometry if view.plan is None else view.plan.geometry
        before = _placed(others)
        return PourContext(
            stope=stope.name,
            stage=record.stage,
            stage_name=name,
            plan_area_m2=geometry.area_at_volume_m2(before),
            barricade_rating_kpa=view.stope.barricade_rating_kpa,
            barricade_high_fraction=view.stope.barricade_high_fraction,
            max_rise_rate_m_h=rise,
            placed_before_m3=before,
            plan_version=None if view.plan is None else view.plan.version,
            stage_state=stage_state,
            geometry=geometry,
            barricade_tags=view.barricade_tags,
        )

    async def started(self, record: PourRecord) -> None:
        """The pour's stage starts filling (if it was only ready)."""
        if record.plan_id is None:
            return

        async def start(view: StopeView) -> P.PlanProgress | None:
            assert view.progress is not None and view.plan is not None
            if view.progress.current_stage.state is not P.StageState.READY:
                return None
            return P.start_stage(view.progress, view.plan, self.clock.now(), by="service")

        await self._change(record.stope_id, start)

    async def placed(
        self, record: PourRecord, context: PourContext, poured_m3: float
    ) -> Sequence[P.PlanEvent]:
        """The plan's answer to the pour's placed volume (from the cached view: no store
        read in the control loop); its progress is stored only when an event happens
        (a top reached, a switch)."""
        if record.plan_id is None:
            return ()
        async with self._lock:
            view = self._cached.get(context.stope)
            if view is None:
                found = await self._stopes.stope_named(context.stope)
                if found is None:
                    return ()
                view = await self.view(found.id)
            if view.plan is None or view.progress is None:
                return ()
            total = context.placed_before_m3 + poured_m3
            now = self.clock.now()
            self._meters[view.record.name] = self._meter(view).add(now, total)
            progress, events = P.on_volume(view.progress, view.plan, total, now)
            relevant = list(events)
            logged = len(progress.history) != len(view.progress.history)
            if logged or any(
                e.kind is not P.PlanEventKind.PLACED_OUTSIDE_FILLING for e in relevant
            ):
                try:
                    await self._save(view, progress)
                except Conflict as err:  # changed elsewhere: read it again, next cycle
                    if err.code != "plan_progress_conflict":
                        raise
                    await self.view(view.record.id)
                    return ()
                for event in relevant:
                    outside = event.kind is P.PlanEventKind.PLACED_OUTSIDE_FILLING
                    log.log(
                        logging.WARNING if outside else logging.INFO,
                        "stope %s: %s %s",
                        context.stope,
                        event.kind.value,
                        event.detail,
                    )
            else:
                self._cached[context.stope] = StopeView(
                    view.record,
                    view.stope,
                    view.plan_record,
                    view.plan,
                    progress,
                    view.revision,
                )
            return tuple(
                e for e in relevant if e.kind is not P.PlanEventKind.PLACED_OUTSIDE_FILLING
            )

    async def next_pour(self, record: PourRecord, event: P.PlanEvent) -> PourRecord:
        stope = await self._stopes.stope_named(record.stope_id)
        if stope is None:
            raise Conflict(f"no stope {record.stope_id!r}", code="stope_not_found")
        return await self.create_stage_pour(
            stope.id,
            paste_flow_m3_h=record.paste_flow_m3_h,
            sample_ids=(),
            role="service",
            handing_over=record,
        )

    # --- an engineer's acts -----------------------------------------------------------------

    async def assessment(self, view: StopeView) -> ReleaseAssessment | None:
        """The release conditions of the stope's stage on hold, on their evidence now
        (None: no stage on hold, or no evidence wired)."""
        if (
            self.evidence is None
            or view.progress is None
            or view.closed
            or view.progress.current_stage.state is not P.StageState.CURING
        ):
            return None
        return await self.evidence.assess(view, self.clock.now())

    async def release(
        self, stope_id: str, by: str, *, role: str, reason: str | None = None
    ) -> StopeView:
        """Release the stage on hold: on evidence (its release conditions met:
        :mod:`service.core.release_conditions`), or before with a ``reason``. 409
        ``hold_not_elapsed`` / ``release_conditions_not_met`` listing the conditions and
        what to do otherwise. Audited with the evidence as it stood."""
        view = await self.view(stope_id)
        assessment = await self.assessment(view)
        if reason is None and assessment is not None and not assessment.ready:
            raise _not_releasable(view, assessment)

        async def do(current: StopeView) -> P.PlanProgress:
            assert current.progress is not None and current.plan is not None
            return A.release(current.progress, current.plan, by, self.clock.now(), reason=reason)

        def audit(current: StopeView, progress: P.PlanProgress) -> dict[str, Any]:
            assert current.progress is not None and current.plan is not None
            index = current.progress.current
            return _audit_entry(
                "stope_release",
                "override" if reason is not None else "on_evidence",
                role,
                current,
                by,
                reason,
                stage=index,
                release=None if assessment is None else assessment.to_dict(),
            )

        await self._change(view.record.id, do, required=True, audit=audit)
        return await self.view(view.record.id)

    async def abandon(self, stope_id: str, by: str, *, role: str, reason: str) -> StopeView:
        """Abandon the current stage (ready or filling) with a reason, audited: it ends
        where the fill is and the next stage becomes ready. 409 while the stope has an
        open pour (stop it first)."""

        async def do(current: StopeView) -> P.PlanProgress:
            assert current.progress is not None and current.plan is not None
            await self._refuse_open_pour(current, "abandon the stage")
            progress = await self._placed_now(current)
            return A.abandon_stage(progress, current.plan, by, self.clock.now(), reason=reason)

        def audit(current: StopeView, progress: P.PlanProgress) -> dict[str, Any]:
            assert current.progress is not None
            return _audit_entry(
                "stage_abandoned", "abandoned", role, current, by, reason,
                stage=current.progress.current, placed_m3=progress.placed_m3,
            )  # fmt: skip

        view = await self.view(stope_id)
        await self._change(view.record.id, do, required=True, audit=audit)
        return await self.view(view.record.id)

    async def close(
        self, stope_id: str, by: str, *, role: str, reason: str | None = None
    ) -> StopeView:
        """Close the stope: a filled one as it is, an unfilled one only with a reason;
        audited. 409 while it has an open pour (stop it first). Its barricades are then
        free for another stope and it shows no readings."""

        async def do(current: StopeView) -> P.PlanProgress:
            assert current.progress is not None and current.plan is not None
            await self._refuse_open_pour(current, "close the stope")
            progress = await self._placed_now(current)
            return A.close(progress, current.plan, by, self.clock.now(), reason=reason)

        def audit(current: StopeView, progress: P.PlanProgress) -> dict[str, Any]:
            assert current.progress is not None
            return _audit_entry(
                "stope_closed", "closed" if reason is None else "closed_early", role, current,
                by, reason, state=current.progress.stope_state.value,
                placed_m3=progress.placed_m3,
            )  # fmt: skip

        view = await self.view(stope_id)
        await self._change(view.record.id, do, required=True, audit=audit)
        self._meters.pop(view.record.name, None)
        return await self.view(view.record.id)

    async def _placed_now(self, view: StopeView) -> P.PlanProgress:
        """The progress with the volume the stope's pours placed (the progress row holds
        the volume of its last event; the ended pours' totals are the record)."""
        assert view.progress is not None and view.plan is not None
        placed = _placed(await self.pours(view.record.name))
        progress, _ = P.on_volume(view.progress, view.plan, placed, self.clock.now())
        return progress

    async def _refuse_open_pour(self, view: StopeView, act: str) -> None:
        for pour in await self.pours(view.record.name):
            if pour.state in _OPEN_POUR_STATES:
                raise Conflict(
                    f"stope {view.record.name!r} has pour {pour.id} ({pour.state}): stop it "
                    f"first (POST /api/v1/pours/{pour.id}/stop), then {act}",
                    code="stope_pour_open",
                    pour_id=pour.id,
                )

    # --- what the stope shows -------------------------------------------------------------

    def _meter(self, view: StopeView) -> RiseRateMeter:
        meter = self._meters.get(view.record.name)
        geometry = view.stope.geometry if view.plan is None else view.plan.geometry
        if meter is None or meter.geometry != geometry:
            meter = RiseRateMeter(geometry=geometry, window_s=self._rise_window_s)
        return meter

    def rise_rate_m_h(self, view: StopeView) -> float | None:
        """The rise the fill achieved over the last window, from the stope's placed
        volume (plant time): paste sent to the dump does not raise it."""
        meter = self._meters.get(view.record.name)
        if meter is None or view.closed:
            return None
        return meter.held(self.clock.now()).rise_rate_m_h

    def stage_flow(
        self, view: StopeView, requested_m3_h: float, placed_m3: float
    ) -> StageFlow | None:
        """What the current stage's rise-rate limit grants a pour asking
        ``requested_m3_h`` with ``placed_m3`` in the stope (None without a plan)."""
        if view.plan is None or view.progress is None:
            return None
        stage = view.plan.stages[view.progress.current]
        geometry = view.plan.geometry
        height = geometry.fill_height_m(placed_m3)
        area = geometry.area_at_m2(height)
        granted = rise_rate_limited_flow_m3_h(requested_m3_h, stage.max_rise_rate_m_h, area)
        return StageFlow(requested_m3_h, granted, stage.max_rise_rate_m_h, area, height)

    # --- internals ------------------------------------------------------------------------

    async def _change(
        self,
        stope: str,
        change: Callable[[StopeView], Awaitable[P.PlanProgress | None]],
        *,
        required: bool = False,
        audit: Callable[[StopeView, P.PlanProgress], dict[str, Any]] | None = None,
    ) -> None:
        """Apply ``change`` (view -> new progress, or None for nothing) and store it by
        compare-and-set, with ``audit``'s entry in the same transaction; ``stope`` is
        an id or a name."""
        async with self._lock:
            for _ in range(5):
                view = await self.view(stope)
                if view.plan is None or view.progress is None:
                    if required:
                        raise Conflict(
                            f"stope {view.record.name!r} has no fill plan: an engineer gives "
                            f"it one (POST /api/v1/stopes/{view.record.id}/plans)",
                            code="plan_not_found",
                        )
                    return
                progress = await change(view)
                if progress is None:
                    return
                try:
                    await self._save(
                        view, progress, audit=None if audit is None else audit(view, progress)
                    )
                    return
                except Conflict as err:
                    if err.code != "plan_progress_conflict":
                        raise
            raise Conflict("the plan progress kept changing; try again", code="plan_busy")

    async def _save(
        self,
        view: StopeView,
        progress: P.PlanProgress,
        *,
        audit: dict[str, Any] | None = None,
    ) -> ProgressRecord:
        assert view.plan_record is not None and view.revision is not None
        saved = await self._stopes.save_progress(
            view.record.id, view.plan_record.id, progress.to_dict(), view.revision, audit=audit
        )
        self._cached[view.record.name] = StopeView(
            view.record, view.stope, view.plan_record, view.plan, progress, saved.revision
        )
        return saved


def _audit_entry(
    kind: str,
    why: str,
    role: str,
    view: StopeView,
    by: str,
    reason: str | None,
    **facts: Any,
) -> dict[str, Any]:
    """The audit entry of an engineer's act on a stope's plan."""
    assert view.plan is not None
    stage = facts.get("stage")
    return {
        "kind": kind,
        "reason": why,
        "role": role,
        "person": by,
        "new": {
            "stope_id": view.record.id,
            "stope": view.record.name,
            "plan_version": view.plan.version,
            "stage_name": None if stage is None else view.plan.stages[stage].name,
            "by": by,
            "reason": reason,
            **facts,
        },
        "detail": reason,
    }


def _not_releasable(view: StopeView, assessment: ReleaseAssessment) -> Conflict:
    """The refusal of a release on evidence that is not there yet: every condition not
    met, and what to do instead."""
    unmet = assessment.unmet
    hold = assessment.condition("hold")
    listed = "; ".join(f"{c.kind}: {c.detail}" for c in unmet)
    detail = (
        f"stage {assessment.stage_name!r} of stope {view.record.name!r} is not ready for "
        f"release ({listed}): wait for the evidence, or an engineer releases it now with a "
        'reason ({"reason": ...}), which the audit log keeps'
    )
    extra: dict[str, Any] = {"conditions": [c.to_dict() for c in assessment.conditions]}
    if not hold.met:
        extra["remaining_s"] = hold.figure
        return Conflict(detail, code="hold_not_elapsed", **extra)
    return Conflict(detail, code="release_conditions_not_met", **extra)


def _not_ready(stope: str, stage: str, progress: P.PlanProgress) -> str:
    """Why a stage takes no pour now, and what to do instead."""
    if progress.closed_at is not None:
        return f"stope {stope!r} is closed: no pour; further fill goes to a new stope"
    state = progress.current_stage.state
    if state is P.StageState.CURING:
        return (
            f"stage {stage!r} of stope {stope!r} is curing: once its hold has elapsed and its "
            "release "
            "conditions are met an engineer releases it (POST /api/v1/stopes/{id}/release) "
            "and the next stage takes the pour"
        )
    hint = P.instead(state, P.StageAction.START)
    return f"stage {stage!r} of stope {stope!r} is {state.value}: no pour now" + (
        f"; {hint}" if hint else ""
    )


def _placed(pours: Sequence[PourRecord]) -> float:
    """Stope volume placed by ``pours`` (their stored totals; dumped paste excluded)."""
    return sum(float(p.totals.get("poured_m3", 0.0)) for p in pours)
