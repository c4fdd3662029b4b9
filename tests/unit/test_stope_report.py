"""The stope report: per stage and per stope figures, series, CSV."""

from __future__ import annotations

import csv
import io
import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.control.law import Measurement
from service.core.control.totals import PourTotals, Rate, TotalsSample, accumulate
from service.core.plan_acts import release
from service.core.plans import (
    FillPlan,
    PlanLogKind,
    PlanProgress,
    Stage,
    StageState,
    Stope,
    StopeGeometry,
    StopeState,
    on_volume,
    start_plan,
    start_stage,
)
from service.core.stope_report import (
    StopePour,
    TrendSample,
    build_stope_report,
    downsample,
    figures,
    stope_report_csv,
)
from service.errors import InvalidInput

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
GEOMETRY = StopeGeometry.from_dimensions(length_m=2.0, width_m=2.0, height_m=10.0)  # 4 m2
PLAN = FillPlan(
    GEOMETRY,
    (
        Stage("plug", "R-plug", 0.5, cure_hold_h=24.0, top_height_m=4.0),  # 16 m3
        Stage("body", "R-body", 1.0, cure_hold_h=0.0, top_height_m=10.0),  # 40 m3
    ),
)
STOPE = Stope("S-101", GEOMETRY, barricade_rating_kpa=180.0)


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def totals_of(*segments: tuple[float, float, float, bool]) -> dict[str, Any]:
    """A real pour summary: each segment is (m3 at 100 m3/h, Cw, Bw, to the dump)."""
    t = PourTotals()
    for volume, cw, bw, to_dump in segments:
        s = TotalsSample(
            paste_flow_m3_h=Rate(Measurement(100.0), 0.0),
            dry_tailings_t_h=Rate(Measurement(130.0), 0.0),
            binder_t_h={
                "cement": Rate(Measurement(1.0), 0.0),
                "slag": Rate(Measurement(4.0), 0.0),
            },
            water_m3_h=Rate(Measurement(10.0), 0.0),
            solids_fraction=cw,
            binder_ratio=bw,
            solids_fraction_target=0.72,
            binder_ratio_target=0.05,
            to_dump=to_dump,
        )
        t = accumulate(t, s, volume * 36.0)  # volume / 100 m3/h, in seconds
    return t.summary()


POURS = (
    StopePour(
        "P-1",
        0,
        totals_of((1.0, 0.60, 0.05, True), (10.0, 0.72, 0.05, False), (2.0, 0.70, 0.05, False)),
        interruptions=({"reason": "operator"},),
        sample_ids=("C-1", "C-2"),
        started_at=T0,
    ),
    StopePour(
        "P-2",
        0,
        totals_of((0.5, 0.65, 0.05, True), (5.0, 0.725, 0.052, False)),
        started_at=T0 + timedelta(hours=3),
    ),
    StopePour(
        "P-3",
        1,
        totals_of((20.0, 0.74, 0.048, False)),
        sample_ids=("=HYPERLINK()",),
        started_at=T0 + timedelta(hours=31),
    ),
)


def progress() -> PlanProgress:
    p = start_stage(start_plan(PLAN), PLAN, hours(0), by="scada")
    p, _ = on_volume(p, PLAN, 17.0, hours(6))
    p = release(p, PLAN, "@engineer", hours(30))
    p = start_stage(p, PLAN, hours(31))
    p, _ = on_volume(p, PLAN, 37.0, hours(40))
    return p


def trend() -> list[TrendSample]:
    samples = []
    for minute in range(0, 48 * 60, 10):
        at = T0 + timedelta(minutes=minute)
        # A pressure peak of 150 kPa at 6 h (the plug top), on a 40 kPa base.
        pressure = 40.0 + 110.0 * math.exp(-(((minute - 360) / 60.0) ** 2))
        samples.append(
            TrendSample(
                at,
                fill_height_m=min(minute / 60.0, 9.25) * 0.5,
                barricade_kpa={
                    "barricade_pressure_pv": pressure,
                    "barricade_2_pressure_pv": None if minute % 20 else pressure / 2,
                },
            )
        )
    return samples


