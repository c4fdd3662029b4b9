"""Pumpability of a paste: a site-calibrated yield stress, the slump test, and the line
pressure of a Bingham plastic in laminar pipe flow.

- Yield stress against solids and binder, fitted by least squares on the mine's own tests:
  ln tau_y = a + b Cw + c Bw. The yield stress of concentrated mineral suspensions rises
  steeply, roughly exponentially, with solids concentration over the paste range (Sofra,
  F. & Boger, D.V. (2002), "Environmental rheology for waste minimisation in the
  minerals industry", Chemical Engineering Journal 86(3):319-330); the form is an
  empirical fit valid over the tested range only, the Bw term the site's own. The
  plastic viscosity is fitted as ln mu_p = d + e Cw when the tests give it, else given.
- Slump <-> yield stress (:func:`yield_stress_from_slump`, :func:`slump_from_yield_stress`):
  the static force balance of Murata (1984) as corrected by Schowalter & Christensen
  (1998, J. Rheol. 42(4):865-870): the stress at depth z of the filled mould is the
  weight above over the section, sigma(z) = rho g V(z)/A(z); the top where
  sigma < 2 tau_y does not yield (height h0), and each yielded layer spreads until its
  stress is 2 tau_y, so it ends dz1 = 2 tau_y A dz/(rho g V) thick and the yielded
  zone ends h1 = (2 tau_y/(rho g)) ln(V(H)/V(h0)) high. In the dimensionless
  tau' = tau_y/(rho g H), s' = s/H = 1 - h0' - h1':
  * cylinder (Pashias, N., Boger, D.V., Summers, J. & Glenister, D.J. (1996), "A fifty
    cent rheometer for yield stress measurement", J. Rheol. 40(6):1179-1189):
    s' = 1 - 2 tau' (1 - ln(2 tau'));
  * Abrams cone (300 mm high, 100 mm top and 200 mm base diameter, filled narrow end
    up; the geometry of the cone slump analysed by Clayton, S., Grice, T.G. & Boger,
    D.V. (2003), "Analysis of the slump test for on-site yield stress measurement of
    mineral suspensions", Int. J. Miner. Process. 70:3-21): with y = 1 + h0',
    (y^3 - 1)/(3 y^2) = 2 tau' and s' = 1 - h0' - 2 tau' ln(7/(y^3 - 1)).
    VERIFICATION NOTE: this cone form is derived here from the force balance above for
    the Abrams frustum (it reduces to Pashias' expression for a cylinder, which the tests
    check); the paper's printed equation was not available to compare with. Check it
    against Clayton et al. (2003) before relying on it.
  Slump-derived yield stresses generally overestimate vane values on paste backfill
  (Moghaddam, A.S. & Hassani, F. (2007), "Yield stress measurement of cemented and
  non-cemented paste backfill with the vane method and slump tests", Proc. 9th Int.
  Symp. on Mining with Backfill (Minefill 2007), CIM, Montreal): a calibration fitted on
  slump rows is on the slump scale, and says so (``slump_rows``).
- Laminar pipe flow of a Bingham plastic (Buckingham-Reiner; Chhabra, R.P. & Richardson,
  J.F. (2008), *Non-Newtonian Flow and Applied Rheology*, 2nd ed., Butterworth-
  Heinemann, ch. 3): Q = (pi R^4 dP)/(8 mu_p L) [1 - (4/3) phi + (1/3) phi^4],
  phi = tau_y/tau_w, tau_w = R dP/(2L); the friction loss is dP = 2 L tau_w/R, to which
  the static term rho g dz is added (dz > 0 lifting, < 0 a gravity drop). Laminar while
  the Bingham Reynolds number Re_B = rho V D/mu_p stays below Hanks' critical value
  Re_c = He/(8 phi_c) (1 - (4/3) phi_c + (1/3) phi_c^4), phi_c/(1 - phi_c)^3 = He/16800,
  He = rho D^2 tau_y/mu_p^2 (Hanks, R.W. (1963), AIChE J. 9(3):306-309; Chhabra &
  Richardson 2008, ch. 3). Where a drop outweighs the friction the line cannot run
  full (slack flow): :mod:`service.core.slack_flow` says where, from the line's profile.

Units: Cw and Bw fractions (0-1), stresses Pa, viscosity Pa s, densities kg/m3, lengths
m, pressures kPa, flows m3/h, slump mm.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from service.core.roots import brentq
from service.core.slack_flow import LineFill, LineSection, check_profile, line_fill, profile
from service.core.strength_model import DataRange, FloatArray
from service.errors import CalibrationRejected, InvalidInput

GRAVITY_M_S2 = 9.80665
ABRAMS_CONE_HEIGHT_MM = 300.0
EXAMPLE_LABEL = "EXAMPLE rheology: synthetic data, illustrative only, not for design"
SlumpGeometry = Literal["cone", "cylinder"]
BoolArray = NDArray[np.bool_]

# The Abrams frustum doubles its radius over its height: V(h')/V(1) with
# V ~ ((1 + h')^3 - 1)/3, so the whole mould is 7/3 in those units.
_CONE_VOLUME_FULL = 7.0
_CONE_STRESS_AT_BASE = 7.0 / 12.0  # sigma'(1) = (2^3 - 1)/(3 * 2^2)
_HEDSTROM_CONSTANT = 16800.0
_ROOT_XTOL = 1.0e-14
_CONSTANT_SPAN = 1.0e-9


# --- the slump test -----------------------------------------------------------------------


def _cone_unyielded_height(tau_dimensionless: float) -> float:
    """h0' of the Abrams cone: the root y = 1 + h0' of y^3 - 6 tau' y^2 - 1 = 0 (from
    (y^3 - 1)/(3 y^2) = 2 tau'), bracketed in [1, 1 + 6 tau'] where it is unique."""
    return float(
        brentq(
            lambda y: y**3 - 6.0 * tau_dimensionless * y**2 - 1.0,
            1.0,
            1.0 + 6.0 * tau_dimensionless,
            xtol=_ROOT_XTOL,
        )
        - 1.0
    )


def dimensionless_slump(tau_dimensionless: float, geometry: SlumpGeometry = "cone") -> float:
    """s' = s/H for tau' = tau_y/(rho g H) (see the module docstring; Pashias et al. 1996
    for the cylinder, the Murata / Schowalter & Christensen balance for the Abrams cone).
    0 when the paste does not yield at the base of the mould."""
    if not tau_dimensionless > 0.0:
        raise InvalidInput("yield_stress_pa", "the yield stress must be above 0")
    two_tau = 2.0 * tau_dimensionless
    if geometry == "cylinder":
        if two_tau >= 1.0:
            return 0.0
        return 1.0 - two_tau * (1.0 - math.log(two_tau))
    if two_tau >= _CONE_STRESS_AT_BASE:
        return 0.0
    h0 = _cone_unyielded_height(tau_dimensionless)
    volume_above = (1.0 + h0) ** 3 - 1.0
    return max(0.0, 1.0 - h0 - two_tau * math.log(_CONE_VOLUME_FULL / volume_above))


def _check_density(density_kg_m3: float) -> float:
    if not 500.0 <= density_kg_m3 <= 5000.0:
        raise InvalidInput(
            "density_kg_m3",
            f"density_kg_m3 must be between 500 and 5000 (got {density_kg_m3!r})",
        )
    return float(density_kg_m3)


def slump_from_yield_stress(
    yield_stress_pa: float,
    density_kg_m3: float,
    geometry: SlumpGeometry = "cone",
    height_mm: float = ABRAMS_CONE_HEIGHT_MM,
) -> float:
    """Slump (mm) of a paste of yield stress ``yield_stress_pa`` and density in a mould of
    ``height_mm`` (the Abrams cone by default); see :func:`dimensionless_slump`."""
    density = _check_density(density_kg_m3)
    if not 0.0 < yield_stress_pa <= 1.0e6:
        raise InvalidInput(
            "yield_stress_pa", f"yield_stress_pa must be above 0 (got {yield_stress_pa!r})"
        )
    tau = yield_stress_pa / (density * GRAVITY_M_S2 * height_mm / 1000.0)
    return dimensionless_slump(tau, geometry) * height_mm


def yield_stress_from_slump(
    slump_mm: float,
    density_kg_m3: float,
    geometry: SlumpGeometry = "cone",
    height_mm: float = ABRAMS_CONE_HEIGHT_MM,
) -> float:
    """Yield stress (Pa) from a measured slump: the inverse of :func:`slump_from_yield_stress`
    by a root find on tau' (s' falls monotonically with tau': ds'/dtau' = -2 ln(V(H)/V(h0))
    < 0, which for the cylinder is Pashias' 2 ln(2 tau')). A slump of 0 or of the whole
    mould height determines no yield stress and is refused (InvalidInput ``slump_mm``)."""
    density = _check_density(density_kg_m3)
    if not 0.0 < slump_mm < height_mm:
        raise InvalidInput(
            "slump_mm",
            f"slump_mm must be above 0 and below the mould height {height_mm:g} mm "
            f"(got {slump_mm!r}): a zero or total slump gives no yield stress",
        )
    target = slump_mm / height_mm
    upper = 0.5 if geometry == "cylinder" else _CONE_STRESS_AT_BASE / 2.0
    tau = brentq(
        lambda t: dimensionless_slump(t, geometry) - target, 1.0e-12, upper, xtol=_ROOT_XTOL
    )
    return float(tau) * density * GRAVITY_M_S2 * height_mm / 1000.0


# --- pipe flow of a Bingham plastic -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipeLine:
    """A paste line: developed length, inner diameter, static head dz of the discharge
    above the pump (m; positive lifting, negative a gravity drop) and the design flow;
    optionally its profile (``sections`` from the pump, making the length and the head;
    without it a drop is the borehole at the plant, :func:`service.core.slack_flow.profile`)."""

    length_m: float
    inner_diameter_m: float
    static_head_m: float
    flow_m3_h: float
    sections: tuple[LineSection, ...] = ()


@dataclass(frozen=True, slots=True)
class PipeFlow:
    """Laminar Bingham flow in a line (Buckingham-Reiner; see the module docstring).

    ``pump_pressure_kpa`` = ``friction_loss_kpa`` + ``static_pressure_kpa``, the line
    running full; negative when a gravity drop more than carries the friction, and then
    the line cannot run full: ``fill`` says where it free-falls (slack flow,
    :mod:`service.core.slack_flow`), the pressure the pump does need and the design
    condition to state. ``laminar`` is False when Re_B exceeds Hanks' critical Reynolds
    number: the laminar friction is then too low and ``note`` says so.
    """

    wall_shear_stress_pa: float
    friction_loss_kpa: float
    friction_kpa_per_m: float
    static_pressure_kpa: float
    pump_pressure_kpa: float
    velocity_m_s: float
    bingham_reynolds: float
    hedstrom: float
    critical_reynolds: float
    laminar: bool
    note: str | None
    fill: LineFill


def check_line(line: PipeLine, field: str = "pipeline") -> None:
    """InvalidInput naming ``<field>.<attribute>`` for an implausible line."""
    checks = (
        ("length_m", line.length_m, 0.0, 1.0e5),
        ("inner_diameter_m", line.inner_diameter_m, 0.0, 2.0),
        ("flow_m3_h", line.flow_m3_h, 0.0, 1.0e4),
    )
    for name, value, low, high in checks:
        if not low < value <= high:
            raise InvalidInput(
                f"{field}.{name}",
                f"{name} must be above {low:g} and at most {high:g} (got {value!r})",
            )
    if not -1.0e4 <= line.static_head_m <= 1.0e4:
        raise InvalidInput(
            f"{field}.static_head_m",
            f"static_head_m must be between -10000 and 10000 (got {line.static_head_m!r})",
        )
    check_profile(line.sections, line.length_m, line.static_head_m, field)


def buckingham_reiner_flow_m3_s(
    wall_shear_stress_pa: FloatArray | float,
    yield_stress_pa: FloatArray | float,
    plastic_viscosity_pa_s: FloatArray | float,
    radius_m: float,
) -> FloatArray:
    """Q = pi R^3 tau_w/(4 mu_p) [1 - (4/3) phi + (1/3) phi^4], phi = tau_y/tau_w
    (Buckingham-Reiner, the form with tau_w = R dP/(2L)); 0 where tau_w <= tau_y (the
    paste does not move). Elementwise."""
    tau_w = np.asarray(wall_shear_stress_pa, dtype=np.float64)
    tau_y = np.asarray(yield_stress_pa, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(tau_w > 0.0, tau_y / tau_w, np.inf)
        shape = 1.0 - (4.0 / 3.0) * phi + phi**4 / 3.0
        flow = math.pi * radius_m**3 * tau_w / (4.0 * np.asarray(plastic_viscosity_pa_s)) * shape
    result: FloatArray = np.where(tau_w > tau_y, flow, 0.0)
    return result


def _critical_reynolds(hedstrom: float) -> float:
    """Hanks (1963): phi_c/(1 - phi_c)^3 = He/16800, Re_c = He/(8 phi_c) (1 - 4/3 phi_c +
    phi_c^4/3); as He -> 0 it tends to 2100, the Newtonian value."""
    if hedstrom <= 0.0:
        return 2100.0
    target = hedstrom / _HEDSTROM_CONSTANT
    phi_c = float(
        brentq(lambda p: p / (1.0 - p) ** 3 - target, 0.0, 1.0 - 1.0e-12, xtol=_ROOT_XTOL)
    )
    return hedstrom / (8.0 * phi_c) * (1.0 - 4.0 / 3.0 * phi_c + phi_c**4 / 3.0)


def pipe_flow(
    line: PipeLine,
    density_kg_m3: float,
    yield_stress_pa: float,
    plastic_viscosity_pa_s: float,
) -> PipeFlow:
    """Pump discharge pressure of a Bingham paste in ``line`` (see the module docstring):
    tau_w solved from Buckingham-Reiner by a monotone root find (Q rises with tau_w:
    d/dtau_w [tau_w (1 - 4/3 phi + phi^4/3)] = 1 - phi^4 > 0), bracketed by
    [tau_y, 4/3 tau_y + 4 mu_p Q/(pi R^3)]."""
    check_line(line)
    density = _check_density(density_kg_m3)
    if not 0.0 <= yield_stress_pa <= 1.0e6:
        raise InvalidInput("yield_stress_pa", f"yield_stress_pa must be >= 0 ({yield_stress_pa!r})")
    if not 0.0 < plastic_viscosity_pa_s <= 1.0e4:
        raise InvalidInput(
            "plastic_viscosity_pa_s",
            f"plastic_viscosity_pa_s must be above 0 (got {plastic_viscosity_pa_s!r})",
        )
    radius = line.inner_diameter_m / 2.0
    flow = line.flow_m3_h / 3600.0
    newtonian_wall_stress = 4.0 * plastic_viscosity_pa_s * flow / (math.pi * radius**3)
    if yield_stress_pa == 0.0:
        tau_w = newtonian_wall_stress
    else:
        tau_w = float(
            brentq(
                lambda t: (
                    float(
                        buckingham_reiner_flow_m3_s(
                            t, yield_stress_pa, plastic_viscosity_pa_s, radius
                        )
                    )
                    - flow
                ),
                yield_stress_pa,
                4.0 / 3.0 * yield_stress_pa + newtonian_wall_stress,
                xtol=1.0e-12 * yield_stress_pa,
            )
        )
    friction = 2.0 * line.length_m * tau_w / radius / 1000.0
    static = density * GRAVITY_M_S2 * line.static_head_m / 1000.0
    velocity = flow / (math.pi * radius**2)
    reynolds = density * velocity * line.inner_diameter_m / plastic_viscosity_pa_s
    hedstrom = density * line.inner_diameter_m**2 * yield_stress_pa / plastic_viscosity_pa_s**2
    critical = _critical_reynolds(hedstrom)
    laminar = reynolds < critical
    note = None
    if not laminar:
        note = (
            f"turbulent flow: Bingham Reynolds number {reynolds:.0f} above Hanks' critical "
            f"{critical:.0f}; the laminar Buckingham-Reiner friction underestimates the loss"
        )
    return PipeFlow(
        wall_shear_stress_pa=tau_w,
        friction_loss_kpa=friction,
        friction_kpa_per_m=friction / line.length_m,
        static_pressure_kpa=static,
        pump_pressure_kpa=friction + static,
        velocity_m_s=velocity,
        bingham_reynolds=reynolds,
        hedstrom=hedstrom,
        critical_reynolds=critical,
        laminar=laminar,
        note=note,
        fill=line_fill(
            profile(line.sections, line.length_m, line.static_head_m),
            friction / line.length_m,
            density,
        ),
    )


def pressure_within_grid(
    line: PipeLine,
    max_pump_pressure_kpa: float,
    density_kg_m3: FloatArray,
    yield_stress_pa: FloatArray,
    plastic_viscosity_pa_s: FloatArray,
) -> BoolArray:
    """Elementwise: does the pump pressure at ``line.flow_m3_h`` stay within the limit?

    Without a root find: the limit leaves a wall stress tau_allow = (P_max - rho g dz)
    R/(2L) for friction, and since Q rises with tau_w the pressure is within the limit
    exactly when the Buckingham-Reiner flow at tau_allow reaches the design flow.
    Returns a boolean array.
    """
    radius = line.inner_diameter_m / 2.0
    static_kpa = density_kg_m3 * GRAVITY_M_S2 * line.static_head_m / 1000.0
    allowed_wall_stress = (
        (max_pump_pressure_kpa - static_kpa) * 1000.0 * radius / (2.0 * line.length_m)
    )
    flow = buckingham_reiner_flow_m3_s(
        allowed_wall_stress, yield_stress_pa, plastic_viscosity_pa_s, radius
    )
    within: BoolArray = flow >= line.flow_m3_h / 3600.0 * (1.0 - 1.0e-12)
    return within


# --- the calibration ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RheologyTest:
    """One rheology test of a paste at Cw = ``solids_fraction``, Bw = ``binder_ratio``.

    Give a vane ``yield_stress_pa`` or a ``slump_mm`` with the paste ``density_kg_m3``
    (needed to convert it) and the mould it was measured in, named per row:
    ``slump_mould`` ``cone`` (the Abrams cone, 300 mm) or ``cylinder`` (Pashias et al.
    1996, with its ``mould_height_mm``, which has no standard value); a vane value is
    used when both are given. ``plastic_viscosity_pa_s`` is optional (from a rheometer
    flow curve).
    """

    solids_fraction: float
    binder_ratio: float
    yield_stress_pa: float | None = None
    slump_mm: float | None = None
    density_kg_m3: float | None = None
    plastic_viscosity_pa_s: float | None = None
    sample_id: str | None = None
    slump_mould: SlumpGeometry | None = None
    mould_height_mm: float | None = None


@dataclass(frozen=True)
class RheologyFitReport:
    """Goodness of the yield-stress fit on ln tau_y (residuals measured minus predicted,
    in row order) and of the viscosity fit when there is one."""

    n_rows: int
    n_parameters: int
    slump_rows: int
    r2_log: float
    rmse_log: float
    yield_stress_pa: tuple[float, ...]
    predicted_pa: tuple[float, ...]
    residuals_pa: tuple[float, ...]
    residuals_log: tuple[float, ...]
    viscosity_rows: int = 0
    viscosity_r2_log: float | None = None
    viscosity_residuals_log: tuple[float, ...] = ()
    cylinder_slump_rows: int = 0


@dataclass(frozen=True)
class RheologyModel:
    """ln tau_y = ``intercept`` + ``solids_coefficient`` Cw + ``binder_coefficient`` Bw
    (fractions), and the plastic viscosity: ln mu_p = ``viscosity_intercept`` +
    ``viscosity_solids_coefficient`` Cw when fitted, else the constant
    ``plastic_viscosity_pa_s`` (None when neither: no line pressure can be computed)."""

    intercept: float
    solids_coefficient: float
    binder_coefficient: float
    solids_fraction_range: DataRange
    binder_ratio_range: DataRange
    fit: RheologyFitReport
    viscosity_intercept: float | None = None
    viscosity_solids_coefficient: float | None = None
    plastic_viscosity_pa_s: float | None = None
    dropped_terms: tuple[str, ...] = ()
    label: str = ""
    range_tolerance: float = 0.1

    @property
    def has_viscosity(self) -> bool:
        return self.viscosity_intercept is not None or self.plastic_viscosity_pa_s is not None

    def yield_stress_pa(self, solids_fraction: float, binder_ratio: float) -> float:
        """Predicted yield stress (Pa)."""
        return math.exp(
            self.intercept
            + self.solids_coefficient * solids_fraction
            + self.binder_coefficient * binder_ratio
        )

    def yield_stress_grid(
        self, solids_fraction: FloatArray, binder_ratio: FloatArray
    ) -> FloatArray:
        """:meth:`yield_stress_pa` elementwise (broadcasting)."""
        result: FloatArray = np.exp(
            self.intercept
            + self.solids_coefficient * solids_fraction
            + self.binder_coefficient * binder_ratio
        )
        return result

    def plastic_viscosity(self, solids_fraction: float) -> float:
        """Plastic viscosity (Pa s); CalibrationRejected when the model has none."""
        return float(self.plastic_viscosity_grid(np.asarray(solids_fraction)))

    def plastic_viscosity_grid(self, solids_fraction: FloatArray) -> FloatArray:
        """:meth:`plastic_viscosity` elementwise."""
        if self.viscosity_intercept is not None and self.viscosity_solids_coefficient is not None:
            fitted: FloatArray = np.exp(
                self.viscosity_intercept + self.viscosity_solids_coefficient * solids_fraction
            )
            return fitted
        if self.plastic_viscosity_pa_s is not None:
            constant: FloatArray = np.full(np.shape(solids_fraction), self.plastic_viscosity_pa_s)
            return constant
        raise CalibrationRejected(
            "the rheology calibration has no plastic viscosity (no tests gave one and none "
            "was set): no line pressure can be computed"
        )

    def accepted_solids_range(self) -> tuple[float, float]:
        """The tested Cw widened by ``range_tolerance`` of its span."""
        return self.solids_fraction_range.accepted(self.range_tolerance)

    def outside(self, solids_fraction: float, binder_ratio: float) -> tuple[str, ...]:
        """API names (``solids_pct``, ``binder_pct``) outside the tested range widened by
        ``range_tolerance`` of its span (an exponential fit is not to be trusted beyond)."""
        names = []
        for name, value, data_range in (
            ("solids_pct", solids_fraction, self.solids_fraction_range),
            ("binder_pct", binder_ratio, self.binder_ratio_range),
        ):
            low, high = data_range.accepted(self.range_tolerance)
            if not low - 1.0e-12 <= value <= high + 1.0e-12:
                names.append(name)
        return tuple(names)


def slump_mould_height_mm(row: RheologyTest, prefix: str = "") -> float:
    """The height of the mould a slump row was measured in: the Abrams cone's 300 mm,
    or the cylinder's own; InvalidInput naming ``<prefix>slump_mould`` /
    ``<prefix>mould_height_mm`` when the row does not say, or says something else for
    the cone."""
    if row.slump_mould not in ("cone", "cylinder"):
        raise InvalidInput(
            f"{prefix}slump_mould",
            "a slump row names its mould: cone (Abrams, 300 mm) or cylinder (with "
            "mould_height_mm); the two give different yield stresses for one slump",
        )
    height = row.mould_height_mm
    if row.slump_mould == "cone":
        if height is not None and height != ABRAMS_CONE_HEIGHT_MM:
            raise InvalidInput(
                f"{prefix}mould_height_mm",
                f"the Abrams cone is {ABRAMS_CONE_HEIGHT_MM:g} mm high (got {height!r})",
            )
        return ABRAMS_CONE_HEIGHT_MM
    if height is None or not 0.0 < height <= 1000.0:
        raise InvalidInput(
            f"{prefix}mould_height_mm",
            "a cylinder slump needs the cylinder's height in mm (above 0, at most 1000; "
            f"got {height!r})",
        )
    return float(height)


def _rows_yield_stress(rows: Sequence[RheologyTest]) -> tuple[FloatArray, int, int]:
    values = []
    slump_rows = cylinder_rows = 0
    for index, row in enumerate(rows):
        prefix = f"rows[{index}]"
        if not 0.0 < row.solids_fraction < 1.0:
            raise InvalidInput(f"{prefix}.solids_pct", "solids_pct must be above 0 and below 100")
        if not 0.0 <= row.binder_ratio <= 1.0:
            raise InvalidInput(f"{prefix}.binder_pct", "binder_pct must be between 0 and 100")
        if row.yield_stress_pa is not None:
            if not 0.0 < row.yield_stress_pa <= 1.0e6:
                raise InvalidInput(
                    f"{prefix}.yield_stress_pa",
                    f"yield_stress_pa must be above 0 (got {row.yield_stress_pa!r})",
                )
            values.append(row.yield_stress_pa)
        elif row.slump_mm is not None:
            if row.density_kg_m3 is None:
                raise InvalidInput(
                    f"{prefix}.density_kg_m3", "a slump row needs the paste density to convert"
                )
            height = slump_mould_height_mm(row, f"{prefix}.")
            assert row.slump_mould is not None  # checked above
            try:
                values.append(
                    yield_stress_from_slump(
                        row.slump_mm, row.density_kg_m3, row.slump_mould, height
                    )
                )
            except InvalidInput as err:
                raise InvalidInput(f"{prefix}.{err.field}", err.detail) from err
            slump_rows += 1
            cylinder_rows += row.slump_mould == "cylinder"
        else:
            raise InvalidInput(f"{prefix}", "each row needs yield_stress_pa or slump_mm")
        if row.plastic_viscosity_pa_s is not None and not 0.0 < row.plastic_viscosity_pa_s <= 1e4:
            raise InvalidInput(
                f"{prefix}.plastic_viscosity_pa_s",
                f"plastic_viscosity_pa_s must be above 0 (got {row.plastic_viscosity_pa_s!r})",
            )
    return np.asarray(values, dtype=np.float64), slump_rows, cylinder_rows


def _r2(y: FloatArray, fitted: FloatArray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0.0:
        raise CalibrationRejected("every measured value is the same: nothing to fit")
    return 1.0 - float(np.sum((y - fitted) ** 2)) / total


def fit_rheology_model(
    rows: Sequence[RheologyTest],
    *,
    plastic_viscosity_pa_s: float | None = None,
    label: str = "",
    range_tolerance: float = 0.1,
) -> RheologyModel:
    """Fit ln tau_y = a + b Cw + c Bw by least squares (numpy) on the mine's tests.

    Slump rows are converted with :func:`yield_stress_from_slump` in the mould each row
    names (the Abrams cone, or a cylinder of its height: Pashias et al. 1996). The Bw
    term is dropped when every test has the same Bw. The viscosity is fitted as
    ln mu_p = d + e Cw when at least 3 rows give it at 2 or more Cw, else
    ``plastic_viscosity_pa_s`` is used (None: no line pressure). Refuses
    (CalibrationRejected): fewer rows than parameters + 2, Cw not varied, or yield
    stress (or viscosity) falling as solids rise (b <= 0 or e <= 0).
    """
    if not rows:
        raise CalibrationRejected("no rheology tests to fit")
    if not 0.0 <= range_tolerance <= 1.0:
        raise InvalidInput("range_tolerance", "range_tolerance must be between 0 and 1")
    if plastic_viscosity_pa_s is not None and not 0.0 < plastic_viscosity_pa_s <= 1.0e4:
        raise InvalidInput("plastic_viscosity_pa_s", "plastic_viscosity_pa_s must be above 0")
    tau, slump_rows, cylinder_rows = _rows_yield_stress(rows)
    solids = np.array([row.solids_fraction for row in rows])
    binder = np.array([row.binder_ratio for row in rows])
    if np.ptp(solids) <= _CONSTANT_SPAN:
        raise CalibrationRejected(
            "every rheology test has the same Cw: the solids term cannot be fitted"
        )
    columns = [np.ones(len(rows)), solids]
    dropped: list[str] = []
    has_binder = bool(np.ptp(binder) > _CONSTANT_SPAN)
    if has_binder:
        columns.append(binder)
    else:
        dropped.append(f"binder (every test at Bw {binder[0] * 100:g} %)")
    design = np.column_stack(columns)
    n_rows, n_parameters = design.shape
    if n_rows < n_parameters + 2:
        raise CalibrationRejected(
            f"too few rheology tests: {n_rows} for {n_parameters} parameters; at least "
            f"{n_parameters + 2} are needed"
        )
    y = np.log(tau)
    coefficients, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < n_parameters:
        raise CalibrationRejected("degenerate rheology tests: Cw and Bw are collinear")
    if coefficients[1] <= 0.0:
        raise CalibrationRejected(
            f"the fitted solids coefficient {coefficients[1]:.3g} is not positive: yield "
            "stress would fall as the paste thickens"
        )
    fitted = design @ coefficients
    predicted = np.exp(fitted)
    viscosity_rows = [
        (row.solids_fraction, row.plastic_viscosity_pa_s)
        for row in rows
        if row.plastic_viscosity_pa_s is not None
    ]
    viscosity_intercept = viscosity_slope = None
    viscosity_r2 = None
    viscosity_residuals: tuple[float, ...] = ()
    viscosity_solids = np.array([cw for cw, _ in viscosity_rows])
    if len(viscosity_rows) >= 3 and np.ptp(viscosity_solids) > _CONSTANT_SPAN:
        v_design = np.column_stack([np.ones(len(viscosity_rows)), viscosity_solids])
        v_y = np.log(np.array([mu for _, mu in viscosity_rows], dtype=np.float64))
        v_coefficients = np.linalg.lstsq(v_design, v_y, rcond=None)[0]
        if v_coefficients[1] <= 0.0:
            raise CalibrationRejected(
                "the fitted viscosity falls as the paste thickens: check the viscosity tests"
            )
        viscosity_intercept = float(v_coefficients[0])
        viscosity_slope = float(v_coefficients[1])
        v_fitted = v_design @ v_coefficients
        viscosity_r2 = _r2(v_y, v_fitted)
        viscosity_residuals = tuple(float(v) for v in v_y - v_fitted)
    fit = RheologyFitReport(
        n_rows=n_rows,
        n_parameters=n_parameters,
        slump_rows=slump_rows,
        r2_log=_r2(y, fitted),
        rmse_log=math.sqrt(float(np.mean((y - fitted) ** 2))),
        yield_stress_pa=tuple(float(v) for v in tau),
        predicted_pa=tuple(float(v) for v in predicted),
        residuals_pa=tuple(float(v) for v in tau - predicted),
        residuals_log=tuple(float(v) for v in y - fitted),
        viscosity_rows=len(viscosity_rows),
        viscosity_r2_log=viscosity_r2,
        viscosity_residuals_log=viscosity_residuals,
        cylinder_slump_rows=cylinder_rows,
    )
    return RheologyModel(
        intercept=float(coefficients[0]),
        solids_coefficient=float(coefficients[1]),
        binder_coefficient=float(coefficients[2]) if has_binder else 0.0,
        solids_fraction_range=DataRange(float(solids.min()), float(solids.max())),
        binder_ratio_range=DataRange(float(binder.min()), float(binder.max())),
        fit=fit,
        viscosity_intercept=viscosity_intercept,
        viscosity_solids_coefficient=viscosity_slope,
        plastic_viscosity_pa_s=None if viscosity_intercept is not None else plastic_viscosity_pa_s,
        dropped_terms=tuple(dropped),
        label=label,
        range_tolerance=range_tolerance,
    )


# --- CSV and the shipped example ----------------------------------------------------------


def parse_rheology_csv(text: str) -> tuple[RheologyTest, ...]:
    """Rows from a CSV of rheology tests. Lines starting with ``#`` are comments.

    Columns: ``solids_pct``, ``binder_pct`` (Bw, % of dry tailings), and per row either
    ``yield_stress_pa`` (vane) or ``slump_mm`` with ``density_kg_m3`` and ``slump_mould``
    (``cone`` or ``cylinder``, the latter with ``mould_height_mm``); optionally
    ``plastic_viscosity_pa_s`` and ``sample_id``. Empty cells are absent values. Errors
    are InvalidInput naming ``rows[i].<column>``.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = reader.fieldnames or []
    for column in ("solids_pct", "binder_pct"):
        if column not in header:
            raise InvalidInput("csv", f"the rheology CSV has no {column!r} column")
    if "yield_stress_pa" not in header and "slump_mm" not in header:
        raise InvalidInput("csv", "the rheology CSV has neither yield_stress_pa nor slump_mm")
    rows = []
    for index, record in enumerate(reader):

        def number(column: str, index: int = index, record: dict[str, str] = record) -> float:
            try:
                return float(record[column])
            except (TypeError, ValueError) as err:
                raise InvalidInput(
                    f"rows[{index}].{column}", f"{column} is not a number: {record[column]!r}"
                ) from err

        def optional(
            column: str, index: int = index, record: dict[str, str] = record
        ) -> float | None:
            text = (record.get(column) or "").strip()
            return None if not text else number(column, index, record)

        solids_pct = number("solids_pct")
        binder_pct = number("binder_pct")
        named = (record.get("slump_mould") or "").strip().lower()
        mould: SlumpGeometry | None = None
        if named == "cone":
            mould = "cone"
        elif named == "cylinder":
            mould = "cylinder"
        elif named:
            raise InvalidInput(
                f"rows[{index}].slump_mould", f"slump_mould is cone or cylinder, not {named!r}"
            )
        rows.append(
            RheologyTest(
                solids_fraction=solids_pct / 100.0,
                binder_ratio=binder_pct / 100.0,
                yield_stress_pa=optional("yield_stress_pa"),
                slump_mm=optional("slump_mm"),
                density_kg_m3=optional("density_kg_m3"),
                plastic_viscosity_pa_s=optional("plastic_viscosity_pa_s"),
                sample_id=record.get("sample_id") or None,
                slump_mould=mould,
                mould_height_mm=optional("mould_height_mm"),
            )
        )
    return tuple(rows)


@cache
def load_example_rheology() -> RheologyModel:
    """The shipped EXAMPLE rheology calibration (synthetic, not for design)."""
    text = resources.files("service.core.data").joinpath("example_rheology.csv").read_text()
    return fit_rheology_model(parse_rheology_csv(text), label=EXAMPLE_LABEL)
