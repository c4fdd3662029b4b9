"""The binder a design would need if it knew the truth: the month's ceiling on saving.

Each pour of the service's policy keeps its recipe's Cw and blend; only its dose changes,
to the least Bw at which a cylinder of that paste passes every requirement of the pour's
stage with the design's pass fraction *by the twin's true model* (its coefficients and
its lab scatter, not a fit of them), within the site's Bw limits. Summed over the pours
it is the binder of a design with nothing left to learn and a plant that makes the recipe
exactly: no per-stope design, however calibrated, places less paste strength for less.
The gap between it and the service's binder is what the service's statistics cost (the
fit's lab scatter and leverage, the tolerance bound's confidence, the plant's spread);
the gap between it and the fixed list is the most any policy on this month could save.

Inverting the twin's law (:class:`service.simulator.lab_twin.TrueStrength`, ln UCS
linear in ln r with slope n) for the binder/water ratio r = Mb/Mw at which the median
reaches R exp(z_p s), from its median m_0 at any one ratio r_0 of the same blend and Cw:

    ln r = ln r_0 + (ln R + z_p s - ln m_0) / n

and Bw from r at Cw: r (1 - Cw) / Cw = Bw / (1 + Bw) (Belem, T. & Benzaazoua, M. (2008)
Design and application of underground mine paste backfill technology, Geotech. Geol.
Eng. 26:147-174, the binder/water ratio of a paste), so Bw = q / (1 - q) with
q = r (1 - Cw) / Cw.

The open ceiling (:func:`open_dose`) goes further: each pour's Cw and blend are chosen
again, on the truth, for the least binder per m3, among what the plant can make: Cw in
the site's window and no drier than its wettest stated feed makes with the binder added
dry and no water (Cw <= (1 + Bw) / (1 + Bw + w0), w0 = 1/S - 1, the feed's water per dry
solids at its least solids S: the same limit as ``service.core.plant_profile``), slag up
to the largest fraction the lab has tested; for the least tonnes, and for the least
binder cost (what the service designs for: a cement/slag blend at the least cost is not
the one at the least tonnes when cement's early strength is what binds, as a plug's 7
days). The pump's pressure is not checked (a higher Cw only costs pressure), so the open
ceiling bounds any design's saving on the month from above, to within its grid's step
(``PlantReach``: 0.05 point of Cw, 2 % of slag). Values in, values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from statistics import NormalDist

from service.core.plant_profile import driest_cw, moisture_of_solids
from service.core.proportioning import BinderComponent, Tailings, proportion
from service.simulator.lab_twin import PasteTruth, TrueStrength, binder_water_ratio


@dataclass(frozen=True)
class PourDose:
    """One pour as the ceiling needs it: its recipe's blend (fractions), Cw and Bw, the
    requirements of its stage (name, kPa, days), the paste it placed and the binder it
    placed."""

    blend: Mapping[str, float] = field(hash=False)
    solids_fraction: float
    binder_ratio: float
    requirements: tuple[tuple[str, float, float], ...]
    placed_m3: float
    binder_placed_kg: float


def truth_binder_ratio(
    truth: TrueStrength,
    blend: Mapping[str, float],
    solids_fraction: float,
    requirements: Sequence[tuple[str, float, float]],
    pass_fraction: float,
    binder_ratio_limits: tuple[float, float],
) -> float:
    """The least Bw (within the limits) at which a cylinder of the paste passes every
    requirement with probability ``pass_fraction`` by the truth (module text)."""
    if not 0.5 <= pass_fraction < 1.0:
        raise ValueError(f"pass_fraction must be in [0.5, 1) (got {pass_fraction!r})")
    if not 0.0 < solids_fraction < 1.0:
        raise ValueError(f"solids_fraction must be in (0, 1) (got {solids_fraction!r})")
    if not requirements:
        raise ValueError("a dose needs at least one requirement")
    z = NormalDist().inv_cdf(pass_fraction)
    # The twin's median at one Bw (its own): ln UCS is linear in ln r with slope n, so
    # the r that puts the median z s above ln R follows from it.
    at = PasteTruth(blend, truth.ref_binder_ratio, solids_fraction)
    ln_r_at = math.log(binder_water_ratio(at.binder_ratio, solids_fraction))
    needed = 0.0
    for _, kpa, days in requirements:
        shortfall = math.log(kpa) + z * truth.total_sd_log - truth.ln_median(at, days)
        ln_ratio = ln_r_at + shortfall / truth.exponent
        q = math.exp(ln_ratio) * (1.0 - solids_fraction) / solids_fraction
        if q >= 1.0:
            return binder_ratio_limits[1]
        needed = max(needed, q / (1.0 - q))
    low, high = binder_ratio_limits
    return min(max(needed, low), high)


@dataclass(frozen=True)
class PlantReach:
    """What the plant can make, as the site states it: the Cw window (fractions), the
    feed's least solids (fraction, the wettest feed), the largest slag fraction tested,
    and the grid the open ceiling searches (Cw and slag steps)."""

    cw_low: float
    cw_high: float
    feed_solids_low: float
    slag_max: float
    cw_step: float = 0.0005
    slag_step: float = 0.02


@dataclass(frozen=True)
class OpenDose:
    """A pour's paste chosen on the truth: blend, Cw, Bw and binder per m3."""

    blend: Mapping[str, float] = field(hash=False)
    solids_fraction: float
    binder_ratio: float
    binder_kg_m3: float
    binder_cost_m3: float


