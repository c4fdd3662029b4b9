"""What the store hands back: plain frozen records, no database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class CalibrationRecord:
    id: str
    name: str
    version: int
    created_at: datetime
    created_by: str
    example: bool
    model: dict[str, Any]
    rows: list[dict[str, Any]]
    # Strength calibrations only: ``approved`` (designs may use it) or ``proposed`` (a
    # refit from lab results, ``proposal`` its figures, waiting for an engineer).
    status: str = "approved"
    approved_by: str | None = None
    approved_at: datetime | None = None
    proposed_from: str | None = None
    proposal: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RecipeRecord:
    id: str
    name: str
    version: int
    created_at: datetime
    created_by: str
    approved_by: str | None
    calibration_id: str | None
    mix: dict[str, Any]
    design: dict[str, Any] | None
    approved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PourRecord:
    id: str
    stope_id: str
    recipe_id: str
    state: str
    target_volume_m3: float
    paste_flow_m3_h: float
    created_at: datetime
    created_by: str
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime
    totals: dict[str, Any] = field(default_factory=dict)
    interruptions: list[dict[str, Any]] = field(default_factory=list)
    sample_ids: list[str] = field(default_factory=list)
    checkpoint_seq: int = 0
    plan_id: str | None = None  # the fill plan and stage (index) it belongs to, if any
    stage: int | None = None
    # The Cw correction in force when it started (service.operations.corrections,
    # ``Correction.to_pour``); None: the recipe's tailings Gs, the density gauge as read.
    correction: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    kind: str
    reason: str
    role: str
    pour_id: str | None
    seq: int | None
    acknowledged: bool | None
    old: dict[str, Any] | None
    new: dict[str, Any]
    detail: str | None
    prev_hash: str
    hash: str
    person: str | None = None  # who acted (None: the service, or an entry from before)


@dataclass(frozen=True, slots=True)
class StopeRecord:
    id: str
    name: str
    created_at: datetime
    created_by: str
    definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlanRecord:
    id: str
    stope_id: str
    version: int
    created_at: datetime
    created_by: str
    plan: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProgressRecord:
    stope_id: str
    plan_id: str
    progress: dict[str, Any]
    revision: int
    updated_at: datetime


DEFAULT_TEST_AGES_DAYS = (3.0, 7.0, 28.0)
"""The curing ages a cylinder is tested at unless its caster says otherwise: the plant's
own default, not a standard. 28 days is the acceptance age of concrete practice (ACI
318-19 §26.12); 3 and 7 days watch the early strength gain. Other ages a programme
tests at (14, 56, 90 days) a caster lists in ``test_ages_days``."""


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """A cylinder cast from a pour: when, the pour's placed volume then (None: unknown,
    a sample migrated from a pour's id list), the test ages planned. ``source``:
    ``pour`` (cast through the API) or ``migrated``."""

    id: str
    pour_id: str
    cast_at: datetime
    placed_m3: float | None
    test_ages_days: list[float]
    source: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class LabResultRecord:
    """One laboratory entry of a sample, never changed: a correction is a new entry
    naming the one it ``corrects``. ``cast_at`` as the lab recorded it (None: the
    sample's); ``source`` ``api`` or ``sheet`` (``sheet_id`` the import)."""

    id: str
    sample_id: str
    corrects: str | None
    cast_at: datetime | None
    tested_at: datetime | None
    curing_days: float | None
    wet_mass_g: float | None
    dry_mass_g: float | None
    volume_cm3: float | None
    bulk_density_kg_m3: float | None
    ucs_kpa: float | None
    note: str | None
    source: str
    sheet_id: str | None
    entered_at: datetime
    entered_by: str


@dataclass(frozen=True, slots=True)
class CorrectionRecord:
    """A Cw reconciliation and the correction it proposes: ``status`` ``proposed``,
    ``approved`` or ``none`` (nothing to correct); ``kind`` ``tailings_gs`` (the tailings
    Gs is ``tailings_sg``) or ``density_gauge`` (the paste density gauge reads
    ``density_bias_kg_m3`` high), both relative to the recipes' Gs
    ``assumed_tailings_sg`` and the gauge as read; ``reconciliation`` the estimate with
    its interval, the samples and the explanation."""

    id: str
    created_at: datetime
    created_by: str
    status: str
    verdict: str
    kind: str | None
    tailings_sg: float | None
    density_bias_kg_m3: float | None
    assumed_tailings_sg: float
    reconciliation: dict[str, Any]
    sample_ids: list[str]
    approved_by: str | None = None
    approved_at: datetime | None = None
