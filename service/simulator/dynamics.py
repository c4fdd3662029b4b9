"""Pure dynamics of a paste backfill plant and of the PLC that runs it.

Shaped like python-control's update function ``f(t, x, u, params)``: every function
here takes values and returns new values; there is no asyncio, no asyncua and no
clock. Time enters only as ``dt_s`` (plant seconds) and, for the PLC's heartbeat
watchdog, ``wall_dt_s`` (wall seconds, because the watchdog supervises the real
service, which does not run faster when the simulator does).

Two layers, both pure:

* :func:`step` advances the process (feed, binder feeders, water valve, mixer, pump)
  given the actuator commands in :class:`PlantInputs`; :func:`outputs` turns the
  process state into what the instruments read (:class:`Measurements`).
* :func:`plc_scan` is the PLC: operating mode sequence, remote/local, setpoint
  clamping and acknowledgement, the binder interlock, the pump pressure trip and the
  heartbeat watchdog. :func:`plc_actuators` maps its state to :class:`PlantInputs`.

:func:`simulate` runs one PLC scan and one process step; the server only does I/O.

Beyond the mixing plant, the state carries the stope being filled (:class:`StopeState`:
placed and dumped paste and water, fill height, the barricade's load, see
:func:`barricade_pressure_kpa`) behind a dump diverter valve with a travel time. A
harder plant for reconciliation work is a matter of parameters and faults, all off by
default so that the defaults reproduce the original plant exactly: transport dead
times (:attr:`PlantParams.feed_dead_time_s`, :attr:`PlantParams.paste_dead_time_s`),
a Bingham-plastic pipe friction (:attr:`PlantParams.friction_model`), and calibration
errors of the instruments (:class:`InstrumentErrors`, a fault in :class:`SimControls`).
None of them draws from the random generator, so seeded runs keep their sequence.

Conventions (docs/INTEGRATION.md "Conventions"): masses in kg, rates in t/h, flows in
m3/h, densities in kg/m3, pressures in kPa; ``*_fraction`` is 0-1, ``*_pct`` is 0-100.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Literal

from service.core.stope_geometry import VolumeCurve

WATER_DENSITY_KG_M3 = 1000.0
WATER_VISCOSITY_PA_S = 1.0e-3
GRAVITY_M_S2 = 9.81

FrictionModel = Literal["linear", "bingham"]
FRICTION_MODELS: tuple[FrictionModel, ...] = ("linear", "bingham")

BINDERS: tuple[str, ...] = ("cement", "slag", "flyash")

# The default plant's feed solids band (fractions of feed mass; PlantParams).
DEFAULT_FEED_SOLIDS_BAND: tuple[float, float] = (0.70, 0.77)

# Logical tag names (docs/INTEGRATION.md) of the analog measurements, in publishing order.
MEASUREMENT_TAGS: tuple[str, ...] = (
    "tailings_flow_pv",
    "tailings_density_pv",
    "cement_rate_pv",
    "slag_rate_pv",
    "flyash_rate_pv",
    "water_flow_pv",
    "paste_flow_pv",
    "paste_density_pv",
    "pump_pressure_pv",
    "mixer_level_pv",
    "barricade_pressure_pv",  # optional tag (docs/INTEGRATION.md "Optional tags"): one barricade
)


class PlantMode(IntEnum):
    """``plant_mode`` (docs/INTEGRATION.md), an Int16 on the wire."""

    STOPPED = 0
    FLUSHING = 1
    RUNNING = 2
    FAULT = 3


# --- parameters ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantParams:
    """Process parameters. Defaults describe a 100 m3/h paste plant."""

    # Feed (tailings slurry or filter cake)
    tailings_gs: float = 2.8  # the truth: the process runs on it
    # The Gs the site's recipes assume for the tailings. The process never uses it: a
    # gap between the two is a Gs error that every plant gauge agrees with and only
    # the lab's Cw shows.
    recipe_tailings_gs: float = 2.8
    feed_density_kg_m3: float = 1900.0  # about 73.7 % solids at Gs 2.8
    feed_density_walk_kg_m3_sqrt_s: float = 1.0  # random-walk intensity
    feed_density_reversion_s: float = 600.0  # the walk is mean-reverting (Ornstein-Uhlenbeck)
    # The band the feed's own variation (the walk and the random level steps) stays in.
    # A step set on the control panel and the wet-feed fault go beyond it. 70-77 %
    # solids at Gs 2.8 (1,818-1,980 kg/m3): more than 4.5 standard deviations of the
    # walk either side of 1,900 kg/m3. In density, so that a true Gs changed at run
    # time changes the solids at the same gauge reading, not the reading.
    feed_density_min_kg_m3: float = field(
        default_factory=lambda: slurry_density_kg_m3(DEFAULT_FEED_SOLIDS_BAND[0], 2.8)
    )
    feed_density_max_kg_m3: float = field(
        default_factory=lambda: slurry_density_kg_m3(DEFAULT_FEED_SOLIDS_BAND[1], 2.8)
    )
    # Random steps of the feed's level (a thickener or filter change): this size, up or
    # down, at Poisson times with this mean interval (plant s); 0 is none.
    feed_step_kg_m3: float = 0.0
    feed_step_interval_s: float = 1800.0
    wet_feed_drop_kg_m3: float = 350.0  # wet feed: 1550 kg/m3, about 55 % solids
    feed_flow_max_m3_h: float = 150.0
    feed_flow_tau_s: float = 5.0
    feed_density_noise_kg_m3: float = 2.0
    # Binder feeders (loss-in-weight screws), in the order of BINDERS
    binder_gs: tuple[float, float, float] = (3.15, 2.90, 2.30)
    binder_max_t_h: tuple[float, float, float] = (10.0, 10.0, 5.0)
    # A screw that delivers (1 + bias/100) x what its loop asks while its scale reads
    # true (a volumetric screw off its calibration): the rate reading shows it, unlike
    # a scale's bias (InstrumentErrors). Within +-50 %.
    feeder_bias_pct: tuple[float, float, float] = (0.0, 0.0, 0.0)
    feeder_tau_s: float = 2.0
    hopper_capacity_kg: float = 300.0
    hopper_refill_at_kg: float = 60.0
    hopper_refill_kg_s: float = 20.0
    # Dilution water valve
    water_max_m3_h: float = 40.0
    water_tau_s: float = 3.0
    # Mixer (well mixed) and the level loop of the pump
    mixer_volume_m3: float = 2.5  # at 100 % level
    mixer_level_sp_pct: float = 50.0  # 1.25 m3: 45 s residence time at 100 m3/h
    level_tau_s: float = 8.0
    pump_max_m3_h: float = 200.0
    # Instruments
    density_gauge_tau_s: float = 2.0
    paste_density_noise_kg_m3: float = 3.0
    pressure_tau_s: float = 1.0
    pressure_noise_kpa: float = 5.0
    # White noise of the flow readings, rms in % of the reading (0: they read exactly);
    # a binder scale's held reading during a hopper refill carries none.
    feed_flow_noise_pct: float = 0.0
    paste_flow_noise_pct: float = 0.0
    water_flow_noise_pct: float = 0.0
    binder_scale_noise_pct: float = 0.0
    # Pipeline: static head plus friction proportional to flow, steep in solids fraction
    static_head_m: float = 20.0
    design_flow_m3_h: float = 100.0
    friction_kpa_at_design: float = 3000.0  # at design flow and the reference solids
    friction_ref_solids_fraction: float = 0.75
    friction_solids_exponent: float = 15.0  # friction x e^(15 dCw): +5 % Cw doubles it
    blockage_ramp_kpa_s: float = 100.0
    blockage_decay_s: float = 10.0
    # Alternative pipe friction (friction_model "bingham", see _bingham_friction_kpa):
    # a Bingham plastic in laminar pipe flow. The defaults give about the linear
    # model's friction at the design flow and the reference solids (3,000 kPa).
    friction_model: FrictionModel = "linear"
    pipe_diameter_m: float = 0.15
    pipe_length_m: float = 759.0  # friction (horizontal-equivalent) length
    yield_stress_pa_at_ref: float = 100.0  # at friction_ref_solids_fraction
    yield_stress_solids_exponent: float = 25.0  # tau_y x e^(25 dCw): +2.8 % Cw doubles it
    plastic_viscosity_pa_s_at_ref: float = 0.3
    plastic_viscosity_solids_exponent: float = 10.0
    # Transport dead times (pure delays): feed flow meter / density gauge -> mixer, and
    # mixer outlet -> paste density gauge. 0 is none.
    feed_dead_time_s: float = 0.0
    paste_dead_time_s: float = 0.0
    # The stope being filled and its barricade (see barricade_pressure_kpa). Example
    # values, not a calibration: a mine fits them from its own barricade instruments.
    stope_plan_area_m2: float = 100.0
    # The stope's volume-height curve as surveyed (None: a prism of the plan area).
    stope_curve: VolumeCurve | None = None
    barricade_consolidation_tau_h: float = 12.0  # relaxation time of a fill without binder
    barricade_cure_rate_per_h_per_binder_pct: float = 0.05  # binder speeds it up
    # The dump diverter valve: plant seconds from a new command to the proven position
    diverter_travel_s: float = 5.0
    # Numerical: step() splits dt_s into sub-steps no longer than this
    max_substep_s: float = 0.5


@dataclass(frozen=True)
class Setpoints:
    """A setpoint set as written by the service (or applied by the PLC)."""

    tailings_flow_m3_h: float = 0.0
    cement_t_h: float = 0.0
    slag_t_h: float = 0.0
    flyash_t_h: float = 0.0
    water_m3_h: float = 0.0
    paste_density_kg_m3: float = 1850.0


@dataclass(frozen=True)
class PlcParams:
    """The PLC's own limits and sequences (the interlocks live here, not in the service)."""

    flush_s: float = 10.0  # plant seconds of water only when starting and stopping
    flush_water_m3_h: float = 30.0
    proven_flow_m3_h: float = 5.0  # no binder below this tailings flow
    heartbeat_timeout_s: float = 5.0  # wall seconds
    restart_after_comms_fault: bool = False  # False: run_request must go false, then true
    pressure_trip_kpa: float = 12000.0  # pump high-high pressure
    pressure_reset_kpa: float = 8000.0
    min_setpoints: Setpoints = field(
        default_factory=lambda: Setpoints(0.0, 0.0, 0.0, 0.0, 0.0, 1000.0)
    )
    max_setpoints: Setpoints = field(
        default_factory=lambda: Setpoints(140.0, 10.0, 10.0, 5.0, 40.0, 2400.0)
    )


