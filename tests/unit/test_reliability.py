"""Prediction intervals and validity of the log-linear strength model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core import reliability
from service.core.strength_model import (
    REFERENCE_DAYS,
    CylinderResult,
    binder_water_ratio,
    fit_strength_model,
    load_example_model,
)
from service.errors import InvalidInput, OutsideCalibrationRange

EXAMPLE_BLENDS = [
    {"cement": 1.0, "slag": 0.0},
    {"cement": 0.7, "slag": 0.3},
    {"cement": 0.5, "slag": 0.5},
    {"cement": 0.2, "slag": 0.8},
]


def design_matrix(rows: list[CylinderResult]) -> np.ndarray:
    """The example form's design matrix, built independently of the model code."""
    return np.array(
        [
            [
                1.0,
                math.log(binder_water_ratio(r.binder_ratio, r.solids_fraction)),
                math.log(r.curing_days / REFERENCE_DAYS),
                r.blend.get("slag", 0.0),
                r.blend.get("slag", 0.0) * math.log(r.curing_days / REFERENCE_DAYS),
            ]
            for r in rows
        ]
    )


def noisy_rows(seed: int, noise: float = 0.08) -> list[CylinderResult]:
    rng = np.random.default_rng(seed)
    rows = []
    for slag in (0.0, 0.4, 0.8):
        for bw in (0.03, 0.05, 0.08):
            for cw in (0.72, 0.76, 0.80):
                for days in (7.0, 28.0, 56.0):
                    log_ucs = (
                        9.0
                        + 0.1 * slag
                        + 1.5 * math.log(binder_water_ratio(bw, cw))
                        + (0.3 + 0.4 * slag) * math.log(days / 28)
                        + noise * rng.normal()
                    )
                    rows.append(
                        CylinderResult(
                            {"cement": 1 - slag, "slag": slag}, bw, cw, days, math.exp(log_ucs)
                        )
                    )
    return rows


# --- what the fit keeps ----------------------------------------------------------------------


def test_fit_keeps_the_ols_statistics() -> None:
    rows = noisy_rows(3)
    model = fit_strength_model(rows)
    stats = model.statistics()
    x = design_matrix(rows)
    y = np.log([r.ucs_kpa for r in rows])
    inverse = np.linalg.inv(x.T @ x)
    residuals = y - x @ (inverse @ x.T @ y)
    assert model.terms == (
        "intercept",
        "ln_binder_water",
        "ln_time",
        "blend:slag",
        "time_blend:slag",
    )
    assert stats.covariance_matrix() == pytest.approx(inverse, rel=1e-9, abs=1e-12)
    assert stats.degrees_of_freedom == len(rows) - 5
    assert stats.residual_variance == pytest.approx(residuals @ residuals / (len(rows) - 5))
    leverages = np.einsum("ij,jk,ik->i", x, inverse, x)
    assert stats.leverage_max == pytest.approx(leverages.max(), rel=1e-9)
    assert stats.ln_binder_water_min == pytest.approx(x[:, 1].min())
    assert stats.ln_binder_water_max == pytest.approx(x[:, 1].max())


def test_prediction_interval_matches_the_textbook_formula() -> None:
    rows = noisy_rows(4)
    model = fit_strength_model(rows)
    stats = model.statistics()
    x = design_matrix(rows)
    inverse = np.linalg.inv(x.T @ x)
    blend = {"cement": 0.6, "slag": 0.4}
    x0 = np.array(
        [1.0, math.log(binder_water_ratio(0.05, 0.76)), math.log(14 / 28), 0.4, 0.4 * math.log(0.5)]
    )
    h0 = float(x0 @ inverse @ x0)
    prediction = model.predict(blend, 0.05, 0.76, 14.0, pass_fraction=0.9)
    se = math.sqrt(stats.residual_variance * (1 + h0))
    t90 = reliability.t_quantile(0.9, stats.degrees_of_freedom)
    assert prediction.leverage == pytest.approx(h0, rel=1e-9)
    assert prediction.leverage_max == stats.leverage_max
    assert prediction.standard_error_log == pytest.approx(se, rel=1e-9)
    assert prediction.median_ucs_kpa == prediction.ucs_kpa
    assert prediction.lower_ucs_kpa == pytest.approx(prediction.ucs_kpa * math.exp(-t90 * se))
    assert prediction.pass_fraction == 0.9
    # The lower bound at p is passed with probability p; the median with 1/2.
    assert prediction.pass_probability(prediction.lower_ucs_kpa) == pytest.approx(0.9, abs=1e-9)
    assert prediction.pass_probability(prediction.ucs_kpa) == pytest.approx(0.5, abs=1e-12)
    assert model.predict(blend, 0.05, 0.76, 14.0).lower_ucs_kpa is None


