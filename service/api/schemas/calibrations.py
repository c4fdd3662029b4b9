"""Schemas of the calibration (strength model) endpoints.

Percentages as everywhere in the API: ``blend`` is % of the binder by mass per
component, ``binder_pct`` is Bw (% of dry tailings), ``solids_pct`` is Cw (% of paste).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from service.api.schemas.common import (
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
            description="Predictions are accepted this % of each variable's span beyond "
            "the data range.",
        ),
    ] = 10.0

    @model_validator(mode="after")
    def _one_source(self) -> CalibrationCreate:
        if (self.rows is None) == (self.csv is None):
            raise ValueError("give exactly one of rows or csv")
        return self


class PredictRequest(Strict):
    blend: BlendPct
    binder_pct: BinderPct
    solids_pct: SolidsPct
    curing_days: CuringDays = 28.0
    allow_extrapolation: bool = Field(
        default=False,
        description="Return a prediction outside the calibrated range, flagged, "
        "instead of refusing it.",
    )


class RangePublic(Public):
    min: float
    max: float


class DataRangePublic(Public):
    """The calibration data's range in API units; predictions are accepted within it
    widened by ``tolerance_pct`` of each span."""

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


class PredictionPublic(Public):
    calibration_id: str
    calibration_version: int
    example: bool
    ucs_kpa: float
    curing_days: float
    extrapolated: bool
    outside: list[str] = Field(description="Variables outside the calibrated range.")
