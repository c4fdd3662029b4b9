"""Bulk export: the pours, the stopes' stages, the measurement history and the audit log,
as tables for a plant historian, a monthly reconciliation or a notebook.

Each dataset is its columns (name, kind, unit: :mod:`service.core.tabular`) and an
asynchronous source of row batches read from the store a page at a time in a stable
order (pours by creation, history by time, audit entries by id, so rows written
meanwhile come at the end and none is given twice). The route streams the batches through
a CSV or Parquet writer; memory stays one page, whatever the range.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.core import stope_report as R
from service.core.control.massbalance import BINDER_COMPONENTS
from service.core.tabular import Column, Kind
from service.errors import BackfillError
from service.operations import pours as ops
from service.operations.stope_reports import build_stope_report
from service.operations.stopes import StopeService
from service.operations.supervisor import Supervisor
from service.plant.port import MEASUREMENT_UNITS, SETPOINT_UNITS
from service.store.history import HISTORY_TAGS, HistoryStore, check_tags
from service.store.repository import Store

PAGE = 1000
Batch = list[dict[str, Any]]
TEXT, NUM, INT, FLAG, TIME = Kind.TEXT, Kind.FLOAT, Kind.INT, Kind.BOOL, Kind.TIME

# Cw and Bw placed, as pours and stages report them: volume-weighted average and range.
_CW_BW: tuple[Column, ...] = tuple(
    Column(f"{stat}_{what}_pct", NUM, "%")
    for what in ("solids", "binder")
    for stat in ("average", "min", "max")
)

# --- pours ------------------------------------------------------------------------------

POUR_COLUMNS: tuple[Column, ...] = (
    Column("id", TEXT),
    Column("stope_id", TEXT),
    Column("recipe_id", TEXT),
    Column("plan_id", TEXT),
    Column("stage", INT),
    Column("state", TEXT),
    Column("created_at", TIME),
    Column("created_by", TEXT),
    Column("started_at", TIME),
    Column("ended_at", TIME),
    Column("target_volume_m3", NUM, "m3"),
    Column("paste_flow_m3_h", NUM, "m3/h"),
    Column("poured_m3", NUM, "m3"),
    Column("unmeasured_m3", NUM, "m3"),
    Column("off_spec_m3", NUM, "m3"),
    Column("startup_off_spec_m3", NUM, "m3"),
    Column("dry_tailings_t", NUM, "t"),
    Column("binder_t", NUM, "t"),
    *(Column(f"binder_{c}_t", NUM, "t") for c in BINDER_COMPONENTS),
    Column("water_m3", NUM, "m3"),
    Column("flush_water_m3", NUM, "m3"),
    *_CW_BW,
    Column("dumped_m3", NUM, "m3"),
    Column("dumped_binder_t", NUM, "t"),
    Column("interruptions", INT),
    Column("samples", INT),
    Column("correction_id", TEXT),
)


def pour_row(view: dict[str, Any]) -> dict[str, Any]:
    """A pour's view (:func:`service.operations.pours.pour_view`) as one flat row."""
    row = dict(view)
    by_component = view.get("binder_t_by_component") or {}
    for component in BINDER_COMPONENTS:
        row[f"binder_{component}_t"] = by_component.get(component, 0.0)
    row["interruptions"] = len(view.get("interruptions") or [])
    row["samples"] = len(view.get("sample_ids") or [])
    correction = view.get("correction")
    row["correction_id"] = correction.get("id") if isinstance(correction, dict) else None
    return row


async def pour_batches(
    store: Store,
    supervisor: Supervisor | None,
    *,
    created_from: datetime | None,
    created_to: datetime | None,
    state: str | None,
) -> AsyncIterator[Batch]:
    """Pours made in [``created_from``, ``created_to``), oldest first; the running
    pour with its live totals."""
    after: tuple[datetime, str] | None = None
    while True:
        page = await store.page_pours(
            after=after,
            limit=PAGE,
            created_from=created_from,
            created_to=created_to,
            state=state,
        )
        if not page:
            return
        yield [pour_row(ops.pour_view(record, supervisor)) for record in page]
        after = (page[-1].created_at, page[-1].id)


