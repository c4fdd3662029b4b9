"""Stopes: their fill plans, the pour of the current stage, holds and their release, and
the stope report."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

from fastapi import Depends, Response

from service.api.auth import Principal
from service.api.deps import EngineerDep, PathId, RuntimeDep, ScadaDep
from service.api.routes import api_router
from service.api.routes.samples import LabServiceDep, compliance_public
from service.api.schemas.pours import PourPublic
from service.api.schemas.samples import CompliancePublic
from service.api.schemas.stopes import (
    PlanCreate,
    StagePourCreate,
    StagePublic,
    StopeCreate,
    StopePublic,
)
from service.core import acts
from service.core import plans as P
from service.core import stope_report as R
from service.core.people import actor_of
from service.core.pour_states import PourState
from service.core.stope_limits import check_geometry, check_plan
from service.operations import pours as ops
from service.operations.stope_reports import build_stope_report
from service.operations.stopes import StopeService, StopeView
from service.plant.port import Quality
from service.runtime import Runtime

router = api_router("stopes")
BARRICADE_TAG = "barricade_pressure_pv"  # the one the history keeps


async def get_stopes(runtime: RuntimeDep) -> StopeService:
    return runtime.stopes


StopesDep = Annotated[StopeService, Depends(get_stopes)]


def _geometry(req: StopeCreate) -> tuple[P.StopeGeometry, str]:
    """The stope's geometry, and the field its plan area was given by."""
    if req.plan_area_m2 is not None:
        return P.StopeGeometry(req.plan_area_m2, req.height_m), "plan_area_m2"
    if req.volume_m3 is not None:
        geometry = P.StopeGeometry.from_volume(volume_m3=req.volume_m3, height_m=req.height_m)
        return geometry, "volume_m3"
    assert req.length_m is not None and req.width_m is not None  # the schema says so
    geometry = P.StopeGeometry.from_dimensions(
        length_m=req.length_m, width_m=req.width_m, height_m=req.height_m
    )
    return geometry, "length_m"


async def stope_public(view: StopeView, runtime: Runtime) -> StopePublic:
    """The stope with its live figures: the volume its pours placed (the running one's
    live totals included), the fill height, the rise rate and the barricade now."""
    geometry = view.stope.geometry
    pours = await runtime.stopes.pours(view.record.name)
    placed, active_id = 0.0, None
    for record in pours:
        live = runtime.supervisor.live_totals(record.id)
        placed += live.poured_m3 if live is not None else float(record.totals.get("poured_m3", 0))
        if record.state == PourState.RUNNING.value:
            active_id = record.id
    snap = runtime.link.snapshot()
    rise = None
    paste = snap.measurements.get("paste_flow_pv")
    if active_id is not None and paste is not None and paste.quality is Quality.GOOD:
        value = paste.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            rise = P.rise_rate_m_h(max(float(value), 0.0), geometry.plan_area_m2)
    barricades: dict[str, float | None] = {}
    for tag, m in snap.measurements.items():
        if P.is_barricade_tag(tag):
            value = m.value
            number = (
                float(value)
                if m.quality is not Quality.BAD
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                else math.nan
            )
            barricades[tag] = number if math.isfinite(number) else None
    plan, progress = view.plan, view.progress
    stages: list[StagePublic] = []
    if plan is not None and progress is not None:
        for i, (stage, state) in enumerate(zip(plan.stages, progress.stages, strict=True)):
            stages.append(
                StagePublic(
                    index=i,
                    name=stage.name,
                    recipe_id=stage.recipe_id,
                    top_height_m=plan.top_heights_m[i],
                    top_volume_m3=plan.top_volumes_m3[i],
                    max_rise_rate_m_h=stage.max_rise_rate_m_h,
                    cure_hold_h=stage.cure_hold_h,
                    switch_at_top=stage.switch_at_top,
                    requirements=[r.to_dict() for r in stage.requirements],
                    state=state.state.value,
                    started_at=state.started_at,
                    top_reached_at=state.top_reached_at,
                    hold_ends_at=state.hold_ends_at,
                    released_at=state.released_at,
                    released_by=state.released_by,
                )
            )
    saved = None if progress is None else progress.to_dict()
    return StopePublic(
        id=view.record.id,
        name=view.record.name,
        created_at=view.record.created_at,
        created_by=view.record.created_by,
        plan_area_m2=geometry.plan_area_m2,
        height_m=geometry.height_m,
        volume_m3=geometry.volume_m3,
        barricade_rating_kpa=view.stope.barricade_rating_kpa,
        barricade_high_alarm_pct=100.0 * view.stope.barricade_high_fraction,
        state=P.StopeState.PLANNED.value if progress is None else progress.stope_state.value,
        plan_version=None if plan is None else plan.version,
        continuous=None if plan is None else plan.continuous,
        current_stage=None if progress is None else progress.current,
        stages=stages,
        placed_m3=placed,
        fill_height_m=geometry.fill_height_m(placed),
        hold_remaining_s=(
            None if progress is None else P.hold_remaining_s(progress, runtime.plant_clock.now())
        ),
        active_pour_id=active_id,
        rise_rate_m_h=rise,
        barricade_pressure_kpa=barricades,
        switch_points=[] if saved is None else list(saved.get("switch_points", [])),
        history=[] if saved is None else list(saved.get("history", [])),
    )


