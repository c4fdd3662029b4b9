"""The mine month's ceiling: each pour dosed on the twin's true model (bench/mine_month/
ceiling.py), checked against the twin's own pass probability and a hand inversion."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from bench.mine_month.ceiling import (
    OpenDose,
    PlantReach,
    PourDose,
    binder_cost,
    ceiling,
    open_dose,
    truth_binder_ratio,
)
from service.core.plant_profile import driest_cw
from service.core.proportioning import BinderComponent, Tailings, proportion
from service.simulator.lab_twin import PasteTruth, TrueStrength

TRUTH = TrueStrength()
LIMITS = (0.025, 0.10)
SLAG80 = {"cement": 0.2, "slag": 0.8}
SG = {"cement": 3.15, "slag": 2.90}


def test_the_reference_mix_is_its_own_dose() -> None:
    """Hand inversion: cement alone at Cw 75 %, 28 days, a requirement of A exp(-z s):
    the median of the reference mix (Bw 5 %) sits z s above it, so Bw is 5 %."""
    z = NormalDist().inv_cdf(0.9)
    required = TRUTH.ucs_ref_kpa * math.exp(-z * TRUTH.total_sd_log)
    bw = truth_binder_ratio(TRUTH, {"cement": 1.0}, 0.75, [("body", required, 28.0)], 0.9, LIMITS)
    assert bw == pytest.approx(0.05, rel=1e-9)


def test_the_dose_passes_exactly_the_fraction_at_the_binding_requirement() -> None:
    requirements = [("plug", 150.0, 7.0), ("body", 274.0, 28.0)]
    bw = truth_binder_ratio(TRUTH, SLAG80, 0.7275, requirements, 0.9, LIMITS)
    paste = PasteTruth(SLAG80, bw, 0.7275)
    passes = [TRUTH.pass_probability(paste, days, kpa) for _, kpa, days in requirements]
    assert min(passes) == pytest.approx(0.9, abs=1e-9)
    assert max(passes) >= 0.9
    # A point less binder and the binding requirement fails the fraction.
    leaner = PasteTruth(SLAG80, bw * 0.99, 0.7275)
    assert min(TRUTH.pass_probability(leaner, d, k) for _, k, d in requirements) < 0.9


def test_the_site_limits_hold_the_dose() -> None:
    assert truth_binder_ratio(TRUTH, SLAG80, 0.70, [("body", 20.0, 28.0)], 0.9, LIMITS) == 0.025
    assert truth_binder_ratio(TRUTH, SLAG80, 0.70, [("body", 9e4, 28.0)], 0.9, LIMITS) == 0.10
    with pytest.raises(ValueError, match="pass_fraction"):
        truth_binder_ratio(TRUTH, SLAG80, 0.70, [("body", 100.0, 28.0)], 1.0, LIMITS)
    with pytest.raises(ValueError, match="requirement"):
        truth_binder_ratio(TRUTH, SLAG80, 0.70, [], 0.9, LIMITS)


def test_the_ceiling_scales_each_pour_by_its_dose() -> None:
    requirements = (("body", 274.0, 28.0),)
    exact = truth_binder_ratio(TRUTH, SLAG80, 0.7275, requirements, 0.9, LIMITS)
    doses = [
        # Dosed on the truth already: unchanged.
        PourDose(SLAG80, 0.7275, exact, requirements, 1000.0, 50_000.0),
        # Twice the binder ratio the truth needs: binder per m3 at one Cw goes as
        # Bw / (1 + Bw) (the paste's density aside), so its binder placed falls to
        # (1 + 2 Bw) / (2 (1 + Bw)) of what it was.
        PourDose(SLAG80, 0.7275, 2 * exact, requirements, 1000.0, 100_000.0),
    ]
    top = ceiling(doses, TRUTH, pass_fraction=0.9, binder_ratio_limits=LIMITS,
                  tailings_sg=2.8, binder_sg=SG)  # fmt: skip
    assert top.pours == 2
    assert top.service_placed_t == pytest.approx(150.0)
    by_hand = 100.0 * (1.0 + 2.0 * exact) / (2.0 * (1.0 + exact))
    assert top.truth_placed_t == pytest.approx(50.0 + by_hand, rel=0.005)


# --- the open ceiling: Cw and blend chosen on the truth too -----------------------------

REACH = PlantReach(cw_low=0.64, cw_high=0.76, feed_solids_low=0.72, slag_max=0.8)
WETTEST = 1.0 / 0.72 - 1.0


def passes(dose: OpenDose, requirements: tuple[tuple[str, float, float], ...]) -> float:
    paste = PasteTruth(dose.blend, dose.binder_ratio, dose.solids_fraction)
    return min(TRUTH.pass_probability(paste, d, k) for _, k, d in requirements)


def opened(requirements: tuple[tuple[str, float, float], ...], **kw: object) -> OpenDose:
    return open_dose(TRUTH, requirements, pass_fraction=0.9, binder_ratio_limits=LIMITS,
                     reach=REACH, tailings_sg=2.8, binder_sg=SG, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_the_open_dose_passes_and_the_plant_can_make_it() -> None:
    for requirements in (
        (("body", 416.0, 28.0),),
        (("body", 100.0, 28.0),),
        (("plug", 150.0, 7.0), ("body", 274.0, 28.0)),
    ):
        dose = opened(requirements)
        assert passes(dose, requirements) >= 0.9 - 1e-9
        assert REACH.cw_low <= dose.solids_fraction <= REACH.cw_high
        assert dose.solids_fraction <= driest_cw(dose.binder_ratio, WETTEST) + 1e-12
        assert LIMITS[0] <= dose.binder_ratio < LIMITS[1]
        assert dose.blend["slag"] <= REACH.slag_max + 1e-12


def test_a_strong_body_is_made_as_dry_as_the_wettest_feed_allows() -> None:
    """Binder per m3 at a given strength falls as Cw rises (less water to bind), so a
    body the strength binds goes to the feed's reach, within one step of the grid."""
    dose = opened((("body", 416.0, 28.0),))
    assert dose.blend["slag"] == pytest.approx(0.8)  # slag adds 28-day strength
    reach = driest_cw(dose.binder_ratio, WETTEST)
    assert reach - REACH.cw_step - 1e-9 <= dose.solids_fraction <= reach + 1e-12