@dataclass(frozen=True)
class SimParams:
    plant: PlantParams = field(default_factory=PlantParams)
    plc: PlcParams = field(default_factory=PlcParams)


# --- state -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Components:
    """Masses per component (kg): dry tailings solids, each binder, water."""

    tailings_kg: float = 0.0
    cement_kg: float = 0.0
    slag_kg: float = 0.0
    flyash_kg: float = 0.0
    water_kg: float = 0.0

    def __add__(self, other: Components) -> Components:
        return Components(
            self.tailings_kg + other.tailings_kg,
            self.cement_kg + other.cement_kg,
            self.slag_kg + other.slag_kg,
            self.flyash_kg + other.flyash_kg,
            self.water_kg + other.water_kg,
        )

    def __sub__(self, other: Components) -> Components:
        return self + other.scaled(-1.0)

    def scaled(self, factor: float) -> Components:
        return Components(
            self.tailings_kg * factor,
            self.cement_kg * factor,
            self.slag_kg * factor,
            self.flyash_kg * factor,
            self.water_kg * factor,
        )

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (self.tailings_kg, self.cement_kg, self.slag_kg, self.flyash_kg, self.water_kg)

    @property
    def total_kg(self) -> float:
        return sum(self.as_tuple())

    @property
    def solids_kg(self) -> float:
        return self.total_kg - self.water_kg


@dataclass(frozen=True)
class FeederState:
    """A loss-in-weight binder feeder: screw rate, hopper, and what its scale reports."""

    rate_t_h: float = 0.0
    measured_t_h: float = 0.0  # held at the last value while the hopper refills
    hopper_kg: float = 300.0
    refilling: bool = False
    fault: bool = False


@dataclass(frozen=True)
class InstrumentErrors:
    """Calibration errors of the plant's instruments; all zero is a calibrated plant.

    * A loss-in-weight scale with bias ``b`` % reports ``delivered x (1 + b/100)``. The
      feeder's own loop holds the *reading* at the setpoint, so a positive bias
      (the scale over-reads) delivers ``setpoint / (1 + b/100)``: the rate PV equals
      the setpoint and only a balance or the lab sees the missing binder.
    * The feed flow meter likewise: the PLC's feed loop holds the reading at the
      setpoint, the true feed is ``setpoint / (1 + b/100)``; so does the water flow
      meter in the water valve's loop. The paste flow meter is not in a loop (the pump
      follows the mixer level): it reads ``true x (1 + b/100)``.
    * A density gauge reads ``true + bias + drift``; the drift grows at its rate per
      plant hour from when the rate is set, and setting the rate back to zero
      recalibrates the gauge (the accumulated drift returns to zero).
    """

    cement_scale_bias_pct: float = 0.0
    slag_scale_bias_pct: float = 0.0
    flyash_scale_bias_pct: float = 0.0
    feed_flow_bias_pct: float = 0.0
    paste_flow_bias_pct: float = 0.0
    water_flow_bias_pct: float = 0.0
    feed_density_bias_kg_m3: float = 0.0
    feed_density_drift_kg_m3_h: float = 0.0  # per plant hour
    paste_density_bias_kg_m3: float = 0.0
    paste_density_drift_kg_m3_h: float = 0.0  # per plant hour

    @property
    def scale_bias_pct(self) -> tuple[float, float, float]:
        """Per binder feeder, in the order of BINDERS."""
        return (self.cement_scale_bias_pct, self.slag_scale_bias_pct, self.flyash_scale_bias_pct)


NO_INSTRUMENT_ERRORS = InstrumentErrors()


@dataclass(frozen=True)
class StopeState:
    """The stope being filled, since it was last reset (:func:`reset_stope`).

    What leaves the pump goes to the stope, or to the dump while the diverter's proven
    position is "to dump". Volumes are counted as paste while the PLC runs and as
    flush water while it flushes (as a plant's records count them), kept apart; the
    masses per component (``placed`` + ``dumped``) close the balance with the pump's
    outflow. Only placed paste raises the fill (flush water decants through the
    barricade). ``barricade_load_m3`` is the placed volume whose weight still bears on
    the barricade as a fluid (:func:`barricade_pressure_kpa`).
    """

    placed: Components = field(default_factory=Components)
    dumped: Components = field(default_factory=Components)
    placed_paste_m3: float = 0.0
    placed_water_m3: float = 0.0
    dumped_paste_m3: float = 0.0
    dumped_water_m3: float = 0.0
    placed_paste_kg: float = 0.0
    barricade_load_m3: float = 0.0