def test_per_stage_and_per_stope_figures() -> None:
    report = build_stope_report(STOPE, PLAN, progress(), POURS, trend(), max_points=50)
    plug, body = report.stages
    f = plug.figures
    assert f.placed_m3 == pytest.approx(17.0)
    assert f.dumped_m3 == pytest.approx(1.5)
    assert f.off_spec_m3 == pytest.approx(2.0)  # Cw 0.70: out of a 1-point band
    assert f.binder_t_by_component["cement"] == pytest.approx(0.17)
    assert f.binder_t_by_component["slag"] == pytest.approx(0.68)
    assert f.dumped_binder_t_by_component["slag"] == pytest.approx(0.06)
    assert f.dumped_binder_t == pytest.approx(0.075)
    assert f.dry_tailings_t == pytest.approx(17 * 1.3)
    assert f.dumped_dry_tailings_t == pytest.approx(1.5 * 1.3)
    assert f.water_m3 == pytest.approx(1.7)
    assert f.solids.average_pct == pytest.approx((10 * 72 + 2 * 70 + 5 * 72.5) / 17)
    assert (f.solids.min_pct, f.solids.max_pct) == pytest.approx((70.0, 72.5))
    assert f.binder.average_pct == pytest.approx((12 * 5.0 + 5 * 5.2) / 17)
    assert f.solids.measured_m3 == pytest.approx(17.0)
    assert f.cylinders == ("C-1", "C-2")
    assert f.pours == ("P-1", "P-2") and f.interruptions == 1
    assert f.delivered_m3 == pytest.approx(18.5)

    assert body.figures.placed_m3 == pytest.approx(20.0)
    assert body.figures.solids.average_pct == pytest.approx(74.0)
    assert body.figures.cylinders == ("=HYPERLINK()",)

    whole = report.figures
    assert whole.placed_m3 == pytest.approx(37.0)
    assert whole.dumped_m3 == pytest.approx(1.5)
    assert whole.binder_t == pytest.approx(37 * 0.05)
    assert whole.solids.average_pct == pytest.approx((10 * 72 + 2 * 70 + 5 * 72.5 + 20 * 74) / 37)
    assert (whole.solids.min_pct, whole.solids.max_pct) == pytest.approx((70.0, 74.0))
    assert whole.binder.min_pct == pytest.approx(4.8)
    assert whole.cylinders == ("C-1", "C-2", "=HYPERLINK()")

    assert report.state is StopeState.FILLING
    assert report.placed_m3 == 37.0 and report.fill_height_m == pytest.approx(9.25)
    assert plug.state is StageState.RELEASED and body.state is StageState.FILLING
    assert plug.planned_volume_m3 == pytest.approx(16.0)
    assert body.planned_volume_m3 == pytest.approx(24.0)
    assert plug.hold_ends_at == hours(30) and plug.released_by == "@engineer"
    assert [(e.kind, e.by) for e in plug.history] == [
        (PlanLogKind.STAGE_STARTED, "scada"),
        (PlanLogKind.HOLD_STARTED, "service"),
        (PlanLogKind.RELEASED, "@engineer"),
    ]
    assert [e.kind for e in body.history] == [PlanLogKind.STAGE_STARTED]


