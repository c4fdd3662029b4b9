"""Schemas of the calibration (strength model) endpoints.

Percentages as everywhere in the API: ``blend`` is % of the binder by mass per
component, ``binder_pct`` is Bw (% of dry tailings), ``solids_pct`` is Cw (% of paste).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from service.api.schemas.common import (
    APPROVER_DESCRIPTION,
    ComponentName,
    MultilineText,
    Public,
    Strict,
    Text,
)

_SUM_TOLERANCE_PCT = 1.0e-4  # the core's 1e-6 on fractions
MAX_ROWS = 5000
MAX_CSV_CHARS = 1_000_000


def check_blend(blend: dict[str, float]) -> dict[str, float]:
    total = sum(blend.values())
    if abs(total - 100.0) > _SUM_TOLERANCE_PCT:
        raise ValueError(f"blend percentages must sum to 100, got {total:g}")
    return blend


BlendPct = Annotated[
    dict[ComponentName, Annotated[float, Field(ge=0.0, le=100.0)]],
    Field(
        min_length=1,
        max_length=6,
        description="% of the binder blend by mass per component, summing to 100.",
        examples=[{"cement": 20, "slag": 80}],
    ),
    AfterValidator(check_blend),
]
BinderPct = Annotated[
    float, Field(gt=0.0, le=100.0, description="Bw: binder as % of dry tailings mass.")
]
SolidsPct = Annotated[float, Field(gt=0.0, lt=100.0, description="Cw: dry solids as % of paste.")]
CuringDays = Annotated[float, Field(gt=0.0, le=3650.0)]
CalibrationName = Annotated[Text, Field(min_length=1, max_length=100)]


def blend_fractions(blend: dict[str, float]) -> dict[str, float]:
    """API percentages -> core fractions (0-1)."""
    return {name: pct / 100.0 for name, pct in blend.items()}


class CylinderIn(Strict):
    """One laboratory cylinder."""

    sample_id: Annotated[Text | None, Field(max_length=64)] = None
    blend: BlendPct
    binder_pct: BinderPct
    solids_pct: SolidsPct
    curing_days: CuringDays
    ucs_kpa: Annotated[float, Field(gt=0.0, le=1.0e6, description="Measured UCS.")]


class CalibrationCreate(Strict):
    """Laboratory cylinders as JSON ``rows`` or as ``csv`` text (exactly one).

    The CSV has the columns ``binder_pct``, ``solids_pct``, ``curing_days``, ``ucs_kpa``,
    one ``<binder>_fraction_pct`` per component and optionally ``sample_id``; lines
    starting with ``#`` are comments.
    """

    name: CalibrationName
    rows: Annotated[list[CylinderIn] | None, Field(min_length=1, max_length=MAX_ROWS)] = None
    csv: Annotated[MultilineText | None, Field(min_length=1, max_length=MAX_CSV_CHARS)] = None
    reference_component: ComponentName = Field(
        default="cement", description="The blend's reference binder (no blend term)."
    )
    range_tolerance_pct: Annotated[
        float,
        Field(
            ge=0.0,
            le=100.0,
            description="Predictions are accepted this % of the span beyond the tested "
            "binder/water ratios (ln Mb/Mw) and ages (ln t); never beyond the tested blends "
            "(a blend outside them is extrapolation).",
        ),
    ] = 10.0

    @model_validator(mode="after")
    def _one_source(self) -> CalibrationCreate:
        if (self.rows is None) == (self.csv is None):
            raise ValueError("give exactly one of rows or csv")
        return self


PassFractionPct = Annotated[
    float,
    Field(
        ge=50.0,
        le=99.99,
        description="% of cylinders that should pass: the lower bounds are stated at it "
        "(default the site's, BACKFILL_DESIGN__PASS_FRACTION_PCT, 90).",
    ),
]
ConfidencePct = Annotated[
    float,
    Field(
        ge=50.0,
        le=99.9,
        description="The confidence of the tolerance bound: pass_fraction_pct % of the "
        "cylinders exceed it with this confidence (default the site's, "
        "BACKFILL_DESIGN__CONFIDENCE_PCT, 95).",
    ),
]


class PredictRequest(Strict):
    blend: BlendPct
    binder_pct: BinderPct
    solids_pct: SolidsPct
    curing_days: CuringDays = 28.0
    pass_fraction_pct: PassFractionPct | None = None
    confidence_pct: ConfidencePct | None = None
    required_ucs_kpa: Annotated[
        float | None,
        Field(gt=0.0, le=1.0e6, description="A requirement: its pass probability is stated."),
    ] = None
    allow_extrapolation: bool = Field(
        default=False,
        description="Return a prediction outside the tested combinations, flagged, "
        "instead of refusing it.",
    )


class RangePublic(Public):
    min: float
    max: float


class DataRangePublic(Public):
    """The calibration data's range in API units. Predictions are accepted within the
    tested binder/water ratios and ages widened by ``tolerance_pct`` of their span (on
    ln Mb/Mw and ln t), and within the tested blends (``blend_pct``) exactly."""

    binder_pct: RangePublic
    solids_pct: RangePublic
    curing_days: RangePublic
    blend_pct: dict[str, RangePublic]
    tolerance_pct: float


class CylinderPublic(Public):
    sample_id: str | None = None
    blend: dict[str, float]
    binder_pct: float
    solids_pct: float
    curing_days: float
    ucs_kpa: float


class ResidualPublic(Public):
    index: int
    sample_id: str | None
    measured_kpa: float
    predicted_kpa: float
    residual_kpa: float = Field(description="measured - predicted")
    residual_log: float = Field(description="ln measured - ln predicted")


class CalibrationSummaryPublic(Public):
    id: str
    name: str
    version: int
    created_at: datetime
    created_by: str = Field(description="Role of the key that stored it.")
    example: bool = Field(description="The shipped synthetic example: not for design.")
    status: str = Field(
        default="approved",
        description="approved (designs may use it) or proposed (a refit from lab results "
        "waiting for an engineer's approval: predictions only, no designs).",
    )
    approved_by: str | None = None
    approved_at: datetime | None = None
    proposed_from: str | None = Field(
        default=None, description="The calibration version a proposal refits."
    )
    label: str
    n_rows: int
    r2_log: float
    r2_kpa: float
    rmse_log: float
    rmse_kpa: float
    components: list[str]
    range: DataRangePublic


class CalibrationPublic(CalibrationSummaryPublic):
    form: str
    reference_component: str
    n_parameters: int
    terms: list[str]
    dropped_terms: list[str]
    coefficients: dict[str, Any]
    residuals: list[ResidualPublic]
    rows: list[CylinderPublic]
    proposal: dict[str, Any] | None = Field(
        default=None, description="A proposal's figures (see POST .../proposals)."
    )


class OutsidePublic(Public):
    """Why a point is extrapolated: a regressor outside its tested range (on its own
    scale: ln Mb/Mw, ln days, % of the blend), or a leverage beyond the data's
    (``regressor_hull``: a combination never tested even if each input was)."""

    variable: str
    value: float
    accepted_min: float
    accepted_max: float
    detail: str


class PredictionPublic(Public):
    calibration_id: str
    calibration_version: int
    example: bool
    ucs_kpa: float = Field(description="The median: about half the cylinders test below it.")
    median_ucs_kpa: float
    lower_ucs_kpa: float = Field(
        description="The UCS that pass_fraction_pct % of new cylinders are expected to "
        "exceed: on average over calibrations (the fit's prediction interval: residual "
        "spread and the point's leverage, Student t); one calibration of few cylinders "
        "can deliver well under it."
    )
    tolerance_lower_ucs_kpa: float = Field(
        description="The UCS that pass_fraction_pct % of new cylinders exceed with "
        "confidence_pct % confidence (a one-sided tolerance bound: noncentral t factor "
        "at the point's leverage)."
    )
    pass_fraction_pct: float
    confidence_pct: float
    required_ucs_kpa: float | None
    pass_probability_pct: float | None = Field(
        description="The expected probability (on average over calibrations) that a new "
        "cylinder reaches required_ucs_kpa."
    )
    curing_days: float
    standard_error_log: float = Field(description="Of a new cylinder's ln UCS.")
    degrees_of_freedom: int
    leverage: float
    leverage_max: float = Field(description="The largest leverage of a tested cylinder.")
    extrapolated: bool
    outside: list[str] = Field(description="Why the point is outside the tested combinations.")
    outside_details: list[OutsidePublic]


class CalibrationApprove(Strict):
    """An engineer's approval of a proposed calibration version (audited, naming the
    key's person)."""

    approved_by: Annotated[
        Text | None, Field(min_length=1, max_length=100, description=APPROVER_DESCRIPTION)
    ] = None


