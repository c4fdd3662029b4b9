"""The pour report an engineer hands to QA: the pour record, its recipe version, the
spec bands, its Cw reconciled beside the one it was controlled on (with the off-spec
volume on the best estimate), the compliance of its cylinders and the Cw/Bw trend over
the pour, as one CSV (and as JSON).

The bands are those the supervisor judged the pour by (``AlarmConfig``): Cw off-spec
beyond +-``solids_band_fraction`` (absolute), Bw beyond +-``binder_band_relative`` of
its target.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.core.control import AlarmConfig
from service.core.tabular import csv_cell
from service.operations.lab import Compliance, LabService
from service.operations.pours import pour_view
from service.operations.reconciled import PourReconciliation, reconcile_pour
from service.operations.supervisor import Supervisor
from service.store.history import HistoryStore, Trend
from service.store.records import RecipeRecord
from service.store.repository import Store

TREND_TAGS = ("solids_pct", "solids_pct_target", "binder_pct", "binder_pct_target")
MAX_TREND_ROWS = 1000


@dataclass(frozen=True)
class PourReport:
    pour: dict[str, Any]
    recipe: RecipeRecord
    bands: AlarmConfig
    trend: Trend
    compliance: Compliance | None = None
    reconciliation: PourReconciliation | None = None


def trend_step_s(span_s: float) -> int:
    """Seconds per trend row: at most about ``MAX_TREND_ROWS`` rows; from a minute up,
    whole minutes, so a long (or old) pour reads the minute table."""
    step = max(1, math.ceil(span_s / MAX_TREND_ROWS))
    if step > 30:
        step = 60 * math.ceil(step / 60)
    return step


async def build_pour_report(
    store: Store,
    supervisor: Supervisor,
    history: HistoryStore,
    pour_id: str,
    now: datetime,
    *,
    lab: LabService | None = None,
) -> PourReport:
    """``lab``: the service's lab loop, whose design pass fraction is the site's; without
    it the compliance is judged against the pass fraction a design states only."""
    record = await store.get_pour(pour_id)
    view = pour_view(record, supervisor)
    recipe = await store.get_recipe(record.recipe_id)
    start = view["started_at"]
    end = view["ended_at"] or now
    if start is None or end <= start:
        trend = Trend(1, "raw", [], {t: {"avg": [], "min": [], "max": []} for t in TREND_TAGS})
    else:
        span_s = (end - start).total_seconds()
        trend = await history.query(
            list(TREND_TAGS),
            int(start.timestamp() * 1000),
            int(end.timestamp() * 1000) + 1,
            trend_step_s(span_s),
        )
    if lab is None:
        lab = LabService.of_store(store, pass_fraction_pct=None)
    compliance = await lab.pour_compliance(pour_id)
    bands = supervisor.config.alarms
    reconciliation = await reconcile_pour(
        store, history, record, view, band_fraction=bands.solids_band_fraction, now=now
    )
    return PourReport(view, recipe, bands, trend, compliance, reconciliation)


def _round(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _in_band(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or low is None or high is None:
        return ""
    return "yes" if low <= value <= high else "no"


_POUR_FIELDS = (
    "id",
    "stope_id",
    "state",
    "target_volume_m3",
    "paste_flow_m3_h",
    "poured_m3",
    "progress_pct",
    "dry_tailings_t",
    "binder_t",
    "water_m3",
    "average_solids_pct",
    "min_solids_pct",
    "max_solids_pct",
    "average_binder_pct",
    "min_binder_pct",
    "max_binder_pct",
    "off_spec_m3",
    "startup_off_spec_m3",
    "flush_water_m3",
    "unmeasured_m3",
    "dumped_m3",
    "dumped_binder_t",
    "recovered_m3",
    "judged_on",
    "solids_sd_pct",
    "solids_tolerance_pct",
    "binder_sd_pct",
    "binder_tolerance_pct",
    "solids_verified",
    "solids_basis",
    "created_at",
    "created_by",
    "started_at",
    "ended_at",
)


def compliance_rows(compliance: Compliance) -> list[tuple[str, Any]]:
    """``field,value`` rows of the compliance of the pour's cylinders: where its
    requirements come from, per requirement the cylinders tested at its age, passed,
    the pass fraction with its interval against the design's, and the open notices."""
    basis = compliance.bases[0]
    rows: list[tuple[str, Any]] = [
        ("compliance.evaluated_at", compliance.evaluated_at),
        ("compliance.requirements_from", basis.source),
        ("compliance.samples", len(compliance.plans)),
    ]
    for i, entry in enumerate(
        (p for p in compliance.report.pass_fractions if p.group == "pour"), start=1
    ):
        pct = None if entry.fraction is None else 100.0 * entry.fraction
        low = None if entry.low is None else 100.0 * entry.low
        high = None if entry.high is None else 100.0 * entry.high
        design = entry.design_pass_fraction
        prefix = f"compliance.requirement.{i}"
        rows += [
            (f"{prefix}.name", entry.requirement),
            (f"{prefix}.required_ucs_kpa", entry.required_ucs_kpa),
            (f"{prefix}.curing_days", entry.curing_days),
            (f"{prefix}.tested", entry.n),
            (f"{prefix}.passed", entry.passed),
            (f"{prefix}.pass_pct", pct),
            (f"{prefix}.pass_pct_low", low),
            (f"{prefix}.pass_pct_high", high),
            (f"{prefix}.design_pass_pct", None if design is None else 100.0 * design),
            (f"{prefix}.verdict", entry.verdict),
        ]
    notices = compliance.report.notices
    rows.append(("compliance.notices", len(notices)))
    for i, notice in enumerate(notices, start=1):
        rows.append(
            (f"compliance.notice.{i}", f"{notice.severity.value} {notice.kind}: {notice.detail}")
        )
    return rows


