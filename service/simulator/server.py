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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.status_codes import StatusCodes

from service.settings import SimSettings
from service.simulator.dynamics import (
    BINDERS,
    MEASUREMENT_TAGS,
    Measurements,
    PlcCommands,
    Setpoints,
    SimControls,
    SimParams,
    SimState,
    initial_sim_state,
    outputs,
    simulate,
)

logger = logging.getLogger(__name__)

NAMESPACE_URI = "urn:backfill:plant-simulator"
NAMESPACE_INDEX = 2

_FLOAT = ua.VariantType.Float
_INT16 = ua.VariantType.Int16
_INT32 = ua.VariantType.Int32
_BOOL = ua.VariantType.Boolean
_STRING = ua.VariantType.String

# A tick that comes late (event loop busy, process stopped with SIGSTOP) advances the
# plant and the heartbeat watchdog by at most this much wall time.
_MAX_WALL_DT_S = 1.0


@dataclass(frozen=True)
class NodeSpec:
    tag: str  # logical tag (CONTRACT.md) or control name
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
    # Not in the tag map: the watchdog tripped (heartbeat lost), for HMIs and tests.
    NodeSpec("comms_fault", "Backfill.Plant.CommsFault", _BOOL, False),
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
)

# The simulator's own control panel (faults and the local/remote switch).
CONTROLS: tuple[NodeSpec, ...] = (
    NodeSpec("stuck_tags", "Backfill.Sim.StuckTag", _STRING, True),
    NodeSpec("bad_tags", "Backfill.Sim.BadTag", _STRING, True),
    NodeSpec("feeder_faults", "Backfill.Sim.FeederFault", _STRING, True),
    NodeSpec("feed_density_step_kg_m3", "Backfill.Sim.FeedDensityStep", _FLOAT, True),
    NodeSpec("wet_feed", "Backfill.Sim.WetFeed", _BOOL, True),
    NodeSpec("blockage", "Backfill.Sim.Blockage", _BOOL, True),
    NodeSpec("remote_enabled", "Backfill.Sim.RemoteEnabled", _BOOL, True),
)

# The tag map of the CONTRACT tags and the ARCHITECTURE extensions (tags.toml).
TAG_NODE_IDS: dict[str, str] = {
    spec.tag: f"ns={NAMESPACE_INDEX};s={spec.path}"
    for spec in (*PUBLISHED, *COMMANDS)
    if spec.tag != "comms_fault"
}

PUBLISHED_TAGS: frozenset[str] = frozenset(spec.tag for spec in PUBLISHED)


def _node_id(path: str) -> ua.NodeId:
    return ua.NodeId(ua.String(path), ua.Int16(NAMESPACE_INDEX))


