"""The paste placed, estimated: its Cw and Bw as the mixer delivers them, from the
plant's noisy 1 s readings, with the estimate's uncertainty.

A pour record that judged single readings judged gauge noise: a paste density gauge with
5 kg/m3 of noise reads about 0.2 point of Cw off on every reading (three times that with a
worse gauge), and a binder scale with 2 % noise a Bw 2 % off, while the paste in the
mixer cannot change that fast. The mixer and its hopper hold ``V`` m3 of paste and pass
``Q`` m3/h: a well-mixed vessel with residence time ``tau = V / Q`` (Levenspiel, O. (1999)
Chemical Reaction Engineering, 3rd ed., Wiley, ch. 11-14: the continuous stirred tank's
exit is the first-order filter of its inlet with time constant ``tau``). So:

- Bw: the binder and the dry tailings entering the mixer are each filtered as the tank
  filters them (the binder mass over the tailings mass it holds: the Bw of the paste it
  delivers, exact for a well-mixed tank), the feed's reading taken ``feed_delay_s``
  late (the feed meters sit upstream of the mixer, the binder feeders on it);
- Cw: the paste density gauge sees the mixed paste already; its reading is filtered with
  ``tau / 6`` (exponentially weighted): the tank smooths the paste's own changes over
  ``tau``, so a filter six times faster lags them little (a start-up's rise, a recipe
  switch) while it takes the gauge's white noise down by ``sqrt(12 dt / tau)``.

An exponentially weighted mean of white noise of sd ``s`` sampled every ``dt`` has sd
``s * sqrt(a / (2 - a))``, ``a = dt / tau_f`` (Box, G.E.P., Jenkins, G.M., Reinsel, G.C.
(2008) Time Series Analysis, 4th ed., Wiley, on the EWMA as a forecast): each estimate states
that sd from the gauges' stated noise, and the calibration tolerance beside it (which no
averaging removes). Values only: the pour machine feeds it every cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

RHO_W_KG_M3 = 1000.0
_CW_FILTER_SHARE = 6.0  # the Cw filter's time constant is the residence time over this


@dataclass(frozen=True)
class EstimateConfig:
    """``mixer_volume_m3``: the mixer's and hopper's paste at 100 % of ``mixer_level_pv``
    (the hold-up at a level is that share of it); ``residence_s``: the residence time
    used while the level or the flow is not read; ``feed_delay_s``: feed meters ->
    mixer. The gauges' noise (sd per reading) and calibration tolerance are the
    instrument settings' (``BACKFILL_INSTRUMENTS__*``)."""

    mixer_volume_m3: float = 2.5
    residence_s: float = 45.0
    feed_delay_s: float = 0.0
    density_sd_kg_m3: float = 5.0
    density_tolerance_kg_m3: float = 5.0
    binder_sd: float = 0.02  # of the reading
    binder_tolerance: float = 0.01
    flow_sd: float = 0.01
    flow_tolerance: float = 0.005
    min_residence_s: float = 5.0
    max_residence_s: float = 900.0


@dataclass(frozen=True)
class PasteEstimate:
    """The estimate after the last cycle. ``solids_fraction`` / ``binder_ratio`` are Cw
    and Bw (fractions), None until a reading came; ``*_sd``: the estimate's sd from the
    readings' noise; ``*_tolerance``: the calibration's, in the same units."""

    solids_fraction: float | None = None
    binder_ratio: float | None = None
    solids_sd: float | None = None
    binder_sd: float | None = None
    solids_tolerance: float | None = None
    binder_tolerance: float | None = None
    binder_t_h: float | None = None  # the tank-filtered binder inflow
    tailings_t_h: float | None = None  # the tank-filtered dry tailings inflow
    solids_var: float = 0.0  # of the filtered Cw, in units of the reading's variance
    binder_var: float = 0.0
    feed_line: tuple[tuple[float, float], ...] = ()  # (age s, dry tailings t/h), newest last
    residence_s: float | None = None


def residence_s(
    level_pct: float | None, paste_flow_m3_h: float | None, config: EstimateConfig
) -> float:
    """``tau = V / Q``: the hold-up (the level's share of the mixer's volume) over the
    paste flow; the configured residence while either is not read."""
    if (
        level_pct is None
        or paste_flow_m3_h is None
        or not math.isfinite(level_pct)
        or not math.isfinite(paste_flow_m3_h)
        or paste_flow_m3_h <= 1.0
        or level_pct <= 0.0
    ):
        return config.residence_s
    tau = config.mixer_volume_m3 * min(level_pct, 100.0) / 100.0 / paste_flow_m3_h * 3600.0
    return min(max(tau, config.min_residence_s), config.max_residence_s)


