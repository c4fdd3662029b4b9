"""The dump diverter as a pure state machine: where the paste goes, stope or dump.

The operating rule it keeps (plant practice, not a formula): the pipeline starts on water
and ends with a flush, so the first paste is diluted; a plant with a diverter valve sends
the paste to its dump until the density is in spec, so no off-spec start-up paste goes
into the stope, and records the dumped volume apart from the placed volume. The valve
is driven by ``divert_to_dump_sp`` and proves its position with ``diverted_to_dump_pv``
(docs/INTEGRATION.md, optional tags).

Rules, applied each cycle by :func:`step`:

- every start goes to the dump until Cw and Bw have both been inside their bands for
  ``settle_s``; only then is the valve commanded to the stope. The time counts while both
  are measured in band; a reading out of band, or the plant known not to be making
  paste, starts it again; a gap in the data (a value or the plant's mode bad or stale)
  pauses it, neither counted nor lost, for up to ``settle_s``, so a link that is slow
  now and then does not keep a start on the dump for ever;
- once at the stope a run stays there (an off-spec excursion mid-run is a control
  matter, counted as off-spec placed, not a reason to swing the valve);
- whenever paste is not being made for the stope (no pour, pausing, stopping, ending,
  the PLC flushing, the plant not running) the valve is commanded to the dump, and the
  next start settles again;
- while the plant's mode is unknown (its tag bad or stale: a slow link, a subscription
  being recreated) the valve is held where it was commanded, for up to ``settle_s``:
  bad data moves nothing, so a moment of stale readings does not send a settled run's
  good paste to the dump for another settling (a start still settling stays on the dump,
  its settling paused); a mode unknown for longer is treated as not running (the dump);
- where the paste goes is decided by the **proven** position, never the command; with
  the position unproven (tag bad) it is the last proven position while the command has
  not changed since, otherwise the dump (paste of unproven destination never counts
  as stope volume);
- a valve that does not prove the commanded position within ``travel_timeout_s`` is a
  fault (an alarm, and a pause asked for once when it appears); it clears when the
  position is proven;
- a plant without the two diverter tags has no diverter: the machine is inactive,
  says so, and all paste goes to the stope.

Time is a parameter (aware datetimes); nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from service.core.control.alarms import AlarmConfig, binder_off_spec, solids_off_spec
from service.errors import InvalidInput

DIVERT_SP_TAG = "divert_to_dump_sp"
DIVERTED_PV_TAG = "diverted_to_dump_pv"
FAULT_CODE = "diverter_not_in_position"


class PourPhase(StrEnum):
    """What the pour asks of the plant this cycle.

    ``idle``: no paste is made for a pour (none active, or paused, stopped or ended after
    its flush). ``starting`` / ``running``: paste for the stope is wanted. ``pausing`` /
    ``stopping`` / ``ending``: the pour is being brought down (the flush follows).
    """

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSING = "pausing"
    STOPPING = "stopping"
    ENDING = "ending"


class Destination(StrEnum):
    STOPE = "stope"
    DUMP = "dump"


_PRODUCING = frozenset({PourPhase.STARTING, PourPhase.RUNNING})


def diverter_installed(tags: Collection[str]) -> bool:
    """Whether a tag map has a diverter: both its command and its proven position (a
    command that cannot be proven cannot decide where the paste went)."""
    return DIVERT_SP_TAG in tags and DIVERTED_PV_TAG in tags


def in_band(
    measured: float | None, target: float, *, solids: bool, config: AlarmConfig | None = None
) -> bool | None:
    """Whether a measured Cw (``solids``) or Bw is inside the band the alarms and the
    totals judge by (:mod:`service.core.control.alarms`); None when not measured."""
    if measured is None or not math.isfinite(measured):
        return None
    cfg = config or AlarmConfig()
    off = (
        solids_off_spec(measured, target, cfg) if solids else binder_off_spec(measured, target, cfg)
    )
    return not off


@dataclass(frozen=True, slots=True)
class DiverterConfig:
    """``installed``: the plant has both diverter tags (:func:`diverter_installed`).
    ``settle_s``: Cw and Bw must both be in band this long, continuously, before a start
    goes to the stope. ``travel_timeout_s``: the valve must prove a commanded position
    within this long."""

    installed: bool = True
    settle_s: float = 60.0
    travel_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        for name in ("settle_s", "travel_timeout_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0 or value > 1.0e5:
                raise InvalidInput(name, f"{name} must be finite, >= 0 and <= 1e5, got {value!r}")


@dataclass(frozen=True, slots=True)
class DiverterInputs:
    """One cycle's observations.

    ``solids_in_band`` / ``binder_in_band``: Cw / Bw inside their bands (:func:`in_band`),
    None when not measured (unknown is not in band). ``proven_to_dump``: the valve's
    proven position (True = dump, False = stope), None when the tag is bad or absent.
    ``plant_running`` / ``plant_flushing``: the PLC's mode, None when it is unknown (the
    mode tag bad or stale).
    """

    phase: PourPhase
    solids_in_band: bool | None
    binder_in_band: bool | None
    proven_to_dump: bool | None
    plant_running: bool | None = True
    plant_flushing: bool | None = False


@dataclass(frozen=True, slots=True)
class DiverterFault:
    """The valve did not prove the commanded position in time."""

    commanded_to_dump: bool
    proven_to_dump: bool | None
    since: datetime
    detail: str
    code: str = FAULT_CODE


@dataclass(frozen=True, slots=True)
class DiverterState:
    """What the machine remembers between cycles. Start with ``DiverterState()``."""

    command_to_dump: bool | None = None
    commanded_at: datetime | None = None
    proven_to_dump: bool | None = None
    proven_at: datetime | None = None
    unproven_since: datetime | None = None
    fault: DiverterFault | None = None
    mode_unknown_since: datetime | None = None
    # The settling of a start: seconds both were measured in band, whether they were at
    # the last cycle (``stepped_at``), and since when the data has had a gap.
    in_band_s: float = 0.0
    was_in_band: bool = False
    gap_since: datetime | None = None
    stepped_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DiverterOutput:
    """One cycle's decision.

    ``divert_to_dump_sp``: the command to write (None when inactive). ``destination``:
    where the paste goes now, by the proven position. ``pause_requested``: a fault
    appeared this cycle (pause the pour once; the alarm follows ``fault``).
    ``settle_remaining_s``: seconds of in-band time still needed before a start goes to
    the stope (None unless a start is waiting for it).
    """

    active: bool
    divert_to_dump_sp: bool | None
    destination: Destination
    position_proven: bool
    reason: str
    fault: DiverterFault | None = None
    pause_requested: bool = False
    settle_remaining_s: float | None = None

    @property
    def to_dump(self) -> bool:
        """For the totals: this cycle's paste is dumped, not placed."""
        return self.destination is Destination.DUMP


