"""The service as an OPC UA server, for a SCADA to browse without scripting.

The address space (namespace ``urn:backfill:service``, every browse name in it) holds
the model of :mod:`service.core.scada_model`: objects ``Plant`` (with ``Measurements``
and ``Setpoints``), ``Pour``, ``Recipe`` and ``Alarms`` (one object per alarm code),
each point a read-only variable, the quality as the value's status code (Good,
Uncertain, Bad, BadWaitingForInitialData) and the PLC's source timestamp. A number with
an engineering range is an AnalogItemType (OPC UA Part 8 §5.3.2) with ``EURange`` and,
where it has a unit, ``EngineeringUnits`` (EUInformation with the UN/CEFACT code:
:mod:`service.core.eng_units`); every point with a unit also keeps the property
``Unit`` (the unit as ``/plant/status`` writes it). Values change by subscription: one
task rebuilds the model whenever the plant link's snapshot changes (and at least every
second, for the pour's totals), and writes only the points that changed.

Each alarm is also an Alarms & Conditions condition (:mod:`.opcua_alarms`): events from
the Server object, acknowledgement through the condition's Acknowledge, ConditionRefresh.

Methods: ``Pour.Start``, ``Pause``, ``Resume``, ``Stop`` (a pour id in, its state out)
and ``Alarms.Acknowledge`` (an alarm code in), allowed to the roles the API allows
(scada and admin), through the same operations as the API. A client logs in with a user
name and an API key as its password. A key that names its person admits only that
person's user name: the session acts as that person, and every action it takes is
recorded under the person's name. A key of a role alone (no person) admits any user
name, which is kept and logged beside the acts, recorded as the role and the key's id.
Anonymous sessions are refused; a wrong role gets
``BadUserAccessDenied``, a refused action the status code of its reason
(``BadNotFound``, ``BadInvalidState``, ``BadResourceUnavailable``). The calling user
reaches a method through a context variable set by the server's session for its calls.
Which channel may carry a session and who may hold a connection: :mod:`.opcua_guard`.

The server's application URI is this instance's own (``application_uri``, by default
``urn:<host name>:backfill:service``: two failover instances are two applications),
and a secured server's certificate must carry it (``python -m service.scada.cert``
makes one that does).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes

from service.core import admission
from service.core import scada_model as M
from service.core.control.alarms import AlarmCode
from service.core.eng_units import UNECE_NAMESPACE, UNITS
from service.core.untrusted import clip
from service.errors import BackfillError
from service.plant.opcua_trust import TrustList
from service.scada.cert import certificate_uris, default_application_uri
from service.scada.opcua_alarms import OpcUaAlarms
from service.scada.opcua_guard import Doorkeeper, GuardedInternalServer, GuardedServer
from service.scada.source import Caller, ModelSource
from service.settings import OpcUaServerSettings, Role, SecurityMode

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:backfill:service"
UPDATE_S = 1.0  # the longest a value waits for its update
LOGIN_CHARS = 128  # of a client's user name, kept with its session
_ACTIONS = (Role.SCADA, Role.ADMIN)

_caller: contextvars.ContextVar[User | None] = contextvars.ContextVar("opcua_caller", default=None)

_KINDS = {
    M.Kind.DOUBLE: ua.VariantType.Double,
    M.Kind.STRING: ua.VariantType.String,
    M.Kind.BOOL: ua.VariantType.Boolean,
}
# A variable's first value, until the first publish gives it its own (and its status).
_EMPTY = {
    M.Kind.DOUBLE: ua.Variant(0.0, ua.VariantType.Double),
    M.Kind.STRING: ua.Variant("", ua.VariantType.String),
    M.Kind.BOOL: ua.Variant(False, ua.VariantType.Boolean),
}
_STATUS = {
    M.Quality.GOOD: StatusCodes.Good,
    M.Quality.UNCERTAIN: StatusCodes.Uncertain,
    M.Quality.BAD: StatusCodes.Bad,
    M.Quality.NO_DATA: StatusCodes.BadWaitingForInitialData,
}
# A refused action's code (service.errors) as an OPC UA status.
_REFUSALS = {
    "pour_not_found": StatusCodes.BadNotFound,
    "alarm_not_found": StatusCodes.BadNotFound,
    "service_stopping": StatusCodes.BadResourceUnavailable,
    "not_the_writer": StatusCodes.BadResourceUnavailable,
    "plant_link_down": StatusCodes.BadResourceUnavailable,
    "invalid_input": StatusCodes.BadInvalidArgument,
}


class _Session(InternalSession):
    """A session whose method calls know their user (:data:`_caller`)."""

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        token = _caller.set(self.user)
        try:
            return await super().call(params)
        finally:
            _caller.reset(token)


class _Server(GuardedInternalServer):
    def create_session(
        self, name: str, user: User | None = None, external: bool = False
    ) -> InternalSession:
        return _Session(
            self,
            self.aspace,
            self.subscription_service,
            name,
            user=user or User(role=UserRole.Anonymous),
            external=external,
        )


@dataclass
class _KeyUser(User):
    """A logged-in client: ``key_role`` the role its key grants, ``name`` the person who
    acts (the key's person, or for a key of a role alone its role and id), ``login``
    the user name the client gave (bounded)."""

    login: str = ""
    key_role: Role | None = None


class _Principal(Protocol):
    @property
    def role(self) -> Role: ...

    @property
    def key_id(self) -> str: ...

    @property
    def person(self) -> str: ...

    @property
    def named(self) -> bool: ...


class Keys(Protocol):
    """The API's key ring as the face uses it (the face does not import the API)."""

    def authenticate(self, presented: str) -> _Principal | None: ...


class _KeyUsers(UserManager):
    """An API key as the password, with its person's user name (any user name for a key
    of a role alone); the key's role and person go with the session's user."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if not password:
            return None
        principal = self._keys.authenticate(password)
        if principal is None:
            log.warning("OPC UA login refused for user %s: not a valid API key", clip(username))
            return None
        if principal.named and username != principal.person:
            log.warning(
                "OPC UA login refused for user %s: the key is %s's (key %s)",
                clip(username),
                principal.person,
                principal.key_id,
            )
            return None
        return _KeyUser(
            role=UserRole.User,
            name=principal.person,
            login=(username or "")[:LOGIN_CHARS],
            key_role=principal.role,
        )


def _acting_caller() -> Caller | None:
    """The calling session's caller when its role may act (None: refused, logged)."""
    user = _caller.get()
    if not isinstance(user, _KeyUser) or user.key_role not in _ACTIONS or not user.name:
        log.warning("OPC UA action refused to role %s", getattr(user, "key_role", None))
        return None
    assert user.key_role is not None
    return Caller(role=user.key_role, person=user.name, user=user.login, face="opcua")


class OpcUaFace:
    def __init__(self, settings: OpcUaServerSettings, *, keys: Keys, source: ModelSource) -> None:
        self.settings = settings
        self._keys = keys
        self._source = source
        self._spec = source.spec()
        self._kinds = {spec.path: spec.kind for spec in self._spec}
        self._server: Server | None = None
        self.doorkeeper: Doorkeeper | None = None
        self._task: asyncio.Task[None] | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._written: dict[str, M.Point] = {}
        self.alarms = OpcUaAlarms(
            caller=_acting_caller,
            acknowledge=source.actions["Acknowledge"],
            refresh=self._publish,
        )
        self.application_uri = settings.application_uri or default_application_uri()
        self.idx = 0

    def _nid(self, name: str) -> ua.NodeId:
        return ua.NodeId(ua.String(name), ua.Int16(self.idx))

    def _qname(self, name: str) -> ua.QualifiedName:
        return ua.QualifiedName(name, ua.Int16(self.idx))

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.settings.host}:{self.settings.port}/backfill/"

    async def start(self) -> None:
        s = self.settings
        iserver = _Server(user_manager=_KeyUsers(self._keys))
        iserver.bind_condition_methods = True  # ConditionRefresh (asyncua's)
        # A connection that has not logged in by then is closed (asyncua's own hook).
        iserver.max_pending_activation_seconds = s.activation_timeout_s
        # asyncua's first-come count stays as a backstop above the doorkeeper's limits
        # (a connection the doorkeeper closed leaves asyncua's list a moment later).
        iserver.max_connections = 2 * s.max_connections + 16
        self.doorkeeper = Doorkeeper(
            admission.Limits(
                max_connections=s.max_connections,
                max_per_peer=s.max_connections_per_peer,
                max_unactivated=s.max_unactivated,
            )
        )
        server = GuardedServer(iserver, self.doorkeeper)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Paste backfill service")
        server.product_uri = NAMESPACE_URI
        await server.set_application_uri(self.application_uri)
        if s.security_mode is SecurityMode.NONE:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            log.warning(
                "the OPC UA server on %s is unsecured (allow_insecure): API keys cross "
                "the network in clear",
                self.endpoint,
            )
        else:
            assert s.certificate is not None and s.private_key is not None  # settings say so
            self._check_certificate(s.certificate)
            await server.load_certificate(str(s.certificate))
            await server.load_private_key(str(s.private_key))
            server.set_security_policy(
                [
                    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt
                    if s.security_mode is SecurityMode.SIGN_AND_ENCRYPT
                    else ua.SecurityPolicyType.Basic256Sha256_Sign
                ]
            )
            if s.trust_dir is not None:
                trust = TrustList([s.trust_dir], client=True)
                await trust.load()
                server.set_certificate_validator(trust)
            else:
                log.warning(
                    "the OPC UA server on %s takes any client certificate "
                    "(BACKFILL_OPCUA_SERVER__TRUST_DIR unset); API keys still decide",
                    self.endpoint,
                )
        server.set_identity_tokens([ua.UserNameIdentityToken])
        self.idx = await server.register_namespace(NAMESPACE_URI)
        await self._build(server)
        await server.start()
        self._server = server
        await self._publish()
        self._task = asyncio.create_task(self._run(), name="opcua-face")
        log.info(
            "OPC UA server for SCADA on %s (application URI %s)",
            self.endpoint,
            self.application_uri,
        )

    def _check_certificate(self, path: Path) -> None:
        """Clients refuse a server whose certificate does not carry its application URI:
        say so at start, not at every client's connect."""
        try:
            uris = certificate_uris(path)
        except (OSError, ValueError) as err:
            raise BackfillError(
                f"the OPC UA server certificate {path} cannot be read: {err}",
                code="opcua_certificate_invalid",
            ) from err
        if self.application_uri not in uris:
            raise BackfillError(
                f"the OPC UA server certificate {path} carries the URI(s) "
                f"{', '.join(uris) or 'none'}, not this instance's application URI "
                f"{self.application_uri} (BACKFILL_OPCUA_SERVER__APPLICATION_URI): make one "
                f"with python -m service.scada.cert --uri {self.application_uri} --host <name>",
                code="opcua_certificate_invalid",
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    # --- the address space ----------------------------------------------------------------

    async def _build(self, server: Server) -> None:
        root = server.nodes.objects
        objects: dict[str, Any] = {}

        async def folder(path: str) -> Any:
            if path in objects:
                return objects[path]
            parent_path, _, name = path.rpartition(".")
            parent = root if not parent_path else await folder(parent_path)
            node = await parent.add_object(self._nid(f"Backfill.{path}"), self._qname(name))
            objects[path] = node
            return node

        for spec in self._spec:
            parent_path, _, name = spec.path.rpartition(".")
            parent = await folder(parent_path)
            node_id = self._nid(f"Backfill.{spec.path}")
            if spec.analog:
                variable = await self._add_analog(server, parent, node_id, name, spec)
            else:
                variable = await parent.add_variable(
                    node_id, self._qname(name), _EMPTY[spec.kind], datatype=_datatype(spec.kind)
                )
            text = f"[{spec.unit}] {spec.description}".strip() if spec.unit else spec.description
            if text:
                await variable.write_attribute(
                    AttributeIds.Description,
                    ua.DataValue(ua.Variant(ua.LocalizedText(text), ua.VariantType.LocalizedText)),
                )
            if spec.unit:
                await variable.add_property(
                    self._nid(f"Backfill.{spec.path}.Unit"), self._qname("Unit"), spec.unit
                )
            self._nodes[spec.path] = node_id

        pour = await folder("Pour")
        for name in ("Start", "Pause", "Resume", "Stop"):
            await pour.add_method(
                self._nid(f"Backfill.Pour.{name}"),
                self._qname(name),
                self._method(name),
                [_argument("PourId", ObjectIds.String)],
                [_argument("State", ObjectIds.String)],
            )
        alarms = await folder("Alarms")
        await alarms.add_method(
            self._nid("Backfill.Alarms.Acknowledge"),
            self._qname("Acknowledge"),
            self._method("Acknowledge"),
            [_argument("Code", ObjectIds.String)],
            [_argument("State", ObjectIds.String)],
        )
        sources = {code: await folder(f"Alarms.{code.value}") for code in AlarmCode}
        await self.alarms.build(server, sources, self._nid)

    async def _add_analog(
        self, server: Server, parent: Any, node_id: ua.NodeId, name: str, spec: M.PointSpec
    ) -> Any:
        """An AnalogItemType variable (Part 8 §5.3.2) with EURange and, where its unit has
        a UN/CEFACT code, EngineeringUnits."""
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = node_id
        item.BrowseName = self._qname(name)
        item.NodeClass = ua.NodeClass.Variable
        item.ParentNodeId = parent.nodeid
        item.ReferenceTypeId = _ns0(ObjectIds.HasComponent)
        item.TypeDefinition = _ns0(ObjectIds.AnalogItemType)
        attrs = ua.VariableAttributes()
        attrs.DisplayName = ua.LocalizedText(name)
        attrs.Description = ua.LocalizedText(name)
        attrs.DataType = _ns0(ObjectIds.Double)
        attrs.Value = _EMPTY[M.Kind.DOUBLE]
        attrs.ValueRank = ua.ValueRank.Scalar
        attrs.WriteMask = attrs.UserWriteMask = 0
        attrs.Historizing = False
        attrs.AccessLevel = attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        item.NodeAttributes = attrs
        [result] = await server.iserver.isession.add_nodes([item])
        result.StatusCode.check()
        variable = server.get_node(node_id)
        assert spec.low is not None and spec.high is not None  # analog says so
        await variable.add_property(
            self._nid(f"Backfill.{spec.path}.EURange"),
            ua.QualifiedName("EURange", 0),
            ua.Range(Low=spec.low, High=spec.high),
            datatype=_ns0(ObjectIds.Range),
        )
        unit = UNITS.get(spec.unit)
        if unit is not None and spec.unit:
            await variable.add_property(
                self._nid(f"Backfill.{spec.path}.EngineeringUnits"),
                ua.QualifiedName("EngineeringUnits", 0),
                ua.EUInformation(
                    NamespaceUri=UNECE_NAMESPACE,
                    UnitId=unit.unit_id,
                    DisplayName=ua.LocalizedText(unit.display),
                    Description=ua.LocalizedText(unit.description),
                ),
                datatype=_ns0(ObjectIds.EUInformation),
            )
        return variable

    def _method(self, name: str) -> Callable[..., Awaitable[Any]]:
        action = self._source.actions[name]

        async def call(_parent: ua.NodeId, argument: ua.Variant | str) -> Any:
            caller = _acting_caller()
            if caller is None:
                return ua.StatusCode(ua.UInt32(StatusCodes.BadUserAccessDenied))
            value = argument.Value if isinstance(argument, ua.Variant) else argument
            if not isinstance(value, str) or not value:
                return ua.StatusCode(ua.UInt32(StatusCodes.BadInvalidArgument))
            try:
                state = await action(value, caller)
            except BackfillError as err:
                log.warning(
                    "OPC UA %s %s by %s refused: %s",
                    name,
                    clip(value),
                    clip(caller.user),
                    clip(err.detail, 200),
                )
                code = _REFUSALS.get(err.code, StatusCodes.BadInvalidState)
                return ua.StatusCode(ua.UInt32(code))
            await self._publish()  # the change shows at once, not at the next update
            return [ua.Variant(state, ua.VariantType.String)]

        return call

    # --- values ------------------------------------------------------------------------------

    async def _run(self) -> None:
        version = -1
        while True:
            try:
                version = await self._source.changed(version, UPDATE_S)
                await self._publish()
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop boundary: say it, keep serving the last values
                log.exception("OPC UA face: updating the values failed")
                await asyncio.sleep(UPDATE_S)

    async def _publish(self) -> None:
        server = self._server
        if server is None:
            return
        now = ua.DateTime.now(UTC)
        status = self._source.status()
        for path, point in M.points(status, self._spec).items():
            if self._written.get(path) == point:
                continue
            self._written[path] = point
            await server.write_attribute_value(
                self._nodes[path],
                ua.DataValue(
                    Value=ua.Variant(point.value, _KINDS[self._kinds[path]])
                    if point.value is not None
                    else ua.Variant(None, ua.VariantType.Null),
                    StatusCode=ua.StatusCode(ua.UInt32(_STATUS[point.quality])),
                    SourceTimestamp=ua.DateTime.fromtimestamp(point.source_time.timestamp(), UTC)
                    if point.source_time is not None
                    else now,
                    ServerTimestamp=now,
                ),
            )
        await self.alarms.update(status.get("alarms"))


def _datatype(kind: M.Kind) -> ua.NodeId:
    return _ns0(
        {
            M.Kind.DOUBLE: ObjectIds.Double,
            M.Kind.STRING: ObjectIds.String,
            M.Kind.BOOL: ObjectIds.Boolean,
        }[kind]
    )


def _argument(name: str, datatype: int) -> ua.Argument:
    arg = ua.Argument()
    arg.Name = name
    arg.DataType = _ns0(datatype)
    arg.ValueRank = -1
    return arg


def _ns0(identifier: int) -> ua.NodeId:
    return ua.NodeId(ua.Int32(identifier))
