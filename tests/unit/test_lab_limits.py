"""A site's plausible laboratory result and the times of a lab entry (pure): test ages,
a lab's cast time against the sample's record, results ahead of their age; and a lab
sheet's numbers and quotes as a lab writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core import lab
from service.core.lab_limits import (
    LabLimits,
    RecordedCast,
    age_problems,
    cast_problems,
    early_problems,
)
from service.errors import InvalidInput

CAST = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NOW = CAST + timedelta(days=40)
HEADER = "sample_id,cast_at,curing_days,ucs_kpa,wet_mass_g,dry_mass_g\n"


def fields(problems: list[tuple[str, str]]) -> list[str]:
    return [field for field, _message in problems]


# --- test ages --------------------------------------------------------------------------


@pytest.mark.parametrize("days", [1e-300, 0.01, 0.49, 731.0, 3650.0, float("nan")])
def test_a_test_age_outside_the_sites_range_names_the_field_and_the_setting(
    days: float,
) -> None:
    (problem,) = age_problems(days, None, LabLimits())
    assert problem[0] == "curing_days"
    assert "BACKFILL_LAB__CURING_DAYS_MIN" in problem[1]
    assert "BACKFILL_LAB__CURING_DAYS_MAX" in problem[1]


@pytest.mark.parametrize("days", [0.5, 1.0, 3.0, 7.0, 28.0, 56.0, 365.0, 730.0])
def test_the_ages_labs_test_at_pass(days: float) -> None:
    assert age_problems(days, None, LabLimits()) == []


def test_without_a_nominal_age_the_actual_one_is_held_to_the_range() -> None:
    # Crushed seconds after casting: the actual age names tested_at.
    assert fields(age_problems(None, 10.0 / 86400.0, LabLimits())) == ["tested_at"]
    assert age_problems(None, 7.1, LabLimits()) == []
    # A site that tests at 6 hours says so.
    assert age_problems(0.25, None, LabLimits(curing_days_min=0.25)) == []


def test_a_curing_days_of_1e_300_never_becomes_a_result() -> None:
    with pytest.raises(InvalidInput) as err:
        lab.make_lab_result("S-1", CAST, curing_days=1e-300, ucs_kpa=100.0, now=NOW)
    assert err.value.field == "curing_days"
    # Masses alone (a fresh paste weighed for its Cw) are hours old, and that is fine.
    fresh = lab.make_lab_result(
        "S-1", CAST, tested_at=CAST + timedelta(hours=2), wet_mass_g=400.0, dry_mass_g=300.0
    )
    assert fresh.age_days == pytest.approx(2.0 / 24.0)


# --- the lab's cast time against the sample's record -----------------------------------


def test_a_cast_time_days_away_from_the_record_is_refused() -> None:
    limits = LabLimits()
    assert cast_problems(CAST - timedelta(hours=11), CAST, limits) == []
    assert cast_problems(CAST + timedelta(hours=12), CAST, limits) == []
    (problem,) = cast_problems(CAST - timedelta(days=5), CAST, limits)
    assert problem[0] == "cast_at" and "5.0 days before" in problem[1]
    assert "BACKFILL_LAB__CAST_AT_TOLERANCE_H" in problem[1]
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    assert fields(cast_problems(year_one, CAST, limits)) == ["cast_at"]
    with pytest.raises(InvalidInput) as err:
        lab.make_lab_result(
            "S-1", year_one, curing_days=7, ucs_kpa=100.0, now=NOW, sample_cast_at=CAST
        )
    assert err.value.field == "cast_at"


def test_a_migrated_samples_cast_is_held_only_to_its_pours_start() -> None:
    """A sample migrated from an older release has its pour's start as its cast: the
    lab's cast may follow it by the pour's hours, never come days before it."""
    start = RecordedCast(CAST, exact=False)
    assert cast_problems(CAST + timedelta(hours=30), start, LabLimits()) == []
    assert cast_problems(CAST - timedelta(hours=11), start, LabLimits()) == []
    (problem,) = cast_problems(datetime(1, 1, 1, tzinfo=UTC), start, LabLimits())
    assert problem[0] == "cast_at" and "pour's start" in problem[1]


@given(hours=st.floats(-1000.0, 1000.0))
def test_the_cast_tolerance_is_symmetric_and_exact(hours: float) -> None:
    limits = LabLimits(cast_at_tolerance_h=12.0)
    problems = cast_problems(CAST + timedelta(hours=hours), CAST, limits)
    assert (problems == []) == (abs(hours) <= 12.0 + 1e-9) or abs(abs(hours) - 12.0) < 1e-6


# --- results ahead of their age ----------------------------------------------------------


def test_a_28_day_result_seconds_after_casting_is_refused() -> None:
    now = CAST + timedelta(seconds=30)
    (problem,) = early_problems(CAST, 28.0, None, now, LabLimits())
    assert problem[0] == "curing_days"
    assert "BACKFILL_LAB__EARLY_RESULT_TOLERANCE_H" in problem[1]
    with pytest.raises(InvalidInput) as err:
        lab.make_lab_result("S-1", CAST, curing_days=28, ucs_kpa=400.0, now=now)
    assert err.value.field == "curing_days"


def test_a_result_may_come_within_the_tolerance_of_its_age() -> None:
    limits = LabLimits(early_result_tolerance_h=24.0)
    day_27 = CAST + timedelta(days=27)
    assert early_problems(CAST, 28.0, None, day_27, limits) == []
    assert fields(early_problems(CAST, 28.0, None, day_27 - timedelta(hours=1), limits)) == [
        "curing_days"
    ]
    # With tested_at the actual time counts, and it may never be ahead of now.
    assert early_problems(CAST, 28.0, day_27, day_27, limits) == []
    late = day_27 + timedelta(minutes=1)
    assert fields(early_problems(CAST, 28.0, late, day_27, limits)) == ["tested_at"]


def test_dates_at_the_ends_of_the_calendar_are_refused_not_overflowed() -> None:
    far = datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(InvalidInput) as err:
        lab.make_lab_result("S-1", far, curing_days=28, ucs_kpa=1.0, now=NOW)
    assert err.value.field == "cast_at"
    early = datetime(1, 1, 1, tzinfo=UTC)
    result = lab.make_lab_result("S-1", early, curing_days=28, ucs_kpa=1.0, now=NOW)
    assert result.cast_at == early  # only the sample's record can say it is wrong


# --- the sheet: numbers, quotes, dates ---------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    ["1_000", "\u0661\u0662\u0663", "\uff11\uff12", "1,5", "0x10", "nan", "inf", "1e", "--1"],
)
def test_a_number_a_lab_sheet_would_not_write_is_a_bad_cell(cell: str) -> None:
    text = HEADER + f'S-1,2026-03-01T08:00Z,7,"{cell}",,\n'
    sheet = lab.parse_lab_sheet(text)
    assert [(e.row, e.field) for e in sheet.errors] == [(2, "ucs_kpa")], sheet.errors
    assert sheet.rows == ()


@pytest.mark.parametrize("cell", ["12", "-0", "+5", "0.5", ".5", "5.", "1.2e3", "1E-2"])
def test_plain_decimal_numbers_are_read(cell: str) -> None:
    text = HEADER + f"S-1,2026-03-01T08:00Z,7,,400,{cell}\n"
    sheet = lab.parse_lab_sheet(text)
    dry = float(cell)
    if 0.0 < dry < 400.0:
        assert sheet.ok, sheet.errors
        assert sheet.rows[0].dry_mass_g == dry
    else:
        assert [e.field for e in sheet.errors] == ["dry_mass_g"]


def test_a_quote_left_open_refuses_the_sheet() -> None:
    text = HEADER + 'S-1,2026-03-01T08:00Z,7,100,,\nS-2,"2026-03-01T08:00Z,7,100,,\n'
    sheet = lab.parse_lab_sheet(text)
    assert not sheet.ok and sheet.rows == ()
    (error,) = sheet.errors
    assert error.field == "csv" and "quote" in error.message
    # A stray quote inside a cell, or text after a closing quote, is no cell either.
    sheet = lab.parse_lab_sheet(HEADER + 'S-1,"2026-03-01T08:00Z"x,7,100,,\n')
    assert [e.field for e in sheet.errors] == ["csv"]


def test_a_sheet_holds_each_rows_cast_to_its_samples_record_and_its_age_to_now() -> None:
    text = (
        HEADER
        + "S-1,2026-03-01T08:30Z,7,150,,\n"  # good
        + "S-2,2026-02-24T08:00Z,7,150,,\n"  # five days before the sample was cast
        + "S-3,0001-01-01T00:00Z,7,150,,\n"  # the year 1
        + "S-4,2026-03-01T08:00Z,1e-300,150,,\n"  # a test age of nothing
        + "S-5,2026-03-01T08:00Z,28,150,,\n"  # 28 days, 8 days after casting
    )
    recorded = {f"S-{k}": CAST for k in range(1, 6)}
    sheet = lab.parse_lab_sheet(
        text, now=CAST + timedelta(days=8), sample_cast_at=recorded, limits=LabLimits()
    )
    assert [(e.row, e.field) for e in sheet.errors] == [
        (3, "cast_at"),
        (4, "cast_at"),
        (5, "curing_days"),
        (6, "curing_days"),
    ]
    # A site with other limits says so in its settings.
    wide = LabLimits(cast_at_tolerance_h=24.0 * 6, curing_days_min=1e-301)
    sheet = lab.parse_lab_sheet(
        text.replace("0001-01-01", "2026-03-01").replace(",28,", ",1,"),
        now=CAST + timedelta(days=8),
        sample_cast_at=recorded,
        limits=wide,
    )
    assert sheet.ok, sheet.errors
