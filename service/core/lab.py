"""Laboratory results of paste cylinders: Cw from the masses, bulk density, the lab sheet.

A cylinder cast from a pour is weighed wet, oven-dried to constant mass and weighed dry
(the water content test of ASTM D2216-19, *Laboratory Determination of Water (Moisture)
Content of Soil and Rock by Mass*, dried at 110 +- 5 °C), and crushed at its curing ages
for UCS. From the masses:

- Cw of the sample = dry mass / wet mass: dry solids over total paste mass, the solids
  content of paste backfill practice (Belem, T. & Benzaazoua, M. (2008), "Design and
  application of underground mine paste backfill technology", Geotech. Geol. Eng.
  26(2):147-174). (ASTM D2216's water content w = water / dry solids is the same
  measurement: Cw = 1 / (1 + w).)
- Bulk density = wet mass / volume (ASTM D7263-21, *Laboratory Determination of Density
  and Unit Weight of Soil Specimens*, method B: measured dimensions), the volume of a
  cylinder being pi d^2 h / 4.

What the oven does to a cemented sample (why a cured cylinder's Cw reads high):
binder hydration binds part of the mixing water chemically. Oven drying at 105-110 °C
drives off the free (evaporable) water and only part of the bound water (ettringite
and gypsum lose much of theirs, C-S-H keeps most); the water that stays is the
*non-evaporable* water, about 0.23 g per g of fully hydrated Portland cement (Powers, T.C.
& Brownyard, T.L. (1946-47), "Studies of the physical properties of hardened Portland
cement paste", J. Am. Concrete Inst. 18, Proceedings 43; Taylor, H.F.W. (1997), *Cement
Chemistry*, 2nd ed., Thomas Telford). So most of the hydration water is *not* lost on
drying: it is counted as solids. For a sealed sample of as-mixed Cw, Bw, degree of
hydration alpha and non-evaporable water w_n per g of binder, the total mass is
conserved and dry = Ms + w_n alpha Mb with Mb = Ms Bw/(1 + Bw), hence

    Cw_lab = Cw (1 + k),   k = w_n alpha Bw / (1 + Bw)

(:func:`bound_water_corrected_solids_fraction` inverts it). At Bw 5 %, alpha 0.6 and
w_n 0.23, k = 0.0066: a paste mixed at Cw 75.0 % reads 75.5 %, half a point high, the
same order as the one-point Cw error a 3 % Gs error makes at 1,850-2,050 kg/m3 (the
slurry relation's sensitivity, :mod:`service.core.reconcile`): uncorrected, it can mask
or mimic a Gs error in the reconciliation. A fresh paste sample dried at once carries
almost none of this bias. Two more effects raise Cw_lab in the same direction: water
lost from an unsealed cylinder (bleed water drained, evaporation) before the wet mass is
taken, and salts dissolved in saline process water, which stay in the dry mass. The
reconciliation (:mod:`service.core.reconcile`) should be fed the corrected Cw, or the
samples of fresh paste.

Values in, values out: no I/O, no clock (``now`` is a parameter).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from service.core.lab_limits import (
    LabLimits,
    RecordedCast,
    age_problems,
    cast_problems,
    early_problems,
)
from service.errors import InvalidInput

# The API's id pattern (service.api.schemas.common.ID_PATTERN): the core may not import
# the web layer, so it is repeated here.
SAMPLE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
SAMPLE_ID_MAX_LENGTH = 64

DAYS_MAX = 3650.0
MASS_G_MAX = 1.0e5  # 100 kg: far above any laboratory specimen
VOLUME_CM3_MAX = 1.0e5
UCS_KPA_MAX = 1.0e5  # 100 MPa: stronger than any backfill (or most concrete)
# A bulk density outside this is a unit slip (g/cm3 typed as kg/m3) or not a paste: a
# saturated paste of solids heavier than water is denser than water.
BULK_DENSITY_MIN_KG_M3 = 1000.0
BULK_DENSITY_MAX_KG_M3 = 4000.0
# A bulk density given beside a volume must agree with mass/volume within this.
BULK_DENSITY_AGREEMENT = 0.01
# A nominal age and the actual one (tested_at - cast_at) may differ by this much before
# the row is taken for a typo: max(1 day, 50 % of the nominal age). Testing a little late
# is common; a "28-day" cylinder crushed at 7 days is a mistake.
AGE_MISMATCH_MIN_DAYS = 1.0
AGE_MISMATCH_FRACTION = 0.5
# Powers & Brownyard (1947): non-evaporable water of fully hydrated Portland cement.
NON_EVAPORABLE_WATER_PORTLAND = 0.23

_SECONDS_PER_DAY = 86400.0
SITE_DEFAULTS = LabLimits()
"""The site limits of a caller that states none (the settings' defaults)."""


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabResult:
    """One laboratory result of a cylinder.

    ``curing_days`` is the nominal test age (3, 7, 14, 28, 56 ...); ``tested_at`` the
    moment it was crushed (at least one of them is set). ``ucs_kpa`` is None for a
    mass-only row; 0 means the cylinder was too weak to test. ``solids_fraction`` (Cw,
    0-1) is dry/wet mass as measured, not corrected for bound water (see the module
    docstring); ``bulk_density_kg_m3`` is mass/volume or as the lab gave it.
    """

    sample_id: str
    cast_at: datetime
    tested_at: datetime | None = None
    curing_days: float | None = None
    wet_mass_g: float | None = None
    dry_mass_g: float | None = None
    volume_cm3: float | None = None
    bulk_density_kg_m3: float | None = None
    ucs_kpa: float | None = None
    pour_id: str | None = None

    @property
    def solids_fraction(self) -> float | None:
        """Cw = dry mass / wet mass (None without both masses)."""
        if self.wet_mass_g is None or self.dry_mass_g is None:
            return None
        return self.dry_mass_g / self.wet_mass_g

    @property
    def age_days(self) -> float:
        """The actual age at test (tested_at - cast_at) when known, else the nominal."""
        if self.tested_at is not None:
            return (self.tested_at - self.cast_at).total_seconds() / _SECONDS_PER_DAY
        assert self.curing_days is not None  # make_lab_result requires one of them
        return self.curing_days

    @property
    def nominal_days(self) -> float:
        """The nominal test age when given, else the actual age."""
        return self.curing_days if self.curing_days is not None else self.age_days

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        cw = self.solids_fraction
        return {
            "sample_id": self.sample_id,
            "pour_id": self.pour_id,
            "cast_at": iso(self.cast_at),
            "tested_at": iso(self.tested_at),
            "curing_days": self.curing_days,
            "age_days": self.age_days,
            "wet_mass_g": self.wet_mass_g,
            "dry_mass_g": self.dry_mass_g,
            "solids_pct": None if cw is None else cw * 100.0,
            "volume_cm3": self.volume_cm3,
            "bulk_density_kg_m3": self.bulk_density_kg_m3,
            "ucs_kpa": self.ucs_kpa,
        }


@dataclass(frozen=True)
class RowError:
    """One problem of a lab sheet: ``row`` is the line of the file (the header is the
    first non-comment line), ``field`` the column (or ``csv`` for the file itself)."""

    row: int
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class LabSheet:
    """A parsed lab sheet: every row, or (when any is bad) no rows and every error.

    The import is all or nothing: ``rows`` is empty whenever ``errors`` is not.
    ``ignored_columns`` lists header names the parser does not know (kept out, said).
    """

    rows: tuple[LabResult, ...]
    errors: tuple[RowError, ...]
    ignored_columns: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self) -> tuple[LabResult, ...]:
        """The rows, or InvalidInput (field ``csv``) listing every error in ``errors``."""
        if self.errors:
            first = self.errors[0]
            raise InvalidInput(
                "csv",
                f"the lab sheet has {len(self.errors)} error(s); first: row {first.row}, "
                f"{first.field}: {first.message}",
                errors=[e.to_dict() for e in self.errors],
            )
        return self.rows


