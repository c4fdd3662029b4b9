"""The pour report: a QA-friendly CSV (issue 5: "downloadable as CSV") and the same as
JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Response

from service.api.deps import PathId, RuntimeDep, StoreDep
from service.api.routes import api_router
from service.api.routes.samples import compliance_public
from service.api.schemas.plant import TrendPublic
from service.api.schemas.pours import PourPublic
from service.api.schemas.reports import PourReportPublic, ReportRecipePublic, ReportSpecPublic
from service.operations.pour_report import PourReport, build_pour_report, report_csv
from service.runtime import Runtime

router = api_router("pours")


async def _report(pour_id: str, runtime: Runtime, now: datetime) -> PourReport:
    return await build_pour_report(
        runtime.store, runtime.supervisor, runtime.history, pour_id, now, lab=runtime.lab
    )


@router.get(
    "/pours/{pour_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def pour_report_csv(pour_id: PathId, store: StoreDep, runtime: RuntimeDep) -> Response:
    """The pour record, its recipe version and spec bands, its Cw reconciled beside the
    one it was controlled on, the compliance of its cylinders as ``field,value`` rows,
    then the Cw/Bw trend over the pour with the band and an in-spec flag per step."""
    report = await _report(pour_id, runtime, datetime.now(UTC))
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="pour-{report.pour["id"]}.csv"'},
    )


@router.get("/pours/{pour_id}/report", response_model=PourReportPublic)
async def pour_report(pour_id: PathId, runtime: RuntimeDep) -> PourReportPublic:
    """The pour report as JSON: what the CSV holds."""
    now = datetime.now(UTC)
    report = await _report(pour_id, runtime, now)
    recipe, mix, bands = report.recipe, report.recipe.mix, report.bands
    start = report.pour["started_at"]
    end = report.pour["ended_at"] or now
    trend = report.trend
    return PourReportPublic(
        pour=PourPublic(
            **report.pour,
            reconciliation=(
                None if report.reconciliation is None else report.reconciliation.to_dict()
            ),
        ),
        recipe=ReportRecipePublic(
            id=recipe.id,
            name=recipe.name,
            version=recipe.version,
            approved_by=recipe.approved_by,
            approved_at=recipe.approved_at,
            calibration_id=recipe.calibration_id,
            binder_pct=float(mix["binder_pct"]),
            solids_pct=float(mix["solids_pct"]),
            tailings_sg=float(mix["tailings"]["specific_gravity"]),
            blend_pct={str(c["name"]): float(c["fraction_pct"]) for c in mix["binder"]},
        ),
        spec=ReportSpecPublic(
            solids_band_pct_points=100.0 * bands.solids_band_fraction,
            binder_band_relative_pct=100.0 * bands.binder_band_relative,
        ),
        compliance=None if report.compliance is None else compliance_public(report.compliance),
        trend=TrendPublic(
            from_=start or now,
            to=end,
            step_s=trend.step_s,
            source=trend.source,
            t=[datetime.fromtimestamp(ms / 1000, UTC) for ms in trend.t_ms],
            series=trend.series,
        ),
    )
