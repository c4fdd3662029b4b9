"""The service as a Sparkplug B edge node: the SCADA model over MQTT.

Sparkplug B 3.0 (Eclipse Foundation, "Sparkplug Specification" 3.0.0, 2022), as a SCADA
host expects it:

* Topics ``spBv1.0/<group>/<type>/<edge node>[/<device>]``; the edge node carries the
  node metrics (``bdSeq``, ``Node Control/Rebirth``), one device (``device_id``, default
  ``Plant``) carries the model of :mod:`service.core.scada_model`, each point a metric
  named by its path with ``/`` (``Pour/PouredM3``), its unit and meaning in the metric's
  metadata description, a point without data a null metric.
* Session: the MQTT will is an NDEATH holding this connection's ``bdSeq`` (0-255, one
  more for every new connection); once connected, NBIRTH (``seq`` 0, the same
  ``bdSeq``) then DBIRTH; afterwards every message of the node (DBIRTH, DDATA, DDEATH)
  has the next ``seq``, 0-255 and round again. NDEATH is not sequenced.
* DDATA with the metrics that changed, when the plant link's snapshot changes (and at
  least every second for the pour's totals). While the PLC link is down the device is
  dead (DDEATH); it is born again when the link is back.
* An NCMD ``Node Control/Rebirth`` true: NBIRTH (``seq`` 0) and DBIRTH again.
* DCMD ``Pour/Start``, ``Pour/Pause``, ``Pour/Resume``, ``Pour/Stop`` (a pour id) and
  ``Alarms/Acknowledge`` (an alarm code) run the action as ``command_role`` only with
  ``commands_enabled``; otherwise they are refused and logged.
* On shutdown an NDEATH is published before the disconnect; a killed service's NDEATH
  is the broker's (the will).

Payloads are Sparkplug B protobuf, encoded and decoded with pysparkplug; the MQTT
client is aiomqtt. The broker's own authentication and ACLs decide who may publish
commands; the service records ``command_role`` for what they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import aiomqtt
import pysparkplug as spb

from service.core import scada_model as M
from service.core.untrusted import clip
from service.errors import BackfillError
from service.scada.source import Caller, ModelSource
from service.settings import SparkplugSettings

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


class SparkplugNode:
    def __init__(
        self,
        settings: SparkplugSettings,
        *,
        source: ModelSource,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        """``active()``: this instance is the one that writes to the plant. Only that one
        is the edge node (two instances of one edge node id would take each other's
        MQTT session over); a standby connects when it is elected, and the node it was
        leaves with its NDEATH when it is deposed."""
        self.settings = settings
        self._source = source
        self._active = active
        self._spec = source.spec()
        self._bd_seq = -1
        self._seq = 0
        self._client: aiomqtt.Client | None = None
        self._sent: dict[str, M.Point] = {}
        self._device_alive = False
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one message at a time: seq order is send order
        self.births = 0  # NBIRTHs sent (a rebirth counts)

    def topic(self, kind: str, device: bool = False) -> str:
        s = self.settings
        tail = f"/{s.device_id}" if device else ""
        return f"{NAMESPACE}/{s.group_id}/{kind}/{s.edge_node_id}{tail}"

    async def start(self) -> None:
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

    async def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            while not self._active():  # noqa: ASYNC110 (the writer role is polled: no event)
                await asyncio.sleep(UPDATE_S)
            self._bd_seq = (self._bd_seq + 1) % 256
            s = self.settings
            will = aiomqtt.Will(self.topic("NDEATH"), self._death(), qos=1, retain=False)
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
                ) as client:
                    self._client = client
                    await client.subscribe(self.topic("NCMD"), qos=1)
                    await client.subscribe(self.topic("DCMD", device=True), qos=1)
                    await self._birth()
                    delay = RECONNECT_MIN_S
                    commands = asyncio.create_task(self._commands(client))
                    try:
                        await self._publish_loop()
                    finally:
                        commands.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await commands
            except aiomqtt.MqttError as err:
                log.warning("Sparkplug: broker %s:%d: %s", s.host, s.port, err)
            except Exception:  # a loop boundary: say it, start a new session
                log.exception("Sparkplug: the session failed; connecting again")
            finally:
                self._client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

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
        async with self._lock:
            now = spb.get_current_timestamp()
            self._seq = 0
            node = (
                spb.Metric(
                    timestamp=now, name=BD_SEQ, datatype=spb.DataType.INT64, value=self._bd_seq
                ),
                spb.Metric(timestamp=now, name=REBIRTH, datatype=spb.DataType.BOOLEAN, value=False),
            )
            birth = spb.NBirth(timestamp=now, seq=self._next_seq(), metrics=node)
            await self._send(self.topic("NBIRTH"), birth.encode(include_dtypes=True))
            self.births += 1
            self._device_alive = False
            await self._device_birth_locked()

    async def _device_birth_locked(self) -> None:
        status = self._source.status()
        if not status.get("connected"):
            return  # the device is born when the PLC link is up
        now = spb.get_current_timestamp()
        points = M.points(status, self._spec)
        metrics = tuple(
            self._metric(spec, points[spec.path], now, describe=True) for spec in self._spec
        )
        payload = spb.DBirth(timestamp=now, seq=self._next_seq(), metrics=metrics)
        await self._send(self.topic("DBIRTH", device=True), payload.encode(include_dtypes=True))
        self._sent = dict(points)
        self._device_alive = True

    def _metric(
        self, spec: M.PointSpec, point: M.Point, now: int, *, describe: bool = False
    ) -> spb.Metric:
        text = f"[{spec.unit}] {spec.description}".strip() if spec.unit else spec.description
        no_value = point.value is None or point.quality in (M.Quality.BAD, M.Quality.NO_DATA)
        return spb.Metric(
            timestamp=_ms(point.source_time, now),
            name=metric_name(spec.path),
            datatype=_TYPES[spec.kind],
            value=None if no_value else point.value,
            is_null=no_value,
            metadata=spb.Metadata(description=text) if describe and text else None,
        )

    async def _publish_loop(self) -> None:
        """Until this instance is no longer the writer: then the NDEATH, and the
        session ends."""
        version = -1
        while self._active():
            version = await self._source.changed(version, UPDATE_S)
            await self._publish()
        log.warning("Sparkplug: no longer the writer; leaving as edge node")
        await self._send(self.topic("NDEATH"), self._death())

    async def _publish(self) -> None:
        """DDATA of what changed; DDEATH when the PLC link went down, DBIRTH when back."""
        async with self._lock:
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
            now = spb.get_current_timestamp()
            points = M.points(status, self._spec)
            changed = tuple(
                self._metric(spec, points[spec.path], now)
                for spec in self._spec
                if self._sent.get(spec.path) != points[spec.path]
            )
            if not changed:
                return
            data = spb.DData(timestamp=now, seq=self._next_seq(), metrics=changed)
            await self._send(self.topic("DDATA", device=True), data.encode(include_dtypes=True))
            self._sent = dict(points)

    # --- commands ------------------------------------------------------------------------------

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            try:
                raw = message.payload
                payload = raw if isinstance(raw, bytes) else bytes(str(raw or ""), "utf-8")
                if topic == self.topic("NCMD"):
                    await self._node_command(spb.NCmd.decode(payload))
                elif topic == self.topic("DCMD", device=True):
                    await self._device_command(spb.DCmd.decode(payload))
            except (ValueError, TypeError, KeyError) as err:
                log.warning("Sparkplug: a command on %s could not be read: %s", topic, err)

    async def _node_command(self, command: spb.NCmd) -> None:
        for metric in command.metrics:
            if metric.name == REBIRTH and metric.value is True:
                log.info("Sparkplug: rebirth requested")
                await self._birth()

    async def _device_command(self, command: spb.DCmd) -> None:
        s = self.settings
        for metric in command.metrics:
            action = COMMANDS.get(metric.name or "")
            if action is None:
                log.warning("Sparkplug: unknown device command %s", clip(metric.name))
                continue
            if not s.commands_enabled:
                log.warning(
                    "Sparkplug: %s %s refused: commands are not enabled "
                    "(BACKFILL_SPARKPLUG__COMMANDS_ENABLED)",
                    metric.name,
                    clip(metric.value),
                )
                continue
            if not isinstance(metric.value, str) or not metric.value:
                log.warning("Sparkplug: %s needs a text argument", metric.name)
                continue
            caller = Caller(role=s.command_role, key_id="sparkplug", user="", face="sparkplug")
            try:
                state = await self._source.actions[action](metric.value, caller)
                log.info("Sparkplug: %s %s -> %s", metric.name, clip(metric.value), state)
            except BackfillError as err:
                log.warning(
                    "Sparkplug: %s %s refused: %s",
                    metric.name,
                    clip(metric.value),
                    clip(err.detail, 200),
                )
            await self._publish()
