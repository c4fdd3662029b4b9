"""Stopes: their geometry (a prism or a survey), fill plans, the pour of the current
stage, holds and their release on evidence, abandoning a stage, closing, and the stope
report. A stope is addressed by its id or its name (a pour's ``stope_id`` is the name)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import Depends, Path, Response

from service.api.deps import EngineerDep, RuntimeDep, ScadaDep
from service.api.routes import api_router
from service.api.routes.samples import LabServiceDep, compliance_public
from service.api.schemas.pours import PourPublic
from service.api.schemas.samples import CompliancePublic
from service.api.schemas.stopes import (
    AbandonIn,
    CloseIn,
    PlanCreate,
    ReleaseIn,
    StagePourCreate,
    StagePourPublic,
    StagePublic,
    StopeCreate,
    StopePublic,
)
from service.core import plans as P
from service.core import stope_report as R
from service.core.people import actor_of
from service.core.stope_limits import check_geometry, check_plan
from service.core.strength_model import StrengthModel
from service.operations import pours as ops
from service.operations.plan_checks import DesignBasis, check_plan_recipes
from service.operations.stope_reports import build_stope_report
from service.operations.stope_views import geometry_view, stope_live, survey_geometry
from service.operations.stopes import StopeService, StopeView
from service.runtime import Runtime

router = api_router("stopes")

StopeRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        pattern=r"^[^/\x00-\x1f\x7f]+$",
        description="The stope's id, or its name.",
    ),
]


async def get_stopes(runtime: RuntimeDep) -> StopeService:
    return runtime.stopes


StopesDep = Annotated[StopeService, Depends(get_stopes)]


async def _geometry(req: StopeCreate) -> tuple[P.StopeGeometry, str]:
    """The stope's geometry, and the field its plan area was given by."""
    if req.survey is not None:
        geometry, _ = await survey_geometry(
            csv_text=req.survey.csv, mesh_b64=req.survey.mesh, mesh_format=req.survey.format
        )
        return geometry, "survey"
    assert req.height_m is not None  # the schema says so
    if req.plan_area_m2 is not None:
        return P.StopeGeometry(req.plan_area_m2, req.height_m), "plan_area_m2"
    if req.volume_m3 is not None:
        geometry = P.StopeGeometry.from_volume(volume_m3=req.volume_m3, height_m=req.height_m)
        return geometry, "volume_m3"
    assert req.length_m is not None and req.width_m is not None
    geometry = P.StopeGeometry.from_dimensions(
        length_m=req.length_m, width_m=req.width_m, height_m=req.height_m
    )
    return geometry, "length_m"


def _stage_public(view: StopeView, live_release: dict[str, Any] | None) -> list[StagePublic]:
    plan, progress = view.plan, view.progress
    if plan is None or progress is None:
        return []
    stages = []
    tops, volumes = plan.top_heights_m, plan.top_volumes_m3
    for i, (stage, state) in enumerate(zip(plan.stages, progress.stages, strict=True)):
        stages.append(
            StagePublic(
                index=i,
                name=stage.name,
                recipe_id=stage.recipe_id,
                top_height_m=tops[i],
                top_volume_m3=volumes[i],
                top_given_by=stage.extent_field,
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
                reason=state.reason,
                release=live_release if i == progress.current else None,
            )
        )
    return stages


async def stope_public(view: StopeView, runtime: Runtime) -> StopePublic:
    """The stope with its live figures (:func:`service.operations.stope_views.stope_live`)."""
    live = await stope_live(
        view,
        runtime.stopes,
        live_totals=runtime.supervisor.live_totals,
        barricade_readings=runtime.barricade_readings,
    )
    geometry = view.stope.geometry
    plan, progress = view.plan, view.progress
    saved = None if progress is None else progress.to_dict()
    tags = view.barricade_tags
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
        stages=_stage_public(view, None if live.release is None else live.release.to_dict()),
        placed_m3=live.placed_m3,
        fill_height_m=live.fill_height_m,
        geometry=geometry_view(geometry),
        plan_area_at_fill_m2=live.area_at_fill_m2,
        barricade_head_m=live.fill_height_m,
        hold_remaining_s=live.hold_remaining_s,
        hold_remaining_wall_s=live.hold_remaining_wall_s,
        active_pour_id=live.active_pour_id,
        rise_rate_m_h=live.rise_rate_m_h,
        paste_flow_limit_m3_h=live.flow_limit_m3_h,
        active_pour_flow=None if live.flow is None else live.flow.to_dict(),
        barricade_tags=None if tags is None else list(tags),
        barricade_pressure_kpa=live.barricades_kpa,
        closed_reason=None if progress is None else progress.closed_reason,
        clock={
            "stage_times": P.CLOCK,
            "plant_now": live.plant_now,
            "plant_speed": live.plant_speed,
        },
        switch_points=[] if saved is None else list(saved.get("switch_points", [])),
        history=[] if saved is None else list(saved.get("history", [])),
    )


