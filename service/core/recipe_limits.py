"""A site's plausible recipe: the ranges outside which a recipe is a typing error, a unit
mix-up or a made-up number, never something the plant should mix.

The schema bounds of the API only say what a number can be (Bw above 0, Cw below 100 %);
a Bw of 1e-300 % or a Cw of 1e-9 % passes them, proportions to no binder or no
tailings, and would run. These limits are the site's (a paste plant mixes 72-85 %
solids with 2-10 % binder and 150-250 mm slump: the typical ranges of Belem, T. &
Benzaazoua, M. (2008), "Design and application of underground mine paste backfill
technology", Geotech. Geol. Eng. 26(2):147-174), checked wherever a recipe enters:
inline in a pour, stored as a version, a proportioning request and an optimiser
design. Pure: a mix in the API's percentages in, an ``InvalidInput`` naming the field
and the limit out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidInput

CODE = "recipe_implausible"


@dataclass(frozen=True, slots=True)
class RecipeLimits:
    """Plausible ranges, in the API's units (percentages, Gs). ``setting`` names the
    configuration that holds them, for the error message."""

    binder_pct_min: float = 1.0
    binder_pct_max: float = 20.0
    solids_pct_min: float = 55.0
    solids_pct_max: float = 88.0
    tailings_gs_min: float = 2.2
    tailings_gs_max: float = 5.0
    binder_gs_min: float = 2.0
    binder_gs_max: float = 3.6
    moisture_pct_max: float = 150.0
    blend_component_pct_min: float = 2.0
    aggregate_pct_max: float = 80.0
    setting: str = "BACKFILL_RECIPES__"


def _within(
    field: str,
    value: Any,
    low: float | None,
    high: float | None,
    limits: RecipeLimits,
    *settings: str,
) -> None:
    """Refuse ``value`` unless it is a finite number in [low, high]; ``settings`` are
    the names (in RecipeLimits) of the limits that apply, for the message."""
    number = (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    )
    if (
        number is not None
        and math.isfinite(number)
        and (low is None or number >= low)
        and (high is None or number <= high)
    ):
        return
    if low is not None and high is not None:
        span = f"between {low:g} and {high:g}"
    elif low is not None:
        span = f"at least {low:g}"
    else:
        span = f"at most {high:g}"
    names = ", ".join(f"{limits.setting}{name.upper()}" for name in settings)
    raise InvalidInput(
        field,
        f"{field} must be {span} on this site (got {value!r}; site limit {names})",
        code=CODE,
        limit_min=low,
        limit_max=high,
    )


def check_solids(field: str, solids_pct: Any, limits: RecipeLimits) -> None:
    """Cw (given, or solved from a W/C or density target named ``field``) in range."""
    _within(
        field,
        solids_pct,
        limits.solids_pct_min,
        limits.solids_pct_max,
        limits,
        "solids_pct_min",
        "solids_pct_max",
    )


def check_binder_pct(field: str, binder_pct: Any, limits: RecipeLimits) -> None:
    """Bw in range."""
    _within(
        field,
        binder_pct,
        limits.binder_pct_min,
        limits.binder_pct_max,
        limits,
        "binder_pct_min",
        "binder_pct_max",
    )


def check_binder_gs(field: str, specific_gravity: Any, limits: RecipeLimits) -> None:
    """A binder component's Gs in range."""
    _within(
        field,
        specific_gravity,
        limits.binder_gs_min,
        limits.binder_gs_max,
        limits,
        "binder_gs_min",
        "binder_gs_max",
    )


def _part(recipe: Any, name: str, default: Any = None) -> Any:
    """A part of a recipe given as a mapping (a stored recipe) or as an object with the
    same attribute names (a validated request, read as it is: no copy into a dict)."""
    if isinstance(recipe, Mapping):
        return recipe.get(name, default)
    return getattr(recipe, name, default)


def check_tailings(tailings: Any, limits: RecipeLimits, field: str) -> None:
    """The tailings' Gs and moisture (``field`` is where they sit, e.g. ``tailings``)."""
    _within(
        f"{field}.specific_gravity",
        _part(tailings, "specific_gravity"),
        limits.tailings_gs_min,
        limits.tailings_gs_max,
        limits,
        "tailings_gs_min",
        "tailings_gs_max",
    )
    _within(
        f"{field}.moisture_pct",
        _part(tailings, "moisture_pct", 0.0),
        0.0,
        limits.moisture_pct_max,
        limits,
        "moisture_pct_max",
    )


def check_mix(mix: Any, limits: RecipeLimits, *, prefix: str = "") -> None:
    """Refuse (``InvalidInput``, code ``recipe_implausible``, naming the field with
    ``prefix``) a mix outside the site's plausible ranges. ``mix`` is a recipe as the
    API takes it, as a mapping or as the validated request itself: ``tailings``,
    ``binder`` (list), ``binder_pct``, ``solids_pct`` (may be absent when another
    target gives it), optional ``aggregate``."""
    check_tailings(_part(mix, "tailings") or {}, limits, f"{prefix}tailings")
    for i, component in enumerate(_part(mix, "binder") or ()):
        check_binder_gs(
            f"{prefix}binder[{i}].specific_gravity", _part(component, "specific_gravity"), limits
        )
        _within(
            f"{prefix}binder[{i}].fraction_pct",
            _part(component, "fraction_pct"),
            limits.blend_component_pct_min,
            100.0,
            limits,
            "blend_component_pct_min",
        )
    check_binder_pct(f"{prefix}binder_pct", _part(mix, "binder_pct"), limits)
    solids_pct = _part(mix, "solids_pct")
    if solids_pct is not None:
        check_solids(f"{prefix}solids_pct", solids_pct, limits)
    aggregate = _part(mix, "aggregate")
    if aggregate:
        _within(
            f"{prefix}aggregate.specific_gravity",
            _part(aggregate, "specific_gravity"),
            limits.tailings_gs_min,
            limits.tailings_gs_max,
            limits,
            "tailings_gs_min",
            "tailings_gs_max",
        )
        _within(
            f"{prefix}aggregate.fraction_pct",
            _part(aggregate, "fraction_pct"),
            0.0,
            limits.aggregate_pct_max,
            limits,
            "aggregate_pct_max",
        )
