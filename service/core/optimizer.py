"""The cheapest binder blend and dose that meets every strength requirement.

Search: every blend on a grid of the binder fractions (1 % steps for up to three
components, coarser beyond) inside the allowed fraction bounds, times every Cw on a grid
of the site's solids window. With the blend and an age fixed, the model's design row is
x = c + u e_u, u = ln(Mb/Mw) (Cw enters only through Mb/Mw), so for each blend and each
requirement j (R_j kPa at t_j days) the smallest u whose strength meets R_j is closed
form: at the median, u = (ln R_j - a_j)/n; at a pass fraction p, the smallest u whose
lower prediction bound exp(x'b - t_{p,n-p} s sqrt(1 + h(u))) reaches R_j, h(u) quadratic
in u (:func:`service.core.reliability.log_ratio_interval_for_lower_bound`); at a pass
fraction p with confidence c, the smallest u whose tolerance bound exp(x'b - k(h(u)) s)
reaches R, k the noncentral-t factor, found by bracketing and bisection
(:func:`service.core.tolerance.log_ratio_interval_for_tolerance_bound`). The dose is
set by the largest over the requirements (the *binding* requirement), raised to the site
minimum Bw and, unless the caller allows extrapolation, into the tested combinations of
the model's regressors at every requirement's age: the accepted range of ln(Mb/Mw) and
the regressor hull h(u) <= h_max (:func:`service.core.reliability.log_ratio_interval_inside_hull`;
Montgomery, Peck & Vining 2012, §3.8). A point needing more than the site maximum Bw,
or Mb/Mw beyond the tested combinations, is infeasible; so is one a pumpability limit
(maximum yield stress, maximum pump pressure of a line; :mod:`service.core.rheology`)
rules out. Bw follows from u and Cw: Bw/(1 + Bw) = (Mb/Mw)(1 - Cw)/Cw. The binder cost
per m3 is binder kg per m3 of the saturated paste (the proportioning relations, Belem &
Benzaazoua convention) times the blend's price per kg. Everything is vectorised with
numpy over the (blend, Cw) grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import NoReturn

import numpy as np

from service.core import reliability, tolerance
from service.core.proportioning import (
    WATER_DENSITY_KG_M3,
    BinderComponent,
    Proportioning,
    Tailings,
    proportion,
)
from service.core.rheology import (
    BoolArray,
    PipeFlow,
    PipeLine,
    RheologyModel,
    check_line,
    pipe_flow,
    pressure_within_grid,
    slump_from_yield_stress,
)
from service.core.strength_model import FloatArray, StrengthModel
from service.core.tolerance import ToleranceTable
from service.errors import InvalidInput, OutsideCalibrationRange, RecipeInfeasible

# A found u = ln(Mb/Mw) is raised by this much (a relative 1e-9 on Mb/Mw) so that rounding
# can never leave the strength a hair below the requirement.
_LOG_MARGIN = 1.0e-9
_EDGE = 1.0e-9
_MAX_BLEND_POINTS = 20_000
_UCS_KPA_MAX = 1.0e6
_DAYS_MAX = 3650.0
_PRICE_MAX = 1.0e7
_VOLUME_M3_MAX = 1.0e7
_STRESS_MAX = 1.0e6
_CEMENT = "cement"
_SINGLE_NAME = "required_ucs"

# binding_constraints names of the limits added with the pass-fraction design.
REQUIRED_UCS = "required_ucs"
LN_BINDER_WATER_MIN = "calibration:ln_binder_water_min"
LN_BINDER_WATER_MAX = "calibration:ln_binder_water_max"
REGRESSOR_HULL = "calibration:regressor_hull"
MAX_YIELD_STRESS = "max_yield_stress_pa"
MAX_PUMP_PRESSURE = "max_pump_pressure_kpa"
RHEOLOGY_SOLIDS_MAX = "rheology_calibration:solids_pct_max"


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
    """The site's Cw window and Bw limits (fractions), and the smallest fraction of the
    blend a binder may have when it is used at all (the site's plausible recipe: a
    feeder cannot meter a trace of binder, and such a recipe would be refused when
    stored or poured)."""

    solids_fraction_min: float
    solids_fraction_max: float
    binder_ratio_min: float
    binder_ratio_max: float
    blend_component_min: float = 0.0


@dataclass(frozen=True, slots=True)
class Requirement:
    """A required UCS (kPa) at a curing age (days); ``name`` says which (e.g. "plug",
    "body"); an empty name becomes ``requirements[<i>]``."""

    required_ucs_kpa: float
    curing_days: float
    name: str = ""


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


@dataclass(frozen=True, slots=True)
class _Pump:
    """Pumpability inputs, validated: what to predict and which limits to impose."""

    rheology: RheologyModel | None
    pipeline: PipeLine | None
    max_yield_stress_pa: float | None
    max_pump_pressure_kpa: float | None
    stay_in_tested_solids: bool

    @property
    def limited(self) -> bool:
        return self.max_yield_stress_pa is not None or self.max_pump_pressure_kpa is not None


def _pump(
    rheology: RheologyModel | None,
    pipeline: PipeLine | None,
    max_yield_stress_pa: float | None,
    max_pump_pressure_kpa: float | None,
    allow_extrapolation: bool,
) -> _Pump:
    if pipeline is not None:
        check_line(pipeline)
    if max_yield_stress_pa is not None:
        _bounded("max_yield_stress_pa", max_yield_stress_pa, 1.0e-9, _STRESS_MAX)
        if rheology is None:
            raise InvalidInput(
                "max_yield_stress_pa", "a yield stress limit needs a rheology calibration"
            )
    if max_pump_pressure_kpa is not None:
        _bounded("max_pump_pressure_kpa", max_pump_pressure_kpa, 1.0e-9, _STRESS_MAX)
        if rheology is None or pipeline is None:
            raise InvalidInput(
                "max_pump_pressure_kpa",
                "a pump pressure limit needs a rheology calibration and the pipeline",
            )
        if not rheology.has_viscosity:
            raise InvalidInput(
                "max_pump_pressure_kpa",
                "the rheology calibration has no plastic viscosity: no line pressure",
            )
    limited = max_yield_stress_pa is not None or max_pump_pressure_kpa is not None
    return _Pump(
        rheology,
        pipeline,
        max_yield_stress_pa,
        max_pump_pressure_kpa,
        stay_in_tested_solids=limited and not allow_extrapolation,
    )


# --- the search ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bound:
    """What a requirement is designed on: the median (``spread`` 0, no table), the
    expected pass fraction (``spread`` k = t_{p,n-p} s, the prediction bound) or the
    tolerance bound (``table`` of k(h) at (p, c, n - p), times ``residual_sd`` s)."""

    spread: float = 0.0
    table: ToleranceTable | None = None
    residual_sd: float = 0.0

    @property
    def needs_leverage(self) -> bool:
        return self.spread > 0.0 or self.table is not None

    def interval(
        self,
        offset: FloatArray,
        exponent: float,
        q0: FloatArray,
        q1: FloatArray,
        q2: float,
        required_log: float,
    ) -> tuple[FloatArray, FloatArray]:
        """The u = ln(Mb/Mw) interval where the bound reaches ln R, per blend."""
        if self.table is not None:
            return tolerance.log_ratio_interval_for_tolerance_bound(
                offset, exponent, q0, q1, q2, required_log, self.residual_sd, self.table
            )
        return reliability.log_ratio_interval_for_lower_bound(
            offset, exponent, q0, q1, q2, required_log, self.spread
        )


def _design_bound(
    model: StrengthModel, pass_fraction: float | None, confidence: float | None
) -> _Bound:
    if pass_fraction is None:
        return _Bound()
    stats = model.statistics()
    if confidence is not None:
        table = tolerance.tolerance_table(pass_fraction, confidence, stats.degrees_of_freedom)
        return _Bound(table=table, residual_sd=stats.residual_sd)
    return _Bound(
        spread=reliability.t_quantile(pass_fraction, stats.degrees_of_freedom) * stats.residual_sd
    )


@dataclass(frozen=True, slots=True)
class _Found:
    blend_index: int
    solids_index: int
    binder_ratio: float
    binding: tuple[str, ...]
    binding_requirement: int
    strength_binds: bool


def _bw_from_log_ratio(log_ratio: FloatArray, log_cw_term: FloatArray) -> FloatArray:
    """Bw from u = ln(Mb/Mw) and Cw: Bw/(1 + Bw) = exp(u - ln(Cw/(1 - Cw))); inf where that
    is >= 1 (no Bw reaches the ratio) or u is not finite."""
    exponent = log_ratio - log_cw_term
    reachable = np.isfinite(exponent) & (exponent < 0.0)
    share = np.exp(np.where(reachable, exponent, -1.0))
    result: FloatArray = np.where(reachable, share / (1.0 - share), np.inf)
    return result


def _search(
    model: StrengthModel,
    requirements: Sequence[Requirement],
    bound: _Bound,
    model_fractions: FloatArray,
    option_fractions: FloatArray,
    options: Sequence[BinderOption],
    tailings_specific_gravity: float,
    solids: FloatArray,
    limits: RecipeLimits,
    validity: bool,
    pump: _Pump,
) -> _Found:
    """Index of the cheapest feasible (blend, Cw), its Bw and the limits that bind, or
    RecipeInfeasible naming the limit. ``bound`` is the strength each requirement is
    designed on (median, expected pass fraction or tolerance bound)."""
    count = len(model_fractions)
    exponent = model.binder_water_exponent
    need_leverage = bound.needs_leverage or validity
    q2 = 0.0
    covariance = np.zeros((0, 0))
    index_u = model.log_ratio_index
    if need_leverage:
        covariance = model.statistics().covariance_matrix()
        q2 = float(covariance[index_u, index_u])
    lows_by_requirement = np.empty((len(requirements), count))
    strength_high = np.full(count, np.inf)
    hull_low = np.full(count, -np.inf)
    hull_high = np.full(count, np.inf)
    for j, requirement in enumerate(requirements):
        offset = model.log_offset_grid(model_fractions, requirement.curing_days)
        if need_leverage:
            rows = model.design_rows(model_fractions, requirement.curing_days)
            projected = rows @ covariance
            q0 = np.einsum("ij,ij->i", rows, projected)
            q1 = projected[:, index_u]
        else:
            q0 = q1 = np.zeros(count)
        low, high = bound.interval(
            offset, exponent, q0, q1, q2, math.log(requirement.required_ucs_kpa)
        )
        lows_by_requirement[j] = low
        strength_high = np.minimum(strength_high, high)
        if validity:
            inside_low, inside_high = reliability.log_ratio_interval_inside_hull(
                q0, q1, q2, model.statistics().leverage_max
            )
            hull_low = np.maximum(hull_low, inside_low)
            hull_high = np.minimum(hull_high, inside_high)
    binding_requirement = np.argmax(lows_by_requirement, axis=0)
    strength_low = lows_by_requirement.max(axis=0)

    log_cw_term = np.log(solids / (1.0 - solids))[None, :]
    site_low = math.log(limits.binder_ratio_min / (1.0 + limits.binder_ratio_min)) + log_cw_term
    site_high = math.log(limits.binder_ratio_max / (1.0 + limits.binder_ratio_max)) + log_cw_term
    strength_need = (strength_low + _LOG_MARGIN)[:, None]
    shape = (count, len(solids))
    lows: dict[str, FloatArray] = {
        REQUIRED_UCS: np.broadcast_to(strength_need, shape),
        "binder_pct_min": np.broadcast_to(site_low, shape),
    }
    highs: dict[str, FloatArray] = {"binder_pct_max": np.broadcast_to(site_high, shape)}
    tested_low = tested_high = 0.0
    if validity:
        tested_low, tested_high = model.accepted_log_ratio_range()
        lows[LN_BINDER_WATER_MIN] = np.full(shape, tested_low)
        lows[REGRESSOR_HULL] = np.broadcast_to(hull_low[:, None], shape)
        highs[LN_BINDER_WATER_MAX] = np.full(shape, tested_high)
        highs[REGRESSOR_HULL] = np.broadcast_to(hull_high[:, None], shape)
    log_ratio = np.maximum.reduce(list(lows.values()))
    cap = np.minimum(np.minimum.reduce(list(highs.values())), strength_high[:, None])
    feasible = np.isfinite(log_ratio) & (log_ratio <= cap)
    if not feasible.any():
        _explain_infeasible(
            requirements,
            strength_need,
            strength_high,
            site_low,
            site_high,
            log_cw_term,
            limits,
            validity,
            tested_low,
            tested_high,
        )
    binder_ratio = np.where(
        feasible,
        np.clip(
            _bw_from_log_ratio(np.where(feasible, log_ratio, 0.0), log_cw_term),
            limits.binder_ratio_min,
            limits.binder_ratio_max,
        ),
        np.inf,
    )
    # Exactly the site minimum when it sets the dose (a round trip through logs is not).
    at_site_min = feasible & (lows["binder_pct_min"] >= log_ratio)
    binder_ratio = np.where(at_site_min, limits.binder_ratio_min, binder_ratio)

    inverse_gs = np.array([1.0 / option.specific_gravity for option in options])
    price_per_kg = np.array([option.price_per_t / 1000.0 for option in options])
    binder_gs = 1.0 / (option_fractions @ inverse_gs)
    blend_price = option_fractions @ price_per_kg
    cw = solids[None, :]
    finite_ratio = np.where(feasible, binder_ratio, limits.binder_ratio_min)
    solids_gs = (1.0 + finite_ratio) / (
        1.0 / tailings_specific_gravity + finite_ratio / binder_gs[:, None]
    )
    density = WATER_DENSITY_KG_M3 / (cw / solids_gs + 1.0 - cw)
    binder_kg = density * cw * finite_ratio / (1.0 + finite_ratio)
    cost = np.where(feasible, binder_kg * blend_price[:, None], np.inf)

    masks = _pump_masks(pump, solids, finite_ratio, density)
    allowed = feasible.copy()
    for mask in masks.values():
        allowed &= mask
    if not allowed.any():
        _explain_unpumpable(masks, feasible, pump)
    priced = np.where(allowed, cost, np.inf)
    blend_index, solids_index = np.unravel_index(int(np.argmin(priced)), priced.shape)
    best = float(priced[blend_index, solids_index])
    chosen = float(log_ratio[blend_index, solids_index])

    binding = [name for name, low in lows.items() if low[blend_index, solids_index] >= chosen]
    for name, high in highs.items():
        if high[blend_index, solids_index] - chosen <= 1.0e-6 and name not in binding:
            binding.append(name)
    for name in masks:
        relaxed = feasible.copy()
        for other, mask in masks.items():
            if other != name:
                relaxed &= mask
        if float(np.where(relaxed, cost, np.inf).min()) < best * (1.0 - 1.0e-12):
            binding.append(name)
    return _Found(
        blend_index=int(blend_index),
        solids_index=int(solids_index),
        binder_ratio=float(binder_ratio[blend_index, solids_index]),
        binding=tuple(binding),
        binding_requirement=int(binding_requirement[blend_index]),
        strength_binds=REQUIRED_UCS in binding,
    )


def _pump_masks(
    pump: _Pump, solids: FloatArray, binder_ratio: FloatArray, density: FloatArray
) -> dict[str, BoolArray]:
    """Which (blend, Cw) points each pumpability limit allows (vectorised)."""
    masks: dict[str, BoolArray] = {}
    if pump.rheology is None or not pump.limited:
        return masks
    cw = solids[None, :]
    yield_stress = pump.rheology.yield_stress_grid(cw, binder_ratio)
    if pump.max_yield_stress_pa is not None:
        masks[MAX_YIELD_STRESS] = yield_stress <= pump.max_yield_stress_pa
    if pump.max_pump_pressure_kpa is not None and pump.pipeline is not None:
        viscosity = pump.rheology.plastic_viscosity_grid(cw)
        masks[MAX_PUMP_PRESSURE] = pressure_within_grid(
            pump.pipeline, pump.max_pump_pressure_kpa, density, yield_stress, viscosity
        )
    if pump.stay_in_tested_solids:
        # An exponential fit beyond the thickest tested paste is not trusted for a limit;
        # below the tested range it predicts less yield stress, the pumpable side.
        _, high = pump.rheology.accepted_solids_range()
        masks[RHEOLOGY_SOLIDS_MAX] = np.broadcast_to(cw <= high + _EDGE, binder_ratio.shape)
    return masks


def _explain_unpumpable(masks: dict[str, BoolArray], feasible: BoolArray, pump: _Pump) -> NoReturn:
    for name, mask in masks.items():
        if not (feasible & mask).any():
            detail = {
                MAX_YIELD_STRESS: f"every recipe that meets the strength has a yield stress "
                f"above the limit of {pump.max_yield_stress_pa} Pa",
                MAX_PUMP_PRESSURE: f"every recipe that meets the strength needs a pump "
                f"pressure above the limit of {pump.max_pump_pressure_kpa} kPa on this line",
                RHEOLOGY_SOLIDS_MAX: "every recipe that meets the strength is thicker than "
                "the rheology calibration's tests (allow extrapolation to go further)",
            }[name]
            raise RecipeInfeasible(detail, constraint=name)
    raise RecipeInfeasible(
        "no recipe that meets the strength meets every pumpability limit at once",
        constraint="pumpability",
    )


def _explain_infeasible(
    requirements: Sequence[Requirement],
    strength_need: FloatArray,
    strength_high: FloatArray,
    site_low: FloatArray,
    site_high: FloatArray,
    log_cw_term: FloatArray,
    limits: RecipeLimits,
    validity: bool,
    tested_low: float,
    tested_high: float,
) -> NoReturn:
    """Raise RecipeInfeasible naming the limit that left no candidate."""
    described = ", ".join(
        f"{r.required_ucs_kpa:g} kPa at {r.curing_days:g} days" for r in requirements
    )
    site_need = np.maximum(strength_need, site_low)
    strength_ok = np.isfinite(strength_need) & (site_need <= strength_high[:, None])
    needed_bw = np.where(strength_ok, _bw_from_log_ratio(site_need, log_cw_term), np.inf)
    smallest = float(needed_bw.min())
    if math.isinf(smallest):
        raise RecipeInfeasible(
            f"no Bw reaches {described} inside the solids window: the model's binder/water "
            "ratio would have to exceed what any Bw gives",
            constraint=REQUIRED_UCS,
        )
    within_site = strength_ok & (site_need <= site_high)
    if not within_site.any():
        raise RecipeInfeasible(
            f"Bw above the site maximum of {limits.binder_ratio_max * 100:g} % would be "
            f"needed (at least {smallest * 100:.2f} %)",
            constraint="binder_pct_max",
            binder_pct_needed=smallest * 100.0,
        )
    if not validity:  # unreachable: without validity, within_site points are feasible
        raise RecipeInfeasible(f"no recipe reaches {described}", constraint=REQUIRED_UCS)
    within_tested = within_site & (site_need <= tested_high)
    if not within_tested.any():
        needed = float(needed_bw[within_site].min())
        if (within_site & (strength_need <= tested_high)).any():
            raise RecipeInfeasible(
                f"the site minimum Bw of {limits.binder_ratio_min * 100:g} % gives a "
                "binder/water ratio Mb/Mw above the tested combinations (accepted up to "
                f"{math.exp(tested_high):.4g}) at every Cw of the window (allow "
                "extrapolation to go further)",
                constraint=LN_BINDER_WATER_MAX,
                binder_pct_needed=needed * 100.0,
            )
        raise RecipeInfeasible(
            f"Bw of {needed * 100:.2f} % would be needed, a binder/water ratio Mb/Mw above "
            f"the tested combinations (accepted up to {math.exp(tested_high):.4g}; the model "
            "is not trusted beyond its data: allow extrapolation to go further)",
            constraint=LN_BINDER_WATER_MAX,
            binder_pct_needed=needed * 100.0,
        )
    lifted = within_tested & (np.maximum(site_need, tested_low) <= site_high)
    if not lifted.any():
        raise RecipeInfeasible(
            f"the tested binder/water ratios start at Mb/Mw {math.exp(tested_low):.4g}, which "
            f"needs more binder than the site maximum of {limits.binder_ratio_max * 100:g} % "
            "in this solids window (allow extrapolation to go below the tested ratios)",
            constraint=LN_BINDER_WATER_MIN,
        )
    raise RecipeInfeasible(
        "every recipe that meets the requirements lies outside the tested combinations of "
        "the model's regressors (its leverage exceeds the laboratory mixes' largest; allow "
        "extrapolation to go further)",
        constraint=REGRESSOR_HULL,
    )


def _costed(
    model: StrengthModel,
    options: Sequence[BinderOption],
    blend: dict[str, float],
    binder_ratio: float,
    solids_fraction: float,
    requirements: Sequence[Requirement],
    found: _Found,
    pass_fraction: float | None,
    confidence: float | None,
    tailings: Tailings,
    stope_volume_m3: float | None,
    pump: _Pump,
) -> CostedRecipe:
    mix = proportion(
        tailings,
        [BinderComponent(o.name, o.specific_gravity, blend[o.name]) for o in options],
        binder_ratio,
        solids_fraction,
    )
    model_blend = {name: fraction for name, fraction in blend.items() if name in model.components}
    checks = []
    for j, requirement in enumerate(requirements):
        prediction = model.predict(
            model_blend,
            binder_ratio,
            solids_fraction,
            requirement.curing_days,
            allow_extrapolation=True,
            pass_fraction=pass_fraction,
            confidence=confidence,
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
    )


def _solids_grid(low: float, high: float, solids_step: float) -> FloatArray:
    if high - low <= _EDGE:
        return np.array([low])
    count = max(1, math.ceil((high - low) / solids_step - 1.0e-9))
    grid: FloatArray = np.linspace(low, high, count + 1)
    return grid


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
    pump = _pump(
        rheology, pipeline, max_yield_stress_pa, max_pump_pressure_kpa, allow_extrapolation
    )
    if not allow_extrapolation:
        _check_ages(model, designs, prefixes)
    bound = _design_bound(model, pass_fraction, confidence)
    solids = _solids_grid(limits.solids_fraction_min, limits.solids_fraction_max, solids_step)

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
    used = option_fractions > _EDGE
    keep = np.all((option_fractions >= low) & (option_fractions <= high), axis=1) & np.all(
        ~used | (option_fractions >= limits.blend_component_min - _EDGE), axis=1
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
            below = model_fractions[:, j] < tested_low - _EDGE
            above = model_fractions[:, j] > tested_high + _EDGE
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

    found = _search(
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
    found: _Found,
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
    smallest = min((f for f in blend.values() if f > _EDGE), default=1.0)
    if blend_component_min > 0.0 and smallest <= blend_component_min + 0.005:
        binding.append("blend_component_pct_min")
    for name, (low, high) in zip(model.components, model.accepted_fraction_ranges(), strict=True):
        fraction = blend.get(name, 0.0)
        at_min = f"calibration:binder.{name}.fraction_pct_min"
        at_max = f"calibration:binder.{name}.fraction_pct_max"
        if at_min in removed and fraction <= low + _EDGE:
            binding.append(at_min)
        if at_max in removed and fraction >= high - _EDGE:
            binding.append(at_max)
    return tuple(binding)


def _cement_only(
    model: StrengthModel,
    binders: Sequence[BinderOption],
    requirements: Sequence[Requirement],
    bound: _Bound,
    pass_fraction: float | None,
    confidence: float | None,
    tailings: Tailings,
    solids: FloatArray,
    limits: RecipeLimits,
    stope_volume_m3: float | None,
    allow_extrapolation: bool,
    pump: _Pump,
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
    if not allow_extrapolation and high < 1.0 - _EDGE:
        return None, (
            "cement alone lies outside the calibrated blend range (cement "
            f"{_pct(low)}-{_pct(high)} %): no cement-only figure"
        )
    model_fractions = np.zeros((1, len(model.components)))
    model_fractions[0, column] = 1.0
    if not allow_extrapolation:
        for j, (other_low, _) in enumerate(accepted):
            if j != column and other_low > _EDGE:
                return None, "cement alone lies outside the calibrated blend range"
    try:
        found = _search(
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
        ),
        None,
    )
