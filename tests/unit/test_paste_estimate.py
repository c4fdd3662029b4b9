"""The paste estimate against a known truth: a well-mixed tank fed known inflows, read
through noisy gauges."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from service.core import paste_estimate as pe

CONFIG = pe.EstimateConfig(residence_s=45.0)
GS_SOLIDS = 2.85


def density_of(cw: float) -> float:
    return 1.0 / (cw / (GS_SOLIDS * 1000.0) + (1.0 - cw) / 1000.0)


def feed(
    est: pe.PasteEstimate,
    cw: float,
    *,
    binder: float = 5.0,
    tailings: float = 100.0,
    config: pe.EstimateConfig = CONFIG,
) -> pe.PasteEstimate:
    return pe.step(
        est,
        solids_fraction=cw,
        density_kg_m3=density_of(cw),
        solids_sg=GS_SOLIDS,
        binder_t_h={"cement": binder * 0.2, "slag": binder * 0.8},
        dry_tailings_t_h=tailings,
        level_pct=None,
        paste_flow_m3_h=None,
        dt_s=1.0,
        config=config,
    )


def test_gauge_noise_is_averaged_out_and_its_sd_is_stated() -> None:
    rng = random.Random(1)
    true_cw = 0.72
    slope = pe.density_per_solids_kg_m3(density_of(true_cw), GS_SOLIDS)
    noise_kg_m3 = 15.0  # a density gauge three times worse than stated
    config = pe.EstimateConfig(residence_s=45.0, density_sd_kg_m3=noise_kg_m3)
    est = pe.PasteEstimate()
    raw_off, estimates = 0, []
    for i in range(4000):
        reading = true_cw + rng.gauss(0.0, noise_kg_m3) / slope
        raw_off += abs(reading - true_cw) > 0.01
        est = feed(est, reading, config=config)
        if i > 200:
            estimates.append(est.solids_fraction)
    assert raw_off / 4000 > 0.1  # single readings: "off spec" one time in eight
    errors = [e - true_cw for e in estimates if e is not None]
    assert max(abs(e) for e in errors) < 0.008  # the estimate: never out of the +-1 pt band
    raw_sd = noise_kg_m3 / slope
    assert statistics.pstdev(errors) < raw_sd / 3.0
    stated = est.solids_sd
    assert stated is not None
    # The stated sd is the filter's: the scatter of the estimates matches it.
    assert statistics.pstdev(errors) == pytest.approx(stated, rel=0.25)
    assert est.solids_tolerance == pytest.approx(5.0 / slope, rel=0.01)  # at the last reading


def test_bw_follows_a_step_as_the_mixer_does() -> None:
    est = pe.PasteEstimate()
    for _ in range(300):
        est = feed(est, 0.72, binder=5.0)
    assert est.binder_ratio == pytest.approx(0.05)
    # The binder steps to 6 t/h: a well-mixed tank reaches 1 - 1/e of it in one residence.
    tau = CONFIG.residence_s
    for _ in range(int(tau)):
        est = feed(est, 0.72, binder=6.0)
    assert est.binder_ratio is not None
    reached = (est.binder_ratio - 0.05) / 0.01
    assert reached == pytest.approx(1.0 - math.exp(-1.0), abs=0.02)


def test_the_feed_reading_counts_when_the_feed_reaches_the_mixer() -> None:
    config = pe.EstimateConfig(residence_s=1.0, min_residence_s=1.0, feed_delay_s=20.0)
    est = pe.PasteEstimate()
    for _ in range(60):
        est = feed(est, 0.72, tailings=100.0, config=config)
    # The feed meter sees 80 t/h from now; the mixer gets it 20 s later.
    for i in range(25):
        est = feed(est, 0.72, tailings=80.0, config=config)
        assert est.binder_ratio is not None
        if i < 19:
            assert est.binder_ratio == pytest.approx(5.0 / 100.0, rel=1e-6)
    assert est.binder_ratio == pytest.approx(5.0 / 80.0, rel=1e-3)


def test_the_residence_is_the_hold_up_over_the_flow() -> None:
    config = pe.EstimateConfig(mixer_volume_m3=2.5)
    assert pe.residence_s(50.0, 100.0, config) == pytest.approx(45.0)
    assert pe.residence_s(None, 100.0, config) == config.residence_s
    assert pe.residence_s(50.0, 0.0, config) == config.residence_s
    assert pe.residence_s(100.0, 1.5, config) == config.max_residence_s


def test_a_missing_reading_leaves_the_estimate_as_it_was() -> None:
    est = feed(pe.PasteEstimate(), 0.72)
    same = pe.step(
        est,
        solids_fraction=None,
        density_kg_m3=None,
        solids_sg=GS_SOLIDS,
        binder_t_h=None,
        dry_tailings_t_h=None,
        level_pct=None,
        paste_flow_m3_h=None,
        dt_s=1.0,
        config=CONFIG,
    )
    assert same.solids_fraction == est.solids_fraction
    assert same.binder_ratio == est.binder_ratio
