"""A pour's actions (start, resume, pause, finish) and the writes they need: the checks
that refuse them, the rising edge of ``run_request``, the stop that stays pending until
the PLC has it."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from service.core import control as law
from service.core import diversion as dv
from service.core import paste_estimate as pe
from service.core import plant_readings as pr
from service.core.pour_machine.model import (
    Decision,
    Effect,
    Keep,
    MachineConfig,
    MachineState,
    Note,
    PourRun,
    RecipeFacts,
    SetpointValue,
    Tick,
    Write,
    WriteKind,
)
from service.core.pour_machine.recovery import TOTALISER_TAG
from service.core.pour_states import PourAction, PourState, next_state
from service.core.recipe_limits import check_mix
from service.errors import Conflict, InvalidInput, PlantLinkDown, PlantNotReady

# --- checks a start or resume makes -----------------------------------------------------------


def require_plant_ready(readings: pr.Readings) -> None:
    reason = readings.not_ready_reason()
    if reason == "link_down":
        raise PlantLinkDown("the PLC link is down; cannot start the plant")
    if reason == "not_remote":
        raise PlantNotReady("the PLC is not in remote: it does not accept setpoints")
    if reason == "fault":
        raise PlantNotReady("the PLC reports a fault; reset it at the plant first")


def require_runnable(recipe: RecipeFacts, config: MachineConfig) -> None:
    """A plausible recipe (by today's site limits, whenever it was stored) and, unless
    the site allows otherwise, an approved one."""
    check_mix(recipe.mix, config.recipe_limits, prefix="recipe.")
    if not recipe.approved and not config.allow_unapproved:
        raise Conflict(
            f"recipe {recipe.name!r} version {recipe.version} is not approved: an "
            f"engineer approves it (POST /api/v1/recipes/{recipe.id}/approve), or the "
            "site allows unapproved recipes (BACKFILL_RECIPES__ALLOW_UNAPPROVED)",
            code="recipe_not_approved",
            recipe_id=recipe.id,
        )


def require_stope_open(pour: PourRun) -> None:
    """Refuse paste a stope does not take now (a stage curing, a plan to go through)."""
    why = None if pour.context is None else pour.context.refuses_paste()
    if why is not None:
        code = "stope_planned" if pour.context and pour.context.stage is None else "stage_not_ready"
        raise Conflict(why, code=code)


def require_barricade_below_rating(pour: PourRun, readings: pr.Readings) -> None:
    """Refuse paste while the stope's barricade is at or above its rating (the cycle
    would pause the pour again at once), naming the barricade."""
    ctx = pour.context
    if ctx is None:
        return
    _, at_rating = pr.barricade(
        readings, ctx.barricade_rating_kpa, ctx.barricade_high_fraction, ctx.barricade_tags
    )
    if at_rating is not None:
        tag = at_rating.split(":", 1)[1]
        reading = readings.values.get(tag)
        value = "" if reading is None else f" reads {reading.value} kPa"
        raise Conflict(
            f"barricade {tag!r} of stope {ctx.stope!r}{value}, at or above its rating of "
            f"{ctx.barricade_rating_kpa:g} kPa: no paste until its pressure falls below the "
            "rating (it relaxes as the fill consolidates); then resume",
            code="barricade_at_rating",
            barricade=tag,
            rating_kpa=ctx.barricade_rating_kpa,
        )


def require_feeders(recipe: law.Recipe, setpoint_tags: frozenset[str]) -> None:
    """Refuse a recipe whose binder needs a feeder this plant's tag map lacks."""
    for i, name in enumerate(recipe.component_names):
        if f"{name}_rate_sp" not in setpoint_tags:
            raise InvalidInput(
                f"recipe.binder[{i}].name",
                f"this plant has no {name} feeder in its tag map ({name}_rate_sp)",
                code="feeder_not_available",
            )


# --- pour actions ---------------------------------------------------------------------------


def start(
    state: MachineState,
    pour: PourRun,
    recipe: RecipeFacts,
    readings: pr.Readings,
    tick: Tick,
    config: MachineConfig,
    *,
    role: str,
) -> Decision:
    """Start a planned pour: the checks (one pour at a time, the plant ready, the recipe
    runnable, a feeder for every binder), then the falling edge of ``run_request`` when
    the PLC could still hold it true, and the first setpoint set with ``run_request``
    true (to the dump first, where the plant has a diverter). Raises when refused."""
    next_state(pour.state, PourAction.START)
    active = state.pour
    if active is not None and active.id != pour.id:
        raise Conflict(
            f"pour {active.id} is {active.state.value}; one pour at a time per plant",
            code="pour_already_active",
            active_pour_id=active.id,
        )
    require_plant_ready(readings)
    require_runnable(recipe, config)
    require_feeders(pour.recipe, readings.setpoint_tags)
    require_stope_open(pour)
    require_barricade_below_rating(pour, readings)
    started = replace(
        pour,
        state=PourState.RUNNING,
        started_at=tick.wall,
        last_checkpoint_mono=tick.mono,
        run_requested_mono=tick.mono,
        estimate=pe.PasteEstimate(),
        dump_base_m3=pour.totals.dumped_m3,
        dump_s=0.0,
        unreachable_s=0.0,
        # The paste counts on from the totaliser as it reads now: what it counted while
        # the pour was paused (a local run of the plant) is not this pour's.
        totaliser_m3=_totaliser_now(readings),
    )
    return _go(replace(state, pour=started), started, readings, tick, config, role=role)


