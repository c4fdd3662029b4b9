"""Stope fill plans: the stope, its plan of stages and the plan's progress, pure.

A stope is filled in stages, not in one pour (DOMAIN.md): a plug over the drawpoint
brow, poured richer and cured before the body goes in, then the body; or one
continuous pour that switches recipe at the plug height (Grabinsky, M., Jafari, M. &
Pan, A. (2021), "Required plug strength for continuously poured cemented paste
backfill in longhole stopes", Mining 1(1):80-99, doi:10.3390/mining1010006). How fast
the fill rises and how much binder it carries decide how hard it loads the barricade
(Thompson, B.D., Bawden, W.F. & Grabinsky, M.W. (2012), "In situ measurements of
cemented paste backfill at the Cayeli Mine", Can. Geotech. J. 49(7):755-772): fast
rise keeps the young fill near hydrostatic, so the plan limits the rise rate per
stage and the barricade pressure is supervised against its rating.

Geometry: the stope is a prism of constant plan area A, so the fill height is
h = V / A (placed volume over plan area) and the rise rate is dh/dt = Q / A (paste flow
into the stope over plan area).

Every stage of a plan has a state; the current stage is the one filling, curing or
about to start. Transitions (:func:`next_stage_state`; anything else is a Conflict
naming the state):

================  ===============  ================  ======================================
state             action           next              when
================  ===============  ================  ======================================
pending           await_release    waiting_release   the stage before reached its top and
                                                     cures (staged plan)
pending           switch           filling           continuous plan: this stage's recipe
                                                     takes over at the stage before's top
waiting_release   release          ready             an engineer released the stage before
ready             start            filling           the stage's first pour starts
filling           reach_top        curing            staged plan, or the last stage: the
                                                     pour stops, the cure hold starts
filling           switch           done              continuous plan: handed over at its top
curing            release          released          the hold elapsed and an engineer
                                                     released it
================  ===============  ================  ======================================

The first stage starts ``ready``, every later one ``pending``. The last stage also
cures and is released: its hold is the cure before the stope is declared filled.

The stope's state is derived (:func:`stope_state`): ``planned`` (first stage ready,
nothing placed), ``filling``, ``curing`` (the current stage cures), ``filled`` (every
stage released or handed over), ``closed`` (:func:`close`, from filled).

Time is a parameter (aware datetimes); nothing here reads a clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from service.errors import Conflict, InvalidInput

_LENGTH_M_MAX = 1.0e4
_AREA_M2_MAX = 1.0e8
_RISE_RATE_M_H_MAX = 1.0e3
_HOLD_H_MAX = 1.0e5
_UCS_KPA_MAX = 1.0e6
_CURING_DAYS_MAX = 3650.0
_PRESSURE_KPA_MAX = 1.0e5
# A volume counts as reaching a top within this relative tolerance (float sums of
# many small integration steps must not miss a top by a rounding error).
_REACH_RTOL = 1e-9

SERVICE = "service"
"""``by`` of what the service itself does (a hold starting at a stage top)."""


# --- validation helpers -----------------------------------------------------------------


def _positive(name: str, value: float, maximum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidInput(name, f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0.0 or value > maximum:
        raise InvalidInput(name, f"{name} must be finite, > 0 and <= {maximum:g}, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float, maximum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidInput(name, f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0.0 or value > maximum:
        raise InvalidInput(name, f"{name} must be finite, >= 0 and <= {maximum:g}, got {value!r}")
    return float(value)


def _text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(name, f"{name} must be a non-empty text")
    return value


def _aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(name, f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _reached(volume_m3: float, top_m3: float) -> bool:
    return volume_m3 >= top_m3 - _REACH_RTOL * max(1.0, top_m3)


# --- the stope and its plan -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StopeGeometry:
    """A stope as a prism: plan area (m2) and height (m), floor to back.

    Build it from the plan area, from :meth:`from_dimensions` (length x width) or from
    :meth:`from_volume` (surveyed void volume / height). Fill height = placed volume /
    plan area (the volume of a prism, V = A h).
    """

    plan_area_m2: float
    height_m: float

    def __post_init__(self) -> None:
        _positive("plan_area_m2", self.plan_area_m2, _AREA_M2_MAX)
        _positive("height_m", self.height_m, _LENGTH_M_MAX)

    @classmethod
    def from_dimensions(cls, *, length_m: float, width_m: float, height_m: float) -> StopeGeometry:
        """A rectangular stope: plan area = length x width."""
        length = _positive("length_m", length_m, _LENGTH_M_MAX)
        width = _positive("width_m", width_m, _LENGTH_M_MAX)
        return cls(length * width, height_m)

    @classmethod
    def from_volume(cls, *, volume_m3: float, height_m: float) -> StopeGeometry:
        """A stope known by its void volume and height: plan area = V / H (prism)."""
        volume = _positive("volume_m3", volume_m3, _AREA_M2_MAX * _LENGTH_M_MAX)
        height = _positive("height_m", height_m, _LENGTH_M_MAX)
        return cls(volume / height, height)

    @property
    def volume_m3(self) -> float:
        """Void volume, V = A H."""
        return self.plan_area_m2 * self.height_m

    def fill_height_m(self, placed_m3: float) -> float:
        """Fill height h = V / A (prism). Not capped at the stope height: an overfill shows."""
        return max(placed_m3, 0.0) / self.plan_area_m2

    def volume_at_m3(self, height_m: float) -> float:
        """Volume to fill the stope to ``height_m``, V = A h."""
        return max(height_m, 0.0) * self.plan_area_m2

    def to_dict(self) -> dict[str, Any]:
        return {"plan_area_m2": self.plan_area_m2, "height_m": self.height_m}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StopeGeometry:
        return cls(float(data["plan_area_m2"]), float(data["height_m"]))


@dataclass(frozen=True, slots=True)
class Requirement:
    """A strength a stage's fill must reach: ``ucs_kpa`` at ``curing_days`` (e.g. a plug
    at 150 kPa in 3 days, a body at 500 kPa in 28 days; DOMAIN.md)."""

    ucs_kpa: float
    curing_days: float
    name: str = ""

    def __post_init__(self) -> None:
        _positive("ucs_kpa", self.ucs_kpa, _UCS_KPA_MAX)
        _positive("curing_days", self.curing_days, _CURING_DAYS_MAX)

    def to_dict(self) -> dict[str, Any]:
        return {"ucs_kpa": self.ucs_kpa, "curing_days": self.curing_days, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Requirement:
        return cls(float(data["ucs_kpa"]), float(data["curing_days"]), str(data.get("name", "")))


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a fill plan.

    Its extent is given by exactly one of ``top_height_m`` (fill height at the end of the
    stage, from the stope floor) or ``stage_volume_m3`` (the volume this stage places;
    its top is the stage before's top plus ``stage_volume_m3`` / plan area).
    ``max_rise_rate_m_h``: the fill may rise no faster (paste flow <= rate x plan area).
    ``cure_hold_h``: after the top is reached the next stage waits at least this long,
    and for an engineer's release. ``switch_at_top``: at the top the next stage's recipe
    takes over without stopping (no hold, no release: a continuous pour through this
    top, Grabinsky, Jafari & Pan 2021); a plan may mix both, e.g. a plug that cures and a
    body that switches recipe part way up.
    """

    name: str
    recipe_id: str
    max_rise_rate_m_h: float
    cure_hold_h: float = 0.0
    top_height_m: float | None = None
    stage_volume_m3: float | None = None
    requirements: tuple[Requirement, ...] = ()
    switch_at_top: bool = False

    def __post_init__(self) -> None:
        _text("name", self.name)
        _text("recipe_id", self.recipe_id)
        _positive("max_rise_rate_m_h", self.max_rise_rate_m_h, _RISE_RATE_M_H_MAX)
        _non_negative("cure_hold_h", self.cure_hold_h, _HOLD_H_MAX)
        if (self.top_height_m is None) == (self.stage_volume_m3 is None):
            raise InvalidInput(
                "top_height_m", "a stage needs exactly one of top_height_m or stage_volume_m3"
            )
        if self.top_height_m is not None:
            _positive("top_height_m", self.top_height_m, _LENGTH_M_MAX)
        if self.stage_volume_m3 is not None:
            _positive("stage_volume_m3", self.stage_volume_m3, _AREA_M2_MAX * _LENGTH_M_MAX)
        if not all(isinstance(r, Requirement) for r in self.requirements):
            raise InvalidInput("requirements", "requirements must be Requirement values")
        if self.switch_at_top and self.cure_hold_h > 0.0:
            raise InvalidInput(
                "cure_hold_h", "a stage that switches at its top has no hold (cure_hold_h 0)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recipe_id": self.recipe_id,
            "max_rise_rate_m_h": self.max_rise_rate_m_h,
            "cure_hold_h": self.cure_hold_h,
            "top_height_m": self.top_height_m,
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
        )


