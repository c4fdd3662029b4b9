"""What every SCADA face is built on: the HMI snapshot (the model's values), the plant
link's change notice, the tag map's tags with their units, and the actions a SCADA may
ask for. One source, so that a value reads the same on every face."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.core import scada_model as M
from service.core.control.massbalance import BINDER_COMPONENTS
from service.settings import Role


@dataclass(frozen=True)
class Caller:
    """Who asks a SCADA face for an action: the role it acts in, the person every act is
    recorded under (a key's person; a key of a role alone: its role and key id; a
    Sparkplug host: the person it named, or its own identity), the user name the client
    gave (the OPC UA session's user, the Sparkplug host's id), logged beside the acts;
    ``face`` is ``opcua`` or ``sparkplug``."""

    role: Role
    person: str
    user: str
    face: str

    @property
    def who(self) -> str:
        return self.person


Action = Callable[[str, Caller], Awaitable[str]]
"""A pour action or an acknowledgement: its argument (a pour id, an alarm code) and the
caller in, the new state out."""

ACTIONS = ("Start", "Pause", "Resume", "Stop", "Acknowledge")


@dataclass(frozen=True)
class ModelSource:
    """``status()`` the HMI snapshot (the body of ``GET /plant/status``);
    ``changed(version, within_s)`` waits for the plant link's next snapshot and returns
    its version; ``measurements`` and ``setpoints`` the tag map's tags and units;
    ``actions`` by name (:data:`ACTIONS`), the same operations as the API's routes;
    ``ranges`` the site's engineering ranges by tag (the tag map's [ranges])."""

    status: Callable[[], Mapping[str, Any]]
    changed: Callable[[int, float], Awaitable[int]]
    measurements: Mapping[str, str]
    setpoints: Mapping[str, str]
    actions: Mapping[str, Action]
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def spec(self) -> tuple[M.PointSpec, ...]:
        return M.specs(self.measurements, self.setpoints, BINDER_COMPONENTS, self.ranges)
