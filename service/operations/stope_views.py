"""What a stope shows now, and a stope's geometry from its survey.

The live figures of a stope: the volume its pours placed (the running pour's live
totals included), the fill height and the plan area there on its volume-height curve,
the rise its fill achieved (from the placed volume, never the paste flow: paste sent to
the dump does not raise a stope), the paste flow its current stage's rise-rate limit
grants there, its own barricades' pressures (none once closed), the hold left in plant
and in wall seconds, and the release conditions of a stage on hold. Reads only memory
and the store: no PLC I/O.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.core import plans as P
from service.core.barricade import is_barricade_tag
from service.core.control import PourTotals
from service.core.pour_states import PourState
from service.core.release_conditions import ReleaseAssessment
from service.core.stope_geometry import MeshFormat, curve_from_mesh, curve_from_table
from service.errors import InvalidInput
from service.operations.stopes import StageFlow, StopeService, StopeView

LiveTotals = Callable[[str], PourTotals | None]
BarricadeReadings = Callable[[], Mapping[str, tuple[float | None, str]]]


@dataclass(frozen=True)
class StopeLive:
    """A stope's figures now (module docstring). Times of the plan are plant time."""

    placed_m3: float
    fill_height_m: float
    area_at_fill_m2: float
    active_pour_id: str | None
    rise_rate_m_h: float | None
    barricades_kpa: dict[str, float | None]
    hold_remaining_s: float | None
    hold_remaining_wall_s: float | None
    plant_now: datetime
    plant_speed: float
    flow: StageFlow | None  # the running pour's: asked and granted
    flow_limit_m3_h: float | None  # what the current stage's rise-rate limit grants now
    release: ReleaseAssessment | None


async def stope_live(
    view: StopeView,
    stopes: StopeService,
    *,
    live_totals: LiveTotals,
    barricade_readings: BarricadeReadings,
) -> StopeLive:
    geometry = view.stope.geometry if view.plan is None else view.plan.geometry
    placed, active = 0.0, None
    active_flow = None
    for record in await stopes.pours(view.record.name):
        live = live_totals(record.id)
        placed += live.poured_m3 if live is not None else float(record.totals.get("poured_m3", 0))
        if record.state == PourState.RUNNING.value:
            active, active_flow = record.id, record.paste_flow_m3_h
    height = geometry.fill_height_m(placed)
    barricades: dict[str, float | None] = {}
    if not view.closed:
        readings = barricade_readings()
        tags = view.barricade_tags
        if tags is None:  # a stope stored before barricades belonged to stopes
            tags = tuple(t for t in readings if is_barricade_tag(t))
        for tag in tags:
            value, quality = readings.get(tag, (None, "bad"))
            barricades[tag] = value if quality != "bad" else None
    now = stopes.clock.now()
    hold = None if view.progress is None else P.hold_remaining_s(view.progress, now)
    speed = stopes.clock.scale
    flow, limit = None, None
    if view.plan is not None and view.progress is not None and not view.closed:
        state = view.progress.current_stage.state
        if state in (P.StageState.READY, P.StageState.FILLING):
            rise = view.plan.stages[view.progress.current].max_rise_rate_m_h
            limit = rise * geometry.area_at_m2(height)
            if active_flow is not None:
                flow = stopes.stage_flow(view, active_flow, placed)
    return StopeLive(
        placed_m3=placed,
        fill_height_m=height,
        area_at_fill_m2=geometry.area_at_m2(height),
        active_pour_id=active,
        rise_rate_m_h=stopes.rise_rate_m_h(view),
        barricades_kpa=barricades,
        hold_remaining_s=hold,
        hold_remaining_wall_s=None if hold is None else hold / speed,
        plant_now=now,
        plant_speed=speed,
        flow=flow,
        flow_limit_m3_h=limit,
        release=await stopes.assessment(view),
    )


def geometry_view(geometry: P.StopeGeometry, points: int = 41) -> dict[str, Any]:
    """The stope's geometry as an answer shows it: its source and the curve sampled."""
    curve = geometry.volume_curve
    return {
        "source": geometry.source,
        "height_m": geometry.height_m,
        "volume_m3": geometry.volume_m3,
        "mean_plan_area_m2": geometry.plan_area_m2,
        "floor_elevation_m": curve.floor_elevation_m,
        "knots": len(curve.heights_m),
        "curve": curve.sampled(points),
    }


async def survey_geometry(
    *, csv_text: str | None, mesh_b64: str | None, mesh_format: MeshFormat | None
) -> tuple[P.StopeGeometry, dict[str, Any]]:
    """A stope's geometry from its survey: a volume-height table (CSV) or a closed
    survey mesh (base64 of an STL or OBJ file), sliced off the event loop. 422 naming
    ``survey.csv`` / ``survey.mesh`` and the problem. Returns what the survey says of
    itself besides (the mesh's checks)."""
    if csv_text is not None:
        return P.StopeGeometry.from_curve(curve_from_table(csv_text)), {}
    if mesh_b64 is None or mesh_format is None:
        raise InvalidInput("survey", 'a survey is {"csv": ...} or {"mesh": ..., "format": ...}')
    try:
        data = base64.b64decode(mesh_b64, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidInput("survey.mesh", "the mesh is not base64") from err
    curve, checked = await asyncio.to_thread(curve_from_mesh, data, mesh_format)
    notes = {
        "triangles": len(checked.mesh.faces),
        "degenerate_triangles_dropped": checked.dropped_degenerate,
        "oriented_inwards": checked.inward,
    }
    return P.StopeGeometry.from_curve(curve), notes
