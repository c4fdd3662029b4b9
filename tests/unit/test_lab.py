"""Laboratory results: Cw from the masses, bound water, bulk density, the lab sheet."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core import lab
from service.errors import InvalidInput

CAST = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ALMATY = timezone(timedelta(hours=5))


# --- relations ----------------------------------------------------------------------------


def test_cw_is_dry_over_wet_mass() -> None:
    assert lab.solids_fraction_from_masses(1000.0, 750.0) == pytest.approx(0.75)
    # ASTM D2216 water content w = water/dry solids: Cw = 1/(1 + w).
    w = (1000.0 - 780.0) / 780.0
    assert lab.solids_fraction_from_masses(1000.0, 780.0) == pytest.approx(1.0 / (1.0 + w))


@given(
    wet=st.floats(1.0, 5000.0),
    solids=st.floats(0.01, 0.99),
)
def test_cw_times_wet_mass_is_the_dry_mass(wet: float, solids: float) -> None:
    dry = wet * solids
    cw = lab.solids_fraction_from_masses(wet, dry)
    assert 0.0 < cw < 1.0
    assert cw * wet == pytest.approx(dry)


@pytest.mark.parametrize(
    ("wet", "dry", "field"),
    [
        (1000.0, 1000.0, "dry_mass_g"),  # no water: not a paste
        (750.0, 1000.0, "dry_mass_g"),  # masses swapped
        (0.0, 10.0, "wet_mass_g"),
        (-5.0, 1.0, "wet_mass_g"),
        (math.nan, 1.0, "wet_mass_g"),
        (1000.0, math.nan, "dry_mass_g"),
        (1000.0, 0.0, "dry_mass_g"),
        (2.0e5, 1.0e5, "wet_mass_g"),
    ],
)
def test_bad_masses_name_their_field(wet: float, dry: float, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        lab.solids_fraction_from_masses(wet, dry)
    assert err.value.field == field


def test_bound_water_correction_recovers_the_mixed_cw_of_a_sealed_sample() -> None:
    # Mix 1 kg of paste at Cw 0.75, Bw 5 %; seal it; let 60 % of the binder hydrate,
    # binding 0.23 g of water per g (Powers & Brownyard); the oven keeps that water.
    cw, bw, alpha, wn = 0.75, 0.05, 0.6, 0.23
    solids = 1000.0 * cw
    binder = solids * bw / (1.0 + bw)
    bound = wn * alpha * binder
    wet, dry = 1000.0, solids + bound  # sealed: the total mass is conserved
    lab_cw = lab.solids_fraction_from_masses(wet, dry)
    assert lab_cw == pytest.approx(0.7549, abs=1e-4)  # half a point high
    assert lab.bound_water_corrected_solids_fraction(lab_cw, bw, alpha, wn) == pytest.approx(cw)
    # No hydration, no correction.
    assert lab.bound_water_corrected_solids_fraction(0.75, bw, 0.0) == 0.75


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((1.2, 0.05, 0.5), "solids_fraction"),
        ((0.75, 0.0, 0.5), "binder_ratio"),
        ((0.75, 0.05, 1.5), "degree_of_hydration"),
        ((0.75, 0.05, 0.5, 0.9), "non_evaporable_water_ratio"),
    ],
)
def test_bound_water_correction_refuses_bad_inputs(args: tuple[float, ...], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        lab.bound_water_corrected_solids_fraction(*args)
    assert err.value.field == field


def test_cylinder_volume_and_bulk_density() -> None:
    # A 2 x 4 inch mould: r = 25.4 mm, h = 101.6 mm.
    volume = lab.cylinder_volume_cm3(50.8, 101.6)
    assert volume == pytest.approx(math.pi * 2.54**2 * 10.16)
    assert lab.bulk_density_kg_m3(412.0, 206.0) == pytest.approx(2000.0)
    assert lab.bulk_density_kg_m3(412.0, volume) == pytest.approx(412.0 / volume * 1000.0)


def test_bulk_density_outside_a_paste_is_refused_naming_the_volume() -> None:
    with pytest.raises(InvalidInput) as err:
        lab.bulk_density_kg_m3(400.0, 2000.0)  # 200 kg/m3: cm3 typed for mm3 / 10
    assert err.value.field == "volume_cm3"
    with pytest.raises(InvalidInput) as err:
        lab.cylinder_volume_cm3(0.0, 100.0)
    assert err.value.field == "diameter_mm"


# --- one result ---------------------------------------------------------------------------


def test_a_result_computes_cw_bulk_density_and_age() -> None:
    result = lab.make_lab_result(
        "S-1",
        CAST,
        tested_at=CAST + timedelta(days=28, hours=3),
        curing_days=28,
        wet_mass_g=420.0,
        dry_mass_g=315.0,
        volume_cm3=210.0,
        ucs_kpa=640.0,
        pour_id="P-7",
    )
    assert result.solids_fraction == pytest.approx(0.75)
    assert result.bulk_density_kg_m3 == pytest.approx(2000.0)
    assert result.age_days == pytest.approx(28.125)
    assert result.nominal_days == 28
    data = result.to_dict()
    assert data["solids_pct"] == pytest.approx(75.0)
    assert data["tested_at"].endswith("+00:00")


def test_age_falls_back_to_the_nominal_and_back() -> None:
    nominal = lab.make_lab_result("S-1", CAST, curing_days=7, ucs_kpa=100.0)
    assert nominal.age_days == 7 and nominal.solids_fraction is None
    actual = lab.make_lab_result("S-1", CAST, tested_at=CAST + timedelta(days=6.5), ucs_kpa=1.0)
    assert actual.nominal_days == pytest.approx(6.5)


def test_ucs_zero_means_too_weak_to_test_and_is_accepted() -> None:
    assert lab.make_lab_result("S-1", CAST, curing_days=3, ucs_kpa=0.0).ucs_kpa == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sample_id": ""}, "sample_id"),
        ({"sample_id": "=cmd()"}, "sample_id"),
        ({"sample_id": "S" * 65}, "sample_id"),
        ({"pour_id": "bad id"}, "pour_id"),
        ({"cast_at": datetime(2026, 3, 1)}, "cast_at"),
        ({"tested_at": CAST - timedelta(days=1)}, "tested_at"),
        ({"tested_at": datetime(2026, 3, 8)}, "tested_at"),
        ({"curing_days": 0.0}, "curing_days"),
        ({"curing_days": 5000.0}, "curing_days"),
        ({"curing_days": None, "tested_at": None}, "curing_days"),
        # A "28-day" cylinder crushed at 7 days is a typo.
        ({"curing_days": 28.0, "tested_at": CAST + timedelta(days=7)}, "curing_days"),
        ({"wet_mass_g": 400.0, "dry_mass_g": None}, "dry_mass_g"),
        ({"wet_mass_g": None, "dry_mass_g": 300.0}, "wet_mass_g"),
        ({"wet_mass_g": 400.0, "dry_mass_g": 300.0, "volume_cm3": 0.0}, "volume_cm3"),
        ({"volume_cm3": 200.0}, "wet_mass_g"),
        (
            {
                "wet_mass_g": 400.0,
                "dry_mass_g": 300.0,
                "volume_cm3": 200.0,
                "bulk_density_kg_m3": 2100.0,
            },
            "bulk_density_kg_m3",
        ),
        ({"bulk_density_kg_m3": 2.0}, "bulk_density_kg_m3"),
        ({"ucs_kpa": -1.0}, "ucs_kpa"),
        ({"ucs_kpa": 2.0e5}, "ucs_kpa"),
        ({"ucs_kpa": None}, "ucs_kpa"),  # neither a UCS nor masses
    ],
)
def test_a_bad_result_names_the_field(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "sample_id": "S-1",
        "cast_at": CAST,
        "curing_days": 7.0,
        "ucs_kpa": 150.0,
    }
    arguments.update(kwargs)
    sample_id = arguments.pop("sample_id")
    cast_at = arguments.pop("cast_at")
    with pytest.raises(InvalidInput) as err:
        lab.make_lab_result(sample_id, cast_at, now=CAST + timedelta(days=100), **arguments)  # type: ignore[arg-type]
    assert err.value.field == field


def test_a_result_in_the_future_is_refused() -> None:
    now = CAST + timedelta(days=3)
    with pytest.raises(InvalidInput) as err:
        lab.make_lab_result("S-1", CAST, tested_at=CAST + timedelta(days=7), ucs_kpa=1.0, now=now)
    assert err.value.field == "tested_at"
    with pytest.raises(InvalidInput) as err:
        lab.make_lab_result("S-1", now + timedelta(days=1), curing_days=7, ucs_kpa=1.0, now=now)
    assert err.value.field == "cast_at"


def test_results_group_by_sample_in_age_order() -> None:
    results = [
        lab.make_lab_result("B", CAST, curing_days=28, ucs_kpa=500.0),
        lab.make_lab_result("A", CAST, curing_days=28, ucs_kpa=400.0),
        lab.make_lab_result("A", CAST, curing_days=7, ucs_kpa=150.0),
    ]
    groups = lab.results_by_sample(results)
    assert [r.nominal_days for r in groups["A"]] == [7, 28]
    assert len(groups["B"]) == 1


# --- the lab sheet ------------------------------------------------------------------------

GOOD_SHEET = """\ufeff# Lab sheet, week 10
Sample_ID ,pour_id, cast_at,tested_at,curing_days,wet_mass_g,dry_mass_g,volume_cm3,ucs_kpa,Tech
S-1,P-1,2026-03-01T08:00:00+05:00,2026-03-08T09:00:00+05:00,7,420.0,315.0,210.0,180,AB
S-1,P-1,2026-03-01T08:00:00+05:00,,28,,,,650,AB

