"""The pour as a pure machine: what the supervisor decides, without doing any of it.

One plant runs one pour at a time. Each decision takes the machine's state, the plant's
readings (:class:`~service.core.plant_readings.Readings`) and the time (:class:`Tick`),
and returns the new state with the effects the running part must carry out, in order
(:class:`Decision`): setpoint sets to write (:class:`Write`), a pour record to keep
(:class:`Keep`), the stope's plan to tell what a pour placed (:class:`FollowPlan`), a
resume to carry out (:class:`Resume`), lines for the log (:class:`Note`). The machine
never learns what happened unless told: a write's outcome comes back through
:func:`written`, the plan's answer through :func:`plan_answer`. The input state is never
changed.

Safety rules kept here (the control law keeps its own): nothing is written unless the
PLC is connected and in remote; a PLC that drops out of remote, faults or stops, a link
lost for longer than ``link_loss_pause_wall_s``, the barricade at its rating, a dead set
of gauges or a diverter that does not prove its position pauses the running pour with an
interruption; a stop that could not be written stays pending and goes out as soon as
the link is back; a start or a resume always gives the PLC a clean rising edge of
``run_request``; a pour runs only a plausible recipe, and only an approved one unless
the site allows otherwise.
"""

from service.core.pour_machine.actions import (
    acknowledge,
    finish,
    pause,
    require_active,
    require_feeders,
    require_plant_ready,
    require_runnable,
    resume,
    send_pending_stop,
    start,
    written,
)
from service.core.pour_machine.cycle import cycle, plan_answer, take_over
from service.core.pour_machine.model import (
    Decision,
    DumpLimits,
    Effect,
    FollowPlan,
    Handover,
    Keep,
    MachineConfig,
    MachineState,
    Note,
    PourContext,
    PourRun,
    RecipeFacts,
    Resume,
    Tick,
    Write,
    WriteKind,
    control_recipe,
)

__all__ = [
    "Decision",
    "DumpLimits",
    "Effect",
    "FollowPlan",
    "Handover",
    "Keep",
    "MachineConfig",
    "MachineState",
    "Note",
    "PourContext",
    "PourRun",
    "RecipeFacts",
    "Resume",
    "Tick",
    "Write",
    "WriteKind",
    "acknowledge",
    "control_recipe",
    "cycle",
    "finish",
    "pause",
    "plan_answer",
    "require_active",
    "require_feeders",
    "require_plant_ready",
    "require_runnable",
    "resume",
    "send_pending_stop",
    "start",
    "take_over",
    "written",
]