def reconciliation_rows(reconciled: PourReconciliation) -> list[tuple[str, Any]]:
    """``field,value`` rows of the pour's Cw reconciliation: which estimate is the best
    (``basis``) and why, the correction it was controlled on and the one it is
    reconciled with, Cw as controlled and reconciled, and the off-spec volume on the
    best estimate beside the record's own."""
    rows: list[tuple[str, Any]] = [
        ("reconciliation.basis", reconciled.basis),
        ("reconciliation.detail", reconciled.detail),
    ]
    for name, correction in (
        ("controlled_with", reconciled.controlled_with),
        ("reconciled_with", reconciled.reconciled_with),
    ):
        if correction is None:
            rows.append((f"reconciliation.{name}", None))
            continue
        rows += [
            (f"reconciliation.{name}.id", correction.id),
            (f"reconciliation.{name}.kind", correction.kind),
            (f"reconciliation.{name}.tailings_sg", correction.tailings_sg),
            (f"reconciliation.{name}.density_bias_kg_m3", correction.density_bias_kg_m3),
        ]
    for name, figures in (
        ("as_controlled", reconciled.as_controlled),
        ("reconciled", reconciled.reconciled),
    ):
        for key in ("average_solids_pct", "min_solids_pct", "max_solids_pct"):
            rows.append(
                (f"reconciliation.{name}.{key}", None if figures is None else getattr(figures, key))
            )
    rows.append(("reconciliation.best_average_solids_pct", reconciled.best_average_solids_pct))
    off = reconciled.off_spec
    rows += [
        ("reconciliation.off_spec.basis", off.basis),
        ("reconciliation.off_spec.volume_m3", off.volume_m3),
        ("reconciliation.off_spec.as_controlled_m3", off.as_controlled_m3),
        ("reconciliation.off_spec.reconciled_m3", off.reconciled_m3),
        ("reconciliation.off_spec.unknown_m3", off.unknown_m3),
    ]
    return rows


