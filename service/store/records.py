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
