"""Schemas of a pour's Cw reconciliation: the correction control ran on and the one it
is reconciled with, its Cw beside the one it was controlled on, and its off-spec volume
on the best estimate (a module of its own: the pour schemas use it)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from service.api.schemas.common import Public


class CorrectionPublic(Public):
    """An approved correction as control uses it (the shape a pour carries)."""

    id: str
    kind: Literal["tailings_gs", "density_gauge"]
    tailings_sg: float | None = Field(description="The corrected tailings Gs (tailings_gs).")
    density_bias_kg_m3: float | None = Field(
        description="The paste density gauge reads this much high (density_gauge)."
    )
    assumed_tailings_sg: float = Field(
        description="The recipes' tailings Gs it corrects; a Gs correction applies to them."
    )
    low: float | None
    high: float | None
    approved_by: str | None
    approved_at: datetime | None


class SolidsFiguresPublic(Public):
    average_solids_pct: float | None = Field(description="Volume-weighted.")
    min_solids_pct: float | None
    max_solids_pct: float | None


class OffSpecPublic(Public):
    basis: Literal["reconciled", "as_controlled"] = Field(
        description="The estimate volume_m3 was judged on."
    )
    volume_m3: float = Field(description="Off-spec volume on the best estimate.")
    as_controlled_m3: float = Field(description="The record's own (off_spec_m3).")
    reconciled_m3: float | None
    unknown_m3: float | None = Field(description="Placed without a usable density.")
    history_step_s: int | None


class PourReconciliationPublic(Public):
    """The pour's Cw reconciled beside the one it was controlled on (its record is not
    changed) and its off-spec volume on the best estimate; ``basis`` says which is the
    best (``reconciled`` with an approved correction that applies to the recipe)."""

    basis: Literal["reconciled", "as_controlled"]
    detail: str
    reconciled_with: CorrectionPublic | None
    controlled_with: CorrectionPublic | None
    as_controlled: SolidsFiguresPublic
    reconciled: SolidsFiguresPublic | None
    best_average_solids_pct: float | None
    off_spec: OffSpecPublic