INACTIVE = DiverterOutput(
    active=False,
    divert_to_dump_sp=None,
    destination=Destination.STOPE,
    position_proven=False,
    reason=f"no diverter: {DIVERT_SP_TAG} and {DIVERTED_PV_TAG} are not both in the tag map",
)


def _elapsed_s(since: datetime, now: datetime) -> float:
    return (now - since).total_seconds()


def _settling(
    state: DiverterState,
    inputs: DiverterInputs,
    now: datetime,
    config: DiverterConfig,
    *,
    producing: bool,
    mode_unknown: bool,
    commanded_start: bool,
) -> tuple[float, bool, datetime | None]:
    """(seconds in band toward settling, in band now, since when the data has had a gap)
    after this cycle (module text). The time from the last cycle counts when both were
    in band at both ends of it; a gap keeps the count for up to ``settle_s``.
    ``commanded_start``: paste is wanted and the valve has been commanded before."""
    flags = (inputs.solids_in_band, inputs.binder_in_band)
    if producing and all(f is True for f in flags):
        dt = 0.0 if state.stepped_at is None else _elapsed_s(state.stepped_at, now)
        return state.in_band_s + (dt if state.was_in_band else 0.0), True, None
    gap = commanded_start and False not in flags and (mode_unknown or (producing and None in flags))
    if gap:
        since = state.gap_since or now
        if _elapsed_s(since, now) < config.settle_s:
            return state.in_band_s, False, since
    return 0.0, False, None


