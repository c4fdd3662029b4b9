"""The pour state machine (docs/INTEGRATION.md "Pours"): which action moves a pour from which
state to which. Pure: the application layer applies it with a compare-and-set."""

from __future__ import annotations

from enum import StrEnum

from service.errors import Conflict


class PourState(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    ABORTED = "aborted"


class PourAction(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    COMPLETE = "complete"  # the service itself, at the target volume


FINAL_STATES = frozenset({PourState.COMPLETED, PourState.STOPPED, PourState.ABORTED})
ACTIVE_STATES = frozenset({PourState.RUNNING, PourState.PAUSED})

_TRANSITIONS: dict[tuple[PourState, PourAction], PourState] = {
    (PourState.PLANNED, PourAction.START): PourState.RUNNING,
    (PourState.RUNNING, PourAction.PAUSE): PourState.PAUSED,
    (PourState.PAUSED, PourAction.RESUME): PourState.RUNNING,
    (PourState.RUNNING, PourAction.STOP): PourState.STOPPED,
    (PourState.PAUSED, PourAction.STOP): PourState.STOPPED,
    # A planned pour that is stopped never placed anything: it is aborted.
    (PourState.PLANNED, PourAction.STOP): PourState.ABORTED,
    (PourState.RUNNING, PourAction.COMPLETE): PourState.COMPLETED,
}


def next_state(current: PourState, action: PourAction) -> PourState:
    """The state ``action`` leads to from ``current``; a Conflict naming both otherwise."""
    try:
        return _TRANSITIONS[(current, action)]
    except KeyError:
        raise Conflict(
            f"a {current.value} pour cannot {action.value}",
            code="pour_state_conflict",
            state=current.value,
        ) from None
