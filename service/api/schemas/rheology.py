"""Schemas of the rheology (pumpability) endpoints: calibrations from the mine's slump or
vane tests, predictions of yield stress, slump and line pressure, the pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from service.api.schemas.common import MultilineText, Public, Strict, Text

SolidsPct = Annotated[float, Field(gt=0.0, lt=100.0, description="Cw: dry solids as % of paste.")]
BinderPct = Annotated[
    float, Field(ge=0.0, le=100.0, description="Bw: binder as % of dry tailings mass.")
]
MAX_ROWS = 2000
MAX_CSV_CHARS = 500_000


SlumpMould = Literal["cone", "cylinder"]


class RheologyTestIn(Strict):
    """One test of the paste: a vane yield stress, or a slump with the paste's density
    to convert it and the mould it was measured in, named per row (``slump_mould``: the
    Abrams ``cone``, 300 mm, or a ``cylinder`` with its ``mould_height_mm``, Pashias et
    al. 1996: at 178 mm and 2,000 kg/m3 the cone gives 296 Pa, a 300 mm cylinder 399 Pa);
    optionally a plastic viscosity."""

    sample_id: Annotated[Text | None, Field(max_length=64)] = None
    solids_pct: SolidsPct
    binder_pct: BinderPct
    yield_stress_pa: Annotated[float | None, Field(gt=0.0, le=1.0e5)] = None
    slump_mm: Annotated[
        float | None, Field(gt=0.0, lt=1000.0, description="Below the mould's height.")
    ] = None
    slump_mould: Annotated[
        SlumpMould | None,
        Field(
            validate_default=True,
            description="The mould of slump_mm: cone (Abrams, 300 mm) or cylinder (give "
            "mould_height_mm).",
        ),
    ] = None
    mould_height_mm: Annotated[
        float | None,
        Field(
            gt=0.0,
            le=1000.0,
            validate_default=True,
            description="The cylinder's height (the cone's is 300 mm).",
        ),
    ] = None
    density_kg_m3: Annotated[float | None, Field(gt=1000.0, lt=5000.0)] = None
    plastic_viscosity_pa_s: Annotated[float | None, Field(gt=0.0, le=1.0e4)] = None

    @field_validator("slump_mould")
    @classmethod
    def _mould_named(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("slump_mm") is not None:
            raise ValueError(
                "a slump names its mould: cone (Abrams, 300 mm) or cylinder (with mould_height_mm)"
            )
        return value

    @field_validator("mould_height_mm")
    @classmethod
    def _height_of_the_mould(cls, value: float | None, info: ValidationInfo) -> float | None:
        mould = info.data.get("slump_mould")
        slump = info.data.get("slump_mm")
        if mould == "cylinder" and value is None:
            raise ValueError("a cylinder slump needs the cylinder's height")
        if mould == "cone" and value not in (None, 300.0):
            raise ValueError("the Abrams cone is 300 mm high")
        height = 300.0 if mould == "cone" else value
        if slump is not None and height is not None and slump >= height:
            raise ValueError(f"slump_mm ({slump:g}) must be below the mould's {height:g} mm")
        return value

    @model_validator(mode="after")
    def _one_measure(self) -> RheologyTestIn:
        if self.yield_stress_pa is None and self.slump_mm is None:
            raise ValueError("give yield_stress_pa (vane) or slump_mm (cone or cylinder)")
        if self.yield_stress_pa is None and self.density_kg_m3 is None:
            raise ValueError("a slump needs density_kg_m3 to be converted to a yield stress")
        return self


class RheologyCalibrationCreate(Strict):
    """The tests as JSON ``rows`` or as ``csv`` text (exactly one). CSV columns:
    ``solids_pct``, ``binder_pct``, ``yield_stress_pa`` or ``slump_mm`` with
    ``density_kg_m3`` and ``slump_mould`` (``cone`` or ``cylinder``, the latter with
    ``mould_height_mm``), optionally ``plastic_viscosity_pa_s`` and ``sample_id``."""

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


class LineSectionIn(Strict):
    """A straight section of the line: its length and its rise (negative: a drop)."""

    length_m: Annotated[float, Field(gt=0.0, le=1.0e5)]
    rise_m: Annotated[float, Field(ge=-1.0e4, le=1.0e4)]


class PipelineIn(Strict):
    """A paste line: developed length, inner diameter, static head of the discharge
    above the pump (positive a lift, negative a gravity drop) and the design flow;
    optionally its profile, section by section from the pump (the sections make the
    length and the head). Without a profile a drop is taken as the borehole at the
    plant, then the level run: where the line runs full is stated from it."""

    length_m: Annotated[float, Field(gt=0.0, le=1.0e5)]
    inner_diameter_m: Annotated[float, Field(gt=0.0, le=2.0)]
    static_head_m: Annotated[float, Field(ge=-1.0e4, le=1.0e4)] = 0.0
    flow_m3_h: Annotated[float, Field(gt=0.0, le=1.0e4)]
    sections: Annotated[list[LineSectionIn] | None, Field(min_length=1, max_length=50)] = None


class RheologyPredictRequest(Strict):
    solids_pct: SolidsPct
    binder_pct: BinderPct
    density_kg_m3: Annotated[
        float | None,
        Field(gt=1000.0, lt=5000.0, description="For the slump and the line pressure."),
    ] = None
    pipeline: PipelineIn | None = None
    slump_mould: SlumpMould = Field(
        default="cone", description="The mould the slump is stated for: cone or cylinder."
    )
    mould_height_mm: Annotated[
        float | None,
        Field(gt=0.0, le=1000.0, description="The cylinder's height (default 300 mm)."),
    ] = None
    allow_extrapolation: bool = Field(
        default=False,
        description="Answer outside the tested Cw and Bw (flagged) instead of refusing.",
    )

    @field_validator("mould_height_mm")
    @classmethod
    def _cone_is_300(cls, value: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("slump_mould") == "cone" and value not in (None, 300.0):
            raise ValueError("the Abrams cone is 300 mm high")
        return value


class SlackStretchPublic(Public):
    """A stretch where the paste free-falls: from from_m to to_m along the line (from
    the pump); the line runs full again at to_m, full_depth_m below the pump."""

    from_m: float
    to_m: float
    full_depth_m: float


class PipeFlowPublic(Public):
    """Laminar Bingham flow in the line (Buckingham-Reiner), and where it runs full."""

    pump_pressure_kpa: float = Field(
        description="Friction plus the static term, the line running full; negative: it "
        "cannot run full (see runs_full and slack)."
    )
    runs_full: bool = Field(
        description="False: a drop outweighs the friction and the paste free-falls part of "
        "the way (slack flow), a design condition to state."
    )
    slack: list[SlackStretchPublic]
    pump_pressure_needed_kpa: float = Field(
        description="The pressure the pump needs with the slack stretches open (>= 0)."
    )
    design_condition: str | None = Field(description="What to state when it does not run full.")
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
    slump_mm: float | None = Field(description="In slump_mould; needs the density.")
    slump_mould: str = Field(description="cone (Abrams, 300 mm) or cylinder")
    mould_height_mm: float
    line: PipeFlowPublic | None
    extrapolated: bool
    outside: list[str]


class RheologyTestPublic(Public):
    sample_id: str | None
    solids_pct: float
    binder_pct: float
    yield_stress_pa: float | None
    slump_mm: float | None
    slump_mould: str | None = Field(default=None, description="cone or cylinder")
    mould_height_mm: float | None = None
    density_kg_m3: float | None
    plastic_viscosity_pa_s: float | None
    fitted_yield_stress_pa: float = Field(
        description="The yield stress the fit used: the vane's, or the slump converted in "
        "its mould.",
    )


class RheologyCalibrationPublic(Public):
    id: str
    name: str
    version: int
    created_at: datetime
    created_by: str
    approved_by: str | None = Field(
        default=None,
        description="Who stored it (in force once stored); None for the shipped example "
        "and for versions stored before people were named.",
    )
    approved_at: datetime | None = None
    example: bool = Field(description="The shipped synthetic example: not for design.")
    label: str
    n_rows: int
    slump_rows: int = Field(description="Tests given as a slump, converted to yield stress.")
    cylinder_slump_rows: int = Field(description="Of them, slumps of a cylinder.")
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
