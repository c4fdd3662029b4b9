"""Schemas of the strength endpoints (docs/INTEGRATION.md "POST /strength/required").

The request is flat, as the contract shows it: ``method`` picks the solution and the
method's own parameters sit next to it. The per-method rules are field validators
rather than a discriminated union so that a missing or foreign parameter is a 422 whose
``field`` is the parameter's own name (a tagged union puts the tag into the error
location: ``li_aubertin.stope_width_m``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from service.api.schemas.common import Public, Strict

Method = Literal["mitchell", "li_aubertin"]
LengthM = Annotated[float, Field(gt=0.0, le=1.0e4)]
UnitWeight = Annotated[float, Field(gt=0.0, le=100.0, description="Fill unit weight, kN/m3.")]
StressKpa = Annotated[float, Field(ge=0.0, le=1.0e6)]
FrictionAngle = Annotated[float, Field(ge=0.0, lt=60.0)]
FloorName = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", examples=["sill_mat"])
]

# Parameters of Li & Aubertin (2012) only; the first two have no default.
_LI_AUBERTIN_PARAMETERS = ("stope_width_m", "friction_angle_deg", "cohesion_ratio", "surcharge_kpa")
_LI_AUBERTIN_REQUIRED = ("stope_width_m", "friction_angle_deg")


class StopeIn(Strict):
    """An exposed fill face and the method for its required UCS, with optional floors."""

    method: Method
    fill_height_m: LengthM
    exposed_length_m: LengthM
    unit_weight_kn_m3: UnitWeight
    safety_factor: Annotated[
        float,
        Field(
            ge=1.0,
            le=10.0,
            description="FS as the method defines it (mitchell: a multiplier of the strength "
            "at limit equilibrium; li_aubertin: resisting over driving forces on the wedge).",
        ),
    ]
    stope_width_m: Annotated[
        LengthM | None,
        Field(validate_default=True, description="li_aubertin: B, face to back wall."),
    ] = None
    friction_angle_deg: Annotated[
        FrictionAngle | None, Field(validate_default=True, description="li_aubertin: fill phi.")
    ] = None
    cohesion_ratio: Annotated[
        float | None,
        Field(
            ge=0.0,
            le=1.0,
            validate_default=True,
            description="li_aubertin: side-wall bond cohesion / fill cohesion (default 1).",
        ),
    ] = None
    surcharge_kpa: Annotated[
        StressKpa | None,
        Field(validate_default=True, description="li_aubertin: load on the fill top (default 0)."),
    ] = None
    floors_kpa: Annotated[
        dict[FloorName, StressKpa],
        Field(
            max_length=8,
            description="Minimum strengths that govern when above the computed UCS, e.g. "
            '{"sill_mat": 1000}; the site\'s liquefaction floor (BACKFILL_DESIGN__'
            "LIQUEFACTION_FLOOR_KPA, 100 kPa) applies unless named here "
            '({"liquefaction": 0} drops it).',
        ),
    ] = Field(default_factory=dict)

    @field_validator(*_LI_AUBERTIN_PARAMETERS, mode="after")
    @classmethod
    def _belongs_to_method(cls, value: float | None, info: ValidationInfo) -> float | None:
        method = info.data.get("method")
        name = info.field_name or "parameter"
        if method == "mitchell" and value is not None:
            raise PydanticCustomError(
                "parameter_not_used", "{name} is not a parameter of method mitchell", {"name": name}
            )
        if method == "li_aubertin" and value is None and name in _LI_AUBERTIN_REQUIRED:
            raise PydanticCustomError(
                "missing", "Field required for method li_aubertin", {"name": name}
            )
        return value


class ArchingRequest(Strict):
    """Vertical stress at a depth in a filled stope (Marston / Janssen arching)."""

    depth_m: Annotated[float, Field(ge=0.0, le=1.0e4)]
    unit_weight_kn_m3: UnitWeight
    stope_width_m: LengthM
    friction_angle_deg: FrictionAngle
    stope_length_m: Annotated[
        LengthM | None, Field(description="Give it for the 3D solution; omit for 2D.")
    ] = None
    interface_friction_angle_deg: Annotated[
        FrictionAngle | None, Field(description="Fill-wall friction delta; default phi.")
    ] = None
    earth_pressure_coefficient: Annotated[
        float | None, Field(gt=0.0, le=10.0, description="K; default Rankine Ka.")
    ] = None
    interface_cohesion_kpa: StressKpa = 0.0
    surcharge_kpa: StressKpa = 0.0


class RequiredStrengthPublic(Public):
    required_ucs_kpa: float = Field(description="max(computed_ucs_kpa, every floor).")
    computed_ucs_kpa: float
    governed_by: str = Field(description='"computed" or the name of the floor that governed.')
    binding_floors: list[str] = Field(
        description="Every floor above the computed UCS (each alone would raise the design)."
    )
    floors_kpa: dict[str, float] = Field(
        description="The floors applied: the site's (liquefaction) and the request's."
    )
    method: Method
    citation: str
    cohesion_kpa: float
    effective_height_m: float
    sliding_plane_angle_deg: float
    fs_definition: str = Field(
        description="How the method defines the factor of safety: Mitchell as commonly "
        "applied multiplies the strength at limit equilibrium by FS; Li & Aubertin (2012) "
        "solve the wedge's equilibrium at FS."
    )


class ArchingPublic(Public):
    vertical_stress_kpa: float
    geostatic_stress_kpa: float
    arching_ratio: float | None = Field(
        description="vertical / geostatic stress; null at zero depth without surcharge."
    )
    earth_pressure_coefficient: float
    citation: str
