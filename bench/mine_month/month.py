"""A month of stopes on the twin, under one recipe policy.

The same month for every policy: the same stopes, the same schedule of pours (planned
from the volumes, so both policies pour the same paste at the same plant times), the same
feed day by day (solids and the tailings' true Gs), the same lab trial mixes for the
start calibration, the same random streams for the plant and the lab.

- ``fixed``: a recipe list sized for the worst stope of each class (plug, exposed body up
  to 25 m and above, unexposed body), designed once at the start with the service's
  optimiser on the start calibration at the site's pass fraction, never revised.
- ``designed``: every pour's recipe designed by the service for its own stope and stage
  (the stope's geometry in the request: the service computes the requirement), on the
  latest approved calibration, with the plant's spread the service pools from its pour
  records; the lab's results recalibrate it weekly (proposed, then approved).

Both run the lab loop: cylinders cast from every pour every ``cast_every_m3`` (two
samples, each crushed at 7 and 28 days), results entered in a daily lab sheet.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.core import pour_machine as pm
from service.simulator import HARDER_PROFILE_PATH
from service.simulator import dynamics as sim
from service.simulator.lab_twin import (
    Cylinder,
    PasteTruth,
    TrueStrength,
    break_cylinders,
    trial_mixes,
)
from service.simulator.profile import load_profile

from .ceiling import PourDose
from .plant_run import CastEvent, PourJob, PourOutcome, feed_params, run_pour
from .schedule import (
    BODY_DAYS,
    MONTH_STOPES,
    PLUG_DAYS,
    FeedDay,
    FeedDrift,
    Stope,
    fixed_class,
    trial_mix_design,
)
from .service_side import ApiError, Service, SiteStatement, running_service

POLICIES = ("fixed", "designed")
MONTH_START = datetime(2027, 3, 1, tzinfo=UTC)
BINDERS = [
    {"name": "cement", "specific_gravity": 3.15, "price_per_t": 180.0},
    {"name": "slag", "specific_gravity": 2.90, "price_per_t": 90.0, "max_fraction_pct": 80.0},
]
PRICE_PER_T = {"cement": 180.0, "slag": 90.0, "flyash": 60.0}
BINDER_SG = {"cement": 3.15, "slag": 2.90, "flyash": 2.30}
ENGINEER = "Mine engineer"


@dataclass(frozen=True)
class MonthConfig:
    policy: str
    seed: int = 7
    stopes: tuple[Stope, ...] = MONTH_STOPES
    truth: TrueStrength = field(default_factory=TrueStrength)
    drift: FeedDrift = field(default_factory=FeedDrift)
    site: SiteStatement = field(default_factory=SiteStatement)
    paste_flow_m3_h: float = 100.0
    pour_max_m3: float = 1800.0  # one pour a shift-day at most (18 h at 100 m3/h)
    gap_h: float = 2.0  # between pours: flush, changeover
    plug_hold_days: float = 7.0
    cast_every_m3: float = 200.0
    ages_days: tuple[float, ...] = (PLUG_DAYS, BODY_DAYS)
    recalibrate_every_days: float = 7.0
    binder_pct_min: float = 2.5
    binder_pct_max: float = 10.0
    step_s: float = 2.0
    # The design basis every design asks for (None: the site's, BACKFILL_DESIGN__BASIS,
    # a tolerance bound at 95 % confidence by default).
    design_basis: str | None = None
    lab_hour: int = 8  # the daily lab sheet goes in at this hour
    record_inputs: bool = False  # keep every value handed to the service (tests)


def short_month(policy: str, **changes: Any) -> MonthConfig:
    """The suite's month: two small stopes (about 300 m3), cast every 60 m3."""
    from .schedule import SHORT_STOPES

    return MonthConfig(policy=policy, stopes=SHORT_STOPES, cast_every_m3=60.0, **changes)


@dataclass(frozen=True)
class PlannedPour:
    index: int
    stope: Stope
    stage: str  # "plug" or "body"
    volume_m3: float
    start: datetime