@router.post("/stopes", status_code=201, response_model=StopePublic)
async def create_stope(
    req: StopeCreate, who: EngineerDep, stopes: StopesDep, runtime: RuntimeDep
) -> StopePublic:
    """A stope: its geometry within the site's plausible ranges (``BACKFILL_STOPES__*``;
    422 ``stope_implausible`` naming the field and the limit)."""
    geometry, area_field = _geometry(req)
    check_geometry(geometry, runtime.stope_limits, area_field=area_field)
    view = await stopes.create_stope(
        name=req.name,
        geometry=geometry,
        barricade_rating_kpa=req.barricade_rating_kpa,
        barricade_high_fraction=req.barricade_high_alarm_pct / 100.0,
        by=who.role.value,
    )
    return await stope_public(view, runtime)


@router.get("/stopes", response_model=list[StopePublic])
async def list_stopes(stopes: StopesDep, runtime: RuntimeDep) -> list[StopePublic]:
    return [await stope_public(v, runtime) for v in await stopes.views()]


@router.get("/stopes/{stope_id}", response_model=StopePublic)
async def get_stope(stope_id: PathId, stopes: StopesDep, runtime: RuntimeDep) -> StopePublic:
    return await stope_public(await stopes.view(stope_id), runtime)


@router.post("/stopes/{stope_id}/plans", response_model=StopePublic)
async def add_plan(
    stope_id: PathId,
    req: PlanCreate,
    who: EngineerDep,
    stopes: StopesDep,
    runtime: RuntimeDep,
) -> StopePublic:
    """A new version of the stope's fill plan (a plan in progress keeps its progress:
    finished stages and a started stage's recipe cannot change). Every stage within the
    site's plausible ranges (``BACKFILL_STOPES__*``: rise rate, hold, its own height and
    volume; no hold a continuous plan would skip): 422 ``plan_implausible``."""
    stages = [
        P.Stage(
            name=s.name,
            recipe_id=s.recipe_id,
            max_rise_rate_m_h=s.max_rise_rate_m_h,
            cure_hold_h=s.cure_hold_h,
            top_height_m=s.top_height_m,
            stage_volume_m3=s.stage_volume_m3,
            switch_at_top=s.switch_at_top,
            requirements=tuple(
                P.Requirement(r.ucs_kpa, r.curing_days, r.name) for r in s.requirements
            ),
        )
        for s in req.stages
    ]
    geometry = (await stopes.view(stope_id)).stope.geometry
    check_plan(P.FillPlan(geometry, tuple(stages), req.continuous), runtime.stope_limits)
    view = await stopes.add_plan(stope_id, stages, continuous=req.continuous, by=who.role.value)
    return await stope_public(view, runtime)


@router.post("/stopes/{stope_id}/pours", status_code=201, response_model=PourPublic)
async def create_stage_pour(
    stope_id: PathId,
    req: StagePourCreate,
    who: ScadaDep,
    stopes: StopesDep,
    runtime: RuntimeDep,
) -> PourPublic:
    """The pour of the current stage: the stage's recipe, the volume to its top, and a
    paste flow that holds its rise rate. Start it as any pour."""
    record = await stopes.create_stage_pour(
        stope_id,
        paste_flow_m3_h=req.paste_flow_m3_h,
        sample_ids=list(req.sample_ids),
        role=who.role.value,
    )
    return PourPublic(**ops.pour_view(record, runtime.supervisor))


@router.post("/stopes/{stope_id}/release", response_model=StopePublic)
async def release_hold(
    stope_id: PathId, who: EngineerDep, stopes: StopesDep, runtime: RuntimeDep
) -> StopePublic:
    """Release the curing stage once its hold has elapsed (409 ``hold_not_elapsed``
    before, saying how long is left): the next stage may then be poured."""
    view = await stopes.release(stope_id, who.person)
    await runtime.audit.record(_act(who, "release", view))
    return await stope_public(view, runtime)


@router.post("/stopes/{stope_id}/close", response_model=StopePublic)
async def close_stope(
    stope_id: PathId, who: EngineerDep, stopes: StopesDep, runtime: RuntimeDep
) -> StopePublic:
    view = await stopes.close(stope_id, who.person)
    await runtime.audit.record(_act(who, "close", view))
    return await stope_public(view, runtime)


def _act(who: Principal, act: str, view: StopeView) -> dict[str, Any]:
    """The audit entry of a release or close, naming the person (``released_by`` and
    ``closed_by`` in the plan's progress name them too)."""
    progress = view.progress
    assert progress is not None  # the service refused a stope without a plan
    new = {"plan_version": progress.plan_version, "current_stage": progress.current}
    return acts.stope_act(actor_of(who), act, view.record.id, view.record.name, new)


@router.get("/stopes/{stope_id}/report")
async def stope_report(stope_id: PathId, stopes: StopesDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Per stope and per stage: volume placed, dumped and off-spec placed, binder per
    component, Cw and Bw, fill height and barricade pressure against time, holds and
    releases, cylinders cast."""
    return dataclasses.asdict(
        await build_stope_report(stope_id, stopes, runtime.supervisor, runtime.history)
    )


@router.get(
    "/stopes/{stope_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def stope_report_csv(stope_id: PathId, stopes: StopesDep, runtime: RuntimeDep) -> Response:
    report = await build_stope_report(stope_id, stopes, runtime.supervisor, runtime.history)
    return Response(
        R.stope_report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="stope-{stope_id}.csv"'},
    )


@router.get("/stopes/{stope_id}/compliance", response_model=CompliancePublic)
async def stope_compliance(stope_id: PathId, lab: LabServiceDep) -> CompliancePublic:
    """The cylinders of every pour of the stope against the requirements at their ages:
    per stope, per stage and per pour the pass fraction against the design's, each
    judged cylinder, and the notices."""
    return compliance_public(await lab.stope_compliance(stope_id))
