"""The supervisor's records on their way to the store: the active pour's record and the
audit entry of every setpoint write, queued in memory and written in order by one task.

The control cycle never waits on the database: while the store is down the newest
record of each pour and every audit entry wait in memory, and go out as soon as it
answers (a store outage delays them, never loses them, and never stalls control).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.core.pour_machine import PourRun, Write
from service.core.pour_states import FINAL_STATES
from service.errors import StoreUnavailable
from service.store.records import PourRecord
from service.store.repository import Store

log = logging.getLogger(__name__)


def totals_record(run: PourRun) -> dict[str, Any]:
    """The ``totals`` column of a pour: the summary, the integrator's state, and the
    PLC's totaliser with where the paste went at the same moment (for a crash)."""
    return {
        **run.totals.summary(),
        "integrator": run.totals.to_dict(),
        "plc_totaliser_m3": run.totaliser_m3,
        "to_dump": run.to_dump,
        "solids_verified": run.solids_verified,
        "solids_basis": run.solids_basis,
    }


def record_fields(run: PourRun) -> dict[str, Any]:
    """What the machine owns of a pour's stored record."""
    return {
        "state": run.state.value,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "totals": totals_record(run),
        "interruptions": [dict(i) for i in run.interruptions],
    }


@dataclass
class _Queued:
    run: PourRun
    seq: int


class PourRecords:
    """Queued pour records (the newest of each pour) and audit entries, and the task
    that writes them. ``stored`` holds each supervised pour's record as last stored."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queued: dict[str, _Queued] = {}
        self._seq: dict[str, int] = {}
        self._audit: deque[dict[str, Any]] = deque()
        self._wanted = asyncio.Event()
        self.flush_lock = asyncio.Lock()
        self.store_down = False
        self._task: asyncio.Task[None] | None = None
        self.stored: dict[str, PourRecord] = {}

    # --- queueing -------------------------------------------------------------------------

    def track(self, record: PourRecord) -> None:
        """A pour the supervisor takes on, as stored."""
        self.stored[record.id] = record
        self._seq[record.id] = max(self._seq.get(record.id, 0), record.checkpoint_seq)

    def keep(self, run: PourRun) -> None:
        """Queue the pour's record. It waits for nothing: a write of an older record
        under way keeps its answer only if nothing was queued since (the sequence)."""
        seq = self._seq.get(run.id, 0)
        self._seq[run.id] = seq + 1
        self._queued[run.id] = _Queued(run, seq + 1)
        self._wanted.set()

    def audit(self, entry: dict[str, Any]) -> None:
        """Queue an audit entry, in order."""
        self._audit.append(entry)
        self._wanted.set()

    def audit_write(
        self,
        write: Write,
        old: Mapping[str, Any],
        at: datetime,
        *,
        seq: int | None,
        acknowledged: bool,
        detail: str | None,
    ) -> None:
        """Queue the audit entry of a setpoint write (every attempt, failed ones too)."""
        self.audit(
            {
                "kind": "setpoints",
                "reason": write.reason,
                "role": write.role,
                "person": write.person,
                "new": dict(write.values),
                "old": {k: old[k] for k in write.values if k in old} or None,
                "pour_id": write.pour_id,
                "seq": seq,
                "acknowledged": acknowledged,
                "detail": detail,
                "at": at,
            }
        )

    def queued(self, pour_id: str) -> PourRun | None:
        """A pour's record waiting for the store (newer than what it holds)."""
        item = self._queued.get(pour_id)
        return None if item is None else item.run

    @property
    def pending(self) -> tuple[int, int]:
        """(pour records, audit entries) not stored yet."""
        return len(self._queued), len(self._audit)

    async def drain(self, timeout_s: float) -> None:
        """Write what is queued, for at most ``timeout_s``; say what could not be."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.flush()
        records, entries = self.pending
        if records or entries:
            log.error(
                "stopping with %d pour records and %d audit entries not stored", records, entries
            )

    def forget_pours(self) -> None:
        """Deposed: the pour records are the new writer's now; queued records of ours
        would overwrite newer ones. Audit entries of writes we made stay queued."""
        self._queued.clear()

    # --- the writer -----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pour-store-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        """Writes queued records and audit entries, in order; retries every second
        while the store is down."""
        while True:
            if self.store_down:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._wanted.wait()
            else:
                await self._wanted.wait()
            self._wanted.clear()
            try:
                await self.flush()
            except Exception:  # a loop boundary: record it, keep writing
                log.exception("store writer failed")
                self.store_down = True

    async def flush(self) -> None:
        async with self.flush_lock:
            await self.flush_locked()

    async def flush_locked(self) -> None:
        """Write queued pour records, then audit entries (the caller holds the lock)."""
        for pour_id, item in list(self._queued.items()):
            try:
                stored = await self._store.update_pour(
                    pour_id, **record_fields(item.run), checkpoint_seq=item.seq
                )
            except StoreUnavailable as err:
                self._down(f"pour records kept in memory: {err.detail}")
                return
            if self._queued.get(pour_id) is item:  # nothing newer was queued meanwhile
                del self._queued[pour_id]
                if item.run.state in FINAL_STATES:
                    self.stored.pop(pour_id, None)
                    self._seq.pop(pour_id, None)
                else:
                    self.stored[pour_id] = stored
        while self._audit:
            try:
                await self._store.append_audit(**self._audit[0])
            except StoreUnavailable as err:
                self._down(f"audit entries kept in memory: {err.detail}")
                return
            self._audit.popleft()
        if self.store_down and not self._queued and not self._audit:
            log.warning("store reachable again: buffered records and audit entries written")
            self.store_down = False

    def _down(self, what: str) -> None:
        if not self.store_down:
            log.warning("store unavailable, %s", what)
            self.store_down = True
