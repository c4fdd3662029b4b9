"""Recipe computation and storage endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import PrincipalDep
from service.api.schemas.recipes import (
    ProportionPublic,
    ProportionRequest,
    SpecificGravityPublic,
    masses_public,
)
from service.core import proportioning as prop

router = APIRouter(tags=["recipes"])


def mix_inputs(
    req: ProportionRequest,
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


def solve_solids_fraction(req: ProportionRequest) -> float:
    """Cw from whichever target the request gives (Cw, W/C or wet density)."""
    tailings, binder, aggregate = mix_inputs(req)
    bw = req.binder_pct / 100.0
    if req.solids_pct is not None:
        return req.solids_pct / 100.0
    if req.water_binder_ratio is not None:
        return prop.solids_fraction_for_water_binder_ratio(bw, req.water_binder_ratio)
    assert req.wet_density_kg_m3 is not None  # the schema admits exactly one target
    return prop.solids_fraction_for_wet_density(
        tailings, binder, bw, req.wet_density_kg_m3, aggregate=aggregate
    )


@router.post("/recipes/proportion", response_model=ProportionPublic)
async def proportion(req: ProportionRequest, _: PrincipalDep) -> ProportionPublic:
    """Masses per m3 and for ``volume_m3`` of a saturated paste (DOMAIN.md relations)."""
    tailings, binder, aggregate = mix_inputs(req)
    mix = prop.proportion(
        tailings,
        binder,
        req.binder_pct / 100.0,
        solve_solids_fraction(req),
        volume_m3=req.volume_m3,
        aggregate=aggregate,
    )
    has_agg = aggregate is not None
    return ProportionPublic(
        per_m3=masses_public(
            mix.per_m3,
            wet_density=mix.wet_density_kg_m3,
            dry_density=mix.dry_density_kg_m3,
            aggregate=has_agg,
        ),
        total=masses_public(
            mix.total,
            wet_density=mix.wet_density_kg_m3,
            dry_density=mix.dry_density_kg_m3,
            aggregate=has_agg,
        ),
        volume_m3=mix.volume_m3,
        binder_pct=100.0 * mix.binder_ratio,
        solids_pct=100.0 * mix.solids_fraction,
        water_binder_ratio=mix.water_binder_ratio,
        specific_gravity=SpecificGravityPublic(
            binder=mix.binder_specific_gravity, solids=mix.solids_specific_gravity
        ),
        void_ratio=mix.void_ratio,
        porosity=mix.porosity,
        feed_too_wet=mix.feed_too_wet,
    )
