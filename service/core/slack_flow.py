"""Where a paste line runs full, and where it free-falls (slack flow).

A line is a sequence of straight sections from the pump (or the plant's hopper) to the
discharge, each with its length and its rise (negative: a drop, such as a borehole).
Flowing full at the design flow, the pressure falls along the line by the friction
gradient f (kPa/m, from the paste's rheology: Buckingham-Reiner laminar flow, see
:mod:`service.core.rheology`) and by rho g per metre of rise. Walking upstream from the
discharge, where the pressure is atmospheric (0 kPa gauge), the hydrostatic gradient
builds up

    p_in = p_out + f l + rho g dz      (per section, dz its rise)

and where a section drops faster than friction can hold (rho g sin(theta) > f, theta
its dip) the pressure falls going upstream. Where it would fall below 0 the line cannot
run full: the paste free-falls there, and the pipe holds a free surface at atmospheric
pressure (slack flow: the hydraulic grade line falls below the pipe; Abulnaga, B.E.
(2002), *Slurry Systems Handbook*, McGraw-Hill, on the hydraulic grade line and slack
flow, whose high velocities wear the pipe; in a paste borehole also air drawn into the
line and plugging on a restart). The balance itself is the steady Bernoulli equation
with the friction loss, the velocity head neglected. Above the free surface the walk
restarts from 0 kPa. The full-line pump pressure f L + rho g dz_total, which the laminar
calculation gives, is then negative, the symptom: the line cannot be filled at that
flow, and a design has to state where the line runs full (or add friction: a smaller
diameter, a restriction, a higher flow or solids).

Without a profile a line with a net drop is taken as the borehole at the plant followed
by the level's horizontal run (the common surface-plant layout): a vertical section of
the drop, then the rest of the developed length level.

Units: lengths m, pressures kPa, densities kg/m3, gravity m/s2. Values in, values out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.errors import InvalidInput

GRAVITY_M_S2 = 9.80665
# Sums of a profile must meet the line's length and head within this (m).
_PROFILE_TOLERANCE_M = 0.5


@dataclass(frozen=True, slots=True)
class LineSection:
    """A straight section of a line: its length and its rise (negative: a drop), in m."""

    length_m: float
    rise_m: float


@dataclass(frozen=True, slots=True)
class SlackStretch:
    """A stretch of line that cannot run full: from ``from_m`` to ``to_m`` along the
    line (from the pump), the paste free-falls; at ``to_m``, ``full_depth_m`` below the
    pump, the line begins to run full again."""

    from_m: float
    to_m: float
    full_depth_m: float


@dataclass(frozen=True, slots=True)
class LineFill:
    """Whether a line runs full at its design flow (``runs_full``), the stretches where
    it cannot (``slack``), the pump pressure of a full line (``full_line_pressure_kpa``,
    f L + rho g dz: negative when the line cannot be held full) and the pressure the pump
    actually needs (``pump_pressure_kpa``, never below 0), with a ``design_condition`` to
    state when it does not run full."""

    runs_full: bool
    slack: tuple[SlackStretch, ...]
    full_line_pressure_kpa: float
    pump_pressure_kpa: float
    design_condition: str | None


def check_profile(
    sections: Sequence[LineSection],
    length_m: float,
    static_head_m: float,
    field: str = "pipeline",
) -> None:
    """InvalidInput naming ``<field>.sections`` (or a section) unless each section is a
    real one (|rise| <= length) and together they make the line's length and head."""
    if not sections:
        if abs(static_head_m) > length_m:
            raise InvalidInput(
                f"{field}.static_head_m",
                f"a line of {length_m:g} m cannot rise or drop {abs(static_head_m):g} m",
            )
        return
    for index, section in enumerate(sections):
        prefix = f"{field}.sections[{index}]"
        if not 0.0 < section.length_m <= 1.0e5:
            raise InvalidInput(
                f"{prefix}.length_m",
                f"length_m must be above 0 and at most 1e5 (got {section.length_m!r})",
            )
        if not abs(section.rise_m) <= section.length_m:
            raise InvalidInput(
                f"{prefix}.rise_m",
                f"a {section.length_m:g} m section cannot rise or drop {section.rise_m!r} m",
            )
    total = math.fsum(s.length_m for s in sections)
    head = math.fsum(s.rise_m for s in sections)
    if abs(total - length_m) > _PROFILE_TOLERANCE_M or abs(head - static_head_m) > (
        _PROFILE_TOLERANCE_M
    ):
        raise InvalidInput(
            f"{field}.sections",
            f"the sections make {total:g} m of line rising {head:g} m; the line is "
            f"{length_m:g} m rising {static_head_m:g} m",
        )