def binder_cost(
    blend: Mapping[str, float], binder_kg: float, price_per_t: Mapping[str, float] | None
) -> float:
    """What ``binder_kg`` of the blend costs (0 without prices)."""
    if price_per_t is None:
        return 0.0
    return sum(f * binder_kg / 1000.0 * price_per_t[n] for n, f in blend.items())


def _binder_kg_m3(
    blend: Mapping[str, float],
    binder_ratio: float,
    solids_fraction: float,
    tailings: Tailings,
    binder_sg: Mapping[str, float],
) -> float:
    binder = [BinderComponent(n, binder_sg[n], f) for n, f in blend.items() if f > 0.0]
    return proportion(tailings, binder, binder_ratio, solids_fraction).binder_kg_m3


def open_dose(
    truth: TrueStrength,
    requirements: Sequence[tuple[str, float, float]],
    *,
    pass_fraction: float,
    binder_ratio_limits: tuple[float, float],
    reach: PlantReach,
    tailings_sg: float,
    binder_sg: Mapping[str, float],
    price_per_t: Mapping[str, float] | None = None,
    start: OpenDose | None = None,
) -> OpenDose:
    """The cement/slag paste with the least binder per m3 (with ``price_per_t``: the
    least binder cost per m3) whose cylinders pass every requirement with
    ``pass_fraction`` by the truth, among those the plant can make (module text);
    ``start``, a paste known to pass (the recipe as dosed on the truth), is a candidate
    too, so the answer never costs more than it."""

    def worse(dose: OpenDose, than: OpenDose | None) -> bool:
        if than is None:
            return False
        if price_per_t is None:
            return dose.binder_kg_m3 >= than.binder_kg_m3
        return dose.binder_cost_m3 >= than.binder_cost_m3

    tailings = Tailings(specific_gravity=tailings_sg, moisture_ratio=0.0)
    wettest = moisture_of_solids(100.0 * reach.feed_solids_low)
    best = start
    steps = round(reach.slag_max / reach.slag_step)
    cw_steps = round((reach.cw_high - reach.cw_low) / reach.cw_step)
    for i in range(steps + 1):
        slag = min(i * reach.slag_step, reach.slag_max)
        blend = {"cement": 1.0 - slag, "slag": slag}
        for j in range(cw_steps + 1):
            cw = reach.cw_low + j * reach.cw_step
            bw = truth_binder_ratio(
                truth, blend, cw, requirements, pass_fraction, binder_ratio_limits
            )
            if cw > driest_cw(bw, wettest) + 1e-12:
                break  # drier than the wettest feed makes: so is every higher Cw
            if bw >= binder_ratio_limits[1]:
                continue  # the site's most binder may not reach it at this Cw
            kg = _binder_kg_m3(blend, bw, cw, tailings, binder_sg)
            dose = OpenDose(blend, cw, bw, kg, binder_cost(blend, kg, price_per_t))
            if not worse(dose, best):
                best = dose
    if best is None:
        raise ValueError("no paste the plant can make passes the requirements")
    return best


