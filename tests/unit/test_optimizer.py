"""The binder optimiser: cheapest feasible recipe, limits, infeasibility."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.optimizer import BinderOption, OptimizedRecipe, RecipeLimits, optimize_recipe
from service.core.proportioning import BinderComponent, Tailings, proportion
from service.core.strength_model import StrengthModel, load_example_model
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
    result = run(required_ucs_kpa=50.0)
    assert result.recipe.binder_ratio == pytest.approx(0.03)
    assert "binder_pct_min" in result.binding_constraints
    assert result.recipe.predicted_ucs_kpa > 50.0


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
    assert caught.value.extra["constraint"] == "calibration:binder_pct_max"
    allowed = run(required_ucs_kpa=2500.0, limits=limits, allow_extrapolation=True)
    assert allowed.recipe.extrapolated
    assert allowed.recipe.binder_ratio > 0.08


def test_solids_window_outside_the_calibration_is_infeasible() -> None:
    with pytest.raises(RecipeInfeasible) as caught:
        run(limits=RecipeLimits(0.60, 0.70, 0.03, 0.08))
    assert caught.value.extra["constraint"] == "calibration:solids_pct"


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
    cement_max = model.predict({"cement": 1.0}, 0.08, 0.78, 56).ucs_kpa
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
    assert result.recipe.blend["flyash"] <= 0.4 + 1e-9


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
    assert (
        model.binder_ratio_range.minimum <= recipe.binder_ratio <= model.binder_ratio_range.maximum
    )
    assert (
        model.solids_fraction_range.minimum - 1e-12
        <= recipe.solids_fraction
        <= model.solids_fraction_range.maximum + 1e-12
    )
    assert recipe.blend["slag"] <= slag_max + 1e-9
    assert recipe.blend["slag"] <= model.fraction_ranges[1].maximum + 1e-9
    assert sum(recipe.blend.values()) == pytest.approx(1.0)
    if result.cement_only is not None:
        assert result.cement_only.predicted_ucs_kpa >= required
        assert result.recipe.binder_cost_per_m3 <= result.cement_only.binder_cost_per_m3 * (
            1 + 1e-9
        )
