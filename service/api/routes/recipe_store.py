"""Stored recipes: immutable versions carrying who approved them and their model.

Every answer shows the recipe's proportioning per m3 and, when it names a calibration,
its predicted UCS at 28 days; both are computed from the stored (immutable) mix and
model, so a version always reads back the same.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.api.deps import EngineerDep, PrincipalDep, StoreDep
from service.api.routes.calibrations import CalibrationCacheDep, referenced_calibration
from service.api.routes.recipes import mix_inputs
from service.api.schemas.calibrations import blend_fractions
from service.api.schemas.recipes import (
    PredictedStrengthPublic,
    RecipeCreate,
    RecipePublic,
    StoredMixIn,
    masses_public,
)
from service.core import proportioning as prop
from service.errors import OutsideCalibrationRange
from service.operations.calibrations import CalibrationCache, LoadedCalibration
from service.store.records import RecipeRecord
from service.store.repository import Store

router = APIRouter(tags=["recipes"])

DESIGN_AGE_DAYS = 28.0
RecipeId = Annotated[str, Path(min_length=1, max_length=64)]


def _proportion(mix: StoredMixIn) -> prop.Proportioning:
    tailings, binder, aggregate = mix_inputs(mix)
    return prop.proportion(
        tailings, binder, mix.binder_pct / 100.0, mix.solids_pct / 100.0, aggregate=aggregate
    )


def _prediction(
    mix: StoredMixIn, calibration: LoadedCalibration
) -> tuple[PredictedStrengthPublic | None, str | None]:
    """UCS at 28 days by the recipe's model, flagged when extrapolated; None with a note
    when the model has no coefficient for one of the binders."""
    try:
        prediction = calibration.model.predict(
            blend_fractions({c.name: c.fraction_pct for c in mix.binder}),
            mix.binder_pct / 100.0,
            mix.solids_pct / 100.0,
            DESIGN_AGE_DAYS,
            allow_extrapolation=True,
        )
    except OutsideCalibrationRange as err:
        return None, f"no prediction: {err.detail}"
    note = None
    if mix.aggregate is not None:
        note = (
            "the mix has aggregate: Bw is over tailings and aggregate, the model was fitted "
            "on its laboratory mixes; check the prediction against cylinders of this mix"
        )
    return (
        PredictedStrengthPublic(
            calibration_version=calibration.version,
            example=calibration.example,
            curing_days=DESIGN_AGE_DAYS,
            ucs_kpa=prediction.ucs_kpa,
            extrapolated=prediction.extrapolated,
            outside=list(prediction.outside),
        ),
        note,
    )


async def _recipe_public(
    record: RecipeRecord, store: Store, cache: CalibrationCache
) -> RecipePublic:
    mix = StoredMixIn.model_validate(record.mix)
    mixed = _proportion(mix)
    predicted, note = None, None
    if record.calibration_id is not None:
        predicted, note = _prediction(
            mix, await referenced_calibration(store, cache, record.calibration_id)
        )
    return RecipePublic(
        id=record.id,
        name=record.name,
        version=record.version,
        created_at=record.created_at,
        created_by=record.created_by,
        approved_by=record.approved_by,
        calibration_id=record.calibration_id,
        mix=mix,
        design=record.design,
        per_m3=masses_public(
            mixed.per_m3,
            wet_density=mixed.wet_density_kg_m3,
            dry_density=mixed.dry_density_kg_m3,
            aggregate=mix.aggregate is not None,
        ),
        water_binder_ratio=mixed.water_binder_ratio,
        predicted_ucs_28d=predicted,
        prediction_note=note,
    )


@router.post("/recipes", status_code=201, response_model=RecipePublic)
async def create_recipe(
    req: RecipeCreate, principal: EngineerDep, store: StoreDep, cache: CalibrationCacheDep
) -> RecipePublic:
    """Store a new immutable version of the recipe ``name``."""
    # Refuse a mix that cannot be proportioned, or a missing calibration, before storing.
    _proportion(req.mix)
    if req.calibration_id is not None:
        await referenced_calibration(store, cache, req.calibration_id)
    record = await store.add_recipe(
        name=req.name,
        mix=req.mix.model_dump(mode="json"),
        design=req.design,
        calibration_id=req.calibration_id,
        approved_by=req.approved_by,
        created_by=principal.role.value,
    )
    return await _recipe_public(record, store, cache)


@router.get("/recipes", response_model=list[RecipePublic])
async def list_recipes(
    _: PrincipalDep,
    store: StoreDep,
    cache: CalibrationCacheDep,
    name: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> list[RecipePublic]:
    """Every stored version, by name then version; ``?name=`` for one recipe's versions."""
    return [await _recipe_public(r, store, cache) for r in await store.list_recipes(name)]


@router.get("/recipes/{recipe_id}", response_model=RecipePublic)
async def get_recipe(
    recipe_id: RecipeId, _: PrincipalDep, store: StoreDep, cache: CalibrationCacheDep
) -> RecipePublic:
    return await _recipe_public(await store.get_recipe(recipe_id), store, cache)
