"""The plant simulator as an OPC UA server: the pure dynamics behind a PLC's address space.

One tracked background task steps :func:`service.simulator.dynamics.simulate` every
``tick_s`` wall seconds with ``dt_s = wall dt x speed``, reads the nodes the service
writes (setpoints, run request, sequence, heartbeat) and the simulator's own control
nodes (``Backfill.Sim.*``), and publishes the measurements with source timestamps.

Types are those of a real PLC: REAL -> Float, INT -> Int16, DINT -> Int32,
BOOL -> Boolean. Measurement nodes are read-only for clients; the server itself
writes them through the address space, which does not apply access levels.

``stop()`` keeps the process and PLC state, the written setpoints and the faults, so
``start()`` after it is an OPC UA server restart on the same port (the CPU kept its
memory; the process did not advance while the server was down).

Besides the tags of docs/INTEGRATION.md the address space offers the optional tags of one stope
behind a dump diverter (``barricade_pressure_pv``: one instrumented barricade,
``divert_to_dump_sp``, ``diverted_to_dump_pv``), simulator-only truths of the stope
(``Backfill.Stope.*``: fill height, placed and dumped volumes, gamma h), and the
control panel ``Backfill.Sim.*``: faults (:meth:`SimulatorServer.set_fault`), plant
properties settable at run time (:meth:`SimulatorServer.set_plant`) and a new, empty
stope (:meth:`SimulatorServer.reset_stope`). A control node changes the simulation
when a client writes a new value to it; an invalid value is refused (logged, and the
node shows the value in force again).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC
from typing import Any, cast

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.status_codes import StatusCodes

from service.core.stope_geometry import VolumeCurve
from service.settings import SimSettings
from service.simulator import DEFAULT_PROFILE_PATH
from service.simulator.dynamics import (
    BINDERS,
    FRICTION_MODELS,
    MEASUREMENT_TAGS,
    NO_INSTRUMENT_ERRORS,
    FrictionModel,
    InstrumentErrors,
    Measurements,
    PlantParams,
    PlcCommands,
    Setpoints,
    SimControls,
    SimParams,
    SimState,
    fill_height_m,
    hydrostatic_pressure_kpa,
    initial_sim_state,
    outputs,
    reset_stope,
    simulate,
)
from service.simulator.profile import PlantProfile, load_profile
from service.ua_cache import standard_nodes

logger = logging.getLogger(__name__)

NAMESPACE_URI = "urn:backfill:plant-simulator"
NAMESPACE_INDEX = 2

_FLOAT = ua.VariantType.Float
_DOUBLE = ua.VariantType.Double
_INT16 = ua.VariantType.Int16
_INT32 = ua.VariantType.Int32
_BOOL = ua.VariantType.Boolean
_STRING = ua.VariantType.String

# A tick that comes late (event loop busy, process stopped with SIGSTOP) advances the
# plant and the heartbeat watchdog by at most this much wall time.
_MAX_WALL_DT_S = 1.0


@dataclass(frozen=True)
class NodeSpec:
    tag: str  # logical tag (docs/INTEGRATION.md) or control name
    path: str  # string node id in namespace 2
    variant: ua.VariantType
    writable: bool


# PLC -> service: published every tick, read-only for clients.
PUBLISHED: tuple[NodeSpec, ...] = (
    NodeSpec("tailings_flow_pv", "Backfill.Feed.FlowPV", _FLOAT, False),
    NodeSpec("tailings_density_pv", "Backfill.Feed.DensityPV", _FLOAT, False),
    NodeSpec("cement_rate_pv", "Backfill.Cement.RatePV", _FLOAT, False),
    NodeSpec("slag_rate_pv", "Backfill.Slag.RatePV", _FLOAT, False),
    NodeSpec("flyash_rate_pv", "Backfill.FlyAsh.RatePV", _FLOAT, False),
    NodeSpec("water_flow_pv", "Backfill.Water.FlowPV", _FLOAT, False),
    NodeSpec("paste_flow_pv", "Backfill.Paste.FlowPV", _FLOAT, False),
    NodeSpec("paste_density_pv", "Backfill.Paste.DensityPV", _FLOAT, False),
    NodeSpec("pump_pressure_pv", "Backfill.Pump.PressurePV", _FLOAT, False),
    NodeSpec("mixer_level_pv", "Backfill.Mixer.LevelPV", _FLOAT, False),
    NodeSpec("plant_mode", "Backfill.Plant.Mode", _INT16, False),
    NodeSpec("remote_enabled", "Backfill.Plant.RemoteEnabled", _BOOL, False),
    NodeSpec("setpoint_ack", "Backfill.Plant.SetpointAck", _INT32, False),
    NodeSpec("cement_refill", "Backfill.Cement.Refill", _BOOL, False),
    NodeSpec("slag_refill", "Backfill.Slag.Refill", _BOOL, False),
    NodeSpec("flyash_refill", "Backfill.FlyAsh.Refill", _BOOL, False),
    NodeSpec("cement_fault", "Backfill.Cement.Fault", _BOOL, False),
    NodeSpec("slag_fault", "Backfill.Slag.Fault", _BOOL, False),
    NodeSpec("flyash_fault", "Backfill.FlyAsh.Fault", _BOOL, False),
    # Optional tags (docs/INTEGRATION.md "Optional tags"); the simulator has one barricade.
    NodeSpec("barricade_pressure_pv", "Backfill.Stope.BarricadePressurePV", _FLOAT, False),
    NodeSpec("diverted_to_dump_pv", "Backfill.Diverter.DivertedPV", _BOOL, False),
    NodeSpec("paste_volume_total_pv", "Backfill.Paste.TotalPV", _DOUBLE, False),
    # Not in the tag map: the watchdog tripped (heartbeat lost), for HMIs and tests.
    NodeSpec("comms_fault", "Backfill.Plant.CommsFault", _BOOL, False),
    # Not in the tag map: the stope's truth (m, m3, kPa), for HMIs and tests.
    NodeSpec("stope_fill_height_m", "Backfill.Stope.FillHeight", _FLOAT, False),
    NodeSpec("stope_placed_paste_m3", "Backfill.Stope.PlacedPaste", _FLOAT, False),
    NodeSpec("stope_placed_water_m3", "Backfill.Stope.PlacedWater", _FLOAT, False),
    NodeSpec("stope_dumped_paste_m3", "Backfill.Stope.DumpedPaste", _FLOAT, False),
    NodeSpec("stope_dumped_water_m3", "Backfill.Stope.DumpedWater", _FLOAT, False),
    NodeSpec("stope_hydrostatic_kpa", "Backfill.Stope.HydrostaticPressure", _FLOAT, False),
)

# service -> PLC: writable by clients, read by the PLC every scan.
COMMANDS: tuple[NodeSpec, ...] = (
    NodeSpec("tailings_flow_sp", "Backfill.Feed.FlowSP", _FLOAT, True),
    NodeSpec("cement_rate_sp", "Backfill.Cement.RateSP", _FLOAT, True),
    NodeSpec("slag_rate_sp", "Backfill.Slag.RateSP", _FLOAT, True),
    NodeSpec("flyash_rate_sp", "Backfill.FlyAsh.RateSP", _FLOAT, True),
    NodeSpec("water_flow_sp", "Backfill.Water.FlowSP", _FLOAT, True),
    NodeSpec("paste_density_sp", "Backfill.Paste.DensitySP", _FLOAT, True),
    NodeSpec("run_request", "Backfill.Plant.RunRequest", _BOOL, True),
    NodeSpec("setpoint_seq", "Backfill.Plant.SetpointSeq", _INT32, True),
    NodeSpec("heartbeat", "Backfill.Plant.Heartbeat", _INT32, True),
    # Optional tag (docs/INTEGRATION.md "Optional tags"), applied by the PLC like a setpoint.
    NodeSpec("divert_to_dump_sp", "Backfill.Diverter.DivertToDumpSP", _BOOL, True),
)

# Faults applied through the instruments: SimControls.instrument_errors fields.
INSTRUMENT_ERROR_CONTROLS: dict[str, str] = {
    "Backfill.Sim.CementScaleBias": "cement_scale_bias_pct",
    "Backfill.Sim.SlagScaleBias": "slag_scale_bias_pct",
    "Backfill.Sim.FlyAshScaleBias": "flyash_scale_bias_pct",
    "Backfill.Sim.FeedFlowBias": "feed_flow_bias_pct",
    "Backfill.Sim.PasteFlowBias": "paste_flow_bias_pct",
    "Backfill.Sim.WaterFlowBias": "water_flow_bias_pct",
    "Backfill.Sim.FeedDensityBias": "feed_density_bias_kg_m3",
    "Backfill.Sim.FeedDensityDrift": "feed_density_drift_kg_m3_h",
    "Backfill.Sim.PasteDensityBias": "paste_density_bias_kg_m3",
    "Backfill.Sim.PasteDensityDrift": "paste_density_drift_kg_m3_h",
}

# Plant properties settable at run time: PlantParams fields.
PLANT_CONTROLS: dict[str, str] = {
    "Backfill.Sim.TailingsGs": "tailings_gs",
    "Backfill.Sim.StopePlanArea": "stope_plan_area_m2",
    "Backfill.Sim.DiverterTravel": "diverter_travel_s",
    "Backfill.Sim.FeedDeadTime": "feed_dead_time_s",
    "Backfill.Sim.PasteDeadTime": "paste_dead_time_s",
    "Backfill.Sim.FrictionModel": "friction_model",
    "Backfill.Sim.YieldStress": "yield_stress_pa_at_ref",
}

_STOPE_RESET = "Backfill.Sim.StopeReset"

# The simulator's own control panel (faults, the local/remote switch, plant properties).
CONTROLS: tuple[NodeSpec, ...] = (
    NodeSpec("stuck_tags", "Backfill.Sim.StuckTag", _STRING, True),
    NodeSpec("bad_tags", "Backfill.Sim.BadTag", _STRING, True),
    NodeSpec("feeder_faults", "Backfill.Sim.FeederFault", _STRING, True),
    NodeSpec("feed_density_step_kg_m3", "Backfill.Sim.FeedDensityStep", _FLOAT, True),
    NodeSpec("wet_feed", "Backfill.Sim.WetFeed", _BOOL, True),
    NodeSpec("blockage", "Backfill.Sim.Blockage", _BOOL, True),
    NodeSpec("remote_enabled", "Backfill.Sim.RemoteEnabled", _BOOL, True),
    NodeSpec("diverter_stuck", "Backfill.Sim.DiverterStuck", _BOOL, True),
    *(NodeSpec(name, path, _FLOAT, True) for path, name in INSTRUMENT_ERROR_CONTROLS.items()),
    *(
        NodeSpec(name, path, _STRING if name == "friction_model" else _FLOAT, True)
        for path, name in PLANT_CONTROLS.items()
    ),
    NodeSpec("stope_reset", _STOPE_RESET, _BOOL, True),  # write true: a new, empty stope
)

# Published nodes that are not PLC tags (absent from tags.toml).
SIMULATOR_ONLY_TAGS: frozenset[str] = frozenset(
    {
        "comms_fault",
        "stope_fill_height_m",
        "stope_placed_paste_m3",
        "stope_placed_water_m3",
        "stope_dumped_paste_m3",
        "stope_dumped_water_m3",
        "stope_hydrostatic_kpa",
    }
)

# The tag map of the tags of docs/INTEGRATION.md, its optional tags and the ARCHITECTURE
# extensions (tags.toml).
TAG_NODE_IDS: dict[str, str] = {
    spec.tag: f"ns={NAMESPACE_INDEX};s={spec.path}"
    for spec in (*PUBLISHED, *COMMANDS)
    if spec.tag not in SIMULATOR_ONLY_TAGS
}

PUBLISHED_TAGS: frozenset[str] = frozenset(spec.tag for spec in PUBLISHED)


def _node_id(path: str) -> ua.NodeId:
    return ua.NodeId(ua.String(path), ua.Int16(NAMESPACE_INDEX))


def _names(raw: str | Iterable[str]) -> frozenset[str]:
    items = raw.split(",") if isinstance(raw, str) else raw
    return frozenset(item.strip() for item in items if item.strip())


def plant_setting_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot be the run-time plant property ``name`` (None: it can)."""
    if name == "friction_model":
        return None if value in FRICTION_MODELS else f"{name} must be one of {FRICTION_MODELS}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    x = float(value)
    limits = {
        "tailings_gs": (1.5, 6.0),
        "stope_plan_area_m2": (1.0, 1.0e5),
        "diverter_travel_s": (0.0, 600.0),
        # bounded so that the delay lines carried in the state stay short
        "feed_dead_time_s": (0.0, 600.0),
        "paste_dead_time_s": (0.0, 600.0),
        "yield_stress_pa_at_ref": (0.0, 1.0e4),
    }
    if name not in limits:
        return f"{name} is not settable at run time (settable: {sorted(limits)} and friction_model)"
    low, high = limits[name]
    if not (math.isfinite(x) and low <= x <= high):
        return f"{name} must be within [{low:g}, {high:g}], got {value!r}"
    return None