def resume(
    state: MachineState,
    pour_id: str,
    recipe: RecipeFacts,
    readings: pr.Readings,
    tick: Tick,
    config: MachineConfig,
    *,
    role: str,
) -> Decision:
    """Resume the paused pour: the same checks and rising edge as a start; its
    interruption ends now and the gauges are judged afresh. The running part stores
    the resumed record before it carries out the writes, as for a start."""
    pour = require_active(state, pour_id)
    next_state(pour.state, PourAction.RESUME)
    require_plant_ready(readings)
    require_runnable(recipe, config)
    require_stope_open(pour)
    require_barricade_below_rating(pour, readings)
    if pour.unrecorded:
        raise Conflict(
            f"pour {pour_id}: the paste placed while the service was down is not known yet "
            "(the PLC's totaliser does not read good); resume once it does, or stop the pour",
            code="pour_volume_unknown",
        )
    resumed = replace(
        pour.interruption_ended(tick.wall),
        state=PourState.RUNNING,
        plant_was_running=False,
        binder=pour.binder.resumed(),
        run_requested_mono=tick.mono,
        # The plant flushed at the pause: a new mixer load, a new allowance of the dump.
        estimate=pe.PasteEstimate(),
        dump_base_m3=pour.totals.dumped_m3,
        dump_s=0.0,
        unreachable_s=0.0,
        # The paste counts on from the totaliser as it reads now: what it counted while
        # the pour was paused (a local run of the plant) is not this pour's.
        totaliser_m3=_totaliser_now(readings),
    )
    return _go(
        replace(state, pour=resumed, auto_resume=None), resumed, readings, tick, config, role=role
    )


def _totaliser_now(readings: pr.Readings) -> float | None:
    reading = readings.measurement(TOTALISER_TAG)
    return reading.value if reading.usable else None


def _go(
    state: MachineState,
    pour: PourRun,
    readings: pr.Readings,
    tick: Tick,
    config: MachineConfig,
    *,
    role: str,
) -> Decision:
    """The writes of a start or resume. A PLC starts on a rising edge of run_request:
    unless this process's last write of it was false (a stop), or the plant runs
    already, it is dropped first. It may still be true from before a trip or a lost
    link (a reconnecting link re-sends its last set); after a restart the process does
    not know what the PLC holds, so its first start or resume always drops it."""
    effects: list[Effect] = []
    held = readings.held.get("run_request")
    dropped = held is False
    if (not readings.mode_is(pr.MODE_RUNNING) and not dropped) or state.stop_pending:
        edge = _stop_write(pour.id, "falling_edge", readings, state, role, WriteKind.EDGE)
        effects.append(edge)
        # The first set follows from what the PLC holds once the edge is written.
        readings = replace(readings, held={**readings.held, **edge.values})
    state = replace(state, stop_pending=None)
    control, output = law.step(pour.control, inputs_of(readings, pour), config.control, 0.0)
    pour = replace(pour, control=control)
    values = setpoint_values(output, readings, divert_to_dump=None)
    effects.append(Write(values, pour.id, "recipe", role, WriteKind.COMMAND))
    return Decision(replace(state, pour=pour, last_output=output), tuple(effects))


def pause(
    state: MachineState,
    pour_id: str,
    tick: Tick,
    readings: pr.Readings,
    *,
    role: str,
    reason: str,
    detail: str | None = None,
) -> Decision:
    """Pause: the new record is kept in the same step that makes it (a store outage
    never holds up a stop), then the PLC is asked to stop. ``detail`` says why, in the
    interruption."""
    pour = require_active(state, pour_id)
    target = next_state(pour.state, PourAction.PAUSE)
    paused = replace(pour.interrupted(reason, tick.wall, detail), state=target)
    return _request_stop(
        replace(state, pour=paused),
        paused,
        readings,
        role=role,
        reason="operator" if role != "service" else reason,
        notes=(
            Note(
                logging.WARNING,
                f"pour {pour_id} paused: {reason}" + (f" ({detail})" if detail else ""),
            ),
        ),
    )


def finish(
    state: MachineState,
    pour_id: str,
    target: PourState,
    tick: Tick,
    readings: pr.Readings,
    *,
    role: str,
) -> Decision:
    """End the active pour (completed at its target or a stage's top, or stopped)."""
    pour = require_active(state, pour_id)
    if target is PourState.STOPPED:
        next_state(pour.state, PourAction.STOP)
    ended = replace(pour.interruption_ended(tick.wall), state=target, ended_at=tick.wall)
    return _request_stop(
        replace(state, pour=None),
        ended,
        readings,
        role=role,
        reason="operator" if role != "service" else "complete",
        notes=(
            Note(
                logging.INFO,
                f"pour {pour_id} {target.value} at {ended.totals.poured_m3:.2f} m3",
            ),
        ),
    )


