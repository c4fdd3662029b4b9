"""The port to the PLC: value types and the ``PlantLink`` protocol.

Everything above the plant layer (control loop, pours, HTTP status, server-sent
events) talks to a ``PlantLink``; ``service.plant.opcua.OpcUaPlantLink`` is the one
real adapter, ``service.plant.fake.FakePlantLink`` the in-memory fake for tests.

Readers never trigger PLC I/O: ``snapshot()`` is built from what the link already
holds, with quality recomputed for age at call time (docs/INTEGRATION.md "GET /plant/status").
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

SetpointValue = float | int | bool
MeasurementValue = float | int | bool | None


class Quality(StrEnum):
    """OPC UA status code severity, or ``bad`` when stale or disconnected."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class Measurement:
    """One PLC -> service value as last received.

    ``received_monotonic`` is the link clock's time when this value (or its
    quality) last arrived, by subscription or read. ``quality`` in a snapshot is
    already downgraded to ``bad`` when the value is stale or the link is down.
    """

    tag: str
    value: MeasurementValue
    unit: str
    quality: Quality
    source_timestamp: datetime | None
    received_monotonic: float


@dataclass(frozen=True, slots=True)
class WrittenSetpoint:
    """One service -> PLC value that the PLC accepted (per-item status Good)."""

    tag: str
    value: SetpointValue
    unit: str
    written_at: datetime


@dataclass(frozen=True, slots=True)
class PlantSnapshot:
    """What the link knows now; ``version`` increments on every change (HTTP ETag)."""

    connected: bool
    measurements: Mapping[str, Measurement]
    setpoints: Mapping[str, WrittenSetpoint]
    last_error: str | None
    version: int


@dataclass(frozen=True, slots=True)
class SetpointWriteResult:
    """A confirmed setpoint set: written in one request, acknowledged, read back."""

    seq: int
    acknowledged: bool
    written_at: datetime
    values: Mapping[str, SetpointValue] = field(default_factory=dict)


@runtime_checkable
class PlantLink(Protocol):
    """The PLC link (docs/INTEGRATION.md "PLC interface")."""

    async def start(self) -> None:
        """Start the link's tasks; raises ``TagMapError`` when the map does not fit the server."""
        ...

    async def stop(self) -> None:
        """Cancel every task and close the connection; idempotent."""
        ...

    def snapshot(self) -> PlantSnapshot:
        """The current state, no I/O; quality recomputed for age at call time."""
        ...

    async def write_setpoints(self, values: Mapping[str, SetpointValue]) -> SetpointWriteResult:
        """Write one setpoint set in one request and confirm it (ack + read-back).

        Raises ``PlantLinkDown`` while disconnected, ``InvalidInput`` for an unknown
        tag or a value the node's type cannot hold, ``SetpointRejected`` when the
        PLC refuses items, ``SetpointUnconfirmed`` without ack or matching read-back.
        """
        ...

    async def wait_changed(self, version: int, timeout: float) -> PlantSnapshot:  # noqa: ASYNC109
        """Return as soon as the snapshot version differs from ``version`` (or on timeout)."""
        ...

    @property
    def connected(self) -> bool: ...

    @property
    def setpoint_tags(self) -> frozenset[str]:
        """The setpoints this plant's tag map has (fly ash, say, is optional)."""
        ...

    async def set_writer(
        self, epoch: int | None, may_write: Callable[[], bool] | None = None
    ) -> None:
        """Writer (``epoch`` 0 sole, > 0 elected and fenced) or standby (``None``);
        an elected writer sends nothing while ``may_write()`` is False."""
        ...


# --- docs/INTEGRATION.md's table: logical tags, direction, unit ----------------------

#: Further instrumented barricades (docs/INTEGRATION.md "Optional tags"): the first is
#: ``barricade_pressure_pv``, the next ``barricade_2_pressure_pv``, ``barricade_3_...``.
BARRICADE_PRESSURE_TAG = re.compile(r"barricade_(?:[2-9]|[1-9][0-9]+)_pressure_pv")


