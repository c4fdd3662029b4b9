"""Stope fill plans as they run: the stage state machine and the plan's progress, pure.

The stope and its plan as defined (geometry, stages, requirements) are
:mod:`service.core.fill_plan` (re-exported here); an engineer's acts on a plan (release,
abandon, close, a new version) are :mod:`service.core.plan_acts`.

Every stage of a plan has a state; the current stage is the one filling, curing or
about to start. Transitions (:func:`next_stage_state`; anything else is a Conflict
naming the state and saying what to do instead):

================  ===============  ================  ======================================
state             action           next              when
================  ===============  ================  ======================================
pending           await_release    waiting_release   the stage before reached its top and
                                                     cures (staged plan)
pending           switch           filling           continuous plan: this stage's recipe
                                                     takes over at the stage before's top
pending           follow           ready             the stage before was abandoned
waiting_release   release          ready             an engineer released the stage before
ready             start            filling           the stage's first pour starts
ready, filling    abandon          abandoned         an engineer ends it where the fill is,
                                                     with a reason
filling           reach_top        curing            staged plan, or the last stage: the
                                                     pour stops, the cure hold starts
filling           switch           done              continuous plan: handed over at its top
curing            release          released          the hold elapsed and an engineer
                                                     released it (on evidence, or with a
                                                     reason without it)
================  ===============  ================  ======================================

The first stage starts ``ready``, every later one ``pending``. The last stage also
cures and is released: its hold is the cure before the stope is declared filled.

The stope's state is derived (:func:`stope_state`): ``planned`` (first stage ready,
nothing placed), ``filling``, ``curing`` (the current stage cures), ``filled`` (every
stage released, handed over or abandoned), ``closed`` (closed by an engineer).

Fill height is the stope's volume-height curve at the placed volume
(:meth:`~service.core.fill_plan.StopeGeometry.fill_height_m`). Time is a parameter
(aware datetimes, plant time: holds run on the plant's clock); nothing here reads a
clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from service.core.fill_plan import (
    AREA_M2_MAX,
    LENGTH_M_MAX,
    FillPlan,
    Requirement,
    Stage,
    Stope,
    StopeGeometry,
    aware,
    non_negative,
    reached,
    text,
)
from service.errors import Conflict, InvalidInput

__all__ = [
    "FINISHED_STAGE_STATES",
    "SERVICE",
    "FillPlan",
    "PlanEvent",
    "PlanEventKind",
    "PlanLogEntry",
    "PlanLogKind",
    "PlanProgress",
    "Requirement",
    "Stage",
    "StageAction",
    "StageProgress",
    "StageState",
    "Stope",
    "StopeGeometry",
    "StopeState",
    "SwitchPoint",
    "check_progress",
    "closed_conflict",
    "current_max_rise_rate_m_h",
    "current_recipe_id",
    "hold_remaining_s",
    "hours_text",
    "instead",
    "log_entry",
    "next_stage_state",
    "on_volume",
    "set_stage",
    "start_plan",
    "start_stage",
    "stope_state",
]

SERVICE = "service"
"""``by`` of what the service itself does (a hold starting at a stage top)."""
CLOCK = "plant"
"""The clock of every time of a plan's progress (holds run on the plant's clock)."""


# --- the state machine ------------------------------------------------------------------


class StageState(StrEnum):
    PENDING = "pending"
    WAITING_RELEASE = "waiting_release"
    READY = "ready"
    FILLING = "filling"
    CURING = "curing"
    RELEASED = "released"
    DONE = "done"
    ABANDONED = "abandoned"


class StageAction(StrEnum):
    START = "start"
    REACH_TOP = "reach_top"
    SWITCH = "switch"
    AWAIT_RELEASE = "await_release"
    RELEASE = "release"
    ABANDON = "abandon"
    FOLLOW = "follow"


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
    (StageState.READY, StageAction.ABANDON): StageState.ABANDONED,
    (StageState.FILLING, StageAction.ABANDON): StageState.ABANDONED,
    (StageState.PENDING, StageAction.FOLLOW): StageState.READY,
}

FINISHED_STAGE_STATES = frozenset({StageState.RELEASED, StageState.DONE, StageState.ABANDONED})

_RELEASE = "an engineer releases it (POST /api/v1/stopes/{id}/release)"
_ABANDON = "an engineer abandons it with a reason (POST /api/v1/stopes/{id}/abandon)"
_REVISE = "a new plan version adds stages (POST /api/v1/stopes/{id}/plans)"
# What to do instead, by the state a refused action met (and the action, where it
# matters): a refusal always says it.
_INSTEAD: Mapping[tuple[StageState, StageAction | None], str] = {
    (StageState.PENDING, None): "the stage before must reach its top and be released first",
    (StageState.WAITING_RELEASE, None): (
        "the stage before cures: once its hold has elapsed and its release conditions "
        f"are met, {_RELEASE}"
    ),
    (StageState.READY, StageAction.RELEASE): (
        "it has not been poured: start its pour (POST /api/v1/stopes/{id}/pours), or " + _ABANDON
    ),
    (StageState.READY, None): "start its pour (POST /api/v1/stopes/{id}/pours)",
    (StageState.FILLING, StageAction.RELEASE): (
        "it is filling: its pour stops at its top and its hold starts; to end it where "
        f"it is, {_ABANDON}"
    ),
    (StageState.FILLING, None): f"its pour runs to its top; to end it where it is, {_ABANDON}",
    (StageState.CURING, None): (
        f"it cures: once its hold has elapsed and its release conditions are met, {_RELEASE} "
        "(before, only with a reason)"
    ),
    (StageState.RELEASED, None): f"it is finished; {_REVISE}",
    (StageState.DONE, None): f"it is finished; {_REVISE}",
    (StageState.ABANDONED, None): f"it is finished (abandoned); {_REVISE}",
}


def instead(state: StageState, action: StageAction | None = None) -> str:
    """What to do instead of ``action`` on a stage in ``state``."""
    return _INSTEAD.get((state, action)) or _INSTEAD.get((state, None), "")


def next_stage_state(current: StageState, action: StageAction) -> StageState:
    """The state ``action`` leads to from ``current``; a Conflict naming both, and what
    to do instead, otherwise."""
    try:
        return _TRANSITIONS[(current, action)]
    except KeyError:
        hint = instead(current, action)
        raise Conflict(
            f"a {current.value} stage cannot {action.value.replace('_', ' ')}"
            + (f": {hint}" if hint else ""),
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
    # Why an engineer released it before its conditions were met, or abandoned it.
    reason: str | None = None


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
    ABANDONED = "abandoned"
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
    stope volume placed so far (dumped paste never counts); ``height_m`` its fill
    height, h(placed). Every time is plant time (:data:`CLOCK`).
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
    closed_reason: str | None = None

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
            "clock": CLOCK,
            "plan_version": self.plan_version,
            "current": self.current,
            "placed_m3": self.placed_m3,
            "height_m": self.height_m,
            "updated_at": iso(self.updated_at),
            "closed_at": iso(self.closed_at),
            "closed_by": self.closed_by,
            "closed_reason": self.closed_reason,
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
                    "reason": s.reason,
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
                    reason=s.get("reason"),
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
                closed_reason=data.get("closed_reason"),
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


def check_progress(progress: PlanProgress, plan: FillPlan) -> None:
    if progress.plan_version != plan.version or len(progress.stages) != len(plan.stages):
        raise Conflict(
            f"the progress follows plan version {progress.plan_version}, not version "
            f"{plan.version}: adopt the revision first",
            code="plan_version_conflict",
            state=stope_state(progress).value,
        )


def set_stage(progress: PlanProgress, index: int, stage: StageProgress) -> PlanProgress:
    stages = list(progress.stages)
    stages[index] = stage
    return replace(progress, stages=tuple(stages))


def log_entry(progress: PlanProgress, entry: PlanLogEntry) -> PlanProgress:
    return replace(progress, history=(*progress.history, entry))


def hours_text(seconds: float) -> str:
    return f"{seconds / 3600.0:.2f} h"


def closed_conflict() -> Conflict:
    """The refusal of anything but reading on a closed stope."""
    return Conflict(
        "the stope is closed: its record is final and it takes no more fill; further fill "
        "goes to a new stope (POST /api/v1/stopes)",
        code="stope_state_conflict",
        state="closed",
    )


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
    check_progress(progress, plan)
    return plan.stages[progress.current].recipe_id


def current_max_rise_rate_m_h(progress: PlanProgress, plan: FillPlan) -> float:
    """The rise-rate limit of the current stage, m/h."""
    check_progress(progress, plan)
    return plan.stages[progress.current].max_rise_rate_m_h


def hold_remaining_s(progress: PlanProgress, now: datetime) -> float | None:
    """Seconds left of the current stage's hold (0 when elapsed); None when not curing."""
    stage = progress.current_stage
    if stage.state is not StageState.CURING or stage.hold_ends_at is None:
        return None
    return max(0.0, (stage.hold_ends_at - aware("now", now)).total_seconds())