def _names(raw: str | Iterable[str]) -> frozenset[str]:
    items = raw.split(",") if isinstance(raw, str) else raw
    return frozenset(item.strip() for item in items if item.strip())


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class SimulatorServer:
    """The built-in plant: an asyncua ``Server`` stepping the pure plant dynamics.

    ``speed`` is plant seconds per wall second. ``port=0`` picks a free port on the
    first ``start()`` and keeps it for later restarts.
    """

    def __init__(
        self,
        params: SimParams | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        seed: int | None = None,
        heartbeat_timeout_s: float | None = None,
        tick_s: float = 0.1,
    ) -> None:
        if not speed > 0.0:
            raise ValueError("speed must be positive")
        params = params or SimParams()
        if heartbeat_timeout_s is not None:
            params = replace(
                params, plc=replace(params.plc, heartbeat_timeout_s=heartbeat_timeout_s)
            )
        self.params = params
        self.host = host
        self._port = port
        self.speed = speed
        self.tick_s = tick_s
        self._rng = random.Random(seed)
        self._sim: SimState = initial_sim_state(params)
        self._commands = PlcCommands()
        self._controls = SimControls()
        self._measurements: Measurements = outputs(self._sim.plant, params.plant, self._rng)
        self._published: dict[str, ua.Variant] = {}
        self._frozen: dict[str, ua.Variant] = {}
        self._warned_names: set[str] = set()
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: SimSettings, params: SimParams | None = None
    ) -> SimulatorServer:
        """Build from ``service.settings.SimSettings`` (speed, host, port, seed, timeout)."""
        return cls(
            params,
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
        if self._port == 0:
            self._port = _free_port(self.host)
        server = Server()
        await server.init()
        server.set_endpoint(f"{self.endpoint}/")
        server.set_server_name("Backfill plant simulator")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE_URI)
        if idx != NAMESPACE_INDEX:
            raise RuntimeError(f"namespace {NAMESPACE_URI} got index {idx}, expected 2")
        await self._build_address_space(server)
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._run(), name="plant-simulator")
        logger.info("simulator listening on %s (speed %gx)", self.endpoint, self.speed)

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
    ) -> SimControls:
        """Change faults (None leaves one as it is; an empty string or set clears a list).

        Tags are logical tag names of published nodes; feeders are cement/slag/flyash.
        The control nodes ``Backfill.Sim.*`` are updated to match.
        """
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
        self._controls = c
        if self._server is not None:
            await self._write_controls(self._server, c)
        return c

    async def clear_faults(self) -> SimControls:
        return await self.set_fault(
            stuck_tags="",
            bad_tags="",
            feeder_faults="",
            feed_density_step_kg_m3=0.0,
            wet_feed=False,
            blockage=False,
            remote_enabled=True,
        )

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
        initial = {
            **self._published_values(),
            **self._command_values(),
            **self._control_values(self._controls),
        }
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
        plc = self._sim.plc
        values: dict[str, ua.Variant] = {
            tag: ua.Variant(value, _FLOAT) for tag, value in self._measurements.as_dict().items()
        }
        values["plant_mode"] = ua.Variant(int(plc.mode), _INT16)
        values["remote_enabled"] = ua.Variant(plc.remote_enabled, _BOOL)
        values["setpoint_ack"] = ua.Variant(plc.setpoint_ack, _INT32)
        for name, feeder in zip(BINDERS, self._sim.plant.feeders, strict=True):
            values[f"{name}_refill"] = ua.Variant(feeder.refilling, _BOOL)
            values[f"{name}_fault"] = ua.Variant(feeder.fault, _BOOL)
        values["comms_fault"] = ua.Variant(plc.comms_fault, _BOOL)
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
        }

    @staticmethod
    def _control_values(c: SimControls) -> dict[str, ua.Variant]:
        return {
            "Backfill.Sim.StuckTag": ua.Variant(",".join(sorted(c.stuck_tags)), _STRING),
            "Backfill.Sim.BadTag": ua.Variant(",".join(sorted(c.bad_tags)), _STRING),
            "Backfill.Sim.FeederFault": ua.Variant(",".join(sorted(c.feeder_faults)), _STRING),
            "Backfill.Sim.FeedDensityStep": ua.Variant(c.feed_density_step_kg_m3, _FLOAT),
            "Backfill.Sim.WetFeed": ua.Variant(c.wet_feed, _BOOL),
            "Backfill.Sim.Blockage": ua.Variant(c.blockage, _BOOL),
            "Backfill.Sim.RemoteEnabled": ua.Variant(c.remote_enabled, _BOOL),
        }

    async def _write_controls(self, server: Server, c: SimControls) -> None:
        for path, variant in self._control_values(c).items():
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
        self._controls = self._read_controls(server)
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
        )

    def _read_controls(self, server: Server) -> SimControls:
        old = self._controls

        def names(path: str, allowed: frozenset[str]) -> frozenset[str]:
            raw = self._value(server, path, "")
            parsed = _names(str(raw))
            unknown = parsed - allowed
            for name in unknown - self._warned_names:
                logger.warning("%s: ignoring unknown name %r", path, name)
                self._warned_names.add(name)
            return parsed & allowed

        return SimControls(
            stuck_tags=names("Backfill.Sim.StuckTag", PUBLISHED_TAGS),
            bad_tags=names("Backfill.Sim.BadTag", PUBLISHED_TAGS),
            feeder_faults=names("Backfill.Sim.FeederFault", frozenset(BINDERS)),
            feed_density_step_kg_m3=float(
                self._value(server, "Backfill.Sim.FeedDensityStep", old.feed_density_step_kg_m3)
            ),
            wet_feed=bool(self._value(server, "Backfill.Sim.WetFeed", old.wet_feed)),
            blockage=bool(self._value(server, "Backfill.Sim.Blockage", old.blockage)),
            remote_enabled=bool(
                self._value(server, "Backfill.Sim.RemoteEnabled", old.remote_enabled)
            ),
        )


__all__ = [
    "COMMANDS",
    "CONTROLS",
    "MEASUREMENT_TAGS",
    "NAMESPACE_INDEX",
    "NAMESPACE_URI",
    "PUBLISHED",
    "TAG_NODE_IDS",
    "SimulatorServer",
]
