"""What the supervisor knows of the stope a pour fills, and the port through which the
stope's fill plan follows the pour (service.operations.stopes is its one adapter).

The supervisor keeps one job: run the control law against the PLC for the active pour.
The plan does not live in it: the supervisor asks the port for the pour's context when
it activates a pour, tells it when the pour starts and how much it has placed, and
carries out what the plan answers (stop at a stage top, hand over to the next stage's
recipe without stopping).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from service.core.plans import PlanEvent
from service.core.pour_machine import PourContext

__all__ = ["PlantClock", "PourContext", "StagePort"]
from service.store.records import PourRecord


class StagePort(Protocol):
    async def context_of(self, record: PourRecord) -> PourContext | None:
        """The context of a pour (None when it fills no planned stope)."""
        ...

    async def started(self, record: PourRecord) -> None:
        """The pour started: its stage starts filling."""
        ...

    async def placed(
        self, record: PourRecord, context: PourContext, poured_m3: float
    ) -> Sequence[PlanEvent]:
        """The pour has placed ``poured_m3`` so far: what the plan makes of it."""
        ...

    async def next_pour(self, record: PourRecord, event: PlanEvent) -> PourRecord:
        """A continuous plan's next stage takes over: its pour, created running."""
        ...


class PlantClock:
    """Plant time: the wall clock, run ``scale`` times faster from the start when the
    plant is the built-in simulator (holds, settle and travel times are plant times).
    ``offset`` moves it ahead (a simulated plant's cure hold, in a demo or a test)."""

    def __init__(
        self,
        scale: float = 1.0,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scale = scale
        self._monotonic = monotonic
        self._anchor_wall = wall()
        self._anchor_mono = monotonic()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        elapsed = (self._monotonic() - self._anchor_mono) * self.scale
        return self._anchor_wall + timedelta(seconds=elapsed) + self.offset