def report_csv(report: PourReport) -> str:
    """Two blocks: ``field,value`` rows of the record, a blank line, then one row per
    trend step with the spec band and whether the step's average was inside it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    pour, recipe, bands = report.pour, report.recipe, report.bands
    w.writerow(["field", "value"])
    for name in _POUR_FIELDS:
        w.writerow([f"pour.{name}", csv_cell(pour.get(name))])
    for component, tonnes in sorted(pour["binder_t_by_component"].items()):
        w.writerow([f"pour.binder_t.{component}", csv_cell(float(tonnes))])
    w.writerow(["recipe.id", recipe.id])
    w.writerow(["recipe.name", csv_cell(recipe.name)])
    w.writerow(["recipe.version", recipe.version])
    w.writerow(["recipe.approved_by", csv_cell(recipe.approved_by)])
    w.writerow(["recipe.calibration_id", csv_cell(recipe.calibration_id)])
    w.writerow(["recipe.binder_pct", csv_cell(float(recipe.mix["binder_pct"]))])
    w.writerow(["recipe.solids_pct", csv_cell(float(recipe.mix["solids_pct"]))])
    for comp in recipe.mix["binder"]:
        w.writerow([f"recipe.blend_pct.{comp['name']}", csv_cell(float(comp["fraction_pct"]))])
    w.writerow(["spec.solids_band_pct_points", csv_cell(100.0 * bands.solids_band_fraction)])
    w.writerow(["spec.binder_band_relative_pct", csv_cell(100.0 * bands.binder_band_relative)])
    for i, stop in enumerate(pour["interruptions"], start=1):
        w.writerow([f"interruption.{i}.reason", csv_cell(stop.get("reason"))])
        w.writerow([f"interruption.{i}.started_at", csv_cell(stop.get("started_at"))])
        w.writerow([f"interruption.{i}.ended_at", csv_cell(stop.get("ended_at"))])
        for key in ("detail", "recovered_m3", "recovered_basis", "recovered_to"):
            if stop.get(key) is not None:
                w.writerow([f"interruption.{i}.{key}", csv_cell(stop.get(key))])
    for i, sample in enumerate(pour["sample_ids"], start=1):
        w.writerow([f"sample.{i}", csv_cell(sample)])
    if report.reconciliation is not None:
        for name, value in reconciliation_rows(report.reconciliation):
            w.writerow([csv_cell(name), csv_cell(value)])
    if report.compliance is not None:
        for name, value in compliance_rows(report.compliance):
            w.writerow([csv_cell(name), csv_cell(value)])
    w.writerow([])

    w.writerow(
        [
            "time_utc",
            "solids_pct",
            "solids_pct_target",
            "solids_pct_low",
            "solids_pct_high",
            "solids_in_spec",
            "binder_pct",
            "binder_pct_target",
            "binder_pct_low",
            "binder_pct_high",
            "binder_in_spec",
        ]
    )
    series = report.trend.series
    solids_band = 100.0 * bands.solids_band_fraction
    for i, t_ms in enumerate(report.trend.t_ms):
        cw = series["solids_pct"]["avg"][i]
        cw_target = series["solids_pct_target"]["avg"][i]
        bw = series["binder_pct"]["avg"][i]
        bw_target = series["binder_pct_target"]["avg"][i]
        cw_low = None if cw_target is None else cw_target - solids_band
        cw_high = None if cw_target is None else cw_target + solids_band
        bw_low = None if bw_target is None else bw_target * (1 - bands.binder_band_relative)
        bw_high = None if bw_target is None else bw_target * (1 + bands.binder_band_relative)
        w.writerow(
            [
                csv_cell(datetime.fromtimestamp(t_ms / 1000, UTC)),
                _round(cw),
                _round(cw_target),
                _round(cw_low),
                _round(cw_high),
                _in_band(cw, cw_low, cw_high),
                _round(bw),
                _round(bw_target),
                _round(bw_low),
                _round(bw_high),
                _in_band(bw, bw_low, bw_high),
            ]
        )
    return out.getvalue()
