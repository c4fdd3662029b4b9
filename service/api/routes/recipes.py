"""Recipe computation endpoints: proportioning and the cheapest-recipe optimiser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from pydantic_core import to_json

from service.api.computation_route import computation
from service.api.deps import RuntimeDep, StoreDep, runtime_of
from service.api.routes import api_router
from service.api.routes.calibrations import CalibrationCacheDep, design_calibration
from service.api.routes.rheology import (
    RheologyCacheDep,
    pipe_flow_public,
    pipeline_of,
    referenced_rheology,
)
from service.api.routes.strength import required_strength, site_floors
from service.api.schemas.recipes import (
    BinderComponentIn,
    CalibrationUsedPublic,
    CostedRecipePublic,
    MixIn,
    MixPublic,
    OptimizePublic,
    OptimizeRequest,
    ProportionPublic,
    ProportionRequest,
    PumpabilityPublic,
    RequirementCheckPublic,
    RequirementPublic,
    SearchPublic,
    StoredMixIn,
)
from service.api.schemas.strength import StopeIn
from service.core import optimizer as opt
from service.core import plant_profile as pp
from service.core import proportioning as prop
from service.core.recipe_limits import (
    RecipeLimits,
    check_binder_gs,
    check_binder_pct,
    check_mix,
    check_solids,
    check_tailings,
)
from service.errors import InvalidInput
from service.operations.calibrations import Loaded
from service.operations.plant_profile import plant_spread

router = api_router("recipes")


def mix_inputs(
    req: MixIn | MixPublic,
) -> tuple[prop.Tailings, tuple[prop.BinderComponent, ...], prop.Aggregate | None]:
    tailings = prop.Tailings(req.tailings.specific_gravity, req.tailings.moisture_pct / 100.0)
    binder = tuple(
        prop.BinderComponent(c.name, c.specific_gravity, c.fraction_pct / 100.0) for c in req.binder
    )
    aggregate = (
        prop.Aggregate(
            req.aggregate.specific_gravity,
            req.aggregate.fraction_pct / 100.0,
            req.aggregate.moisture_pct / 100.0,
        )
        if req.aggregate is not None
        else None
    )
    return tailings, binder, aggregate


def solve_solids_fraction(
    req: ProportionRequest,
    tailings: prop.Tailings,
    binder: tuple[prop.BinderComponent, ...],
    aggregate: prop.Aggregate | None,
) -> float:
    """Cw from whichever target the request gives (Cw, W/C or wet density)."""
    bw = req.binder_pct / 100.0
    if req.solids_pct is not None:
        return req.solids_pct / 100.0
    if req.water_binder_ratio is not None:
        return prop.solids_fraction_for_water_binder_ratio(bw, req.water_binder_ratio)
    assert req.wet_density_kg_m3 is not None  # the schema admits exactly one target
    return prop.solids_fraction_for_wet_density(
        tailings, binder, bw, req.wet_density_kg_m3, aggregate=aggregate
    )


def _target_field(req: ProportionRequest) -> str:
    if req.solids_pct is not None:
        return "solids_pct"
    return "water_binder_ratio" if req.water_binder_ratio is not None else "wet_density_kg_m3"


def check_optimizer_limits(req: OptimizeRequest, limits: RecipeLimits) -> None:
    """The optimiser designs inside the site's plausible ranges: a search window or a
    material outside them is refused, naming its field."""
    check_tailings(req.tailings, limits, "tailings")
    for i, offer in enumerate(req.binders):
        check_binder_gs(f"binders[{i}].specific_gravity", offer.specific_gravity, limits)
    check_binder_pct("binder_pct_min", req.binder_pct_min, limits)
    check_binder_pct("binder_pct_max", req.binder_pct_max, limits)
    check_solids("solids_pct_min", req.solids_pct_min, limits)
    if req.solids_pct_max is not None:
        check_solids("solids_pct_max", req.solids_pct_max, limits)


def _masses(mix: prop.Proportioning, volume_m3: float) -> dict[str, object]:
    m = mix.masses(volume_m3)
    body: dict[str, object] = {
        "wet_density_kg_m3": mix.wet_density_kg_m3,
        "dry_density_kg_m3": mix.dry_density_kg_m3,
        "wet_paste_kg": m.wet_paste_kg,
        "dry_solids_kg": m.dry_solids_kg,
        "dry_tailings_kg": m.dry_tailings_kg,
        "wet_tailings_kg": m.wet_tailings_kg,
        "dry_aggregate_kg": None,
        "wet_aggregate_kg": None,
        "binder_kg": m.binder_kg,
        "binder_components_kg": m.binder_components_kg,
        "water_kg": m.water_kg,
        "water_to_add_kg": m.water_to_add_kg,
    }
    if mix.aggregate is not None:
        body["dry_aggregate_kg"] = m.dry_aggregate_kg
        body["wet_aggregate_kg"] = m.wet_aggregate_kg
    return body


@computation(router, "/recipes/proportion", response_model=ProportionPublic)
async def proportion(req: ProportionRequest, request: Request) -> Response:
    """Masses per m3 and for ``volume_m3`` of a saturated paste (the relations in
    docs/INTEGRATION.md "POST /recipes/proportion"),
    for a mix inside the site's plausible ranges (422 ``recipe_implausible`` naming the
    field and the limit otherwise)."""
    limits = runtime_of(request).recipe_limits
    check_mix(req, limits)
    tailings, binder, aggregate = mix_inputs(req)
    solids_fraction = solve_solids_fraction(req, tailings, binder, aggregate)
    if req.solids_pct is None:
        check_solids(_target_field(req), 100.0 * solids_fraction, limits)
    mix = prop.proportion(
        tailings,
        binder,
        req.binder_pct / 100.0,
        solids_fraction,
        volume_m3=req.volume_m3,
        aggregate=aggregate,
    )
    # Built straight from the core's floats (the schema above documents it): a second
    # validation of numbers we computed ourselves would only cost time on a hot path.
    body = {
        "per_m3": _masses(mix, 1.0),
        "total": _masses(mix, mix.volume_m3),
        "volume_m3": mix.volume_m3,
        "binder_pct": 100.0 * mix.binder_ratio,
        "solids_pct": 100.0 * mix.solids_fraction,
        "water_binder_ratio": mix.water_binder_ratio,
        "specific_gravity": {
            "binder": mix.binder_specific_gravity,
            "solids": mix.solids_specific_gravity,
        },
        "void_ratio": mix.void_ratio,
        "porosity": mix.porosity,
        "feed_too_wet": mix.feed_too_wet,
    }
    primaries = (mix.wet_density_kg_m3, mix.binder_kg_m3, mix.water_to_add_kg_m3, mix.void_ratio)
    if not all(math.isfinite(v) for v in primaries):
        raise ArithmeticError("proportioning produced a non-finite value")
    return Response(to_json(body), media_type="application/json")


# --- the optimiser ----------------------------------------------------------------------


def _requirement_check(check: opt.RequirementCheck) -> RequirementCheckPublic:
    return RequirementCheckPublic(
        name=check.name,
        required_ucs_kpa=check.required_ucs_kpa,
        curing_days=check.curing_days,
        median_ucs_kpa=check.median_ucs_kpa,
        lower_ucs_kpa=check.lower_ucs_kpa,
        tolerance_lower_ucs_kpa=check.tolerance_lower_ucs_kpa,
        pass_probability_pct=100.0 * check.pass_probability,
        binding=check.binding,
        extrapolated=check.extrapolated,
        outside=list(check.outside),
    )


def _pumpability(recipe: opt.CostedRecipe) -> PumpabilityPublic:
    assert recipe.yield_stress_pa is not None and recipe.slump_mm is not None  # rheology given
    return PumpabilityPublic(
        yield_stress_pa=recipe.yield_stress_pa,
        slump_mm=recipe.slump_mm,
        pump_pressure_kpa=recipe.pump_pressure_kpa,
        line=None if recipe.pipe_flow is None else pipe_flow_public(recipe.pipe_flow),
        extrapolated=recipe.rheology_extrapolated,
    )


def _costed_public(
    recipe: opt.CostedRecipe, req: OptimizeRequest, pass_fraction_pct: float
) -> CostedRecipePublic:
    gravity = {b.name: b.specific_gravity for b in req.binders}
    mix = StoredMixIn(
        tailings=req.tailings,
        binder=[
            BinderComponentIn(name=name, specific_gravity=gravity[name], fraction_pct=100.0 * f)
            for name, f in recipe.blend.items()
            if f > 0.0
        ],
        binder_pct=100.0 * recipe.binder_ratio,
        solids_pct=100.0 * recipe.solids_fraction,
    )
    return CostedRecipePublic(
        blend_pct={name: 100.0 * f for name, f in recipe.blend.items()},
        binder_pct=100.0 * recipe.binder_ratio,
        solids_pct=100.0 * recipe.solids_fraction,
        predicted_ucs_kpa=recipe.predicted_ucs_kpa,
        extrapolated=recipe.extrapolated,
        requirements=[_requirement_check(c) for c in recipe.requirement_checks],
        pass_fraction_pct=pass_fraction_pct,
        confidence_pct=None if recipe.confidence is None else 100.0 * recipe.confidence,
        pumpability=_pumpability(recipe),
        water_binder_ratio=recipe.proportioning.water_binder_ratio,
        wet_density_kg_m3=recipe.proportioning.wet_density_kg_m3,
        binder_kg_m3=recipe.binder_kg_m3,
        binder_components_kg_m3=dict(recipe.binder_components_kg_m3),
        binder_cost_per_m3=recipe.binder_cost_per_m3,
        binder_cost_for_stope=recipe.binder_cost_for_stope,
        mix=mix,
        uncertainty=_uncertainty(recipe.uncertainty),
    )


def _uncertainty(u: opt.Uncertainty | None) -> dict[str, Any] | None:
    """What the design's spread of ln UCS rests on, each contribution stated."""
    if u is None:
        return None
    return {
        "lab_sd_log": u.lab_sd_log,
        "plant_solids_sd_log": u.plant_solids_sd_log,
        "plant_binder_sd_log": u.plant_binder_sd_log,
        "total_sd_log": u.total_sd_log,
        "plant_spread": None if u.spread is None else u.spread.to_dict(),
        "note": None
        if u.spread is None
        else (
            "the plant's spread is the site's stated default (no pours yet)"
            if u.spread.basis == "default"
            else f"the plant's spread from {u.spread.pours} pours ({u.spread.volume_m3:.0f} m3)"
        ),
    }


