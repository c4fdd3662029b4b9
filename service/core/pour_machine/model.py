"""The pour machine's values: its configuration, the time, the pour it supervises, its
state between decisions, and the effects a decision asks the running part to carry out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from service.core import control as law
from service.core import diversion as dv
from service.core import instruments as ins
from service.core import paste_estimate as pe
from service.core import plant_readings as pr
from service.core.plans import PlanEvent, StopeGeometry
from service.core.pour_states import PourState
from service.core.recipe_limits import RecipeLimits
from service.errors import InvalidInput

SetpointValue = pr.SetpointValue


# --- configuration, time, context -----------------------------------------------------------


@dataclass(frozen=True)
class MachineConfig:
    """Timing and limits (plant seconds unless named wall). ``scale``: plant time per
    wall time (the built-in simulator may run faster). ``balance``: the "instruments
    disagree" check as it starts (None: the check is off)."""

    cycle_s: float = 1.0
    scale: float = 1.0
    checkpoint_interval_wall_s: float = 5.0
    link_loss_pause_wall_s: float = 5.0
    write_refresh_s: float = 30.0
    # A nuclear or Coriolis densitometer always carries noise: a reading that does not
    # change at all for this long while paste flows is a stuck sensor, treated as bad.
    stuck_after_s: float = 20.0
    # After a start or resume the PLC flushes, then runs; a plant still not running
    # this long after run_request went true (a start refused, an edge the PLC did not
    # see, a permit missing) pauses the pour instead of leaving it "running" idle.
    start_timeout_s: float = 300.0
    recipe_limits: RecipeLimits = field(default_factory=RecipeLimits)
    allow_unapproved: bool = False
    diverter: dv.DiverterConfig = field(default_factory=dv.DiverterConfig)
    fallback: law.FallbackConfig = field(default_factory=law.FallbackConfig)
    balance: ins.BalanceCheck | None = None
    # Plant seconds of steady production before the balance is judged (the mixer and
    # the transport dead times settle after a start, a resume or a rate change).
    balance_settle_s: float = 60.0
    control: law.ControlConfig = field(default_factory=law.ControlConfig)
    alarms: law.AlarmConfig = field(default_factory=law.AlarmConfig)
    estimate: pe.EstimateConfig = field(default_factory=pe.EstimateConfig)
    dump: DumpLimits = field(default_factory=lambda: DumpLimits())


@dataclass(frozen=True)
class DumpLimits:
    """What a pour may send to the dump since its last start or resume before it pauses
    (plant seconds): the volume, the time, and how long the recipe may stay out of the
    feed's reach. 0 turns a limit off."""

    max_volume_m3: float = 10.0
    max_s: float = 900.0
    unreachable_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Tick:
    """Now, three ways: the monotonic clock (wall seconds), plant time (holds, settle
    and travel times), and the wall clock (records)."""

    mono: float
    plant: datetime
    wall: datetime


@dataclass(frozen=True, slots=True)
class PourContext:
    """The stope a pour fills: its name, plan area, the barricade rating and its alarm
    fraction, and the rise-rate limit of its stage. ``geometry``: the stope's
    volume-height curve (None: a prism of ``plan_area_m2``); ``barricade_tags``: the
    stope's own barricades (None: every barricade tag of the plant)."""

    stope: str
    stage: int | None
    stage_name: str | None
    plan_area_m2: float
    barricade_rating_kpa: float
    barricade_high_fraction: float
    max_rise_rate_m_h: float | None
    placed_before_m3: float  # the stope's volume placed by its other pours
    # The stope's fill plan in force (None: the stope has none), and the state of the
    # pour's stage in it ("ready" or "filling" take paste; "not_current" when the plan
    # has moved past the pour's stage).
    plan_version: int | None = None
    stage_state: str | None = None
    geometry: StopeGeometry | None = None
    barricade_tags: tuple[str, ...] | None = None

    def refuses_paste(self) -> str | None:
        """Why this stope takes no paste from the pour now (None: it does). A stope with
        a plan takes paste only through the pour of its current stage, while it fills."""
        if self.plan_version is None:
            return None
        if self.stage is None:
            return (
                f"stope {self.stope!r} has a fill plan (version {self.plan_version}): paste "
                "enters it only through the pour of its current stage "
                "(POST /api/v1/stopes/{id}/pours)"
            )
        if self.stage_state not in ("ready", "filling"):
            return (
                f"stage {self.stage_name!r} of stope {self.stope!r} is {self.stage_state}: "
                "no paste until it is released (or the plan revised)"
            )
        return None

    def area_m2(self, poured_m3: float = 0.0) -> float:
        """The plan area where the fill is once the pour has placed ``poured_m3``."""
        if self.geometry is None:
            return self.plan_area_m2
        return self.geometry.area_at_volume_m2(self.placed_before_m3 + max(poured_m3, 0.0))

    def paste_flow_limit_m3_h(self, poured_m3: float = 0.0) -> float | None:
        """The paste flow that holds the stage's rise rate where the fill is (rise =
        flow / the plan area at the fill height)."""
        if self.max_rise_rate_m_h is None:
            return None
        return self.max_rise_rate_m_h * self.area_m2(poured_m3)


