"""Required-strength endpoints: thin wrappers over ``service.core.required``."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

from service.api.computation_route import computation
from service.api.deps import runtime_of
from service.api.routes import api_router
from service.api.schemas.strength import (
    ArchingPublic,
    ArchingRequest,
    RequiredStrengthPublic,
    StopeIn,
)
from service.core import required
from service.settings import DesignSettings

router = api_router("strength")

CITATIONS = {
    "mitchell": "Mitchell, R.J., Olsen, R.S. & Smith, J.D. (1982). Model studies on cemented "
    "tailings used in mine backfill. Canadian Geotechnical Journal 19(1):14-28.",
    "li_aubertin": "Li, L. & Aubertin, M. (2012). A modified solution to assess the required "
    "strength of exposed backfill in mine stopes. Canadian Geotechnical Journal "
    "49(8):994-1002.",
}
ARCHING_CITATION = (
    "Janssen (1895) / Marston (1930) arching as used for backfilled stopes by Aubertin et al. "
    "(2003), Soil and Rock America 1:1157-1164 (2D), and Li, Aubertin & Belem (2005), "
    "Canadian Geotechnical Journal 42(6):1705-1717 (3D)."
)


def stope_requirement(stope: StopeIn) -> required.StrengthRequirement:
    """The computed (unfloored) required UCS of ``stope`` by its method."""
    if stope.method == "mitchell":
        return required.mitchell(
            fill_height_m=stope.fill_height_m,
            exposed_length_m=stope.exposed_length_m,
            unit_weight_kn_m3=stope.unit_weight_kn_m3,
            safety_factor=stope.safety_factor,
        )
    # The schema makes both present for li_aubertin.
    assert stope.stope_width_m is not None and stope.friction_angle_deg is not None
    return required.li_aubertin(
        fill_height_m=stope.fill_height_m,
        exposed_length_m=stope.exposed_length_m,
        stope_width_m=stope.stope_width_m,
        unit_weight_kn_m3=stope.unit_weight_kn_m3,
        safety_factor=stope.safety_factor,
        friction_angle_deg=stope.friction_angle_deg,
        cohesion_ratio=1.0 if stope.cohesion_ratio is None else stope.cohesion_ratio,
        surcharge_kpa=0.0 if stope.surcharge_kpa is None else stope.surcharge_kpa,
    )


def site_floors(settings: DesignSettings) -> dict[str, float]:
    """The floors every required strength gets unless a request sets its own."""
    floor = settings.liquefaction_floor_kpa
    return {"liquefaction": floor} if floor > 0.0 else {}


def required_strength(
    stope: StopeIn, default_floors: Mapping[str, float]
) -> RequiredStrengthPublic:
    """The design UCS of ``stope``: its method's result, raised to any floor (the
    site's by default; a floor the request names replaces the site's of that name)."""
    computed = stope_requirement(stope)
    floors = {**default_floors, **stope.floors_kpa}
    governed = required.apply_floors(computed.ucs_kpa, floors)
    return RequiredStrengthPublic(
        required_ucs_kpa=governed.required_ucs_kpa,
        computed_ucs_kpa=governed.computed_ucs_kpa,
        governed_by=governed.governed_by,
        binding_floors=list(governed.binding_floors),
        floors_kpa=dict(governed.floors_kpa),
        method=stope.method,
        citation=CITATIONS[stope.method],
        cohesion_kpa=computed.cohesion_kpa,
        effective_height_m=computed.effective_height_m,
        sliding_plane_angle_deg=computed.sliding_plane_angle_deg,
        fs_definition=computed.fs_definition,
    )


@computation(router, "/strength/required", response_model=RequiredStrengthPublic)
async def strength_required(req: StopeIn, request: Request) -> RequiredStrengthPublic:
    """Required UCS of an exposed fill face: Mitchell et al. (1982) as commonly applied
    (FS multiplies the strength at limit equilibrium) or Li & Aubertin (2012) as
    published (FS defined on the sliding wedge, the cohesion solved at it); the answer's
    ``fs_definition`` says which. The site's floors (liquefaction, 100 kPa unless set)
    apply; ``binding_floors`` names every floor above the computed UCS."""
    return required_strength(req, site_floors(runtime_of(request).settings.design))


@computation(router, "/strength/arching", response_model=ArchingPublic)
async def strength_arching(req: ArchingRequest) -> ArchingPublic:
    """Vertical stress in a filled stope reduced by arching (for barricades, sill mats)."""
    stress = required.arching_vertical_stress_kpa(
        depth_m=req.depth_m,
        unit_weight_kn_m3=req.unit_weight_kn_m3,
        stope_width_m=req.stope_width_m,
        friction_angle_deg=req.friction_angle_deg,
        stope_length_m=req.stope_length_m,
        interface_friction_angle_deg=req.interface_friction_angle_deg,
        earth_pressure_coefficient=req.earth_pressure_coefficient,
        interface_cohesion_kpa=req.interface_cohesion_kpa,
        surcharge_kpa=req.surcharge_kpa,
    )
    geostatic = req.surcharge_kpa + req.unit_weight_kn_m3 * req.depth_m
    k = (
        required.rankine_active_coefficient(req.friction_angle_deg)
        if req.earth_pressure_coefficient is None
        else req.earth_pressure_coefficient
    )
    return ArchingPublic(
        vertical_stress_kpa=stress,
        geostatic_stress_kpa=geostatic,
        arching_ratio=stress / geostatic if geostatic > 0.0 else None,
        earth_pressure_coefficient=k,
        citation=ARCHING_CITATION,
    )
