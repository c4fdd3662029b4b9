"""The pour report as a QA-friendly CSV (issue 5: "downloadable as CSV")."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from service.api.deps import PathId, PrincipalDep, RuntimeDep, StoreDep
from service.operations.pour_report import build_pour_report, report_csv

router = APIRouter(tags=["pours"])


@router.get(
    "/pours/{pour_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def pour_report_csv(
    pour_id: PathId, store: StoreDep, runtime: RuntimeDep, _: PrincipalDep
) -> Response:
    """The pour record, its recipe version and spec bands as ``field,value`` rows, then
    the Cw/Bw trend over the pour with the band and an in-spec flag per step."""
    report = await build_pour_report(
        store, runtime.supervisor, runtime.history, pour_id, datetime.now(UTC), lab=runtime.lab
    )
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="pour-{report.pour["id"]}.csv"'},
    )
