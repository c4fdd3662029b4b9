"""Schemas of the stope endpoints: a stope, its fill plan (stages), their progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from service.api.schemas.common import Public, ResourceId, Strict, Text
from service.api.schemas.pours import SampleId

LengthM = Annotated[float, Field(gt=0.0, le=1.0e4)]
StageName = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", examples=["plug"])
]


class StopeCreate(Strict):
    """A stope: its geometry (a plan area, or length and width, or a volume, with the
    height) and its barricade's rating. Fill height = placed volume / plan area."""

    name: Annotated[Text, Field(min_length=1, max_length=100, examples=["S-101"])]
    height_m: LengthM
    plan_area_m2: Annotated[float | None, Field(gt=0.0, le=1.0e6)] = None
    length_m: LengthM | None = None
    width_m: LengthM | None = None
    volume_m3: Annotated[float | None, Field(gt=0.0, le=1.0e8)] = None
    barricade_rating_kpa: Annotated[
        float, Field(gt=0.0, le=1.0e4, description="Total pressure the barricade is rated for.")
    ]
    barricade_high_alarm_pct: Annotated[
        float,
        Field(
            gt=0.0, le=100.0, description="High alarm at this % of the rating (at 100 %: pause)."
        ),
    ] = 80.0

    @model_validator(mode="after")
    def _one_geometry(self) -> StopeCreate:
        given = [
            self.plan_area_m2 is not None,
            self.length_m is not None or self.width_m is not None,
            self.volume_m3 is not None,
        ]
        if sum(given) != 1:
            raise ValueError("give exactly one of plan_area_m2, length_m with width_m, volume_m3")
        if given[1] and (self.length_m is None or self.width_m is None):
            raise ValueError("length_m and width_m go together")
        return self


class StageRequirementIn(Strict):
    name: StageName
    ucs_kpa: Annotated[float, Field(gt=0.0, le=1.0e5)]
    curing_days: Annotated[float, Field(gt=0.0, le=3650.0)]


class StageIn(Strict):
    """One stage: its recipe version, its extent (the fill height at its top, or its own
    volume), the rise-rate limit and the cure hold before the next stage."""

    name: StageName
    recipe_id: ResourceId
    top_height_m: LengthM | None = None
    stage_volume_m3: Annotated[float | None, Field(gt=0.0, le=1.0e8)] = None
    max_rise_rate_m_h: Annotated[float, Field(gt=0.0, le=100.0)]
    cure_hold_h: Annotated[float, Field(ge=0.0, le=10_000.0)] = 0.0
    switch_at_top: bool = Field(
        default=False,
        description="At this stage's top the next stage's recipe takes over without "
        "stopping (no hold); otherwise the pour stops, the stage cures and waits for a "
        "release.",
    )
    requirements: Annotated[list[StageRequirementIn], Field(max_length=8)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _one_extent(self) -> StageIn:
        if (self.top_height_m is None) == (self.stage_volume_m3 is None):
            raise ValueError("give exactly one of top_height_m or stage_volume_m3")
        return self


class PlanCreate(Strict):
    """A new version of the stope's fill plan. ``continuous``: the recipe switches at
    each stage's top without stopping; otherwise each stage stops at its top, cures for
    its hold and waits for an engineer's release."""

    stages: Annotated[list[StageIn], Field(min_length=1, max_length=20)]
    continuous: bool = False
    unmakeable_reason: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=500,
            description="Why a stage's recipe the plant cannot make from its feed is planned "
            "all the same (kept in the audit log); refused without it.",
        ),
    ] = None


class StagePourCreate(Strict):
    """The pour of the stope's current stage (its recipe and volume come from the plan)."""

    paste_flow_m3_h: Annotated[
        float, Field(gt=0.0, le=500.0, description="Bounded by the stage's rise rate.")
    ]
    sample_ids: Annotated[list[SampleId], Field(max_length=200)] = Field(default_factory=list)


class StagePublic(Public):
    index: int
    name: str
    recipe_id: str
    top_height_m: float
    top_volume_m3: float
    max_rise_rate_m_h: float
    cure_hold_h: float
    switch_at_top: bool
    requirements: list[dict[str, Any]]
    state: str
    started_at: datetime | None
    top_reached_at: datetime | None
    hold_ends_at: datetime | None
    released_at: datetime | None
    released_by: str | None


class StopePublic(Public):
    id: str
    name: str
    created_at: datetime
    created_by: str
    plan_area_m2: float
    height_m: float
    volume_m3: float
    barricade_rating_kpa: float
    barricade_high_alarm_pct: float
    state: str = Field(description="planned, filling, curing, filled or closed.")
    plan_version: int | None
    continuous: bool | None
    current_stage: int | None
    stages: list[StagePublic]
    placed_m3: float = Field(description="Stope volume placed by its pours (dumped excluded).")
    fill_height_m: float
    hold_remaining_s: float | None
    active_pour_id: str | None
    rise_rate_m_h: float | None = Field(
        description="Now: the paste flow of its running pour over the plan area."
    )
    barricade_pressure_kpa: dict[str, float | None]
    switch_points: list[dict[str, Any]]
    history: list[dict[str, Any]]
