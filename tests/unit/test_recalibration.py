"""Recalibration proposals from the lab's results."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from service.core import compliance as cp
from service.core import recalibration as rc
from service.core.lab import make_lab_result
from service.core.strength_model import CylinderResult, fit_strength_model
from service.errors import CalibrationRejected, InvalidInput
from tests.unit.test_compliance import BLEND, CAST, plan, result_of, synthetic_rows


def test_recalibration_reports_the_old_models_error_on_the_new_results() -> None:
    old_rows = synthetic_rows(seed=1)
    current = fit_strength_model(old_rows)
    new_rows = synthetic_rows(seed=2, shift=0.2)  # the new cylinders are 22 % stronger
    proposal = rc.propose_recalibration(current, old_rows, new_rows, label="v2")
    assert proposal.n_old == len(old_rows) and proposal.n_new == len(new_rows)
    assert len(proposal.rows) == len(old_rows) + len(new_rows)
    assert proposal.model.label == "v2"
    error = proposal.old_model_on_new
    assert error.n == len(new_rows) and error.n_not_predictable == 0
    assert error.bias_log == pytest.approx(0.2, abs=0.03)
    assert error.bias_kpa is not None and error.bias_kpa > 0.0
    assert error.rmse_log is not None and error.rmse_log >= abs(error.bias_log)
    assert error.bias_p_value is not None and error.bias_p_value < 1e-6
    # The old model's lower bound at 90 % is passed by nearly every new cylinder.
    assert error.above_lower_fraction is not None and error.above_lower_fraction > 0.97
    changes = {c.term: c for c in proposal.changes}
    assert set(changes) == set(current.terms)
    assert changes["intercept"].change is not None and changes["intercept"].change > 0.0
    assert changes["ln_binder_water"].change == pytest.approx(0.0, abs=0.1)
    # Half the rows moved up by e^0.2: the refit's median sits about e^0.1 higher.
    mix = (BLEND, 0.05, 0.74, 28.0)
    ratio = proposal.model.predict(*mix).ucs_kpa / current.predict(*mix).ucs_kpa
    assert ratio == pytest.approx(math.exp(0.1), abs=0.03)
    # The refit explains less (two populations) but is unbiased on the new rows.
    assert proposal.r2_log_after < proposal.r2_log_before
    assert proposal.residual_sd_log_after is not None
    assert proposal.residual_sd_log_before is not None
    assert proposal.residual_sd_log_after > proposal.residual_sd_log_before
    new_error = proposal.new_model_on_new
    assert new_error.bias_log is not None and abs(new_error.bias_log) < abs(error.bias_log)


def test_recalibration_without_a_shift_changes_little() -> None:
    old_rows = synthetic_rows(seed=3)
    current = fit_strength_model(old_rows)
    proposal = rc.propose_recalibration(current, old_rows, synthetic_rows(seed=4))
    error = proposal.old_model_on_new
    assert error.bias_log is not None and abs(error.bias_log) < 0.03
    assert error.bias_p_value is not None and error.bias_p_value > 0.01
    assert error.above_lower_fraction is not None and 0.75 <= error.above_lower_fraction <= 1.0
    assert all(abs(c.change or 0.0) < 0.1 for c in proposal.changes)


def test_a_new_binder_brings_new_terms_and_unpredictable_rows() -> None:
    old_rows = synthetic_rows(seed=5)
    current = fit_strength_model(old_rows)
    new_rows = [
        CylinderResult(
            blend={"cement": 0.5, "slag": 0.3, "flyash": 0.2},
            binder_ratio=bw,
            solids_fraction=cw,
            curing_days=days,
            ucs_kpa=300.0 * (bw / 0.05) ** 1.5 * (days / 28) ** 0.4 * (1.0 + 0.02 * i),
        )
        for i, (bw, cw, days) in enumerate(
            (bw, cw, d) for bw in (0.04, 0.06) for cw in (0.72, 0.76) for d in (7.0, 28.0)
        )
    ]
    proposal = rc.propose_recalibration(current, old_rows, new_rows)
    assert proposal.old_model_on_new.n_not_predictable == len(new_rows)
    assert proposal.old_model_on_new.n == 0 and proposal.old_model_on_new.rmse_log is None
    added = [c for c in proposal.changes if c.before is None]
    assert "blend:flyash" in {c.term for c in added}
    assert all(c.change is None for c in added)
    assert proposal.new_model_on_new.n == len(new_rows)


def test_recalibration_refuses_rows_that_are_not_the_calibrations() -> None:
    old_rows = synthetic_rows(seed=6)
    current = fit_strength_model(old_rows)
    with pytest.raises(CalibrationRejected):
        rc.propose_recalibration(current, synthetic_rows(seed=7), synthetic_rows(seed=8))
    with pytest.raises(CalibrationRejected):
        rc.propose_recalibration(current, old_rows, [])


def test_prediction_error_flags_extrapolated_rows() -> None:
    model = fit_strength_model(synthetic_rows(seed=9))
    far = CylinderResult(
        blend=BLEND, binder_ratio=0.2, solids_fraction=0.85, curing_days=90.0, ucs_kpa=5000.0
    )
    error = rc.prediction_error(model, [far])
    assert error.n == 1 and error.n_extrapolated == 1
    assert error.bias_t is None  # one result: no t test
    with pytest.raises(InvalidInput):
        rc.prediction_error(model, [far], pass_fraction=1.0)


def test_lab_results_become_calibration_rows() -> None:
    plans = [plan("A"), plan("B"), cp.SamplePlan("C", "P-9", "S-9", CAST, (28.0,))]
    results = [
        make_lab_result(
            "A",
            CAST,
            tested_at=CAST + timedelta(days=28, hours=12),
            ucs_kpa=320.0,
            wet_mass_g=400.0,
            dry_mass_g=304.0,
        ),
        result_of("B", 28, 300.0),
        result_of("B", 7, 0.0),
        result_of("C", 28, 310.0),
        result_of("Z", 28, 310.0),
        make_lab_result("A", CAST, curing_days=7, wet_mass_g=400.0, dry_mass_g=300.0),
    ]
    rows, skipped = rc.cylinder_rows(plans, results)
    assert [(r.sample_id, r.solids_fraction, r.curing_days) for r in rows] == [
        ("A", pytest.approx(0.76), pytest.approx(28.5)),
        ("B", 0.75, 28.0),
    ]
    assert rows[0].blend == BLEND and rows[0].binder_ratio == 0.05
    assert {(s.sample_id, s.reason.split()[0]) for s in skipped} == {
        ("B", "UCS"),
        ("C", "the"),
        ("Z", "no"),
        ("A", "no"),
    }
    rows, _ = rc.cylinder_rows(plans, results, prefer_lab_solids=False)
    assert rows[0].solids_fraction == 0.75