@dataclass(frozen=True)
class Ceiling:
    """The service's pours dosed on the truth: binder placed (t), against what they
    placed (t). With a :class:`PlantReach`, also each pour's Cw and blend chosen on the
    truth: ``open_placed_t`` the least tonnes; ``cheapest_placed_t`` and
    ``cheapest_cost`` the least cost (with ``price_per_t``), beside ``service_cost``."""

    truth_placed_t: float
    service_placed_t: float
    pours: int
    open_placed_t: float | None = None
    cheapest_placed_t: float | None = None
    cheapest_cost: float | None = None
    service_cost: float | None = None


def ceiling(
    doses: Sequence[PourDose],
    truth: TrueStrength,
    *,
    pass_fraction: float,
    binder_ratio_limits: tuple[float, float],
    tailings_sg: float,
    binder_sg: Mapping[str, float],
    reach: PlantReach | None = None,
    price_per_t: Mapping[str, float] | None = None,
) -> Ceiling:
    """Each pour's binder placed at the truth's dose, scaled from what it placed by the
    two doses' binder per m3 (proportioned at the recipe's Cw and blend); with ``reach``,
    also at the open doses (:func:`open_dose`, the least tonnes and, with
    ``price_per_t``, the least cost), scaled the same way."""
    tailings = Tailings(specific_gravity=tailings_sg, moisture_ratio=0.0)
    truth_kg = service_kg = open_kg = cheapest_kg = cheapest_cost = service_cost = 0.0
    for dose in doses:
        bw = truth_binder_ratio(
            truth,
            dose.blend,
            dose.solids_fraction,
            dose.requirements,
            pass_fraction,
            binder_ratio_limits,
        )
        at_truth = _binder_kg_m3(dose.blend, bw, dose.solids_fraction, tailings, binder_sg)
        at_recipe = _binder_kg_m3(
            dose.blend, dose.binder_ratio, dose.solids_fraction, tailings, binder_sg
        )
        truth_kg += dose.binder_placed_kg * at_truth / at_recipe
        service_kg += dose.binder_placed_kg
        if reach is None:
            continue
        scale = dose.binder_placed_kg / at_recipe  # m3 placed, as the binder counts them
        kept = OpenDose(dose.blend, dose.solids_fraction, bw, at_truth, 0.0)
        opened = partial(
            open_dose,
            truth,
            dose.requirements,
            pass_fraction=pass_fraction,
            binder_ratio_limits=binder_ratio_limits,
            reach=reach,
            tailings_sg=tailings_sg,
            binder_sg=binder_sg,
        )
        open_kg += scale * opened(start=kept).binder_kg_m3
        if price_per_t is not None:
            kept_cost = binder_cost(dose.blend, at_truth, price_per_t)
            cheap = opened(price_per_t=price_per_t, start=replace(kept, binder_cost_m3=kept_cost))
            cheapest_kg += scale * cheap.binder_kg_m3
            cheapest_cost += scale * cheap.binder_cost_m3
            service_cost += scale * binder_cost(dose.blend, at_recipe, price_per_t)
    priced = reach is not None and price_per_t is not None
    return Ceiling(
        truth_kg / 1000.0,
        service_kg / 1000.0,
        len(doses),
        None if reach is None else open_kg / 1000.0,
        cheapest_kg / 1000.0 if priced else None,
        cheapest_cost if priced else None,
        service_cost if priced else None,
    )
