"""Mass balance of the feed-forward: the mass-volume relations of a saturated paste (Belem
& Benzaazoua 2008) and a slurry (Wills & Finch 2016, ch. 3), and their closure."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.control import massbalance as mb
from service.errors import InvalidInput


def recipe(
    bw: float = 0.05, cw: float = 0.72, gs_t: float = 2.8, blend: dict[str, float] | None = None
) -> mb.Recipe:
    return mb.make_recipe(
        binder_ratio=bw,
        solids_fraction=cw,
        tailings_sg=gs_t,
        blend=blend if blend is not None else {"cement": 0.2, "slag": 0.8},
        binder_sg={"cement": 3.15, "slag": 2.90, "flyash": 2.30},
    )


def test_blend_sg_is_the_mass_fraction_harmonic_mean() -> None:
    r = recipe()
    assert mb.blend_sg(r) == pytest.approx(1.0 / (0.2 / 3.15 + 0.8 / 2.90))


def test_saturated_paste_density_matches_the_per_m3_masses() -> None:
    r = recipe()
    rho = mb.paste_density_kg_m3(r)
    # Per m3 (Belem & Benzaazoua 2008): Ms = rho Cw, Mt = Ms/(1+Bw), Mb = Bw Mt,
    # Mw = Ms (1/Cw - 1); the volumes of the parts must add up to 1 m3.
    ms = rho * r.solids_fraction
    mt = ms / (1 + r.binder_ratio)
    mbinder = r.binder_ratio * mt
    mw = ms * (1 / r.solids_fraction - 1)
    volume = mt / (2800.0) + mbinder / (mb.blend_sg(r) * 1000.0) + mw / 1000.0
    assert volume == pytest.approx(1.0)
    assert 1800.0 < rho < 2200.0


def test_slurry_solids_fraction_inverts_the_saturated_density() -> None:
    # A slurry of Cw 0.6 and Gs 2.8: rho = 1/(0.6/2800 + 0.4/1000).
    rho = 1.0 / (0.6 / 2800.0 + 0.4 / 1000.0)
    assert mb.slurry_solids_fraction(rho, 2.8) == pytest.approx(0.6)
    assert mb.slurry_solids_fraction(1000.0, 2.8) == pytest.approx(0.0)


def test_binder_rates_follow_bw_dry_tailings_and_blend() -> None:
    rates = mb.binder_rates_t_h(100.0, recipe(bw=0.05))
    assert rates == pytest.approx({"cement": 1.0, "slag": 4.0, "flyash": 0.0})


def test_dilution_water_negative_when_the_feed_is_wetter_than_the_recipe() -> None:
    r = recipe(cw=0.72)
    wet = 1.0 / (0.6 / 2800.0 + 0.4 / 1000.0)
    ff = mb.feed_forward(
        r, feed_flow_m3_h=80.0, feed_density_kg_m3=wet, paste_flow_request_m3_h=100.0
    )
    assert ff is not None
    assert ff.water_m3_h < 0.0
    assert not ff.reachable


def test_feed_forward_closes_the_mass_balance_at_the_requested_paste_flow() -> None:
    r = recipe()
    rho_feed = 1900.0
    first = mb.feed_forward(
        r, feed_flow_m3_h=1.0, feed_density_kg_m3=rho_feed, paste_flow_request_m3_h=100.0
    )
    assert first is not None
    # Feed exactly the flow it asks for: the paste made is the paste requested.
    ff = mb.feed_forward(
        r,
        feed_flow_m3_h=first.tailings_flow_m3_h,
        feed_density_kg_m3=rho_feed,
        paste_flow_request_m3_h=100.0,
    )
    assert ff is not None and ff.reachable
    binder = sum(ff.binder_t_h.values())
    paste_mass = ff.dry_tailings_t_h + binder + ff.feed_water_t_h + ff.water_m3_h
    paste_volume = (
        ff.dry_tailings_t_h / 2.8 + binder / mb.blend_sg(r) + ff.feed_water_t_h + ff.water_m3_h
    )
    assert paste_volume == pytest.approx(100.0)
    assert (ff.dry_tailings_t_h + binder) / paste_mass == pytest.approx(0.72)
    assert paste_mass / paste_volume * 1000.0 == pytest.approx(mb.paste_density_kg_m3(r))


def test_measured_solids_and_binder() -> None:
    r = recipe()
    assert mb.measured_solids_fraction(mb.paste_density_kg_m3(r), r) == pytest.approx(0.72)
    assert mb.measured_binder_ratio({"cement": 1.0, "slag": 4.0}, 100.0) == pytest.approx(0.05)
    assert math.isnan(mb.measured_binder_ratio({"cement": 1.0}, 0.0))


def test_feed_forward_refuses_a_density_that_is_not_a_slurry() -> None:
    r = recipe()
    for rho in (900.0, 1000.0, 2800.0, 3500.0):
        ff = mb.feed_forward(
            r, feed_flow_m3_h=80.0, feed_density_kg_m3=rho, paste_flow_request_m3_h=1.0
        )
        assert ff is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bw": 0.0}, "binder_ratio"),
        ({"bw": math.nan}, "binder_ratio"),
        ({"cw": 1.0}, "solids_fraction"),
        ({"gs_t": 0.9}, "tailings_sg"),
        ({"blend": {"cement": 0.5, "slag": 0.4}}, "blend"),
        ({"blend": {"lime": 1.0}}, "blend.lime"),
        ({"blend": {}}, "blend"),
    ],
)
def test_make_recipe_rejects_bad_values(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        recipe(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


@given(
    bw=st.floats(0.01, 0.15),
    cw=st.floats(0.6, 0.85),
    gs_t=st.floats(2.5, 4.0),
    feed_cw=st.floats(0.5, 0.9),
    flow=st.floats(1.0, 300.0),
)
def test_water_and_solids_balance_for_any_recipe(
    bw: float, cw: float, gs_t: float, feed_cw: float, flow: float
) -> None:
    r = recipe(bw=bw, cw=cw, gs_t=gs_t)
    rho_feed = 1.0 / (feed_cw / (gs_t * 1000.0) + (1 - feed_cw) / 1000.0)
    ff = mb.feed_forward(
        r, feed_flow_m3_h=flow, feed_density_kg_m3=rho_feed, paste_flow_request_m3_h=100.0
    )
    assert ff is not None
    assert ff.feed_solids_fraction == pytest.approx(feed_cw)
    solids = ff.dry_tailings_t_h * (1 + bw)
    water = ff.feed_water_t_h + ff.water_m3_h  # may be "negative water added"
    assert solids / (solids + water) == pytest.approx(cw)
    # Reachable when the paste needs at least the water the feed brings (binder is dry).
    needed, brought = (1 + bw) * (1 / cw - 1), 1 / feed_cw - 1
    if not math.isclose(needed, brought, rel_tol=1e-9):
        assert ff.reachable == (needed > brought)
