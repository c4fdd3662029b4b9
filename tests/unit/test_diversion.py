"""The dump diverter: start-up to the dump, flushes to the dump, the proven position
decides, a valve that does not arrive is a fault, no diverter tags: inactive."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.control.alarms import AlarmConfig
from service.core.diversion import (
    DIVERT_SP_TAG,
    DIVERTED_PV_TAG,
    Destination,
    DiverterConfig,
    DiverterInputs,
    DiverterOutput,
    DiverterState,
    PourPhase,
    diverter_installed,
    in_band,
    step,
)
from service.errors import InvalidInput

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
CONFIG = DiverterConfig(settle_s=60.0, travel_timeout_s=10.0)


def inputs(
    phase: PourPhase = PourPhase.RUNNING,
    cw: bool | None = True,
    bw: bool | None = True,
    proven: bool | None = True,
    running: bool | None = True,
    flushing: bool | None = False,
) -> DiverterInputs:
    return DiverterInputs(phase, cw, bw, proven, plant_running=running, plant_flushing=flushing)


@dataclass
class Valve:
    """A valve that follows its command after ``travel_s`` (None: stuck where it is)."""

    position: bool = True
    travel_s: float | None = 3.0
    target: bool | None = None
    moving_since: datetime | None = None

    def update(self, command: bool | None, now: datetime) -> bool:
        if command is not None and command != self.target:
            self.target, self.moving_since = command, now
        if (
            self.travel_s is not None
            and self.target is not None
            and self.moving_since is not None
            and (now - self.moving_since).total_seconds() >= self.travel_s
        ):
            self.position = self.target
        return self.position


class Rig:
    def __init__(self, config: DiverterConfig = CONFIG, valve: Valve | None = None) -> None:
        self.config = config
        self.state = DiverterState()
        self.valve = valve or Valve()
        self.now = T0
        self.out: DiverterOutput | None = None
        self.pauses = 0

    def run(self, seconds: int, **kw: object) -> DiverterOutput:
        """``seconds`` one-second cycles; the valve sees the previous cycle's command."""
        out = self.out
        for _ in range(seconds):
            self.now += timedelta(seconds=1)
            proven = self.valve.update(out.divert_to_dump_sp if out else None, self.now)
            self.state, out = step(
                self.state,
                inputs(proven=proven, **kw),
                self.now,
                self.config,  # type: ignore[arg-type]
            )
            self.pauses += out.pause_requested
        assert out is not None
        self.out = out
        return out


def test_without_the_diverter_tags_the_machine_is_inactive_and_says_so() -> None:
    assert diverter_installed({DIVERT_SP_TAG, DIVERTED_PV_TAG, "paste_flow_pv"})
    assert not diverter_installed({DIVERT_SP_TAG})
    assert not diverter_installed({DIVERTED_PV_TAG})
    state, out = step(
        DiverterState(), inputs(PourPhase.STARTING), T0, DiverterConfig(installed=False)
    )
    assert state == DiverterState()
    assert not out.active and out.divert_to_dump_sp is None
    assert out.destination is Destination.STOPE and not out.to_dump
    assert DIVERT_SP_TAG in out.reason and DIVERTED_PV_TAG in out.reason


def test_in_band_uses_the_alarm_bands() -> None:
    cfg = AlarmConfig(solids_band_fraction=0.01, binder_band_relative=0.05)
    assert in_band(0.725, 0.72, solids=True, config=cfg) is True
    assert in_band(0.735, 0.72, solids=True, config=cfg) is False
    assert in_band(0.0524, 0.05, solids=False, config=cfg) is True
    assert in_band(0.0526, 0.05, solids=False, config=cfg) is False
    assert in_band(None, 0.05, solids=False) is None
    assert in_band(math.nan, 0.72, solids=True) is None


def test_a_start_goes_to_the_dump_until_cw_and_bw_are_in_band_for_the_settle_time() -> None:
    rig = Rig()
    out = rig.run(30, phase=PourPhase.STARTING, cw=False, bw=True)
    assert out.divert_to_dump_sp is True and out.destination is Destination.DUMP
    assert "Cw" in out.reason and "start-up" in out.reason
    out = rig.run(60, phase=PourPhase.RUNNING)  # in band from the first of these: 59 s
    assert out.divert_to_dump_sp is True
    assert out.settle_remaining_s == pytest.approx(1.0)
    out = rig.run(1, phase=PourPhase.RUNNING)  # 60 s in band: to the stope
    assert out.divert_to_dump_sp is False
    # Commanded to the stope, still proven at the dump: the paste still goes to the dump.
    assert out.destination is Destination.DUMP and out.to_dump
    out = rig.run(3, phase=PourPhase.RUNNING)  # the valve travels 3 s from the next cycle
    assert out.destination is Destination.DUMP
    out = rig.run(1, phase=PourPhase.RUNNING)
    assert out.destination is Destination.STOPE and not out.to_dump
    assert out.position_proven and out.fault is None
    assert rig.pauses == 0


