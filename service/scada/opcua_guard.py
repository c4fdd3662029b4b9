"""The front door of the OPC UA server for SCADA: which secure channel may carry a
session, how a user token must arrive, and who may hold a connection.

asyncua offers hooks for part of this (a user manager, the activation deadline
``max_pending_activation_seconds``), not for the rest. Out of the box it lets any client
open a None secure channel (needed for discovery) and then serves CreateSession and
ActivateSession on it as well, so an API key crosses the network in clear however the
endpoints are secured; it offers the user-name token of a SignAndEncrypt endpoint with
the None token policy, and takes a password sent in clear; and it refuses connections
only past one global count, first come first served, so a flood of connections that
only say Hello locks every SCADA out. Where there is no hook this module subclasses,
each class as narrowly as it can:

* :class:`_Processor` (asyncua's ``UaProcessor``) serves nothing but discovery
  (GetEndpoints, FindServers) on a channel whose security matches no offered endpoint
  (OPC UA Part 4 §5.6.2, CreateSession: a session belongs to an endpoint) and answers
  a session request there with ``BadSecurityModeInsufficient``; it never serves
  RegisterServer
  (the face is no discovery server); it names the channel's security policy to the
  token check;
* :meth:`GuardedInternalServer.decrypt_user_token` requires the user-name token
  encrypted with the endpoint's own policy and the server nonce inside it (Part 4,
  UserNameIdentityToken: §7.36 in release 1.04), refusing a token in clear with
  ``BadIdentityTokenInvalid``;
* :class:`_Connection` and :class:`_Listener` (asyncua's ``OPCUAProtocol`` and
  ``BinaryServer``) admit connections by :mod:`service.core.admission`;
* :meth:`GuardedServer.start` is asyncua's ``Server.start`` with that listener and with
  every secured endpoint's user-name token policy set to the endpoint's policy, so
  clients encrypt the password with the server's certificate.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from struct import unpack_from
from typing import Any, cast

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import uacrypto
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import SessionState
from asyncua.server.server import Server
from asyncua.server.uaprocessor import UaProcessor
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes

from service.core import admission as A
from service.core.untrusted import clip

log = logging.getLogger(__name__)

#: Served on any channel: what a client needs to find the endpoints.
_DISCOVERY = frozenset(
    ua.NodeId(ua.Int32(i))
    for i in (
        ObjectIds.GetEndpointsRequest_Encoding_DefaultBinary,
        ObjectIds.FindServersRequest_Encoding_DefaultBinary,
        ObjectIds.FindServersOnNetworkRequest_Encoding_DefaultBinary,
        ObjectIds.CloseSecureChannelRequest_Encoding_DefaultBinary,
    )
)
#: Never served: the face is no discovery server.
_REFUSED = frozenset(
    ua.NodeId(ua.Int32(i))
    for i in (
        ObjectIds.RegisterServerRequest_Encoding_DefaultBinary,
        ObjectIds.RegisterServer2Request_Encoding_DefaultBinary,
    )
)
# The asymmetric encryption a token may arrive with, and how to undo it.
_DECRYPT: dict[str, Callable[[Any, bytes], bytes]] = {
    "http://www.w3.org/2001/04/xmlenc#rsa-1_5": uacrypto.decrypt_rsa15,
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep": uacrypto.decrypt_rsa_oaep,
    "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256": uacrypto.decrypt_rsa_oaep_sha256,
}
REPORT_EVERY_S = 10.0

# The security policy of the channel a request came on, for the token check.
_channel: contextvars.ContextVar[Any] = contextvars.ContextVar("opcua_channel", default=None)


def _offered(iserver: InternalServer, policy: Any) -> bool:
    """The channel's policy and mode are those of an endpoint the server offers."""
    return any(
        ep.SecurityPolicyUri == policy.URI and ep.SecurityMode == policy.Mode
        for ep in iserver.endpoints
    )


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