@dataclass(frozen=True)
class PlantState:
    feed_flow_m3_h: float
    feed_density_walk_kg_m3: float  # random-walk part of the feed density
    feed_density_kg_m3: float  # actual feed density, disturbances included
    feeders: tuple[FeederState, FeederState, FeederState]  # in the order of BINDERS
    water_flow_m3_h: float
    mixer: Components  # what the mixer holds
    paste_flow_m3_h: float  # pump discharge
    density_gauge_kg_m3: float  # lagged paste density (before noise)
    pressure_kpa: float  # lagged pump pressure (before noise)
    blockage_kpa: float  # extra pressure from a building blockage
    mass_in: Components  # cumulative into the mixer, since the initial state
    mass_out: Components  # cumulative out of the pump
    time_s: float = 0.0  # plant seconds since the initial state
    stope: StopeState = field(default_factory=StopeState)
    diverted_to_dump: bool = False  # the diverter's proven position
    diverter_travel_elapsed_s: float = 0.0  # > 0 while the valve travels to the other side
    # Feed metered but not yet in the mixer: (plant time it arrives, masses), in order.
    feed_in_transit: tuple[tuple[float, Components], ...] = ()
    # Mixer density on its way to the paste density gauge: (plant time, kg/m3), in order.
    paste_density_line: tuple[tuple[float, float], ...] = ()
    instrument_errors: InstrumentErrors = NO_INSTRUMENT_ERRORS  # in force
    feed_density_drift_kg_m3: float = 0.0  # accumulated gauge drift
    paste_density_drift_kg_m3: float = 0.0
    # The PLC's paste totaliser: volume the pump delivered while not flushing (stope and
    # dump alike), since the PLC started; never reset with the stope.
    paste_delivered_m3: float = 0.0
    # The feed's level above its nominal density after the random level steps (kg/m3).
    feed_density_level_kg_m3: float = 0.0


@dataclass(frozen=True)
class PlantInputs:
    """What the PLC drives plus the disturbances and faults applied to the process."""

    feed_flow_sp_m3_h: float = 0.0
    binder_sp_t_h: tuple[float, float, float] = (0.0, 0.0, 0.0)
    water_flow_sp_m3_h: float = 0.0
    pump_on: bool = False
    feeder_faults: frozenset[str] = frozenset()  # names from BINDERS
    feed_density_step_kg_m3: float = 0.0
    wet_feed: bool = False
    blockage: bool = False
    divert_to_dump: bool = False  # the diverter command the PLC drives
    diverter_stuck: bool = False  # fault: the valve stays where it is
    flushing: bool = False  # the PLC flushes: what leaves the pump counts as flush water
    instrument_errors: InstrumentErrors = NO_INSTRUMENT_ERRORS


@dataclass(frozen=True)
class Measurements:
    """What the plant instruments read; field names are the logical tags (docs/INTEGRATION.md)."""

    tailings_flow_pv: float
    tailings_density_pv: float
    cement_rate_pv: float
    slag_rate_pv: float
    flyash_rate_pv: float
    water_flow_pv: float
    paste_flow_pv: float
    paste_density_pv: float
    pump_pressure_pv: float
    mixer_level_pv: float
    barricade_pressure_pv: float

    def as_dict(self) -> dict[str, float]:
        return {tag: float(getattr(self, tag)) for tag in MEASUREMENT_TAGS}


# --- mass-volume relations ---------------------------------------------------------------


def slurry_solids_fraction(density_kg_m3: float, solids_gs: float) -> float:
    """Cw of a slurry: Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w)) (Wills, B.A. &
    Finch, J.A. (2016) Wills' Mineral Processing Technology, 8th ed., ch. 3)."""
    rho_s = solids_gs * WATER_DENSITY_KG_M3
    cw = (
        rho_s
        * (density_kg_m3 - WATER_DENSITY_KG_M3)
        / (density_kg_m3 * (rho_s - WATER_DENSITY_KG_M3))
    )
    return min(max(cw, 0.0), 1.0)


def slurry_density_kg_m3(solids_fraction_: float, solids_gs: float) -> float:
    """Density of a saturated slurry of solids fraction Cw (by mass) and solids Gs::

        rho = 1 / (Cw / (Gs rho_w) + (1 - Cw) / rho_w)

    the pulp density relation of mineral processing (Wills, B.A. & Finch, J.A. (2016),
    Wills' Mineral Processing Technology, 8th ed., Butterworth-Heinemann), the inverse
    of :func:`slurry_solids_fraction`."""
    cw = min(max(solids_fraction_, 0.0), 1.0)
    return 1.0 / (cw / (solids_gs * WATER_DENSITY_KG_M3) + (1.0 - cw) / WATER_DENSITY_KG_M3)


def _solid_densities(params: PlantParams) -> tuple[float, float, float, float, float]:
    gs_c, gs_s, gs_f = params.binder_gs
    return (
        params.tailings_gs * WATER_DENSITY_KG_M3,
        gs_c * WATER_DENSITY_KG_M3,
        gs_s * WATER_DENSITY_KG_M3,
        gs_f * WATER_DENSITY_KG_M3,
        WATER_DENSITY_KG_M3,
    )


def volume_m3(masses: Components, params: PlantParams) -> float:
    """Volume of a saturated mix: the sum of each component's mass over its density."""
    return sum(m / rho for m, rho in zip(masses.as_tuple(), _solid_densities(params), strict=True))


def mix_density_kg_m3(masses: Components, params: PlantParams) -> float:
    v = volume_m3(masses, params)
    if v <= 1e-9:
        return WATER_DENSITY_KG_M3
    return masses.total_kg / v


def solids_fraction(masses: Components) -> float:
    total = masses.total_kg
    return masses.solids_kg / total if total > 1e-9 else 0.0


def mixer_level_pct(state: PlantState, params: PlantParams) -> float:
    return 100.0 * volume_m3(state.mixer, params) / params.mixer_volume_m3


# --- process ---------------------------------------------------------------------------


def _lag(x: float, target: float, tau_s: float, dt_s: float) -> float:
    """Exact discretisation of a first-order lag, stable for any dt."""
    if tau_s <= 0.0:
        return target
    return target + (x - target) * math.exp(-dt_s / tau_s)


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def initial_state(params: PlantParams) -> PlantState:
    """Stopped plant after a flush: mixer at its level setpoint, full of water."""
    water_kg = params.mixer_volume_m3 * params.mixer_level_sp_pct / 100.0 * WATER_DENSITY_KG_M3
    mixer = Components(water_kg=water_kg)
    return PlantState(
        feed_flow_m3_h=0.0,
        feed_density_walk_kg_m3=0.0,
        feed_density_kg_m3=params.feed_density_kg_m3,
        feeders=(
            FeederState(hopper_kg=params.hopper_capacity_kg),
            FeederState(hopper_kg=params.hopper_capacity_kg),
            FeederState(hopper_kg=params.hopper_capacity_kg),
        ),
        water_flow_m3_h=0.0,
        mixer=mixer,
        paste_flow_m3_h=0.0,
        density_gauge_kg_m3=WATER_DENSITY_KG_M3,
        pressure_kpa=_pipeline_pressure_kpa(0.0, mixer, params),
        blockage_kpa=0.0,
        mass_in=Components(),
        mass_out=Components(),
    )