def instrument_error_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot be the instrument error ``name`` (None: it can)."""
    if name not in _ERROR_FIELDS:
        return f"unknown instrument error {name!r}; expected one of {sorted(_ERROR_FIELDS)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    x = float(value)
    bound = 50.0 if name.endswith("_pct") else 1000.0
    if not (math.isfinite(x) and -bound < x < bound):
        return f"{name} must be within (-{bound:g}, {bound:g}), got {value!r}"
    return None


_ERROR_FIELDS = frozenset(f.name for f in fields(InstrumentErrors))


def _from_float32(value: Any) -> float:
    """A client's Float (single precision) as the decimal it meant: 3.1, not 3.0999999."""
    return float(f"{float(value):.7g}")


_PORT_ATTEMPTS = 5


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class SimulatorServer:
    """The built-in plant: an asyncua ``Server`` stepping the pure plant dynamics.

    The plant is ``params`` (the dynamics' defaults when None) or a plant ``profile``
    (:mod:`service.simulator.profile`: its parameters, and its instrument calibration
    errors in force from the start). ``speed`` is plant seconds per wall second.
    ``port=0`` picks a free port on the first ``start()`` and keeps it for later
    restarts.
    """

    def __init__(
        self,
        params: SimParams | None = None,
        *,
        profile: PlantProfile | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        seed: int | None = None,
        heartbeat_timeout_s: float | None = None,
        tick_s: float = 0.1,
    ) -> None:
        if not speed > 0.0:
            raise ValueError("speed must be positive")
        if profile is not None and params is not None:
            raise ValueError("give the plant as params or as a profile, not both")
        self.profile = profile
        if profile is not None:
            params = profile.params
        params = params or SimParams()
        # The calibration errors the plant starts with, and returns to when the faults
        # are cleared.
        self._built_errors = (
            profile.instrument_errors if profile is not None else NO_INSTRUMENT_ERRORS
        )
        if heartbeat_timeout_s is not None:
            params = replace(
                params, plc=replace(params.plc, heartbeat_timeout_s=heartbeat_timeout_s)
            )
        self.params = params
        self._built_params = params
        self.host = host
        self._port = port
        self.speed = speed
        self.tick_s = tick_s
        self._rng = random.Random(seed)
        self._sim: SimState = initial_sim_state(params)
        self._commands = PlcCommands()
        self._controls = SimControls(instrument_errors=self._built_errors)
        self._measurements: Measurements = outputs(self._sim.plant, params.plant, self._rng)
        self._published: dict[str, ua.Variant] = {}
        self._frozen: dict[str, ua.Variant] = {}
        self._warned_names: set[str] = set()
        # Control node values the server wrote or already took: a client's write is a
        # value that differs from this.
        self._seen_controls: dict[str, Any] = {}
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: SimSettings,
        params: SimParams | None = None,
        *,
        profile: PlantProfile | None = None,
    ) -> SimulatorServer:
        """Build from ``service.settings.SimSettings`` (speed, host, port, seed, timeout)
        on the plant profile it names (the default profile when unset), unless
        ``params`` or an already loaded ``profile`` gives the plant. A profile that
        cannot be used raises :class:`~service.simulator.profile.ProfileError`."""
        if params is None and profile is None:
            profile = load_profile(settings.profile or DEFAULT_PROFILE_PATH)
        return cls(
            params,
            profile=profile,
            host=settings.host,
            port=settings.port,
            speed=settings.speed,
            seed=settings.seed,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
        )

    # --- public state -----------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        if self._port == 0:
            raise RuntimeError("the port is chosen at start(); start the simulator first")
        return f"opc.tcp://{self.host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def state(self) -> SimState:
        return self._sim

    @property
    def controls(self) -> SimControls:
        return self._controls

    @property
    def measurements(self) -> Measurements:
        """The true instrument readings of the last tick (before stuck/bad faults)."""
        return self._measurements

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        pick = self._port == 0
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if pick:
                self._port = _free_port(self.host)
            try:
                self._server = await self._serve()
                break
            except OSError as err:
                # A free port is free until someone takes it: another server, or an
                # outgoing connection's source port, between its choice and the bind.
                if not pick or err.errno != errno.EADDRINUSE or attempt == _PORT_ATTEMPTS:
                    raise
                logger.info("simulator: port %d was taken meanwhile; another", self._port)
        self._task = asyncio.create_task(self._run(), name="plant-simulator")
        logger.info("simulator listening on %s (speed %gx)", self.endpoint, self.speed)

    async def _serve(self) -> Server:
        server = Server()
        # Namespace 0 read node by node from a file made once (service.ua_cache).
        await server.init(await standard_nodes())
        server.set_endpoint(f"{self.endpoint}/")
        server.set_server_name("Backfill plant simulator")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE_URI)
        if idx != NAMESPACE_INDEX:
            raise RuntimeError(f"namespace {NAMESPACE_URI} got index {idx}, expected 2")
        await self._build_address_space(server)
        await server.start()
        return server

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
            logger.info("simulator on %s stopped", self.endpoint)

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- faults -----------------------------------------------------------------------

    async def set_fault(
        self,
        *,
        stuck_tags: str | Iterable[str] | None = None,
        bad_tags: str | Iterable[str] | None = None,
        feeder_faults: str | Iterable[str] | None = None,
        feed_density_step_kg_m3: float | None = None,
        wet_feed: bool | None = None,
        blockage: bool | None = None,
        remote_enabled: bool | None = None,
        diverter_stuck: bool | None = None,
        cement_scale_bias_pct: float | None = None,
        slag_scale_bias_pct: float | None = None,
        flyash_scale_bias_pct: float | None = None,
        feed_flow_bias_pct: float | None = None,
        paste_flow_bias_pct: float | None = None,
        water_flow_bias_pct: float | None = None,
        feed_density_bias_kg_m3: float | None = None,
        feed_density_drift_kg_m3_h: float | None = None,
        paste_density_bias_kg_m3: float | None = None,
        paste_density_drift_kg_m3_h: float | None = None,
    ) -> SimControls:
        """Change faults (None leaves one as it is; an empty string or set clears a list).

        Tags are logical tag names of published nodes; feeders are cement/slag/flyash.
        ``diverter_stuck`` keeps the dump diverter where it is. The instrument errors are
        those of :class:`~service.simulator.dynamics.InstrumentErrors` (scale and flow
        meter biases in % of the reading, within +-50; density gauge bias in kg/m3 and
        drift in kg/m3 per plant hour; a drift rate of 0 recalibrates the gauge).
        The control nodes ``Backfill.Sim.*`` are updated to match.
        """
        error_changes = {
            name: float(value)
            for name, value in (
                ("cement_scale_bias_pct", cement_scale_bias_pct),
                ("slag_scale_bias_pct", slag_scale_bias_pct),
                ("flyash_scale_bias_pct", flyash_scale_bias_pct),
                ("feed_flow_bias_pct", feed_flow_bias_pct),
                ("paste_flow_bias_pct", paste_flow_bias_pct),
                ("water_flow_bias_pct", water_flow_bias_pct),
                ("feed_density_bias_kg_m3", feed_density_bias_kg_m3),
                ("feed_density_drift_kg_m3_h", feed_density_drift_kg_m3_h),
                ("paste_density_bias_kg_m3", paste_density_bias_kg_m3),
                ("paste_density_drift_kg_m3_h", paste_density_drift_kg_m3_h),
            )
            if value is not None
        }
        for name, value in error_changes.items():
            problem = instrument_error_problem(name, value)
            if problem is not None:
                raise ValueError(problem)
        c = self._controls
        if stuck_tags is not None:
            c = replace(c, stuck_tags=self._checked(_names(stuck_tags), PUBLISHED_TAGS))
        if bad_tags is not None:
            c = replace(c, bad_tags=self._checked(_names(bad_tags), PUBLISHED_TAGS))
        if feeder_faults is not None:
            c = replace(c, feeder_faults=self._checked(_names(feeder_faults), frozenset(BINDERS)))
        if feed_density_step_kg_m3 is not None:
            c = replace(c, feed_density_step_kg_m3=float(feed_density_step_kg_m3))
        if wet_feed is not None:
            c = replace(c, wet_feed=wet_feed)
        if blockage is not None:
            c = replace(c, blockage=blockage)
        if remote_enabled is not None:
            c = replace(c, remote_enabled=remote_enabled)
        if diverter_stuck is not None:
            c = replace(c, diverter_stuck=diverter_stuck)
        if error_changes:
            c = replace(c, instrument_errors=replace(c.instrument_errors, **error_changes))
        self._controls = c
        await self._sync_controls()
        return c

    async def clear_faults(self) -> SimControls:
        """Every fault off, the calibration errors back to the profile's (plant
        properties set by :meth:`set_plant` stay)."""
        self._controls = SimControls(instrument_errors=self._built_errors)
        await self._sync_controls()
        return self._controls

    # --- plant properties and the stope -----------------------------------------------

    async def set_plant(
        self,
        *,
        tailings_gs: float | None = None,
        stope_plan_area_m2: float | None = None,
        diverter_travel_s: float | None = None,
        feed_dead_time_s: float | None = None,
        paste_dead_time_s: float | None = None,
        friction_model: FrictionModel | None = None,
        yield_stress_pa_at_ref: float | None = None,
    ) -> PlantParams:
        """Change plant properties at run time (None leaves one as it is).

        ``tailings_gs`` is the true Gs of the tailings (a recipe may assume another);
        ``stope_plan_area_m2`` the plan area of the stope being filled;
        ``diverter_travel_s`` the dump diverter's travel time; ``feed_dead_time_s`` /
        ``paste_dead_time_s`` the transport dead times feed meters -> mixer and mixer ->
        paste density gauge (0-600 s); ``friction_model`` "linear" or "bingham";
        ``yield_stress_pa_at_ref`` the Bingham yield stress at the reference Cw. The
        control nodes ``Backfill.Sim.*`` are updated to match.
        """
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("tailings_gs", tailings_gs),
                ("stope_plan_area_m2", stope_plan_area_m2),
                ("diverter_travel_s", diverter_travel_s),
                ("feed_dead_time_s", feed_dead_time_s),
                ("paste_dead_time_s", paste_dead_time_s),
                ("friction_model", friction_model),
                ("yield_stress_pa_at_ref", yield_stress_pa_at_ref),
            )
            if value is not None
        }
        for name, value in changes.items():
            problem = plant_setting_problem(name, value)
            if problem is not None:
                raise ValueError(problem)
            if name != "friction_model":
                changes[name] = float(value)
        self.params = replace(self.params, plant=replace(self.params.plant, **changes))
        await self._sync_controls()
        return self.params.plant

    async def reset_plant(self) -> PlantParams:
        """The plant properties the simulator was built with, again."""
        built = self._built_params.plant
        return await self.set_plant(
            **{name: getattr(built, name) for name in PLANT_CONTROLS.values()}
        )

    async def reset_stope(
        self, *, plan_area_m2: float | None = None, curve: VolumeCurve | None = None
    ) -> None:
        """A new, empty stope (placed and dumped volumes, fill height and barricade
        pressure back to zero), optionally with another plan area, or with a surveyed
        volume-height curve (its fill height and barricade head then follow the curve)."""
        if plan_area_m2 is not None:
            await self.set_plant(stope_plan_area_m2=plan_area_m2)
        plant = replace(self.params.plant, stope_curve=curve)
        if curve is not None:
            plant = replace(plant, stope_plan_area_m2=curve.mean_area_m2)
        self.params = replace(self.params, plant=plant)
        await self._sync_controls()
        self._sim = replace(self._sim, plant=reset_stope(self._sim.plant))

    async def _sync_controls(self) -> None:
        if self._server is not None:
            await self._write_controls(self._server, self._control_values())

    @staticmethod
    def _checked(names: frozenset[str], allowed: frozenset[str]) -> frozenset[str]:
        unknown = names - allowed
        if unknown:
            raise ValueError(f"unknown names {sorted(unknown)}; expected some of {sorted(allowed)}")
        return names

    # --- address space ----------------------------------------------------------------

    async def _build_address_space(self, server: Server) -> None:
        root = await server.nodes.objects.add_object(
            _node_id("Backfill"), ua.QualifiedName("Backfill", NAMESPACE_INDEX)
        )
        groups: dict[str, Any] = {}
        controls = self._control_values()
        self._seen_controls = {path: variant.Value for path, variant in controls.items()}
        initial = {**self._published_values(), **self._command_values(), **controls}
        for spec in (*PUBLISHED, *COMMANDS, *CONTROLS):
            group_path, _, name = spec.path.rpartition(".")
            group = groups.get(group_path)
            if group is None:
                group_name = group_path.rpartition(".")[2]
                group = await root.add_object(
                    _node_id(group_path), ua.QualifiedName(group_name, NAMESPACE_INDEX)
                )
                groups[group_path] = group
            key = spec.path if spec in CONTROLS else spec.tag
            node = await group.add_variable(
                _node_id(spec.path),
                ua.QualifiedName(name, NAMESPACE_INDEX),
                initial[key].Value,
                varianttype=spec.variant,
            )
            if spec.writable:
                await node.set_writable()

    def _published_values(self) -> dict[str, ua.Variant]:
        plc, plant = self._sim.plc, self._sim.plant
        values: dict[str, ua.Variant] = {
            tag: ua.Variant(value, _FLOAT) for tag, value in self._measurements.as_dict().items()
        }
        values["plant_mode"] = ua.Variant(int(plc.mode), _INT16)
        values["remote_enabled"] = ua.Variant(plc.remote_enabled, _BOOL)
        values["setpoint_ack"] = ua.Variant(plc.setpoint_ack, _INT32)
        for name, feeder in zip(BINDERS, self._sim.plant.feeders, strict=True):
            values[f"{name}_refill"] = ua.Variant(feeder.refilling, _BOOL)
            values[f"{name}_fault"] = ua.Variant(feeder.fault, _BOOL)
        values["diverted_to_dump_pv"] = ua.Variant(plant.diverted_to_dump, _BOOL)
        values["paste_volume_total_pv"] = ua.Variant(plant.paste_delivered_m3, _DOUBLE)
        values["comms_fault"] = ua.Variant(plc.comms_fault, _BOOL)
        stope, plant_params = plant.stope, self.params.plant
        for tag, value in (
            ("stope_fill_height_m", fill_height_m(plant, plant_params)),
            ("stope_placed_paste_m3", stope.placed_paste_m3),
            ("stope_placed_water_m3", stope.placed_water_m3),
            ("stope_dumped_paste_m3", stope.dumped_paste_m3),
            ("stope_dumped_water_m3", stope.dumped_water_m3),
            ("stope_hydrostatic_kpa", hydrostatic_pressure_kpa(plant, plant_params)),
        ):
            values[tag] = ua.Variant(value, _FLOAT)
        return values

    def _command_values(self) -> dict[str, ua.Variant]:
        cmd, sp = self._commands, self._commands.setpoints
        return {
            "tailings_flow_sp": ua.Variant(sp.tailings_flow_m3_h, _FLOAT),
            "cement_rate_sp": ua.Variant(sp.cement_t_h, _FLOAT),
            "slag_rate_sp": ua.Variant(sp.slag_t_h, _FLOAT),
            "flyash_rate_sp": ua.Variant(sp.flyash_t_h, _FLOAT),
            "water_flow_sp": ua.Variant(sp.water_m3_h, _FLOAT),
            "paste_density_sp": ua.Variant(sp.paste_density_kg_m3, _FLOAT),
            "run_request": ua.Variant(cmd.run_request, _BOOL),
            "setpoint_seq": ua.Variant(cmd.setpoint_seq, _INT32),
            "heartbeat": ua.Variant(cmd.heartbeat, _INT32),
            "divert_to_dump_sp": ua.Variant(cmd.divert_to_dump, _BOOL),
        }

    def _control_values(self) -> dict[str, ua.Variant]:
        """Every control node's value, from the faults and plant properties in force."""
        c, plant = self._controls, self.params.plant
        values = {
            "Backfill.Sim.StuckTag": ua.Variant(",".join(sorted(c.stuck_tags)), _STRING),
            "Backfill.Sim.BadTag": ua.Variant(",".join(sorted(c.bad_tags)), _STRING),
            "Backfill.Sim.FeederFault": ua.Variant(",".join(sorted(c.feeder_faults)), _STRING),
            "Backfill.Sim.FeedDensityStep": ua.Variant(c.feed_density_step_kg_m3, _FLOAT),
            "Backfill.Sim.WetFeed": ua.Variant(c.wet_feed, _BOOL),
            "Backfill.Sim.Blockage": ua.Variant(c.blockage, _BOOL),
            "Backfill.Sim.RemoteEnabled": ua.Variant(c.remote_enabled, _BOOL),
            "Backfill.Sim.DiverterStuck": ua.Variant(c.diverter_stuck, _BOOL),
            _STOPE_RESET: ua.Variant(False, _BOOL),
        }
        for path, name in INSTRUMENT_ERROR_CONTROLS.items():
            values[path] = ua.Variant(getattr(c.instrument_errors, name), _FLOAT)
        for path, name in PLANT_CONTROLS.items():
            vtype = _STRING if name == "friction_model" else _FLOAT
            values[path] = ua.Variant(getattr(plant, name), vtype)
        return values

    async def _write_controls(self, server: Server, values: dict[str, ua.Variant]) -> None:
        # Marked as seen first: a tick in between takes none of them for a client's write.
        for path, variant in values.items():
            self._seen_controls[path] = variant.Value
        for path, variant in values.items():
            await server.write_attribute_value(_node_id(path), ua.DataValue(Value=variant))

    # --- the scan loop ----------------------------------------------------------------

    async def _run(self) -> None:
        last = time.monotonic()
        failing = False
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            wall_dt_s, last = min(now - last, _MAX_WALL_DT_S), now
            try:
                await self._tick(wall_dt_s)
            except Exception:
                # A loop boundary: record the failure once, keep the plant running.
                if not failing:
                    logger.exception("simulator tick failed")
                failing = True
            else:
                if failing:
                    logger.info("simulator tick recovered")
                failing = False

    async def _tick(self, wall_dt_s: float) -> None:
        server = self._server
        if server is None or wall_dt_s <= 0.0:
            return
        self._commands = self._read_commands(server)
        refused = self._read_controls(server)
        if refused:
            await self._write_controls(server, refused)
        self._sim = simulate(
            self._sim,
            self._commands,
            self._controls,
            wall_dt_s * self.speed,
            wall_dt_s,
            self.params,
            self._rng,
        )
        self._measurements = outputs(self._sim.plant, self.params.plant, self._rng)
        await self._publish(server)

    async def _publish(self, server: Server) -> None:
        now = ua.DateTime.now(UTC)
        values = self._published_values()
        stuck = self._controls.stuck_tags
        for tag in list(self._frozen):
            if tag not in stuck:
                del self._frozen[tag]
        for spec in PUBLISHED:
            variant = values[spec.tag]
            if spec.tag in stuck:
                # A stuck sensor keeps reporting its last value, fresh and Good.
                variant = self._frozen.setdefault(spec.tag, self._published.get(spec.tag, variant))
            self._published[spec.tag] = variant
            if spec.tag in self._controls.bad_tags:
                dv = ua.DataValue(
                    Value=ua.Variant(None, ua.VariantType.Null),
                    StatusCode=ua.StatusCode(ua.UInt32(StatusCodes.BadSensorFailure)),
                    SourceTimestamp=now,
                    ServerTimestamp=now,
                )
            else:
                dv = ua.DataValue(Value=variant, SourceTimestamp=now, ServerTimestamp=now)
            await server.write_attribute_value(_node_id(spec.path), dv)

    # --- reading the nodes the clients write ------------------------------------------

    @staticmethod
    def _value(server: Server, path: str, default: Any) -> Any:
        dv = server.read_attribute_value(_node_id(path))
        if dv.Value is None or dv.Value.Value is None:
            return default
        return dv.Value.Value

    def _read_commands(self, server: Server) -> PlcCommands:
        old = self._commands
        sp = old.setpoints

        def f(path: str, default: float) -> float:
            return float(self._value(server, path, default))

        return PlcCommands(
            setpoints=Setpoints(
                tailings_flow_m3_h=f("Backfill.Feed.FlowSP", sp.tailings_flow_m3_h),
                cement_t_h=f("Backfill.Cement.RateSP", sp.cement_t_h),
                slag_t_h=f("Backfill.Slag.RateSP", sp.slag_t_h),
                flyash_t_h=f("Backfill.FlyAsh.RateSP", sp.flyash_t_h),
                water_m3_h=f("Backfill.Water.FlowSP", sp.water_m3_h),
                paste_density_kg_m3=f("Backfill.Paste.DensitySP", sp.paste_density_kg_m3),
            ),
            run_request=bool(self._value(server, "Backfill.Plant.RunRequest", old.run_request)),
            setpoint_seq=int(self._value(server, "Backfill.Plant.SetpointSeq", old.setpoint_seq)),
            heartbeat=int(self._value(server, "Backfill.Plant.Heartbeat", old.heartbeat)),
            divert_to_dump=bool(
                self._value(server, "Backfill.Diverter.DivertToDumpSP", old.divert_to_dump)
            ),
        )

    def _read_controls(self, server: Server) -> dict[str, ua.Variant]:
        """Take what clients wrote to the control nodes since the last tick.

        Updates the faults and the plant properties, resets the stope on a write of
        true to ``Backfill.Sim.StopeReset``, and returns the nodes to write back: the
        reset pulse, and the value in force for a value refused.
        """
        c, plant = self._controls, self.params.plant
        changes: dict[str, Any] = {}
        error_changes: dict[str, float] = {}
        plant_changes: dict[str, Any] = {}
        write_back: dict[str, ua.Variant] = {}
        new_stope = False

        def names(path: str, raw: object, allowed: frozenset[str]) -> frozenset[str]:
            parsed = _names(str(raw))
            unknown = parsed - allowed
            for name in unknown - self._warned_names:
                logger.warning("%s: ignoring unknown name %r", path, name)
                self._warned_names.add(name)
            return parsed & allowed

        def refuse(path: str, problem: str) -> None:
            logger.warning("%s: refused: %s", path, problem)
            write_back[path] = ua.Variant()  # filled in below, from what is in force

        for spec in CONTROLS:
            raw = self._value(server, spec.path, None)
            if raw is None or raw == self._seen_controls.get(spec.path):
                continue
            self._seen_controls[spec.path] = raw
            if spec.path == _STOPE_RESET:
                new_stope = new_stope or bool(raw)
            elif spec.path in INSTRUMENT_ERROR_CONTROLS:
                problem = instrument_error_problem(spec.tag, raw)
                if problem is None:
                    error_changes[spec.tag] = _from_float32(raw)
                else:
                    refuse(spec.path, problem)
            elif spec.path in PLANT_CONTROLS:
                problem = plant_setting_problem(spec.tag, raw)
                if problem is None:
                    plant_changes[spec.tag] = raw if spec.variant is _STRING else _from_float32(raw)
                else:
                    refuse(spec.path, problem)
            elif spec.tag == "stuck_tags" or spec.tag == "bad_tags":
                changes[spec.tag] = names(spec.path, raw, PUBLISHED_TAGS)
            elif spec.tag == "feeder_faults":
                changes[spec.tag] = names(spec.path, raw, frozenset(BINDERS))
            elif spec.variant is _FLOAT:
                changes[spec.tag] = _from_float32(raw)
            else:
                changes[spec.tag] = bool(raw)

        if error_changes:
            changes["instrument_errors"] = replace(c.instrument_errors, **error_changes)
        if changes:
            self._controls = replace(c, **changes)
        if plant_changes:
            if "friction_model" in plant_changes:
                plant_changes["friction_model"] = cast(
                    FrictionModel, plant_changes["friction_model"]
                )
            self.params = replace(self.params, plant=replace(plant, **plant_changes))
        if new_stope:
            self._sim = replace(self._sim, plant=reset_stope(self._sim.plant))
            write_back[_STOPE_RESET] = ua.Variant()
        if write_back:
            in_force = self._control_values()
            write_back = {path: in_force[path] for path in write_back}
        return write_back


__all__ = [
    "COMMANDS",
    "CONTROLS",
    "INSTRUMENT_ERROR_CONTROLS",
    "MEASUREMENT_TAGS",
    "NAMESPACE_INDEX",
    "NAMESPACE_URI",
    "PLANT_CONTROLS",
    "PUBLISHED",
    "SIMULATOR_ONLY_TAGS",
    "TAG_NODE_IDS",
    "SimulatorServer",
    "instrument_error_problem",
    "plant_setting_problem",
]