def test_student_t_quantiles_match_the_tables() -> None:
    # t_{0.90, 10} = 1.372, t_{0.95, 20} = 1.725, t_{0.99, 5} = 3.365 (one-sided tables).
    assert reliability.t_quantile(0.90, 10) == pytest.approx(1.372, abs=5e-4)
    assert reliability.t_quantile(0.95, 20) == pytest.approx(1.725, abs=5e-4)
    assert reliability.t_quantile(0.99, 5) == pytest.approx(3.365, abs=5e-4)
    assert reliability.t_cdf(reliability.t_quantile(0.8, 7), 7) == pytest.approx(0.8)


def test_the_interval_covers_new_cylinders_at_its_pass_fraction() -> None:
    # Repeated fits of fresh data, one new cylinder each at a design point: the share of
    # new cylinders above the 90 % lower bound is 90 % (binomial sd 1.3 % over 500).
    rng = np.random.default_rng(11)
    blend = {"cement": 0.6, "slag": 0.4}
    truth = 9.0 + 0.04 + 1.5 * math.log(binder_water_ratio(0.06, 0.74)) + 0.46 * math.log(14 / 28)
    passed = 0
    runs = 500
    for seed in range(runs):
        model = fit_strength_model(noisy_rows(1000 + seed, noise=0.1))
        bound = model.predict(blend, 0.06, 0.74, 14.0, pass_fraction=0.9).lower_ucs_kpa
        assert bound is not None
        passed += math.exp(truth + 0.1 * rng.normal()) >= bound
    assert 0.86 <= passed / runs <= 0.94


def test_a_noise_free_fit_passes_exactly_at_the_median() -> None:
    model = fit_strength_model(noisy_rows(1, noise=0.0))
    prediction = model.predict({"cement": 1.0}, 0.05, 0.76, 28.0)
    assert prediction.pass_probability(prediction.ucs_kpa * 0.999) == pytest.approx(1.0)
    assert prediction.pass_probability(prediction.ucs_kpa * 1.001) == pytest.approx(0.0)


