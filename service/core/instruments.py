"""Instruments that check each other, and what a dead feed gauge does, once per cycle.

The pour machine's rules over two pure cores:

- :mod:`service.core.control.fallback`: a bad tailings flow or density holds the last
  correction for ``hold_s`` only, then the binder is ratioed on the paste flow meter
  (handed to the law as ``binder_on_paste_flow_t_h``), and when that is dead too the
  pour pauses with a high alarm. :class:`BinderSource` is the memory a pour carries.
- :mod:`service.core.reconcile` (part 2): the plant measures the mass flow twice (feed
  flow x density + binder + water in; paste flow x density out). At steady production
  the readings are reconciled by weighted least squares every cycle and a persistence
  filter raises "instruments disagree", naming the likely gauge. :class:`BalanceCheck`
  keeps the filter and the last reconciliation (the history trends its residual).

Each gauge's error (:class:`GaugeErrors`, from the ``instruments`` settings) is an sd
and a calibration tolerance as a fraction of its reading (a flow meter's accuracy is
quoted in % of reading) or in kg/m3 for the densities.

The balance's alarm sizes a disagreement with scipy's bounded least squares, which the
service loads only when it is needed (:mod:`service.core.lazy_scipy`); the running part
loads it in a worker thread when a pour starts, so that the import (about 0.4 s) never
runs on the event loop in the middle of a cycle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from service.core import flow_balance as rc
from service.core.control import law
from service.core.control.alarms import AlarmCode, Condition
from service.core.control.fallback import (
    FallbackConfig,
    FallbackDecision,
    FallbackMode,
    FallbackState,
    GaugeHealth,
    fallback_step,
    paste_flow_binder,
    resume_fallback,
)
from service.core.control.massbalance import Recipe
from service.errors import InvalidInput


class InstrumentTuning(Protocol):
    """The site's instrument settings (``BACKFILL_INSTRUMENTS__*``) as the checks read
    them: each gauge's sd and calibration tolerance, and the alarm's persistence."""

    @property
    def flow_sd_pct(self) -> float: ...
    @property
    def flow_tolerance_pct(self) -> float: ...
    @property
    def density_sd_kg_m3(self) -> float: ...
    @property
    def density_tolerance_kg_m3(self) -> float: ...
    @property
    def binder_sd_pct(self) -> float: ...
    @property
    def binder_tolerance_pct(self) -> float: ...
    @property
    def water_sd_pct(self) -> float: ...
    @property
    def water_tolerance_pct(self) -> float: ...
    @property
    def time_constant_s(self) -> float: ...
    @property
    def false_alarms_per_8h(self) -> float: ...


Measure = Callable[[str], law.Measurement]

#: A reading of (nearly) nothing still has an error: sd floors in the reading's units.
_FLOW_FLOOR_M3_H = 0.5
_BINDER_FLOOR_T_H = 0.05

FALLBACK_CODES = (
    AlarmCode.FEED_GAUGE_HOLDING,
    AlarmCode.BINDER_ON_PASTE_FLOW,
    AlarmCode.GAUGES_DEAD_PAUSE,
)
PAUSE_REASON = "gauges_dead"


# --- a dead feed gauge --------------------------------------------------------------------


@dataclass(frozen=True)
class BinderSource:
    """What a pour's binder follows, carried from cycle to cycle (and across a recipe
    handover): the fallback's state and the last binder ratioed on a good paste flow
    (held while the paste flow is briefly bad)."""

    state: FallbackState = field(default_factory=FallbackState.initial)
    last_paste_binder_t_h: Mapping[str, float] | None = None

    def resumed(self) -> BinderSource:
        """The operator resumed the pour: the gauges are judged afresh."""
        return replace(self, state=resume_fallback(self.state))


def gauge_health(inputs: law.ControlInputs, paste_flow: law.Measurement) -> GaugeHealth:
    """Which gauges may carry the binder this cycle: good, fresh, finite and plausible
    (the densities between water and the recipe's solids, the flows not negative)."""
    recipe = inputs.recipe
    return GaugeHealth(
        feed_flow=inputs.tailings_flow_m3_h.usable and inputs.tailings_flow_m3_h.value >= 0.0,
        feed_density=law.usable_feed_density(inputs.tailings_density_kg_m3, recipe),
        paste_flow=paste_flow.usable and paste_flow.value >= 0.0,
        paste_density=law.usable_paste_density(inputs.paste_density_kg_m3, recipe),
    )


def binder_source_step(
    source: BinderSource,
    inputs: law.ControlInputs,
    paste_flow: law.Measurement,
    now: datetime,
    config: FallbackConfig,
) -> tuple[BinderSource, FallbackDecision, law.ControlInputs]:
    """One cycle of the dead-gauge fallback at plant time ``now``: the new memory, the
    decision (its mode, alarm and reason) and the law's inputs for this cycle, with
    the binder on the paste flow when the feed cannot carry it."""
    health = gauge_health(inputs, paste_flow)
    state, decision = fallback_step(source.state, health, now, config)
    binder = source.last_paste_binder_t_h
    if decision.mode is FallbackMode.PASTE_FLOW_RATIO:
        density = inputs.paste_density_kg_m3.value if decision.use_paste_density else None
        binder = dict(paste_flow_binder(inputs.recipe, paste_flow.value, density).binder_t_h)
    new_source = BinderSource(state=state, last_paste_binder_t_h=binder)
    on_paste_flow = decision.mode is FallbackMode.PASTE_FLOW_RATIO or (
        decision.mode is FallbackMode.HOLDING and decision.held == "paste_flow"
    )
    if on_paste_flow and binder is not None:
        inputs = replace(inputs, binder_on_paste_flow_t_h=binder)
    return new_source, decision, inputs


def fallback_conditions(
    decision: FallbackDecision | None, source: BinderSource | None
) -> dict[AlarmCode, Condition]:
    """The fallback's alarm conditions. Holding and the paste-flow ratio are active while
    this cycle's ``decision`` says so; the pause stays active from the pause until the
    operator resumes the pour (the fallback's state latches it). No pour: all clear."""
    active = None if decision is None else decision.alarm_code
    reason = "" if decision is None else decision.reason
    out = {
        code: Condition(code == active, reason if code == active else "") for code in FALLBACK_CODES
    }
    if source is not None and source.state.mode is FallbackMode.PAUSE:
        out[AlarmCode.GAUGES_DEAD_PAUSE] = Condition(True, source.state.reason)
    return out


# --- the balance across the mixer ---------------------------------------------------------


@dataclass(frozen=True)
class GaugeErrors:
    """Each gauge's random error (sd) and calibration tolerance: fractions of the
    reading for the flows and feeders, kg/m3 for the densities."""

    flow_sd: float = 0.01
    flow_tolerance: float = 0.005
    density_sd_kg_m3: float = 5.0
    density_tolerance_kg_m3: float = 5.0
    binder_sd: float = 0.02
    binder_tolerance: float = 0.01
    water_sd: float = 0.02
    water_tolerance: float = 0.005

    @classmethod
    def from_settings(cls, settings: InstrumentTuning) -> GaugeErrors:
        return cls(
            flow_sd=settings.flow_sd_pct / 100.0,
            flow_tolerance=settings.flow_tolerance_pct / 100.0,
            density_sd_kg_m3=settings.density_sd_kg_m3,
            density_tolerance_kg_m3=settings.density_tolerance_kg_m3,
            binder_sd=settings.binder_sd_pct / 100.0,
            binder_tolerance=settings.binder_tolerance_pct / 100.0,
            water_sd=settings.water_sd_pct / 100.0,
            water_tolerance=settings.water_tolerance_pct / 100.0,
        )


def _relative(value: float, sd: float, tolerance: float, floor: float) -> rc.Reading:
    scale = max(abs(value), floor)
    return rc.Reading(value, sd * scale, tolerance * abs(value))


def flow_measurements(
    measure: Measure, recipe: Recipe, errors: GaugeErrors
) -> rc.FlowMeasurements | None:
    """This cycle's redundant flow readings, or None when any of them is unusable (the
    balance is not judged on a bad reading)."""
    tags = [
        rc.FEED_FLOW,
        rc.FEED_DENSITY,
        rc.WATER_FLOW,
        rc.PASTE_FLOW,
        rc.PASTE_DENSITY,
        *(rc.binder_rate_tag(name) for name in recipe.component_names),
    ]
    values = {tag: measure(tag) for tag in tags}
    if not all(m.usable for m in values.values()):
        return None

    def flow(tag: str, sd: float, tolerance: float, floor: float) -> rc.Reading:
        return _relative(values[tag].value, sd, tolerance, floor)

    def density(tag: str) -> rc.Reading:
        return rc.Reading(
            values[tag].value, errors.density_sd_kg_m3, errors.density_tolerance_kg_m3
        )

    return rc.FlowMeasurements(
        feed_flow_m3_h=flow(rc.FEED_FLOW, errors.flow_sd, errors.flow_tolerance, _FLOW_FLOOR_M3_H),
        feed_density_kg_m3=density(rc.FEED_DENSITY),
        water_flow_m3_h=flow(
            rc.WATER_FLOW, errors.water_sd, errors.water_tolerance, _FLOW_FLOOR_M3_H
        ),
        paste_flow_m3_h=flow(
            rc.PASTE_FLOW, errors.flow_sd, errors.flow_tolerance, _FLOW_FLOOR_M3_H
        ),
        paste_density_kg_m3=density(rc.PASTE_DENSITY),
        binder_t_h={
            c.name: flow(
                rc.binder_rate_tag(c.name),
                errors.binder_sd,
                errors.binder_tolerance,
                _BINDER_FLOOR_T_H,
            )
            for c in recipe.binder
            if c.fraction > 0.0
        },
        binder_sg={c.name: c.specific_gravity for c in recipe.binder if c.fraction > 0.0},
    )


def steady_step(
    since: datetime | None,
    *,
    producing: bool,
    in_band: bool,
    holding: bool,
    now: datetime,
    settle_s: float,
) -> tuple[datetime | None, bool]:
    """When the balance across the mixer is judged: ``(since, judge)`` for this cycle.

    Steady production begins at the first cycle the paste is in band (Cw and Bw) while
    the plant produces on its feed (a start's water has been displaced) and lasts until
    it stops producing (a stop, a flush, a feed gauge's fallback). It is judged once it
    has lasted ``settle_s`` (the mixer and the transport dead times worked through),
    except in a cycle that ``holding`` (a feeder refilling, a reading unusable): that
    cycle holds the filter without ending the steady production, and a reading out of
    band later on is judged like any other.
    """
    if not producing:
        return None, False
    if since is None:
        return (now if in_band else None), False
    return since, (now - since).total_seconds() >= settle_s and not holding


def disagreement_config(settings: InstrumentTuning, cycle_s: float) -> rc.DisagreementConfig:
    """The persistence filter of the settings: averaged over ``time_constant_s``, a
    false alarm in 8 plant hours of clean noise at ``false_alarms_per_8h``; a gap in the
    judging shorter than the averaging time keeps the average."""
    return rc.DisagreementConfig(
        time_constant_s=settings.time_constant_s,
        false_alarm_probability=settings.false_alarms_per_8h,
        horizon_s=8.0 * 3600.0,
        sample_period_s=cycle_s,
        # A hold shorter than the averaging (a feeder's refill) keeps the average.
        max_gap_s=settings.time_constant_s,
    )


@dataclass(frozen=True)
class BalanceCheck:
    """The "instruments disagree" check across cycles (plant-wide: the gauges outlive
    a pour), as a value: :meth:`observe` gives the check after one more cycle. Feed it
    None when the plant is not at steady production or a gauge is bad (the filter
    holds)."""

    config: rc.DisagreementConfig
    errors: GaugeErrors
    state: rc.DisagreementState = field(default_factory=rc.DisagreementState.initial)
    status: rc.DisagreementStatus | None = None
    reconciliation: rc.FlowReconciliation | None = None

    def observe(self, measurements: rc.FlowMeasurements | None, now: datetime) -> BalanceCheck:
        reconciliation = None
        if measurements is not None:
            try:
                reconciliation = rc.reconcile_flows(measurements)
            except (InvalidInput, ValueError, ArithmeticError):  # not judged this cycle
                reconciliation = None
        state, status = rc.update_disagreement(self.state, reconciliation, now, self.config)
        return replace(self, state=state, status=status, reconciliation=reconciliation)

    def condition(self) -> Condition | None:
        """The alarm condition (None before any judgement: the alarm keeps its state)."""
        status = self.status
        if status is None or (status.held and status.samples == 0):
            return None
        return Condition(status.alarm, status.detail if status.alarm else "")

    def residual_mass_t_h(self) -> float | None:
        """This cycle's mass balance residual (in - out), None when not judged."""
        rec = self.reconciliation
        if rec is None:
            return None
        value = rec.residual_mass_t_h
        return value if math.isfinite(value) else None

    def statistic_ratio(self) -> float | None:
        """What the alarm judges over its threshold (1 = alarm): the averaged residuals'
        distance beyond what in-tolerance offsets explain (below the clear threshold,
        where that is not computed, the distance itself, which is smaller still)."""
        status = self.status
        if status is None or status.samples == 0 or status.threshold <= 0.0:
            return None
        beyond = status.statistic_beyond_tolerance
        return (status.statistic if beyond is None else beyond) / status.threshold


def instruments_view(
    decision: FallbackDecision | None, balance: BalanceCheck | None
) -> dict[str, object]:
    """What the status shows of the instruments: where the binder comes from this cycle
    (None: no pour producing), and the balance across the mixer (None: check off)."""
    source = None
    if decision is not None:
        source = {
            "mode": decision.mode.value,
            "held": decision.held,
            "hold_left_s": decision.hold_left_s,
            "reason": decision.reason,
        }
    check = None
    if balance is not None:
        status = balance.status
        check = {
            "judged": status is not None and not status.held,
            "alarm": bool(status is not None and status.alarm),
            "disagreement": balance.statistic_ratio(),
            "residual_mass_t_h": balance.residual_mass_t_h(),
            "most_likely": None if status is None or not status.alarm else status.most_likely,
            "indistinguishable": []
            if status is None or not status.alarm
            else list(status.indistinguishable),
            "samples": 0 if status is None else status.samples,
        }
    return {"binder_source": source, "balance": check}
