"""The month's table: the two policies side by side, per stope and in all, with the
verdicts of the targets (binder saved at compliance)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .ceiling import PlantReach, binder_cost, ceiling
from .month import BINDER_SG, PRICE_PER_T, MonthConfig, MonthResult, StopeResult
from .schedule import trial_mix_design

DESIGN_PASS_PCT = 90.0  # the site's pass fraction (BACKFILL_DESIGN__PASS_FRACTION_PCT)
TOLERANCE_PT = 2.0  # a stope's true pass fraction may be this far below the design's
TARGET_SAVING_PCT = 20.0
WEAK_SHARE_PCT = 10.0  # a stope falls short when more of its paste than this is weak
# The largest slag fraction the lab's trial mixes tested (a design past it extrapolates).
SLAG_MAX_TESTED = max(m.blend.get("slag", 0.0) for m in trial_mix_design())


@dataclass(frozen=True)
class Verdict:
    saving_t_pct: float
    saving_cost_pct: float
    low_pass: tuple[str, ...]  # designed-policy stopes more than 2 points below the design
    short_designed: tuple[str, ...]
    short_fixed: tuple[str, ...]
    short_only_designed: tuple[str, ...]

    @property
    def met(self) -> bool:
        return (
            self.saving_t_pct >= TARGET_SAVING_PCT
            and not self.low_pass
            and not self.short_only_designed
        )


def _short(r: StopeResult) -> bool:
    return any(r.weak_pct(name) > WEAK_SHARE_PCT for name in r.volume)


def _min_pass(r: StopeResult) -> float:
    values = [r.true_pass_pct(name) for name in r.volume]
    return min(v for v in values if not math.isnan(v)) if values else math.nan


def verdict(fixed: MonthResult, designed: MonthResult) -> Verdict:
    saving_t = 100.0 * (1.0 - designed.binder_total_t / fixed.binder_total_t)
    saving_cost = 100.0 * (1.0 - designed.binder_cost / fixed.binder_cost)
    low = tuple(
        r.stope.name for r in designed.stopes if _min_pass(r) < DESIGN_PASS_PCT - TOLERANCE_PT
    )
    short_d = tuple(r.stope.name for r in designed.stopes if _short(r))
    short_f = tuple(r.stope.name for r in fixed.stopes if _short(r))
    return Verdict(
        saving_t,
        saving_cost,
        low,
        short_d,
        short_f,
        tuple(name for name in short_d if name not in short_f),
    )


def _fmt(value: float | None, spec: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, spec)
    )


def _cell(r: StopeResult, name: str) -> str:
    if name not in r.volume:
        return f"{'-':>23}"
    service = r.service_pass_pct.get(name)
    return (
        f"{_fmt(r.true_pass_pct(name), '6.2f')} {_fmt(r.cylinder_pass_pct(name), '5.1f')} "
        f"{_fmt(service, '5.1f')} {_fmt(r.weak_pct(name), '4.1f')}"
    )


def table(fixed: MonthResult, designed: MonthResult) -> list[str]:
    """The month's one table (per stope, then the totals), and the verdicts."""
    lines: list[str] = []
    head = (
        f"{'stope':<6} {'method':<11} {'B x L x H m':<14} {'plug/body kPa':>13} | "
        f"{'kg/m3':>5} {'true% cyl% svc% weak%':>23} {'plug true%':>10} | "
        f"{'kg/m3':>5} {'true% cyl% svc% weak%':>23} {'plug true%':>10}"
    )
    lines.append(
        f"{'':<48}| {'(a) fixed list, worst stope of each class':<41} | "
        f"{'(b) the service: per stope, recalibrated':<41}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    for a, b in zip(fixed.stopes, designed.stopes, strict=True):
        s = a.stope
        geometry = f"{s.width_m:g}x{s.length_m:g}x{s.height_m:g}"
        cells = [
            f"{_fmt(_mean_kg_m3(r), '5.1f')} {_cell(r, 'body')} "
            f"{_fmt(r.true_pass_pct('plug'), '10.2f')}"
            for r in (a, b)
        ]
        lines.append(
            f"{s.name:<6} {a.method:<11} {geometry:<14} {a.plug_kpa:>5.0f}/{a.body_kpa:<7.0f} | "
            f"{cells[0]} | {cells[1]}"
        )
    lines.append("-" * len(head))
    lines.append(f"{'':<34}{'(a) fixed list':>22} {'(b) the service':>22} {'(b)/(a)':>9}")
    rows: list[tuple[str, float, float, str]] = [
        ("binder t (placed + dumped)", fixed.binder_total_t, designed.binder_total_t, ".1f"),
        ("  cement t", fixed.binder_t.get("cement", 0.0), designed.binder_t.get("cement", 0.0),
         ".1f"),
        ("  slag t", fixed.binder_t.get("slag", 0.0), designed.binder_t.get("slag", 0.0), ".1f"),
        ("binder cost (cement 180, slag 90 /t)", fixed.binder_cost, designed.binder_cost,
         ",.0f"),
        ("binder kg per m3 placed", 1000 * fixed.binder_total_t / fixed.placed_m3,
         1000 * designed.binder_total_t / designed.placed_m3, ".2f"),
        ("binder cost per m3 placed", fixed.binder_cost / fixed.placed_m3,
         designed.binder_cost / designed.placed_m3, ".2f"),
        ("paste placed m3", fixed.placed_m3, designed.placed_m3, ",.0f"),
        ("dumped m3, true", fixed.dumped_m3, designed.dumped_m3, ".1f"),
        ("dumped m3, as recorded", fixed.dumped_record_m3, designed.dumped_record_m3, ".1f"),
        ("off-spec placed m3, true", fixed.off_spec_true_m3, designed.off_spec_true_m3, ".1f"),
        ("off-spec m3, as recorded", fixed.off_spec_record_m3, designed.off_spec_record_m3,
         ".1f"),
        ("pours", fixed.pours, designed.pours, ".0f"),
        ("pumping hours (plant)", fixed.pumping_h, designed.pumping_h, ".1f"),
        ("plant days, first pour to last result", fixed.plant_days, designed.plant_days, ".1f"),
        ("cylinders judged at requirement", fixed.cylinders, designed.cylinders, ".0f"),
        ("lab sheets entered", fixed.lab_sheets, designed.lab_sheets, ".0f"),
        ("calibrations proposed and approved", fixed.calibrations_approved,
         designed.calibrations_approved, ".0f"),
        ("API calls", fixed.api_calls, designed.api_calls, ".0f"),
        ("wall s (its own process)", fixed.wall_s, designed.wall_s, ".1f"),
    ]  # fmt: skip
    for label, x, y, spec in rows:
        ratio = f"{y / x:9.3f}" if x else f"{'-':>9}"
        lines.append(f"{label:<34}{format(x, spec):>22} {format(y, spec):>22} {ratio}")
    v = verdict(fixed, designed)
    lines.append("")
    lines.append(
        f"binder saved by (b): {v.saving_t_pct:.1f} % of the tonnes, {v.saving_cost_pct:.1f} % "
        f"of the cost (target >= {TARGET_SAVING_PCT:g} % of the tonnes)"
    )
    lines.append(
        f"(b) stopes whose true pass fraction is more than {TOLERANCE_PT:g} points below the "
        f"design's {DESIGN_PASS_PCT:g} %: {', '.join(v.low_pass) or 'none'}"
    )
    lines.append(
        f"stopes short (more than {WEAK_SHARE_PCT:g} % of their paste weaker than required): "
        f"(a) {', '.join(v.short_fixed) or 'none'}; (b) {', '.join(v.short_designed) or 'none'}"
        f"; short under (b) but met under (a): {', '.join(v.short_only_designed) or 'none'}"
    )
    lines.append("targets met" if v.met else "targets NOT met")
    return lines


def _mean_kg_m3(r: StopeResult) -> float:
    """Binder placed per m3, the mean of the stope's pours."""
    return sum(r.binder_kg_m3) / len(r.binder_kg_m3) if r.binder_kg_m3 else math.nan


def legend() -> Sequence[str]:
    return (
        "true%: the true pass fraction of the stope's cylinders against the body requirement "
        "at 28 d: the probability a cylinder of its paste passes (the twin's model and lab "
        "scatter), volume-weighted over every m3 placed (plug and body);",
        "cyl%: the cylinders the lab crushed that passed; svc%: the pass fraction the service "
        "states for the stope (GET /stopes/{id}/compliance); weak%: placed paste whose true "
        "median strength is below the requirement;",
        "plug true%: the same against the plug's 150 kPa at 7 d, over the plug's paste; "
        "kg/m3: binder per m3 placed, mean of the stope's pours.",
    )


def ceiling_lines(config: MonthConfig, fixed: MonthResult, designed: MonthResult) -> list[str]:
    """(b)'s pours dosed on the truth (``mine_month.ceiling``) beside both policies'
    binder placed: what the service's statistics cost, and the most any design could save
    on this month, in tonnes and in cost."""
    limits = (config.binder_pct_min / 100.0, config.binder_pct_max / 100.0)
    top = ceiling(
        designed.doses,
        config.truth,
        pass_fraction=DESIGN_PASS_PCT / 100.0,
        binder_ratio_limits=limits,
        tailings_sg=config.site.tailings_sg,
        binder_sg=BINDER_SG,
        reach=PlantReach(
            cw_low=config.site.cw_min_pct / 100.0,
            cw_high=config.site.cw_max_pct / 100.0,
            feed_solids_low=config.site.feed_solids_min_pct / 100.0,
            slag_max=SLAG_MAX_TESTED,
        ),
        price_per_t=PRICE_PER_T,
    )
    fixed_t = sum(d.binder_placed_kg for d in fixed.doses) / 1000.0
    fixed_cost = sum(binder_cost(d.blend, d.binder_placed_kg, PRICE_PER_T) for d in fixed.doses)
    if not fixed_t or not fixed_cost:
        return []

    def saved(value: float | None, of: float) -> float:
        return 100.0 * (1.0 - (math.nan if value is None else value) / of)

    return [
        f"binder placed, t: (a) {fixed_t:.1f}; (b) {top.service_placed_t:.1f}; (b)'s "
        f"{top.pours} pours dosed on the truth {top.truth_placed_t:.1f} (each recipe's Cw and "
        f"blend kept, Bw the least whose cylinders pass {DESIGN_PASS_PCT:g} % by the twin's "
        f"model, within Bw {config.binder_pct_min:g}-{config.binder_pct_max:g} %)",
        f"saved against (a), binder placed: (b) {saved(top.service_placed_t, fixed_t):.1f} %; "
        f"dosed on the truth {saved(top.truth_placed_t, fixed_t):.1f} % (the most a design on "
        f"these recipes could save, knowing the truth and with a plant that makes the recipe "
        f"exactly)",
        f"each pour's Cw and blend chosen on the truth too (Cw {config.site.cw_min_pct:g}-"
        f"{config.site.cw_max_pct:g} % and no drier than the stated wettest feed, "
        f"{config.site.feed_solids_min_pct:g} % solids, makes; slag up to the tested "
        f"{100 * SLAG_MAX_TESTED:g} %): the least tonnes {top.open_placed_t:.1f} t, "
        f"{saved(top.open_placed_t, fixed_t):.1f} % saved; the least cost "
        f"{top.cheapest_placed_t:.1f} t, {saved(top.cheapest_placed_t, fixed_t):.1f} % of the "
        f"tonnes and {saved(top.cheapest_cost, fixed_cost):.1f} % of the cost saved ((b): "
        f"{saved(top.service_cost, fixed_cost):.1f} % of the cost): the most any design "
        f"could save on this month",
    ]
