"""Schemas of the Cw reconciliation: the lab's Cw against the recorded Cw of the same
paste names the tailings Gs (or a paste density gauge bias); the correction proposed,
approved, used by control, and a pour's Cw reconciled beside the one it was controlled
on.

Units as everywhere in the API: ``*_solids_pct`` is Cw (dry solids as % of paste mass),
densities in kg/m3, Gs relative to water; an interval is at ``confidence_pct``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from service.api.schemas.common import APPROVER_DESCRIPTION, JsonDateTime, Public, Strict, Text
from service.api.schemas.pours import SampleId
from service.api.schemas.reconciled import CorrectionPublic


class ReconciliationCreate(Strict):
    """Which samples to reconcile and how their masses were taken.

    ``sample_ids``, or every sample cast in [``cast_from``, ``cast_to``) (both open by
    default). A sample counts with a result carrying its wet and dry masses (the
    youngest such entry) and the paste density the history holds at its cast.
    """

    sample_ids: Annotated[list[SampleId] | None, Field(min_length=2, max_length=2000)] = None
    cast_from: JsonDateTime | None = None
    cast_to: JsonDateTime | None = None
    tailings_sg: Annotated[
        float | None,
        Field(
            gt=1.0,
            le=10.0,
            description="Reconcile the samples whose recipe assumes this tailings Gs (one "
            "tailings source at a time; needed when the samples' recipes differ).",
        ),
    ] = None
    masses_of: Literal["fresh_paste", "cured_cylinder"] = Field(
        default="fresh_paste",
        description="fresh_paste: weighed and dried at once (its Cw is the paste's, its "
        "bulk density the paste's); cured_cylinder: the oven-dry mass keeps the water "
        "the binder bound, corrected with degree_of_hydration (Powers & Brownyard 1947).",
    )
    degree_of_hydration: Annotated[
        float | None,
        Field(ge=0.0, le=1.0, description="Of the binder at the test age (cured cylinders)."),
    ] = None
    non_evaporable_water_ratio: Annotated[
        float,
        Field(
            ge=0.0,
            le=0.5,
            description="g of water bound per g of binder hydrated (0.23 Portland cement).",
        ),
    ] = 0.23
    cast_window_s: Annotated[
        float,
        Field(
            gt=0.0,
            le=600.0,
            description="The paste density at a cast is the history's mean over +- this.",
        ),
    ] = 60.0
    confidence_pct: Annotated[float, Field(ge=50.0, le=99.9)] = 95.0

    @model_validator(mode="after")
    def _times(self) -> ReconciliationCreate:
        for name in ("cast_from", "cast_to"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} needs a time zone offset")
        return self


class ReconciliationApprove(Strict):
    """An engineer's approval of a proposed Cw correction (audited, naming the key's
    person)."""

    approved_by: Annotated[
        Text | None, Field(min_length=1, max_length=200, description=APPROVER_DESCRIPTION)
    ] = None


class EstimatePublic(Public):
    """A mean over ``n`` samples with its standard error and Student t interval (None
    with one sample)."""

    value: float
    n: int
    standard_error: float | None
    low: float | None
    high: float | None
    sample_sd: float | None


class CorrectionProposalPublic(Public):
    """The correction put to the engineer: ``tailings_gs`` (recompute Cw with
    ``tailings_sg``) or ``density_gauge`` (the gauge reads ``density_bias_kg_m3``
    high); ``low``/``high`` the interval of that quantity; ``determined`` False when
    the data could not tell the two apart (the better fitting one is proposed)."""

    kind: Literal["tailings_gs", "density_gauge"]
    tailings_sg: float | None
    density_bias_kg_m3: float | None
    low: float | None
    high: float | None
    determined: bool
    basis: str


class ReconciledSamplePublic(Public):
    sample_id: str
    pour_id: str
    result_id: str = Field(description="The lab entry whose masses were used.")
    cast_at: datetime
    lab_solids_pct: float = Field(description="The lab's Cw (bound water taken off).")
    measured_solids_pct: float = Field(description="Dry mass / wet mass as weighed.")
    recorded_solids_pct: float = Field(description="The plant's Cw at the cast.")
    gauge_density_kg_m3: float
    lab_density_kg_m3: float | None
    tailings_sg: float = Field(description="The tailings Gs this sample implies.")
    density_bias_kg_m3: float = Field(description="The gauge bias this sample implies.")


class SkippedSamplePublic(Public):
    sample_id: str
    reason: str


class ReconciliationPublic(Public):
    """A reconciliation and the correction it proposes (``status`` ``proposed``, then
    ``approved``), or ``none`` when the lab Cw shows no error to correct (``verdict``
    ``consistent``) or too few samples (``insufficient``)."""

    id: str
    created_at: datetime
    created_by: str
    status: Literal["proposed", "approved", "none"]
    active: bool = Field(description="The correction control uses from now on.")
    approved_by: str | None
    approved_at: datetime | None
    verdict: Literal["insufficient", "consistent", "tailings_gs", "density_gauge", "undetermined"]
    explanation: str
    confidence_pct: float
    assumed_tailings_sg: float = Field(description="The tailings Gs the recipes assume.")
    tailings_sg: EstimatePublic = Field(description="The tailings Gs the lab Cw implies.")
    tailings_sg_error_pct: float = Field(description="Its departure, % of the assumed Gs.")
    density_bias_kg_m3: EstimatePublic = Field(
        description="The gauge bias that would explain the lab Cw instead."
    )
    direct_density_bias_kg_m3: EstimatePublic | None = Field(
        description="Gauge minus lab density of fresh paste (two or more lab densities)."
    )
    mean_solids_error_pct: float = Field(description="Lab minus recorded Cw, points.")
    residual_sd_gs_pct: float | None
    residual_sd_bias_pct: float | None
    gs_weight: float | None = Field(
        description="Akaike weight of the Gs explanation against the gauge bias (0-1)."
    )
    proposal: CorrectionProposalPublic | None
    samples_needed: int | None = Field(
        description="Samples that name a Gs error of detect_relative_gs_error_pct with "
        "90 % power at the observed spread."
    )
    detect_relative_gs_error_pct: float
    masses_of: Literal["fresh_paste", "cured_cylinder"]
    degree_of_hydration: float | None
    non_evaporable_water_ratio: float
    cast_window_s: float
    active_correction_id: str | None = Field(
        description="The correction in force when this was computed."
    )
    active_within_interval: bool | None = Field(
        description="Whether the correction in force lies inside this estimate's interval."
    )
    samples: list[ReconciledSamplePublic]
    skipped: list[SkippedSamplePublic]


class ReconciliationList(BaseModel):
    items: list[ReconciliationPublic]


class ActiveCorrectionPublic(BaseModel):
    correction: CorrectionPublic | None = Field(
        description="The newest approved correction (None: the recipes' Gs, the gauge as read)."
    )