class ProposalCreate(Strict):
    """Refit the calibration on its rows plus the laboratory results of the cylinders
    cast from pours (their recipes' blend and Bw)."""

    use_lab_solids: bool = Field(
        default=True,
        description="Cw of a cylinder: its own, from its wet and dry masses when measured "
        "(reads high by the binder's bound water); false: the recipe's Cw.",
    )


class CoefficientChangePublic(Public):
    term: str
    before: float | None
    after: float | None
    change: float | None = Field(description="after - before")


class PredictionErrorPublic(Public):
    """How a model predicted the new results: residuals are measured - predicted (a
    positive bias: the model under-predicts)."""

    n: int
    n_not_predictable: int = Field(description="A binder the model has no data for.")
    n_extrapolated: int
    rmse_log: float | None
    bias_log: float | None
    rmse_kpa: float | None
    bias_kpa: float | None
    bias_t: float | None
    bias_p_value: float | None
    pass_fraction_pct: float
    above_lower_pct: float | None = Field(
        description="% of the new cylinders at or above the model's lower bound at the pass "
        "fraction (about the pass fraction when the model's spread holds)."
    )


class SkippedResultPublic(Public):
    sample_id: str
    reason: str


class ProposalPublic(Public):
    """A proposed calibration version and what the lab results changed."""

    calibration: CalibrationSummaryPublic
    based_on: str = Field(description="The approved version refitted.")
    based_on_version: int
    n_old: int
    n_new: int = Field(description="Laboratory results added.")
    changes: list[CoefficientChangePublic]
    r2_log_before: float | None
    r2_log_after: float | None
    r2_kpa_before: float | None
    r2_kpa_after: float | None
    residual_sd_log_before: float | None
    residual_sd_log_after: float | None
    old_model_on_new: PredictionErrorPublic = Field(
        description="The prediction error of the approved model on the new results."
    )
    new_model_on_new: PredictionErrorPublic
    skipped: list[SkippedResultPublic] = Field(
        description="Results that could not become rows, with why."
    )
    pass_fraction_pct: float
    use_lab_solids: bool