class GuardedInternalServer(InternalServer):
    """asyncua's internal server with the user-name token check of this module."""

    def decrypt_user_token(self, isession: Any, token: ua.UserNameIdentityToken) -> tuple[str, str]:
        policy = _channel.get()
        required = getattr(policy, "AsymmetricEncryptionURI", "") if policy is not None else ""
        algorithm = token.EncryptionAlgorithm or ""
        if not required:  # a None endpoint (allow_insecure): the token is in clear by design
            if algorithm:
                raise ServiceError(StatusCodes.BadIdentityTokenInvalid)
            password = token.Password
            text = password.decode("utf-8") if isinstance(password, bytes) else password or ""
            return token.UserName or "", text
        if algorithm != required:
            log.warning(
                "OPC UA login refused for user %s: its token is %s, the endpoint requires %s",
                clip(token.UserName),
                "in clear" if not algorithm else f"encrypted with {clip(algorithm)}",
                required,
            )
            raise ServiceError(StatusCodes.BadIdentityTokenInvalid)
        nonce = isession.nonce or b""
        try:
            raw = _DECRYPT[algorithm](self.private_key, token.Password)
            length = unpack_from("<I", raw)[0]
            secret = raw[4 : 4 + length]
            if length != len(raw) - 4 or len(secret) < len(nonce) or not nonce:
                raise ValueError("token length")
            if secret[len(secret) - len(nonce) :] != nonce:
                raise ValueError("not this session's nonce")
            password = secret[: len(secret) - len(nonce)].decode("utf-8")
        except (ValueError, KeyError, TypeError) as err:
            log.warning("OPC UA login refused for user %s: %s", clip(token.UserName), err)
            raise ServiceError(StatusCodes.BadIdentityTokenInvalid) from err
        return token.UserName or "", password


class _Processor(UaProcessor):
    """asyncua's message processor with the channel rule of this module."""

    def __init__(self, *args: Any, doorkeeper: Doorkeeper) -> None:
        super().__init__(*args)
        self._doorkeeper = doorkeeper

    def carries_sessions(self) -> bool:
        return _offered(self.iserver, self._connection.security_policy)

    def stage(self) -> A.Stage:
        session = self.session
        if session is not None and session.state is SessionState.Activated:
            return A.Stage.ACTIVE
        if session is not None and session.state is SessionState.Created:
            return A.Stage.SESSION
        if self._connection.is_open():
            return A.Stage.CHANNEL if self.carries_sessions() else A.Stage.DISCOVERY
        return A.Stage.CONNECTED

    async def _process_message(self, typeid: Any, requesthdr: Any, seqhdr: Any, body: Any) -> Any:
        if typeid in _REFUSED:
            raise ServiceError(StatusCodes.BadServiceUnsupported)
        if typeid not in _DISCOVERY and not self.carries_sessions():
            self._doorkeeper.note_unsecured(self.name)
            fault = ua.ServiceFault()
            fault.ResponseHeader.ServiceResult = _status(StatusCodes.BadSecurityModeInsufficient)
            cast(Any, self).send_response(requesthdr.RequestHandle, seqhdr, fault)
            return False  # the connection closes
        token = _channel.set(self._connection.security_policy)
        try:
            parent = cast(Any, super())
            return await parent._process_message(typeid, requesthdr, seqhdr, body)
        finally:
            _channel.reset(token)


