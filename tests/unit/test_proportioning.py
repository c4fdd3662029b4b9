"""Mix proportioning from first principles: the mass-volume relations of a saturated paste
(Belem & Benzaazoua 2008), checked against independent hand routes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.proportioning import (
    Aggregate,
    BinderComponent,
    Tailings,
    blend_specific_gravity,
    moisture_ratio_from_solids_fraction,
    proportion,
    solids_fraction_for_water_binder_ratio,
    solids_fraction_for_wet_density,
    water_binder_ratio,
)
from service.errors import InvalidInput

TAILINGS = Tailings(specific_gravity=3.05, moisture_ratio=0.3158)
BLEND = (BinderComponent("cement", 3.15, 0.2), BinderComponent("slag", 2.90, 0.8))


def test_filter_cake_at_76_pct_solids_has_w0_31_58_pct() -> None:
    assert moisture_ratio_from_solids_fraction(0.76) * 100 == pytest.approx(31.58, abs=0.005)


def test_blend_specific_gravity_is_the_mass_fraction_harmonic_mean() -> None:
    assert blend_specific_gravity(BLEND) == pytest.approx(1 / (0.2 / 3.15 + 0.8 / 2.90))


def test_contract_example_from_one_kilogram_of_dry_tailings() -> None:
    # Independent route: start from 1 kg of dry tailings and add volumes.
    bw, cw = 0.045, 0.70
    tailings_kg = 1.0
    binder_kg = bw * tailings_kg
    solids_kg = tailings_kg + binder_kg
    water_kg = solids_kg * (1 / cw - 1)
    volume_m3 = (
        tailings_kg / 3050 + binder_kg * 0.2 / 3150 + binder_kg * 0.8 / 2900 + water_kg / 1000
    )
    scale = 1 / volume_m3  # kg of dry tailings per m3

    mix = proportion(TAILINGS, BLEND, bw, cw, volume_m3=50.0)

    assert mix.wet_density_kg_m3 == pytest.approx((solids_kg + water_kg) * scale, rel=1e-12)
    assert mix.dry_tailings_kg_m3 == pytest.approx(scale, rel=1e-12)
    assert mix.binder_kg_m3 == pytest.approx(binder_kg * scale, rel=1e-12)
    assert mix.binder_components_kg_m3["cement"] == pytest.approx(0.2 * binder_kg * scale)
    assert mix.binder_components_kg_m3["slag"] == pytest.approx(0.8 * binder_kg * scale)
    assert mix.water_kg_m3 == pytest.approx(water_kg * scale, rel=1e-12)
    assert mix.water_to_add_kg_m3 == pytest.approx((water_kg - 0.3158) * scale, rel=1e-12)
    assert mix.wet_tailings_kg_m3 == pytest.approx(1.3158 * scale, rel=1e-12)
    assert mix.dry_density_kg_m3 == pytest.approx(solids_kg * scale, rel=1e-12)
    assert mix.water_binder_ratio == pytest.approx(water_kg / binder_kg, rel=1e-12)
    # Saturated: the voids are the water, so n is the water volume per m3.
    assert mix.porosity == pytest.approx(water_kg * scale / 1000, rel=1e-12)
    assert mix.void_ratio == pytest.approx(mix.porosity / (1 - mix.porosity), rel=1e-12)
    assert mix.total.binder_kg == pytest.approx(50.0 * mix.binder_kg_m3)
    assert mix.total.wet_paste_kg == pytest.approx(50.0 * mix.wet_density_kg_m3)
    assert mix.per_m3.binder_components_kg == mix.binder_components_kg_m3
    assert not mix.feed_too_wet


def test_masses_are_not_inflated_by_the_binder_volume_fraction() -> None:
    mix = proportion(TAILINGS, BLEND, 0.08, 0.78)
    per_m3 = mix.per_m3
    total = per_m3.dry_tailings_kg + per_m3.binder_kg + per_m3.water_kg
    assert total == pytest.approx(mix.wet_density_kg_m3, rel=1e-12)


def test_a_feed_wetter_than_the_recipe_is_reported_not_raised() -> None:
    wet_feed = Tailings(specific_gravity=2.8, moisture_ratio=1.0)  # a 50 % solids slurry
    mix = proportion(wet_feed, BLEND, 0.05, 0.75)
    assert mix.water_to_add_kg_m3 < 0
    assert mix.feed_too_wet


def test_aggregate_counts_in_bw_solids_and_water_already_present() -> None:
    aggregate = Aggregate(specific_gravity=2.7, fraction=0.3, moisture_ratio=0.02)
    mix = proportion(TAILINGS, BLEND, 0.05, 0.80, aggregate=aggregate)
    non_binder = mix.dry_tailings_kg_m3 + mix.dry_aggregate_kg_m3
    assert mix.binder_kg_m3 == pytest.approx(0.05 * non_binder, rel=1e-12)
    assert mix.dry_aggregate_kg_m3 == pytest.approx(0.3 * non_binder, rel=1e-12)
    assert mix.wet_aggregate_kg_m3 == pytest.approx(1.02 * mix.dry_aggregate_kg_m3)
    expected_to_add = (
        mix.water_kg_m3 - 0.3158 * mix.dry_tailings_kg_m3 - 0.02 * mix.dry_aggregate_kg_m3
    )
    assert mix.water_to_add_kg_m3 == pytest.approx(expected_to_add, rel=1e-12)
    assert mix.per_m3.wet_aggregate_kg == mix.wet_aggregate_kg_m3
    volume = (
        mix.dry_tailings_kg_m3 / 3050
        + mix.dry_aggregate_kg_m3 / 2700
        + mix.binder_kg_m3 / (1000 * mix.binder_specific_gravity)
        + mix.water_kg_m3 / 1000
    )
    assert volume == pytest.approx(1.0, rel=1e-12)


def test_inverse_inputs_match_the_forward_relations() -> None:
    cw = solids_fraction_for_water_binder_ratio(0.05, 7.0)
    assert water_binder_ratio(0.05, cw) == pytest.approx(7.0, rel=1e-12)
    cw = solids_fraction_for_wet_density(TAILINGS, BLEND, 0.05, 2000.0)
    assert proportion(TAILINGS, BLEND, 0.05, cw).wet_density_kg_m3 == pytest.approx(2000.0)


# --- invariants ----------------------------------------------------------------------------

gravity = st.floats(1.5, 7.5)
fraction = st.floats(0.0, 1.0)


@st.composite
def mixes(draw: st.DrawFn) -> tuple[Tailings, tuple[BinderComponent, ...], float, float, float]:
    count = draw(st.integers(1, 4))
    weights = [draw(st.floats(0.01, 1.0)) for _ in range(count)]
    total = sum(weights)
    binder = tuple(
        BinderComponent(f"b{i}", draw(gravity), w / total) for i, w in enumerate(weights)
    )
    tailings = Tailings(draw(gravity), draw(st.floats(0.0, 3.0)))
    return (
        tailings,
        binder,
        draw(st.floats(0.001, 1.0)),
        draw(st.floats(0.05, 0.95)),
        draw(st.floats(0.001, 1.0e4)),
    )


@settings(max_examples=300)
@given(mixes(), st.none() | st.builds(Aggregate, gravity, st.floats(0.0, 0.9), fraction))
def test_mass_and_volume_close(
    mix_input: tuple[Tailings, tuple[BinderComponent, ...], float, float, float],
    aggregate: Aggregate | None,
) -> None:
    tailings, binder, bw, cw, volume = mix_input
    mix = proportion(tailings, binder, bw, cw, volume, aggregate)
    total = mix.total
    components_kg = sum(total.binder_components_kg.values())
    assert components_kg == pytest.approx(total.binder_kg, rel=1e-12)
    mass = total.dry_tailings_kg + total.dry_aggregate_kg + components_kg + total.water_kg
    assert mass / volume == pytest.approx(mix.wet_density_kg_m3, rel=1e-9)
    as_fed = total.wet_tailings_kg + total.wet_aggregate_kg + total.binder_kg
    assert (as_fed + total.water_to_add_kg) / volume == pytest.approx(
        mix.wet_density_kg_m3, rel=1e-9
    )
    aggregate_gs = aggregate.specific_gravity if aggregate else 1.0
    solids_volume = (
        total.dry_tailings_kg / (tailings.specific_gravity * 1000)
        + total.dry_aggregate_kg / (aggregate_gs * 1000)
        + sum(total.binder_components_kg[c.name] / (c.specific_gravity * 1000) for c in binder)
    )
    assert solids_volume + total.water_kg / 1000 == pytest.approx(volume, rel=1e-9)
    assert (total.dry_solids_kg / (total.wet_paste_kg)) == pytest.approx(cw, rel=1e-9)


@settings(max_examples=300)
@given(st.floats(0.001, 1.0), st.floats(0.01, 0.99))
def test_water_binder_ratio_identity(bw: float, cw: float) -> None:
    expected = (1 + bw) * (1 - cw) / (bw * cw)
    mix = proportion(TAILINGS, BLEND, bw, cw)
    assert mix.water_binder_ratio == pytest.approx(expected, rel=1e-9)
    assert water_binder_ratio(bw, cw) == pytest.approx(expected, rel=1e-12)
    assert solids_fraction_for_water_binder_ratio(bw, expected) == pytest.approx(cw, rel=1e-9)


@settings(max_examples=200)
@given(st.floats(0.001, 0.5), st.floats(0.05, 0.95))
def test_wet_density_inverse_round_trips(bw: float, cw: float) -> None:
    rho = proportion(TAILINGS, BLEND, bw, cw).wet_density_kg_m3
    assert solids_fraction_for_wet_density(TAILINGS, BLEND, bw, rho) == pytest.approx(cw, rel=1e-9)


# --- bad input -----------------------------------------------------------------------------

BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1.0, 0.0]


@pytest.mark.parametrize("value", [*BAD_NUMBERS, 1.2])
def test_bad_solids_pct(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, BLEND, 0.05, value)
    assert caught.value.field == "solids_pct"


@pytest.mark.parametrize("value", [*BAD_NUMBERS, 1.5])
def test_bad_binder_pct(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, BLEND, value, 0.75)
    assert caught.value.field == "binder_pct"


@pytest.mark.parametrize("value", [*BAD_NUMBERS, 0.9, 25.0])
def test_bad_tailings_specific_gravity(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(Tailings(value, 0.2), BLEND, 0.05, 0.75)
    assert caught.value.field == "tailings.specific_gravity"


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.01, 21.0])
def test_bad_moisture_pct(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(Tailings(3.0, value), BLEND, 0.05, 0.75)
    assert caught.value.field == "tailings.moisture_pct"


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_volume(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, BLEND, 0.05, 0.75, volume_m3=value)
    assert caught.value.field == "volume_m3"


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.1, 1.2])
def test_bad_binder_fraction_names_the_component(value: float) -> None:
    blend = (BinderComponent("cement", 3.15, 0.5), BinderComponent("slag", 2.9, value))
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, blend, 0.05, 0.75)
    assert caught.value.field == "binder[1].fraction_pct"


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_binder_specific_gravity_names_the_component(value: float) -> None:
    blend = (BinderComponent("cement", value, 0.5), BinderComponent("slag", 2.9, 0.5))
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, blend, 0.05, 0.75)
    assert caught.value.field == "binder[0].specific_gravity"


@pytest.mark.parametrize(
    "blend",
    [
        (),
        (BinderComponent("cement", 3.15, 0.5), BinderComponent("slag", 2.9, 0.4)),
        (BinderComponent("cement", 3.15, 0.5), BinderComponent("cement", 2.9, 0.5)),
        (
            BinderComponent("a", 3.15, 0.5),
            BinderComponent("b", 2.9, 0.25),
            BinderComponent("a", 2.9, 0.25),
        ),
    ],
)
def test_bad_blend(blend: tuple[BinderComponent, ...]) -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, blend, 0.05, 0.75)
    assert caught.value.field == "binder"


@pytest.mark.parametrize(
    ("aggregate", "field"),
    [
        (Aggregate(math.nan, 0.3), "aggregate.specific_gravity"),
        (Aggregate(2.7, 1.0), "aggregate.fraction_pct"),
        (Aggregate(2.7, -0.1), "aggregate.fraction_pct"),
        (Aggregate(2.7, 0.3, math.inf), "aggregate.moisture_pct"),
    ],
)
def test_bad_aggregate(aggregate: Aggregate, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, BLEND, 0.05, 0.75, aggregate=aggregate)
    assert caught.value.field == field


@pytest.mark.parametrize("value", [*BAD_NUMBERS, 999.0])
def test_bad_target_wet_density(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        solids_fraction_for_wet_density(TAILINGS, BLEND, 0.05, value)
    assert caught.value.field == "wet_density_kg_m3"


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_target_water_binder_ratio(value: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        solids_fraction_for_water_binder_ratio(0.05, value)
    assert caught.value.field == "water_binder_ratio"


def test_error_carries_its_field_in_the_payload() -> None:
    with pytest.raises(InvalidInput) as caught:
        proportion(TAILINGS, BLEND, 0.05, 1.5)
    payload = caught.value.to_dict()
    assert payload["code"] == "invalid_input"
    assert payload["field"] == "solids_pct"
    assert "150" in payload["detail"]
