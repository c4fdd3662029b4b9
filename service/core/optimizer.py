"""The cheapest binder blend and dose that reaches a required UCS.

Search: every blend on a grid of the binder fractions (1 % steps for up to three
components, coarser beyond) inside the allowed fraction bounds, times every Cw on a grid
of the pumpable window. For each point the fitted strength model gives, in closed form,
the Bw at which the predicted UCS at the design age equals the requirement
(:meth:`StrengthModel.binder_ratio_for_ucs_grid`); Bw is raised to the site minimum when
less is needed, and a point needing more than the maximum is infeasible. The binder cost
per m3 is binder kg per m3 of the saturated paste (the proportioning relations of
DOMAIN.md, Belem & Benzaazoua convention) times the blend's price per kg. Everything is
vectorised with numpy; unless the caller allows extrapolation, the search stays inside
the model's calibrated data range (blend fractions, Bw and Cw) and the design age must be
within the model's accepted range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from service.core.proportioning import (
    WATER_DENSITY_KG_M3,
    BinderComponent,
    Proportioning,
    Tailings,
    proportion,
)
from service.core.strength_model import FloatArray, StrengthModel
from service.errors import InvalidInput, OutsideCalibrationRange, RecipeInfeasible

# A found Bw is raised by this relative margin so that rounding can never leave the
# predicted strength a hair below the requirement.
_BW_MARGIN = 1.0e-9
_EDGE = 1.0e-9
_MAX_BLEND_POINTS = 20_000
_UCS_KPA_MAX = 1.0e6
_DAYS_MAX = 3650.0
_PRICE_MAX = 1.0e7
_VOLUME_M3_MAX = 1.0e7
_CEMENT = "cement"


@dataclass(frozen=True, slots=True)
class BinderOption:
    """A binder the plant can dose: Gs, price per tonne (any currency, the costs come
    out in the same) and the allowed range of its fraction of the blend (0-1)."""

    name: str
    specific_gravity: float
    price_per_t: float
    min_fraction: float = 0.0
    max_fraction: float = 1.0


@dataclass(frozen=True, slots=True)
class RecipeLimits:
    """The pumpable Cw window and the site's Bw limits (fractions)."""

    solids_fraction_min: float
    solids_fraction_max: float
    binder_ratio_min: float
    binder_ratio_max: float


@dataclass(frozen=True)
class CostedRecipe:
    """A recipe with its predicted strength and binder cost.

    ``blend`` has every offered binder (0 for the unused); costs are binder only.
    """

    blend: dict[str, float] = field(hash=False)
    binder_ratio: float
    solids_fraction: float
    predicted_ucs_kpa: float
    extrapolated: bool
    binder_kg_m3: float
    binder_components_kg_m3: dict[str, float] = field(hash=False)
    binder_cost_per_m3: float
    binder_cost_for_stope: float | None
    proportioning: Proportioning


@dataclass(frozen=True)
class OptimizedRecipe:
    """The cheapest recipe and how it compares with cement alone.

    ``binding_constraints`` names the active limits: ``required_ucs`` (Bw set by the
    strength), ``binder_pct_min`` / ``binder_pct_max``, ``solids_pct_min`` /
    ``solids_pct_max``, ``binders[<name>].min_fraction_pct`` / ``max_fraction_pct``;
    a limit coming from the model's data range is prefixed ``calibration:`` (e.g.
    ``calibration:binder.slag.fraction_pct_max``). ``cement_only`` is None when there is
    no cement-only recipe to compare with, and ``cement_only_note`` then says why; the
    savings are then None too.
    """

    recipe: CostedRecipe
    required_ucs_kpa: float
    curing_days: float
    binding_constraints: tuple[str, ...]
    cement_only: CostedRecipe | None
    cement_only_note: str | None
    saving_per_m3: float | None
    saving_pct: float | None
    saving_for_stope: float | None
    blend_step: float
    solids_step: float
    candidates_evaluated: int


# --- the grids ----------------------------------------------------------------------------


