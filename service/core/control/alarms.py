"""Alarm detection and an ISA-18.2-style alarm book, pure.

State model after ANSI/ISA-18.2-2016 (Management of Alarm Systems for the Process
Industries), alarm states A-D without latching, shelving or suppression:

- ``normal``: condition absent, nothing to acknowledge;
- ``active_unacknowledged``: condition present, the operator has not acknowledged;
- ``active_acknowledged``: condition present, acknowledged;
- ``cleared_unacknowledged`` (ISA "return to normal, unacknowledged"): the condition went
  away before anyone acknowledged; acknowledging it returns it to ``normal``.

An on-delay (the condition must hold that long before the alarm annunciates) and an
off-delay (it must be absent that long before it clears) keep a noisy condition from
chattering, as ISA-18.2 recommends. Time is passed in (``now``, an aware datetime).

``evaluate(book, conditions, now, config) -> book``: only the codes present in
``conditions`` are updated; a code left out (condition unknown, e.g. off-spec while
there is no usable measurement) keeps its state and timers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from service.errors import InvalidInput


class AlarmCode(StrEnum):
    """Stable alarm codes (clients branch on them)."""

    SOLIDS_OFF_SPEC = "solids_off_spec"
    BINDER_OFF_SPEC = "binder_off_spec"
    PUMP_PRESSURE_HIGH = "pump_pressure_high"
    FEEDER_FAULT = "feeder_fault"
    PLANT_LINK_LOST = "plant_link_lost"
    STALE_DATA = "stale_data"
    RECIPE_UNREACHABLE = "recipe_unreachable"
    PLC_NOT_REMOTE = "plc_not_remote"
    # A stope's barricade (docs/INTEGRATION.md "Optional tags"): near its rating, at it, unreadable.
    BARRICADE_PRESSURE_HIGH = "barricade_pressure_high"
    BARRICADE_PRESSURE_AT_RATING = "barricade_pressure_at_rating"
    BARRICADE_PRESSURE_UNKNOWN = "barricade_pressure_unknown"
    # The dump diverter did not prove the commanded position.
    DIVERTER_NOT_IN_POSITION = "diverter_not_in_position"
    # A dead feed gauge (.fallback): the last correction held, the binder on the paste
    # flow meter, or the pour paused because nothing can carry the binder.
    FEED_GAUGE_HOLDING = "feed_gauge_holding"
    BINDER_ON_PASTE_FLOW = "binder_on_paste_flow"
    GAUGES_DEAD_PAUSE = "gauges_dead_pause"
    # The mass and volume balances across the mixer do not close (service.core.reconcile).
    INSTRUMENTS_DISAGREE = "instruments_disagree"
    # The pour paused because too much paste went to the dump, or the recipe stayed out of
    # the feed's reach (service.core.pour_machine): active until an operator resumes.
    DUMP_LIMIT_PAUSE = "dump_limit_pause"
    RECIPE_UNREACHABLE_PAUSE = "recipe_unreachable_pause"


class Severity(StrEnum):
    """Alarm priority (ISA-18.2 priorities: low, medium, high, critical)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AlarmState(StrEnum):
    NORMAL = "normal"
    ACTIVE_UNACKNOWLEDGED = "active_unacknowledged"
    ACTIVE_ACKNOWLEDGED = "active_acknowledged"
    CLEARED_UNACKNOWLEDGED = "cleared_unacknowledged"


#: Judged by the pour machine's stope rules (service.core.plant_readings), not by :func:`detect`.
STOPE_CODES = frozenset(
    {
        AlarmCode.BARRICADE_PRESSURE_HIGH,
        AlarmCode.BARRICADE_PRESSURE_AT_RATING,
        AlarmCode.BARRICADE_PRESSURE_UNKNOWN,
        AlarmCode.DIVERTER_NOT_IN_POSITION,
    }
)

#: Judged by the instrument checks (service.core.instruments), not by :func:`detect`.
INSTRUMENT_CODES = frozenset(
    {
        AlarmCode.FEED_GAUGE_HOLDING,
        AlarmCode.BINDER_ON_PASTE_FLOW,
        AlarmCode.GAUGES_DEAD_PAUSE,
        AlarmCode.INSTRUMENTS_DISAGREE,
    }
)

