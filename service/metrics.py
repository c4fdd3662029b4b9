"""A small Prometheus registry: counters, gauges and histograms rendered in the text
exposition format (version 0.0.4). The service has a handful of series, so a
dependency is not worth its weight; the format is the documented one."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: Labels = ()) -> str:
    items = (*labels, *extra)
    if not items:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in items
    )
    return "{" + body + "}"


def _fmt_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text

    def samples(self) -> Iterable[str]:  # pragma: no cover - overridden
        return ()

    def render(self) -> str:
        head = f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def samples(self) -> Iterable[str]:
        if not self._values:
            yield f"{self.name} 0.0"
        for labels, v in sorted(self._values.items()):
            yield f"{self.name}{_fmt_labels(labels)} {_fmt_value(v)}"


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[Labels, float] = {}
        self._callback: Callable[[], Iterable[tuple[dict[str, str], float]]] | None = None

    def set(self, value: float, **labels: str) -> None:
        self._values[tuple(sorted(labels.items()))] = value

    def set_callback(self, fn: Callable[[], Iterable[tuple[dict[str, str], float]]]) -> None:
        """Compute the samples when scraped (for values another component owns)."""
        self._callback = fn

    def samples(self) -> Iterable[str]:
        values = dict(self._values)
        if self._callback is not None:
            for label_map, v in self._callback():
                values[tuple(sorted(label_map.items()))] = v
        for key, v in sorted(values.items()):
            yield f"{self.name}{_fmt_labels(key)} {_fmt_value(v)}"


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        super().__init__(name, help_text)
        self._bounds = sorted(buckets)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._n = 0

    def observe(self, value: float) -> None:
        self._sum += value
        self._n += 1
        for i, bound in enumerate(self._bounds):
            if value <= bound:
                self._counts[i] += 1

    @property
    def count(self) -> int:
        return self._n

    def samples(self) -> Iterable[str]:
        for bound, n in zip(self._bounds, self._counts, strict=True):
            yield f'{self.name}_bucket{{le="{_fmt_value(bound)}"}} {n}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self._n}'
        yield f"{self.name}_sum {_fmt_value(self._sum)}"
        yield f"{self.name}_count {self._n}"


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """Every series the service exports (issue: control cycle, writes, link, pours)."""

    def __init__(self) -> None:
        self.control_cycle_seconds = Histogram(
            "backfill_control_cycle_seconds", "Wall time of one control cycle.", _LATENCY_BUCKETS
        )
        self.control_cycle_overruns = Counter(
            "backfill_control_cycle_overruns_total", "Control cycles that started late."
        )
        self.setpoint_write_seconds = Histogram(
            "backfill_setpoint_write_seconds",
            "Latency of a confirmed setpoint set write.",
            _LATENCY_BUCKETS,
        )
        self.setpoint_write_failures = Counter(
            "backfill_setpoint_write_failures_total", "Setpoint set writes that failed, by code."
        )
        self.plc_reconnects = Gauge(
            "backfill_plc_reconnects_total", "PLC link reconnections since the start."
        )
        self.plc_connected = Gauge("backfill_plc_connected", "1 when the PLC link is up.")
        self.measurement_age_seconds = Gauge(
            "backfill_measurement_age_seconds", "Age of each measurement's last update."
        )
        self.alarms_active = Gauge("backfill_alarms_active", "Active alarms by severity.")
        self.pour_volume_m3 = Gauge("backfill_pour_volume_m3", "Paste placed in the active pour.")
        self.plant_simulated = Gauge(
            "backfill_plant_simulated",
            "1 when the plant is the built-in simulator (no PLC is connected), 0 for a PLC.",
        )
        self.event_streams_open = Gauge(
            "backfill_event_streams_open", "Open /plant/stream connections."
        )

    def render(self) -> str:
        metrics: list[_Metric] = [
            self.control_cycle_seconds,
            self.control_cycle_overruns,
            self.setpoint_write_seconds,
            self.setpoint_write_failures,
            self.plc_reconnects,
            self.plc_connected,
            self.measurement_age_seconds,
            self.alarms_active,
            self.pour_volume_m3,
            self.plant_simulated,
            self.event_streams_open,
        ]
        return "".join(m.render() for m in metrics)