def plan_pours(config: MonthConfig) -> list[PlannedPour]:
    """The schedule (policy-free): plugs in stope order; a stope's body once its plug has
    cured ``plug_hold_days``; a stage in pours of at most ``pour_max_m3``; a body whose
    plug has cured goes before the next plug."""
    flow = config.paste_flow_m3_h
    left = {(s.name, "plug"): s.plug_m3 for s in config.stopes}
    left |= {(s.name, "body"): s.body_m3 for s in config.stopes}
    ready: dict[str, datetime] = {}
    now = MONTH_START + timedelta(hours=6)
    out: list[PlannedPour] = []
    plugs = list(config.stopes)
    while any(v > 1e-6 for v in left.values()):
        bodies = sorted(
            (t, s) for s in config.stopes
            if (t := ready.get(s.name)) is not None and t <= now and left[(s.name, "body")] > 1e-6
        )  # fmt: skip
        if bodies:
            stope, stage = bodies[0][1], "body"
        elif plugs:
            stope, stage = plugs.pop(0), "plug"
        else:
            now = min(t for n, t in ready.items() if left[(n, "body")] > 1e-6)
            continue
        volume = min(left[(stope.name, stage)], config.pour_max_m3)
        out.append(PlannedPour(len(out), stope, stage, volume, now))
        left[(stope.name, stage)] -= volume
        duration = timedelta(hours=volume / flow + 0.5)
        if stage == "plug" and left[(stope.name, "plug")] <= 1e-6:
            ready[stope.name] = now + duration + timedelta(days=config.plug_hold_days)
        now += duration + timedelta(hours=config.gap_h)
    return out


@dataclass
class CylinderTruth:
    """A cylinder the lab twin broke, with where it came from."""

    cylinder: Cylinder
    stope: str
    stage: str
    pour_id: str
    tested_at: datetime
    cast_at: datetime


@dataclass
class StopeResult:
    """One stope under one policy: its requirements and what its paste truly did."""

    stope: Stope
    method: str
    plug_kpa: float
    body_kpa: float
    placed_m3: float = 0.0
    # requirement name -> placed volume, volume-weighted true pass probability, weak m3
    volume: dict[str, float] = field(default_factory=dict)
    pass_m3: dict[str, float] = field(default_factory=dict)
    weak_m3: dict[str, float] = field(default_factory=dict)
    cylinders: dict[str, list[bool]] = field(default_factory=dict)
    service_pass_pct: dict[str, float | None] = field(default_factory=dict)
    binder_kg_m3: list[float] = field(default_factory=list)

    def true_pass_pct(self, name: str) -> float:
        v = self.volume.get(name, 0.0)
        return 100.0 * self.pass_m3.get(name, 0.0) / v if v > 0 else math.nan

    def weak_pct(self, name: str) -> float:
        v = self.volume.get(name, 0.0)
        return 100.0 * self.weak_m3.get(name, 0.0) / v if v > 0 else math.nan

    def cylinder_pass_pct(self, name: str) -> float:
        judged = self.cylinders.get(name, [])
        return 100.0 * sum(judged) / len(judged) if judged else math.nan


@dataclass
class MonthResult:
    policy: str
    stopes: list[StopeResult]
    placed_m3: float = 0.0
    dumped_m3: float = 0.0
    off_spec_true_m3: float = 0.0
    off_spec_record_m3: float = 0.0
    dumped_record_m3: float = 0.0
    binder_t: dict[str, float] = field(default_factory=dict)  # placed + dumped, true
    pours: int = 0
    pumping_h: float = 0.0
    plant_days: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    api_calls: int = 0
    calibrations_approved: int = 0
    cylinders: int = 0
    lab_sheets: int = 0
    design_notes: list[str] = field(default_factory=list)
    doses: list[PourDose] = field(default_factory=list)  # each pour's recipe and binder placed
    truth_values: list[float] = field(default_factory=list)
    service_texts: list[str] = field(default_factory=list)
    machine_values: list[float] = field(default_factory=list)

    @property
    def binder_total_t(self) -> float:
        return sum(self.binder_t.values())

    @property
    def binder_cost(self) -> float:
        return sum(t * PRICE_PER_T[name] for name, t in self.binder_t.items())


# --- the month, run ------------------------------------------------------------------------


