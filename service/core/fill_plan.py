"""A stope and its fill plan, as defined: the stope's geometry (its volume-height curve),
its barricade, the stages of a plan and their requirements. Pure values, validated.

A stope is filled in stages, not in one pour: a plug over the drawpoint brow, poured
richer and cured before the body goes in, then the body; or one continuous pour that
switches recipe at the plug height (Grabinsky, M., Jafari, M. & Pan, A. (2021),
"Required plug strength for continuously poured cemented paste backfill in longhole
stopes", Mining 1(1):80-99, doi:10.3390/mining1010006). How fast the fill rises and how
much binder it carries decide how hard it loads the barricade (Thompson, B.D., Bawden,
W.F. & Grabinsky, M.W. (2012), "In situ measurements of cemented paste backfill at the
Cayeli Mine", Can. Geotech. J. 49(7):755-772).

Geometry: a stope's void is its volume-height curve V(h)
(:mod:`service.core.stope_geometry`), from the survey (a table or a sliced mesh) or, for
a stope known only by its plan area A and height H, the prism V = A h. The fill height
of a placed volume is h(V), the plan area at a height dV/dh, and a stage's top given as
a height is the curve's volume at it. The plan's progress, its state machine and the
engineer's acts on it are :mod:`service.core.plans` and :mod:`service.core.plan_acts`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.core.barricade import is_barricade_tag
from service.core.stope_geometry import CurveSource, VolumeCurve
from service.errors import InvalidInput

LENGTH_M_MAX = 1.0e4
AREA_M2_MAX = 1.0e8
RISE_RATE_M_H_MAX = 1.0e3
_HOLD_H_MAX = 1.0e5
_UCS_KPA_MAX = 1.0e6
_CURING_DAYS_MAX = 3650.0
PRESSURE_KPA_MAX = 1.0e5
# A volume counts as reaching a top within this relative tolerance (float sums of
# many small integration steps must not miss a top by a rounding error).
REACH_RTOL = 1e-9
BARRICADE_TAGS_MAX = 8


# --- validation helpers -----------------------------------------------------------------


def positive(name: str, value: float, maximum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidInput(name, f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0.0 or value > maximum:
        raise InvalidInput(name, f"{name} must be finite, > 0 and <= {maximum:g}, got {value!r}")
    return float(value)


def non_negative(name: str, value: float, maximum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidInput(name, f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0.0 or value > maximum:
        raise InvalidInput(name, f"{name} must be finite, >= 0 and <= {maximum:g}, got {value!r}")
    return float(value)


def text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(name, f"{name} must be a non-empty text")
    return value


def aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(name, f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def fraction(name: str, value: float) -> float:
    if not isinstance(value, int | float) or not (0.0 < value <= 1.0):
        raise InvalidInput(name, f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def reached(volume_m3: float, top_m3: float) -> bool:
    return volume_m3 >= top_m3 - REACH_RTOL * max(1.0, top_m3)


# --- the stope and its plan -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StopeGeometry:
    """A stope's void: plan area (m2) and height (m), floor to back, and its
    volume-height ``curve`` when surveyed (None: a prism, V = A h).

    A surveyed stope's ``plan_area_m2`` is its mean plan area (volume / height): build
    it with :meth:`from_curve`. A prism: from the plan area, :meth:`from_dimensions`
    (length x width) or :meth:`from_volume` (void volume / height). Fill height, volume
    at a height and the plan area at a height follow the curve.
    """

    plan_area_m2: float
    height_m: float
    curve: VolumeCurve | None = None

    def __post_init__(self) -> None:
        positive("plan_area_m2", self.plan_area_m2, AREA_M2_MAX)
        positive("height_m", self.height_m, LENGTH_M_MAX)
        if self.curve is not None and not (
            math.isclose(self.height_m, self.curve.height_m, rel_tol=1e-9)
            and math.isclose(self.plan_area_m2, self.curve.mean_area_m2, rel_tol=1e-9)
        ):
            raise InvalidInput("curve", "a surveyed stope's area and height are its curve's")

    @classmethod
    def from_curve(cls, curve: VolumeCurve) -> StopeGeometry:
        """A surveyed stope: its height and mean plan area from the curve."""
        return cls(curve.mean_area_m2, curve.height_m, curve)

    @classmethod
    def from_dimensions(cls, *, length_m: float, width_m: float, height_m: float) -> StopeGeometry:
        """A rectangular stope: plan area = length x width."""
        length = positive("length_m", length_m, LENGTH_M_MAX)
        width = positive("width_m", width_m, LENGTH_M_MAX)
        return cls(length * width, height_m)

    @classmethod
    def from_volume(cls, *, volume_m3: float, height_m: float) -> StopeGeometry:
        """A stope known by its void volume and height: plan area = V / H (prism)."""
        volume = positive("volume_m3", volume_m3, AREA_M2_MAX * LENGTH_M_MAX)
        height = positive("height_m", height_m, LENGTH_M_MAX)
        return cls(volume / height, height)

    @property
    def source(self) -> CurveSource:
        """Where the geometry comes from: ``prism``, ``table`` or ``mesh``."""
        return "prism" if self.curve is None else self.curve.source

    @property
    def volume_curve(self) -> VolumeCurve:
        """The curve (a prism's is V = A h)."""
        if self.curve is not None:
            return self.curve
        return VolumeCurve.prism(self.plan_area_m2, self.height_m)

    @property
    def volume_m3(self) -> float:
        """Void volume (a prism's V = A H)."""
        if self.curve is not None:
            return self.curve.volume_m3
        return self.plan_area_m2 * self.height_m

    def fill_height_m(self, placed_m3: float) -> float:
        """Fill height h(V) of a placed volume (a prism's V / A). Not capped at the stope
        height: an overfill shows."""
        if self.curve is not None:
            return self.curve.height_at_m(placed_m3)
        return max(placed_m3, 0.0) / self.plan_area_m2

    def volume_at_m3(self, height_m: float) -> float:
        """Volume to fill the stope to ``height_m``, V(h) (a prism's A h)."""
        if self.curve is not None:
            return self.curve.volume_at_m3(height_m)
        return max(height_m, 0.0) * self.plan_area_m2

    def area_at_m2(self, height_m: float) -> float:
        """The plan area the fill rises into at ``height_m``, dV/dh (a prism's A)."""
        if self.curve is not None:
            return self.curve.area_at_m2(height_m)
        return self.plan_area_m2

    def area_at_volume_m2(self, placed_m3: float) -> float:
        """The plan area at the fill height of a placed volume."""
        return self.area_at_m2(self.fill_height_m(placed_m3))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"plan_area_m2": self.plan_area_m2, "height_m": self.height_m}
        if self.curve is not None:
            out["curve"] = self.curve.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StopeGeometry:
        curve = data.get("curve")
        if curve is not None:
            return cls.from_curve(VolumeCurve.from_dict(curve))
        return cls(float(data["plan_area_m2"]), float(data["height_m"]))


