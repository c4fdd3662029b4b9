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
q = r (1 - Cw) / Cw. Values in, values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

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
class Ceiling:
    """The service's pours dosed on the truth: binder placed (t), against what they
    placed (t)."""

    truth_placed_t: float
    service_placed_t: float
    pours: int


def ceiling(
    doses: Sequence[PourDose],
    truth: TrueStrength,
    *,
    pass_fraction: float,
    binder_ratio_limits: tuple[float, float],
    tailings_sg: float,
    binder_sg: Mapping[str, float],
) -> Ceiling:
    """Each pour's binder placed at the truth's dose, scaled from what it placed by the
    two doses' binder per m3 (proportioned at the recipe's Cw and blend)."""
    tailings = Tailings(specific_gravity=tailings_sg, moisture_ratio=0.0)
    truth_kg = service_kg = 0.0
    for dose in doses:
        bw = truth_binder_ratio(
            truth,
            dose.blend,
            dose.solids_fraction,
            dose.requirements,
            pass_fraction,
            binder_ratio_limits,
        )
        binder = [BinderComponent(n, binder_sg[n], f) for n, f in dose.blend.items()]
        at_truth = proportion(tailings, binder, bw, dose.solids_fraction).binder_kg_m3
        at_recipe = proportion(
            tailings, binder, dose.binder_ratio, dose.solids_fraction
        ).binder_kg_m3
        truth_kg += dose.binder_placed_kg * at_truth / at_recipe
        service_kg += dose.binder_placed_kg
    return Ceiling(truth_kg / 1000.0, service_kg / 1000.0, len(doses))