def design_statement(pass_fraction_pct: float, confidence_pct: float | None) -> str:
    """What a design at this pass fraction (and confidence) promises, in words."""
    if confidence_pct is None:
        return (
            f"{pass_fraction_pct:g} % of cylinders are expected to pass each requirement: on "
            "average over calibrations (the prediction interval); one calibration of few "
            "cylinders can deliver well under it"
        )
    return (
        f"at least {pass_fraction_pct:g} % of cylinders pass each requirement, with "
        f"{confidence_pct:g} % confidence (a one-sided tolerance bound of the calibration)"
    )


def _requirements(
    req: OptimizeRequest, floors: dict[str, float]
) -> list[tuple[RequirementPublic, opt.Requirement]]:
    """Every requirement of the request: its public statement and the core's."""
    given: list[tuple[str, StopeIn | None, float | None, float]]
    if req.requirements is not None:
        given = [(r.name, r.stope, r.required_ucs_kpa, r.curing_days) for r in req.requirements]
    else:
        given = [("required_ucs", req.stope, req.required_ucs_kpa, req.curing_days)]
    out = []
    for name, stope, explicit, days in given:
        strength = None if stope is None else required_strength(stope, floors)
        ucs = strength.required_ucs_kpa if strength is not None else explicit
        assert ucs is not None  # the schema admits exactly one of the two
        public = RequirementPublic(
            name=name,
            required_ucs_kpa=ucs,
            curing_days=days,
            governed_by="given" if strength is None else strength.governed_by,
            required=strength,
        )
        out.append((public, opt.Requirement(ucs, days, name)))
    return out


