"""GET /metrics in the Prometheus text format, with the service's own series."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.helpers import eventually
from tests.integration.conftest import running_app


def _value(text: str, series: str) -> float | None:
    m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


async def test_metrics_report_the_control_loop_and_the_link(tmp_path: Path) -> None:
    async with running_app(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}") as (_app, client):

        async def cycled() -> str | None:
            r = await client.get("/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
            count = _value(r.text, "backfill_control_cycle_seconds_count")
            return r.text if count and count >= 2 else None

        text = await eventually(cycled, within_s=20, what="two control cycles")
        assert _value(text, "backfill_plc_connected") == 1.0
        age = _value(text, 'backfill_measurement_age_seconds{tag="paste_density_pv"}')
        assert age is not None and 0.0 <= age < 60.0
        assert _value(text, "backfill_plc_reconnects_total") == 0.0
        assert "# TYPE backfill_control_cycle_seconds histogram" in text
        assert _value(text, 'backfill_alarms_active{severity="critical"}') == 0.0
