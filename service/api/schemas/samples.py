"""Schemas of the lab loop: samples cast from pours, laboratory results, lab sheets,
compliance and its notices.

Units as everywhere in the API: ``solids_pct`` is Cw (dry solids as % of paste mass,
here the sample's own, dry mass / wet mass), masses in g, volumes in cm3, densities in
kg/m3, strengths in kPa, ages in days; pass fractions are % of cylinders.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from service.api.schemas.common import (
    JsonDateTime,
    MultilineText,
    Public,
    ResourceId,
    Strict,
    Text,
)
from service.api.schemas.pours import SampleId

MAX_SHEET_CHARS = 1_000_000

TestAgeDays = Annotated[float, Field(gt=0.0, le=3650.0)]


class SamplesCast(Strict):
    """Cylinders cast from the pour now: their ids (unique on the site) and the curing
    ages they are to be tested at."""

    sample_ids: Annotated[list[SampleId], Field(min_length=1, max_length=200)]
    test_ages_days: Annotated[
        list[TestAgeDays] | None,
        Field(
            min_length=1,
            max_length=12,
            description="Planned test ages (default 3, 7 and 28 days); the ages of the "
            "pour's strength requirements are due too.",
        ),
    ] = None


_MASS = Field(gt=0.0, le=1.0e5)


class LabResultCreate(Strict):
    """One laboratory result of a sample: a UCS at a curing age and/or its wet and dry
    masses (the sample's Cw) and bulk density. ``curing_days`` (the nominal test age)
    or ``tested_at`` says when; with both they must agree (within max(1 day, 50 %)).
    ``corrects`` names an entry of this sample that this one corrects (nothing is
    overwritten: the correction is a new entry, and the newest of a chain counts)."""

    curing_days: Annotated[float | None, Field(gt=0.0, le=3650.0)] = None
    tested_at: JsonDateTime | None = Field(
        default=None, description="When the cylinder was crushed (with a time zone)."
    )
    cast_at: JsonDateTime | None = Field(
        default=None,
        description="When the lab cast it, if it differs from the sample's record.",
    )
    ucs_kpa: Annotated[
        float | None,
        Field(ge=0.0, le=1.0e5, description="Unconfined compressive strength; 0: too weak."),
    ] = None
    wet_mass_g: Annotated[float | None, _MASS] = None
    dry_mass_g: Annotated[float | None, Field(gt=0.0, le=1.0e5, description="Oven-dry.")] = None
    volume_cm3: Annotated[
        float | None, Field(gt=0.0, le=1.0e5, description="Gives the bulk density.")
    ] = None
    bulk_density_kg_m3: Annotated[float | None, Field(gt=0.0, le=1.0e4)] = None
    corrects: ResourceId | None = Field(
        default=None, description="The id of the entry this one corrects."
    )
    note: Annotated[Text | None, Field(max_length=500)] = None


class LabSheetImport(Strict):
    """A lab sheet as CSV text. Columns: ``sample_id``, ``cast_at`` (ISO 8601),
    ``tested_at`` and/or ``curing_days``, ``ucs_kpa``, ``wet_mass_g`` with
    ``dry_mass_g``, ``volume_cm3`` or ``bulk_density_kg_m3``; optionally ``pour_id``
    (checked against the sample), ``corrects`` (the entry a row corrects) and ``note``.
    Lines starting with ``#`` are comments. Any bad row refuses the whole sheet (422,
    ``errors`` lists every one: row = line of the file, field, message)."""

    csv: Annotated[MultilineText, Field(min_length=1, max_length=MAX_SHEET_CHARS)]
    timezone: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=64,
            description="IANA time zone of timestamps written without an offset "
            "(e.g. Asia/Almaty); without it such a timestamp is a bad row.",
        ),
    ] = None


class LabResultPublic(Public):
    id: str
    sample_id: str
    pour_id: str
    corrects: str | None = Field(description="The entry this one corrects.")
    corrected_by: str | None = Field(description="The entry that corrects this one.")
    current: bool = Field(description="Not corrected: the entry that counts.")
    cast_at: datetime = Field(description="The lab's cast time, else the sample's.")
    tested_at: datetime | None
    curing_days: float | None = Field(description="Nominal test age.")
    age_days: float = Field(description="Actual age at test when tested_at is known.")
    ucs_kpa: float | None
    wet_mass_g: float | None
    dry_mass_g: float | None
    solids_pct: float | None = Field(
        description="Cw of the sample: dry / wet mass, as measured (a cured cylinder "
        "reads high by its bound water)."
    )
    volume_cm3: float | None
    bulk_density_kg_m3: float | None
    note: str | None
    source: str = Field(description="api or sheet")
    sheet_id: str | None
    entered_at: datetime
    entered_by: str = Field(description="Role of the key that entered it.")


class SamplePublic(Public):
    id: str
    pour_id: str
    cast_at: datetime
    placed_m3: float | None = Field(
        description="The pour's placed volume when the cylinder was cast (None: unknown)."
    )
    test_ages_days: list[float]
    source: str = Field(description="pour (cast through the API) or migrated")
    created_at: datetime
    created_by: str
    results: list[LabResultPublic] = Field(description="Every entry, corrections included.")


class SampleList(BaseModel):
    items: list[SamplePublic]


class LabSheetPublic(Public):
    sheet_id: str
    imported: int
    results: list[LabResultPublic]
    ignored_columns: list[str]


class RequirementUsedPublic(Public):
    name: str
    required_ucs_kpa: float
    curing_days: float
    design_pass_pct: float | None = Field(
        description="The design's pass fraction (stated by the design, else the site's)."
    )


class PourBasisPublic(Public):
    """What a pour's cylinders are judged against."""

    pour_id: str
    stope_id: str
    stage: int | None
    stage_name: str | None
    recipe_id: str
    requirements_from: str = Field(
        description="stage (the stope's fill plan), design (the recipe's design record) or none"
    )
    requirements: list[RequirementUsedPublic]


