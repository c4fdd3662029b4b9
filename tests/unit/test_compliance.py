"""Compliance with the strength requirements, notices, and recalibration proposals."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core import compliance as cp
from service.core.lab import LabResult, make_lab_result
from service.core.strength_model import CylinderResult, binder_water_ratio, fit_strength_model
from service.errors import InvalidInput

CAST = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BODY = cp.Requirement("body", 300.0, 28.0, design_pass_fraction=0.9)
PLUG = cp.Requirement("plug", 150.0, 7.0, design_pass_fraction=0.9)
BLEND = {"cement": 0.3, "slag": 0.7}


# --- intervals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "wilson", "exact"),
    [
        # Newcombe, R.G. (1998), Stat. Med. 17:857-872, Table I.
        (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
        (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
        (0, 20, (0.0, 0.1611), (0.0, 0.1684)),
        (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
    ],
)
def test_intervals_match_published_values(
    k: int, n: int, wilson: tuple[float, float], exact: tuple[float, float]
) -> None:
    assert cp.wilson_interval(k, n) == pytest.approx(wilson, abs=1e-4)
    assert cp.clopper_pearson_interval(k, n) == pytest.approx(exact, abs=1e-4)


@given(n=st.integers(1, 200), data=st.data())
def test_intervals_hold_the_observed_fraction(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    for low, high in (cp.wilson_interval(k, n), cp.clopper_pearson_interval(k, n)):
        assert 0.0 <= low <= k / n <= high <= 1.0


def test_the_exact_interval_covers_at_least_its_confidence() -> None:
    rng = np.random.default_rng(1)
    for p, n in ((0.9, 12), (0.5, 30), (0.95, 40)):
        draws = rng.binomial(n, p, size=4000)
        covered = np.mean(
            [lo <= p <= hi for lo, hi in (cp.clopper_pearson_interval(int(k), n) for k in draws)]
        )
        assert covered >= 0.94


def test_binomial_at_most_is_the_binomial_sum() -> None:
    expected = sum(math.comb(10, i) * 0.9**i * 0.1 ** (10 - i) for i in range(6))
    assert cp.binomial_at_most(5, 10, 0.9) == pytest.approx(expected)
    assert cp.binomial_at_most(10, 10, 0.9) == 1.0
    with pytest.raises(InvalidInput):
        cp.binomial_at_most(11, 10, 0.9)
    with pytest.raises(InvalidInput):
        cp.wilson_interval(1, 2, confidence=1.0)


# --- assessment ---------------------------------------------------------------------------


def plan(
    sample_id: str,
    pour_id: str = "P-1",
    stope_id: str = "S-101",
    *,
    stage_id: str | None = "body",
    requirements: tuple[cp.Requirement, ...] = (BODY,),
    ages: tuple[float, ...] = (7.0, 28.0),
    cast_at: datetime = CAST,
) -> cp.SamplePlan:
    return cp.SamplePlan(
        sample_id=sample_id,
        pour_id=pour_id,
        stope_id=stope_id,
        stage_id=stage_id,
        cast_at=cast_at,
        test_ages_days=ages,
        requirements=requirements,
        blend=BLEND,
        binder_ratio=0.05,
        solids_fraction=0.75,
    )


def result_of(sample_id: str, days: float, ucs: float, **kwargs: float) -> LabResult:
    return make_lab_result(sample_id, CAST, curing_days=days, ucs_kpa=ucs, **kwargs)  # type: ignore[arg-type]


NOW = CAST + timedelta(days=29)


def test_each_cylinder_at_the_requirement_age_passes_or_fails() -> None:
    plans = [plan("A"), plan("B")]
    results = [
        result_of("A", 28, 320.0),
        result_of("B", 28, 280.0),
        result_of("A", 7, 90.0),  # an early age: not judged against the 28-day requirement
        result_of("B", 7, 100.0),
    ]
    report = cp.assess_compliance(plans, results, NOW)
    judged = {(j.sample_id, j.requirement): j for j in report.judgements}
    assert set(judged) == {("A", "body"), ("B", "body")}
    assert judged[("A", "body")].passed and judged[("A", "body")].margin_kpa == 20.0
    assert not judged[("B", "body")].passed and judged[("B", "body")].margin_kpa == -20.0
    # One low cylinder of a 90 % design is expected: information, not an alarm.
    low = [n for n in report.notices if n.kind == "low_cylinder"]
    assert [(n.sample_id, n.severity) for n in low] == [("B", cp.NoticeSeverity.INFO)]
    assert "280 kPa" in low[0].detail and "300 kPa" in low[0].detail
    assert "expects 10 %" in low[0].detail
    # A and B were cast together: one test, their mean 300 kPa, which passes.
    (test,) = report.tests
    assert (test.sample_ids, test.strength_kpa, test.below_requirement) == (("A", "B"), 300, False)
    assert all(n.severity is cp.NoticeSeverity.INFO for n in report.notices)


def test_a_cylinder_too_weak_to_test_fails() -> None:
    report = cp.assess_compliance([plan("A")], [result_of("A", 28, 0.0)], NOW)
    assert [j.passed for j in report.judgements] == [False]


def test_the_age_tolerance_decides_which_requirement_a_result_meets() -> None:
    config = cp.ComplianceConfig(age_tolerance_fraction=0.1, age_tolerance_min_days=0.5)
    plans = [plan("A", requirements=(PLUG, BODY))]
    results = [result_of("A", 7.5, 200.0), result_of("A", 31.0, 350.0), result_of("A", 30.5, 320.0)]
    report = cp.assess_compliance(plans, results, NOW + timedelta(days=5), config)
    assert sorted((j.requirement, j.ucs_kpa) for j in report.judgements) == [
        ("body", 320.0),  # 30.5 is within 2.8 days of 28; 31 is not
        ("plug", 200.0),
    ]


def casts(prefix: str, pour: str, count: int, **kwargs: object) -> list[cp.SamplePlan]:
    """``count`` cylinders of ``pour``, each cast on its own (an hour apart)."""
    return [
        plan(f"{prefix}{i}", pour, cast_at=CAST + timedelta(hours=i), **kwargs)  # type: ignore[arg-type]
        for i in range(count)
    ]


def test_pass_fractions_roll_up_by_sample_pour_stage_and_stope() -> None:
    plans = casts("A", "P-1", 5) + casts("B", "P-2", 5)
    results = [result_of(f"A{i}", 28, 350.0) for i in range(5)]
    results += [result_of(f"B{i}", 28, 350.0 if i < 2 else 250.0) for i in range(5)]
    report = cp.assess_compliance(plans, results, NOW)
    p1 = report.pass_fraction("pour", "P-1", "body")
    p2 = report.pass_fraction("pour", "P-2", "body")
    stope = report.pass_fraction("stope", "S-101", "body")
    stage = report.pass_fraction("stage", "body", "body")
    assert p1 is not None and (p1.passed, p1.n) == (5, 5)
    assert p2 is not None and (p2.passed, p2.n, p2.clusters) == (2, 5, 5)
    assert stope is not None and (stope.passed, stope.n, stope.clusters) == (7, 10, 2)
    assert stage is not None and (stage.passed, stage.n) == (7, 10)
    # Five casts of one cylinder each: independent, the design effect is 1.
    assert p2.design_effect == 1.0 and p2.effective_n == 5.0
    assert p2.low == pytest.approx(cp.wilson_interval(2, 5)[0])
    assert p2.p_at_most == pytest.approx(cp.binomial_at_most(2, 5, 0.9))
    # Two of five against a 90 % design: the interval (12-77 %) lies below 90 %.
    assert p2.verdict == "below_design"
    assert p1.verdict == "consistent"  # 5/5 cannot show more than 90 % yet
    below = [n for n in report.notices if n.kind == "below_design"]
    assert {(n.pour_id, n.stope_id) for n in below} >= {("P-2", None)}
    assert all(n.severity is cp.NoticeSeverity.HIGH for n in below)
    # The stope's cylinders cluster by pour: P-1 all passed, P-2 mostly failed, so the
    # ten cylinders weigh as about two pours' worth, not ten independent ones.
    assert stope.design_effect == pytest.approx(cp.design_effect([(5, 5), (5, 2)]))
    assert 1.0 < stope.design_effect <= 5.0
    assert stope.effective_n == pytest.approx(10 / stope.design_effect)
    assert stope.low == pytest.approx(
        cp.wilson_interval(7 / stope.design_effect, stope.effective_n)[0]
    )
    assert stope.verdict == "consistent"
    # Sample groups are listed but not given notices (one or two cylinders prove little).
    sample = report.pass_fraction("sample", "B4", "body")
    assert sample is not None and sample.verdict == "below_design"
    assert not any(n.kind == "below_design" and n.sample_id for n in report.notices)
    assert p2.to_dict()["pass_pct"] == pytest.approx(40.0)
    assert p2.to_dict()["effective_n"] == 5.0


def test_cylinders_of_one_cast_are_one_observation_of_the_pour() -> None:
    # Five cylinders cast together share their paste: 2 of 5 passing says little about
    # the pour's pass fraction, while the test (their mean) is judged by acceptance.
    plans = [plan(f"C{i}", "P-3") for i in range(5)]
    results = [result_of(f"C{i}", 28, 350.0 if i < 2 else 250.0) for i in range(5)]
    report = cp.assess_compliance(plans, results, NOW)
    pour = report.pass_fraction("pour", "P-3", "body")
    assert pour is not None and (pour.n, pour.clusters, pour.design_effect) == (5, 1, 5.0)
    assert pour.effective_n == 1.0 and pour.verdict == "consistent"
    (test,) = report.tests
    assert test.strength_kpa == pytest.approx(290.0) and test.below_requirement
    assert not test.gross_low  # 290 is above 75 % of 300
    assert not any(n.severity is cp.NoticeSeverity.HIGH for n in report.notices)


def test_the_design_effect_lies_between_independence_and_one_per_cluster() -> None:
    assert cp.design_effect([(1, 1), (1, 0), (1, 1)]) == 1.0
    assert cp.design_effect([(4, 4), (4, 0)]) == 4.0  # all or nothing per cluster
    assert cp.design_effect([(4, 4), (4, 4)]) == 4.0  # not estimable: one per cluster
    assert cp.design_effect([(6, 3)]) == 6.0
    assert 1.0 < cp.design_effect([(4, 4), (4, 3), (4, 1), (4, 0)]) < 4.0


def test_many_passes_are_above_the_design_and_no_design_is_said() -> None:
    median = cp.Requirement("median", 300.0, 28.0)
    plans = casts("A", "P-1", 60, requirements=(BODY, median))
    results = [result_of(f"A{i}", 28, 400.0) for i in range(60)]
    report = cp.assess_compliance(plans, results, NOW)
    pour = report.pass_fraction("pour", "P-1", "body")
    assert pour is not None and pour.verdict == "above_design"
    free = report.pass_fraction("pour", "P-1", "median")
    assert free is not None and free.verdict == "no_design" and free.p_at_most is None


def test_groups_without_results_are_listed() -> None:
    report = cp.assess_compliance([plan("A")], [], CAST + timedelta(days=1))
    entry = report.pass_fraction("pour", "P-1", "body")
    assert entry is not None and entry.verdict == "no_results" and entry.fraction is None
    assert report.notices == ()


def test_overdue_tests_after_the_grace() -> None:
    plans = [plan("A"), plan("B")]
    results = [result_of("A", 7, 150.0)]
    config = cp.ComplianceConfig(overdue_grace_days=2.0)
    # Day 8.9: B's 7-day test is due since day 7 but within the grace.
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=8.9), config)
    assert not [n for n in report.notices if n.kind == "overdue"]
    # Day 9.5: overdue. A's 7-day result was in.
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=9.5), config)
    overdue = [n for n in report.notices if n.kind == "overdue"]
    assert [(n.sample_id, n.due_at) for n in overdue] == [("B", CAST + timedelta(days=7))]
    assert overdue[0].severity is cp.NoticeSeverity.MEDIUM
    # Day 31: both 28-day tests are overdue as well.
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=31), config)
    assert sorted((n.sample_id, n.due_at) for n in report.notices if n.kind == "overdue") == [
        ("A", CAST + timedelta(days=28)),
        ("B", CAST + timedelta(days=7)),
        ("B", CAST + timedelta(days=28)),
    ]


def test_a_mass_only_row_does_not_count_as_tested() -> None:
    results = [
        result_of("A", 7, 150.0),
        make_lab_result("A", CAST, curing_days=28, wet_mass_g=420.0, dry_mass_g=315.0),
    ]
    report = cp.assess_compliance([plan("A")], results, CAST + timedelta(days=31))
    assert [n.kind for n in report.notices] == ["overdue"]


def test_unknown_samples_are_reported_not_judged() -> None:
    report = cp.assess_compliance([plan("A", ages=(28.0,))], [result_of("Z", 28, 10.0)], NOW)
    assert [r.sample_id for r in report.unmatched_results] == ["Z"]
    assert [(n.kind, n.severity) for n in report.notices] == [
        ("unknown_sample", cp.NoticeSeverity.LOW)
    ]
    assert report.judgements == ()


def test_notices_are_sorted_most_severe_first() -> None:
    plans = [plan("A"), plan("B")]
    results = [result_of("Z", 7, 1.0), result_of("A", 28, 100.0)]
    report = cp.assess_compliance(plans, results, CAST + timedelta(days=40))
    severities = [n.severity for n in report.notices]
    order = list(cp.NoticeSeverity)[::-1]  # high, medium, low, info
    assert severities == sorted(severities, key=order.index)
    assert {n.kind for n in report.notices} == {
        "low_cylinder",
        "gross_low",  # 100 kPa is far below 75 % of 300
        "below_design",  # 0 of 1 at 90 %: the interval (0-79 %) is below
        "overdue",
        "unknown_sample",
    }
    assert report.notices[0].to_dict()["severity"] == "high"


def test_an_early_result_behind_the_strength_curve_is_a_low_notice() -> None:
    model = fit_strength_model(synthetic_rows())
    slope = model.time_slope(model.blend_vector(BLEND))
    on_track = 300.0 * (7.0 / 28.0) ** slope
    results = [result_of("A", 7, on_track * 0.8), result_of("B", 7, on_track * 1.2)]
    report = cp.assess_compliance(
        [plan("A"), plan("B")], results, CAST + timedelta(days=8), model=model
    )
    behind = [n for n in report.notices if n.kind == "behind"]
    assert [n.sample_id for n in behind] == ["A"]
    assert behind[0].severity is cp.NoticeSeverity.LOW
    # Without a model there is no curve to compare with.
    plain = cp.assess_compliance([plan("A")], results[:1], CAST + timedelta(days=8))
    assert not [n for n in plain.notices if n.kind == "behind"]


def test_assessment_refuses_bad_inputs() -> None:
    with pytest.raises(InvalidInput) as err:
        cp.assess_compliance([plan("A"), plan("A")], [], NOW)
    assert err.value.field == "plans[1].sample_id"
    with pytest.raises(InvalidInput):
        cp.assess_compliance([plan("A")], [], datetime(2026, 4, 1))
    with pytest.raises(InvalidInput) as err:
        cp.Requirement("body", -1.0, 28.0)
    assert err.value.field == "requirements.required_ucs_kpa"
    with pytest.raises(InvalidInput) as err:
        cp.Requirement("body", 300.0, 28.0, design_pass_fraction=1.0)
    assert err.value.field == "requirements.design_pass_fraction"
    with pytest.raises(InvalidInput) as err:
        cp.ComplianceConfig(interval="normal")  # type: ignore[arg-type]
    assert err.value.field == "interval"


def test_clopper_pearson_can_be_chosen() -> None:
    plans = casts("A", "P-1", 5)
    results = [result_of(f"A{i}", 28, 350.0 if i < 4 else 250.0) for i in range(5)]
    config = cp.ComplianceConfig(interval="clopper_pearson", confidence=0.9)
    report = cp.assess_compliance(plans, results, NOW, config)
    pour = report.pass_fraction("pour", "P-1", "body")
    assert pour is not None
    assert (pour.low, pour.high) == pytest.approx(cp.clopper_pearson_interval(4, 5, 0.9))


# --- a known law -------------------------------------------------------------------------

TRUE = {"b0": 9.0, "b_slag": 0.1, "n": 1.5, "c0": 0.3, "c_slag": 0.4}


def synthetic_rows(
    noise: float = 0.05,
    seed: int = 1,
    shift: float = 0.0,
    slag_levels: tuple[float, ...] = (0.0, 0.4, 0.8),
) -> list[CylinderResult]:
    """Cylinders of a known log-linear law (the strength model's own form), with an
    optional shift of the intercept (the new tailings are stronger or weaker)."""
    rng = np.random.default_rng(seed)
    rows = []
    for slag in slag_levels:
        for bw in (0.03, 0.05, 0.08):
            for cw in (0.72, 0.76):
                for days in (7.0, 28.0):
                    log_ucs = (
                        TRUE["b0"]
                        + shift
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
