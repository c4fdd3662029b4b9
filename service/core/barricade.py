"""A stope's barricade pressure judged against its rating, pure.

Barricades have a rated pressure; practice is to stop filling when the measured total
pressure reaches the rating (Thompson, B.D., Bawden, W.F. & Grabinsky, M.W. (2012), "In
situ measurements of cemented paste backfill at the Cayeli Mine", Can. Geotech. J.
49(7):755-772). Where a mine instruments a barricade its pressure is a PLC tag
(``barricade_pressure_pv``, ``barricade_2_pressure_pv``, ...); each tag belongs to the
stope whose barricade it measures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from service.errors import InvalidInput

_PRESSURE_KPA_MAX = 1.0e5

_BARRICADE_TAG = re.compile(r"^barricade(_[0-9]+)?_pressure_pv$")
QUALITIES = ("good", "uncertain", "bad")


def is_barricade_tag(tag: str) -> bool:
    """A barricade pressure tag of the contract: ``barricade_pressure_pv``,
    ``barricade_2_pressure_pv``, ..."""
    return bool(_BARRICADE_TAG.match(tag))


class BarricadeLevel(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    AT_RATING = "at_rating"
    UNKNOWN = "unknown"


_BARRICADE_CODES: Mapping[BarricadeLevel, str] = {
    BarricadeLevel.HIGH: "barricade_pressure_high",
    BarricadeLevel.AT_RATING: "barricade_pressure_at_rating",
    BarricadeLevel.UNKNOWN: "barricade_pressure_unknown",
}


@dataclass(frozen=True, slots=True)
class BarricadeCondition:
    """One barricade's pressure judged against its rating.

    ``high``: at or above ``high_kpa`` (alarm); ``at_rating``: at or above the rating
    (alarm and an automatic pause naming the barricade); ``unknown``: the reading is bad,
    missing or not a number (reported: never taken as a low pressure).
    """

    tag: str
    level: BarricadeLevel
    pressure_kpa: float | None
    rating_kpa: float
    high_kpa: float
    quality: str
    detail: str = ""

    @property
    def alarm(self) -> bool:
        return self.level is not BarricadeLevel.NORMAL

    @property
    def pause(self) -> bool:
        return self.level is BarricadeLevel.AT_RATING

    @property
    def code(self) -> str | None:
        """Stable alarm code of the condition, None when normal."""
        return _BARRICADE_CODES.get(self.level)


def barricade_conditions(
    pressures_kpa: Mapping[str, float | None],
    rating_kpa: float | Mapping[str, float],
    high_fraction: float,
    quality: Mapping[str, str],
) -> tuple[BarricadeCondition, ...]:
    """Each barricade's condition, sorted by tag.

    ``rating_kpa``: one rating for every barricade, or one per tag. ``high_fraction``
    (0-1] of the rating raises the high alarm; reaching the rating pauses the pour
    (practice is to stop filling when the measured total pressure reaches the rating,
    after Thompson, Bawden & Grabinsky 2012). ``quality`` per tag (``good``,
    ``uncertain``, ``bad``; a tag without one is taken as ``bad``): a bad, missing or
    non-finite reading is ``unknown``; an uncertain one is judged on its value.
    """
    fraction = _high_fraction(high_fraction)
    out: list[BarricadeCondition] = []
    for tag in sorted(pressures_kpa):
        if isinstance(rating_kpa, Mapping):
            if tag not in rating_kpa:
                raise InvalidInput("rating_kpa", f"no rating for barricade {tag!r}")
            rating = _rating(rating_kpa[tag])
        else:
            rating = _rating(rating_kpa)
        high = fraction * rating
        q = quality.get(tag, "bad")
        if q not in QUALITIES:
            raise InvalidInput("quality", f"quality of {tag!r} must be one of {QUALITIES}")
        value = pressures_kpa[tag]
        if q == "bad" or value is None or not math.isfinite(value):
            out.append(
                BarricadeCondition(
                    tag,
                    BarricadeLevel.UNKNOWN,
                    None,
                    rating,
                    high,
                    q,
                    f"barricade {tag!r}: pressure unknown (quality {q})",
                )
            )
            continue
        pressure = float(value)
        if pressure >= rating:
            level = BarricadeLevel.AT_RATING
            detail = f"barricade {tag!r} at {pressure:.0f} kPa >= rating {rating:.0f} kPa"
        elif pressure >= high:
            level = BarricadeLevel.HIGH
            detail = f"barricade {tag!r} at {pressure:.0f} kPa >= high alarm {high:.0f} kPa"
        else:
            level = BarricadeLevel.NORMAL
            detail = ""
        if detail and q == "uncertain":
            detail += " (uncertain quality)"
        out.append(BarricadeCondition(tag, level, pressure, rating, high, q, detail))
    return tuple(out)


def barricade_pause(conditions: Sequence[BarricadeCondition]) -> BarricadeCondition | None:
    """The barricade to name in a pause: the one at rating with the highest pressure
    relative to its rating; None when none is at its rating."""
    at_rating = [c for c in conditions if c.pause and c.pressure_kpa is not None]
    if not at_rating:
        return None
    return max(at_rating, key=lambda c: (c.pressure_kpa or 0.0) / c.rating_kpa)


def _rating(value: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidInput("rating_kpa", f"rating_kpa must be a number, got {value!r}")
    if not math.isfinite(value) or not 0.0 < value <= _PRESSURE_KPA_MAX:
        raise InvalidInput(
            "rating_kpa", f"rating_kpa must be finite, > 0 and <= {_PRESSURE_KPA_MAX:g}"
        )
    return float(value)


def _high_fraction(value: float) -> float:
    if not isinstance(value, int | float) or not (0.0 < value <= 1.0):
        raise InvalidInput("high_fraction", f"high_fraction must be in (0, 1], got {value!r}")
    return float(value)