@pytest.mark.parametrize("value", [0.3, 1.0, math.nan])
def test_pass_fraction_outside_half_to_one_is_refused(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_example_model().predict({"cement": 1.0}, 0.05, 0.76, 28.0, pass_fraction=value)
    assert caught.value.field == "pass_fraction_pct"


# --- validity on the model's own regressors ---------------------------------------------------


@pytest.mark.parametrize("blend", EXAMPLE_BLENDS)
def test_bw_3_at_cw_72_25_is_below_the_tested_binder_water_ratios(blend: dict[str, float]) -> None:
    # Bw 3 % and Cw 72.25 % are each inside their tested ranges (3-8 %, 72-80 %), but the
    # example never tested Bw 3 % below Cw 76 %: Mb/Mw is 18 % below the tested minimum.
    model = load_example_model()
    stats = model.statistics()
    ratio = binder_water_ratio(0.03, 0.7225)
    assert ratio / math.exp(stats.ln_binder_water_min) == pytest.approx(0.822, abs=0.001)
    low, _ = model.accepted_log_ratio_range()
    assert math.log(ratio) < low
    with pytest.raises(OutsideCalibrationRange) as caught:
        model.predict(blend, 0.03, 0.7225, 28.0)
    assert caught.value.extra["variable"] == "ln_binder_water"
    assert "binder_pct 3" in caught.value.detail
    flagged = model.predict(blend, 0.03, 0.7225, 28.0, allow_extrapolation=True)
    assert flagged.extrapolated
    assert flagged.outside == ("ln_binder_water",)
    # Inside the regressor hull: only the range of ln(Mb/Mw) catches it.
    assert flagged.leverage is not None and flagged.leverage_max is not None
    assert flagged.leverage < flagged.leverage_max


@pytest.mark.parametrize("blend", EXAMPLE_BLENDS)
def test_2_2_days_is_before_the_tested_ages(blend: dict[str, float]) -> None:
    # Tested at 7-56 days: accepted from exp(ln 7 - 0.1 ln 8) = 5.69 days on the ln t scale.
    model = load_example_model()
    low, high = model.accepted_log_days_range()
    assert math.exp(low) == pytest.approx(7 * 8**-0.1)
    assert math.exp(high) == pytest.approx(56 * 8**0.1)
    with pytest.raises(OutsideCalibrationRange) as caught:
        model.predict(blend, 0.05, 0.76, 2.2)
    assert caught.value.extra["variable"] == "ln_curing_days"
    flagged = model.predict(blend, 0.05, 0.76, 2.2, allow_extrapolation=True)
    assert flagged.outside[0] == "ln_curing_days"
    assert flagged.leverage is not None and flagged.leverage_max is not None
    # The pure blends sit at the edge of the tested blends: there 2.2 days also leaves the hull.
    assert ("regressor_hull" in flagged.outside) == (flagged.leverage > flagged.leverage_max)
    assert ("regressor_hull" in flagged.outside) == (blend["slag"] in (0.0, 0.8))


def test_no_tested_cylinder_is_flagged() -> None:
    model = load_example_model()
    from importlib import resources

    from service.core.strength_model import parse_calibration_csv

    text = resources.files("service.core.data").joinpath("example_calibration.csv").read_text()
    for row in parse_calibration_csv(text):
        prediction = model.predict(
            row.blend, row.binder_ratio, row.solids_fraction, row.curing_days
        )
        assert not prediction.extrapolated
        assert prediction.leverage is not None
        assert prediction.leverage <= model.statistics().leverage_max * (1 + 1e-9)


def test_hidden_extrapolation_is_caught_by_the_leverage() -> None:
    # Two regressors tested only together: u high with t late, u low with t early. The
    # corner (u low, t late) is inside both ranges but outside the tested combinations.
    rows = []
    rng = np.random.default_rng(5)
    for bw, days in [
        (0.03, 7.0),
        (0.04, 7.0),
        (0.04, 14.0),
        (0.06, 28.0),
        (0.08, 56.0),
        (0.08, 28.0),
    ]:
        for cw in (0.74, 0.76, 0.78):
            ucs = 900 * (binder_water_ratio(bw, cw) / 0.15) ** 1.4 * (days / 28) ** 0.3
            rows.append(
                CylinderResult({"cement": 1.0}, bw, cw, days, ucs * math.exp(0.05 * rng.normal()))
            )
    model = fit_strength_model(rows)
    corner = model.predict({"cement": 1.0}, 0.035, 0.76, 56.0, allow_extrapolation=True)
    assert corner.outside == ("regressor_hull",)
    with pytest.raises(OutsideCalibrationRange) as caught:
        model.predict({"cement": 1.0}, 0.035, 0.76, 56.0)
    assert caught.value.extra["variable"] == "regressor_hull"
    assert not model.predict({"cement": 1.0}, 0.06, 0.76, 28.0).extrapolated


# --- the closed-form design --------------------------------------------------------------------


def brute_force_low(
    a: float, n: float, q0: float, q1: float, q2: float, log_r: float, k: float
) -> float:
    grid = np.linspace(-20.0, 20.0, 400_001)
    ok = n * grid + a - log_r >= k * np.sqrt(1 + q0 + 2 * q1 * grid + q2 * grid**2)
    return float(grid[np.argmax(ok)]) if ok.any() else math.inf


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(-5, 5),
    n=st.floats(0.3, 3.0),
    centre=st.floats(-3, 3),
    q2=st.floats(0.001, 0.5),
    extra=st.floats(0.0, 0.3),
    log_r=st.floats(-3, 3),
    k=st.floats(0.0, 1.0),
)
def test_closed_form_design_is_the_smallest_passing_log_ratio(
    a: float, n: float, centre: float, q2: float, extra: float, log_r: float, k: float
) -> None:
    # h(u) = q2 (u - centre)^2 + extra >= 0, as a leverage is.
    q1 = -q2 * centre
    q0 = q2 * centre**2 + extra
    low, high = reliability.log_ratio_interval_for_lower_bound(
        np.array([a]), n, np.array([q0]), np.array([q1]), q2, log_r, k
    )
    expected = brute_force_low(a, n, q0, q1, q2, log_r, k)
    if n * n > k * k * q2:
        assert high[0] == math.inf
        if math.isinf(expected):  # beyond the brute-force grid
            assert low[0] > 20.0 - 1e-4
        elif expected <= -20.0:  # the grid's first point passes: the root lies below it
            assert low[0] <= -20.0 + 1e-4
        else:
            assert low[0] == pytest.approx(expected, abs=2e-4)
        # On the root the lower bound equals the requirement.
        u = low[0]
        assert n * u + a - log_r == pytest.approx(
            k * math.sqrt(1 + q0 + 2 * q1 * u + q2 * u * u), abs=1e-9
        )
    elif math.isfinite(low[0]):
        assert low[0] == pytest.approx(expected, abs=2e-4)