def _pipeline_pressure_kpa(flow_m3_h: float, mix: Components, params: PlantParams) -> float:
    """Pump discharge pressure: static head rho g h plus friction.

    ``friction_model`` "linear" (the default): friction proportional to flow and
    exponential in the solids fraction. "bingham": a Bingham plastic whose wall stress
    keeps a yield part as the flow falls (:func:`_bingham_friction_kpa`). Both are
    monotone in flow and density.
    """
    static_kpa = mix_density_kg_m3(mix, params) * GRAVITY_M_S2 * params.static_head_m / 1000.0
    cw = solids_fraction(mix)
    if params.friction_model == "bingham":
        return static_kpa + _bingham_friction_kpa(flow_m3_h, cw, params)
    friction_kpa = (
        params.friction_kpa_at_design
        * max(flow_m3_h, 0.0)
        / params.design_flow_m3_h
        * math.exp(params.friction_solids_exponent * (cw - params.friction_ref_solids_fraction))
    )
    return static_kpa + friction_kpa


def paste_yield_stress_pa(solids_fraction_: float, params: PlantParams) -> float:
    """Bingham yield stress, exponential in Cw, the steep rise with solids that paste
    and thickened tailings show (Sofra, F. & Boger, D.V. (2002), "Environmental rheology
    for waste minimisation in the minerals industry", Chem. Eng. J. 86:319-330):
    example values."""
    d_cw = solids_fraction_ - params.friction_ref_solids_fraction
    return params.yield_stress_pa_at_ref * math.exp(params.yield_stress_solids_exponent * d_cw)


def paste_plastic_viscosity_pa_s(solids_fraction_: float, params: PlantParams) -> float:
    """Bingham plastic viscosity, exponential in Cw, never below water's."""
    d_cw = solids_fraction_ - params.friction_ref_solids_fraction
    mu = params.plastic_viscosity_pa_s_at_ref * math.exp(
        params.plastic_viscosity_solids_exponent * d_cw
    )
    return max(mu, WATER_VISCOSITY_PA_S)


def bingham_wall_shear_stress_pa(
    velocity_m_s: float, diameter_m: float, yield_stress_pa: float, plastic_viscosity_pa_s: float
) -> float:
    """Wall shear stress of a Bingham plastic in laminar pipe flow.

    Buckingham (1921), "On plastic flow through capillary tubes", Proc. ASTM 21:1154;
    the Buckingham-Reiner equation as in Chhabra & Richardson (2008), Non-Newtonian
    Flow and Applied Rheology, 2nd ed., ch. 3::

        8V/D = (tau_w / mu_p) (1 - 4/3 phi + 1/3 phi^4),  phi = tau_y / tau_w

    solved for ``tau_w`` by Newton's method from ``4/3 tau_y + mu_p 8V/D`` (the
    usual approximation, an upper bound; the residual is increasing and convex in
    ``tau_w``, so the iteration falls monotonically to the root). As the flow falls
    the wall stress tends to the yield stress, not to zero. Laminar flow only
    (pastes are laminar at pipeline velocities); no slip, no wall layer.
    """
    viscous = plastic_viscosity_pa_s * 8.0 * max(velocity_m_s, 0.0) / diameter_m
    tau_y = max(yield_stress_pa, 0.0)
    tau = 4.0 / 3.0 * tau_y + viscous
    if tau <= 0.0:
        return 0.0
    for _ in range(60):
        phi = tau_y / tau  # in [0, 1]: no overflow for any stress
        residual = tau * (1.0 - 4.0 / 3.0 * phi + phi**4 / 3.0) - viscous
        slope = 1.0 - phi**4
        if residual <= 1e-12 * tau or slope <= 0.0:
            break
        tau = max(tau - residual / slope, tau_y)
    return tau


def _bingham_friction_kpa(flow_m3_h: float, cw: float, params: PlantParams) -> float:
    """Friction loss of the line, 4 L tau_w / D, while the pump moves paste (none at
    standstill: a stopped line holds its paste without the pump pushing)."""
    if flow_m3_h <= 0.0:
        return 0.0
    area_m2 = math.pi * params.pipe_diameter_m**2 / 4.0
    tau_w = bingham_wall_shear_stress_pa(
        flow_m3_h / 3600.0 / area_m2,
        params.pipe_diameter_m,
        paste_yield_stress_pa(cw, params),
        paste_plastic_viscosity_pa_s(cw, params),
    )
    return 4.0 * params.pipe_length_m * tau_w / params.pipe_diameter_m / 1000.0


def _feeder_substep(
    feeder: FeederState,
    sp_t_h: float,
    max_t_h: float,
    faulted: bool,
    dt_s: float,
    params: PlantParams,
    scale_bias_pct: float = 0.0,
    feeder_bias_pct: float = 0.0,
) -> tuple[FeederState, float]:
    """One feeder sub-step; returns the new state and the binder mass delivered (kg).

    The scale reads ``rate x (1 + bias)`` and the feeder holds that reading at the
    setpoint (see :class:`InstrumentErrors`); a feeder bias makes the screw deliver
    ``(1 + feeder bias)`` times that, which its scale shows."""
    gain = 1.0 + _bias_fraction(scale_bias_pct)
    target = sp_t_h / gain * (1.0 + _bias_fraction(feeder_bias_pct))
    rate = (
        0.0
        if faulted
        else _lag(feeder.rate_t_h, _clamp(target, 0.0, max_t_h), params.feeder_tau_s, dt_s)
    )
    delivered_kg = min(rate * 1000.0 / 3600.0 * dt_s, feeder.hopper_kg)
    hopper = feeder.hopper_kg - delivered_kg
    refilling = feeder.refilling
    if refilling:
        hopper += params.hopper_refill_kg_s * dt_s
        if hopper >= params.hopper_capacity_kg:
            hopper = params.hopper_capacity_kg
            refilling = False
    elif hopper <= params.hopper_refill_at_kg:
        refilling = True
    # A loss-in-weight scale cannot tell a rate while material is poured into it.
    measured = feeder.measured_t_h if refilling else rate * gain
    return FeederState(rate, measured, hopper, refilling, faulted), delivered_kg


def _bias_fraction(bias_pct: float) -> float:
    """A relative instrument bias as a fraction, kept within +-50 % (finite)."""
    return _clamp(bias_pct, -50.0, 50.0) / 100.0 if math.isfinite(bias_pct) else 0.0


_TIME_EPS_S = 1e-6  # plant times are sums of sub-steps: compare them with a tolerance


def _feed_transport(
    pipe: tuple[tuple[float, Components], ...],
    metered: Components,
    now_s: float,
    dead_time_s: float,
) -> tuple[Components, tuple[tuple[float, Components], ...]]:
    """A plug-flow dead time between the feed meters and the mixer.

    The feed metered in this sub-step arrives ``dead_time_s`` later; nothing overtakes
    (a shortened dead time applies behind what is already in the pipe), and nothing is
    lost. Returns what reaches the mixer now and what stays in the pipe.
    """
    if dead_time_s <= 0.0 and not pipe:
        return metered, ()
    arrives = now_s + max(dead_time_s, 0.0)
    if pipe:
        arrives = max(arrives, pipe[-1][0])
    queue = (*pipe, (arrives, metered))
    arrived = Components()
    n = 0
    while n < len(queue) and queue[n][0] <= now_s + _TIME_EPS_S:
        arrived = arrived + queue[n][1]
        n += 1
    return arrived, queue[n:]