def test_series_are_windowed_per_stage_and_downsampled_keeping_the_peak() -> None:
    samples = trend()
    report = build_stope_report(STOPE, PLAN, progress(), POURS, samples, max_points=50)
    assert len(report.fill_height) == 50
    assert sum(p.count for p in report.fill_height) == len(samples)
    pressure = report.barricade_kpa["barricade_pressure_pv"]
    assert len(pressure) == 50
    assert max(p.maximum for p in pressure) == pytest.approx(150.0)  # the peak survives
    # The second barricade's missing samples are gaps, not zeros.
    other = report.barricade_kpa["barricade_2_pressure_pv"]
    assert sum(p.count for p in other) == len(samples) // 2
    assert min(p.minimum for p in other) == pytest.approx(20.0, rel=1e-3)

    plug, body = report.stages
    assert plug.fill_height[0].at == hours(0)
    assert plug.fill_height[-1].until < hours(31) <= body.fill_height[0].at
    assert sum(p.count for p in plug.fill_height) == 31 * 6  # 0 h to 31 h in 10 min
    assert sum(p.count for p in body.fill_height) == (48 - 31) * 6
    assert max(p.maximum for p in plug.barricade_kpa["barricade_pressure_pv"]) == pytest.approx(
        150.0
    )


def test_stage_series_follow_the_pours_wall_clock_whatever_the_plant_clock() -> None:
    # A simulated plant at speed 50: the plan's times (plant time) run far ahead of the
    # pours' and the history's (wall time). Each stage's series is its window of the
    # history in wall time, from its pours, so nothing is empty or filed wrongly.
    ahead = timedelta(days=20)
    p = start_stage(start_plan(PLAN), PLAN, T0 + ahead, by="scada")
    p, _ = on_volume(p, PLAN, 17.0, T0 + ahead + timedelta(hours=300))
    p = release(p, PLAN, "@engineer", T0 + ahead + timedelta(hours=1500))
    p = start_stage(p, PLAN, T0 + ahead + timedelta(hours=1550))
    report = build_stope_report(STOPE, PLAN, p, POURS, trend(), max_points=1000)
    plug, body = report.stages
    assert plug.started_at == T0 + ahead  # the plan's own time, plant time
    assert (plug.window_started_at, plug.window_ended_at) == (T0, hours(31))
    assert (body.window_started_at, body.window_ended_at) == (hours(31), None)
    assert sum(p.count for p in plug.fill_height) == 31 * 6
    assert sum(p.count for p in body.fill_height) == (48 - 31) * 6
    assert plug.fill_height[0].at == T0 and plug.fill_height[0].minimum == 0.0
    assert body.fill_height[0].at == hours(31)
    assert (report.stage_times_clock, report.series_clock) == ("plant", "wall")
    rows = list(csv.DictReader(io.StringIO(stope_report_csv(report).partition("\r\n\r\n")[2])))
    by_stage = {r["stage"] for r in rows if r["series"] == "fill_height_m"}
    assert by_stage == {"0", "1"}


def test_a_stage_not_started_has_no_series_and_no_pours() -> None:
    p = start_stage(start_plan(PLAN), PLAN, hours(0))
    p, _ = on_volume(p, PLAN, 5.0, hours(1))
    report = build_stope_report(STOPE, PLAN, p, POURS[:1], trend(), max_points=10)
    body = report.stages[1]
    assert body.state is StageState.PENDING
    assert body.fill_height == () and body.barricade_kpa == {}
    assert body.figures.placed_m3 == 0.0 and body.figures.solids.average_pct is None
    assert report.stages[0].fill_height[-1].until == T0 + timedelta(minutes=48 * 60 - 10)


def test_summaries_from_before_the_measured_volumes_weigh_by_poured_volume() -> None:
    old_a = {"poured_m3": 10.0, "average_solids_pct": 70.0, "min_solids_pct": 69.0}
    old_b = {"poured_m3": 30.0, "average_solids_pct": 74.0, "max_solids_pct": 75.0}
    f = figures([StopePour("a", 0, old_a), StopePour("b", 0, old_b)])
    assert f.solids.average_pct == pytest.approx(73.0)
    assert (f.solids.min_pct, f.solids.max_pct) == (69.0, 75.0)
    assert f.binder.average_pct is None and f.dumped_m3 == 0.0
    assert f.binder_t_by_component == {"cement": 0.0, "slag": 0.0, "flyash": 0.0}
    empty = figures([StopePour("planned", 0, {})])
    assert empty.placed_m3 == 0.0 and empty.solids.average_pct is None


