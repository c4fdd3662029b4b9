"""What the Sparkplug edge node sends and when (service.core.sparkplug_rules)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core import scada_model as M
from service.core import sparkplug_rules as R

GOOD = M.Quality.GOOD
DENSITY = M.PointSpec("Plant.Measurements.paste_density_pv", M.Kind.DOUBLE, "kg/m3", "", 1000, 2500)


def test_aliases_are_unique_and_stable() -> None:
    names = ["bdSeq", "Node Control/Rebirth", "Pour/State", "Pour/Start"]
    assert R.aliases(names) == R.aliases(list(names))
    assert sorted(R.aliases(names).values()) == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        R.aliases(["a", "a"])


def test_quality_codes_are_the_three_sparkplug_defines() -> None:
    assert {R.quality_code(q) for q in M.Quality} == {0, 192, 500}
    assert R.quality_code(GOOD) == 192 and R.quality_code(M.Quality.NO_DATA) == 0


def test_deadbands() -> None:
    name = "Plant/Measurements/paste_density_pv"
    assert R.deadband_of(DENSITY, name, 0.1, {}) == pytest.approx(1.5)  # 0.1 % of 1500
    assert R.deadband_of(DENSITY, name, 0.1, {name: 4.0}) == 4.0
    poured = M.PointSpec("Pour.PouredM3", M.Kind.DOUBLE, "m3", "", 0, 1e6)
    assert R.deadband_of(poured, "Pour/PouredM3", 0.1, {}) == 0.0  # every change


def test_due() -> None:
    point = M.Point(1800.0, GOOD)
    assert R.due(None, point, 2.0)
    assert not R.due(point, M.Point(1801.9, GOOD), 2.0)
    assert R.due(point, M.Point(1802.1, GOOD), 2.0)
    assert R.due(point, M.Point(1800.0, M.Quality.BAD), 2.0)  # quality changed
    assert R.due(point, M.Point(None, M.Quality.NO_DATA), 2.0)
    assert R.due(M.Point("running", GOOD), M.Point("paused", GOOD), 0.0)
    assert not R.due(M.Point(True, GOOD), M.Point(True, GOOD), 0.0)
    assert R.due(point, M.Point(1800.0000001, GOOD), 0.0)


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(0, 1e3))
def test_due_is_the_deadband(last: float, new: float, band: float) -> None:
    due = R.due(M.Point(last, GOOD), M.Point(new, GOOD), band)
    assert due == (abs(new - last) > band or (band == 0.0 and new != last))


def test_pacing() -> None:
    pacing = R.Pacing(2.0)
    assert pacing.next_at(None) == -math.inf
    assert pacing.next_at(10.0) == 10.5


def test_state_messages() -> None:
    assert R.parse_state(b'{"online": true, "timestamp": 5}') == R.HostState(True, 5)
    for bad in (b"ONLINE", b"{}", b'{"online": 1, "timestamp": 5}', b'{"online": true}', b"\xff"):
        assert R.parse_state(bad) is None
    assert R.take_state(None, R.HostState(False, 1))
    assert R.take_state(R.HostState(True, 5), R.HostState(False, 5))
    assert not R.take_state(R.HostState(True, 5), R.HostState(False, 4))  # an old death


@pytest.mark.parametrize(
    ("value", "argument", "person"),
    [
        ("3f2a-pour", "3f2a-pour", None),
        ("3f2a-pour by a.ivanova", "3f2a-pour", "a.ivanova"),
        ("plant_link_lost by Айгерим Н.", "plant_link_lost", "Айгерим Н."),
        ("3f2a-pour by ", "3f2a-pour", None),
        ("  3f2a-pour  ", "3f2a-pour", None),
    ],
)
def test_a_command_value_carries_its_argument_and_the_person_the_host_names(
    value: str, argument: str, person: str | None
) -> None:
    assert R.command_argument(value) == (argument, person)
