"""The site-calibrated UCS model: fitting, refusals, range checks, storage."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.strength_model import (
    CylinderResult,
    StrengthModel,
    binder_water_ratio,
    fit_strength_model,
    load_example_model,
    parse_calibration_csv,
)
from service.errors import CalibrationRejected, InvalidInput, OutsideCalibrationRange

TRUE = {"b0": 9.0, "b_slag": 0.1, "n": 1.5, "c0": 0.3, "c_slag": 0.4}


def synthetic_rows(noise: float = 0.0, seed: int = 1) -> list[CylinderResult]:
    rng = np.random.default_rng(seed)
    rows = []
    for slag in (0.0, 0.4, 0.8):
        for bw in (0.03, 0.05, 0.08):
            for cw in (0.72, 0.76, 0.80):
                for days in (7.0, 28.0, 56.0):
                    log_ucs = (
                        TRUE["b0"]
                        + TRUE["b_slag"] * slag
                        + TRUE["n"] * math.log(binder_water_ratio(bw, cw))
                        + (TRUE["c0"] + TRUE["c_slag"] * slag) * math.log(days / 28)
                        + noise * rng.normal()
                    )
                    rows.append(
                        CylinderResult(
                            blend={"cement": 1 - slag, "slag": slag},
                            binder_ratio=bw,
                            solids_fraction=cw,
                            curing_days=days,
                            ucs_kpa=math.exp(log_ucs),
                        )
                    )
    return rows


def test_fit_recovers_noise_free_coefficients() -> None:
    model = fit_strength_model(synthetic_rows())
    assert model.reference_component == "cement"
    assert model.components == ("cement", "slag")
    assert model.intercept == pytest.approx(TRUE["b0"])
    assert model.blend_coefficients == pytest.approx((0.0, TRUE["b_slag"]))
    assert model.binder_water_exponent == pytest.approx(TRUE["n"])
    assert model.time_coefficient == pytest.approx(TRUE["c0"])
    assert model.time_blend_coefficients == pytest.approx((0.0, TRUE["c_slag"]))
    assert model.fit.r2_log == pytest.approx(1.0)
    assert model.fit.r2_kpa == pytest.approx(1.0)
    assert model.fit.n_rows == 81
    assert model.fit.n_parameters == 5
    assert max(abs(r) for r in model.fit.residuals_kpa) < 1e-6
    assert model.binder_ratio_range.minimum == 0.03
    assert model.binder_ratio_range.maximum == 0.08
    assert model.curing_days_range.maximum == 56.0
    assert model.fraction_ranges[1].maximum == 0.8


def test_fit_reports_residuals_per_row() -> None:
    rows = synthetic_rows(noise=0.05)
    model = fit_strength_model(rows)
    assert len(model.fit.residuals_kpa) == len(rows)
    for row, predicted, residual in zip(
        rows, model.fit.predicted_kpa, model.fit.residuals_kpa, strict=True
    ):
        assert row.ucs_kpa - predicted == pytest.approx(residual)
    assert 0.9 < model.fit.r2_log < 1.0
    assert model.fit.rmse_log == pytest.approx(0.05, rel=0.3)


def test_a_component_the_data_do_not_vary_is_dropped() -> None:
    rows = [
        CylinderResult(
            {"cement": 0.5, "slag": 0.5},
            r.binder_ratio,
            r.solids_fraction,
            r.curing_days,
            r.ucs_kpa,
        )
        for r in synthetic_rows()
        if r.blend["slag"] == 0.0
    ]
    model = fit_strength_model(rows)
    assert "blend:slag" not in model.terms
    assert any(term.startswith("blend:slag") for term in model.dropped_terms)
    assert model.fraction_ranges[1].minimum == model.fraction_ranges[1].maximum == 0.5
    with pytest.raises(OutsideCalibrationRange) as caught:
        model.predict({"cement": 1.0}, 0.05, 0.76, 28)
    assert caught.value.extra["variable"].startswith("binder.")


def test_single_age_data_drop_the_time_terms() -> None:
    rows = [r for r in synthetic_rows() if r.curing_days == 28.0]
    model = fit_strength_model(rows)
    assert "ln_time" not in model.terms
    assert model.time_coefficient == 0.0
    with pytest.raises(OutsideCalibrationRange) as caught:
        model.predict({"cement": 1.0}, 0.05, 0.76, 56)
    assert caught.value.extra["variable"] == "ln_curing_days"


def test_refuses_too_few_rows() -> None:
    with pytest.raises(CalibrationRejected, match="too few rows"):
        fit_strength_model(synthetic_rows()[::17])


def test_refuses_no_rows() -> None:
    with pytest.raises(CalibrationRejected):
        fit_strength_model([])


@pytest.mark.parametrize("ucs", [0.0, -10.0])
def test_refuses_a_non_positive_ucs(ucs: float) -> None:
    rows = synthetic_rows()
    bad = rows[3]
    rows[3] = CylinderResult(bad.blend, bad.binder_ratio, bad.solids_fraction, bad.curing_days, ucs)
    with pytest.raises(CalibrationRejected, match=r"rows\[3\]\.ucs_kpa"):
        fit_strength_model(rows)


def test_refuses_a_non_positive_exponent() -> None:
    rows = [
        CylinderResult(r.blend, r.binder_ratio, r.solids_fraction, r.curing_days, 1e4 / r.ucs_kpa)
        for r in synthetic_rows()
    ]
    with pytest.raises(CalibrationRejected, match="exponent"):
        fit_strength_model(rows)


def test_refuses_a_constant_binder_water_ratio() -> None:
    rows = [r for r in synthetic_rows() if r.binder_ratio == 0.05 and r.solids_fraction == 0.76]
    with pytest.raises(CalibrationRejected, match="Mb/Mw"):
        fit_strength_model(rows)


def test_refuses_time_collinear_with_binder_water_ratio() -> None:
    rows = [
        r
        for r in synthetic_rows()
        if (r.binder_ratio, r.curing_days) in {(0.03, 7.0), (0.08, 56.0)}
        and r.solids_fraction == 0.76
    ]
    with pytest.raises(CalibrationRejected, match="degenerate"):
        fit_strength_model(rows)


def test_refuses_strength_falling_with_time() -> None:
    rows = [
        CylinderResult(
            r.blend,
            r.binder_ratio,
            r.solids_fraction,
            r.curing_days,
            r.ucs_kpa * (28.0 / r.curing_days) ** 0.6,
        )
        for r in synthetic_rows()
    ]
    with pytest.raises(CalibrationRejected, match="curing time"):
        fit_strength_model(rows)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"binder_ratio": math.nan}, "rows[0].binder_pct"),
        ({"solids_fraction": 1.0}, "rows[0].solids_pct"),
        ({"curing_days": -7.0}, "rows[0].curing_days"),
        ({"ucs_kpa": math.nan}, "rows[0].ucs_kpa"),
        ({"blend": {"cement": 0.5}}, "rows[0].blend"),
        ({"blend": {"cement": 1.5, "slag": -0.5}}, "rows[0].blend.cement"),
    ],
)
def test_bad_rows_name_the_field(change: dict[str, object], field: str) -> None:
    rows = synthetic_rows()
    first = rows[0]
    values: dict[str, object] = {
        "blend": first.blend,
        "binder_ratio": first.binder_ratio,
        "solids_fraction": first.solids_fraction,
        "curing_days": first.curing_days,
        "ucs_kpa": first.ucs_kpa,
        **change,
    }
    rows[0] = CylinderResult(**values)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as caught:
        fit_strength_model(rows)
    assert caught.value.field == field


# --- prediction ----------------------------------------------------------------------------


def test_predict_refuses_outside_the_range_and_flags_when_allowed() -> None:
    model = fit_strength_model(synthetic_rows())
    # Bw 12 % at Cw 80 %: Mb/Mw 0.45, far above the tested 0.3.
    with pytest.raises(OutsideCalibrationRange) as caught:
        model.predict({"cement": 1.0}, 0.12, 0.80, 28)
    assert caught.value.extra["variable"] == "ln_binder_water"
    assert caught.value.code == "outside_calibration_range"
    assert caught.value.extra["accepted_max"] == pytest.approx(
        math.log(binder_water_ratio(0.08, 0.80))
        + 0.1 * math.log(binder_water_ratio(0.08, 0.80) / binder_water_ratio(0.03, 0.72))
    )
    flagged = model.predict({"cement": 1.0}, 0.12, 0.80, 28, allow_extrapolation=True)
    assert flagged.extrapolated
    assert flagged.outside[0] == "ln_binder_water"
    assert flagged.outside_details[0].variable == "ln_binder_water"
    # Bw 12 % is outside the tested 3-8 % taken alone, but at Cw 72 % its Mb/Mw (0.19)
    # was tested: the model is valid there.
    assert not model.predict({"cement": 1.0}, 0.12, 0.72, 28).extrapolated
    # Within 10 % of the span of ln(Mb/Mw) beyond the data: accepted, not flagged.
    edge = math.log(binder_water_ratio(0.08, 0.80)) + 0.05 * math.log(
        binder_water_ratio(0.08, 0.80) / binder_water_ratio(0.03, 0.72)
    )
    share = math.exp(edge) * 0.2 / 0.8
    near = model.predict({"cement": 1.0}, share / (1 - share), 0.80, 28)
    assert not near.extrapolated


def test_predict_refuses_a_binder_without_data_even_when_extrapolating() -> None:
    model = fit_strength_model(synthetic_rows())
    with pytest.raises(OutsideCalibrationRange):
        model.predict({"cement": 0.9, "flyash": 0.1}, 0.05, 0.76, 28, allow_extrapolation=True)
    # A zero fraction of an unknown binder is harmless.
    model.predict({"cement": 1.0, "flyash": 0.0}, 0.05, 0.76, 28)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (({"cement": 1.0}, math.nan, 0.76, 28.0), "binder_pct"),
        (({"cement": 1.0}, 0.05, math.inf, 28.0), "solids_pct"),
        (({"cement": 1.0}, 0.05, 0.76, 0.0), "curing_days"),
        (({"cement": 0.7}, 0.05, 0.76, 28.0), "blend"),
    ],
)
def test_predict_bad_input_names_the_field(
    args: tuple[dict[str, float], float, float, float], field: str
) -> None:
    model = fit_strength_model(synthetic_rows())
    with pytest.raises(InvalidInput) as caught:
        model.predict(*args)
    assert caught.value.field == field


blends = st.floats(0.0, 0.8).map(lambda slag: {"cement": 1.0 - slag, "slag": slag})


@settings(max_examples=200)
@given(blends, st.floats(0.01, 0.2), st.floats(0.0, 0.1), st.floats(0.6, 0.85), st.floats(3, 90))
def test_more_binder_never_predicts_less_strength(
    blend: dict[str, float], bw: float, extra: float, cw: float, days: float
) -> None:
    model = load_example_model()
    low = model.predict(blend, bw, cw, days, allow_extrapolation=True)
    high = model.predict(blend, bw + extra, cw, days, allow_extrapolation=True)
    assert high.ucs_kpa >= low.ucs_kpa


@settings(max_examples=200)
@given(blends, st.floats(150.0, 2000.0), st.floats(0.72, 0.80), st.sampled_from([7, 14, 28, 56]))
def test_binder_ratio_for_ucs_inverts_predict(
    blend: dict[str, float], target: float, cw: float, days: int
) -> None:
    model = load_example_model()
    bw = model.binder_ratio_for_ucs(target, blend, cw, days)
    if math.isinf(bw):
        return
    predicted = model.predict(blend, bw, cw, days, allow_extrapolation=True)
    assert predicted.ucs_kpa == pytest.approx(target, rel=1e-9)
    grid = model.binder_ratio_for_ucs_grid(
        target,
        np.array([[blend["cement"], blend["slag"]]]),
        np.array([cw]),
        days,
    )
    assert grid[0, 0] == pytest.approx(bw, rel=1e-12)


def test_unreachable_strength_gives_infinite_bw() -> None:
    model = load_example_model()
    assert math.isinf(model.binder_ratio_for_ucs(1e6, {"cement": 1.0}, 0.5, 7))


# --- storage and the shipped example -------------------------------------------------------


def test_round_trips_through_json() -> None:
    model = fit_strength_model(synthetic_rows(noise=0.05), label="site A")
    stored = json.loads(json.dumps(model.to_dict()))
    assert "regression" in stored
    assert StrengthModel.from_dict(stored) == model


def test_a_dict_stored_before_the_statistics_is_completed_from_its_rows() -> None:
    rows = synthetic_rows(noise=0.05)
    model = fit_strength_model(rows, label="site A")
    old = json.loads(json.dumps(model.to_dict()))
    del old["regression"]
    with pytest.raises(CalibrationRejected, match="no laboratory rows"):
        StrengthModel.from_dict(old)
    assert StrengthModel.from_dict(old, rows=rows) == model
    # Rows that do not reproduce the stored coefficients are refused.
    other = synthetic_rows(noise=0.05, seed=2)
    with pytest.raises(CalibrationRejected, match="do not reproduce"):
        StrengthModel.from_dict(old, rows=other)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("coefficients"),
        lambda d: d.update(form="other"),
        lambda d: d["coefficients"].update(binder_water_exponent=-1.0),
        lambda d: d["coefficients"].update(intercept="nan"),
        lambda d: d["range"].update(binder_ratio=[0.03]),
        lambda d: d["regression"].update(degrees_of_freedom=0),
        lambda d: d["regression"].update(unscaled_covariance=[[1.0]]),
        lambda d: d["regression"].update(leverage_max=1.5),
        lambda d: d.update(terms=["intercept", "ln_time"]),
    ],
)
def test_malformed_stored_model_is_rejected(damage: object) -> None:
    stored = load_example_model().to_dict()
    damage(stored)  # type: ignore[operator]
    with pytest.raises(CalibrationRejected):
        StrengthModel.from_dict(stored)


def test_example_csv_says_it_is_synthetic_on_its_first_line() -> None:
    text = resources.files("service.core.data").joinpath("example_calibration.csv").read_text()
    first = text.splitlines()[0]
    assert first.startswith("#")
    assert "SYNTHETIC" in first.upper()
    assert "NOT FOR DESIGN" in first.upper()


def test_example_model_is_labelled_and_plausible() -> None:
    model = load_example_model()
    assert "EXAMPLE" in model.label
    assert "not for design" in model.label
    assert model.fit.r2_log > 0.9
    assert model.fit.n_rows >= 100
    assert min(model.fit.predicted_kpa) > 100
    assert max(model.fit.predicted_kpa) < 3000
    cement = {"cement": 1.0, "slag": 0.0}
    slag = {"cement": 0.2, "slag": 0.8}
    at = (0.05, 0.76)
    assert model.predict(slag, *at, 7).ucs_kpa < model.predict(cement, *at, 7).ucs_kpa
    assert model.predict(slag, *at, 56).ucs_kpa >= model.predict(cement, *at, 56).ucs_kpa


def test_csv_parse_errors_name_the_row_and_column() -> None:
    text = "cement_fraction_pct,binder_pct,solids_pct,curing_days,ucs_kpa\n100,5,76,28,abc\n"
    with pytest.raises(InvalidInput) as caught:
        parse_calibration_csv(text)
    assert caught.value.field == "rows[0].ucs_kpa"
    with pytest.raises(InvalidInput) as caught:
        parse_calibration_csv("cement_fraction_pct,binder_pct\n100,5\n")
    assert caught.value.field == "csv"