def test_unknown_is_not_in_band_and_counts_no_settling_time() -> None:
    rig = Rig()
    rig.run(50, phase=PourPhase.STARTING)  # 49 s counted
    out = rig.run(20, phase=PourPhase.STARTING, bw=None)  # Bw unknown: not counted
    assert out.divert_to_dump_sp is True and "Bw" in out.reason
    assert out.settle_remaining_s == pytest.approx(11.0)
    out = rig.run(11, phase=PourPhase.STARTING)  # the first after the gap counts nothing
    assert out.divert_to_dump_sp is True
    out = rig.run(1, phase=PourPhase.STARTING)
    assert out.divert_to_dump_sp is False


def test_once_at_the_stope_an_excursion_does_not_swing_the_valve() -> None:
    rig = Rig()
    rig.run(70)
    out = rig.run(30, cw=False)
    assert out.divert_to_dump_sp is False and out.destination is Destination.STOPE


def test_an_unknown_plant_mode_holds_a_settled_run_at_the_stope() -> None:
    """A moment of stale readings (the mode tag bad: a slow link) moves nothing: the run
    stays at the stope, and when the mode reads again it goes on there, no settling."""
    rig = Rig()
    rig.run(70)
    assert rig.out is not None and rig.out.destination is Destination.STOPE
    out = rig.run(3, running=None)
    assert out.divert_to_dump_sp is False and out.destination is Destination.STOPE
    assert "unknown" in out.reason and "stope" in out.reason
    out = rig.run(2, flushing=None)
    assert out.divert_to_dump_sp is False and out.destination is Destination.STOPE
    out = rig.run(1)
    assert out.divert_to_dump_sp is False and out.destination is Destination.STOPE
    # A mode that reads "not running" is known: to the dump, and the restart settles.
    out = rig.run(1, running=False)
    assert out.divert_to_dump_sp is True


def test_a_plant_mode_unknown_for_longer_than_the_settle_time_goes_to_the_dump() -> None:
    """Holding is for a moment of bad data: a mode tag that stays bad longer than the
    settle time is not known to be placing paste, so the valve goes to the dump."""
    rig = Rig()
    rig.run(70)
    out = rig.run(60, running=None)
    assert out.divert_to_dump_sp is False and "unknown" in out.reason
    out = rig.run(1, running=None)
    assert out.divert_to_dump_sp is True
    # Read again: a restart, settled afresh before the stope.
    out = rig.run(30)
    assert out.divert_to_dump_sp is True


def test_an_unknown_plant_mode_during_a_start_stays_on_the_dump_and_pauses_its_settling() -> None:
    rig = Rig()
    rig.run(50, phase=PourPhase.STARTING)  # in band from the first: 49 s counted
    out = rig.run(3, phase=PourPhase.STARTING, running=None)
    assert out.divert_to_dump_sp is True and out.destination is Destination.DUMP
    assert out.settle_remaining_s == pytest.approx(11.0)  # the gap neither counts nor resets
    out = rig.run(11, phase=PourPhase.STARTING)  # the first after the gap counts nothing
    assert out.divert_to_dump_sp is True
    out = rig.run(1, phase=PourPhase.STARTING)
    assert out.divert_to_dump_sp is False


def test_a_start_on_a_link_stale_every_few_seconds_still_settles() -> None:
    """A loaded link that drops every value for 2 s in every 10: the start still reaches
    the stope once 60 s of in-band time are counted, instead of never (a reset at each
    gap would keep it on the dump until the pour's dump limit pauses it)."""
    rig = Rig()
    out = rig.out
    for _ in range(12):
        out = rig.run(8, phase=PourPhase.STARTING)
        if out.divert_to_dump_sp is False:
            break
        out = rig.run(2, phase=PourPhase.STARTING, cw=None, bw=None, running=None)
    assert out is not None and out.divert_to_dump_sp is False
    assert (rig.now - T0).total_seconds() <= 90.0


