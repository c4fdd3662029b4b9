"""A pour's Cw reconciled beside the one it was controlled on, and its off-spec volume
judged on the best estimate. Records are never rewritten: this is computed when a pour
is read, from its record, its recipe, the history and the newest approved correction.

- The Cw a pour was controlled on is the slurry relation (rho = rho_w / (Cw/Gs_s + 1 -
  Cw), Wills & Finch 2016, ch. 3; Gs_s = (1 + Bw)/(1/Gs_t + Bw/Gs_b), Belem & Benzaazoua
  2008; full references in :mod:`service.core.reconcile`) at the gauge's density and the
  Gs control used (its recipe's, or the correction it was started under). Inverting it
  gives back the gauge reading behind each of the pour's Cw figures, and the correction
  gives the reconciled Cw of that reading (:func:`service.core.reconcile.reconcile_record`).
  The relation is monotonic, so the minimum and maximum map exactly; the volume-weighted
  average maps to within the relation's curvature over the pour's spread (second order,
  well under 0.01 point for a spread of a few points).
- Off-spec volume on the best estimate: the history's paste density over the pour (its
  steps while the plant ran, each weighted by the paste flow) is judged against the
  recipe's Cw band (the ``solids_off_spec`` band of the alarms) as reconciled
  (:func:`service.core.reconcile.off_spec_volume`); that off-spec share of the judged
  paste, times the volume the pour placed, is the reconciled off-spec volume. Without
  a correction that applies, or without history, the record's own off-spec volume (as
  controlled) is the best estimate, and ``basis`` says which was used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from service.core.reconcile import (
    DensityInterval,
    off_spec_volume,
    reconcile_record,
    saturated_density_kg_m3,
    solids_sg,
)
from service.errors import NotFound
from service.operations.corrections import (
    Correction,
    Paste,
    active_correction,
    correction_for,
    paste_of,
    pour_correction,
)
from service.store.history import HistoryStore
from service.store.records import PourRecord
from service.store.repository import Store

Basis = Literal["reconciled", "as_controlled"]
PLANT_RUNNING = 2  # plant_mode (docs/INTEGRATION.md "PLC interface"): 2 running
MAX_STEPS = 2000
_TAGS = ("paste_density_pv", "paste_flow_pv", "plant_mode")


@dataclass(frozen=True)
class SolidsFigures:
    """Average (volume-weighted), minimum and maximum Cw of a pour, % of paste mass."""

    average_solids_pct: float | None
    min_solids_pct: float | None
    max_solids_pct: float | None


@dataclass(frozen=True)
class OffSpec:
    """Off-spec volume: ``volume_m3`` is the one that counts, judged on ``basis``;
    ``as_controlled_m3`` the record's own; ``reconciled_m3`` / ``unknown_m3`` (no
    usable density) from the history, scaled to the placed volume (None without)."""

    basis: Basis
    volume_m3: float
    as_controlled_m3: float
    reconciled_m3: float | None
    unknown_m3: float | None
    history_step_s: int | None


@dataclass(frozen=True)
class PourReconciliation:
    """The pour's Cw as controlled and reconciled, and which is the best estimate."""

    basis: Basis
    detail: str
    reconciled_with: Correction | None
    controlled_with: Correction | None
    as_controlled: SolidsFigures
    reconciled: SolidsFigures | None
    best_average_solids_pct: float | None
    off_spec: OffSpec

    def to_dict(self) -> dict[str, Any]:
        def figures(f: SolidsFigures | None) -> dict[str, Any] | None:
            return None if f is None else dict(f.__dict__)

        return {
            "basis": self.basis,
            "detail": self.detail,
            "reconciled_with": None
            if self.reconciled_with is None
            else self.reconciled_with.to_pour(),
            "controlled_with": None
            if self.controlled_with is None
            else self.controlled_with.to_pour(),
            "as_controlled": figures(self.as_controlled),
            "reconciled": figures(self.reconciled),
            "best_average_solids_pct": self.best_average_solids_pct,
            "off_spec": dict(self.off_spec.__dict__),
        }


def history_step_s(span_s: float) -> int:
    """Seconds per history step: at most about ``MAX_STEPS`` steps; from a minute up,
    whole minutes (the minute table)."""
    step = max(1, math.ceil(span_s / MAX_STEPS))
    if step > 30:
        step = 60 * math.ceil(step / 60)
    return step


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def reconciled_solids_pct(
    controlled_pct: float | None,
    paste: Paste,
    controlled_with: Correction | None,
    correction: Correction,
) -> float | None:
    """A Cw figure of the pour (as controlled, %) reconciled with ``correction``: the
    gauge reading behind it (the slurry relation inverted at the Gs control used, the
    bias it took off added back), recomputed with the correction."""
    if controlled_pct is None or not 0.0 < controlled_pct < 100.0:
        return None
    gs_used, bias_used = paste.tailings_sg, 0.0
    if controlled_with is not None and controlled_with.kind == "tailings_gs":
        gs_used = controlled_with.tailings_sg or gs_used
    elif controlled_with is not None and controlled_with.density_bias_kg_m3 is not None:
        bias_used = controlled_with.density_bias_kg_m3
    seen = saturated_density_kg_m3(
        controlled_pct / 100.0, solids_sg(gs_used, paste.binder_ratio, paste.binder_sg)
    )
    record = reconcile_record(
        seen + bias_used,
        binder_ratio=paste.binder_ratio,
        binder_sg=paste.binder_sg,
        tailings_sg=paste.tailings_sg,
        correction=correction.core(),
    )
    return None if record.reconciled is None else 100.0 * record.reconciled