#: Judged by the pour machine from the pauses it made (service.core.pour_machine.cycle).
POUR_PAUSE_CODES = frozenset({AlarmCode.DUMP_LIMIT_PAUSE, AlarmCode.RECIPE_UNREACHABLE_PAUSE})

DEFAULT_SEVERITY: Mapping[AlarmCode, Severity] = {
    AlarmCode.SOLIDS_OFF_SPEC: Severity.HIGH,
    AlarmCode.BINDER_OFF_SPEC: Severity.HIGH,
    AlarmCode.PUMP_PRESSURE_HIGH: Severity.HIGH,
    AlarmCode.FEEDER_FAULT: Severity.HIGH,
    AlarmCode.PLANT_LINK_LOST: Severity.CRITICAL,
    AlarmCode.STALE_DATA: Severity.MEDIUM,
    AlarmCode.RECIPE_UNREACHABLE: Severity.HIGH,
    AlarmCode.PLC_NOT_REMOTE: Severity.MEDIUM,
    AlarmCode.BARRICADE_PRESSURE_HIGH: Severity.HIGH,
    AlarmCode.BARRICADE_PRESSURE_AT_RATING: Severity.CRITICAL,
    AlarmCode.BARRICADE_PRESSURE_UNKNOWN: Severity.MEDIUM,
    AlarmCode.DIVERTER_NOT_IN_POSITION: Severity.HIGH,
    AlarmCode.FEED_GAUGE_HOLDING: Severity.MEDIUM,
    AlarmCode.BINDER_ON_PASTE_FLOW: Severity.MEDIUM,
    AlarmCode.GAUGES_DEAD_PAUSE: Severity.HIGH,
    AlarmCode.INSTRUMENTS_DISAGREE: Severity.MEDIUM,
    AlarmCode.DUMP_LIMIT_PAUSE: Severity.HIGH,
    AlarmCode.RECIPE_UNREACHABLE_PAUSE: Severity.HIGH,
}

DEFAULT_ON_DELAY_S: Mapping[AlarmCode, float] = {
    AlarmCode.SOLIDS_OFF_SPEC: 10.0,
    AlarmCode.BINDER_OFF_SPEC: 10.0,
    AlarmCode.PUMP_PRESSURE_HIGH: 3.0,
    AlarmCode.FEEDER_FAULT: 0.0,
    AlarmCode.PLANT_LINK_LOST: 0.0,
    AlarmCode.STALE_DATA: 5.0,
    AlarmCode.RECIPE_UNREACHABLE: 10.0,
    AlarmCode.PLC_NOT_REMOTE: 2.0,
    AlarmCode.BARRICADE_PRESSURE_HIGH: 2.0,
    AlarmCode.BARRICADE_PRESSURE_AT_RATING: 0.0,
    AlarmCode.BARRICADE_PRESSURE_UNKNOWN: 5.0,
    AlarmCode.DIVERTER_NOT_IN_POSITION: 0.0,
    # The fallback's own timing and the balance's persistence test are the delays.
    AlarmCode.FEED_GAUGE_HOLDING: 0.0,
    AlarmCode.BINDER_ON_PASTE_FLOW: 0.0,
    AlarmCode.GAUGES_DEAD_PAUSE: 0.0,
    AlarmCode.INSTRUMENTS_DISAGREE: 0.0,
    AlarmCode.DUMP_LIMIT_PAUSE: 0.0,
    AlarmCode.RECIPE_UNREACHABLE_PAUSE: 0.0,
}


