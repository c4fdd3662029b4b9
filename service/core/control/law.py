"""One step of the supervisory control law: recipe + measurements -> PLC setpoints.

``step(state, inputs, config, dt_s) -> (state, output)`` is a pure function; the asyncio
control loop calls it every period with the latest measurements and writes
``output.setpoints`` when ``output.mode`` is :attr:`ControlMode.ACTIVE` (or STANDBY).

What it does (the plant's division of labour: the PLC runs the fast loops and owns the
interlocks, this law supervises the recipe; the relations are those of :mod:`.massbalance`,
with their sources):

- Feed-forward from the mass balance (:mod:`.massbalance`): binder per component =
  Bw x measured dry tailings x blend fraction; dilution water to reach the target Cw
  given the water in the feed; the feed flow for the requested paste flow; the target
  paste density (saturated-paste formula) as ``paste_density_sp``.
- Feedback: the water is trimmed by a PI on the paste density error, expressed as the
  water (m3/h) that would bring the measured density to target,
  ``Q (rho_meas - rho_sp) / (rho_sp - rho_w)`` (mixing rule), so the gains are
  dimensionless and independent of plant size. Deadband, anti-windup (integral clamped
  to the trim limits, conditional integration when the water setpoint saturates) and a
  trim limit of a fraction of the feed-forward water within absolute bounds.
  Each binder setpoint is the demand times a slowly integrated ratio factor
  (measured rate vs demand), bounded (default 0.8-1.2).
- Safety: every setpoint is clamped to its plant limits and rate-limited; a non-finite
  value is never output (the previous setpoint is held and the tag is flagged); a bad or
  stale measurement freezes what depends on it at its last good value (feed-forward
  inputs, the water integrator, the binder factors); a feeder refilling or faulted holds
  its factor; a feed too wet for the recipe puts the water to its minimum, flags
  ``recipe_unreachable`` and freezes the water integrator (no windup).

Modes (decided here, see :func:`mode_of`):

- ACTIVE: pour running, PLC in remote, plant running. The law above.
- STANDBY: pour running, PLC in remote, plant *not* running (starting, flushing,
  stopped, faulted). Binder and water setpoints go to 0 at once (a stopped plant must
  not keep binder or water commanded; nothing flows, so the rate limit is not applied
  on the way down); the tailings flow and density setpoints are prepared for the start.
  Integrators and factors hold.
- HOLD: no pour running or PLC not in remote: the service must not write. Output = the
  PLC's current setpoints (``inputs.current_setpoints``), clamped; everything holds.

Bumpless transfer: whenever the mode changes (start, resume, return to remote, plant
start) the rate limiter restarts from the setpoints the PLC currently holds, so the
written values move away from them no faster than the rate limits. A new pour starts
from :meth:`ControlState.initial` (zero water trim, binder factors 1); a resumed pour
keeps its learned trims (they are bounded and model persistent biases such as a Gs
error or a feeder's calibration).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum

from service.core.control.massbalance import (
    BINDER_COMPONENTS,
    RHO_W_KG_M3,
    FeedForward,
    Recipe,
    feed_forward,
    measured_binder_ratio,
    measured_solids_fraction,
    paste_density_kg_m3,
    paste_volume_per_dry_tailings_m3_t,
    solids_sg,
)
from service.core.control.pid import PIState, clamp, pi_step, rate_limit, ratio_step
from service.errors import InvalidInput

# --- values in and out ------------------------------------------------------------------


@dataclass(frozen=True)
class Setpoints:
    """One set of setpoints, named by their docs/INTEGRATION.md logical tags.

    Units: ``tailings_flow_sp`` m3/h, ``*_rate_sp`` t/h, ``water_flow_sp`` m3/h,
    ``paste_density_sp`` kg/m3.
    """

    tailings_flow_sp: float = 0.0
    cement_rate_sp: float = 0.0
    slag_rate_sp: float = 0.0
    flyash_rate_sp: float = 0.0
    water_flow_sp: float = 0.0
    paste_density_sp: float = 0.0

    def as_tags(self) -> dict[str, float]:
        """``{logical tag: value}`` for the PLC link."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_tags(cls, values: Mapping[str, float]) -> Setpoints:
        """Build from ``{logical tag: value}``; missing tags are 0."""
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise InvalidInput("setpoints", f"unknown setpoint tags {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in values.items()})

    def binder(self, component: str) -> float:
        """Setpoint of one binder feeder, t/h."""
        return float(getattr(self, binder_tag(component)))


SETPOINT_TAGS: tuple[str, ...] = tuple(f.name for f in fields(Setpoints))


def binder_tag(component: str) -> str:
    """Setpoint tag of a binder component (``cement`` -> ``cement_rate_sp``)."""
    return f"{component}_rate_sp"


@dataclass(frozen=True)
class Measurement:
    """A measured value and whether the caller trusts it (quality good and not stale)."""

    value: float
    good: bool = True

    @property
    def usable(self) -> bool:
        """Good and finite: the only readings the law acts on."""
        return self.good and math.isfinite(self.value)


BAD = Measurement(math.nan, good=False)
"""A measurement that is missing or unusable."""


@dataclass(frozen=True)
class ControlInputs:
    """Everything one control step needs besides its state and configuration.

    ``binder_rates_t_h`` maps component name to the feeder's measured rate (t/h);
    ``refilling`` / ``faulted`` name the feeders whose hopper is refilling or which
    report a fault. ``current_setpoints`` are the values the PLC holds now (read back or
    last acknowledged): the rate limiter restarts from them on every mode change.
    ``binder_on_paste_flow_t_h``: the dead-feed-gauge fallback
    (:mod:`.fallback`, ``paste_flow_ratio``): binder demands ratioed on the paste flow
    meter, used instead of the feed's; the feed and water setpoints, which have no feed
    measurement to be computed from, are held.
    """

    recipe: Recipe
    paste_flow_request_m3_h: float
    tailings_flow_m3_h: Measurement
    tailings_density_kg_m3: Measurement
    paste_density_kg_m3: Measurement
    binder_rates_t_h: Mapping[str, Measurement] = field(default_factory=dict)
    refilling: frozenset[str] = frozenset()
    faulted: frozenset[str] = frozenset()
    pour_running: bool = True
    remote_enabled: bool = True
    plant_running: bool = True
    current_setpoints: Setpoints | None = None
    binder_on_paste_flow_t_h: Mapping[str, float] | None = None


@dataclass(frozen=True)
class SetpointLimit:
    """Plant limits of one setpoint: range and maximum change per second."""

    minimum: float
    maximum: float
    max_rate_per_s: float


@dataclass(frozen=True)
class ControlConfig:
    """Limits and tuning. Defaults suit a 30-300 m3/h plant (100 m3/h design point).

    Water PI: ``water_kp`` (dimensionless) and ``water_ki_per_s`` act on the water
    error estimate in m3/h; errors within ``density_deadband_kg_m3`` are ignored. The
    trim is limited to ``water_trim_fraction`` of the feed-forward water, within
    ``[water_trim_min_m3_h, water_trim_max_m3_h]``. Binder factors integrate the
    relative feeder error at ``binder_ki_per_s`` within ``[binder_factor_min,
    binder_factor_max]`` when the demand exceeds ``binder_min_demand_t_h`` and changed by
    less than ``binder_steady_rate_per_s`` (relative) since the last step (a feeder
    lags its setpoint, so a ramp is not a calibration error). The water integrator
    holds while the density error exceeds ``density_trim_window_kg_m3``: the mixer is
    then filling or flushing, not off target by a trimmable amount, and the feed-forward
    does the work. After every entry into ACTIVE the water trim also waits
    ``trim_start_delay_s`` (about four mixer residence times; a well-mixed mixer is then
    within 2 % of its new content): until then it still holds flush water or paste from
    before the stop, which the trim must not learn from.
    ``unreachable_tolerance_m3_h``: feed-forward water below minus this is "recipe not
    reachable". No trim acts below ``min_feed_flow_m3_h`` of feed. ``max_dt_s`` caps the
    time step used for integration and rate limiting (a late loop iteration must not
    jump).
    """

    tailings_flow_limit: SetpointLimit = SetpointLimit(0.0, 300.0, 2.0)
    cement_rate_limit: SetpointLimit = SetpointLimit(0.0, 40.0, 0.5)
    slag_rate_limit: SetpointLimit = SetpointLimit(0.0, 40.0, 0.5)
    flyash_rate_limit: SetpointLimit = SetpointLimit(0.0, 40.0, 0.5)
    water_flow_limit: SetpointLimit = SetpointLimit(0.0, 120.0, 2.0)
    paste_density_limit: SetpointLimit = SetpointLimit(1200.0, 2500.0, 50.0)
    water_kp: float = 1.0
    water_ki_per_s: float = 0.02
    density_deadband_kg_m3: float = 2.0
    density_trim_window_kg_m3: float = 100.0
    trim_start_delay_s: float = 180.0
    water_trim_fraction: float = 0.5
    water_trim_min_m3_h: float = 5.0
    water_trim_max_m3_h: float = 30.0
    binder_ki_per_s: float = 0.01
    binder_factor_min: float = 0.8
    binder_factor_max: float = 1.2
    binder_min_demand_t_h: float = 0.1
    binder_steady_rate_per_s: float = 0.01
    unreachable_tolerance_m3_h: float = 0.5
    min_feed_flow_m3_h: float = 1.0
    max_dt_s: float = 5.0

    def __post_init__(self) -> None:
        for tag in SETPOINT_TAGS:
            lim = self.limit(tag)
            name = _LIMIT_FIELDS[tag]
            values = (lim.minimum, lim.maximum, lim.max_rate_per_s)
            if not all(math.isfinite(v) for v in values):
                raise InvalidInput(name, "limits must be finite")
            if lim.minimum < 0.0 or lim.maximum < lim.minimum:
                raise InvalidInput(name, "limits need 0 <= minimum <= maximum")
            if lim.max_rate_per_s <= 0.0:
                raise InvalidInput(name, "max_rate_per_s must be > 0")
        for name in (
            "water_kp",
            "water_ki_per_s",
            "density_deadband_kg_m3",
            "density_trim_window_kg_m3",
            "trim_start_delay_s",
            "binder_steady_rate_per_s",
            "water_trim_fraction",
            "water_trim_min_m3_h",
            "water_trim_max_m3_h",
            "binder_ki_per_s",
            "binder_min_demand_t_h",
            "unreachable_tolerance_m3_h",
            "min_feed_flow_m3_h",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise InvalidInput(name, f"{name} must be finite and >= 0, got {value!r}")
        if self.water_trim_max_m3_h < self.water_trim_min_m3_h:
            raise InvalidInput("water_trim_max_m3_h", "must be >= water_trim_min_m3_h")
        if not 0.0 < self.binder_factor_min <= 1.0 <= self.binder_factor_max < math.inf:
            raise InvalidInput(
                "binder_factor_min", "binder factors need 0 < minimum <= 1 <= maximum (finite)"
            )
        if not math.isfinite(self.max_dt_s) or self.max_dt_s <= 0.0:
            raise InvalidInput("max_dt_s", "max_dt_s must be finite and > 0")

    def limit(self, tag: str) -> SetpointLimit:
        """Limits of the setpoint ``tag`` (a docs/INTEGRATION.md logical tag)."""
        limit: SetpointLimit = getattr(self, _LIMIT_FIELDS[tag])
        return limit


_LIMIT_FIELDS: dict[str, str] = {
    "tailings_flow_sp": "tailings_flow_limit",
    "cement_rate_sp": "cement_rate_limit",
    "slag_rate_sp": "slag_rate_limit",
    "flyash_rate_sp": "flyash_rate_limit",
    "water_flow_sp": "water_flow_limit",
    "paste_density_sp": "paste_density_limit",
}


class ControlMode(StrEnum):
    """What the law does this step; see the module docstring."""

    HOLD = "hold"
    STANDBY = "standby"
    ACTIVE = "active"


@dataclass(frozen=True)
class ControlState:
    """Memory of the law between steps. Start a pour with :meth:`initial`."""

    mode: ControlMode = ControlMode.HOLD
    setpoints: Setpoints | None = None
    water_pi: PIState = field(default_factory=PIState)
    water_trim_m3_h: float = 0.0
    binder_factors: Mapping[str, float] = field(default_factory=dict)
    last_feed_flow_m3_h: float | None = None
    last_feed_density_kg_m3: float | None = None
    last_binder_demand_t_h: Mapping[str, float] = field(default_factory=dict)
    active_for_s: float = 0.0

    @classmethod
    def initial(cls) -> ControlState:
        """Fresh state: zero water trim, binder factors 1, no last good values."""
        return cls()

    def binder_factor(self, component: str) -> float:
        return self.binder_factors.get(component, 1.0)


@dataclass(frozen=True)
class ControlOutput:
    """Result of one step.

    ``setpoints`` are always finite and within the configured limits. ``feed_forward``
    is the mass balance used (None when there is no usable feed measurement yet).
    ``holding_water``: the water trim is frozen (bad/stale density or feed, recipe not
    reachable, or no feed flow). ``holding_binder``: components whose ratio factor is
    frozen (refill, fault, bad rate reading, or bad feed). ``stale_inputs``: logical
    tags of measurements the law could not use. ``nonfinite_held``: setpoint tags whose
    computed target was not finite, so the previous value was held.
    ``measured_solids_fraction`` / ``measured_binder_ratio`` (Cw, Bw as fractions) are
    None when not measurable this step.
    """

    setpoints: Setpoints
    mode: ControlMode
    feed_forward: FeedForward | None
    water_trim_m3_h: float
    binder_factors: Mapping[str, float]
    holding_water: bool
    holding_binder: frozenset[str]
    recipe_unreachable: bool
    stale_inputs: tuple[str, ...]
    nonfinite_held: tuple[str, ...]
    measured_solids_fraction: float | None
    measured_binder_ratio: float | None
    target_paste_density_kg_m3: float


# --- the law ----------------------------------------------------------------------------


def mode_of(inputs: ControlInputs) -> ControlMode:
    """HOLD unless a pour runs with the PLC in remote; ACTIVE when the plant also runs."""
    if not (inputs.pour_running and inputs.remote_enabled):
        return ControlMode.HOLD
    return ControlMode.ACTIVE if inputs.plant_running else ControlMode.STANDBY


def check_recipe(recipe: Recipe) -> None:
    """Raise :class:`InvalidInput` when the recipe cannot drive the mass balance."""
    bw, cw, gs = recipe.binder_ratio, recipe.solids_fraction, recipe.tailings_sg
    if not (math.isfinite(bw) and 0.0 < bw < 1.0):
        raise InvalidInput("recipe.binder_ratio", f"Bw must be in (0, 1), got {bw!r}")
    if not (math.isfinite(cw) and 0.0 < cw < 1.0):
        raise InvalidInput("recipe.solids_fraction", f"Cw must be in (0, 1), got {cw!r}")
    if not (math.isfinite(gs) and gs > 1.0):
        raise InvalidInput("recipe.tailings_sg", f"tailings Gs must exceed 1, got {gs!r}")
    if not recipe.binder:
        raise InvalidInput("recipe.binder", "a recipe needs at least one binder component")
    for c in recipe.binder:
        if c.name not in BINDER_COMPONENTS:
            raise InvalidInput("recipe.binder", f"unknown binder component {c.name!r}")
        if not (math.isfinite(c.specific_gravity) and c.specific_gravity > 0.0):
            raise InvalidInput(f"recipe.binder.{c.name}", "binder Gs must be finite and > 0")
        if not (math.isfinite(c.fraction) and 0.0 <= c.fraction <= 1.0):
            raise InvalidInput(f"recipe.binder.{c.name}", "blend fraction must be in [0, 1]")
    if abs(sum(c.fraction for c in recipe.binder) - 1.0) > 1e-6:
        raise InvalidInput("recipe.binder", "blend fractions must sum to 1")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def usable_feed_density(m: Measurement, recipe: Recipe) -> bool:
    """Usable and a plausible slurry of the recipe's tailings (1,000 < rho < rho_s)."""
    return m.usable and RHO_W_KG_M3 < m.value < recipe.tailings_sg * RHO_W_KG_M3


def usable_paste_density(m: Measurement, recipe: Recipe) -> bool:
    """Usable and a plausible paste of the recipe (1,000 < rho < rho_solids)."""
    return m.usable and RHO_W_KG_M3 < m.value < solids_sg(recipe) * RHO_W_KG_M3


def _sanitised(setpoints: Setpoints | None, fallback: Setpoints) -> Setpoints:
    """``setpoints`` with any non-finite value replaced by the fallback's."""
    if setpoints is None:
        return fallback
    values = setpoints.as_tags()
    backup = fallback.as_tags()
    return Setpoints(**{k: v if math.isfinite(v) else backup[k] for k, v in values.items()})


def _finalise(
    targets: Mapping[str, float],
    base: Setpoints,
    config: ControlConfig,
    dt_s: float,
    *,
    unlimited_rate: frozenset[str] = frozenset(),
) -> tuple[Setpoints, tuple[str, ...]]:
    """Hold non-finite targets, rate-limit from ``base``, clamp to plant limits.

    Limits win over the rate limit: a base outside the limits is pulled inside at once.
    """
    base_values = base.as_tags()
    out: dict[str, float] = {}
    held: list[str] = []
    for tag in SETPOINT_TAGS:
        lim = config.limit(tag)
        previous = base_values[tag]
        target = targets.get(tag, previous)
        if not math.isfinite(target):
            held.append(tag)
            target = previous
        if tag not in unlimited_rate:
            target = rate_limit(target, previous, lim.max_rate_per_s, dt_s)
        out[tag] = clamp(target, lim.minimum, lim.maximum)
    return Setpoints(**out), tuple(held)


def step(
    state: ControlState, inputs: ControlInputs, config: ControlConfig, dt_s: float
) -> tuple[ControlState, ControlOutput]:
    """One control step of ``dt_s`` seconds; see the module docstring.

    Raises :class:`InvalidInput` for a negative or non-finite ``dt_s`` or an unusable
    recipe (configuration errors, not plant conditions).
    """
    if not math.isfinite(dt_s) or dt_s < 0.0:
        raise InvalidInput("dt_s", f"time step must be finite and >= 0, got {dt_s!r}")
    check_recipe(inputs.recipe)
    dt = min(dt_s, config.max_dt_s)
    recipe = inputs.recipe
    mode = mode_of(inputs)
    components = recipe.component_names
    stale: list[str] = []

    # Rate limiter memory: the PLC's values on a mode change (bumpless) and while holding
    # (follow what the PLC holds), else our last output.
    floor = Setpoints(**{t: config.limit(t).minimum for t in SETPOINT_TAGS})
    previous = _sanitised(state.setpoints, floor)
    if mode is ControlMode.HOLD or mode is not state.mode or state.setpoints is None:
        base = _sanitised(inputs.current_setpoints, previous)
    else:
        base = previous

    # Feed measurements: update the last good values, otherwise hold them.
    flow_ok = inputs.tailings_flow_m3_h.usable
    density_ok = usable_feed_density(inputs.tailings_density_kg_m3, recipe)
    if not flow_ok:
        stale.append("tailings_flow_pv")
    if not density_ok:
        stale.append("tailings_density_pv")
    last_flow = inputs.tailings_flow_m3_h.value if flow_ok else state.last_feed_flow_m3_h
    last_density = (
        inputs.tailings_density_kg_m3.value if density_ok else state.last_feed_density_kg_m3
    )
    feed_fresh = flow_ok and density_ok
    ff: FeedForward | None = None
    if last_flow is not None and last_density is not None:
        ff = feed_forward(
            recipe,
            feed_flow_m3_h=last_flow,
            feed_density_kg_m3=last_density,
            paste_flow_request_m3_h=inputs.paste_flow_request_m3_h,
        )

    paste_ok = usable_paste_density(inputs.paste_density_kg_m3, recipe)
    if not paste_ok:
        stale.append("paste_density_pv")
    rates_ok: dict[str, bool] = {}
    for name in components:
        m = inputs.binder_rates_t_h.get(name, BAD)
        rates_ok[name] = m.usable
        if not m.usable:
            stale.append(f"{name}_rate_pv")

    # Measured quality of the paste.
    rho_target = paste_density_kg_m3(recipe)
    measured_cw = (
        _finite_or_none(measured_solids_fraction(inputs.paste_density_kg_m3.value, recipe))
        if paste_ok
        else None
    )
    measured_bw: float | None = None
    if (
        feed_fresh
        and ff is not None
        and all(rates_ok.values())
        and not (inputs.refilling & set(components))
    ):
        rates = {n: m.value for n, m in inputs.binder_rates_t_h.items() if m.usable}
        measured_bw = _finite_or_none(measured_binder_ratio(rates, ff.dry_tailings_t_h))

    factors = {n: state.binder_factor(n) for n in components}
    water_pi = state.water_pi
    water_trim = state.water_trim_m3_h
    unreachable = False
    holding_water = True
    holding_binder: set[str] = set(components)
    targets: dict[str, float]
    unlimited: frozenset[str] = frozenset()

    if mode is ControlMode.HOLD:
        targets = base.as_tags()
    elif mode is ControlMode.STANDBY:
        targets = base.as_tags()
        targets.update({binder_tag(n): 0.0 for n in BINDER_COMPONENTS}, water_flow_sp=0.0)
        targets["paste_density_sp"] = rho_target
        if ff is not None:
            targets["tailings_flow_sp"] = ff.tailings_flow_m3_h
        # The density target is the PLC's alarm reference, not an actuator: it takes the
        # recipe's value at once rather than ramping through meaningless values.
        unlimited = frozenset(
            {*(binder_tag(n) for n in BINDER_COMPONENTS), "water_flow_sp", "paste_density_sp"}
        )
    else:
        targets = {"paste_density_sp": rho_target}
        if ff is not None:
            targets["tailings_flow_sp"] = ff.tailings_flow_m3_h
            # Water: feed-forward plus PI trim on the paste density.
            water_lim = config.limit("water_flow_sp")
            unreachable = ff.water_m3_h < -config.unreachable_tolerance_m3_h
            trim_limit = clamp(
                config.water_trim_fraction * abs(ff.water_m3_h),
                config.water_trim_min_m3_h,
                config.water_trim_max_m3_h,
            )
            paste_flow_m3_h = ff.dry_tailings_t_h * paste_volume_per_dry_tailings_m3_t(recipe)
            error_m3_h = math.nan
            if paste_ok:
                error_m3_h = (
                    paste_flow_m3_h
                    * (inputs.paste_density_kg_m3.value - rho_target)
                    / (rho_target - RHO_W_KG_M3)
                )
            deadband_m3_h = (
                paste_flow_m3_h * config.density_deadband_kg_m3 / (rho_target - RHO_W_KG_M3)
            )
            flowing = (last_flow or 0.0) >= config.min_feed_flow_m3_h
            can_trim = (
                feed_fresh
                and paste_ok
                and math.isfinite(error_m3_h)
                and math.isfinite(deadband_m3_h)
                and flowing
                and state.active_for_s >= config.trim_start_delay_s
                and abs(inputs.paste_density_kg_m3.value - rho_target)
                <= config.density_trim_window_kg_m3
                and not unreachable
            )
            if can_trim:
                unsat = ff.water_m3_h + config.water_kp * error_m3_h + water_pi.integral
                water_pi, water_trim = pi_step(
                    water_pi,
                    error_m3_h,
                    dt,
                    kp=config.water_kp,
                    ki_per_s=config.water_ki_per_s,
                    deadband=deadband_m3_h,
                    lower=-trim_limit,
                    upper=trim_limit,
                    block_down=unsat <= water_lim.minimum,
                    block_up=unsat >= water_lim.maximum,
                )
                holding_water = False
            else:
                water_trim = clamp(water_trim, -trim_limit, trim_limit)
            if unreachable:
                targets["water_flow_sp"] = water_lim.minimum
            else:
                targets["water_flow_sp"] = max(ff.water_m3_h + water_trim, water_lim.minimum)

            # Binder: demand x ratio factor, factor integrated from the feeder's rate.
            for name in BINDER_COMPONENTS:
                demand = ff.binder_t_h[name]
                if name not in components:
                    targets[binder_tag(name)] = 0.0
                    continue
                hold = (
                    not feed_fresh
                    or not rates_ok[name]
                    or name in inputs.refilling
                    or name in inputs.faulted
                    or demand < config.binder_min_demand_t_h
                    or abs(demand - state.last_binder_demand_t_h.get(name, math.inf))
                    > config.binder_steady_rate_per_s * demand * max(dt, 1.0)
                )
                relative_error = math.nan
                if not hold:
                    measured = inputs.binder_rates_t_h[name].value
                    relative_error = (demand - measured) / demand
                if math.isfinite(relative_error):
                    factors[name] = ratio_step(
                        factors[name],
                        relative_error,
                        dt,
                        ki_per_s=config.binder_ki_per_s,
                        lower=config.binder_factor_min,
                        upper=config.binder_factor_max,
                    )
                    holding_binder.discard(name)
                targets[binder_tag(name)] = demand * factors[name]
        if inputs.binder_on_paste_flow_t_h is not None:
            # The feed gauges are dead: the binder follows the paste flow meter, each
            # component's ratio factor frozen at its last learned value (the feeder's
            # calibration does not change with the gauge); feed and water hold.
            for name in BINDER_COMPONENTS:
                demand = inputs.binder_on_paste_flow_t_h.get(name, 0.0)
                in_recipe = name in components
                targets[binder_tag(name)] = demand * factors[name] if in_recipe else 0.0
            targets.pop("tailings_flow_sp", None)
            targets.pop("water_flow_sp", None)
            holding_water = True
            holding_binder = set(components)
            water_pi, water_trim = state.water_pi, state.water_trim_m3_h
            factors = {n: state.binder_factor(n) for n in components}

    setpoints, nonfinite = _finalise(targets, base, config, dt, unlimited_rate=unlimited)
    # Factors that came out non-finite (they cannot, but never store one) reset to 1.
    factors = {n: f if math.isfinite(f) else 1.0 for n, f in factors.items()}
    new_state = replace(
        state,
        mode=mode,
        setpoints=setpoints,
        water_pi=water_pi,
        water_trim_m3_h=water_trim,
        binder_factors={**state.binder_factors, **factors},
        last_feed_flow_m3_h=last_flow,
        last_feed_density_kg_m3=last_density,
        last_binder_demand_t_h=dict(ff.binder_t_h) if ff is not None else {},
        active_for_s=(
            state.active_for_s + dt
            if mode is ControlMode.ACTIVE and state.mode is ControlMode.ACTIVE
            else 0.0
        ),
    )
    output = ControlOutput(
        setpoints=setpoints,
        mode=mode,
        feed_forward=ff,
        water_trim_m3_h=water_trim,
        binder_factors=factors,
        holding_water=holding_water,
        holding_binder=frozenset(holding_binder),
        recipe_unreachable=unreachable,
        stale_inputs=tuple(stale),
        nonfinite_held=nonfinite,
        measured_solids_fraction=measured_cw,
        measured_binder_ratio=measured_bw,
        target_paste_density_kg_m3=rho_target,
    )
    return new_state, output