class UnitTable(Mapping[str, str]):
    """Logical tag -> unit: the named tags, plus tags known by a pattern (the numbered
    barricades). Lookups and ``in`` know both; iteration lists the named tags only."""

    def __init__(
        self, named: Mapping[str, str], patterns: tuple[tuple[re.Pattern[str], str], ...] = ()
    ) -> None:
        self._named = dict(named)
        self._patterns = patterns

    def __getitem__(self, tag: str) -> str:
        unit = self._named.get(tag)
        if unit is not None:
            return unit
        for pattern, pattern_unit in self._patterns:
            if pattern.fullmatch(tag):
                return pattern_unit
        raise KeyError(tag)

    def __iter__(self) -> Iterator[str]:
        return iter(self._named)

    def __len__(self) -> int:
        return len(self._named)


_PATTERN_UNITS = ((BARRICADE_PRESSURE_TAG, "kPa"),)

_MEASUREMENT_UNITS = {
    "tailings_flow_pv": "m3/h",
    "tailings_density_pv": "kg/m3",
    "cement_rate_pv": "t/h",
    "slag_rate_pv": "t/h",
    "flyash_rate_pv": "t/h",
    "water_flow_pv": "m3/h",
    "paste_flow_pv": "m3/h",
    "paste_density_pv": "kg/m3",
    "pump_pressure_pv": "kPa",
    "mixer_level_pv": "%",
    "plant_mode": "enum",
    "remote_enabled": "bool",
    "setpoint_ack": "count",
    # ARCHITECTURE "PLC tags" extensions
    "cement_refill": "bool",
    "slag_refill": "bool",
    "flyash_refill": "bool",
    "cement_fault": "bool",
    "slag_fault": "bool",
    "flyash_fault": "bool",
    # docs/INTEGRATION.md "Optional tags"
    "barricade_pressure_pv": "kPa",
    "diverted_to_dump_pv": "bool",
    # The PLC's paste totaliser (m3 the pump delivered, not counting its flushes)
    "paste_volume_total_pv": "m3",
}

_SETPOINT_UNITS = {
    "tailings_flow_sp": "m3/h",
    "cement_rate_sp": "t/h",
    "slag_rate_sp": "t/h",
    "flyash_rate_sp": "t/h",
    "water_flow_sp": "m3/h",
    "paste_density_sp": "kg/m3",
    "run_request": "bool",
    "setpoint_seq": "count",
    "heartbeat": "count",
    # docs/INTEGRATION.md "Optional tags"
    "divert_to_dump_sp": "bool",
}

MEASUREMENT_UNITS: Mapping[str, str] = UnitTable(_MEASUREMENT_UNITS, _PATTERN_UNITS)
SETPOINT_UNITS: Mapping[str, str] = UnitTable(_SETPOINT_UNITS)
UNITS: Mapping[str, str] = UnitTable({**_MEASUREMENT_UNITS, **_SETPOINT_UNITS}, _PATTERN_UNITS)

#: Written by the link itself, never by a caller of ``write_setpoints``.
LINK_OWNED_SETPOINTS = frozenset({"setpoint_seq", "heartbeat"})


def effective_quality(
    quality: Quality,
    *,
    connected: bool,
    confirmed_monotonic: float,
    now_monotonic: float,
    max_age_s: float,
) -> Quality:
    """Quality as reported: ``bad`` when the link is down or the value is older than allowed.

    ``confirmed_monotonic`` is the last time the link knew the value was current:
    a notification or read of it, or a later publish response (data or keep-alive)
    of the subscription that monitors it, which proves no change was pending.
    """
    if not connected:
        return Quality.BAD
    age = now_monotonic - confirmed_monotonic
    if math.isnan(age) or age > max_age_s:
        return Quality.BAD
    return quality


async def wait_for_change(
    snapshot: Callable[[], PlantSnapshot],
    changed: Callable[[], asyncio.Event],
    version: int,
    within_s: float,
    tick_s: float,
) -> PlantSnapshot:
    """``PlantLink.wait_changed`` for any link that replaces its ``changed`` event on
    every version bump: returns as soon as the snapshot version differs from
    ``version``, or after ``within_s``. Waking every ``tick_s`` lets aging (a value
    turning stale, which bumps the version in ``snapshot()``) be seen too."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        event = changed()
        snap = snapshot()
        remaining = deadline - loop.time()
        if snap.version != version or remaining <= 0:
            return snap
        try:
            async with asyncio.timeout(min(remaining, tick_s)):
                await event.wait()
        except TimeoutError:
            pass
