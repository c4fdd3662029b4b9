"""Required strength (Mitchell 1982, Li & Aubertin 2012), floors and arching."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.required import (
    LIQUEFACTION_FLOOR_KPA_DEFAULT,
    apply_floors,
    arching_vertical_stress_kpa,
    li_aubertin,
    mitchell,
    rankine_active_coefficient,
)
from service.errors import InvalidInput

STOPE = {"fill_height_m": 30.0, "exposed_length_m": 15.0, "unit_weight_kn_m3": 20.0}


def test_mitchell_worked_example_is_300_kpa() -> None:
    result = mitchell(**STOPE, safety_factor=1.5)
    assert result.ucs_kpa == pytest.approx(300.0)
    assert result.cohesion_kpa == pytest.approx(150.0)
    assert result.method == "mitchell"


@given(
    st.floats(1.0, 200.0),
    st.floats(1.0, 100.0),
    st.floats(0.1, 40.0),
    st.floats(15.0, 25.0),
)
def test_li_aubertin_reduces_to_mitchell_for_a_frictionless_fill(
    height: float, length: float, width: float, gamma: float
) -> None:
    # phi = 0 (alpha = 45), r_b = 1, p0 = 0, FS = 1: Mitchell with H* = H - B/2.
    if width > height:
        return
    modified = li_aubertin(
        fill_height_m=height,
        exposed_length_m=length,
        stope_width_m=width,
        unit_weight_kn_m3=gamma,
        safety_factor=1.0,
        friction_angle_deg=0.0,
        cohesion_ratio=1.0,
        surcharge_kpa=0.0,
    )
    effective = height - width / 2
    original = mitchell(
        fill_height_m=effective,
        exposed_length_m=length,
        unit_weight_kn_m3=gamma,
        safety_factor=1.0,
    )
    assert modified.effective_height_m == pytest.approx(effective)
    assert modified.sliding_plane_angle_deg == 45.0
    assert modified.ucs_kpa == pytest.approx(original.ucs_kpa, rel=1e-12)


def test_li_aubertin_tends_to_mitchell_for_a_tall_narrow_stope() -> None:
    modified = li_aubertin(**STOPE, stope_width_m=0.01, safety_factor=1.0, friction_angle_deg=0.0)
    original = mitchell(**STOPE, safety_factor=1.0)
    assert modified.ucs_kpa == pytest.approx(original.ucs_kpa, rel=1e-3)


# The figure of Li & Aubertin (2012)'s solution: phi 30, B 6 m, H 30 m, L 15 m, gamma 20.
PUBLISHED = {**STOPE, "stope_width_m": 6.0, "friction_angle_deg": 30.0}


@pytest.mark.parametrize(("fs", "ucs_kpa"), [(1.0, 253.8), (1.5, 325.1)])
def test_li_aubertin_gives_the_published_figure(fs: float, ucs_kpa: float) -> None:
    result = li_aubertin(**PUBLISHED, safety_factor=fs)
    assert round(result.ucs_kpa, 1) == ucs_kpa
    assert result.sliding_plane_angle_deg == 60.0
    assert result.effective_height_m == pytest.approx(30.0 - 6.0 * math.sqrt(3.0) / 2.0)
    assert "sliding wedge" in result.fs_definition


def test_li_aubertin_puts_the_safety_factor_inside_the_equilibrium() -> None:
    # FS 1.5 is 325.1 kPa, not 1.5 x 253.8 = 380.7 kPa (the multiplier convention).
    at_one = li_aubertin(**PUBLISHED, safety_factor=1.0).ucs_kpa
    at_design = li_aubertin(**PUBLISHED, safety_factor=1.5).ucs_kpa
    assert 1.5 * at_one == pytest.approx(380.7, abs=0.05)
    assert at_design < 1.5 * at_one
    # phi 35, FS 2: the multiplier would ask about a third more than the paper.
    steep = {**PUBLISHED, "friction_angle_deg": 35.0}
    published = li_aubertin(**steep, safety_factor=2.0).ucs_kpa
    assert 2.0 * li_aubertin(**steep, safety_factor=1.0).ucs_kpa / published == pytest.approx(
        1.336, abs=0.001
    )


@given(
    st.floats(1.0, 3.0),
    st.floats(0.0, 45.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 200.0),
    st.floats(2.0, 12.0),
)
def test_li_aubertin_cohesion_balances_the_wedge_at_the_design_fs(
    fs: float, phi: float, r_b: float, p0: float, width: float
) -> None:
    # Back-substitution into the paper's FS of the wedge gives the design FS.
    result = li_aubertin(
        **STOPE,
        stope_width_m=width,
        safety_factor=fs,
        friction_angle_deg=phi,
        cohesion_ratio=r_b,
        surcharge_kpa=p0,
    )
    alpha = math.radians(result.sliding_plane_angle_deg)
    c = result.cohesion_kpa
    h_star = result.effective_height_m
    driving = (p0 + (20.0 - 2.0 * r_b * c / 15.0) * h_star) * math.sin(2.0 * alpha)
    wedge_fs = math.tan(math.radians(phi)) / math.tan(alpha) + 2.0 * c / driving
    assert wedge_fs == pytest.approx(fs, rel=1e-12)
    assert result.ucs_kpa == pytest.approx(2.0 * c * math.tan(alpha), rel=1e-12)


def test_each_method_states_its_fs_definition() -> None:
    mitchell_fs = mitchell(**STOPE, safety_factor=1.5).fs_definition
    assert "multiplies" in mitchell_fs and "common" in mitchell_fs
    assert "sliding wedge" in li_aubertin(**PUBLISHED, safety_factor=1.5).fs_definition


def test_the_methods_meet_only_at_fs_1() -> None:
    # phi 0, r_b 1, p0 0 and a narrow stope (H* ~ H): Mitchell as commonly applied at
    # FS 1; above it the paper's FS gamma H*/(1 + FS H*/L) is below FS gamma H/(1 + H/L).
    narrow = {**STOPE, "stope_width_m": 0.001, "friction_angle_deg": 0.0}
    assert li_aubertin(**narrow, safety_factor=1.0).ucs_kpa == pytest.approx(
        mitchell(**STOPE, safety_factor=1.0).ucs_kpa, rel=1e-4
    )
    h_star = 30.0 - 0.0005
    for fs in (1.5, 2.0, 3.0):
        modified = li_aubertin(**narrow, safety_factor=fs).ucs_kpa
        assert modified == pytest.approx(fs * 20.0 * h_star / (1 + fs * h_star / 15.0), rel=1e-12)
        assert modified < mitchell(**STOPE, safety_factor=fs).ucs_kpa


def test_li_aubertin_more_surcharge_or_weaker_walls_need_more_strength() -> None:
    base = {**STOPE, "stope_width_m": 8.0, "safety_factor": 1.5, "friction_angle_deg": 30.0}
    reference = li_aubertin(**base).ucs_kpa
    assert li_aubertin(**base, surcharge_kpa=50.0).ucs_kpa > reference
    assert li_aubertin(**base, cohesion_ratio=0.3).ucs_kpa > reference


def test_li_aubertin_refuses_a_wedge_that_leaves_through_the_top() -> None:
    with pytest.raises(InvalidInput) as caught:
        li_aubertin(**STOPE, stope_width_m=25.0, safety_factor=1.5, friction_angle_deg=30.0)
    assert caught.value.field == "stope_width_m"


def test_floor_governs_when_higher_and_says_so() -> None:
    assert LIQUEFACTION_FLOOR_KPA_DEFAULT == 100.0
    governed = apply_floors(80.0, {"liquefaction": LIQUEFACTION_FLOOR_KPA_DEFAULT})
    assert governed.required_ucs_kpa == LIQUEFACTION_FLOOR_KPA_DEFAULT
    assert governed.governed_by == "liquefaction"
    assert governed.binding_floors == ("liquefaction",)
    assert governed.computed_ucs_kpa == 80.0


def test_every_floor_above_the_computed_strength_is_named() -> None:
    governed = apply_floors(
        120.0, {"liquefaction": 150.0, "plug": 130.0, "sill_mat": 1000.0, "low": 50.0}
    )
    assert governed.governed_by == "sill_mat"
    assert governed.required_ucs_kpa == 1000.0
    assert governed.binding_floors == ("liquefaction", "plug", "sill_mat")
    tie = apply_floors(150.0, {"liquefaction": 150.0})
    assert (tie.governed_by, tie.binding_floors) == ("computed", ())


def test_computed_governs_when_above_every_floor() -> None:
    governed = apply_floors(300.0, {"liquefaction": 150.0, "sill_mat": 0.0})
    assert (governed.required_ucs_kpa, governed.governed_by) == (300.0, "computed")
    assert governed.binding_floors == ()
    highest = apply_floors(300.0, {"liquefaction": 150.0, "sill_mat": 1000.0})
    assert (highest.required_ucs_kpa, highest.governed_by) == (1000.0, "sill_mat")


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_bad_floor_names_it(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_floors(100.0, {"sill_mat": value})
    assert caught.value.field == "floors_kpa.sill_mat"


ARCHING = {"unit_weight_kn_m3": 20.0, "stope_width_m": 10.0, "friction_angle_deg": 30.0}


def test_arching_is_geostatic_near_the_top_and_bounded_at_depth() -> None:
    shallow = arching_vertical_stress_kpa(depth_m=0.01, **ARCHING)
    assert shallow == pytest.approx(20.0 * 0.01, rel=1e-3)
    k = rankine_active_coefficient(30.0)
    asymptote = 20.0 * 10.0 / (2 * k * math.tan(math.radians(30.0)))
    deep = arching_vertical_stress_kpa(depth_m=2000.0, **ARCHING)
    assert deep == pytest.approx(asymptote, rel=1e-9)


@given(st.floats(0.0, 500.0), st.floats(0.0, 45.0), st.floats(1.0, 50.0))
def test_arching_never_exceeds_overburden_and_3d_is_lower(
    depth: float, phi: float, length: float
) -> None:
    args = {**ARCHING, "friction_angle_deg": phi}
    plane = arching_vertical_stress_kpa(depth_m=depth, **args)
    boxed = arching_vertical_stress_kpa(depth_m=depth, stope_length_m=length, **args)
    assert 0.0 <= boxed <= plane * (1 + 1e-12) + 1e-12
    assert plane <= 20.0 * depth * (1 + 1e-12) + 1e-12


def test_arching_without_wall_friction_is_overburden_plus_surcharge() -> None:
    stress = arching_vertical_stress_kpa(
        depth_m=10.0, **{**ARCHING, "friction_angle_deg": 0.0}, surcharge_kpa=5.0
    )
    assert stress == pytest.approx(205.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fill_height_m", math.nan),
        ("fill_height_m", 0.0),
        ("exposed_length_m", -5.0),
        ("unit_weight_kn_m3", math.inf),
        ("safety_factor", 0.5),
        ("safety_factor", math.nan),
    ],
)
def test_mitchell_bad_input_names_the_field(field: str, value: float) -> None:
    args = {**STOPE, "safety_factor": 1.5, field: value}
    with pytest.raises(InvalidInput) as caught:
        mitchell(**args)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stope_width_m", 0.0),
        ("friction_angle_deg", -1.0),
        ("friction_angle_deg", 90.0),
        ("cohesion_ratio", 1.5),
        ("cohesion_ratio", math.nan),
        ("surcharge_kpa", -1.0),
    ],
)
def test_li_aubertin_bad_input_names_the_field(field: str, value: float) -> None:
    args = {
        **STOPE,
        "stope_width_m": 8.0,
        "safety_factor": 1.5,
        "friction_angle_deg": 30.0,
        field: value,
    }
    with pytest.raises(InvalidInput) as caught:
        li_aubertin(**args)
    assert caught.value.field == field
