"""Small pure controllers: a PI with deadband and anti-windup, and a ratio corrector.

In the spirit of m-lundberg/simple-pid (``simple_pid/pid.py``): the controller is a
function of (state, error, dt) returning (new state, output); time is passed in, never
read; anti-windup clamps the integral to the output limits; bumpless transfer is done by
starting the integral where the output should be (:func:`pi_track`). Unlike simple-pid
the state is an immutable value, so a step can be replayed or tested in isolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def clamp(value: float, lower: float, upper: float) -> float:
    """``value`` limited to ``[lower, upper]`` (``lower`` wins if the bounds cross)."""
    return max(lower, min(value, upper))


def apply_deadband(error: float, deadband: float) -> float:
    """Zero inside ``+-deadband``, shifted by the deadband outside (continuous at the edge)."""
    if abs(error) <= deadband:
        return 0.0
    return error - math.copysign(deadband, error)


@dataclass(frozen=True)
class PIState:
    """Integral term of a PI controller, in output units."""

    integral: float = 0.0


def pi_step(
    state: PIState,
    error: float,
    dt_s: float,
    *,
    kp: float,
    ki_per_s: float,
    deadband: float,
    lower: float,
    upper: float,
    freeze: bool = False,
    block_up: bool = False,
    block_down: bool = False,
) -> tuple[PIState, float]:
    """One PI step: ``out = clamp(kp e + I)``, ``I += ki e dt`` with anti-windup.

    - ``deadband``: errors inside it count as zero (no integration, no P action).
    - Anti-windup (simple-pid): the integral is clamped to ``[lower, upper]``.
    - ``freeze``: hold the integral (bad data, recipe not reachable); P acts on the
      error, so pass ``error=0`` as well to hold the whole output.
    - ``block_up`` / ``block_down``: conditional integration, the integral may not move
      in that direction (the actuator downstream is saturated that way).
    """
    e = apply_deadband(error, deadband)
    integral = state.integral
    if not freeze:
        candidate = integral + ki_per_s * e * dt_s
        if (candidate > integral and not block_up) or (candidate < integral and not block_down):
            integral = candidate
    integral = clamp(integral, lower, upper)
    output = clamp(kp * e + integral, lower, upper)
    return PIState(integral=integral), output


def pi_track(output: float, lower: float, upper: float) -> PIState:
    """State that makes the next output continue from ``output`` (bumpless transfer)."""
    return PIState(integral=clamp(output, lower, upper))


def ratio_step(
    factor: float,
    relative_error: float,
    dt_s: float,
    *,
    ki_per_s: float,
    lower: float,
    upper: float,
) -> float:
    """Slow integral correction of a ratio (multiplicative) setpoint factor.

    ``factor += ki * relative_error * dt``, clamped to ``[lower, upper]`` so a feeder
    that cannot deliver does not drive its setpoint without bound (anti-windup).
    ``relative_error`` is (demanded - measured) / demanded.
    """
    return clamp(factor + ki_per_s * relative_error * dt_s, lower, upper)


def rate_limit(target: float, previous: float, max_rate_per_s: float, dt_s: float) -> float:
    """Move from ``previous`` toward ``target`` by at most ``max_rate_per_s * dt_s``."""
    step = max_rate_per_s * dt_s
    return previous + clamp(target - previous, -step, step)