# --- the relations ------------------------------------------------------------------------


def solids_fraction_from_masses(wet_mass_g: float, dry_mass_g: float) -> float:
    """Cw = dry mass / wet mass (ASTM D2216-19 oven drying; Cw as dry solids over total
    paste mass, Belem & Benzaazoua 2008).

    InvalidInput naming ``wet_mass_g`` or ``dry_mass_g`` unless 0 < dry < wet (a paste
    holds water) and both are finite and plausible.
    """
    problems = _mass_problems(wet_mass_g, dry_mass_g)
    if problems:
        raise InvalidInput(*problems[0])
    return dry_mass_g / wet_mass_g


def bound_water_corrected_solids_fraction(
    lab_solids_fraction: float,
    binder_ratio: float,
    degree_of_hydration: float,
    non_evaporable_water_ratio: float = NON_EVAPORABLE_WATER_PORTLAND,
) -> float:
    """The as-mixed Cw of a sealed, cured sample from its oven-dry Cw:
    Cw = Cw_lab / (1 + w_n alpha Bw/(1 + Bw)).

    The bound (non-evaporable) water w_n alpha Mb stays in the oven-dry mass (Powers &
    Brownyard 1947; Taylor 1997; derivation in the module docstring). ``binder_ratio``
    is Bw (binder / dry tailings, Belem & Benzaazoua convention), ``degree_of_hydration``
    alpha (0-1, from the binder supplier or a loss-on-ignition test),
    ``non_evaporable_water_ratio`` w_n (g per g of binder hydrated; 0.23 for Portland
    cement, lower for slag blends).
    """
    if not 0.0 < lab_solids_fraction < 1.0:
        raise InvalidInput(
            "solids_fraction", f"Cw must be between 0 and 1 (got {lab_solids_fraction!r})"
        )
    if not 0.0 < binder_ratio <= 1.0:
        raise InvalidInput("binder_ratio", f"Bw must be in (0, 1] (got {binder_ratio!r})")
    if not 0.0 <= degree_of_hydration <= 1.0:
        raise InvalidInput(
            "degree_of_hydration",
            f"degree_of_hydration must be between 0 and 1 (got {degree_of_hydration!r})",
        )
    if not 0.0 <= non_evaporable_water_ratio <= 0.5:
        raise InvalidInput(
            "non_evaporable_water_ratio",
            "non_evaporable_water_ratio must be between 0 and 0.5 g/g "
            f"(got {non_evaporable_water_ratio!r})",
        )
    k = non_evaporable_water_ratio * degree_of_hydration * binder_ratio / (1.0 + binder_ratio)
    return lab_solids_fraction / (1.0 + k)


