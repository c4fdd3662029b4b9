"""The cheapest binder blend and dose that meets every strength requirement.

The search over the blends and the Cw window, with the bound each requirement is
designed on (the median, the expected pass fraction of the prediction interval, or a
tolerance bound at a pass fraction and confidence) and the tested combinations of the
strength model, is :mod:`service.core.optimizer_search`. This module validates the
request, runs the search for the offered blends and for cement alone, and states the
answer: the recipe's masses per m3 (the proportioning relations of a saturated paste,
Belem & Benzaazoua convention), its binder cost (binder kg per m3 times the blend's
price per kg), each requirement's median, expected and tolerance bounds, the predicted
pumpability (:mod:`service.core.rheology`, with where the line runs full,
:mod:`service.core.slack_flow`), the limits that bind and the saving against cement.
"""

from __future__ import annotations

__all__ = [
    "LN_BINDER_WATER_MAX",
    "LN_BINDER_WATER_MIN",
    "MAX_PUMP_PRESSURE",
    "MAX_YIELD_STRESS",
    "REGRESSOR_HULL",
    "REQUIRED_UCS",
    "RHEOLOGY_SOLIDS_MAX",
    "BinderOption",
    "CostedRecipe",
    "FeedReach",
    "OptimizedRecipe",
    "RecipeLimits",
    "Requirement",
    "RequirementCheck",
    "optimize_recipe",
]

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from service.core import reliability, tolerance
from service.core.optimizer_search import (
    EDGE,
    LN_BINDER_WATER_MAX,
    LN_BINDER_WATER_MIN,
    MAX_PUMP_PRESSURE,
    MAX_YIELD_STRESS,
    REGRESSOR_HULL,
    REQUIRED_UCS,
    RHEOLOGY_SOLIDS_MAX,
    BinderOption,
    Bound,
    FeedReach,
    Found,
    Pump,
    RecipeLimits,
    Requirement,
    blend_steps,
    bounded,
    compositions,
    design_bound,
    pump_inputs,
    search,
    solids_grid,
)
from service.core.plant_spread import PlantSpread
from service.core.proportioning import (
    BinderComponent,
    Proportioning,
    Tailings,
    proportion,
)
from service.core.rheology import (
    PipeFlow,
    PipeLine,
    RheologyModel,
    pipe_flow,
    slump_from_yield_stress,
)
from service.core.strength_model import FloatArray, StrengthModel
from service.errors import InvalidInput, OutsideCalibrationRange, RecipeInfeasible

_UCS_KPA_MAX = 1.0e6
_DAYS_MAX = 3650.0
_PRICE_MAX = 1.0e7
_VOLUME_M3_MAX = 1.0e7
_STRESS_MAX = 1.0e6
_CEMENT = "cement"
_SINGLE_NAME = "required_ucs"


@dataclass(frozen=True, slots=True)
class RequirementCheck:
    """How a recipe meets one requirement: the median UCS at its age, the lower bound a
    fraction ``pass_fraction`` of new cylinders is expected to exceed (None for a median
    design), the expected probability that a new cylinder reaches the requirement (both
    on average over calibrations), the tolerance bound that the fraction exceeds with
    ``confidence`` (None without one), whether this requirement set the dose
    (``binding``), and whether the prediction at its age is extrapolated (``outside``
    naming why)."""

    name: str
    required_ucs_kpa: float
    curing_days: float
    median_ucs_kpa: float
    lower_ucs_kpa: float | None
    pass_probability: float
    binding: bool
    extrapolated: bool
    outside: tuple[str, ...]
    tolerance_lower_ucs_kpa: float | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class CostedRecipe:
    """A recipe with its predicted strength and binder cost.

    ``blend`` has every offered binder (0 for the unused); costs are binder only.
    ``predicted_ucs_kpa`` is the median UCS at the binding requirement's age;
    ``requirement_checks`` has one entry per requirement. With a rheology calibration,
    ``yield_stress_pa``, ``slump_mm`` (Abrams cone) and, with a line, ``pipe_flow`` /
    ``pump_pressure_kpa`` are its predicted pumpability (``rheology_extrapolated`` when
    Cw or Bw lies outside the rheology tests).
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
    requirement_checks: tuple[RequirementCheck, ...] = ()
    pass_fraction: float | None = None
    confidence: float | None = None
    yield_stress_pa: float | None = None
    slump_mm: float | None = None
    pump_pressure_kpa: float | None = None
    pipe_flow: PipeFlow | None = None
    rheology_extrapolated: bool = False
    uncertainty: Uncertainty | None = None


@dataclass(frozen=True)
class Uncertainty:
    """What a design's spread of ln UCS rests on, at its binding requirement: the fit's
    (lab scatter and the leverage of the design point), the plant's Cw and Bw spread
    carried through the model, and the total; ``spread`` what the plant's rests on."""

    lab_sd_log: float
    plant_solids_sd_log: float
    plant_binder_sd_log: float
    total_sd_log: float
    spread: PlantSpread | None


