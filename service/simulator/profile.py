"""A plant profile: the built-in simulator's plant, stated in a TOML file a user can read.

The profile states the feed (the tailings Gs the recipes assume and the true one, the
feed's solids band, its random walk and level steps, the wet-feed fault's size), the
transport dead times, the binder feeders' bias, the mixer, the pump (capacity and the
PLC's pressure trip), the pipe's friction model, and each instrument's noise and
calibration error. Every key sets one parameter of the pure dynamics
(:class:`~service.simulator.dynamics.PlantParams`,
:class:`~service.simulator.dynamics.PlcParams`, or the calibration errors in force from
the start, :class:`~service.simulator.dynamics.InstrumentErrors`); a key left out keeps
the default profile's value. ``service/simulator/profile.toml`` is the default profile
(every key, commented; equal to the dynamics' defaults) and
``service/simulator/profile_harder.toml`` the harder plant of the control-quality bench.

A file that cannot be used is refused whole with :class:`ProfileError`, one line naming
the file and the key: TOML syntax, an unknown key (with the closest real one), a wrong
type, a value outside its physical range (with the range), or keys that contradict each
other. Pure: values in, values out; reading the file is the one I/O.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from service.simulator.dynamics import (
    BINDERS,
    DEFAULT_FEED_SOLIDS_BAND,
    FRICTION_MODELS,
    InstrumentErrors,
    PlantParams,
    PlcParams,
    SimParams,
    slurry_density_kg_m3,
    slurry_solids_fraction,
)

Target = Literal["plant", "plc", "errors"]


@dataclass(frozen=True)
class ProfileKey:
    """One numeric key of the file: the parameter it sets and its physical range.

    The parameter is ``value / divisor`` (a percentage of a fraction: 100); ``index``
    picks the element of a per-binder parameter (in the order of BINDERS);
    ``solids_to_density`` makes a feed solids % the feed density it is at the profile's
    true tailings Gs."""

    target: Target
    field: str
    low: float
    high: float
    unit: str
    low_open: bool = False
    high_open: bool = False
    divisor: float = 1.0
    index: int | None = None
    solids_to_density: bool = False

    def contains(self, x: float) -> bool:
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below

    def range_text(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        unit = f" {self.unit}" if self.unit else ""
        return f"{left}{self.low:g}, {self.high:g}{right}{unit}"


def _k(target: Target, field: str, low: float, high: float, unit: str, **kw: Any) -> ProfileKey:
    return ProfileKey(target, field, low, high, unit, **kw)


_PCT = 100.0
_OPEN = {"low_open": True, "high_open": True}

#: Every numeric key of a profile, dotted (section.key), with what it sets.
NUMBER_KEYS: dict[str, ProfileKey] = {
    # the feed
    "feed.true_tailings_gs": _k("plant", "tailings_gs", 1.5, 6.0, ""),
    "feed.recipe_tailings_gs": _k("plant", "recipe_tailings_gs", 1.5, 6.0, ""),
    "feed.density_kg_m3": _k("plant", "feed_density_kg_m3", 1000.0, 3000.0, "kg/m3", **_OPEN),
    "feed.solids_pct_min": _k(
        "plant", "feed_density_min_kg_m3", 0.0, 100.0, "%", divisor=_PCT, solids_to_density=True
    ),
    "feed.solids_pct_max": _k(
        "plant", "feed_density_max_kg_m3", 0.0, 100.0, "%", divisor=_PCT, solids_to_density=True
    ),
    "feed.walk_kg_m3_per_sqrt_s": _k(
        "plant", "feed_density_walk_kg_m3_sqrt_s", 0.0, 50.0, "kg/m3 per sqrt(s)"
    ),
    "feed.walk_reversion_s": _k("plant", "feed_density_reversion_s", 1.0, 1.0e6, "s"),
    "feed.step_kg_m3": _k("plant", "feed_step_kg_m3", 0.0, 500.0, "kg/m3"),
    "feed.step_interval_s": _k("plant", "feed_step_interval_s", 1.0, 1.0e7, "s"),
    "feed.wet_feed_drop_kg_m3": _k("plant", "wet_feed_drop_kg_m3", 0.0, 2000.0, "kg/m3"),
    "feed.flow_max_m3_h": _k("plant", "feed_flow_max_m3_h", 0.0, 1000.0, "m3/h", low_open=True),
    # transport
    "transport.feed_dead_time_s": _k("plant", "feed_dead_time_s", 0.0, 600.0, "s"),
    "transport.paste_dead_time_s": _k("plant", "paste_dead_time_s", 0.0, 600.0, "s"),
    # the binder feeders
    **{
        f"feeders.{name}_bias_pct": _k(
            "plant", "feeder_bias_pct", -50.0, 50.0, "%", index=i, **_OPEN
        )
        for i, name in enumerate(BINDERS)
    },
    # the mixer
    "mixer.volume_m3": _k("plant", "mixer_volume_m3", 0.0, 100.0, "m3", low_open=True),
    "mixer.level_pct": _k("plant", "mixer_level_sp_pct", 0.0, 100.0, "%", **_OPEN),
    # the pump
    "pump.capacity_m3_h": _k("plant", "pump_max_m3_h", 0.0, 2000.0, "m3/h", low_open=True),
    "pump.pressure_trip_kpa": _k("plc", "pressure_trip_kpa", 0.0, 50000.0, "kPa", low_open=True),
    "pump.pressure_reset_kpa": _k("plc", "pressure_reset_kpa", 0.0, 50000.0, "kPa"),
    # the pipe
    "pipe.static_head_m": _k("plant", "static_head_m", -3000.0, 3000.0, "m"),
    "pipe.ref_solids_pct": _k(
        "plant", "friction_ref_solids_fraction", 0.0, 100.0, "%", divisor=_PCT, **_OPEN
    ),
    "pipe.linear.design_flow_m3_h": _k(
        "plant", "design_flow_m3_h", 0.0, 1000.0, "m3/h", low_open=True
    ),
    "pipe.linear.friction_kpa_at_design": _k(
        "plant", "friction_kpa_at_design", 0.0, 50000.0, "kPa"
    ),
    "pipe.linear.solids_exponent": _k("plant", "friction_solids_exponent", 0.0, 100.0, ""),
    "pipe.bingham.diameter_m": _k("plant", "pipe_diameter_m", 0.025, 1.5, "m"),
    "pipe.bingham.length_m": _k("plant", "pipe_length_m", 0.0, 50000.0, "m", low_open=True),
    "pipe.bingham.yield_stress_pa_at_ref": _k("plant", "yield_stress_pa_at_ref", 0.0, 1.0e4, "Pa"),
    "pipe.bingham.yield_stress_solids_exponent": _k(
        "plant", "yield_stress_solids_exponent", 0.0, 100.0, ""
    ),
    "pipe.bingham.plastic_viscosity_pa_s_at_ref": _k(
        "plant", "plastic_viscosity_pa_s_at_ref", 0.001, 100.0, "Pa.s"
    ),
    "pipe.bingham.plastic_viscosity_solids_exponent": _k(
        "plant", "plastic_viscosity_solids_exponent", 0.0, 100.0, ""
    ),
    # the instruments: noise (parameters) and calibration errors (in force from the start)
    "instruments.feed_flow.noise_pct": _k("plant", "feed_flow_noise_pct", 0.0, 20.0, "%"),
    "instruments.feed_flow.bias_pct": _k("errors", "feed_flow_bias_pct", -50.0, 50.0, "%", **_OPEN),
    "instruments.feed_density.noise_kg_m3": _k(
        "plant", "feed_density_noise_kg_m3", 0.0, 200.0, "kg/m3"
    ),
    "instruments.feed_density.bias_kg_m3": _k(
        "errors", "feed_density_bias_kg_m3", -1000.0, 1000.0, "kg/m3", **_OPEN
    ),
    "instruments.feed_density.drift_kg_m3_per_h": _k(
        "errors", "feed_density_drift_kg_m3_h", -1000.0, 1000.0, "kg/m3 per h", **_OPEN
    ),
    "instruments.paste_flow.noise_pct": _k("plant", "paste_flow_noise_pct", 0.0, 20.0, "%"),
    "instruments.paste_flow.bias_pct": _k(
        "errors", "paste_flow_bias_pct", -50.0, 50.0, "%", **_OPEN
    ),
    "instruments.paste_density.noise_kg_m3": _k(
        "plant", "paste_density_noise_kg_m3", 0.0, 200.0, "kg/m3"
    ),
    "instruments.paste_density.bias_kg_m3": _k(
        "errors", "paste_density_bias_kg_m3", -1000.0, 1000.0, "kg/m3", **_OPEN
    ),
    "instruments.paste_density.drift_kg_m3_per_h": _k(
        "errors", "paste_density_drift_kg_m3_h", -1000.0, 1000.0, "kg/m3 per h", **_OPEN
    ),
    "instruments.paste_density.lag_s": _k("plant", "density_gauge_tau_s", 0.0, 600.0, "s"),
    "instruments.water_flow.noise_pct": _k("plant", "water_flow_noise_pct", 0.0, 20.0, "%"),
    "instruments.water_flow.bias_pct": _k(
        "errors", "water_flow_bias_pct", -50.0, 50.0, "%", **_OPEN
    ),
    "instruments.binder_scales.noise_pct": _k("plant", "binder_scale_noise_pct", 0.0, 50.0, "%"),
    **{
        f"instruments.binder_scales.{name}_bias_pct": _k(
            "errors", f"{name}_scale_bias_pct", -50.0, 50.0, "%", **_OPEN
        )
        for name in BINDERS
    },
    "instruments.pump_pressure.noise_kpa": _k("plant", "pressure_noise_kpa", 0.0, 2000.0, "kPa"),
    "instruments.pump_pressure.lag_s": _k("plant", "pressure_tau_s", 0.0, 600.0, "s"),
}

#: The text keys: the profile's own name and description, and the pipe friction model.
TEXT_KEYS: tuple[str, ...] = ("name", "description", "pipe.friction_model")
_NAME_MAX = 100
_DESCRIPTION_MAX = 2000

KEYS: tuple[str, ...] = (*TEXT_KEYS, *NUMBER_KEYS)
SECTIONS: frozenset[str] = frozenset(
    ".".join(key.split(".")[:n]) for key in KEYS for n in range(1, key.count(".") + 1)
)


class ProfileError(ValueError):
    """A profile that cannot be used: one line naming the file and the key."""

    def __init__(self, path: Path | str, problem: str, key: str | None = None) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class PlantProfile:
    """A plant as its profile states it: the dynamics' parameters and the instrument
    calibration errors in force when the simulator starts."""

    name: str
    description: str
    path: Path | None
    params: SimParams
    instrument_errors: InstrumentErrors

    @property
    def plant(self) -> PlantParams:
        return self.params.plant


def load_profile(path: Path | str) -> PlantProfile:
    """The profile in the TOML file at ``path``; :class:`ProfileError` when it cannot be
    read or used."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ProfileError(where, f"cannot read the profile: {reason}") from err
    return parse_profile(text, where)


