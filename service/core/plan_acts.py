"""An engineer's acts on a stope's fill plan, pure: release a curing stage, abandon the
stage that cannot be poured, close the stope, adopt a new version of the plan.

Each takes the plan's progress and returns the new one with a line in its history, or
raises a Conflict that says what to do instead. A release on evidence checks the hold
here; the strength and barricade conditions are judged by
:mod:`service.core.release_conditions` and the running part refuses a release without
them unless the engineer gives a reason, which this module records with the stage. An
abandoned stage ends where the fill is (its top is the volume placed then) and the
next stage becomes ready; a stope is closed when filled, or earlier with a reason.
Times are plant time, as in :mod:`service.core.plans`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

from service.core.fill_plan import FillPlan, Stage, aware, reached, text
from service.core.plans import (
    FINISHED_STAGE_STATES,
    PlanLogEntry,
    PlanLogKind,
    PlanProgress,
    StageAction,
    StageProgress,
    StageState,
    StopeState,
    check_progress,
    closed_conflict,
    hours_text,
    log_entry,
    next_stage_state,
    set_stage,
    stope_state,
)
from service.errors import Conflict, InvalidInput

REASON_MAX_CHARS = 500


def _reason(reason: str | None, *, required: bool) -> str | None:
    if reason is None:
        if required:
            raise InvalidInput("reason", "a reason is required")
        return None
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("reason", "a reason is a non-empty text")
    if len(reason) > REASON_MAX_CHARS:
        raise InvalidInput("reason", f"a reason is at most {REASON_MAX_CHARS} characters")
    return reason.strip()


def release(
    progress: PlanProgress,
    plan: FillPlan,
    by: str,
    now: datetime,
    *,
    reason: str | None = None,
) -> PlanProgress:
    """An engineer releases the curing stage: the next stage becomes ready (releasing
    the last declares the stope filled).

    Without a ``reason`` only after the hold has elapsed: before, a Conflict (code
    ``hold_not_elapsed``) saying how long is left (``remaining_s``) and what to do. With
    a reason (an engineer's release before the plan's conditions are met) the release
    goes ahead and the reason is kept with the stage and in the history. Conflict for a
    stage that is not curing, saying what to do instead.
    """
    check_progress(progress, plan)
    aware("now", now)
    text("by", by)
    why = _reason(reason, required=False)
    if progress.closed_at is not None:
        raise closed_conflict()
    index = progress.current
    stage = progress.stages[index]
    name = plan.stages[index].name
    if why is None and stage.state is StageState.CURING and stage.hold_ends_at is not None:
        remaining = (stage.hold_ends_at - now).total_seconds()
        if remaining > 0.0:
            raise Conflict(
                f"stage {name!r} cures until {stage.hold_ends_at.isoformat()} (plant time): "
                f"{hours_text(remaining)} left before it can be released; wait, or release "
                'it now with a reason ({"reason": ...}), which the audit log keeps',
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
        reason=why,
    )
    out = _hand_on(set_stage(progress, index, released), index, StageAction.RELEASE, now)
    detail = name if why is None else f"{name}; released before its conditions: {why}"
    return log_entry(out, PlanLogEntry(PlanLogKind.RELEASED, index, now, by, detail))


def abandon_stage(
    progress: PlanProgress, plan: FillPlan, by: str, now: datetime, *, reason: str
) -> PlanProgress:
    """An engineer abandons the current stage (ready or filling) with a reason: it ends
    where the fill is (its top is the volume placed now) and the next stage becomes
    ready; abandoning the last stage leaves the stope filled (close it next). The
    running part refuses while the stage has an open pour (stop it first)."""
    check_progress(progress, plan)
    aware("now", now)
    text("by", by)
    why = _reason(reason, required=True)
    if progress.closed_at is not None:
        raise closed_conflict()
    index = progress.current
    stage = progress.stages[index]
    name = plan.stages[index].name
    state = next_stage_state(stage.state, StageAction.ABANDON)
    ended = replace(
        stage,
        state=state,
        top_reached_at=now,
        top_volume_m3=progress.placed_m3,
        reason=why,
    )
    out = _hand_on(set_stage(progress, index, ended), index, StageAction.FOLLOW, now)
    detail = f"{name} at {progress.placed_m3:.3f} m3 ({progress.height_m:.3f} m): {why}"
    return log_entry(out, PlanLogEntry(PlanLogKind.ABANDONED, index, now, by, detail))


def close(
    progress: PlanProgress, plan: FillPlan, by: str, now: datetime, *, reason: str | None = None
) -> PlanProgress:
    """Close the stope (its record is complete). A filled stope closes as it is; one
    still planned, filling or curing only with a reason (an engineer ends it early:
    the running part refuses while it has an open pour). Conflict, saying what to do,
    otherwise."""
    check_progress(progress, plan)
    aware("now", now)
    text("by", by)
    why = _reason(reason, required=False)
    state = stope_state(progress)
    if state is StopeState.CLOSED:
        raise closed_conflict()
    if state is not StopeState.FILLED and why is None:
        stage = progress.current_stage
        raise Conflict(
            f"a {state.value} stope closes only with a reason (its stage "
            f"{plan.stages[progress.current].name!r} is {stage.state.value}): an engineer "
            'closes it early with {"reason": ...}, which the audit log keeps; or fill '
            "its stages to the end and release the last one, then close it",
            code="stope_state_conflict",
            state=state.value,
        )
    out = replace(progress, closed_at=now, closed_by=by, closed_reason=why, updated_at=now)
    detail = "" if why is None else f"closed while {state.value}: {why}"
    return log_entry(out, PlanLogEntry(PlanLogKind.CLOSED, progress.current, now, by, detail))


_STARTED = frozenset(
    {
        StageState.FILLING,
        StageState.CURING,
        StageState.RELEASED,
        StageState.DONE,
        StageState.ABANDONED,
    }
)


def _unextended(stage: Stage) -> Stage:
    """A stage without its extent (where its top is)."""
    return replace(stage, top_height_m=1.0, top_volume_m3=None, stage_volume_m3=None)


def adopt_revision(
    progress: PlanProgress, plan: FillPlan, revised: FillPlan, by: str, now: datetime
) -> PlanProgress:
    """The progress carried over to a new version of the plan.

    Allowed: any change to stages not yet started; for the started current stage, a
    new top (while filling, above the fill already placed), rise rate or hold (a curing
    stage's hold end moves with it). Refused (Conflict ``plan_revision_conflict``,
    saying what to do instead): changing a finished stage, the recipe of a started
    stage, or removing the current stage. Geometry may change (a new survey): the fill
    height is recomputed. Adding stages after a filled stope (its last stage released
    or abandoned) reopens it (the next stage becomes ready).
    """
    check_progress(progress, plan)
    aware("now", now)
    text("by", by)
    if progress.closed_at is not None:
        raise closed_conflict()
    if revised.version <= plan.version:
        raise InvalidInput(
            "version", f"a revision needs a version above {plan.version}, got {revised.version}"
        )
    index = progress.current

    def refuse(detail: str) -> Conflict:
        return Conflict(
            detail, code="plan_revision_conflict", state=progress.stages[index].state.value
        )

    keep = "; a new version keeps it as it is and changes the stages after it"
    if len(revised.stages) <= index:
        raise refuse(
            f"the revision drops stage {index} ({plan.stages[index].name!r}), in use{keep}"
        )
    old_tops = plan.top_heights_m
    new_tops = revised.top_heights_m
    new_volumes = revised.top_volumes_m3
    for i in range(index + 1):
        if progress.stages[i].state is not StageState.ABANDONED:
            continue
        # An abandoned stage ended where the fill was: its top may come down to there
        # (so that a stage in its place can follow), nothing else of it changes.
        ended = progress.stages[i].top_volume_m3 or 0.0
        if _unextended(revised.stages[i]) != _unextended(plan.stages[i]):
            raise refuse(f"stage {i} ({plan.stages[i].name!r}) was abandoned: it cannot change")
        if new_volumes[i] < ended - 1e-9 * max(1.0, ended):
            raise refuse(
                f"stage {i} ({plan.stages[i].name!r}) was abandoned at {ended:.3f} m3: its top "
                "cannot go below the fill it left"
            )
    for i in range(index):
        if progress.stages[i].state is StageState.ABANDONED:
            continue
        same_top = math.isclose(old_tops[i], new_tops[i], rel_tol=1e-9, abs_tol=1e-9)
        if revised.stages[i] != plan.stages[i] or not same_top:
            raise refuse(f"stage {i} ({plan.stages[i].name!r}) is finished and cannot change{keep}")
    current = progress.stages[index]
    old, new = plan.stages[index], revised.stages[index]
    if current.state is StageState.ABANDONED:
        pass  # checked above
    elif current.state in _STARTED:
        if new.recipe_id != old.recipe_id or new.name != old.name:
            raise refuse(
                f"stage {index} ({old.name!r}) has started: its recipe cannot change; "
                "abandon it with a reason (POST /api/v1/stopes/{id}/abandon), then give the "
                "stages after it another recipe in a new version"
            )
        top_changed = not math.isclose(old_tops[index], new_tops[index], rel_tol=1e-9)
        if current.state is not StageState.FILLING and top_changed:
            raise refuse(f"stage {index} ({old.name!r}) reached its top: it cannot change{keep}")
        if current.state is StageState.FILLING and reached(
            progress.placed_m3, revised.top_volumes_m3[index]
        ):
            raise refuse(
                f"the new top of stage {index} ({old.name!r}) is below the fill already "
                "placed: give a top above it, or abandon the stage where it is with a reason"
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
            out = set_stage(out, index + 1, replace(following, state=StageState.WAITING_RELEASE))
        elif current.state in FINISHED_STAGE_STATES:  # a filled stope gets another stage
            out = set_stage(out, index + 1, replace(following, state=StageState.READY))
            out = replace(out, current=index + 1)
    detail = f"plan version {plan.version} -> {revised.version}"
    return log_entry(out, PlanLogEntry(PlanLogKind.REVISED, out.current, now, by, detail))


__all__ = ["REASON_MAX_CHARS", "abandon_stage", "adopt_revision", "close", "release"]


def _hand_on(
    progress: PlanProgress, index: int, action: StageAction, now: datetime
) -> PlanProgress:
    """The stage after ``index`` (if any) takes ``action`` and becomes the current one."""
    if index + 1 < len(progress.stages):
        following = progress.stages[index + 1]
        progress = set_stage(
            progress,
            index + 1,
            replace(following, state=next_stage_state(following.state, action)),
        )
        progress = replace(progress, current=index + 1)
    return replace(progress, updated_at=now)
