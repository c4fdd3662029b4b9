"""Schemas of the plant status (CONTRACT "GET /plant/status")."""

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


class PlantStatusPublic(BaseModel):
    connected: bool
    plc_mode: str | None
    remote_enabled: bool | None
    measurements: dict[str, MeasurementPublic]
    setpoints: dict[str, SetpointPublic]
    active_pour: dict[str, Any] | None
    alarms: list[AlarmPublic]
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
