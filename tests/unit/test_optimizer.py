"""The binder optimiser: cheapest feasible recipe, limits, infeasibility."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.optimizer import (
    BinderOption,
    OptimizedRecipe,
    RecipeLimits,
    Requirement,
    optimize_recipe,
)
from service.core.proportioning import BinderComponent, Tailings, proportion
from service.core.rheology import (
    PipeLine,
    load_example_rheology,
    pipe_flow,
    slump_from_yield_stress,
)
from service.core.strength_model import (
    CylinderResult,
    StrengthModel,
    binder_water_ratio,
    fit_strength_model,
    load_example_model,
)
from service.errors import InvalidInput, OutsideCalibrationRange, RecipeInfeasible

TAILINGS = Tailings(specific_gravity=3.05, moisture_ratio=0.3158)
CEMENT = BinderOption("cement", 3.15, price_per_t=180.0)
SLAG = BinderOption("slag", 2.90, price_per_t=90.0, max_fraction=0.8)
LIMITS = RecipeLimits(
    solids_fraction_min=0.70,
    solids_fraction_max=0.78,
    binder_ratio_min=0.03,
    binder_ratio_max=0.08,
)


def run(**overrides: Any) -> OptimizedRecipe:
    arguments: dict[str, Any] = {
        "required_ucs_kpa": 500.0,
        "curing_days": 28.0,
        "binders": [CEMENT, SLAG],
        "tailings": TAILINGS,
        "limits": LIMITS,
        "model": load_example_model(),
        "stope_volume_m3": 20_000.0,
        **overrides,
    }
    return optimize_recipe(**arguments)


def cost_at(model: StrengthModel, slag: float, cw: float, required: float, days: float) -> float:
    """Binder cost per m3 of a blend at the Bw the model needs, by the scalar path."""
    blend = {"cement": 1 - slag, "slag": slag}
    bw = max(0.03, model.binder_ratio_for_ucs(required, blend, cw, days))
    if bw > 0.08:
        return math.inf
    mix = proportion(
        TAILINGS,
        [BinderComponent("cement", 3.15, 1 - slag), BinderComponent("slag", 2.90, slag)],
        bw,
        cw,
    )
    return mix.binder_kg_m3 * ((1 - slag) * 0.180 + slag * 0.090)


def test_cheapest_recipe_meets_the_requirement_and_beats_cement_alone() -> None:
    result = run()
    recipe = result.recipe
    assert recipe.predicted_ucs_kpa >= 500.0
    assert recipe.predicted_ucs_kpa == pytest.approx(500.0, rel=1e-6)
    assert not recipe.extrapolated
    assert sum(recipe.blend.values()) == pytest.approx(1.0)
    assert recipe.binder_cost_per_m3 == pytest.approx(
        recipe.binder_kg_m3 * (recipe.blend["cement"] * 0.18 + recipe.blend["slag"] * 0.09)
    )
    assert recipe.binder_cost_for_stope == pytest.approx(20_000 * recipe.binder_cost_per_m3)
    assert recipe.proportioning.binder_kg_m3 == recipe.binder_kg_m3
    assert "required_ucs" in result.binding_constraints
    assert result.cement_only is not None
    assert result.cement_only.blend == {"cement": 1.0, "slag": 0.0}
    assert result.cement_only.predicted_ucs_kpa >= 500.0
    assert result.saving_per_m3 is not None and result.saving_per_m3 > 0
    assert result.saving_per_m3 == pytest.approx(
        result.cement_only.binder_cost_per_m3 - recipe.binder_cost_per_m3
    )
    assert result.saving_pct is not None and 0 < result.saving_pct < 100
    assert result.saving_for_stope == pytest.approx(20_000 * result.saving_per_m3)


def test_no_grid_point_is_cheaper_than_the_answer() -> None:
    model = load_example_model()
    result = run(required_ucs_kpa=700.0, curing_days=56.0)
    best = result.recipe.binder_cost_per_m3
    for slag_pct in range(0, 81, 5):
        for cw_pct in (72.0, 74.0, 76.0, 78.0):
            other = cost_at(model, slag_pct / 100, cw_pct / 100, 700.0, 56.0)
            assert other >= best * (1 - 1e-6)


def test_cheap_slag_at_early_age_is_limited_by_its_slow_strength_gain() -> None:
    # At 7 days slag blends are weaker; with equal prices cement alone wins.
    result = run(curing_days=7.0, required_ucs_kpa=300.0, binders=[CEMENT, SLAG])
    equal_price = run(
        curing_days=7.0,
        required_ucs_kpa=300.0,
        binders=[CEMENT, BinderOption("slag", 2.90, price_per_t=180.0, max_fraction=0.8)],
    )
    assert equal_price.recipe.blend["cement"] == pytest.approx(1.0)
    assert result.recipe.binder_cost_per_m3 <= equal_price.recipe.binder_cost_per_m3


def test_low_requirement_sits_on_the_minimum_binder() -> None:
    # Cw 76-78 %: Bw 3 % gives a tested Mb/Mw, so the site minimum sets the dose.
    result = run(required_ucs_kpa=50.0, limits=RecipeLimits(0.76, 0.78, 0.03, 0.08))
    assert result.recipe.binder_ratio == 0.03
    assert "binder_pct_min" in result.binding_constraints
    assert "required_ucs" not in result.binding_constraints
    assert result.recipe.predicted_ucs_kpa > 50.0
    assert not result.recipe.requirement_checks[0].binding


def test_low_requirement_stays_inside_the_tested_binder_water_ratios() -> None:
    # Cw 70-78 %: Bw 3 % at Cw below 74.3 % is below the tested Mb/Mw; the search raises
    # the dose to the lowest accepted Mb/Mw rather than design where nothing was tested.
    model = load_example_model()
    result = run(required_ucs_kpa=50.0)
    recipe = result.recipe
    low, _ = model.accepted_log_ratio_range()
    log_ratio = math.log(binder_water_ratio(recipe.binder_ratio, recipe.solids_fraction))
    assert "calibration:ln_binder_water_min" in result.binding_constraints
    assert log_ratio == pytest.approx(low, abs=1e-9)
    assert not recipe.extrapolated
    assert recipe.binder_ratio >= 0.03


def test_no_dose_inside_the_site_limits_reaches_the_tested_ratios() -> None:
    # Cw 40-45 % with Bw at most 8 %: Mb/Mw at most 0.061, below the tested 0.084.
    with pytest.raises(RecipeInfeasible) as caught:
        run(required_ucs_kpa=50.0, limits=RecipeLimits(0.40, 0.45, 0.03, 0.08))
    assert caught.value.extra["constraint"] == "calibration:ln_binder_water_min"


def test_infeasible_says_the_site_maximum_bw_is_the_limit() -> None:
    with pytest.raises(RecipeInfeasible) as caught:
        run(required_ucs_kpa=5000.0)
    assert caught.value.code == "recipe_infeasible"
    assert caught.value.extra["constraint"] == "binder_pct_max"
    assert "site maximum of 8 %" in caught.value.detail


def test_infeasible_inside_the_calibration_says_so() -> None:
    limits = RecipeLimits(0.70, 0.78, 0.03, 0.12)
    with pytest.raises(RecipeInfeasible) as caught:
        run(required_ucs_kpa=2500.0, limits=limits)
    assert caught.value.extra["constraint"] == "calibration:ln_binder_water_max"
    assert caught.value.extra["binder_pct_needed"] <= 12.0
    allowed = run(required_ucs_kpa=2500.0, limits=limits, allow_extrapolation=True)
    assert allowed.recipe.extrapolated
    assert allowed.recipe.binder_ratio > 0.08


def test_a_solids_window_below_the_tested_cw_is_designed_through_mb_mw() -> None:
    # The cylinders were cast at Cw 72-80 %, but the model sees Cw only through Mb/Mw:
    # Cw 60-70 % with more binder reaches tested ratios and is not an extrapolation.
    model = load_example_model()
    result = run(limits=RecipeLimits(0.60, 0.70, 0.03, 0.08))
    recipe = result.recipe
    assert recipe.solids_fraction <= 0.70
    assert recipe.predicted_ucs_kpa == pytest.approx(500.0, rel=1e-6)
    assert not recipe.extrapolated
    blend = {name: recipe.blend[name] for name in model.components}
    assert not model.predict(blend, recipe.binder_ratio, recipe.solids_fraction, 28.0).extrapolated


def test_blend_bounds_that_cannot_sum_to_100_are_infeasible() -> None:
    with pytest.raises(RecipeInfeasible) as caught:
        run(
            binders=[
                BinderOption("cement", 3.15, 180.0, 0.0, 0.3),
                SLAG.__class__("slag", 2.9, 90.0, 0.0, 0.5),
            ]
        )
    assert caught.value.extra["constraint"] == "blend_bounds"


def test_a_required_binder_without_data_is_infeasible() -> None:
    flyash = BinderOption("flyash", 2.3, 50.0, min_fraction=0.1)
    with pytest.raises(RecipeInfeasible) as caught:
        run(binders=[CEMENT, SLAG, flyash])
    assert caught.value.extra["constraint"] == "binders[2].min_fraction_pct"
    optional = run(binders=[CEMENT, SLAG, BinderOption("flyash", 2.3, 50.0)])
    assert optional.recipe.blend["flyash"] == 0.0


def test_cement_only_infeasible_is_reported_not_invented() -> None:
    model = load_example_model()
    # Cement's strongest tested mix at 56 days: the highest accepted Mb/Mw.
    _, high = model.accepted_log_ratio_range()
    share = math.exp(high) * 0.22 / 0.78
    cement_max = model.predict(
        {"cement": 1.0}, share / (1 - share), 0.78, 56, allow_extrapolation=True
    ).ucs_kpa
    result = run(required_ucs_kpa=cement_max * 1.1, curing_days=56.0)
    assert result.recipe.blend["slag"] > 0
    assert result.cement_only is None
    assert result.cement_only_note is not None and "infeasible" in result.cement_only_note
    assert result.saving_per_m3 is None
    assert result.saving_pct is None
    assert result.saving_for_stope is None


def test_no_cement_offered_means_no_comparison() -> None:
    stored = load_example_model().to_dict()
    stored["components"] = ["portland", "slag"]
    stored["reference_component"] = "portland"
    for key in ("blend", "time_blend"):
        stored["coefficients"][key]["portland"] = stored["coefficients"][key].pop("cement")
    stored["range"]["fractions"]["portland"] = stored["range"]["fractions"].pop("cement")
    model = StrengthModel.from_dict(stored)
    result = run(model=model, binders=[BinderOption("portland", 3.15, 180.0), SLAG])
    assert result.recipe.predicted_ucs_kpa >= 500.0
    assert result.cement_only is None
    assert result.cement_only_note is not None and "cement" in result.cement_only_note
    assert result.saving_per_m3 is None


def test_offered_binders_without_data_cannot_fill_the_blend() -> None:
    portland = BinderOption("portland", 3.15, 180.0)
    with pytest.raises(RecipeInfeasible) as caught:
        run(binders=[portland, SLAG])
    assert caught.value.extra["constraint"] == "blend_bounds"
    assert "portland" in caught.value.detail


def test_design_age_outside_the_calibration_is_refused_unless_allowed() -> None:
    with pytest.raises(OutsideCalibrationRange) as caught:
        run(curing_days=120.0)
    assert caught.value.extra["variable"] == "curing_days"
    assert run(curing_days=120.0, allow_extrapolation=True).recipe.extrapolated


def test_three_binders_search_runs_on_a_one_percent_grid() -> None:
    base = load_example_model().to_dict()
    base["components"].append("flyash")
    base["coefficients"]["blend"]["flyash"] = -0.3
    base["coefficients"]["time_blend"]["flyash"] = 0.2
    base["range"]["fractions"]["flyash"] = [0.0, 0.4]
    model = StrengthModel.from_dict(base)
    result = run(model=model, binders=[CEMENT, SLAG, BinderOption("flyash", 2.3, 40.0, 0.0, 0.5)])
    assert result.blend_step == pytest.approx(0.01)
    assert result.recipe.predicted_ucs_kpa >= 500.0
    flyash_high = model.accepted_fraction_ranges()[model.components.index("flyash")][1]
    assert flyash_high == pytest.approx(0.4)  # the tested range: no tolerance for a blend
    assert result.recipe.blend["flyash"] <= flyash_high + 1e-9


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"required_ucs_kpa": math.nan}, "required_ucs_kpa"),
        ({"required_ucs_kpa": 0.0}, "required_ucs_kpa"),
        ({"curing_days": math.inf}, "curing_days"),
        ({"binders": []}, "binders"),
        ({"binders": [CEMENT, CEMENT]}, "binders[1].name"),
        ({"binders": [BinderOption("cement", 3.15, -1.0)]}, "binders[0].price_per_t"),
        ({"binders": [BinderOption("cement", math.nan, 1.0)]}, "binders[0].specific_gravity"),
        ({"binders": [BinderOption("cement", 3.15, 1.0, 1.2)]}, "binders[0].min_fraction_pct"),
        (
            {"binders": [BinderOption("cement", 3.15, 1.0, 0.5, 0.4)]},
            "binders[0].max_fraction_pct",
        ),
        ({"tailings": Tailings(math.nan, 0.2)}, "tailings.specific_gravity"),
        ({"limits": RecipeLimits(0.0, 0.78, 0.03, 0.08)}, "solids_pct_min"),
        ({"limits": RecipeLimits(0.75, 0.70, 0.03, 0.08)}, "solids_pct_max"),
        ({"limits": RecipeLimits(0.70, 1.2, 0.03, 0.08)}, "solids_pct_max"),
        ({"limits": RecipeLimits(0.70, 0.78, math.nan, 0.08)}, "binder_pct_min"),
        ({"limits": RecipeLimits(0.70, 0.78, 0.03, 0.02)}, "binder_pct_max"),
        ({"stope_volume_m3": -5.0}, "stope_volume_m3"),
    ],
)
def test_bad_input_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run(**overrides)
    assert caught.value.field == field


@settings(max_examples=100, deadline=None)
@given(
    required=st.floats(50.0, 2000.0),
    days=st.sampled_from([7.0, 14.0, 28.0, 56.0]),
    cw_low=st.floats(0.65, 0.80),
    cw_span=st.floats(0.0, 0.1),
    bw_low=st.floats(0.01, 0.06),
    bw_span=st.floats(0.0, 0.06),
    slag_max=st.floats(0.0, 1.0),
    slag_price=st.floats(0.0, 300.0),
)
def test_never_below_the_requirement_or_outside_a_limit(
    required: float,
    days: float,
    cw_low: float,
    cw_span: float,
    bw_low: float,
    bw_span: float,
    slag_max: float,
    slag_price: float,
) -> None:
    model = load_example_model()
    limits = RecipeLimits(cw_low, min(cw_low + cw_span, 0.95), bw_low, bw_low + bw_span)
    slag = BinderOption("slag", 2.9, slag_price, 0.0, slag_max)
    try:
        result = run(
            required_ucs_kpa=required, curing_days=days, limits=limits, binders=[CEMENT, slag]
        )
    except RecipeInfeasible:
        return
    recipe = result.recipe
    assert recipe.predicted_ucs_kpa >= required
    assert not recipe.extrapolated
    assert limits.binder_ratio_min <= recipe.binder_ratio <= limits.binder_ratio_max
    assert limits.solids_fraction_min <= recipe.solids_fraction <= limits.solids_fraction_max
    # Inside the tested combinations of the model's regressors (not Bw, Cw taken alone).
    prediction = model.predict(
        {"cement": recipe.blend["cement"], "slag": recipe.blend["slag"]},
        recipe.binder_ratio,
        recipe.solids_fraction,
        days,
    )
    assert not prediction.extrapolated
    low, high = model.accepted_log_ratio_range()
    log_ratio = math.log(binder_water_ratio(recipe.binder_ratio, recipe.solids_fraction))
    assert low - 1e-9 <= log_ratio <= high + 1e-9
    assert recipe.blend["slag"] <= slag_max + 1e-9
    assert recipe.blend["slag"] <= model.accepted_fraction_ranges()[1][1] + 1e-9
    assert sum(recipe.blend.values()) == pytest.approx(1.0)
    if result.cement_only is not None:
        assert result.cement_only.predicted_ucs_kpa >= required
        assert result.recipe.binder_cost_per_m3 <= result.cement_only.binder_cost_per_m3 * (
            1 + 1e-9
        )


# --- several requirements at a pass fraction -------------------------------------------------

PLUG = Requirement(150.0, 7.0, "plug")
BODY = Requirement(700.0, 28.0, "body")


def lowest_passing_bw(
    model: StrengthModel,
    slag: float,
    cw: float,
    requirements: list[Requirement],
    pass_fraction: float,
) -> float:
    """Smallest Bw (bisection on the scalar predict) whose lower bound at the pass fraction
    meets every requirement: an independent check of the closed form."""
    blend = {"cement": 1 - slag, "slag": slag}

    def passes(bw: float) -> bool:
        return all(
            model.predict(
                blend, bw, cw, r.curing_days, allow_extrapolation=True, pass_fraction=pass_fraction
            ).lower_ucs_kpa
            >= r.required_ucs_kpa
            for r in requirements
        )

    low, high = 1e-4, 0.5
    if not passes(high):
        return math.inf
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if passes(middle) else (middle, high)
    return high


def test_the_pair_is_one_requirement() -> None:
    pair = run(required_ucs_kpa=500.0, curing_days=28.0)
    listed = run(
        required_ucs_kpa=None, curing_days=None, requirements=[Requirement(500.0, 28.0, "body")]
    )
    assert listed.recipe.binder_ratio == pytest.approx(pair.recipe.binder_ratio, rel=1e-12)
    assert listed.recipe.blend == pair.recipe.blend
    assert pair.binding_requirement == "required_ucs"
    assert listed.binding_requirement == "body"
    assert pair.pass_fraction is None and pair.recipe.requirement_checks[0].lower_ucs_kpa is None
    # At the median a design passes half its cylinders.
    assert pair.recipe.requirement_checks[0].pass_probability == pytest.approx(0.5, abs=1e-6)
    # A pass fraction of one half is the median design.
    half = run(pass_fraction=0.5)
    assert half.recipe.binder_ratio == pytest.approx(pair.recipe.binder_ratio, rel=1e-9)


def test_a_pass_fraction_design_needs_more_binder_and_passes_that_fraction() -> None:
    median = run(required_ucs_kpa=500.0)
    safe = run(required_ucs_kpa=500.0, pass_fraction=0.9)
    assert safe.recipe.binder_kg_m3 > median.recipe.binder_kg_m3
    check = safe.recipe.requirement_checks[0]
    assert check.binding
    assert check.lower_ucs_kpa == pytest.approx(500.0, rel=1e-6)
    assert check.pass_probability == pytest.approx(0.9, abs=1e-6)
    assert check.median_ucs_kpa == safe.recipe.predicted_ucs_kpa > 500.0
    assert safe.cement_only is not None
    assert safe.cement_only.requirement_checks[0].lower_ucs_kpa == pytest.approx(500.0, rel=1e-6)


def test_the_requirement_that_needs_most_binder_binds() -> None:
    model = load_example_model()
    result = run(
        required_ucs_kpa=None, curing_days=None, requirements=[PLUG, BODY], pass_fraction=0.9
    )
    assert result.binding_requirement == "body"
    assert (result.required_ucs_kpa, result.curing_days) == (700.0, 28.0)
    plug, body = result.recipe.requirement_checks
    assert body.binding and not plug.binding
    assert body.lower_ucs_kpa == pytest.approx(700.0, rel=1e-6)
    assert plug.lower_ucs_kpa is not None and plug.lower_ucs_kpa > 150.0
    # A strong early plug requirement binds instead, and costs binder.
    early = Requirement(450.0, 7.0, "plug")
    result = run(
        required_ucs_kpa=None, curing_days=None, requirements=[early, BODY], pass_fraction=0.9
    )
    assert result.binding_requirement == "plug"
    assert result.recipe.requirement_checks[0].lower_ucs_kpa == pytest.approx(450.0, rel=1e-6)
    only_body = run(required_ucs_kpa=None, curing_days=None, requirements=[BODY], pass_fraction=0.9)
    assert result.recipe.binder_cost_per_m3 > only_body.recipe.binder_cost_per_m3
    blend = {"cement": result.recipe.blend["cement"], "slag": result.recipe.blend["slag"]}
    assert (
        model.predict(
            blend, result.recipe.binder_ratio, result.recipe.solids_fraction, 7
        ).extrapolated
        is False
    )


def test_no_grid_point_passes_more_cheaply_than_the_answer() -> None:
    model = load_example_model()
    requirements = [Requirement(300.0, 7.0, "plug"), Requirement(800.0, 56.0, "body")]
    result = run(
        required_ucs_kpa=None, curing_days=None, requirements=requirements, pass_fraction=0.9
    )
    best = result.recipe.binder_cost_per_m3
    for slag_pct in range(0, 81, 10):
        for cw_pct in (72.0, 75.0, 78.0):
            slag, cw = slag_pct / 100, cw_pct / 100
            bw = max(0.03, lowest_passing_bw(model, slag, cw, requirements, 0.9))
            if bw > 0.08:
                continue
            blend = {"cement": 1 - slag, "slag": slag}
            if any(
                model.predict(blend, bw, cw, r.curing_days, allow_extrapolation=True).extrapolated
                for r in requirements
            ):
                continue
            mix = proportion(
                TAILINGS,
                [BinderComponent("cement", 3.15, 1 - slag), BinderComponent("slag", 2.90, slag)],
                bw,
                cw,
            )
            cost = mix.binder_kg_m3 * ((1 - slag) * 0.180 + slag * 0.090)
            assert cost >= best * (1 - 1e-6)


@settings(max_examples=100, deadline=None)
@given(
    targets=st.lists(
        st.tuples(st.floats(80.0, 1500.0), st.sampled_from([7.0, 14.0, 28.0, 56.0])),
        min_size=1,
        max_size=3,
    ),
    pass_fraction=st.floats(0.5, 0.99),
    cw_low=st.floats(0.65, 0.80),
    cw_span=st.floats(0.0, 0.1),
    bw_low=st.floats(0.01, 0.06),
    bw_span=st.floats(0.0, 0.08),
    slag_max=st.floats(0.0, 1.0),
)
def test_a_design_at_pass_fraction_p_passes_every_requirement_with_probability_p(
    targets: list[tuple[float, float]],
    pass_fraction: float,
    cw_low: float,
    cw_span: float,
    bw_low: float,
    bw_span: float,
    slag_max: float,
) -> None:
    model = load_example_model()
    requirements = [Requirement(r, days, f"r{i}") for i, (r, days) in enumerate(targets)]
    limits = RecipeLimits(cw_low, min(cw_low + cw_span, 0.95), bw_low, bw_low + bw_span)
    slag = BinderOption("slag", 2.9, 90.0, 0.0, slag_max)
    try:
        result = run(
            required_ucs_kpa=None,
            curing_days=None,
            requirements=requirements,
            pass_fraction=pass_fraction,
            limits=limits,
            binders=[CEMENT, slag],
        )
    except RecipeInfeasible:
        return
    recipes = [result.recipe] if result.cement_only is None else [result.recipe, result.cement_only]
    for recipe in recipes:
        assert len(recipe.requirement_checks) == len(requirements)
        blend = {"cement": recipe.blend["cement"], "slag": recipe.blend["slag"]}
        for check, requirement in zip(recipe.requirement_checks, requirements, strict=True):
            assert check.pass_probability >= pass_fraction
            assert check.lower_ucs_kpa is not None
            assert check.lower_ucs_kpa >= requirement.required_ucs_kpa
            assert not check.extrapolated
            # Independently of the optimiser's bookkeeping: predict says the same.
            prediction = model.predict(
                blend, recipe.binder_ratio, recipe.solids_fraction, requirement.curing_days
            )
            assert prediction.pass_probability(requirement.required_ucs_kpa) >= pass_fraction
        assert sum(check.binding for check in recipe.requirement_checks) <= 1
        assert limits.binder_ratio_min <= recipe.binder_ratio <= limits.binder_ratio_max


def test_a_requirement_age_outside_the_tests_names_it() -> None:
    with pytest.raises(OutsideCalibrationRange) as caught:
        run(
            required_ucs_kpa=None,
            curing_days=None,
            requirements=[BODY, Requirement(150.0, 3.0, "plug")],
        )
    assert caught.value.extra["variable"] == "requirements[1].curing_days"
    with pytest.raises(OutsideCalibrationRange) as caught:
        run(requirements=[Requirement(150.0, 3.0, "plug")])
    assert caught.value.extra["variable"] == "requirements[0].curing_days"
    allowed = run(
        required_ucs_kpa=None,
        curing_days=None,
        requirements=[BODY, Requirement(150.0, 3.0, "plug")],
        allow_extrapolation=True,
    )
    assert allowed.recipe.requirement_checks[1].extrapolated
    assert "ln_curing_days" in allowed.recipe.requirement_checks[1].outside
    assert allowed.recipe.extrapolated


def test_the_regressor_hull_keeps_designs_inside_the_tested_combinations() -> None:
    # Slag may go to 100 % on site; the example tested at most 80 %. At 56 days a thin
    # slag-rich mix lies outside the tested combinations: the hull raises the dose.
    model = load_example_model()
    cheap_slag = BinderOption("slag", 2.9, 20.0, 0.0, 1.0)
    limits = RecipeLimits(0.65, 0.80, 0.02, 0.10)
    result = run(
        required_ucs_kpa=150.0,
        curing_days=56.0,
        binders=[CEMENT, cheap_slag],
        limits=limits,
        pass_fraction=0.9,
    )
    assert "calibration:regressor_hull" in result.binding_constraints
    recipe = result.recipe
    blend = {"cement": recipe.blend["cement"], "slag": recipe.blend["slag"]}
    prediction = model.predict(blend, recipe.binder_ratio, recipe.solids_fraction, 56.0)
    assert prediction.leverage is not None and prediction.leverage_max is not None
    assert prediction.leverage == pytest.approx(prediction.leverage_max, rel=1e-6)
    free = run(
        required_ucs_kpa=150.0,
        curing_days=56.0,
        binders=[CEMENT, cheap_slag],
        limits=limits,
        pass_fraction=0.9,
        allow_extrapolation=True,
    )
    assert free.recipe.binder_cost_per_m3 < recipe.binder_cost_per_m3
    assert free.recipe.extrapolated


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pass_fraction": 0.4}, "pass_fraction_pct"),
        ({"pass_fraction": 1.0}, "pass_fraction_pct"),
        ({"required_ucs_kpa": None, "curing_days": None}, "requirements"),
        ({"curing_days": None}, "curing_days"),
        (
            {"requirements": [Requirement(math.nan, 28.0)]},
            "requirements[0].required_ucs_kpa",
        ),
        ({"requirements": [Requirement(100.0, 0.0)]}, "requirements[0].curing_days"),
        ({"max_yield_stress_pa": 300.0}, "max_yield_stress_pa"),
        (
            {"rheology": load_example_rheology(), "max_pump_pressure_kpa": 7000.0},
            "max_pump_pressure_kpa",
        ),
        ({"pipeline": PipeLine(1000.0, 0.0, 0.0, 100.0)}, "pipeline.inner_diameter_m"),
    ],
)
def test_bad_new_input_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run(**overrides)
    assert caught.value.field == field


# --- pumpability ---------------------------------------------------------------------------

LINE = PipeLine(length_m=1200.0, inner_diameter_m=0.2, static_head_m=30.0, flow_m3_h=100.0)
WIDE = RecipeLimits(0.70, 0.80, 0.03, 0.08)


def test_a_pump_pressure_limit_replaces_the_upper_cw() -> None:
    rheology = load_example_rheology()
    free = run(required_ucs_kpa=700.0, limits=WIDE, rheology=rheology, pipeline=LINE)
    assert "solids_pct_max" in free.binding_constraints
    assert free.recipe.pump_pressure_kpa is not None and free.recipe.pump_pressure_kpa > 7000.0
    limited = run(
        required_ucs_kpa=700.0,
        limits=WIDE,
        rheology=rheology,
        pipeline=LINE,
        max_pump_pressure_kpa=7000.0,
    )
    recipe = limited.recipe
    assert "max_pump_pressure_kpa" in limited.binding_constraints
    assert "solids_pct_max" not in limited.binding_constraints
    assert recipe.solids_fraction < 0.80
    assert recipe.pump_pressure_kpa is not None and recipe.pump_pressure_kpa <= 7000.0
    assert recipe.pipe_flow is not None and recipe.pipe_flow.laminar
    assert recipe.binder_cost_per_m3 > free.recipe.binder_cost_per_m3
    # The next Cw step up would break the limit: the limit, not the grid, stopped it.
    thicker = recipe.solids_fraction + limited.solids_step
    mix_density = recipe.proportioning.wet_density_kg_m3
    tau = rheology.yield_stress_pa(thicker, recipe.binder_ratio)
    over = pipe_flow(LINE, mix_density, tau, rheology.plastic_viscosity(thicker))
    assert over.pump_pressure_kpa > 7000.0 * 0.98
    # The reported figures are the rheology model's.
    assert recipe.yield_stress_pa == pytest.approx(
        rheology.yield_stress_pa(recipe.solids_fraction, recipe.binder_ratio)
    )
    assert recipe.slump_mm == pytest.approx(
        slump_from_yield_stress(recipe.yield_stress_pa, mix_density)
    )
    # The cement-only comparison is held to the same line.
    assert limited.cement_only is not None
    assert limited.cement_only.pump_pressure_kpa is not None
    assert limited.cement_only.pump_pressure_kpa <= 7000.0


def test_a_yield_stress_limit_drops_the_stiff_pastes() -> None:
    rheology = load_example_rheology()
    result = run(required_ucs_kpa=700.0, limits=WIDE, rheology=rheology, max_yield_stress_pa=200.0)
    assert "max_yield_stress_pa" in result.binding_constraints
    assert result.recipe.yield_stress_pa is not None and result.recipe.yield_stress_pa <= 200.0
    assert result.recipe.pump_pressure_kpa is None  # no line given
    with pytest.raises(RecipeInfeasible) as caught:
        run(limits=WIDE, rheology=rheology, max_yield_stress_pa=5.0)
    assert caught.value.extra["constraint"] == "max_yield_stress_pa"


def test_an_impossible_line_is_named() -> None:
    with pytest.raises(RecipeInfeasible) as caught:
        run(
            limits=WIDE,
            rheology=load_example_rheology(),
            pipeline=LINE,
            max_pump_pressure_kpa=500.0,
        )
    assert caught.value.extra["constraint"] == "max_pump_pressure_kpa"


def test_pump_limits_stay_inside_the_rheology_tests() -> None:
    # The example rheology was tested up to Cw 80 % (accepted to 81 %); a site window to
    # 85 % with a lax limit stops at the tested range, not at an extrapolated guess.
    rheology = load_example_rheology()
    limits = RecipeLimits(0.70, 0.85, 0.03, 0.08)
    result = run(required_ucs_kpa=700.0, limits=limits, rheology=rheology, max_yield_stress_pa=5e3)
    assert "rheology_calibration:solids_pct_max" in result.binding_constraints
    assert result.recipe.solids_fraction <= rheology.accepted_solids_range()[1] + 1e-9
    assert not result.recipe.rheology_extrapolated


def test_no_binder_below_the_sites_smallest_blend_component() -> None:
    """A trace of a binder is no recipe (a feeder cannot meter it, and the site's
    plausible-recipe check refuses it when stored or poured): with slag allowed up to
    99 % the cheapest grid blend is 1 % cement, unless the site's smallest component
    is larger; then the optimiser moves to the smallest blend the site takes, and says
    that limit binds."""
    slag_99 = BinderOption("slag", 2.90, price_per_t=90.0, max_fraction=0.99)
    free = run(binders=[CEMENT, slag_99], required_ucs_kpa=300.0, allow_extrapolation=True)
    assert free.recipe.blend["cement"] == pytest.approx(0.01)
    for smallest in (0.02, 0.05):
        limits = RecipeLimits(0.70, 0.78, 0.03, 0.08, blend_component_min=smallest)
        kept = run(
            binders=[CEMENT, slag_99],
            required_ucs_kpa=300.0,
            allow_extrapolation=True,
            limits=limits,
        )
        assert kept.recipe.blend["cement"] == pytest.approx(smallest)
        assert all(f == 0.0 or f >= smallest - 1e-9 for f in kept.recipe.blend.values())
        assert "blend_component_pct_min" in kept.binding_constraints
        assert kept.recipe.binder_cost_per_m3 >= free.recipe.binder_cost_per_m3


# --- the tested blends (no tolerance beyond them) -----------------------------------------

UNBOUNDED_SLAG = BinderOption("slag", 2.90, price_per_t=90.0)


def test_the_optimiser_stays_inside_the_tested_blends() -> None:
    # The example calibration tested cement from 20 % up. A 10 %-of-span tolerance let
    # the linear blend term take the design to cement 12 % / slag 88 %, unflagged.
    model = load_example_model()
    assert model.fraction_ranges[0].minimum == pytest.approx(0.2)
    result = run(required_ucs_kpa=300.0, binders=[CEMENT, UNBOUNDED_SLAG], pass_fraction=0.9)
    assert result.recipe.blend == pytest.approx({"cement": 0.2, "slag": 0.8})
    assert not result.recipe.extrapolated
    assert "calibration:binder.cement.fraction_pct_min" in result.binding_constraints
    assert "calibration:binder.slag.fraction_pct_max" in result.binding_constraints


def test_a_blend_outside_the_tested_ones_only_when_allowed_and_then_flagged() -> None:
    result = run(
        required_ucs_kpa=300.0,
        binders=[CEMENT, UNBOUNDED_SLAG],
        pass_fraction=0.9,
        allow_extrapolation=True,
    )
    assert result.recipe.blend["cement"] < 0.2
    assert result.recipe.extrapolated
    (check,) = result.recipe.requirement_checks
    assert check.extrapolated and "binder.cement.fraction_pct" in check.outside
    # No tested limit binds what extrapolation was allowed past.
    assert not any(name.startswith("calibration:") for name in result.binding_constraints)


def test_a_prediction_outside_the_tested_blends_is_extrapolation() -> None:
    model = load_example_model()
    at_edge = model.predict({"cement": 0.2, "slag": 0.8}, 0.05, 0.76, 28.0)
    assert not at_edge.extrapolated
    with pytest.raises(OutsideCalibrationRange) as caught:
        model.predict({"cement": 0.19, "slag": 0.81}, 0.05, 0.76, 28.0)
    assert caught.value.extra["variable"] == "binder.cement.fraction_pct"
    flagged = model.predict(
        {"cement": 0.12, "slag": 0.88}, 0.05, 0.76, 28.0, allow_extrapolation=True
    )
    assert flagged.extrapolated
    assert "binder.cement.fraction_pct" in flagged.outside
    detail = next(o for o in flagged.outside_details if o.variable == "binder.cement.fraction_pct")
    assert (detail.accepted_min, detail.accepted_max) == pytest.approx((20.0, 100.0))


def cement_only_model() -> StrengthModel:
    rows = [
        CylinderResult({"cement": 1.0}, bw, cw, days, ucs)
        for bw, cw, days, ucs in (
            (0.03, 0.74, 7, 180), (0.03, 0.74, 28, 300), (0.05, 0.76, 7, 330),
            (0.05, 0.76, 28, 560), (0.07, 0.78, 7, 560), (0.07, 0.78, 28, 930),
            (0.04, 0.75, 14, 330), (0.06, 0.77, 14, 600), (0.05, 0.74, 56, 640),
            (0.04, 0.78, 28, 560),
        )
    ]  # fmt: skip
    return fit_strength_model(rows)


def test_a_single_binder_calibration_lists_no_blend_limit() -> None:
    model = cement_only_model()
    assert model.components == ("cement",)
    result = run(required_ucs_kpa=300.0, model=model, pass_fraction=0.9)
    assert result.recipe.blend == {"cement": 1.0, "slag": 0.0}
    assert not any("fraction_pct" in name for name in result.binding_constraints)


def test_a_design_is_makeable_from_every_feed_it_is_given() -> None:
    from service.core.optimizer import FeedReach
    from service.core.plant_profile import driest_cw

    free = run(required_ucs_kpa=400.0, curing_days=7.0)
    cake = FeedReach(0.3158, "feed_reach_recipe_moisture")
    wet = FeedReach(0.3755, "feed_reach_plant_feed")  # a 72.7 % slurry
    made = run(required_ucs_kpa=400.0, curing_days=7.0, feeds=[cake, wet])
    recipe = made.recipe
    assert recipe.solids_fraction <= driest_cw(recipe.binder_ratio, 0.3755) + 1e-9
    assert recipe.solids_fraction <= driest_cw(recipe.binder_ratio, 0.3158) + 1e-9
    # Without the feeds the cheapest paste is drier than the slurry can make.
    assert free.recipe.solids_fraction > driest_cw(free.recipe.binder_ratio, 0.3755)
    assert "feed_reach_plant_feed" in made.binding_constraints
    assert made.recipe.binder_cost_per_m3 >= free.recipe.binder_cost_per_m3
    # Too wet for any strong enough mix: refused, naming the feed and the best it makes.
    with pytest.raises(RecipeInfeasible) as err:
        run(required_ucs_kpa=400.0, feeds=[FeedReach(0.6, "feed_reach_plant_feed")])
    assert err.value.extra["constraint"] == "feed_reach_plant_feed"
    assert err.value.extra["best_solids_pct"] == pytest.approx(100 * driest_cw(0.08, 0.6))


def test_the_plant_s_spread_enters_the_design_and_is_stated() -> None:
    from service.core.plant_spread import PlantSpread, from_pours

    default = PlantSpread(0.005, 0.03, "default")
    plain = run(required_ucs_kpa=400.0, curing_days=28.0, pass_fraction=0.9)
    spread = run(required_ucs_kpa=400.0, curing_days=28.0, pass_fraction=0.9, plant_spread=default)
    assert spread.recipe.binder_cost_per_m3 > plain.recipe.binder_cost_per_m3
    u = spread.recipe.uncertainty
    assert u is not None and u.spread == default
    cw, bw = spread.recipe.solids_fraction, spread.recipe.binder_ratio
    n = load_example_model().binder_water_exponent
    assert u.plant_solids_sd_log == pytest.approx(n * 0.005 / (cw * (1 - cw)))
    assert u.plant_binder_sd_log == pytest.approx(n * 0.03 / (1 + bw))
    assert u.total_sd_log == pytest.approx(
        math.sqrt(u.lab_sd_log**2 + u.plant_solids_sd_log**2 + u.plant_binder_sd_log**2)
    )
    (check,) = spread.recipe.requirement_checks
    assert check.lower_ucs_kpa is not None and check.lower_ucs_kpa >= 400.0 * (1 - 1e-6)
    # Pooled from pours once enough carry it; the default until then.
    pours = [
        {
            "spread_volume_m3": 100.0,
            "solids_deviation_ms": 0.004**2,
            "binder_deviation_rel_ms": 0.02**2,
        }
    ] * 5
    pooled = from_pours(pours, default=default, min_pours=5)
    assert pooled.basis == "pours" and pooled.pours == 5
    assert pooled.solids_sd == pytest.approx(0.004) and pooled.binder_sd_rel == pytest.approx(0.02)
    assert from_pours(pours[:4], default=default, min_pours=5) is default