def test_a_reading_out_of_band_or_a_long_gap_restarts_the_settling() -> None:
    rig = Rig()
    rig.run(50, phase=PourPhase.STARTING)
    out = rig.run(1, phase=PourPhase.STARTING, cw=False)  # measured out of band
    out = rig.run(59, phase=PourPhase.STARTING)
    assert out.divert_to_dump_sp is True and out.settle_remaining_s == pytest.approx(2.0)
    rig2 = Rig()
    rig2.run(50, phase=PourPhase.STARTING)
    out = rig2.run(60, phase=PourPhase.STARTING, cw=None)  # 59 s from its first cycle
    assert out.settle_remaining_s == pytest.approx(11.0)
    out = rig2.run(1, phase=PourPhase.STARTING, cw=None)  # the settle time: it restarts
    assert out.settle_remaining_s == pytest.approx(60.0)
    out = rig2.run(59, phase=PourPhase.STARTING)
    assert out.divert_to_dump_sp is True
    # The plant known to stop: a restart settles from nothing.
    rig3 = Rig()
    rig3.run(50, phase=PourPhase.STARTING)
    rig3.run(1, phase=PourPhase.STARTING, running=False)
    out = rig3.run(59, phase=PourPhase.STARTING)
    assert out.divert_to_dump_sp is True


@pytest.mark.parametrize(
    "kw",
    [
        {"phase": PourPhase.PAUSING},
        {"phase": PourPhase.STOPPING},
        {"phase": PourPhase.ENDING},
        {"phase": PourPhase.IDLE},
        {"flushing": True},
        {"running": False},
    ],
)
def test_every_flush_pause_stop_end_goes_to_the_dump_and_the_next_start_settles_again(
    kw: dict[str, object],
) -> None:
    rig = Rig()
    rig.run(70)
    assert rig.out is not None and rig.out.destination is Destination.STOPE
    out = rig.run(1, **kw)
    assert out.divert_to_dump_sp is True
    out = rig.run(5, **kw)
    assert out.destination is Destination.DUMP and out.fault is None
    out = rig.run(30, phase=PourPhase.STARTING)
    assert out.divert_to_dump_sp is True  # a new start: 60 s in band again
    out = rig.run(30, phase=PourPhase.RUNNING)
    assert out.divert_to_dump_sp is True  # 61 in-band cycles make 60 s
    out = rig.run(1, phase=PourPhase.RUNNING)
    assert out.divert_to_dump_sp is False


def test_a_valve_that_does_not_arrive_is_a_fault_and_one_pause() -> None:
    rig = Rig(valve=Valve(position=True, travel_s=None))  # stuck at the dump
    out = rig.run(71)  # commanded to the stope at cycle 61
    assert out.divert_to_dump_sp is False and out.fault is None  # 10 s: not yet over
    out = rig.run(1)
    assert out.fault is not None and out.pause_requested
    assert out.fault.code == "diverter_not_in_position"
    assert out.fault.commanded_to_dump is False and out.fault.proven_to_dump is True
    assert "stope" in out.fault.detail and "dump" in out.fault.detail
    assert out.destination is Destination.DUMP  # by the proven position
    out = rig.run(20)
    assert out.fault is not None and not out.pause_requested
    assert rig.pauses == 1
    # The pause brings the pour down: commanded to the dump, where the valve is.
    out = rig.run(1, phase=PourPhase.PAUSING)
    assert out.fault is None and out.divert_to_dump_sp is True


def test_the_fault_clears_when_the_valve_proves_the_position() -> None:
    valve = Valve(position=True, travel_s=15.0)  # slower than the 10 s timeout
    rig = Rig(valve=valve)
    out = rig.run(72)
    assert out.fault is not None
    out = rig.run(5)
    assert out.fault is None and out.destination is Destination.STOPE


def test_an_unproven_position_keeps_the_last_proof_only_while_the_command_stands() -> None:
    rig = Rig()
    rig.run(70)
    assert rig.out is not None and rig.out.destination is Destination.STOPE
    state = rig.state
    now = rig.now + timedelta(seconds=1)
    state, out = step(state, inputs(proven=None), now, CONFIG)  # the pv tag goes bad
    assert out.destination is Destination.STOPE and not out.position_proven
    for s in range(2, 12):
        state, out = step(state, inputs(proven=None), now + timedelta(seconds=s), CONFIG)
    assert out.fault is not None and out.pause_requested
    assert out.fault.proven_to_dump is None and "unproven" in out.fault.detail
    # Commanded to the dump with no proof: never counted as stope volume.
    state, out = step(
        state, inputs(PourPhase.PAUSING, proven=None), now + timedelta(seconds=13), CONFIG
    )
    assert out.divert_to_dump_sp is True and out.destination is Destination.DUMP
    # Back to the stope with the tag still bad: a later proof of the stope does not count.
    state, out = step(state, inputs(proven=None), now + timedelta(seconds=14), CONFIG)
    assert out.destination is Destination.DUMP


