"""One pour of the month on the twin: the service's own pour machine (its law, its writes,
its record, the dump diverter) drives the simulated plant in-process on a fake clock, as
``bench_control_quality.ClosedLoop`` does, at a coarser plant step.

The plant step: ``service.simulator.dynamics`` integrates the process in sub-steps of at
most ``max_substep_s`` (0.5 s in the simulator); here the process and the control cycle
both step every ``step_s`` (2 s by default). Every lag of the process is discretised
exactly (``dynamics._lag``) and the mixer's residence time is 45 s, so a 2 s step moves
the mixer by 4 % of its contents: the same plant, four times fewer steps. The control
cycle of the supervisor is 1 s; at 2 s the law's rate limits and integrators see the
same plant seconds in half as many calls (they are written per second of dt).

What the machine sees is what the service would read from the PLC: the instruments'
readings (with their noise and calibration errors), the PLC's mode, the feeders' refill
and fault flags and the diverter's proven position. The truth is read from the
simulator's state beside it and never given to the machine: the paste the mixer holds
(Cw, Bw, blend) at each step and at each cast, and what reached the stope and the dump.

:func:`run_pour` is a generator: it yields a :class:`CastEvent` each time the pour's
record passes the next cast volume (the caller casts the cylinders through the
service's API then, the record as it stands stored first) and returns the
:class:`PourOutcome` at the end.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from service.core import paste_estimate as pe
from service.core import plant_readings as pr
from service.core import pour_machine as pm
from service.core.control import alarms
from service.core.control import law as control
from service.core.diversion import DIVERT_SP_TAG, DIVERTED_PV_TAG
from service.core.pour_states import FINAL_STATES, PourState
from service.simulator import dynamics as sim
from service.simulator.lab_twin import PasteTruth, TrueStrength, mixer_paste

SETPOINT_TAGS = frozenset(
    {"tailings_flow_sp", "cement_rate_sp", "slag_rate_sp", "flyash_rate_sp", "water_flow_sp",
     "paste_density_sp", "run_request", DIVERT_SP_TAG}
)  # fmt: skip
# The simulator's analog measurements but its barricade (the month's stopes have none).
READ_TAGS: tuple[str, ...] = tuple(
    tag for tag in sim.MEASUREMENT_TAGS if tag != "barricade_pressure_pv"
)
BANDS = alarms.AlarmConfig()
_MAX_AFTER_S = 600.0  # plant seconds the plant may take to flush and stop after the end


@dataclass(frozen=True)
class PourJob:
    """A pour to run: the service's pour id and record (recipe as the control law's, the
    stored recipe's facts, target volume, flow), when it starts (plant clock), the
    plant as it is that day (``params``: the true feed and Gs), the requirements its
    paste is judged against (name, kPa, days), and how often the crew casts (m3)."""

    pour_id: str
    stope_id: str
    recipe: control.Recipe
    facts: pm.RecipeFacts
    target_volume_m3: float
    paste_flow_m3_h: float
    start: datetime
    params: sim.SimParams
    errors: sim.InstrumentErrors
    requirements: tuple[tuple[str, float, float], ...]
    cast_every_m3: float
    seed: int
    step_s: float = 2.0


@dataclass(frozen=True)
class CastEvent:
    """The crew casts cylinders now: ``at`` (plant clock), the record's placed volume,
    the machine's pour as it stands, and the paste's truth (for the lab twin only)."""

    at: datetime
    placed_m3: float
    pour: pm.PourRun
    paste: PasteTruth
    index: int


@dataclass
class RequirementTruth:
    """The placed paste against one requirement, by volume: how much was placed, the
    volume-weighted probability that a cylinder of it passes (the true pass fraction)
    and the volume whose median strength falls below the requirement."""

    name: str
    required_kpa: float
    curing_days: float
    volume_m3: float = 0.0
    pass_m3: float = 0.0
    weak_m3: float = 0.0


@dataclass(frozen=True)
class PourOutcome:
    """What the pour did, true and as recorded."""

    run: pm.PourRun
    plant_s: float
    placed_m3: float
    dumped_m3: float
    off_spec_m3: float  # placed paste out of band (true mixer contents)
    binder_placed_kg: Mapping[str, float] = field(hash=False)
    binder_dumped_kg: Mapping[str, float] = field(hash=False)
    requirements: tuple[RequirementTruth, ...] = ()
    true_cw_mean: float = math.nan  # volume-weighted over the placed paste
    true_bw_mean: float = math.nan
    inputs: tuple[float, ...] = ()  # every reading handed to the machine (record_inputs)


class _Loop:
    """The machine and the simulated plant of one pour (``ClosedLoop``'s shape)."""

    def __init__(self, job: PourJob) -> None:
        self.job = job
        self.params = replace(job.params, plant=replace(job.params.plant, max_substep_s=job.step_s))
        self.process_rng = random.Random(job.seed)
        self.gauge_rng = random.Random(job.seed + 1_000_003)
        self.state = sim.initial_sim_state(self.params)
        self.meas = sim.outputs(self.state.plant, self.params.plant, self.gauge_rng)
        self.commands = sim.PlcCommands()
        self.controls = sim.SimControls(instrument_errors=job.errors)
        self.config = pm.MachineConfig(
            cycle_s=job.step_s,
            estimate=pe.EstimateConfig(
                mixer_volume_m3=self.params.plant.mixer_volume_m3,
                feed_delay_s=self.params.plant.feed_dead_time_s,
            ),
        )
        self.machine = pm.MachineState.initial(self.config)
        self.held: dict[str, pr.SetpointValue] = {}
        self.seq = 0
        self.t = 0.0
        # Every value the machine is handed, for the test that the truth never is.
        self.seen: list[float] = []
        self.record_inputs = False

    def readings(self) -> pr.Readings:
        plant = self.state.plant
        values: dict[str, pr.Reading] = {
            tag: pr.Reading(float(getattr(self.meas, tag))) for tag in READ_TAGS
        }
        values["plant_mode"] = pr.Reading(int(self.state.plc.mode))
        values["remote_enabled"] = pr.Reading(self.state.plc.remote_enabled)
        values[DIVERTED_PV_TAG] = pr.Reading(plant.diverted_to_dump)
        for name, feeder in zip(sim.BINDERS, plant.feeders, strict=True):
            values[f"{name}_refill"] = pr.Reading(feeder.refilling)
            values[f"{name}_fault"] = pr.Reading(feeder.fault)
        if self.record_inputs:
            self.seen.extend(float(getattr(self.meas, tag)) for tag in READ_TAGS)
        return pr.Readings(True, values, dict(self.held), SETPOINT_TAGS)

    def tick(self) -> pm.Tick:
        now = self.job.start + timedelta(seconds=self.t)
        return pm.Tick(self.t, now, now)

    def carry_out(self, decision: pm.Decision) -> None:
        self.machine = decision.state
        for effect in decision.effects:
            if isinstance(effect, pm.Write):
                self.held.update(effect.values)
                self.seq += 1
                sp = {
                    tag: float(v)
                    for tag, v in self.held.items()
                    if tag in control.SETPOINT_TAGS and not isinstance(v, bool)
                }
                self.commands = sim.PlcCommands(
                    setpoints=sim.Setpoints(
                        tailings_flow_m3_h=sp.get("tailings_flow_sp", 0.0),
                        cement_t_h=sp.get("cement_rate_sp", 0.0),
                        slag_t_h=sp.get("slag_rate_sp", 0.0),
                        flyash_t_h=sp.get("flyash_rate_sp", 0.0),
                        water_m3_h=sp.get("water_flow_sp", 0.0),
                        paste_density_kg_m3=sp.get("paste_density_sp", 1850.0),
                    ),
                    run_request=bool(self.held.get("run_request", False)),
                    setpoint_seq=self.seq,
                    heartbeat=self.commands.heartbeat + 1,
                    divert_to_dump=bool(self.held.get(DIVERT_SP_TAG, False)),
                )
                self.machine = pm.written(self.machine, effect, True, self.t)

    def plant_step(self) -> None:
        self.commands = replace(self.commands, heartbeat=self.commands.heartbeat + 1)
        step = self.job.step_s
        self.state = sim.simulate(
            self.state, self.commands, self.controls, step, step, self.params, self.process_rng
        )
        self.meas = sim.outputs(self.state.plant, self.params.plant, self.gauge_rng)
        self.t += step


def run_pour(
    job: PourJob, truth: TrueStrength, *, record_inputs: bool = False
) -> Generator[CastEvent, None, PourOutcome]:
    """Run the pour from its start to the plant stopped after its end (module text)."""
    loop = _Loop(job)
    loop.record_inputs = record_inputs
    pour = pm.PourRun(
        id=job.pour_id,
        stope_id=job.stope_id,
        state=PourState.PLANNED,
        target_volume_m3=job.target_volume_m3,
        paste_flow_m3_h=job.paste_flow_m3_h,
        recipe=job.recipe,
    )
    loop.carry_out(
        pm.start(loop.machine, pour, job.facts, loop.readings(), loop.tick(), loop.config,
                 role="scada")
    )  # fmt: skip
    reqs = tuple(RequirementTruth(n, kpa, d) for n, kpa, d in job.requirements)
    ln_required = [math.log(r.required_kpa) for r in reqs]
    recipe_cw, recipe_bw = job.recipe.solids_fraction, job.recipe.binder_ratio
    placed = dumped = off_spec = cw_sum = bw_sum = 0.0
    next_cast = job.cast_every_m3 / 2.0
    casts = 0
    final: pm.PourRun | None = None
    stopped_at: float | None = None
    while True:
        stope_before = loop.state.plant.stope
        loop.plant_step()
        plant = loop.state.plant
        # The truth of this step: what reached the stope, and what it is.
        dv = plant.stope.placed_paste_m3 - stope_before.placed_paste_m3
        dumped += plant.stope.dumped_paste_m3 - stope_before.dumped_paste_m3
        if dv > 0.0:
            m = plant.mixer
            paste = mixer_paste(m.cement_kg, m.slag_kg, m.flyash_kg, m.tailings_kg, m.water_kg)
            placed += dv
            if paste is None:
                off_spec += dv
                for r in reqs:
                    r.volume_m3 += dv
                    r.weak_m3 += dv
            else:
                cw, bw = paste.solids_fraction, paste.binder_ratio
                cw_sum += cw * dv
                bw_sum += bw * dv
                if alarms.solids_off_spec(cw, recipe_cw, BANDS) or alarms.binder_off_spec(
                    bw, recipe_bw, BANDS
                ):
                    off_spec += dv
                for r, ln_r in zip(reqs, ln_required, strict=True):
                    ln_m = truth.ln_median(paste, r.curing_days)
                    r.volume_m3 += dv
                    r.pass_m3 += dv * _normal_cdf((ln_m - ln_r) / truth.total_sd_log)
                    if ln_m < ln_r:
                        r.weak_m3 += dv
        if final is None:
            decision = pm.cycle(loop.machine, loop.readings(), loop.tick(), loop.config)
            loop.carry_out(decision)
            active = loop.machine.pour
            for effect in decision.effects:
                if isinstance(effect, pm.Keep) and effect.pour.state in FINAL_STATES:
                    final = effect.pour
            if final is None and active is None:
                raise RuntimeError(f"pour {job.pour_id} ended without a final record")
            if active is not None and active.state is PourState.PAUSED:
                raise RuntimeError(
                    f"pour {job.pour_id} paused: {active.paused_for} at {loop.t:.0f} s"
                )
            if active is not None and active.totals.poured_m3 >= next_cast:
                m = loop.state.plant.mixer
                paste = mixer_paste(m.cement_kg, m.slag_kg, m.flyash_kg, m.tailings_kg, m.water_kg)
                if paste is not None:
                    casts += 1
                    yield CastEvent(loop.tick().wall, active.totals.poured_m3, active, paste, casts)
                next_cast += job.cast_every_m3
        else:
            # The pour has ended: the plant flushes and stops; the heartbeat goes on.
            loop.carry_out(pm.cycle(loop.machine, loop.readings(), loop.tick(), loop.config))
            if loop.state.plc.mode is sim.PlantMode.STOPPED:
                break
            stopped_at = stopped_at or loop.t
            if loop.t - stopped_at > _MAX_AFTER_S:
                raise RuntimeError(f"pour {job.pour_id}: the plant did not stop after its end")
    stope = loop.state.plant.stope
    return PourOutcome(
        run=final,
        plant_s=loop.t,
        placed_m3=placed,
        dumped_m3=dumped,
        off_spec_m3=off_spec,
        binder_placed_kg=_binder(stope.placed),
        binder_dumped_kg=_binder(stope.dumped),
        requirements=reqs,
        true_cw_mean=cw_sum / placed if placed > 0 else math.nan,
        true_bw_mean=bw_sum / placed if placed > 0 else math.nan,
        inputs=tuple(loop.seen),
    )


def _binder(c: sim.Components) -> dict[str, float]:
    return {"cement": c.cement_kg, "slag": c.slag_kg, "flyash": c.flyash_kg}


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def feed_params(
    base: sim.PlantParams,
    *,
    feed_solids: float,
    tailings_gs: float,
    band: tuple[float, float],
    recipe_gs: float,
) -> sim.PlantParams:
    """The plant on a day: its feed at ``feed_solids`` (by mass) of tailings of true Gs
    ``tailings_gs``, its natural variation held in ``band`` (solids by mass), the Gs the
    recipes assume ``recipe_gs``."""
    return replace(
        base,
        tailings_gs=tailings_gs,
        recipe_tailings_gs=recipe_gs,
        feed_density_kg_m3=sim.slurry_density_kg_m3(feed_solids, tailings_gs),
        feed_density_min_kg_m3=sim.slurry_density_kg_m3(band[0], tailings_gs),
        feed_density_max_kg_m3=sim.slurry_density_kg_m3(band[1], tailings_gs),
    )
