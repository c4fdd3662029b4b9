"""The HMI snapshot, built from memory only: the link's snapshot and the supervisor's
views. It never triggers PLC I/O (docs/INTEGRATION.md "GET /plant/status"). The REST API serves it
(``service/api/plant_status.py``) and the SCADA faces build their model from it
(``service/core/scada_model.py``), so a value reads the same everywhere."""

from __future__ import annotations

from datetime import UTC
from typing import Any, Protocol

from service.core.plant_readings import PLANT_MODES
from service.core.pour_machine import PourRun
from service.operations.supervisor import Supervisor
from service.plant.port import PlantLink, PlantSnapshot, Quality


class Leader(Protocol):
    @property
    def epoch(self) -> int | None: ...


class Simulated(Protocol):
    @property
    def profile(self) -> Any: ...


class StatusSource(Protocol):
    """What the snapshot is built from (the runtime gives it): the link, the supervisor,
    the built-in simulator when it runs, and whether this instance writes."""

    @property
    def link(self) -> PlantLink: ...
    @property
    def supervisor(self) -> Supervisor: ...
    @property
    def simulator(self) -> Simulated | None: ...
    @property
    def is_writer(self) -> bool: ...
    @property
    def leadership(self) -> Leader | None: ...


SIMULATED_NOTICE = (
    "SIMULATED PLANT: the built-in simulator runs because BACKFILL_PLC__ENDPOINT is not "
    "set; no PLC is connected"
)


def alarm_view(alarm: Any) -> dict[str, Any]:
    d = alarm.to_dict()
    return {
        k: d[k]
        for k in (
            "code",
            "severity",
            "state",
            "detail",
            "since",
            "cleared_at",
            "acknowledged",
            "acknowledged_at",
            "acknowledged_by",
        )
    }


def active_pour_view(pour: PourRun | None, stop_pending: bool) -> dict[str, Any] | None:
    """The active pour as the HMI shows it, with the recipe in force as control runs on
    it (an approved Gs correction in)."""
    if pour is None:
        return None
    return {
        "id": pour.id,
        "stope_id": pour.stope_id,
        "state": pour.state.value,
        "target_volume_m3": pour.target_volume_m3,
        "paste_flow_m3_h": pour.paste_flow_m3_h,
        "stop_pending": stop_pending,
        "targets": {
            "solids_pct": 100.0 * pour.recipe.solids_fraction,
            "binder_pct": 100.0 * pour.recipe.binder_ratio,
            "tailings_sg": pour.recipe.tailings_sg,
            "blend_pct": {c.name: 100.0 * c.fraction for c in pour.recipe.binder},
        },
        **pour.totals.summary(),
    }


def simulator_profile_view(runtime: StatusSource) -> dict[str, str] | None:
    """The plant profile the built-in simulator runs (its name and file), or None."""
    profile = runtime.simulator.profile if runtime.simulator is not None else None
    if profile is None:
        return None
    return {"name": profile.name, "path": str(profile.path) if profile.path else ""}


def status_body(runtime: StatusSource, snap: PlantSnapshot | None = None) -> dict[str, Any]:
    snap = snap or runtime.link.snapshot()
    stuck = runtime.supervisor.stuck
    measurements: dict[str, Any] = {}
    for tag, m in snap.measurements.items():
        ts = m.source_timestamp
        measurements[tag] = {
            "value": m.value,
            "unit": m.unit,
            # A stuck gauge reads good at the PLC but is not trusted by the service.
            "quality": Quality.BAD.value if tag in stuck else m.quality.value,
            "timestamp": ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts else None,
        }
        if tag in stuck:
            measurements[tag]["stuck"] = True
    setpoints = {
        tag: {
            "value": sp.value,
            "unit": sp.unit,
            "written_at": sp.written_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
        for tag, sp in snap.setpoints.items()
    }
    mode = snap.measurements.get("plant_mode")
    plc_mode = None
    if mode is not None and mode.quality is not Quality.BAD and isinstance(mode.value, int):
        plc_mode = PLANT_MODES.get(int(mode.value), f"unknown({mode.value})")
    remote = snap.measurements.get("remote_enabled")
    remote_enabled = (
        bool(remote.value) if remote is not None and remote.quality is not Quality.BAD else None
    )
    supervisor = runtime.supervisor
    return {
        "connected": snap.connected,
        "plc_mode": plc_mode,
        "remote_enabled": remote_enabled,
        "measurements": measurements,
        "setpoints": setpoints,
        "active_pour": active_pour_view(supervisor.active_pour, supervisor.stop_pending),
        "alarms": [alarm_view(a) for a in supervisor.alarms()],
        "instruments": supervisor.instruments_view(),
        "last_error": snap.last_error,
        "simulator": runtime.simulator is not None,
        "simulator_profile": simulator_profile_view(runtime),
        "notice": SIMULATED_NOTICE if runtime.simulator is not None else None,
        "writer": runtime.is_writer,
        "writer_epoch": runtime.leadership.epoch if runtime.leadership else None,
    }
