"""Schemas of the rheology (pumpability) endpoints: calibrations from the mine's slump or
vane tests, predictions of yield stress, slump and line pressure, the pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from service.api.schemas.common import MultilineText, Public, Strict, Text

SolidsPct = Annotated[float, Field(gt=0.0, lt=100.0, description="Cw: dry solids as % of paste.")]
BinderPct = Annotated[
    float, Field(ge=0.0, le=100.0, description="Bw: binder as % of dry tailings mass.")
]
MAX_ROWS = 2000
MAX_CSV_CHARS = 500_000


class RheologyTestIn(Strict):
    """One test of the paste: a vane yield stress, or an Abrams cone slump (300 mm cone)
    with the paste's density to convert it; optionally a plastic viscosity."""

    sample_id: Annotated[Text | None, Field(max_length=64)] = None
    solids_pct: SolidsPct
    binder_pct: BinderPct
    yield_stress_pa: Annotated[float | None, Field(gt=0.0, le=1.0e5)] = None
    slump_mm: Annotated[float | None, Field(gt=0.0, lt=300.0)] = None
    density_kg_m3: Annotated[float | None, Field(gt=1000.0, lt=5000.0)] = None
    plastic_viscosity_pa_s: Annotated[float | None, Field(gt=0.0, le=1.0e4)] = None

    @model_validator(mode="after")
    def _one_measure(self) -> RheologyTestIn:
        if self.yield_stress_pa is None and self.slump_mm is None:
            raise ValueError("give yield_stress_pa (vane) or slump_mm (cone)")
        if self.yield_stress_pa is None and self.density_kg_m3 is None:
            raise ValueError("a slump needs density_kg_m3 to be converted to a yield stress")
        return self


class RheologyCalibrationCreate(Strict):
    """The tests as JSON ``rows`` or as ``csv`` text (exactly one). CSV columns:
    ``solids_pct``, ``binder_pct``, ``yield_stress_pa`` or ``slump_mm`` with
    ``density_kg_m3``, optionally ``plastic_viscosity_pa_s`` and ``sample_id``."""

    name: Annotated[Text, Field(min_length=1, max_length=100)]
    rows: Annotated[list[RheologyTestIn] | None, Field(min_length=1, max_length=MAX_ROWS)] = None
    csv: Annotated[MultilineText | None, Field(min_length=1, max_length=MAX_CSV_CHARS)] = None
    plastic_viscosity_pa_s: Annotated[
        float | None,
        Field(
            gt=0.0,
            le=1.0e4,
            description="When no test gives a viscosity: the paste's plastic viscosity.",
        ),
    ] = None
    range_tolerance_pct: Annotated[float, Field(ge=0.0, le=100.0)] = 10.0

    @model_validator(mode="after")
    def _one_source(self) -> RheologyCalibrationCreate:
        if (self.rows is None) == (self.csv is None):
            raise ValueError("give exactly one of rows or csv")
        return self


class PipelineIn(Strict):
    """A paste line: developed length, inner diameter, static head of the discharge
    above the pump (positive a lift, negative a gravity drop) and the design flow."""

    length_m: Annotated[float, Field(gt=0.0, le=1.0e5)]
    inner_diameter_m: Annotated[float, Field(gt=0.0, le=2.0)]
    static_head_m: Annotated[float, Field(ge=-1.0e4, le=1.0e4)] = 0.0
    flow_m3_h: Annotated[float, Field(gt=0.0, le=1.0e4)]


class RheologyPredictRequest(Strict):
    solids_pct: SolidsPct
    binder_pct: BinderPct
    density_kg_m3: Annotated[
        float | None,
        Field(gt=1000.0, lt=5000.0, description="For the slump and the line pressure."),
    ] = None
    pipeline: PipelineIn | None = None
    allow_extrapolation: bool = Field(
        default=False,
        description="Answer outside the tested Cw and Bw (flagged) instead of refusing.",
    )


class PipeFlowPublic(Public):
    """Laminar Bingham flow in the line (Buckingham-Reiner)."""

    pump_pressure_kpa: float = Field(description="Friction plus the static term.")
    friction_loss_kpa: float
    friction_kpa_per_m: float
    static_pressure_kpa: float
    wall_shear_stress_pa: float
    velocity_m_s: float
    bingham_reynolds: float
    hedstrom: float
    critical_reynolds: float
    laminar: bool
    note: str | None


class RheologyPredictionPublic(Public):
    calibration_id: str
    calibration_version: int
    example: bool
    yield_stress_pa: float
    plastic_viscosity_pa_s: float | None
    slump_mm: float | None = Field(description="Abrams cone (300 mm); needs the density.")
    line: PipeFlowPublic | None
    extrapolated: bool
    outside: list[str]


class RheologyTestPublic(Public):
    sample_id: str | None
    solids_pct: float
    binder_pct: float
    yield_stress_pa: float | None
    slump_mm: float | None
    density_kg_m3: float | None
    plastic_viscosity_pa_s: float | None


class RheologyCalibrationPublic(Public):
    id: str
    name: str
    version: int
    created_at: datetime
    created_by: str
    example: bool = Field(description="The shipped synthetic example: not for design.")
    label: str
    n_rows: int
    slump_rows: int = Field(description="Tests given as a slump, converted to yield stress.")
    r2_log: float
    rmse_log: float
    coefficients: dict[str, Any] = Field(
        description="ln tau_y = intercept + solids * Cw + binder * Bw (fractions); "
        "ln mu_p = viscosity_intercept + viscosity_solids * Cw when fitted."
    )
    plastic_viscosity_pa_s: float | None = Field(
        description="The constant viscosity when none was fitted."
    )
    solids_pct_range: list[float]
    binder_pct_range: list[float]
    tolerance_pct: float
    rows: list[RheologyTestPublic]