S-2,P-1,2026-03-01T10:00,,7,,,,0,CD
# a comment row in the middle
S-3,,2026-03-02,2026-03-09T08:00,,418.0,310.0,,,CD
"""


def test_a_good_sheet_parses_every_row() -> None:
    sheet = lab.parse_lab_sheet(GOOD_SHEET, assume_timezone=ALMATY)
    assert sheet.ok and sheet.errors == ()
    assert sheet.ignored_columns == ("tech",)
    rows = sheet.raise_if_invalid()
    assert [r.sample_id for r in rows] == ["S-1", "S-1", "S-2", "S-3"]
    first = rows[0]
    assert first.pour_id == "P-1"
    assert first.solids_fraction == pytest.approx(0.75)
    assert first.bulk_density_kg_m3 == pytest.approx(2000.0)
    assert first.age_days == pytest.approx(7 + 1 / 24)
    assert rows[1].tested_at is None and rows[1].ucs_kpa == 650
    # A time without an offset takes the site's zone; a bare date is its midnight.
    assert rows[2].cast_at.utcoffset() == timedelta(hours=5)
    assert rows[2].ucs_kpa == 0.0
    assert rows[3].pour_id is None and rows[3].ucs_kpa is None
    assert rows[3].cast_at == datetime(2026, 3, 2, tzinfo=ALMATY)
    assert rows[3].age_days == pytest.approx(7 + 8 / 24)


def test_a_bad_sheet_names_every_bad_row_and_imports_nothing() -> None:
    text = (
        "sample_id,cast_at,curing_days,wet_mass_g,dry_mass_g,ucs_kpa\n"
        "S-1,2026-03-01T08:00Z,7,420,315,180\n"  # line 2: good
        "S-2,2026-03-01T08:00Z,seven,420,315,180\n"  # line 3: curing_days not a number
        "S-3,2026-03-01T08:00Z,28,300,320,abc\n"  # line 4: two bad cells
        "S-4,yesterday,28,,,500\n"  # line 5: bad time
        "S-5,2026-03-01T08:00Z,28,,,inf\n"  # line 6: not finite
        "S 6,2026-03-01T08:00Z,28,,,500\n"  # line 7: bad id
        "S-7,2026-03-01T08:00Z,28,,,\n"  # line 8: no result
    )
    sheet = lab.parse_lab_sheet(text)
    assert not sheet.ok
    assert sheet.rows == ()
    found = {(e.row, e.field) for e in sheet.errors}
    assert found == {
        (3, "curing_days"),
        (4, "ucs_kpa"),
        (5, "cast_at"),
        (6, "ucs_kpa"),
        (7, "sample_id"),
        (8, "ucs_kpa"),
    }
    # Row 4's masses are wrong too (dry above wet), but a cell that is not a number stops
    # the row there: the cross-field checks run once every number parses.
    with pytest.raises(InvalidInput) as err:
        sheet.raise_if_invalid()
    assert err.value.field == "csv"
    assert len(err.value.extra["errors"]) == len(sheet.errors)
    assert err.value.extra["errors"][0]["row"] == 3


def test_cross_field_errors_are_all_reported_for_a_row() -> None:
    text = (
        "sample_id,cast_at,tested_at,curing_days,wet_mass_g,dry_mass_g,ucs_kpa\n"
        "S-1,2026-03-10T08:00Z,2026-03-01T08:00Z,28,300,320,-5\n"
    )
    sheet = lab.parse_lab_sheet(text)
    assert {(e.row, e.field) for e in sheet.errors} == {
        (2, "tested_at"),
        (2, "dry_mass_g"),
        (2, "ucs_kpa"),
    }


def test_naive_times_are_refused_without_a_site_zone() -> None:
    text = "sample_id,cast_at,curing_days,ucs_kpa\nS-1,2026-03-01T08:00,7,100\n"
    sheet = lab.parse_lab_sheet(text)
    assert [(e.row, e.field) for e in sheet.errors] == [(2, "cast_at")]
    assert "time zone" in sheet.errors[0].message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "csv"),
        ("# only a comment\n", "csv"),
        ("sample_id,cast_at,curing_days,ucs_kpa\n", "csv"),  # header, no rows
        ("cast_at,curing_days,ucs_kpa\nx,7,1\n", "sample_id"),
        ("sample_id,cast_at,ucs_kpa\nS,2026-03-01T08:00Z,1\n", "tested_at"),
        ("sample_id,cast_at,curing_days\nS,2026-03-01T08:00Z,7\n", "ucs_kpa"),
        ("sample_id,cast_at,curing_days,wet_mass_g\nS,2026-03-01T08:00Z,7,1\n", "dry_mass_g"),
        ("sample_id,cast_at,curing_days,ucs_kpa,ucs_kpa\nS,2026-03-01T08:00Z,7,1,1\n", "ucs_kpa"),
    ],
)
def test_sheet_level_problems_are_reported(text: str, field: str) -> None:
    sheet = lab.parse_lab_sheet(text)
    assert not sheet.ok
    assert field in {e.field for e in sheet.errors}


def test_extra_cells_and_too_many_rows_are_refused() -> None:
    text = "sample_id,cast_at,curing_days,ucs_kpa\nS-1,2026-03-01T08:00Z,7,100,surprise\n"
    sheet = lab.parse_lab_sheet(text)
    assert [(e.row, e.field) for e in sheet.errors] == [(2, "csv")]
    many = "sample_id,cast_at,curing_days,ucs_kpa\n" + "S-1,2026-03-01T08:00Z,7,100\n" * 4
    assert lab.parse_lab_sheet(many, max_rows=4).ok
    sheet = lab.parse_lab_sheet(many, max_rows=3)
    assert [(e.row, e.field) for e in sheet.errors] == [(5, "csv")]
    with pytest.raises(InvalidInput):
        lab.parse_lab_sheet(many, max_rows=0)


def test_future_results_are_refused_with_now() -> None:
    text = "sample_id,cast_at,tested_at,ucs_kpa\nS-1,2026-03-01T08:00Z,2026-03-29T08:00Z,100\n"
    assert lab.parse_lab_sheet(text).ok
    sheet = lab.parse_lab_sheet(text, now=datetime(2026, 3, 20, tzinfo=UTC))
    assert [(e.row, e.field) for e in sheet.errors] == [(2, "tested_at")]