def feed_reaches(moisture_pct: float, profile: pp.PlantProfile) -> list[opt.FeedReach]:
    """What a design must be makeable from: the tailings as the request states them
    (water to add never negative) and the plant's feed at its wettest, when known."""
    feeds = [
        opt.FeedReach(
            moisture_pct / 100.0,
            "feed_reach_recipe_moisture",
            f"the tailings at {moisture_pct:g} % moisture",
        )
    ]
    feed = profile.feed()
    if feed is not None:
        where = {
            "settings": "as the site states it",
            "simulator": "as the built-in simulator's profile makes it",
        }.get(feed.basis, "its 10th percentile in the history")
        feeds.append(
            opt.FeedReach(
                pp.moisture_of_solids(feed.solids_low_pct),
                "feed_reach_plant_feed",
                f"the plant's feed at its wettest, {feed.solids_low_pct:.1f} % solids ({where})",
            )
        )
    return feeds


def _plant_named(
    binding: Sequence[str], req: OptimizeRequest, window: pp.Window | None
) -> list[str]:
    """The binding limits, a Cw edge named the plant's where its window set it."""
    out = []
    for name in binding:
        if window is not None and name == "solids_pct_min" and window.low > req.solids_pct_min:
            name = "plant:cw_min_pct"
        elif (
            window is not None
            and name == "solids_pct_max"
            and (req.solids_pct_max is None or window.high < req.solids_pct_max)
        ):
            name = "plant:cw_max_pct"
        out.append(name)
    return out


def _used(loaded: Loaded[Any]) -> CalibrationUsedPublic:
    return CalibrationUsedPublic(
        id=loaded.id, name=loaded.name, version=loaded.version, example=loaded.example
    )


