"""Stored recipes: immutable versions, approved by an engineer before they run.

Every answer shows the recipe's proportioning per m3 and, when it names a calibration,
its predicted UCS at 28 days; both are computed from the stored (immutable) mix and
model, so a version always reads back the same. Reading is total: a version stored
under older rules (outside today's plausible ranges, or one that cannot be
proportioned) reads back with its ``problems`` named, never as an error of the list.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import Query

from service.api.deps import EngineerDep, PathId, RuntimeDep, StoreDep
from service.api.routes import api_router
from service.api.routes.calibrations import (
    CalibrationCacheDep,
    design_calibration,
    referenced_calibration,
)
from service.api.routes.recipes import mix_inputs
from service.api.schemas.calibrations import blend_fractions
from service.api.schemas.common import Text
from service.api.schemas.recipes import (
    MixPublic,
    PredictedStrengthPublic,
    RecipeApprove,
    RecipeCreate,
    RecipePublic,
    StoredMixIn,
    masses_public,
)
from service.core import proportioning as prop
from service.core.people import actor_of, approver
from service.core.plant_profile import PlantProfile, makeability
from service.core.recipe_limits import RecipeLimits, check_mix
from service.core.strength_model import StrengthModel
from service.errors import BackfillError, InvalidInput
from service.operations.calibrations import CalibrationCache, LoadedCalibration
from service.operations.makeable import refuse_unmakeable
from service.runtime import Runtime
from service.store.records import RecipeRecord
from service.store.repository import Store

router = api_router("recipes")
log = logging.getLogger(__name__)

DESIGN_AGE_DAYS = 28.0


def proportion_mix(mix: StoredMixIn | MixPublic) -> prop.Proportioning:
    """The mix proportioned per m3; ``InvalidInput`` (field ``mix``) when it cannot be
    (no finite, positive masses)."""
    tailings, binder, aggregate = mix_inputs(mix)
    try:
        mixed = prop.proportion(
            tailings, binder, mix.binder_pct / 100.0, mix.solids_pct / 100.0, aggregate=aggregate
        )
    except ArithmeticError as err:
        raise InvalidInput("mix", f"the mix cannot be proportioned: {err}") from err
    numbers = (mixed.wet_density_kg_m3, mixed.binder_kg_m3, mixed.water_to_add_kg_m3)
    if not all(math.isfinite(v) for v in numbers) or mixed.per_m3.dry_tailings_kg <= 0.0:
        raise InvalidInput("mix", "the mix cannot be proportioned: no finite, positive masses")
    return mixed


def _prediction(
    mix: MixPublic, calibration: LoadedCalibration, pass_fraction_pct: float
) -> tuple[PredictedStrengthPublic | None, str | None]:
    """UCS at 28 days by the recipe's model, flagged when extrapolated; None with a note
    when the model cannot predict it (no coefficient for a binder, a mix it refuses)."""
    try:
        prediction = calibration.model.predict(
            blend_fractions({c.name: c.fraction_pct for c in mix.binder}),
            mix.binder_pct / 100.0,
            mix.solids_pct / 100.0,
            DESIGN_AGE_DAYS,
            allow_extrapolation=True,
            pass_fraction=pass_fraction_pct / 100.0,
        )
    except (BackfillError, ArithmeticError) as err:
        return None, f"no prediction: {getattr(err, 'detail', err)}"
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
            lower_ucs_kpa=prediction.lower_ucs_kpa,
            pass_fraction_pct=pass_fraction_pct,
            extrapolated=prediction.extrapolated,
            outside=list(prediction.outside),
        ),
        note,
    )


async def recipe_public(
    record: RecipeRecord,
    store: Store,
    cache: CalibrationCache[StrengthModel],
    limits: RecipeLimits,
    pass_fraction_pct: float,
    plant: PlantProfile | None = None,
) -> RecipePublic:
    """The public view of a stored version (its prediction stated at the site's pass
    fraction, whether the plant can make it today); what it cannot compute goes to
    ``problems``."""
    mix = MixPublic.model_validate(record.mix)
    problems: list[str] = []
    try:
        check_mix(record.mix, limits)
    except InvalidInput as err:
        problems.append(err.detail)
    per_m3, water_binder_ratio = None, None
    try:
        mixed = proportion_mix(mix)
        per_m3 = masses_public(
            mixed.per_m3,
            wet_density=mixed.wet_density_kg_m3,
            dry_density=mixed.dry_density_kg_m3,
            aggregate=mix.aggregate is not None,
        )
        water_binder_ratio = mixed.water_binder_ratio
        numbers = [water_binder_ratio, *per_m3.model_dump(exclude_none=True).values()]
        if not all(math.isfinite(v) for v in numbers if isinstance(v, float)):
            raise ArithmeticError("a quantity per m3 is not finite")
    except InvalidInput as err:
        problems.append(err.detail)
    except ArithmeticError as err:  # a quantity the mix does not have (no binder)
        per_m3, water_binder_ratio = None, None
        problems.append(f"the mix cannot be proportioned: {err}")
    predicted, note = None, None
    if record.calibration_id is not None and per_m3 is not None:
        predicted, note = _prediction(
            mix,
            await referenced_calibration(store, cache, record.calibration_id),
            pass_fraction_pct,
        )
    return RecipePublic(
        makeability=makeability(record.mix, plant).to_dict() if plant is not None else None,
        id=record.id,
        name=record.name,
        version=record.version,
        created_at=record.created_at,
        created_by=record.created_by,
        approved=record.approved_at is not None,
        approved_by=record.approved_by,
        approved_at=record.approved_at,
        calibration_id=record.calibration_id,
        mix=mix,
        design=record.design,
        per_m3=per_m3,
        water_binder_ratio=water_binder_ratio,
        predicted_ucs_28d=predicted,
        prediction_note=note,
        problems=problems,
    )


def _site(runtime: Runtime) -> tuple[RecipeLimits, float, PlantProfile]:
    return (
        runtime.recipe_limits,
        runtime.settings.design.pass_fraction_pct,
        runtime.plant_profiles.current,
    )


@router.post("/recipes", status_code=201, response_model=RecipePublic)
async def create_recipe(
    req: RecipeCreate,
    principal: EngineerDep,
    store: StoreDep,
    runtime: RuntimeDep,
    cache: CalibrationCacheDep,
) -> RecipePublic:
    """Store a new immutable version of the recipe ``name`` (approved at once when
    ``approved_by`` is given)."""
    mix = req.mix.model_dump(mode="json")
    # Refuse an implausible mix, one that cannot be proportioned, or a missing
    # calibration, before storing anything.
    check_mix(mix, runtime.recipe_limits, prefix="mix.")
    proportion_mix(req.mix)
    checked = makeability(mix, await runtime.plant_profiles.profile(), prefix="mix.")
    refuse_unmakeable(checked, reason=req.unmakeable_reason, what=f"recipe {req.name!r}")
    if req.calibration_id is not None:  # an approved one: a proposal designs nothing
        await design_calibration(store, cache, req.calibration_id)
    record = await store.add_recipe(
        name=req.name,
        mix=mix,
        design=req.design,
        calibration_id=req.calibration_id,
        approved_by=None if req.approved_by is None else approver(principal, req.approved_by),
        created_by=principal.role.value,
        approval_detail=None if checked.makeable else req.unmakeable_reason,
        approver=actor_of(principal),
    )
    return await recipe_public(record, store, cache, *_site(runtime))


@router.post("/recipes/{recipe_id}/approve", response_model=RecipePublic)
async def approve_recipe(
    recipe_id: PathId,
    req: RecipeApprove,
    principal: EngineerDep,
    store: StoreDep,
    runtime: RuntimeDep,
    cache: CalibrationCacheDep,
) -> RecipePublic:
    """An engineer approves a stored version (a draft, or a pour's inline recipe) so
    that pours may run it; recorded in the audit log. A version outside the site's
    plausible ranges cannot be approved (422); a second approval is a 409."""
    record = await store.get_recipe(recipe_id)
    check_mix(record.mix, runtime.recipe_limits, prefix="mix.")
    proportion_mix(MixPublic.model_validate(record.mix))
    checked = makeability(record.mix, await runtime.plant_profiles.profile(), prefix="mix.")
    what = f"recipe {record.name!r} version {record.version}"
    refuse_unmakeable(checked, reason=req.unmakeable_reason, what=what)
    approved = await store.approve_recipe(
        recipe_id,
        approved_by=approver(principal, req.approved_by),
        actor=actor_of(principal),
        detail=None if checked.makeable else req.unmakeable_reason,
    )
    log.info(
        "recipe %s version %d approved by %s (%s)",
        approved.name,
        approved.version,
        approved.approved_by,
        principal.person,
    )
    return await recipe_public(approved, store, cache, *_site(runtime))


@router.get("/recipes", response_model=list[RecipePublic])
async def list_recipes(
    store: StoreDep,
    runtime: RuntimeDep,
    cache: CalibrationCacheDep,
    name: Annotated[Text | None, Query(min_length=1, max_length=100)] = None,
) -> list[RecipePublic]:
    """Every stored version, by name then version; ``?name=`` for one recipe's versions."""
    site = _site(runtime)
    return [await recipe_public(r, store, cache, *site) for r in await store.list_recipes(name)]


@router.get("/recipes/{recipe_id}", response_model=RecipePublic)
async def get_recipe(
    recipe_id: PathId,
    store: StoreDep,
    runtime: RuntimeDep,
    cache: CalibrationCacheDep,
) -> RecipePublic:
    record = await store.get_recipe(recipe_id)
    return await recipe_public(record, store, cache, *_site(runtime))
