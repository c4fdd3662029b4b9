"""The service as a Sparkplug B edge node: the SCADA model over MQTT.

Sparkplug B 3.0 (Eclipse Foundation, "Sparkplug Specification" 3.0.0, 2022), as a SCADA
host (Ignition's MQTT Engine and the like) consumes it:

* Topics ``spBv1.0/<group>/<type>/<edge node>[/<device>]``; the edge node carries the
  node metrics (``bdSeq``, ``Node Control/Rebirth``), one device (``device_id``, default
  ``Plant``) carries the model of :mod:`service.core.scada_model`, each point a metric
  named by its path with ``/`` (``Pour/PouredM3``), a point without data a null metric.
* Births: every metric with its alias, datatype and the properties ``engUnit`` and
  ``Quality`` (:mod:`.sparkplug_payload`); the DBIRTH also bears the commands
  (``Pour/Start``, ``Pour/Pause``, ``Pour/Resume``, ``Pour/Stop``,
  ``Alarms/Acknowledge``) as String metrics, so a host writes them as tags.
* Session: the MQTT will is an NDEATH holding this connection's ``bdSeq`` (0-255, one
  more for every connection, kept in ``bd_seq_file`` so that it goes on across
  restarts); with a ``primary_host_id`` the node subscribes to that host's STATE and is
  born only once the host says online, and when the host says offline it publishes its
  NDEATH, disconnects and starts over (:mod:`service.core.sparkplug_rules`). Once born:
  NBIRTH (``seq`` 0, the same ``bdSeq``) then DBIRTH; afterwards every message of the
  node (DBIRTH, DDATA, DDEATH) has the next ``seq``, 0-255 and round again.
* DDATA with the metrics due (past their deadband, or of a new quality), aliases only,
  no datatypes, at most ``max_ddata_per_s`` a second: changes in between wait and merge.
  While the PLC link is down the device is dead (DDEATH); it is born again when the link
  is back.
* An NCMD ``Node Control/Rebirth`` true: NBIRTH (``seq`` 0) and DBIRTH again.
* DCMD of a born command (by alias, or by name) with a text argument (a pour id, an
  alarm code) runs the action only with ``commands_enabled``; otherwise it is refused
  and logged. A DCMD carries no user, so the host names the person in the value:
  ``"<argument> by <person>"``. The person must hold a key of the service (the key
  ring's people) whose role may run pours (scada, admin): the action is recorded as
  theirs, in that role, with the host's id beside it. A value naming nobody is refused
  with ``require_person``; otherwise it is recorded as the host's own act
  (``sparkplug:<primary host id>``, in ``command_role``). The broker's authentication
  and ACLs decide which host may publish commands at all; the host's own sign-in
  decides which operator it names.
* On shutdown an NDEATH is published before the disconnect; a killed service's NDEATH
  is the broker's (the will).

Payloads are Sparkplug B protobuf (pysparkplug, with properties added); the MQTT client
is aiomqtt, over TLS with a CA and a client certificate when the settings say so. The
broker's own authentication and ACLs decide who may publish commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pysparkplug as spb

from service.core import scada_model as M
from service.core import sparkplug_rules as R
from service.core.people import acting_role
from service.core.untrusted import clip
from service.errors import BackfillError
from service.scada.source import Caller, ModelSource
from service.scada.sparkplug_payload import INT32, STRING, Metric
from service.settings import Role, SparkplugSettings

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
UPDATE_S = 1.0
REBIRTH = "Node Control/Rebirth"
BD_SEQ = "bdSeq"
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 30.0
COMMANDS = {
    "Pour/Start": "Start",
    "Pour/Pause": "Pause",
    "Pour/Resume": "Resume",
    "Pour/Stop": "Stop",
    "Alarms/Acknowledge": "Acknowledge",
}
_TYPES = {
    M.Kind.DOUBLE: spb.DataType.DOUBLE,
    M.Kind.STRING: spb.DataType.STRING,
    M.Kind.BOOL: spb.DataType.BOOLEAN,
}


def metric_name(path: str) -> str:
    return path.replace(".", "/")


def _ms(at: datetime | None, now_ms: int) -> int:
    return now_ms if at is None else int(at.timestamp() * 1000)


class BdSeqFile:
    """The last bdSeq, in a small file: read at start, written (atomically) before every
    connect. Unreadable: start at 0 and say so; unwritable: go on, and say so."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last = self._read()

    def _read(self) -> int:
        try:
            value = int(self.path.read_text().strip())
        except FileNotFoundError:
            return -1
        except (OSError, ValueError) as err:
            log.warning("Sparkplug: bdSeq file %s unreadable (%s): counting from 0", self.path, err)
            return -1
        return value if 0 <= value <= 255 else -1

    def next(self) -> int:
        value = (self._last + 1) % 256
        self._last = value
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with tmp.open("w") as fh:
                fh.write(f"{value}\n")
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path)
        except OSError as err:
            log.warning("Sparkplug: bdSeq %d not kept in %s: %s", value, self.path, err)
        return value