@cache
def _compositions(parts: int, steps: int) -> np.ndarray:
    """All ways to write ``steps`` as an ordered sum of ``parts`` non-negative integers,
    as a read-only (m, parts) array."""
    if parts == 1:
        grid = np.array([[steps]])
    elif parts == 2:
        counts = np.arange(steps + 1)
        grid = np.column_stack([counts, steps - counts])
    else:
        blocks = []
        for head in range(steps + 1):
            rest = _compositions(parts - 1, steps - head)
            blocks.append(np.column_stack([np.full(len(rest), head), rest]))
        grid = np.vstack(blocks)
    grid.setflags(write=False)
    return grid


def _blend_steps(parts: int, blend_step: float) -> int:
    """Grid divisions of 100 %: 1/blend_step, coarsened until the grid stays small."""
    steps = max(1, round(1.0 / blend_step))
    while steps > 1 and math.comb(steps + parts - 1, parts - 1) > _MAX_BLEND_POINTS:
        steps = max(1, steps // 2)
    return steps


# --- validation ---------------------------------------------------------------------------


def _bounded(field_name: str, value: float, low: float, high: float, scale: float = 1.0) -> None:
    if not low <= value <= high:
        raise InvalidInput(
            field_name,
            f"{field_name} must be between {low * scale:g} and {high * scale:g} "
            f"(got {value * scale!r})",
        )


def _validate(
    required_ucs_kpa: float,
    curing_days: float,
    binders: Sequence[BinderOption],
    tailings: Tailings,
    limits: RecipeLimits,
    stope_volume_m3: float | None,
    blend_step: float,
    solids_step: float,
) -> None:
    if not 0.0 < required_ucs_kpa <= _UCS_KPA_MAX:
        raise InvalidInput(
            "required_ucs_kpa", f"required_ucs_kpa must be above 0 (got {required_ucs_kpa!r})"
        )
    if not 0.0 < curing_days <= _DAYS_MAX:
        raise InvalidInput("curing_days", f"curing_days must be above 0 (got {curing_days!r})")
    if not binders:
        raise InvalidInput("binders", "at least one binder must be offered")
    seen: set[str] = set()
    for index, option in enumerate(binders):
        prefix = f"binders[{index}]"
        if not option.name or option.name in seen:
            raise InvalidInput(f"{prefix}.name", "binder names must be non-empty and unique")
        seen.add(option.name)
        if not 1.0 < option.specific_gravity <= 10.0:
            raise InvalidInput(
                f"{prefix}.specific_gravity",
                f"specific_gravity must be above 1 and at most 10 "
                f"(got {option.specific_gravity!r})",
            )
        _bounded(f"{prefix}.price_per_t", option.price_per_t, 0.0, _PRICE_MAX)
        _bounded(f"{prefix}.min_fraction_pct", option.min_fraction, 0.0, 1.0, 100.0)
        _bounded(f"{prefix}.max_fraction_pct", option.max_fraction, option.min_fraction, 1.0, 100.0)
    if not 1.0 < tailings.specific_gravity <= 10.0:
        raise InvalidInput(
            "tailings.specific_gravity",
            f"specific_gravity must be above 1 and at most 10 (got {tailings.specific_gravity!r})",
        )
    _bounded("tailings.moisture_pct", tailings.moisture_ratio, 0.0, 20.0, 100.0)
    if not 0.0 < limits.solids_fraction_min < 1.0:
        raise InvalidInput("solids_pct_min", "solids_pct_min must be above 0 and below 100")
    _bounded("solids_pct_max", limits.solids_fraction_max, limits.solids_fraction_min, 0.999, 100.0)
    if not 0.0 < limits.binder_ratio_min <= 1.0:
        raise InvalidInput("binder_pct_min", "binder_pct_min must be above 0 and at most 100")
    _bounded("binder_pct_max", limits.binder_ratio_max, limits.binder_ratio_min, 1.0, 100.0)
    if stope_volume_m3 is not None and not 0.0 < stope_volume_m3 <= _VOLUME_M3_MAX:
        raise InvalidInput(
            "stope_volume_m3", f"stope_volume_m3 must be above 0 (got {stope_volume_m3!r})"
        )
    if not 0.0 < blend_step <= 0.5:
        raise InvalidInput("blend_step_pct", "blend_step_pct must be above 0 and at most 50")
    if not 0.0 < solids_step <= 0.1:
        raise InvalidInput("solids_step_pct", "solids_step_pct must be above 0 and at most 10")


# --- the search ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    """A search interval and where each end comes from ("" site, "calibration:" model)."""

    low: float
    high: float
    low_source: str
    high_source: str


def _window(site_low: float, site_high: float, data_low: float, data_high: float) -> _Window:
    low, low_source = (data_low, "calibration:") if data_low > site_low else (site_low, "")
    high, high_source = (data_high, "calibration:") if data_high < site_high else (site_high, "")
    return _Window(low, high, low_source, high_source)


@dataclass(frozen=True, slots=True)
class _Found:
    blend_index: int
    solids_index: int
    binder_ratio: float
    at_minimum: bool


def _cheapest(
    model: StrengthModel,
    required_ucs_kpa: float,
    curing_days: float,
    model_fractions: FloatArray,
    option_fractions: FloatArray,
    options: Sequence[BinderOption],
    tailings_specific_gravity: float,
    solids: FloatArray,
    binder_window: _Window,
    site_binder_max: float,
) -> _Found:
    """Index of the cheapest feasible (blend, Cw) and its Bw, or RecipeInfeasible."""
    needed = model.binder_ratio_for_ucs_grid(required_ucs_kpa, model_fractions, solids, curing_days)
    raised = needed * (1.0 + _BW_MARGIN)
    binder_ratio = np.maximum(raised, binder_window.low)
    feasible = binder_ratio <= binder_window.high
    if not feasible.any():
        smallest = float(needed.min())
        if math.isinf(smallest):
            raise RecipeInfeasible(
                f"no Bw reaches {required_ucs_kpa:g} kPa at {curing_days:g} days inside the "
                "solids window: the model's binder/water ratio would have to exceed what any "
                "Bw gives",
                constraint="required_ucs",
            )
        if binder_window.high_source and smallest <= site_binder_max:
            raise RecipeInfeasible(
                f"Bw of {smallest * 100:.2f} % would be needed, above the calibrated maximum "
                f"of {binder_window.high * 100:g} % (the model is not trusted beyond its "
                "data; allow extrapolation to go further)",
                constraint="calibration:binder_pct_max",
                binder_pct_needed=smallest * 100.0,
            )
        raise RecipeInfeasible(
            f"Bw above the site maximum of {site_binder_max * 100:g} % would be needed "
            f"(at least {smallest * 100:.2f} %)",
            constraint="binder_pct_max",
            binder_pct_needed=smallest * 100.0,
        )
    inverse_gs = np.array([1.0 / option.specific_gravity for option in options])
    price_per_kg = np.array([option.price_per_t / 1000.0 for option in options])
    binder_gs = 1.0 / (option_fractions @ inverse_gs)
    blend_price = option_fractions @ price_per_kg
    cw = solids[None, :]
    solids_gs = (1.0 + binder_ratio) / (
        1.0 / tailings_specific_gravity + binder_ratio / binder_gs[:, None]
    )
    density = WATER_DENSITY_KG_M3 / (cw / solids_gs + 1.0 - cw)
    binder_kg = density * cw * binder_ratio / (1.0 + binder_ratio)
    cost = np.where(feasible, binder_kg * blend_price[:, None], np.inf)
    blend_index, solids_index = np.unravel_index(int(np.argmin(cost)), cost.shape)
    chosen = float(binder_ratio[blend_index, solids_index])
    return _Found(
        blend_index=int(blend_index),
        solids_index=int(solids_index),
        binder_ratio=chosen,
        at_minimum=bool(raised[blend_index, solids_index] <= binder_window.low),
    )


def _costed(
    model: StrengthModel,
    options: Sequence[BinderOption],
    blend: dict[str, float],
    binder_ratio: float,
    solids_fraction: float,
    curing_days: float,
    tailings: Tailings,
    stope_volume_m3: float | None,
) -> CostedRecipe:
    mix = proportion(
        tailings,
        [BinderComponent(o.name, o.specific_gravity, blend[o.name]) for o in options],
        binder_ratio,
        solids_fraction,
    )
    prediction = model.predict(
        {name: fraction for name, fraction in blend.items() if name in model.components},
        binder_ratio,
        solids_fraction,
        curing_days,
        allow_extrapolation=True,
    )
    components_kg = mix.binder_components_kg_m3
    cost = sum(components_kg[o.name] * o.price_per_t / 1000.0 for o in options)
    return CostedRecipe(
        blend=blend,
        binder_ratio=binder_ratio,
        solids_fraction=solids_fraction,
        predicted_ucs_kpa=prediction.ucs_kpa,
        extrapolated=prediction.extrapolated,
        binder_kg_m3=mix.binder_kg_m3,
        binder_components_kg_m3=components_kg,
        binder_cost_per_m3=cost,
        binder_cost_for_stope=None if stope_volume_m3 is None else cost * stope_volume_m3,
        proportioning=mix,
    )


def _solids_grid(window: _Window, solids_step: float) -> FloatArray:
    count = max(1, math.ceil((window.high - window.low) / solids_step - 1.0e-9))
    if window.high - window.low <= _EDGE:
        return np.array([window.low])
    grid: FloatArray = np.linspace(window.low, window.high, count + 1)
    return grid


def _pct(value: float) -> str:
    return f"{value * 100:g}"


def optimize_recipe(
    *,
    required_ucs_kpa: float,
    curing_days: float,
    binders: Sequence[BinderOption],
    tailings: Tailings,
    limits: RecipeLimits,
    model: StrengthModel,
    stope_volume_m3: float | None = None,
    allow_extrapolation: bool = False,
    blend_step: float = 0.01,
    solids_step: float = 0.0025,
) -> OptimizedRecipe:
    """The cheapest recipe whose predicted UCS at ``curing_days`` meets the requirement.

    See the module docstring for the search. Raises InvalidInput naming the field for a
    bad input, OutsideCalibrationRange when the design age is outside the model's accepted
    range (unless ``allow_extrapolation``), and RecipeInfeasible (code
    ``recipe_infeasible``, extra ``constraint``) saying which limit could not be met.
    """
    _validate(
        required_ucs_kpa,
        curing_days,
        binders,
        tailings,
        limits,
        stope_volume_m3,
        blend_step,
        solids_step,
    )
    days_low, days_high = model.curing_days_range.accepted(model.range_tolerance)
    if not allow_extrapolation and not days_low <= curing_days <= days_high:
        raise OutsideCalibrationRange(
            f"curing_days {curing_days:g} is outside the calibrated range (accepted "
            f"{days_low:g} to {days_high:g})",
            variable="curing_days",
            value=curing_days,
            accepted_min=days_low,
            accepted_max=days_high,
        )

    # Windows for Cw and Bw: the site's, narrowed to the data unless extrapolating.
    if allow_extrapolation:
        solids_window = _Window(limits.solids_fraction_min, limits.solids_fraction_max, "", "")
        binder_window = _Window(limits.binder_ratio_min, limits.binder_ratio_max, "", "")
    else:
        solids_window = _window(
            limits.solids_fraction_min,
            limits.solids_fraction_max,
            model.solids_fraction_range.minimum,
            model.solids_fraction_range.maximum,
        )
        binder_window = _window(
            limits.binder_ratio_min,
            limits.binder_ratio_max,
            model.binder_ratio_range.minimum,
            model.binder_ratio_range.maximum,
        )
    if solids_window.low > solids_window.high:
        raise RecipeInfeasible(
            f"the pumpable solids window {_pct(limits.solids_fraction_min)}-"
            f"{_pct(limits.solids_fraction_max)} % does not overlap the calibrated range "
            f"{_pct(model.solids_fraction_range.minimum)}-"
            f"{_pct(model.solids_fraction_range.maximum)} %",
            constraint="calibration:solids_pct",
        )
    if binder_window.low > binder_window.high:
        raise RecipeInfeasible(
            f"the site Bw limits {_pct(limits.binder_ratio_min)}-"
            f"{_pct(limits.binder_ratio_max)} % do not overlap the calibrated range "
            f"{_pct(model.binder_ratio_range.minimum)}-"
            f"{_pct(model.binder_ratio_range.maximum)} %",
            constraint="calibration:binder_pct",
        )
    solids = _solids_grid(solids_window, solids_step)

    # Binders the model knows; the others can only stay at zero.
    options = [option for option in binders if option.name in model.components]
    for index, option in enumerate(binders):
        if option.name not in model.components and option.min_fraction > 0.0:
            raise RecipeInfeasible(
                f"binder {option.name!r} must be at least {_pct(option.min_fraction)} % of the "
                "blend, but the strength model has no laboratory data for it",
                constraint=f"binders[{index}].min_fraction_pct",
            )
    if not options:
        raise RecipeInfeasible(
            f"none of the offered binders is in the strength model ({', '.join(model.components)})",
            constraint="binders",
        )
    if sum(option.max_fraction for option in options) < 1.0 - _EDGE:
        unknown = [option.name for option in binders if option.name not in model.components]
        raise RecipeInfeasible(
            "the binders the strength model has data for ("
            + ", ".join(f"{o.name} up to {_pct(o.max_fraction)} %" for o in options)
            + ") cannot make up 100 % of the blend"
            + (f"; no laboratory data for {', '.join(unknown)}" if unknown else ""),
            constraint="blend_bounds",
        )
    steps = _blend_steps(len(options), blend_step)
    option_fractions = _compositions(len(options), steps) / steps
    low = np.array([option.min_fraction for option in options]) - _EDGE
    high = np.array([option.max_fraction for option in options]) + _EDGE
    keep = np.all((option_fractions >= low) & (option_fractions <= high), axis=1)
    if not keep.any():
        raise RecipeInfeasible(
            "the binder fraction bounds admit no blend summing to 100 % "
            f"(on a {100 / steps:g} % grid)",
            constraint="blend_bounds",
        )
    option_fractions = option_fractions[keep]
    columns = [model.components.index(option.name) for option in options]
    model_fractions = np.zeros((len(option_fractions), len(model.components)))
    model_fractions[:, columns] = option_fractions
    if not allow_extrapolation:
        inside = np.ones(len(model_fractions), dtype=bool)
        for j, data_range in enumerate(model.fraction_ranges):
            inside &= (model_fractions[:, j] >= data_range.minimum - _EDGE) & (
                model_fractions[:, j] <= data_range.maximum + _EDGE
            )
        if not inside.any():
            ranges = ", ".join(
                f"{name} {_pct(r.minimum)}-{_pct(r.maximum)} %"
                for name, r in zip(model.components, model.fraction_ranges, strict=True)
            )
            raise RecipeInfeasible(
                f"no allowed blend lies inside the calibrated blend range ({ranges})",
                constraint="calibration:blend",
            )
        option_fractions = option_fractions[inside]
        model_fractions = model_fractions[inside]

    found = _cheapest(
        model,
        required_ucs_kpa,
        curing_days,
        model_fractions,
        option_fractions,
        options,
        tailings.specific_gravity,
        solids,
        binder_window,
        limits.binder_ratio_max,
    )
    blend = {option.name: 0.0 for option in binders}
    for option, fraction in zip(options, option_fractions[found.blend_index], strict=True):
        blend[option.name] = float(fraction)
    recipe = _costed(
        model,
        binders,
        blend,
        found.binder_ratio,
        float(solids[found.solids_index]),
        curing_days,
        tailings,
        stope_volume_m3,
    )

    binding = _binding_constraints(
        found,
        len(solids),
        solids_window,
        binder_window,
        binders,
        blend,
        model,
        allow_extrapolation,
    )
    cement_only, note = _cement_only(
        model,
        binders,
        required_ucs_kpa,
        curing_days,
        tailings,
        solids,
        binder_window,
        limits.binder_ratio_max,
        stope_volume_m3,
        allow_extrapolation,
    )
    saving_per_m3 = saving_pct = saving_for_stope = None
    if cement_only is not None:
        saving_per_m3 = cement_only.binder_cost_per_m3 - recipe.binder_cost_per_m3
        if cement_only.binder_cost_per_m3 > 0.0:
            saving_pct = 100.0 * saving_per_m3 / cement_only.binder_cost_per_m3
        if stope_volume_m3 is not None:
            saving_for_stope = saving_per_m3 * stope_volume_m3
    return OptimizedRecipe(
        recipe=recipe,
        required_ucs_kpa=required_ucs_kpa,
        curing_days=curing_days,
        binding_constraints=binding,
        cement_only=cement_only,
        cement_only_note=note,
        saving_per_m3=saving_per_m3,
        saving_pct=saving_pct,
        saving_for_stope=saving_for_stope,
        blend_step=1.0 / steps,
        solids_step=float(solids[1] - solids[0]) if len(solids) > 1 else 0.0,
        candidates_evaluated=int(model_fractions.shape[0] * len(solids)),
    )


def _binding_constraints(
    found: _Found,
    solids_count: int,
    solids_window: _Window,
    binder_window: _Window,
    binders: Sequence[BinderOption],
    blend: dict[str, float],
    model: StrengthModel,
    allow_extrapolation: bool,
) -> tuple[str, ...]:
    binding: list[str] = []
    if found.at_minimum:
        binding.append(f"{binder_window.low_source}binder_pct_min")
    else:
        binding.append("required_ucs")
    if found.binder_ratio >= binder_window.high * (1.0 - 1.0e-6):
        binding.append(f"{binder_window.high_source}binder_pct_max")
    if found.solids_index == 0:
        binding.append(f"{solids_window.low_source}solids_pct_min")
    if found.solids_index == solids_count - 1:
        binding.append(f"{solids_window.high_source}solids_pct_max")
    for option in binders:
        fraction = blend[option.name]
        if option.min_fraction > 0.0 and fraction <= option.min_fraction + 0.005:
            binding.append(f"binders[{option.name}].min_fraction_pct")
        if option.max_fraction < 1.0 and fraction >= option.max_fraction - 0.005:
            binding.append(f"binders[{option.name}].max_fraction_pct")
    if not allow_extrapolation:
        for name, data_range in zip(model.components, model.fraction_ranges, strict=True):
            fraction = blend.get(name, 0.0)
            if data_range.minimum > 0.0 and fraction <= data_range.minimum + _EDGE:
                binding.append(f"calibration:binder.{name}.fraction_pct_min")
            if data_range.maximum < 1.0 and fraction >= data_range.maximum - _EDGE:
                binding.append(f"calibration:binder.{name}.fraction_pct_max")
    return tuple(binding)


def _cement_only(
    model: StrengthModel,
    binders: Sequence[BinderOption],
    required_ucs_kpa: float,
    curing_days: float,
    tailings: Tailings,
    solids: FloatArray,
    binder_window: _Window,
    site_binder_max: float,
    stope_volume_m3: float | None,
    allow_extrapolation: bool,
) -> tuple[CostedRecipe | None, str | None]:
    """The cheapest cement-only recipe under the same Cw grid and Bw limits, or a note."""
    cement = next((o for o in binders if o.name.lower() == _CEMENT), None)
    if cement is None:
        return None, "no binder named 'cement' is offered: no cement-only price to compare"
    if cement.name not in model.components:
        return None, "the strength model has no data for cement: no cement-only comparison"
    column = model.components.index(cement.name)
    data_range = model.fraction_ranges[column]
    if not allow_extrapolation and data_range.maximum < 1.0 - _EDGE:
        return None, (
            "cement alone lies outside the calibrated blend range (cement "
            f"{_pct(data_range.minimum)}-{_pct(data_range.maximum)} %): no cement-only figure"
        )
    model_fractions = np.zeros((1, len(model.components)))
    model_fractions[0, column] = 1.0
    if not allow_extrapolation:
        for j, other in enumerate(model.fraction_ranges):
            if j != column and other.minimum > _EDGE:
                return None, "cement alone lies outside the calibrated blend range"
    try:
        found = _cheapest(
            model,
            required_ucs_kpa,
            curing_days,
            model_fractions,
            np.ones((1, 1)),
            [cement],
            tailings.specific_gravity,
            solids,
            binder_window,
            site_binder_max,
        )
    except RecipeInfeasible as err:
        return None, f"a cement-only recipe is infeasible: {err.detail}"
    blend = {option.name: 0.0 for option in binders}
    blend[cement.name] = 1.0
    return (
        _costed(
            model,
            binders,
            blend,
            found.binder_ratio,
            float(solids[found.solids_index]),
            curing_days,
            tailings,
            stope_volume_m3,
        ),
        None,
    )
