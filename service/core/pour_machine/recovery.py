"""Paste placed around a crash: what the plant placed while no cycle integrated it.

A pour's record is checkpointed every few seconds; when the service dies, the plant runs
on until its heartbeat watchdog stops it, and none of that paste is in the record. After
the restart the pour is found running (it is paused), and the volume since the last
checkpoint is taken from the plant:

- ``plc_totaliser``: the PLC's paste totaliser (``paste_volume_total_pv``), whose reading
  the record keeps beside every checkpoint: the difference is what the pump delivered
  since, the watchdog's run-on included (exact to the totaliser's resolution);
- ``paste_flow_history``: without a totaliser, the paste flow the history holds after
  the checkpoint (a lower bound: the run-on after the last history row is not seen);
- ``none``: neither says anything (no totaliser, no history row after the checkpoint;
  or the totaliser restarted with its PLC): the record says so.

It goes where the paste went at the checkpoint (the stope, or the dump by the diverter's
proven position), as unmeasured volume at the recipe's proportions
(:func:`service.core.control.add_unrecorded`), and the interruption that the restart
opened names the volume and its basis.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from service.core import control as law
from service.core.pour_machine.model import (
    Decision,
    Effect,
    FollowPlan,
    Keep,
    MachineState,
    Note,
    Tick,
)

TOTALISER_TAG = "paste_volume_total_pv"
# A totaliser that went back by more than this restarted (with its PLC): not a volume.
_RESTART_M3 = 1.0e-3


def totaliser_volume(
    at_checkpoint_m3: float | None, reading: law.Measurement
) -> tuple[float | None, str]:
    """The volume the totaliser delivered since the checkpoint, and why not when None."""
    if at_checkpoint_m3 is None:
        return None, "the record holds no totaliser reading at its last checkpoint"
    if not reading.usable:
        return None, "the totaliser reads bad"
    delta = reading.value - at_checkpoint_m3
    if delta < -_RESTART_M3:
        return None, (
            f"the totaliser went back from {at_checkpoint_m3:.3f} to {reading.value:.3f} m3 "
            "(the PLC restarted)"
        )
    return max(delta, 0.0), ""


def recover(
    state: MachineState,
    pour_id: str,
    volume_m3: float | None,
    *,
    basis: str,
    detail: str,
    tick: Tick,
    totaliser_m3: float | None = None,
) -> Decision:
    """Take the paste placed since the last checkpoint into the pour's record (None:
    unknown, said so) and let the stope's plan see it. ``totaliser_m3``: the totaliser's
    reading the volume was counted to, where the pour's next cycle counts on from (so
    that the recovered paste is not counted twice)."""
    pour = state.pour
    if pour is None or pour.id != pour_id or not pour.unrecorded:
        return Decision(state)
    volume = 0.0 if volume_m3 is None else volume_m3
    totals = law.add_unrecorded(pour.totals, volume, to_dump=pour.to_dump, recipe=pour.recipe)
    where = "dump" if pour.to_dump else "stope"
    items = list(pour.interruptions)
    if items:
        items[-1] = {
            **items[-1],
            "recovered_m3": None if volume_m3 is None else volume,
            "recovered_basis": basis if volume_m3 is not None else "none",
            "recovered_to": where,
            "recovered_detail": detail,
        }
    pour = replace(
        pour,
        totals=totals,
        interruptions=tuple(items),
        unrecorded=False,
        totaliser_m3=totaliser_m3,
    )
    text = (
        f"pour {pour.id}: {volume:.3f} m3 placed ({where}) while the service was down, "
        f"by the {basis.replace('_', ' ')}"
        if volume_m3 is not None
        else f"pour {pour.id}: the paste placed while the service was down is not known: {detail}"
    )
    effects: list[Effect] = [Keep(pour), Note(logging.WARNING, text)]
    if pour.context is not None:
        effects.append(FollowPlan(pour))
    return Decision(replace(state, pour=pour), tuple(effects))
