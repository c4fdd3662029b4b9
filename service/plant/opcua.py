"""The one OPC UA adapter of the ``PlantLink`` port (asyncua).

Design (see also docs of ``OpcUaPlantLink``):

* One long-lived runner task owns the connection: connect -> resolve every tag's
  node and DataType -> subscribe -> re-send the last setpoint set -> supervise.
  Any transport failure, request timeout or a lost subscription ends the
  connection; the runner closes it and reconnects with capped exponential backoff
  (``reconnect_min_s`` doubling up to ``reconnect_max_s``), forever, until
  ``stop()``. A fresh asyncua ``Client`` is built for every attempt, so no state
  of a broken session leaks into the next one. Transitions are logged once
  (link down, link recovered), never every retry.
* Staleness rule. A measurement's value is *confirmed* at the later of (a) the
  last notification or read that carried it and (b) the last publish response
  (data or keep-alive) of the subscription that delivered it: OPC UA sends a
  notification when a monitored value changes, so a publish response without
  one proves the value is unchanged. The subscription asks for a keep-alive
  every ``max(1, stale_after_intervals // 3)`` publishing intervals. A value whose
  confirmation is older than ``stale_after_intervals x publishing interval`` is
  reported ``bad``; everything is ``bad`` while disconnected. So a stuck-but-alive
  server keeps its unchanged values good (keep-alives arrive) while a dead one
  turns them bad within the stale window.
* Watchdog. When no publish response has arrived for half the stale window the
  supervisor does one batched read of all measurements: success refreshes them
  (covers servers that revise the keep-alive period upwards); failure means the
  connection is dead and triggers a reconnect. When no publish response has
  arrived for ``max(4 keep-alive periods, 2 stale windows)`` while reads work,
  the subscription is silent: it is deleted and recreated (three times in a row
  escalates to a reconnect).
* Setpoints: one Write request with every value as a DataValue of the node's own
  VariantType and no timestamps or status, ``setpoint_seq`` last; per-item
  statuses checked; then confirmation by ``setpoint_ack == seq`` and a read-back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.crypto import security_policies
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from service.errors import (
    InvalidInput,
    NotTheWriter,
    PlantLinkDown,
    PlantLinkError,
    SetpointRejected,
    SetpointUnconfirmed,
    TagMapError,
)
from service.plant import opcua_values as wire
from service.plant.opcua_trust import TrustList, application_uri
from service.plant.port import (
    LINK_OWNED_SETPOINTS,
    UNITS,
    Measurement,
    MeasurementValue,
    PlantSnapshot,
    Quality,
    SetpointValue,
    SetpointWriteResult,
    WrittenSetpoint,
    effective_quality,
    wait_for_change,
)
from service.plant.tags import TagMap, tag_kind
from service.settings import PlcSettings, SecurityMode

# Errors asyncua raises for a failed request: status codes, protocol errors,
# transport errors (ConnectionError is an OSError) and request timeouts.
_UA_ERRORS: tuple[type[BaseException], ...] = (UaError, OSError, TimeoutError)

_ACCESS_CURRENT_WRITE = 0x02
_MAX_SILENT_RECOVERIES = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _describe(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "request timed out"
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


_EPOCH_SPAN = 2**20
_MAX_EPOCH = (2**31 - 1) >> 20


class _ConnectionLost(PlantLinkDown):
    """The current connection is unusable; the runner reconnects."""


@dataclass(slots=True)
class _Slot:
    value: MeasurementValue = None
    quality: Quality = Quality.BAD
    source_timestamp: datetime | None = None
    received: float = 0.0
    sub_generation: int = -1


@dataclass(eq=False)
class _Connection:
    client: Client
    nodes: dict[str, ua.NodeId]
    types: dict[str, ua.VariantType]
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    lost_reason: str = "connection lost"
    sub_id: int | None = None
    handles: dict[int, str] = field(default_factory=dict)
    keepalive_period_s: float = 0.0
    last_publish: float = 0.0
    last_watchdog_read: float = 0.0
    silent_recoveries: int = 0
    seq: int = 0
    heartbeat: int = 0
    heartbeat_failing: bool = False

    def mark_lost(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()


class OpcUaPlantLink:
    """``PlantLink`` over OPC UA (asyncua client).

    ``clock`` is a monotonic seconds function (staleness, ages); ``wall_clock``
    gives aware UTC datetimes for ``written_at``. ``endpoint`` overrides
    ``settings.endpoint`` (the built-in simulator's address).
    """

    def __init__(
        self,
        settings: PlcSettings,
        tag_map: TagMap,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        logger: logging.Logger | None = None,
        endpoint: str | None = None,
    ) -> None:
        url = endpoint or settings.endpoint
        if not url:
            raise ValueError("an OPC UA endpoint is needed (settings.endpoint or endpoint=)")
        self._url = url
        self._settings = settings
        self._tags = tag_map
        self._clock = clock
        self._wall_clock = wall_clock
        self._log = logger or logging.getLogger(__name__)

        self._interval_s = settings.publishing_interval_ms / 1000.0
        self._stale_s = settings.stale_after_intervals * self._interval_s
        self._keepalive_count = max(1, int(settings.stale_after_intervals // 3))
        self._timeout_s = settings.request_timeout_s
        self._tick_s = max(0.02, min(self._interval_s, settings.heartbeat_interval_s) / 2)

        created = clock()
        self._slots: dict[str, _Slot] = {t: _Slot(received=created) for t in tag_map.measurements}
        self._setpoints: dict[str, WrittenSetpoint] = {}
        self._last_set: dict[str, SetpointValue] = {}
        # Writer role: None = standby (reads only, no heartbeat); 0 = sole writer;
        # > 0 = elected writer with that fencing epoch, carried in setpoint_seq.
        self._writer_epoch: int | None = 0
        # An elected writer's own check of its lease, asked right before every write.
        self._may_write: Callable[[], bool] | None = None
        self._published_qualities: dict[str, Quality] = {}
        self._version = 0
        self._changed = asyncio.Event()
        self._connected = False
        self._last_error: str | None = None
        self._sub_generation = 0

        self._conn: _Connection | None = None
        self._write_lock = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._first_attempt = asyncio.Event()
        self._startup_error: TagMapError | None = None
        self._down_logged = False
        self._failed_attempts = 0
        self._ever_connected = False
        #: connections made after the first one (a metric)
        self.reconnects = 0

    # --- the port ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        """Start the runner; waits for the first connection attempt.

        A tag map that does not fit the server raises ``TagMapError`` here; an
        unreachable server does not (the link keeps trying and reports it).
        """
        if self._runner is not None:
            return
        self._first_attempt.clear()
        self._startup_error = None
        self._runner = asyncio.create_task(self._run(), name="plc-link")
        try:
            async with asyncio.timeout(self._connect_budget_s() + 1.0):
                await self._first_attempt.wait()
        except TimeoutError:
            self._log.warning("PLC link: first connection attempt to %s still pending", self._url)
        if self._startup_error is not None:
            err = self._startup_error
            await self.stop()
            raise err

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        for task in list(self._side_tasks):
            task.cancel()
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        if self._side_tasks:
            await asyncio.gather(*self._side_tasks, return_exceptions=True)

    def snapshot(self) -> PlantSnapshot:
        now = self._clock()
        measurements: dict[str, Measurement] = {}
        qualities: dict[str, Quality] = {}
        for tag, slot in self._slots.items():
            quality = effective_quality(
                slot.quality,
                connected=self._connected,
                confirmed_monotonic=self._confirmed_at(slot),
                now_monotonic=now,
                max_age_s=self._stale_s,
            )
            qualities[tag] = quality
            measurements[tag] = Measurement(
                tag=tag,
                value=slot.value,
                unit=UNITS[tag],
                quality=quality,
                source_timestamp=slot.source_timestamp,
                received_monotonic=slot.received,
            )
        if qualities != self._published_qualities:
            # a value aging into "bad" is a change too: the ETag must move
            self._published_qualities = qualities
            self._bump()
        return PlantSnapshot(
            connected=self._connected,
            measurements=MappingProxyType(measurements),
            setpoints=MappingProxyType(dict(self._setpoints)),
            last_error=self._last_error,
            version=self._version,
        )

    async def wait_changed(self, version: int, timeout: float) -> PlantSnapshot:  # noqa: ASYNC109
        return await wait_for_change(
            self.snapshot, lambda: self._changed, version, timeout, self._tick_s
        )

    async def write_setpoints(self, values: Mapping[str, SetpointValue]) -> SetpointWriteResult:
        for tag, value in values.items():
            if tag in LINK_OWNED_SETPOINTS or tag not in self._tags.setpoints:
                raise InvalidInput(tag, f"{tag!r} is not a setpoint in the tag map")
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidInput(tag, f"{tag} must be a finite number, got {value!r}")
        if not values:
            raise InvalidInput("values", "a setpoint set needs at least one value")
        async with self._write_lock:
            if self._writer_epoch is None:
                raise NotTheWriter("this instance is a standby; another instance writes")
            conn = self._conn
            if conn is None or not self._connected:
                raise PlantLinkDown("the PLC link is down; nothing was written")
            result = await self._write_set(conn, values)
            self._last_set.update(result.values)
            return result

    # --- runner --------------------------------------------------------------------

    def _connect_budget_s(self) -> float:
        # socket, hello, channel, session, activate, namespace, attributes, reads,
        # subscription, monitored items: each bounded by the request timeout
        return self._timeout_s * 4

    async def _run(self) -> None:
        delay = self._settings.reconnect_min_s
        while True:
            conn: _Connection | None = None
            try:
                async with asyncio.timeout(self._connect_budget_s()):
                    conn = await self._connect()
                self._on_connected(conn)
                self._first_attempt.set()
                delay = self._settings.reconnect_min_s
                await self._serve(conn)
            except TagMapError as err:
                if not self._first_attempt.is_set():
                    self._startup_error = err
                self._on_failure(err.detail, error=True)
            except PlantLinkError as err:
                self._on_failure(err.detail)
            except _UA_ERRORS as err:
                self._on_failure(_describe(err))
            except Exception as err:  # noqa: BLE001 - loop boundary: log it, keep the link alive
                self._log.exception("PLC link: unexpected error")
                self._on_failure(_describe(err))
            finally:
                if conn is not None:
                    await self._close(conn)
                self._set_disconnected()
            self._first_attempt.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.reconnect_max_s)

    def _on_connected(self, conn: _Connection) -> None:
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._conn = conn
        self._connected = True
        self._last_error = None
        if self._down_logged:
            self._log.info(
                "PLC link recovered: connected to %s after %d failed attempt(s)",
                self._url,
                self._failed_attempts,
            )
        else:
            self._log.info("PLC link connected to %s", self._url)
        self._down_logged = False
        self._failed_attempts = 0
        self._bump()

    def _on_failure(self, reason: str, *, error: bool = False) -> None:
        self._failed_attempts += 1
        changed = reason != self._last_error
        self._last_error = reason
        if not self._down_logged or (error and changed):
            level = logging.ERROR if error else logging.WARNING
            self._log.log(level, "PLC link down (%s): %s; reconnecting", self._url, reason)
            self._down_logged = True
        if changed:
            self._bump()

    def _set_disconnected(self) -> None:
        self._conn = None
        self._sub_generation += 1
        if self._connected:
            self._connected = False
            self._bump()

    @property
    def setpoint_tags(self) -> frozenset[str]:
        return frozenset(self._tags.setpoints) - LINK_OWNED_SETPOINTS

    @property
    def writer_epoch(self) -> int | None:
        return self._writer_epoch

    async def set_writer(
        self, epoch: int | None, may_write: Callable[[], bool] | None = None
    ) -> None:
        """Become the writer (``epoch`` 0: sole writer; > 0: elected, fenced) or a
        standby (``None``: no setpoint or heartbeat writes). Waits for a write in
        flight, so no write of the old role happens after this returns.

        ``may_write``, for an elected writer, is asked right before each write request
        (setpoints, re-send, heartbeat); while it answers False nothing is sent. The
        lease's own clock check: a writer frozen past its lease (SIGSTOP, a paused VM)
        sends nothing when it wakes, before its election task has even run."""
        async with self._write_lock:
            if epoch is not None and epoch > _MAX_EPOCH:
                raise ValueError(f"fencing epoch {epoch} above {_MAX_EPOCH}")
            self._writer_epoch = epoch
            self._may_write = may_write if epoch is not None else None
            if epoch is None:
                self._last_set.clear()  # a new writer decides what the PLC gets
            self._log.info(
                "PLC link: %s",
                "standby, not writing" if epoch is None else f"writer (epoch {epoch})",
            )

    def _permitted(self) -> bool:
        return self._writer_epoch is not None and (self._may_write is None or self._may_write())

    async def _serve(self, conn: _Connection) -> None:
        resend: asyncio.Task[None] | None = None
        if self._last_set and self._writer_epoch is not None:
            resend = asyncio.create_task(self._resend(conn), name="plc-link-resend")
            self._side_tasks.add(resend)
            resend.add_done_callback(self._side_tasks.discard)
        try:
            await self._supervise(conn)
        finally:
            if resend is not None and not resend.done():
                resend.cancel()
                await asyncio.gather(resend, return_exceptions=True)

    async def _resend(self, conn: _Connection) -> None:
        """After a reconnect the PLC gets the last setpoint set again (new seq)."""
        async with self._write_lock:
            if self._conn is not conn or not self._last_set:
                return
            try:
                result = await self._write_set(conn, dict(self._last_set))
            except PlantLinkError as err:
                self._log.warning("PLC link: re-sending the last setpoint set failed: %s", err)
                self._last_error = f"re-send of setpoints failed: {err.detail}"
                self._bump()
                return
            self._log.info("PLC link: last setpoint set re-sent as seq %d", result.seq)

    async def _supervise(self, conn: _Connection) -> None:
        next_heartbeat = self._clock()
        while True:
            try:
                async with asyncio.timeout(self._tick_s):
                    await conn.lost.wait()
            except TimeoutError:
                pass
            if conn.lost.is_set():
                raise _ConnectionLost(conn.lost_reason)
            if conn.client.state is not UaClientState.CONNECTED:
                raise _ConnectionLost(f"client state {conn.client.state.value}")
            now = self._clock()
            if now >= next_heartbeat and self._permitted():
                await self._write_heartbeat(conn)
                next_heartbeat += self._settings.heartbeat_interval_s
                if next_heartbeat <= now:
                    next_heartbeat = now + self._settings.heartbeat_interval_s
            await self._watchdog(conn, self._clock())
            self.snapshot()  # publishes quality changes from aging (version bump)

    async def _watchdog(self, conn: _Connection, now: float) -> None:
        quiet = now - conn.last_publish
        silent_after = max(4 * conn.keepalive_period_s, 2 * self._stale_s)
        if quiet >= silent_after:
            await self._read_measurements(conn)  # raises _ConnectionLost when reads fail too
            conn.silent_recoveries += 1
            if conn.silent_recoveries > _MAX_SILENT_RECOVERIES:
                raise _ConnectionLost("subscription keeps going silent")
            self._log.warning(
                "PLC link: no publish response for %.1f s while reads work; recreating "
                "the subscription",
                quiet,
            )
            await self._recreate_subscription(conn)
        elif quiet >= self._stale_s / 2 and now - conn.last_watchdog_read >= self._stale_s / 2:
            conn.last_watchdog_read = now
            await self._read_measurements(conn)

    async def _write_heartbeat(self, conn: _Connection) -> None:
        vt = conn.types["heartbeat"]
        low, high = wire.INT_RANGES.get(vt, (0, 2**31 - 1))
        conn.heartbeat = conn.heartbeat + 1 if conn.heartbeat < high else max(low, 0)
        statuses = await self._request(
            conn,
            "heartbeat write",
            conn.client.write_values(
                [conn.client.get_node(conn.nodes["heartbeat"])],
                [self._datavalue(conn.heartbeat, vt)],
                raise_on_partial_error=False,
            ),
        )
        bad = statuses[0] if not statuses[0].is_good() else None
        if bad is not None and not conn.heartbeat_failing:
            self._log.warning("PLC link: heartbeat write rejected: %s", bad.name)
        elif bad is None and conn.heartbeat_failing:
            self._log.info("PLC link: heartbeat writes accepted again")
        conn.heartbeat_failing = bad is not None

    # --- connect -------------------------------------------------------------------

    async def _connect(self) -> _Connection:
        client = Client(self._url, timeout=self._timeout_s, watchdog_intervall=self._timeout_s)
        client.name = "backfill-service"
        client.description = "backfill-service"
        client.session_timeout = max(30_000, int(self._timeout_s * 10_000))
        connected = False
        try:
            await self._configure_security(client)
            await client.connect()
            connected = True
            conn = _Connection(client=client, nodes=await self._resolve_nodes(client), types={})
            conn.types = await self._read_types(conn)
            await self._read_initial(conn)
            await self._subscribe(conn)
            return conn
        except BaseException:
            if connected:
                await self._close_client(client)
            else:
                client.disconnect_socket()
            raise

    async def _configure_security(self, client: Client) -> None:
        s = self._settings
        if s.username is not None and s.password is not None:
            client.set_user(s.username)
            client.set_password(s.password.get_secret_value())
        if s.security_mode is SecurityMode.NONE:
            return
        assert s.certificate is not None and s.private_key is not None  # settings validator
        policy = getattr(security_policies, f"SecurityPolicy{s.security_policy}", None)
        if policy is None:
            raise PlantLinkError(f"unknown OPC UA security policy {s.security_policy!r}")
        cert_bytes = await asyncio.to_thread(s.certificate.read_bytes)
        uri = application_uri(cert_bytes)
        if uri is not None:
            client.application_uri = uri
        mode = (
            ua.MessageSecurityMode.Sign
            if s.security_mode is SecurityMode.SIGN
            else ua.MessageSecurityMode.SignAndEncrypt
        )
        if not s.allow_untrusted_server:
            locations = [p for p in (s.server_certificate, s.trust_dir) if p is not None]
            trust = TrustList(locations)
            await trust.load()
            client.certificate_validator = trust
        # The server's certificate comes from its endpoints and is checked by the trust
        # list above (a pinned server_certificate is a list of one). Handing the pinned
        # file to asyncua instead would encrypt with it blindly: a PLC with another
        # certificate could not decrypt, and the link would only see a timeout.
        await client.set_security(policy, str(s.certificate), str(s.private_key), mode=mode)

    async def _resolve_nodes(self, client: Client) -> dict[str, ua.NodeId]:
        parsed: dict[str, ua.NodeId | ua.ExpandedNodeId] = {}
        for tag, text in self._tags.node_ids.items():
            try:
                parsed[tag] = ua.NodeId.from_string(text)
            except (ValueError, UaError) as err:
                raise TagMapError(f"tag {tag!r}: invalid node id {text!r}", tag=tag) from err
        namespaces: list[str] | None = None
        nodes: dict[str, ua.NodeId] = {}
        for tag, node_id in parsed.items():
            uri = getattr(node_id, "NamespaceUri", None)
            if uri:
                if namespaces is None:
                    namespaces = await self._request(
                        None, "namespace array read", client.get_namespace_array()
                    )
                if uri not in namespaces:
                    raise TagMapError(
                        f"tag {tag!r}: namespace {uri!r} is not on the server", tag=tag
                    )
                node_id = ua.NodeId(
                    node_id.Identifier, ua.Int16(namespaces.index(uri)), node_id.NodeIdType
                )
            nodes[tag] = ua.NodeId(node_id.Identifier, node_id.NamespaceIndex, node_id.NodeIdType)
        return nodes

    async def _read_types(self, conn: _Connection) -> dict[str, ua.VariantType]:
        """One Read of DataType and UserAccessLevel for every tag; checks them."""
        tags = list(conn.nodes)
        attrs = (AttributeIds.DataType, AttributeIds.UserAccessLevel)
        items = [ua.ReadValueId(NodeId=conn.nodes[t], AttributeId=a) for t in tags for a in attrs]
        results = await self._request(
            conn, "node type read", conn.client.uaclient.read(ua.ReadParameters(NodesToRead=items))
        )
        types: dict[str, ua.VariantType] = {}
        problems: list[str] = []
        for i, tag in enumerate(tags):
            dtype_dv, access_dv = results[2 * i], results[2 * i + 1]
            node_text = self._tags.node_id(tag)
            if dtype_dv.StatusCode is not None and not dtype_dv.StatusCode.is_good():
                problems.append(f"{tag} ({node_text}): {dtype_dv.StatusCode.name}")
                continue
            dtype = dtype_dv.Value.Value if dtype_dv.Value is not None else None
            vt = wire.variant_type_of(dtype)
            kind = tag_kind(tag)
            if vt is None or not wire.fits(kind, vt):
                problems.append(
                    f"{tag} ({node_text}): DataType {wire.type_name(dtype)} cannot hold a "
                    f"{kind.value} value"
                )
                continue
            if tag in self._tags.setpoints:
                access = access_dv.Value.Value if access_dv.Value is not None else None
                good = access_dv.StatusCode is None or access_dv.StatusCode.is_good()
                if good and isinstance(access, int) and not access & _ACCESS_CURRENT_WRITE:
                    problems.append(f"{tag} ({node_text}): node is not writable")
                    continue
            types[tag] = vt
        if problems:
            first = problems[0].split(" ", 1)[0]
            raise TagMapError(
                "tag map does not fit the server: " + "; ".join(problems),
                tag=first,
                problems=problems,
            )
        return types

    async def _read_initial(self, conn: _Connection) -> None:
        """Continue setpoint_seq and heartbeat from the PLC's values (no false ack)."""
        tags = ["setpoint_seq", "heartbeat"]
        values = await self._request(
            conn,
            "initial read",
            conn.client.read_values([conn.client.get_node(conn.nodes[t]) for t in tags]),
        )
        conn.seq = values[0] if isinstance(values[0], int) else 0
        conn.heartbeat = values[1] if isinstance(values[1], int) else 0

    async def _subscribe(self, conn: _Connection) -> None:
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=self._settings.publishing_interval_ms,
            RequestedLifetimeCount=max(
                3 * self._keepalive_count, math.ceil(60.0 / self._interval_s)
            ),
            RequestedMaxKeepAliveCount=self._keepalive_count,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        self._sub_generation += 1
        generation = self._sub_generation

        def on_publish(result: ua.PublishResult) -> None:
            self._on_publish(conn, generation, result)

        created = await self._request(
            conn,
            "create subscription",
            conn.client.uaclient.create_subscription(params, on_publish),
        )
        conn.sub_id = created.SubscriptionId
        revised_ms = created.RevisedPublishingInterval or self._settings.publishing_interval_ms
        revised_keepalive = created.RevisedMaxKeepAliveCount or self._keepalive_count
        conn.keepalive_period_s = revised_ms / 1000.0 * revised_keepalive
        now = self._clock()
        conn.last_publish = now
        conn.last_watchdog_read = now
        conn.handles = {}
        requests = []
        for handle, tag in enumerate(self._tags.measurements, start=1):
            conn.handles[handle] = tag
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(
                        NodeId=conn.nodes[tag], AttributeId=AttributeIds.Value
                    ),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=ua.MonitoringParameters(
                        ClientHandle=handle,
                        SamplingInterval=self._settings.publishing_interval_ms,
                        QueueSize=1,
                        DiscardOldest=True,
                    ),
                )
            )
        results = await self._request(
            conn,
            "create monitored items",
            conn.client.uaclient.create_monitored_items(
                ua.CreateMonitoredItemsParameters(
                    SubscriptionId=conn.sub_id,
                    TimestampsToReturn=ua.TimestampsToReturn.Both,
                    ItemsToCreate=requests,
                )
            ),
        )
        refused = [
            f"{conn.handles[h]}: {r.StatusCode.name}"
            for h, r in zip(conn.handles, results, strict=True)
            if not r.StatusCode.is_good()
        ]
        if refused:
            raise TagMapError(
                "the server refused to monitor " + "; ".join(refused),
                tag=refused[0].split(":", 1)[0],
            )

    async def _recreate_subscription(self, conn: _Connection) -> None:
        """The new subscription first, then the old one deleted: the session is never
        without one. Deleted first, the client's next publish request (asyncua keeps
        one in flight, and sends the next as soon as the old subscription's last answer
        arrives) could reach the server before the new one existed, which answers it
        with BadNoSubscription and logs an error."""
        old = conn.sub_id
        await self._subscribe(conn)
        if old is not None:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await conn.client.uaclient.delete_subscriptions([old])
            except _UA_ERRORS as err:
                self._log.debug("PLC link: deleting silent subscription failed: %s", err)

    def _on_publish(self, conn: _Connection, generation: int, result: ua.PublishResult) -> None:
        """Publish callback (data or keep-alive); runs in asyncua's publish loop."""
        if generation != self._sub_generation or result.SubscriptionId != conn.sub_id:
            if any(isinstance(n, ua.StatusChangeNotification) for n in wire.notifications(result)):
                # asyncua's own supervisor tells every subscription when the link died
                conn.mark_lost("subscription lost: server gone")
            return
        now = self._clock()
        conn.last_publish = now
        conn.silent_recoveries = 0
        changed = False
        for notification in wire.notifications(result):
            if isinstance(notification, ua.DataChangeNotification):
                for item in notification.MonitoredItems:
                    tag = conn.handles.get(item.ClientHandle)
                    if tag is not None:
                        changed |= self._store(tag, item.Value, now, generation)
            elif (
                isinstance(notification, ua.StatusChangeNotification)
                and not notification.Status.is_good()
            ):
                conn.mark_lost(f"subscription status {notification.Status.name}")
        if changed:
            self._bump()

    def _store(self, tag: str, dv: ua.DataValue, now: float, generation: int) -> bool:
        slot = self._slots[tag]
        value = wire.plain_value(dv.Value)
        quality = wire.quality_of(dv.StatusCode)
        source_ts = wire.utc(dv.SourceTimestamp)
        changed = (slot.value, slot.quality, slot.source_timestamp) != (value, quality, source_ts)
        slot.value, slot.quality, slot.source_timestamp = value, quality, source_ts
        slot.received = now
        if generation >= 0:
            slot.sub_generation = generation
        return changed

    def _confirmed_at(self, slot: _Slot) -> float:
        conn = self._conn
        if conn is not None and slot.sub_generation == self._sub_generation:
            return max(slot.received, conn.last_publish)
        return slot.received

    async def _read_measurements(self, conn: _Connection) -> None:
        tags = self._tags.measurements
        results = await self._request(
            conn,
            "measurement read",
            conn.client.read_attributes([conn.client.get_node(conn.nodes[t]) for t in tags]),
        )
        now = self._clock()
        changed = False
        for tag, dv in zip(tags, results, strict=True):
            changed |= self._store(tag, dv, now, -1)
        if changed:
            self._bump()

    # --- setpoints -----------------------------------------------------------------

    def _datavalue(self, value: SetpointValue, vt: ua.VariantType) -> ua.DataValue:
        # No SourceTimestamp/ServerTimestamp/StatusCode: PLC servers (S7-1500 and
        # others) answer BadWriteNotSupported when a write carries them.
        return ua.DataValue(Value=ua.Variant(value, vt), StatusCode=None)

    def _coerce(self, tag: str, value: SetpointValue, vt: ua.VariantType) -> SetpointValue:
        """The value as the node's own type holds it, or ``InvalidInput``."""
        if vt is ua.VariantType.Boolean:
            if not isinstance(value, bool):
                raise InvalidInput(tag, f"{tag} is a Boolean on the PLC, got {value!r}")
            return value
        if isinstance(value, bool):
            raise InvalidInput(tag, f"{tag} is a {vt.name} on the PLC, not a Boolean")
        if vt in wire.FLOAT_TYPES:
            number = float(value)
            limit = wire.FLOAT32_MAX if vt is ua.VariantType.Float else math.inf
            if not math.isfinite(number) or abs(number) > limit:
                raise InvalidInput(tag, f"{tag}={value!r} does not fit a {vt.name}")
            return number
        low, high = wire.INT_RANGES[vt]
        if isinstance(value, float):
            if not value.is_integer():
                raise InvalidInput(tag, f"{tag} is an integer ({vt.name}), got {value!r}")
            value = int(value)
        if not low <= value <= high:
            raise InvalidInput(tag, f"{tag}={value} is outside the {vt.name} range")
        return value

    def _next_seq(self, conn: _Connection) -> int:
        """The next setpoint_seq. An elected writer carries its fencing epoch in the
        high bits (seq = epoch * 2**20 + n), so a PLC can refuse a set whose
        ``seq >> 20`` is below the highest it has seen: a deposed writer's late write."""
        vt = conn.types["setpoint_seq"]
        _, high = wire.INT_RANGES.get(vt, (0, 2**31 - 1))
        epoch = self._writer_epoch or 0
        if epoch and high >= 2**31 - 1:
            n = (conn.seq + 1) & (_EPOCH_SPAN - 1) if conn.seq >> 20 == epoch else 0
            conn.seq = (epoch << 20) | max(n, 1)
            return conn.seq
        conn.seq = conn.seq + 1 if 0 <= conn.seq < high else 1
        return conn.seq

    async def _write_set(
        self, conn: _Connection, values: Mapping[str, SetpointValue]
    ) -> SetpointWriteResult:
        if not self._permitted():
            raise NotTheWriter("the writer lease has lapsed; nothing was written")
        order = [t for t in self._tags.setpoints if t in values]
        coerced = {t: self._coerce(t, values[t], conn.types[t]) for t in order}
        seq = self._next_seq(conn)
        tags = [*order, "setpoint_seq"]
        datavalues = [self._datavalue(coerced[t], conn.types[t]) for t in order]
        datavalues.append(self._datavalue(seq, conn.types["setpoint_seq"]))
        statuses = await self._request(
            conn,
            "setpoint write",
            conn.client.write_values(
                [conn.client.get_node(conn.nodes[t]) for t in tags],
                datavalues,
                raise_on_partial_error=False,
            ),
        )
        written_at = self._wall_clock()
        rejected = [(t, s) for t, s in zip(tags, statuses, strict=True) if not s.is_good()]
        for tag, status in zip(tags, statuses, strict=True):
            if tag in coerced and status.is_good():
                self._setpoints[tag] = WrittenSetpoint(tag, coerced[tag], UNITS[tag], written_at)
        self._bump()
        if rejected:
            raise SetpointRejected(
                "the PLC rejected "
                + ", ".join(f"{t} ({s.name})" for t, s in rejected)
                + f" of setpoint set seq {seq}",
                tags=[t for t, _ in rejected],
                seq=seq,
            )
        await self._confirm(conn, seq, coerced)
        return SetpointWriteResult(
            seq=seq, acknowledged=True, written_at=written_at, values=MappingProxyType(coerced)
        )

    async def _confirm(
        self, conn: _Connection, seq: int, written: Mapping[str, SetpointValue]
    ) -> None:
        """Wait for ``setpoint_ack == seq``, then check the values read back.

        The ack arrives by subscription or by a direct read of the ack together with the
        written nodes, whichever is first. The reads start soon after the write and back
        off (10 ms doubling to the publishing interval): a PLC acknowledges within a
        scan, and a read that already sees the ack confirms the values in the same
        request, so a set costs one write and usually one read.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.ack_timeout_s
        poll_cap_s = max(self._interval_s, 0.05)
        poll_s = 0.01
        tags = list(written)
        nodes = [conn.client.get_node(conn.nodes[t]) for t in ("setpoint_ack", *tags)]
        while True:
            if self._slots["setpoint_ack"].value == seq:
                await self._read_back(conn, written)
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SetpointUnconfirmed(
                    f"the PLC did not acknowledge setpoint set seq {seq} within "
                    f"{self._settings.ack_timeout_s:g} s "
                    f"(setpoint_ack={self._slots['setpoint_ack'].value})",
                    seq=seq,
                )
            event = self._changed
            try:
                async with asyncio.timeout(min(remaining, poll_s)):
                    await event.wait()
                continue
            except TimeoutError:
                poll_s = min(2 * poll_s, poll_cap_s)
            ack_dv, *value_dvs = await self._request(
                conn, "ack read", conn.client.read_attributes(nodes)
            )
            if self._store("setpoint_ack", ack_dv, self._clock(), -1):
                self._bump()
            if self._slots["setpoint_ack"].value == seq:
                self._check_read_back(conn, written, tags, value_dvs)
                return

    async def _read_back(self, conn: _Connection, written: Mapping[str, SetpointValue]) -> None:
        tags = list(written)
        results = await self._request(
            conn,
            "setpoint read-back",
            conn.client.read_attributes([conn.client.get_node(conn.nodes[t]) for t in tags]),
        )
        self._check_read_back(conn, written, tags, results)

    @staticmethod
    def _check_read_back(
        conn: _Connection,
        written: Mapping[str, SetpointValue],
        tags: list[str],
        results: Sequence[Any],
    ) -> None:
        differing: list[str] = []
        for tag, dv in zip(tags, results, strict=True):
            got = wire.plain_value(dv.Value)
            want = written[tag]
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                differing.append(f"{tag} ({dv.StatusCode.name})")
            elif not wire.same_value(want, got, conn.types[tag]):
                differing.append(f"{tag} (wrote {want!r}, read {got!r})")
        if differing:
            raise SetpointUnconfirmed(
                "read-back differs: " + ", ".join(differing),
                tags=[d.split(" ", 1)[0] for d in differing],
            )

    # --- requests and teardown -----------------------------------------------------

    async def _request(self, conn: _Connection | None, what: str, coro: Any) -> Any:
        """Await one asyncua request with the request timeout; map its errors.

        A transport failure or timeout marks the connection lost and raises
        ``_ConnectionLost`` (a ``PlantLinkDown``); a service fault is a
        ``PlantLinkError``.
        """
        try:
            async with asyncio.timeout(self._timeout_s):
                return await coro
        except UaStatusCodeError as err:
            raise PlantLinkError(f"{what} failed: {err}", opcua_status=err.code) from err
        except _UA_ERRORS as err:
            reason = f"{what} failed: {_describe(err)}"
            if conn is not None:
                conn.mark_lost(reason)
            raise _ConnectionLost(reason) from err

    async def _close(self, conn: _Connection) -> None:
        conn.sub_id = None
        await self._close_client(conn.client)

    async def _close_client(self, client: Client) -> None:
        try:
            async with asyncio.timeout(min(self._timeout_s, 2.0)):
                await client.disconnect()
        except _UA_ERRORS as err:
            self._log.debug("PLC link: disconnect was not clean: %s", _describe(err))
        finally:
            client.disconnect_socket()

    def _bump(self) -> None:
        self._version += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()
