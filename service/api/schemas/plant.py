"""Schemas of the plant status (docs/INTEGRATION.md "GET /plant/status")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MeasurementPublic(BaseModel):
    value: float | int | bool | None
    unit: str
    quality: str
    timestamp: str | None
    stuck: bool = False


class SetpointPublic(BaseModel):
    value: float | int | bool
    unit: str
    written_at: str


class AlarmPublic(BaseModel):
    code: str
    severity: str
    state: str
    detail: str
    since: str | None
    cleared_at: str | None
    acknowledged: bool
    acknowledged_at: str | None
    acknowledged_by: str | None


class BinderSourcePublic(BaseModel):
    mode: str = Field(
        description="normal: binder ratioed on the feed; holding: a feed gauge is bad and "
        "the last correction is held for hold_left_s; paste_flow_ratio: binder ratioed on "
        "the paste flow meter; pause: nothing can carry the binder (the pour pauses)."
    )
    held: str | None = Field(description="What is held: feed or paste_flow.")
    hold_left_s: float | None = Field(description="Plant seconds the hold has left.")
    reason: str


class BalancePublic(BaseModel):
    judged: bool = Field(
        description="The balance was judged this cycle (steady production, every gauge good)."
    )
    alarm: bool = Field(description="instruments_disagree is raised.")
    disagreement: float | None = Field(
        description="The averaged residuals' distance over the alarm threshold (1: alarm)."
    )
    residual_mass_t_h: float | None = Field(
        description="This cycle's mass balance residual, in - out (t/h)."
    )
    most_likely: str | None = Field(description="While in alarm: the gauge most likely off.")
    indistinguishable: list[str] = Field(
        description="While in alarm: the gauges the balances cannot tell apart from it."
    )
    samples: int


class InstrumentsPublic(BaseModel):
    binder_source: BinderSourcePublic | None = Field(
        description="Where the binder comes from (null: no pour producing)."
    )
    balance: BalancePublic | None = Field(
        description="Feed in against paste out across the mixer (null: the check is off)."
    )


class PlantStatusPublic(BaseModel):
    connected: bool
    plc_mode: str | None
    remote_enabled: bool | None
    measurements: dict[str, MeasurementPublic]
    setpoints: dict[str, SetpointPublic]
    active_pour: dict[str, Any] | None
    alarms: list[AlarmPublic]
    instruments: InstrumentsPublic
    last_error: str | None
    simulator: bool = Field(
        description="The plant is the built-in simulator: no PLC is connected "
        "(BACKFILL_PLC__ENDPOINT is not set)."
    )
    notice: str | None = Field(
        default=None, description="What an operator must know first (a simulated plant)."
    )
    writer: bool = Field(description="This instance writes setpoints (false: a standby).")
    writer_epoch: int | None = Field(description="Fencing epoch when elected by lease.")


class TrendPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    step_s: int
    source: str = Field(description="minute: from the minute table; raw: from raw samples.")
    t: list[datetime] = Field(description="Start of each step that holds data.")
    series: dict[str, dict[str, list[float | None]]] = Field(
        description="Per tag: avg, min, max lists aligned with t."
    )


class FeedRangePublic(BaseModel):
    solids_low_pct: float = Field(
        description="The wet end of the feed's solids (% of its mass): the site's statement, "
        "or the history's 10th percentile while the plant ran."
    )
    solids_high_pct: float = Field(description="The dry end (statement, or 90th percentile).")
    solids_median_pct: float | None = Field(description="The history's median; None if stated.")
    basis: str = Field(description="settings, simulator (its profile) or history.")
    period_from: datetime | None = Field(description="The history the percentiles rest on.")
    period_to: datetime | None
    hours: float | None = Field(description="Running hours in that history.")


class WindowPublic(BaseModel):
    low: float
    high: float
    basis: str = Field(description="settings, simulator or history.")
    period_from: datetime | None
    period_to: datetime | None
    hours: float | None


class FeedProfilePublic(BaseModel):
    stated: FeedRangePublic | None = Field(description="BACKFILL_PLANT__FEED_SOLIDS_*.")
    seen: FeedRangePublic | None = Field(description="What the history showed.")
    used: str | None = Field(
        description="The basis every makeability check uses now (None: the feed is unknown, "
        "the checks that need it are off)."
    )
    min_history_hours: float = Field(description="Running hours needed before `seen` is used.")


class CwWindowProfilePublic(BaseModel):
    stated: WindowPublic | None = Field(description="BACKFILL_PLANT__CW_MIN_PCT / _MAX_PCT.")
    seen: WindowPublic | None = Field(
        description="The Cw the plant held (shown, never used as a limit)."
    )
    used: str | None


class PumpProfilePublic(BaseModel):
    max_kpa: float | None = Field(description="BACKFILL_PLANT__PUMP_PRESSURE_MAX_KPA.")
    seen_p99_kpa: float | None = Field(description="The history's 99th percentile.")


class PlantProfilePublic(BaseModel):
    tailings_sg: float | None = Field(description="The plant's tailings Gs, where stated.")
    feed: FeedProfilePublic
    cw_window: CwWindowProfilePublic
    pump_pressure: PumpProfilePublic