@dataclass(frozen=True, slots=True)
class Requirement:
    """A strength a stage's fill must reach: ``ucs_kpa`` at ``curing_days`` (e.g. a plug
    at 150 kPa in 3 days, a body at 500 kPa in 28 days)."""

    ucs_kpa: float
    curing_days: float
    name: str = ""

    def __post_init__(self) -> None:
        positive("ucs_kpa", self.ucs_kpa, _UCS_KPA_MAX)
        positive("curing_days", self.curing_days, _CURING_DAYS_MAX)

    def to_dict(self) -> dict[str, Any]:
        return {"ucs_kpa": self.ucs_kpa, "curing_days": self.curing_days, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Requirement:
        return cls(float(data["ucs_kpa"]), float(data["curing_days"]), str(data.get("name", "")))


_EXTENTS = ("top_height_m", "top_volume_m3", "stage_volume_m3")


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a fill plan.

    Its extent is given by exactly one of ``top_height_m`` (fill height at the end of the
    stage, from the stope floor: its top is the stope's volume at that height),
    ``top_volume_m3`` (the stope's placed volume at the end of the stage) or
    ``stage_volume_m3`` (the volume this stage places; its top is the stage before's
    top plus it). ``max_rise_rate_m_h``: the fill may rise no faster (paste flow <= rate
    x the plan area where the fill is). ``cure_hold_h``: after the top is reached the
    next stage waits at least this long, and for an engineer's release. ``switch_at_top``:
    at the top the next stage's recipe takes over without stopping (no hold, no
    release: a continuous pour through this top, Grabinsky, Jafari & Pan 2021); a plan
    may mix both, e.g. a plug that cures and a body that switches recipe part way up.
    """

    name: str
    recipe_id: str
    max_rise_rate_m_h: float
    cure_hold_h: float = 0.0
    top_height_m: float | None = None
    stage_volume_m3: float | None = None
    requirements: tuple[Requirement, ...] = ()
    switch_at_top: bool = False
    top_volume_m3: float | None = None

    def __post_init__(self) -> None:
        text("name", self.name)
        text("recipe_id", self.recipe_id)
        positive("max_rise_rate_m_h", self.max_rise_rate_m_h, RISE_RATE_M_H_MAX)
        non_negative("cure_hold_h", self.cure_hold_h, _HOLD_H_MAX)
        given = [name for name in _EXTENTS if getattr(self, name) is not None]
        if len(given) != 1:
            raise InvalidInput(
                given[0] if given else "top_height_m",
                "a stage needs exactly one of top_height_m, top_volume_m3 or stage_volume_m3",
            )
        if self.top_height_m is not None:
            positive("top_height_m", self.top_height_m, LENGTH_M_MAX)
        for name in ("top_volume_m3", "stage_volume_m3"):
            value = getattr(self, name)
            if value is not None:
                positive(name, value, AREA_M2_MAX * LENGTH_M_MAX)
        if not all(isinstance(r, Requirement) for r in self.requirements):
            raise InvalidInput("requirements", "requirements must be Requirement values")
        if self.switch_at_top and self.cure_hold_h > 0.0:
            raise InvalidInput(
                "cure_hold_h", "a stage that switches at its top has no hold (cure_hold_h 0)"
            )

    @property
    def extent_field(self) -> str:
        """The field the stage's extent was given by."""
        return next(name for name in _EXTENTS if getattr(self, name) is not None)

    @property
    def release_requirement(self) -> Requirement | None:
        """The strength the stage must have before the next stage goes on it: its
        earliest requirement (a plug's early strength; a body's 28-day figure is for its
        exposure, later). None when the stage names none."""
        if not self.requirements:
            return None
        return min(self.requirements, key=lambda r: (r.curing_days, -r.ucs_kpa))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recipe_id": self.recipe_id,
            "max_rise_rate_m_h": self.max_rise_rate_m_h,
            "cure_hold_h": self.cure_hold_h,
            "top_height_m": self.top_height_m,
            "top_volume_m3": self.top_volume_m3,
            "stage_volume_m3": self.stage_volume_m3,
            "requirements": [r.to_dict() for r in self.requirements],
            "switch_at_top": self.switch_at_top,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stage:
        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            name=str(data["name"]),
            recipe_id=str(data["recipe_id"]),
            max_rise_rate_m_h=float(data["max_rise_rate_m_h"]),
            cure_hold_h=float(data.get("cure_hold_h", 0.0)),
            top_height_m=opt("top_height_m"),
            stage_volume_m3=opt("stage_volume_m3"),
            requirements=tuple(Requirement.from_dict(r) for r in data.get("requirements", ())),
            switch_at_top=bool(data.get("switch_at_top", False)),
            top_volume_m3=opt("top_volume_m3"),
        )


def check_barricade_tags(tags: Any, field: str) -> tuple[str, ...]:
    """Barricade pressure tags a stope (or a plan) names: contract tag names
    (``barricade_pressure_pv``, ``barricade_2_pressure_pv``, ...), each once."""
    if not isinstance(tags, list | tuple):
        raise InvalidInput(field, "barricade tags are a list of tag names")
    if len(tags) > BARRICADE_TAGS_MAX:
        raise InvalidInput(field, f"a stope has at most {BARRICADE_TAGS_MAX} barricade tags")
    out: list[str] = []
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not is_barricade_tag(tag):
            raise InvalidInput(
                f"{field}[{i}]",
                f"{str(tag)[:60]!r} is not a barricade pressure tag (barricade_pressure_pv, "
                "barricade_2_pressure_pv, ...)",
            )
        if tag in out:
            raise InvalidInput(f"{field}[{i}]", f"barricade tag {tag!r} is named twice")
        out.append(tag)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FillPlan:
    """The ordered stages of a stope's fill, one version of it.

    ``continuous``: the pour does not stop at any stage top; the next stage's recipe
    takes over there (the switch point is recorded), as for every stage with
    ``switch_at_top``. Otherwise the pour stops at a top and the next stage waits for
    the hold and a release. ``barricade_tags``: the barricades this plan watches (None:
    the stope's own). Validated: at least one stage, unique names, stage tops strictly
    increasing, the last top within the stope, and no switch at the last stage's top
    (there is no next stage).
    """

    geometry: StopeGeometry
    stages: tuple[Stage, ...]
    continuous: bool = False
    version: int = 1
    barricade_tags: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, StopeGeometry):
            raise InvalidInput("geometry", "a plan needs the stope geometry")
        if not self.stages:
            raise InvalidInput("stages", "a plan needs at least one stage")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise InvalidInput("version", f"version must be an integer, got {self.version!r}")
        if self.version < 1:
            raise InvalidInput("version", f"version must be >= 1, got {self.version}")
        if self.barricade_tags is not None:
            check_barricade_tags(self.barricade_tags, "barricade_tags")
        names = [s.name for s in self.stages]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidInput(f"stages[{i}].name", f"stage name {name!r} is used twice")
        previous = 0.0
        for i, top in enumerate(self.top_volumes_m3):
            if top <= previous:
                stage = self.stages[i]
                raise InvalidInput(
                    f"stages[{i}].{stage.extent_field}",
                    f"stage {stage.name!r} tops out at {top:.3f} m3 "
                    f"({self.geometry.fill_height_m(top):.3f} m), not above the stage before "
                    f"({previous:.3f} m3): stage tops must strictly increase",
                )
            previous = top
        if self.stages[-1].switch_at_top:
            last = len(self.stages) - 1
            raise InvalidInput(
                f"stages[{last}].switch_at_top", "the last stage has no next stage to switch to"
            )
        volume = self.geometry.volume_m3
        if previous > volume * (1.0 + REACH_RTOL):
            last = len(self.stages) - 1
            raise InvalidInput(
                f"stages[{last}].{self.stages[last].extent_field}",
                f"the last stage tops out at {previous:.3f} m3 "
                f"({self.geometry.fill_height_m(previous):.3f} m), above the stope "
                f"({volume:.3f} m3, {self.geometry.height_m:.3f} m)",
            )

    def switches_at(self, index: int) -> bool:
        """Whether the recipe switches at stage ``index``'s top without stopping."""
        last = len(self.stages) - 1
        return index < last and (self.continuous or self.stages[index].switch_at_top)

    @property
    def top_volumes_m3(self) -> tuple[float, ...]:
        """Placed stope volume at the top of each stage: a top height is the curve's
        volume at it, V(h); a stage volume adds to the stage before's top."""
        tops: list[float] = []
        previous = 0.0
        for stage in self.stages:
            if stage.top_height_m is not None:
                top = self.geometry.volume_at_m3(stage.top_height_m)
            elif stage.top_volume_m3 is not None:
                top = stage.top_volume_m3
            else:
                assert stage.stage_volume_m3 is not None
                top = previous + stage.stage_volume_m3
            tops.append(top)
            previous = top
        return tuple(tops)

    @property
    def top_heights_m(self) -> tuple[float, ...]:
        """Fill height at the top of each stage (a top in m3 is the curve's height h(V))."""
        return tuple(
            stage.top_height_m
            if stage.top_height_m is not None
            else self.geometry.fill_height_m(volume)
            for stage, volume in zip(self.stages, self.top_volumes_m3, strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "geometry": self.geometry.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "continuous": self.continuous,
            "version": self.version,
        }
        if self.barricade_tags is not None:
            out["barricade_tags"] = list(self.barricade_tags)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FillPlan:
        """Inverse of :meth:`to_dict`; :class:`InvalidInput` when unreadable or invalid."""
        try:
            tags = data.get("barricade_tags")
            return cls(
                geometry=StopeGeometry.from_dict(data["geometry"]),
                stages=tuple(Stage.from_dict(s) for s in data["stages"]),
                continuous=bool(data.get("continuous", False)),
                version=int(data.get("version", 1)),
                barricade_tags=None if tags is None else tuple(str(t) for t in tags),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput("plan", f"unreadable fill plan: {err}") from err


@dataclass(frozen=True, slots=True)
class Stope:
    """The stope record: its name, geometry, barricade rating and barricade tags.

    ``barricade_high_fraction``: the barricade pressure alarm sounds at this fraction of
    the rating; at the rating the pour pauses
    (:func:`service.core.barricade.barricade_conditions`). ``barricade_tags``: the PLC
    tags of this stope's barricades (a plan may name others); None for a stope stored
    before barricades belonged to stopes, which watches every barricade tag of the
    plant, as it did.
    """

    name: str
    geometry: StopeGeometry
    barricade_rating_kpa: float
    barricade_high_fraction: float = 0.8
    barricade_tags: tuple[str, ...] | None = ()

    def __post_init__(self) -> None:
        text("name", self.name)
        positive("barricade_rating_kpa", self.barricade_rating_kpa, PRESSURE_KPA_MAX)
        fraction("barricade_high_fraction", self.barricade_high_fraction)
        if self.barricade_tags is not None:
            check_barricade_tags(self.barricade_tags, "barricade_tags")

    def barricades(self, plan: FillPlan | None) -> tuple[str, ...] | None:
        """The barricade tags in force: the plan's when it names them, else the stope's."""
        if plan is not None and plan.barricade_tags is not None:
            return plan.barricade_tags
        return self.barricade_tags