def _delayed(
    line: tuple[tuple[float, float], ...],
    value: float,
    previous: float,
    start_s: float,
    now_s: float,
    dead_time_s: float,
) -> tuple[float, tuple[tuple[float, float], ...]]:
    """A pure delay of a sampled value: what was there ``dead_time_s`` ago (held
    between samples). ``previous`` at ``start_s`` seeds an empty line, so a new dead
    time shows the old value first, not the new one; a dead time lengthened at run
    time holds the oldest value the line still has until time catches up. The line
    keeps about ``dead_time_s / dt_s`` samples."""
    if dead_time_s <= 0.0:
        return value, ()
    seeded = line or ((start_s, previous),)
    samples = (*seeded, (now_s, value))
    wanted = now_s - dead_time_s + _TIME_EPS_S
    n = 0
    while n + 1 < len(samples) and samples[n + 1][0] <= wanted:
        n += 1
    samples = samples[n:]
    return samples[0][1], samples


def _diverter_substep(
    diverted: bool, elapsed_s: float, command: bool, stuck: bool, dt_s: float, travel_s: float
) -> tuple[bool, float]:
    """The dump diverter: the proven position follows the command after ``travel_s``.

    While travelling the proven position (and the flow) stays where it was; a command
    withdrawn mid-travel sends the valve back at once; a stuck valve stays where it is
    (a travel under way pauses).
    """
    if stuck:
        return diverted, elapsed_s
    if command == diverted:
        return diverted, 0.0
    elapsed_s += dt_s
    if elapsed_s >= travel_s - _TIME_EPS_S:
        return command, 0.0
    return diverted, elapsed_s


def _relaxation_rate_per_s(placed: Components, params: PlantParams) -> float:
    """The barricade load's relaxation rate: consolidation plus a cure term in Bw."""
    binder_pct = (
        100.0 * (placed.cement_kg + placed.slag_kg + placed.flyash_kg) / placed.tailings_kg
        if placed.tailings_kg > 1e-9
        else 0.0
    )
    tau_h = params.barricade_consolidation_tau_h
    per_h = (1.0 / tau_h if tau_h > 0.0 else 0.0) + max(
        params.barricade_cure_rate_per_h_per_binder_pct, 0.0
    ) * binder_pct
    return per_h / 3600.0


def _stope_substep(
    stope: StopeState,
    outflow: Components,
    out_m3: float,
    to_dump: bool,
    flushing: bool,
    dt_s: float,
    params: PlantParams,
) -> StopeState:
    """Route the pump's outflow to the stope or the dump and update the barricade load.

    The load ``L`` (m3) obeys ``dL/dt = q - k L``: every placed cubic metre arrives
    fluid and loads the barricade in full (``q`` the placed paste flow), and the fill
    sheds load at the rate ``k`` (:func:`barricade_pressure_kpa`). Integrated exactly
    for a constant ``q`` over the sub-step, so ``0 <= L <= placed volume`` holds.
    """
    placed, dumped = stope.placed, stope.dumped
    placed_paste_m3, placed_water_m3 = stope.placed_paste_m3, stope.placed_water_m3
    dumped_paste_m3, dumped_water_m3 = stope.dumped_paste_m3, stope.dumped_water_m3
    placed_paste_kg, load = stope.placed_paste_kg, stope.barricade_load_m3
    added_m3 = 0.0
    if out_m3 > 0.0:
        if to_dump:
            dumped = dumped + outflow
            if flushing:
                dumped_water_m3 += out_m3
            else:
                dumped_paste_m3 += out_m3
        else:
            placed = placed + outflow
            if flushing:
                placed_water_m3 += out_m3
            else:
                placed_paste_m3 += out_m3
                placed_paste_kg += outflow.total_kg
                added_m3 = out_m3
    elif load <= 0.0:
        return stope
    if load > 0.0 or added_m3 > 0.0:
        k = _relaxation_rate_per_s(placed, params)
        if k <= 0.0:
            load += added_m3
        else:
            steady = added_m3 / dt_s / k  # q / k
            load = steady + (load - steady) * math.exp(-k * dt_s)
        load = _clamp(load, 0.0, placed_paste_m3)
    return StopeState(
        placed,
        dumped,
        placed_paste_m3,
        placed_water_m3,
        dumped_paste_m3,
        dumped_water_m3,
        placed_paste_kg,
        load,
    )