def test_a_first_cycle_with_no_proof_is_the_dump() -> None:
    _, out = step(DiverterState(), inputs(PourPhase.STARTING, proven=None), T0, CONFIG)
    assert out.divert_to_dump_sp is True and out.destination is Destination.DUMP


def test_bad_times_and_settings() -> None:
    state, _ = step(DiverterState(), inputs(), T0, CONFIG)
    with pytest.raises(InvalidInput):
        step(state, inputs(), T0 - timedelta(seconds=1), CONFIG)
    with pytest.raises(InvalidInput):
        step(state, inputs(), datetime(2026, 3, 1), CONFIG)
    for name in ("settle_s", "travel_timeout_s"):
        with pytest.raises(InvalidInput) as err:
            DiverterConfig(**{name: -1.0})  # type: ignore[arg-type]
        assert err.value.field == name


# Each element is held for ``repeat`` cycles of ``dt`` seconds, so runs of in-band
# production are long enough to reach the stope, and valves long enough to fault.
flag = st.sampled_from([True, True, True, False, None])
cycle = st.tuples(
    st.sampled_from([*PourPhase, PourPhase.RUNNING, PourPhase.STARTING]),
    flag,
    flag,
    st.sampled_from([True, False, None]),
    st.sampled_from([True, True, False, None]),
    st.sampled_from([False, False, True, None]),
    st.integers(0, 10),
    st.integers(1, 15),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(cycle, max_size=40))
def test_invariants_of_the_diverter(
    cycles: list[
        tuple[PourPhase, bool | None, bool | None, bool | None, bool | None, bool | None, int, int]
    ],
) -> None:
    state, now = DiverterState(), T0
    # The settling, counted apart: in-band seconds (a gap of data pauses them for up to
    # the settle time, anything else that is not in band restarts them).
    in_band_s, was_in, gap_since = 0.0, False, None
    mismatch_since: datetime | None = None
    commanded_stope_since_start = False
    expanded = [c[:-1] for c in cycles for _ in range(c[-1])]
    for phase, cw, bw, proven, running, flushing, dt in expanded:
        now += timedelta(seconds=dt)
        inp = DiverterInputs(phase, cw, bw, proven, plant_running=running, plant_flushing=flushing)
        before = state
        state, out = step(state, inp, now, CONFIG)
        wanted = phase in (PourPhase.STARTING, PourPhase.RUNNING)
        producing = wanted and running is True and flushing is False
        both = producing and cw is True and bw is True
        unknown = running is None or flushing is None
        gap = (
            wanted
            and before.command_to_dump is not None
            and False not in (cw, bw)
            and (unknown or (producing and None in (cw, bw)))
        )
        if both:
            in_band_s += dt if was_in else 0.0
            was_in, gap_since = True, None
        elif gap and (now - (gap_since or now)).total_seconds() < CONFIG.settle_s:
            was_in, gap_since = False, gap_since or now
        else:
            in_band_s, was_in, gap_since = 0.0, False, None
        assert out.active and out.divert_to_dump_sp is not None
        held_s = (
            (now - before.mode_unknown_since).total_seconds()
            if unknown and before.mode_unknown_since is not None
            else 0.0
        )
        if wanted and unknown and held_s < CONFIG.settle_s and before.command_to_dump is not None:
            # The mode unknown: the valve held where it was; a start settles afresh.
            assert out.divert_to_dump_sp is before.command_to_dump
            if out.divert_to_dump_sp:
                commanded_stope_since_start = False
        elif not producing:
            assert out.divert_to_dump_sp is True  # every flush, pause, stop, end: the dump
            commanded_stope_since_start = False
        elif out.divert_to_dump_sp is False and not commanded_stope_since_start:
            # The switch to the stope: both measured in band for the settle time.
            assert both and in_band_s >= CONFIG.settle_s
            commanded_stope_since_start = True
        # The proven position decides; with none, stope only on an earlier proof of it.
        if proven is not None:
            assert out.to_dump is proven
        elif out.destination is Destination.STOPE:
            assert out.divert_to_dump_sp is False and before.command_to_dump is False
            assert before.proven_to_dump is False
        assert out.pause_requested == (out.fault is not None and before.fault is None)
        if proven is not None and proven == out.divert_to_dump_sp:
            assert out.fault is None  # the position is proven: no fault
            mismatch_since = None
        else:
            changed = before.command_to_dump != out.divert_to_dump_sp
            mismatch_since = now if changed or mismatch_since is None else mismatch_since
        if out.pause_requested:
            # A new fault only after the travel timeout without the position proven.
            assert mismatch_since is not None
            assert (now - mismatch_since).total_seconds() > CONFIG.travel_timeout_s