def kg_m3(blend: dict[str, float], bw: float, cw: float) -> float:
    binder = [BinderComponent(n, SG[n], f) for n, f in blend.items() if f > 0.0]
    return proportion(Tailings(specific_gravity=2.8), binder, bw, cw).binder_kg_m3


def test_a_weak_body_goes_wetter_than_its_recipe_near_the_least_binder() -> None:
    """At the site's least Bw the binder per m3 falls with Cw (fewer solids per m3): the
    least binder is near the wettest paste that still passes at that Bw, and no
    neighbour on the grid the plant can make needs less."""
    requirements = (("body", 100.0, 28.0),)
    dose = opened(requirements)
    assert dose.binder_ratio == pytest.approx(LIMITS[0], rel=0.01)
    kept = truth_binder_ratio(TRUTH, SLAG80, 0.7075, requirements, 0.9, LIMITS)
    assert kept == LIMITS[0] and dose.solids_fraction < 0.7075
    assert dose.binder_kg_m3 < kg_m3(SLAG80, kept, 0.7075)
    for d_cw, d_slag in ((-1, 0), (1, 0), (0, -1)):
        cw = dose.solids_fraction + d_cw * REACH.cw_step
        blend = {"cement": 1 - dose.blend["slag"] - d_slag * REACH.slag_step}
        blend["slag"] = 1.0 - blend["cement"]
        bw = truth_binder_ratio(TRUTH, blend, cw, requirements, 0.9, LIMITS)
        assert kg_m3(blend, bw, cw) >= dose.binder_kg_m3 - 1e-9


def test_the_start_is_kept_when_nothing_needs_less_and_cost_is_its_own_objective() -> None:
    requirements = (("plug", 150.0, 7.0), ("body", 274.0, 28.0))
    by_mass = opened(requirements)
    prices = {"cement": 180.0, "slag": 90.0}
    by_cost = opened(requirements, price_per_t=prices)
    # The plug's 7 days want cement; cement costs twice slag: the least tonnes and the
    # least cost are different pastes, each the best by its own measure.
    assert by_mass.binder_kg_m3 <= by_cost.binder_kg_m3
    assert by_cost.blend["slag"] > by_mass.blend["slag"]
    assert binder_cost(by_cost.blend, by_cost.binder_kg_m3, prices) <= binder_cost(
        by_mass.blend, by_mass.binder_kg_m3, prices
    )
    start = OpenDose(by_mass.blend, by_mass.solids_fraction, by_mass.binder_ratio, 0.0, 0.0)
    assert opened(requirements, start=start) is start  # nothing needs less than 0 kg


def test_the_open_ceiling_never_exceeds_the_kept_one() -> None:
    requirements = (("plug", 150.0, 7.0), ("body", 274.0, 28.0))
    doses = [
        PourDose(SLAG80, 0.73, 0.06, requirements, 500.0, 30_000.0),
        PourDose(SLAG80, 0.7075, 0.025, (("body", 100.0, 28.0),), 1500.0, 48_000.0),
    ]
    prices = {"cement": 180.0, "slag": 90.0}
    top = ceiling(doses, TRUTH, pass_fraction=0.9, binder_ratio_limits=LIMITS,
                  tailings_sg=2.8, binder_sg=SG, reach=REACH, price_per_t=prices)  # fmt: skip
    assert top.open_placed_t is not None and top.cheapest_placed_t is not None
    assert top.open_placed_t < top.truth_placed_t < top.service_placed_t
    assert top.open_placed_t <= top.cheapest_placed_t
    # The service's cost by hand: 80 % slag at 108 per t of binder, 78 t placed.
    assert top.service_cost == pytest.approx(78.0 * (0.2 * 180 + 0.8 * 90))
    assert top.cheapest_cost is not None and top.cheapest_cost < top.service_cost
    without = ceiling(doses, TRUTH, pass_fraction=0.9, binder_ratio_limits=LIMITS,
                      tailings_sg=2.8, binder_sg=SG)  # fmt: skip
    assert without.open_placed_t is None and without.cheapest_cost is None
    assert without.truth_placed_t == pytest.approx(top.truth_placed_t)
