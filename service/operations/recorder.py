"""The history recorder: samples the plant snapshot (memory only, no PLC I/O) about
once a second, keeps minute aggregates, and writes both to the store in batches.

While the store is down the rows wait in memory (bounded; the oldest are dropped
first, counted and logged once) and go out when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from service.errors import StoreUnavailable
from service.operations.supervisor import Supervisor
from service.plant.port import PlantLink, Quality
from service.settings import HistorySettings
from service.store.history import HISTORY_TAGS, HistoryStore, MinuteAccumulator, Sample

log = logging.getLogger(__name__)

_PRUNE_EVERY_S = 3600.0
_DAY_MS = 86_400_000


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def sample_of(link: PlantLink, supervisor: Supervisor) -> Sample:
    """One history row's values: good measurements, written setpoints, measured and
    target Cw/Bw of the active pour (None where unknown or not good)."""
    snap = link.snapshot()
    out: dict[str, float | None] = dict.fromkeys(HISTORY_TAGS)
    for tag, m in snap.measurements.items():
        if tag in out and m.quality is Quality.GOOD:
            out[tag] = _number(m.value)
    for tag, sp in snap.setpoints.items():
        if tag in out:
            out[tag] = _number(sp.value)
    output = supervisor.last_output()
    pour = supervisor.active_pour
    if pour is not None and output is not None:
        if output.measured_solids_fraction is not None:
            out["solids_pct"] = 100.0 * output.measured_solids_fraction
        if output.measured_binder_ratio is not None:
            out["binder_pct"] = 100.0 * output.measured_binder_ratio
        out["solids_pct_target"] = 100.0 * pour.recipe.solids_fraction
        out["binder_pct_target"] = 100.0 * pour.recipe.binder_ratio
    balance = supervisor.balance
    if balance is not None:
        out["mass_balance_residual_t_h"] = balance.residual_mass_t_h()
        out["instrument_disagreement"] = balance.statistic_ratio()
    if pour is not None and pour.context is not None:
        ctx = pour.context
        placed = ctx.placed_before_m3 + pour.totals.poured_m3
        geometry = ctx.geometry
        out["fill_height_m"] = (
            placed / ctx.plan_area_m2 if geometry is None else geometry.fill_height_m(placed)
        )
    return out


class HistoryRecorder:
    def __init__(
        self,
        *,
        store: HistoryStore,
        sample: Callable[[], Sample],
        settings: HistorySettings,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._sample = sample
        self._settings = settings
        self._wall_ms = wall_ms
        self._active = active  # a standby instance leaves the history to the writer
        self._raw: deque[dict[str, Any]] = deque()
        self._minutes: deque[dict[str, Any]] = deque()
        self._minute: MinuteAccumulator | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_flush = 0.0
        self._last_prune = -_PRUNE_EVERY_S
        self._store_down = False
        self.dropped_rows = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._minute is not None and self._minute.samples:
            self._minutes.append(self._minute.row())
            self._minute = None
        try:
            await self.flush()
        except StoreUnavailable as err:
            log.error("history: %d rows not written at stop: %s", len(self._raw), err)

    def record(self) -> None:
        """Take one sample now (the loop calls it; tests may too)."""
        now_ms = self._wall_ms()
        sample = self._sample()
        minute_ms = now_ms - now_ms % 60_000
        if self._minute is not None and self._minute.minute_ms != minute_ms:
            self._minutes.append(self._minute.row())
            self._minute = None
        if self._minute is None:
            self._minute = MinuteAccumulator(minute_ms)
        self._minute.add(sample)
        if self._raw and self._raw[-1]["ts_ms"] >= now_ms:
            now_ms = self._raw[-1]["ts_ms"] + 1  # a stepped-back clock must not collide
        self._raw.append({"ts_ms": now_ms, **sample})
        overflow = len(self._raw) - self._settings.buffer_limit_rows
        if overflow > 0:
            for _ in range(overflow):
                self._raw.popleft()
            if self.dropped_rows == 0:
                log.error("history buffer full while the store is down: dropping oldest rows")
            self.dropped_rows += overflow

    async def flush(self) -> None:
        raw, minutes = list(self._raw), list(self._minutes)
        if not raw and not minutes:
            return
        await self._store.write(raw, minutes)
        # Only what was written leaves the buffers (record() may have added meanwhile).
        for _ in raw:
            self._raw.popleft()
        for _ in minutes:
            self._minutes.popleft()

    async def _run(self) -> None:
        interval = self._settings.sample_interval_s
        next_at = time.monotonic()
        while True:
            next_at += interval
            try:
                if self._active():
                    self.record()
                now = time.monotonic()
                if now - self._last_flush >= self._settings.flush_interval_s:
                    self._last_flush = now
                    await self.flush()
                    if self._store_down:
                        log.warning("history store is back; buffered rows written")
                        self._store_down = False
                if now - self._last_prune >= _PRUNE_EVERY_S:
                    self._last_prune = now
                    wall = self._wall_ms()
                    await self._store.prune(
                        raw_before_ms=wall - int(self._settings.raw_retention_days * _DAY_MS),
                        minute_before_ms=wall - int(self._settings.minute_retention_days * _DAY_MS),
                    )
            except StoreUnavailable as err:
                if not self._store_down:
                    log.warning("history store unavailable, buffering: %s", err.detail)
                    self._store_down = True
            except Exception:  # a loop boundary: record it, keep recording
                log.exception("history recorder cycle failed")
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if next_at < time.monotonic() - interval:
                next_at = time.monotonic()
