"""The lab twin: its true strength model, the cylinders it breaks and the masses it
weighs, against the relations it states."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from service.core.strength_model import CylinderResult, fit_strength_model
from service.simulator.lab_twin import (
    PasteTruth,
    TrueStrength,
    binder_water_ratio,
    break_cylinders,
    mixer_paste,
    paste_density_kg_m3,
    trial_mixes,
)

TRUTH = TrueStrength()
SG = {"cement": 3.15, "slag": 2.90, "flyash": 2.30}
REFERENCE = PasteTruth({"cement": 1.0}, TRUTH.ref_binder_ratio, TRUTH.ref_solids_fraction)


def test_the_reference_mix_has_the_reference_strength_at_28_days() -> None:
    assert TRUTH.median_kpa(REFERENCE, 28.0) == pytest.approx(TRUTH.ucs_ref_kpa)


def test_strength_follows_the_abrams_law_the_blend_and_the_age() -> None:
    richer = PasteTruth({"cement": 1.0}, 0.08, 0.75)
    ratio = binder_water_ratio(0.08, 0.75) / binder_water_ratio(0.05, 0.75)
    assert TRUTH.median_kpa(richer, 28.0) / TRUTH.median_kpa(REFERENCE, 28.0) == pytest.approx(
        ratio**TRUTH.exponent
    )
    slag = PasteTruth({"cement": 0.2, "slag": 0.8}, 0.05, 0.75)
    # Slag: stronger at 28 days, slower early (its time exponent is larger).
    assert TRUTH.median_kpa(slag, 28.0) > TRUTH.median_kpa(REFERENCE, 28.0)
    assert TRUTH.median_kpa(slag, 7.0) / TRUTH.median_kpa(slag, 28.0) < TRUTH.median_kpa(
        REFERENCE, 7.0
    ) / TRUTH.median_kpa(REFERENCE, 28.0)
    # A wetter paste is weaker.
    wetter = PasteTruth({"cement": 1.0}, 0.05, 0.72)
    assert TRUTH.median_kpa(wetter, 28.0) < TRUTH.median_kpa(REFERENCE, 28.0)


def test_the_pass_probability_is_the_share_of_cylinders_that_pass() -> None:
    rng = random.Random(3)
    required = TRUTH.median_kpa(REFERENCE, 28.0) * 0.88
    expected = TRUTH.pass_probability(REFERENCE, 28.0, required)
    passed = n = 0
    for i in range(1500):
        for c in break_cylinders(TRUTH, REFERENCE, [f"S{i}"], [28.0], rng, tailings_sg=2.8,
                                 binder_sg=SG):  # fmt: skip
            n += 1
            passed += c.ucs_kpa >= required
    assert passed / n == pytest.approx(expected, abs=0.03)
    assert 0.8 < expected < 0.95


def test_cylinders_of_one_cast_share_its_draw() -> None:
    """Within a cast the spread is the cylinder's; between casts the cast's adds."""
    rng = random.Random(5)
    within, means = [], []
    for i in range(400):
        cylinders = break_cylinders(
            TRUTH, REFERENCE, [f"A{i}", f"B{i}"], [28.0], rng, tailings_sg=2.8, binder_sg=SG
        )
        logs = [math.log(c.ucs_kpa) for c in cylinders]
        within.append((logs[0] - logs[1]) ** 2 / 2.0)
        means.append(sum(logs) / 2.0)
    assert math.sqrt(statistics.fmean(within)) == pytest.approx(TRUTH.cylinder_sd_log, rel=0.1)
    between = statistics.variance(means) - TRUTH.cylinder_sd_log**2 / 2.0
    assert math.sqrt(between) == pytest.approx(TRUTH.cast_sd_log, rel=0.3)


def test_a_cured_cylinder_reads_drier_on_the_oven() -> None:
    (c,) = break_cylinders(
        TRUTH, REFERENCE, ["S"], [28.0], random.Random(1), tailings_sg=2.8, binder_sg=SG
    )
    lab_cw = c.dry_mass_g / c.wet_mass_g
    k = TRUTH.nonevaporable_water * TRUTH.hydration(28.0) * 0.05 / 1.05
    assert lab_cw == pytest.approx(0.75 * (1 + k), abs=1e-4)
    assert lab_cw > 0.75
    # The wet mass is the mould's volume at the paste's density.
    density = paste_density_kg_m3(REFERENCE, 2.8, SG)
    assert c.wet_mass_g == pytest.approx(density * math.pi * 100 * 20 / 4 / 1000, abs=0.1)


def test_the_mixer_contents_are_the_paste() -> None:
    paste = mixer_paste(20.0, 80.0, 0.0, 2000.0, 700.0)
    assert paste is not None
    assert paste.binder_ratio == pytest.approx(0.05)
    assert paste.solids_fraction == pytest.approx(2100.0 / 2800.0)
    assert paste.blend["slag"] == pytest.approx(0.8)
    assert mixer_paste(0.0, 0.0, 0.0, 100.0, 50.0) is None  # no binder: no cylinder
    assert mixer_paste(1.0, 0.0, 0.0, 0.0, 50.0) is None  # water


def test_trial_mixes_calibrate_the_service_model_near_the_truth() -> None:
    """Many trial cylinders fitted by the service's own model recover the truth's
    coefficients (the forms agree): the twin is a fair world for the service."""
    mixes = [
        PasteTruth({"cement": 1.0 - s, "slag": s}, bw, cw)
        for s in (0.0, 0.5, 0.8)
        for bw in (0.03, 0.05, 0.08)
        for cw in (0.68, 0.72, 0.76)
    ]
    trial = trial_mixes(TRUTH, mixes, (7.0, 28.0), random.Random(0), cylinders_per_age=6)
    model = fit_strength_model(
        [
            CylinderResult(dict(t.blend), t.binder_ratio, t.solids_fraction, t.curing_days,
                           t.ucs_kpa)
            for t in trial
        ]
    )  # fmt: skip
    assert model.binder_water_exponent == pytest.approx(TRUTH.exponent, abs=0.1)
    assert model.time_coefficient == pytest.approx(TRUTH.time_exponent, abs=0.05)
    slag = model.components.index("slag")
    assert model.blend_coefficients[slag] == pytest.approx(TRUTH.blend_effect["slag"], abs=0.06)
    assert model.time_blend_coefficients[slag] == pytest.approx(TRUTH.time_blend["slag"], abs=0.08)