@dataclass(frozen=True)
class OptimizedRecipe:
    """The cheapest recipe and how it compares with cement alone.

    ``binding_constraints`` names the active limits: ``required_ucs`` (Bw set by the
    strength; ``binding_requirement`` names which requirement), ``binder_pct_min`` /
    ``binder_pct_max``, ``solids_pct_min`` / ``solids_pct_max``,
    ``binders[<name>].min_fraction_pct`` / ``max_fraction_pct``, the model's tested
    combinations ``calibration:ln_binder_water_min`` / ``_max``,
    ``calibration:regressor_hull`` and ``calibration:binder.<name>.fraction_pct_min`` /
    ``_max``, and the pumpability limits ``max_yield_stress_pa``,
    ``max_pump_pressure_kpa`` and ``rheology_calibration:solids_pct_max`` (each named
    when the recipe would be cheaper without it). ``required_ucs_kpa`` / ``curing_days``
    are the binding requirement's; ``requirements`` lists them all. ``cement_only`` is
    None when there is no cement-only recipe to compare with, and ``cement_only_note``
    then says why; the savings are then None too.
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
    requirements: tuple[Requirement, ...] = ()
    pass_fraction: float | None = None
    binding_requirement: str | None = None
    confidence: float | None = None


# --- validation ---------------------------------------------------------------------------


def _requirements(
    required_ucs_kpa: float | None,
    curing_days: float | None,
    requirements: Sequence[Requirement] | None,
) -> tuple[tuple[Requirement, ...], tuple[str, ...]]:
    """The pair (as one requirement named ``required_ucs``) and the list, validated, with
    the field prefix of each ("" for the pair, ``requirements[<i>].``)."""
    if (required_ucs_kpa is None) != (curing_days is None):
        missing = "curing_days" if curing_days is None else "required_ucs_kpa"
        raise InvalidInput(missing, f"{missing} must be given with the other of the pair")
    checked: list[tuple[str, Requirement]] = []
    if required_ucs_kpa is not None and curing_days is not None:
        checked.append(("", Requirement(required_ucs_kpa, curing_days, _SINGLE_NAME)))
    for index, item in enumerate(requirements or ()):
        name = item.name or f"requirements[{index}]"
        checked.append(
            (f"requirements[{index}].", Requirement(item.required_ucs_kpa, item.curing_days, name))
        )
    if not checked:
        raise InvalidInput("requirements", "give required_ucs_kpa and curing_days, or requirements")
    for prefix, item in checked:
        if not 0.0 < item.required_ucs_kpa <= _UCS_KPA_MAX:
            raise InvalidInput(
                f"{prefix}required_ucs_kpa",
                f"required_ucs_kpa must be above 0 (got {item.required_ucs_kpa!r})",
            )
        if not 0.0 < item.curing_days <= _DAYS_MAX:
            raise InvalidInput(
                f"{prefix}curing_days", f"curing_days must be above 0 (got {item.curing_days!r})"
            )
    return tuple(item for _, item in checked), tuple(prefix for prefix, _ in checked)


def _validate(
    binders: Sequence[BinderOption],
    tailings: Tailings,
    limits: RecipeLimits,
    stope_volume_m3: float | None,
    blend_step: float,
    solids_step: float,
) -> None:
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
        bounded(f"{prefix}.price_per_t", option.price_per_t, 0.0, _PRICE_MAX)
        bounded(f"{prefix}.min_fraction_pct", option.min_fraction, 0.0, 1.0, 100.0)
        bounded(f"{prefix}.max_fraction_pct", option.max_fraction, option.min_fraction, 1.0, 100.0)
    if not 1.0 < tailings.specific_gravity <= 10.0:
        raise InvalidInput(
            "tailings.specific_gravity",
            f"specific_gravity must be above 1 and at most 10 (got {tailings.specific_gravity!r})",
        )
    bounded("tailings.moisture_pct", tailings.moisture_ratio, 0.0, 20.0, 100.0)
    if not 0.0 < limits.solids_fraction_min < 1.0:
        raise InvalidInput("solids_pct_min", "solids_pct_min must be above 0 and below 100")
    bounded("solids_pct_max", limits.solids_fraction_max, limits.solids_fraction_min, 0.999, 100.0)
    if not 0.0 < limits.binder_ratio_min <= 1.0:
        raise InvalidInput("binder_pct_min", "binder_pct_min must be above 0 and at most 100")
    bounded("binder_pct_max", limits.binder_ratio_max, limits.binder_ratio_min, 1.0, 100.0)
    if stope_volume_m3 is not None and not 0.0 < stope_volume_m3 <= _VOLUME_M3_MAX:
        raise InvalidInput(
            "stope_volume_m3", f"stope_volume_m3 must be above 0 (got {stope_volume_m3!r})"
        )
    if not 0.0 < blend_step <= 0.5:
        raise InvalidInput("blend_step_pct", "blend_step_pct must be above 0 and at most 50")
    if not 0.0 < solids_step <= 0.1:
        raise InvalidInput("solids_step_pct", "solids_step_pct must be above 0 and at most 10")


def _costed(
    model: StrengthModel,
    options: Sequence[BinderOption],
    blend: dict[str, float],
    binder_ratio: float,
    solids_fraction: float,
    requirements: Sequence[Requirement],
    found: Found,
    pass_fraction: float | None,
    confidence: float | None,
    tailings: Tailings,
    stope_volume_m3: float | None,
    pump: Pump,
    plant_spread: PlantSpread | None = None,
) -> CostedRecipe:
    mix = proportion(
        tailings,
        [BinderComponent(o.name, o.specific_gravity, blend[o.name]) for o in options],
        binder_ratio,
        solids_fraction,
    )
    model_blend = {name: fraction for name, fraction in blend.items() if name in model.components}
    exponent = model.binder_water_exponent
    plant_cw = plant_bw = 0.0
    if plant_spread is not None and pass_fraction is not None:
        plant_cw, plant_bw = plant_spread.variances_log(exponent, solids_fraction, binder_ratio)
    checks = []
    lab_sd = []
    for j, requirement in enumerate(requirements):
        prediction = model.predict(
            model_blend,
            binder_ratio,
            solids_fraction,
            requirement.curing_days,
            allow_extrapolation=True,
            pass_fraction=pass_fraction,
            confidence=confidence,
            extra_variance_log=plant_cw + plant_bw,
        )
        lab_sd.append(
            math.sqrt(model.statistics().residual_variance * (1.0 + (prediction.leverage or 0.0)))
        )
        checks.append(
            RequirementCheck(
                name=requirement.name,
                required_ucs_kpa=requirement.required_ucs_kpa,
                curing_days=requirement.curing_days,
                median_ucs_kpa=prediction.median_ucs_kpa,
                lower_ucs_kpa=prediction.lower_ucs_kpa,
                pass_probability=prediction.pass_probability(requirement.required_ucs_kpa),
                binding=found.strength_binds and j == found.binding_requirement,
                extrapolated=prediction.extrapolated,
                outside=prediction.outside,
                tolerance_lower_ucs_kpa=prediction.tolerance_lower_ucs_kpa,
                confidence=prediction.confidence,
            )
        )
    components_kg = mix.binder_components_kg_m3
    cost = sum(components_kg[o.name] * o.price_per_t / 1000.0 for o in options)
    yield_stress = slump = pressure = None
    flow = None
    rheology_extrapolated = False
    if pump.rheology is not None:
        yield_stress = pump.rheology.yield_stress_pa(solids_fraction, binder_ratio)
        slump = slump_from_yield_stress(min(yield_stress, _STRESS_MAX), mix.wet_density_kg_m3)
        rheology_extrapolated = bool(pump.rheology.outside(solids_fraction, binder_ratio))
        if pump.pipeline is not None and pump.rheology.has_viscosity:
            flow = pipe_flow(
                pump.pipeline,
                mix.wet_density_kg_m3,
                yield_stress,
                pump.rheology.plastic_viscosity(solids_fraction),
            )
            pressure = flow.pump_pressure_kpa
    governing = checks[found.binding_requirement]
    lab = lab_sd[found.binding_requirement]
    uncertainty = Uncertainty(
        lab_sd_log=lab,
        plant_solids_sd_log=math.sqrt(plant_cw),
        plant_binder_sd_log=math.sqrt(plant_bw),
        total_sd_log=math.sqrt(lab * lab + plant_cw + plant_bw),
        spread=plant_spread if pass_fraction is not None else None,
    )
    return CostedRecipe(
        blend=blend,
        binder_ratio=binder_ratio,
        solids_fraction=solids_fraction,
        predicted_ucs_kpa=governing.median_ucs_kpa,
        extrapolated=any(check.extrapolated for check in checks),
        binder_kg_m3=mix.binder_kg_m3,
        binder_components_kg_m3=components_kg,
        binder_cost_per_m3=cost,
        binder_cost_for_stope=None if stope_volume_m3 is None else cost * stope_volume_m3,
        proportioning=mix,
        requirement_checks=tuple(checks),
        pass_fraction=pass_fraction,
        confidence=confidence,
        yield_stress_pa=yield_stress,
        slump_mm=slump,
        pump_pressure_kpa=pressure,
        pipe_flow=flow,
        rheology_extrapolated=rheology_extrapolated,
        uncertainty=uncertainty,
    )


def _variance_at(
    model: StrengthModel, spread: PlantSpread | None, pass_fraction: float | None
) -> Callable[[float, float], float] | None:
    """The plant's spread of ln UCS at a recipe (Cw, Bw), for the search's last step."""
    if spread is None or pass_fraction is None:
        return None
    exponent = model.binder_water_exponent
    return lambda cw, bw: spread.variance_log(exponent, cw, bw)


def _pct(value: float) -> str:
    return f"{value * 100:g}"


def _check_ages(
    model: StrengthModel, requirements: Sequence[Requirement], prefixes: Sequence[str]
) -> None:
    """OutsideCalibrationRange naming the first requirement whose age is outside the
    accepted ln t range (see :meth:`StrengthModel.accepted_log_days_range`)."""
    low, high = model.accepted_log_days_range()
    for prefix, requirement in zip(prefixes, requirements, strict=True):
        days = requirement.curing_days
        if not low - 1.0e-9 <= math.log(days) <= high + 1.0e-9:
            days_low, days_high = math.exp(low), math.exp(high)
            raise OutsideCalibrationRange(
                f"curing_days {days:g} is outside the calibrated range (accepted "
                f"{days_low:.3g} to {days_high:.3g} days: the tested "
                f"{model.curing_days_range.minimum:g}-{model.curing_days_range.maximum:g} "
                f"widened by {model.range_tolerance * 100:g} % of the span of ln t)",
                variable=f"{prefix}curing_days",
                value=days,
                accepted_min=days_low,
                accepted_max=days_high,
            )


def optimize_recipe(
    *,
    required_ucs_kpa: float | None = None,
    curing_days: float | None = None,
    binders: Sequence[BinderOption],
    tailings: Tailings,
    limits: RecipeLimits,
    model: StrengthModel,
    stope_volume_m3: float | None = None,
    allow_extrapolation: bool = False,
    blend_step: float = 0.01,
    solids_step: float = 0.0025,
    requirements: Sequence[Requirement] | None = None,
    pass_fraction: float | None = None,
    confidence: float | None = None,
    rheology: RheologyModel | None = None,
    pipeline: PipeLine | None = None,
    max_yield_stress_pa: float | None = None,
    max_pump_pressure_kpa: float | None = None,
    feeds: Sequence[FeedReach] = (),
    plant_spread: PlantSpread | None = None,
) -> OptimizedRecipe:
    """The cheapest recipe that meets every requirement (see the module docstring).

    Requirements: the pair ``required_ucs_kpa`` / ``curing_days`` (one requirement, named
    ``required_ucs``) and/or the list ``requirements``. ``pass_fraction`` p (0.5-0.9999)
    designs each so that a fraction p of new cylinders passes: with ``confidence`` c
    (0.5-0.999) its tolerance bound meets it (p of the cylinders with confidence c,
    :mod:`service.core.tolerance`), without it its lower prediction bound does (p
    expected, on average over calibrations); None designs at the median. ``rheology``
    predicts the
    yield stress, slump and (with ``pipeline``) the pump pressure of the recipes;
    ``max_yield_stress_pa`` and ``max_pump_pressure_kpa`` (which needs ``pipeline``)
    drop the candidates that break them, typically in place of a fixed upper Cw.

    Raises InvalidInput naming the field for a bad input, OutsideCalibrationRange when a
    requirement's age is outside the model's accepted range (unless
    ``allow_extrapolation``; ``variable`` ``curing_days`` or
    ``requirements[<i>].curing_days``), and RecipeInfeasible (code
    ``recipe_infeasible``, extra ``constraint``) saying which limit could not be met.
    """
    designs, prefixes = _requirements(required_ucs_kpa, curing_days, requirements)
    _validate(binders, tailings, limits, stope_volume_m3, blend_step, solids_step)
    if pass_fraction is not None:
        reliability.check_pass_fraction(pass_fraction)
    if confidence is not None:
        tolerance.check_confidence(confidence)
        if pass_fraction is None:
            raise InvalidInput(
                "confidence_pct", "a confidence is stated for a pass fraction: give both"
            )
    # Pumpability is judged at the top of the plant's Cw spread with the rheology fit's
    # scatter, both at the design's pass fraction (z_p of the normal distribution).
    z = NormalDist().inv_cdf(pass_fraction) if pass_fraction is not None else 0.0
    pump = pump_inputs(
        rheology,
        pipeline,
        max_yield_stress_pa,
        max_pump_pressure_kpa,
        allow_extrapolation,
        solids_margin=z * plant_spread.solids_sd if plant_spread is not None else 0.0,
        scatter_z=z if plant_spread is not None else 0.0,
    )
    if not allow_extrapolation:
        _check_ages(model, designs, prefixes)
    bound = design_bound(model, pass_fraction, confidence)
    solids = solids_grid(limits.solids_fraction_min, limits.solids_fraction_max, solids_step)
    # The plant's spread at each Cw, its Bw term at the site's least Bw (its largest).
    extra = None
    if plant_spread is not None and pass_fraction is not None:
        extra = np.array(
            [
                plant_spread.variance_log(
                    model.binder_water_exponent, float(cw), limits.binder_ratio_min
                )
                for cw in solids
            ]
        )

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
    if sum(option.max_fraction for option in options) < 1.0 - EDGE:
        unknown = [option.name for option in binders if option.name not in model.components]
        raise RecipeInfeasible(
            "the binders the strength model has data for ("
            + ", ".join(f"{o.name} up to {_pct(o.max_fraction)} %" for o in options)
            + ") cannot make up 100 % of the blend"
            + (f"; no laboratory data for {', '.join(unknown)}" if unknown else ""),
            constraint="blend_bounds",
        )
    steps = blend_steps(len(options), blend_step)
    option_fractions = compositions(len(options), steps) / steps
    low = np.array([option.min_fraction for option in options]) - EDGE
    high = np.array([option.max_fraction for option in options]) + EDGE
    used = option_fractions > EDGE
    keep = np.all((option_fractions >= low) & (option_fractions <= high), axis=1) & np.all(
        ~used | (option_fractions >= limits.blend_component_min - EDGE), axis=1
    )
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
    # Blends the offer allows beyond a tested limit: only there can the limit bind.
    removed: set[str] = set()
    if not allow_extrapolation:
        inside = np.ones(len(model_fractions), dtype=bool)
        for j, (tested_low, tested_high) in enumerate(model.accepted_fraction_ranges()):
            below = model_fractions[:, j] < tested_low - EDGE
            above = model_fractions[:, j] > tested_high + EDGE
            name = model.components[j]
            if below.any():
                removed.add(f"calibration:binder.{name}.fraction_pct_min")
            if above.any():
                removed.add(f"calibration:binder.{name}.fraction_pct_max")
            inside &= ~below & ~above
        if not inside.any():
            ranges = ", ".join(
                f"{name} {_pct(low)}-{_pct(high)} %"
                for name, (low, high) in zip(
                    model.components, model.accepted_fraction_ranges(), strict=True
                )
            )
            raise RecipeInfeasible(
                f"no allowed blend lies inside the tested blends ({ranges}); a blend outside "
                "them is extrapolation (allow extrapolation to design there, flagged)",
                constraint="calibration:blend",
            )
        option_fractions = option_fractions[inside]
        model_fractions = model_fractions[inside]

    found = search(
        model,
        designs,
        bound,
        model_fractions,
        option_fractions,
        options,
        tailings.specific_gravity,
        solids,
        limits,
        not allow_extrapolation,
        pump,
        feeds,
        extra,
        _variance_at(model, plant_spread, pass_fraction),
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
        designs,
        found,
        pass_fraction,
        confidence,
        tailings,
        stope_volume_m3,
        pump,
        plant_spread,
    )
    binding = _binding_constraints(
        found, len(solids), binders, blend, model, removed, limits.blend_component_min
    )
    cement_only, note = _cement_only(
        model,
        binders,
        designs,
        bound,
        pass_fraction,
        confidence,
        tailings,
        solids,
        limits,
        stope_volume_m3,
        allow_extrapolation,
        pump,
        feeds,
        extra,
        plant_spread,
    )
    saving_per_m3 = saving_pct = saving_for_stope = None
    if cement_only is not None:
        saving_per_m3 = cement_only.binder_cost_per_m3 - recipe.binder_cost_per_m3
        if cement_only.binder_cost_per_m3 > 0.0:
            saving_pct = 100.0 * saving_per_m3 / cement_only.binder_cost_per_m3
        if stope_volume_m3 is not None:
            saving_for_stope = saving_per_m3 * stope_volume_m3
    governing = designs[found.binding_requirement]
    return OptimizedRecipe(
        recipe=recipe,
        required_ucs_kpa=governing.required_ucs_kpa,
        curing_days=governing.curing_days,
        binding_constraints=binding,
        cement_only=cement_only,
        cement_only_note=note,
        saving_per_m3=saving_per_m3,
        saving_pct=saving_pct,
        saving_for_stope=saving_for_stope,
        blend_step=1.0 / steps,
        solids_step=float(solids[1] - solids[0]) if len(solids) > 1 else 0.0,
        candidates_evaluated=int(model_fractions.shape[0] * len(solids)),
        requirements=designs,
        pass_fraction=pass_fraction,
        binding_requirement=governing.name,
        confidence=confidence,
    )


def _binding_constraints(
    found: Found,
    solids_count: int,
    binders: Sequence[BinderOption],
    blend: dict[str, float],
    model: StrengthModel,
    removed: set[str],
    blend_component_min: float = 0.0,
) -> tuple[str, ...]:
    """The active limits of the found recipe. A tested blend limit of the calibration
    (``calibration:binder.<name>.fraction_pct_min`` / ``_max``) is named when the recipe
    sits on it and the offer allowed blends beyond it (``removed``): a single-binder
    calibration, or an offer that stops at the tested blends, has none."""
    binding: list[str] = list(found.binding)
    if found.solids_index == 0:
        binding.append("solids_pct_min")
    if found.solids_index == solids_count - 1:
        binding.append("solids_pct_max")
    for option in binders:
        fraction = blend[option.name]
        if option.min_fraction > 0.0 and fraction <= option.min_fraction + 0.005:
            binding.append(f"binders[{option.name}].min_fraction_pct")
        if option.max_fraction < 1.0 and fraction >= option.max_fraction - 0.005:
            binding.append(f"binders[{option.name}].max_fraction_pct")
    smallest = min((f for f in blend.values() if f > EDGE), default=1.0)
    if blend_component_min > 0.0 and smallest <= blend_component_min + 0.005:
        binding.append("blend_component_pct_min")
    for name, (low, high) in zip(model.components, model.accepted_fraction_ranges(), strict=True):
        fraction = blend.get(name, 0.0)
        at_min = f"calibration:binder.{name}.fraction_pct_min"
        at_max = f"calibration:binder.{name}.fraction_pct_max"
        if at_min in removed and fraction <= low + EDGE:
            binding.append(at_min)
        if at_max in removed and fraction >= high - EDGE:
            binding.append(at_max)
    return tuple(binding)


def _cement_only(
    model: StrengthModel,
    binders: Sequence[BinderOption],
    requirements: Sequence[Requirement],
    bound: Bound,
    pass_fraction: float | None,
    confidence: float | None,
    tailings: Tailings,
    solids: FloatArray,
    limits: RecipeLimits,
    stope_volume_m3: float | None,
    allow_extrapolation: bool,
    pump: Pump,
    feeds: Sequence[FeedReach] = (),
    extra: FloatArray | None = None,
    plant_spread: PlantSpread | None = None,
) -> tuple[CostedRecipe | None, str | None]:
    """The cheapest cement-only recipe designed the same way (same requirements, pass
    fraction, Cw grid, Bw limits, validity and pumpability limits), or a note."""
    cement = next((o for o in binders if o.name.lower() == _CEMENT), None)
    if cement is None:
        return None, "no binder named 'cement' is offered: no cement-only price to compare"
    if cement.name not in model.components:
        return None, "the strength model has no data for cement: no cement-only comparison"
    column = model.components.index(cement.name)
    accepted = model.accepted_fraction_ranges()
    low, high = accepted[column]
    if not allow_extrapolation and high < 1.0 - EDGE:
        return None, (
            "cement alone lies outside the calibrated blend range (cement "
            f"{_pct(low)}-{_pct(high)} %): no cement-only figure"
        )
    model_fractions = np.zeros((1, len(model.components)))
    model_fractions[0, column] = 1.0
    if not allow_extrapolation:
        for j, (other_low, _) in enumerate(accepted):
            if j != column and other_low > EDGE:
                return None, "cement alone lies outside the calibrated blend range"
    try:
        found = search(
            model,
            requirements,
            bound,
            model_fractions,
            np.ones((1, 1)),
            [cement],
            tailings.specific_gravity,
            solids,
            limits,
            not allow_extrapolation,
            pump,
            feeds,
            extra,
            _variance_at(model, plant_spread, pass_fraction),
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
            requirements,
            found,
            pass_fraction,
            confidence,
            tailings,
            stope_volume_m3,
            pump,
            plant_spread,
        ),
        None,
    )
