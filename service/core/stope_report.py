"""The stope report: per stope and per stage, what went in, how good it was, how the
fill rose and how hard it pushed on the barricade; pure, plus a CSV writer.

Inputs are values the running part already keeps: each pour of the stope with its
stage and its totals summary (:meth:`service.core.control.totals.PourTotals.summary`),
its interruptions and cylinder sample ids; the plan's progress (holds, releases,
switch points); and trend samples (time, fill height, barricade pressure per tag).

Figures (those of the pour record, summed over pours):

- volume placed (stope volume), dumped (never stope volume), off-spec placed and its
  start-up part, unmeasured, flush water; dry tailings and binder per component, placed
  and dumped, water;
- Cw and Bw: volume-weighted average sum(avg_i w_i) / sum(w_i) with w_i the pour's
  volume where the quantity was measured (``solids_measured_m3`` /
  ``binder_measured_m3``; older summaries without them weigh by ``poured_m3``), and the
  min / max over pours;
- cylinders cast: the pours' sample ids.

One clock per record: the plan's progress (stage starts, tops, holds, releases, switch
points) is in plant time, the plant's clock that holds run on; the pours and the trend
samples (the history) are in wall time. A stage's series are the trend samples of its
window, in wall time: from its first pour's start to the first pour's start of a later
stage (its cure hold included: the barricade pressure while the plug cures is the point
of watching it, Thompson, Bawden & Grabinsky 2012, Can. Geotech. J. 49:755-772), so a
simulated plant running faster than the wall clock files every sample under the right
stage. Fill height is the stope's volume-height curve at the placed volume. Series are
downsampled to at most ``max_points`` buckets of consecutive samples, each keeping its
average, min and max (a pressure peak survives the downsampling).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.core.control.massbalance import BINDER_COMPONENTS
from service.core.plans import (
    FillPlan,
    PlanLogEntry,
    PlanProgress,
    StageState,
    Stope,
    StopeState,
    SwitchPoint,
    stope_state,
)
from service.core.tabular import csv_cell
from service.errors import InvalidInput

MAX_POINTS_DEFAULT = 500
STAGE_TIMES_CLOCK = "plant"
SERIES_CLOCK = "wall"


@dataclass(frozen=True, slots=True)
class StopePour:
    """One pour of the stope, as the store keeps it (wall-clock times). ``stage``: index
    in the plan."""

    pour_id: str
    stage: int
    totals: Mapping[str, Any]
    interruptions: Sequence[Mapping[str, Any]] = ()
    sample_ids: Sequence[str] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    recipe_id: str | None = None


@dataclass(frozen=True, slots=True)
class TrendSample:
    """One trend sample: fill height (m) and barricade pressure (kPa) per tag; None
    where not known (a gap, never a zero)."""

    at: datetime
    fill_height_m: float | None = None
    barricade_kpa: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One downsampled bucket: its first and last sample times, average, min, max."""

    at: datetime
    until: datetime
    average: float
    minimum: float
    maximum: float
    count: int


@dataclass(frozen=True, slots=True)
class QualityStats:
    """Cw or Bw over a set of pours, percent; ``measured_m3`` the weight behind it."""

    average_pct: float | None
    min_pct: float | None
    max_pct: float | None
    measured_m3: float


@dataclass(frozen=True, slots=True)
class Figures:
    """What a set of pours put in (and past) the stope."""

    placed_m3: float
    dumped_m3: float
    off_spec_m3: float
    startup_off_spec_m3: float
    unmeasured_m3: float
    flush_water_m3: float
    dry_tailings_t: float
    dumped_dry_tailings_t: float
    water_m3: float
    dumped_water_m3: float
    binder_t_by_component: Mapping[str, float]
    dumped_binder_t_by_component: Mapping[str, float]
    solids: QualityStats
    binder: QualityStats
    pours: tuple[str, ...]
    cylinders: tuple[str, ...]
    interruptions: int

    @property
    def binder_t(self) -> float:
        return sum(self.binder_t_by_component.values())

    @property
    def dumped_binder_t(self) -> float:
        return sum(self.dumped_binder_t_by_component.values())

    @property
    def delivered_m3(self) -> float:
        return self.placed_m3 + self.dumped_m3


