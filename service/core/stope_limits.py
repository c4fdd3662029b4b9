"""A site's plausible stope and fill plan: the ranges outside which a stope or a stage is
a typing error or a unit slip, never something the plant should fill.

The schema bounds only say what a number can be (an area above 0, a rise rate above
0); a plan area of 1e-300 m2, a stage 1e-9 m high (full before it starts, so it never
releases), a rise-rate limit of 1e-9 m/h (a pour that never moves) or a stage of 1e10
m3 (a pour target far past what ``POST /pours`` accepts) pass them. These limits are the
site's (stopes are tens of metres across and high, paste rises up to a few metres an
hour, plugs cure for hours to days: Belem, T. & Benzaazoua, M. (2008), "Design and
application of underground mine paste backfill technology", Geotech. Geol. Eng.
26:147-174; Thompson, B.D., Bawden, W.F. & Grabinsky, M.W. (2012), "In situ
measurements of cemented paste backfill at the Cayeli Mine", Can. Geotech. J.
49(7):755-772), checked where a stope or a plan enters. A continuous plan switches
recipe at every stage top without stopping, so a hold on any stage but the last would
never run: it is refused rather than ignored.

Pure: a geometry or a plan in, ``InvalidInput`` naming the field and the limit out.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.plans import FillPlan, StopeGeometry
from service.errors import InvalidInput

STOPE_CODE = "stope_implausible"
PLAN_CODE = "plan_implausible"


@dataclass(frozen=True, slots=True)
class StopeLimits:
    """Plausible ranges (m2, m, m3, m/h, h); ``setting`` is the prefix of the settings
    that hold them, for the messages."""

    plan_area_m2_min: float = 1.0
    plan_area_m2_max: float = 1.0e5
    height_m_min: float = 1.0
    height_m_max: float = 1000.0
    stage_height_m_min: float = 0.05
    stage_volume_m3_max: float = 1.0e6
    rise_rate_m_h_min: float = 0.01
    rise_rate_m_h_max: float = 100.0
    cure_hold_h_max: float = 720.0
    setting: str = "BACKFILL_STOPES__"

    def names(self, *limits: str) -> str:
        return ", ".join(f"{self.setting}{name.upper()}" for name in limits)


def _refuse(
    field: str,
    detail: str,
    code: str,
    *,
    low: float | None = None,
    high: float | None = None,
) -> InvalidInput:
    return InvalidInput(field, detail, code=code, limit_min=low, limit_max=high)


def _within(
    field: str,
    what: str,
    value: float,
    low: float | None,
    high: float | None,
    unit: str,
    code: str,
    settings: str,
) -> None:
    if (low is None or value >= low) and (high is None or value <= high):
        return
    if low is not None and high is not None:
        span = f"between {low:g} and {high:g} {unit}"
    elif low is not None:
        span = f"at least {low:g} {unit}"
    else:
        span = f"at most {high:g} {unit}"
    raise _refuse(
        field,
        f"{what} must be {span} on this site (got {value:.6g}; site limit {settings})",
        code,
        low=low,
        high=high,
    )


def check_geometry(
    geometry: StopeGeometry, limits: StopeLimits, *, area_field: str = "plan_area_m2"
) -> None:
    """The stope's height and plan area in range (``area_field`` names what the client
    gave the area by: ``plan_area_m2``, ``length_m`` with ``width_m``, ``volume_m3``,
    or ``survey``, whose mean plan area, volume over height, is checked)."""
    height_field = "survey" if area_field == "survey" else "height_m"
    _within(
        height_field,
        "height_m" if height_field == "height_m" else "the height from the survey",
        geometry.height_m,
        limits.height_m_min,
        limits.height_m_max,
        "m",
        STOPE_CODE,
        limits.names("height_m_min", "height_m_max"),
    )
    what = "plan_area_m2" if area_field == "plan_area_m2" else f"the plan area from {area_field}"
    _within(
        area_field,
        what,
        geometry.plan_area_m2,
        limits.plan_area_m2_min,
        limits.plan_area_m2_max,
        "m2",
        STOPE_CODE,
        limits.names("plan_area_m2_min", "plan_area_m2_max"),
    )


def check_plan(plan: FillPlan, limits: StopeLimits) -> None:
    """Every stage of ``plan`` in range: its rise-rate limit, its hold (and none on a
    stage a continuous plan switches at), its own height above the stage before and
    its own volume (the target of its pour)."""
    last = len(plan.stages) - 1
    tops = plan.top_heights_m
    volumes = plan.top_volumes_m3
    for i, stage in enumerate(plan.stages):
        at = f"stages[{i}]"
        _within(
            f"{at}.max_rise_rate_m_h",
            "max_rise_rate_m_h",
            stage.max_rise_rate_m_h,
            limits.rise_rate_m_h_min,
            limits.rise_rate_m_h_max,
            "m/h",
            PLAN_CODE,
            limits.names("rise_rate_m_h_min", "rise_rate_m_h_max"),
        )
        _within(
            f"{at}.cure_hold_h",
            "cure_hold_h",
            stage.cure_hold_h,
            None,
            limits.cure_hold_h_max,
            "h",
            PLAN_CODE,
            limits.names("cure_hold_h_max"),
        )
        if plan.continuous and i < last and stage.cure_hold_h > 0.0:
            raise _refuse(
                f"{at}.cure_hold_h",
                f"stage {stage.name!r}: a continuous plan switches recipe at this stage's "
                f"top without stopping, so its hold of {stage.cure_hold_h:g} h would never "
                "run: give cure_hold_h 0 (the last stage's hold is the stope's cure), or "
                "make the plan staged (continuous false)",
                PLAN_CODE,
            )
        extent = stage.extent_field
        # Rounded to a nanometre and a microlitre: tops given in metres subtract with
        # a rounding error (0.3 - 0.2 is 0.0999...) that is no stage's own height.
        own_height = round(tops[i] - (tops[i - 1] if i else 0.0), 9)
        _within(
            f"{at}.{extent}",
            f"stage {stage.name!r} rises {own_height:.6g} m above the stage before; a stage",
            own_height,
            limits.stage_height_m_min,
            None,
            "m high",
            PLAN_CODE,
            limits.names("stage_height_m_min"),
        )
        own_volume = round(volumes[i] - (volumes[i - 1] if i else 0.0), 9)
        _within(
            f"{at}.{extent}",
            f"stage {stage.name!r} holds {own_volume:.6g} m3 (its pour's target); a stage",
            own_volume,
            None,
            limits.stage_volume_m3_max,
            "m3",
            PLAN_CODE,
            limits.names("stage_volume_m3_max"),
        )
