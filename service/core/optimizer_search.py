"""The search of the cheapest-recipe optimiser: its inputs, the candidate grids, and
the vectorised search over them (:mod:`service.core.optimizer` validates, prices the
answer and compares it with cement alone).

Search: every blend on a grid of the binder fractions (1 % steps for up to three
components, coarser beyond) inside the allowed fraction bounds and, unless the caller
allows extrapolation, inside the tested blends of the model, times every Cw on a grid
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NoReturn

import numpy as np

from service.core import reliability, tolerance
from service.core.proportioning import WATER_DENSITY_KG_M3
from service.core.rheology import (
    BoolArray,
    PipeLine,
    RheologyModel,
    check_line,
    pressure_within_grid,
)
from service.core.strength_model import FloatArray, StrengthModel
from service.core.tolerance import ToleranceTable
from service.errors import InvalidInput, RecipeInfeasible

# A found u = ln(Mb/Mw) is raised by this much (a relative 1e-9 on Mb/Mw) so that rounding
# can never leave the strength a hair below the requirement.
_LOG_MARGIN = 1.0e-9
EDGE = 1.0e-9
_MAX_BLEND_POINTS = 20_000
_STRESS_MAX = 1.0e6

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
class FeedReach:
    """A feed the recipe must be made from: its water per dry tailings ``water_ratio``
    (``w0``); no water can be taken out, so the paste's Cw is at most
    ``(1 + Bw)/(1 + Bw + w0)`` (:func:`service.core.plant_profile.driest_cw`): a lower
    bound on Bw at each Cw. ``name`` is the limit named when it binds."""

    water_ratio: float
    name: str
    detail: str = ""


def feed_bound_log_ratio(solids: FloatArray, water_ratio: float) -> FloatArray:
    """The smallest u = ln(Mb/Mw) a feed of moisture ``water_ratio`` allows at each Cw:
    Cw <= (1 + Bw)/(1 + Bw + w0) <=> Bw >= (Cw (1 + w0) - 1)/(1 - Cw); -inf where any Bw
    does (the feed is dry enough for that Cw with water added)."""
    need = (solids * (1.0 + water_ratio) - 1.0) / (1.0 - solids)
    positive = need > 0.0
    share = np.where(positive, need / (1.0 + np.where(positive, need, 0.0)), 1.0)
    bound: FloatArray = np.where(positive, np.log(share) + np.log(solids / (1.0 - solids)), -np.inf)
    return bound


@dataclass(frozen=True, slots=True)
class Requirement:
    """A required UCS (kPa) at a curing age (days); ``name`` says which (e.g. "plug",
    "body"); an empty name becomes ``requirements[<i>]``."""

    required_ucs_kpa: float
    curing_days: float
    name: str = ""


# --- the grids ----------------------------------------------------------------------------


@cache
def compositions(parts: int, steps: int) -> np.ndarray:
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
            rest = compositions(parts - 1, steps - head)
            blocks.append(np.column_stack([np.full(len(rest), head), rest]))
        grid = np.vstack(blocks)
    grid.setflags(write=False)
    return grid


def blend_steps(parts: int, blend_step: float) -> int:
    """Grid divisions of 100 %: 1/blend_step, coarsened until the grid stays small."""
    steps = max(1, round(1.0 / blend_step))
    while steps > 1 and math.comb(steps + parts - 1, parts - 1) > _MAX_BLEND_POINTS:
        steps = max(1, steps // 2)
    return steps


def solids_grid(low: float, high: float, solids_step: float) -> FloatArray:
    if high - low <= EDGE:
        return np.array([low])
    count = max(1, math.ceil((high - low) / solids_step - 1.0e-9))
    grid: FloatArray = np.linspace(low, high, count + 1)
    return grid


def bounded(field_name: str, value: float, low: float, high: float, scale: float = 1.0) -> None:
    """InvalidInput naming ``field_name`` unless low <= value <= high (shown x ``scale``)."""
    if not low <= value <= high:
        raise InvalidInput(
            field_name,
            f"{field_name} must be between {low * scale:g} and {high * scale:g} "
            f"(got {value * scale!r})",
        )


@dataclass(frozen=True, slots=True)
class Pump:
    """Pumpability inputs, validated: what to predict and which limits to impose."""

    rheology: RheologyModel | None
    pipeline: PipeLine | None
    max_yield_stress_pa: float | None
    max_pump_pressure_kpa: float | None
    stay_in_tested_solids: bool
    # The margin the limits are judged with: the Cw the plant delivers at the top of its
    # spread (``solids_margin`` above the recipe's) and the rheology fit's own scatter
    # (the yield stress times ``yield_factor``, exp(z_p rmse) of ln tau_y).
    solids_margin: float = 0.0
    yield_factor: float = 1.0

    @property
    def limited(self) -> bool:
        return self.max_yield_stress_pa is not None or self.max_pump_pressure_kpa is not None


def pump_inputs(
    rheology: RheologyModel | None,
    pipeline: PipeLine | None,
    max_yield_stress_pa: float | None,
    max_pump_pressure_kpa: float | None,
    allow_extrapolation: bool,
    *,
    solids_margin: float = 0.0,
    scatter_z: float = 0.0,
) -> Pump:
    """The pumpability inputs, checked; ``solids_margin`` and ``scatter_z`` the margin
    the limits are judged with (the plant's Cw spread, the rheology fit's scatter)."""
    if pipeline is not None:
        check_line(pipeline)
    if max_yield_stress_pa is not None:
        bounded("max_yield_stress_pa", max_yield_stress_pa, 1.0e-9, _STRESS_MAX)
        if rheology is None:
            raise InvalidInput(
                "max_yield_stress_pa", "a yield stress limit needs a rheology calibration"
            )
    if max_pump_pressure_kpa is not None:
        bounded("max_pump_pressure_kpa", max_pump_pressure_kpa, 1.0e-9, _STRESS_MAX)
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
    scatter = rheology.fit.rmse_log if rheology is not None else 0.0
    return Pump(
        rheology,
        pipeline,
        max_yield_stress_pa,
        max_pump_pressure_kpa,
        stay_in_tested_solids=limited and not allow_extrapolation,
        solids_margin=solids_margin,
        yield_factor=math.exp(scatter_z * scatter),
    )


# --- the search ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bound:
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
        extra_variance: float = 0.0,
    ) -> tuple[FloatArray, FloatArray]:
        """The u = ln(Mb/Mw) interval where the bound reaches ln R, per blend.

        ``extra_variance`` v of ln UCS (the plant's spread, known, independent) widens
        the cylinders' spread: on the expected basis exactly, the new-cylinder variance
        s^2 (1 + h) + v being s^2 (1 + h + v/s^2) (h shifted by v/s^2); on the tolerance
        basis approximately, as a total sd sqrt(s^2 + v) whose mean is known to the
        fraction s^2 h / (s^2 + v) of its variance (h scaled), the plant's share taken as
        known rather than estimated."""
        s2 = self.residual_sd * self.residual_sd
        if self.table is not None:
            if extra_variance > 0.0 and s2 > 0.0:
                scale = s2 / (s2 + extra_variance)
                return tolerance.log_ratio_interval_for_tolerance_bound(
                    offset,
                    exponent,
                    q0 * scale,
                    q1 * scale,
                    q2 * scale,
                    required_log,
                    math.sqrt(s2 + extra_variance),
                    self.table,
                )
            return tolerance.log_ratio_interval_for_tolerance_bound(
                offset, exponent, q0, q1, q2, required_log, self.residual_sd, self.table
            )
        if extra_variance > 0.0 and s2 > 0.0 and self.spread > 0.0:
            q0 = q0 + extra_variance / s2
        return reliability.log_ratio_interval_for_lower_bound(
            offset, exponent, q0, q1, q2, required_log, self.spread
        )


def design_bound(
    model: StrengthModel, pass_fraction: float | None, confidence: float | None
) -> Bound:
    if pass_fraction is None:
        return Bound()
    stats = model.statistics()
    if confidence is not None:
        table = tolerance.tolerance_table(pass_fraction, confidence, stats.degrees_of_freedom)
        return Bound(table=table, residual_sd=stats.residual_sd)
    return Bound(
        spread=reliability.t_quantile(pass_fraction, stats.degrees_of_freedom) * stats.residual_sd,
        residual_sd=stats.residual_sd,
    )


@dataclass(frozen=True, slots=True)
class Found:
    blend_index: int
    solids_index: int
    binder_ratio: float
    binding: tuple[str, ...]
    binding_requirement: int
    strength_binds: bool


# The Cw grid is taken in this many bins for the plant's spread (its variance changes by a
# few per cent across a bin of a usual window: each bin at its largest).
_SPREAD_BINS = 4


def _bw_from_log_ratio(log_ratio: FloatArray, log_cw_term: FloatArray) -> FloatArray:
    """Bw from u = ln(Mb/Mw) and Cw: Bw/(1 + Bw) = exp(u - ln(Cw/(1 - Cw))); inf where that
    is >= 1 (no Bw reaches the ratio) or u is not finite."""
    exponent = log_ratio - log_cw_term
    reachable = np.isfinite(exponent) & (exponent < 0.0)
    share = np.exp(np.where(reachable, exponent, -1.0))
    result: FloatArray = np.where(reachable, share / (1.0 - share), np.inf)
    return result


def search(
    model: StrengthModel,
    requirements: Sequence[Requirement],
    bound: Bound,
    model_fractions: FloatArray,
    option_fractions: FloatArray,
    options: Sequence[BinderOption],
    tailings_specific_gravity: float,
    solids: FloatArray,
    limits: RecipeLimits,
    validity: bool,
    pump: Pump,
    feeds: Sequence[FeedReach] = (),
    extra_variance: FloatArray | None = None,
    variance_at: Callable[[float, float], float] | None = None,
) -> Found:
    """Index of the cheapest feasible (blend, Cw), its Bw and the limits that bind, or
    RecipeInfeasible naming the limit. ``bound`` is the strength each requirement is
    designed on (median, expected pass fraction or tolerance bound). ``feeds``: what the
    recipe must be makeable from (a Cw the feed cannot reach is no candidate).
    ``extra_variance``: the plant's spread as a variance of ln UCS at each Cw of the grid
    (:mod:`service.core.plant_spread`), taken in bins of the grid at each bin's
    largest; ``variance_at(Cw, Bw)`` gives it at the chosen recipe, whose dose is then
    set on its own spread."""
    count = len(model_fractions)
    exponent = model.binder_water_exponent
    need_leverage = bound.needs_leverage or validity
    q2 = 0.0
    covariance = np.zeros((0, 0))
    index_u = model.log_ratio_index
    if need_leverage:
        covariance = model.statistics().covariance_matrix()
        q2 = float(covariance[index_u, index_u])
    ncw = len(solids)
    lows_by_requirement = np.empty((len(requirements), count, ncw))
    strength_high = np.full((count, ncw), np.inf)
    spread = extra_variance is not None and bool(np.any(extra_variance > 0.0))
    bins = np.array_split(np.arange(ncw), min(_SPREAD_BINS, ncw)) if spread else [np.arange(ncw)]
    hull_low = np.full(count, -np.inf)
    hull_high = np.full(count, np.inf)
    terms: list[tuple[FloatArray, FloatArray, FloatArray]] = []
    for j, requirement in enumerate(requirements):
        offset = model.log_offset_grid(model_fractions, requirement.curing_days)
        if need_leverage:
            rows = model.design_rows(model_fractions, requirement.curing_days)
            projected = rows @ covariance
            q0 = np.einsum("ij,ij->i", rows, projected)
            q1 = projected[:, index_u]
        else:
            q0 = q1 = np.zeros(count)
        terms.append((offset, q0, q1))
        for columns in bins:
            v = (
                float(extra_variance[columns].max())
                if spread and extra_variance is not None
                else 0.0
            )
            low, high = bound.interval(
                offset, exponent, q0, q1, q2, math.log(requirement.required_ucs_kpa), v
            )
            lows_by_requirement[j][:, columns] = low[:, None]
            strength_high[:, columns] = np.minimum(strength_high[:, columns], high[:, None])
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
    strength_need = strength_low + _LOG_MARGIN
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
    cap = np.minimum(np.minimum.reduce(list(highs.values())), strength_high)
    unmade = np.maximum.reduce(list(lows.values()))
    for feed in feeds:
        lows[feed.name] = np.broadcast_to(feed_bound_log_ratio(solids, feed.water_ratio), shape)
    log_ratio = np.maximum.reduce(list(lows.values()))
    feasible = np.isfinite(log_ratio) & (log_ratio <= cap)
    if not feasible.any() and feeds and (np.isfinite(unmade) & (unmade <= cap)).any():
        _explain_unmakeable(feeds, solids, limits)
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
    inverse_gs = np.array([1.0 / option.specific_gravity for option in options])
    price_per_kg = np.array([option.price_per_t / 1000.0 for option in options])
    binder_gs = 1.0 / (option_fractions @ inverse_gs)
    blend_price = option_fractions @ price_per_kg
    cw = solids[None, :]

    def priced_grid(
        log_ratio: FloatArray, feasible: BoolArray, site_min: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, dict[str, BoolArray]]:
        """Bw, the binder cost per m3 (inf where infeasible), that cost where pumpable,
        and the pump masks, of a grid of u = ln(Mb/Mw)."""
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
        at_site_min = feasible & (site_min >= log_ratio)
        binder_ratio = np.where(at_site_min, limits.binder_ratio_min, binder_ratio)
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
        return binder_ratio, cost, np.where(allowed, cost, np.inf), masks

    site_min = lows["binder_pct_min"]
    binder_ratio, cost, priced, masks = priced_grid(log_ratio, feasible, site_min)
    if not np.isfinite(priced).any():
        _explain_unpumpable(masks, feasible, pump)
    blend_index, solids_index = np.unravel_index(int(np.argmin(priced)), priced.shape)
    best = float(priced[blend_index, solids_index])
    chosen = float(log_ratio[blend_index, solids_index])

    binding = [name for name, low in lows.items() if low[blend_index, solids_index] >= chosen]
    # A feed's reach binds when, without it, a cheaper recipe would be chosen (a drier
    # paste of less binder the feed cannot make).
    for feed in feeds:
        if feed.name in binding:
            continue
        others = [low for name, low in lows.items() if name != feed.name]
        free = np.maximum.reduce(others)
        free_ok = np.isfinite(free) & (free <= cap)
        if float(priced_grid(free, free_ok, site_min)[2].min()) < best * (1.0 - 1.0e-9):
            binding.append(feed.name)
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
    chosen_bw = float(binder_ratio[blend_index, solids_index])
    if spread and variance_at is not None and REQUIRED_UCS in binding:
        # The bin took its largest spread: the chosen recipe is dosed on its own (the
        # spread's Bw term moves with the dose: two passes settle it).
        cw_chosen = float(solids[solids_index])
        other_lows: list[float] = [
            float(low[blend_index, solids_index]) for n, low in lows.items() if n != REQUIRED_UCS
        ]
        for _ in range(2):
            v = variance_at(cw_chosen, chosen_bw)
            exact = max(
                float(
                    bound.interval(
                        offset[blend_index : blend_index + 1],
                        exponent,
                        q0[blend_index : blend_index + 1],
                        q1[blend_index : blend_index + 1],
                        q2,
                        math.log(requirement.required_ucs_kpa),
                        v,
                    )[0][0]
                )
                for requirement, (offset, q0, q1) in zip(requirements, terms, strict=True)
            )
            u = max([exact + _LOG_MARGIN, *other_lows])
            if not (math.isfinite(u) and u <= chosen):
                break
            refined = _bw_from_log_ratio(np.array([u]), log_cw_term[:, solids_index])
            chosen_bw = float(np.clip(refined[0], limits.binder_ratio_min, limits.binder_ratio_max))
    return Found(
        blend_index=int(blend_index),
        solids_index=int(solids_index),
        binder_ratio=chosen_bw,
        binding=tuple(binding),
        binding_requirement=int(binding_requirement[blend_index, solids_index]),
        strength_binds=REQUIRED_UCS in binding,
    )


def _pump_masks(
    pump: Pump, solids: FloatArray, binder_ratio: FloatArray, density: FloatArray
) -> dict[str, BoolArray]:
    """Which (blend, Cw) points each pumpability limit allows (vectorised)."""
    masks: dict[str, BoolArray] = {}
    if pump.rheology is None or not pump.limited:
        return masks
    cw = solids[None, :] + pump.solids_margin
    yield_stress = pump.rheology.yield_stress_grid(cw, binder_ratio) * pump.yield_factor
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
        tested = solids[None, :] <= high + EDGE
        masks[RHEOLOGY_SOLIDS_MAX] = np.broadcast_to(tested, binder_ratio.shape)
    return masks


def _explain_unpumpable(masks: dict[str, BoolArray], feasible: BoolArray, pump: Pump) -> NoReturn:
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


def _explain_unmakeable(
    feeds: Sequence[FeedReach], solids: FloatArray, limits: RecipeLimits
) -> NoReturn:
    """Raise RecipeInfeasible when only the feed's reach leaves no candidate: naming the
    wettest feed, and the best the plant reaches (the driest paste it makes at the
    site's maximum Bw, within the Cw window)."""
    wettest = max(feeds, key=lambda feed: feed.water_ratio)
    bw = limits.binder_ratio_max
    top = (1.0 + bw) / (1.0 + bw + wettest.water_ratio)
    best = min(top, float(solids[-1]))
    raise RecipeInfeasible(
        "no mix the feed can make meets the requirements: "
        + (wettest.detail or f"the feed carries {100 * wettest.water_ratio:.1f} % water")
        + f"; the driest paste it makes at the site's maximum Bw {100 * bw:g} % is "
        f"{100 * top:.2f} % Cw, and every mix strong enough needs a drier one",
        constraint=wettest.name,
        best_solids_pct=100.0 * best,
        best_binder_pct=100.0 * bw,
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
    strength_ok = np.isfinite(strength_need) & (site_need <= strength_high)
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
