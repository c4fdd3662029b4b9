"""The service's Prometheus metrics, on the official client (``prometheus_client``).

Each application has its own ``CollectorRegistry`` (the tests build several apps in one
process; the client's global registry would mix them), holding:

- the domain series: control cycle, setpoint writes, the PLC link, alarms, the pour;
- the HTTP requests by method, route template and status
  (``service/api/request_metrics.py`` records them);
- the client's process and Python collectors: memory, CPU, open file descriptors,
  start time (``process_*``), the interpreter (``python_info``) and the garbage
  collector (``python_gc_*``).

A value another component owns (the link's reconnections, each measurement's age, the
open event streams) is read when scraped, through a callback, so it is never stale and
costs nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

# A callback yields (labels, value) pairs, read at scrape time.
Samples = Iterable[tuple[dict[str, str], float]]
SampleCallback = Callable[[], Samples]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Requests: most answer in a few milliseconds; an event stream lasts as long as it is open.
_HTTP_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
HTTP_LABELS = ("method", "route", "status")


class LabelledCounter:
    """A counter with labels, incremented as ``inc(code="...")``."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._counter = prometheus_client.Counter(
            name, documentation, labelnames=labelnames, registry=registry
        )

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._counter.labels(**labels).inc(amount)


class LabelledGauge:
    """A gauge with labels, set as ``set(value, severity="...")``."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._gauge = prometheus_client.Gauge(
            name, documentation, labelnames=labelnames, registry=registry
        )

    def set(self, value: float, **labels: str) -> None:
        self._gauge.labels(**labels).set(value)


class CallbackMetric:
    """A gauge or counter whose samples come from a callback at scrape time, for values
    another component owns (set with ``set_callback`` once that component exists; until
    then the family has no samples)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        *,
        counter: bool = False,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._counter = counter
        self._callback: SampleCallback | None = None
        registry.register(self)

    def set_callback(self, fn: SampleCallback) -> None:
        self._callback = fn

    def _family(self) -> CounterMetricFamily | GaugeMetricFamily:
        if self._counter:
            return CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        return GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        if self._callback is not None:
            for labels, value in self._callback():
                family.add_metric([labels[k] for k in self._labelnames], value)
        yield family


class HttpMetrics:
    """Requests by method, route template and status: how many, and how long they took
    (until the response was complete)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = prometheus_client.Counter(
            "backfill_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            labelnames=HTTP_LABELS,
            registry=registry,
        )
        self.request_seconds = prometheus_client.Histogram(
            "backfill_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route "
            "template and status code (an event stream counts while it is open).",
            labelnames=HTTP_LABELS,
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        # The labelled children, looked up once per (method, route, status): a request
        # then costs a dict lookup, an increment and an observation.
        self._children: dict[
            tuple[str, str, str],
            tuple[prometheus_client.Counter, prometheus_client.Histogram],
        ] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.request_seconds.labels(*key))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class ServiceMetrics:
    """Every series the service exports, in one registry per application."""

    def __init__(self) -> None:
        # The text format (0.0.4) has no place for a counter's creation time: the client
        # would add a ``_created`` gauge beside each counter and histogram, doubling the
        # series for a value nobody queries. The process serves one application.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry()
        self.control_cycle_seconds = prometheus_client.Histogram(
            "backfill_control_cycle_seconds",
            "Wall time of one control cycle.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.control_cycle_overruns = prometheus_client.Counter(
            "backfill_control_cycle_overruns",
            "Control cycles that started late.",
            registry=registry,
        )
        self.setpoint_write_seconds = prometheus_client.Histogram(
            "backfill_setpoint_write_seconds",
            "Latency of a confirmed setpoint set write.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.setpoint_write_failures = LabelledCounter(
            "backfill_setpoint_write_failures",
            "Setpoint set writes that failed, by error code.",
            ("code",),
            registry,
        )
        self.plc_reconnects = CallbackMetric(
            "backfill_plc_reconnects",
            "PLC link reconnections since the start.",
            (),
            registry,
            counter=True,
        )
        self.plc_connected = prometheus_client.Gauge(
            "backfill_plc_connected", "1 when the PLC link is up.", registry=registry
        )
        self.measurement_age_seconds = CallbackMetric(
            "backfill_measurement_age_seconds",
            "Age of each measurement's last update, by logical tag.",
            ("tag",),
            registry,
        )
        self.alarms_active = LabelledGauge(
            "backfill_alarms_active", "Active alarms by severity.", ("severity",), registry
        )
        self.pour_volume_m3 = prometheus_client.Gauge(
            "backfill_pour_volume_m3", "Paste placed in the active pour.", registry=registry
        )
        self.plant_simulated = prometheus_client.Gauge(
            "backfill_plant_simulated",
            "1 when the plant is the built-in simulator (no PLC is connected), 0 for a PLC.",
            registry=registry,
        )
        self.event_streams_open = CallbackMetric(
            "backfill_event_streams_open", "Open /plant/stream connections.", (), registry
        )
        self.http = HttpMetrics(registry)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

    def observe_alarms(self, alarms: Iterable[Any]) -> None:
        """``backfill_alarms_active`` by severity from the annunciated alarms."""
        counts = {severity: 0.0 for severity in ("low", "medium", "high", "critical")}
        for alarm in alarms:
            if alarm.active:
                counts[alarm.severity.value] = counts.get(alarm.severity.value, 0.0) + 1.0
        for severity, count in counts.items():
            self.alarms_active.set(count, severity=severity)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type a scraper asked for with its Accept header: the
        Prometheus text format (0.0.4) unless it asks for OpenMetrics."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type