def _substep(
    state: PlantState, inputs: PlantInputs, dt_s: float, params: PlantParams, rng: random.Random
) -> PlantState:
    # Feed density disturbance: mean-reverting random walk and random level steps, held
    # in the feed's band; then the configured step and the wet feed beyond it.
    walk = state.feed_density_walk_kg_m3
    walk += -walk * dt_s / params.feed_density_reversion_s + rng.gauss(
        0.0, params.feed_density_walk_kg_m3_sqrt_s * math.sqrt(dt_s)
    )
    level = state.feed_density_level_kg_m3
    if params.feed_step_kg_m3 > 0.0 and rng.random() < dt_s / params.feed_step_interval_s:
        level = _level_step(level, params, up=rng.random() < 0.5)
    natural = params.feed_density_kg_m3 + level + walk
    low, high = params.feed_density_min_kg_m3, params.feed_density_max_kg_m3
    if not low <= natural <= high:
        # The walk stops at the band's edge (it does not wander on behind it).
        natural = _clamp(natural, low, high)
        walk = natural - params.feed_density_kg_m3 - level
    feed_density = natural + inputs.feed_density_step_kg_m3
    if inputs.wet_feed:
        feed_density -= params.wet_feed_drop_kg_m3
    feed_density = _clamp(
        feed_density, WATER_DENSITY_KG_M3, params.tailings_gs * WATER_DENSITY_KG_M3
    )

    errors = inputs.instrument_errors
    now_s = state.time_s + dt_s
    # The feed loop holds the flow meter's reading at the setpoint (InstrumentErrors).
    feed_flow = _lag(
        state.feed_flow_m3_h,
        _clamp(
            inputs.feed_flow_sp_m3_h / (1.0 + _bias_fraction(errors.feed_flow_bias_pct)),
            0.0,
            params.feed_flow_max_m3_h,
        ),
        params.feed_flow_tau_s,
        dt_s,
    )
    feed_kg = feed_flow / 3600.0 * dt_s * feed_density
    feed_solids_kg = feed_kg * slurry_solids_fraction(feed_density, params.tailings_gs)
    feed_in, in_transit = _feed_transport(
        state.feed_in_transit,
        Components(tailings_kg=feed_solids_kg, water_kg=feed_kg - feed_solids_kg),
        now_s,
        params.feed_dead_time_s,
    )

    feeders: list[FeederState] = []
    binder_kg: list[float] = []
    for i, name in enumerate(BINDERS):
        feeder, kg = _feeder_substep(
            state.feeders[i],
            inputs.binder_sp_t_h[i],
            params.binder_max_t_h[i],
            name in inputs.feeder_faults,
            dt_s,
            params,
            errors.scale_bias_pct[i],
            params.feeder_bias_pct[i],
        )
        feeders.append(feeder)
        binder_kg.append(kg)

    # The water valve's loop holds the water meter's reading at the setpoint.
    water_flow = _lag(
        state.water_flow_m3_h,
        _clamp(
            inputs.water_flow_sp_m3_h / (1.0 + _bias_fraction(errors.water_flow_bias_pct)),
            0.0,
            params.water_max_m3_h,
        ),
        params.water_tau_s,
        dt_s,
    )
    water_kg = water_flow / 3600.0 * dt_s * WATER_DENSITY_KG_M3

    inflow = Components(
        tailings_kg=feed_in.tailings_kg,
        cement_kg=binder_kg[0],
        slag_kg=binder_kg[1],
        flyash_kg=binder_kg[2],
        water_kg=feed_in.water_kg + water_kg,
    )
    mixer = state.mixer + inflow
    volume = volume_m3(mixer, params)

    # Pump: feed-forward of the inflow volume plus a proportional level loop.
    if inputs.pump_on:
        inflow_m3_s = volume_m3(inflow, params) / dt_s
        level_sp_m3 = params.mixer_volume_m3 * params.mixer_level_sp_pct / 100.0
        paste_m3_s = _clamp(
            inflow_m3_s + (volume - level_sp_m3) / params.level_tau_s,
            0.0,
            params.pump_max_m3_h / 3600.0,
        )
    else:
        paste_m3_s = 0.0
    out_fraction = min(1.0, paste_m3_s * dt_s / volume) if volume > 1e-12 else 0.0
    outflow = mixer.scaled(out_fraction)
    mixer_before = state.mixer
    mixer = mixer - outflow
    # Clip rounding residue (a fully drained mixer could otherwise hold -1e-17 kg).
    mixer = Components(*(max(m, 0.0) for m in mixer.as_tuple()))
    paste_flow = paste_m3_s * 3600.0

    # The outflow goes where the valve was proven during the sub-step (its start); a
    # travel that ends within it applies from the next one.
    stope = _stope_substep(
        state.stope,
        outflow,
        out_fraction * volume,
        state.diverted_to_dump,
        inputs.flushing,
        dt_s,
        params,
    )
    diverted, travel_s = _diverter_substep(
        state.diverted_to_dump,
        state.diverter_travel_elapsed_s,
        inputs.divert_to_dump,
        inputs.diverter_stuck,
        dt_s,
        params.diverter_travel_s,
    )

    density = mix_density_kg_m3(mixer, params)
    gauge_sees, density_line = _delayed(
        state.paste_density_line,
        density,
        mix_density_kg_m3(mixer_before, params) if params.paste_dead_time_s > 0.0 else density,
        state.time_s,
        now_s,
        params.paste_dead_time_s,
    )
    density_gauge = _lag(state.density_gauge_kg_m3, gauge_sees, params.density_gauge_tau_s, dt_s)

    if inputs.blockage and paste_flow > 0.0:
        blockage = state.blockage_kpa + params.blockage_ramp_kpa_s * dt_s
    elif inputs.blockage:
        blockage = state.blockage_kpa
    else:
        blockage = _lag(state.blockage_kpa, 0.0, params.blockage_decay_s, dt_s)
    pressure = _lag(
        state.pressure_kpa,
        _pipeline_pressure_kpa(paste_flow, mixer, params) + blockage,
        params.pressure_tau_s,
        dt_s,
    )

    return PlantState(
        feed_flow_m3_h=feed_flow,
        feed_density_walk_kg_m3=walk,
        feed_density_kg_m3=feed_density,
        feeders=(feeders[0], feeders[1], feeders[2]),
        water_flow_m3_h=water_flow,
        mixer=mixer,
        paste_flow_m3_h=paste_flow,
        density_gauge_kg_m3=density_gauge,
        pressure_kpa=pressure,
        blockage_kpa=blockage,
        mass_in=state.mass_in + inflow,
        mass_out=state.mass_out + outflow,
        time_s=now_s,
        stope=stope,
        paste_delivered_m3=state.paste_delivered_m3
        + (0.0 if inputs.flushing else out_fraction * volume),
        diverted_to_dump=diverted,
        diverter_travel_elapsed_s=travel_s,
        feed_in_transit=in_transit,
        paste_density_line=density_line,
        instrument_errors=errors,
        feed_density_level_kg_m3=level,
        feed_density_drift_kg_m3=_drift(
            state.feed_density_drift_kg_m3, errors.feed_density_drift_kg_m3_h, dt_s
        ),
        paste_density_drift_kg_m3=_drift(
            state.paste_density_drift_kg_m3, errors.paste_density_drift_kg_m3_h, dt_s
        ),
    )


def _level_step(level_kg_m3: float, params: PlantParams, *, up: bool) -> float:
    """The feed's level after one random step of ``feed_step_kg_m3``: up or down as
    drawn, the other way where that would leave the feed's band, and no further than
    its edge."""
    low, high = params.feed_density_min_kg_m3, params.feed_density_max_kg_m3
    size = params.feed_step_kg_m3 if up else -params.feed_step_kg_m3
    nominal = params.feed_density_kg_m3
    if not low <= nominal + level_kg_m3 + size <= high:
        size = -size
    return _clamp(nominal + level_kg_m3 + size, low, high) - nominal


def _drift(accumulated_kg_m3: float, rate_kg_m3_h: float, dt_s: float) -> float:
    """A gauge drift grows at its rate per plant hour; a zero rate recalibrates."""
    if rate_kg_m3_h == 0.0 or not math.isfinite(rate_kg_m3_h):
        return 0.0
    return accumulated_kg_m3 + rate_kg_m3_h * dt_s / 3600.0


def step(
    state: PlantState,
    inputs: PlantInputs,
    dt_s: float,
    params: PlantParams,
    rng: random.Random,
) -> PlantState:
    """Advance the process by ``dt_s`` plant seconds (split into short sub-steps)."""
    if not dt_s > 0.0 or not math.isfinite(dt_s):
        raise ValueError(f"dt_s must be a positive finite number, got {dt_s!r}")
    n = max(1, math.ceil(dt_s / params.max_substep_s))
    h = dt_s / n
    for _ in range(n):
        state = _substep(state, inputs, h, params, rng)
    return state


def outputs(state: PlantState, params: PlantParams, rng: random.Random) -> Measurements:
    """What the instruments read: the density gauge lags and is noisy, the
    loss-in-weight feeders hold their reading during a refill, and every instrument
    carries the calibration errors in force (:class:`InstrumentErrors`)."""
    errors = state.instrument_errors
    feed_density_error = errors.feed_density_bias_kg_m3 + state.feed_density_drift_kg_m3
    paste_density_error = errors.paste_density_bias_kg_m3 + state.paste_density_drift_kg_m3
    read = Measurements(
        tailings_flow_pv=state.feed_flow_m3_h * (1.0 + _bias_fraction(errors.feed_flow_bias_pct)),
        tailings_density_pv=state.feed_density_kg_m3
        + feed_density_error
        + rng.gauss(0.0, params.feed_density_noise_kg_m3),
        cement_rate_pv=state.feeders[0].measured_t_h,
        slag_rate_pv=state.feeders[1].measured_t_h,
        flyash_rate_pv=state.feeders[2].measured_t_h,
        water_flow_pv=state.water_flow_m3_h * (1.0 + _bias_fraction(errors.water_flow_bias_pct)),
        paste_flow_pv=state.paste_flow_m3_h * (1.0 + _bias_fraction(errors.paste_flow_bias_pct)),
        paste_density_pv=state.density_gauge_kg_m3
        + paste_density_error
        + rng.gauss(0.0, params.paste_density_noise_kg_m3),
        pump_pressure_pv=max(0.0, state.pressure_kpa + rng.gauss(0.0, params.pressure_noise_kpa)),
        mixer_level_pv=mixer_level_pct(state, params),
        barricade_pressure_pv=barricade_pressure_kpa(state, params),
    )
    return _with_flow_noise(read, state, params, rng)


