"""Schemas of the pour report as JSON: the same content as its CSV."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from service.api.schemas.common import Public
from service.api.schemas.plant import TrendPublic
from service.api.schemas.pours import PourPublic
from service.api.schemas.samples import CompliancePublic


class ReportRecipePublic(Public):
    """The recipe version the pour ran."""

    id: str
    name: str
    version: int
    approved_by: str | None
    approved_at: datetime | None
    calibration_id: str | None
    binder_pct: float = Field(description="Bw: binder as % of dry tailings mass.")
    solids_pct: float = Field(description="Cw: dry solids as % of paste mass.")
    tailings_sg: float
    blend_pct: dict[str, float]


class ReportSpecPublic(Public):
    """The bands the pour was judged by (the alarms')."""

    solids_band_pct_points: float = Field(description="Cw off-spec beyond +- these points.")
    binder_band_relative_pct: float = Field(description="Bw off-spec beyond +- this % of it.")


class PourReportPublic(BaseModel):
    """The pour (with its Cw reconciliation), its recipe, the spec bands, the compliance
    of its cylinders and the Cw/Bw trend (solids_pct, solids_pct_target, binder_pct,
    binder_pct_target) over the pour."""

    pour: PourPublic
    recipe: ReportRecipePublic
    spec: ReportSpecPublic
    compliance: CompliancePublic | None
    trend: TrendPublic