async def _history_intervals(
    history: HistoryStore, start: datetime, end: datetime
) -> tuple[list[DensityInterval], int]:
    span_s = max((end - start).total_seconds(), 1.0)
    step = history_step_s(span_s)
    trend = await history.query(
        list(_TAGS), int(start.timestamp() * 1000), int(end.timestamp() * 1000) + 1, step
    )
    density = trend.series["paste_density_pv"]["avg"]
    flow = trend.series["paste_flow_pv"]["avg"]
    mode_min = trend.series["plant_mode"]["min"]
    mode_max = trend.series["plant_mode"]["max"]
    out = []
    for rho, q, lo, hi in zip(density, flow, mode_min, mode_max, strict=True):
        if lo != PLANT_RUNNING or hi != PLANT_RUNNING or q is None or not q > 0.0:
            continue  # stopped, flushing, paused: no paste placed in this step
        volume = q * step / 3600.0
        out.append(DensityInterval(volume, rho if rho is not None and rho > 0.0 else None))
    return out, step


async def reconcile_pour(
    store: Store,
    history: HistoryStore,
    record: PourRecord,
    view: dict[str, Any],
    *,
    band_fraction: float,
    now: datetime,
) -> PourReconciliation:
    """The reconciliation of a pour read now (module docstring). ``view`` is the pour's
    public view (its totals, the live ones of a running pour); ``band_fraction`` the Cw
    band of the alarms (absolute, 0.01 = one point)."""
    as_controlled = SolidsFigures(
        _float(view.get("average_solids_pct")),
        _float(view.get("min_solids_pct")),
        _float(view.get("max_solids_pct")),
    )
    record_off_spec = _float(view.get("off_spec_m3")) or 0.0
    controlled_with = pour_correction(record)

    def unreconciled(detail: str, active: Correction | None = None) -> PourReconciliation:
        return PourReconciliation(
            basis="as_controlled",
            detail=detail,
            reconciled_with=active,
            controlled_with=controlled_with,
            as_controlled=as_controlled,
            reconciled=None,
            best_average_solids_pct=as_controlled.average_solids_pct,
            off_spec=OffSpec("as_controlled", record_off_spec, record_off_spec, None, None, None),
        )

    active = await active_correction(store)
    if active is None:
        return unreconciled("no correction is approved: the Cw as controlled is the best")
    try:
        recipe = await store.get_recipe(record.recipe_id)
    except NotFound:
        return unreconciled("the pour's recipe is gone: its Cw cannot be reconciled")
    paste = paste_of(recipe.mix)
    if isinstance(paste, str):
        return unreconciled(f"not reconciled: {paste}")
    correction = correction_for(recipe.mix, active)
    if correction is None:
        return unreconciled(
            f"the approved correction {active.id} is for tailings of Gs "
            f"{active.assumed_tailings_sg:g}; this recipe assumes {paste.tailings_sg:g}",
        )
    reconciled = SolidsFigures(
        *(
            reconciled_solids_pct(value, paste, controlled_with, correction)
            for value in (
                as_controlled.average_solids_pct,
                as_controlled.min_solids_pct,
                as_controlled.max_solids_pct,
            )
        )
    )
    what = (
        f"tailings Gs {correction.tailings_sg:.3f} (the recipe's {paste.tailings_sg:g})"
        if correction.kind == "tailings_gs"
        else f"the paste density gauge reading {correction.density_bias_kg_m3:+.1f} kg/m3"
    )
    detail = f"reconciled with correction {correction.id}: {what}"
    off_spec = OffSpec("as_controlled", record_off_spec, record_off_spec, None, None, None)
    placed = _float(view.get("poured_m3")) or 0.0
    start = record.started_at
    if start is not None:
        end = record.ended_at or now
        intervals, step = await _history_intervals(history, start, end)
        judged = sum(i.volume_m3 for i in intervals)
        if judged > 0.0:
            result = off_spec_volume(
                intervals,
                target_solids_fraction=paste.solids_fraction,
                band_fraction=band_fraction,
                binder_ratio=paste.binder_ratio,
                binder_sg=paste.binder_sg,
                tailings_sg=paste.tailings_sg,
                correction=correction.core(),
            )
            assert result.reconciled_volume_m3 is not None  # a correction was given
            scale = placed / judged
            off_spec = OffSpec(
                "reconciled",
                result.reconciled_volume_m3 * scale,
                record_off_spec,
                result.reconciled_volume_m3 * scale,
                result.unknown_volume_m3 * scale,
                step,
            )
    if off_spec.basis == "as_controlled":
        detail += "; no density history over the pour: off-spec volume as controlled"
    return PourReconciliation(
        basis="reconciled",
        detail=detail,
        reconciled_with=correction,
        controlled_with=controlled_with,
        as_controlled=as_controlled,
        reconciled=reconciled,
        best_average_solids_pct=(
            reconciled.average_solids_pct
            if reconciled.average_solids_pct is not None
            else as_controlled.average_solids_pct
        ),
        off_spec=off_spec,
    )