def _with_flow_noise(
    read: Measurements, state: PlantState, params: PlantParams, rng: random.Random
) -> Measurements:
    """The flow readings with their white noise (rms in % of the reading); a noise of 0
    draws nothing, so a plant without flow noise keeps its random sequence."""
    noisy: dict[str, float] = {}
    sources = (
        ("tailings_flow_pv", params.feed_flow_noise_pct, True),
        *(
            (f"{name}_rate_pv", params.binder_scale_noise_pct, not feeder.refilling)
            for name, feeder in zip(BINDERS, state.feeders, strict=True)
        ),
        ("water_flow_pv", params.water_flow_noise_pct, True),
        ("paste_flow_pv", params.paste_flow_noise_pct, True),
    )
    for tag, noise_pct, live in sources:
        if noise_pct > 0.0 and live:
            noisy[tag] = getattr(read, tag) * (1.0 + rng.gauss(0.0, noise_pct / 100.0))
    return replace(read, **noisy) if noisy else read


# --- the stope -------------------------------------------------------------------------


def fill_height_m(state: PlantState, params: PlantParams) -> float:
    """Fill height of the placed paste: the stope's volume-height curve h(V) where it
    has one, else placed volume / plan area (a prism)."""
    return _height_of(state.stope.placed_paste_m3, params)


def _height_of(volume_m3: float, params: PlantParams) -> float:
    if params.stope_curve is not None:
        return params.stope_curve.height_at_m(volume_m3)
    return volume_m3 / params.stope_plan_area_m2


def fill_unit_weight_kn_m3(state: PlantState) -> float:
    """gamma of the placed paste: its mean bulk density times g (0 before any paste)."""
    stope = state.stope
    if stope.placed_paste_m3 <= 1e-12:
        return 0.0
    return stope.placed_paste_kg / stope.placed_paste_m3 * GRAVITY_M_S2 / 1000.0


def hydrostatic_pressure_kpa(state: PlantState, params: PlantParams) -> float:
    """gamma h: the total pressure of the whole fill as a fluid, the barricade's bound."""
    return fill_unit_weight_kn_m3(state) * fill_height_m(state, params)


def barricade_pressure_kpa(state: PlantState, params: PlantParams) -> float:
    """Total pressure on a barricade at the bottom of the stope (one barricade).

    ``p = gamma_paste x h_eff`` with ``h_eff = L / A``: ``L`` the placed volume that
    still bears on the barricade as a fluid, ``A`` the plan area. ``L`` grows with
    every placed cubic metre and sheds load at a rate ``k`` (per plant hour)::

        dL/dt = q - k L,     k = 1/tau_consolidation + c_cure x Bw_pct

    Assumptions: fresh paste arrives fluid and adds its full weight; the fill then
    consolidates, gains shear strength as the binder cures and arches onto the walls,
    which the model lumps into one first-order relaxation; ``k`` grows with the fill's
    mean binder content (Bw of all placed paste) and is constant in time (no dormant
    period, no retarder); flush water decants and adds no head; the whole stope acts
    on one barricade at its bottom (the under-brow reduction is not modelled); the
    fill sees the pump's flow at once (no pipeline transport time).

    Consequences, qualitatively as measured at the Cayeli Mine by Thompson, Bawden &
    Grabinsky (2012), Can. Geotech. J. 49(7):755-772: a fast rise with little binder
    keeps ``h_eff`` near ``h`` (near-hydrostatic, high barricade pressure); a slow rise
    with more binder lets it fall behind (``h_eff`` tends to ``rise rate / k``); once
    filling stops the pressure relaxes as ``e^(-k t)``. The ratio of a consolidation
    time to the filling time as the governing number follows Helinski, Fahey & Fourie
    (2007), J. Geotech. Geoenviron. Eng. 133(10):1308-1319, and Fahey, Helinski &
    Fourie (2010), Geotechnique 60(11):877-882 (Gibson's accreting-layer consolidation
    applied to stopes). The result stays within ``0 <= p <= gamma h``.
    """
    if params.stope_plan_area_m2 <= 0.0:
        return 0.0
    load_m3 = _clamp(state.stope.barricade_load_m3, 0.0, state.stope.placed_paste_m3)
    # A surveyed stope: the fluid load stands as high as that volume fills it, h(L).
    return fill_unit_weight_kn_m3(state) * _height_of(load_m3, params)


def reset_stope(state: PlantState) -> PlantState:
    """A new, empty stope: placed and dumped counts and the barricade load back to zero."""
    return replace(state, stope=StopeState())


def delivery_residual(initial: PlantState, state: PlantState) -> Components:
    """What the pump sent out since ``initial`` minus what reached the stope or the
    dump, per component (no stope reset in between); zero up to rounding."""
    delivered = (
        state.stope.placed + state.stope.dumped - initial.stope.placed - initial.stope.dumped
    )
    return state.mass_out - initial.mass_out - delivered


def feed_in_transit(state: PlantState) -> Components:
    """Feed metered but not yet in the mixer (the feed dead time's pipe)."""
    total = Components()
    for _, masses in state.feed_in_transit:
        total = total + masses
    return total


def mass_balance_residual(initial: PlantState, state: PlantState) -> Components:
    """initial held + in - (held + out), per component; zero up to rounding."""
    return (
        initial.mixer
        + state.mass_in
        - initial.mass_in
        - (state.mixer + state.mass_out - initial.mass_out)
    )


# --- PLC -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlcCommands:
    """What the service wrote to the PLC's nodes (read by the PLC every scan)."""

    setpoints: Setpoints = field(default_factory=Setpoints)
    run_request: bool = False
    setpoint_seq: int = 0
    heartbeat: int = 0
    divert_to_dump: bool = False  # divert_to_dump_sp


@dataclass(frozen=True)
class PlcState:
    mode: PlantMode = PlantMode.STOPPED
    flush_elapsed_s: float = 0.0  # plant seconds into the current flush
    flush_target: PlantMode = PlantMode.STOPPED  # where the current flush leads
    run_latched: bool = False  # the PLC's own run command
    restart_blocked: bool = False  # after a trip, run_request must be seen false first
    applied: Setpoints = field(default_factory=Setpoints)  # clamped, in force
    setpoint_ack: int = 0
    remote_enabled: bool = True
    heartbeat_last: int = 0
    heartbeat_age_s: float = 0.0  # wall seconds since heartbeat last changed
    comms_fault: bool = False
    pressure_trip: bool = False
    divert_to_dump: bool = False  # the diverter command in force (applied like a setpoint)


def clamp_setpoints(sp: Setpoints, params: PlcParams) -> Setpoints:
    lo, hi = params.min_setpoints, params.max_setpoints

    def c(value: float, low: float, high: float) -> float:
        return _clamp(value, low, high) if math.isfinite(value) else low

    return Setpoints(
        tailings_flow_m3_h=c(sp.tailings_flow_m3_h, lo.tailings_flow_m3_h, hi.tailings_flow_m3_h),
        cement_t_h=c(sp.cement_t_h, lo.cement_t_h, hi.cement_t_h),
        slag_t_h=c(sp.slag_t_h, lo.slag_t_h, hi.slag_t_h),
        flyash_t_h=c(sp.flyash_t_h, lo.flyash_t_h, hi.flyash_t_h),
        water_m3_h=c(sp.water_m3_h, lo.water_m3_h, hi.water_m3_h),
        paste_density_kg_m3=c(
            sp.paste_density_kg_m3, lo.paste_density_kg_m3, hi.paste_density_kg_m3
        ),
    )


