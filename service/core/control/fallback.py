"""A dead gauge is not a last value: what the binder follows when the feed gauges fail.

Normally the binder is ratioed on the measured feed (binder per component = Bw x dry
tailings x blend fraction, dry tailings from the feed flow and density; the relations of
:mod:`.massbalance`, with their sources), and :func:`service.core.control.law.step`
freezes the feed at its last good values when a feed gauge goes bad. Frozen for ever, a
dead gauge would be dosing binder on a value that no longer describes the plant. This state machine,
run once per control cycle with the time passed in, bounds that:

- ``normal``: feed flow and feed density usable; the law runs as it is.
- ``holding``: a feed gauge is bad; the law keeps the last good correction for at most
  ``hold_s`` (settable, 60 plant seconds by default) after the last cycle the feed was
  good, and the decision says how long is left.
- ``paste_flow_ratio``: the hold ran out (or there was never a good feed reading to
  hold) and the paste flow meter is good: the binder is ratioed on the paste flow
  instead, :func:`paste_flow_binder`. If the paste flow then goes bad, its last ratio is
  held for ``hold_s`` in the same way.
- ``pause``: neither can carry the binder: pause the pour, with a high alarm and the
  reason. Latched: only :func:`resume_fallback` (the operator resuming the pour) leaves it.

Recovery: from ``holding`` the feed is trusted again at its first good cycle (nothing
was switched); from ``paste_flow_ratio`` it must stay good for ``recover_s`` (a gauge
flickering back must not bounce the binder between two sources; the law's rate limits
make the switch bumpless).

In ``paste_flow_ratio`` the water and feed setpoints have no feed measurement to be
recomputed from: the caller holds them (the law's paste-density water trim may still
act when the paste density is good).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal

from service.core.control.alarms import AlarmCode, Severity
from service.core.control.massbalance import (
    BINDER_COMPONENTS,
    RHO_W_KG_M3,
    Recipe,
    paste_density_kg_m3,
    slurry_solids_fraction,
    solids_sg,
)
from service.errors import InvalidInput


class FallbackMode(StrEnum):
    """Where the binder ratio comes from this cycle (see the module docstring)."""

    NORMAL = "normal"
    HOLDING = "holding"
    PASTE_FLOW_RATIO = "paste_flow_ratio"
    PAUSE = "pause"


HeldSource = Literal["feed", "paste_flow"]

# Stable codes for the alarm book (the supervisor maps them to its alarm codes).
ALARM_HOLDING = AlarmCode.FEED_GAUGE_HOLDING
ALARM_PASTE_FLOW_RATIO = AlarmCode.BINDER_ON_PASTE_FLOW
ALARM_PAUSE = AlarmCode.GAUGES_DEAD_PAUSE


@dataclass(frozen=True)
class FallbackConfig:
    """``hold_s``: how long a last good correction may stand in for a dead gauge (plant
    seconds). ``recover_s``: how long the feed gauges must be good again before the
    binder goes back from the paste flow to the feed."""

    hold_s: float = 60.0
    recover_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("hold_s", "recover_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise InvalidInput(name, f"{name} must be finite and >= 0 ({value!r})")


@dataclass(frozen=True)
class GaugeHealth:
    """Which gauges are usable this cycle (good quality, fresh, finite, plausible)."""

    feed_flow: bool
    feed_density: bool
    paste_flow: bool
    paste_density: bool

    @property
    def feed(self) -> bool:
        """Both feed gauges usable: the feed-forward can be computed."""
        return self.feed_flow and self.feed_density


@dataclass(frozen=True)
class FallbackState:
    """Memory between cycles. ``feed_last_good_at`` / ``paste_flow_last_good_at``: the
    last cycle each source was good (None: never, so there is nothing to hold);
    ``feed_good_since``: the start of the current good run of the feed gauges."""

    mode: FallbackMode = FallbackMode.NORMAL
    held: HeldSource | None = None
    feed_last_good_at: datetime | None = None
    paste_flow_last_good_at: datetime | None = None
    feed_good_since: datetime | None = None
    reason: str = ""

    @classmethod
    def initial(cls) -> FallbackState:
        return cls()


@dataclass(frozen=True)
class FallbackDecision:
    """What the binder follows this cycle.

    ``held`` names what is held in ``holding`` (``feed``: the law's last feed
    correction; ``paste_flow``: the last paste-flow ratio) and ``hold_left_s`` the time
    left. ``use_paste_density``: in ``paste_flow_ratio``, whether the paste density may
    be used (else the recipe's target density). ``alarm_code`` / ``severity`` /
    ``reason``: the alarm condition to raise (None in ``normal``).
    """

    mode: FallbackMode
    held: HeldSource | None
    hold_left_s: float | None
    use_paste_density: bool
    alarm_code: AlarmCode | None
    severity: Severity | None
    reason: str
    changed: bool

    @property
    def pause(self) -> bool:
        return self.mode is FallbackMode.PAUSE


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def _bad_feed(health: GaugeHealth) -> str:
    dead = [
        name
        for name, ok in (
            ("tailings_flow_pv", health.feed_flow),
            ("tailings_density_pv", health.feed_density),
        )
        if not ok
    ]
    return " and ".join(dead)


def fallback_step(
    state: FallbackState,
    health: GaugeHealth,
    now: datetime,
    config: FallbackConfig | None = None,
) -> tuple[FallbackState, FallbackDecision]:
    """Advance the dead-gauge state machine by one cycle at ``now`` (see the module
    docstring for the modes and transitions)."""
    cfg = config or FallbackConfig()
    feed_last = now if health.feed else state.feed_last_good_at
    paste_last = now if health.paste_flow else state.paste_flow_last_good_at
    good_since = (state.feed_good_since or now) if health.feed else None
    previous = state.mode
    held: HeldSource | None = None
    hold_left: float | None = None

    if previous is FallbackMode.PAUSE:
        mode, reason = FallbackMode.PAUSE, state.reason
    elif health.feed and (
        previous in (FallbackMode.NORMAL, FallbackMode.HOLDING) and state.held != "paste_flow"
    ):
        mode, reason = FallbackMode.NORMAL, ""
    elif health.feed and (
        (good_since is not None and _seconds(now, good_since) >= cfg.recover_s)
        or not health.paste_flow
    ):
        # Back from the paste flow once the feed has been good long enough, or at once
        # when the paste flow cannot carry the binder any more.
        mode, reason = FallbackMode.NORMAL, ""
    elif health.feed:
        mode = FallbackMode.PASTE_FLOW_RATIO
        reason = (
            f"feed gauges good again for {_seconds(now, good_since or now):.0f} s of the "
            f"{cfg.recover_s:g} s before the binder returns to the feed"
        )
    else:
        dead = _bad_feed(health)
        can_hold_feed = (
            previous is FallbackMode.NORMAL
            or (previous is FallbackMode.HOLDING and state.held == "feed")
        ) and feed_last is not None
        feed_left = cfg.hold_s - _seconds(now, feed_last) if feed_last is not None else -1.0
        if can_hold_feed and feed_left > 0.0:
            mode, held, hold_left = FallbackMode.HOLDING, "feed", feed_left
            reason = (
                f"{dead} not usable: holding the last good binder correction for "
                f"{feed_left:.0f} s more"
            )
        elif health.paste_flow:
            mode = FallbackMode.PASTE_FLOW_RATIO
            reason = f"{dead} not usable: binder ratioed on the paste flow meter"
        else:
            paste_left = cfg.hold_s - _seconds(now, paste_last) if paste_last is not None else -1.0
            was_on_paste = previous is FallbackMode.PASTE_FLOW_RATIO or (
                previous is FallbackMode.HOLDING and state.held == "paste_flow"
            )
            if was_on_paste and paste_left > 0.0:
                mode, held, hold_left = FallbackMode.HOLDING, "paste_flow", paste_left
                reason = (
                    f"{dead} and paste_flow_pv not usable: holding the last paste-flow "
                    f"binder ratio for {paste_left:.0f} s more"
                )
            else:
                mode = FallbackMode.PAUSE
                reason = (
                    f"{dead} not usable and no good paste flow to ratio the binder on: pour paused"
                )

    alarm_code: AlarmCode | None
    severity: Severity | None
    if mode is FallbackMode.NORMAL:
        alarm_code, severity = None, None
    elif mode is FallbackMode.HOLDING:
        alarm_code, severity = ALARM_HOLDING, Severity.MEDIUM
    elif mode is FallbackMode.PASTE_FLOW_RATIO:
        alarm_code, severity = ALARM_PASTE_FLOW_RATIO, Severity.MEDIUM
    else:
        alarm_code, severity = ALARM_PAUSE, Severity.HIGH
    new_state = FallbackState(
        mode=mode,
        held=held,
        feed_last_good_at=feed_last,
        paste_flow_last_good_at=paste_last,
        feed_good_since=good_since,
        reason=reason,
    )
    decision = FallbackDecision(
        mode=mode,
        held=held,
        hold_left_s=hold_left,
        use_paste_density=health.paste_density,
        alarm_code=alarm_code,
        severity=severity,
        reason=reason,
        changed=mode is not previous or held != state.held,
    )
    return new_state, decision


def resume_fallback(state: FallbackState) -> FallbackState:
    """The operator resumed the pour: leave ``pause``. The next :func:`fallback_step`
    judges the gauges afresh (and pauses again if they are still dead); the last good
    times are kept, so a hold does not restart on a stale correction."""
    return replace(state, mode=FallbackMode.NORMAL, held=None, reason="")


# --- binder on the paste flow -------------------------------------------------------------

DensitySource = Literal["measured", "recipe"]


@dataclass(frozen=True)
class PasteFlowBinder:
    """Binder setpoints ratioed on the paste flow.

    ``binder_t_h`` has every known component (0 for those not in the recipe);
    ``dry_solids_t_h`` / ``dry_tailings_t_h`` are the paste's, from ``density_kg_m3``
    (``measured`` or the ``recipe``'s target) and ``solids_fraction`` (Cw used)."""

    binder_t_h: Mapping[str, float]
    total_binder_t_h: float
    dry_solids_t_h: float
    dry_tailings_t_h: float
    density_kg_m3: float
    density_source: DensitySource
    solids_fraction: float


def paste_flow_binder(
    recipe: Recipe,
    paste_flow_m3_h: float,
    paste_density_kg_m3_: float | None = None,
) -> PasteFlowBinder:
    """Binder per component from the paste flow (Bw over dry tailings and the masses of a
    saturated paste: Belem & Benzaazoua 2008; dry solids rate of a slurry stream: Wills &
    Finch 2016, ch. 3; full references in :mod:`.massbalance`):

        dry solids [t/h]   = Q_paste [m3/h] x rho [t/m3] x Cw
        dry tailings [t/h] = dry solids / (1 + Bw)
        binder_i [t/h]     = Bw x dry tailings x blend fraction_i

    With a usable ``paste_density_kg_m3_`` (between water and the recipe's solids) rho is
    the measured density and Cw the paste's own, from the slurry relation
    Cw = rho_s (rho - rho_w)/(rho (rho_s - rho_w)) with the recipe's solids Gs, so the
    binder follows the dry tailings actually leaving (ratio control, as on the feed);
    otherwise rho is the recipe's saturated-paste density and Cw its target. A
    negative or non-finite paste flow doses nothing (InvalidInput for a non-finite one).
    """
    if not math.isfinite(paste_flow_m3_h):
        raise InvalidInput("paste_flow_m3_h", f"paste flow must be finite ({paste_flow_m3_h!r})")
    flow = max(paste_flow_m3_h, 0.0)
    source: DensitySource = "recipe"
    density = paste_density_kg_m3(recipe)
    solids = recipe.solids_fraction
    if (
        paste_density_kg_m3_ is not None
        and math.isfinite(paste_density_kg_m3_)
        and RHO_W_KG_M3 < paste_density_kg_m3_ < solids_sg(recipe) * RHO_W_KG_M3
    ):
        density = paste_density_kg_m3_
        solids = slurry_solids_fraction(density, solids_sg(recipe))
        source = "measured"
    dry_solids = flow * density / 1000.0 * solids
    dry_tailings = dry_solids / (1.0 + recipe.binder_ratio)
    total = recipe.binder_ratio * dry_tailings
    return PasteFlowBinder(
        binder_t_h={name: total * recipe.fraction(name) for name in BINDER_COMPONENTS},
        total_binder_t_h=total,
        dry_solids_t_h=dry_solids,
        dry_tailings_t_h=dry_tailings,
        density_kg_m3=density,
        density_source=source,
        solids_fraction=solids,
    )
