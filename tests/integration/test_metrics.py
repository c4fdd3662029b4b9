"""GET /metrics from the Prometheus client: the service's own series, the process and
Python collectors, and the HTTP requests by route template and status."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from service.metrics import ServiceMetrics
from tests.conftest import auth
from tests.e2e.helpers import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _value(text: str, series: str) -> float | None:
    m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


def _types(text: str) -> dict[str, str]:
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def _requests(text: str) -> list[Sample]:
    for family in text_string_to_metric_families(text):
        if family.name == "backfill_http_requests":
            return [s for s in family.samples if s.name == "backfill_http_requests_total"]
    return []


async def test_metrics_report_the_control_loop_and_the_link(client: httpx.AsyncClient) -> None:
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


async def test_the_reconnect_count_is_a_counter(client: httpx.AsyncClient) -> None:
    """It was typed as a gauge (a ``_total`` gauge fails promtool); counters are
    counters, each with its ``_total``."""
    text = (await client.get("/metrics")).text
    assert "# TYPE backfill_plc_reconnects_total counter" in text
    types = _types(text)
    for counter in (
        "backfill_plc_reconnects",
        "backfill_control_cycle_overruns",
        "backfill_setpoint_write_failures",
        "backfill_http_requests",
    ):
        assert types[counter] == "counter", counter
    assert types["backfill_plc_connected"] == "gauge"
    assert "_created" not in text


async def test_process_and_python_metrics(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    types = _types(text)
    for name, kind in {
        "process_resident_memory_bytes": "gauge",
        "process_cpu_seconds": "counter",
        "process_open_fds": "gauge",
        "process_start_time_seconds": "gauge",
        "python_gc_collections": "counter",
        "python_info": "gauge",
    }.items():
        assert types.get(name) == kind, name
    assert (_value(text, "process_open_fds") or 0.0) > 0.0


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    raw_id = "no-such-pour-4711"
    for _ in range(2):
        assert (await client.get(f"/api/v1/pours/{raw_id}", headers=auth("hmi"))).status_code == 404
    assert (await client.get("/api/v1/pours", headers=auth("hmi"))).status_code == 200
    assert (await client.post(f"/api/v1/pours/{raw_id}/start")).status_code == 401
    assert (await client.get(f"/no/such/{raw_id}")).status_code == 404
    assert (await client.get("/healthz")).status_code == 200

    text = (await client.get("/metrics")).text
    assert raw_id not in text, "a raw path in a label: unbounded series"
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in _requests(text)
    }
    assert counts[("GET", "/api/v1/pours/{pour_id}", "404")] == 2.0
    assert counts[("GET", "/api/v1/pours", "200")] >= 1.0
    assert counts[("POST", "/api/v1/pours/{pour_id}/start", "401")] >= 1.0
    assert counts[("GET", "unrouted", "404")] >= 1.0
    assert counts[("GET", "/healthz", "200")] >= 1.0
    assert all(route.startswith("/") or route == "unrouted" for _, route, _ in counts)
    # The latency histogram carries the same labels.
    assert (
        _value(
            text,
            "backfill_http_request_duration_seconds_count"
            '{method="GET",route="/api/v1/pours/{pour_id}",status="404"}',
        )
        == 2.0
    )


async def test_openmetrics_for_a_scraper_that_asks(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")


async def test_each_application_has_its_own_registry() -> None:
    """Tests build several apps in one process: their series never mix."""
    first, second = ServiceMetrics(), ServiceMetrics()
    first.http.observe("GET", "/healthz", 200, 0.001)
    first_text = first.exposition(None)[0].decode()
    second_text = second.exposition(None)[0].decode()
    assert "backfill_http_requests_total{" in first_text
    assert "backfill_http_requests_total{" not in second_text
    assert "process_resident_memory_bytes" in second_text
