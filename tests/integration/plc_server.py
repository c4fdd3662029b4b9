"""A small real OPC UA PLC for the link tests (asyncua ``Server``), independent of
``service.simulator``: every tag of docs/INTEGRATION.md with the types a PLC uses (REAL Float,
INT Int16, DINT Int32, BOOL Boolean), setpoints writable, and a fixture-controlled
coroutine that copies ``setpoint_seq`` to ``setpoint_ack`` like the PLC program.

Like a strict PLC (S7-1500), it answers ``BadWriteNotSupported`` to a write that
carries a source or server timestamp, and (asyncua itself) ``BadTypeMismatch`` to a
Double written to a Float. Every raw written DataValue is recorded.

Run alone (for the SIGSTOP test): ``python -m tests.integration.plc_server --port N``;
it prints ``READY <port>`` once serving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from service.plant.opcua import OpcUaPlantLink
from service.plant.port import Quality
from service.plant.tags import TagMap, parse_tag_map
from service.settings import PlcSettings
from tests.ports import free_port

NAMESPACE = "urn:backfill:test-plc"

F, I16, I32, B = (
    ua.VariantType.Float,
    ua.VariantType.Int16,
    ua.VariantType.Int32,
    ua.VariantType.Boolean,
)

# logical tag -> (name under Backfill., type, initial value, writable by clients)
TAGS: Mapping[str, tuple[str, ua.VariantType, object, bool]] = {
    "tailings_flow_pv": ("Feed.Flow", F, 100.0, False),
    "tailings_density_pv": ("Feed.Density", F, 1450.0, False),
    "cement_rate_pv": ("Cement.Rate", F, 1.0, False),
    "slag_rate_pv": ("Slag.Rate", F, 4.0, False),
    "water_flow_pv": ("Water.Flow", F, 5.0, False),
    "paste_flow_pv": ("Paste.Flow", F, 100.0, False),
    "paste_density_pv": ("Paste.Density", F, 1880.0, False),
    "pump_pressure_pv": ("Pump.Pressure", F, 3500.0, False),
    "mixer_level_pv": ("Mixer.Level", F, 55.0, False),
    "plant_mode": ("Plant.Mode", I16, 2, False),
    "remote_enabled": ("Plant.RemoteEnabled", B, True, False),
    "setpoint_ack": ("Link.SetpointAck", I32, 0, False),
    "cement_refill": ("Cement.Refill", B, False, False),
    "tailings_flow_sp": ("Feed.FlowSP", F, 0.0, True),
    "cement_rate_sp": ("Cement.RateSP", F, 0.0, True),
    "slag_rate_sp": ("Slag.RateSP", F, 0.0, True),
    "water_flow_sp": ("Water.FlowSP", F, 0.0, True),
    "paste_density_sp": ("Paste.DensitySP", F, 0.0, True),
    "run_request": ("Plant.RunRequest", B, False, True),
    "setpoint_seq": ("Link.SetpointSeq", I32, 0, True),
    "heartbeat": ("Link.Heartbeat", I32, 0, True),
}


# extra nodes for negative tests: (name under Backfill., type, initial, writable)
EXTRA_NODES: tuple[tuple[str, ua.VariantType, object, bool], ...] = (
    ("Test.FloatRW", F, 0.0, True),
    ("Test.FloatRO", F, 0.0, False),
)


class PlcServer:
    """An in-process asyncua server on ``127.0.0.1:port``; ``start``/``stop`` may repeat."""

    def __init__(
        self,
        port: int | None = None,
        *,
        strict_writes: bool = True,
        certificate: Path | None = None,
        private_key: Path | None = None,
        tags: Mapping[str, tuple[str, ua.VariantType, object, bool]] = TAGS,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.strict_writes = strict_writes
        self.auto_ack = True
        self.certificate = certificate
        self.private_key = private_key
        #: with users, only a user name and password are accepted (no anonymous session)
        self.users = dict(users) if users is not None else None
        self.tags = dict(tags)
        self.writes: list[tuple[str, ua.DataValue]] = []
        #: tags whose writes the PLC refuses with BadOutOfRange
        self.reject: set[str] = set()
        self.ns = 2
        self._server: Server | None = None
        self._ack_task: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    def node_id(self, tag: str) -> str:
        return f"ns={self.ns};s=Backfill.{self.tags[tag][0]}"

    def tag_map(self, **overrides: str) -> TagMap:
        """The tag map of this PLC; ``overrides`` point tags at ``Backfill.<name>``."""
        nodes = {t: self.node_id(t) for t in self.tags}
        nodes.update({t: f"ns={self.ns};s=Backfill.{n}" for t, n in overrides.items()})
        return parse_tag_map({"tags": nodes})

    def _nodeid(self, tag: str) -> ua.NodeId:
        return ua.NodeId(f"Backfill.{self.tags[tag][0]}", self.ns)

    async def start(self) -> None:
        """Serve; the address space is built once, so a stop/start keeps the PLC's memory
        (like a PLC restart with retained data) and costs no re-initialisation."""
        if self._server is None:
            self._server = await self._build()
        await self._server.start()
        self._ack_task = asyncio.create_task(self._copy_ack())

    async def stop(self) -> None:
        """Stop serving: every connection drops, the port closes."""
        if self._ack_task is not None:
            self._ack_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ack_task
            self._ack_task = None
        if self._server is not None:
            await self._server.stop()

    async def _build(self) -> Server:
        server = Server(user_manager=_Passwords(self.users) if self.users is not None else None)
        await server.init()
        if self.users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        server.set_endpoint(self.endpoint)
        server.set_server_name("backfill test PLC")
        if self.certificate is not None and self.private_key is not None:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
            server.set_security_policy(
                [
                    ua.SecurityPolicyType.Basic256Sha256_Sign,
                    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ]
            )
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.ns = await server.register_namespace(NAMESPACE)
        plc = await server.nodes.objects.add_object(ua.NodeId("Backfill", self.ns), "Backfill")
        variables = [*self.tags.values(), *EXTRA_NODES]
        for name, vt, initial, writable in variables:
            var = await plc.add_variable(
                ua.NodeId(f"Backfill.{name}", self.ns), name, ua.Variant(initial, vt)
            )
            if writable:
                await var.set_writable()
        service = server.iserver.attribute_service
        original_write = service.write
        names = {self._nodeid(t): t for t in self.tags}

        async def write(params: ua.WriteParameters, user: object = None) -> list[ua.StatusCode]:
            results: list[ua.StatusCode] = []
            for item in params.NodesToWrite:
                tag = names.get(item.NodeId)
                if tag is not None:
                    self.writes.append((tag, item.Value))
                stamped = item.Value.SourceTimestamp or item.Value.ServerTimestamp
                if tag is not None and self.strict_writes and stamped is not None:
                    results.append(ua.StatusCode(ua.StatusCodes.BadWriteNotSupported))
                    continue
                if tag in self.reject:
                    results.append(ua.StatusCode(ua.StatusCodes.BadOutOfRange))
                    continue
                one = dataclasses.replace(params, NodesToWrite=[item])
                if user is None:
                    results.extend(await original_write(one))
                else:
                    results.extend(await original_write(one, user=user))
            return results

        service.write = write  # type: ignore[method-assign]
        return server

    async def _copy_ack(self) -> None:
        """The PLC program: setpoint_ack follows setpoint_seq (when auto_ack)."""
        while True:
            await asyncio.sleep(0.01)
            if self.auto_ack and self._server is not None:
                seq = self.get("setpoint_seq")
                if seq != self.get("setpoint_ack"):
                    await self.set("setpoint_ack", seq)

    def get(self, tag: str) -> object:
        assert self._server is not None
        dv = self._server.read_attribute_value(self._nodeid(tag))
        return None if dv.Value is None else dv.Value.Value

    async def set(self, tag: str, value: object, status: int | None = None) -> None:
        """Server-side write; ``status`` (e.g. BadSensorFailure) marks the value's quality."""
        server = self._server
        assert server is not None
        vt = self.tags[tag][1]
        dv = ua.DataValue(
            ua.Variant(value, vt),
            StatusCode=ua.StatusCode(status if status is not None else ua.StatusCodes.Good),
            SourceTimestamp=datetime.now(UTC),
        )
        await server.write_attribute_value(self._nodeid(tag), dv)

    async def drop_subscriptions(self) -> int:
        """Delete every subscription server-side while sessions stay (a silent subscription)."""
        assert self._server is not None
        service = self._server.iserver.subscription_service
        ids = list(service.subscriptions)
        await service.delete_subscriptions(ids)
        return len(ids)


