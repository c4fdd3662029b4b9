"""A stope's report from its records: the stope, its plan and progress, the pours of its
stages (the running one's live totals included) and the fill height and barricade
pressure from the history; the figures themselves are the core's
(:mod:`service.core.stope_report`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from service.core import stope_report as R
from service.errors import Conflict
from service.operations import pours as ops
from service.operations.stopes import StopeService, StopeView
from service.operations.supervisor import Supervisor
from service.store.history import HistoryStore
from service.store.records import PourRecord

BARRICADE_TAG = "barricade_pressure_pv"  # the one the history keeps


async def build_stope_report(
    stope_id: str, stopes: StopeService, supervisor: Supervisor, history: HistoryStore
) -> R.StopeReport:
    """The report of a stope with a fill plan (else a 409 ``plan_not_found``)."""
    view = await stopes.view(stope_id)
    if view.plan is None or view.progress is None:
        raise Conflict(f"stope {view.record.name!r} has no fill plan", code="plan_not_found")
    pours = list(reversed(await stopes.pours(view.record.name)))  # oldest first
    stope_pours = []
    for record in pours:
        if record.stage is None:
            continue  # a pour of the stope's name made without its plan
        totals = ops.pour_view(record, supervisor)
        stope_pours.append(
            R.StopePour(
                pour_id=record.id,
                stage=record.stage,
                totals=totals,
                interruptions=tuple(record.interruptions),
                sample_ids=tuple(record.sample_ids),
                started_at=record.started_at,
                ended_at=record.ended_at,
                recipe_id=record.recipe_id,
            )
        )
    trend = await _trend(pours, view, history)
    return R.build_stope_report(view.stope, view.plan, view.progress, stope_pours, trend)


async def _trend(
    pours: list[PourRecord], view: StopeView, history: HistoryStore
) -> list[R.TrendSample]:
    """Fill height and barricade pressure from the history (wall time, as the pours'
    times), from the stope's first pour to now; each stage takes its own window of it
    (:func:`service.core.stope_report.stage_windows`). The barricade's series is the
    stope's own barricade's, where the history keeps it."""
    starts = [p.started_at for p in pours if p.started_at is not None]
    if not starts:
        return []
    begin = min(starts)
    end = datetime.now(UTC)
    span_s = max((end - begin).total_seconds(), 1.0)
    step = max(1, math.ceil(span_s / 4000))
    trend = await history.query(
        ["fill_height_m", BARRICADE_TAG],
        int(begin.timestamp() * 1000),
        int(end.timestamp() * 1000),
        step,
    )
    heights = trend.series["fill_height_m"]["avg"]
    pressures = trend.series[BARRICADE_TAG]["avg"]
    tags = view.barricade_tags
    if tags is not None and BARRICADE_TAG not in tags:
        # The history keeps the first barricade's tag only: not this stope's.
        pressures = [None] * len(pressures)
    return [
        R.TrendSample(
            datetime.fromtimestamp(t / 1000, UTC), h, {} if p is None else {BARRICADE_TAG: p}
        )
        for t, h, p in zip(trend.t_ms, heights, pressures, strict=True)
        if h is not None or p is not None
    ]