def cylinder_volume_cm3(diameter_mm: float, height_mm: float) -> float:
    """V = pi d^2 h / 4 of a right cylinder, in cm3 (ASTM D7263-21 method B)."""
    for name, value in (("diameter_mm", diameter_mm), ("height_mm", height_mm)):
        if not 0.0 < value <= 1.0e4:
            raise InvalidInput(name, f"{name} must be above 0 and at most 10,000 (got {value!r})")
    return math.pi * diameter_mm * diameter_mm * height_mm / 4.0 / 1000.0


def bulk_density_kg_m3(wet_mass_g: float, volume_cm3: float) -> float:
    """Bulk (wet) density = mass / volume: g/cm3 x 1000 = kg/m3 (ASTM D7263-21).

    InvalidInput naming ``wet_mass_g`` / ``volume_cm3`` for a bad value, and
    ``volume_cm3`` when the density is not that of a paste (1,000-4,000 kg/m3).
    """
    problems = _bulk_density_problems(wet_mass_g, volume_cm3, None)
    if problems:
        raise InvalidInput(*problems[0])
    return wet_mass_g / volume_cm3 * 1000.0


# --- one result ---------------------------------------------------------------------------


def make_lab_result(
    sample_id: str,
    cast_at: datetime,
    *,
    tested_at: datetime | None = None,
    curing_days: float | None = None,
    wet_mass_g: float | None = None,
    dry_mass_g: float | None = None,
    volume_cm3: float | None = None,
    bulk_density_kg_m3: float | None = None,
    ucs_kpa: float | None = None,
    pour_id: str | None = None,
    now: datetime | None = None,
    limits: LabLimits = SITE_DEFAULTS,
    sample_cast_at: datetime | RecordedCast | None = None,
) -> LabResult:
    """A validated :class:`LabResult`; the bulk density is computed from the wet mass and
    ``volume_cm3`` when the volume is given.

    Raises InvalidInput naming the first bad field: ``sample_id`` (pattern, length),
    ``cast_at`` / ``tested_at`` (time zone, order, not after ``now``; ``cast_at`` within
    the site's tolerance of ``sample_cast_at``, the cast the service recorded, when
    given), ``curing_days`` (the site's test ages, :class:`LabLimits`; within max(1 day,
    50 %) of the actual age when both are given; not more than the site's tolerance
    ahead of ``now``),
    ``wet_mass_g`` / ``dry_mass_g`` (both or neither, 0 < dry < wet), ``volume_cm3`` /
    ``bulk_density_kg_m3`` (1,000-4,000 kg/m3; the two agree within 1 %), ``ucs_kpa``
    (0-100 MPa; 0 = too weak to test) and ``ucs_kpa`` again when the row has neither a
    UCS nor masses.
    """
    problems = _result_problems(
        sample_id,
        cast_at,
        tested_at,
        curing_days,
        wet_mass_g,
        dry_mass_g,
        volume_cm3,
        bulk_density_kg_m3,
        ucs_kpa,
        pour_id,
        now,
        limits,
        sample_cast_at,
    )
    if problems:
        raise InvalidInput(*problems[0])
    if volume_cm3 is not None and wet_mass_g is not None:
        bulk_density_kg_m3 = wet_mass_g / volume_cm3 * 1000.0
    return LabResult(
        sample_id=sample_id,
        cast_at=cast_at,
        tested_at=tested_at,
        curing_days=curing_days,
        wet_mass_g=wet_mass_g,
        dry_mass_g=dry_mass_g,
        volume_cm3=volume_cm3,
        bulk_density_kg_m3=bulk_density_kg_m3,
        ucs_kpa=ucs_kpa,
        pour_id=pour_id,
    )


