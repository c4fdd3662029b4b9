"""ISA-18.2-style alarm book: lifecycle, delays, acknowledgement, detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.core.control.alarms import (
    INSTRUMENT_CODES,
    POUR_PAUSE_CODES,
    STOPE_CODES,
    AlarmBook,
    AlarmChange,
    AlarmCode,
    AlarmConfig,
    AlarmState,
    Condition,
    Severity,
    acknowledge,
    changes,
    detect,
    evaluate,
)
from service.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = AlarmConfig()
SOLIDS = AlarmCode.SOLIDS_OFF_SPEC  # on-delay 10 s


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def observe(book: AlarmBook, code: AlarmCode, active: bool, t0: float, t1: float) -> AlarmBook:
    """The condition held at ``active`` from t0 to t1, observed every second."""
    t = t0
    while t <= t1:
        book = evaluate(book, {code: Condition(active, "detail")}, at(t), CONFIG)
        t += 1.0
    return book


def test_empty_book_is_all_normal_with_default_severities() -> None:
    book = AlarmBook.empty()
    assert {a.state for a in book.alarms.values()} == {AlarmState.NORMAL}
    assert set(book.alarms) == set(AlarmCode)
    assert book[AlarmCode.PLANT_LINK_LOST].severity is Severity.CRITICAL
    assert book.annunciated() == []


def test_full_lifecycle_unacknowledged_then_acknowledged_then_cleared() -> None:
    book = observe(AlarmBook.empty(), SOLIDS, True, 0, 9)
    assert book[SOLIDS].state is AlarmState.NORMAL  # on-delay not yet over
    book = observe(book, SOLIDS, True, 10, 12)
    alarm = book[SOLIDS]
    assert alarm.state is AlarmState.ACTIVE_UNACKNOWLEDGED
    assert alarm.since == at(10) and alarm.detail == "detail"
    assert book.active_codes() == {SOLIDS}

    book = acknowledge(book, "solids_off_spec", "hmi:operator1", at(20))
    alarm = book[SOLIDS]
    assert alarm.state is AlarmState.ACTIVE_ACKNOWLEDGED
    assert alarm.acknowledged_at == at(20) and alarm.acknowledged_by == "hmi:operator1"

    book = observe(book, SOLIDS, False, 30, 34)
    assert book[SOLIDS].state is AlarmState.ACTIVE_ACKNOWLEDGED  # off-delay 5 s
    book = observe(book, SOLIDS, False, 35, 36)
    alarm = book[SOLIDS]
    assert alarm.state is AlarmState.NORMAL
    assert alarm.cleared_at == at(35) and alarm.since == at(10)


def test_cleared_before_acknowledged_waits_for_the_acknowledgement() -> None:
    book = observe(AlarmBook.empty(), SOLIDS, True, 0, 10)
    book = observe(book, SOLIDS, False, 11, 20)
    assert book[SOLIDS].state is AlarmState.CLEARED_UNACKNOWLEDGED
    assert book[SOLIDS].cleared_at == at(16)
    assert [a.code for a in book.annunciated()] == [SOLIDS]
    book = acknowledge(book, SOLIDS, "scada", at(30))
    assert book[SOLIDS].state is AlarmState.NORMAL
    assert book.annunciated() == []


def test_returning_before_acknowledgement_is_a_new_occurrence() -> None:
    book = observe(AlarmBook.empty(), SOLIDS, True, 0, 10)
    book = observe(book, SOLIDS, False, 11, 20)
    book = observe(book, SOLIDS, True, 21, 31)
    alarm = book[SOLIDS]
    assert alarm.state is AlarmState.ACTIVE_UNACKNOWLEDGED
    assert alarm.since == at(31)


def test_on_and_off_delays_stop_chattering() -> None:
    book = AlarmBook.empty()
    for k in range(60):  # the condition toggles every 3 s, on-delay 10 s
        book = evaluate(book, {SOLIDS: (k // 3) % 2 == 0}, at(k), CONFIG)
        assert book[SOLIDS].state is AlarmState.NORMAL
    book = observe(book, SOLIDS, True, 60, 70)
    for k in range(71, 131):  # clear blips of 2 s, off-delay 5 s
        book = evaluate(book, {SOLIDS: k % 4 != 0}, at(k), CONFIG)
        assert book[SOLIDS].active


def test_zero_delay_alarm_annunciates_at_once_and_unknown_codes_keep_their_state() -> None:
    book = evaluate(AlarmBook.empty(), {AlarmCode.PLANT_LINK_LOST: True}, at(0), CONFIG)
    assert book[AlarmCode.PLANT_LINK_LOST].state is AlarmState.ACTIVE_UNACKNOWLEDGED
    later = evaluate(book, {}, at(100), CONFIG)
    assert later == book


def test_acknowledge_is_idempotent_and_rejects_unknown_codes() -> None:
    book = AlarmBook.empty()
    assert acknowledge(book, SOLIDS, "hmi", at(0)) == book
    with pytest.raises(InvalidInput) as err:
        acknowledge(book, "no_such_alarm", "hmi", at(0))
    assert err.value.field == "code"


def test_changes_lists_the_transitions() -> None:
    old = AlarmBook.empty()
    new = evaluate(old, {AlarmCode.FEEDER_FAULT: True}, at(0), CONFIG)
    assert changes(old, new) == [
        AlarmChange(AlarmCode.FEEDER_FAULT, AlarmState.NORMAL, AlarmState.ACTIVE_UNACKNOWLEDGED)
    ]
    assert changes(new, new) == []


def test_book_round_trips_through_a_dict() -> None:
    book = observe(AlarmBook.empty(), SOLIDS, True, 0, 10)
    book = acknowledge(book, SOLIDS, "hmi", at(11))
    book = evaluate(book, {AlarmCode.STALE_DATA: True}, at(12), CONFIG)  # pending only
    data = book.to_dict()
    assert data["solids_off_spec"]["state"] == "active_acknowledged"
    assert data["solids_off_spec"]["acknowledged"] is True
    assert AlarmBook.from_dict(data) == book


# --- detection --------------------------------------------------------------------------


def conditions(**changes: object) -> dict[AlarmCode, Condition]:
    kwargs: dict[str, object] = {
        "solids_fraction_target": 0.72,
        "binder_ratio_target": 0.05,
        "measured_solids_fraction": 0.72,
        "measured_binder_ratio": 0.05,
        "pump_pressure_kpa": 4000.0,
        "faulted_feeders": frozenset(),
        "link_up": True,
        "stale_inputs": (),
        "recipe_unreachable": False,
        "remote_enabled": True,
        "producing": True,
    }
    kwargs.update(changes)
    return detect(**kwargs, config=CONFIG)  # type: ignore[arg-type]


def active(conds: dict[AlarmCode, Condition]) -> set[AlarmCode]:
    return {code for code, c in conds.items() if c.active}


def test_nothing_active_on_spec() -> None:
    conds = conditions()
    assert active(conds) == set()
    assert set(conds) == set(AlarmCode) - STOPE_CODES - INSTRUMENT_CODES - POUR_PAUSE_CODES


@pytest.mark.parametrize(
    ("cw", "off"), [(0.7295, False), (0.7105, False), (0.7305, True), (0.7095, True)]
)
def test_solids_band_is_one_percentage_point(cw: float, off: bool) -> None:
    assert (AlarmCode.SOLIDS_OFF_SPEC in active(conditions(measured_solids_fraction=cw))) == off


@pytest.mark.parametrize(
    ("bw", "off"), [(0.0524, False), (0.0476, False), (0.0526, True), (0.0474, True)]
)
def test_binder_band_is_five_percent_relative(bw: float, off: bool) -> None:
    assert (AlarmCode.BINDER_OFF_SPEC in active(conditions(measured_binder_ratio=bw))) == off


def test_each_condition_maps_to_its_code() -> None:
    assert active(conditions(pump_pressure_kpa=9000.0)) == {AlarmCode.PUMP_PRESSURE_HIGH}
    assert active(conditions(faulted_feeders=frozenset({"slag"}))) == {AlarmCode.FEEDER_FAULT}
    assert active(conditions(stale_inputs=("paste_density_pv",))) == {AlarmCode.STALE_DATA}
    assert active(conditions(recipe_unreachable=True)) == {AlarmCode.RECIPE_UNREACHABLE}
    assert active(conditions(remote_enabled=False)) == {AlarmCode.PLC_NOT_REMOTE}


def test_link_down_judges_only_the_link() -> None:
    assert conditions(link_up=False, measured_solids_fraction=0.5) == {
        AlarmCode.PLANT_LINK_LOST: Condition(True, "no link to the PLC")
    }


def test_unknown_quality_is_left_out_and_idle_plant_clears_quality_alarms() -> None:
    conds = conditions(measured_solids_fraction=None, measured_binder_ratio=None)
    assert AlarmCode.SOLIDS_OFF_SPEC not in conds
    assert AlarmCode.BINDER_OFF_SPEC not in conds
    idle = conditions(producing=False, measured_solids_fraction=0.5, recipe_unreachable=True)
    assert not idle[AlarmCode.SOLIDS_OFF_SPEC].active
    assert not idle[AlarmCode.RECIPE_UNREACHABLE].active


def test_bad_alarm_config_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        AlarmConfig(solids_band_fraction=0.0)
    with pytest.raises(InvalidInput):
        AlarmConfig(off_delay_s=-1.0)