@dataclass(frozen=True, slots=True)
class StageReport:
    index: int
    name: str
    recipe_id: str
    state: StageState
    top_height_m: float
    top_volume_m3: float
    planned_volume_m3: float
    max_rise_rate_m_h: float
    cure_hold_h: float
    started_at: datetime | None
    top_reached_at: datetime | None
    hold_started_at: datetime | None
    hold_ends_at: datetime | None
    released_at: datetime | None
    released_by: str | None
    figures: Figures
    history: tuple[PlanLogEntry, ...]
    fill_height: tuple[SeriesPoint, ...]
    barricade_kpa: Mapping[str, tuple[SeriesPoint, ...]]
    # Wall time: the window its series are taken over (None: never poured / open).
    window_started_at: datetime | None = None
    window_ended_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StopeReport:
    stope: str
    state: StopeState
    plan_version: int
    continuous: bool
    plan_area_m2: float
    stope_height_m: float
    barricade_rating_kpa: float
    placed_m3: float
    fill_height_m: float
    figures: Figures
    stages: tuple[StageReport, ...]
    switch_points: tuple[SwitchPoint, ...]
    history: tuple[PlanLogEntry, ...]
    fill_height: tuple[SeriesPoint, ...]
    barricade_kpa: Mapping[str, tuple[SeriesPoint, ...]]
    geometry_source: str = "prism"
    stage_times_clock: str = STAGE_TIMES_CLOCK
    series_clock: str = SERIES_CLOCK
    closed_reason: str | None = None


# --- aggregation ------------------------------------------------------------------------


def _num(totals: Mapping[str, Any], key: str) -> float:
    value = totals.get(key)
    if value is None:
        return 0.0
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _opt(totals: Mapping[str, Any], key: str) -> float | None:
    value = totals.get(key)
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _components(totals: Mapping[str, Any], key: str, into: dict[str, float]) -> None:
    for name, tonnes in dict(totals.get(key) or {}).items():
        value = float(tonnes)
        into[str(name)] = into.get(str(name), 0.0) + (value if math.isfinite(value) else 0.0)


def _quality(pours: Sequence[StopePour], prefix: str, weight_key: str) -> QualityStats:
    """Volume-weighted average, min and max of one quantity over pours (module doc)."""
    weighted = 0.0
    weight = 0.0
    low: float | None = None
    high: float | None = None
    for pour in pours:
        t = pour.totals
        average = _opt(t, f"average_{prefix}_pct")
        w = _num(t, weight_key) if weight_key in t else _num(t, "poured_m3")
        if average is not None and w > 0.0:
            weighted += average * w
            weight += w
        lo, hi = _opt(t, f"min_{prefix}_pct"), _opt(t, f"max_{prefix}_pct")
        if lo is not None:
            low = lo if low is None else min(low, lo)
        if hi is not None:
            high = hi if high is None else max(high, hi)
    return QualityStats(weighted / weight if weight > 0.0 else None, low, high, weight)


def figures(pours: Sequence[StopePour]) -> Figures:
    """The figures of a set of pours (module docstring)."""
    binder = dict.fromkeys(BINDER_COMPONENTS, 0.0)
    dumped_binder = dict.fromkeys(BINDER_COMPONENTS, 0.0)
    for pour in pours:
        _components(pour.totals, "binder_t_by_component", binder)
        _components(pour.totals, "dumped_binder_t_by_component", dumped_binder)

    def total(key: str) -> float:
        return sum(_num(p.totals, key) for p in pours)

    return Figures(
        placed_m3=total("poured_m3"),
        dumped_m3=total("dumped_m3"),
        off_spec_m3=total("off_spec_m3"),
        startup_off_spec_m3=total("startup_off_spec_m3"),
        unmeasured_m3=total("unmeasured_m3"),
        flush_water_m3=total("flush_water_m3"),
        dry_tailings_t=total("dry_tailings_t"),
        dumped_dry_tailings_t=total("dumped_dry_tailings_t"),
        water_m3=total("water_m3"),
        dumped_water_m3=total("dumped_water_m3"),
        binder_t_by_component=binder,
        dumped_binder_t_by_component=dumped_binder,
        solids=_quality(pours, "solids", "solids_measured_m3"),
        binder=_quality(pours, "binder", "binder_measured_m3"),
        pours=tuple(p.pour_id for p in pours),
        cylinders=tuple(s for p in pours for s in p.sample_ids),
        interruptions=sum(len(p.interruptions) for p in pours),
    )