Problem = tuple[str, str]


def _mass_problems(wet_mass_g: float | None, dry_mass_g: float | None) -> list[Problem]:
    out: list[Problem] = []
    if wet_mass_g is None and dry_mass_g is None:
        return out
    if wet_mass_g is None:
        return [("wet_mass_g", "a dry mass needs its wet mass")]
    if dry_mass_g is None:
        return [("dry_mass_g", "a wet mass needs its dry mass (oven-dried)")]
    if not 0.0 < wet_mass_g <= MASS_G_MAX:
        out.append(
            (
                "wet_mass_g",
                f"wet_mass_g must be above 0 and at most {MASS_G_MAX:g} g ({wet_mass_g!r})",
            )
        )
    if not 0.0 < dry_mass_g <= MASS_G_MAX:
        out.append(
            (
                "dry_mass_g",
                f"dry_mass_g must be above 0 and at most {MASS_G_MAX:g} g ({dry_mass_g!r})",
            )
        )
    elif not out and not dry_mass_g < wet_mass_g:
        out.append(
            (
                "dry_mass_g",
                f"dry_mass_g {dry_mass_g:g} must be below wet_mass_g {wet_mass_g:g}: a paste "
                "holds water (masses swapped?)",
            )
        )
    return out


def _density_in_range(field: str, density: float) -> list[Problem]:
    if BULK_DENSITY_MIN_KG_M3 < density <= BULK_DENSITY_MAX_KG_M3:
        return []
    return [
        (
            field,
            f"the bulk density {density:.6g} kg/m3 is not that of a paste (above "
            f"{BULK_DENSITY_MIN_KG_M3:g} and at most {BULK_DENSITY_MAX_KG_M3:g} kg/m3; "
            "g/cm3 typed for kg/m3, or mm3 for cm3?)",
        )
    ]


def _bulk_density_problems(
    wet_mass_g: float | None, volume_cm3: float | None, given_density: float | None
) -> list[Problem]:
    if volume_cm3 is not None:
        if not 0.0 < volume_cm3 <= VOLUME_CM3_MAX:
            return [
                (
                    "volume_cm3",
                    f"volume_cm3 must be above 0 and at most {VOLUME_CM3_MAX:g} ({volume_cm3!r})",
                )
            ]
        if wet_mass_g is None:
            return [("wet_mass_g", "a volume needs the wet mass to give a bulk density")]
        if not 0.0 < wet_mass_g <= MASS_G_MAX:
            return []  # reported by the mass check
        density = wet_mass_g / volume_cm3 * 1000.0
        problems = _density_in_range("volume_cm3", density)
        if problems:
            return problems
        if (
            given_density is not None
            and math.isfinite(given_density)
            and abs(given_density - density) > BULK_DENSITY_AGREEMENT * density
        ):
            return [
                (
                    "bulk_density_kg_m3",
                    f"bulk_density_kg_m3 {given_density:g} disagrees with wet mass / volume "
                    f"= {density:.1f} kg/m3 by more than {BULK_DENSITY_AGREEMENT * 100:g} %",
                )
            ]
        return []
    if given_density is not None:
        return _density_in_range("bulk_density_kg_m3", given_density)
    return []


