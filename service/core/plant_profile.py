"""What the plant can make: its feed, the Cw window it holds, its pump's limit, as the site
states them and as the plant's own history shows them, and whether a mix is makeable.

A paste can only be made by adding water to the feed: the driest paste a feed allows is
its own solids plus the binder, with no water added. Per unit of non-binder dry solids
(tailings, and aggregate where the mix has it: a share ``a`` of them) the feed carries
``w0 (1 - a) + w_a a`` of water and the binder adds ``Bw`` of solids, so (a mass balance
of the saturated paste; e.g. Belem, T. & Benzaazoua, M. (2008) Design and application of
underground mine paste backfill technology, Geotech. Geol. Eng. 26(2):147-174):

    Cw_max = (1 + Bw) / (1 + Bw + w0 (1 - a) + w_a a)

A feed of solids content ``S`` (mass fraction) has ``w0 = 1/S - 1``. The feed's solids
content from its density ``rho`` and the tailings Gs (the slurry relation,
``Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w))``, Wills, B.A. & Finch, J.A. (2016)
Wills' Mineral Processing Technology, 8th ed., Butterworth-Heinemann, ch. 3).

Checks use the site's statement of its feed where it gives one, else what the history
saw (its wet end: the 10th percentile of the feed's solids, a feed that is wetter only a
tenth of the time), and each says which it used. Values only: the running part reads the
history and the settings (``service.operations.plant_profile``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RHO_W_KG_M3 = 1000.0
Basis = Literal["settings", "simulator", "history", "recipe"]


@dataclass(frozen=True)
class FeedRange:
    """The feed's solids content (% of its mass), from ``basis``: the site's statement
    (low and high), or the history's 10th, 50th and 90th percentiles over a period."""

    solids_low_pct: float
    solids_high_pct: float
    basis: Basis
    solids_median_pct: float | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None
    hours: float | None = None  # hours of running plant the percentiles rest on

    def to_dict(self) -> dict[str, Any]:
        return {
            "solids_low_pct": self.solids_low_pct,
            "solids_median_pct": self.solids_median_pct,
            "solids_high_pct": self.solids_high_pct,
            "basis": self.basis,
            "period_from": self.period_from,
            "period_to": self.period_to,
            "hours": self.hours,
        }


@dataclass(frozen=True)
class Window:
    """A range a quantity holds (low, high) and where that comes from."""

    low: float
    high: float
    basis: Basis
    period_from: datetime | None = None
    period_to: datetime | None = None
    hours: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "basis": self.basis,
            "period_from": self.period_from,
            "period_to": self.period_to,
            "hours": self.hours,
        }


@dataclass(frozen=True)
class PlantProfile:
    """The plant as stated (``*_stated``, from the settings) and as seen (``*_seen``,
    from the history's recent window, None until there is enough of it)."""

    tailings_sg: float | None = None
    feed_stated: FeedRange | None = None
    feed_seen: FeedRange | None = None
    cw_window_stated: Window | None = None
    cw_seen: Window | None = None
    pump_pressure_max_kpa: float | None = None
    pump_pressure_seen_p99_kpa: float | None = None
    min_history_hours: float = 4.0

    def feed(self) -> FeedRange | None:
        """The feed the checks use: the site's statement, else enough history."""
        if self.feed_stated is not None:
            return self.feed_stated
        seen = self.feed_seen
        if seen is not None and (seen.hours or 0.0) >= self.min_history_hours:
            return seen
        return None

    def cw_window(self) -> Window | None:
        """The Cw window the checks use: stated only (a window the plant held is not a
        limit of what it can hold; it is shown beside it)."""
        return self.cw_window_stated


def moisture_of_solids(solids_pct: float) -> float:
    """``w0 = 1/S - 1``: water per dry solids of a feed of ``solids_pct`` % solids."""
    s = solids_pct / 100.0
    return 1.0 / s - 1.0


def solids_of_density(density_kg_m3: float, solids_sg: float) -> float:
    """Solids content (fraction) of a slurry from its density (see the module text)."""
    rho_s = solids_sg * RHO_W_KG_M3
    return rho_s * (density_kg_m3 - RHO_W_KG_M3) / (density_kg_m3 * (rho_s - RHO_W_KG_M3))


def driest_cw(
    binder_ratio: float,
    moisture_ratio: float,
    *,
    aggregate_share: float = 0.0,
    aggregate_moisture_ratio: float = 0.0,
) -> float:
    """The highest Cw (fraction) a feed of moisture ``w0`` makes at Bw ``binder_ratio``
    with no water added (see the module text)."""
    water = moisture_ratio * (1.0 - aggregate_share) + aggregate_moisture_ratio * aggregate_share
    return (1.0 + binder_ratio) / (1.0 + binder_ratio + water)


@dataclass(frozen=True)
class Limit:
    """One limit a mix was checked against: what it is, its value (Cw %, or kPa), where
    it comes from, and whether the mix is within it."""

    name: str
    field: str
    value: float
    basis: Basis
    within: bool
    detail: str


