"""The plant, pour and recipe as SCADA tags: one flat model of named points, each with
its value, engineering unit, quality and source timestamp, built from the HMI snapshot
(``GET /api/v1/plant/status``), so a value reads the same on every face (REST, OPC UA).

The set of points is fixed by the tag map and the alarm codes, not by what the plant
says at the moment: a SCADA browses once and subscribes. A point with nothing to show
(no active pour, a measurement never read) has the value None and ``no_data`` quality.

Names are dotted paths (``Pour.PouredM3``, ``Plant.Measurements.paste_density_pv``); the
OPC UA face makes each segment an object or a variable. Pure: dictionaries in, points
out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.core.control.alarms import DEFAULT_SEVERITY, AlarmCode


class Kind(enum.Enum):
    DOUBLE = "double"
    STRING = "string"
    BOOL = "bool"


class Quality(enum.Enum):
    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class PointSpec:
    """A point of the model: its path, kind, unit and meaning, and for an analog value
    its engineering range (``low``-``high``: the span a SCADA scales its trends and
    percent deadbands on)."""

    path: str
    kind: Kind
    unit: str = ""
    description: str = ""
    low: float | None = None
    high: float | None = None

    @property
    def analog(self) -> bool:
        """A number with an engineering range (OPC UA AnalogItemType)."""
        return self.kind is Kind.DOUBLE and self.low is not None and self.high is not None

    @property
    def span(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low


@dataclass(frozen=True, slots=True)
class Point:
    value: float | str | bool | None
    quality: Quality
    source_time: datetime | None = None


# Instrument spans of a plant of 30-300 m3/h (the tag map's [ranges] table sets a site's
# own): a SCADA's trend scale and percent deadband, not limits the service enforces.
_UNIT_RANGES: Mapping[str, tuple[float, float]] = {
    "m3/h": (0.0, 400.0),
    "kg/m3": (1000.0, 2500.0),
    "t/h": (0.0, 50.0),
    "kPa": (0.0, 10_000.0),
    "%": (0.0, 100.0),
}
_TAG_RANGES: Mapping[str, tuple[float, float]] = {
    "water_flow_pv": (0.0, 200.0),
    "water_flow_sp": (0.0, 200.0),
    "barricade_pressure_pv": (0.0, 500.0),
}
_VOLUME = (0.0, 1_000_000.0)  # m3: POST /pours takes targets up to 1e6

_PLANT = (
    PointSpec("Plant.Connected", Kind.BOOL, "", "The service's link to the PLC is up."),
    PointSpec("Plant.PlcMode", Kind.STRING, "", "stopped, flushing, running or fault."),
    PointSpec("Plant.RemoteEnabled", Kind.BOOL, "", "The PLC accepts the service's setpoints."),
    PointSpec("Plant.Simulated", Kind.BOOL, "", "The built-in simulator, not a PLC."),
)

_POUR = (
    PointSpec("Pour.Id", Kind.STRING, "", "The active pour (empty: none)."),
    PointSpec("Pour.State", Kind.STRING, "", "running, paused (none: no active pour)."),
    PointSpec("Pour.StopeId", Kind.STRING, "", "The stope the pour fills."),
    PointSpec("Pour.TargetVolumeM3", Kind.DOUBLE, "m3", "Volume to place.", *_VOLUME),
    PointSpec("Pour.PouredM3", Kind.DOUBLE, "m3", "Paste placed in the stope.", *_VOLUME),
    PointSpec("Pour.ProgressPct", Kind.DOUBLE, "%", "Placed / target.", 0.0, 100.0),
    PointSpec("Pour.SolidsPct", Kind.DOUBLE, "%", "Cw placed, volume-weighted average.", 0, 100),
    PointSpec("Pour.BinderPct", Kind.DOUBLE, "%", "Bw placed, volume-weighted average.", 0, 50),
    PointSpec("Pour.BinderT", Kind.DOUBLE, "t", "Binder placed, all components.", 0, 100_000),
    PointSpec(
        "Pour.OffSpecM3", Kind.DOUBLE, "m3", "Paste placed outside the Cw or Bw band.", *_VOLUME
    ),
    PointSpec("Pour.DumpedM3", Kind.DOUBLE, "m3", "Paste sent to the dump.", *_VOLUME),
)

_RECIPE = (
    PointSpec("Recipe.SolidsPct", Kind.DOUBLE, "%", "Cw target of the pour's recipe.", 0, 100),
    PointSpec("Recipe.BinderPct", Kind.DOUBLE, "%", "Bw target (binder / dry tailings).", 0, 50),
    PointSpec("Recipe.TailingsSg", Kind.DOUBLE, "", "Tailings Gs control runs on.", 1.0, 8.0),
)

_ALARM_FIELDS = (
    ("Active", Kind.BOOL, "The condition is present."),
    ("Acknowledged", Kind.BOOL, "An operator acknowledged it."),
    ("State", Kind.STRING, "normal, active_unacknowledged, active_acknowledged, ..."),
    ("Severity", Kind.STRING, "low, medium, high or critical (ISA-18.2 priority)."),
    ("Detail", Kind.STRING, "What the service saw."),
)

_NO_DATA = Point(None, Quality.NO_DATA)


def tag_range(
    tag: str, unit: str, ranges: Mapping[str, tuple[float, float]]
) -> tuple[float, float] | tuple[None, None]:
    """A tag's engineering range: the site's (the tag map's [ranges]), else the span of
    its kind of instrument; none for a flag, a mode or a counter."""
    if tag in ranges:
        return ranges[tag]
    if tag in _TAG_RANGES:
        return _TAG_RANGES[tag]
    if tag.startswith("barricade_") and unit == "kPa":
        return _TAG_RANGES["barricade_pressure_pv"]
    return _UNIT_RANGES.get(unit, (None, None))


def specs(
    measurements: Mapping[str, str],
    setpoints: Mapping[str, str],
    binder_components: Iterable[str],
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[PointSpec, ...]:
    """Every point, in browse order: the plant, its measurements and setpoints (tag
    name -> unit, as the tag map has them, with their ranges: :func:`tag_range`), the
    pour, the recipe (with one blend point per binder component) and every alarm code."""
    site = ranges or {}
    out: list[PointSpec] = list(_PLANT)
    out += [
        PointSpec(
            f"Plant.Measurements.{tag}", _kind_of(unit), unit, "", *tag_range(tag, unit, site)
        )
        for tag, unit in measurements.items()
    ]
    out += [
        PointSpec(
            f"Plant.Setpoints.{tag}",
            _kind_of(unit),
            unit,
            "Last written by the service.",
            *tag_range(tag, unit, site),
        )
        for tag, unit in setpoints.items()
    ]
    out += _POUR
    out += _RECIPE
    out += [
        PointSpec(
            f"Recipe.Blend.{name}Pct", Kind.DOUBLE, "%", f"{name} share of the binder.", 0, 100
        )
        for name in binder_components
    ]
    for code in AlarmCode:
        out += [
            PointSpec(f"Alarms.{code.value}.{name}", kind, "", text)
            for name, kind, text in _ALARM_FIELDS
        ]
    return tuple(out)


def _kind_of(unit: str) -> Kind:
    return Kind.BOOL if unit == "bool" else Kind.DOUBLE


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _quality(text: Any) -> Quality:
    try:
        return Quality(text)
    except ValueError:
        return Quality.BAD


def _number(value: Any) -> float | bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return None


def points(status: Mapping[str, Any], spec: Iterable[PointSpec]) -> dict[str, Point]:
    """The value of every point of ``spec`` in the status body ``status``."""
    out: dict[str, Point] = {}
    good = Quality.GOOD
    connected = bool(status.get("connected"))
    link_quality = good if connected else Quality.BAD
    plant = {
        "Plant.Connected": Point(connected, good),
        "Plant.PlcMode": Point(status.get("plc_mode"), link_quality)
        if status.get("plc_mode") is not None
        else Point(None, Quality.BAD),
        "Plant.RemoteEnabled": Point(status.get("remote_enabled"), link_quality)
        if status.get("remote_enabled") is not None
        else Point(None, Quality.BAD),
        "Plant.Simulated": Point(bool(status.get("simulator")), good),
    }
    pour = status.get("active_pour") or {}
    targets = pour.get("targets") or {}
    blend = targets.get("blend_pct") or {}
    for s in spec:
        path = s.path
        if path in plant:
            out[path] = plant[path]
        elif path.startswith("Plant.Measurements."):
            m = (status.get("measurements") or {}).get(path.rsplit(".", 1)[1])
            out[path] = (
                _NO_DATA
                if m is None
                else Point(
                    _number(m.get("value")),
                    _quality(m.get("quality")),
                    _instant(m.get("timestamp")),
                )
            )
        elif path.startswith("Plant.Setpoints."):
            sp = (status.get("setpoints") or {}).get(path.rsplit(".", 1)[1])
            out[path] = (
                _NO_DATA
                if sp is None
                else Point(_number(sp.get("value")), good, _instant(sp.get("written_at")))
            )
        elif path.startswith("Pour."):
            out[path] = _pour_point(path, pour)
        elif path.startswith("Recipe.Blend."):
            name = path.removeprefix("Recipe.Blend.").removesuffix("Pct")
            out[path] = _present(blend.get(name, 0.0) if pour else None)
        elif path.startswith("Recipe."):
            key = {
                "Recipe.SolidsPct": "solids_pct",
                "Recipe.BinderPct": "binder_pct",
                "Recipe.TailingsSg": "tailings_sg",
            }[path]
            out[path] = _present(targets.get(key))
        elif path.startswith("Alarms."):
            out[path] = _alarm_point(path, status.get("alarms") or [])
    return out


_POUR_KEYS = {
    "Pour.Id": "id",
    "Pour.State": "state",
    "Pour.StopeId": "stope_id",
    "Pour.TargetVolumeM3": "target_volume_m3",
    "Pour.PouredM3": "poured_m3",
    "Pour.SolidsPct": "average_solids_pct",
    "Pour.BinderPct": "average_binder_pct",
    "Pour.BinderT": "binder_t",
    "Pour.OffSpecM3": "off_spec_m3",
    "Pour.DumpedM3": "dumped_m3",
}


def _present(value: Any) -> Point:
    return _NO_DATA if value is None else Point(value, Quality.GOOD)


def _pour_point(path: str, pour: Mapping[str, Any]) -> Point:
    if path in ("Pour.Id", "Pour.StopeId"):
        return Point(str(pour.get(_POUR_KEYS[path]) or ""), Quality.GOOD)
    if path == "Pour.State":
        return Point(str(pour.get("state") or "none"), Quality.GOOD)
    if not pour:
        return _NO_DATA
    if path == "Pour.ProgressPct":
        target = pour.get("target_volume_m3") or 0.0
        placed = pour.get("poured_m3") or 0.0
        return Point(min(100.0, 100.0 * placed / target) if target else None, Quality.GOOD)
    value = pour.get(_POUR_KEYS[path])
    return _present(None if value is None else float(value))


def _alarm_point(path: str, alarms: Iterable[Mapping[str, Any]]) -> Point:
    _, code, field = path.split(".")
    current = next((a for a in alarms if a.get("code") == code), None)
    if current is None:
        value: Any = {
            "Active": False,
            "Acknowledged": True,
            "State": "normal",
            "Severity": DEFAULT_SEVERITY[AlarmCode(code)].value,
            "Detail": "",
        }[field]
        return Point(value, Quality.GOOD)
    state = str(current.get("state") or "")
    value = {
        "Active": state.startswith("active"),
        "Acknowledged": bool(current.get("acknowledged")),
        "State": state,
        "Severity": str(current.get("severity") or ""),
        "Detail": str(current.get("detail") or ""),
    }[field]
    return Point(value, Quality.GOOD, _instant(current.get("since")))
