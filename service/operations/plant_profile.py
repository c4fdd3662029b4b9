"""The plant profile as the service knows it: what the site states (``BACKFILL_PLANT__*``)
beside what its own history shows over a recent window (minute rows while the plant
ran: the feed's solids from its density, the paste Cw, the pump pressure), refreshed
now and then, never on a request's path once read.

The pure part, and the checks that use it, are :mod:`service.core.plant_profile`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from service.core import plant_profile as pp
from service.core import plant_spread as ps
from service.errors import StoreUnavailable
from service.settings import DesignSettings, PlantSettings
from service.store.history import HistoryStore
from service.store.repository import Store

log = logging.getLogger(__name__)

PLANT_RUNNING = 2.0  # plant_mode (docs/INTEGRATION.md "PLC interface")
_REFRESH_S = 600.0
_PAGE = 2000
_SPREAD_POURS = 500  # the newest completed pours the spread is pooled from


# The normal distribution's 10th / 90th percentile: z = 1.2816.
_Z10 = 1.2815515655446004


def simulated_plant(settings: PlantSettings, params: Any) -> PlantSettings:
    """The built-in simulator is the plant: what the site leaves unstated is what its
    profile makes, the tailings Gs its recipes assume and the feed's solids from the 10th
    to the 90th percentile of its density's own variation (a mean-reverting walk,
    ``d x = -x/T dt + s dW``, whose stationary sd is ``s sqrt(T/2)``: Uhlenbeck, G.E. &
    Ornstein, L.S. (1930) On the theory of the Brownian motion, Phys. Rev. 36:823-841),
    within the band the profile keeps it in."""
    gs = settings.tailings_sg or float(params.recipe_tailings_gs)
    update: dict[str, Any] = {"tailings_sg": gs}
    if settings.feed_solids_min_pct is None:
        sd = float(params.feed_density_walk_kg_m3_sqrt_s) * math.sqrt(
            float(params.feed_density_reversion_s) / 2.0
        )
        nominal = float(params.feed_density_kg_m3)
        low = max(nominal - _Z10 * sd, float(params.feed_density_min_kg_m3))
        high = min(nominal + _Z10 * sd, float(params.feed_density_max_kg_m3))
        update["feed_solids_min_pct"] = 100.0 * pp.solids_of_density(low, gs)
        update["feed_solids_max_pct"] = 100.0 * pp.solids_of_density(max(high, low + 1.0), gs)
    return settings.model_copy(update=update)


def stated(settings: PlantSettings, feed_basis: pp.Basis = "settings") -> pp.PlantProfile:
    """The profile as the site states it (nothing seen yet); ``feed_basis`` says who
    stated the feed (the built-in simulator's profile, when it is the plant)."""
    feed = None
    if settings.feed_solids_min_pct is not None and settings.feed_solids_max_pct is not None:
        feed = pp.FeedRange(settings.feed_solids_min_pct, settings.feed_solids_max_pct, feed_basis)
    window = None
    if settings.cw_min_pct is not None and settings.cw_max_pct is not None:
        window = pp.Window(settings.cw_min_pct, settings.cw_max_pct, "settings")
    return pp.PlantProfile(
        tailings_sg=settings.tailings_sg,
        feed_stated=feed,
        cw_window_stated=window,
        pump_pressure_max_kpa=settings.pump_pressure_max_kpa,
        min_history_hours=settings.min_history_hours,
    )


def learned(
    rows: list[dict[str, Any]],
    tailings_sg: float | None,
    period: tuple[datetime, datetime],
) -> tuple[pp.FeedRange | None, pp.Window | None, float | None]:
    """What minute rows of the history show while the plant ran: the feed's solids
    (10th, 50th, 90th percentiles, from the feed density at ``tailings_sg``), the paste
    Cw it held (5th and 95th) and the pump pressure's 99th percentile."""
    running = [r for r in rows if (r.get("plant_mode_avg") or 0.0) >= PLANT_RUNNING - 0.01]
    hours = len(running) / 60.0
    feed = cw = None
    if tailings_sg is not None:
        solids = [
            100.0 * pp.solids_of_density(float(r["tailings_density_pv_avg"]), tailings_sg)
            for r in running
            if r.get("tailings_density_pv_avg") is not None
            and float(r["tailings_density_pv_avg"]) > 1000.0
        ]
        if solids:
            feed = pp.FeedRange(
                pp.percentile(solids, 0.10),
                pp.percentile(solids, 0.90),
                "history",
                solids_median_pct=pp.percentile(solids, 0.5),
                period_from=period[0],
                period_to=period[1],
                hours=len(solids) / 60.0,
            )
    paste = [float(r["solids_pct_avg"]) for r in running if r.get("solids_pct_avg") is not None]
    if paste:
        cw = pp.Window(
            pp.percentile(paste, 0.05),
            pp.percentile(paste, 0.95),
            "history",
            period_from=period[0],
            period_to=period[1],
            hours=hours,
        )
    pressures = [
        float(r["pump_pressure_pv_max"])
        for r in running
        if r.get("pump_pressure_pv_max") is not None
    ]
    return feed, cw, (pp.percentile(pressures, 0.99) if pressures else None)


class PlantProfiles:
    """The profile the checks use, learned from the history at most every 10 minutes."""

    def __init__(
        self,
        settings: PlantSettings,
        history: Callable[[], HistoryStore],
        *,
        feed_basis: pp.Basis = "settings",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._feed_basis: pp.Basis = feed_basis
        self._history = history
        self._clock = clock
        self._profile = stated(settings, feed_basis)
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    @property
    def current(self) -> pp.PlantProfile:
        """As last read (no I/O)."""
        return self._profile

    async def profile(self) -> pp.PlantProfile:
        """The profile, read again from the history when it is older than 10 minutes."""
        if time.monotonic() - self._read_at < _REFRESH_S:
            return self._profile
        async with self._lock:
            if time.monotonic() - self._read_at >= _REFRESH_S:
                await self._refresh()
        return self._profile

    async def _refresh(self) -> None:
        base = stated(self._settings, self._feed_basis)
        to = self._clock()
        since = to - timedelta(days=self._settings.history_days)
        rows: list[dict[str, Any]] = []
        after: int | None = None
        tags = ["plant_mode", "tailings_density_pv", "solids_pct", "pump_pressure_pv"]
        try:
            history = self._history()
            while True:
                page = await history.rows(
                    tags,
                    int(since.timestamp() * 1000),
                    int(to.timestamp() * 1000),
                    minute=True,
                    after_ms=after,
                    limit=_PAGE,
                )
                rows.extend(page)
                if len(page) < _PAGE:
                    break
                after = int(page[-1]["ts_ms"])
        except (StoreUnavailable, RuntimeError) as err:
            log.warning(
                "the plant profile keeps its last reading: the history is unreadable (%s)", err
            )
            return
        feed, cw, pressure = learned(rows, base.tailings_sg, (since, to))
        self._profile = pp.PlantProfile(
            tailings_sg=base.tailings_sg,
            feed_stated=base.feed_stated,
            feed_seen=feed,
            cw_window_stated=base.cw_window_stated,
            cw_seen=cw,
            pump_pressure_max_kpa=base.pump_pressure_max_kpa,
            pump_pressure_seen_p99_kpa=pressure,
            min_history_hours=base.min_history_hours,
        )
        self._read_at = time.monotonic()


async def plant_spread(store: Store, design: DesignSettings, now: datetime) -> ps.PlantSpread:
    """The plant's own Cw and Bw spread, pooled over the pours it completed in the last
    ``plant_spread_days`` (their records' paste estimate), or the site's stated default
    until ``plant_spread_min_pours`` carry it."""
    default = ps.PlantSpread(
        design.default_solids_sd_pct / 100.0, design.default_binder_sd_rel_pct / 100.0, "default"
    )
    since = now - timedelta(days=design.plant_spread_days)
    try:
        pours = await store.list_pours(state="completed", limit=_SPREAD_POURS)
    except StoreUnavailable as err:
        log.warning("the plant's spread takes its default: the pours are unreadable (%s)", err)
        return default
    recent = [p.totals for p in pours if p.ended_at is not None and p.ended_at >= since]
    return ps.from_pours(recent, default=default, min_pours=design.plant_spread_min_pours)