def _aware(field: str, value: datetime) -> list[Problem]:
    if value.tzinfo is None or value.utcoffset() is None:
        return [(field, f"{field} has no time zone offset ({value.isoformat()})")]
    return []


def _result_problems(
    sample_id: str,
    cast_at: datetime,
    tested_at: datetime | None,
    curing_days: float | None,
    wet_mass_g: float | None,
    dry_mass_g: float | None,
    volume_cm3: float | None,
    bulk_density: float | None,
    ucs_kpa: float | None,
    pour_id: str | None,
    now: datetime | None,
    limits: LabLimits,
    sample_cast_at: datetime | RecordedCast | None,
) -> list[Problem]:
    out: list[Problem] = []
    out += _id_problems("sample_id", sample_id)
    if pour_id is not None:
        out += _id_problems("pour_id", pour_id)
    times_ok = True
    for field, value in (("cast_at", cast_at), ("tested_at", tested_at)):
        if value is not None:
            bad = _aware(field, value)
            times_ok = times_ok and not bad
            out += bad
    if times_ok and sample_cast_at is not None:
        out += cast_problems(cast_at, sample_cast_at, limits)
    if times_ok and tested_at is not None and tested_at < cast_at:
        out.append(("tested_at", "tested_at is before cast_at"))
    elif times_ok and now is not None and cast_at > now:
        out.append(("cast_at", f"cast_at {cast_at.isoformat()} is in the future"))
    elif times_ok and now is not None:
        out += early_problems(cast_at, curing_days, tested_at, now, limits)
    if curing_days is not None and not 0.0 < curing_days <= DAYS_MAX:
        out.append(
            (
                "curing_days",
                f"curing_days must be above 0 and at most {DAYS_MAX:g} ({curing_days!r})",
            )
        )
    elif curing_days is None and tested_at is None:
        out.append(("curing_days", "give curing_days or tested_at (the test age)"))
    else:
        actual = None
        if tested_at is not None and times_ok and tested_at >= cast_at:
            actual = (tested_at - cast_at).total_seconds() / _SECONDS_PER_DAY
        # The site's test ages are those of strength tests: a fresh paste weighed for
        # its Cw (masses only) is hours old.
        age = age_problems(curing_days, actual, limits) if ucs_kpa is not None else []
        out += age
        if not age and curing_days is not None and actual is not None:
            allowed = max(AGE_MISMATCH_MIN_DAYS, AGE_MISMATCH_FRACTION * curing_days)
            if abs(actual - curing_days) > allowed:
                out.append(
                    (
                        "curing_days",
                        f"curing_days {curing_days:g} but tested_at is {actual:.1f} days "
                        f"after cast_at (more than {allowed:g} days apart)",
                    )
                )
    out += _mass_problems(wet_mass_g, dry_mass_g)
    out += _bulk_density_problems(wet_mass_g, volume_cm3, bulk_density)
    if ucs_kpa is not None and not 0.0 <= ucs_kpa <= UCS_KPA_MAX:
        out.append(
            (
                "ucs_kpa",
                f"ucs_kpa must be between 0 (too weak to test) and {UCS_KPA_MAX:g} ({ucs_kpa!r})",
            )
        )
    if ucs_kpa is None and wet_mass_g is None and dry_mass_g is None:
        out.append(("ucs_kpa", "the row has no result: give ucs_kpa or the masses"))
    return out


def _id_problems(field: str, value: str) -> list[Problem]:
    if not value:
        return [(field, f"{field} is empty")]
    if len(value) > SAMPLE_ID_MAX_LENGTH or not SAMPLE_ID_PATTERN.match(value):
        return [
            (
                field,
                f"{field} {value[:80]!r} must be 1-{SAMPLE_ID_MAX_LENGTH} letters, digits or "
                "._:- starting with a letter or digit",
            )
        ]
    return []


# --- the lab sheet ------------------------------------------------------------------------