# --- stope stages -----------------------------------------------------------------------

STAGE_COLUMNS: tuple[Column, ...] = (
    Column("stope", TEXT),
    Column("stope_state", TEXT),
    Column("plan_version", INT),
    Column("continuous", FLAG),
    Column("plan_area_m2", NUM, "m2"),
    Column("stope_height_m", NUM, "m"),
    Column("barricade_rating_kpa", NUM, "kPa"),
    Column("stage_index", INT),
    Column("stage", TEXT),
    Column("stage_state", TEXT),
    Column("recipe_id", TEXT),
    Column("top_height_m", NUM, "m"),
    Column("planned_volume_m3", NUM, "m3"),
    Column("max_rise_rate_m_h", NUM, "m/h"),
    Column("cure_hold_h", NUM, "h"),
    Column("started_at", TIME),
    Column("top_reached_at", TIME),
    Column("hold_ends_at", TIME),
    Column("released_at", TIME),
    Column("released_by", TEXT),
    Column("placed_m3", NUM, "m3"),
    Column("dumped_m3", NUM, "m3"),
    Column("off_spec_m3", NUM, "m3"),
    Column("startup_off_spec_m3", NUM, "m3"),
    Column("unmeasured_m3", NUM, "m3"),
    Column("dry_tailings_t", NUM, "t"),
    Column("water_m3", NUM, "m3"),
    Column("binder_t", NUM, "t"),
    *(Column(f"binder_{c}_t", NUM, "t") for c in BINDER_COMPONENTS),
    Column("dumped_binder_t", NUM, "t"),
    *_CW_BW,
    Column("pours", INT),
    Column("cylinders", INT),
    Column("interruptions", INT),
)


def stage_rows(report: R.StopeReport) -> Batch:
    """One row per stage of a stope's report."""
    rows = []
    for stage in report.stages:
        f = stage.figures
        rows.append(
            {
                "stope": report.stope,
                "stope_state": report.state.value,
                "plan_version": report.plan_version,
                "continuous": report.continuous,
                "plan_area_m2": report.plan_area_m2,
                "stope_height_m": report.stope_height_m,
                "barricade_rating_kpa": report.barricade_rating_kpa,
                "stage_index": stage.index,
                "stage": stage.name,
                "stage_state": stage.state.value,
                "recipe_id": stage.recipe_id,
                "top_height_m": stage.top_height_m,
                "planned_volume_m3": stage.planned_volume_m3,
                "max_rise_rate_m_h": stage.max_rise_rate_m_h,
                "cure_hold_h": stage.cure_hold_h,
                "started_at": stage.started_at,
                "top_reached_at": stage.top_reached_at,
                "hold_ends_at": stage.hold_ends_at,
                "released_at": stage.released_at,
                "released_by": stage.released_by,
                "placed_m3": f.placed_m3,
                "dumped_m3": f.dumped_m3,
                "off_spec_m3": f.off_spec_m3,
                "startup_off_spec_m3": f.startup_off_spec_m3,
                "unmeasured_m3": f.unmeasured_m3,
                "dry_tailings_t": f.dry_tailings_t,
                "water_m3": f.water_m3,
                "binder_t": f.binder_t,
                **{f"binder_{c}_t": f.binder_t_by_component.get(c, 0.0) for c in BINDER_COMPONENTS},
                "dumped_binder_t": f.dumped_binder_t,
                "average_solids_pct": f.solids.average_pct,
                "min_solids_pct": f.solids.min_pct,
                "max_solids_pct": f.solids.max_pct,
                "average_binder_pct": f.binder.average_pct,
                "min_binder_pct": f.binder.min_pct,
                "max_binder_pct": f.binder.max_pct,
                "pours": len(f.pours),
                "cylinders": len(f.cylinders),
                "interruptions": f.interruptions,
            }
        )
    return rows


