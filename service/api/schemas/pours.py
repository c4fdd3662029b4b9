"""Schemas of the pour endpoints (docs/INTEGRATION.md "Pours")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from service.api.schemas.common import ResourceId, Strict, Text
from service.api.schemas.recipes import StoredMixIn
from service.api.schemas.reconciled import CorrectionPublic, PourReconciliationPublic

SampleId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]


class PourCreate(Strict):
    stope_id: Annotated[Text, Field(min_length=1, max_length=100, examples=["S-101"])]
    recipe: StoredMixIn | None = Field(
        default=None, description="An inline recipe; stored as a recipe version on the way."
    )
    recipe_id: ResourceId | None = Field(default=None, description="A stored recipe version.")
    target_volume_m3: Annotated[float, Field(gt=0.0, le=1_000_000.0)]
    paste_flow_m3_h: Annotated[float, Field(gt=0.0, le=500.0)]
    sample_ids: Annotated[list[SampleId], Field(max_length=200, default_factory=list)]

    @model_validator(mode="after")
    def _one_recipe(self) -> PourCreate:
        if (self.recipe is None) == (self.recipe_id is None):
            raise ValueError("give exactly one of recipe or recipe_id")
        return self


class SamplesAdd(Strict):
    sample_ids: Annotated[list[SampleId], Field(min_length=1, max_length=200)]


class PourCommandPublic(BaseModel):
    """A command given on a pour, from its audit entry."""

    action: str = Field(description="create, start, pause, resume, stop or samples.")
    at: datetime
    role: str
    person: str | None = Field(
        description="Who gave it: the key's person (or, for a key of a role alone, the role "
        "and the key's id); null for a command stored before people were named."
    )
    audit_id: int


class PourPublic(BaseModel):
    id: str
    stope_id: str
    recipe_id: str
    state: str
    target_volume_m3: float
    paste_flow_m3_h: float
    poured_m3: float
    progress_pct: float
    dry_tailings_t: float
    binder_t: float
    binder_t_by_component: dict[str, float]
    water_m3: float
    average_solids_pct: float | None
    min_solids_pct: float | None
    max_solids_pct: float | None
    average_binder_pct: float | None
    min_binder_pct: float | None
    max_binder_pct: float | None
    off_spec_m3: float = Field(
        description="Volume placed while the measured Cw or Bw was outside its band."
    )
    startup_off_spec_m3: float = Field(
        description="The part of off_spec_m3 placed after a start of the plant, before "
        "Cw and Bw were first both inside their bands (flush water being displaced)."
    )
    flush_water_m3: float = Field(
        description="Line flow while the PLC flushed during the pour: water, not paste."
    )
    unmeasured_m3: float = Field(
        description="Volume placed while a measurement was bad (integrated from setpoints)."
    )
    dumped_m3: float = Field(
        default=0.0,
        description="Paste sent to the dump (start-up, flush, by the diverter's proven "
        "position): never stope volume, never in poured_m3.",
    )
    dumped_binder_t: float = 0.0
    dumped_binder_t_by_component: dict[str, float] = Field(default_factory=dict)
    dumped_dry_tailings_t: float = 0.0
    dumped_water_m3: float = 0.0
    recovered_m3: float = Field(
        default=0.0,
        description="Paste the plant placed while the service was down (around a crash), "
        "taken into poured_m3 (or dumped_m3) afterwards from the PLC's totaliser or the "
        "history; its interruption names the basis.",
    )
    solids_verified: bool = Field(
        default=False,
        description="Whether the lab has verified the tailings Gs the Cw rests on (an "
        "approved Gs correction, or a reconciliation holding the recipe's Gs within 2 %). "
        "Until then the Cw figures, off_spec_m3 among them, are as the gauges and the "
        "recipe's Gs say: unverified, not in spec.",
    )
    solids_basis: str = Field(default="", description="What verified it, or why not.")
    judged_on: str = Field(
        default="paste_estimate",
        description="What Cw, Bw and off_spec_m3 are judged on: the paste as the mixer "
        "delivers it, estimated from the readings over its residence time, never single "
        "readings.",
    )
    solids_sd_pct: float | None = Field(
        default=None,
        description="The estimate's Cw sd from the gauges' noise (volume-weighted, points).",
    )
    solids_tolerance_pct: float | None = Field(
        default=None,
        description="The Cw error the density gauge's calibration tolerance allows (points).",
    )
    binder_sd_pct: float | None = Field(
        default=None, description="The estimate's Bw sd from the readings' noise (points)."
    )
    binder_tolerance_pct: float | None = Field(
        default=None,
        description="The Bw error the scales' and feed meter's tolerances allow (points).",
    )
    created_at: datetime
    created_by: str
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime
    clock: str = Field(
        default="wall",
        description="The clock of every time of a pour: wall time (a stope's plan keeps "
        "plant time).",
    )
    interruptions: list[dict[str, Any]]
    sample_ids: list[str]
    plan_id: str | None = Field(default=None, description="The stope's fill plan, if any.")
    stage: int | None = Field(default=None, description="The plan's stage (index) it fills.")
    correction: CorrectionPublic | None = Field(
        default=None,
        description="The Cw correction in force when the pour started, which control "
        "ran on (None: the recipe's tailings Gs and the density gauge as read).",
    )
    reconciliation: PourReconciliationPublic | None = Field(
        default=None,
        description="Its Cw reconciled beside the one it was controlled on and its "
        "off-spec volume on the best estimate (GET /pours/{id} and the pour report).",
    )
    commands: list[PourCommandPublic] | None = Field(
        default=None,
        description="Every command given on the pour (create, start, pause, resume, stop, "
        "samples), oldest first, with who gave it, as the audit log holds them (GET "
        "/pours/{id}; null where not read).",
    )


class PourList(BaseModel):
    items: list[PourPublic]
