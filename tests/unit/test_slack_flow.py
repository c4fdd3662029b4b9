"""Where a paste line runs full and where it free-falls (slack flow)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.rheology import PipeLine, pipe_flow
from service.core.slack_flow import (
    GRAVITY_M_S2,
    LineSection,
    check_profile,
    line_fill,
    profile,
)
from service.errors import InvalidInput

DENSITY = 2044.0
WEIGHT = DENSITY * GRAVITY_M_S2 / 1000.0  # 20.04 kPa per m of paste
PASTE = {"density_kg_m3": DENSITY, "yield_stress_pa": 146.8, "plastic_viscosity_pa_s": 0.3035}


def test_a_600_m_borehole_free_falls_down_to_where_friction_holds_it() -> None:
    # 1,500 m of 150 mm line at 100 m3/h dropping 600 m: the borehole at the plant, then
    # 900 m level. Full, the pump would see f L - rho g 600 < 0: the symptom.
    flow = pipe_flow(PipeLine(1500.0, 0.15, -600.0, 100.0), **PASTE)
    f = flow.friction_kpa_per_m
    assert 5.0 < f < 6.0 < WEIGHT  # the borehole's weight outruns its friction
    assert flow.pump_pressure_kpa == pytest.approx(f * 1500.0 - WEIGHT * 600.0)
    assert flow.pump_pressure_kpa < -3000.0
    fill = flow.fill
    assert not fill.runs_full
    assert fill.full_line_pressure_kpa == pytest.approx(flow.pump_pressure_kpa)
    # At the borehole's foot the level run needs f x 900; the column above holds it
    # up to where rho g - f per metre has used it up: full from 600 - 900 f/(rho g - f).
    full_depth = 600.0 - 900.0 * f / (WEIGHT - f)
    (stretch,) = fill.slack
    assert (stretch.from_m, stretch.to_m) == (0.0, pytest.approx(full_depth))
    assert stretch.full_depth_m == pytest.approx(full_depth)
    assert 250.0 < full_depth < 290.0
    assert fill.pump_pressure_kpa == 0.0  # the paste falls in: the pump pushes nothing
    assert fill.design_condition is not None
    assert "free-falls" in fill.design_condition and f"{full_depth:.0f} m" in fill.design_condition


def test_more_friction_fills_the_borehole() -> None:
    # The same drop on a longer level run: friction holds the whole column.
    flow = pipe_flow(PipeLine(2500.0, 0.15, -600.0, 100.0), **PASTE)
    assert flow.fill.runs_full and flow.fill.slack == () and flow.fill.design_condition is None
    assert flow.pump_pressure_kpa > 0.0
    assert flow.fill.pump_pressure_kpa == pytest.approx(flow.pump_pressure_kpa)


def test_a_lifting_line_runs_full() -> None:
    flow = pipe_flow(PipeLine(1200.0, 0.2, 30.0, 100.0), **PASTE)
    assert flow.fill.runs_full
    assert flow.fill.pump_pressure_kpa == pytest.approx(flow.pump_pressure_kpa)


def test_a_drop_after_a_level_run_free_falls_from_its_top() -> None:
    # 300 m level at the plant, a 600 m shaft, 1,200 m level: the shaft free-falls from
    # its top; the first run still needs friction to push the paste to the shaft.
    sections = (LineSection(300.0, 0.0), LineSection(600.0, -600.0), LineSection(1200.0, 0.0))
    fill = line_fill(sections, 5.0, DENSITY)
    full_depth = 600.0 - 1200.0 * 5.0 / (WEIGHT - 5.0)
    (stretch,) = fill.slack
    assert stretch.from_m == 300.0
    assert stretch.to_m == pytest.approx(300.0 + full_depth)
    assert stretch.full_depth_m == pytest.approx(full_depth)
    assert fill.pump_pressure_kpa == pytest.approx(300.0 * 5.0)
    assert fill.full_line_pressure_kpa == pytest.approx(5.0 * 2100.0 - WEIGHT * 600.0)


def test_two_boreholes_are_two_stretches_and_an_incline_can_free_fall() -> None:
    sections = (
        LineSection(400.0, -400.0),
        LineSection(200.0, 0.0),
        LineSection(800.0, -400.0),  # a 30 degree incline: rho g / 2 = 10 kPa/m > f
        LineSection(300.0, 0.0),
    )
    fill = line_fill(sections, 4.0, DENSITY)
    assert len(fill.slack) == 2
    first, second = fill.slack
    # The incline: at its foot 4 x 300 kPa; up the slope it loses 10.02 - 4 per metre.
    incline_full = 1200.0 / (WEIGHT / 2.0 - 4.0)
    assert second.from_m == 600.0
    assert second.to_m == pytest.approx(1400.0 - incline_full)
    assert second.full_depth_m == pytest.approx(400.0 + 400.0 - incline_full / 2.0)
    # Above it the level run starts again from 0 kPa: 800 kPa at the first borehole's
    # foot, which holds 800/(rho g - f) metres of it.
    assert first.from_m == 0.0
    assert first.to_m == pytest.approx(400.0 - 800.0 / (WEIGHT - 4.0))
    assert fill.pump_pressure_kpa == 0.0


def test_consecutive_steep_sections_are_one_stretch() -> None:
    sections = (LineSection(300.0, -300.0), LineSection(300.0, -300.0), LineSection(100.0, 0.0))
    (stretch,) = line_fill(sections, 5.0, DENSITY).slack
    assert stretch.from_m == 0.0
    assert stretch.to_m == pytest.approx(600.0 - 500.0 / (WEIGHT - 5.0))


@given(
    st.lists(st.tuples(st.floats(1.0, 500.0), st.floats(-1.0, 1.0)), min_size=1, max_size=6).map(
        lambda pairs: tuple(LineSection(length, length * dip) for length, dip in pairs)
    ),
    st.floats(0.0, 30.0),
)
def test_the_pump_never_needs_less_than_zero_nor_less_than_a_full_line(
    sections: tuple[LineSection, ...], friction: float
) -> None:
    fill = line_fill(sections, friction, DENSITY)
    assert fill.pump_pressure_kpa >= 0.0
    assert fill.pump_pressure_kpa >= fill.full_line_pressure_kpa - 1e-6
    assert fill.runs_full == (fill.slack == ())
    if fill.runs_full:
        assert fill.pump_pressure_kpa == pytest.approx(fill.full_line_pressure_kpa, abs=1e-6)
    if fill.full_line_pressure_kpa < -1e-6:
        assert not fill.runs_full  # a negative full-line pressure always means slack
    total = math.fsum(s.length_m for s in sections)
    for stretch in fill.slack:
        assert 0.0 <= stretch.from_m <= stretch.to_m <= total * (1 + 1e-12)


def test_a_profile_is_taken_when_none_is_given() -> None:
    assert profile((), 1500.0, -600.0) == (LineSection(600.0, -600.0), LineSection(900.0, 0.0))
    assert profile((), 1200.0, 30.0) == (LineSection(1170.0, 0.0), LineSection(30.0, 30.0))
    assert profile((), 1000.0, 0.0) == (LineSection(1000.0, 0.0),)
    given_sections = (LineSection(500.0, -100.0), LineSection(1000.0, -500.0))
    assert profile(given_sections, 1500.0, -600.0) == given_sections


@pytest.mark.parametrize(
    ("sections", "length", "head", "field"),
    [
        ((), 500.0, -600.0, "pipeline.static_head_m"),
        ((LineSection(100.0, -150.0),), 100.0, -150.0, "pipeline.sections[0].rise_m"),
        ((LineSection(0.0, 0.0),), 0.0, 0.0, "pipeline.sections[0].length_m"),
        (
            (LineSection(600.0, -600.0), LineSection(800.0, 0.0)),
            1500.0,
            -600.0,
            "pipeline.sections",
        ),
        (
            (LineSection(600.0, -500.0), LineSection(900.0, 0.0)),
            1500.0,
            -600.0,
            "pipeline.sections",
        ),
    ],
)
def test_an_impossible_profile_names_its_field(
    sections: tuple[LineSection, ...], length: float, head: float, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_profile(sections, length, head)
    assert caught.value.field == field
