"""Schemas of the stope endpoints: a stope, its fill plan (stages), their progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from service.api.schemas.common import MultilineText, Public, ResourceId, Strict, Text
from service.api.schemas.pours import PourPublic, SampleId

LengthM = Annotated[float, Field(gt=0.0, le=1.0e4)]
StageName = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$", examples=["plug"])
]
BarricadeTag = Annotated[
    str,
    Field(
        pattern=r"^barricade(_[0-9]+)?_pressure_pv$",
        examples=["barricade_pressure_pv"],
        description="A barricade pressure tag of the plant's tag map.",
    ),
]
StopeName = Annotated[
    Text,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^/]+$",
        examples=["S-101"],
        description="Unique; also the stope's address in /stopes/{id} (no '/').",
    ),
]
Reason = Annotated[Text, Field(min_length=1, max_length=500)]


class SurveyIn(Strict):
    """A stope as surveyed: a volume-height table (``csv``: a header naming
    ``height_m`` or ``elevation_m``, and ``volume_m3``; one row per point, the first
    the floor at volume 0), or a closed survey mesh (``mesh``: the base64 of an STL,
    binary or ASCII, or an OBJ file, metres, z up, ``format`` ``stl`` or ``obj``) that
    the service slices into its volume-height curve. A mesh with a hole, an edge of
    three faces or a flipped face is refused naming it."""

    csv: MultilineText | None = None
    mesh: Annotated[str | None, Field(max_length=64 * 1_048_576)] = None
    format: Literal["stl", "obj"] | None = None

    @model_validator(mode="after")
    def _one_survey(self) -> SurveyIn:
        if (self.csv is None) == (self.mesh is None):
            raise ValueError("give exactly one of csv or mesh")
        if self.mesh is not None and self.format is None:
            raise ValueError("a mesh needs its format: stl or obj")
        if self.csv is not None and self.format is not None:
            raise ValueError("format goes with a mesh, not a table")
        return self


class StopeCreate(Strict):
    """A stope: its geometry (a plan area, or length and width, or a volume, with the
    height: a prism; or its ``survey``, whose volume-height curve gives the fill
    height, the plan area at each height and the stage tops), its barricade's rating
    and the barricade tags that are its own."""

    name: StopeName
    height_m: LengthM | None = None
    plan_area_m2: Annotated[float | None, Field(gt=0.0, le=1.0e6)] = None
    length_m: LengthM | None = None
    width_m: LengthM | None = None
    volume_m3: Annotated[float | None, Field(gt=0.0, le=1.0e8)] = None
    survey: SurveyIn | None = None
    barricade_rating_kpa: Annotated[
        float, Field(gt=0.0, le=1.0e4, description="Total pressure the barricade is rated for.")
    ]
    barricade_high_alarm_pct: Annotated[
        float,
        Field(
            gt=0.0, le=100.0, description="High alarm at this % of the rating (at 100 %: pause)."
        ),
    ] = 80.0
    barricade_tags: Annotated[list[BarricadeTag], Field(max_length=8)] = Field(
        default_factory=list,
        description="The PLC tags of this stope's barricades: watched while it is filled, "
        "shown only on it (none: no instrumented barricade).",
    )

    @model_validator(mode="after")
    def _one_geometry(self) -> StopeCreate:
        given = [
            self.plan_area_m2 is not None,
            self.length_m is not None or self.width_m is not None,
            self.volume_m3 is not None,
            self.survey is not None,
        ]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of plan_area_m2, length_m with width_m, volume_m3, survey"
            )
        if given[1] and (self.length_m is None or self.width_m is None):
            raise ValueError("length_m and width_m go together")
        if self.survey is not None and self.height_m is not None:
            raise ValueError("a survey gives the height: leave height_m out")
        if self.survey is None and self.height_m is None:
            raise ValueError("height_m is required (unless a survey gives it)")
        return self


class StageRequirementIn(Strict):
    name: StageName
    ucs_kpa: Annotated[float, Field(gt=0.0, le=1.0e5)]
    curing_days: Annotated[float, Field(gt=0.0, le=3650.0)]


class StageIn(Strict):
    """One stage: its recipe version, its extent (the fill height at its top, which the
    stope's curve turns into a volume; or the stope's volume at its top; or its own
    volume), the rise-rate limit and the cure hold before the next stage."""

    name: StageName
    recipe_id: ResourceId
    top_height_m: LengthM | None = None
    top_volume_m3: Annotated[float | None, Field(gt=0.0, le=1.0e8)] = None
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
        given = (self.top_height_m, self.top_volume_m3, self.stage_volume_m3)
        if sum(v is not None for v in given) != 1:
            raise ValueError("give exactly one of top_height_m, top_volume_m3, stage_volume_m3")
        return self


class PlanCreate(Strict):
    """A new version of the stope's fill plan. ``continuous``: the recipe switches at
    each stage's top without stopping; otherwise each stage stops at its top, cures for
    its hold and waits for an engineer's release. ``barricade_tags``: the barricades
    this plan watches (absent: the stope's own)."""

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
    barricade_tags: Annotated[list[BarricadeTag] | None, Field(max_length=8)] = None


class ReleaseIn(Strict):
    """A release of the stage on hold. Without a reason it must rest on evidence (its
    hold elapsed, its strength shown, its barricade's pressure fallen); with one an
    engineer releases it before, and the audit log keeps the reason."""

    reason: Reason | None = None


class AbandonIn(Strict):
    """Abandon the current stage (ready or filling) where the fill is: why."""

    reason: Reason


class CloseIn(Strict):
    """Close the stope. A filled stope closes as it is; one not yet filled only with a
    reason."""

    reason: Reason | None = None


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
    top_given_by: str = Field(
        description="top_height_m, top_volume_m3 or stage_volume_m3: how the plan gave it."
    )
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
    reason: str | None = Field(
        default=None,
        description="Why an engineer released it before its conditions, or abandoned it.",
    )
    release: dict[str, Any] | None = Field(
        default=None,
        description="On hold: each release condition (hold, strength, barricade): met or "
        "not, its figure against its limit and what it rests on (cylinders or the "
        "calibration's estimate, a barricade reading).",
    )


class StopePublic(Public):
    id: str
    name: str
    created_at: datetime
    created_by: str
    plan_area_m2: float = Field(
        description="A prism's plan area; a surveyed stope's mean, volume / height."
    )
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
    fill_height_m: float = Field(description="The stope's curve at the placed volume.")
    geometry: dict[str, Any] = Field(
        description="Where the geometry comes from (prism, table, mesh) and its "
        "volume-height curve, sampled: height, volume, plan area."
    )
    plan_area_at_fill_m2: float = Field(description="The plan area at the fill height, dV/dh.")
    barricade_head_m: float = Field(
        description="The fill's height above the floor the barricade stands on."
    )
    hold_remaining_s: float | None = Field(description="Plant seconds left of the hold.")
    hold_remaining_wall_s: float | None = Field(
        description="The same in wall seconds (plant time runs plant_speed times faster)."
    )
    active_pour_id: str | None
    rise_rate_m_h: float | None = Field(
        description="The rise the fill achieved over the last window (plant time), from "
        "the stope's placed volume: paste sent to the dump does not raise it. None until "
        "a minute of placing, or after a restart."
    )
    paste_flow_limit_m3_h: float | None = Field(
        description="The paste flow the current stage's rise-rate limit grants at the "
        "fill height now."
    )
    active_pour_flow: dict[str, Any] | None = Field(
        description="The running pour's paste flow: asked for and granted by the rise rate."
    )
    barricade_tags: list[str] | None = Field(
        description="The stope's barricades in force (the plan's when it names them); None: "
        "a stope stored before barricades belonged to stopes, which watches every one."
    )
    barricade_pressure_kpa: dict[str, float | None] = Field(
        description="Its own barricades only; none once closed."
    )
    closed_reason: str | None = None
    clock: dict[str, Any] = Field(
        description="Stage times, holds and history are plant time: plant_now, and "
        "plant_speed (plant seconds per wall second)."
    )
    switch_points: list[dict[str, Any]]
    history: list[dict[str, Any]]


class StagePourPublic(PourPublic):
    """The stage's pour, and what its stage's rise-rate limit grants of the flow asked."""

    flow: dict[str, Any] | None = Field(
        default=None,
        description="requested_m3_h, granted_m3_h, limited_by_rise_rate and why: control "
        "holds the pour to the limit at the plan area where the fill is.",
    )