@dataclass(frozen=True)
class Makeability:
    """Whether the plant can make a mix: every limit checked (with its basis), and the
    ones it breaks. ``best_solids_pct``: the highest Cw the plant reaches at the mix's
    Bw within every limit checked (None when nothing bounds it)."""

    limits: tuple[Limit, ...] = ()
    best_solids_pct: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def makeable(self) -> bool:
        return all(limit.within for limit in self.limits)

    @property
    def broken(self) -> tuple[Limit, ...]:
        return tuple(limit for limit in self.limits if not limit.within)

    def to_dict(self) -> dict[str, Any]:
        return {
            "makeable": self.makeable,
            "best_solids_pct": self.best_solids_pct,
            "limits": [
                {
                    "name": limit.name,
                    "field": limit.field,
                    "value": limit.value,
                    "basis": limit.basis,
                    "within": limit.within,
                    "detail": limit.detail,
                }
                for limit in self.limits
            ],
            "notes": list(self.notes),
        }


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _get(mix: Any, key: str) -> Any:
    if isinstance(mix, Mapping):
        return mix.get(key)
    return getattr(mix, key, None)


def makeability(mix: Any, profile: PlantProfile, *, prefix: str = "") -> Makeability:
    """Check a mix (a recipe as the API takes it) against what the plant can make:

    - the feed's reach at the recipe's own tailings moisture (water to add >= 0);
    - the feed's reach at the plant's feed (its wet end: the stated low solids, or the
      history's 10th percentile), when known;
    - the Cw window the site says the plant holds, when stated.
    """
    bw_pct, cw_pct = _num(_get(mix, "binder_pct")), _num(_get(mix, "solids_pct"))
    if bw_pct is None or cw_pct is None:
        return Makeability(notes=("the mix has no Bw or Cw to check",))
    bw = bw_pct / 100.0
    tailings = _get(mix, "tailings") or {}
    aggregate = _get(mix, "aggregate") or None
    share = (_num(_get(aggregate, "fraction_pct")) or 0.0) / 100.0 if aggregate else 0.0
    agg_w = (_num(_get(aggregate, "moisture_pct")) or 0.0) / 100.0 if aggregate else 0.0
    limits: list[Limit] = []
    w0_pct = _num(_get(tailings, "moisture_pct"))
    if w0_pct is not None:
        top = 100.0 * driest_cw(
            bw, w0_pct / 100.0, aggregate_share=share, aggregate_moisture_ratio=agg_w
        )
        limits.append(
            Limit(
                "feed_reach_recipe_moisture",
                f"{prefix}solids_pct",
                top,
                "recipe",
                cw_pct <= top + 1e-9,
                f"the tailings at {w0_pct:g} % moisture make at most {top:.2f} % Cw at Bw "
                f"{bw_pct:g} % (water to add would be negative above it)",
            )
        )
    feed = profile.feed()
    if feed is not None:
        w0 = moisture_of_solids(feed.solids_low_pct)
        top = 100.0 * driest_cw(bw, w0, aggregate_share=share, aggregate_moisture_ratio=agg_w)
        where = {
            "settings": "as the site states it",
            "simulator": "as the built-in simulator's profile makes it",
        }.get(feed.basis, f"its 10th percentile over {feed.hours or 0:.0f} running hours")
        limits.append(
            Limit(
                "feed_reach_plant_feed",
                f"{prefix}solids_pct",
                top,
                feed.basis,
                cw_pct <= top + 1e-9,
                f"the plant's feed at its wettest, {feed.solids_low_pct:.1f} % solids ({where}), "
                f"makes at most {top:.2f} % Cw at Bw {bw_pct:g} %",
            )
        )
    window = profile.cw_window()
    if window is not None:
        limits.append(
            Limit(
                "cw_window_low",
                f"{prefix}solids_pct",
                window.low,
                window.basis,
                cw_pct >= window.low - 1e-9,
                f"the plant holds Cw from {window.low:g} %",
            )
        )
        limits.append(
            Limit(
                "cw_window_high",
                f"{prefix}solids_pct",
                window.high,
                window.basis,
                cw_pct <= window.high + 1e-9,
                f"the plant holds Cw up to {window.high:g} %",
            )
        )
    tops = [limit.value for limit in limits if limit.name != "cw_window_low"]
    return Makeability(limits=tuple(limits), best_solids_pct=min(tops) if tops else None)


def reach_cw_max(
    binder_ratio: float,
    moisture_ratio: float | None,
    profile: PlantProfile,
    *,
    aggregate_share: float = 0.0,
    aggregate_moisture_ratio: float = 0.0,
) -> tuple[float | None, str | None]:
    """The highest Cw (fraction) the plant makes at Bw ``binder_ratio`` within every
    limit the profile and the recipe's moisture give, and the limit that binds (None
    when nothing bounds it): for the optimiser."""
    candidates: list[tuple[float, str]] = []
    if moisture_ratio is not None:
        candidates.append(
            (
                driest_cw(
                    binder_ratio,
                    moisture_ratio,
                    aggregate_share=aggregate_share,
                    aggregate_moisture_ratio=aggregate_moisture_ratio,
                ),
                "feed_reach_recipe_moisture",
            )
        )
    feed = profile.feed()
    if feed is not None:
        candidates.append(
            (
                driest_cw(
                    binder_ratio,
                    moisture_of_solids(feed.solids_low_pct),
                    aggregate_share=aggregate_share,
                    aggregate_moisture_ratio=aggregate_moisture_ratio,
                ),
                "feed_reach_plant_feed",
            )
        )
    window = profile.cw_window()
    if window is not None:
        candidates.append((window.high / 100.0, "cw_window_high"))
    if not candidates:
        return None, None
    value, name = min(candidates)
    return value, name


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) by linear interpolation between order statistics
    (Hyndman, R.J. & Fan, Y. (1996) Sample quantiles in statistical packages, Am. Stat.
    50(4):361-365, definition 7)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])