def plc_scan(
    plc: PlcState,
    commands: PlcCommands,
    plant: PlantState,
    remote_enabled: bool,
    dt_s: float,
    wall_dt_s: float,
    params: PlcParams,
) -> PlcState:
    """One PLC scan.

    * Remote: setpoints (and the dump diverter command) are clamped and applied, and
      ``setpoint_ack`` copies ``setpoint_seq``, only while remote is enabled; in local
      the PLC keeps its last applied values and its own run state.
    * Modes: stopped -> flushing -> running with ``run_request`` true, running ->
      flushing -> stopped with it false (``flush_s`` plant seconds of water only).
    * Heartbeat watchdog: while a run is latched (remote), ``heartbeat`` unchanged for
      ``heartbeat_timeout_s`` wall seconds sets ``comms_fault``, drops the run and
      zeroes the binder; the fault clears when the heartbeat changes again.
    * Pump pressure at or above ``pressure_trip_kpa`` -> mode fault; it resets to
      stopped once the pressure is below ``pressure_reset_kpa`` and run_request is false.
    """
    applied, ack, divert = plc.applied, plc.setpoint_ack, plc.divert_to_dump
    if remote_enabled:
        applied = clamp_setpoints(commands.setpoints, params)
        ack = commands.setpoint_seq
        divert = commands.divert_to_dump

    # Heartbeat supervision.
    if commands.heartbeat != plc.heartbeat_last:
        hb_last, hb_age, comms_fault = commands.heartbeat, 0.0, False
    else:
        hb_last, hb_age, comms_fault = (
            plc.heartbeat_last,
            plc.heartbeat_age_s + wall_dt_s,
            plc.comms_fault,
        )

    run, blocked = plc.run_latched, plc.restart_blocked
    if remote_enabled:
        if not commands.run_request:
            blocked = False
        run = commands.run_request and not blocked
    if run and not plc.run_latched:
        hb_age = 0.0  # a new run gives the service a full timeout to prove its heartbeat
    if remote_enabled and run and hb_age > params.heartbeat_timeout_s:
        comms_fault = True
    if comms_fault:
        run = False
        blocked = blocked or not params.restart_after_comms_fault

    mode, elapsed, target = plc.mode, plc.flush_elapsed_s, plc.flush_target
    trip = plc.pressure_trip
    if (
        mode is not PlantMode.FAULT
        and mode is not PlantMode.STOPPED
        and (plant.pressure_kpa >= params.pressure_trip_kpa)
    ):
        mode, trip, run, blocked = PlantMode.FAULT, True, False, True
    elif mode is PlantMode.FAULT:
        run = False
        if plant.pressure_kpa < params.pressure_reset_kpa and not blocked:
            mode, trip = PlantMode.STOPPED, False
    elif mode is PlantMode.STOPPED:
        if run:
            mode, elapsed, target = PlantMode.FLUSHING, 0.0, PlantMode.RUNNING
    elif mode is PlantMode.RUNNING:
        if not run:
            mode, elapsed, target = PlantMode.FLUSHING, 0.0, PlantMode.STOPPED
    else:  # flushing
        if run and target is PlantMode.STOPPED:
            target = PlantMode.RUNNING
        elif not run and target is PlantMode.RUNNING:
            elapsed, target = 0.0, PlantMode.STOPPED
        elapsed += dt_s
        if elapsed >= params.flush_s:
            mode, elapsed = target, 0.0

    return PlcState(
        mode=mode,
        flush_elapsed_s=elapsed,
        flush_target=target,
        run_latched=run,
        restart_blocked=blocked,
        applied=applied,
        setpoint_ack=ack,
        remote_enabled=remote_enabled,
        heartbeat_last=hb_last,
        heartbeat_age_s=hb_age,
        comms_fault=comms_fault,
        pressure_trip=trip,
        divert_to_dump=divert,
    )


def plc_actuators(plc: PlcState, plant: PlantState, params: PlcParams) -> PlantInputs:
    """The actuator commands the PLC drives in its mode (faults are added by the caller).

    The dump diverter follows its command in every mode."""
    if plc.mode is PlantMode.RUNNING:
        sp = plc.applied
        # Interlock: no binder without proven tailings flow, none during a comms fault.
        binder_allowed = plant.feed_flow_m3_h >= params.proven_flow_m3_h and not plc.comms_fault
        binder = (sp.cement_t_h, sp.slag_t_h, sp.flyash_t_h) if binder_allowed else (0.0, 0.0, 0.0)
        return PlantInputs(
            feed_flow_sp_m3_h=sp.tailings_flow_m3_h,
            binder_sp_t_h=binder,
            water_flow_sp_m3_h=sp.water_m3_h,
            pump_on=True,
            divert_to_dump=plc.divert_to_dump,
        )
    if plc.mode is PlantMode.FLUSHING:
        return PlantInputs(
            water_flow_sp_m3_h=params.flush_water_m3_h,
            pump_on=True,
            divert_to_dump=plc.divert_to_dump,
            flushing=True,
        )
    return PlantInputs(divert_to_dump=plc.divert_to_dump)


# --- faults and the whole simulation -------------------------------------------------


@dataclass(frozen=True)
class SimControls:
    """Faults and operator switches applied by the simulator (not by the service)."""

    stuck_tags: frozenset[str] = frozenset()  # published tags that freeze (value held, Good)
    bad_tags: frozenset[str] = frozenset()  # published tags with a Bad status code
    feeder_faults: frozenset[str] = frozenset()  # names from BINDERS
    feed_density_step_kg_m3: float = 0.0
    wet_feed: bool = False
    blockage: bool = False
    remote_enabled: bool = True
    diverter_stuck: bool = False  # the dump diverter stays where it is
    instrument_errors: InstrumentErrors = NO_INSTRUMENT_ERRORS  # calibration errors


@dataclass(frozen=True)
class SimState:
    plant: PlantState
    plc: PlcState


def initial_sim_state(params: SimParams) -> SimState:
    return SimState(plant=initial_state(params.plant), plc=PlcState())


def simulate(
    sim: SimState,
    commands: PlcCommands,
    controls: SimControls,
    dt_s: float,
    wall_dt_s: float,
    params: SimParams,
    rng: random.Random,
) -> SimState:
    """One PLC scan, then the process advanced by ``dt_s`` under the PLC's commands."""
    plc = plc_scan(
        sim.plc, commands, sim.plant, controls.remote_enabled, dt_s, wall_dt_s, params.plc
    )
    inputs = replace(
        plc_actuators(plc, sim.plant, params.plc),
        feeder_faults=controls.feeder_faults,
        feed_density_step_kg_m3=controls.feed_density_step_kg_m3,
        wet_feed=controls.wet_feed,
        blockage=controls.blockage,
        diverter_stuck=controls.diverter_stuck,
        instrument_errors=controls.instrument_errors,
    )
    return SimState(plant=step(sim.plant, inputs, dt_s, params.plant, rng), plc=plc)
