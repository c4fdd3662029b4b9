"""The mine month's ceiling: each pour dosed on the twin's true model (bench/mine_month/
ceiling.py), checked against the twin's own pass probability and a hand inversion."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from bench.mine_month.ceiling import PourDose, ceiling, truth_binder_ratio
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