@router.post("/stopes", status_code=201, response_model=StopePublic)
async def create_stope(
    req: StopeCreate, who: EngineerDep, stopes: StopesDep, runtime: RuntimeDep
) -> StopePublic:
    """A stope: its geometry within the site's plausible ranges (``BACKFILL_STOPES__*``;
    422 ``stope_implausible`` naming the field and the limit): a prism, or its survey (a
    volume-height table, or a closed survey mesh sliced into one: 422 ``survey_invalid``,
    ``mesh_not_closed``, ``mesh_not_manifold`` or ``mesh_not_oriented`` naming the
    problem); its barricade tags (in the tag map, no other open stope's)."""
    geometry, area_field = await _geometry(req)
    check_geometry(geometry, runtime.stope_limits, area_field=area_field)
    view = await stopes.create_stope(
        name=req.name,
        geometry=geometry,
        barricade_rating_kpa=req.barricade_rating_kpa,
        barricade_high_fraction=req.barricade_high_alarm_pct / 100.0,
        barricade_tags=req.barricade_tags,
        by=who.role.value,
    )
    return await stope_public(view, runtime)


@router.get("/stopes", response_model=list[StopePublic])
async def list_stopes(stopes: StopesDep, runtime: RuntimeDep) -> list[StopePublic]:
    return [await stope_public(v, runtime) for v in await stopes.views()]


@router.get("/stopes/{stope_id}", response_model=StopePublic)
async def get_stope(stope_id: StopeRef, stopes: StopesDep, runtime: RuntimeDep) -> StopePublic:
    return await stope_public(await stopes.view(stope_id), runtime)