def profile(
    sections: Sequence[LineSection], length_m: float, static_head_m: float
) -> tuple[LineSection, ...]:
    """The sections of a line, pump first: as given, else for a net drop the borehole at
    the plant (vertical) then the level run, for a lift the run then the rise."""
    if sections:
        return tuple(sections)
    if static_head_m < 0.0:
        level = length_m + static_head_m
        drop = LineSection(-static_head_m, static_head_m)
        return (drop, LineSection(level, 0.0)) if level > 0.0 else (drop,)
    if static_head_m > 0.0:
        level = length_m - static_head_m
        rise = LineSection(static_head_m, static_head_m)
        return (LineSection(level, 0.0), rise) if level > 0.0 else (rise,)
    return (LineSection(length_m, 0.0),)


def line_fill(
    sections: Sequence[LineSection],
    friction_kpa_per_m: float,
    density_kg_m3: float,
) -> LineFill:
    """Where the line runs full at the friction gradient ``friction_kpa_per_m`` of its
    design flow (see the module docstring): walked from the discharge (0 kPa) upstream,
    section by section."""
    if not friction_kpa_per_m >= 0.0 or not math.isfinite(friction_kpa_per_m):
        raise InvalidInput("friction_kpa_per_m", f"friction must be >= 0 ({friction_kpa_per_m!r})")
    weight = density_kg_m3 * GRAVITY_M_S2 / 1000.0  # kPa per m of rise
    starts = [0.0]
    depths = [0.0]
    for section in sections:
        starts.append(starts[-1] + section.length_m)
        depths.append(depths[-1] - section.rise_m)
    full_line = math.fsum(friction_kpa_per_m * s.length_m + weight * s.rise_m for s in sections)
    pressure = 0.0
    slack: list[SlackStretch] = []
    for index in range(len(sections) - 1, -1, -1):
        section = sections[index]
        # kPa gained per metre walked upstream: friction, less the drop's weight.
        gain = friction_kpa_per_m + weight * section.rise_m / section.length_m
        start_pressure = pressure + gain * section.length_m
        if start_pressure >= 0.0:
            pressure = start_pressure
            continue
        # The pressure reaches 0 this far above the section's end: above it, free fall.
        full_length = pressure / -gain
        end_m = starts[index + 1]
        to_m = end_m - full_length
        depth = depths[index] + (depths[index + 1] - depths[index]) * (
            (to_m - starts[index]) / section.length_m
        )
        if slack and math.isclose(slack[-1].from_m, end_m) and full_length == 0.0:
            # Free fall continues from the section below: one stretch.
            last = slack.pop()
            slack.append(SlackStretch(starts[index], last.to_m, last.full_depth_m))
        else:
            slack.append(SlackStretch(starts[index], to_m, depth))
        pressure = 0.0
    slack.reverse()
    condition = None
    if slack:
        where = "; ".join(
            f"{s.from_m:.0f}-{s.to_m:.0f} m along the line, full again {s.full_depth_m:.0f} m "
            "below the pump"
            for s in slack
        )
        condition = (
            f"the line cannot run full at its design flow: the paste free-falls ({where}), "
            f"since the drop outweighs a friction of {friction_kpa_per_m:.2f} kPa/m; the "
            f"full-line pump pressure of {full_line:.0f} kPa is the symptom. Expect wear, "
            "air in the line and plugging on a restart there; state it in the design, or "
            "add friction (a smaller line, a higher flow or solids)"
        )
    return LineFill(
        runs_full=not slack,
        slack=tuple(slack),
        full_line_pressure_kpa=full_line,
        pump_pressure_kpa=pressure,
        design_condition=condition,
    )