def density_per_solids_kg_m3(density_kg_m3: float, solids_sg: float) -> float:
    """d rho / d Cw of a saturated paste: ``rho^2 (1 - 1/Gs_s) / rho_w``, from
    ``rho = 1 / (Cw/(Gs_s rho_w) + (1 - Cw)/rho_w)`` (the saturated paste's wet density,
    e.g. Belem, T. & Benzaazoua, M. (2008) Design and application of underground mine
    paste backfill technology, Geotech. Geol. Eng. 26:147-174)."""
    return density_kg_m3 * density_kg_m3 * (1.0 - 1.0 / solids_sg) / RHO_W_KG_M3


def _ewma(previous: float | None, reading: float, a: float) -> float:
    return reading if previous is None else previous + a * (reading - previous)


def _var(previous: float, a: float, first: bool) -> float:
    """The variance of the filtered value over a reading's, recursively:
    ``v' = (1 - a)^2 v + a^2`` (1 for the first reading)."""
    return 1.0 if first else (1.0 - a) ** 2 * previous + a * a


def step(
    estimate: PasteEstimate,
    *,
    solids_fraction: float | None,
    density_kg_m3: float | None,
    solids_sg: float,
    binder_t_h: Mapping[str, float] | None,
    dry_tailings_t_h: float | None,
    level_pct: float | None,
    paste_flow_m3_h: float | None,
    dt_s: float,
    config: EstimateConfig,
) -> PasteEstimate:
    """The estimate after one more cycle of ``dt_s`` plant seconds. A reading that is
    missing (None) leaves its part of the estimate as it was (it does not decay)."""
    if not math.isfinite(dt_s) or dt_s < 0.0:
        return estimate
    tau = residence_s(level_pct, paste_flow_m3_h, config)
    out = replace(estimate, residence_s=tau)
    # Cw: the mixed paste as the gauge reads it, filtered with tau / 6.
    if solids_fraction is not None and math.isfinite(solids_fraction) and dt_s > 0.0:
        a = min(1.0, dt_s / (tau / _CW_FILTER_SHARE))
        first = estimate.solids_fraction is None
        cw = _ewma(estimate.solids_fraction, solids_fraction, a)
        var = _var(estimate.solids_var, a, first)
        slope = (
            density_per_solids_kg_m3(density_kg_m3, solids_sg)
            if density_kg_m3 is not None and density_kg_m3 > 0.0
            else math.nan
        )
        out = replace(
            out,
            solids_fraction=cw,
            solids_var=var,
            solids_sd=config.density_sd_kg_m3 / slope * math.sqrt(var)
            if math.isfinite(slope) and slope > 0.0
            else None,
            solids_tolerance=config.density_tolerance_kg_m3 / slope
            if math.isfinite(slope) and slope > 0.0
            else None,
        )
    # Bw: binder and tailings as the tank holds them; the feed reading arrives late.
    line = tuple((age + dt_s, value) for age, value in estimate.feed_line)
    if dry_tailings_t_h is not None and math.isfinite(dry_tailings_t_h):
        line = (*line, (0.0, max(dry_tailings_t_h, 0.0)))
    arrived = [value for age, value in line if age >= config.feed_delay_s]
    # What arrived is kept as one reading (the newest that did), ahead of those in transit.
    line = (((config.feed_delay_s, arrived[-1]),) if arrived else ()) + tuple(
        item for item in line if item[0] < config.feed_delay_s
    )
    out = replace(out, feed_line=line)
    binder = None if binder_t_h is None else sum(binder_t_h.values())
    tailings = arrived[-1] if arrived else None
    if binder is not None and tailings is not None and dt_s > 0.0 and math.isfinite(binder):
        a = min(1.0, dt_s / tau)
        first = estimate.binder_t_h is None
        b = _ewma(estimate.binder_t_h, max(binder, 0.0), a)
        t = _ewma(estimate.tailings_t_h, tailings, a)
        var = _var(estimate.binder_var, a, first)
        # Relative noise of a ratio of two independent readings: the sum of squares.
        rel_sd = math.hypot(config.binder_sd, config.flow_sd) * math.sqrt(var)
        bw = b / t if t > 1e-9 else None
        out = replace(
            out,
            binder_t_h=b,
            tailings_t_h=t,
            binder_var=var,
            binder_ratio=bw,
            binder_sd=None if bw is None else bw * rel_sd,
            binder_tolerance=None
            if bw is None
            else bw * math.hypot(config.binder_tolerance, config.flow_tolerance),
        )
    return out
