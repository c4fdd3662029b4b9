"""What the Sparkplug B edge node sends and when, as a host expects it (Eclipse
Sparkplug Specification 3.0.0, 2022). Pure: values in, decisions out; times are
seconds of a monotonic clock, passed in.

* Aliases (§6.4.3 "alias"): every metric of the edge node (node and device) has a
  unique alias, the same at every birth of one configuration; DATA and CMD messages
  carry the alias alone.
* Quality (§6.4.6 "Quality Codes"): a metric's ``Quality`` property, Int32, one of 0
  (BAD), 192 (GOOD), 500 (STALE). The model's ``uncertain`` becomes STALE, the nearest
  of the three; a point without data is BAD (and a null metric).
* Report by exception with a deadband: a number is sent again when it moved more than
  its deadband since it was last sent, or its quality changed; anything else when it
  changed at all.
* A maximum rate of DDATA messages: changes wait (and merge, the newest value winning)
  until the next message is allowed.
* Primary host STATE (§5.x "Edge Node Session Establishment", 3.0 tck-id
  message-flow-edge-node-birth-publish-phid-wait-*): the payload is JSON
  ``{"online": bool, "timestamp": ms}``; a message older than the last one taken from
  that host is ignored; online lets the node be born, offline (not older than the last
  online) makes it leave (NDEATH, disconnect) and start over.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from service.core import scada_model as M

QUALITY_GOOD, QUALITY_BAD, QUALITY_STALE = 192, 0, 500
_QUALITY = {
    M.Quality.GOOD: QUALITY_GOOD,
    M.Quality.UNCERTAIN: QUALITY_STALE,
    M.Quality.BAD: QUALITY_BAD,
    M.Quality.NO_DATA: QUALITY_BAD,
}


def quality_code(quality: M.Quality) -> int:
    return _QUALITY[quality]


def aliases(names: Iterable[str]) -> dict[str, int]:
    """Alias of each metric name, from 1 in the order given (the node's metrics, then
    the device's, in the model's order): the same configuration births the same
    aliases."""
    out: dict[str, int] = {}
    for name in names:
        if name in out:
            raise ValueError(f"metric {name!r} twice")
        out[name] = len(out) + 1
    return out


def deadband_of(
    spec: M.PointSpec, name: str, deadband_pct: float, deadbands: Mapping[str, float]
) -> float:
    """A metric's deadband: its own (``deadbands`` by metric name), else ``deadband_pct``
    of its engineering span for a measurement or setpoint, else 0 (every change)."""
    if name in deadbands:
        return deadbands[name]
    span = spec.span
    if span is not None and spec.path.startswith(("Plant.Measurements.", "Plant.Setpoints.")):
        return deadband_pct / 100.0 * span
    return 0.0


def due(last: M.Point | None, point: M.Point, deadband: float) -> bool:
    """The point is to be sent: never sent, a new quality, a value appearing or going,
    a change of a non-number, or a number moved past its deadband."""
    if last is None or last.quality is not point.quality:
        return True
    if (last.value is None) != (point.value is None):
        return True
    numbers = (
        isinstance(last.value, float)
        and isinstance(point.value, float)
        and not isinstance(point.value, bool)
    )
    if not numbers:
        return last.value != point.value
    assert isinstance(last.value, float) and isinstance(point.value, float)
    if math.isnan(last.value) or math.isnan(point.value):
        return not (math.isnan(last.value) and math.isnan(point.value))
    return abs(point.value - last.value) > deadband or (
        deadband == 0.0 and point.value != last.value
    )


@dataclass(frozen=True, slots=True)
class Pacing:
    """At most ``max_per_s`` DDATA messages a second: the earliest time of the next."""

    max_per_s: float

    def next_at(self, last_sent_at: float | None) -> float:
        return -math.inf if last_sent_at is None else last_sent_at + 1.0 / self.max_per_s


@dataclass(frozen=True, slots=True)
class HostState:
    online: bool
    timestamp: int


def parse_state(payload: bytes) -> HostState | None:
    """A STATE message (3.0: JSON), or None when it is not one."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    online, timestamp = body.get("online"), body.get("timestamp")
    if not isinstance(online, bool) or isinstance(timestamp, bool):
        return None
    if not isinstance(timestamp, int) or timestamp < 0:
        return None
    return HostState(online, timestamp)


def take_state(last: HostState | None, new: HostState) -> bool:
    """The message counts: none taken before, or not older than the last taken."""
    return last is None or new.timestamp >= last.timestamp


#: What separates a command's argument from the person a host names in its value.
BY = " by "


def command_argument(value: str) -> tuple[str, str | None]:
    """A DCMD command's String value: the argument (a pour id, an alarm code: neither
    holds a space) and the person the host names after ``" by "``
    (``"3f2a... by a.ivanova"``), None when it names none."""
    argument, sep, person = value.partition(BY)
    return argument.strip(), (person.strip() or None) if sep else None
