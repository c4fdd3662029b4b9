"""A site's plausible laboratory result: the test ages its lab crushes cylinders at, and
how far a lab entry's times may stray from the sample's record and from now.

The schema bounds only say what a value can be (an age above 0); an age of 1e-300 days
passes them, enters a strength refit as a cylinder crushed at birth and spoils the fit
(a refit's R2 went from 0.98 to 0.39 on one such row). A lab entry's times are checked
against what the service knows:

- its test age (the nominal ``curing_days``, else the actual ``tested_at - cast_at``)
  within the ages the site tests at: cylinders are crushed at 1 to 365 days or so
  (3, 7, 14, 28, 56, 90 days in most programmes: Belem, T. & Benzaazoua, M. (2008),
  "Design and application of underground mine paste backfill technology", Geotech.
  Geol. Eng. 26:147-174);
- its ``cast_at``, when the lab gives one, within a tolerance of the cast the service
  recorded for the sample (five days before it, or the year 1, is a typing or a time
  zone error, not a cylinder);
- its test time, which cannot lie ahead of now: ``tested_at`` never, and a result given
  only by its nominal age no further than a tolerance ahead (a cylinder is sometimes
  crushed a little before its nominal age; a 28-day result seconds after casting is a
  wrong sample or a wrong date).

Pure: values and the time ``now`` in, ``(field, message)`` problems out, each naming the
site setting that holds the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

Problem = tuple[str, str]
_DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class LabLimits:
    """Plausible test ages (days) and time tolerances (hours); ``setting`` is the
    prefix of the settings that hold them, for the messages."""

    curing_days_min: float = 0.5
    curing_days_max: float = 730.0
    cast_at_tolerance_h: float = 12.0
    early_result_tolerance_h: float = 24.0
    setting: str = "BACKFILL_LAB__"

    def name(self, field: str) -> str:
        return f"{self.setting}{field.upper()}"


def age_problems(
    curing_days: float | None, actual_days: float | None, limits: LabLimits
) -> list[Problem]:
    """The test age of a strength test within the site's range: the nominal
    ``curing_days`` when given (field ``curing_days``), else the actual age (field
    ``tested_at``)."""
    field, days = ("curing_days", curing_days) if curing_days is not None else ("tested_at", None)
    if days is None:
        days = actual_days
    if days is None or (
        math.isfinite(days) and limits.curing_days_min <= days <= limits.curing_days_max
    ):
        return []
    what = "curing_days" if field == "curing_days" else "the age at test (tested_at - cast_at)"
    return [
        (
            field,
            f"{what} must be between {limits.curing_days_min:g} and "
            f"{limits.curing_days_max:g} days on this site (got {days:.6g}; site limits "
            f"{limits.name('curing_days_min')}, {limits.name('curing_days_max')})",
        )
    ]


@dataclass(frozen=True, slots=True)
class RecordedCast:
    """The cast the service recorded for a sample: ``at`` exactly (cast through a pour),
    or (``exact`` False) no earlier than ``at`` (a sample migrated from an older release,
    whose cast is taken as its pour's start: a long pour's cylinders follow it by
    hours, but none comes before it)."""

    at: datetime
    exact: bool = True


def cast_problems(
    lab_cast_at: datetime, recorded: datetime | RecordedCast, limits: LabLimits
) -> list[Problem]:
    """The lab's ``cast_at`` within the tolerance of the cast the service recorded (a
    datetime is an exact record)."""
    if isinstance(recorded, datetime):
        recorded = RecordedCast(recorded)
    apart_h = (lab_cast_at - recorded.at).total_seconds() / 3600.0
    if abs(apart_h) <= limits.cast_at_tolerance_h or (not recorded.exact and apart_h > 0.0):
        return []
    side = "before" if apart_h < 0.0 else "after"
    what = "recorded cast" if recorded.exact else "pour's start"
    return [
        (
            "cast_at",
            f"cast_at {lab_cast_at.isoformat()} is {_span(abs(apart_h))} {side} the "
            f"sample's {what} ({recorded.at.isoformat()}); at most "
            f"{limits.cast_at_tolerance_h:g} h {'apart' if recorded.exact else 'before'} on "
            f"this site (site limit {limits.name('cast_at_tolerance_h')}; a time zone or a "
            "date typed wrong?)",
        )
    ]


def early_problems(
    cast_at: datetime,
    curing_days: float | None,
    tested_at: datetime | None,
    now: datetime,
    limits: LabLimits,
) -> list[Problem]:
    """A test time ahead of ``now``: ``tested_at`` at all, or (without it) ``cast_at``
    plus the nominal ``curing_days`` beyond the site's tolerance."""
    if tested_at is not None:
        if tested_at > now:
            return [("tested_at", f"tested_at {tested_at.isoformat()} is in the future")]
        return []
    if curing_days is None or not math.isfinite(curing_days):
        return []
    # Compared as ages (a difference of two instants), so no date runs out of range.
    age_now_days = (now - cast_at).total_seconds() / _DAY_S
    ahead_h = (curing_days - age_now_days) * 24.0
    if ahead_h <= limits.early_result_tolerance_h:
        return []
    return [
        (
            "curing_days",
            f"a {curing_days:g}-day result of a cylinder cast {_span(age_now_days * 24.0)} "
            f"ago: its test age is {_span(ahead_h)} away; a result may be entered at most "
            f"{limits.early_result_tolerance_h:g} h before its nominal age on this site "
            f"(site limit {limits.name('early_result_tolerance_h')}; give tested_at if it "
            "was crushed early)",
        )
    ]


def _span(hours: float) -> str:
    if abs(hours) < 48.0:
        return f"{hours:.1f} h"
    return f"{hours / 24.0:.1f} days"