class _Month:
    def __init__(self, config: MonthConfig, service: Service) -> None:
        self.config = config
        self.api = service
        self.truth = config.truth
        profile = load_profile(HARDER_PROFILE_PATH)
        self.base_params = profile.plant
        self.errors = profile.instrument_errors
        self.plan = plan_pours(config)
        # Enough days for every pour, however late the plant runs.
        days = int((self.plan[-1].start - MONTH_START).days) + 30
        self.feed: list[FeedDay] = config.drift.days(days, random.Random(config.seed))
        self.calibration_id = ""
        self.last_recalibration = MONTH_START
        self.lab_pending: list[CylinderTruth] = []
        self.lab_next = MONTH_START.replace(hour=config.lab_hour)
        self.fixed_mix: dict[str, dict[str, Any]] = {}
        self.stope_ids: dict[str, str] = {}
        self.result = MonthResult(
            policy=config.policy,
            stopes=[
                StopeResult(s, s.method(), s.requirements("plug")[0][1], s.body_kpa())
                for s in config.stopes
            ],
        )
        self.by_name = {r.stope.name: r for r in self.result.stopes}

    def feed_on(self, at: datetime) -> FeedDay:
        return self.feed[min((at - MONTH_START).days, len(self.feed) - 1)]

    # -- the start: calibration, stopes, the fixed list

    async def start(self) -> None:
        rng = random.Random(self.config.seed + 17)
        trial = trial_mixes(self.truth, trial_mix_design(), self.config.ages_days, rng)
        rows = [
            {
                "sample_id": f"TRIAL-{i + 1:03d}",
                "blend": {k: 100.0 * v for k, v in c.blend.items()},
                "binder_pct": 100.0 * c.binder_ratio,
                "solids_pct": 100.0 * c.solids_fraction,
                "curing_days": c.curing_days,
                "ucs_kpa": c.ucs_kpa,
            }
            for i, c in enumerate(trial)
        ]
        answer = await self.api.call(
            "POST", "/calibrations", "engineer", {"name": "site tailings", "rows": rows}
        )
        self.calibration_id = answer["id"]
        for stope in self.config.stopes:
            made = await self.api.call(
                "POST",
                "/stopes",
                "engineer",
                {
                    "name": stope.name,
                    "height_m": stope.height_m,
                    "length_m": stope.length_m,
                    "width_m": stope.width_m,
                    "barricade_rating_kpa": 180.0,
                },
            )
            self.stope_ids[stope.name] = made["id"]
        if self.config.policy == "fixed":
            await self._design_fixed_list()

    def _optimize_body(self, requirements: list[dict[str, Any]]) -> dict[str, Any]:
        site = self.config.site
        basis = (
            {} if self.config.design_basis is None else {"design_basis": self.config.design_basis}
        )
        return {
            **basis,
            "requirements": requirements,
            "binders": BINDERS,
            "tailings": {
                "specific_gravity": site.tailings_sg,
                "moisture_pct": 100.0 * (100.0 / site.feed_solids_min_pct - 1.0),
            },
            "solids_pct_min": site.cw_min_pct,
            "solids_pct_max": site.cw_max_pct,
            "binder_pct_min": self.config.binder_pct_min,
            "binder_pct_max": self.config.binder_pct_max,
            "calibration_id": self.calibration_id,
        }

    async def _design_fixed_list(self) -> None:
        """One recipe per class, for the class's worst stope (its highest requirements)."""
        classes: dict[str, list[tuple[Stope, str]]] = {}
        for stope in self.config.stopes:
            for stage in ("plug", "body"):
                classes.setdefault(fixed_class(stope, stage), []).append((stope, stage))
        for name, members in classes.items():
            worst: dict[str, tuple[float, float]] = {}
            for stope, stage in members:
                for req, kpa, days in stope.requirements(stage):
                    if req not in worst or kpa > worst[req][0]:
                        worst[req] = (kpa, days)
            requirements = [
                {"name": req, "required_ucs_kpa": kpa, "curing_days": days}
                for req, (kpa, days) in worst.items()
            ]
            answer = await self.api.call(
                "POST", "/recipes/optimize", "engineer", self._optimize_body(requirements)
            )
            self.fixed_mix[name] = answer["recipe"]["mix"]
            self.result.design_notes.append(
                f"{name}: " + ", ".join(f"{r['name']} {r['required_ucs_kpa']:.0f} kPa at "
                f"{r['curing_days']:g} d" for r in requirements)
                + f" -> Bw {answer['recipe']['binder_pct']:.2f} %, Cw "
                f"{answer['recipe']['solids_pct']:.2f} %, slag "
                f"{answer['recipe']['blend_pct'].get('slag', 0.0):.0f} %"
            )  # fmt: skip

    # -- a pour's recipe

    async def recipe_for(self, planned: PlannedPour) -> tuple[str, dict[str, Any]]:
        stope, stage = planned.stope, planned.stage
        own = [
            {"name": n, "required_ucs_kpa": kpa, "curing_days": d}
            for n, kpa, d in stope.requirements(stage)
        ]
        if self.config.policy == "fixed":
            mix = self.fixed_mix[fixed_class(stope, stage)]
            note = None
        else:
            requirements: list[dict[str, Any]] = [stope.body_request()]
            if stage == "plug":
                requirements.insert(
                    0, {"name": "plug", "required_ucs_kpa": own[0]["required_ucs_kpa"],
                        "curing_days": PLUG_DAYS},
                )  # fmt: skip
            answer = await self.api.call(
                "POST", "/recipes/optimize", "engineer", self._optimize_body(requirements)
            )
            mix = answer["recipe"]["mix"]
            own = [
                {"name": r["name"], "required_ucs_kpa": r["required_ucs_kpa"],
                 "curing_days": r["curing_days"]}
                for r in answer["requirements"]
            ]  # fmt: skip
            note = {**answer["recipe"], "binding": answer["binding_constraints"]}
        stored = await self.api.call(
            "POST",
            "/recipes",
            "engineer",
            {
                "name": f"{stope.name} {stage}",
                "mix": mix,
                "approved_by": ENGINEER,
                "calibration_id": self.calibration_id,
                "design": {"requirements": own, "pass_fraction_pct": 90.0},
            },
        )
        if note is not None:
            self.result.design_notes.append(
                f"pour {planned.index:2d} {stope.name} {stage}: Bw {note['binder_pct']:.2f} %, "
                f"Cw {note['solids_pct']:.2f} %, slag {note['blend_pct'].get('slag', 0.0):.0f} "
                f"%, {note['binder_kg_m3']:.1f} kg/m3; "
                + ", ".join(
                    f"{c['name']} {c['required_ucs_kpa']:.0f} kPa median {c['median_ucs_kpa']:.0f}"
                    for c in note["requirements"]
                )
                + f"; binding {', '.join(note['binding'])}"
                + _spread_note(note.get("uncertainty"))
            )
        return stored["id"], mix

    # -- the lab

    async def lab_until(self, when: datetime) -> None:
        """Every daily lab sheet due by ``when``: the cylinders tested since the last."""
        while self.lab_next <= when:
            at = self.lab_next
            due = [c for c in self.lab_pending if c.tested_at <= at]
            if due:
                self.api.at(at)
                await self.api.call("POST", "/lab/sheets", "lab", {"csv": _sheet(due)})
                self.result.lab_sheets += 1
                self.lab_pending = [c for c in self.lab_pending if c.tested_at > at]
            every = timedelta(days=self.config.recalibrate_every_days)
            if self.config.policy == "designed" and at - self.last_recalibration >= every:
                self.api.at(at)
                await self._recalibrate()
                self.last_recalibration = at
            self.lab_next += timedelta(days=1)

    async def _recalibrate(self) -> None:
        try:
            proposal = await self.api.call(
                "POST",
                f"/calibrations/{self.calibration_id}/proposals",
                "engineer",
                {"use_lab_solids": False},
            )
        except ApiError as err:
            if err.status == 422:  # nothing new to learn from yet
                return
            raise
        new_id = proposal["calibration"]["id"]
        await self.api.call(
            "POST", f"/calibrations/{new_id}/approve", "engineer", {"approved_by": ENGINEER}
        )
        self.calibration_id = new_id
        self.result.calibrations_approved += 1

    def _cast(self, event: CastEvent, planned: PlannedPour, pour_id: str) -> list[str]:
        ids = [f"{pour_id[:8]}-C{event.index:02d}-{s}" for s in ("A", "B")]
        rng = random.Random(self.config.seed * 1_000_003 + planned.index * 1_009 + event.index)
        cylinders = break_cylinders(
            self.truth,
            event.paste,
            ids,
            self.config.ages_days,
            rng,
            tailings_sg=self.feed_on(event.at).tailings_gs,
            binder_sg=BINDER_SG,
        )
        for c in cylinders:
            self.lab_pending.append(
                CylinderTruth(c, planned.stope.name, planned.stage, pour_id,
                              event.at + timedelta(days=c.curing_days), event.at)
            )  # fmt: skip
            self._judge(c, planned)
        if self.config.record_inputs:
            self.result.truth_values.extend(_paste_values(event.paste))
        return ids

    def _judge(self, c: Cylinder, planned: PlannedPour) -> None:
        r = self.by_name[planned.stope.name]
        for name, kpa, days in planned.stope.requirements(planned.stage):
            if abs(days - c.curing_days) < 1e-9:
                r.cylinders.setdefault(name, []).append(c.ucs_kpa >= kpa)

    # -- the pours

    async def pour(self, planned: PlannedPour, start: datetime) -> datetime:
        config = self.config
        self.api.at(start)
        await self.lab_until(start)
        recipe_id, mix = await self.recipe_for(planned)
        made = await self.api.call(
            "POST",
            "/pours",
            "scada",
            {
                "stope_id": planned.stope.name,
                "recipe_id": recipe_id,
                "target_volume_m3": round(planned.volume_m3, 3),
                "paste_flow_m3_h": config.paste_flow_m3_h,
            },
        )
        day = self.feed_on(start)
        params = sim.SimParams(
            plant=feed_params(
                self.base_params,
                feed_solids=day.solids,
                tailings_gs=day.tailings_gs,
                band=(day.solids - 0.02, day.solids + 0.02),
                recipe_gs=config.site.tailings_sg,
            )
        )
        if config.record_inputs:
            self.result.truth_values.append(day.tailings_gs)
        job = PourJob(
            pour_id=made["id"],
            stope_id=planned.stope.name,
            recipe=pm.control_recipe(mix),
            facts=pm.RecipeFacts(recipe_id, f"{planned.stope.name} {planned.stage}", 1, mix, True),
            target_volume_m3=made["target_volume_m3"],
            paste_flow_m3_h=config.paste_flow_m3_h,
            start=start,
            params=params,
            errors=self.errors,
            requirements=planned.stope.requirements(planned.stage),
            cast_every_m3=config.cast_every_m3,
            seed=config.seed * 100_003 + planned.index,
            step_s=config.step_s,
        )
        runner = run_pour(job, self.truth, record_inputs=config.record_inputs)
        while True:
            try:
                event = next(runner)
            except StopIteration as done:
                outcome: PourOutcome = done.value
                break
            await self.lab_until(event.at)
            self.api.at(event.at)
            await self.api.store_record(event.pour)
            ids = self._cast(event, planned, made["id"])
            await self.api.call(
                "POST",
                f"/pours/{made['id']}/samples",
                "scada",
                {"sample_ids": ids, "test_ages_days": list(config.ages_days)},
            )
        assert outcome.run.ended_at is not None
        self.api.at(outcome.run.ended_at)
        await self.api.store_record(outcome.run)
        if config.record_inputs:
            self.result.machine_values.extend(
                v for v in (*runner_values(outcome), *outcome.inputs) if math.isfinite(v)
            )
        self._add(planned, outcome)
        self.result.doses.append(
            PourDose(
                blend={c["name"]: c["fraction_pct"] / 100.0 for c in mix["binder"]},
                solids_fraction=mix["solids_pct"] / 100.0,
                binder_ratio=mix["binder_pct"] / 100.0,
                requirements=tuple(planned.stope.requirements(planned.stage)),
                placed_m3=outcome.placed_m3,
                binder_placed_kg=sum(outcome.binder_placed_kg.values()),
            )
        )
        return start + timedelta(seconds=outcome.plant_s)

    def _add(self, planned: PlannedPour, out: PourOutcome) -> None:
        res = self.result
        res.pours += 1
        res.placed_m3 += out.placed_m3
        res.dumped_m3 += out.dumped_m3
        res.off_spec_true_m3 += out.off_spec_m3
        res.off_spec_record_m3 += float(out.run.totals.off_spec_m3)
        res.dumped_record_m3 += float(out.run.totals.dumped_m3)
        res.pumping_h += out.plant_s / 3600.0
        for name in ("cement", "slag", "flyash"):
            kg = out.binder_placed_kg[name] + out.binder_dumped_kg[name]
            res.binder_t[name] = res.binder_t.get(name, 0.0) + kg / 1000.0
        r = self.by_name[planned.stope.name]
        r.placed_m3 += out.placed_m3
        binder = sum(out.binder_placed_kg.values())
        if out.placed_m3 > 0:
            r.binder_kg_m3.append(binder / out.placed_m3)
        for req in out.requirements:
            r.volume[req.name] = r.volume.get(req.name, 0.0) + req.volume_m3
            r.pass_m3[req.name] = r.pass_m3.get(req.name, 0.0) + req.pass_m3
            r.weak_m3[req.name] = r.weak_m3.get(req.name, 0.0) + req.weak_m3

    async def run(self) -> None:
        await self.start()
        ended = MONTH_START
        for planned in self.plan:
            start = max(planned.start, ended + timedelta(minutes=30))
            ended = await self.pour(planned, start)
        last = max((c.tested_at for c in self.lab_pending), default=ended)
        await self.lab_until(last + timedelta(days=1))
        self.result.plant_days = (self.lab_next - MONTH_START).total_seconds() / 86400.0
        for r in self.result.stopes:
            answer = await self.api.call(
                "GET", f"/stopes/{self.stope_ids[r.stope.name]}/compliance", "hmi"
            )
            for p in answer["pass_fractions"]:
                if p["group"] == "stope":
                    r.service_pass_pct[p["requirement"]] = p["pass_pct"]
        self.result.cylinders = sum(
            len(v) for r in self.result.stopes for v in r.cylinders.values()
        )
        self.result.api_calls = self.api.calls
        if self.config.record_inputs:
            self.result.service_texts = self.api.recorder.texts()


