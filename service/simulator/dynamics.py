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

Conventions (DOMAIN.md): masses in kg, rates in t/h, flows in m3/h, densities in
kg/m3, pressures in kPa; ``*_fraction`` is 0-1, ``*_pct`` is 0-100.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from enum import IntEnum

WATER_DENSITY_KG_M3 = 1000.0
GRAVITY_M_S2 = 9.81

BINDERS: tuple[str, ...] = ("cement", "slag", "flyash")

# Logical tag names (CONTRACT.md) of the analog measurements, in publishing order.
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
)


class PlantMode(IntEnum):
    """``plant_mode`` (CONTRACT.md), an Int16 on the wire."""

    STOPPED = 0
    FLUSHING = 1
    RUNNING = 2
    FAULT = 3


# --- parameters ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantParams:
    """Process parameters. Defaults describe a 100 m3/h paste plant."""

    # Feed (tailings slurry or filter cake)
    tailings_gs: float = 2.8
    feed_density_kg_m3: float = 1900.0  # about 73.7 % solids at Gs 2.8
    feed_density_walk_kg_m3_sqrt_s: float = 1.0  # random-walk intensity
    feed_density_reversion_s: float = 600.0  # the walk is mean-reverting (Ornstein-Uhlenbeck)
    wet_feed_drop_kg_m3: float = 350.0  # wet feed: 1550 kg/m3, about 55 % solids
    feed_flow_max_m3_h: float = 150.0
    feed_flow_tau_s: float = 5.0
    feed_density_noise_kg_m3: float = 2.0
    # Binder feeders (loss-in-weight screws), in the order of BINDERS
    binder_gs: tuple[float, float, float] = (3.15, 2.90, 2.30)
    binder_max_t_h: tuple[float, float, float] = (10.0, 10.0, 5.0)
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
    # Pipeline: static head plus friction proportional to flow, steep in solids fraction
    static_head_m: float = 20.0
    design_flow_m3_h: float = 100.0
    friction_kpa_at_design: float = 3000.0  # at design flow and the reference solids
    friction_ref_solids_fraction: float = 0.75
    friction_solids_exponent: float = 15.0  # friction x e^(15 dCw): +5 % Cw doubles it
    blockage_ramp_kpa_s: float = 100.0
    blockage_decay_s: float = 10.0
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
    mass_in: Components  # cumulative, since the initial state
    mass_out: Components
    time_s: float = 0.0  # plant seconds since the initial state


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


@dataclass(frozen=True)
class Measurements:
    """What the plant instruments read; field names are the logical tags (CONTRACT.md)."""

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

    def as_dict(self) -> dict[str, float]:
        return {tag: float(getattr(self, tag)) for tag in MEASUREMENT_TAGS}


# --- mass-volume relations ---------------------------------------------------------------