def step(
    state: DiverterState, inputs: DiverterInputs, now: datetime, config: DiverterConfig
) -> tuple[DiverterState, DiverterOutput]:
    """Advance the diverter by one cycle at ``now`` (module docstring for the rules)."""
    if now.tzinfo is None:
        raise InvalidInput("now", "now must be a timezone-aware datetime")
    if not config.installed:
        return state, INACTIVE
    if state.commanded_at is not None and now < state.commanded_at:
        raise InvalidInput("now", "time went back")

    mode_unknown = inputs.plant_running is None or inputs.plant_flushing is None
    producing = (
        inputs.phase in _PRODUCING
        and inputs.plant_running is True
        and inputs.plant_flushing is False
    )
    commanded_start = inputs.phase in _PRODUCING and state.command_to_dump is not None
    in_band_s, was_in_band, gap_since = _settling(
        state,
        inputs,
        now,
        config,
        producing=producing,
        mode_unknown=mode_unknown,
        commanded_start=commanded_start,
    )
    settle_remaining: float | None = None
    unknown_since = (state.mode_unknown_since or now) if mode_unknown else None
    holding = (
        commanded_start
        and unknown_since is not None
        and _elapsed_s(unknown_since, now) < config.settle_s
    )
    if holding:
        want_dump = bool(state.command_to_dump)
        held_at = "the dump" if want_dump else "the stope"
        reason = f"plant mode unknown (its tag bad or stale): held at {held_at}"
        if want_dump:
            settle_remaining = config.settle_s - in_band_s
    elif not producing:
        want_dump = True
        if inputs.plant_flushing:
            reason = "flush: to the dump"
        elif inputs.phase in _PRODUCING:
            reason = "plant not running: to the dump, the restart settles again"
        elif inputs.phase is PourPhase.IDLE:
            reason = "no paste for a pour: to the dump, ready for the next start"
        else:
            reason = f"{inputs.phase.value}: to the dump for the flush"
    elif state.command_to_dump is False:
        want_dump = False
        reason = "running to the stope"
    else:
        if in_band_s >= config.settle_s:
            want_dump = False
            reason = f"Cw and Bw in band for {in_band_s:.0f} s: to the stope"
        else:
            want_dump = True
            settle_remaining = config.settle_s - in_band_s
            missing = [
                name
                for name, flag in (
                    ("Cw", inputs.solids_in_band),
                    ("Bw", inputs.binder_in_band),
                )
                if flag is not True
            ]
            reason = (
                f"start-up: to the dump until Cw and Bw are in band for {config.settle_s:.0f} s"
                + (f" ({', '.join(missing)} not in band)" if missing else "")
            )

    changed = want_dump != state.command_to_dump
    commanded_at = now if changed or state.commanded_at is None else state.commanded_at
    proven = inputs.proven_to_dump
    last_proven, proven_at = state.proven_to_dump, state.proven_at
    if proven is not None:
        last_proven, proven_at = proven, now

    if proven is not None and proven == want_dump:
        unproven_since = None
        fault = None
    else:
        # A new command gets the full travel time.
        unproven_since = state.unproven_since
        if changed or unproven_since is None:
            unproven_since = now
        fault = state.fault
        if fault is not None:
            fault = replace(fault, commanded_to_dump=want_dump, proven_to_dump=proven)
        elif _elapsed_s(unproven_since, now) > config.travel_timeout_s:
            where = {True: "the dump", False: "the stope", None: "an unproven position"}
            fault = DiverterFault(
                commanded_to_dump=want_dump,
                proven_to_dump=proven,
                since=unproven_since,
                detail=(
                    f"diverter commanded to {where[want_dump]} is at {where[proven]} after "
                    f"{_elapsed_s(unproven_since, now):.0f} s (travel timeout "
                    f"{config.travel_timeout_s:.0f} s)"
                ),
            )
    pause_requested = fault is not None and state.fault is None

    if proven is not None:
        destination = Destination.DUMP if proven else Destination.STOPE
        position_proven = True
    elif (
        last_proven is not None
        and last_proven == want_dump
        and proven_at is not None
        and proven_at >= commanded_at
    ):
        # Tag bad, the valve proved this command before and was not told to move since.
        destination = Destination.DUMP if last_proven else Destination.STOPE
        position_proven = False
    else:
        destination = Destination.DUMP
        position_proven = False

    new_state = DiverterState(
        command_to_dump=want_dump,
        commanded_at=commanded_at,
        proven_to_dump=last_proven,
        proven_at=proven_at,
        unproven_since=unproven_since,
        fault=fault,
        mode_unknown_since=unknown_since,
        in_band_s=in_band_s,
        was_in_band=was_in_band,
        gap_since=gap_since,
        stepped_at=now,
    )
    output = DiverterOutput(
        active=True,
        divert_to_dump_sp=want_dump,
        destination=destination,
        position_proven=position_proven,
        reason=reason,
        fault=fault,
        pause_requested=pause_requested,
        settle_remaining_s=settle_remaining,
    )
    return new_state, output