async def stage_batches(
    stopes: StopeService, supervisor: Supervisor, history: HistoryStore
) -> AsyncIterator[Batch]:
    """Every stage of every stope with a fill plan, a stope per batch, in the order the
    stopes were made."""
    for view in await stopes.views():
        if view.plan is None:
            continue
        try:
            report = await build_stope_report(view.record.id, stopes, supervisor, history)
        except BackfillError as err:
            if err.code == "plan_not_found":  # its plan went meanwhile
                continue
            raise
        yield stage_rows(report)


# --- history ----------------------------------------------------------------------------

_DERIVED_UNITS = {
    "solids_pct": "%",
    "binder_pct": "%",
    "solids_pct_target": "%",
    "binder_pct_target": "%",
    "fill_height_m": "m",
    "mass_balance_residual_t_h": "t/h",
    "instrument_disagreement": "flag",
}


def tag_unit(tag: str) -> str:
    return MEASUREMENT_UNITS.get(tag) or SETPOINT_UNITS.get(tag) or _DERIVED_UNITS.get(tag, "")


@dataclass(frozen=True)
class HistoryExport:
    """Which history: ``tags`` (all when empty) of the raw or the minute rows."""

    tags: tuple[str, ...]
    minute: bool

    @classmethod
    def of(cls, tags: Sequence[str], *, minute: bool) -> HistoryExport:
        return cls(tuple(check_tags(tags) if tags else HISTORY_TAGS), minute)

    @property
    def columns(self) -> tuple[Column, ...]:
        first = (Column("time", TIME),)
        if not self.minute:
            return first + tuple(Column(tag, NUM, tag_unit(tag)) for tag in self.tags)
        return (
            *first,
            Column("samples", INT),
            *(
                Column(f"{tag}_{agg}", NUM, tag_unit(tag))
                for tag in self.tags
                for agg in ("avg", "min", "max")
            ),
        )

    async def batches(
        self, history: HistoryStore, from_ms: int, to_ms: int
    ) -> AsyncIterator[Batch]:
        after: int | None = None
        while True:
            page = await history.rows(
                self.tags, from_ms, to_ms, minute=self.minute, after_ms=after, limit=PAGE
            )
            if not page:
                return
            for row in page:
                row["time"] = datetime.fromtimestamp(row["ts_ms"] / 1000, UTC)
            yield page
            after = int(page[-1]["ts_ms"])


# --- audit ------------------------------------------------------------------------------

AUDIT_COLUMNS: tuple[Column, ...] = (
    Column("id", INT),
    Column("at", TIME),
    Column("kind", TEXT),
    Column("reason", TEXT),
    Column("role", TEXT),
    Column("person", TEXT),
    Column("pour_id", TEXT),
    Column("seq", INT),
    Column("acknowledged", FLAG),
    Column("old", TEXT),
    Column("new", TEXT),
    Column("detail", TEXT),
    Column("hash", TEXT),
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


async def audit_batches(
    store: Store,
    *,
    at_from: datetime | None,
    at_to: datetime | None,
    pour_id: str | None,
) -> AsyncIterator[Batch]:
    """Audit entries, oldest first; ``old`` and ``new`` as compact JSON text, the
    entry's ``hash`` to check the chain against."""
    after = 0
    while True:
        page = await store.list_audit(
            after_id=after, limit=PAGE, pour_id=pour_id, at_from=at_from, at_to=at_to
        )
        if not page:
            return
        yield [
            {
                "id": e.id,
                "at": e.at,
                "kind": e.kind,
                "reason": e.reason,
                "role": e.role,
                "person": e.person,
                "pour_id": e.pour_id,
                "seq": e.seq,
                "acknowledged": e.acknowledged,
                "old": _json(e.old),
                "new": _json(e.new),
                "detail": e.detail,
                "hash": e.hash,
            }
            for e in page
        ]
        after = page[-1].id