REQUIRED_COLUMNS = ("sample_id", "cast_at")
AGE_COLUMNS = ("tested_at", "curing_days")
RESULT_COLUMNS = ("ucs_kpa", "wet_mass_g")
KNOWN_COLUMNS = (
    "sample_id",
    "pour_id",
    "cast_at",
    "tested_at",
    "curing_days",
    "wet_mass_g",
    "dry_mass_g",
    "volume_cm3",
    "bulk_density_kg_m3",
    "ucs_kpa",
)
_NUMBER_COLUMNS = (
    "curing_days",
    "wet_mass_g",
    "dry_mass_g",
    "volume_cm3",
    "bulk_density_kg_m3",
    "ucs_kpa",
)
DEFAULT_MAX_ROWS = 5000
# A decimal number as a spreadsheet or a lab instrument writes it: 12, -0.5, .5, 1.2e3.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_lab_sheet(
    text: str,
    *,
    assume_timezone: tzinfo | None = None,
    now: datetime | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    limits: LabLimits = SITE_DEFAULTS,
    sample_cast_at: Mapping[str, datetime | RecordedCast] | None = None,
) -> LabSheet:
    """Parse a lab sheet (CSV) into :class:`LabResult` rows, or every error.

    Columns (header names, any order, case and surrounding blanks ignored):
    ``sample_id``, ``cast_at`` (ISO 8601), ``tested_at`` (ISO 8601) and/or
    ``curing_days``, ``ucs_kpa``, ``wet_mass_g`` and ``dry_mass_g``, ``volume_cm3`` or
    ``bulk_density_kg_m3``, optionally ``pour_id``. The header needs ``sample_id``,
    ``cast_at``, one of ``tested_at`` / ``curing_days`` and one of ``ucs_kpa`` /
    ``wet_mass_g``. Empty cells are missing values. Lines whose first cell starts with
    ``#`` and blank lines are skipped. Timestamps without an offset take
    ``assume_timezone`` (the site's zone) or are refused when it is None. Numbers are
    written as a lab sheet writes them: ASCII digits, an optional sign, point and
    exponent (no ``1_000``, no other scripts' digits); a quote left open is a bad file.
    ``sample_cast_at`` (sample id -> the cast the service recorded) holds each row's
    ``cast_at`` to the site's tolerance; ``limits`` are the site's test ages and
    tolerances (:class:`~service.core.lab_limits.LabLimits`). Every bad cell of every
    row is reported (:class:`RowError`: file line, column, message); any error empties
    ``rows`` so the caller refuses the whole import.
    """
    if max_rows < 1:
        raise InvalidInput("max_rows", f"max_rows must be at least 1 ({max_rows!r})")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    errors: list[RowError] = []
    header: list[str] | None = None
    header_row = 0
    rows: list[LabResult] = []
    count = 0
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                header_row = line
                errors += _header_errors(header, line)
                if errors:
                    break
                continue
            count += 1
            if count > max_rows:
                errors.append(RowError(line, "csv", f"the lab sheet has more than {max_rows} rows"))
                break
            result, row_errors = _parse_row(
                header, record, line, assume_timezone, now, limits, sample_cast_at or {}
            )
            errors += row_errors
            if result is not None:
                rows.append(result)
    except csv.Error as err:
        hint = " (a quote opened and not closed?)" if "end of data" in str(err) else ""
        errors.append(RowError(reader.line_num, "csv", f"the file is not valid CSV: {err}{hint}"))
    if header is None and not errors:
        errors.append(RowError(1, "csv", "the lab sheet is empty (no header row)"))
    elif header is not None and not errors and not rows:
        errors.append(RowError(header_row, "csv", "the lab sheet has a header but no rows"))
    ignored = tuple(c for c in (header or []) if c and c not in KNOWN_COLUMNS)
    if errors:
        return LabSheet((), tuple(errors), ignored)
    return LabSheet(tuple(rows), (), ignored)


def _header_errors(header: Sequence[str], line: int) -> list[RowError]:
    errors: list[RowError] = []
    seen: set[str] = set()
    for name in header:
        if name in seen and name in KNOWN_COLUMNS:
            errors.append(RowError(line, name, f"column {name!r} appears twice"))
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            errors.append(RowError(line, name, f"the lab sheet has no {name!r} column"))
    for group in (AGE_COLUMNS, RESULT_COLUMNS):
        if not seen.intersection(group):
            errors.append(
                RowError(
                    line,
                    group[0],
                    f"the lab sheet needs a {group[0]!r} or a {group[1]!r} column",
                )
            )
    if "wet_mass_g" in seen and "dry_mass_g" not in seen:
        errors.append(RowError(line, "dry_mass_g", "a wet_mass_g column needs dry_mass_g"))
    return errors


