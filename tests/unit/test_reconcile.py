"""Reconciliation: Gs or gauge bias from the lab, redundant flows, the disagreement alarm."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.optimize import minimize

from service.core import flow_balance as fb
from service.core import reconcile as rc
from service.core.control import massbalance as mb
from service.errors import InvalidInput

GS_T = 2.8
GS_B = 1.0 / (0.3 / 3.15 + 0.7 / 2.90)  # the cement/slag blend below
BW = 0.05
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# =========================================================================================
# 1. Gs or density gauge bias from lab Cw
# =========================================================================================


def paste_cw(density: float, gs_t: float, bw: float = BW) -> float:
    """True Cw of a saturated paste by the slurry relation (Wills & Finch 2016, ch. 3) with
    the blended solids Gs (Belem & Benzaazoua 2008), written out by hand."""
    rho_s = (1 + bw) / (1 / gs_t + bw / GS_B) * 1000.0
    return rho_s * (density - 1000.0) / (density * (rho_s - 1000.0))


@given(
    cw=st.floats(0.5, 0.9),
    gs=st.floats(1.5, 6.0),
)
def test_solids_gs_from_density_inverts_the_saturated_density(cw: float, gs: float) -> None:
    rho = rc.saturated_density_kg_m3(cw, gs)
    assert mb.slurry_solids_fraction(rho, gs) == pytest.approx(cw)
    assert rc.solids_sg_from_density(cw, rho) == pytest.approx(gs, rel=1e-9)


@given(gs_t=st.floats(2.0, 5.0), bw=st.floats(0.01, 0.2), gs_b=st.floats(2.2, 3.3))
def test_tailings_gs_inverts_the_blended_solids_gs(gs_t: float, bw: float, gs_b: float) -> None:
    assert rc.tailings_sg_from_solids_sg(rc.solids_sg(gs_t, bw, gs_b), bw, gs_b) == pytest.approx(
        gs_t
    )


def test_impossible_combinations_give_nan() -> None:
    # 40 % solids at 2,000 kg/m3: the water alone (1.2 m3 per m3) does not fit.
    assert math.isnan(rc.solids_sg_from_density(0.4, 2000.0))
    # Solids of Gs 8 cannot hold a third of their mass as a binder of Gs 2 (1.5/8 < 0.5/2).
    assert math.isnan(rc.tailings_sg_from_solids_sg(8.0, 0.5, 2.0))


def test_a_three_percent_gs_error_moves_cw_by_about_one_point() -> None:
    # Why the lab is needed: with every gauge agreeing with the recipe, a tailings Gs 3 %
    # off moves the true Cw of the slurry relation by about one point.
    for density in (1850.0, 1950.0, 2050.0):
        shift = paste_cw(density, GS_T * 1.03) - paste_cw(density, GS_T)
        assert -0.015 < shift < -0.008


def sample(
    i: int,
    density: float,
    *,
    true_gs: float = GS_T,
    gauge_bias: float = 0.0,
    lab_noise: float = 0.0,
    lab_density_noise: float | None = None,
    rng: np.random.Generator | None = None,
) -> rc.PasteSample:
    """A sample of paste of true density ``density``: the gauge reads it + bias, the lab
    measures its true Cw (+ noise) and, optionally, its density (+ noise)."""
    noise = rng.normal() if rng is not None else 0.0
    lab_density = None
    if lab_density_noise is not None:
        assert rng is not None
        lab_density = density + lab_density_noise * rng.normal()
    return rc.PasteSample(
        sample_id=f"S-{i}",
        lab_solids_fraction=paste_cw(density, true_gs) + lab_noise * noise,
        gauge_density_kg_m3=density + gauge_bias,
        binder_ratio=BW,
        binder_sg=GS_B,
        tailings_sg=GS_T,
        lab_density_kg_m3=lab_density,
    )


def test_one_sample_implies_the_true_gs_and_the_equivalent_gauge_bias() -> None:
    s = sample(0, 1950.0, true_gs=GS_T * 1.03)
    estimate = rc.estimate_sample(s)
    assert estimate.tailings_sg == pytest.approx(GS_T * 1.03)
    # The gauge bias that explains the same lab Cw at the assumed Gs: the density a
    # paste of the lab's Cw would have with the assumed solids.
    expected = 1950.0 - 1000.0 / (
        s.lab_solids_fraction / s.assumed_solids_sg + 1.0 - s.lab_solids_fraction
    )
    assert estimate.density_bias_kg_m3 == pytest.approx(expected)
    # Heavier solids than assumed: the paste is wetter than recorded, as if the gauge
    # read high.
    assert estimate.density_bias_kg_m3 > 0.0
    assert estimate.recorded_solids_fraction > estimate.lab_solids_fraction


def test_noise_free_gs_error_is_named_and_corrected() -> None:
    samples = [sample(i, d, true_gs=GS_T * 1.03) for i, d in enumerate(range(1850, 2101, 50))]
    result = rc.reconcile_gs(samples)
    assert result.tailings_sg.value == pytest.approx(GS_T * 1.03)
    assert result.tailings_sg_error_pct == pytest.approx(3.0)
    assert result.verdict == "tailings_gs"
    assert result.gs_weight is not None and result.gs_weight > 0.99
    assert result.residual_sd_gs is not None and result.residual_sd_gs < 1e-9
    assert result.proposal is not None and result.proposal.kind == "tailings_gs"
    assert result.proposal.tailings_sg == pytest.approx(GS_T * 1.03)
    assert result.mean_solids_error == pytest.approx(
        np.mean([paste_cw(d, GS_T * 1.03) - paste_cw(d, GS_T) for d in range(1850, 2101, 50)])
    )


def test_noise_free_gauge_bias_is_named_and_corrected() -> None:
    samples = [sample(i, d, gauge_bias=25.0) for i, d in enumerate(range(1850, 2101, 50))]
    result = rc.reconcile_gs(samples)
    assert result.density_bias.value == pytest.approx(25.0)
    assert result.verdict == "density_gauge"
    assert result.proposal is not None and result.proposal.kind == "density_gauge"
    assert result.proposal.density_bias_kg_m3 == pytest.approx(25.0)
    assert result.gs_weight is not None and result.gs_weight < 0.01


def test_the_lab_density_decides_between_gs_and_gauge() -> None:
    rng = np.random.default_rng(5)
    densities = rng.uniform(1940.0, 1980.0, size=8)  # too narrow to tell by shape
    gs_case = [
        sample(i, d, true_gs=GS_T * 1.03, lab_noise=0.003, lab_density_noise=5.0, rng=rng)
        for i, d in enumerate(densities)
    ]
    result = rc.reconcile_gs(gs_case)
    assert result.verdict == "tailings_gs"
    assert result.direct_density_bias is not None
    assert result.direct_density_bias.contains(0.0)
    assert "agrees with the lab" in result.explanation
    assert result.tailings_sg.contains(GS_T * 1.03)
    bias_case = [
        sample(i, d, gauge_bias=30.0, lab_noise=0.003, lab_density_noise=5.0, rng=rng)
        for i, d in enumerate(densities)
    ]
    result = rc.reconcile_gs(bias_case)
    assert result.verdict == "density_gauge"
    assert result.direct_density_bias is not None
    assert not result.direct_density_bias.contains(0.0)
    # The proposed correction is the direct gauge - lab comparison.
    assert result.proposal is not None and result.proposal.determined
    assert result.proposal.kind == "density_gauge"
    assert result.proposal.density_bias_kg_m3 == pytest.approx(result.direct_density_bias.value)
    assert result.proposal.low is not None and result.proposal.high is not None
    assert result.proposal.low <= 30.0 <= result.proposal.high


def test_without_lab_densities_a_narrow_range_is_undetermined() -> None:
    rng = np.random.default_rng(7)
    densities = rng.uniform(1940.0, 1980.0, size=8)
    samples = [
        sample(i, d, true_gs=GS_T * 1.03, lab_noise=0.003, rng=rng) for i, d in enumerate(densities)
    ]
    result = rc.reconcile_gs(samples)
    assert result.verdict == "undetermined"
    assert result.proposal is not None and not result.proposal.determined
    assert "ASTM D854" in result.explanation
    # Either correction gives nearly the same Cw inside the sampled range.
    gs_fix = rc.CwCorrection("tailings_gs", tailings_sg=result.tailings_sg.value)
    bias_fix = rc.CwCorrection("density_gauge", density_bias_kg_m3=result.density_bias.value)
    for d in (1940.0, 1960.0, 1980.0):
        kwargs = {"binder_ratio": BW, "binder_sg": GS_B, "tailings_sg": GS_T}
        a = rc.reconciled_solids_fraction(d, correction=gs_fix, **kwargs)
        b = rc.reconciled_solids_fraction(d, correction=bias_fix, **kwargs)
        assert a == pytest.approx(b, abs=5e-4)


def test_no_error_is_consistent_and_proposes_nothing() -> None:
    rng = np.random.default_rng(11)
    samples = [
        sample(i, d, lab_noise=0.003, rng=rng) for i, d in enumerate(np.linspace(1850, 2100, 10))
    ]
    result = rc.reconcile_gs(samples)
    assert result.verdict == "consistent"
    assert result.proposal is None
    assert result.tailings_sg.contains(GS_T)
    assert result.samples_needed is not None and result.samples_needed >= 2


def test_one_sample_is_insufficient() -> None:
    result = rc.reconcile_gs([sample(0, 1950.0, true_gs=3.0)])
    assert result.verdict == "insufficient"
    assert result.tailings_sg.low is None and result.proposal is None
    assert result.tailings_sg.value == pytest.approx(3.0)


def test_reconcile_gs_refuses_mixed_assumptions_and_impossible_samples() -> None:
    a = sample(0, 1950.0)
    b = replace(sample(1, 1950.0), tailings_sg=2.9)
    with pytest.raises(InvalidInput) as err:
        rc.reconcile_gs([a, b])
    assert err.value.field == "samples[1].tailings_sg"
    impossible = replace(sample(1, 1950.0), lab_solids_fraction=0.40)
    with pytest.raises(InvalidInput) as err:
        rc.reconcile_gs([a, impossible])
    assert err.value.field == "samples[1].lab_solids_fraction"
    with pytest.raises(InvalidInput) as err:
        rc.reconcile_gs([replace(a, gauge_density_kg_m3=950.0)])
    assert err.value.field == "samples[0].gauge_density_kg_m3"
    with pytest.raises(InvalidInput):
        rc.reconcile_gs([])
    with pytest.raises(InvalidInput):
        rc.reconcile_gs([a, a], confidence=1.0)


def test_t_estimate_is_the_student_interval() -> None:
    values = [2.91, 2.87, 2.95, 2.89, 2.93]
    estimate = rc.t_estimate(values, 0.95)
    reference = stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert (estimate.low, estimate.high) == pytest.approx(reference)
    assert estimate.standard_error == pytest.approx(stats.sem(values))


# --- how many samples -------------------------------------------------------------------


def test_samples_for_t_test_is_the_smallest_n_with_the_power() -> None:
    for effect, sd in ((1.0, 1.0), (0.5, 1.0), (3.0, 1.0)):
        n = rc.samples_for_t_test(effect, sd, confidence=0.95, power=0.9)

        def power(m: int, effect: float = effect, sd: float = sd) -> float:
            critical = stats.t.ppf(0.975, m - 1)
            nc = effect * math.sqrt(m) / sd
            return float(stats.nct.sf(critical, m - 1, nc) + stats.nct.cdf(-critical, m - 1, nc))

        assert power(n) >= 0.9
        assert n == 2 or power(n - 1) < 0.9
    # The normal approximation ((z_.975 + z_.9) sd/effect)^2 = 10.5 is a lower bound.
    assert rc.samples_for_t_test(1.0, 1.0) == 13


def test_a_three_percent_gs_error_is_named_by_the_predicted_count_of_samples() -> None:
    lab_sd = 0.005  # Cw, sampling and oven together
    n = rc.samples_to_name_gs_error(
        0.03,
        lab_solids_sd=lab_sd,
        gauge_density_kg_m3=1950.0,
        binder_ratio=BW,
        binder_sg=GS_B,
        tailings_sg=GS_T,
        gauge_density_sd_kg_m3=3.0,
    )
    assert 2 <= n <= 10
    # Check by simulation: with n samples the interval excludes the assumed Gs in about
    # 90 % of trials, with n - 1 less often.
    rng = np.random.default_rng(2026)

    def hit_rate(count: int, trials: int = 400) -> float:
        hits = 0
        for _ in range(trials):
            samples = [
                replace(
                    sample(i, 1950.0 + 50.0 * rng.uniform(-1, 1), true_gs=GS_T * 1.03),
                    lab_solids_fraction=paste_cw(1950.0, GS_T * 1.03) + lab_sd * rng.normal(),
                    gauge_density_kg_m3=1950.0 + 3.0 * rng.normal(),
                )
                for i in range(count)
            ]
            if not rc.reconcile_gs(samples).tailings_sg.contains(GS_T):
                hits += 1
        return hits / trials

    assert hit_rate(n) >= 0.85
    if n > 2:
        assert hit_rate(n - 1) < hit_rate(n)


def test_gs_estimate_spread_matches_a_monte_carlo() -> None:
    sd = rc.gs_estimate_sd(
        gauge_density_kg_m3=1950.0,
        binder_ratio=BW,
        binder_sg=GS_B,
        tailings_sg=GS_T,
        lab_solids_sd=0.004,
        gauge_density_sd_kg_m3=4.0,
    )
    rng = np.random.default_rng(3)
    cw = paste_cw(1950.0, GS_T)
    draws = [
        rc.tailings_sg_from_solids_sg(
            rc.solids_sg_from_density(cw + 0.004 * rng.normal(), 1950.0 + 4.0 * rng.normal()),
            BW,
            GS_B,
        )
        for _ in range(20000)
    ]
    assert float(np.std(draws)) == pytest.approx(sd, rel=0.05)


def test_sample_count_inputs_are_checked() -> None:
    with pytest.raises(InvalidInput) as err:
        rc.samples_for_t_test(0.0, 1.0)
    assert err.value.field == "effect"
    with pytest.raises(InvalidInput) as err:
        rc.samples_for_t_test(1.0, 0.0)
    assert err.value.field == "sd"
    assert rc.samples_for_t_test(1e-6, 1.0, max_samples=50) == 51
    with pytest.raises(InvalidInput) as err:
        rc.samples_to_name_gs_error(
            1.5,
            lab_solids_sd=0.005,
            gauge_density_kg_m3=1950.0,
            binder_ratio=BW,
            binder_sg=GS_B,
            tailings_sg=GS_T,
        )
    assert err.value.field == "relative_gs_error"


# --- reconciled records -----------------------------------------------------------------


def test_the_correct_correction_restores_the_true_cw() -> None:
    kwargs = {"binder_ratio": BW, "binder_sg": GS_B, "tailings_sg": GS_T}
    true_gs = GS_T * 1.03
    record = rc.reconcile_record(
        1950.0, correction=rc.CwCorrection("tailings_gs", tailings_sg=true_gs), **kwargs
    )
    assert record.as_controlled == pytest.approx(paste_cw(1950.0, GS_T))
    assert record.reconciled == pytest.approx(paste_cw(1950.0, true_gs))
    assert record.best == record.reconciled and record.basis == "reconciled"
    biased = rc.reconcile_record(
        1975.0, correction=rc.CwCorrection("density_gauge", density_bias_kg_m3=25.0), **kwargs
    )
    assert biased.reconciled == pytest.approx(paste_cw(1950.0, GS_T))
    plain = rc.reconcile_record(1950.0, correction=None, **kwargs)
    assert plain.reconciled is None and plain.best == plain.as_controlled
    assert plain.basis == "as_controlled"


def test_corrections_are_validated() -> None:
    with pytest.raises(InvalidInput) as err:
        rc.CwCorrection("tailings_gs")
    assert err.value.field == "tailings_sg"
    with pytest.raises(InvalidInput) as err:
        rc.CwCorrection("density_gauge", density_bias_kg_m3=math.nan)
    assert err.value.field == "density_bias_kg_m3"
    with pytest.raises(InvalidInput):
        rc.CwCorrection("other")  # type: ignore[arg-type]


def test_off_spec_volume_is_judged_on_the_reconciled_cw() -> None:
    target = paste_cw(1950.0, GS_T)  # the recipe's Cw at the assumed Gs
    intervals = [
        rc.DensityInterval(10.0, 1950.0),  # on target as controlled
        rc.DensityInterval(5.0, 1985.0),  # 1.2 points wet... as controlled: in band?
        rc.DensityInterval(2.0, None),
        rc.DensityInterval(3.0, math.nan),
    ]
    kwargs = {
        "target_solids_fraction": target,
        "band_fraction": 0.01,
        "binder_ratio": BW,
        "binder_sg": GS_B,
        "tailings_sg": GS_T,
    }
    as_controlled = rc.off_spec_volume(intervals, **kwargs)
    off = abs(paste_cw(1985.0, GS_T) - target) > 0.01
    assert as_controlled.basis == "as_controlled" and as_controlled.reconciled_volume_m3 is None
    assert as_controlled.volume_m3 == (5.0 if off else 0.0)
    assert as_controlled.unknown_volume_m3 == 5.0
    # The true Gs is 3 % higher: every record is about one point drier than recorded,
    # so the on-target paste was off spec all along.
    fix = rc.CwCorrection("tailings_gs", tailings_sg=GS_T * 1.03)
    reconciled = rc.off_spec_volume(intervals, correction=fix, **kwargs)
    assert reconciled.basis == "reconciled" and reconciled.correction_kind == "tailings_gs"
    assert reconciled.volume_m3 == reconciled.reconciled_volume_m3
    assert reconciled.volume_m3 >= 10.0
    assert reconciled.as_controlled_volume_m3 == as_controlled.volume_m3
    with pytest.raises(InvalidInput) as err:
        rc.off_spec_volume([rc.DensityInterval(-1.0, 1950.0)], **kwargs)
    assert err.value.field == "intervals[0].volume_m3"


# =========================================================================================
# 2. Redundant flows
# =========================================================================================

BINDER_SG = {"cement": 3.15, "slag": 2.90}
BLEND = {"cement": 0.3, "slag": 0.7}
CW = 0.72
# Random error (sd) of one 1-second reading of each gauge.
SD = {"qf": 0.5, "rf": 5.0, "cement": 0.05, "slag": 0.05, "w": 0.2, "qp": 0.7, "rp": 5.0}
KEYS = ("qf", "rf", "cement", "slag", "w", "qp", "rp")
TAGS = {
    "qf": "tailings_flow_pv",
    "rf": "tailings_density_pv",
    "cement": "cement_rate_pv",
    "slag": "slag_rate_pv",
    "w": "water_flow_pv",
    "qp": "paste_flow_pv",
    "rp": "paste_density_pv",
}


def truth(qf: float, rho_f: float) -> dict[str, float]:
    """A consistent steady state: feed -> binder for Bw, water for Cw -> paste, by the
    mass-volume relations of a saturated paste (volumes add; Belem & Benzaazoua 2008)."""
    cwf = mb.slurry_solids_fraction(rho_f, GS_T)
    dry = qf * rho_f / 1000.0 * cwf
    feed_water = qf * rho_f / 1000.0 * (1.0 - cwf)
    binder = {k: BW * dry * f for k, f in BLEND.items()}
    water = (1.0 + BW) * dry * (1.0 / CW - 1.0) - feed_water
    mass = qf * rho_f / 1000.0 + sum(binder.values()) + water
    volume = qf + sum(v / BINDER_SG[k] for k, v in binder.items()) + water
    return {
        "qf": qf,
        "rf": rho_f,
        "cement": binder["cement"],
        "slag": binder["slag"],
        "w": water,
        "qp": volume,
        "rp": mass / volume * 1000.0,
    }


def measurements(
    values: dict[str, float],
    *,
    tolerance: dict[str, float] | None = None,
    correlation_time_s: float = 0.0,
    **extra: float,
) -> fb.FlowMeasurements:
    tol = tolerance or {}

    def reading(key: str) -> fb.Reading:
        return fb.Reading(values[key], SD[key], tol.get(key, 0.0), correlation_time_s)

    return fb.FlowMeasurements(
        feed_flow_m3_h=reading("qf"),
        feed_density_kg_m3=reading("rf"),
        water_flow_m3_h=reading("w"),
        paste_flow_m3_h=reading("qp"),
        paste_density_kg_m3=reading("rp"),
        binder_t_h={"cement": reading("cement"), "slag": reading("slag")},
        binder_sg=BINDER_SG,
        **extra,  # type: ignore[arg-type]
    )


def test_consistent_flows_need_no_adjustment() -> None:
    t = truth(70.0, 1900.0)
    assert t["w"] > 0.0 and 1800.0 < t["rp"] < 2200.0
    rec = fb.reconcile_flows(measurements(t))
    assert rec.residual_mass_t_h == pytest.approx(0.0, abs=1e-9)
    assert rec.residual_volume_m3_h == pytest.approx(0.0, abs=1e-9)
    assert rec.global_statistic == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(rec.adjusted, rec.measured)
    assert rec.names == (
        "tailings_flow_pv",
        "tailings_density_pv",
        "cement_rate_pv",
        "slag_rate_pv",
        "water_flow_pv",
        "paste_flow_pv",
        "paste_density_pv",
    )
    assert rec.to_dict()["constraints"] == ["mass_t_h", "volume_m3_h"]


def noisy(t: dict[str, float], rng: np.random.Generator) -> dict[str, float]:
    return {k: v + SD[k] * rng.normal() for k, v in t.items()}


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), qf=st.floats(30.0, 150.0), rho=st.floats(1750.0, 2000.0))
def test_reconciled_flows_close_both_balances(seed: int, qf: float, rho: float) -> None:
    rng = np.random.default_rng(seed)
    rec = fb.reconcile_flows(measurements(noisy(truth(qf, rho), rng)))
    x = dict(zip(rec.names, rec.adjusted, strict=True))
    mass_in = (
        x["tailings_flow_pv"] * x["tailings_density_pv"] / 1000
        + x["cement_rate_pv"]
        + x["slag_rate_pv"]
        + x["water_flow_pv"]
    )
    mass_out = x["paste_flow_pv"] * x["paste_density_pv"] / 1000
    volume_in = (
        x["tailings_flow_pv"]
        + x["cement_rate_pv"] / 3.15
        + x["slag_rate_pv"] / 2.90
        + x["water_flow_pv"]
    )
    assert mass_in == pytest.approx(mass_out, abs=1e-6)
    assert volume_in == pytest.approx(x["paste_flow_pv"], abs=1e-6)


def test_reconciled_flows_are_the_weighted_least_squares_solution() -> None:
    rng = np.random.default_rng(4)
    values = noisy(truth(80.0, 1880.0), rng)
    values["rp"] += 30.0  # a gross error makes the nonlinearity matter
    rec = fb.reconcile_flows(measurements(values))
    x0 = rec.measured
    w = 1.0 / rec.sd**2

    def balances(x: np.ndarray) -> np.ndarray:
        qf, rf, c, s, wt, qp, rp = x
        return np.array(
            [
                qf * rf / 1000 + c + s + wt - qp * rp / 1000,
                qf + c / 3.15 + s / 2.90 + wt - qp,
            ]
        )

    best = minimize(
        lambda x: float(np.sum(w * (x - x0) ** 2)),
        x0,
        constraints={"type": "eq", "fun": balances},
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert best.success
    assert rec.adjusted == pytest.approx(best.x, rel=1e-6, abs=1e-6)


def test_the_global_test_is_chi_square_under_clean_noise() -> None:
    rng = np.random.default_rng(8)
    gammas = []
    for _ in range(3000):
        rec = fb.reconcile_flows(measurements(noisy(truth(70.0, 1900.0), rng)))
        gammas.append(rec.global_statistic)
        assert rec.degrees_of_freedom == 2
    assert float(np.mean(gammas)) == pytest.approx(2.0, rel=0.08)
    rejected = float(np.mean([stats.chi2.sf(g, 2) < 0.05 for g in gammas]))
    assert 0.035 < rejected < 0.065


def test_the_measurement_test_names_a_gross_error_in_one_snapshot() -> None:
    rng = np.random.default_rng(9)
    # (gauge, error, the gauges whose signature in the two balances is (nearly) parallel
    # to it: one snapshot cannot tell them apart).
    cases = (
        ("w", 6.0, {"water_flow_pv"}),
        ("qp", 8.0, {"paste_flow_pv", "tailings_flow_pv"}),  # (-rho_p, -1) ~ (rho_f, 1)
        ("rp", 120.0, {"paste_density_pv", "tailings_density_pv"}),  # mass balance only
        ("slag", 8.0, {"slag_rate_pv", "cement_rate_pv"}),  # (1, 1/Gs), Gs 2.90 ~ 3.15
    )
    for key, error, group in cases:
        values = noisy(truth(70.0, 1900.0), rng)
        values[key] += error
        rec = fb.reconcile_flows(measurements(values))
        assert rec.global_test_failed()
        assert rec.suspect in group
        z = dict(zip(rec.names, rec.measurement_statistics, strict=True))
        outside = max(v for name, v in z.items() if name not in group)
        assert min(z[name] for name in group) > outside
        # The faulty gauge's reconciled value moves against its error (the weights
        # spread the rest of the correction over the noisier gauges).
        assert rec.adjustments()[TAGS[key]] > 0.0


def test_mixer_holdup_change_enters_the_balances() -> None:
    t = truth(70.0, 1900.0)
    # The mixer fills at 0.5 m3/h of paste: the pump takes that much less.
    rho_p = t["rp"]
    filling = dict(t, qp=t["qp"] - 0.5)
    rec = fb.reconcile_flows(measurements(filling))
    assert rec.residual_volume_m3_h == pytest.approx(0.5)
    rec = fb.reconcile_flows(
        measurements(
            filling, holdup_mass_change_t_h=0.5 * rho_p / 1000, holdup_volume_change_m3_h=0.5
        )
    )
    assert rec.residual_mass_t_h == pytest.approx(0.0, abs=1e-9)
    assert rec.residual_volume_m3_h == pytest.approx(0.0, abs=1e-9)


def test_the_volume_balance_can_be_left_out() -> None:
    rec = fb.reconcile_flows(measurements(truth(70.0, 1900.0)), use_volume_balance=False)
    assert rec.constraints == ("mass_t_h",) and rec.degrees_of_freedom == 1
    assert rec.residual_volume_m3_h is None
    assert len(rec.normalised_residuals) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: replace(m, paste_density_kg_m3=fb.Reading(2000.0, 0.0)), "paste_density_pv.sd"),
        (lambda m: replace(m, feed_flow_m3_h=fb.Reading(math.nan, 1.0)), "tailings_flow_pv.value"),
        (
            lambda m: replace(m, water_flow_m3_h=fb.Reading(5.0, 0.2, tolerance=-1.0)),
            "water_flow_pv.tolerance",
        ),
        (
            lambda m: replace(m, water_flow_m3_h=fb.Reading(5.0, 0.2, correlation_time_s=-1.0)),
            "water_flow_pv.correlation_time_s",
        ),
        (lambda m: replace(m, binder_sg={"cement": 3.15}), "binder_sg.slag"),
        (lambda m: replace(m, binder_sg={"cement": 3.15, "slag": 0.9}), "binder_sg.slag"),
        (lambda m: replace(m, holdup_mass_change_t_h=math.inf), "holdup_mass_change_t_h"),
    ],
)
def test_bad_measurements_name_the_gauge(
    change: Callable[[fb.FlowMeasurements], fb.FlowMeasurements], field: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        fb.reconcile_flows(change(measurements(truth(70.0, 1900.0))))
    assert err.value.field == field


# --- the persistence filter ---------------------------------------------------------------


@dataclass
class Run:
    """What a simulated run saw."""

    first_alarm_s: int | None
    max_statistic_before: float
    threshold: float
    status: fb.DisagreementStatus | None


def simulate(
    seconds: int,
    seed: int,
    *,
    bias: tuple[str, float, int] | None = None,
    tolerance: dict[str, float] | None = None,
    offsets: dict[str, float] | None = None,
    correlation_time_s: float = 0.0,
    declare_correlation: bool = True,
    config: fb.DisagreementConfig | None = None,
    stop_at_alarm: bool = True,
) -> Run:
    """A plant at 1 s cycles: the feed density wanders (Ornstein-Uhlenbeck, 600 s), every
    gauge adds its noise (first-order filtered when ``correlation_time_s``) and
    ``offsets`` (a fixed calibration error); ``bias`` = (key, relative error, onset s)."""
    rng = np.random.default_rng(seed)
    phi = math.exp(-1.0 / correlation_time_s) if correlation_time_s > 0.0 else 0.0
    innovations = rng.normal(size=(seconds, len(KEYS))) * math.sqrt(1.0 - phi * phi)
    walk = rng.normal(size=seconds)
    scale = np.array([SD[k] for k in KEYS])
    noise = rng.normal(size=len(KEYS)) * scale
    state = fb.DisagreementState.initial()
    deviation = 0.0
    first = None
    peak = 0.0
    status = None
    for i in range(seconds):
        deviation += -deviation / 600.0 + walk[i]
        values = truth(70.0, 1900.0 + deviation)
        noise = phi * noise + innovations[i] * scale
        read = {k: values[k] + noise[j] + (offsets or {}).get(k, 0.0) for j, k in enumerate(KEYS)}
        if bias is not None and i >= bias[2]:
            read[bias[0]] *= 1.0 + bias[1]
        m = measurements(
            read,
            tolerance=tolerance,
            correlation_time_s=correlation_time_s if declare_correlation else 0.0,
        )
        state, status = fb.update_disagreement(
            state, fb.reconcile_flows(m), T0 + timedelta(seconds=i), config
        )
        if bias is None or i < bias[2]:
            peak = max(peak, status.statistic)
        if status.alarm and first is None:
            first = i
            if stop_at_alarm:
                break
    assert status is not None
    return Run(first, peak, status.threshold, status)


def test_the_threshold_is_the_union_bound_over_the_horizon() -> None:
    config = fb.DisagreementConfig()
    # chi^2_2 has the tail e^(-h/2): h = 2 ln(T/(dt alpha)).
    assert config.threshold(2) == pytest.approx(2.0 * math.log(8 * 3600 / 0.001))
    assert config.threshold(1) == pytest.approx(stats.chi2.isf(0.001 / 28800, 1))
    assert config.clear_threshold(2) == pytest.approx(stats.chi2.isf(0.01, 2))
    with pytest.raises(InvalidInput) as err:
        fb.DisagreementConfig(time_constant_s=0.0)
    assert err.value.field == "time_constant_s"
    with pytest.raises(InvalidInput) as err:
        fb.DisagreementConfig(clear_probability=1e-12)
    assert err.value.field == "clear_probability"


def test_clean_noise_raises_no_alarm_in_eight_plant_hours() -> None:
    run = simulate(8 * 3600, seed=11)
    assert run.first_alarm_s is None
    # The largest statistic seen stays well below the threshold (measured: about 19 of
    # 34.4 for this seed).
    assert run.max_statistic_before < 0.8 * run.threshold
    assert run.status is not None and run.status.samples == 8 * 3600


def test_a_two_percent_paste_density_bias_is_named_within_a_minute() -> None:
    onset = 600
    run = simulate(onset + 600, seed=12, bias=("rp", 0.02, onset), stop_at_alarm=False)
    assert run.first_alarm_s is not None
    assert run.max_statistic_before < run.threshold  # no alarm before the bias
    delay = run.first_alarm_s - onset
    assert 0 <= delay <= 60  # measured: 11 s
    status = run.status  # ten minutes after the onset
    assert status is not None and status.alarm and not status.raised
    assert status.most_likely == "paste_density_pv"
    # The balances cannot tell the feed density gauge from the paste's: both are named.
    assert set(status.indistinguishable) == {"paste_density_pv", "tailings_density_pv"}
    top = {s.name: s for s in status.suspects}["paste_density_pv"]
    assert top.bias_pct_of_reading == pytest.approx(2.0, abs=0.25)
    assert "paste_density_pv" in status.detail and "high" in status.detail
    assert "tailings_density_pv" in status.detail and "low" in status.detail


def test_within_tolerance_calibration_offsets_are_not_alarms() -> None:
    # Every gauge off by about its stated tolerance, noise filtered with a 5 s time
    # constant (declared): an hour, no alarm.
    tolerance = {"qf": 0.35, "rf": 10.0, "cement": 0.05, "slag": 0.05, "w": 0.1, "qp": 0.5}
    tolerance["rp"] = 10.0
    offsets = {"qf": 0.3, "rf": -9.0, "qp": -0.45, "rp": 9.0, "w": 0.1}
    run = simulate(
        3600,
        seed=13,
        tolerance=tolerance,
        offsets=offsets,
        correlation_time_s=5.0,
    )
    assert run.first_alarm_s is None
    # Without the tolerances the same offsets are (rightly) an alarm: the gauges do
    # disagree, by less than their specification allows.
    strict = simulate(3600, seed=13, offsets=offsets, correlation_time_s=5.0)
    assert strict.first_alarm_s is not None
    # A bias beyond the tolerance is still caught.
    caught = simulate(
        1800,
        seed=14,
        tolerance=tolerance,
        correlation_time_s=5.0,
        bias=("rp", 0.02, 300),
    )
    assert caught.first_alarm_s is not None and caught.first_alarm_s - 300 <= 300
    assert caught.status is not None and caught.status.most_likely == "paste_density_pv"


def test_correlated_noise_must_be_declared() -> None:
    # The same filtered noise taken for white noise looks far more significant than it
    # is: the correlation time is what keeps the false-alarm bound.
    undeclared = simulate(3600, seed=15, correlation_time_s=10.0, declare_correlation=False)
    declared = simulate(3600, seed=15, correlation_time_s=10.0)
    assert declared.first_alarm_s is None
    assert undeclared.max_statistic_before > 2.0 * declared.max_statistic_before


def test_flow_meter_biases_are_told_from_density_biases() -> None:
    for key, rel, tag in (("qp", 0.03, "paste_flow_pv"), ("w", 0.25, "water_flow_pv")):
        run = simulate(1800, seed=16, bias=(key, rel, 300))
        assert run.first_alarm_s is not None and run.first_alarm_s - 300 <= 120
        assert run.status is not None
        assert tag in run.status.indistinguishable
        assert "paste_density_pv" not in run.status.indistinguishable


def test_the_alarm_clears_with_hysteresis_after_the_gauge_is_fixed() -> None:
    rng = np.random.default_rng(17)
    state = fb.DisagreementState.initial()
    raised_at = cleared_at = None
    for i in range(3000):
        read = noisy(truth(70.0, 1900.0), rng)
        if 100 <= i < 700:
            read["rp"] *= 1.02
        state, status = fb.update_disagreement(
            state, fb.reconcile_flows(measurements(read)), T0 + timedelta(seconds=i)
        )
        if status.raised:
            raised_at = i
            assert state.alarm_since == T0 + timedelta(seconds=i)
        if status.cleared:
            cleared_at = i
            break
    assert raised_at is not None and 100 <= raised_at <= 160
    # The EWMA (tau 120 s) needs a few time constants to fall below the clear threshold.
    assert cleared_at is not None and 700 + 60 <= cleared_at <= 700 + 900
    assert not state.alarm and state.alarm_since is None


def test_no_reconciliation_holds_the_filter_and_its_alarm() -> None:
    t = dict(truth(70.0, 1900.0), rp=truth(70.0, 1900.0)["rp"] + 200.0)
    rec = fb.reconcile_flows(measurements(t))
    state, status = fb.update_disagreement(fb.DisagreementState.initial(), rec, T0)
    assert status.alarm  # one sample 200 kg/m3 off is beyond any noise
    held_state, held = fb.update_disagreement(state, None, T0 + timedelta(seconds=1))
    assert held.held and held.alarm and held_state is state
    assert held.statistic == pytest.approx(status.statistic)
    assert held.average == pytest.approx(status.average)
    # A sample not after the last one is ignored.
    same_state, same = fb.update_disagreement(state, rec, T0)
    assert same.held and same_state is state


def test_a_long_gap_or_new_balances_restart_the_average() -> None:
    rng = np.random.default_rng(18)
    state = fb.DisagreementState.initial()
    for i in range(20):
        rec = fb.reconcile_flows(measurements(noisy(truth(70.0, 1900.0), rng)))
        state, status = fb.update_disagreement(state, rec, T0 + timedelta(seconds=i))
    assert status.samples == 20
    rec = fb.reconcile_flows(measurements(noisy(truth(70.0, 1900.0), rng)))
    state, status = fb.update_disagreement(state, rec, T0 + timedelta(seconds=60))
    assert status.samples == 1
    rec = fb.reconcile_flows(
        measurements(noisy(truth(70.0, 1900.0), rng)), use_volume_balance=False
    )
    state, status = fb.update_disagreement(state, rec, T0 + timedelta(seconds=61))
    assert status.samples == 1 and status.constraints == ("mass_t_h",)
    assert len(status.average) == 1
