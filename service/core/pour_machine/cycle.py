"""One supervision cycle of the pour machine, and the plan's answer to what a pour placed."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from service.core import control as law
from service.core import diversion as dv
from service.core import instruments as ins
from service.core import paste_estimate as pe
from service.core import plant_readings as pr
from service.core.control import massbalance as mb
from service.core.plans import PlanEvent, PlanEventKind
from service.core.pour_machine.actions import (
    finish,
    inputs_of,
    paste_density,
    pause,
    send_pending_stop,
    setpoint_values,
)
from service.core.pour_machine.model import (
    Decision,
    Effect,
    FollowPlan,
    Handover,
    Keep,
    MachineConfig,
    MachineState,
    Note,
    PourRun,
    Resume,
    SetpointValue,
    Tick,
    Write,
    WriteKind,
)
from service.core.pour_machine.recovery import TOTALISER_TAG, recover, totaliser_volume
from service.core.pour_states import PourState

# --- the cycle ------------------------------------------------------------------------------


def cycle(
    state: MachineState, readings: pr.Readings, tick: Tick, config: MachineConfig
) -> Decision:
    """One supervision cycle: drop-outs, the gauges, the control law, the balance, the
    diverter, the setpoints to write, the totals, the plan or the target, the alarms
    and the checkpoint."""
    dt_s = 0.0 if state.last_cycle_mono is None else (tick.mono - state.last_cycle_mono)
    dt_s *= config.scale
    down_since = None if readings.connected else (state.link_down_since or tick.mono)
    stuck = pr.track_stuck(state.stuck, readings, tick.mono, config.scale, config.stuck_after_s)
    notes = _stuck_notes(state.stuck.stuck, stuck.stuck, config.stuck_after_s)
    readings = replace(readings, stuck=stuck.stuck)
    state = replace(state, last_cycle_mono=tick.mono, link_down_since=down_since, stuck=stuck)
    effects: list[Effect] = list(notes)
    if state.stop_pending is not None and readings.connected:
        effects.extend(send_pending_stop(state, readings))
    if state.pour is not None and state.pour.unrecorded and readings.connected:
        decision = recover_unrecorded(state, readings, tick)
        state = decision.state
        effects.extend(decision.effects)
    pour = state.pour
    resume_now = (
        pour is not None
        and state.auto_resume == pour.id
        and pour.state is PourState.PAUSED
        and readings.not_ready_reason() is None
    )
    ctx = pour.context if pour is not None else None
    stope_alarms, at_rating = pr.barricade(
        readings,
        None if ctx is None else ctx.barricade_rating_kpa,
        1.0 if ctx is None else ctx.barricade_high_fraction,
        None if ctx is None else ctx.barricade_tags,
    )
    resume_now = resume_now and at_rating is None  # a resume is refused at the rating
    inputs: law.ControlInputs | None = None
    output: law.ControlOutput | None = None
    if pour is not None and pour.state is PourState.RUNNING:
        reason = _dropout_reason(readings, pour, state, tick, config) or at_rating
        if reason is not None:
            decision = pause(state, pour.id, tick, readings, role="service", reason=reason)
            state = decision.state
            effects.extend(decision.effects)
        elif readings.connected:
            state, pour, inputs, fallback_notes = _binder_source(
                state, pour, readings, inputs_of(readings, pour), tick, config
            )
            effects.extend(fallback_notes)
        # With the link down nothing is judged (the diverter's position, the gauges
        # are unknown, not wrong): the pour pauses once the loss has lasted.
        if inputs is not None and state.fallback is not None and state.fallback.pause:
            state = replace(state, pour=pour)
            decision = pause(
                state, pour.id, tick, readings, role="service", reason=ins.PAUSE_REASON
            )
            state = decision.state
            effects.extend(decision.effects)
            inputs = None
        elif inputs is not None:
            control, output = law.step(pour.control, inputs, config.control, dt_s)
            pour = replace(
                pour,
                control=control,
                plant_was_running=pour.plant_was_running or output.mode is law.ControlMode.ACTIVE,
                estimate=_estimate(pour, readings, inputs, output, dt_s, config),
            )
            pour, balance, balance_notes = _check_balance(
                pour, state.balance, readings, inputs, output, tick, config
            )
            effects.extend(balance_notes)
            pour, divert = _divert(pour, readings, output, tick, config)
            stope_alarms[law.AlarmCode.DIVERTER_NOT_IN_POSITION] = law.Condition(
                divert.fault is not None, "" if divert.fault is None else divert.fault.detail
            )
            state = replace(state, pour=pour, balance=balance, last_output=output)
            if divert.pause_requested:
                decision = pause(
                    state, pour.id, tick, readings, role="service", reason=dv.FAULT_CODE
                )
            else:
                decision = _produce(
                    state, pour, readings, inputs, output, divert, dt_s, tick, config
                )
            state = decision.state
            effects.extend(decision.effects)
    if state.pour is None or state.pour.state is not PourState.RUNNING:
        state = replace(state, fallback=None)
    cycle_pour = state.pour if state.pour is not None else pour
    state, alarm_notes = _evaluate_alarms(
        state, cycle_pour, readings, inputs, output, stope_alarms, tick, config
    )
    effects.extend(alarm_notes)
    active = state.pour
    if (
        active is not None
        and active.state is PourState.RUNNING
        and tick.mono - active.last_checkpoint_mono >= config.checkpoint_interval_wall_s
    ):
        active = replace(active, last_checkpoint_mono=tick.mono)
        state = replace(state, pour=active)
        # Before the plan is told: an end at a stage top it answers with is newer.
        at = next((i for i, e in enumerate(effects) if isinstance(e, FollowPlan)), len(effects))
        effects.insert(at, Keep(active))
    if resume_now and pour is not None:
        effects.append(Resume(pour.id))  # last: it acts on the state this cycle leaves
    return Decision(state, tuple(effects))


def _produce(
    state: MachineState,
    pour: PourRun,
    readings: pr.Readings,
    inputs: law.ControlInputs,
    output: law.ControlOutput,
    divert: dv.DiverterOutput,
    dt_s: float,
    tick: Tick,
    config: MachineConfig,
) -> Decision:
    """Write the law's setpoints (and the diverter's command) when they changed, add the
    step to the totals (to the dump's, when the valve is proven there), and follow the
    plan, or end the pour at its target."""
    effects: list[Effect] = []
    if output.mode is not law.ControlMode.HOLD:
        values = setpoint_values(output, readings, divert_to_dump=divert.divert_to_dump_sp)
        if _changed(state, values, tick.mono, config):
            effects.append(Write(values, pour.id, "correction", "service", WriteKind.CORRECTION))
    flushing = readings.mode_is(pr.MODE_FLUSHING)
    totaliser = readings.measurement(TOTALISER_TAG)
    est = pour.estimate
    sample = replace(
        law.sample_from_step(
            inputs,
            output,
            paste_flow_m3_h=_paste_volume_rate(
                readings, pour.totaliser_m3, totaliser, dt_s, flushing
            ),
            water_flow_m3_h=readings.measurement("water_flow_pv"),
            flushing=flushing,
            to_dump=divert.to_dump,
        ),
        # Judged on the paste as estimated (its uncertainty recorded), not on a reading,
        # against what the mixer delivers (through a recipe switch, the move between).
        solids_fraction_target=pour.targets(tick.plant)[0],
        binder_ratio_target=pour.targets(tick.plant)[1],
        solids_fraction=est.solids_fraction
        if output.measured_solids_fraction is not None
        else None,
        binder_ratio=est.binder_ratio if output.measured_binder_ratio is not None else None,
        solids_sd=est.solids_sd,
        solids_tolerance=est.solids_tolerance,
        binder_sd=est.binder_sd,
        binder_tolerance=est.binder_tolerance,
        # An unknown mode (a slow link) holds a settled run as long as the diverter
        # holds its valve, not a restart.
        plant_running=None if readings.mode() is None else inputs.plant_running,
        mode_hold_s=config.diverter.settle_s,
    )
    pour = replace(
        pour,
        totals=law.accumulate(pour.totals, sample, dt_s, config.alarms),
        totaliser_m3=totaliser.value if totaliser.usable else None,
        to_dump=divert.to_dump,
    )
    producing = output.mode is law.ControlMode.ACTIVE and not flushing
    pour = replace(
        pour,
        dump_s=pour.dump_s + (dt_s if divert.to_dump and producing else 0.0),
        unreachable_s=pour.unreachable_s + dt_s if output.recipe_unreachable else 0.0,
    )
    state = replace(state, pour=pour)
    stop = _dump_stop(pour, output, divert, config)
    if stop is not None:
        reason, detail = stop
        decision = pause(
            state, pour.id, tick, readings, role="service", reason=reason, detail=detail
        )
        return Decision(decision.state, (*effects, *decision.effects))
    if pour.context is not None:
        effects.append(FollowPlan(pour))
        return Decision(state, tuple(effects))
    decision = _at_target(state, pour, readings, tick)
    return Decision(decision.state, (*effects, *decision.effects))


DUMP_LIMIT = "dump_limit"
RECIPE_UNREACHABLE = "recipe_unreachable"
PAUSE_ALARMS = {
    DUMP_LIMIT: law.AlarmCode.DUMP_LIMIT_PAUSE,
    RECIPE_UNREACHABLE: law.AlarmCode.RECIPE_UNREACHABLE_PAUSE,
}


def _dump_stop(
    pour: PourRun, output: law.ControlOutput, divert: dv.DiverterOutput, config: MachineConfig
) -> tuple[str, str] | None:
    """Why the pour must pause now, if it must: the dump took more than its allowance
    since the last start or resume (naming the cause), or the recipe has been out of
    the feed's reach too long. None: go on."""
    limits = config.dump
    if limits.unreachable_s > 0.0 and pour.unreachable_s >= limits.unreachable_s:
        return RECIPE_UNREACHABLE, (
            f"the feed cannot reach the recipe's Cw {100 * pour.recipe.solids_fraction:.1f} % "
            f"(too wet: water to add would be negative) for {pour.unreachable_s:.0f} s; "
            "a drier feed or a recipe the feed can make"
        )
    dumped = pour.totals.dumped_m3 - pour.dump_base_m3
    over_volume = limits.max_volume_m3 > 0.0 and dumped >= limits.max_volume_m3
    over_time = limits.max_s > 0.0 and pour.dump_s >= limits.max_s
    if not (over_volume or over_time):
        return None
    est, recipe = pour.estimate, pour.recipe
    if output.recipe_unreachable:
        cause = "the recipe is out of the feed's reach"
    elif divert.fault is not None:
        cause = f"the diverter: {divert.fault.detail}"
    else:
        cw = "unknown" if est.solids_fraction is None else f"{100 * est.solids_fraction:.2f} %"
        bw = "unknown" if est.binder_ratio is None else f"{100 * est.binder_ratio:.2f} %"
        cause = (
            f"the paste never settled in spec: Cw {cw} for {100 * recipe.solids_fraction:.2f} %, "
            f"Bw {bw} for {100 * recipe.binder_ratio:.2f} %"
        )
    return DUMP_LIMIT, (
        f"{dumped:.1f} m3 in {pour.dump_s / 60.0:.1f} min sent to the dump since the start "
        f"(limit {limits.max_volume_m3:g} m3 or {limits.max_s / 60.0:g} min): {cause}"
    )


def pause_conditions(pour: PourRun | None) -> dict[law.AlarmCode, law.Condition]:
    """The alarms of a pause the machine made for the paste (the dump's allowance, an
    unreachable recipe): active until an operator resumes the pour."""
    waiting = None if pour is None else pour.paused_for
    detail = "" if pour is None or not pour.interruptions else pour.interruptions[-1].get("detail")
    return {
        code: law.Condition(waiting == reason, str(detail or "") if waiting == reason else "")
        for reason, code in PAUSE_ALARMS.items()
    }


# No paste plant pumps more: a totaliser that jumps further glitched (a rate is used).
_MAX_PASTE_M3_H = 1000.0


def _paste_volume_rate(
    readings: pr.Readings,
    before_m3: float | None,
    totaliser: law.Measurement,
    dt_s: float,
    flushing: bool,
) -> law.Measurement:
    """The paste flow this cycle integrates: the PLC's totaliser's increase over the
    cycle where it reads good twice (the meter integrated at the PLC's scan rate, so
    the sum over a pour is exact whatever the sampling), else the paste flow reading.
    A flush is line flow, not paste: the reading (the totaliser does not count it)."""
    flow = readings.measurement("paste_flow_pv")
    if flushing or before_m3 is None or not totaliser.usable or dt_s <= 0.0:
        return flow
    rate = (totaliser.value - before_m3) * 3600.0 / dt_s
    return law.Measurement(rate) if 0.0 <= rate <= _MAX_PASTE_M3_H else flow


def _at_target(state: MachineState, pour: PourRun, readings: pr.Readings, tick: Tick) -> Decision:
    if pour.totals.poured_m3 >= pour.target_volume_m3:
        return finish(state, pour.id, PourState.COMPLETED, tick, readings, role="service")
    return Decision(state)


def plan_answer(
    state: MachineState,
    pour_id: str,
    events: Sequence[PlanEvent],
    tick: Tick,
    readings: pr.Readings,
) -> Decision:
    """Carry out the plan's answer to what the pour placed: stop at a stage's top (the
    hold starts), or hand over to the next stage's recipe without stopping (a
    continuous plan); otherwise the pour ends at its target volume."""
    pour = state.pour
    if pour is None or pour.id != pour_id or pour.state is not PourState.RUNNING:
        return Decision(state)
    for event in events:
        if event.kind is PlanEventKind.SWITCH_RECIPE:
            ended = replace(pour, state=PourState.COMPLETED, ended_at=tick.wall)
            return Decision(state, (Handover(ended, event),))
        if event.stop_pour:
            decision = finish(state, pour.id, PourState.COMPLETED, tick, readings, role="service")
            note = Note(logging.INFO, f"pour {pour.id}: stage top reached ({event.detail})")
            return Decision(decision.state, (note, *decision.effects))
    return _at_target(state, pour, readings, tick)


def take_over(state: MachineState, following: PourRun, event: PlanEvent, tick: Tick) -> Decision:
    """A continuous plan's next stage takes over without a stop (run_request stays
    true): the next pour carries on the controller's state, so the new recipe's
    setpoints ramp in at the law's rate limits (bumpless), and what the plant measures
    (the paste estimate, the totaliser) from where the stage's pour ended."""
    pour = state.pour
    assert pour is not None
    nxt = replace(
        following,
        control=pour.control,
        plant_was_running=pour.plant_was_running,
        run_requested_mono=pour.run_requested_mono,
        diverter=pour.diverter,
        binder=pour.binder,
        estimate=pour.estimate,
        totaliser_m3=pour.totaliser_m3,
        to_dump=pour.to_dump,
        last_checkpoint_mono=tick.mono,
        switched_from=pour.targets(tick.plant),
        switched_at=tick.plant,
    )
    note = Note(
        logging.INFO,
        f"pour {pour.id} handed over to pour {following.id} ({event.detail}) without a stop",
    )
    return Decision(replace(state, pour=nxt), (note,))


# --- the cycle's parts ----------------------------------------------------------------------


def recover_unrecorded(state: MachineState, readings: pr.Readings, tick: Tick) -> Decision:
    """A pour found running after a crash: the paste since its last checkpoint, from
    the PLC's totaliser once it reads good (a plant without one was settled at start)."""
    pour = state.pour
    assert pour is not None
    reading = readings.measurement(TOTALISER_TAG)
    if not reading.usable:
        return Decision(state)
    volume, why = totaliser_volume(pour.totaliser_m3, reading)
    return recover(
        state,
        pour.id,
        volume,
        basis="plc_totaliser",
        detail=why,
        tick=tick,
        totaliser_m3=reading.value,
    )


def _estimate(
    pour: PourRun,
    readings: pr.Readings,
    inputs: law.ControlInputs,
    output: law.ControlOutput,
    dt_s: float,
    config: MachineConfig,
) -> pe.PasteEstimate:
    """The paste estimate after this cycle's readings: Cw from the paste density (a gauge
    correction's bias off), Bw from the feeders' rates over the measured dry tailings
    (none while the binder follows the paste flow: its own rates say nothing then)."""
    if output.mode is not law.ControlMode.ACTIVE:
        return pour.estimate
    density = paste_density(readings, pour)
    rates = {c: m.value for c, m in inputs.binder_rates_t_h.items() if m.usable}
    binder_known = (
        inputs.binder_on_paste_flow_t_h is None
        and not inputs.refilling
        and len(rates) == len(pour.recipe.component_names)
    )
    ff = output.feed_forward
    level = readings.measurement("mixer_level_pv")
    flow = readings.measurement("paste_flow_pv")
    return pe.step(
        pour.estimate,
        solids_fraction=output.measured_solids_fraction,
        density_kg_m3=density.value if density.usable else None,
        solids_sg=mb.solids_sg(pour.recipe),
        binder_t_h=rates if binder_known else None,
        dry_tailings_t_h=ff.dry_tailings_t_h if ff is not None else None,
        level_pct=level.value if level.usable else None,
        paste_flow_m3_h=flow.value if flow.usable else None,
        dt_s=dt_s,
        config=config.estimate,
    )


def _stuck_notes(before: frozenset[str], now: frozenset[str], after_s: float) -> list[Effect]:
    notes: list[Effect] = [
        Note(
            logging.WARNING, f"{tag} has not changed for {after_s:.0f} s: treated as a stuck sensor"
        )
        for tag in sorted(now - before)
    ]
    notes.extend(Note(logging.WARNING, f"{tag} moves again") for tag in sorted(before - now))
    return notes


def _dropout_reason(
    readings: pr.Readings, pour: PourRun, state: MachineState, tick: Tick, config: MachineConfig
) -> str | None:
    if not readings.connected:
        down_for = tick.mono - (state.link_down_since or tick.mono)
        return "plant_link_lost" if down_for >= config.link_loss_pause_wall_s else None
    if readings.remote_refused():
        return "plc_not_remote"
    mode = readings.mode()
    if mode == pr.MODE_FAULT:
        return "plc_fault"
    if mode is not None and pour.plant_was_running and mode != pr.MODE_RUNNING:
        return "plc_stopped"
    requested = pour.run_requested_mono
    if not pour.plant_was_running and requested is not None:
        waited_s = (tick.mono - requested) * config.scale
        return "plc_did_not_start" if waited_s >= config.start_timeout_s else None
    return None


def _binder_source(
    state: MachineState,
    pour: PourRun,
    readings: pr.Readings,
    inputs: law.ControlInputs,
    tick: Tick,
    config: MachineConfig,
) -> tuple[MachineState, PourRun, law.ControlInputs, list[Effect]]:
    """The dead-gauge fallback, judged while the plant produces: the law's inputs with
    the binder on the paste flow meter when the feed gauges cannot carry it."""
    if law.mode_of(inputs) is not law.ControlMode.ACTIVE:
        return replace(state, fallback=None), pour, inputs, []
    before = pour.binder.state.mode
    binder, decision, inputs = ins.binder_source_step(
        pour.binder, inputs, readings.measurement("paste_flow_pv"), tick.plant, config.fallback
    )
    notes: list[Effect] = []
    if decision.mode is not before:
        notes.append(
            Note(
                logging.WARNING,
                f"pour {pour.id}: binder source {decision.mode}: {decision.reason}",
            )
        )
    pour = replace(pour, binder=binder)
    return replace(state, pour=pour, fallback=decision), pour, inputs, notes


def _check_balance(
    pour: PourRun,
    balance: ins.BalanceCheck | None,
    readings: pr.Readings,
    inputs: law.ControlInputs,
    output: law.ControlOutput,
    tick: Tick,
    config: MachineConfig,
) -> tuple[PourRun, ins.BalanceCheck | None, list[Effect]]:
    """One cycle of "instruments disagree", judged at steady production only
    (:func:`ins.steady_step`: from the first paste in band for ``balance_settle_s``,
    held while a feeder refills or a reading is unusable). The mixer's hold-up is not
    measured: at steady production in - out is 0."""
    if balance is None:
        return pour, None, []
    recipe = pour.recipe
    cw_target, bw_target = pour.targets(tick.plant)
    in_band = all(
        dv.in_band(measured, target, solids=solids, config=config.alarms) is True
        for measured, target, solids in (
            (pour.estimate.solids_fraction, cw_target, True),
            (pour.estimate.binder_ratio, bw_target, False),
        )
    )
    steady_since, judge = ins.steady_step(
        pour.steady_since,
        producing=(
            output.mode is law.ControlMode.ACTIVE
            and inputs.binder_on_paste_flow_t_h is None
            and not readings.mode_is(pr.MODE_FLUSHING)
        ),
        in_band=in_band,
        holding=bool(output.stale_inputs) or bool(inputs.refilling & set(recipe.component_names)),
        now=tick.plant,
        settle_s=config.balance_settle_s,
    )
    measurements = (
        ins.flow_measurements(
            lambda tag: (
                paste_density(readings, pour)
                if tag == "paste_density_pv"
                else readings.measurement(tag)
            ),
            recipe,
            balance.errors,
        )
        if judge
        else None
    )
    balance = balance.observe(measurements, tick.plant)
    notes: list[Effect] = []
    if balance.status is not None and balance.status.raised:
        notes.append(Note(logging.WARNING, balance.status.detail))
    return replace(pour, steady_since=steady_since), balance, notes


def _divert(
    pour: PourRun,
    readings: pr.Readings,
    output: law.ControlOutput,
    tick: Tick,
    config: MachineConfig,
) -> tuple[PourRun, dv.DiverterOutput]:
    """The dump diverter's decision for this cycle (inactive without its tags)."""
    cw_target, bw_target = pour.targets(tick.plant)
    mode = readings.mode()
    diverter, decision = dv.step(
        pour.diverter,
        dv.DiverterInputs(
            phase=dv.PourPhase.RUNNING if pour.plant_was_running else dv.PourPhase.STARTING,
            solids_in_band=dv.in_band(
                pour.estimate.solids_fraction,
                cw_target,
                solids=True,
                config=config.alarms,
            ),
            binder_in_band=dv.in_band(
                pour.estimate.binder_ratio,
                bw_target,
                solids=False,
                config=config.alarms,
            ),
            proven_to_dump=readings.proven_to_dump(),
            plant_running=None if mode is None else mode == pr.MODE_RUNNING,
            plant_flushing=None if mode is None else mode == pr.MODE_FLUSHING,
        ),
        tick.plant,
        replace(config.diverter, installed=readings.diverter_installed()),
    )
    return replace(pour, diverter=diverter), decision


def _changed(
    state: MachineState,
    values: Mapping[str, SetpointValue],
    mono: float,
    config: MachineConfig,
) -> bool:
    """Whether a set is worth writing: something moved by more than 0.1 % of its span,
    or ``write_refresh_s`` passed since the last write."""
    if mono - state.last_write_mono >= config.write_refresh_s / config.scale:
        return True
    for tag, value in values.items():
        old = state.written.get(tag)
        if old is None or type(old) is not type(value):
            return True
        if isinstance(value, bool):
            if value != old:
                return True
            continue
        span = config.control.limit(tag).maximum if tag in law.SETPOINT_TAGS else 1.0
        if abs(float(value) - float(old)) > 1e-3 * max(span, 1.0):
            return True
    return False


def _evaluate_alarms(
    state: MachineState,
    pour: PourRun | None,
    readings: pr.Readings,
    inputs: law.ControlInputs | None,
    output: law.ControlOutput | None,
    stope: Mapping[law.AlarmCode, law.Condition],
    tick: Tick,
    config: MachineConfig,
) -> tuple[MachineState, list[Effect]]:
    pressure = readings.measurement("pump_pressure_pv")
    cw_target, bw_target = (math.nan, math.nan) if pour is None else pour.targets(tick.plant)
    conditions = law.detect(
        solids_fraction_target=cw_target,
        binder_ratio_target=bw_target,
        # The paste as estimated, not a single reading (service.core.paste_estimate).
        measured_solids_fraction=pour.estimate.solids_fraction if output and pour else None,
        measured_binder_ratio=pour.estimate.binder_ratio if output and pour else None,
        pump_pressure_kpa=pressure.value if pressure.usable else None,
        faulted_feeders=inputs.faulted if inputs else frozenset(),
        link_up=readings.connected,
        stale_inputs=output.stale_inputs if output else (),
        recipe_unreachable=output.recipe_unreachable if output else False,
        remote_enabled=readings.flag("remote_enabled"),
        producing=output is not None and output.mode is law.ControlMode.ACTIVE,
        config=config.alarms,
    )
    conditions.update(stope if readings.connected else {})
    conditions.update(pause_conditions(pour))
    conditions.update(
        ins.fallback_conditions(state.fallback, None if pour is None else pour.binder)
    )
    balance = None if state.balance is None else state.balance.condition()
    if balance is not None:
        conditions[law.AlarmCode.INSTRUMENTS_DISAGREE] = balance
    book = law.evaluate(state.alarms, conditions, tick.wall, config.alarms)
    notes: list[Effect] = [
        Note(logging.WARNING, "alarm %s", (change,)) for change in law.changes(state.alarms, book)
    ]
    return replace(state, alarms=book), notes
