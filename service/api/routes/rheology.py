"""Pumpability: rheology calibrations from the mine's own slump or vane tests, and the
yield stress, slump and line pressure of a paste they predict."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from service.api.deps import EngineerDep, PathId, RuntimeDep, StoreDep
from service.api.routes import api_router
from service.api.schemas.rheology import (
    PipeFlowPublic,
    PipelineIn,
    RheologyCalibrationCreate,
    RheologyCalibrationPublic,
    RheologyPredictionPublic,
    RheologyPredictRequest,
    RheologyTestPublic,
    SlackStretchPublic,
)
from service.core import rheology as rh
from service.core.people import actor_of
from service.core.slack_flow import LineSection
from service.errors import InvalidInput, NotFound, OutsideCalibrationRange
from service.operations.calibrations import CalibrationCache, Loaded
from service.operations.rheology import fit_rheology_calibration, test_dict, test_of
from service.store.records import CalibrationRecord
from service.store.repository import Store

router = api_router("pumpability")
URL = "/rheology/calibrations"


async def get_rheology_cache(runtime: RuntimeDep) -> CalibrationCache[rh.RheologyModel]:
    return runtime.rheologies


RheologyCacheDep = Annotated[CalibrationCache[rh.RheologyModel], Depends(get_rheology_cache)]


def pipeline_of(line: PipelineIn) -> rh.PipeLine:
    return rh.PipeLine(
        line.length_m,
        line.inner_diameter_m,
        line.static_head_m,
        line.flow_m3_h,
        tuple(LineSection(s.length_m, s.rise_m) for s in line.sections or ()),
    )


def pipe_flow_public(flow: rh.PipeFlow) -> PipeFlowPublic:
    return PipeFlowPublic(
        pump_pressure_kpa=flow.pump_pressure_kpa,
        runs_full=flow.fill.runs_full,
        slack=[
            SlackStretchPublic(from_m=s.from_m, to_m=s.to_m, full_depth_m=s.full_depth_m)
            for s in flow.fill.slack
        ],
        pump_pressure_needed_kpa=flow.fill.pump_pressure_kpa,
        design_condition=flow.fill.design_condition,
        friction_loss_kpa=flow.friction_loss_kpa,
        friction_kpa_per_m=flow.friction_kpa_per_m,
        static_pressure_kpa=flow.static_pressure_kpa,
        wall_shear_stress_pa=flow.wall_shear_stress_pa,
        velocity_m_s=flow.velocity_m_s,
        bingham_reynolds=flow.bingham_reynolds,
        hedstrom=flow.hedstrom,
        critical_reynolds=flow.critical_reynolds,
        laminar=flow.laminar,
        note=flow.note,
    )


def _public(record: CalibrationRecord, model: rh.RheologyModel) -> RheologyCalibrationPublic:
    return RheologyCalibrationPublic(
        id=record.id,
        name=record.name,
        version=record.version,
        created_at=record.created_at,
        created_by=record.created_by,
        approved_by=record.approved_by,
        approved_at=record.approved_at,
        example=record.example,
        label=model.label,
        n_rows=model.fit.n_rows,
        slump_rows=model.fit.slump_rows,
        cylinder_slump_rows=model.fit.cylinder_slump_rows,
        r2_log=model.fit.r2_log,
        rmse_log=model.fit.rmse_log,
        coefficients={
            "intercept": model.intercept,
            "solids": model.solids_coefficient,
            "binder": model.binder_coefficient,
            "viscosity_intercept": model.viscosity_intercept,
            "viscosity_solids": model.viscosity_solids_coefficient,
        },
        plastic_viscosity_pa_s=model.plastic_viscosity_pa_s,
        solids_pct_range=[
            100.0 * model.solids_fraction_range.minimum,
            100.0 * model.solids_fraction_range.maximum,
        ],
        binder_pct_range=[
            100.0 * model.binder_ratio_range.minimum,
            100.0 * model.binder_ratio_range.maximum,
        ],
        tolerance_pct=100.0 * model.range_tolerance,
        rows=[
            RheologyTestPublic.model_validate(
                {**test_dict(test_of(row)), "fitted_yield_stress_pa": fitted}
            )
            for row, fitted in zip(record.rows, model.fit.yield_stress_pa, strict=True)
        ],
    )


async def referenced_rheology(
    store: Store, cache: CalibrationCache[rh.RheologyModel], calibration_id: str | None
) -> Loaded[rh.RheologyModel]:
    """The rheology calibration a request body names (the example when None); one that
    does not exist is a 422 naming ``rheology_calibration_id``."""
    if calibration_id is None:
        return await cache.example(store)
    try:
        return await cache.get(store, calibration_id)
    except NotFound as err:
        raise InvalidInput(
            "rheology_calibration_id",
            f"no rheology calibration with id {calibration_id}",
            code=err.code,
        ) from err


@router.post(URL, status_code=201, response_model=RheologyCalibrationPublic)
async def create_rheology_calibration(
    req: RheologyCalibrationCreate,
    principal: EngineerDep,
    store: StoreDep,
    cache: RheologyCacheDep,
) -> RheologyCalibrationPublic:
    """Fit the tests (yield stress exponential in Cw, Sofra & Boger 2002; each slump
    converted in the mould its row names: the Abrams cone, or a cylinder after Pashias et
    al. 1996) and store them as a new version of ``name``."""
    rows = (
        None
        if req.rows is None
        else [
            rh.RheologyTest(
                solids_fraction=row.solids_pct / 100.0,
                binder_ratio=row.binder_pct / 100.0,
                yield_stress_pa=row.yield_stress_pa,
                slump_mm=row.slump_mm,
                density_kg_m3=row.density_kg_m3,
                plastic_viscosity_pa_s=row.plastic_viscosity_pa_s,
                sample_id=row.sample_id,
                slump_mould=row.slump_mould,
                mould_height_mm=row.mould_height_mm,
            )
            for row in req.rows
        ]
    )
    record, model = await fit_rheology_calibration(
        store,
        name=req.name,
        created_by=principal.role.value,
        approver=actor_of(principal),
        rows=rows,
        csv_text=req.csv,
        plastic_viscosity_pa_s=req.plastic_viscosity_pa_s,
        range_tolerance=req.range_tolerance_pct / 100.0,
    )
    cache.put(record, model)
    return _public(record, model)


@router.get(URL, response_model=list[RheologyCalibrationPublic])
async def list_rheology_calibrations(
    store: StoreDep, cache: RheologyCacheDep
) -> list[RheologyCalibrationPublic]:
    records = await store.list_calibrations(rheology=True)
    return [_public(r, (await cache.get(store, r.id)).model) for r in records]


@router.get(URL + "/{calibration_id}", response_model=RheologyCalibrationPublic)
async def get_rheology_calibration(
    calibration_id: PathId, store: StoreDep, cache: RheologyCacheDep
) -> RheologyCalibrationPublic:
    loaded = await cache.get(store, calibration_id)
    return _public(await store.get_calibration(calibration_id, rheology=True), loaded.model)


@router.post(URL + "/{calibration_id}/predict", response_model=RheologyPredictionPublic)
async def predict_rheology(
    calibration_id: PathId,
    req: RheologyPredictRequest,
    store: StoreDep,
    cache: RheologyCacheDep,
) -> RheologyPredictionPublic:
    """Yield stress of a paste, its slump (with its density) in the Abrams cone or a
    cylinder, and, with a pipeline, the pump pressure of laminar Bingham flow
    (Buckingham-Reiner)."""
    loaded = await cache.get(store, calibration_id)
    model = loaded.model
    cw, bw = req.solids_pct / 100.0, req.binder_pct / 100.0
    outside = model.outside(cw, bw)
    if outside and not req.allow_extrapolation:
        raise OutsideCalibrationRange(
            f"{outside[0]} is outside the tested range of this rheology calibration "
            "(allow_extrapolation answers anyway, flagged)",
            variable=outside[0],
            outside=list(outside),
        )
    tau = model.yield_stress_pa(cw, bw)
    viscosity = model.plastic_viscosity(cw) if model.has_viscosity else None
    height = rh.ABRAMS_CONE_HEIGHT_MM if req.mould_height_mm is None else req.mould_height_mm
    slump = (
        None
        if req.density_kg_m3 is None
        else rh.slump_from_yield_stress(tau, req.density_kg_m3, req.slump_mould, height)
    )
    line = None
    if req.pipeline is not None:
        if req.density_kg_m3 is None:
            raise InvalidInput("density_kg_m3", "the line pressure needs the paste density")
        if viscosity is None:
            raise InvalidInput(
                "pipeline",
                "this rheology calibration has no plastic viscosity: no line pressure",
            )
        line = pipe_flow_public(
            rh.pipe_flow(pipeline_of(req.pipeline), req.density_kg_m3, tau, viscosity)
        )
    return RheologyPredictionPublic(
        calibration_id=loaded.id,
        calibration_version=loaded.version,
        example=loaded.example,
        yield_stress_pa=tau,
        plastic_viscosity_pa_s=viscosity,
        slump_mm=slump,
        slump_mould=req.slump_mould,
        mould_height_mm=height,
        line=line,
        extrapolated=bool(outside),
        outside=list(outside),
    )