def parse_profile(text: str, path: Path | str) -> PlantProfile:
    """The profile in ``text`` (TOML); ``path`` names it in errors and in the result.
    The file's name (without .toml) is the profile's name unless it states one."""
    where = Path(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(where, f"not valid TOML: {err}") from err
    values: dict[str, Any] = {}
    _flatten(document, "", values, where)

    texts = {key: values[key] for key in TEXT_KEYS if key in values}
    name = texts.get("name", where.stem)
    if not name.strip() or len(name) > _NAME_MAX:
        raise ProfileError(where, f"name must be 1-{_NAME_MAX} characters", "name")
    description = texts.get("description", "")
    if len(description) > _DESCRIPTION_MAX:
        raise ProfileError(
            where, f"description must be at most {_DESCRIPTION_MAX} characters", "description"
        )
    friction = texts.get("pipe.friction_model", PlantParams.friction_model)
    if friction not in FRICTION_MODELS:
        raise ProfileError(
            where,
            f"pipe.friction_model must be one of {', '.join(FRICTION_MODELS)}, got {friction!r}",
            "pipe.friction_model",
        )

    plant: dict[str, Any] = {"friction_model": friction}
    plc: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    per_binder: dict[str, list[float]] = {}
    targets = {"plant": plant, "plc": plc, "errors": errors}
    defaults = {"plant": PlantParams(), "plc": PlcParams(), "errors": InstrumentErrors()}
    # The solids band is stated at the true Gs: with another Gs, a band left out is the
    # default profile's solids (not its densities).
    true_gs = values.get("feed.true_tailings_gs", PlantParams.tailings_gs)
    low, high = DEFAULT_FEED_SOLIDS_BAND
    band = {"feed.solids_pct_min": low, "feed.solids_pct_max": high}
    for key, spec in NUMBER_KEYS.items():
        if spec.solids_to_density:
            fraction = values[key] / spec.divisor if key in values else band[key]
            targets[spec.target][spec.field] = slurry_density_kg_m3(fraction, true_gs)
            continue
        if key not in values:
            continue
        x = values[key] / spec.divisor
        if spec.index is None:
            targets[spec.target][spec.field] = x
        else:
            row = per_binder.setdefault(
                spec.field, list(getattr(defaults[spec.target], spec.field))
            )
            row[spec.index] = x
    for field_name, row in per_binder.items():
        plant[field_name] = (row[0], row[1], row[2])

    params = SimParams(plant=replace(PlantParams(), **plant), plc=replace(PlcParams(), **plc))
    _check_together(params, where)
    return PlantProfile(
        name=name,
        description=description,
        path=where,
        params=params,
        instrument_errors=replace(InstrumentErrors(), **errors),
    )


def _flatten(table: dict[str, Any], prefix: str, out: dict[str, Any], where: Path) -> None:
    """Every key of the document, dotted, checked for its name, type and range."""
    for name, value in table.items():
        key = f"{prefix}{name}"
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ProfileError(where, f"{key} must be a table ([{key}])", key)
            _flatten(value, f"{key}.", out, where)
        elif key in NUMBER_KEYS:
            out[key] = _number(key, value, NUMBER_KEYS[key], where)
        elif key in TEXT_KEYS:
            if not isinstance(value, str):
                raise ProfileError(
                    where, f"{key} must be a string, got {_toml_type(value)} {value!r}", key
                )
            out[key] = value
        else:
            raise ProfileError(where, _unknown(key), key)


def _number(key: str, value: object, spec: ProfileKey, where: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(where, f"{key} must be a number, got {_toml_type(value)} {value!r}", key)
    x = float(value)
    if not (math.isfinite(x) and spec.contains(x)):
        raise ProfileError(where, f"{key} must be within {spec.range_text()}, got {value!r}", key)
    return x


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key, [*KEYS, *SECTIONS], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{key} is not a profile key{hint}"


def _check_together(params: SimParams, where: Path) -> None:
    """Keys that are each in range but contradict one another."""
    p = params.plant
    gs = p.tailings_gs
    low_pct = 100.0 * slurry_solids_fraction(p.feed_density_min_kg_m3, gs)
    high_pct = 100.0 * slurry_solids_fraction(p.feed_density_max_kg_m3, gs)
    if p.feed_density_min_kg_m3 > p.feed_density_max_kg_m3:
        raise ProfileError(
            where,
            f"feed.solids_pct_min ({low_pct:.4g} %) is above feed.solids_pct_max "
            f"({high_pct:.4g} %)",
            "feed.solids_pct_min",
        )
    if not p.feed_density_min_kg_m3 <= p.feed_density_kg_m3 <= p.feed_density_max_kg_m3:
        solids = 100.0 * slurry_solids_fraction(p.feed_density_kg_m3, gs)
        raise ProfileError(
            where,
            f"feed.density_kg_m3 ({p.feed_density_kg_m3:g} kg/m3: {solids:.1f} % solids at the "
            f"true Gs {gs:g}) must lie within the feed's solids band feed.solids_pct_min.."
            f"feed.solids_pct_max ({low_pct:.4g}-{high_pct:.4g} %: "
            f"{p.feed_density_min_kg_m3:.0f}-{p.feed_density_max_kg_m3:.0f} kg/m3)",
            "feed.density_kg_m3",
        )
    plc = params.plc
    if plc.pressure_reset_kpa >= plc.pressure_trip_kpa:
        raise ProfileError(
            where,
            f"pump.pressure_reset_kpa ({plc.pressure_reset_kpa:g} kPa) must be below "
            f"pump.pressure_trip_kpa ({plc.pressure_trip_kpa:g} kPa)",
            "pump.pressure_reset_kpa",
        )


def profile_values(profile: PlantProfile) -> dict[str, float | str]:
    """Every key of the profile with the value in force (the inverse of the file), for
    documentation and tests."""
    sources: dict[Target, Any] = {
        "plant": profile.params.plant,
        "plc": profile.params.plc,
        "errors": profile.instrument_errors,
    }
    out: dict[str, float | str] = {
        "name": profile.name,
        "description": profile.description,
        "pipe.friction_model": profile.plant.friction_model,
    }
    for key, spec in NUMBER_KEYS.items():
        value = getattr(sources[spec.target], spec.field)
        if spec.index is not None:
            value = value[spec.index]
        if spec.solids_to_density:
            value = slurry_solids_fraction(value, profile.plant.tailings_gs)
        out[key] = round(float(value) * spec.divisor, 9)
    return out


__all__ = [
    "KEYS",
    "NUMBER_KEYS",
    "SECTIONS",
    "TEXT_KEYS",
    "PlantProfile",
    "ProfileError",
    "ProfileKey",
    "load_profile",
    "parse_profile",
    "profile_values",
]
