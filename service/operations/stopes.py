"""Stopes as the unit of work: their fill plans, the pours of each stage, the plan's
progress as paste is placed, holds and their release, and the stope report.

The pure rules are in ``service.core.plans`` (and the report in
``service.core.stope_report``); this module wires them to the store and to the
supervisor, whose :class:`~service.operations.pour_context.StagePort` it implements.
The progress row is the one mutable record of a stope: it is written by compare-and-set
(a release by an engineer and the plan following a pour cannot undo each other), and
only when something happens (a stage starts, reaches its top, is released), never every
control cycle: the placed volume between events is the pours' own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.core import plans as P
from service.core.control import PourTotals
from service.core.pour_states import PourState
from service.core.recipe_limits import RecipeLimits, check_mix
from service.errors import Conflict
from service.operations.pour_context import PlantClock, PourContext
from service.store.records import PlanRecord, PourRecord, ProgressRecord, StopeRecord
from service.store.repository import Store
from service.store.stopes import StopeStore

log = logging.getLogger(__name__)

_POUR_PAGE = 500


@dataclass(frozen=True)
class StopeView:
    """A stope with its plan in force and its progress (None before the first plan)."""

    record: StopeRecord
    stope: P.Stope
    plan_record: PlanRecord | None
    plan: P.FillPlan | None
    progress: P.PlanProgress | None
    revision: int | None


def stope_of(record: StopeRecord) -> P.Stope:
    d = record.definition
    return P.Stope(
        name=record.name,
        geometry=P.StopeGeometry.from_dict(d["geometry"]),
        barricade_rating_kpa=float(d["barricade_rating_kpa"]),
        barricade_high_fraction=float(d["barricade_high_fraction"]),
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
    ) -> None:
        self._stopes = stopes
        self._allow_unapproved = allow_unapproved
        self._store = store
        self.clock = clock
        self._limits = limits
        self._lock = asyncio.Lock()  # one change of a progress row at a time, here
        # The view of each stope whose pour runs: the control loop asks the plan every
        # cycle and must not read the store each time. Every change made here updates
        # it; a change made elsewhere (the other instance) shows as a revision conflict.
        self._cached: dict[str, StopeView] = {}

    # --- definitions ----------------------------------------------------------------------

    async def create_stope(
        self,
        *,
        name: str,
        geometry: P.StopeGeometry,
        barricade_rating_kpa: float,
        barricade_high_fraction: float,
        by: str,
    ) -> StopeView:
        stope = P.Stope(name, geometry, barricade_rating_kpa, barricade_high_fraction)
        record = await self._stopes.add_stope(
            name=name,
            definition={
                "geometry": geometry.to_dict(),
                "barricade_rating_kpa": stope.barricade_rating_kpa,
                "barricade_high_fraction": stope.barricade_high_fraction,
            },
            created_by=by,
        )
        return StopeView(record, stope, None, None, None, None)

    async def view(self, stope_id: str) -> StopeView:
        """The stope as stored now (refreshes the cached view)."""
        view = await self._read(stope_id)
        self._cached[view.record.name] = view
        return view

    async def _read(self, stope_id: str) -> StopeView:
        record = await self._stopes.get_stope(stope_id)
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
        self, stope_id: str, stages: Sequence[P.Stage], *, continuous: bool, by: str
    ) -> StopeView:
        """A new version of the stope's plan. Every stage's recipe must exist, lie in
        the site's plausible ranges and be approved (unless the site allows otherwise);
        a plan in progress carries its progress over (finished stages and started
        recipes cannot change)."""
        async with self._lock:
            current = await self.view(stope_id)
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
            plan = P.FillPlan(current.stope.geometry, tuple(stages), continuous, version)
            now = self.clock.now()
            if current.plan is None or current.progress is None:
                progress = P.start_plan(plan)
            else:
                progress = P.adopt_revision(current.progress, current.plan, plan, by, now)
            await self._stopes.add_plan(
                stope_id=stope_id,
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
    ) -> PourRecord:
        """The pour of the stope's current stage: its recipe, the volume to the stage's
        top, and a paste flow that holds the stage's rise rate. One open pour per stope:
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
                    f"stage {plan.stages[index].name!r} is full", code="stage_not_ready",
                    state="full",
                )  # fmt: skip
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
                    paste_flow_m3_h=P.rise_rate_limited_flow_m3_h(
                        paste_flow_m3_h, stage.max_rise_rate_m_h, plan.geometry.plan_area_m2
                    ),
                    created_by=role,
                    totals=PourTotals().summary(),
                    sample_ids=list(sample_ids),
                    plan_id=view.plan_record.id,
                    stage=index,
                    state="planned" if handing_over is None else PourState.RUNNING.value,
                    started_at=None if handing_over is None else self.clock.now(),
                    guard=claim,
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
        return PourContext(
            stope=stope.name,
            stage=record.stage,
            stage_name=name,
            plan_area_m2=view.stope.geometry.plan_area_m2,
            barricade_rating_kpa=view.stope.barricade_rating_kpa,
            barricade_high_fraction=view.stope.barricade_high_fraction,
            max_rise_rate_m_h=rise,
            placed_before_m3=_placed(others),
            plan_version=None if view.plan is None else view.plan.version,
            stage_state=stage_state,
        )

    async def started(self, record: PourRecord) -> None:
        """The pour's stage starts filling (if it was only ready)."""
        if record.plan_id is None:
            return

        def start(view: StopeView) -> P.PlanProgress | None:
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
            progress, events = P.on_volume(view.progress, view.plan, total, self.clock.now())
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

    # --- holds ----------------------------------------------------------------------------

    async def release(self, stope_id: str, by: str) -> StopeView:
        def do(view: StopeView) -> P.PlanProgress:
            assert view.progress is not None and view.plan is not None
            return P.release(view.progress, view.plan, by, self.clock.now())

        await self._change(stope_id, do, required=True)
        return await self.view(stope_id)

    async def close(self, stope_id: str, by: str) -> StopeView:
        def do(view: StopeView) -> P.PlanProgress:
            assert view.progress is not None and view.plan is not None
            return P.close(view.progress, view.plan, by, self.clock.now())

        await self._change(stope_id, do, required=True)
        return await self.view(stope_id)

    # --- internals ------------------------------------------------------------------------

    async def _change(
        self,
        stope: str,
        change: Any,
        *,
        required: bool = False,
    ) -> None:
        """Apply ``change`` (view -> new progress, or None for nothing) and store it by
        compare-and-set; ``stope`` is an id, or a stope's name for a pour's record."""
        async with self._lock:
            for _ in range(5):
                found = await self._stopes.stope_named(stope)
                view = await self.view(found.id if found is not None else stope)
                if view.plan is None or view.progress is None:
                    if required:
                        raise Conflict(
                            f"stope {view.record.name!r} has no fill plan", code="plan_not_found"
                        )
                    return
                progress = change(view)
                if progress is None:
                    return
                try:
                    await self._save(view, progress)
                    return
                except Conflict as err:
                    if err.code != "plan_progress_conflict":
                        raise
            raise Conflict("the plan progress kept changing; try again", code="plan_busy")

    async def _save(self, view: StopeView, progress: P.PlanProgress) -> ProgressRecord:
        assert view.plan_record is not None and view.revision is not None
        saved = await self._stopes.save_progress(
            view.record.id, view.plan_record.id, progress.to_dict(), view.revision
        )
        self._cached[view.record.name] = StopeView(
            view.record, view.stope, view.plan_record, view.plan, progress, saved.revision
        )
        return saved


def _not_ready(stope: str, stage: str, progress: P.PlanProgress) -> str:
    """Why a stage takes no pour now, and what to do instead."""
    if progress.closed_at is not None:
        return f"stope {stope!r} is closed: no pour"
    state = progress.current_stage.state
    if state is P.StageState.CURING:
        return (
            f"stage {stage!r} of stope {stope!r} is curing: its hold must elapse and an "
            "engineer release it (POST /api/v1/stopes/{id}/release) before the next pour"
        )
    return f"stage {stage!r} of stope {stope!r} is {state.value}: no pour now"


def _placed(pours: Sequence[PourRecord]) -> float:
    """Stope volume placed by ``pours`` (their stored totals; dumped paste excluded)."""
    return sum(float(p.totals.get("poured_m3", 0.0)) for p in pours)