class _HostOffline(Exception):
    """The primary host said offline: leave and start over."""


class SparkplugNode:
    def __init__(
        self,
        settings: SparkplugSettings,
        *,
        source: ModelSource,
        active: Callable[[], bool] = lambda: True,
        roles_of: Callable[[str], frozenset[Role]] = lambda _person: frozenset(),
    ) -> None:
        """``active()``: this instance is the one that writes to the plant. Only that one
        is the edge node (two instances of one edge node id would take each other's
        MQTT session over); a standby connects when it is elected, and the node it was
        leaves with its NDEATH when it is deposed. ``roles_of(person)``: the roles a
        named person holds keys of (the key ring's), for the person a command names."""
        self.settings = settings
        self._source = source
        self._roles_of = roles_of
        self._active = active
        self._spec = source.spec()
        names = [metric_name(spec.path) for spec in self._spec]
        unknown = sorted(set(settings.deadbands) - set(names))
        if unknown:
            raise BackfillError(
                f"BACKFILL_SPARKPLUG__DEADBANDS names no metric of the model: {', '.join(unknown)}",
                code="invalid_setting",
            )
        self._aliases = R.aliases([BD_SEQ, REBIRTH, *names, *COMMANDS])
        self._by_alias = {alias: name for name, alias in self._aliases.items()}
        self._deadbands = {
            spec.path: R.deadband_of(
                spec, metric_name(spec.path), settings.deadband_pct, settings.deadbands
            )
            for spec in self._spec
        }
        self._pacing = R.Pacing(settings.max_ddata_per_s)
        self._bd_file = BdSeqFile(settings.bd_seq_file)
        self._bd_seq = -1
        self._seq = 0
        self._client: aiomqtt.Client | None = None
        self._sent: dict[str, M.Point] = {}
        self._device_alive = False
        self._last_ddata_at: float | None = None
        self._host: R.HostState | None = None
        self._host_online = asyncio.Event()
        self._host_gone = asyncio.Event()
        self._born = False  # in this MQTT session
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one message at a time: seq order is send order
        self.births = 0  # NBIRTHs sent (a rebirth counts)
        self.ddata_sent = 0

    def topic(self, kind: str, device: bool = False) -> str:
        s = self.settings
        tail = f"/{s.device_id}" if device else ""
        return f"{NAMESPACE}/{s.group_id}/{kind}/{s.edge_node_id}{tail}"

    @property
    def state_topic(self) -> str | None:
        host = self.settings.primary_host_id
        return None if host is None else f"{NAMESPACE}/STATE/{host}"

    async def start(self) -> None:
        s = self.settings
        if s.password is not None and not s.tls:
            log.warning(
                "Sparkplug: the broker password crosses the network in clear "
                "(BACKFILL_SPARKPLUG__TLS is off)"
            )
        self._task = asyncio.create_task(self._run(), name="sparkplug-node")

    async def stop(self) -> None:
        """NDEATH, then disconnect (the broker then discards the will)."""
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(3.0):
                    await client.publish(self.topic("NDEATH"), self._death(), qos=1)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the session -------------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.tls:
            return None
        context = ssl.create_default_context(
            cafile=None if s.ca_certificate is None else str(s.ca_certificate)
        )
        if s.client_certificate is not None and s.client_key is not None:
            context.load_cert_chain(str(s.client_certificate), str(s.client_key))
        return context

    async def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            while not self._active():  # noqa: ASYNC110 (the writer role is polled: no event)
                await asyncio.sleep(UPDATE_S)
            self._bd_seq = self._bd_file.next()
            s = self.settings
            will = aiomqtt.Will(self.topic("NDEATH"), self._death(), qos=1, retain=False)
            self._host_online.clear()
            self._host_gone.clear()
            self._born = False
            try:
                async with aiomqtt.Client(
                    s.host,
                    s.port,
                    username=s.username,
                    password=None if s.password is None else s.password.get_secret_value(),
                    identifier=f"backfill-{s.group_id}-{s.edge_node_id}",
                    will=will,
                    clean_session=True,
                    keepalive=s.keepalive_s,
                    tls_context=self._tls(),
                ) as client:
                    self._client = client
                    await self._session(client)
                    delay = RECONNECT_MIN_S
            except _HostOffline:
                delay = RECONNECT_MIN_S  # start over at once: wait for the host there
            except aiomqtt.MqttError as err:
                log.warning("Sparkplug: broker %s:%d: %s", s.host, s.port, err)
            except Exception:  # a loop boundary: say it, start a new session
                log.exception("Sparkplug: the session failed; connecting again")
            finally:
                self._client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _session(self, client: aiomqtt.Client) -> None:
        if self.state_topic is not None:
            await client.subscribe(self.state_topic, qos=1)
        await client.subscribe(self.topic("NCMD"), qos=1)
        await client.subscribe(self.topic("DCMD", device=True), qos=1)
        messages = asyncio.create_task(self._messages(client))
        try:
            if self.state_topic is not None:
                log.info("Sparkplug: waiting for primary host %s", self.settings.primary_host_id)
                await self._until(self._host_online)
            await self._birth()
            await self._publish_loop()
        finally:
            messages.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await messages
        if self._host_gone.is_set():
            log.warning(
                "Sparkplug: primary host %s went offline: leaving, to be born when it is back",
                self.settings.primary_host_id,
            )
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(self.topic("NDEATH"), self._death(), qos=1)
            raise _HostOffline

    async def _until(self, event: asyncio.Event) -> None:
        """Wait for ``event``, unless the host leaves or this instance stops writing."""
        while not event.is_set():
            if self._host_gone.is_set() or not self._active():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(UPDATE_S):
                    await event.wait()

    def _death(self) -> bytes:
        metric = spb.Metric(
            timestamp=spb.get_current_timestamp(),
            name=BD_SEQ,
            datatype=spb.DataType.INT64,
            value=self._bd_seq,
        )
        payload: bytes = spb.NDeath(
            timestamp=spb.get_current_timestamp(), bd_seq_metric=metric
        ).encode(include_dtypes=True)
        return payload

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % 256
        return seq

    async def _send(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None:
            raise aiomqtt.MqttError("not connected")
        await client.publish(topic, payload, qos=0)

    async def _birth(self) -> None:
        """NBIRTH (seq 0) and, with the PLC link up, DBIRTH: the whole model."""
        if self._host_gone.is_set() or not self._active():
            return
        async with self._lock:
            now = spb.get_current_timestamp()
            self._seq = 0
            node = (
                Metric(
                    timestamp=now,
                    name=BD_SEQ,
                    alias=self._aliases[BD_SEQ],
                    datatype=spb.DataType.INT64,
                    value=self._bd_seq,
                ),
                Metric(
                    timestamp=now,
                    name=REBIRTH,
                    alias=self._aliases[REBIRTH],
                    datatype=spb.DataType.BOOLEAN,
                    value=False,
                ),
            )
            birth = spb.NBirth(timestamp=now, seq=self._next_seq(), metrics=node)
            await self._send(self.topic("NBIRTH"), birth.encode(include_dtypes=True))
            self._born = True
            self.births += 1
            self._device_alive = False
            await self._device_birth_locked()

    async def _device_birth_locked(self) -> None:
        status = self._source.status()
        if not status.get("connected"):
            return  # the device is born when the PLC link is up
        now = spb.get_current_timestamp()
        points = M.points(status, self._spec)
        metrics = [self._metric(spec, points[spec.path], now, birth=True) for spec in self._spec]
        metrics += [
            Metric(
                timestamp=now,
                name=name,
                alias=self._aliases[name],
                datatype=spb.DataType.STRING,
                value="",
                metadata=spb.Metadata(
                    description="Write a pour id"
                    if name.startswith("Pour/")
                    else "Write an alarm code"
                ),
            )
            for name in COMMANDS
        ]
        payload = spb.DBirth(timestamp=now, seq=self._next_seq(), metrics=tuple(metrics))
        await self._send(self.topic("DBIRTH", device=True), payload.encode(include_dtypes=True))
        self._sent = dict(points)
        self._device_alive = True

    def _metric(
        self, spec: M.PointSpec, point: M.Point, now: int, *, birth: bool = False
    ) -> Metric:
        name = metric_name(spec.path)
        no_value = point.value is None or point.quality in (M.Quality.BAD, M.Quality.NO_DATA)
        quality = R.quality_code(point.quality)
        properties: list[tuple[str, int, Any]] = []
        if birth and spec.unit:
            properties.append(("engUnit", STRING, spec.unit))
        if (
            birth
            or quality != R.QUALITY_GOOD
            or self._sent.get(spec.path, point).quality != (point.quality)
        ):
            properties.append(("Quality", INT32, quality))
        return Metric(
            timestamp=_ms(point.source_time, now),
            name=name if birth else None,
            alias=self._aliases[name],
            datatype=_TYPES[spec.kind],
            value=None if no_value else point.value,
            is_null=no_value,
            metadata=spb.Metadata(description=spec.description)
            if birth and spec.description
            else None,
            properties=tuple(properties),
        )

    async def _publish_loop(self) -> None:
        """Until this instance is no longer the writer (then the NDEATH) or the primary
        host leaves."""
        version = -1
        while self._active() and not self._host_gone.is_set():
            wait = UPDATE_S
            if self._pending():
                wait = max(0.0, min(wait, self._pacing.next_at(self._last_ddata_at) - _now()))
            version = await self._source.changed(version, wait)
            await self._publish()
        if not self._host_gone.is_set():
            log.warning("Sparkplug: no longer the writer; leaving as edge node")
            await self._send(self.topic("NDEATH"), self._death())

    def _due(self, points: dict[str, M.Point]) -> list[M.PointSpec]:
        return [
            spec
            for spec in self._spec
            if R.due(self._sent.get(spec.path), points[spec.path], self._deadbands[spec.path])
        ]

    def _pending(self) -> bool:
        status = self._source.status()
        return bool(status.get("connected")) and bool(self._due(M.points(status, self._spec)))

    async def _publish(self) -> None:
        """DDATA of what is due, when the pace allows; DDEATH when the PLC link went
        down, DBIRTH when back."""
        async with self._lock:
            if self._host_gone.is_set():
                return
            status = self._source.status()
            if not status.get("connected"):
                if self._device_alive:
                    now = spb.get_current_timestamp()
                    death = spb.DDeath(timestamp=now, seq=self._next_seq())
                    await self._send(self.topic("DDEATH", device=True), death.encode())
                    self._device_alive = False
                return
            if not self._device_alive:
                await self._device_birth_locked()
                return
            points = M.points(status, self._spec)
            due = self._due(points)
            if not due or _now() < self._pacing.next_at(self._last_ddata_at):
                return
            now = spb.get_current_timestamp()
            metrics = tuple(self._metric(spec, points[spec.path], now) for spec in due)
            data = spb.DData(timestamp=now, seq=self._next_seq(), metrics=metrics)
            await self._send(self.topic("DDATA", device=True), data.encode(include_dtypes=False))
            self._last_ddata_at = _now()
            self.ddata_sent += 1
            for spec in due:
                self._sent[spec.path] = points[spec.path]

    # --- messages: the primary host's STATE, commands ------------------------------------------

    async def _messages(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            try:
                raw = message.payload
                payload = raw if isinstance(raw, bytes) else bytes(str(raw or ""), "utf-8")
                if topic == self.state_topic:
                    self._on_state(payload)
                elif topic == self.topic("NCMD"):
                    await self._node_command(spb.NCmd.decode(payload))
                elif topic == self.topic("DCMD", device=True):
                    await self._device_command(spb.DCmd.decode(payload))
            except (ValueError, TypeError, KeyError) as err:
                log.warning("Sparkplug: a message on %s could not be read: %s", topic, clip(err))

    def _on_state(self, payload: bytes) -> None:
        state = R.parse_state(payload)
        if state is None:
            log.warning("Sparkplug: a STATE message that is none: %s", clip(payload))
            return
        if not R.take_state(self._host, state):
            log.info("Sparkplug: an older STATE of the primary host ignored")
            return
        self._host = state
        if state.online:
            self._host_online.set()
            return
        self._host_online.clear()
        if self._born:  # born for a host that is gone: leave (before a birth: keep waiting)
            self._host_gone.set()

    def _name_of(self, metric: spb.Metric) -> str:
        if metric.name:
            return metric.name
        return self._by_alias.get(metric.alias or 0, "")

    async def _node_command(self, command: spb.NCmd) -> None:
        for metric in command.metrics:
            if self._name_of(metric) == REBIRTH and metric.value is True:
                log.info("Sparkplug: rebirth requested")
                await self._birth()

    async def _device_command(self, command: spb.DCmd) -> None:
        s = self.settings
        for metric in command.metrics:
            name = self._name_of(metric)
            action = COMMANDS.get(name)
            if action is None:
                log.warning("Sparkplug: unknown device command %s", clip(name or metric.alias))
                continue
            if not s.commands_enabled:
                log.warning(
                    "Sparkplug: %s %s refused: commands are not enabled "
                    "(BACKFILL_SPARKPLUG__COMMANDS_ENABLED)",
                    name,
                    clip(metric.value),
                )
                continue
            if not isinstance(metric.value, str) or not metric.value:
                log.warning("Sparkplug: %s needs a text argument", name)
                continue
            argument, person = R.command_argument(metric.value)
            caller = self._caller(name, argument, person)
            if caller is None or not argument:
                continue
            try:
                state = await self._source.actions[action](argument, caller)
                log.info("Sparkplug: %s %s by %s -> %s", name, clip(argument), caller.person, state)
            except BackfillError as err:
                log.warning(
                    "Sparkplug: %s %s refused: %s",
                    name,
                    clip(metric.value),
                    clip(err.detail, 200),
                )
            await self._publish()

    def _caller(self, name: str, argument: str, person: str | None) -> Caller | None:
        """Who a command is recorded as (None: refused, logged): the person it names,
        in the role of theirs that may run pours, or the host itself."""
        s = self.settings
        host = s.primary_host_id or "host"
        if person is None:
            if s.require_person:
                log.warning(
                    "Sparkplug: %s %s refused: it names no person ('<argument> by <person>'; "
                    "BACKFILL_SPARKPLUG__REQUIRE_PERSON)",
                    name,
                    clip(argument),
                )
                return None
            return Caller(s.command_role, f"sparkplug:{host}", host, "sparkplug")
        role = acting_role(self._roles_of(person), Role.SCADA)
        if role is None:
            log.warning(
                "Sparkplug: %s %s refused: %s holds no scada or admin key of this service",
                name,
                clip(argument),
                clip(person),
            )
            return None
        return Caller(role, person, host, "sparkplug")


def _now() -> float:
    return time.monotonic()
