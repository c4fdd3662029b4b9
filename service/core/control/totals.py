"""Pour totals integrated from measurements, pure and checkpointable.

Every step adds ``rate x dt`` (rectangle rule; the loop runs at 0.5-1 s, the record
needs cubic metres, not millilitres). What is integrated:

- paste volume from ``paste_flow_pv``; dry tailings from the feed flow and density
  (solids fraction by the slurry relation with the recipe's tailings Gs, Wills, B.A. &
  Finch, J.A. (2016), *Wills' Mineral Processing Technology*, 8th ed., ch. 3; see
  :mod:`.massbalance`); binder per component from the feeders' rates; water from the
  dilution water flow (the water in the feed is part of the feed, not counted here);
- Cw and Bw statistics: volume-weighted average, min and max, only over volume where
  they were measured;
- off-spec volume: volume placed while the measured Cw or Bw was outside its band
  (the bands of the alarms, :class:`~service.core.control.alarms.AlarmConfig`), and
  the part of it placed during start-up: after each start of the plant until Cw and
  Bw are first both measured inside their bands (the mixer full of flush water being
  displaced); off-spec paste after that is a control matter. A plant mode that reads
  bad or stale for a moment is not a start: the run stays settled for up to
  ``TotalsSample.mode_hold_s``, the rule the dump diverter holds its valve by;
- flush water (a figure of the pour record): the line flow while the PLC flushes,
  counted apart from the paste (it is neither paste volume nor off-spec paste);
- dumped paste (start-up paste goes to the dump and is recorded apart from the placed
  volume): while the diverter's proven position is the dump (``TotalsSample.to_dump``,
  :mod:`service.core.diversion`) the paste volume, dry tailings, binder per component
  and water go to the ``dumped_*`` totals and never to the stope's (``poured_m3`` is
  stope volume), nor to off-spec, unmeasured or the Cw/Bw statistics of the placed
  paste. Whether the mix has
  settled is still judged on dumped paste (the start-up is what the dump receives).
  What the pump delivered is ``poured_m3 + dumped_m3`` (flush water apart).

Bad data (decided here): a quantity whose measurement is not usable is integrated
from its fallback (the setpoint the PLC was following, which the caller passes) so
the totals stay the best estimate and a pour still completes at its target volume,
and the paste volume of that step is added to ``unmeasured_m3`` (always a part of
``poured_m3``). Unmeasured Cw/Bw does not count as off-spec; the volume where they
were unknown is ``poured_m3 - solids_measured_m3`` (or ``binder_measured_m3``). Rates
are floored at 0, so every total is monotone non-decreasing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.core.control.alarms import AlarmConfig, binder_off_spec, solids_off_spec
from service.core.control.law import ControlInputs, ControlMode, ControlOutput, Measurement
from service.core.control.massbalance import (
    BINDER_COMPONENTS,
    Recipe,
    dry_solids_rate_t_h,
    paste_density_kg_m3,
    slurry_solids_fraction,
)
from service.errors import InvalidInput


@dataclass(frozen=True)
class Rate:
    """A measured rate with the fallback to use when the measurement is not usable."""

    measured: Measurement
    fallback: float

    def value(self) -> tuple[float, bool]:
        """(rate >= 0, measured?) - a non-finite fallback counts as 0."""
        if self.measured.usable:
            return max(self.measured.value, 0.0), True
        fallback = self.fallback if math.isfinite(self.fallback) else 0.0
        return max(fallback, 0.0), False


@dataclass(frozen=True)
class TotalsSample:
    """What one step contributes: rates (t/h, m3/h) and the measured quality."""

    paste_flow_m3_h: Rate
    dry_tailings_t_h: Rate
    binder_t_h: Mapping[str, Rate]
    water_m3_h: Rate
    solids_fraction: float | None
    binder_ratio: float | None
    solids_fraction_target: float
    binder_ratio_target: float
    # The PLC reports it is running (placing paste); None: its mode is unknown (the tag
    # bad or stale), which keeps a settled run settled for up to ``mode_hold_s`` (the
    # diverter's rule, service.core.diversion: a slow link is not a restart).
    plant_running: bool | None = True
    mode_hold_s: float = 60.0
    flushing: bool = False  # the PLC reports it is flushing: the line carries water
    to_dump: bool = False  # the diverter's proven position is the dump: not stope volume
    # What the Cw and Bw rest on (service.core.paste_estimate): the sd of the estimate
    # from the gauges' noise and their calibration tolerance, in the same units.
    solids_sd: float | None = None
    solids_tolerance: float | None = None
    binder_sd: float | None = None
    binder_tolerance: float | None = None


@dataclass(frozen=True)
class PourTotals:
    """Running totals of one pour. Fractions inside; :meth:`summary` gives percent."""

    elapsed_s: float = 0.0
    poured_m3: float = 0.0
    unmeasured_m3: float = 0.0
    dry_tailings_t: float = 0.0
    binder_t: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(BINDER_COMPONENTS, 0.0)
    )
    water_m3: float = 0.0
    off_spec_m3: float = 0.0
    startup_off_spec_m3: float = 0.0  # part of off_spec_m3
    settled: bool = False  # Cw and Bw in band since the plant last started
    mode_unknown_s: float = 0.0  # how long the plant's mode has been unknown, to now
    flush_water_m3: float = 0.0
    solids_weighted_m3: float = 0.0
    solids_measured_m3: float = 0.0
    solids_min: float | None = None
    solids_max: float | None = None
    binder_weighted_m3: float = 0.0
    binder_measured_m3: float = 0.0
    binder_min: float | None = None
    binder_max: float | None = None
    dumped_m3: float = 0.0
    dumped_dry_tailings_t: float = 0.0
    dumped_binder_t: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(BINDER_COMPONENTS, 0.0)
    )
    dumped_water_m3: float = 0.0
    # Paste placed while no cycle integrated it (around a crash of the service), taken
    # from the plant afterwards (:func:`add_unrecorded`): part of poured_m3 and dumped_m3.
    recovered_m3: float = 0.0
    # The uncertainty of the Cw and Bw judged (volume-weighted sums of the estimate's sd
    # and calibration tolerance, over the volume where each was known).
    solids_sd_weighted_m3: float = 0.0
    solids_tolerance_weighted_m3: float = 0.0
    binder_sd_weighted_m3: float = 0.0
    binder_tolerance_weighted_m3: float = 0.0
    # The plant's spread (service.core.plant_spread): squared deviations of the judged Cw
    # (absolute) and Bw (relative to its target) from the recipe, volume-weighted, over
    # the settled stope volume where both were judged.
    spread_volume_m3: float = 0.0
    solids_deviation_sq_m3: float = 0.0
    binder_deviation_rel_sq_m3: float = 0.0

    @property
    def binder_total_t(self) -> float:
        return sum(self.binder_t.values())

    @property
    def dumped_binder_total_t(self) -> float:
        return sum(self.dumped_binder_t.values())

    @property
    def delivered_m3(self) -> float:
        """Paste the pump delivered: placed in the stope plus dumped (flush water apart)."""
        return self.poured_m3 + self.dumped_m3

    @property
    def average_solids_fraction(self) -> float | None:
        """Volume-weighted average Cw over the volume where it was measured."""
        if self.solids_measured_m3 <= 0.0:
            return None
        return self.solids_weighted_m3 / self.solids_measured_m3

    @property
    def average_binder_ratio(self) -> float | None:
        """Volume-weighted average Bw over the volume where it was measured."""
        if self.binder_measured_m3 <= 0.0:
            return None
        return self.binder_weighted_m3 / self.binder_measured_m3

    def summary(self) -> dict[str, Any]:
        """The pour record's figures, percentages 0-100 (docs/INTEGRATION.md field names)."""

        def pct(value: float | None) -> float | None:
            return None if value is None else 100.0 * value

        return {
            "poured_m3": self.poured_m3,
            "unmeasured_m3": self.unmeasured_m3,
            "dry_tailings_t": self.dry_tailings_t,
            "binder_t": self.binder_total_t,
            "binder_t_by_component": dict(self.binder_t),
            "water_m3": self.water_m3,
            "average_solids_pct": pct(self.average_solids_fraction),
            "min_solids_pct": pct(self.solids_min),
            "max_solids_pct": pct(self.solids_max),
            "average_binder_pct": pct(self.average_binder_ratio),
            "min_binder_pct": pct(self.binder_min),
            "max_binder_pct": pct(self.binder_max),
            "off_spec_m3": self.off_spec_m3,
            "startup_off_spec_m3": self.startup_off_spec_m3,
            "flush_water_m3": self.flush_water_m3,
            "solids_measured_m3": self.solids_measured_m3,
            "binder_measured_m3": self.binder_measured_m3,
            "dumped_m3": self.dumped_m3,
            "dumped_dry_tailings_t": self.dumped_dry_tailings_t,
            "dumped_binder_t": self.dumped_binder_total_t,
            "dumped_binder_t_by_component": dict(self.dumped_binder_t),
            "dumped_water_m3": self.dumped_water_m3,
            "recovered_m3": self.recovered_m3,
            "solids_sd_pct": pct(self._mean(self.solids_sd_weighted_m3, self.solids_measured_m3)),
            "solids_tolerance_pct": pct(
                self._mean(self.solids_tolerance_weighted_m3, self.solids_measured_m3)
            ),
            "binder_sd_pct": pct(self._mean(self.binder_sd_weighted_m3, self.binder_measured_m3)),
            "binder_tolerance_pct": pct(
                self._mean(self.binder_tolerance_weighted_m3, self.binder_measured_m3)
            ),
            "spread_volume_m3": self.spread_volume_m3,
            "solids_deviation_ms": self._ms(self.solids_deviation_sq_m3),
            "binder_deviation_rel_ms": self._ms(self.binder_deviation_rel_sq_m3),
        }

    def _ms(self, weighted: float) -> float | None:
        return weighted / self.spread_volume_m3 if self.spread_volume_m3 > 0.0 else None

    @staticmethod
    def _mean(weighted: float, volume: float) -> float | None:
        return weighted / volume if volume > 0.0 and weighted > 0.0 else None

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to resume integration (checkpoint)."""
        return {
            "elapsed_s": self.elapsed_s,
            "poured_m3": self.poured_m3,
            "unmeasured_m3": self.unmeasured_m3,
            "dry_tailings_t": self.dry_tailings_t,
            "binder_t": dict(self.binder_t),
            "water_m3": self.water_m3,
            "off_spec_m3": self.off_spec_m3,
            "startup_off_spec_m3": self.startup_off_spec_m3,
            "settled": self.settled,
            "mode_unknown_s": self.mode_unknown_s,
            "flush_water_m3": self.flush_water_m3,
            "solids_weighted_m3": self.solids_weighted_m3,
            "solids_measured_m3": self.solids_measured_m3,
            "solids_min": self.solids_min,
            "solids_max": self.solids_max,
            "binder_weighted_m3": self.binder_weighted_m3,
            "binder_measured_m3": self.binder_measured_m3,
            "binder_min": self.binder_min,
            "binder_max": self.binder_max,
            "dumped_m3": self.dumped_m3,
            "dumped_dry_tailings_t": self.dumped_dry_tailings_t,
            "dumped_binder_t": dict(self.dumped_binder_t),
            "dumped_water_m3": self.dumped_water_m3,
            "recovered_m3": self.recovered_m3,
            "solids_sd_weighted_m3": self.solids_sd_weighted_m3,
            "solids_tolerance_weighted_m3": self.solids_tolerance_weighted_m3,
            "binder_sd_weighted_m3": self.binder_sd_weighted_m3,
            "binder_tolerance_weighted_m3": self.binder_tolerance_weighted_m3,
            "spread_volume_m3": self.spread_volume_m3,
            "solids_deviation_sq_m3": self.solids_deviation_sq_m3,
            "binder_deviation_rel_sq_m3": self.binder_deviation_rel_sq_m3,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PourTotals:
        """Inverse of :meth:`to_dict`; raises :class:`InvalidInput` on a bad checkpoint."""
        try:

            def opt(key: str) -> float | None:
                value = data.get(key)
                return None if value is None else float(value)

            def by_component(key: str) -> dict[str, float]:
                out = dict.fromkeys(BINDER_COMPONENTS, 0.0)
                out.update({str(k): float(v) for k, v in dict(data.get(key) or {}).items()})
                return out

            return cls(
                elapsed_s=float(data["elapsed_s"]),
                poured_m3=float(data["poured_m3"]),
                unmeasured_m3=float(data["unmeasured_m3"]),
                dry_tailings_t=float(data["dry_tailings_t"]),
                binder_t=by_component("binder_t"),
                water_m3=float(data["water_m3"]),
                off_spec_m3=float(data["off_spec_m3"]),
                # Absent from checkpoints written before these were kept.
                startup_off_spec_m3=float(data.get("startup_off_spec_m3", 0.0)),
                settled=bool(data.get("settled", False)),
                mode_unknown_s=float(data.get("mode_unknown_s", 0.0)),
                flush_water_m3=float(data.get("flush_water_m3", 0.0)),
                solids_weighted_m3=float(data["solids_weighted_m3"]),
                solids_measured_m3=float(data["solids_measured_m3"]),
                solids_min=opt("solids_min"),
                solids_max=opt("solids_max"),
                binder_weighted_m3=float(data["binder_weighted_m3"]),
                binder_measured_m3=float(data["binder_measured_m3"]),
                binder_min=opt("binder_min"),
                binder_max=opt("binder_max"),
                # Absent from checkpoints written before dumped paste was kept apart.
                dumped_m3=float(data.get("dumped_m3", 0.0)),
                dumped_dry_tailings_t=float(data.get("dumped_dry_tailings_t", 0.0)),
                dumped_binder_t=by_component("dumped_binder_t"),
                dumped_water_m3=float(data.get("dumped_water_m3", 0.0)),
                recovered_m3=float(data.get("recovered_m3", 0.0)),
                solids_sd_weighted_m3=float(data.get("solids_sd_weighted_m3", 0.0)),
                solids_tolerance_weighted_m3=float(data.get("solids_tolerance_weighted_m3", 0.0)),
                binder_sd_weighted_m3=float(data.get("binder_sd_weighted_m3", 0.0)),
                binder_tolerance_weighted_m3=float(data.get("binder_tolerance_weighted_m3", 0.0)),
                spread_volume_m3=float(data.get("spread_volume_m3", 0.0)),
                solids_deviation_sq_m3=float(data.get("solids_deviation_sq_m3", 0.0)),
                binder_deviation_rel_sq_m3=float(data.get("binder_deviation_rel_sq_m3", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput("totals", f"unreadable totals checkpoint: {err}") from err


def add_unrecorded(
    totals: PourTotals, volume_m3: float, *, to_dump: bool, recipe: Recipe
) -> PourTotals:
    """Paste the plant placed that no control cycle integrated (the service was down
    while the plant ran on until its watchdog stopped it), as measured afterwards by the
    plant (its totaliser) or the history. Its Cw and Bw were not measured: the volume
    is unmeasured, and its dry tailings and binder are the recipe's per cubic metre of
    saturated paste (wet density from the solids Gs, Cw and Bw); its dilution water is
    not known (it depends on the feed's moisture) and is not added."""
    if not math.isfinite(volume_m3) or volume_m3 <= 0.0:
        return totals
    dry_solids_t = volume_m3 * paste_density_kg_m3(recipe) * recipe.solids_fraction / 1000.0
    dry_tailings_t = dry_solids_t / (1.0 + recipe.binder_ratio)
    binder = {c.name: dry_tailings_t * recipe.binder_ratio * c.fraction for c in recipe.binder}

    def plus(current: Mapping[str, float]) -> dict[str, float]:
        return {k: current.get(k, 0.0) + binder.get(k, 0.0) for k in {*current, *binder}}

    recovered = totals.recovered_m3 + volume_m3
    if to_dump:
        return replace(
            totals,
            dumped_m3=totals.dumped_m3 + volume_m3,
            dumped_dry_tailings_t=totals.dumped_dry_tailings_t + dry_tailings_t,
            dumped_binder_t=plus(totals.dumped_binder_t),
            recovered_m3=recovered,
        )
    return replace(
        totals,
        poured_m3=totals.poured_m3 + volume_m3,
        unmeasured_m3=totals.unmeasured_m3 + volume_m3,
        dry_tailings_t=totals.dry_tailings_t + dry_tailings_t,
        binder_t=plus(totals.binder_t),
        recovered_m3=recovered,
    )


def _min(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def _max(a: float | None, b: float) -> float:
    return b if a is None else max(a, b)


def _still_settled(totals: PourTotals, sample: TotalsSample, dt_s: float) -> tuple[bool, float]:
    """Whether a settled run stays settled this step, and how long the plant's mode has
    then been unknown. A stop ends the run; an unknown mode holds it for
    ``sample.mode_hold_s`` from the first step it was unknown, as the diverter holds its
    valve (:mod:`service.core.diversion`), and ends it after."""
    if sample.plant_running is None:
        held = totals.mode_unknown_s < sample.mode_hold_s
        return totals.settled and held, totals.mode_unknown_s + dt_s
    return totals.settled and sample.plant_running, 0.0


def _usable_fraction(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value < 0.0:
        return None
    return value


def accumulate(
    totals: PourTotals, sample: TotalsSample, dt_s: float, config: AlarmConfig | None = None
) -> PourTotals:
    """Totals after ``dt_s`` more seconds at the sample's rates.

    Raises :class:`InvalidInput` for a negative or non-finite ``dt_s``.
    """
    if not math.isfinite(dt_s) or dt_s < 0.0:
        raise InvalidInput("dt_s", f"time step must be finite and >= 0, got {dt_s!r}")
    cfg = config or AlarmConfig()
    hours = dt_s / 3600.0
    paste, paste_measured = sample.paste_flow_m3_h.value()
    if sample.flushing:
        # The line carries flush water: neither paste nor a Cw/Bw sample. A flush
        # ends a run, so the next start is a start-up again.
        return replace(
            totals,
            elapsed_s=totals.elapsed_s + dt_s,
            flush_water_m3=totals.flush_water_m3 + paste * hours,
            settled=False,
            mode_unknown_s=0.0,
        )
    if sample.to_dump:
        return _accumulate_dumped(totals, sample, dt_s, paste * hours, cfg)
    volume = paste * hours
    all_measured = paste_measured
    dry, ok = sample.dry_tailings_t_h.value()
    all_measured &= ok
    water, ok = sample.water_m3_h.value()
    all_measured &= ok
    binder = dict(totals.binder_t)
    for name, rate in sample.binder_t_h.items():
        value, ok = rate.value()
        all_measured &= ok
        binder[name] = binder.get(name, 0.0) + value * hours

    settled, mode_unknown_s = _still_settled(totals, sample, dt_s)
    new = replace(
        totals,
        elapsed_s=totals.elapsed_s + dt_s,
        poured_m3=totals.poured_m3 + volume,
        unmeasured_m3=totals.unmeasured_m3 + (0.0 if all_measured else volume),
        dry_tailings_t=totals.dry_tailings_t + dry * hours,
        binder_t=binder,
        water_m3=totals.water_m3 + water * hours,
        settled=settled,
        mode_unknown_s=mode_unknown_s,
    )
    if volume <= 0.0:
        return new
    off_spec = False
    cw = _usable_fraction(sample.solids_fraction)
    if cw is not None:
        off_spec |= solids_off_spec(cw, sample.solids_fraction_target, cfg)
        new = replace(
            new,
            solids_weighted_m3=new.solids_weighted_m3 + cw * volume,
            solids_measured_m3=new.solids_measured_m3 + volume,
            solids_sd_weighted_m3=new.solids_sd_weighted_m3 + (sample.solids_sd or 0.0) * volume,
            solids_tolerance_weighted_m3=new.solids_tolerance_weighted_m3
            + (sample.solids_tolerance or 0.0) * volume,
            solids_min=_min(new.solids_min, cw),
            solids_max=_max(new.solids_max, cw),
        )
    bw = _usable_fraction(sample.binder_ratio)
    if bw is not None:
        off_spec |= binder_off_spec(bw, sample.binder_ratio_target, cfg)
        new = replace(
            new,
            binder_weighted_m3=new.binder_weighted_m3 + bw * volume,
            binder_measured_m3=new.binder_measured_m3 + volume,
            binder_sd_weighted_m3=new.binder_sd_weighted_m3 + (sample.binder_sd or 0.0) * volume,
            binder_tolerance_weighted_m3=new.binder_tolerance_weighted_m3
            + (sample.binder_tolerance or 0.0) * volume,
            binder_min=_min(new.binder_min, bw),
            binder_max=_max(new.binder_max, bw),
        )
    if off_spec:
        startup = 0.0 if new.settled else volume
        new = replace(
            new,
            off_spec_m3=new.off_spec_m3 + volume,
            startup_off_spec_m3=new.startup_off_spec_m3 + startup,
        )
    elif cw is not None and bw is not None and sample.plant_running is True:  # both in band
        new = replace(new, settled=True)
    if new.settled and cw is not None and bw is not None and sample.binder_ratio_target > 0.0:
        dev_cw = cw - sample.solids_fraction_target
        dev_bw = bw / sample.binder_ratio_target - 1.0
        new = replace(
            new,
            spread_volume_m3=new.spread_volume_m3 + volume,
            solids_deviation_sq_m3=new.solids_deviation_sq_m3 + dev_cw * dev_cw * volume,
            binder_deviation_rel_sq_m3=new.binder_deviation_rel_sq_m3 + dev_bw * dev_bw * volume,
        )
    return new


def _accumulate_dumped(
    totals: PourTotals, sample: TotalsSample, dt_s: float, volume: float, cfg: AlarmConfig
) -> PourTotals:
    """One step of paste sent to the dump: recorded apart, never stope volume."""
    hours = dt_s / 3600.0
    dry, _ = sample.dry_tailings_t_h.value()
    water, _ = sample.water_m3_h.value()
    binder = dict(totals.dumped_binder_t)
    for name, rate in sample.binder_t_h.items():
        value, _ = rate.value()
        binder[name] = binder.get(name, 0.0) + value * hours
    settled, mode_unknown_s = _still_settled(totals, sample, dt_s)
    cw = _usable_fraction(sample.solids_fraction)
    bw = _usable_fraction(sample.binder_ratio)
    if volume > 0.0 and sample.plant_running is True and cw is not None and bw is not None:
        # The mix settles wherever the valve sends it: the same test as for placed paste.
        in_band = not solids_off_spec(cw, sample.solids_fraction_target, cfg) and not (
            binder_off_spec(bw, sample.binder_ratio_target, cfg)
        )
        settled = settled or in_band
    return replace(
        totals,
        elapsed_s=totals.elapsed_s + dt_s,
        dumped_m3=totals.dumped_m3 + volume,
        dumped_dry_tailings_t=totals.dumped_dry_tailings_t + dry * hours,
        dumped_binder_t=binder,
        dumped_water_m3=totals.dumped_water_m3 + water * hours,
        settled=settled,
        mode_unknown_s=mode_unknown_s,
    )


def sample_from_step(
    inputs: ControlInputs,
    output: ControlOutput,
    *,
    paste_flow_m3_h: Measurement,
    water_flow_m3_h: Measurement,
    flushing: bool = False,
    to_dump: bool = False,
) -> TotalsSample:
    """A totals sample from one control step's inputs and output; ``flushing``: the
    PLC reports the flushing mode; ``to_dump``: the diverter's proven position is the
    dump (:attr:`service.core.diversion.DiverterOutput.to_dump`).

    Fallbacks are what the plant was told: the paste flow request and the written
    setpoints while the law is ACTIVE, 0 otherwise (a stopped plant places nothing).
    Dry tailings are measured when the feed flow and density are both usable.
    """
    recipe = inputs.recipe
    active = output.mode is ControlMode.ACTIVE
    sp = output.setpoints
    ff = output.feed_forward

    def fallback(value: float) -> float:
        return value if active else 0.0

    flow, density = inputs.tailings_flow_m3_h, inputs.tailings_density_kg_m3
    dry_measured = Measurement(math.nan, good=False)
    if flow.usable and density.usable:
        feed_cw = slurry_solids_fraction(density.value, recipe.tailings_sg)
        if 0.0 < feed_cw < 1.0:
            dry_measured = Measurement(dry_solids_rate_t_h(flow.value, density.value, feed_cw))
    binder: dict[str, Rate] = {}
    for name in recipe.component_names:
        m = inputs.binder_rates_t_h.get(name, Measurement(math.nan, good=False))
        if name in inputs.refilling:
            # A loss-in-weight reading during refill is not a rate: the hopper gains
            # weight from the refill while it discharges, so its weight change is not the
            # feed rate.
            m = Measurement(m.value, good=False)
        binder[name] = Rate(m, fallback(sp.binder(name)))
    return TotalsSample(
        paste_flow_m3_h=Rate(paste_flow_m3_h, fallback(inputs.paste_flow_request_m3_h)),
        dry_tailings_t_h=Rate(
            dry_measured, fallback(ff.dry_tailings_t_h if ff is not None else 0.0)
        ),
        binder_t_h=binder,
        water_m3_h=Rate(water_flow_m3_h, fallback(sp.water_flow_sp)),
        solids_fraction=output.measured_solids_fraction,
        binder_ratio=output.measured_binder_ratio,
        solids_fraction_target=recipe.solids_fraction,
        binder_ratio_target=recipe.binder_ratio,
        plant_running=inputs.plant_running,
        flushing=flushing,
        to_dump=to_dump,
    )