@router.post("/recipes/optimize", response_model=OptimizePublic)
async def optimize(
    req: OptimizeRequest,
    store: StoreDep,
    runtime: RuntimeDep,
    cache: CalibrationCacheDep,
    rheologies: RheologyCacheDep,
) -> OptimizePublic:
    """The cheapest binder blend and dose that meets every requirement at the pass
    fraction (each requirement's tolerance bound at the confidence, or on the expected
    basis its lower prediction bound, at its age), inside the Cw window and the
    pumpability limits, with its cost, binding limits, predicted yield stress, slump and
    line pressure, and the saving against cement alone."""
    limits = runtime.recipe_limits
    check_optimizer_limits(req, limits)
    design = runtime.settings.design
    pass_pct = req.pass_fraction_pct or design.pass_fraction_pct
    basis = req.design_basis or design.basis
    confidence_pct = (req.confidence_pct or design.confidence_pct) if basis == "tolerance" else None
    requirements = _requirements(req, site_floors(design))
    calibration = await design_calibration(store, cache, req.calibration_id)
    rheology = await referenced_rheology(store, rheologies, req.rheology_calibration_id)
    solids_max = req.solids_pct_max if req.solids_pct_max is not None else limits.solids_pct_max
    profile = await runtime.plant_profiles.profile()
    window = profile.cw_window()
    solids_min = req.solids_pct_min
    if window is not None:  # the plant holds Cw only in its window: designs stay in it
        solids_min, solids_max = max(solids_min, window.low), min(solids_max, window.high)
        if solids_min >= solids_max:
            raise InvalidInput(
                "solids_pct_min",
                f"the Cw window asked ({req.solids_pct_min:g}-{solids_max:g} %) lies outside "
                f"the Cw the plant holds ({window.low:g}-{window.high:g} %, "
                "BACKFILL_PLANT__CW_MIN_PCT / _MAX_PCT)",
                code="recipe_unmakeable",
                limit="cw_window",
            )
    feeds = feed_reaches(req.tailings.moisture_pct, profile)
    spread = await plant_spread(store, design, datetime.now(UTC))
    # The single form goes in as the core's single requirement, so that its errors name
    # the request's own fields (curing_days, not requirements[0].curing_days).
    single = requirements[0][1] if req.requirements is None else None
    result = opt.optimize_recipe(
        required_ucs_kpa=None if single is None else single.required_ucs_kpa,
        curing_days=None if single is None else single.curing_days,
        requirements=None if single is not None else [core for _public, core in requirements],
        pass_fraction=pass_pct / 100.0,
        confidence=None if confidence_pct is None else confidence_pct / 100.0,
        binders=[
            opt.BinderOption(
                b.name,
                b.specific_gravity,
                b.price_per_t,
                b.min_fraction_pct / 100.0,
                b.max_fraction_pct / 100.0,
            )
            for b in req.binders
        ],
        tailings=prop.Tailings(req.tailings.specific_gravity, req.tailings.moisture_pct / 100.0),
        limits=opt.RecipeLimits(
            solids_fraction_min=solids_min / 100.0,
            solids_fraction_max=solids_max / 100.0,
            binder_ratio_min=req.binder_pct_min / 100.0,
            binder_ratio_max=req.binder_pct_max / 100.0,
            blend_component_min=limits.blend_component_pct_min / 100.0,
        ),
        model=calibration.model,
        rheology=rheology.model,
        pipeline=None if req.pipeline is None else pipeline_of(req.pipeline),
        max_yield_stress_pa=req.max_yield_stress_pa,
        max_pump_pressure_kpa=req.max_pump_pressure_kpa,
        stope_volume_m3=req.stope_volume_m3,
        allow_extrapolation=req.allow_extrapolation,
        feeds=feeds,
        plant_spread=spread,
    )
    binding = next(p for p, core in requirements if core.name == result.binding_requirement)
    return OptimizePublic(
        required_ucs_kpa=binding.required_ucs_kpa,
        governed_by=binding.governed_by,
        required=binding.required,
        curing_days=binding.curing_days,
        requirements=[p for p, _core in requirements],
        binding_requirement=result.binding_requirement,
        pass_fraction_pct=pass_pct,
        design_basis=basis,
        confidence_pct=confidence_pct,
        design_statement=design_statement(pass_pct, confidence_pct),
        recipe=_costed_public(result.recipe, req, pass_pct),
        binding_constraints=_plant_named(result.binding_constraints, req, window),
        cement_only=(
            None
            if result.cement_only is None
            else _costed_public(result.cement_only, req, pass_pct)
        ),
        cement_only_note=result.cement_only_note,
        saving_per_m3=result.saving_per_m3,
        saving_pct=result.saving_pct,
        saving_for_stope=result.saving_for_stope,
        calibration=_used(calibration),
        rheology_calibration=_used(rheology),
        search=SearchPublic(
            blend_step_pct=100.0 * result.blend_step,
            solids_step_pct=100.0 * result.solids_step,
            candidates_evaluated=result.candidates_evaluated,
        ),
    )
