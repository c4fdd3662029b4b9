"""What the pour machine is given by the running service: its configuration from the
settings (:class:`SupervisorConfig`), the plant's readings from the link's snapshot
(:func:`readings_of`), and a stored pour as it runs it (:func:`run_of`, under the Cw
correction written on the pour)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.core import control as law
from service.core import instruments as ins
from service.core import lazy_scipy
from service.core import paste_estimate as pe
from service.core import plant_readings as pr
from service.core import pour_machine as pm
from service.core.diversion import DiverterConfig
from service.core.plans import PlanEvent
from service.core.pour_states import PourState
from service.core.recipe_limits import RecipeLimits
from service.operations.corrections import (
    Correction,
    controlled_mix,
    correction_in_force,
    gs_verification,
)
from service.operations.pour_context import StagePort
from service.plant.port import PlantSnapshot
from service.settings import DumpSettings, EstimateSettings, InstrumentSettings
from service.store.records import PourRecord, RecipeRecord
from service.store.repository import Store


@dataclass(frozen=True)
class SupervisorConfig:
    """The machine's configuration (:class:`~service.core.pour_machine.MachineConfig`)
    as the runtime gives it, with the instrument settings and the loop's timing."""

    cycle_s: float = 1.0
    min_cycle_wall_s: float = 0.05
    checkpoint_interval_wall_s: float = 5.0
    link_loss_pause_wall_s: float = 5.0
    write_refresh_s: float = 30.0
    stuck_after_s: float = 20.0
    start_timeout_s: float = 300.0
    recipe_limits: RecipeLimits = field(default_factory=RecipeLimits)
    allow_unapproved: bool = False
    diverter: DiverterConfig = field(default_factory=DiverterConfig)
    fallback: law.FallbackConfig = field(default_factory=law.FallbackConfig)
    instruments: InstrumentSettings = field(default_factory=InstrumentSettings)
    balance_settle_s: float = 60.0
    control: law.ControlConfig = field(default_factory=law.ControlConfig)
    alarms: law.AlarmConfig = field(default_factory=law.AlarmConfig)
    dump: DumpSettings = field(default_factory=DumpSettings)
    estimate: EstimateSettings = field(default_factory=EstimateSettings)

    def machine(self, scale: float) -> pm.MachineConfig:
        balance = None
        if self.instruments.check:
            balance = ins.BalanceCheck(
                ins.disagreement_config(self.instruments, self.cycle_s),
                ins.GaugeErrors.from_settings(self.instruments),
            )
        return pm.MachineConfig(
            cycle_s=self.cycle_s,
            scale=scale,
            checkpoint_interval_wall_s=self.checkpoint_interval_wall_s,
            link_loss_pause_wall_s=self.link_loss_pause_wall_s,
            write_refresh_s=self.write_refresh_s,
            stuck_after_s=self.stuck_after_s,
            start_timeout_s=self.start_timeout_s,
            recipe_limits=self.recipe_limits,
            allow_unapproved=self.allow_unapproved,
            diverter=self.diverter,
            fallback=self.fallback,
            balance=balance,
            balance_settle_s=self.balance_settle_s,
            control=self.control,
            alarms=self.alarms,
            estimate=pe.EstimateConfig(
                mixer_volume_m3=self.estimate.mixer_volume_m3,
                residence_s=self.estimate.residence_s,
                feed_delay_s=self.estimate.feed_delay_s,
                density_sd_kg_m3=self.instruments.density_sd_kg_m3,
                density_tolerance_kg_m3=self.instruments.density_tolerance_kg_m3,
                binder_sd=self.instruments.binder_sd_pct / 100.0,
                binder_tolerance=self.instruments.binder_tolerance_pct / 100.0,
                flow_sd=self.instruments.flow_sd_pct / 100.0,
                flow_tolerance=self.instruments.flow_tolerance_pct / 100.0,
            ),
            dump=pm.DumpLimits(
                max_volume_m3=self.dump.max_volume_m3,
                max_s=60.0 * self.dump.max_minutes,
                unreachable_s=self.dump.unreachable_pause_s,
            ),
        )


