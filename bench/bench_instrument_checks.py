"""Instrument checks on the harder plant: when does the service name a wrong instrument?

Pure and in-process on a fake clock, on the harder plant of ``bench_control_quality.py``
(:data:`bench_control_quality.HARDER`: transport dead times, scales and meters off
within their tolerances, density and flow noise, the feed density random walk always
on) under the same closed loop (:class:`bench_control_quality.ClosedLoop`: the control
law every 1 s, setpoints written as the supervisor writes them).

**"Instruments disagree"** runs exactly as the supervisor runs it
(``Supervisor._check_balance``): every cycle,
``service.operations.instruments.flow_measurements`` of the readings the service sees,
``BalanceCheck.observe`` with ``disagreement_config(InstrumentSettings(), cycle_s)`` and
``GaugeErrors.from_settings(InstrumentSettings())`` (the settings' defaults), judged
at steady production as ``service.operations.instruments.steady_step`` decides (the
same function): from the first paste in band while the plant produces on its feed,
for ``balance_settle_s`` (60 s); a feeder refilling or a reading unusable holds the
filter for that cycle without ending steady production.

* clean: 8 plant hours with no fault: the number of alarms raised (false alarms; target
  none), the largest averaged statistic D over its threshold h, and the largest
  distance beyond what within-tolerance offsets explain over h (the alarm's figure).
* faults, appearing 10 minutes into the window (the filter settled on clean data): the
  paste density gauge +2 %, the feed density gauge +2 %, the slag feeder delivering 93 %
  of its setpoint with its scale reading true (the PLC is sent 93 %), and with its scale
  reading the setpoint (a scale bias of +7.5 %): plant seconds and paste m3 from the
  onset to the alarm, the gauge it names most likely, the ones the balances cannot
  tell from it, and its estimated bias. After an alarm the check runs 15 more minutes
  (does it hold?) and then stops judging, to keep the run short.
* the recipe's tailings Gs 3 % above the plant's, from the start: the balances close by
  design (no Gs in them), so no flow alarm is expected.

**Lab samples** (clean, paste gauge +2 %, Gs +3 %, the runs that last 8 hours): a sample
is cast every ``--cast-every-m3`` of paste (76 m3: ACI 301's one test per about 100
yd3), a 76 x 152 mm cylinder of the true paste in the mixer at that moment; its lab
result (``service.core.lab.make_lab_result``: wet and dry mass, mould volume) carries
lab noise: Cw sd ``--lab-cw-sd`` points (sampling and oven drying of a fresh sample, so
no bound water) and bulk density sd ``--lab-density-sd`` kg/m3 (mould filling and
volume). The recorded paste density beside it is the gauge's mean over the minute
before casting (a history minute). ``service.core.reconcile.reconcile_gs`` runs on the
first n samples for n = 2, 3, ..., with the Cw alone and with the bulk density too; the
figures are the first n at which the error is *shown* (the Gs interval excludes the
recipe's Gs, or the gauge bias interval excludes 0) and *named* (verdict
``tailings_gs`` or ``density_gauge`` with that interval), in samples and m3. The
seeded run's count is printed beside the distribution over ``--draws`` redraws of the
lab noise on the same cast paste (median and 90th percentile; "> N" when not within the
N samples cast) and beside ``samples_to_name_gs_error`` (90 % power).

Run: ``.venv/bin/python bench/bench_instrument_checks.py [--seed 7] [--hours 8]
[--cast-every-m3 76] [--lab-cw-sd 0.3] [--lab-density-sd 15] [--draws 400] [--jobs 2]
[--quick]``
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import bench_control_quality as cq

from service.core import diversion as dv
from service.core import instruments as ins
from service.core import lab
from service.core import reconcile as rc
from service.core.control import law as control
from service.settings import InstrumentSettings
from service.simulator import dynamics as sim

SETTINGS = InstrumentSettings()
BALANCE_SETTLE_S = 60.0  # SupervisorConfig.balance_settle_s
ONSET_S = cq.WARMUP_S + 600.0  # a fault appears 10 min into the window
ALARM_WATCH_S = 900.0  # after an expected alarm, judge this long, then stop judging
STEADY_FROM_S = ONSET_S  # the start-up is over: the maxima of the statistics from here
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # the plant clock's origin
PLANT = cq.HARDER
FAULT_BIAS = 0.02  # a gauge 2 % off
FEEDER_DELIVERY = 0.93

BINDER_SG_BLEND = 1.0 / sum(f / cq.BINDER_SG[c] for c, f in cq.BLEND.items())
NOMINAL_PASTE_KG_M3 = rc.saturated_density_kg_m3(
    cq.RECIPE_CW, rc.solids_sg(PLANT.params.tailings_gs, cq.RECIPE_BW, BINDER_SG_BLEND)
)
MOULD_CM3 = lab.cylinder_volume_cm3(76.2, 152.4)  # a 3 x 6 in cylinder


@dataclass(frozen=True)
class Fault:
    """What goes wrong: instrument errors in force from ``ONSET_S`` (replacing the
    plant's), the PLC sent ``delivery`` x the binder setpoint from then on (a feeder
    short of its setpoint with its scale reading true), the recipe's Gs off from the
    start. ``names``: the error the lab should name (``reconcile_gs``'s verdict)."""

    key: str
    title: str
    errors: sim.InstrumentErrors | None = None
    delivery: Mapping[str, float] = field(default_factory=dict)
    gs_error: float = 0.0
    long: bool = False  # runs the full --hours and casts lab samples
    names: str | None = None  # "tailings_gs" or "density_gauge"
    expect_alarm: bool = False

    @property
    def onset_s(self) -> float:
        return ONSET_S if self.errors is not None or self.delivery else 0.0


FAULTS: tuple[Fault, ...] = (
    Fault("clean", "clean noise, feed density walk", long=True),
    Fault(
        "paste+2%",
        f"paste density gauge +2 % (+{FAULT_BIAS * NOMINAL_PASTE_KG_M3:.1f} kg/m3)",
        errors=replace(PLANT.errors, paste_density_bias_kg_m3=FAULT_BIAS * NOMINAL_PASTE_KG_M3),
        long=True,
        names="density_gauge",
        expect_alarm=True,
    ),
    Fault(
        "feed+2%",
        f"feed density gauge +2 % (+{FAULT_BIAS * PLANT.params.feed_density_kg_m3:.0f} kg/m3)",
        errors=replace(
            PLANT.errors, feed_density_bias_kg_m3=FAULT_BIAS * PLANT.params.feed_density_kg_m3
        ),
        expect_alarm=True,
    ),
    Fault(
        "slag93-true",
        "slag feeder 93 %, scale reads true",
        errors=replace(PLANT.errors, slag_scale_bias_pct=0.0),
        delivery={"slag": FEEDER_DELIVERY},
    ),
    Fault(
        "slag93-sp",
        "slag feeder 93 %, scale reads setpoint",
        errors=replace(PLANT.errors, slag_scale_bias_pct=100.0 * (1.0 / FEEDER_DELIVERY - 1.0)),
        expect_alarm=True,
    ),
    Fault("gs+3%", "recipe Gs +3 % (true 2.8)", gs_error=0.03, long=True, names="tailings_gs"),
)


@dataclass(frozen=True)
class LabPlan:
    cast_every_m3: float = 76.0
    cw_sd: float = 0.003  # fraction (0.3 points of Cw)
    density_sd_kg_m3: float = 15.0
    gauge_window_s: float = 60.0
    draws: int = 400


@dataclass(frozen=True)
class Cast:
    """One sample cast: the true paste and what the plant recorded."""

    t_s: float
    m3: float  # paste pumped since the start
    true_cw: float
    true_density_kg_m3: float
    gauge_density_kg_m3: float  # the gauge's mean over the minute before casting


@dataclass(frozen=True)
class Alarm:
    at_s: float  # plant seconds after the onset
    m3: float  # paste pumped since the onset
    most_likely: str | None
    others: tuple[str, ...]
    bias: float | None  # the most likely gauge's estimated bias, its units
    bias_pct: float | None
    detail: str


@dataclass(frozen=True)
class Detection:
    fault: Fault
    hours_run: float
    hours_judged: float
    raised_at_s: tuple[float, ...]  # plant seconds from the run request, every raise
    cleared: int
    first: Alarm | None  # the first alarm at or after the onset
    held_through_watch: bool | None  # None: no alarm after the onset
    max_ratio: float  # D / h, judged cycles from STEADY_FROM_S on
    max_beyond: float  # distance beyond tolerance / h, the same cycles
    threshold: float
    casts: tuple[Cast, ...]
    recipe_gs: float
    final_slag_factor: float


def flow_check(
    fault: Fault, *, seed: int, hours: float, plan: LabPlan, plant: cq.PlantModel = PLANT
) -> Detection:
    """One run of ``plant`` with ``fault``; the balance check as the supervisor runs it
    and the lab samples cast (long runs only)."""
    recipe = cq.make_recipe(fault.gs_error, plant)
    loop = cq.ClosedLoop(plant, control.ControlConfig(), recipe, seed=seed, walk=True)
    balance = ins.BalanceCheck(
        ins.disagreement_config(SETTINGS, cq.CONTROL_PERIOD_S),
        ins.GaugeErrors.from_settings(SETTINGS),
    )
    onset = fault.onset_s
    base = sim.SimControls(instrument_errors=plant.errors)
    faulted = base if fault.errors is None else replace(base, instrument_errors=fault.errors)

    def controls_at(t: float) -> sim.SimControls:
        return faulted if t >= onset else base

    end_s = cq.WARMUP_S + hours * 3600.0
    n_steps = round(end_s / cq.PLANT_DT_S)
    components = set(recipe.component_names)
    judged = cleared = 0
    raised_at: list[float] = []
    first: Alarm | None = None
    held: bool | None = None
    stop_judging_at = math.inf
    steady_since: datetime | None = None
    max_ratio = max_beyond = 0.0
    threshold = math.nan
    pumped = pumped_at_onset = 0.0
    gauge_minute: deque[float] = deque(maxlen=round(plan.gauge_window_s / cq.CONTROL_PERIOD_S))
    casts: list[Cast] = []
    next_cast_m3 = plan.cast_every_m3 if fault.long else math.inf

    while loop.k < n_steps:
        t = loop.t
        if fault.delivery and t >= onset:
            loop.delivery = dict(fault.delivery)
        loop.control_step()
        out, inputs = loop.out, loop.inputs
        assert out is not None and inputs is not None
        gauge_minute.append(loop.seen["paste_density_pv"])
        # Supervisor._check_balance (the bench never falls back to the paste flow meter).
        in_band = all(
            dv.in_band(measured, target, solids=solids, config=cq.BANDS) is True
            for measured, target, solids in (
                (out.measured_solids_fraction, recipe.solids_fraction, True),
                (out.measured_binder_ratio, recipe.binder_ratio, False),
            )
        )
        steady_since, judge = ins.steady_step(
            steady_since,
            producing=(
                out.mode is control.ControlMode.ACTIVE
                and loop.sim.plc.mode is not sim.PlantMode.FLUSHING
            ),
            in_band=in_band,
            holding=bool(out.stale_inputs) or bool(inputs.refilling & components),
            now=EPOCH + timedelta(seconds=t),
            settle_s=BALANCE_SETTLE_S,
        )
        settled = judge and t < stop_judging_at
        measurements = (
            ins.flow_measurements(loop.measure, recipe, balance.errors) if settled else None
        )
        balance = balance.observe(measurements, EPOCH + timedelta(seconds=t))
        status = balance.status
        assert status is not None
        threshold = status.threshold
        if not status.held:
            judged += 1
            if t >= STEADY_FROM_S:
                max_ratio = max(max_ratio, status.statistic / status.threshold)
                beyond = status.statistic_beyond_tolerance or 0.0
                max_beyond = max(max_beyond, beyond / status.threshold)
        if status.raised:
            raised_at.append(t)
            if first is None and t >= onset:
                suspect = next((s for s in status.suspects if s.name == status.most_likely), None)
                first = Alarm(
                    at_s=t - onset,
                    m3=pumped - pumped_at_onset,
                    most_likely=status.most_likely,
                    others=tuple(n for n in status.indistinguishable if n != status.most_likely),
                    bias=None if suspect is None else suspect.bias,
                    bias_pct=None if suspect is None else suspect.bias_pct_of_reading,
                    detail=status.detail,
                )
                held = True
                if fault.expect_alarm:  # seen: watch it a while, then stop judging
                    stop_judging_at = t + ALARM_WATCH_S
        if status.cleared:
            cleared += 1
            if first is not None and t < stop_judging_at:
                held = False

        for t_next, state in loop.plant_steps(controls_at, n_steps):
            if state.plc.mode is not sim.PlantMode.RUNNING:
                continue
            pumped += state.plant.paste_flow_m3_h * cq.PLANT_DT_S / 3600.0
            if t_next <= onset:
                pumped_at_onset = pumped
            if pumped >= next_cast_m3:
                mixer = state.plant.mixer
                casts.append(
                    Cast(
                        t_s=t_next,
                        m3=pumped,
                        true_cw=sim.solids_fraction(mixer),
                        true_density_kg_m3=sim.mix_density_kg_m3(mixer, loop.plant_params),
                        gauge_density_kg_m3=statistics.fmean(gauge_minute),
                    )
                )
                next_cast_m3 += plan.cast_every_m3

    return Detection(
        fault=fault,
        hours_run=end_s / 3600.0,
        hours_judged=judged * cq.CONTROL_PERIOD_S / 3600.0,
        raised_at_s=tuple(raised_at),
        cleared=cleared,
        first=first,
        held_through_watch=held,
        max_ratio=max_ratio,
        max_beyond=max_beyond,
        threshold=threshold,
        casts=tuple(casts),
        recipe_gs=recipe.tailings_sg,
        final_slag_factor=loop.state.binder_factor("slag"),
    )


# --- the lab ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabCounts:
    """First n (samples) at which the error was shown / named; None: not within the casts."""

    shown_cw: int | None
    named_cw: int | None
    shown_density: int | None
    named_density: int | None


def lab_samples(
    casts: Sequence[Cast], recipe_gs: float, plan: LabPlan, rng: random.Random
) -> list[rc.PasteSample]:
    """Each cast's lab result (wet and dry mass of a fresh sample, mould volume, with the
    lab's noise) beside the recorded gauge density, as ``reconcile_gs`` takes them."""
    out = []
    for i, c in enumerate(casts):
        cast_at = EPOCH + timedelta(seconds=c.t_s)
        wet_g = c.true_density_kg_m3 / 1000.0 * MOULD_CM3
        lab_cw = c.true_cw + rng.gauss(0.0, plan.cw_sd)
        lab_density = c.true_density_kg_m3 + rng.gauss(0.0, plan.density_sd_kg_m3)
        result = lab.make_lab_result(
            f"S{i + 1:03d}",
            cast_at,
            tested_at=cast_at + timedelta(days=1),  # oven-dried overnight
            wet_mass_g=wet_g,
            dry_mass_g=wet_g * lab_cw,
            volume_cm3=wet_g / lab_density * 1000.0,
        )
        assert result.solids_fraction is not None and result.bulk_density_kg_m3 is not None
        out.append(
            rc.PasteSample(
                sample_id=result.sample_id,
                lab_solids_fraction=result.solids_fraction,
                gauge_density_kg_m3=c.gauge_density_kg_m3,
                binder_ratio=cq.RECIPE_BW,
                binder_sg=BINDER_SG_BLEND,
                tailings_sg=recipe_gs,
                lab_density_kg_m3=result.bulk_density_kg_m3,
            )
        )
    return out


def _shown(rec: rc.GsReconciliation, kind: str | None) -> bool:
    if kind == "density_gauge":
        return not rec.density_bias.contains(0.0)
    if kind == "tailings_gs":
        return not rec.tailings_sg.contains(rec.assumed_tailings_sg)
    return rec.verdict not in ("consistent", "insufficient")  # any error, for a clean run


def _named(rec: rc.GsReconciliation, kind: str | None) -> bool:
    if kind is None:  # a clean run: any named error is a false one
        return rec.verdict in ("tailings_gs", "density_gauge")
    return rec.verdict == kind and _shown(rec, kind)


def lab_counts(samples: Sequence[rc.PasteSample], kind: str | None) -> LabCounts:
    """reconcile_gs on the first n samples, n = 2, 3, ...: the first n showing and naming
    the error, from the Cw alone and with the lab's bulk density."""
    found: dict[str, int | None] = dict.fromkeys(("sc", "nc", "sd", "nd"))
    cw_only = [replace(s, lab_density_kg_m3=None) for s in samples]
    for n in range(2, len(samples) + 1):
        for variant, pool in (("c", cw_only), ("d", samples)):
            if found["s" + variant] is not None and found["n" + variant] is not None:
                continue
            rec = rc.reconcile_gs(pool[:n])
            if found["s" + variant] is None and _shown(rec, kind):
                found["s" + variant] = n
            if found["n" + variant] is None and _named(rec, kind):
                found["n" + variant] = n
    return LabCounts(found["sc"], found["nc"], found["sd"], found["nd"])


@dataclass(frozen=True)
class LabFigures:
    fault: Fault
    casts: int
    seeded: LabCounts
    draws: tuple[LabCounts, ...]
    predicted: int | None  # samples_to_name_gs_error, 90 % power (Gs faults)
    final: tuple[rc.GsReconciliation | None, rc.GsReconciliation | None]  # all samples


def lab_figures(d: Detection, *, seed: int, plan: LabPlan) -> LabFigures:
    rng = random.Random(seed + 3_000_017)
    samples = lab_samples(d.casts, d.recipe_gs, plan, rng)
    seeded = lab_counts(samples, d.fault.names)
    final: tuple[rc.GsReconciliation | None, rc.GsReconciliation | None] = (None, None)
    if len(samples) >= 2:
        cw_only = [replace(s, lab_density_kg_m3=None) for s in samples]
        final = (rc.reconcile_gs(cw_only), rc.reconcile_gs(samples))
    draws = tuple(
        lab_counts(lab_samples(d.casts, d.recipe_gs, plan, rng), d.fault.names)
        for _ in range(plan.draws)
    )
    predicted = None
    if d.fault.gs_error and d.casts:
        gauge_sd = PLANT.params.paste_density_noise_kg_m3 / math.sqrt(plan.gauge_window_s)
        predicted = rc.samples_to_name_gs_error(
            d.fault.gs_error,
            lab_solids_sd=plan.cw_sd,
            gauge_density_kg_m3=statistics.fmean(c.gauge_density_kg_m3 for c in d.casts),
            binder_ratio=cq.RECIPE_BW,
            binder_sg=BINDER_SG_BLEND,
            tailings_sg=d.recipe_gs,
            gauge_density_sd_kg_m3=gauge_sd,
        )
    return LabFigures(d.fault, len(d.casts), seeded, draws, predicted, final)


# --- reporting -------------------------------------------------------------------------------


def fmt_n(n: int | None, cast: int, every_m3: float) -> str:
    return f"> {cast}" if n is None else f"{n} ({n * every_m3:.0f} m3)"


def distribution(values: Sequence[int | None], cast: int) -> str:
    """Median and 90th percentile of first-n counts; beyond the casts counts as > cast."""
    big = cast + 1
    ordered = sorted(big if v is None else v for v in values)
    if not ordered:
        return "-"

    def at(q: float) -> str:
        v = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
        return f">{cast}" if v == big else str(v)

    within = sum(v is not None for v in values)
    return f"{at(0.5)}/{at(0.9)} ({100.0 * within / len(values):.0f} %)"


def print_flow_table(results: Sequence[Detection]) -> None:
    header = (
        f"{'run (a fault from 10 min into the window)':<44} {'h':>4}  {'raised (s)':<16} "
        f"{'after onset':<17} {'names: most likely (cannot tell from)':<54} "
        f"{'its bias estimate':<22} {'steady max D_tol/h (D/h)'}"
    )
    print(header)
    print("-" * len(header))
    for d in results:
        a = d.first
        times = d.raised_at_s
        raised = f"{len(times)} (first {times[0]:.0f})" if times else "none"
        if a is None or not d.fault.expect_alarm:
            after = names = bias = "-"
        else:
            after = f"{a.at_s:.0f} s, {a.m3:.1f} m3"
            names = f"{a.most_likely} ({', '.join(a.others) or 'no other'})"
            unit = " kg/m3" if "density" in (a.most_likely or "") else ""
            pct_ = "" if a.bias_pct is None else f" ({a.bias_pct:+.1f} %)"
            bias = "-" if a.bias is None else f"{a.bias:+.3g}{unit}{pct_}"
        print(
            f"{d.fault.title:<44} {d.hours_run:4.1f}  {raised:<16} {after:<17} {names:<54} "
            f"{bias:<22} {d.max_beyond:.2f} ({d.max_ratio:.2f})"
        )


def beyond_tolerance(errors: sim.InstrumentErrors, settings: InstrumentSettings) -> list[str]:
    """The plant's calibration errors that exceed the tolerances the settings state."""
    limits = {
        "cement_scale_bias_pct": settings.binder_tolerance_pct,
        "slag_scale_bias_pct": settings.binder_tolerance_pct,
        "flyash_scale_bias_pct": settings.binder_tolerance_pct,
        "feed_flow_bias_pct": settings.flow_tolerance_pct,
        "paste_flow_bias_pct": settings.flow_tolerance_pct,
        "feed_density_bias_kg_m3": settings.density_tolerance_kg_m3,
        "paste_density_bias_kg_m3": settings.density_tolerance_kg_m3,
    }
    return [
        f"{name} {getattr(errors, name):+g} (tolerance {limit:g})"
        for name, limit in limits.items()
        if abs(getattr(errors, name)) > limit
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the plant and the lab")
    parser.add_argument(
        "--hours", type=float, default=None, help="plant hours of the long runs (default 8; "
        "2 with --quick); the other faults run 2 h (1 h with --quick)"
    )  # fmt: skip
    parser.add_argument("--cast-every-m3", type=float, default=LabPlan.cast_every_m3)
    parser.add_argument(
        "--lab-cw-sd", type=float, default=100.0 * LabPlan.cw_sd, help="points of Cw"
    )
    parser.add_argument("--lab-density-sd", type=float, default=LabPlan.density_sd_kg_m3)
    parser.add_argument(
        "--draws", type=int, default=None, help="lab noise redraws (default 400; 50 quick)"
    )
    parser.add_argument("--jobs", type=int, default=cq.default_jobs())
    parser.add_argument("--quick", action="store_true", help="short runs, few redraws")
    args = parser.parse_args(argv)
    hours = args.hours if args.hours is not None else (2.0 if args.quick else 8.0)
    short_hours = min(hours, 1.0 if args.quick else 2.0)
    plan = LabPlan(
        cast_every_m3=args.cast_every_m3,
        cw_sd=args.lab_cw_sd / 100.0,
        density_sd_kg_m3=args.lab_density_sd,
        draws=args.draws if args.draws is not None else (50 if args.quick else 400),
    )
    if hours <= ONSET_S / 3600.0 or plan.cast_every_m3 <= 0 or plan.draws < 0:
        parser.error("--hours must exceed the onset (0.25 h), casts and draws be positive")

    s = SETTINGS
    cfg = ins.disagreement_config(s, cq.CONTROL_PERIOD_S)
    print(f"{cq.machine()}; seed {args.seed}, {args.jobs} worker process(es)")
    print(f"Instrument checks on the {PLANT.title}: {PLANT.describe()}; feed density walk on")
    print(
        f'"instruments disagree" with the service defaults (InstrumentSettings): averaged '
        f"over {s.time_constant_s:g} s, false alarm {s.false_alarms_per_8h:g} per 8 h -> "
        f"threshold h = {cfg.threshold(2):.1f} "
        f"(chi2, 2 balances); sd / tolerance: flows {s.flow_sd_pct:g} / "
        f"{s.flow_tolerance_pct:g} %, densities {s.density_sd_kg_m3:g} / "
        f"{s.density_tolerance_kg_m3:g} kg/m3, binder {s.binder_sd_pct:g} / "
        f"{s.binder_tolerance_pct:g} %, water {s.water_sd_pct:g} / {s.water_tolerance_pct:g} %; "
        f"judged at steady production (instruments.steady_step: producing on the feed "
        f"{BALANCE_SETTLE_S:g} s from the first paste in band; a refill or a stale input "
        f"holds); clears below {cfg.clear_threshold(2):.1f} once the average has run "
        f"{cfg.time_constant_s:g} s, restarts after a gap over {cfg.max_gap_s:g} s"
    )
    outside = beyond_tolerance(PLANT.errors, s)
    if outside:
        print(
            "WARNING: the plant's own calibration errors exceed the settings' tolerances, "
            "so the clean runs are not clean: " + ", ".join(outside)
        )
    print(
        f"Long runs (clean, paste gauge, Gs) {hours:g} plant h, the others {short_hours:g} h; "
        f"paste {cq.PASTE_FLOW_M3_H:g} m3/h, recipe Cw {cq.RECIPE_CW:.0%} Bw {cq.RECIPE_BW:.0%}"
        f" (paste about {NOMINAL_PASTE_KG_M3:.0f} kg/m3)"
    )
    print()

    started = time.perf_counter()
    cpu_started = cq.cpu_s()
    calls = [_Check(f, args.seed, hours if f.long else short_hours, plan) for f in FAULTS]
    results = cq.run_all(args.jobs, calls)
    print_flow_table(results)
    print(
        "raised: alarms raised, the first at plant seconds from the run request; after onset: "
        "the first alarm after the fault appeared, plant seconds and paste m3 pumped "
        "meanwhile (faults expected to alarm only); its bias estimate: what the alarm "
        "says of the named gauge (reading - truth); D_tol/h: the averaged residuals' "
        "distance beyond what within-tolerance offsets explain over the threshold (the "
        "alarm's test: > 1 raises), D/h: the statistic without the tolerances, both the "
        f"largest from {STEADY_FROM_S:.0f} s on (the start-up over)."
    )
    for d in results:
        notes = [
            f"judged {d.hours_judged:.2f} of {d.hours_run:.2f} h",
            "raised at " + (", ".join(f"{t:.0f}" for t in d.raised_at_s) or "-") + " s",
            f"cleared {d.cleared}",
        ]
        if d.first is not None and d.fault.expect_alarm:
            notes.append(
                "held through the 15 min watched"
                if d.held_through_watch
                else "cleared within the 15 min watched"
            )
            notes.append(f'"{d.first.detail}"')
        if d.fault.delivery:
            notes.append(f"the law's slag ratio factor ends at {d.final_slag_factor:.3f}")
        print(f"  {d.fault.key:<15} " + "; ".join(notes))
    print()

    lab_started = time.perf_counter()
    print(
        f"Lab samples: one every {plan.cast_every_m3:g} m3, lab Cw sd {100 * plan.cw_sd:g} "
        f"pt (fresh sample, oven-dried), bulk density sd {plan.density_sd_kg_m3:g} kg/m3 "
        f"({MOULD_CM3:.0f} cm3 mould); recorded density = the gauge's mean over the "
        f"{plan.gauge_window_s:g} s before casting; reconcile_gs at 95 % on n = 2, 3, ...; "
        f"seeded run, then median/p90 over {plan.draws} lab-noise redraws (share within the "
        "casts)"
    )
    header = (
        f"{'fault':<40} {'lab data':<12} {'cast':>4}  {'shown after':<12} {'named after':<12}"
        f"  {'redraws: shown':<18} {'named':<18} predicted"
    )
    print(header)
    print("-" * len(header))
    labs = [lab_figures(d, seed=args.seed, plan=plan) for d in results if d.fault.long]
    for f in labs:
        n, every = f.casts, plan.cast_every_m3
        rows = (
            ("Cw only", f.seeded.shown_cw, f.seeded.named_cw, "shown_cw", "named_cw"),
            ("Cw + dens.", f.seeded.shown_density, f.seeded.named_density, "shown_density",
             "named_density"),
        )  # fmt: skip
        for i, (label, shown, named, shown_key, named_key) in enumerate(rows):
            predicted = "-" if f.predicted is None or i else str(f.predicted)
            print(
                f"{f.fault.title if i == 0 else '':<40} {label:<12} {n:>4}  "
                f"{fmt_n(shown, n, every):<12} {fmt_n(named, n, every):<12}  "
                f"{distribution([getattr(c, shown_key) for c in f.draws], n):<18} "
                f"{distribution([getattr(c, named_key) for c in f.draws], n):<18} {predicted}"
            )
    for f in labs:
        for label, rec in zip(("Cw only", "Cw + dens."), f.final, strict=True):
            if rec is None:
                continue
            gs, bias = rec.tailings_sg, rec.density_bias
            print(
                f"  {f.fault.key:<9} {label:<10} n={len(rec.samples)}: {rec.verdict}; Gs "
                f"{gs.value:.3f} [{gs.low or math.nan:.3f}, {gs.high or math.nan:.3f}] (recipe "
                f"{rec.assumed_tailings_sg:.3f}, true {PLANT.params.tailings_gs:g}); gauge bias "
                f"{bias.value:+.1f} [{bias.low or math.nan:+.1f}, {bias.high or math.nan:+.1f}] "
                f"kg/m3; Akaike weight of the Gs {rec.gs_weight or math.nan:.2f}"
            )
    print(
        "shown after: the first n (and its m3) at which the interval excludes the recipe's Gs "
        "(Gs) or a gauge bias of 0 (gauge; any error for the clean run, which should show "
        "none); named after: reconcile_gs's verdict is that error; redraws: median/p90 of "
        "the same counts over the lab-noise redraws, in brackets the share found within the "
        "casts; predicted: samples_to_name_gs_error at 90 % power."
    )
    print()
    runs = len(calls)
    print(
        f"{runs} plant runs and the lab in {time.perf_counter() - started:.1f} s wall "
        f"(lab {time.perf_counter() - lab_started:.1f} s), {cq.cpu_s() - cpu_started:.1f} s "
        "CPU (all processes)"
    )
    clean = next(d for d in results if d.fault.key == "clean")
    steady_false = [t for t in clean.raised_at_s if t >= STEADY_FROM_S]
    print(
        f"false alarms in {clean.hours_run - STEADY_FROM_S / 3600.0:.2f} steady plant hours "
        f"of clean noise ({clean.hours_judged:.2f} h of the run judged): "
        f"{len(steady_false) or 'none'} (largest D_tol/h "
        f"{clean.max_beyond:.2f}); at the start-up: "
        f"{len(clean.raised_at_s) - len(steady_false) or 'none'}"
    )
    return 0


@dataclass(frozen=True)
class _Check:
    """One :func:`flow_check` call, picklable (a worker process runs it)."""

    fault: Fault
    seed: int
    hours: float
    plan: LabPlan

    def __call__(self) -> Detection:
        return flow_check(self.fault, seed=self.seed, hours=self.hours, plan=self.plan)


if __name__ == "__main__":
    sys.exit(main())