def _parse_row(
    header: Sequence[str],
    record: Sequence[str],
    line: int,
    assume_timezone: tzinfo | None,
    now: datetime | None,
    limits: LabLimits,
    sample_cast_at: Mapping[str, datetime | RecordedCast],
) -> tuple[LabResult | None, list[RowError]]:
    if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
        return None, [
            RowError(line, "csv", f"the row has {len(record)} cells for {len(header)} columns")
        ]
    cells = {name: (record[i].strip() if i < len(record) else "") for i, name in enumerate(header)}
    errors: list[RowError] = []
    numbers: dict[str, float | None] = {}
    for name in _NUMBER_COLUMNS:
        numbers[name], problem = _number(name, cells.get(name, ""))
        if problem:
            errors.append(RowError(line, name, problem))
    times: dict[str, datetime | None] = {}
    for name in ("cast_at", "tested_at"):
        times[name], problem = _timestamp(name, cells.get(name, ""), assume_timezone)
        if problem:
            errors.append(RowError(line, name, problem))
    if errors:
        return None, errors
    cast_at = times["cast_at"]
    if cast_at is None:
        return None, [RowError(line, "cast_at", "cast_at is empty")]
    pour_id = cells.get("pour_id") or None
    recorded_cast = sample_cast_at.get(cells.get("sample_id", ""))
    problems = _result_problems(
        cells.get("sample_id", ""),
        cast_at,
        times["tested_at"],
        numbers["curing_days"],
        numbers["wet_mass_g"],
        numbers["dry_mass_g"],
        numbers["volume_cm3"],
        numbers["bulk_density_kg_m3"],
        numbers["ucs_kpa"],
        pour_id,
        now,
        limits,
        recorded_cast,
    )
    if problems:
        return None, [RowError(line, field, message) for field, message in problems]
    result = make_lab_result(
        cells["sample_id"],
        cast_at,
        tested_at=times["tested_at"],
        curing_days=numbers["curing_days"],
        wet_mass_g=numbers["wet_mass_g"],
        dry_mass_g=numbers["dry_mass_g"],
        volume_cm3=numbers["volume_cm3"],
        bulk_density_kg_m3=numbers["bulk_density_kg_m3"],
        ucs_kpa=numbers["ucs_kpa"],
        pour_id=pour_id,
        now=now,
        limits=limits,
        sample_cast_at=recorded_cast,
    )
    return result, []


def _number(name: str, cell: str) -> tuple[float | None, str | None]:
    if not cell:
        return None, None
    if not _DECIMAL.fullmatch(cell):
        # float() would take "1_000" as 1000, digits of other scripts, "nan", "inf".
        return None, (
            f"{name} is not a number as a lab sheet writes one (ASCII digits 0-9, an "
            f"optional sign, decimal point and exponent): {cell[:40]!r}"
        )
    value = float(cell)
    if not math.isfinite(value):
        return None, f"{name} must be a finite number: {cell[:40]!r}"
    return value, None


def _timestamp(
    name: str, cell: str, assume_timezone: tzinfo | None
) -> tuple[datetime | None, str | None]:
    if not cell:
        return None, None
    try:
        value = datetime.fromisoformat(cell)
    except ValueError:
        return None, f"{name} is not an ISO 8601 date or time: {cell[:40]!r}"
    if value.tzinfo is None or value.utcoffset() is None:
        if assume_timezone is None:
            return None, (
                f"{name} {cell[:40]!r} has no time zone offset (add one, e.g. +05:00, or "
                "import with the site's time zone)"
            )
        value = value.replace(tzinfo=assume_timezone)
    return value, None


def results_by_sample(results: Iterable[LabResult]) -> dict[str, list[LabResult]]:
    """Results grouped by sample id, each group in order of test age."""
    groups: dict[str, list[LabResult]] = {}
    for result in results:
        groups.setdefault(result.sample_id, []).append(result)
    for group in groups.values():
        group.sort(key=lambda r: r.age_days)
    return groups