async def _main(port: int) -> None:
    server = PlcServer(port)
    await server.start()
    print(f"READY {server.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port))


class _Passwords:
    """asyncua user manager: a session needs one of these user names and passwords."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)

    def get_user(
        self,
        iserver: object,
        username: str | None = None,
        password: str | None = None,
        certificate: object = None,
    ) -> User | None:
        known = self._users.get(username or "")
        if known is None or password is None:
            return None
        if not hmac.compare_digest(known.encode(), password.encode()):
            return None
        return User(role=UserRole.User, name=username)


def fast_settings(endpoint: str, **overrides: object) -> PlcSettings:
    """Link settings with short intervals so that every test stays bounded."""
    values: dict[str, object] = {
        "endpoint": endpoint,
        "allow_insecure": True,  # a test PLC on loopback
        "publishing_interval_ms": 100,
        "stale_after_intervals": 4,
        "heartbeat_interval_s": 0.2,
        "request_timeout_s": 1.0,
        "ack_timeout_s": 1.0,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.4,
    }
    values.update(overrides)
    return PlcSettings.model_validate(values)


async def eventually(
    predicate: Callable[[], bool], within: float = 5.0, what: str = "condition"
) -> float:
    """Poll ``predicate`` until true; returns the seconds it took, fails after ``within`` s."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > within:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.02)
    return loop.time() - start


def all_bad(link: OpcUaPlantLink) -> bool:
    snap = link.snapshot()
    return all(m.quality is Quality.BAD for m in snap.measurements.values())


def all_good(link: OpcUaPlantLink) -> bool:
    snap = link.snapshot()
    return snap.connected and all(m.quality is Quality.GOOD for m in snap.measurements.values())