@dataclass(frozen=True)
class AlarmConfig:
    """Bands, thresholds and delays.

    ``solids_band_fraction``: Cw off-spec beyond +-this (absolute, 0.01 = 1 percentage
    point). ``binder_band_relative``: Bw off-spec beyond +-this relative to the target
    (0.05 = 5 %). ``pump_pressure_high_kpa``: a site value; 8,000 kPa is only a
    placeholder for a piston pump line. Delays in seconds; codes missing from
    ``on_delay_s`` use 0, ``off_delay_s`` applies to every code.
    """

    solids_band_fraction: float = 0.01
    binder_band_relative: float = 0.05
    pump_pressure_high_kpa: float = 8000.0
    on_delay_s: Mapping[AlarmCode, float] = field(default_factory=lambda: dict(DEFAULT_ON_DELAY_S))
    off_delay_s: float = 5.0
    severity: Mapping[AlarmCode, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))

    def __post_init__(self) -> None:
        for name in ("solids_band_fraction", "binder_band_relative", "pump_pressure_high_kpa"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise InvalidInput(name, f"{name} must be finite and > 0, got {value!r}")
        delays = [self.off_delay_s, *self.on_delay_s.values()]
        if not all(math.isfinite(d) and d >= 0.0 for d in delays):
            raise InvalidInput("on_delay_s", "alarm delays must be finite and >= 0")


@dataclass(frozen=True)
class Condition:
    """Whether an alarm condition is present now, with a human detail."""

    active: bool
    detail: str = ""


@dataclass(frozen=True)
class Alarm:
    """One alarm of the book.

    ``since``: when it last became active (annunciated); ``cleared_at``: when it last
    cleared; ``acknowledged_at`` / ``acknowledged_by``: the last acknowledgement of the
    current occurrence. ``pending_since`` / ``clearing_since`` run the on/off delays.
    """

    code: AlarmCode
    severity: Severity
    state: AlarmState = AlarmState.NORMAL
    detail: str = ""
    since: datetime | None = None
    cleared_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    pending_since: datetime | None = None
    clearing_since: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state in (AlarmState.ACTIVE_UNACKNOWLEDGED, AlarmState.ACTIVE_ACKNOWLEDGED)

    @property
    def acknowledged(self) -> bool:
        return self.state in (AlarmState.NORMAL, AlarmState.ACTIVE_ACKNOWLEDGED)

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "state": self.state.value,
            "detail": self.detail,
            "since": iso(self.since),
            "cleared_at": iso(self.cleared_at),
            "acknowledged_at": iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged": self.acknowledged,
            "pending_since": iso(self.pending_since),
            "clearing_since": iso(self.clearing_since),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alarm:
        def parse(key: str) -> datetime | None:
            value = data.get(key)
            return None if value is None else datetime.fromisoformat(str(value))

        return cls(
            code=AlarmCode(data["code"]),
            severity=Severity(data["severity"]),
            state=AlarmState(data["state"]),
            detail=str(data.get("detail", "")),
            since=parse("since"),
            cleared_at=parse("cleared_at"),
            acknowledged_at=parse("acknowledged_at"),
            acknowledged_by=data.get("acknowledged_by"),
            pending_since=parse("pending_since"),
            clearing_since=parse("clearing_since"),
        )


@dataclass(frozen=True)
class AlarmBook:
    """Every alarm code with its current state. Start with :meth:`empty`."""

    alarms: Mapping[AlarmCode, Alarm]

    @classmethod
    def empty(cls, config: AlarmConfig | None = None) -> AlarmBook:
        severity = (config or AlarmConfig()).severity
        return cls(
            {
                code: Alarm(code=code, severity=severity.get(code, DEFAULT_SEVERITY[code]))
                for code in AlarmCode
            }
        )

    def __getitem__(self, code: AlarmCode | str) -> Alarm:
        return self.alarms[_code(code)]

    def annunciated(self) -> list[Alarm]:
        """Alarms an HMI lists: active, or cleared but not yet acknowledged."""
        return [a for a in self.alarms.values() if a.state is not AlarmState.NORMAL]

    def active_codes(self) -> frozenset[AlarmCode]:
        return frozenset(c for c, a in self.alarms.items() if a.active)

    def to_dict(self) -> dict[str, Any]:
        return {code.value: alarm.to_dict() for code, alarm in self.alarms.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlarmBook:
        book = dict(cls.empty().alarms)
        for value in data.values():
            alarm = Alarm.from_dict(value)
            book[alarm.code] = alarm
        return cls(book)


def _code(code: AlarmCode | str) -> AlarmCode:
    try:
        return AlarmCode(code)
    except ValueError as err:
        raise InvalidInput("code", f"unknown alarm code {code!r}") from err


def _elapsed_s(start: datetime | None, now: datetime) -> float:
    return 0.0 if start is None else (now - start).total_seconds()


def _update(alarm: Alarm, condition: Condition, now: datetime, config: AlarmConfig) -> Alarm:
    """Advance one alarm by one observation of its condition."""
    if condition.active:
        alarm = replace(alarm, clearing_since=None)
        if alarm.active:
            return replace(alarm, detail=condition.detail or alarm.detail)
        pending = alarm.pending_since or now
        if _elapsed_s(pending, now) >= config.on_delay_s.get(alarm.code, 0.0):
            # Annunciate (again): a new occurrence, unacknowledged.
            return replace(
                alarm,
                state=AlarmState.ACTIVE_UNACKNOWLEDGED,
                detail=condition.detail,
                since=now,
                acknowledged_at=None,
                acknowledged_by=None,
                pending_since=None,
            )
        return replace(alarm, pending_since=pending)
    alarm = replace(alarm, pending_since=None)
    if not alarm.active:
        return alarm
    clearing = alarm.clearing_since or now
    if _elapsed_s(clearing, now) < config.off_delay_s:
        return replace(alarm, clearing_since=clearing)
    state = (
        AlarmState.NORMAL
        if alarm.state is AlarmState.ACTIVE_ACKNOWLEDGED
        else AlarmState.CLEARED_UNACKNOWLEDGED
    )
    return replace(alarm, state=state, cleared_at=now, clearing_since=None)


def evaluate(
    book: AlarmBook,
    conditions: Mapping[AlarmCode, Condition | bool],
    now: datetime,
    config: AlarmConfig | None = None,
) -> AlarmBook:
    """Advance the book by one observation of the conditions at ``now``.

    Codes absent from ``conditions`` are left as they are (condition unknown).
    """
    cfg = config or AlarmConfig()
    alarms = dict(book.alarms)
    for raw_code, raw in conditions.items():
        code = _code(raw_code)
        condition = raw if isinstance(raw, Condition) else Condition(bool(raw))
        current = alarms.get(code) or Alarm(code, cfg.severity.get(code, DEFAULT_SEVERITY[code]))
        alarms[code] = _update(current, condition, now, cfg)
    return AlarmBook(alarms)


def acknowledge(book: AlarmBook, code: AlarmCode | str, by: str, now: datetime) -> AlarmBook:
    """Acknowledge an alarm (by a user or role). Idempotent on an acknowledged alarm.

    ``active_unacknowledged`` -> ``active_acknowledged``; ``cleared_unacknowledged`` ->
    ``normal``. Raises :class:`InvalidInput` for an unknown code.
    """
    key = _code(code)
    alarm = book.alarms.get(key)
    if alarm is None or alarm.acknowledged:
        return book
    state = (
        AlarmState.ACTIVE_ACKNOWLEDGED
        if alarm.state is AlarmState.ACTIVE_UNACKNOWLEDGED
        else AlarmState.NORMAL
    )
    acked = replace(alarm, state=state, acknowledged_at=now, acknowledged_by=by)
    return AlarmBook({**book.alarms, key: acked})


@dataclass(frozen=True)
class AlarmChange:
    """A state transition between two books, for logging and the audit trail.

    Logged as text an operator reads (``str``: ``feeder_fault (high): normal ->
    active_unacknowledged: cement feeder fault``) and, in JSON logs, as fields
    (:meth:`log_fields`, picked up by ``service.logs``)."""

    code: AlarmCode
    old: AlarmState
    new: AlarmState
    severity: Severity | None = field(default=None, compare=False)
    detail: str = field(default="", compare=False)

    def __str__(self) -> str:
        severity = f" ({self.severity.value})" if self.severity is not None else ""
        text = f"{self.code.value}{severity}: {self.old.value} -> {self.new.value}"
        return f"{text}: {self.detail}" if self.detail else text

    def log_fields(self) -> dict[str, str]:
        fields = {"alarm": self.code.value, "from_state": self.old.value}
        fields["to_state"] = self.new.value
        if self.severity is not None:
            fields["severity"] = self.severity.value
        if self.detail:
            fields["detail"] = self.detail
        return fields


def changes(old: AlarmBook, new: AlarmBook) -> list[AlarmChange]:
    """State transitions from ``old`` to ``new``."""
    out: list[AlarmChange] = []
    for code, alarm in new.alarms.items():
        before = old.alarms.get(code)
        old_state = before.state if before is not None else AlarmState.NORMAL
        if old_state is not alarm.state:
            out.append(AlarmChange(code, old_state, alarm.state, alarm.severity, alarm.detail))
    return out


def detect(
    *,
    solids_fraction_target: float,
    binder_ratio_target: float,
    measured_solids_fraction: float | None,
    measured_binder_ratio: float | None,
    pump_pressure_kpa: float | None,
    faulted_feeders: frozenset[str],
    link_up: bool,
    stale_inputs: tuple[str, ...],
    recipe_unreachable: bool,
    remote_enabled: bool,
    producing: bool,
    config: AlarmConfig | None = None,
) -> dict[AlarmCode, Condition]:
    """Alarm conditions from one control step and the plant status.

    ``producing``: paste is being made under control (pour running, plant running);
    quality alarms (off-spec, unreachable) only exist then. An off-spec condition whose
    measurement is missing is left out (unknown: the alarm keeps its state; the stale
    data alarm reports the missing measurement). With the link down only
    ``plant_link_lost`` is judged; the rest is unknown.
    """
    cfg = config or AlarmConfig()
    out: dict[AlarmCode, Condition] = {
        AlarmCode.PLANT_LINK_LOST: Condition(not link_up, "" if link_up else "no link to the PLC")
    }
    if not link_up:
        return out
    out[AlarmCode.PLC_NOT_REMOTE] = Condition(
        not remote_enabled, "" if remote_enabled else "PLC does not accept setpoints"
    )
    out[AlarmCode.FEEDER_FAULT] = Condition(
        bool(faulted_feeders), ", ".join(sorted(faulted_feeders))
    )
    out[AlarmCode.STALE_DATA] = Condition(bool(stale_inputs), ", ".join(stale_inputs))
    if pump_pressure_kpa is not None and math.isfinite(pump_pressure_kpa):
        high = pump_pressure_kpa > cfg.pump_pressure_high_kpa
        out[AlarmCode.PUMP_PRESSURE_HIGH] = Condition(
            high,
            f"{pump_pressure_kpa:.0f} kPa > {cfg.pump_pressure_high_kpa:.0f} kPa" if high else "",
        )
    if not producing:
        for code in (
            AlarmCode.SOLIDS_OFF_SPEC,
            AlarmCode.BINDER_OFF_SPEC,
            AlarmCode.RECIPE_UNREACHABLE,
        ):
            out[code] = Condition(False)
        return out
    out[AlarmCode.RECIPE_UNREACHABLE] = Condition(
        recipe_unreachable,
        "feed wetter than the recipe: water would have to be negative"
        if recipe_unreachable
        else "",
    )
    if measured_solids_fraction is not None:
        off = solids_off_spec(measured_solids_fraction, solids_fraction_target, cfg)
        out[AlarmCode.SOLIDS_OFF_SPEC] = Condition(
            off,
            f"Cw {100 * measured_solids_fraction:.1f} % vs {100 * solids_fraction_target:.1f} %"
            if off
            else "",
        )
    if measured_binder_ratio is not None:
        off = binder_off_spec(measured_binder_ratio, binder_ratio_target, cfg)
        out[AlarmCode.BINDER_OFF_SPEC] = Condition(
            off,
            f"Bw {100 * measured_binder_ratio:.2f} % vs {100 * binder_ratio_target:.2f} %"
            if off
            else "",
        )
    return out


def solids_off_spec(measured: float, target: float, config: AlarmConfig) -> bool:
    """Cw outside ``target +- solids_band_fraction`` (absolute band)."""
    return abs(measured - target) > config.solids_band_fraction


def binder_off_spec(measured: float, target: float, config: AlarmConfig) -> bool:
    """Bw outside ``target x (1 +- binder_band_relative)`` (relative band)."""
    return abs(measured - target) > config.binder_band_relative * target
