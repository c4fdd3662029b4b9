"""Pumpability: the slump test, the rheology calibration and Bingham pipe flow."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.rheology import (
    GRAVITY_M_S2,
    PipeLine,
    RheologyTest,
    buckingham_reiner_flow_m3_s,
    dimensionless_slump,
    fit_rheology_model,
    load_example_rheology,
    parse_rheology_csv,
    pipe_flow,
    pressure_within_grid,
    slump_from_yield_stress,
    yield_stress_from_slump,
)
from service.errors import CalibrationRejected, InvalidInput

LINE = PipeLine(length_m=1200.0, inner_diameter_m=0.2, static_head_m=30.0, flow_m3_h=100.0)


# --- the slump test ----------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.01, 0.05, 0.1, 0.3, 0.45])
def test_cylinder_slump_is_pashias(tau: float) -> None:
    expected = 1 - 2 * tau * (1 - math.log(2 * tau))
    assert dimensionless_slump(tau, "cylinder") == pytest.approx(expected, rel=1e-12)


def slump_by_integration(tau: float, radius_growth: float) -> float:
    """The Murata / Schowalter & Christensen balance integrated numerically for a frustum
    whose radius grows by ``radius_growth`` of the top radius over the height (0: a
    cylinder, 1: the Abrams cone): an independent check of the closed forms."""
    z = np.linspace(0.0, 1.0, 400_001)
    area = (1 + radius_growth * z) ** 2
    volume = np.concatenate([[0.0], np.cumsum((area[1:] + area[:-1]) / 2 * np.diff(z))])
    with np.errstate(divide="ignore", invalid="ignore"):
        stress = np.where(z > 0, volume / area, 0.0)
    yielded = stress >= 2 * tau
    if not yielded.any():
        return 0.0
    h0 = z[np.argmax(yielded)]
    # Each yielded layer ends 2 tau A dz / V thick.
    thickness = np.where(yielded[1:], 2 * tau * (area[1:] / volume[1:]) * np.diff(z), 0.0)
    return 1.0 - h0 - float(thickness.sum())


@pytest.mark.parametrize("tau", [0.01, 0.03, 0.08, 0.15, 0.25])
def test_the_closed_forms_are_the_force_balance(tau: float) -> None:
    assert dimensionless_slump(tau, "cylinder") == pytest.approx(
        slump_by_integration(tau, 0.0), abs=2e-4
    )
    assert dimensionless_slump(tau, "cone") == pytest.approx(
        slump_by_integration(tau, 1.0), abs=2e-4
    )


def test_no_slump_once_the_base_does_not_yield() -> None:
    # The cone's base stress is 7/12 rho g H, the cylinder's rho g H.
    assert dimensionless_slump(7 / 24 * 1.0001, "cone") == 0.0
    assert dimensionless_slump(0.5001, "cylinder") == 0.0
    assert dimensionless_slump(7 / 24 * 0.999, "cone") > 0.0


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 2000.0), st.floats(1600.0, 2300.0), st.sampled_from(["cone", "cylinder"]))
def test_slump_and_yield_stress_invert_each_other(
    tau_pa: float, density: float, geometry: str
) -> None:
    slump = slump_from_yield_stress(tau_pa, density, geometry)  # type: ignore[arg-type]
    if slump <= 0.5:
        return
    back = yield_stress_from_slump(slump, density, geometry)  # type: ignore[arg-type]
    assert back == pytest.approx(tau_pa, rel=1e-7)


@settings(max_examples=100, deadline=None)
@given(st.floats(1.0, 1000.0), st.floats(1.01, 3.0))
def test_a_stiffer_paste_slumps_less(tau_pa: float, factor: float) -> None:
    assert slump_from_yield_stress(tau_pa * factor, 2000.0) < slump_from_yield_stress(
        tau_pa, 2000.0
    )


def test_a_common_target_slump_is_a_few_hundred_pascal() -> None:
    # 178 mm (7 in) in the Abrams cone at 2,000 kg/m3.
    tau = yield_stress_from_slump(178.0, 2000.0)
    assert 200.0 < tau < 400.0
    assert tau / (2000.0 * GRAVITY_M_S2 * 0.3) < 7 / 24


@pytest.mark.parametrize("slump", [0.0, 300.0, 350.0, -1.0, math.nan])
def test_a_slump_that_determines_nothing_is_refused(slump: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        yield_stress_from_slump(slump, 2000.0)
    assert caught.value.field == "slump_mm"


# --- the calibration -----------------------------------------------------------------------


def synthetic_tests(with_slump: bool = False) -> list[RheologyTest]:
    rows = []
    for cw in (0.70, 0.73, 0.76, 0.79):
        for bw in (0.03, 0.06):
            tau = math.exp(-15.0 + 25.0 * cw + 4.0 * bw)
            mu = math.exp(-12.0 + 14.0 * cw)
            density = 1000 / (cw / 3.0 + 1 - cw)
            if with_slump and bw == 0.06 and cw < 0.75:
                rows.append(
                    RheologyTest(
                        cw,
                        bw,
                        slump_mm=slump_from_yield_stress(tau, density),
                        density_kg_m3=density,
                        slump_mould="cone",
                    )
                )
            elif with_slump and bw == 0.06:  # a 250 mm cylinder (Pashias et al. 1996)
                rows.append(
                    RheologyTest(
                        cw,
                        bw,
                        slump_mm=slump_from_yield_stress(tau, density, "cylinder", 250.0),
                        density_kg_m3=density,
                        slump_mould="cylinder",
                        mould_height_mm=250.0,
                    )
                )
            else:
                rows.append(RheologyTest(cw, bw, yield_stress_pa=tau, plastic_viscosity_pa_s=mu))
    return rows


@pytest.mark.parametrize("with_slump", [False, True])
def test_fit_recovers_the_exponential_yield_stress(with_slump: bool) -> None:
    model = fit_rheology_model(synthetic_tests(with_slump))
    assert model.intercept == pytest.approx(-15.0, abs=1e-6)
    assert model.solids_coefficient == pytest.approx(25.0, abs=1e-6)
    assert model.binder_coefficient == pytest.approx(4.0, abs=1e-6)
    assert model.viscosity_solids_coefficient == pytest.approx(14.0, abs=1e-9)
    assert model.fit.r2_log == pytest.approx(1.0)
    assert model.fit.slump_rows == (4 if with_slump else 0)
    assert model.fit.cylinder_slump_rows == (2 if with_slump else 0)
    assert model.yield_stress_pa(0.75, 0.05) == pytest.approx(math.exp(-15 + 18.75 + 0.2))
    assert model.plastic_viscosity(0.75) == pytest.approx(math.exp(-12 + 10.5))
    assert model.solids_fraction_range.minimum == 0.70
    assert model.solids_fraction_range.maximum == 0.79
    assert model.outside(0.85, 0.05) == ("solids_pct",)
    assert model.outside(0.75, 0.05) == ()


def test_viscosity_is_given_when_the_tests_have_none() -> None:
    rows = [
        RheologyTest(r.solids_fraction, r.binder_ratio, r.yield_stress_pa)
        for r in synthetic_tests()
    ]
    assert not fit_rheology_model(rows).has_viscosity
    with pytest.raises(CalibrationRejected):
        fit_rheology_model(rows).plastic_viscosity(0.75)
    given_mu = fit_rheology_model(rows, plastic_viscosity_pa_s=0.4)
    assert given_mu.plastic_viscosity(0.72) == given_mu.plastic_viscosity(0.78) == 0.4


def test_constant_binder_drops_its_term() -> None:
    rows = [r for r in synthetic_tests() if r.binder_ratio == 0.03]
    model = fit_rheology_model(rows)
    assert model.binder_coefficient == 0.0
    assert model.dropped_terms and "binder" in model.dropped_terms[0]


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([], "no rheology"),
        ([RheologyTest(0.75, 0.05, 100.0 + i) for i in range(6)], "same Cw"),
        ([RheologyTest(0.70 + 0.01 * i, 0.05, 100.0 + i) for i in range(3)], "too few"),
        (
            [RheologyTest(0.70 + 0.02 * i, 0.03 * (i % 2 + 1), 500.0 - 50 * i) for i in range(6)],
            "fall",
        ),
    ],
)
def test_unusable_tests_are_rejected(rows: list[RheologyTest], match: str) -> None:
    with pytest.raises(CalibrationRejected, match=match):
        fit_rheology_model(rows)


def test_a_slump_row_needs_its_density() -> None:
    rows = [*synthetic_tests(), RheologyTest(0.75, 0.05, slump_mm=200.0, slump_mould="cone")]
    with pytest.raises(InvalidInput) as caught:
        fit_rheology_model(rows)
    assert caught.value.field == "rows[8].density_kg_m3"


def test_cone_and_cylinder_give_their_own_yield_stress_for_one_slump() -> None:
    # 178 mm (7 in) at 2,000 kg/m3: the Abrams cone 296 Pa, a 300 mm cylinder 399 Pa.
    assert yield_stress_from_slump(178.0, 2000.0, "cone") == pytest.approx(296.2, abs=0.05)
    assert yield_stress_from_slump(178.0, 2000.0, "cylinder", 300.0) == pytest.approx(
        399.1, abs=0.05
    )
    base = synthetic_tests()
    cone = RheologyTest(0.75, 0.05, slump_mm=178.0, density_kg_m3=2000.0, slump_mould="cone")
    cylinder = RheologyTest(
        0.75,
        0.05,
        slump_mm=178.0,
        density_kg_m3=2000.0,
        slump_mould="cylinder",
        mould_height_mm=300.0,
    )
    by_cone = fit_rheology_model([*base, cone]).fit.yield_stress_pa[-1]
    by_cylinder = fit_rheology_model([*base, cylinder]).fit.yield_stress_pa[-1]
    assert (round(by_cone, 1), round(by_cylinder, 1)) == (296.2, 399.1)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (RheologyTest(0.75, 0.05, slump_mm=178.0, density_kg_m3=2000.0), "rows[8].slump_mould"),
        (
            RheologyTest(0.75, 0.05, slump_mm=178.0, density_kg_m3=2000.0, slump_mould="cylinder"),
            "rows[8].mould_height_mm",
        ),
        (
            RheologyTest(
                0.75,
                0.05,
                slump_mm=178.0,
                density_kg_m3=2000.0,
                slump_mould="cone",
                mould_height_mm=250.0,
            ),
            "rows[8].mould_height_mm",
        ),
        (
            RheologyTest(
                0.75,
                0.05,
                slump_mm=260.0,
                density_kg_m3=2000.0,
                slump_mould="cylinder",
                mould_height_mm=250.0,
            ),
            "rows[8].slump_mm",
        ),
    ],
)
def test_a_slump_row_names_its_mould(row: RheologyTest, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        fit_rheology_model([*synthetic_tests(), row])
    assert caught.value.field == field


def test_the_csv_names_the_mould_per_row() -> None:
    text = (
        "solids_pct,binder_pct,density_kg_m3,yield_stress_pa,slump_mm,slump_mould,mould_height_mm\n"
        "75,5,2000,,178,cone,\n"
        "75,5,2000,,178,Cylinder,300\n"
        "75,5,2000,120,,,\n"
    )
    cone, cylinder, vane = parse_rheology_csv(text)
    assert (cone.slump_mould, cone.mould_height_mm) == ("cone", None)
    assert (cylinder.slump_mould, cylinder.mould_height_mm) == ("cylinder", 300.0)
    assert vane.slump_mould is None and vane.yield_stress_pa == 120.0
    with pytest.raises(InvalidInput) as caught:
        parse_rheology_csv(text.replace("Cylinder", "funnel"))
    assert caught.value.field == "rows[1].slump_mould"


def test_example_rheology_is_labelled_and_plausible() -> None:
    text = resources.files("service.core.data").joinpath("example_rheology.csv").read_text()
    first = text.splitlines()[0].upper()
    assert first.startswith("#") and "SYNTHETIC" in first and "NOT FOR DESIGN" in first
    rows = parse_rheology_csv(text)
    model = load_example_rheology()
    assert "EXAMPLE" in model.label and "not for design" in model.label
    assert model.fit.n_rows == len(rows) and model.fit.slump_rows > 0
    assert model.fit.r2_log > 0.95
    assert 50.0 < model.yield_stress_pa(0.76, 0.05) < 400.0
    assert model.has_viscosity and model.fit.viscosity_r2_log is not None


def test_csv_errors_name_the_row_and_column() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rheology_csv("solids_pct,binder_pct,yield_stress_pa\n75,5,abc\n")
    assert caught.value.field == "rows[0].yield_stress_pa"
    with pytest.raises(InvalidInput) as caught:
        parse_rheology_csv("solids_pct,binder_pct\n75,5\n")
    assert caught.value.field == "csv"


# --- Bingham flow in the line --------------------------------------------------------------


def test_without_yield_stress_it_is_hagen_poiseuille() -> None:
    flow = pipe_flow(LINE, 1000.0, 0.0, 0.5)
    radius, q = 0.1, 100.0 / 3600.0
    expected = 8 * 0.5 * LINE.length_m * q / (math.pi * radius**4) / 1000.0
    assert flow.friction_loss_kpa == pytest.approx(expected, rel=1e-12)


def test_the_wall_stress_satisfies_buckingham_reiner() -> None:
    flow = pipe_flow(LINE, 2040.0, 150.0, 0.3)
    tau_w = flow.wall_shear_stress_pa
    dp = flow.friction_loss_kpa * 1000.0
    radius = 0.1
    phi = 150.0 / tau_w
    q = math.pi * radius**4 * dp / (8 * 0.3 * LINE.length_m) * (1 - 4 / 3 * phi + phi**4 / 3)
    assert q == pytest.approx(100.0 / 3600.0, rel=1e-9)
    assert tau_w == pytest.approx(radius * dp / (2 * LINE.length_m))
    assert tau_w > 150.0  # the wall stress never falls below the yield stress
    # A few kPa per metre, laminar at 100 m3/h in 200 mm.
    assert 1.0 < flow.friction_kpa_per_m < 10.0
    assert flow.laminar and flow.note is None
    assert flow.static_pressure_kpa == pytest.approx(2040.0 * GRAVITY_M_S2 * 30.0 / 1000.0)
    assert flow.pump_pressure_kpa == pytest.approx(
        flow.friction_loss_kpa + flow.static_pressure_kpa
    )


def test_a_gravity_drop_lowers_the_pump_pressure() -> None:
    lift = pipe_flow(LINE, 2000.0, 150.0, 0.3)
    drop = pipe_flow(PipeLine(1200.0, 0.2, -500.0, 100.0), 2000.0, 150.0, 0.3)
    assert drop.friction_loss_kpa == pytest.approx(lift.friction_loss_kpa)
    assert drop.pump_pressure_kpa == pytest.approx(
        lift.pump_pressure_kpa - 2000.0 * GRAVITY_M_S2 * 530.0 / 1000.0
    )
    assert drop.pump_pressure_kpa < 0.0


def test_a_thin_fast_slurry_is_turbulent_and_says_so() -> None:
    flow = pipe_flow(PipeLine(100.0, 0.1, 0.0, 200.0), 1200.0, 0.5, 0.002)
    assert not flow.laminar
    assert flow.note is not None and "turbulent" in flow.note
    # Hanks' criterion tends to the Newtonian 2100 for a vanishing yield stress.
    nearly_newtonian = pipe_flow(PipeLine(100.0, 0.1, 0.0, 1.0), 1200.0, 1e-9, 0.002)
    assert nearly_newtonian.critical_reynolds == pytest.approx(2100.0, rel=0.01)


@settings(max_examples=200, deadline=None)
@given(
    tau=st.floats(5.0, 600.0),
    mu=st.floats(0.05, 2.0),
    density=st.floats(1700.0, 2300.0),
    head=st.floats(-300.0, 300.0),
    limit=st.floats(1000.0, 15000.0),
)
def test_the_vectorised_limit_agrees_with_the_root_find(
    tau: float, mu: float, density: float, head: float, limit: float
) -> None:
    line = PipeLine(1200.0, 0.2, head, 100.0)
    pressure = pipe_flow(line, density, tau, mu).pump_pressure_kpa
    within = pressure_within_grid(
        line, limit, np.array([density]), np.array([tau]), np.array([mu])
    )[0]
    if abs(pressure - limit) > 1e-6 * limit:
        assert bool(within) == (pressure <= limit)


def test_no_flow_below_the_yield_stress() -> None:
    flows = buckingham_reiner_flow_m3_s(np.array([50.0, 100.0, 150.0]), 100.0, 0.3, 0.1)
    assert flows[0] == 0.0 and flows[1] == 0.0 and flows[2] > 0.0