def _spread_note(uncertainty: Mapping[str, Any] | None) -> str:
    """What a design's spread of ln UCS rests on (the fit's, the plant's, the total)."""
    if not uncertainty:
        return ""
    spread = uncertainty.get("plant_spread") or {}
    return (
        f"; sd ln UCS: fit {uncertainty['lab_sd_log']:.3f}, plant Cw "
        f"{uncertainty['plant_solids_sd_log']:.3f}, Bw {uncertainty['plant_binder_sd_log']:.3f}"
        f", total {uncertainty['total_sd_log']:.3f} (plant spread from "
        f"{spread.get('basis', '-')}: Cw {spread.get('solids_sd_pct', float('nan')):.2f} pt, "
        f"Bw {spread.get('binder_sd_rel_pct', float('nan')):.1f} %)"
    )


def runner_values(outcome: PourOutcome) -> list[float]:
    """Every number of the pour record the machine kept (what the service stores)."""
    summary = outcome.run.totals.summary()
    return [float(v) for v in summary.values() if isinstance(v, int | float)]


def _paste_values(paste: PasteTruth) -> list[float]:
    return [paste.solids_fraction, paste.binder_ratio, *paste.blend.values()]


def _sheet(cylinders: Sequence[CylinderTruth]) -> str:
    """A lab sheet as the lab types it: one row per cylinder crushed."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["sample_id", "cast_at", "tested_at", "curing_days", "ucs_kpa", "wet_mass_g",
                "dry_mass_g"])  # fmt: skip
    for c in sorted(cylinders, key=lambda c: (c.tested_at, c.cylinder.sample_id)):
        cyl = c.cylinder
        w.writerow([
            cyl.sample_id,
            c.cast_at.isoformat(),
            c.tested_at.isoformat(),
            f"{cyl.curing_days:g}",
            f"{cyl.ucs_kpa:.0f}",
            f"{cyl.wet_mass_g:.1f}",
            f"{cyl.dry_mass_g:.1f}",
        ])  # fmt: skip
    return out.getvalue()


async def run_month(config: MonthConfig) -> MonthResult:
    """Run the month under ``config.policy`` (a fresh service and store of its own)."""
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix=f"month-{config.policy}-") as folder:
        async with running_service(Path(folder), config.site, MONTH_START) as service:
            month = _Month(config, service)
            await month.run()
    result = month.result
    result.wall_s = time.perf_counter() - started
    result.cpu_s = time.process_time() - cpu
    if config.record_inputs:
        t = config.truth
        result.truth_values.extend(
            [t.ucs_ref_kpa, t.exponent, t.time_exponent, t.cast_sd_log, t.cylinder_sd_log,
             *t.blend_effect.values(), *t.time_blend.values()]
        )  # fmt: skip
    return result


def run_month_sync(config: MonthConfig) -> MonthResult:
    """:func:`run_month` in its own event loop (a worker process runs it)."""
    return asyncio.run(run_month(config))