class _Connection(OPCUAProtocol):
    """asyncua's connection, admitted (or not) by the doorkeeper."""

    def __init__(self, *args: Any, doorkeeper: Doorkeeper) -> None:
        super().__init__(*args)
        self._doorkeeper = doorkeeper

    def connection_made(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        if not self._doorkeeper.enter(self, host):
            transport.close()
            return
        super().connection_made(transport)
        if self.processor is None:  # asyncua's own count refused it
            self._doorkeeper.leave(self)
            return
        # Replaced before its first message: asyncua's processor has done nothing yet.
        processor = _Processor(
            self.iserver, self.transport, self.limits, doorkeeper=self._doorkeeper
        )
        cast(Any, processor).set_policies(self.policies)
        self.processor = processor

    def connection_lost(self, ex: BaseException | None) -> None:
        self._doorkeeper.leave(self)
        super().connection_lost(ex)

    async def _process_one_msg(self, header: Any, buf: Any) -> bool:
        kept: bool = await super()._process_one_msg(header, buf)
        if isinstance(self.processor, _Processor):
            self._doorkeeper.advance(self, self.processor.stage())
        return kept

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Doorkeeper:
    """The connections the listener holds, admitted by :func:`service.core.admission.admit`;
    under a flood it logs one summary line every :data:`REPORT_EVERY_S` seconds, not a
    line per connection."""

    def __init__(self, limits: A.Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._held: dict[_Connection, A.Connection] = {}
        self._next_id = 0
        self.refused = 0
        self.evicted = 0
        self.unsecured = 0
        self._reported = (0, 0, 0)
        self._report_at = clock() + REPORT_EVERY_S
        self._last_peer = ""

    def held(self) -> dict[A.Stage, int]:
        counts = dict.fromkeys(A.Stage, 0)
        for conn in self._held.values():
            counts[conn.stage] += 1
        return counts

    def enter(self, conn: _Connection, peer: str) -> bool:
        decision = A.admit(tuple(self._held.values()), peer, self.limits)
        self._last_peer = peer
        if decision.evict:
            by_id = {c.id: p for p, c in self._held.items()}
            for victim_id in decision.evict:
                victim = by_id[victim_id]
                del self._held[victim]
                victim.close()
            self.evicted += len(decision.evict)
        if decision.admit:
            self._next_id += 1
            self._held[conn] = A.Connection(self._next_id, peer, A.Stage.CONNECTED, self._clock())
        else:
            self.refused += 1
        self._report(decision.reason)
        return decision.admit

    def advance(self, conn: _Connection, stage: A.Stage) -> None:
        current = self._held.get(conn)
        if current is not None and current.stage is not stage:
            self._held[conn] = A.Connection(current.id, current.peer, stage, current.since)

    def leave(self, conn: _Connection) -> None:
        self._held.pop(conn, None)

    def note_unsecured(self, peer: Any) -> None:
        self.unsecured += 1
        if self.unsecured == 1:
            log.warning(
                "OPC UA: a client at %s asked for a session on a channel no endpoint "
                "offers (None); refused with BadSecurityModeInsufficient",
                clip(peer),
            )
        self._report("")

    def _report(self, reason: str) -> None:
        now = self._clock()
        counts = (self.refused, self.evicted, self.unsecured)
        if now < self._report_at or counts == self._reported:
            return
        refused, evicted, unsecured = (a - b for a, b in zip(counts, self._reported, strict=True))
        self._reported, self._report_at = counts, now + REPORT_EVERY_S
        log.warning(
            "OPC UA: in the last %.0f s %d connections refused, %d idle ones closed for "
            "newcomers, %d session requests on an unsecured channel (limits: %d per peer, "
            "%d awaiting login, %d in all; last peer %s%s)",
            REPORT_EVERY_S,
            refused,
            evicted,
            unsecured,
            self.limits.max_per_peer,
            self.limits.max_unactivated,
            self.limits.max_connections,
            clip(self._last_peer),
            f": {reason}" if reason else "",
        )


class _Listener(BinaryServer):
    def __init__(self, *args: Any, doorkeeper: Doorkeeper) -> None:
        super().__init__(*args)
        self._doorkeeper = doorkeeper

    def _make_protocol(self) -> _Connection:
        return _Connection(
            self.iserver,
            self._policies,
            self.clients,
            self.closing_tasks,
            self.limits,
            doorkeeper=self._doorkeeper,
        )


class GuardedServer(Server):
    """asyncua's server with this module's listener and user token policies."""

    def __init__(self, iserver: GuardedInternalServer, doorkeeper: Doorkeeper) -> None:
        super().__init__(iserver=iserver)
        self.doorkeeper = doorkeeper

    async def start(self) -> None:
        # Server.start (asyncua 2.1), with the listener of this module.
        await self._setup_server_nodes()
        encrypt_user_tokens(self.iserver.endpoints)
        await self.iserver.start()
        try:
            host, port = self._get_bind_socket_info()
            listener = _Listener(self.iserver, host, port, self.limits, doorkeeper=self.doorkeeper)
            cast(Any, listener).set_policies(self._policies)
            await listener.start()
            self.bserver = listener
        except Exception:
            await self.iserver.stop()
            raise


def encrypt_user_tokens(endpoints: list[ua.EndpointDescription]) -> None:
    """Every secured endpoint's user-name token policy names the endpoint's own security
    policy, so a client encrypts the password with the server's certificate, whatever
    the channel does (asyncua leaves it None on SignAndEncrypt endpoints)."""
    for endpoint in endpoints:
        if endpoint.SecurityMode == ua.MessageSecurityMode.None_:
            continue
        for token in endpoint.UserIdentityTokens:
            if token.TokenType == ua.UserTokenType.UserName:
                token.SecurityPolicyUri = endpoint.SecurityPolicyUri