def readings_of(snap: PlantSnapshot, setpoint_tags: frozenset[str]) -> pr.Readings:
    """The machine's view of the link's snapshot."""
    return pr.Readings(
        connected=snap.connected,
        values={tag: pr.Reading(m.value, m.quality.value) for tag, m in snap.measurements.items()},
        held={tag: sp.value for tag, sp in snap.setpoints.items()},
        setpoint_tags=setpoint_tags,
    )


def run_of(
    record: PourRecord, mix: Mapping[str, Any], context: pm.PourContext | None
) -> pm.PourRun:
    """The machine's pour from its record: the recipe control runs (a tailings Gs
    correction in), a gauge correction's bias, the totals integrated so far."""
    correction = None if record.correction is None else Correction.from_pour(record.correction)
    integrator = record.totals.get("integrator")
    bias = 0.0
    if correction is not None and correction.kind == "density_gauge":
        bias = correction.density_bias_kg_m3 or 0.0
    return pm.PourRun(
        id=record.id,
        stope_id=record.stope_id,
        state=PourState(record.state),
        target_volume_m3=record.target_volume_m3,
        paste_flow_m3_h=record.paste_flow_m3_h,
        recipe=pm.control_recipe(controlled_mix(mix, correction)),
        totals=law.PourTotals.from_dict(integrator) if integrator else law.PourTotals(),
        interruptions=tuple(record.interruptions),
        started_at=record.started_at,
        ended_at=record.ended_at,
        context=context,
        density_bias_kg_m3=bias,
        totaliser_m3=_number(record.totals.get("plc_totaliser_m3")),
        to_dump=record.totals.get("to_dump") is True,
        solids_verified=record.totals.get("solids_verified") is True,
        solids_basis=str(record.totals.get("solids_basis") or ""),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def recipe_facts(recipe: RecipeRecord) -> pm.RecipeFacts:
    return pm.RecipeFacts(
        id=recipe.id,
        name=recipe.name,
        version=recipe.version,
        mix=recipe.mix,
        approved=recipe.approved_at is not None,
    )


@dataclass(frozen=True)
class Facts:
    """What a start reads, once: the pour (with the correction in force written on it),
    its recipe version, and the machine's pour (the stope's context, the lab's word on
    the Gs)."""

    record: PourRecord
    recipe: RecipeRecord
    run: pm.PourRun


async def start_facts(store: Store, stages: StagePort | None, pour_id: str) -> Facts:
    """The pour to start as the machine runs it, under the newest approved correction
    that applies to its recipe (a planned pour only: a later approval never changes a
    pour under way)."""
    # The balance check's numerics load in a worker thread while the plant starts.
    lazy_scipy.preload(lazy_scipy.OPTIMIZE)
    record = await store.get_pour(pour_id)
    recipe = await store.get_recipe(record.recipe_id)
    applies = None
    if record.state == PourState.PLANNED.value:
        applies = await correction_in_force(store, recipe.mix)
        record = replace(record, correction=None if applies is None else applies.to_pour())
    return Facts(record, recipe, await _run(store, stages, record, recipe, applies))


async def resume_facts(store: Store, stages: StagePort | None, record: PourRecord) -> Facts:
    """A pour found at start, or resumed: its recipe as stored now and its stope's
    context now (site limits, approvals and the plan may have changed)."""
    recipe = await store.get_recipe(record.recipe_id)
    context = None if stages is None else await stages.context_of(record)
    return Facts(record, recipe, run_of(record, recipe.mix, context))


async def next_stage_facts(
    store: Store, stages: StagePort, ended_id: str, event: PlanEvent
) -> Facts:
    """A continuous plan's next stage: its pour (made running), on the correction in
    force, as the machine runs it."""
    following = await stages.next_pour(await store.get_pour(ended_id), event)
    recipe = await store.get_recipe(following.recipe_id)
    applies = await correction_in_force(store, recipe.mix)
    if applies is not None and following.correction is None:
        following = await store.update_pour(
            following.id, expect_state=following.state, correction=applies.to_pour()
        )
    return Facts(following, recipe, await _run(store, stages, following, recipe, applies))


async def _run(
    store: Store,
    stages: StagePort | None,
    record: PourRecord,
    recipe: RecipeRecord,
    applies: Correction | None,
) -> pm.PourRun:
    verified, basis = await gs_verification(store, recipe.mix, applies)
    context = None if stages is None else await stages.context_of(record)
    return replace(
        run_of(record, recipe.mix, context), solids_verified=verified, solids_basis=basis
    )
