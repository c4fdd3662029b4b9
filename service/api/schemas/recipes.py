"""Schemas of the recipe endpoints (docs/INTEGRATION.md "POST /recipes/proportion")."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from service.api.schemas.calibrations import ConfidencePct, PassFractionPct
from service.api.schemas.common import (
    APPROVER_DESCRIPTION,
    ComponentName,
    PositiveFloat,
    Public,
    ResourceId,
    SpecificGravity,
    Strict,
    Text,
    free_json_without_controls,
)
from service.api.schemas.rheology import PipeFlowPublic, PipelineIn
from service.api.schemas.strength import RequiredStrengthPublic, StopeIn

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


# --- the optimiser (POST /recipes/optimize) -------------------------------------------

PricePerT = Annotated[
    float,
    Field(ge=0.0, le=1.0e7, description="Price per tonne; costs come out in the same currency."),
]
FractionBoundPct = Annotated[float, Field(ge=0.0, le=100.0)]


class BinderOfferIn(Strict):
    """A binder the plant can dose, its price and its allowed share of the blend."""

    name: ComponentName
    specific_gravity: SpecificGravity
    price_per_t: PricePerT
    min_fraction_pct: FractionBoundPct = 0.0
    max_fraction_pct: FractionBoundPct = 100.0

    @field_validator("max_fraction_pct")
    @classmethod
    def _bounds(cls, value: float, info: ValidationInfo) -> float:
        return not_below_min(value, info)


def not_below_min(value: float, info: ValidationInfo) -> float:
    """A ``*max*`` field is at least its ``*min*`` twin (when that one was valid)."""
    low_field = (info.field_name or "").replace("max", "min")
    low = info.data.get(low_field)
    if low is not None and value < low:
        raise ValueError(f"must be at least {low_field} ({low:g})")
    return value


class RequirementIn(Strict):
    """One strength requirement: a UCS at a curing age, given or computed for a stope
    face (with the site's floors), e.g. a plug at 150 kPa at 3 days."""

    name: Annotated[
        str,
        Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", examples=["plug"]),
    ]
    stope: StopeIn | None = None
    required_ucs_kpa: Annotated[float | None, Field(gt=0.0, le=1.0e6)] = None
    curing_days: Annotated[float, Field(gt=0.0, le=3650.0)]

    @model_validator(mode="after")
    def _one_requirement(self) -> RequirementIn:
        if (self.stope is None) == (self.required_ucs_kpa is None):
            raise ValueError("give exactly one of stope or required_ucs_kpa")
        return self


class OptimizeRequest(Strict):
    """The cheapest recipe that meets every strength requirement at the pass fraction,
    inside the pumpable window.

    Requirements: a ``stope`` (its method and parameters, as for /strength/required) or
    an explicit ``required_ucs_kpa``, at ``curing_days``; or a list ``requirements``
    (e.g. the plug at 3 days and the body at 28). Each is met so that
    ``pass_fraction_pct`` % of cylinders pass (the site's 90 % by default): on the
    ``tolerance`` basis with ``confidence_pct`` confidence (the site's 95 % by default),
    on the ``expected`` basis on average over calibrations (``design_basis``: the site's,
    ``BACKFILL_DESIGN__BASIS``, by default).
    Pumpability: the Cw window, and/or ``max_yield_stress_pa`` and
    ``max_pump_pressure_kpa`` (with the ``pipeline``) predicted by the rheology
    calibration; with a pumpability limit the upper Cw may be left out.
    ``calibration_id`` / ``rheology_calibration_id`` default to the shipped EXAMPLE
    calibrations (synthetic, not for design).
    """

    stope: StopeIn | None = None
    required_ucs_kpa: Annotated[float | None, Field(gt=0.0, le=1.0e6)] = None
    curing_days: Annotated[float, Field(gt=0.0, le=3650.0, description="Design curing age.")] = 28.0
    requirements: Annotated[list[RequirementIn] | None, Field(min_length=1, max_length=8)] = None
    pass_fraction_pct: PassFractionPct | None = None
    design_basis: Annotated[
        Literal["tolerance", "expected"] | None,
        Field(
            description="tolerance: pass_fraction_pct % of cylinders pass with "
            "confidence_pct % confidence (a one-sided tolerance bound of the fit); "
            "expected: they pass on average over calibrations (the prediction interval). "
            "Default the site's (BACKFILL_DESIGN__BASIS)."
        ),
    ] = None
    confidence_pct: ConfidencePct | None = None
    binders: Annotated[list[BinderOfferIn], Field(min_length=1, max_length=6)]
    tailings: TailingsIn
    solids_pct_min: Annotated[float, Field(gt=0.0, lt=100.0, description="Pumpable Cw, low.")]
    solids_pct_max: Annotated[
        float | None,
        Field(
            gt=0.0,
            lt=100.0,
            description="Pumpable Cw, high; may be left out with a pumpability limit (the "
            "site's plausible maximum then bounds the search).",
        ),
    ] = None
    binder_pct_min: Annotated[float, Field(gt=0.0, le=50.0, description="Site Bw minimum.")]
    binder_pct_max: Annotated[float, Field(gt=0.0, le=50.0, description="Site Bw maximum.")]
    max_yield_stress_pa: Annotated[
        float | None, Field(gt=0.0, le=1.0e5, description="Pumpability: the yield stress.")
    ] = None
    max_pump_pressure_kpa: Annotated[
        float | None,
        Field(gt=0.0, le=1.0e5, description="Pumpability: the pump discharge pressure."),
    ] = None
    pipeline: PipelineIn | None = Field(
        default=None, description="The line: every design reports its pump pressure."
    )
    calibration_id: ResourceId | None = None
    rheology_calibration_id: ResourceId | None = None
    stope_volume_m3: Annotated[float | None, Field(gt=0.0, le=1.0e7)] = None
    allow_extrapolation: bool = Field(
        default=False,
        description="Search beyond the tested combinations (results flagged extrapolated).",
    )

    @field_validator("solids_pct_max", "binder_pct_max")
    @classmethod
    def _bounds(cls, value: float | None, info: ValidationInfo) -> float | None:
        return None if value is None else not_below_min(value, info)

    @field_validator("confidence_pct")
    @classmethod
    def _tolerance_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("design_basis") == "expected":
            raise ValueError(
                "confidence_pct belongs to a tolerance design; an expected design has none"
            )
        return value

    @field_validator("binders")
    @classmethod
    def _unique(cls, binders: list[BinderOfferIn]) -> list[BinderOfferIn]:
        names = [b.name for b in binders]
        if len(set(names)) != len(names):
            raise ValueError("binder names must be unique")
        return binders

    @field_validator("requirements")
    @classmethod
    def _named_once(cls, requirements: list[RequirementIn] | None) -> list[RequirementIn] | None:
        names = [r.name for r in requirements or ()]
        if len(set(names)) != len(names):
            raise ValueError("requirement names must be unique")
        return requirements

    @model_validator(mode="after")
    def _one_requirement(self) -> OptimizeRequest:
        given = [n for n in ("stope", "required_ucs_kpa", "requirements") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of stope, required_ucs_kpa or requirements")
        if self.max_pump_pressure_kpa is not None and self.pipeline is None:
            raise ValueError("max_pump_pressure_kpa needs the pipeline")

        if (
            self.solids_pct_max is None
            and self.max_yield_stress_pa is None
            and self.max_pump_pressure_kpa is None
        ):
            raise ValueError(
                "give solids_pct_max, or a pumpability limit (max_yield_stress_pa or "
                "max_pump_pressure_kpa)"
            )
        return self


class RequirementCheckPublic(Public):
    """How a recipe meets one requirement: the median UCS at its age, the UCS that
    ``pass_fraction_pct`` % of cylinders are expected to exceed (on average over
    calibrations) and that they exceed with the design's confidence, and the expected
    probability a cylinder passes."""

    name: str
    required_ucs_kpa: float
    curing_days: float
    median_ucs_kpa: float
    lower_ucs_kpa: float | None = Field(
        description="Expected: pass_fraction_pct % of cylinders exceed it on average over "
        "calibrations (the prediction interval)."
    )
    tolerance_lower_ucs_kpa: float | None = Field(
        description="pass_fraction_pct % of cylinders exceed it with confidence_pct % "
        "confidence (the tolerance bound; null on the expected basis)."
    )
    pass_probability_pct: float = Field(
        description="The expected % of cylinders reaching the requirement (on average over "
        "calibrations)."
    )
    binding: bool = Field(description="This requirement set the dose.")
    extrapolated: bool
    outside: list[str]


class PumpabilityPublic(Public):
    """Predicted by the rheology calibration (and, with a pipeline, for the line)."""

    yield_stress_pa: float
    slump_mm: float = Field(description="Abrams cone (300 mm).")
    pump_pressure_kpa: float | None
    line: PipeFlowPublic | None
    extrapolated: bool = Field(description="Cw or Bw outside the rheology tests.")


class CostedRecipePublic(Public):
    blend_pct: dict[str, float] = Field(description="% of the binder blend per offered binder.")
    binder_pct: float
    solids_pct: float
    predicted_ucs_kpa: float = Field(description="The median UCS at the binding requirement's age.")
    extrapolated: bool
    requirements: list[RequirementCheckPublic]
    pass_fraction_pct: float
    confidence_pct: float | None = Field(
        description="The confidence the pass fraction holds with (null: expected basis)."
    )
    pumpability: PumpabilityPublic
    water_binder_ratio: float
    wet_density_kg_m3: float
    binder_kg_m3: float
    binder_components_kg_m3: dict[str, float]
    binder_cost_per_m3: float
    binder_cost_for_stope: float | None
    mix: StoredMixIn = Field(description="The recipe as POST /recipes takes it.")
    uncertainty: dict[str, Any] | None = Field(
        default=None,
        description="What the design's spread of ln UCS rests on: the fit's (lab scatter and "
        "the design point's leverage), the plant's own Cw and Bw spread carried through the "
        "strength model (from its pours, or the site's default, said which), and the total "
        "the pass fraction is designed on.",
    )


class CalibrationUsedPublic(Public):
    id: str
    name: str
    version: int
    example: bool = Field(description="The shipped synthetic example: not for design.")


class SearchPublic(Public):
    blend_step_pct: float
    solids_step_pct: float
    candidates_evaluated: int


class RequirementPublic(Public):
    name: str
    required_ucs_kpa: float
    curing_days: float
    governed_by: str = Field(
        description='"given" for an explicit required_ucs_kpa, else "computed" or a floor.'
    )
    required: RequiredStrengthPublic | None


class OptimizePublic(Public):
    required_ucs_kpa: float = Field(description="The binding requirement's.")
    governed_by: str = Field(
        description='"given" for an explicit required_ucs_kpa, else "computed" or a floor.'
    )
    required: RequiredStrengthPublic | None
    curing_days: float
    requirements: list[RequirementPublic]
    binding_requirement: str
    pass_fraction_pct: float
    design_basis: str = Field(description="tolerance or expected (see the request).")
    confidence_pct: float | None = Field(
        description="The confidence of a tolerance design (null on the expected basis)."
    )
    design_statement: str = Field(
        description="What the design promises, in words: e.g. at least 90 % of cylinders "
        "pass each requirement with 95 % confidence."
    )
    recipe: CostedRecipePublic
    binding_constraints: list[str]
    cement_only: CostedRecipePublic | None
    cement_only_note: str | None
    saving_per_m3: float | None
    saving_pct: float | None
    saving_for_stope: float | None
    calibration: CalibrationUsedPublic
    rheology_calibration: CalibrationUsedPublic
    search: SearchPublic


# --- stored recipes (POST/GET /recipes) -----------------------------------------------

DESIGN_MAX_CHARS = 32_768


class RecipeCreate(Strict):
    """An immutable recipe version; the same ``name`` again is the next version. With
    ``approved_by`` the storing engineer approves it at once (the key's person: with a
    key that names one, ``approved_by`` must be that name); without, it is a draft
    until approved (``POST /recipes/{id}/approve``). Either way the approval is an
    entry of the audit log naming the person. Only an approved version runs in a pour,
    unless the site allows otherwise."""

    name: Annotated[Text, Field(min_length=1, max_length=100)]
    mix: StoredMixIn
    approved_by: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=100,
            description="Given: approve it now, as this person. " + APPROVER_DESCRIPTION,
        ),
    ] = None
    calibration_id: Annotated[
        ResourceId | None, Field(description="The model it was designed with.")
    ] = None
    unmakeable_reason: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=500,
            description="Why a recipe the plant cannot make from its feed (or outside its Cw "
            "window) is stored all the same; kept in the audit log with the approval.",
        ),
    ] = None
    design: dict[str, Any] | None = Field(
        default=None,
        description="Free design record (e.g. the optimiser's answer), at most "
        f"{DESIGN_MAX_CHARS} characters of JSON, finite numbers only.",
    )

    @field_validator("design")
    @classmethod
    def _design_size(cls, design: dict[str, Any] | None) -> dict[str, Any] | None:
        if design is None:
            return None
        try:
            text = json.dumps(design, allow_nan=False)
        except ValueError as err:
            raise ValueError("design must hold finite numbers only") from err
        if len(text) > DESIGN_MAX_CHARS:
            raise ValueError(
                f"design is {len(text)} characters of JSON; at most {DESIGN_MAX_CHARS}"
            )
        free_json_without_controls(design)
        return design


