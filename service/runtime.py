"""Everything the running service owns, started in order and stopped in reverse."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.auth import KeyRing
from service.api.slots import CallerSlots
from service.api.streams import StreamSlots
from service.core.barricade import is_barricade_tag
from service.core.control.fallback import FallbackConfig
from service.core.diversion import DiverterConfig
from service.core.lab_limits import LabLimits
from service.core.people import Actor
from service.core.recipe_limits import RecipeLimits
from service.core.stope_limits import StopeLimits
from service.core.untrusted import clip
from service.errors import TooManyExports
from service.metrics import ServiceMetrics
from service.operations.calibrations import (
    CalibrationCache,
    model_of,
    seed_example_calibration,
)
from service.operations.lab import LabService, compliance_config
from service.operations.leadership import Leadership, PostgresLease, default_instance_id
from service.operations.people import KeyFile
from service.operations.plant_profile import PlantProfiles, simulated_plant
from service.operations.plant_view import status_body
from service.operations.pour_context import PlantClock
from service.operations.recorder import HistoryRecorder, sample_of
from service.operations.rheology import rheology_of, seed_example_rheology
from service.operations.stope_release import ReleaseEvidence
from service.operations.stopes import StopeService
from service.operations.supervisor import Supervisor, SupervisorConfig
from service.plant.opcua import OpcUaPlantLink
from service.plant.port import UNITS, PlantLink
from service.plant.tags import TagMap, load_tag_map
from service.settings import ApiKey, Role, Settings
from service.store.db import create_engine, migrate
from service.store.history import HistoryStore
from service.store.lab import LabStore
from service.store.repository import Store
from service.store.stopes import StopeStore

if TYPE_CHECKING:
    from service.scada.opcua_face import OpcUaFace
    from service.scada.source import Action, Caller
    from service.scada.sparkplug import SparkplugNode
    from service.simulator.server import SimulatorServer

log = logging.getLogger(__name__)

DEV_KEYS_FILE = "backfill-dev-keys.txt"


def _development_keys(folder: Path) -> list[ApiKey]:
    """With no BACKFILL_API_KEYS and no key file the service makes one random key per
    role for this run (keys of the role alone: their acts are recorded as the role and
    the key's id) and writes them to a file readable by the owner only; the keys are
    never logged."""
    keys = [ApiKey(role=role, key=SecretStr(secrets.token_urlsafe(24))) for role in Role]
    path = folder / DEV_KEYS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# API keys generated for this run (BACKFILL_API_KEYS was not set)\n")
        for k in keys:
            fh.write(f"{k.role.value}:{k.key.get_secret_value()}\n")
    log.warning(
        "\n%s\n  API KEYS for this run (BACKFILL_API_KEYS is not set): %s\n%s",
        _RULE,
        path,
        _RULE,
    )
    return keys


_RULE = "=" * 78


def _ages(link: OpcUaPlantLink) -> list[tuple[dict[str, str], float]]:
    now = time.monotonic()
    return [
        ({"tag": tag}, max(0.0, now - m.received_monotonic))
        for tag, m in link.snapshot().measurements.items()
    ]


class Runtime:
    """Owns the store, the built-in simulator (when no PLC endpoint is set), the PLC
    link and the supervisor; starts them in that order and stops them in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        keys = settings.api_keys
        if not keys and settings.key_file is None:
            keys = _development_keys(Path.cwd())
        # The settings' keys now; the key file's people join them at start.
        self._fixed_keys = [k.credential() for k in keys]
        self.keys = KeyRing(self._fixed_keys)
        unnamed = sum(1 for k in keys if k.person is None)
        if unnamed:
            log.info(
                "%d API keys name no person: their acts are recorded as the role and the "
                "key's id (role:person:key entries or a key file name the people)",
                unnamed,
            )
        self.metrics = ServiceMetrics()
        self.calibrations = CalibrationCache(model_of)
        self.rheologies = CalibrationCache(rheology_of, rheology=True)
        self.recipe_limits = RecipeLimits(
            **settings.recipes.model_dump(exclude={"allow_unapproved"})
        )
        self.lab_limits = LabLimits(**settings.lab.model_dump())
        self.stope_limits = StopeLimits(
            **settings.stopes.model_dump(exclude={"release_barricade_pct"})
        )
        self.streams = StreamSlots(settings.api.max_streams_per_key, settings.api.max_streams)
        self.exports = CallerSlots(
            settings.api.max_exports_per_key,
            settings.api.max_exports,
            what="exports",
            error=TooManyExports,
            settings=("BACKFILL_API__MAX_EXPORTS_PER_KEY", "BACKFILL_API__MAX_EXPORTS"),
        )
        self.metrics.plant_simulated.set(1.0 if settings.embedded_simulator else 0.0)
        self.metrics.event_streams_open.set_callback(lambda: [({}, float(self.streams.count))])
        # Set at shutdown: event streams end, the supervisor takes no pour action.
        self.closing = asyncio.Event()
        self._stack: AsyncExitStack | None = None
        self._engine: AsyncEngine | None = None
        self._store: Store | None = None
        self._link: PlantLink | None = None
        self._supervisor: Supervisor | None = None
        self._history: HistoryStore | None = None
        self._stopes: StopeService | None = None
        self._lab: LabService | None = None
        # Plant time: holds, settle and travel times run at the simulator's speed.
        self.plant_clock = PlantClock(self.time_scale)
        self.simulator: SimulatorServer | None = None
        self.leadership: Leadership | None = None
        self.opcua_face: OpcUaFace | None = None
        self.sparkplug: SparkplugNode | None = None
        # What the plant can make: as the site states it, and as its history shows.
        self.plant_profiles = PlantProfiles(settings.plant, lambda: self.history)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the runtime is not started")
        return self._store

    @property
    def link(self) -> PlantLink:
        if self._link is None:
            raise RuntimeError("the runtime is not started")
        return self._link

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            raise RuntimeError("the runtime is not started")
        return self._supervisor

    @property
    def stopes(self) -> StopeService:
        if self._stopes is None:
            raise RuntimeError("the runtime is not started")
        return self._stopes

    @property
    def lab(self) -> LabService:
        if self._lab is None:
            raise RuntimeError("the runtime is not started")
        return self._lab

    @property
    def history(self) -> HistoryStore:
        if self._history is None:
            raise RuntimeError("the runtime is not started")
        return self._history

    def barricade_readings(self) -> dict[str, tuple[float | None, str]]:
        """Every barricade tag the plant reads: (kPa or None, quality), from memory."""
        out: dict[str, tuple[float | None, str]] = {}
        for tag, m in self.link.snapshot().measurements.items():
            if not is_barricade_tag(tag):
                continue
            value = m.value
            number = (
                float(value)
                if isinstance(value, int | float) and not isinstance(value, bool)
                else None
            )
            if number is not None and not math.isfinite(number):
                number = None
            out[tag] = (number, m.quality.value)
        return out

    @property
    def time_scale(self) -> float:
        """Plant seconds per wall second: the simulator's speed when it is built in."""
        return self.settings.sim.speed if self.settings.embedded_simulator else 1.0

    @property
    def started(self) -> bool:
        return self._stack is not None

    async def start(self) -> None:
        """Start everything in order; a no-op when started already (``python -m
        service`` starts the runtime before the server, to report a failure plainly)."""
        if self._stack is not None:
            return
        stack = AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def _start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        await migrate(engine)
        self._engine, self._store = engine, Store(engine)
        await seed_example_calibration(self._store)
        await seed_example_rheology(self._store)
        if settings.key_file is not None:
            key_file = KeyFile(settings.key_file, self.keys, self._fixed_keys)
            await key_file.start()
            stack.push_async_callback(key_file.stop)

        plc = settings.plc
        if settings.embedded_simulator:
            # Imported here: the simulator is only loaded when it is used.
            from service.simulator import TAG_MAP_PATH
            from service.simulator.server import SimulatorServer

            simulator = SimulatorServer.from_settings(settings.sim)
            await simulator.start()
            stack.push_async_callback(simulator.stop)
            endpoint = simulator.endpoint
            self.simulator = simulator
            tag_map_path = TAG_MAP_PATH
            # Measurements arrive as often in plant time as they would at speed 1.
            interval = max(plc.publishing_interval_ms / settings.sim.speed, 50.0)
            plc = plc.model_copy(update={"publishing_interval_ms": interval})
            profile = simulator.profile
            if settings.plant.feed_solids_min_pct is None:
                self.plant_profiles = PlantProfiles(
                    simulated_plant(settings.plant, simulator.params.plant),
                    lambda: self.history,
                    feed_basis="simulator",
                )
            log.warning(
                "\n%s\n  SIMULATED PLANT: no PLC is connected. The built-in simulator at %s "
                "(speed %gx)\n  runs because BACKFILL_PLC__ENDPOINT is not set; its plant is "
                "the profile %r (%s).\n%s",
                _RULE,
                endpoint,
                settings.sim.speed,
                profile.name if profile else None,
                profile.path if profile else None,
                _RULE,
            )
        else:
            assert plc.endpoint is not None and plc.tag_map is not None  # settings say so
            endpoint = plc.endpoint
            tag_map_path = plc.tag_map
        tag_map = load_tag_map(tag_map_path)
        link = OpcUaPlantLink(plc, tag_map, endpoint=endpoint)
        failover = settings.failover
        if failover.enabled:
            await link.set_writer(None)  # a standby until elected: no writes, no heartbeat
        await link.start()
        stack.push_async_callback(link.stop)
        self._link = link
        self.metrics.measurement_age_seconds.set_callback(lambda: _ages(link))
        self.metrics.plc_reconnects.set_callback(lambda: [({}, float(link.reconnects))])

        stope_store = StopeStore(engine)
        self._stopes = StopeService(
            stopes=stope_store,
            store=self._store,
            clock=self.plant_clock,
            limits=self.recipe_limits,
            allow_unapproved=settings.recipes.allow_unapproved,
            plant_tags=lambda: frozenset(link.snapshot().measurements),
        )
        # Cylinders cure in real time: the lab loop keeps the wall clock.
        self._lab = LabService(
            store=self._store,
            lab=LabStore(engine),
            stopes=stope_store,
            pass_fraction_pct=settings.design.pass_fraction_pct,
            config=compliance_config(settings.design),
            limits=self.lab_limits,
        )
        self._stopes.evidence = ReleaseEvidence(
            store=self._store,
            lab=self._lab,
            stopes=self._stopes,
            calibrations=self.calibrations,
            barricade_readings=self.barricade_readings,
            release_fraction=settings.stopes.release_barricade_pct / 100.0,
            pass_fraction=settings.design.pass_fraction_pct / 100.0,
        )
        supervisor = Supervisor(
            store=self._store,
            link=link,
            metrics=self.metrics,
            stages=self._stopes,
            plant_clock=self.plant_clock,
            config=SupervisorConfig(
                checkpoint_interval_wall_s=settings.checkpoint_interval_s,
                start_timeout_s=settings.start_timeout_s,
                recipe_limits=self.recipe_limits,
                allow_unapproved=settings.recipes.allow_unapproved,
                diverter=DiverterConfig(
                    settle_s=settings.diverter.settle_s,
                    travel_timeout_s=settings.diverter.travel_timeout_s,
                ),
                fallback=FallbackConfig(
                    hold_s=settings.fallback.hold_s, recover_s=settings.fallback.recover_s
                ),
                instruments=settings.instruments,
                dump=settings.dump,
                estimate=settings.estimate,
            ),
            time_scale=self.time_scale,
        )
        self._supervisor = supervisor
        if failover.enabled:
            leadership = Leadership(
                PostgresLease(
                    engine, failover.instance_id or default_instance_id(), failover.lease_ttl_s
                ),
                on_elected=self._on_elected,
                on_demoted=self._on_demoted,
                ttl_s=failover.lease_ttl_s,
                renew_interval_s=failover.renew_interval_s,
            )
            self.leadership = leadership  # before start: on_elected uses it
            await leadership.start()
            stack.push_async_callback(leadership.stop)
        else:
            await supervisor.start()
            stack.push_async_callback(supervisor.stop)

        self._history = HistoryStore(engine)
        recorder = HistoryRecorder(
            store=self._history,
            sample=lambda: sample_of(link, supervisor),
            settings=settings.history,
            active=lambda: self.is_writer,
        )
        await recorder.start()
        stack.push_async_callback(recorder.stop)
        await self._start_scada_faces(stack, link, tag_map)

    def _scada_actions(self) -> dict[str, Action]:
        """The pour actions and alarm acknowledgement of the SCADA faces, through the
        supervisor as the API does them: an argument and the caller in, the new state
        out, recorded as the caller's person (the OPC UA session's, the person a
        Sparkplug host named) and logged with the face and the user name given."""
        from service.operations.pours import start_pour

        supervisor = self.supervisor

        def note(action: str, argument: str, caller: Caller) -> str:
            log.info(
                "%s %s %s by %s (%s, user %s)",
                caller.face,
                action,
                clip(argument),
                caller.person,
                caller.role.value,
                clip(caller.user),
            )
            return caller.role.value

        async def start(pour_id: str, caller: Caller) -> str:
            role = note("start", pour_id, caller)
            return (await start_pour(self.store, supervisor, pour_id, role, caller.person)).state

        async def pause(pour_id: str, caller: Caller) -> str:
            role = note("pause", pour_id, caller)
            return (await supervisor.pause_pour(pour_id, role, person=caller.person)).state

        async def resume(pour_id: str, caller: Caller) -> str:
            role = note("resume", pour_id, caller)
            return (await supervisor.resume_pour(pour_id, role, caller.person)).state

        async def stop(pour_id: str, caller: Caller) -> str:
            role = note("stop", pour_id, caller)
            return (await supervisor.stop_pour(pour_id, role, caller.person)).state

        async def acknowledge(code: str, caller: Caller) -> str:
            role = note("acknowledge", code, caller)
            return supervisor.acknowledge_alarm(code, Actor(role, caller.person)).state.value

        return {
            "Start": start,
            "Pause": pause,
            "Resume": resume,
            "Stop": stop,
            "Acknowledge": acknowledge,
        }

    async def _start_scada_faces(
        self, stack: AsyncExitStack, link: PlantLink, tag_map: TagMap
    ) -> None:
        """The OPC UA server and the Sparkplug B edge node, when enabled: their model is
        the HMI snapshot (``/plant/status``), so a value reads the same on every face."""
        settings = self.settings

        async def changed(version: int, within_s: float) -> int:
            return (await link.wait_changed(version, within_s)).version

        if not (settings.opcua_server.enabled or settings.sparkplug.enabled):
            return
        from service.scada.source import ModelSource

        source = ModelSource(
            status=lambda: status_body(self),
            changed=changed,
            measurements={t: UNITS[t] for t in tag_map.measurements},
            setpoints={t: UNITS[t] for t in tag_map.setpoints if t in link.setpoint_tags},
            actions=self._scada_actions(),
            ranges=tag_map.ranges,
        )
        if settings.opcua_server.enabled:
            from service.scada.opcua_face import OpcUaFace

            face = OpcUaFace(settings.opcua_server, keys=self.keys, source=source)
            await face.start()
            stack.push_async_callback(face.stop)
            self.opcua_face = face
        if settings.sparkplug.enabled:
            from service.scada.sparkplug import SparkplugNode

            node = SparkplugNode(
                settings.sparkplug,
                source=source,
                active=lambda: self.is_writer,
                roles_of=self.keys.roles_of,
            )
            await node.start()
            stack.push_async_callback(node.stop)
            self.sparkplug = node

    async def _on_elected(self, epoch: int) -> None:
        assert self.leadership is not None
        await self.link.set_writer(epoch, may_write=self.leadership.may_write)
        await self.supervisor.start(takeover=True)

    async def _on_demoted(self) -> None:
        # Another instance may already write: stop at once, leave the record to it.
        await self.supervisor.stop(checkpoint=False)
        await self.link.set_writer(None)

    @property
    def is_writer(self) -> bool:
        return self._supervisor is not None and self._supervisor.running

    async def quiesce(self) -> None:
        """The first step of a shutdown: no further pour action, the running pour
        paused and the plant told to stop (confirmed by the PLC), the records stored,
        then every event stream ends. Idempotent; the caller bounds the time."""
        try:
            if self._supervisor is not None:
                await self._supervisor.quiesce()
        finally:
            self.closing.set()

    async def stop(self) -> None:
        try:
            await self.quiesce()
        except Exception:  # a shutdown step: record it, stop everything anyway
            log.exception("pausing the plant for the shutdown failed")
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self._engine = self._store = None
        self._link = self._supervisor = None
        self._history = None
        self._stopes = None
        self._lab = None
        self.simulator = None
        self.opcua_face = None
        self.sparkplug = None
