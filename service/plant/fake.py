"""``FakePlantLink``: an in-memory ``PlantLink`` for unit tests of other layers.

Settable measurements, quality and connection; records every setpoint set; the
acknowledgement can be made to fail. Time is injected like the real adapter's.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from service.errors import (
    InvalidInput,
    NotTheWriter,
    PlantLinkDown,
    SetpointRejected,
    SetpointUnconfirmed,
)
from service.plant.port import (
    LINK_OWNED_SETPOINTS,
    MEASUREMENT_UNITS,
    SETPOINT_UNITS,
    UNITS,
    Measurement,
    MeasurementValue,
    PlantSnapshot,
    Quality,
    SetpointValue,
    SetpointWriteResult,
    WrittenSetpoint,
    effective_quality,
    wait_for_change,
)


class FakePlantLink:
    """Implements ``PlantLink``; ``stale_after_s`` ages values like the real link."""

    def __init__(
        self,
        *,
        measurements: Mapping[str, MeasurementValue] | None = None,
        setpoint_tags: Iterable[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stale_after_s: float = math.inf,
        connected: bool = True,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.stale_after_s = stale_after_s
        self._connected = connected
        self._setpoint_tags = frozenset(setpoint_tags or SETPOINT_UNITS) - LINK_OWNED_SETPOINTS
        self._measurements: dict[str, Measurement] = {}
        self._setpoints: dict[str, WrittenSetpoint] = {}
        self._published_qualities: dict[str, Quality] = {}
        self._version = 0
        self._changed = asyncio.Event()
        self._seq = 0
        self.last_error: str | None = None
        self.started = False
        self.writer_epoch: int | None = 0
        self._may_write: Callable[[], bool] | None = None
        #: every accepted setpoint set, in order
        self.writes: list[dict[str, SetpointValue]] = []
        #: ``"unacknowledged"`` -> SetpointUnconfirmed, ``"rejected"`` -> SetpointRejected
        self.fail_next_write: str | None = None
        self.fail_all_writes: str | None = None
        #: a set for which this returns a failure fails so (e.g. only the run request)
        self.fail_write_if: Callable[[Mapping[str, SetpointValue]], str | None] | None = None
        #: seconds a write takes to be answered, as over a network (others run meanwhile)
        self.write_latency_s = 0.0
        for tag, value in (measurements or {}).items():
            self.set_measurement(tag, value)

    # --- test controls ---------------------------------------------------------------

    def set_measurement(
        self,
        tag: str,
        value: MeasurementValue,
        quality: Quality = Quality.GOOD,
        source_timestamp: datetime | None = None,
    ) -> None:
        if tag not in MEASUREMENT_UNITS:
            raise KeyError(f"{tag!r} is not a measurement tag")
        self._measurements[tag] = Measurement(
            tag=tag,
            value=value,
            unit=UNITS[tag],
            quality=quality,
            source_timestamp=source_timestamp or self._wall_clock(),
            received_monotonic=self._clock(),
        )
        self._bump()

    def set_quality(self, tag: str, quality: Quality) -> None:
        m = self._measurements[tag]
        self.set_measurement(tag, m.value, quality, m.source_timestamp)

    def set_connected(self, connected: bool, error: str | None = None) -> None:
        self._connected = connected
        self.last_error = error if not connected else None
        self._bump()

    # --- the port --------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def snapshot(self) -> PlantSnapshot:
        now = self._clock()
        measurements = {
            tag: Measurement(
                tag=m.tag,
                value=m.value,
                unit=m.unit,
                quality=effective_quality(
                    m.quality,
                    connected=self._connected,
                    confirmed_monotonic=m.received_monotonic,
                    now_monotonic=now,
                    max_age_s=self.stale_after_s,
                ),
                source_timestamp=m.source_timestamp,
                received_monotonic=m.received_monotonic,
            )
            for tag, m in self._measurements.items()
        }
        qualities = {t: m.quality for t, m in measurements.items()}
        if qualities != self._published_qualities:
            self._published_qualities = qualities
            self._bump()
        return PlantSnapshot(
            connected=self._connected,
            measurements=MappingProxyType(measurements),
            setpoints=MappingProxyType(dict(self._setpoints)),
            last_error=self.last_error,
            version=self._version,
        )

    @property
    def setpoint_tags(self) -> frozenset[str]:
        return self._setpoint_tags

    async def set_writer(
        self, epoch: int | None, may_write: Callable[[], bool] | None = None
    ) -> None:
        self.writer_epoch = epoch
        self._may_write = may_write if epoch is not None else None

    async def write_setpoints(self, values: Mapping[str, SetpointValue]) -> SetpointWriteResult:
        if self.write_latency_s > 0.0:
            await asyncio.sleep(self.write_latency_s)
        if self.writer_epoch is None:
            raise NotTheWriter("this instance is a standby; another instance writes")
        if self._may_write is not None and not self._may_write():
            raise NotTheWriter("the writer lease has lapsed; nothing was written")
        if not values:
            raise InvalidInput("values", "a setpoint set needs at least one value")
        for tag, value in values.items():
            if tag not in self._setpoint_tags:
                raise InvalidInput(tag, f"{tag!r} is not a setpoint in the tag map")
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidInput(tag, f"{tag} must be a finite number, got {value!r}")
        if not self._connected:
            raise PlantLinkDown("the PLC link is down; nothing was written")
        failure, self.fail_next_write = self.fail_next_write or self.fail_all_writes, None
        if failure is None and self.fail_write_if is not None:
            failure = self.fail_write_if(values)
        self._seq += 1
        if failure == "rejected":
            raise SetpointRejected(f"the PLC rejected setpoint set seq {self._seq}", seq=self._seq)
        written_at = self._wall_clock()
        for tag, value in values.items():
            self._setpoints[tag] = WrittenSetpoint(tag, value, UNITS[tag], written_at)
        self.writes.append(dict(values))
        self._bump()
        if failure == "unacknowledged":
            raise SetpointUnconfirmed(
                f"the PLC did not acknowledge setpoint set seq {self._seq}", seq=self._seq
            )
        return SetpointWriteResult(
            seq=self._seq,
            acknowledged=True,
            written_at=written_at,
            values=MappingProxyType(dict(values)),
        )

    async def wait_changed(self, version: int, timeout: float) -> PlantSnapshot:  # noqa: ASYNC109
        return await wait_for_change(self.snapshot, lambda: self._changed, version, timeout, 0.05)

    def _bump(self) -> None:
        self._version += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()