def test_when_the_spread_outgrows_the_median_the_passing_set_is_bounded() -> None:
    # A = n^2 - k^2 q2 < 0: the bound rises, then falls; only an interval passes.
    n, k, q2 = 1.0, 2.0, 0.5
    a, q0, q1, log_r = 10.0, 0.1, 0.0, 0.0
    low, high = reliability.log_ratio_interval_for_lower_bound(
        np.array([a]), n, np.array([q0]), np.array([q1]), q2, log_r, k
    )
    assert math.isfinite(low[0]) and math.isfinite(high[0]) and low[0] < high[0]
    for u, inside in [(low[0] + 1e-6, True), (high[0] - 1e-6, True), (high[0] + 1e-3, False)]:
        passes = n * u + a - log_r >= k * math.sqrt(1 + q0 + 2 * q1 * u + q2 * u * u)
        assert passes == inside
    assert low[0] == pytest.approx(brute_force_low(a, n, q0, q1, q2, log_r, k), abs=2e-4)
    # Far too strong a requirement: nothing passes.
    empty_low, empty_high = reliability.log_ratio_interval_for_lower_bound(
        np.array([a]), n, np.array([q0]), np.array([q1]), q2, 100.0, k
    )
    assert empty_low[0] == math.inf and empty_high[0] == -math.inf


def test_median_design_is_the_inverse_of_the_median() -> None:
    low, high = reliability.log_ratio_interval_for_lower_bound(
        np.array([7.0]), 1.4, np.array([0.02]), np.array([0.01]), 0.1, math.log(500.0), 0.0
    )
    assert low[0] == pytest.approx((math.log(500.0) - 7.0) / 1.4)
    assert high[0] == math.inf


def test_hull_interval_ends_on_the_largest_leverage() -> None:
    q0, q1, q2, h_max = np.array([0.05, 0.5]), np.array([-0.02, 0.0]), 0.1, 0.08
    low, high = reliability.log_ratio_interval_inside_hull(q0, q1, q2, h_max)
    for end in (low[0], high[0]):
        assert q0[0] + 2 * q1[0] * end + q2 * end * end == pytest.approx(h_max)
    assert low[1] == math.inf and high[1] == -math.inf  # never inside
