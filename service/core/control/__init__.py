"""The pure control core: feed-forward, PI trims, limits, alarms and pour totals.

No I/O and no clock: every function takes values (and ``dt_s`` / ``now``) and returns
values. The asyncio control loop lives elsewhere and calls :func:`step`,
:func:`evaluate` and :func:`accumulate` once per period.
"""

from service.core.control.alarms import (
    Alarm,
    AlarmBook,
    AlarmChange,
    AlarmCode,
    AlarmConfig,
    AlarmState,
    Condition,
    Severity,
    acknowledge,
    changes,
    detect,
    evaluate,
)
from service.core.control.law import (
    BAD,
    SETPOINT_TAGS,
    ControlConfig,
    ControlInputs,
    ControlMode,
    ControlOutput,
    ControlState,
    Measurement,
    SetpointLimit,
    Setpoints,
    mode_of,
    step,
)
from service.core.control.massbalance import (
    BINDER_COMPONENTS,
    FeedForward,
    Recipe,
    feed_forward,
    make_recipe,
)
from service.core.control.totals import (
    PourTotals,
    Rate,
    TotalsSample,
    accumulate,
    sample_from_step,
)

__all__ = [
    "BAD",
    "BINDER_COMPONENTS",
    "SETPOINT_TAGS",
    "Alarm",
    "AlarmBook",
    "AlarmChange",
    "AlarmCode",
    "AlarmConfig",
    "AlarmState",
    "Condition",
    "ControlConfig",
    "ControlInputs",
    "ControlMode",
    "ControlOutput",
    "ControlState",
    "FeedForward",
    "Measurement",
    "PourTotals",
    "Rate",
    "Recipe",
    "SetpointLimit",
    "Setpoints",
    "Severity",
    "TotalsSample",
    "accumulate",
    "acknowledge",
    "changes",
    "detect",
    "evaluate",
    "feed_forward",
    "make_recipe",
    "mode_of",
    "sample_from_step",
    "step",
]
