"""Calibration endpoints: upload laboratory cylinders, read fitted models, predict."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from service.api.deps import EngineerDep, PathId, RuntimeDep, StoreDep
from service.api.routes import api_router
from service.api.schemas.calibrations import (
    CalibrationApprove,
    CalibrationCreate,
    CalibrationPublic,
    CalibrationSummaryPublic,
    CylinderPublic,
    DataRangePublic,
    OutsidePublic,
    PredictionPublic,
    PredictRequest,
    ProposalCreate,
    ProposalPublic,
    RangePublic,
    ResidualPublic,
    blend_fractions,
)
from service.core.people import actor_of, approver
from service.core.strength_model import CylinderResult, DataRange, Prediction, StrengthModel
from service.errors import InvalidInput, NotFound
from service.operations.calibrations import (
    CalibrationCache,
    LoadedCalibration,
    calibration_keys,
    fit_calibration,
    model_of,
    propose_calibration,
)
from service.store.records import CalibrationRecord
from service.store.repository import Store

router = api_router("calibrations")


async def get_calibration_cache(runtime: RuntimeDep) -> CalibrationCache[StrengthModel]:
    return runtime.calibrations


CalibrationCacheDep = Annotated[CalibrationCache[StrengthModel], Depends(get_calibration_cache)]
CalibrationId = PathId


# --- mapping to the public schemas ----------------------------------------------------


def _range(data_range: DataRange, scale: float = 100.0) -> RangePublic:
    return RangePublic(min=data_range.minimum * scale, max=data_range.maximum * scale)


def data_range_public(model: StrengthModel) -> DataRangePublic:
    return DataRangePublic(
        binder_pct=_range(model.binder_ratio_range),
        solids_pct=_range(model.solids_fraction_range),
        curing_days=_range(model.curing_days_range, 1.0),
        blend_pct={
            name: _range(r) for name, r in zip(model.components, model.fraction_ranges, strict=True)
        },
        tolerance_pct=model.range_tolerance * 100.0,
    )


def _summary_fields(record: CalibrationRecord, model: StrengthModel) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "version": record.version,
        "created_at": record.created_at,
        "created_by": record.created_by,
        "example": record.example,
        "status": record.status,
        "approved_by": record.approved_by,
        "approved_at": record.approved_at,
        "proposed_from": record.proposed_from,
        "label": model.label,
        "n_rows": model.fit.n_rows,
        "r2_log": model.fit.r2_log,
        "r2_kpa": model.fit.r2_kpa,
        "rmse_log": model.fit.rmse_log,
        "rmse_kpa": model.fit.rmse_kpa,
        "components": list(model.components),
        "range": data_range_public(model),
    }


def calibration_summary(record: CalibrationRecord) -> CalibrationSummaryPublic:
    return CalibrationSummaryPublic(**_summary_fields(record, model_of(record)))


def calibration_public(record: CalibrationRecord, model: StrengthModel) -> CalibrationPublic:
    fit = model.fit
    residuals = [
        ResidualPublic(
            index=index,
            sample_id=row.get("sample_id"),
            measured_kpa=row["ucs_kpa"],
            predicted_kpa=predicted,
            residual_kpa=residual,
            residual_log=residual_log,
        )
        for index, (row, predicted, residual, residual_log) in enumerate(
            zip(record.rows, fit.predicted_kpa, fit.residuals_kpa, fit.residuals_log, strict=True)
        )
    ]
    return CalibrationPublic(
        **_summary_fields(record, model),
        form=str(record.model.get("form", "")),
        reference_component=model.reference_component,
        n_parameters=fit.n_parameters,
        terms=list(model.terms),
        dropped_terms=list(model.dropped_terms),
        coefficients=dict(record.model.get("coefficients", {})),
        residuals=residuals,
        rows=[CylinderPublic.model_validate(row) for row in record.rows],
        proposal=record.proposal,
    )


# --- routes ---------------------------------------------------------------------------


@router.post("/calibrations", status_code=201, response_model=CalibrationPublic)
async def create_calibration(
    req: CalibrationCreate, principal: EngineerDep, store: StoreDep, cache: CalibrationCacheDep
) -> CalibrationPublic:
    """Fit laboratory cylinders and store the model as a new version of ``name``."""
    rows = (
        None
        if req.rows is None
        else [
            CylinderResult(
                blend=blend_fractions(row.blend),
                binder_ratio=row.binder_pct / 100.0,
                solids_fraction=row.solids_pct / 100.0,
                curing_days=row.curing_days,
                ucs_kpa=row.ucs_kpa,
                sample_id=row.sample_id,
            )
            for row in req.rows
        ]
    )
    record, model = await fit_calibration(
        store,
        name=req.name,
        created_by=principal.role.value,
        approver=actor_of(principal),
        rows=rows,
        csv_text=req.csv,
        reference_component=req.reference_component,
        range_tolerance=req.range_tolerance_pct / 100.0,
    )
    cache.put(record, model)
    return calibration_public(record, model)


@router.get("/calibrations", response_model=list[CalibrationSummaryPublic])
async def list_calibrations(store: StoreDep) -> list[CalibrationSummaryPublic]:
    return [calibration_summary(record) for record in await store.list_calibrations()]


@router.get("/calibrations/{calibration_id}", response_model=CalibrationPublic)
async def get_calibration(calibration_id: CalibrationId, store: StoreDep) -> CalibrationPublic:
    record = await store.get_calibration(calibration_id)
    return calibration_public(record, model_of(record))


@router.post(
    "/calibrations/{calibration_id}/proposals", status_code=201, response_model=ProposalPublic
)
async def propose_recalibration(
    calibration_id: CalibrationId,
    req: ProposalCreate,
    principal: EngineerDep,
    store: StoreDep,
    runtime: RuntimeDep,
    cache: CalibrationCacheDep,
) -> ProposalPublic:
    """Refit an approved calibration on its rows plus the laboratory results of the
    cylinders cast from pours whose recipes give the blend and Bw (results it was fitted
    on already are not counted twice), and store the refit as its next version, status
    ``proposed``: each coefficient's change, R2 before and after, and the prediction
    error of the approved model on the new results. It designs nothing until an
    engineer approves it (POST .../approve)."""
    base = await store.get_calibration(calibration_id)
    rows, skipped = await runtime.lab.cylinder_rows(
        use_lab_solids=req.use_lab_solids, known=calibration_keys(base)
    )
    record, model = await propose_calibration(
        store,
        base,
        rows,
        skipped,
        created_by=principal.role.value,
        pass_fraction_pct=runtime.settings.design.pass_fraction_pct,
        use_lab_solids=req.use_lab_solids,
    )
    cache.put(record, model)
    assert record.proposal is not None
    return ProposalPublic.model_validate(
        {**record.proposal, "calibration": calibration_summary(record)}
    )


@router.post("/calibrations/{calibration_id}/approve", response_model=CalibrationPublic)
async def approve_calibration(
    calibration_id: CalibrationId,
    req: CalibrationApprove,
    principal: EngineerDep,
    store: StoreDep,
) -> CalibrationPublic:
    """An engineer approves a proposed calibration version, so that designs may use it;
    recorded in the audit log. A second approval is a 409."""
    record = await store.approve_calibration(
        calibration_id,
        approved_by=approver(principal, req.approved_by),
        actor=actor_of(principal),
    )
    return calibration_public(record, model_of(record))


@router.post("/calibrations/{calibration_id}/predict", response_model=PredictionPublic)
async def predict(
    calibration_id: CalibrationId,
    req: PredictRequest,
    store: StoreDep,
    runtime: RuntimeDep,
    cache: CalibrationCacheDep,
) -> PredictionPublic:
    """Predicted UCS of a mix: the median, the lower bound the pass fraction of cylinders
    is expected to exceed (prediction interval), the one it exceeds with the confidence
    (tolerance bound) and, for a requirement, its expected pass probability. Refused
    outside the tested combinations of the model's regressors unless
    ``allow_extrapolation``, then flagged."""
    loaded = await cache.get(store, calibration_id)
    design = runtime.settings.design
    pass_pct = req.pass_fraction_pct or design.pass_fraction_pct
    confidence_pct = req.confidence_pct or design.confidence_pct
    prediction = loaded.model.predict(
        blend_fractions(req.blend),
        req.binder_pct / 100.0,
        req.solids_pct / 100.0,
        req.curing_days,
        allow_extrapolation=req.allow_extrapolation,
        pass_fraction=pass_pct / 100.0,
        confidence=confidence_pct / 100.0,
    )
    return prediction_public(loaded, prediction, req.curing_days, pass_pct, req.required_ucs_kpa)


def prediction_public(
    loaded: LoadedCalibration,
    prediction: Prediction,
    curing_days: float,
    pass_fraction_pct: float,
    required_ucs_kpa: float | None,
) -> PredictionPublic:
    assert prediction.lower_ucs_kpa is not None  # asked at a pass fraction
    assert prediction.tolerance_lower_ucs_kpa is not None and prediction.confidence is not None
    assert prediction.standard_error_log is not None and prediction.degrees_of_freedom
    assert prediction.leverage is not None and prediction.leverage_max is not None
    return PredictionPublic(
        calibration_id=loaded.id,
        calibration_version=loaded.version,
        example=loaded.example,
        ucs_kpa=prediction.ucs_kpa,
        median_ucs_kpa=prediction.median_ucs_kpa,
        lower_ucs_kpa=prediction.lower_ucs_kpa,
        tolerance_lower_ucs_kpa=prediction.tolerance_lower_ucs_kpa,
        pass_fraction_pct=pass_fraction_pct,
        confidence_pct=100.0 * prediction.confidence,
        required_ucs_kpa=required_ucs_kpa,
        pass_probability_pct=(
            None
            if required_ucs_kpa is None
            else 100.0 * prediction.pass_probability(required_ucs_kpa)
        ),
        curing_days=curing_days,
        standard_error_log=prediction.standard_error_log,
        degrees_of_freedom=prediction.degrees_of_freedom,
        leverage=prediction.leverage,
        leverage_max=prediction.leverage_max,
        extrapolated=prediction.extrapolated,
        outside=list(prediction.outside),
        outside_details=[
            OutsidePublic(
                variable=o.variable,
                value=o.value,
                accepted_min=o.accepted_min,
                accepted_max=o.accepted_max,
                detail=o.detail,
            )
            for o in prediction.outside_details
        ],
    )


async def referenced_calibration(
    store: Store, cache: CalibrationCache[StrengthModel], calibration_id: str | None
) -> LoadedCalibration:
    """The calibration a request body names (the example when None). A body reference to
    a calibration that does not exist is a 422 naming ``calibration_id``."""
    if calibration_id is None:
        return await cache.example(store)
    try:
        return await cache.get(store, calibration_id)
    except NotFound as err:
        raise InvalidInput(
            "calibration_id", f"no calibration with id {calibration_id}", code=err.code
        ) from err


async def design_calibration(
    store: Store, cache: CalibrationCache[StrengthModel], calibration_id: str | None
) -> LoadedCalibration:
    """The calibration a request designs with (:func:`referenced_calibration`), which
    must be approved: a proposed version is a 422 naming ``calibration_id``
    (``calibration_not_approved``)."""
    loaded = await referenced_calibration(store, cache, calibration_id)
    if not await cache.approved(store, loaded.id):
        raise InvalidInput(
            "calibration_id",
            f"calibration {loaded.name!r} version {loaded.version} is proposed, not "
            f"approved: an engineer approves it (POST /calibrations/{loaded.id}/approve) "
            "before it designs recipes",
            code="calibration_not_approved",
        )
    return loaded
