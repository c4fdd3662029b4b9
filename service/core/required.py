"""Required strength of cemented backfill, and the arching stress in a filled stope.

- :func:`mitchell` - Mitchell, R.J., Olsen, R.S. & Smith, J.D. (1982), "Model studies on
  cemented tailings used in mine backfill", Canadian Geotechnical Journal 19(1):14-28.
- :func:`li_aubertin` - Li, L. & Aubertin, M. (2012), "A modified solution to assess the
  required strength of exposed backfill in mine stopes", Canadian Geotechnical Journal
  49(8):994-1002 (the "MM" solution).
- :func:`apply_floors` - configurable minimum strengths (liquefaction, sill mat).
- :func:`arching_vertical_stress_kpa` - Janssen (1895) / Marston (1930) arching, in the
  form used for backfilled stopes by Aubertin et al. (2003) and Li, Aubertin & Belem
  (2005).

Units: lengths m, unit weight kN/m3, stresses and strengths kPa, angles in degrees.

Each exposed-face method defines its factor of safety its own way, and every result says
which (:data:`FS_DEFINITIONS`):

- Mitchell, as commonly applied: the FS multiplies the strength required at limit
  equilibrium, UCS = FS gamma H/(1 + H/L) (the design formula drawn from Mitchell et al.
  1982 for a frictionless fill).
- Li & Aubertin (2012): the FS is the ratio of the forces resisting sliding of the wedge to
  those driving it, inside the wedge's equilibrium; the cohesion is solved at the design FS
  and UCS = 2c tan(alpha). UCS(FS) is therefore not FS x UCS(FS = 1), and the two methods
  agree only at FS = 1 (phi = 0, r_b = 1, p0 = 0, a narrow stope).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from service.errors import InvalidInput

# Typical design minimums, defaults a mine geotechnical engineer overrides: 100 kPa is the
# lower end of the 100-150 kPa commonly quoted against liquefaction of young fill (a
# plug's own required strength is a separate analysis: Grabinsky, M. et al. (2021),
# "Required plug strength for continuously poured cemented paste backfill in longhole
# stopes", Mining 1(1):80-99, doi:10.3390/mining1010006); sill mats need 1-5 MPa.
LIQUEFACTION_FLOOR_KPA_DEFAULT = 100.0
SILL_MAT_FLOOR_KPA_DEFAULT = 1000.0

FS_DEFINITIONS = {
    "mitchell": "FS multiplies the strength required at limit equilibrium: UCS = FS gamma H "
    "/ (1 + H/L), the common simplified use of Mitchell et al. (1982)",
    "li_aubertin": "FS is the ratio of resisting to driving forces on the sliding wedge (Li & "
    "Aubertin 2012): the cohesion is solved at the design FS inside the wedge's equilibrium, "
    "so UCS(FS) is not FS x UCS(FS = 1)",
}

_LENGTH_M_MAX = 1.0e4
_UNIT_WEIGHT_MAX = 100.0
_STRESS_KPA_MAX = 1.0e6


@dataclass(frozen=True, slots=True)
class StrengthRequirement:
    """Required strength of an exposed fill face by one method, before any floor.

    ``effective_height_m`` is H for Mitchell and H* = H - B tan(alpha)/2 for Li & Aubertin;
    ``sliding_plane_angle_deg`` is alpha = 45 + phi/2; ``fs_definition`` says how the
    method defines the factor of safety (:data:`FS_DEFINITIONS`).
    """

    method: str
    ucs_kpa: float
    cohesion_kpa: float
    effective_height_m: float
    sliding_plane_angle_deg: float
    fs_definition: str = ""


@dataclass(frozen=True, slots=True)
class GovernedStrength:
    """The design UCS: max(computed, every floor), and which of them governed.

    ``governed_by`` is ``"computed"`` or the name of the highest floor (e.g.
    ``"liquefaction"``). ``binding_floors`` names every floor strictly above the computed
    strength (each alone would have raised the design), in the order given.
    """

    required_ucs_kpa: float
    computed_ucs_kpa: float
    governed_by: str
    floors_kpa: Mapping[str, float] = field(hash=False)
    binding_floors: tuple[str, ...] = ()


def _positive(field_name: str, value: float, maximum: float) -> float:
    if not 0.0 < value <= maximum:
        raise InvalidInput(
            field_name, f"{field_name} must be above 0 and at most {maximum:g} (got {value!r})"
        )
    return float(value)


def _non_negative(field_name: str, value: float, maximum: float) -> float:
    if not 0.0 <= value <= maximum:
        raise InvalidInput(
            field_name, f"{field_name} must be between 0 and {maximum:g} (got {value!r})"
        )
    return float(value)


def _safety_factor(value: float) -> float:
    if not 1.0 <= value <= 10.0:
        raise InvalidInput(
            "safety_factor", f"safety_factor must be between 1 and 10 (got {value!r})"
        )
    return float(value)


def _friction_angle(field_name: str, value: float) -> float:
    if not 0.0 <= value < 60.0:
        raise InvalidInput(
            field_name, f"{field_name} must be at least 0 and below 60 degrees (got {value!r})"
        )
    return float(value)


def mitchell(
    *,
    fill_height_m: float,
    exposed_length_m: float,
    unit_weight_kn_m3: float,
    safety_factor: float,
) -> StrengthRequirement:
    """Required UCS of a frictionless fill with one exposed face (Mitchell et al. 1982).

    UCS = FS gamma H / (1 + H/L), cohesion c = UCS / 2 (phi = 0). The sliding wedge at
    45 degrees is held by fill cohesion on the sliding plane and by fill-rock cohesion
    (taken equal to the fill's) on the two side walls. FS as commonly applied: it
    multiplies the strength required at limit equilibrium, UCS_req = FS x UCS(FS = 1)
    (:func:`li_aubertin` puts it inside the equilibrium instead). Source: Mitchell, Olsen
    & Smith (1982), Can. Geotech. J. 19(1):14-28. Example: gamma 20 kN/m3, H 30 m,
    L 15 m, FS 1.5 gives 300 kPa.
    """
    height = _positive("fill_height_m", fill_height_m, _LENGTH_M_MAX)
    length = _positive("exposed_length_m", exposed_length_m, _LENGTH_M_MAX)
    gamma = _positive("unit_weight_kn_m3", unit_weight_kn_m3, _UNIT_WEIGHT_MAX)
    fs = _safety_factor(safety_factor)
    ucs = fs * gamma * height / (1.0 + height / length)
    return StrengthRequirement(
        method="mitchell",
        ucs_kpa=ucs,
        cohesion_kpa=ucs / 2.0,
        effective_height_m=height,
        sliding_plane_angle_deg=45.0,
        fs_definition=FS_DEFINITIONS["mitchell"],
    )


def li_aubertin(
    *,
    fill_height_m: float,
    exposed_length_m: float,
    stope_width_m: float,
    unit_weight_kn_m3: float,
    safety_factor: float,
    friction_angle_deg: float,
    cohesion_ratio: float = 1.0,
    surcharge_kpa: float = 0.0,
) -> StrengthRequirement:
    """Required UCS of an exposed fill by the modified Mitchell (MM) solution.

    Source: Li, L. & Aubertin, M. (2012), "A modified solution to assess the required
    strength of exposed backfill in mine stopes", Can. Geotech. J. 49(8):994-1002.

    Geometry as Mitchell et al. (1982): exposed face of length L and height H, stope
    width B (from the exposed face to the back wall), sliding plane at
    alpha = 45 + phi/2 from the toe of the face to the back wall, wedge of equivalent
    height H* = H - B tan(alpha)/2. Added to Mitchell: fill friction phi, a surcharge p0
    on the fill top and a side-wall bond cohesion c_b = r_b c. The factor of safety is
    defined on the sliding wedge itself, as the ratio of the resisting to the driving
    forces along the plane (the side-wall shear 2 c_b B H* relieving the weight):

        FS = tan(phi)/tan(alpha) + 2c / ((p0 + (gamma - 2 c_b/L) H*) sin(2 alpha))

    Solved for the fill cohesion at the design FS, with c_b = r_b c:

        c = (p0 + gamma H*) / (2 [1 / ((FS - tan(phi)/tan(alpha)) sin(2 alpha)) + r_b H*/L])

    and UCS = 2c cos(phi)/(1 - sin(phi)) = 2c tan(alpha) (Mohr-Coulomb). FS sits inside
    the equilibrium: UCS(FS) is not FS x UCS(FS = 1), and only at FS = 1 does the
    solution meet :func:`mitchell` as commonly applied (phi = 0, r_b = 1, p0 = 0, with H*
    for H). Worked figure: phi 30, B 6 m, H 30 m, L 15 m, gamma 20 kN/m3, r_b 1, p0 0
    give 253.8 kPa at FS 1 and 325.1 kPa at FS 1.5.

    The wedge must meet the back wall (H >= B tan(alpha)), otherwise ``stope_width_m`` is
    refused (low stopes need the generalised solution of Li 2014, Int. J. Geomech.).
    """
    height = _positive("fill_height_m", fill_height_m, _LENGTH_M_MAX)
    length = _positive("exposed_length_m", exposed_length_m, _LENGTH_M_MAX)
    width = _positive("stope_width_m", stope_width_m, _LENGTH_M_MAX)
    gamma = _positive("unit_weight_kn_m3", unit_weight_kn_m3, _UNIT_WEIGHT_MAX)
    fs = _safety_factor(safety_factor)
    phi_deg = _friction_angle("friction_angle_deg", friction_angle_deg)
    r_b = _non_negative("cohesion_ratio", cohesion_ratio, 1.0)
    p0 = _non_negative("surcharge_kpa", surcharge_kpa, _STRESS_KPA_MAX)

    alpha_deg = 45.0 + phi_deg / 2.0
    alpha = math.radians(alpha_deg)
    tan_alpha = math.tan(alpha)
    if width * tan_alpha > height:
        raise InvalidInput(
            "stope_width_m",
            f"the sliding plane at {alpha_deg:g} degrees from a {width:g} m wide stope rises "
            f"{width * tan_alpha:.1f} m, above the {height:g} m fill: the modified Mitchell "
            "solution needs H >= B tan(alpha)",
        )
    effective_height = height - width * tan_alpha / 2.0
    # tan(alpha) = tan(phi) + sec(phi) > tan(phi), so friction alone never reaches
    # FS >= 1 and the cohesion term FS - tan(phi)/tan(alpha) stays positive.
    friction_share = math.tan(math.radians(phi_deg)) / tan_alpha
    plane_term = 1.0 / ((fs - friction_share) * math.sin(2.0 * alpha))
    cohesion = (p0 + gamma * effective_height) / (
        2.0 * (plane_term + r_b * effective_height / length)
    )
    return StrengthRequirement(
        method="li_aubertin",
        ucs_kpa=2.0 * cohesion * tan_alpha,
        cohesion_kpa=cohesion,
        effective_height_m=effective_height,
        sliding_plane_angle_deg=alpha_deg,
        fs_definition=FS_DEFINITIONS["li_aubertin"],
    )


def apply_floors(computed_ucs_kpa: float, floors_kpa: Mapping[str, float]) -> GovernedStrength:
    """The design UCS: max(computed, each floor), naming what governed and every floor
    that bound.

    Floors are configurable minimums, e.g. ``{"liquefaction": 100.0}``
    (:data:`LIQUEFACTION_FLOOR_KPA_DEFAULT`) or ``{"sill_mat": 1000.0}`` (1-5 MPa for
    undercut sill mats). A floor binds when strictly above the computed strength (ties go
    to "computed"); ``governed_by`` is the highest binding floor (the first of equal
    ones), ``binding_floors`` all of them. Field names in errors are
    ``floors_kpa.<name>``.
    """
    _non_negative("computed_ucs_kpa", computed_ucs_kpa, _STRESS_KPA_MAX)
    required = computed_ucs_kpa
    governed_by = "computed"
    binding: list[str] = []
    for name, value in floors_kpa.items():
        _non_negative(f"floors_kpa.{name}", value, _STRESS_KPA_MAX)
        if value > computed_ucs_kpa:
            binding.append(name)
        if value > required:
            required = value
            governed_by = name
    return GovernedStrength(
        required_ucs_kpa=required,
        computed_ucs_kpa=computed_ucs_kpa,
        governed_by=governed_by,
        floors_kpa=dict(floors_kpa),
        binding_floors=tuple(binding),
    )


def rankine_active_coefficient(friction_angle_deg: float) -> float:
    """Ka = tan^2(45 - phi/2) (Rankine), the coefficient Marston (1930) used."""
    phi = _friction_angle("friction_angle_deg", friction_angle_deg)
    return math.tan(math.radians(45.0 - phi / 2.0)) ** 2


def arching_vertical_stress_kpa(
    *,
    depth_m: float,
    unit_weight_kn_m3: float,
    stope_width_m: float,
    friction_angle_deg: float,
    stope_length_m: float | None = None,
    interface_friction_angle_deg: float | None = None,
    earth_pressure_coefficient: float | None = None,
    interface_cohesion_kpa: float = 0.0,
    surcharge_kpa: float = 0.0,
) -> float:
    """Vertical stress at ``depth_m`` in a filled stope, reduced by arching.

    Janssen (1895) / Marston (1930) differential slice: the wall shear
    tau = c_i + K sigma_v tan(delta) on the perimeter carries part of the weight, so

        sigma_v(z) = (gamma - a c_i) / (a K tan(delta)) (1 - exp(-a K tan(delta) z))
                     + p0 exp(-a K tan(delta) z),   a = 2 (1/B + 1/L)

    (2D plane strain with ``stope_length_m`` None: a = 2/B, as in Aubertin et al. 2003,
    "Interaction between backfill and rock mass in narrow stopes", Soil and Rock America
    1:1157-1164; 3D as Li, Aubertin & Belem 2005, Can. Geotech. J. 42(6):1705-1717).
    K defaults to Rankine's active Ka = tan^2(45 - phi/2) (Marston); pass K0 = 1 - sin(phi)
    for at-rest conditions. delta (fill-wall friction) defaults to phi. The result is
    never below 0 (cohesion carrying all the weight) and never above the geostatic
    p0 + gamma z. Use it where a stress, not a UCS, is checked (barricades, sill mats).
    """
    depth = _non_negative("depth_m", depth_m, _LENGTH_M_MAX)
    gamma = _positive("unit_weight_kn_m3", unit_weight_kn_m3, _UNIT_WEIGHT_MAX)
    width = _positive("stope_width_m", stope_width_m, _LENGTH_M_MAX)
    phi = _friction_angle("friction_angle_deg", friction_angle_deg)
    delta = (
        phi
        if interface_friction_angle_deg is None
        else _friction_angle("interface_friction_angle_deg", interface_friction_angle_deg)
    )
    if earth_pressure_coefficient is None:
        k = rankine_active_coefficient(phi)
    else:
        k = _positive("earth_pressure_coefficient", earth_pressure_coefficient, 10.0)
    c_i = _non_negative("interface_cohesion_kpa", interface_cohesion_kpa, _STRESS_KPA_MAX)
    p0 = _non_negative("surcharge_kpa", surcharge_kpa, _STRESS_KPA_MAX)
    a = 2.0 / width
    if stope_length_m is not None:
        a += 2.0 / _positive("stope_length_m", stope_length_m, _LENGTH_M_MAX)
    geostatic = p0 + gamma * depth
    decay_rate = a * k * math.tan(math.radians(delta))
    if decay_rate == 0.0:
        # No wall friction: only the interface cohesion relieves the weight.
        return min(geostatic, max(0.0, p0 + (gamma - a * c_i) * depth))
    # -expm1(-x) is 1 - exp(-x) without cancellation when the wall friction is tiny.
    relieved = -math.expm1(-decay_rate * depth)
    stress = (gamma - a * c_i) / decay_rate * relieved + p0 * (1.0 - relieved)
    return min(geostatic, max(0.0, stress))
