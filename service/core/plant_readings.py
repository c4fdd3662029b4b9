"""The plant as the pour machine sees it in one cycle: the readings of the PLC's tags with
their quality, what this process last had the PLC accept, and the rules read straight
off them (the plant's mode, a sensor stuck at one value, why a running pour must stop,
the barricade's pressure against its rating).

Values only: the running part builds :class:`Readings` from the PLC link's snapshot once
per cycle (:func:`service.operations.pour_shell.readings_of`); nothing here does I/O or
reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from service.core import control as law
from service.core import diversion as dv
from service.core.barricade import barricade_conditions, barricade_pause, is_barricade_tag
from service.core.control.alarms import AlarmCode, Condition

SetpointValue = float | int | bool

PLANT_MODES = {0: "stopped", 1: "flushing", 2: "running", 3: "fault"}
MODE_STOPPED = 0
MODE_FLUSHING = 1
MODE_RUNNING = 2
MODE_FAULT = 3
#: Measurements whose noise proves they are alive (stuck-sensor detection).
NOISY_TAGS = ("tailings_density_pv", "paste_density_pv")

BARRICADE_CODES = (
    AlarmCode.BARRICADE_PRESSURE_HIGH,
    AlarmCode.BARRICADE_PRESSURE_AT_RATING,
    AlarmCode.BARRICADE_PRESSURE_UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class Reading:
    """One PLC -> service tag: its value and quality (``good``, ``uncertain``, ``bad``:
    already ``bad`` when stale or the link is down)."""

    value: float | int | bool | None
    quality: str = "good"

    @property
    def good(self) -> bool:
        return self.quality == "good"


@dataclass(frozen=True)
class Readings:
    """The plant this cycle. ``held``: the setpoints this process last had the PLC
    accept (a reconnecting link re-sends them); ``setpoint_tags``: the setpoints the tag
    map has (a plant without a fly ash feeder has no ``flyash_rate_sp``); ``stuck``: the
    noisy measurements judged stuck (:func:`track_stuck`), which read as bad."""

    connected: bool
    values: Mapping[str, Reading]
    held: Mapping[str, SetpointValue] = field(default_factory=dict)
    setpoint_tags: frozenset[str] = frozenset()
    stuck: frozenset[str] = frozenset()

    def measurement(self, tag: str) -> law.Measurement:
        """A numeric reading the law may act on: good, a number, not stuck; else BAD."""
        r = self.values.get(tag)
        if r is None or not r.good or isinstance(r.value, bool) or tag in self.stuck:
            return law.BAD
        if not isinstance(r.value, int | float):
            return law.BAD
        return law.Measurement(float(r.value))

    def flag(self, tag: str) -> bool:
        """A Boolean tag that is good and true."""
        r = self.values.get(tag)
        return r is not None and r.good and r.value is True

    def mode(self) -> int | None:
        """The PLC's ``plant_mode`` when good (docs/INTEGRATION.md enum), else None."""
        r = self.values.get("plant_mode")
        if r is None or not r.good or isinstance(r.value, bool) or not isinstance(r.value, int):
            return None
        return r.value

    def mode_is(self, mode: int) -> bool:
        return self.mode() == mode

    def remote_refused(self) -> bool:
        """The PLC says it does not accept setpoints (remote good and false)."""
        r = self.values.get("remote_enabled")
        return r is not None and r.good and r.value is False

    def diverter_installed(self) -> bool:
        return dv.diverter_installed({*self.setpoint_tags, *self.values})

    def proven_to_dump(self) -> bool | None:
        r = self.values.get(dv.DIVERTED_PV_TAG)
        if r is None or r.quality == "bad" or not isinstance(r.value, bool):
            return None
        return r.value

    def not_ready_reason(self) -> str | None:
        """Why the plant cannot take a start or a resume now (None: it can)."""
        if not self.connected:
            return "link_down"
        remote = self.values.get("remote_enabled")
        if remote is None or not remote.good or remote.value is not True:
            return "not_remote"
        if self.mode_is(MODE_FAULT):
            return "fault"
        return None


@dataclass(frozen=True)
class StuckTracker:
    """When each noisy measurement last moved (monotonic seconds), and which are stuck."""

    since: Mapping[str, tuple[object, float]] = field(default_factory=dict)
    stuck: frozenset[str] = frozenset()


def track_stuck(
    tracker: StuckTracker, readings: Readings, now_mono: float, scale: float, stuck_after_s: float
) -> StuckTracker:
    """A noisy measurement whose value has not moved for ``stuck_after_s`` plant seconds
    while the plant runs is stuck; it counts as bad until it moves again. A nuclear or
    Coriolis densitometer always carries noise, so an unchanging reading is a dead one."""
    running = readings.mode_is(MODE_RUNNING)
    since = dict(tracker.since)
    stuck: set[str] = set()
    for tag in NOISY_TAGS:
        r = readings.values.get(tag)
        if r is None or not r.good or not running:
            since.pop(tag, None)
            continue
        last = since.get(tag)
        if last is None or last[0] != r.value:
            since[tag] = (r.value, now_mono)
            continue
        if (now_mono - last[1]) * scale >= stuck_after_s:
            stuck.add(tag)
    return StuckTracker(since, frozenset(stuck))


def barricade(
    readings: Readings,
    rating_kpa: float | None,
    high_fraction: float,
    tags: Collection[str] | None = None,
) -> tuple[dict[AlarmCode, Condition], str | None]:
    """The barricade alarm conditions and, at the rating, the pause reason naming the
    barricade. ``tags``: the barricades of the pour's stope (a tag the plant does not
    read is judged unknown, never low); None, a stope stored before barricades belonged
    to stopes, watches every barricade tag the plant reads. No rating (no stope) or no
    barricade: no condition at all."""
    if tags is None:
        tags = [t for t in readings.values if is_barricade_tag(t)]
    watched = sorted(tags)
    if rating_kpa is None or not watched:
        return {code: Condition(False) for code in BARRICADE_CODES}, None
    pressures: dict[str, float | None] = {}
    quality: dict[str, str] = {}
    for tag in watched:
        r = readings.values.get(tag)
        value = None if r is None else r.value
        number = (
            float(value)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else math.nan
        )
        pressures[tag] = number if math.isfinite(number) else None
        quality[tag] = "bad" if r is None else r.quality
    found = barricade_conditions(pressures, rating_kpa, high_fraction, quality)
    by_level = {
        AlarmCode.BARRICADE_PRESSURE_HIGH: [c for c in found if c.level.value == "high"],
        AlarmCode.BARRICADE_PRESSURE_AT_RATING: [c for c in found if c.pause],
        AlarmCode.BARRICADE_PRESSURE_UNKNOWN: [c for c in found if c.level.value == "unknown"],
    }
    conditions = {
        code: Condition(bool(items), "; ".join(c.detail for c in items))
        for code, items in by_level.items()
    }
    at_rating = barricade_pause(found)
    pause = None if at_rating is None else f"barricade_at_rating:{at_rating.tag}"
    return conditions, pause


def current_setpoints(readings: Readings) -> law.Setpoints | None:
    """The law's setpoints as the PLC last accepted them (None before any write)."""
    written = {
        tag: float(value)
        for tag, value in readings.held.items()
        if tag in law.SETPOINT_TAGS and not isinstance(value, bool)
    }
    return law.Setpoints.from_tags(written) if written else None