def test_an_unknown_stage_or_another_plan_version_is_refused() -> None:
    bad = (*POURS, StopePour("P-9", 2, {}))
    with pytest.raises(InvalidInput) as err:
        build_stope_report(STOPE, PLAN, progress(), bad, [])
    assert err.value.field == "pours[3].stage"
    other = FillPlan(GEOMETRY, PLAN.stages, version=2)
    with pytest.raises(InvalidInput):
        build_stope_report(STOPE, other, progress(), POURS, [])


def test_downsample() -> None:
    series = [(T0 + timedelta(minutes=i), float(i)) for i in range(10)]
    assert [p.average for p in downsample(series, 100)] == [float(i) for i in range(10)]
    points = downsample(series, 3)
    assert [p.count for p in points] == [3, 3, 4]
    assert [(p.minimum, p.maximum) for p in points] == [(0, 2), (3, 5), (6, 9)]
    assert points[2].average == pytest.approx(7.5)
    assert points[0].at == T0 and points[0].until == T0 + timedelta(minutes=2)
    assert downsample([(T0, None), (T0, math.nan)], 5) == ()
    assert downsample(list(reversed(series)), 10)[0].average == 0.0  # sorted by time
    for bad in (0, -1, True, 2.5):
        with pytest.raises(InvalidInput):
            downsample(series, bad)  # type: ignore[arg-type]


@given(
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6), st.just(math.nan)), max_size=300),
    st.integers(1, 60),
)
def test_downsampling_keeps_count_extremes_and_mean(values: list[float | None], n: int) -> None:
    series = [(T0 + timedelta(seconds=i), v) for i, v in enumerate(values)]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    points = downsample(series, n)
    assert len(points) == min(n, len(finite))
    assert sum(p.count for p in points) == len(finite)
    if finite:
        assert min(p.minimum for p in points) == min(finite)
        assert max(p.maximum for p in points) == max(finite)
        mean = sum(p.average * p.count for p in points) / len(finite)
        assert mean == pytest.approx(sum(finite) / len(finite), abs=1e-6 * max(map(abs, finite)))
    for a, b in itertools.pairwise(points):
        assert a.until <= b.at


summary_numbers = st.fixed_dictionaries(
    {
        "poured_m3": st.floats(0.0, 1e4),
        "dumped_m3": st.floats(0.0, 1e3),
        "off_spec_m3": st.floats(0.0, 1e3),
        "binder_t_by_component": st.fixed_dictionaries(
            {"cement": st.floats(0.0, 100.0), "slag": st.floats(0.0, 100.0)}
        ),
        "dumped_binder_t_by_component": st.fixed_dictionaries({"cement": st.floats(0.0, 10.0)}),
        "average_solids_pct": st.one_of(st.none(), st.floats(60.0, 85.0)),
        "solids_measured_m3": st.floats(0.0, 1e4),
    }
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), summary_numbers), max_size=12))
def test_the_stages_add_up_to_the_stope(pours: list[tuple[int, dict[str, Any]]]) -> None:
    items = [StopePour(f"P-{i}", stage, totals) for i, (stage, totals) in enumerate(pours)]
    report = build_stope_report(STOPE, PLAN, start_plan(PLAN), items, [])
    whole = report.figures
    for key in ("placed_m3", "dumped_m3", "off_spec_m3", "binder_t", "dumped_binder_t"):
        parts = sum(getattr(s.figures, key) for s in report.stages)
        assert parts == pytest.approx(getattr(whole, key), rel=1e-9, abs=1e-9)
    assert sorted(whole.pours) == sorted(p for s in report.stages for p in s.figures.pours)
    averages = [s.figures.solids for s in report.stages if s.figures.solids.average_pct]
    if whole.solids.average_pct is not None:
        low = min(q.average_pct for q in averages if q.average_pct is not None)
        high = max(q.average_pct for q in averages if q.average_pct is not None)
        assert low - 1e-9 <= whole.solids.average_pct <= high + 1e-9


