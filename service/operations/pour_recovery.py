"""A pour found running when the supervisor starts (a crash, or a writer that died):
paused in the store, and the paste placed since its last checkpoint settled.

With the PLC's totaliser in the tag map the machine takes the volume from it once the
link reads it (:mod:`service.core.pour_machine.recovery`); without one it is read here
from the paste flow the history holds after the checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from service.core.pour_machine import PourRun
from service.core.pour_machine.recovery import TOTALISER_TAG
from service.core.pour_states import PourState
from service.errors import BackfillError, StoreUnavailable
from service.store.history import HistoryStore
from service.store.records import PourRecord
from service.store.repository import Store

log = logging.getLogger(__name__)

# A gap longer than this between history rows is not integrated across (the recorder
# was down too): the history's volume is a lower bound.
_MAX_ROW_GAP_S = 5.0


async def pause_found_running(store: Store, reason: str, at: datetime) -> list[PourRecord]:
    """Every pour found running, paused with an interruption naming ``reason``."""
    paused = []
    for record in await store.list_pours(state=PourState.RUNNING.value):
        paused.append(
            await store.update_pour(
                record.id,
                expect_state=PourState.RUNNING.value,
                state=PourState.PAUSED.value,
                interruptions=[
                    *record.interruptions,
                    {"reason": reason, "started_at": at.isoformat()},
                ],
            )
        )
        log.warning("pour %s was running at restart: paused (%s)", record.id, reason)
    return paused


@dataclass(frozen=True)
class Found:
    """The pour to supervise at start; ``run.unrecorded`` when it was found running,
    and then ``history`` (volume, what it rests on) when the plant has no totaliser."""

    record: PourRecord
    run: PourRun
    history: tuple[float | None, str] | None


async def found_at_start(
    store: Store,
    reason: str,
    at: datetime,
    run_of: Callable[[PourRecord], Awaitable[PourRun]],
    measurement_tags: frozenset[str],
) -> Found | None:
    """Pause every pour found running, and take the first that can be supervised (a
    crashed one first): a pour whose recipe cannot be run (stored before today's rules)
    is left paused, and can be stopped, but never supervised."""
    crashed = await pause_found_running(store, reason, at)
    for record in [*crashed, *await store.list_pours(state=PourState.PAUSED.value)]:
        try:
            run = await run_of(record)
        except BackfillError as err:
            log.error("pour %s cannot be supervised (%s): %s", record.id, err.code, err.detail)
            continue
        if record not in crashed:
            return Found(record, run, None)
        history = None
        if TOTALISER_TAG not in measurement_tags:
            history = await history_volume_m3(store, record.updated_at, at)
        return Found(record, replace(run, unrecorded=True), history)
    return None


async def history_volume_m3(
    store: Store, since: datetime, until: datetime
) -> tuple[float | None, str]:
    """The paste volume the history's paste flow integrates to from ``since`` (the
    record's last checkpoint) to ``until``, and what it rests on; None when no row
    follows the checkpoint."""
    history = HistoryStore(store.engine)
    from_ms, to_ms = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
    volume, rows, last_ms = 0.0, 0, None
    prev: tuple[int, float] | None = None
    after: int | None = None
    try:
        while True:
            page = await history.rows(
                ["paste_flow_pv"], from_ms, to_ms, minute=False, after_ms=after
            )
            for row in page:
                ts, flow = int(row["ts_ms"]), row["paste_flow_pv"]
                if prev is not None:
                    gap_s = (ts - prev[0]) / 1000.0
                    if gap_s <= _MAX_ROW_GAP_S:
                        volume += max(prev[1], 0.0) * gap_s / 3600.0
                prev = (ts, float(flow)) if flow is not None else None
                rows, last_ms = rows + 1, ts
            if len(page) < 2000:
                break
            after = int(page[-1]["ts_ms"])
    except StoreUnavailable as err:
        return None, f"the history could not be read: {err.detail}"
    if rows == 0 or last_ms is None:
        return None, "no PLC totaliser in the tag map and no history row after the checkpoint"
    last = datetime.fromtimestamp(last_ms / 1000.0, tz=since.tzinfo)
    return volume, (
        f"{rows} history rows to {last.isoformat()}: a lower bound, the plant ran on until "
        "its watchdog stopped it"
    )