class RecipeApprove(Strict):
    """An engineer's approval of a stored version (recorded in the audit log, naming
    the key's person)."""

    unmakeable_reason: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=500,
            description="Why a version the plant cannot make is approved all the same "
            "(kept in the audit log); refused without it.",
        ),
    ] = None

    approved_by: Annotated[
        Text | None, Field(min_length=1, max_length=100, description=APPROVER_DESCRIPTION)
    ] = None


class PredictedStrengthPublic(Public):
    calibration_version: int
    example: bool
    curing_days: float
    ucs_kpa: float = Field(description="The median: about half the cylinders test below it.")
    lower_ucs_kpa: float | None = Field(
        description="The UCS that pass_fraction_pct % of cylinders are expected to exceed "
        "(on average over calibrations: the prediction interval)."
    )
    pass_fraction_pct: float
    extrapolated: bool
    outside: list[str]


class TailingsPublic(Public):
    specific_gravity: float
    moisture_pct: float = 0.0


class BinderComponentPublic(Public):
    name: str
    specific_gravity: float
    fraction_pct: float


class AggregatePublic(Public):
    specific_gravity: float
    fraction_pct: float
    moisture_pct: float = 0.0


class MixPublic(Public):
    """A stored mix as it was stored (read back without the request rules, so that a
    version stored under older rules still reads)."""

    tailings: TailingsPublic
    binder: list[BinderComponentPublic]
    binder_pct: float
    solids_pct: float
    aggregate: AggregatePublic | None = None


class RecipePublic(Public):
    id: str
    name: str
    version: int
    created_at: datetime
    created_by: str = Field(description="Role of the key that stored it.")
    approved: bool = Field(description="An engineer approved this version; only those run.")
    approved_by: str | None
    approved_at: datetime | None
    calibration_id: str | None
    mix: MixPublic
    design: dict[str, Any] | None
    per_m3: MassesPublic | None = Field(
        description="Null when the stored mix cannot be proportioned (see problems)."
    )
    water_binder_ratio: float | None
    predicted_ucs_28d: PredictedStrengthPublic | None
    prediction_note: str | None = None
    problems: list[str] = Field(
        default_factory=list,
        description="Why this version could not run today: outside the site's plausible "
        "ranges (which may have changed since it was stored), or not proportionable.",
    )
    makeability: dict[str, Any] | None = Field(
        default=None,
        description="Whether the plant can make it today: every limit checked (the feed's "
        "reach at the recipe's moisture and at the plant's wettest feed, the Cw window), "
        "with what each rests on (settings, the simulator's profile, the history).",
    )