def test_the_csv_has_the_figures_the_series_and_no_formulas() -> None:
    stope = Stope("=cmd|' /C calc'!A0", GEOMETRY, 180.0)
    plan = FillPlan(
        GEOMETRY,
        (
            Stage("+plug", "-R1", 0.5, cure_hold_h=24.0, top_height_m=4.0),
            Stage("body", "R-body", 1.0, top_height_m=10.0),
        ),
    )
    p = start_stage(start_plan(plan), plan, hours(0))
    p, _ = on_volume(p, plan, 17.0, hours(6))
    p = release(p, plan, "@engineer", hours(30))
    text = stope_report_csv(build_stope_report(stope, plan, p, POURS[:2], trend(), max_points=20))
    head, _, tail = text.partition("\r\n\r\n")
    fields = dict(csv.reader(io.StringIO(head)))
    assert fields["stope.name"] == "'=cmd|' /C calc'!A0"
    assert fields["stage.0.name"] == "'+plug"
    assert fields["stage.0.recipe_id"] == "'-R1"
    assert fields["stage.0.released_by"] == "'@engineer"
    assert fields["stage.0.state"] == "released"
    assert fields["stage.1.state"] == "ready"
    assert fields["stope.state"] == "filling"
    assert fields["plan.continuous"] == "false"
    assert float(fields["stope.placed_m3"]) == pytest.approx(17.0)
    assert float(fields["stope.dumped_m3"]) == pytest.approx(1.5)
    assert float(fields["stage.0.dumped_binder_t.slag"]) == pytest.approx(0.06)
    assert float(fields["stage.0.average_solids_pct"]) == pytest.approx((720 + 140 + 362.5) / 17)
    assert fields["stage.0.cylinder.1"] == "C-1"
    assert fields["stage.0.hold_ends_at"] == "2026-03-02T12:00:00Z"
    assert fields["history.3.kind"] == "released" and fields["history.3.by"] == "'@engineer"
    assert fields["stage.1.started_at"] == ""
    rows = list(csv.DictReader(io.StringIO(tail)))
    assert {r["series"] for r in rows} == {"fill_height_m", "barricade_kpa"}
    assert len([r for r in rows if r["series"] == "fill_height_m"]) == 20
    tags = {r["tag"] for r in rows if r["series"] == "barricade_kpa"}
    assert tags == {"barricade_pressure_pv", "barricade_2_pressure_pv"}
    assert {r["stage"] for r in rows} == {"0"}  # the body never started
    peak = max(float(r["max"]) for r in rows if r["tag"] == "barricade_pressure_pv")
    assert peak == pytest.approx(150.0)
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


def test_the_csv_of_a_continuous_plan_lists_its_switch_points() -> None:
    plan = FillPlan(GEOMETRY, PLAN.stages, continuous=True)
    p = start_stage(start_plan(plan), plan, hours(0))
    p, _ = on_volume(p, plan, 16.5, hours(6))
    text = stope_report_csv(build_stope_report(STOPE, plan, p, (), [], max_points=5))
    head, _, _ = text.partition("\r\n\r\n")
    fields = dict(csv.reader(io.StringIO(head)))
    assert fields["plan.continuous"] == "true"
    assert fields["switch.1.from_recipe_id"] == "R-plug"
    assert fields["switch.1.to_recipe_id"] == "R-body"
    assert float(fields["switch.1.height_m"]) == pytest.approx(16.5 / 4.0)
    assert float(fields["switch.1.planned_height_m"]) == 4.0
    assert fields["switch.1.at"] == "2026-03-01T12:00:00Z"
