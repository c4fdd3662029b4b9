"""The service's alarms as OPC UA Alarms & Conditions see them. Pure: an alarm as the
HMI snapshot lists it (``/plant/status`` "alarms") in, the condition's state out.

The alarm book (``service.core.control.alarms``, ISA-18.2 states) maps onto an
AlarmConditionType (OPC UA Part 9, "Alarms and Conditions", §5.8):

* ``ActiveState/Id``: the condition is present (``active_*``);
* ``AckedState/Id``: acknowledged (``normal``, ``active_acknowledged``);
* ``Retain``: the condition is of interest to a client, active or not yet
  acknowledged (Part 9 §5.5.2); ConditionRefresh sends exactly these;
* ``Severity`` 1-1000 from the ISA-18.2 priority, at the middle of the bands Part 9
  §5.5.2 suggests (801-1000 high ... 1-200 low): low 150, medium 450, high 700,
  critical 900.

A client's view changes, and an event is due, when any of these (or the message of a
newly active alarm) changes: :func:`differs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.core.control.alarms import DEFAULT_SEVERITY, AlarmCode, Severity

SEVERITY: Mapping[str, int] = {
    Severity.LOW.value: 150,
    Severity.MEDIUM.value: 450,
    Severity.HIGH.value: 700,
    Severity.CRITICAL.value: 900,
}

#: What each alarm means, for the event's Message when the service gave no detail.
MEANING: Mapping[AlarmCode, str] = {
    AlarmCode.SOLIDS_OFF_SPEC: "Paste solids (Cw) outside the recipe's band",
    AlarmCode.BINDER_OFF_SPEC: "Binder (Bw) outside the recipe's band",
    AlarmCode.PUMP_PRESSURE_HIGH: "Pump discharge pressure high",
    AlarmCode.FEEDER_FAULT: "Binder feeder fault",
    AlarmCode.PLANT_LINK_LOST: "Link to the PLC lost",
    AlarmCode.STALE_DATA: "Plant data stale",
    AlarmCode.RECIPE_UNREACHABLE: "Recipe not reachable with this feed",
    AlarmCode.PLC_NOT_REMOTE: "PLC not in remote: it takes no setpoints",
    AlarmCode.BARRICADE_PRESSURE_HIGH: "Barricade pressure near its rating",
    AlarmCode.BARRICADE_PRESSURE_AT_RATING: "Barricade pressure at its rating",
    AlarmCode.BARRICADE_PRESSURE_UNKNOWN: "Barricade pressure unreadable",
    AlarmCode.DIVERTER_NOT_IN_POSITION: "Dump diverter not in the commanded position",
    AlarmCode.FEED_GAUGE_HOLDING: "Feed gauge dead: last binder correction held",
    AlarmCode.BINDER_ON_PASTE_FLOW: "Feed gauge dead: binder on the paste flow meter",
    AlarmCode.GAUGES_DEAD_PAUSE: "Feed and paste gauges dead: pour paused",
    AlarmCode.INSTRUMENTS_DISAGREE: "Flows across the mixer do not balance",
    AlarmCode.DUMP_LIMIT_PAUSE: "Dump allowance reached: pour paused",
    AlarmCode.RECIPE_UNREACHABLE_PAUSE: "Recipe out of the feed's reach: pour paused",
}


@dataclass(frozen=True, slots=True)
class ConditionState:
    code: AlarmCode
    active: bool
    acked: bool
    severity: int
    message: str
    since: datetime | None = None
    acked_by: str = ""

    @property
    def retain(self) -> bool:
        return self.active or not self.acked


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def condition(code: AlarmCode, alarm: Mapping[str, Any] | None) -> ConditionState:
    """The condition of ``code`` from its entry of the snapshot's alarm list (None: the
    alarm is not listed, so normal: inactive and acknowledged)."""
    if alarm is None:
        priority = DEFAULT_SEVERITY[code].value
        return ConditionState(code, False, True, SEVERITY[priority], MEANING[code])
    state = str(alarm.get("state") or "")
    detail = str(alarm.get("detail") or "")
    return ConditionState(
        code=code,
        active=state.startswith("active"),
        acked=bool(alarm.get("acknowledged")),
        severity=SEVERITY.get(str(alarm.get("severity") or ""), 500),
        message=f"{MEANING[code]}: {detail}" if detail else MEANING[code],
        since=_instant(alarm.get("since")),
        acked_by=str(alarm.get("acknowledged_by") or ""),
    )


def conditions(alarms: Any) -> dict[AlarmCode, ConditionState]:
    """Every alarm code's condition from the snapshot's alarm list."""
    listed = {str(a.get("code")): a for a in (alarms if isinstance(alarms, list) else ()) if a}
    return {code: condition(code, listed.get(code.value)) for code in AlarmCode}


def differs(old: ConditionState | None, new: ConditionState) -> bool:
    """An event is due: the condition changed state or severity, or became active again
    (a new occurrence), or is first seen retained."""
    if old is None:
        return new.retain
    return (old.active, old.acked, old.severity) != (new.active, new.acked, new.severity) or (
        new.active and old.since != new.since
    )
