"""How fast the fill rises in a stope: the rise rate from a paste flow at the plan area
where the fill is, the flow a rise-rate limit allows, and the rise rate achieved, from
the placed volume over a moving window. Pure.

Rise rate dh/dt = Q / A(h): the paste flow into the stope over the plan area at the
fill height (A = dV/dh of the stope's volume-height curve; a prism's constant A). Fast
rise keeps young fill near hydrostatic and loads the barricade hard (Thompson, B.D.,
Bawden, W.F. & Grabinsky, M.W. (2012), "In situ measurements of cemented paste
backfill at the Cayeli Mine", Can. Geotech. J. 49(7):755-772), so a plan limits it per
stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from service.core.fill_plan import (
    AREA_M2_MAX,
    LENGTH_M_MAX,
    RISE_RATE_M_H_MAX,
    StopeGeometry,
    aware,
    non_negative,
    positive,
)
from service.errors import InvalidInput


def rise_rate_m_h(paste_flow_m3_h: float, plan_area_m2: float) -> float:
    """Rise rate of the fill, dh/dt = Q / A, A the plan area at the fill height."""
    area = positive("plan_area_m2", plan_area_m2, AREA_M2_MAX)
    if not math.isfinite(paste_flow_m3_h):
        raise InvalidInput("paste_flow_m3_h", f"flow must be finite, got {paste_flow_m3_h!r}")
    return max(paste_flow_m3_h, 0.0) / area


def rise_rate_limited_flow_m3_h(
    requested_flow_m3_h: float, max_rise_rate_m_h: float, plan_area_m2: float
) -> float:
    """The paste flow that keeps the fill rising no faster than ``max_rise_rate_m_h``:
    min(requested, max rise x A), from dh/dt = Q / A with A the plan area at the fill
    height. Never negative."""
    if not math.isfinite(requested_flow_m3_h):
        raise InvalidInput(
            "requested_flow_m3_h", f"flow must be finite, got {requested_flow_m3_h!r}"
        )
    rate = positive("max_rise_rate_m_h", max_rise_rate_m_h, RISE_RATE_M_H_MAX)
    area = positive("plan_area_m2", plan_area_m2, AREA_M2_MAX)
    return min(max(requested_flow_m3_h, 0.0), rate * area)


def rise_rate_exceeded(
    rise_rate_m_h: float, max_rise_rate_m_h: float, tolerance_fraction: float = 0.05
) -> bool:
    """Whether a measured rise rate is above the limit by more than the tolerance
    (a fraction of the limit: 0.05 = 5 %)."""
    limit = positive("max_rise_rate_m_h", max_rise_rate_m_h, RISE_RATE_M_H_MAX)
    tol = non_negative("tolerance_fraction", tolerance_fraction, 1.0)
    return rise_rate_m_h > limit * (1.0 + tol)


@dataclass(frozen=True, slots=True)
class RiseRateMeter:
    """The rise rate actually achieved, over a moving window, from (time, placed volume)
    samples: (h(V(now)) - h(V(now - window))) / window, V(now - window) interpolated
    linearly between samples, h(V) the fill height of the stope's ``geometry`` (or V / A
    for a prism given by ``plan_area_m2`` alone). Placed volume counts paste that
    reached the stope, never the dump, so a pour sending everything to the dump shows
    no rise.

    Until the samples span ``window_s`` the rate is taken over what they span, and is
    None below ``min_span_s``. Placed volume is cumulative; a lower reading than the
    last is taken as the last (a late checkpoint, not volume removed). Add with
    :meth:`add`, which returns a new meter.
    """

    plan_area_m2: float | None = None
    window_s: float = 600.0
    min_span_s: float = 60.0
    samples: tuple[tuple[datetime, float], ...] = ()
    geometry: StopeGeometry | None = None

    def __post_init__(self) -> None:
        if (self.plan_area_m2 is None) == (self.geometry is None):
            raise InvalidInput("plan_area_m2", "give the plan area or the stope geometry")
        if self.plan_area_m2 is not None:
            positive("plan_area_m2", self.plan_area_m2, AREA_M2_MAX)
        positive("window_s", self.window_s, 1.0e6)
        positive("min_span_s", self.min_span_s, 1.0e6)
        if self.min_span_s > self.window_s:
            raise InvalidInput("min_span_s", "min_span_s must not exceed window_s")

    def _height(self, volume_m3: float) -> float:
        if self.geometry is not None:
            return self.geometry.fill_height_m(volume_m3)
        assert self.plan_area_m2 is not None
        return volume_m3 / self.plan_area_m2

    def add(self, now: datetime, placed_m3: float) -> RiseRateMeter:
        aware("now", now)
        volume = non_negative("placed_m3", placed_m3, AREA_M2_MAX * LENGTH_M_MAX)
        samples = list(self.samples)
        if samples:
            last_t, last_v = samples[-1]
            if now < last_t:
                raise InvalidInput("now", f"time went back: {now.isoformat()} < {last_t}")
            volume = max(volume, last_v)
            if now == last_t:
                samples.pop()
        samples.append((now, volume))
        cutoff = now - timedelta(seconds=self.window_s)
        # Keep the newest sample at or before the cutoff: it anchors the interpolation.
        first = 0
        for i, (t, _) in enumerate(samples):
            if t <= cutoff:
                first = i
        return replace(self, samples=tuple(samples[first:]))

    def held(self, now: datetime) -> RiseRateMeter:
        """The meter at ``now`` with nothing placed since its last sample (a reading
        between samples: a pour that stopped placing shows its rise falling to 0)."""
        if not self.samples or now <= self.samples[-1][0]:
            return self
        return self.add(now, self.samples[-1][1])

    @property
    def span_s(self) -> float:
        """Seconds the rate is taken over (at most the window)."""
        if len(self.samples) < 2:
            return 0.0
        span = (self.samples[-1][0] - self.samples[0][0]).total_seconds()
        return min(span, self.window_s)

    @property
    def rise_rate_m_h(self) -> float | None:
        """Measured rise rate (m/h), None until the samples span ``min_span_s``."""
        span = self.span_s
        if span < self.min_span_s or span <= 0.0:
            return None
        end_t, end_v = self.samples[-1]
        start_t = end_t - timedelta(seconds=span)
        (t0, v0), (t1, v1) = self.samples[0], self.samples[1]
        if t0 < start_t and t1 > t0:
            share = (start_t - t0).total_seconds() / (t1 - t0).total_seconds()
            start_v = v0 + share * (v1 - v0)
        else:
            start_v = v0
        return (self._height(end_v) - self._height(start_v)) / (span / 3600.0)
