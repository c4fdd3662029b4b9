"""Audit entries of acts whose record is kept apart from the audit log (a stage's hold
released, a stope closed: the plan's progress row is written by compare-and-set on its
own). The entry is written at once, after the act; when the store cannot take it, it is
kept in memory and written, in order, as soon as the store answers again, so a short
store outage delays it and never loses it (the act itself was stored a moment before,
naming the person, in its own record).

Every instance keeps its own trail (a standby serves engineers' acts too); the pour
commands and alarm acknowledgements of the writer go through the supervisor's queue
instead (:mod:`service.operations.pour_records`), in order with its setpoint writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from service.errors import StoreUnavailable
from service.store.repository import Store

log = logging.getLogger(__name__)

RETRY_S = 1.0


class AuditTrail:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = asyncio.Lock()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._down = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def record(self, entry: dict[str, Any]) -> None:
        """Write ``entry`` (the arguments of :meth:`Store.append_audit`) after those
        still waiting; never raises for a store outage (the entry waits)."""
        self._pending.append(entry)
        await self.flush()
        if self._pending:
            self._wanted.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                try:
                    await self._store.append_audit(**self._pending[0])
                except StoreUnavailable as err:
                    if not self._down:
                        log.warning(
                            "audit entries kept in memory until the store answers: %s",
                            err.detail,
                        )
                        self._down = True
                    return
                self._pending.popleft()
            if self._down:
                log.warning("store reachable again: the audit entries kept are written")
                self._down = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def stop(self, drain_s: float = 5.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_s):
                await self.flush()
        if self._pending:
            log.error("stopping with %d audit entries not stored", len(self._pending))

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(RETRY_S)
            try:
                await self.flush()
            except Exception:  # a loop boundary: record it, keep trying
                log.exception("audit trail could not be written")
            if not self._pending:
                self._wanted.clear()