def slurry_solids_fraction(density_kg_m3: float, solids_gs: float) -> float:
    """Cw of a slurry: Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w)) (DOMAIN.md)."""
    rho_s = solids_gs * WATER_DENSITY_KG_M3
    cw = (
        rho_s
        * (density_kg_m3 - WATER_DENSITY_KG_M3)
        / (density_kg_m3 * (rho_s - WATER_DENSITY_KG_M3))
    )
    return min(max(cw, 0.0), 1.0)


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

    Friction is proportional to flow (laminar Bingham-like paste flow) and grows
    exponentially with the solids fraction, so it is monotone in both flow and density.
    """
    static_kpa = mix_density_kg_m3(mix, params) * GRAVITY_M_S2 * params.static_head_m / 1000.0
    cw = solids_fraction(mix)
    friction_kpa = (
        params.friction_kpa_at_design
        * max(flow_m3_h, 0.0)
        / params.design_flow_m3_h
        * math.exp(params.friction_solids_exponent * (cw - params.friction_ref_solids_fraction))
    )
    return static_kpa + friction_kpa


def _feeder_substep(
    feeder: FeederState,
    sp_t_h: float,
    max_t_h: float,
    faulted: bool,
    dt_s: float,
    params: PlantParams,
) -> tuple[FeederState, float]:
    """One feeder sub-step; returns the new state and the binder mass delivered (kg)."""
    rate = (
        0.0
        if faulted
        else _lag(feeder.rate_t_h, _clamp(sp_t_h, 0.0, max_t_h), params.feeder_tau_s, dt_s)
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
    measured = feeder.measured_t_h if refilling else rate
    return FeederState(rate, measured, hopper, refilling, faulted), delivered_kg


def _substep(
    state: PlantState, inputs: PlantInputs, dt_s: float, params: PlantParams, rng: random.Random
) -> PlantState:
    # Feed density disturbance: mean-reverting random walk, configured steps, wet feed.
    walk = state.feed_density_walk_kg_m3
    walk += -walk * dt_s / params.feed_density_reversion_s + rng.gauss(
        0.0, params.feed_density_walk_kg_m3_sqrt_s * math.sqrt(dt_s)
    )
    feed_density = params.feed_density_kg_m3 + walk + inputs.feed_density_step_kg_m3
    if inputs.wet_feed:
        feed_density -= params.wet_feed_drop_kg_m3
    feed_density = _clamp(
        feed_density, WATER_DENSITY_KG_M3, params.tailings_gs * WATER_DENSITY_KG_M3
    )

    feed_flow = _lag(
        state.feed_flow_m3_h,
        _clamp(inputs.feed_flow_sp_m3_h, 0.0, params.feed_flow_max_m3_h),
        params.feed_flow_tau_s,
        dt_s,
    )
    feed_kg = feed_flow / 3600.0 * dt_s * feed_density
    feed_solids_kg = feed_kg * slurry_solids_fraction(feed_density, params.tailings_gs)

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
        )
        feeders.append(feeder)
        binder_kg.append(kg)

    water_flow = _lag(
        state.water_flow_m3_h,
        _clamp(inputs.water_flow_sp_m3_h, 0.0, params.water_max_m3_h),
        params.water_tau_s,
        dt_s,
    )
    water_kg = water_flow / 3600.0 * dt_s * WATER_DENSITY_KG_M3

    inflow = Components(
        tailings_kg=feed_solids_kg,
        cement_kg=binder_kg[0],
        slag_kg=binder_kg[1],
        flyash_kg=binder_kg[2],
        water_kg=(feed_kg - feed_solids_kg) + water_kg,
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
    mixer = mixer - outflow
    # Clip rounding residue (a fully drained mixer could otherwise hold -1e-17 kg).
    mixer = Components(*(max(m, 0.0) for m in mixer.as_tuple()))
    paste_flow = paste_m3_s * 3600.0

    density = mix_density_kg_m3(mixer, params)
    density_gauge = _lag(state.density_gauge_kg_m3, density, params.density_gauge_tau_s, dt_s)

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
        time_s=state.time_s + dt_s,
    )


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
    loss-in-weight feeders hold their reading during a refill."""
    return Measurements(
        tailings_flow_pv=state.feed_flow_m3_h,
        tailings_density_pv=state.feed_density_kg_m3
        + rng.gauss(0.0, params.feed_density_noise_kg_m3),
        cement_rate_pv=state.feeders[0].measured_t_h,
        slag_rate_pv=state.feeders[1].measured_t_h,
        flyash_rate_pv=state.feeders[2].measured_t_h,
        water_flow_pv=state.water_flow_m3_h,
        paste_flow_pv=state.paste_flow_m3_h,
        paste_density_pv=state.density_gauge_kg_m3
        + rng.gauss(0.0, params.paste_density_noise_kg_m3),
        pump_pressure_pv=max(0.0, state.pressure_kpa + rng.gauss(0.0, params.pressure_noise_kpa)),
        mixer_level_pv=mixer_level_pct(state, params),
    )


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

    * Remote: setpoints are clamped and applied, and ``setpoint_ack`` copies
      ``setpoint_seq``, only while remote is enabled; in local the PLC keeps its last
      applied values and its own run state.
    * Modes: stopped -> flushing -> running with ``run_request`` true, running ->
      flushing -> stopped with it false (``flush_s`` plant seconds of water only).
    * Heartbeat watchdog: while a run is latched (remote), ``heartbeat`` unchanged for
      ``heartbeat_timeout_s`` wall seconds sets ``comms_fault``, drops the run and
      zeroes the binder; the fault clears when the heartbeat changes again.
    * Pump pressure at or above ``pressure_trip_kpa`` -> mode fault; it resets to
      stopped once the pressure is below ``pressure_reset_kpa`` and run_request is false.
    """
    applied, ack = plc.applied, plc.setpoint_ack
    if remote_enabled:
        applied = clamp_setpoints(commands.setpoints, params)
        ack = commands.setpoint_seq

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
    )


def plc_actuators(plc: PlcState, plant: PlantState, params: PlcParams) -> PlantInputs:
    """The actuator commands the PLC drives in its mode (faults are added by the caller)."""
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
        )
    if plc.mode is PlantMode.FLUSHING:
        return PlantInputs(water_flow_sp_m3_h=params.flush_water_m3_h, pump_on=True)
    return PlantInputs()


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
    )
    return SimState(plant=step(sim.plant, inputs, dt_s, params.plant, rng), plc=plc)