def downsample(
    samples: Iterable[tuple[datetime, float | None]], max_points: int = MAX_POINTS_DEFAULT
) -> tuple[SeriesPoint, ...]:
    """At most ``max_points`` buckets of consecutive samples (time order), each with
    its average, min and max; missing and non-finite values are left out (a gap is not
    a zero)."""
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise InvalidInput("max_points", f"max_points must be an integer >= 1, got {max_points!r}")
    points = sorted(
        ((t, float(v)) for t, v in samples if v is not None and math.isfinite(v)),
        key=lambda p: p[0],
    )
    n = len(points)
    buckets = min(n, max_points)
    out: list[SeriesPoint] = []
    for k in range(buckets):
        chunk = points[k * n // buckets : (k + 1) * n // buckets]
        values = [v for _, v in chunk]
        out.append(
            SeriesPoint(
                at=chunk[0][0],
                until=chunk[-1][0],
                average=sum(values) / len(values),
                minimum=min(values),
                maximum=max(values),
                count=len(values),
            )
        )
    return tuple(out)


def _series(
    trend: Sequence[TrendSample], max_points: int
) -> tuple[tuple[SeriesPoint, ...], dict[str, tuple[SeriesPoint, ...]]]:
    height = downsample(((s.at, s.fill_height_m) for s in trend), max_points)
    tags = sorted({tag for s in trend for tag in s.barricade_kpa})
    pressure = {
        tag: downsample(((s.at, s.barricade_kpa.get(tag)) for s in trend), max_points)
        for tag in tags
    }
    return height, pressure


def build_stope_report(
    stope: Stope,
    plan: FillPlan,
    progress: PlanProgress,
    pours: Sequence[StopePour],
    trend: Sequence[TrendSample],
    *,
    max_points: int = MAX_POINTS_DEFAULT,
) -> StopeReport:
    """The report of one stope (module docstring). Raises :class:`InvalidInput` for a
    pour whose stage is not in the plan or a progress of another plan version."""
    if progress.plan_version != plan.version or len(progress.stages) != len(plan.stages):
        raise InvalidInput("progress", "the progress does not follow this plan version")
    for i, pour in enumerate(pours):
        if not 0 <= pour.stage < len(plan.stages):
            raise InvalidInput(
                f"pours[{i}].stage", f"pour {pour.pour_id!r} names stage {pour.stage}, not in plan"
            )
    ordered = sorted(trend, key=lambda s: s.at)
    tops = plan.top_heights_m
    volumes = plan.top_volumes_m3
    windows = stage_windows(len(plan.stages), pours)
    stage_reports: list[StageReport] = []
    for index, definition in enumerate(plan.stages):
        sp = progress.stages[index]
        start, end = windows[index]
        window = (
            [s for s in ordered if s.at >= start and (end is None or s.at < end)]
            if start is not None
            else []
        )
        height, pressure = _series(window, max_points)
        below = volumes[index - 1] if index > 0 else 0.0
        stage_reports.append(
            StageReport(
                index=index,
                name=definition.name,
                recipe_id=definition.recipe_id,
                state=sp.state,
                top_height_m=tops[index],
                top_volume_m3=volumes[index],
                planned_volume_m3=volumes[index] - below,
                max_rise_rate_m_h=definition.max_rise_rate_m_h,
                cure_hold_h=definition.cure_hold_h,
                started_at=sp.started_at,
                top_reached_at=sp.top_reached_at,
                hold_started_at=sp.hold_started_at,
                hold_ends_at=sp.hold_ends_at,
                released_at=sp.released_at,
                released_by=sp.released_by,
                figures=figures([p for p in pours if p.stage == index]),
                history=tuple(e for e in progress.history if e.stage == index),
                fill_height=height,
                barricade_kpa=pressure,
                window_started_at=start,
                window_ended_at=end,
                reason=sp.reason,
            )
        )
    height, pressure = _series(ordered, max_points)
    return StopeReport(
        stope=stope.name,
        state=stope_state(progress),
        plan_version=plan.version,
        continuous=plan.continuous,
        plan_area_m2=plan.geometry.plan_area_m2,
        stope_height_m=plan.geometry.height_m,
        barricade_rating_kpa=stope.barricade_rating_kpa,
        placed_m3=progress.placed_m3,
        fill_height_m=progress.height_m,
        figures=figures(pours),
        stages=tuple(stage_reports),
        switch_points=progress.switch_points,
        history=progress.history,
        fill_height=height,
        barricade_kpa=pressure,
        geometry_source=plan.geometry.source,
        closed_reason=progress.closed_reason,
    )


def stage_windows(
    stages: int, pours: Sequence[StopePour]
) -> list[tuple[datetime | None, datetime | None]]:
    """Each stage's window in wall time: from the start of its first pour to the start
    of the first pour of a later stage (None: not poured yet, or open to now). Pours
    keep wall time, as the history does, whatever the plant's clock does."""
    firsts: list[datetime | None] = []
    for index in range(stages):
        starts = [p.started_at for p in pours if p.stage == index and p.started_at is not None]
        firsts.append(min(starts) if starts else None)
    out: list[tuple[datetime | None, datetime | None]] = []
    for index, start in enumerate(firsts):
        later = [t for t in firsts[index + 1 :] if t is not None]
        out.append((start, min(later) if later else None))
    return out


# --- CSV --------------------------------------------------------------------------------


def _figure_rows(prefix: str, f: Figures) -> list[list[str]]:
    rows = [
        [f"{prefix}.placed_m3", csv_cell(f.placed_m3)],
        [f"{prefix}.dumped_m3", csv_cell(f.dumped_m3)],
        [f"{prefix}.off_spec_m3", csv_cell(f.off_spec_m3)],
        [f"{prefix}.startup_off_spec_m3", csv_cell(f.startup_off_spec_m3)],
        [f"{prefix}.unmeasured_m3", csv_cell(f.unmeasured_m3)],
        [f"{prefix}.flush_water_m3", csv_cell(f.flush_water_m3)],
        [f"{prefix}.dry_tailings_t", csv_cell(f.dry_tailings_t)],
        [f"{prefix}.dumped_dry_tailings_t", csv_cell(f.dumped_dry_tailings_t)],
        [f"{prefix}.water_m3", csv_cell(f.water_m3)],
        [f"{prefix}.dumped_water_m3", csv_cell(f.dumped_water_m3)],
        [f"{prefix}.binder_t", csv_cell(f.binder_t)],
        [f"{prefix}.dumped_binder_t", csv_cell(f.dumped_binder_t)],
    ]
    for name, tonnes in sorted(f.binder_t_by_component.items()):
        rows.append([f"{prefix}.binder_t.{name}", csv_cell(tonnes)])
    for name, tonnes in sorted(f.dumped_binder_t_by_component.items()):
        rows.append([f"{prefix}.dumped_binder_t.{name}", csv_cell(tonnes)])
    for label, q in (("solids", f.solids), ("binder", f.binder)):
        rows.append([f"{prefix}.average_{label}_pct", csv_cell(q.average_pct)])
        rows.append([f"{prefix}.min_{label}_pct", csv_cell(q.min_pct)])
        rows.append([f"{prefix}.max_{label}_pct", csv_cell(q.max_pct)])
    rows.append([f"{prefix}.interruptions", csv_cell(f.interruptions)])
    rows.extend([f"{prefix}.pour.{i}", csv_cell(p)] for i, p in enumerate(f.pours, start=1))
    rows.extend([f"{prefix}.cylinder.{i}", csv_cell(s)] for i, s in enumerate(f.cylinders, start=1))
    return rows


def _stage_of(report: StopeReport, at: datetime) -> str:
    """The stage whose window (wall time) holds ``at``."""
    for stage in report.stages:
        start, end = stage.window_started_at, stage.window_ended_at
        if start is not None and start <= at and (end is None or at < end):
            return str(stage.index)
    return ""


def stope_report_csv(report: StopeReport) -> str:
    """Two blocks: ``field,value`` rows (stope, stages, history, switch points), a blank
    line, then one row per series bucket (fill height and each barricade) with the
    stage it falls in. Text cells that look like formulas get a leading apostrophe."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["field", "value"])
    w.writerow(["stope.name", csv_cell(report.stope)])
    w.writerow(["stope.state", csv_cell(report.state.value)])
    w.writerow(["stope.geometry", csv_cell(report.geometry_source)])
    w.writerow(["stope.plan_area_m2", csv_cell(report.plan_area_m2)])
    w.writerow(["stope.height_m", csv_cell(report.stope_height_m)])
    w.writerow(["stope.barricade_rating_kpa", csv_cell(report.barricade_rating_kpa)])
    w.writerow(["stope.plan_placed_m3", csv_cell(report.placed_m3)])
    w.writerow(["stope.fill_height_m", csv_cell(report.fill_height_m)])
    w.writerow(["stope.closed_reason", csv_cell(report.closed_reason)])
    w.writerow(["clock.stage_times", csv_cell(report.stage_times_clock)])
    w.writerow(["clock.series", csv_cell(report.series_clock)])
    w.writerow(["plan.version", csv_cell(report.plan_version)])
    w.writerow(["plan.continuous", csv_cell(report.continuous)])
    w.writerows(_figure_rows("stope", report.figures))
    for s in report.stages:
        p = f"stage.{s.index}"
        w.writerow([f"{p}.name", csv_cell(s.name)])
        w.writerow([f"{p}.recipe_id", csv_cell(s.recipe_id)])
        w.writerow([f"{p}.state", csv_cell(s.state.value)])
        w.writerow([f"{p}.top_height_m", csv_cell(s.top_height_m)])
        w.writerow([f"{p}.top_volume_m3", csv_cell(s.top_volume_m3)])
        w.writerow([f"{p}.planned_volume_m3", csv_cell(s.planned_volume_m3)])
        w.writerow([f"{p}.max_rise_rate_m_h", csv_cell(s.max_rise_rate_m_h)])
        w.writerow([f"{p}.cure_hold_h", csv_cell(s.cure_hold_h)])
        w.writerow([f"{p}.started_at", csv_cell(s.started_at)])
        w.writerow([f"{p}.top_reached_at", csv_cell(s.top_reached_at)])
        w.writerow([f"{p}.hold_started_at", csv_cell(s.hold_started_at)])
        w.writerow([f"{p}.hold_ends_at", csv_cell(s.hold_ends_at)])
        w.writerow([f"{p}.released_at", csv_cell(s.released_at)])
        w.writerow([f"{p}.released_by", csv_cell(s.released_by)])
        w.writerow([f"{p}.reason", csv_cell(s.reason)])
        w.writerow([f"{p}.window_started_at", csv_cell(s.window_started_at)])
        w.writerow([f"{p}.window_ended_at", csv_cell(s.window_ended_at)])
        w.writerows(_figure_rows(p, s.figures))
    for i, e in enumerate(report.history, start=1):
        w.writerow([f"history.{i}.kind", csv_cell(e.kind.value)])
        w.writerow([f"history.{i}.stage", csv_cell(e.stage)])
        w.writerow([f"history.{i}.at", csv_cell(e.at)])
        w.writerow([f"history.{i}.by", csv_cell(e.by)])
        w.writerow([f"history.{i}.detail", csv_cell(e.detail)])
    for i, sp in enumerate(report.switch_points, start=1):
        w.writerow([f"switch.{i}.at", csv_cell(sp.at)])
        w.writerow([f"switch.{i}.height_m", csv_cell(sp.height_m)])
        w.writerow([f"switch.{i}.volume_m3", csv_cell(sp.volume_m3)])
        w.writerow([f"switch.{i}.planned_height_m", csv_cell(sp.planned_height_m)])
        w.writerow([f"switch.{i}.from_stage", csv_cell(sp.from_stage)])
        w.writerow([f"switch.{i}.to_stage", csv_cell(sp.to_stage)])
        w.writerow([f"switch.{i}.from_recipe_id", csv_cell(sp.from_recipe_id)])
        w.writerow([f"switch.{i}.to_recipe_id", csv_cell(sp.to_recipe_id)])
    w.writerow([])
    w.writerow(["series", "tag", "stage", "time_utc", "until_utc", "average", "min", "max", "n"])
    series: list[tuple[str, str, tuple[SeriesPoint, ...]]] = [
        ("fill_height_m", "", report.fill_height)
    ]
    series.extend(("barricade_kpa", tag, pts) for tag, pts in sorted(report.barricade_kpa.items()))
    for name, tag, points in series:
        for pt in points:
            w.writerow(
                [
                    name,
                    csv_cell(tag),
                    _stage_of(report, pt.at),
                    csv_cell(pt.at),
                    csv_cell(pt.until),
                    csv_cell(pt.average),
                    csv_cell(pt.minimum),
                    csv_cell(pt.maximum),
                    csv_cell(pt.count),
                ]
            )
    return out.getvalue()