def _request_stop(
    state: MachineState,
    pour: PourRun,
    readings: pr.Readings,
    *,
    role: str,
    reason: str,
    notes: tuple[Note, ...],
) -> Decision:
    """Keep the record, then ask the PLC to stop (it flushes by itself). A stop that
    cannot be written now stays pending and goes as soon as the link is back (the PLC's
    own watchdog has stopped the plant meanwhile); the record is already safe."""
    state = replace(state, stop_pending=(pour.id, reason))
    effects: list[Effect] = [Keep(pour), *notes]
    effects.extend(send_pending_stop(state, readings, role=role))
    return Decision(state, tuple(effects))


def send_pending_stop(
    state: MachineState, readings: pr.Readings, *, role: str = "service"
) -> tuple[Effect, ...]:
    """The write of a pending stop, when the link is up (none otherwise)."""
    if state.stop_pending is None:
        return ()
    pour_id, reason = state.stop_pending
    if not readings.connected:
        return (Note(logging.WARNING, f"pour {pour_id}: PLC link down, stop request pending"),)
    return (_stop_write(pour_id, reason, readings, state, role, WriteKind.STOP),)


def _stop_write(
    pour_id: str,
    reason: str,
    readings: pr.Readings,
    state: MachineState,
    role: str,
    kind: WriteKind,
) -> Write:
    values: dict[str, SetpointValue] = {"run_request": False}
    for name in law.BINDER_COMPONENTS:
        if f"{name}_rate_sp" in state.written:
            values[f"{name}_rate_sp"] = 0.0
    if readings.diverter_installed():
        values[dv.DIVERT_SP_TAG] = True  # the flush goes to the dump
    return Write(values, pour_id, reason, role, kind)


def written(state: MachineState, write: Write, ok: bool, mono: float) -> MachineState:
    """A write's outcome: what the PLC accepted, and a stop no longer pending."""
    if not ok:
        return state
    new = replace(state, written={**state.written, **write.values}, last_write_mono=mono)
    if write.kind in (WriteKind.STOP, WriteKind.EDGE) and state.stop_pending is not None:
        new = replace(new, stop_pending=None)
    return new


def acknowledge(state: MachineState, code: str, by: str, now: datetime) -> MachineState:
    return replace(state, alarms=law.acknowledge(state.alarms, code, by, now))


def require_active(state: MachineState, pour_id: str) -> PourRun:
    pour = state.pour
    if pour is None or pour.id != pour_id:
        raise Conflict(f"pour {pour_id} is not the active pour", code="pour_not_active")
    return pour


def paste_density(readings: pr.Readings, pour: PourRun) -> law.Measurement:
    """The paste density as control uses it: an approved gauge bias taken off."""
    m = readings.measurement("paste_density_pv")
    if not m.usable or pour.density_bias_kg_m3 == 0.0:
        return m
    return law.Measurement(m.value - pour.density_bias_kg_m3)


def inputs_of(readings: pr.Readings, pour: PourRun) -> law.ControlInputs:
    components = pour.recipe.component_names
    flow = pour.paste_flow_m3_h
    limit = (
        None if pour.context is None else pour.context.paste_flow_limit_m3_h(pour.totals.poured_m3)
    )
    return law.ControlInputs(
        recipe=pour.recipe,
        # The stage's rise rate bounds the paste flow (rise = flow / plan area).
        paste_flow_request_m3_h=flow if limit is None else min(flow, limit),
        tailings_flow_m3_h=readings.measurement("tailings_flow_pv"),
        tailings_density_kg_m3=readings.measurement("tailings_density_pv"),
        paste_density_kg_m3=paste_density(readings, pour),
        binder_rates_t_h={c: readings.measurement(f"{c}_rate_pv") for c in components},
        refilling=frozenset(c for c in components if readings.flag(f"{c}_refill")),
        faulted=frozenset(c for c in components if readings.flag(f"{c}_fault")),
        pour_running=True,
        remote_enabled=readings.flag("remote_enabled"),
        plant_running=readings.mode_is(pr.MODE_RUNNING),
        current_setpoints=pr.current_setpoints(readings),
    )


def setpoint_values(
    output: law.ControlOutput, readings: pr.Readings, *, divert_to_dump: bool | None
) -> dict[str, SetpointValue]:
    """The law's setpoints this plant has (a plant without a fly ash feeder has no
    flyash_rate_sp), run_request true, and the diverter's command where there is one
    (a start goes to the dump first)."""
    mapped = readings.setpoint_tags
    values: dict[str, SetpointValue] = {
        tag: value for tag, value in output.setpoints.as_tags().items() if tag in mapped
    }
    values["run_request"] = True
    if readings.diverter_installed():
        values[dv.DIVERT_SP_TAG] = True if divert_to_dump is None else divert_to_dump
    return values