class JudgementPublic(Public):
    sample_id: str
    pour_id: str
    stope_id: str
    stage_id: str | None
    requirement: str
    required_ucs_kpa: float
    requirement_days: float
    age_days: float
    ucs_kpa: float
    margin_kpa: float = Field(description="Tested minus required (negative: failed).")
    passed: bool


class PassFractionPublic(Public):
    """Of one group (a sample, pour, stage or stope) for one requirement: passed of n
    cylinders tested at its age, the interval of the pass fraction and the design's.
    Cylinders of one pour share its paste: they are counted in clusters (pours in a
    stage or stope, casts in a pour) and the interval is on n / design_effect effective
    cylinders (Rao & Scott 1992)."""

    group: str
    group_id: str
    requirement: str
    required_ucs_kpa: float
    curing_days: float
    n: int
    passed: int
    pass_pct: float | None
    pass_pct_low: float | None
    pass_pct_high: float | None
    confidence_pct: float
    design_pass_pct: float | None
    p_at_most: float | None = Field(
        description="The probability of at most this many passes had the design held."
    )
    verdict: str = Field(
        description="no_results, no_design, below_design, consistent or above_design"
    )
    clusters: int = Field(description="Pours (in a stage or stope) or casts (in a pour).")
    design_effect: float | None = Field(
        description="The variance of the pass fraction over the clusters against that of "
        "independent cylinders, between 1 and n / clusters."
    )
    effective_n: float | None = Field(
        description="n / design_effect: what the cylinders weigh as independent ones."
    )


class StrengthTestPublic(Public):
    """A strength test (ACI 318 adapted): the cylinders of one pour cast together and
    tested at a requirement's age; its strength is their mean."""

    pour_id: str
    stope_id: str
    stage_id: str | None
    cast_at: datetime
    requirement: str
    required_ucs_kpa: float
    curing_days: float
    sample_ids: list[str]
    cylinders_kpa: list[float]
    strength_kpa: float = Field(description="The mean of the cylinders.")
    gross_low_limit_kpa: float = Field(
        description="(1 - BACKFILL_DESIGN__GROSS_LOW_MARGIN_PCT / 100) x the requirement."
    )
    below_requirement: bool
    gross_low: bool = Field(description="Below gross_low_limit_kpa: a high notice.")


class StrengthTestRefPublic(Public):
    pour_id: str
    cast_at: datetime


class RunningAveragePublic(Public):
    """The mean of consecutive tests of a stope against a requirement, in cast order
    (BACKFILL_DESIGN__CONSECUTIVE_TESTS of them, 3 as in ACI 318)."""

    stope_id: str
    requirement: str
    required_ucs_kpa: float
    curing_days: float
    tests: list[StrengthTestRefPublic]
    average_kpa: float
    passed: bool = Field(description="The average reaches the requirement.")


class NoticePublic(Public):
    kind: str = Field(
        description="gross_low (a test far below the requirement) and running_average "
        "(consecutive tests averaging below it): high; below_design (a group's pass fraction "
        "below the design's): high; overdue: medium; behind, unknown_sample: low; "
        "low_cylinder (one cylinder below the requirement, expected of 1 - p of a design at "
        "pass fraction p): info"
    )
    severity: str = Field(description="high, medium, low or info")
    detail: str
    sample_id: str | None
    pour_id: str | None
    stope_id: str | None
    stage_id: str | None
    requirement: str | None
    due_at: datetime | None


class CompliancePublic(Public):
    scope: str = Field(description="pour or stope")
    id: str
    stope: str
    evaluated_at: datetime
    pours: list[PourBasisPublic]
    samples: int
    pass_fractions: list[PassFractionPublic]
    judgements: list[JudgementPublic]
    tests: list[StrengthTestPublic] = Field(
        description="The strength tests: the cylinders of a pour cast together, averaged."
    )
    running_averages: list[RunningAveragePublic] = Field(
        description="Every average of consecutive tests of a stope against a requirement."
    )
    notices: list[NoticePublic] = Field(description="Most severe first.")


class NoticeList(Public):
    evaluated_at: datetime
    items: list[NoticePublic]