@router.post("/stopes/{stope_id}/plans", response_model=StopePublic)
async def add_plan(
    stope_id: StopeRef,
    req: PlanCreate,
    who: EngineerDep,
    stopes: StopesDep,
    runtime: RuntimeDep,
) -> StopePublic:
    """A new version of the stope's fill plan (a plan in progress keeps its progress:
    finished stages and a started stage's recipe cannot change; abandon a stage that
    cannot be poured first). Every stage within the site's plausible ranges
    (``BACKFILL_STOPES__*``: rise rate, hold, its own height and volume; no hold a
    continuous plan would skip): 422 ``plan_implausible``. A top given as a height is
    the stope's volume at it, on its curve."""
    stages = [
        P.Stage(
            name=s.name,
            recipe_id=s.recipe_id,
            max_rise_rate_m_h=s.max_rise_rate_m_h,
            cure_hold_h=s.cure_hold_h,
            top_height_m=s.top_height_m,
            top_volume_m3=s.top_volume_m3,
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
    design = runtime.settings.design
    checks = await check_plan_recipes(
        stages,
        runtime.store,
        lambda calibration_id: _model(runtime, calibration_id),
        await runtime.plant_profiles.profile(),
        DesignBasis(
            design.pass_fraction_pct / 100.0,
            design.confidence_pct / 100.0 if design.basis == "tolerance" else None,
        ),
        unmakeable_reason=req.unmakeable_reason,
    )
    view = await stopes.add_plan(
        stope_id,
        stages,
        continuous=req.continuous,
        by=who.role.value,
        barricade_tags=req.barricade_tags,
    )
    unmakeable = [c.stage for c in checks if not c.makeable]
    if unmakeable:
        await runtime.store.append_audit(
            kind="plan_unmakeable",
            reason="planned_unmakeable",
            role=who.role.value,
            new={"stope_id": view.record.id, "stages": unmakeable},
            detail=req.unmakeable_reason,
        )
    return await stope_public(view, runtime)


async def _model(runtime: Runtime, calibration_id: str) -> StrengthModel:
    return (await runtime.calibrations.get(runtime.store, calibration_id)).model


@router.post("/stopes/{stope_id}/pours", status_code=201, response_model=StagePourPublic)
async def create_stage_pour(
    stope_id: StopeRef,
    req: StagePourCreate,
    who: ScadaDep,
    stopes: StopesDep,
    runtime: RuntimeDep,
) -> StagePourPublic:
    """The pour of the current stage: the stage's recipe, the volume to its top, and
    the flow asked for; ``flow`` says what the stage's rise-rate limit grants of it at
    the fill height now (control holds it there as the fill rises). Start it as any
    pour."""
    record = await stopes.create_stage_pour(
        stope_id,
        paste_flow_m3_h=req.paste_flow_m3_h,
        sample_ids=list(req.sample_ids),
        role=who.role.value,
        actor=actor_of(who),
    )
    view = await stopes.view(stope_id)
    placed = sum(float(p.totals.get("poured_m3", 0.0)) for p in await stopes.pours(record.stope_id))
    flow = stopes.stage_flow(view, record.paste_flow_m3_h, placed)
    return StagePourPublic(
        **PourPublic(**ops.pour_view(record, runtime.supervisor)).model_dump(),
        flow=None if flow is None else flow.to_dict(),
    )


@router.post("/stopes/{stope_id}/release", response_model=StopePublic)
async def release_hold(
    stope_id: StopeRef,
    who: EngineerDep,
    stopes: StopesDep,
    runtime: RuntimeDep,
    req: ReleaseIn | None = None,
) -> StopePublic:
    """Release the stage on hold on evidence: its hold elapsed (409 ``hold_not_elapsed``
    before, saying how long is left), its strength shown by its cylinders or the
    calibration's estimate at its age, its barricade below the site's release fraction
    of its rating (409 ``release_conditions_not_met`` with each condition). With a
    ``reason`` an engineer releases it before; the audit log keeps it."""
    view = await stopes.release(
        stope_id, who.person, role=who.role.value, reason=None if req is None else req.reason
    )
    return await stope_public(view, runtime)


@router.post("/stopes/{stope_id}/abandon", response_model=StopePublic)
async def abandon_stage(
    stope_id: StopeRef, req: AbandonIn, who: EngineerDep, stopes: StopesDep, runtime: RuntimeDep
) -> StopePublic:
    """Abandon the current stage (one that cannot be poured) where the fill is, with a
    reason the audit log keeps: the next stage becomes ready, and a new plan version
    may give the stages after it another recipe. 409 while the stope has an open pour."""
    view = await stopes.abandon(stope_id, who.person, role=who.role.value, reason=req.reason)
    return await stope_public(view, runtime)


@router.post("/stopes/{stope_id}/close", response_model=StopePublic)
async def close_stope(
    stope_id: StopeRef,
    who: EngineerDep,
    stopes: StopesDep,
    runtime: RuntimeDep,
    req: CloseIn | None = None,
) -> StopePublic:
    """Close the stope: a filled one as it is; one not yet filled only with a reason
    (audited). 409 while it has an open pour."""
    view = await stopes.close(
        stope_id, who.person, role=who.role.value, reason=None if req is None else req.reason
    )
    return await stope_public(view, runtime)


@router.get("/stopes/{stope_id}/report")
async def stope_report(
    stope_id: StopeRef, stopes: StopesDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Per stope and per stage: volume placed, dumped and off-spec placed, binder per
    component, Cw and Bw, fill height and barricade pressure against time (wall time,
    each stage over its own window), holds and releases (plant time), cylinders cast."""
    return dataclasses.asdict(
        await build_stope_report(stope_id, stopes, runtime.supervisor, runtime.history)
    )


@router.get(
    "/stopes/{stope_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def stope_report_csv(stope_id: StopeRef, stopes: StopesDep, runtime: RuntimeDep) -> Response:
    view = await stopes.view(stope_id)
    report = await build_stope_report(view.record.id, stopes, runtime.supervisor, runtime.history)
    return Response(
        R.stope_report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="stope-{view.record.id}.csv"'},
    )


@router.get("/stopes/{stope_id}/compliance", response_model=CompliancePublic)
async def stope_compliance(
    stope_id: StopeRef, stopes: StopesDep, lab: LabServiceDep
) -> CompliancePublic:
    """The cylinders of every pour of the stope against the requirements at their ages:
    per stope, per stage and per pour the pass fraction against the design's, each
    judged cylinder, and the notices."""
    view = await stopes.view(stope_id)
    return compliance_public(await lab.stope_compliance(view.record.id))