@dataclass(frozen=True, slots=True)
class FillPlan:
    """The ordered stages of a stope's fill, one version of it.

    ``continuous``: the pour does not stop at any stage top; the next stage's recipe
    takes over there (the switch point is recorded), as for every stage with
    ``switch_at_top``. Otherwise the pour stops at a top and the next stage waits for
    the hold and a release. Validated: at least one stage, unique names, stage tops
    strictly increasing, the last top within the stope height, and no switch at the
    last stage's top (there is no next stage).
    """

    geometry: StopeGeometry
    stages: tuple[Stage, ...]
    continuous: bool = False
    version: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, StopeGeometry):
            raise InvalidInput("geometry", "a plan needs the stope geometry")
        if not self.stages:
            raise InvalidInput("stages", "a plan needs at least one stage")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise InvalidInput("version", f"version must be an integer, got {self.version!r}")
        if self.version < 1:
            raise InvalidInput("version", f"version must be >= 1, got {self.version}")
        names = [s.name for s in self.stages]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidInput(f"stages[{i}].name", f"stage name {name!r} is used twice")
        previous = 0.0
        for i, top in enumerate(self.top_heights_m):
            if top <= previous:
                raise InvalidInput(
                    f"stages[{i}].top_height_m",
                    f"stage {self.stages[i].name!r} tops out at {top:.3f} m, not above the "
                    f"stage before ({previous:.3f} m): stage tops must strictly increase",
                )
            previous = top
        if self.stages[-1].switch_at_top:
            last = len(self.stages) - 1
            raise InvalidInput(
                f"stages[{last}].switch_at_top", "the last stage has no next stage to switch to"
            )
        height = self.geometry.height_m
        if previous > height * (1.0 + _REACH_RTOL):
            last = len(self.stages) - 1
            field_name = (
                "top_height_m" if self.stages[last].top_height_m is not None else "stage_volume_m3"
            )
            raise InvalidInput(
                f"stages[{last}].{field_name}",
                f"the last stage tops out at {previous:.3f} m, above the stope ({height:.3f} m)",
            )

    def switches_at(self, index: int) -> bool:
        """Whether the recipe switches at stage ``index``'s top without stopping."""
        last = len(self.stages) - 1
        return index < last and (self.continuous or self.stages[index].switch_at_top)

    @property
    def top_heights_m(self) -> tuple[float, ...]:
        """Fill height at the top of each stage (a stage volume converts as V / A)."""
        tops: list[float] = []
        previous = 0.0
        for stage in self.stages:
            if stage.top_height_m is not None:
                top = stage.top_height_m
            else:
                assert stage.stage_volume_m3 is not None
                top = previous + stage.stage_volume_m3 / self.geometry.plan_area_m2
            tops.append(top)
            previous = top
        return tuple(tops)

    @property
    def top_volumes_m3(self) -> tuple[float, ...]:
        """Placed stope volume at the top of each stage, V = A h."""
        return tuple(self.geometry.volume_at_m3(h) for h in self.top_heights_m)

    def to_dict(self) -> dict[str, Any]:
        return {
            "geometry": self.geometry.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "continuous": self.continuous,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FillPlan:
        """Inverse of :meth:`to_dict`; :class:`InvalidInput` when unreadable or invalid."""
        try:
            return cls(
                geometry=StopeGeometry.from_dict(data["geometry"]),
                stages=tuple(Stage.from_dict(s) for s in data["stages"]),
                continuous=bool(data.get("continuous", False)),
                version=int(data.get("version", 1)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput("plan", f"unreadable fill plan: {err}") from err


@dataclass(frozen=True, slots=True)
class Stope:
    """The stope record: its name, geometry and barricade rating.

    ``barricade_high_fraction``: the barricade pressure alarm sounds at this fraction of
    the rating; at the rating the pour pauses (:func:`barricade_conditions`).
    """

    name: str
    geometry: StopeGeometry
    barricade_rating_kpa: float
    barricade_high_fraction: float = 0.8

    def __post_init__(self) -> None:
        _text("name", self.name)
        _positive("barricade_rating_kpa", self.barricade_rating_kpa, _PRESSURE_KPA_MAX)
        _fraction("barricade_high_fraction", self.barricade_high_fraction)


def _fraction(name: str, value: float) -> float:
    if not isinstance(value, int | float) or not (0.0 < value <= 1.0):
        raise InvalidInput(name, f"{name} must be in (0, 1], got {value!r}")
    return float(value)


# --- the state machine ------------------------------------------------------------------


class StageState(StrEnum):
    PENDING = "pending"
    WAITING_RELEASE = "waiting_release"
    READY = "ready"
    FILLING = "filling"
    CURING = "curing"
    RELEASED = "released"
    DONE = "done"


class StageAction(StrEnum):
    START = "start"
    REACH_TOP = "reach_top"
    SWITCH = "switch"
    AWAIT_RELEASE = "await_release"
    RELEASE = "release"


class StopeState(StrEnum):
    PLANNED = "planned"
    FILLING = "filling"
    CURING = "curing"
    FILLED = "filled"
    CLOSED = "closed"


_TRANSITIONS: dict[tuple[StageState, StageAction], StageState] = {
    (StageState.PENDING, StageAction.AWAIT_RELEASE): StageState.WAITING_RELEASE,
    (StageState.PENDING, StageAction.SWITCH): StageState.FILLING,
    (StageState.WAITING_RELEASE, StageAction.RELEASE): StageState.READY,
    (StageState.READY, StageAction.START): StageState.FILLING,
    (StageState.FILLING, StageAction.REACH_TOP): StageState.CURING,
    (StageState.FILLING, StageAction.SWITCH): StageState.DONE,
    (StageState.CURING, StageAction.RELEASE): StageState.RELEASED,
}

FINISHED_STAGE_STATES = frozenset({StageState.RELEASED, StageState.DONE})


def next_stage_state(current: StageState, action: StageAction) -> StageState:
    """The state ``action`` leads to from ``current``; a Conflict naming both otherwise."""
    try:
        return _TRANSITIONS[(current, action)]
    except KeyError:
        raise Conflict(
            f"a {current.value} stage cannot {action.value.replace('_', ' ')}",
            code="stage_state_conflict",
            state=current.value,
            action=action.value,
        ) from None


# --- the plan's progress ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageProgress:
    """Where one stage is. Volumes are placed stope volume (cumulative over the stope)."""

    state: StageState
    started_at: datetime | None = None
    start_volume_m3: float | None = None
    top_reached_at: datetime | None = None
    top_volume_m3: float | None = None
    hold_started_at: datetime | None = None
    hold_ends_at: datetime | None = None
    released_at: datetime | None = None
    released_by: str | None = None


@dataclass(frozen=True, slots=True)
class SwitchPoint:
    """Where a continuous plan switched recipe: when, at which fill height and placed
    volume (as measured at the switch; the plan's top is ``planned_height_m``)."""

    at: datetime
    height_m: float
    volume_m3: float
    planned_height_m: float
    from_stage: int
    to_stage: int
    from_recipe_id: str
    to_recipe_id: str


class PlanLogKind(StrEnum):
    STAGE_STARTED = "stage_started"
    HOLD_STARTED = "hold_started"
    RELEASED = "released"
    REVISED = "revised"
    CLOSED = "closed"
    # Paste that reached the stope while no stage was filling (a plant that ran on
    # after a stop, a crash): it counts in the stope's volume and height all the same.
    PLACED_OUTSIDE_FILLING = "placed_outside_filling"


@dataclass(frozen=True, slots=True)
class PlanLogEntry:
    """One line of the plan's history: holds, releases (who, when) and the rest."""

    kind: PlanLogKind
    stage: int
    at: datetime
    by: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PlanProgress:
    """The runtime state of one stope's plan, a pure value (see the module table).

    ``current``: index of the stage filling, curing or next to start. ``placed_m3``:
    stope volume placed so far (dumped paste never counts); ``height_m`` = placed / A.
    """

    plan_version: int
    stages: tuple[StageProgress, ...]
    current: int = 0
    placed_m3: float = 0.0
    height_m: float = 0.0
    updated_at: datetime | None = None
    switch_points: tuple[SwitchPoint, ...] = ()
    history: tuple[PlanLogEntry, ...] = ()
    closed_at: datetime | None = None
    closed_by: str | None = None

    @classmethod
    def initial(cls, plan: FillPlan) -> PlanProgress:
        """A plan nothing has happened to: the first stage ready, the rest pending."""
        states = [StageState.READY] + [StageState.PENDING] * (len(plan.stages) - 1)
        return cls(plan_version=plan.version, stages=tuple(StageProgress(s) for s in states))

    @property
    def current_stage(self) -> StageProgress:
        return self.stages[self.current]

    @property
    def stope_state(self) -> StopeState:
        return stope_state(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ISO 8601 times)."""

        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "plan_version": self.plan_version,
            "current": self.current,
            "placed_m3": self.placed_m3,
            "height_m": self.height_m,
            "updated_at": iso(self.updated_at),
            "closed_at": iso(self.closed_at),
            "closed_by": self.closed_by,
            "stages": [
                {
                    "state": s.state.value,
                    "started_at": iso(s.started_at),
                    "start_volume_m3": s.start_volume_m3,
                    "top_reached_at": iso(s.top_reached_at),
                    "top_volume_m3": s.top_volume_m3,
                    "hold_started_at": iso(s.hold_started_at),
                    "hold_ends_at": iso(s.hold_ends_at),
                    "released_at": iso(s.released_at),
                    "released_by": s.released_by,
                }
                for s in self.stages
            ],
            "switch_points": [
                {
                    "at": p.at.isoformat(),
                    "height_m": p.height_m,
                    "volume_m3": p.volume_m3,
                    "planned_height_m": p.planned_height_m,
                    "from_stage": p.from_stage,
                    "to_stage": p.to_stage,
                    "from_recipe_id": p.from_recipe_id,
                    "to_recipe_id": p.to_recipe_id,
                }
                for p in self.switch_points
            ],
            "history": [
                {
                    "kind": e.kind.value,
                    "stage": e.stage,
                    "at": e.at.isoformat(),
                    "by": e.by,
                    "detail": e.detail,
                }
                for e in self.history
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanProgress:
        """Inverse of :meth:`to_dict`; :class:`InvalidInput` on an unreadable record."""

        def when(value: Any) -> datetime | None:
            return None if value is None else datetime.fromisoformat(str(value))

        def opt(value: Any) -> float | None:
            return None if value is None else float(value)

        try:
            stages = tuple(
                StageProgress(
                    state=StageState(s["state"]),
                    started_at=when(s.get("started_at")),
                    start_volume_m3=opt(s.get("start_volume_m3")),
                    top_reached_at=when(s.get("top_reached_at")),
                    top_volume_m3=opt(s.get("top_volume_m3")),
                    hold_started_at=when(s.get("hold_started_at")),
                    hold_ends_at=when(s.get("hold_ends_at")),
                    released_at=when(s.get("released_at")),
                    released_by=s.get("released_by"),
                )
                for s in data["stages"]
            )
            switch_points = tuple(
                SwitchPoint(
                    at=datetime.fromisoformat(str(p["at"])),
                    height_m=float(p["height_m"]),
                    volume_m3=float(p["volume_m3"]),
                    planned_height_m=float(p["planned_height_m"]),
                    from_stage=int(p["from_stage"]),
                    to_stage=int(p["to_stage"]),
                    from_recipe_id=str(p["from_recipe_id"]),
                    to_recipe_id=str(p["to_recipe_id"]),
                )
                for p in data.get("switch_points", ())
            )
            history = tuple(
                PlanLogEntry(
                    kind=PlanLogKind(e["kind"]),
                    stage=int(e["stage"]),
                    at=datetime.fromisoformat(str(e["at"])),
                    by=str(e["by"]),
                    detail=str(e.get("detail", "")),
                )
                for e in data.get("history", ())
            )
            progress = cls(
                plan_version=int(data["plan_version"]),
                stages=stages,
                current=int(data.get("current", 0)),
                placed_m3=float(data.get("placed_m3", 0.0)),
                height_m=float(data.get("height_m", 0.0)),
                updated_at=when(data.get("updated_at")),
                switch_points=switch_points,
                history=history,
                closed_at=when(data.get("closed_at")),
                closed_by=data.get("closed_by"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput("progress", f"unreadable plan progress: {err}") from err
        if not stages or not 0 <= progress.current < len(stages):
            raise InvalidInput("progress", "unreadable plan progress: current stage out of range")
        return progress


class PlanEventKind(StrEnum):
    HOLD_STARTED = "hold_started"
    SWITCH_RECIPE = "switch_recipe"
    PLAN_COMPLETE = "plan_complete"
    PLACED_OUTSIDE_FILLING = "placed_outside_filling"


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """What :func:`on_volume` tells the running part.

    - ``hold_started``: a staged plan's stage reached its top: stop the pour; the hold runs.
    - ``switch_recipe``: a continuous plan reached a stage top: switch to ``recipe_id``
      without stopping.
    - ``plan_complete``: the last stage reached its top: stop the pour; its hold runs.
    - ``placed_outside_filling``: volume arrived while no stage was filling (a pour run
      past a stop, or outside the plan): ``volume_m3`` is the amount.
    """

    kind: PlanEventKind
    stage: int
    at: datetime
    height_m: float
    volume_m3: float
    recipe_id: str | None = None
    detail: str = ""

    @property
    def stop_pour(self) -> bool:
        return self.kind in (PlanEventKind.HOLD_STARTED, PlanEventKind.PLAN_COMPLETE)


def _check(progress: PlanProgress, plan: FillPlan) -> None:
    if progress.plan_version != plan.version or len(progress.stages) != len(plan.stages):
        raise Conflict(
            f"the progress follows plan version {progress.plan_version}, not version "
            f"{plan.version}: adopt the revision first",
            code="plan_version_conflict",
            state=stope_state(progress).value,
        )


def _set_stage(progress: PlanProgress, index: int, stage: StageProgress) -> PlanProgress:
    stages = list(progress.stages)
    stages[index] = stage
    return replace(progress, stages=tuple(stages))


def _log(progress: PlanProgress, entry: PlanLogEntry) -> PlanProgress:
    return replace(progress, history=(*progress.history, entry))


def _hours(seconds: float) -> str:
    return f"{seconds / 3600.0:.2f} h"


def stope_state(progress: PlanProgress) -> StopeState:
    """The stope's state, derived from its plan's progress (module docstring)."""
    if progress.closed_at is not None:
        return StopeState.CLOSED
    if all(s.state in FINISHED_STAGE_STATES for s in progress.stages):
        return StopeState.FILLED
    current = progress.current_stage.state
    if current is StageState.CURING:
        return StopeState.CURING
    if progress.current == 0 and current is StageState.READY and progress.placed_m3 <= 0.0:
        return StopeState.PLANNED
    return StopeState.FILLING


def start_plan(plan: FillPlan) -> PlanProgress:
    """The progress of a plan before anything was poured (:meth:`PlanProgress.initial`)."""
    return PlanProgress.initial(plan)


def current_recipe_id(progress: PlanProgress, plan: FillPlan) -> str:
    """The recipe of the current stage (what a pour of the stope runs now)."""
    _check(progress, plan)
    return plan.stages[progress.current].recipe_id


def current_max_rise_rate_m_h(progress: PlanProgress, plan: FillPlan) -> float:
    """The rise-rate limit of the current stage, m/h."""
    _check(progress, plan)
    return plan.stages[progress.current].max_rise_rate_m_h


def hold_remaining_s(progress: PlanProgress, now: datetime) -> float | None:
    """Seconds left of the current stage's hold (0 when elapsed); None when not curing."""
    stage = progress.current_stage
    if stage.state is not StageState.CURING or stage.hold_ends_at is None:
        return None
    return max(0.0, (stage.hold_ends_at - _aware("now", now)).total_seconds())


def start_stage(
    progress: PlanProgress, plan: FillPlan, now: datetime, by: str = SERVICE
) -> PlanProgress:
    """The current stage starts filling (its first pour starts).

    Conflict unless the stage is ``ready`` (a staged plan's next stage is ready only after
    the hold and a release) or the stope is closed.
    """
    _check(progress, plan)
    _aware("now", now)
    _text("by", by)
    if progress.closed_at is not None:
        raise Conflict("the stope is closed", code="stope_state_conflict", state="closed")
    index = progress.current
    stage = progress.stages[index]
    state = next_stage_state(stage.state, StageAction.START)
    started = replace(stage, state=state, started_at=now, start_volume_m3=progress.placed_m3)
    out = _set_stage(progress, index, started)
    return _log(
        replace(out, updated_at=now),
        PlanLogEntry(PlanLogKind.STAGE_STARTED, index, now, by, plan.stages[index].name),
    )


def on_volume(
    progress: PlanProgress, plan: FillPlan, placed_m3: float, now: datetime
) -> tuple[PlanProgress, tuple[PlanEvent, ...]]:
    """The progress after the stope's placed volume reached ``placed_m3`` at ``now``.

    ``placed_m3`` is cumulative stope volume (every pour of the stope, dumped paste
    excluded). A smaller value than already seen is taken as a late reading (a restart
    from an older checkpoint), not as volume taken out: the larger is kept. Fill height
    = placed volume / plan area. While the current stage fills, reaching its top:

    - staged plan (or the last stage): the stage cures from ``now`` for its hold; event
      ``hold_started`` (``plan_complete`` for the last stage): the pour must stop;
    - continuous plan: the next stage takes over at once; event ``switch_recipe`` and a
      recorded switch point. One reading may pass several tops (each is recorded).
    """
    _check(progress, plan)
    _aware("now", now)
    reading = _non_negative("placed_m3", placed_m3, _AREA_M2_MAX * _LENGTH_M_MAX)
    placed = max(progress.placed_m3, reading)
    added = placed - progress.placed_m3
    height = plan.geometry.fill_height_m(placed)
    out = replace(progress, placed_m3=placed, height_m=height, updated_at=now)
    events: list[PlanEvent] = []
    index = out.current
    if out.stages[index].state is not StageState.FILLING or out.closed_at is not None:
        if added > 0.0:
            detail = (
                f"{added:.3f} m3 placed while stage {plan.stages[index].name!r} was "
                f"{'closed' if out.closed_at is not None else out.stages[index].state.value}"
            )
            previous = out.history[-1] if out.history else None
            if previous is None or previous.kind is not PlanLogKind.PLACED_OUTSIDE_FILLING:
                # Once per episode: the stope's volume and height carry the rest.
                entry = PlanLogEntry(
                    PlanLogKind.PLACED_OUTSIDE_FILLING, index, now, SERVICE, detail
                )
                out = _log(out, entry)
            events.append(
                PlanEvent(
                    PlanEventKind.PLACED_OUTSIDE_FILLING, index, now, height, added, detail=detail
                )
            )
        return out, tuple(events)
    tops = plan.top_volumes_m3
    heights = plan.top_heights_m
    last = len(plan.stages) - 1
    while out.stages[index].state is StageState.FILLING and _reached(placed, tops[index]):
        stage_def = plan.stages[index]
        stage = out.stages[index]
        if plan.switches_at(index):
            nxt = plan.stages[index + 1]
            out = _set_stage(
                out,
                index,
                replace(
                    stage,
                    state=next_stage_state(stage.state, StageAction.SWITCH),
                    top_reached_at=now,
                    top_volume_m3=placed,
                ),
            )
            following = out.stages[index + 1]
            out = _set_stage(
                out,
                index + 1,
                replace(
                    following,
                    state=next_stage_state(following.state, StageAction.SWITCH),
                    started_at=now,
                    start_volume_m3=placed,
                ),
            )
            point = SwitchPoint(
                at=now,
                height_m=height,
                volume_m3=placed,
                planned_height_m=heights[index],
                from_stage=index,
                to_stage=index + 1,
                from_recipe_id=stage_def.recipe_id,
                to_recipe_id=nxt.recipe_id,
            )
            out = replace(out, current=index + 1, switch_points=(*out.switch_points, point))
            events.append(
                PlanEvent(
                    PlanEventKind.SWITCH_RECIPE,
                    index + 1,
                    now,
                    height,
                    placed,
                    recipe_id=nxt.recipe_id,
                    detail=f"{stage_def.name!r} -> {nxt.name!r} at {heights[index]:.3f} m",
                )
            )
            index += 1
            continue
        ends = now + timedelta(hours=stage_def.cure_hold_h)
        out = _set_stage(
            out,
            index,
            replace(
                stage,
                state=next_stage_state(stage.state, StageAction.REACH_TOP),
                top_reached_at=now,
                top_volume_m3=placed,
                hold_started_at=now,
                hold_ends_at=ends,
            ),
        )
        if index < last:
            following = out.stages[index + 1]
            out = _set_stage(
                out,
                index + 1,
                replace(
                    following, state=next_stage_state(following.state, StageAction.AWAIT_RELEASE)
                ),
            )
        detail = f"{stage_def.name!r} at {heights[index]:.3f} m; hold until {ends.isoformat()}"
        out = _log(out, PlanLogEntry(PlanLogKind.HOLD_STARTED, index, now, SERVICE, detail))
        kind = PlanEventKind.HOLD_STARTED if index < last else PlanEventKind.PLAN_COMPLETE
        events.append(PlanEvent(kind, index, now, height, placed, detail=detail))
    return out, tuple(events)


def release(progress: PlanProgress, plan: FillPlan, by: str, now: datetime) -> PlanProgress:
    """An engineer releases the curing stage: the next stage becomes ready.

    Only after the hold has elapsed: before, a Conflict (code ``hold_not_elapsed``)
    saying how long is left (``remaining_s``). Releasing the last stage declares the
    stope filled. Conflict for a stage that is not curing.
    """
    _check(progress, plan)
    _aware("now", now)
    _text("by", by)
    if progress.closed_at is not None:
        raise Conflict("the stope is closed", code="stope_state_conflict", state="closed")
    index = progress.current
    stage = progress.stages[index]
    name = plan.stages[index].name
    if stage.state is StageState.CURING and stage.hold_ends_at is not None:
        remaining = (stage.hold_ends_at - now).total_seconds()
        if remaining > 0.0:
            raise Conflict(
                f"stage {name!r} cures until {stage.hold_ends_at.isoformat()}: "
                f"{_hours(remaining)} left before it can be released",
                code="hold_not_elapsed",
                state=stage.state.value,
                remaining_s=remaining,
                hold_ends_at=stage.hold_ends_at.isoformat(),
            )
    released = replace(
        stage,
        state=next_stage_state(stage.state, StageAction.RELEASE),
        released_at=now,
        released_by=by,
    )
    out = _set_stage(progress, index, released)
    if index + 1 < len(out.stages):
        following = out.stages[index + 1]
        out = _set_stage(
            out,
            index + 1,
            replace(following, state=next_stage_state(following.state, StageAction.RELEASE)),
        )
        out = replace(out, current=index + 1)
    out = replace(out, updated_at=now)
    return _log(out, PlanLogEntry(PlanLogKind.RELEASED, index, now, by, name))


def close(progress: PlanProgress, plan: FillPlan, by: str, now: datetime) -> PlanProgress:
    """Close a filled stope (its record is complete). Conflict naming the state otherwise."""
    _check(progress, plan)
    _aware("now", now)
    _text("by", by)
    state = stope_state(progress)
    if state is not StopeState.FILLED:
        raise Conflict(
            f"a {state.value} stope cannot close", code="stope_state_conflict", state=state.value
        )
    out = replace(progress, closed_at=now, closed_by=by, updated_at=now)
    return _log(out, PlanLogEntry(PlanLogKind.CLOSED, progress.current, now, by))


_STARTED = frozenset({StageState.FILLING, StageState.CURING, StageState.RELEASED, StageState.DONE})


def adopt_revision(
    progress: PlanProgress, plan: FillPlan, revised: FillPlan, by: str, now: datetime
) -> PlanProgress:
    """The progress carried over to a new version of the plan.

    Allowed: any change to stages not yet started; for the started current stage, a
    new top (while filling, above the fill already placed), rise rate or hold (a curing
    stage's hold end moves with it). Refused (Conflict ``plan_revision_conflict``):
    changing a finished stage, the recipe of a started stage, or removing the current
    stage. Geometry may change (a new survey): the fill height is recomputed. Adding
    stages after a filled stope reopens it (the next stage becomes ready).
    """
    _check(progress, plan)
    _aware("now", now)
    _text("by", by)
    if progress.closed_at is not None:
        raise Conflict("the stope is closed", code="stope_state_conflict", state="closed")
    if revised.version <= plan.version:
        raise InvalidInput(
            "version", f"a revision needs a version above {plan.version}, got {revised.version}"
        )
    index = progress.current

    def refuse(detail: str) -> Conflict:
        return Conflict(
            detail, code="plan_revision_conflict", state=progress.stages[index].state.value
        )

    if len(revised.stages) <= index:
        raise refuse(f"the revision drops stage {index} ({plan.stages[index].name!r}), in use")
    old_tops = plan.top_heights_m
    new_tops = revised.top_heights_m
    for i in range(index):
        same_top = math.isclose(old_tops[i], new_tops[i], rel_tol=1e-9, abs_tol=1e-9)
        if revised.stages[i] != plan.stages[i] or not same_top:
            raise refuse(f"stage {i} ({plan.stages[i].name!r}) is finished and cannot change")
    current = progress.stages[index]
    old, new = plan.stages[index], revised.stages[index]
    if current.state in _STARTED:
        if new.recipe_id != old.recipe_id or new.name != old.name:
            raise refuse(f"stage {index} ({old.name!r}) has started: its recipe cannot change")
        top_changed = not math.isclose(old_tops[index], new_tops[index], rel_tol=1e-9)
        if current.state is not StageState.FILLING and top_changed:
            raise refuse(f"stage {index} ({old.name!r}) reached its top: it cannot change")
        if current.state is StageState.FILLING and _reached(
            progress.placed_m3, revised.top_volumes_m3[index]
        ):
            raise refuse(
                f"the new top of stage {index} ({old.name!r}) is below the fill already placed"
            )
    stages = list(progress.stages[: index + 1])
    if current.state is StageState.CURING and current.hold_started_at is not None:
        stages[index] = replace(
            current, hold_ends_at=current.hold_started_at + timedelta(hours=new.cure_hold_h)
        )
    for i in range(index + 1, len(revised.stages)):
        kept = progress.stages[i] if i < len(progress.stages) else StageProgress(StageState.PENDING)
        stages.append(kept)
    out = replace(
        progress,
        plan_version=revised.version,
        stages=tuple(stages),
        height_m=revised.geometry.fill_height_m(progress.placed_m3),
        updated_at=now,
    )
    if index + 1 < len(stages):
        following = stages[index + 1]
        if current.state is StageState.CURING and following.state is StageState.PENDING:
            out = _set_stage(out, index + 1, replace(following, state=StageState.WAITING_RELEASE))
        elif current.state is StageState.RELEASED:  # a filled stope gets another stage
            out = _set_stage(out, index + 1, replace(following, state=StageState.READY))
            out = replace(out, current=index + 1)
    detail = f"plan version {plan.version} -> {revised.version}"
    return _log(out, PlanLogEntry(PlanLogKind.REVISED, out.current, now, by, detail))


# --- rise rate --------------------------------------------------------------------------


def rise_rate_m_h(paste_flow_m3_h: float, plan_area_m2: float) -> float:
    """Rise rate of the fill, dh/dt = Q / A (prism geometry; Thompson et al. 2012 relate
    it to barricade load)."""
    area = _positive("plan_area_m2", plan_area_m2, _AREA_M2_MAX)
    if not math.isfinite(paste_flow_m3_h):
        raise InvalidInput("paste_flow_m3_h", f"flow must be finite, got {paste_flow_m3_h!r}")
    return max(paste_flow_m3_h, 0.0) / area


def rise_rate_limited_flow_m3_h(
    requested_flow_m3_h: float, max_rise_rate_m_h: float, plan_area_m2: float
) -> float:
    """The paste flow that keeps the fill rising no faster than ``max_rise_rate_m_h``:
    min(requested, max rise x A), from dh/dt = Q / A (prism geometry). Never negative;
    the rise-rate limit is the one the plan sets per stage (Thompson, Bawden & Grabinsky
    2012, Can. Geotech. J. 49:755-772: fast rise keeps young fill near hydrostatic)."""
    if not math.isfinite(requested_flow_m3_h):
        raise InvalidInput(
            "requested_flow_m3_h", f"flow must be finite, got {requested_flow_m3_h!r}"
        )
    rate = _positive("max_rise_rate_m_h", max_rise_rate_m_h, _RISE_RATE_M_H_MAX)
    area = _positive("plan_area_m2", plan_area_m2, _AREA_M2_MAX)
    return min(max(requested_flow_m3_h, 0.0), rate * area)


def rise_rate_exceeded(
    rise_rate_m_h: float, max_rise_rate_m_h: float, tolerance_fraction: float = 0.05
) -> bool:
    """Whether a measured rise rate is above the limit by more than the tolerance
    (a fraction of the limit: 0.05 = 5 %)."""
    limit = _positive("max_rise_rate_m_h", max_rise_rate_m_h, _RISE_RATE_M_H_MAX)
    tol = _non_negative("tolerance_fraction", tolerance_fraction, 1.0)
    return rise_rate_m_h > limit * (1.0 + tol)


@dataclass(frozen=True, slots=True)
class RiseRateMeter:
    """The rise rate actually achieved, over a moving window, from (time, placed volume)
    samples: (V(now) - V(now - window)) / window / A, V(now - window) interpolated
    linearly between samples (dh/dt = Q / A, prism geometry).

    Until the samples span ``window_s`` the rate is taken over what they span, and is
    None below ``min_span_s``. Placed volume is cumulative; a lower reading than the
    last is taken as the last (a late checkpoint, not volume removed). Add with
    :meth:`add`, which returns a new meter.
    """

    plan_area_m2: float
    window_s: float = 600.0
    min_span_s: float = 60.0
    samples: tuple[tuple[datetime, float], ...] = ()

    def __post_init__(self) -> None:
        _positive("plan_area_m2", self.plan_area_m2, _AREA_M2_MAX)
        _positive("window_s", self.window_s, 1.0e6)
        _positive("min_span_s", self.min_span_s, 1.0e6)
        if self.min_span_s > self.window_s:
            raise InvalidInput("min_span_s", "min_span_s must not exceed window_s")

    def add(self, now: datetime, placed_m3: float) -> RiseRateMeter:
        _aware("now", now)
        volume = _non_negative("placed_m3", placed_m3, _AREA_M2_MAX * _LENGTH_M_MAX)
        samples = list(self.samples)
        if samples:
            last_t, last_v = samples[-1]
            if now < last_t:
                raise InvalidInput("now", f"time went back: {now.isoformat()} < {last_t}")
            volume = max(volume, last_v)
            if now == last_t:
                samples.pop()
        samples.append((now, volume))
        cutoff = now - timedelta(seconds=self.window_s)
        # Keep the newest sample at or before the cutoff: it anchors the interpolation.
        first = 0
        for i, (t, _) in enumerate(samples):
            if t <= cutoff:
                first = i
        return replace(self, samples=tuple(samples[first:]))

    @property
    def span_s(self) -> float:
        """Seconds the rate is taken over (at most the window)."""
        if len(self.samples) < 2:
            return 0.0
        span = (self.samples[-1][0] - self.samples[0][0]).total_seconds()
        return min(span, self.window_s)

    @property
    def rise_rate_m_h(self) -> float | None:
        """Measured rise rate (m/h), None until the samples span ``min_span_s``."""
        span = self.span_s
        if span < self.min_span_s or span <= 0.0:
            return None
        end_t, end_v = self.samples[-1]
        start_t = end_t - timedelta(seconds=span)
        (t0, v0), (t1, v1) = self.samples[0], self.samples[1]
        if t0 < start_t and t1 > t0:
            fraction = (start_t - t0).total_seconds() / (t1 - t0).total_seconds()
            start_v = v0 + fraction * (v1 - v0)
        else:
            start_v = v0
        return (end_v - start_v) / self.plan_area_m2 / (span / 3600.0)


# --- barricade pressure -----------------------------------------------------------------

_BARRICADE_TAG = re.compile(r"^barricade(_[0-9]+)?_pressure_pv$")
QUALITIES = ("good", "uncertain", "bad")


def is_barricade_tag(tag: str) -> bool:
    """A barricade pressure tag of the contract: ``barricade_pressure_pv``,
    ``barricade_2_pressure_pv``, ..."""
    return bool(_BARRICADE_TAG.match(tag))


class BarricadeLevel(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    AT_RATING = "at_rating"
    UNKNOWN = "unknown"


_BARRICADE_CODES: Mapping[BarricadeLevel, str] = {
    BarricadeLevel.HIGH: "barricade_pressure_high",
    BarricadeLevel.AT_RATING: "barricade_pressure_at_rating",
    BarricadeLevel.UNKNOWN: "barricade_pressure_unknown",
}


@dataclass(frozen=True, slots=True)
class BarricadeCondition:
    """One barricade's pressure judged against its rating.

    ``high``: at or above ``high_kpa`` (alarm); ``at_rating``: at or above the rating
    (alarm and an automatic pause naming the barricade); ``unknown``: the reading is bad,
    missing or not a number (reported: never taken as a low pressure).
    """

    tag: str
    level: BarricadeLevel
    pressure_kpa: float | None
    rating_kpa: float
    high_kpa: float
    quality: str
    detail: str = ""

    @property
    def alarm(self) -> bool:
        return self.level is not BarricadeLevel.NORMAL

    @property
    def pause(self) -> bool:
        return self.level is BarricadeLevel.AT_RATING

    @property
    def code(self) -> str | None:
        """Stable alarm code of the condition, None when normal."""
        return _BARRICADE_CODES.get(self.level)


def barricade_conditions(
    pressures_kpa: Mapping[str, float | None],
    rating_kpa: float | Mapping[str, float],
    high_fraction: float,
    quality: Mapping[str, str],
) -> tuple[BarricadeCondition, ...]:
    """Each barricade's condition, sorted by tag.

    ``rating_kpa``: one rating for every barricade, or one per tag. ``high_fraction``
    (0-1] of the rating raises the high alarm; reaching the rating pauses the pour
    (practice is to stop filling when the measured total pressure reaches the rating,
    DOMAIN.md after Thompson, Bawden & Grabinsky 2012). ``quality`` per tag (``good``,
    ``uncertain``, ``bad``; a tag without one is taken as ``bad``): a bad, missing or
    non-finite reading is ``unknown``; an uncertain one is judged on its value.
    """
    fraction = _fraction("high_fraction", high_fraction)
    out: list[BarricadeCondition] = []
    for tag in sorted(pressures_kpa):
        if isinstance(rating_kpa, Mapping):
            if tag not in rating_kpa:
                raise InvalidInput("rating_kpa", f"no rating for barricade {tag!r}")
            rating = _positive("rating_kpa", rating_kpa[tag], _PRESSURE_KPA_MAX)
        else:
            rating = _positive("rating_kpa", rating_kpa, _PRESSURE_KPA_MAX)
        high = fraction * rating
        q = quality.get(tag, "bad")
        if q not in QUALITIES:
            raise InvalidInput("quality", f"quality of {tag!r} must be one of {QUALITIES}")
        value = pressures_kpa[tag]
        if q == "bad" or value is None or not math.isfinite(value):
            out.append(
                BarricadeCondition(
                    tag,
                    BarricadeLevel.UNKNOWN,
                    None,
                    rating,
                    high,
                    q,
                    f"barricade {tag!r}: pressure unknown (quality {q})",
                )
            )
            continue
        pressure = float(value)
        if pressure >= rating:
            level = BarricadeLevel.AT_RATING
            detail = f"barricade {tag!r} at {pressure:.0f} kPa >= rating {rating:.0f} kPa"
        elif pressure >= high:
            level = BarricadeLevel.HIGH
            detail = f"barricade {tag!r} at {pressure:.0f} kPa >= high alarm {high:.0f} kPa"
        else:
            level = BarricadeLevel.NORMAL
            detail = ""
        if detail and q == "uncertain":
            detail += " (uncertain quality)"
        out.append(BarricadeCondition(tag, level, pressure, rating, high, q, detail))
    return tuple(out)


def barricade_pause(conditions: Sequence[BarricadeCondition]) -> BarricadeCondition | None:
    """The barricade to name in a pause: the one at rating with the highest pressure
    relative to its rating; None when none is at its rating."""
    at_rating = [c for c in conditions if c.pause and c.pressure_kpa is not None]
    if not at_rating:
        return None
    return max(at_rating, key=lambda c: (c.pressure_kpa or 0.0) / c.rating_kpa)
