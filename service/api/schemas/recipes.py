"""Schemas of the recipe endpoints (CONTRACT "POST /recipes/proportion")."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from service.api.schemas.common import (
    ComponentName,
    PositiveFloat,
    Public,
    SpecificGravity,
    Strict,
)

_FRACTION_SUM_TOLERANCE = 1e-6


class TailingsIn(Strict):
    specific_gravity: SpecificGravity
    moisture_pct: Annotated[
        float,
        Field(
            ge=0.0,
            le=1000.0,
            description="w0: water mass as % of dry tailings mass (76 % solids -> 31.58).",
        ),
    ] = 0.0


class BinderComponentIn(Strict):
    name: ComponentName
    specific_gravity: SpecificGravity
    fraction_pct: Annotated[
        float, Field(gt=0.0, le=100.0, description="% of the binder blend by mass.")
    ]


class AggregateIn(Strict):
    specific_gravity: SpecificGravity
    fraction_pct: Annotated[
        float,
        Field(ge=0.0, lt=100.0, description="% of the non-binder dry solids that is aggregate."),
    ]
    moisture_pct: Annotated[
        float, Field(ge=0.0, le=100.0, description="Water as % of dry aggregate mass.")
    ] = 0.0


class MixIn(Strict):
    """A recipe's mix: what a pour runs and what proportioning takes."""

    tailings: TailingsIn
    binder: Annotated[list[BinderComponentIn], Field(min_length=1, max_length=6)]
    binder_pct: Annotated[
        float,
        Field(
            gt=0.0,
            le=50.0,
            description="Bw: binder dry mass as % of dry tailings mass (of tailings + "
            "aggregate when aggregate is given).",
        ),
    ]
    solids_pct: Annotated[
        float | None,
        Field(gt=0.0, lt=100.0, description="Cw: dry solids as % of total paste mass."),
    ] = None
    aggregate: AggregateIn | None = None

    @field_validator("binder")
    @classmethod
    def _blend(cls, binder: list[BinderComponentIn]) -> list[BinderComponentIn]:
        names = [c.name for c in binder]
        if len(set(names)) != len(names):
            raise ValueError("binder component names must be unique")
        total = sum(c.fraction_pct for c in binder)
        if abs(total - 100.0) > _FRACTION_SUM_TOLERANCE * 100:
            raise ValueError(f"binder fraction_pct must sum to 100, got {total:g}")
        return binder


class StoredMixIn(MixIn):
    """A mix stored in a recipe: Cw is required."""

    solids_pct: Annotated[
        float, Field(gt=0.0, lt=100.0, description="Cw: dry solids as % of total paste mass.")
    ]


class ProportionRequest(MixIn):
    """Exactly one of ``solids_pct``, ``water_binder_ratio`` or ``wet_density_kg_m3``."""

    water_binder_ratio: Annotated[
        float | None, Field(gt=0.0, le=100.0, description="Target W/C = water / binder mass.")
    ] = None
    wet_density_kg_m3: Annotated[
        float | None, Field(gt=1000.0, lt=5000.0, description="Target wet (bulk) density.")
    ] = None
    volume_m3: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _one_target(self) -> ProportionRequest:
        given = [
            n
            for n in ("solids_pct", "water_binder_ratio", "wet_density_kg_m3")
            if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of solids_pct, water_binder_ratio, wet_density_kg_m3"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class MassesPublic(Public):
    wet_density_kg_m3: float | None = None
    dry_density_kg_m3: float | None = None
    wet_paste_kg: float
    dry_solids_kg: float
    dry_tailings_kg: float
    wet_tailings_kg: float
    dry_aggregate_kg: float | None = None
    wet_aggregate_kg: float | None = None
    binder_kg: float
    binder_components_kg: dict[str, float]
    water_kg: float
    water_to_add_kg: float


class SpecificGravityPublic(Public):
    binder: float
    solids: float


class ProportionPublic(Public):
    per_m3: MassesPublic
    total: MassesPublic
    volume_m3: float
    binder_pct: float
    solids_pct: float
    water_binder_ratio: float
    specific_gravity: SpecificGravityPublic
    void_ratio: float
    porosity: float
    feed_too_wet: bool = Field(
        description="The feed alone holds more water than the recipe: water_to_add_kg < 0."
    )


def masses_public(
    masses: Any, *, wet_density: float | None, dry_density: float | None, aggregate: bool
) -> MassesPublic:
    return MassesPublic(
        wet_density_kg_m3=wet_density,
        dry_density_kg_m3=dry_density,
        wet_paste_kg=masses.wet_paste_kg,
        dry_solids_kg=masses.dry_solids_kg,
        dry_tailings_kg=masses.dry_tailings_kg,
        wet_tailings_kg=masses.wet_tailings_kg,
        dry_aggregate_kg=masses.dry_aggregate_kg if aggregate else None,
        wet_aggregate_kg=masses.wet_aggregate_kg if aggregate else None,
        binder_kg=masses.binder_kg,
        binder_components_kg=dict(masses.binder_components_kg),
        water_kg=masses.water_kg,
        water_to_add_kg=masses.water_to_add_kg,
    )