def start_stage(
    progress: PlanProgress, plan: FillPlan, now: datetime, by: str = SERVICE
) -> PlanProgress:
    """The current stage starts filling (its first pour starts).

    Conflict unless the stage is ``ready`` (a staged plan's next stage is ready only after
    the hold and a release) or the stope is closed.
    """
    check_progress(progress, plan)
    aware("now", now)
    text("by", by)
    if progress.closed_at is not None:
        raise closed_conflict()
    index = progress.current
    stage = progress.stages[index]
    state = next_stage_state(stage.state, StageAction.START)
    started = replace(stage, state=state, started_at=now, start_volume_m3=progress.placed_m3)
    out = set_stage(progress, index, started)
    return log_entry(
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
    is the stope's curve at the placed volume. While the current stage fills, reaching
    its top:

    - staged plan (or the last stage): the stage cures from ``now`` for its hold; event
      ``hold_started`` (``plan_complete`` for the last stage): the pour must stop;
    - continuous plan: the next stage takes over at once; event ``switch_recipe`` and a
      recorded switch point. One reading may pass several tops (each is recorded).
    """
    check_progress(progress, plan)
    aware("now", now)
    reading = non_negative("placed_m3", placed_m3, AREA_M2_MAX * LENGTH_M_MAX)
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
                out = log_entry(out, entry)
            events.append(
                PlanEvent(
                    PlanEventKind.PLACED_OUTSIDE_FILLING, index, now, height, added, detail=detail
                )
            )
        return out, tuple(events)
    tops = plan.top_volumes_m3
    heights = plan.top_heights_m
    last = len(plan.stages) - 1
    while out.stages[index].state is StageState.FILLING and reached(placed, tops[index]):
        stage_def = plan.stages[index]
        stage = out.stages[index]
        if plan.switches_at(index):
            nxt = plan.stages[index + 1]
            out = set_stage(
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
            out = set_stage(
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
        out = set_stage(
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
            out = set_stage(
                out,
                index + 1,
                replace(
                    following, state=next_stage_state(following.state, StageAction.AWAIT_RELEASE)
                ),
            )
        detail = f"{stage_def.name!r} at {heights[index]:.3f} m; hold until {ends.isoformat()}"
        out = log_entry(out, PlanLogEntry(PlanLogKind.HOLD_STARTED, index, now, SERVICE, detail))
        kind = PlanEventKind.HOLD_STARTED if index < last else PlanEventKind.PLAN_COMPLETE
        events.append(PlanEvent(kind, index, now, height, placed, detail=detail))
    return out, tuple(events)
