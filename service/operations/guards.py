"""What the supervisor checks each cycle for the stope a pour fills: where the paste goes
(the dump diverter, when the plant has one) and the barricade pressure (when the tag map
has it). Both rules are pure (``service.core.diversion``, ``service.core.plans``); this
module only turns the link's snapshot into their inputs and their answers into what the
supervisor acts on: the diverter command to write, whether this cycle's paste went to
the dump, the alarm conditions, and a reason to pause.
"""

from __future__ import annotations

import math
from datetime import datetime

from service.core import diversion as dv
from service.core import plans
from service.core.control.alarms import AlarmCode, Condition
from service.plant.port import PlantSnapshot, Quality

BARRICADE_CODES = (
    AlarmCode.BARRICADE_PRESSURE_HIGH,
    AlarmCode.BARRICADE_PRESSURE_AT_RATING,
    AlarmCode.BARRICADE_PRESSURE_UNKNOWN,
)


def diverter_installed(snap: PlantSnapshot, setpoint_tags: frozenset[str]) -> bool:
    return dv.diverter_installed({*setpoint_tags, *snap.measurements})


def proven_to_dump(snap: PlantSnapshot) -> bool | None:
    m = snap.measurements.get(dv.DIVERTED_PV_TAG)
    if m is None or m.quality is Quality.BAD or not isinstance(m.value, bool):
        return None
    return m.value


def diverter_step(
    state: dv.DiverterState,
    *,
    phase: dv.PourPhase,
    solids_in_band: bool | None,
    binder_in_band: bool | None,
    snap: PlantSnapshot,
    plant_running: bool,
    plant_flushing: bool,
    now: datetime,
    config: dv.DiverterConfig,
) -> tuple[dv.DiverterState, dv.DiverterOutput]:
    return dv.step(
        state,
        dv.DiverterInputs(
            phase=phase,
            solids_in_band=solids_in_band,
            binder_in_band=binder_in_band,
            proven_to_dump=proven_to_dump(snap),
            plant_running=plant_running,
            plant_flushing=plant_flushing,
        ),
        now,
        config,
    )


def barricade(
    snap: PlantSnapshot, rating_kpa: float | None, high_fraction: float
) -> tuple[dict[AlarmCode, Condition], str | None]:
    """The barricade alarm conditions and, at the rating, the pause reason naming the
    barricade. No rating (no stope) or no barricade tag: no condition at all."""
    tags = sorted(t for t in snap.measurements if plans.is_barricade_tag(t))
    if rating_kpa is None or not tags:
        return {code: Condition(False) for code in BARRICADE_CODES}, None
    pressures: dict[str, float | None] = {}
    quality: dict[str, str] = {}
    for tag in tags:
        m = snap.measurements[tag]
        value = m.value
        number = (
            float(value)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else math.nan
        )
        pressures[tag] = number if math.isfinite(number) else None
        quality[tag] = m.quality.value
    found = plans.barricade_conditions(pressures, rating_kpa, high_fraction, quality)
    by_level = {
        AlarmCode.BARRICADE_PRESSURE_HIGH: [c for c in found if c.level.value == "high"],
        AlarmCode.BARRICADE_PRESSURE_AT_RATING: [c for c in found if c.pause],
        AlarmCode.BARRICADE_PRESSURE_UNKNOWN: [c for c in found if c.level.value == "unknown"],
    }
    conditions = {
        code: Condition(bool(items), "; ".join(c.detail for c in items))
        for code, items in by_level.items()
    }
    at_rating = plans.barricade_pause(found)
    pause = None if at_rating is None else f"barricade_at_rating:{at_rating.tag}"
    return conditions, pause