@dataclass(frozen=True, slots=True)
class RecipeFacts:
    """What a start or resume checks of the pour's stored recipe version."""

    id: str
    name: str
    version: int
    mix: Mapping[str, Any]
    approved: bool


# --- the pour and the machine's state ---------------------------------------------------------


@dataclass(frozen=True)
class PourRun:
    """The pour the machine supervises: the part of its record the machine owns (state,
    times, totals, interruptions) and what control carries from cycle to cycle.
    ``density_bias_kg_m3``: an approved paste density gauge correction, taken off the
    reading (a tailings Gs correction is already in ``recipe``)."""

    id: str
    stope_id: str
    state: PourState
    target_volume_m3: float
    paste_flow_m3_h: float
    recipe: law.Recipe
    totals: law.PourTotals = field(default_factory=law.PourTotals)
    interruptions: tuple[Mapping[str, Any], ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    context: PourContext | None = None
    density_bias_kg_m3: float = 0.0
    control: law.ControlState = field(default_factory=law.ControlState.initial)
    plant_was_running: bool = False
    run_requested_mono: float | None = None  # when run_request last went true
    last_checkpoint_mono: float = -math.inf
    diverter: dv.DiverterState = field(default_factory=dv.DiverterState)
    binder: ins.BinderSource = field(default_factory=ins.BinderSource)
    steady_since: datetime | None = None  # plant time the balance's conditions began
    # The PLC's paste totaliser (paste_volume_total_pv) when ``totals`` were integrated,
    # and where the paste went then: after a crash, what the plant placed since the last
    # checkpoint is the totaliser's difference (pour_machine.recovery).
    totaliser_m3: float | None = None
    to_dump: bool = False
    # Found running after a crash: the paste placed since its last checkpoint is not in
    # the totals yet (taken from the totaliser once the link is up).
    unrecorded: bool = False
    # The paste it places, estimated from the readings (service.core.paste_estimate).
    estimate: pe.PasteEstimate = field(default_factory=pe.PasteEstimate)
    # Since the last start or resume: the dumped volume then, the plant seconds of paste
    # sent to the dump, and how long the recipe has been out of the feed's reach.
    dump_base_m3: float = 0.0
    dump_s: float = 0.0
    unreachable_s: float = 0.0
    # A recipe switch without a stop (a continuous plan): the recipe before it (Cw, Bw)
    # and the plant time of the switch; the paste the mixer delivers moves from one to
    # the other over its residence time, and is judged against that move.
    switched_from: tuple[float, float] | None = None
    switched_at: datetime | None = None
    # Whether the lab has verified the tailings Gs the Cw rests on (and how): until it
    # has, the record's Cw is unverified, whatever the gauges say.
    solids_verified: bool = False
    solids_basis: str = ""

    def targets(self, now: datetime) -> tuple[float, float]:
        """The Cw and Bw the paste is judged against now: the recipe's, or during a
        switch the well-mixed tank's response from the recipe before to this one,
        ``target(t) = new + (old - new) exp(-t / tau)`` (a stirred tank's step response;
        Levenspiel, O. (1999) Chemical Reaction Engineering, 3rd ed., Wiley, ch. 14)."""
        cw, bw = self.recipe.solids_fraction, self.recipe.binder_ratio
        if self.switched_from is None or self.switched_at is None:
            return cw, bw
        tau = self.estimate.residence_s or 45.0
        t = max((now - self.switched_at).total_seconds(), 0.0)
        if t > 10.0 * tau:
            return cw, bw
        left = math.exp(-t / tau)
        old_cw, old_bw = self.switched_from
        return cw + (old_cw - cw) * left, bw + (old_bw - bw) * left

    def interrupted(self, reason: str, at: datetime, detail: str | None = None) -> PourRun:
        entry: dict[str, Any] = {"reason": reason, "started_at": at.isoformat()}
        if detail:
            entry["detail"] = detail
        return replace(self, interruptions=(*self.interruptions, entry))

    @property
    def paused_for(self) -> str | None:
        """The reason of the interruption a paused pour waits in (None: not paused)."""
        if self.state is not PourState.PAUSED or not self.interruptions:
            return None
        last = self.interruptions[-1]
        return None if "ended_at" in last else str(last.get("reason"))

    def interruption_ended(self, at: datetime) -> PourRun:
        items = list(self.interruptions)
        if items and "ended_at" not in items[-1]:
            items[-1] = {**items[-1], "ended_at": at.isoformat()}
        return replace(self, interruptions=tuple(items))


@dataclass(frozen=True)
class MachineState:
    """Everything the machine remembers between decisions. ``written``: what this
    process last had the PLC accept; ``stop_pending``: a stop (pour id, reason) that
    could not be written yet; ``auto_resume``: a pour a new writer continues by itself
    once the plant accepts setpoints."""

    pour: PourRun | None = None
    alarms: law.AlarmBook = field(default_factory=law.AlarmBook.empty)
    written: Mapping[str, SetpointValue] = field(default_factory=dict)
    last_write_mono: float = -math.inf
    link_down_since: float | None = None
    stuck: pr.StuckTracker = field(default_factory=pr.StuckTracker)
    stop_pending: tuple[str, str] | None = None
    auto_resume: str | None = None
    fallback: law.FallbackDecision | None = None
    balance: ins.BalanceCheck | None = None
    last_output: law.ControlOutput | None = None
    last_cycle_mono: float | None = None

    @classmethod
    def initial(cls, config: MachineConfig) -> MachineState:
        return cls(alarms=law.AlarmBook.empty(config.alarms), balance=config.balance)


# --- effects --------------------------------------------------------------------------------


class WriteKind(StrEnum):
    """What a write is for, which says what its failure means: ``stop`` stays pending
    until written; ``edge`` (the falling edge before a start) and ``command`` (a start's
    or resume's first set) fail the action; ``correction`` is retried next cycle."""

    STOP = "stop"
    EDGE = "edge"
    COMMAND = "command"
    CORRECTION = "correction"


@dataclass(frozen=True, slots=True)
class Write:
    values: Mapping[str, SetpointValue]
    pour_id: str | None
    reason: str
    role: str
    kind: WriteKind
    person: str | None = None  # who asked (the running part names them), None: the service


@dataclass(frozen=True, slots=True)
class Keep:
    """Keep this record of the pour (queued for the store; never waited on)."""

    pour: PourRun


@dataclass(frozen=True, slots=True)
class FollowPlan:
    """Tell the stope's plan what the pour has placed; its answer goes to
    :func:`plan_answer`."""

    pour: PourRun


@dataclass(frozen=True, slots=True)
class Resume:
    """Continue this pour (a new writer's take-over) as an operator's resume would."""

    pour_id: str


@dataclass(frozen=True, slots=True)
class Handover:
    """A continuous plan reached a stage's top: the stage's pour ends (``ended``, to be
    stored before the next stage's pour is measured from it) and the next stage's pour
    takes over."""

    ended: PourRun
    event: PlanEvent


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the log: ``message`` %-formatted with ``args`` (an alarm change is
    logged as itself, so a JSON log carries its fields)."""

    level: int
    message: str
    args: tuple[Any, ...] = ()


Effect = Write | Keep | FollowPlan | Resume | Handover | Note


@dataclass(frozen=True)
class Decision:
    state: MachineState
    effects: tuple[Effect, ...] = ()


def control_recipe(mix: Mapping[str, Any]) -> law.Recipe:
    """The control law's recipe from a stored mix (API percentages -> fractions).

    Binder components must be feeders the plant has (cement, slag, flyash)."""
    blend: dict[str, float] = {}
    sg: dict[str, float] = {}
    for i, comp in enumerate(mix["binder"]):
        name = str(comp["name"])
        if name not in law.BINDER_COMPONENTS:
            raise InvalidInput(
                f"recipe.binder[{i}].name",
                f"the plant has no feeder for {name!r}; feeders: "
                + ", ".join(law.BINDER_COMPONENTS),
            )
        blend[name] = float(comp["fraction_pct"]) / 100.0
        sg[name] = float(comp["specific_gravity"])
    return law.make_recipe(
        binder_ratio=float(mix["binder_pct"]) / 100.0,
        solids_fraction=float(mix["solids_pct"]) / 100.0,
        tailings_sg=float(mix["tailings"]["specific_gravity"]),
        blend=blend,
        binder_sg=sg,
    )
