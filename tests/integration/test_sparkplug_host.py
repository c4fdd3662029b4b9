"""The Sparkplug B edge node as a host application the project did not write consumes
it: Eclipse Tahu's payload codec (npm sparkplug-payload) with MQTT.js
(``tests/interop/sparkplug_host/host.js``), through a Mosquitto the test starts on a free
port with TLS (a CA made here, a client certificate) and a user name and password.

Shown: births with aliases on every metric and the properties engUnit and Quality,
DDATA with aliases only and no datatypes, the commands born in the DBIRTH and written
by alias as a host writes a tag, the deadband and the DDATA rate, a primary host whose
STATE goes offline and online (and a stale offline ignored), and bdSeq going on across
a restart. Needs Node.js with npm, mosquitto and mosquitto_passwd; without them the
tests skip with the reason (CI turns skips into failures)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import itertools
import json
import shutil
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.app import create_app
from service.scada.source import ModelSource
from service.scada.sparkplug import SparkplugNode
from service.settings import Settings, SparkplugSettings
from tests.conftest import api_keys_setting, auth
from tests.e2e.helpers import create_pour
from tests.e2e.procs import REPO, free_port

HOST_DIR = REPO / "tests" / "interop" / "sparkplug_host"
USER, PASSWORD = "backfill-node", "broker-password-0123456789"
EDGE, DEVICE = "PastePlant", "Plant"


async def _install(npm: str) -> None:
    if (HOST_DIR / "node_modules" / "sparkplug-payload").is_dir():
        return
    process = await asyncio.create_subprocess_exec(
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        cwd=HOST_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    assert process.returncode == 0, out.decode()[-3000:]


def _tools() -> dict[str, str]:
    found = {
        name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        for name in ("node", "npm", "mosquitto", "mosquitto_passwd")
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.skip(f"the Sparkplug host tests need {', '.join(missing)} (not found)")
    return {name: str(path) for name, path in found.items()}


# --- a test CA, and a TLS Mosquitto of the test's own -------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _cert(
    name: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None,
    *,
    ca: bool = False,
    usage: Any = None,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Broker:
    port: int
    ca: Path
    client_cert: Path
    client_key: Path

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def settings(self, group: str, folder: Path, **extra: Any) -> dict[str, Any]:
        return {
            "enabled": True,
            "port": self.port,
            "group_id": group,
            "keepalive_s": 5,
            "tls": True,
            "ca_certificate": str(self.ca),
            "client_certificate": str(self.client_cert),
            "client_key": str(self.client_key),
            "username": USER,
            "password": PASSWORD,
            "bd_seq_file": str(folder / "bdseq"),
            **extra,
        }


@asynccontextmanager
async def tls_broker(folder: Path, tools: dict[str, str]) -> AsyncIterator[Broker]:
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a test fixture, once)
    ca_key = _key()
    ca = _cert("backfill test CA", ca_key, None, ca=True)
    ca_pair = (ca.subject, ca_key)
    server_key, client_key = _key(), _key()
    server = _cert(
        "127.0.0.1",
        server_key,
        ca_pair,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    client = _cert("backfill-node", client_key, ca_pair, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    for name, cert in (("ca", ca), ("server", server), ("client", client)):
        (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, folder / "server.key")
    _write_key(client_key, folder / "client.key")
    passwd = folder / "passwd"
    made = await asyncio.create_subprocess_exec(
        tools["mosquitto_passwd"], "-b", "-c", str(passwd), USER, PASSWORD
    )
    assert await made.wait() == 0
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {folder / 'ca.pem'}\ncertfile {folder / 'server.pem'}\n"
        f"keyfile {folder / 'server.key'}\nrequire_certificate true\n"
        f"password_file {passwd}\nallow_anonymous false\npersistence false\nuser root\n"
    )
    process = await asyncio.create_subprocess_exec(
        tools["mosquitto"],
        "-c",
        str(conf),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    broker = Broker(port, folder / "ca.pem", folder / "client.pem", folder / "client.key")
    try:
        context = ssl.create_default_context(cafile=str(broker.ca))
        context.load_cert_chain(str(broker.client_cert), str(broker.client_key))
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
                writer.close()
                break
            except OSError:
                assert process.returncode is None, "mosquitto did not start"
                assert time.monotonic() < deadline, "mosquitto did not listen"
                await asyncio.sleep(0.1)
        yield broker
    finally:
        process.terminate()
        await process.wait()


# --- the Tahu host ------------------------------------------------------------------------


@dataclass
class TahuHost:
    process: asyncio.subprocess.Process
    group: str
    lines: list[dict[str, Any]] = field(default_factory=list)

    async def pump(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            text = line.decode().strip()
            if text.startswith("{"):
                self.lines.append(json.loads(text))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("kind") == kind]

    async def wait(self, what: str, probe: Callable[[], Any], within_s: float = 30.0) -> Any:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"no {what} within {within_s:g} s: {[line.get('kind') for line in self.lines]}"
        )

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    async def state(self, host: str, online: bool, timestamp: int) -> None:
        await self.send({"state": {"host": host, "online": online, "timestamp": timestamp}})


@asynccontextmanager
async def tahu_host(broker: Broker, tools: dict[str, str]) -> AsyncIterator[TahuHost]:
    await _install(tools["npm"])
    group = f"T{uuid.uuid4().hex[:10]}"
    process = await asyncio.create_subprocess_exec(
        tools["node"],
        str(HOST_DIR / "host.js"),
        broker.url,
        group,
        str(broker.ca),
        str(broker.client_cert),
        str(broker.client_key),
        USER,
        PASSWORD,
        cwd=HOST_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    host = TahuHost(process, group)
    pump = asyncio.create_task(host.pump())
    try:
        await host.wait("the host's connection", lambda: host.of("connected"))
        yield host
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        pump.cancel()


def _metrics(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in message["metrics"]}


@asynccontextmanager
async def serving(
    tmp_path: Path, broker: Broker, group: str, **extra: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'spb.db'}",
        api_keys=api_keys_setting(),
        sim={"speed": 20.0, "seed": 5},
        sparkplug=broker.settings(group, tmp_path, **extra),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app.state.runtime


# --- the tests ----------------------------------------------------------------------------

DENSITY = "Plant/Measurements/paste_density_pv"
DEADBAND = 3.0
RATE = 1.0


async def test_a_tahu_host_reads_births_data_and_writes_born_commands(tmp_path: Path) -> None:
    tools = _tools()
    async with (
        tls_broker(tmp_path / "pki", tools) as broker,
        tahu_host(broker, tools) as host,
        serving(
            tmp_path,
            broker,
            host.group,
            commands_enabled=True,
            max_ddata_per_s=RATE,
            deadbands={DENSITY: DEADBAND},
        ) as (api, runtime),
    ):
        [nbirth] = await host.wait("NBIRTH", lambda: host.of("NBIRTH"))
        [dbirth] = await host.wait("DBIRTH", lambda: host.of("DBIRTH"))
        assert nbirth["seq"] == 0 and dbirth["seq"] == 1
        births = nbirth["metrics"] + dbirth["metrics"]
        aliases = [m["alias"] for m in births]
        assert None not in aliases and len(set(aliases)) == len(aliases)  # unique per node
        assert all(m["name_sent"] and m["type_sent"] for m in births)
        model = _metrics(dbirth)
        density = model[DENSITY]
        assert density["type"] == "Double"
        assert density["properties"]["engUnit"] == {"type": "String", "value": "kg/m3"}
        assert density["properties"]["Quality"]["type"] == "Int32"
        assert density["properties"]["Quality"]["value"] in (0, 192, 500)
        assert model["Pour/PouredM3"]["is_null"], model["Pour/PouredM3"]  # no pour: no value
        assert model["Pour/PouredM3"]["properties"]["Quality"]["value"] == 0
        for command in ("Pour/Start", "Pour/Pause", "Pour/Resume", "Pour/Stop"):
            assert model[command]["type"] == "String", command
        assert model["Alarms/Acknowledge"]["type"] == "String"

        # DATA: aliases only, no datatypes; the host names them from the birth.
        await host.wait("DDATA", lambda: len(host.of("DDATA")) >= 3)
        for message in host.of("DDATA"):
            for metric in message["metrics"]:
                assert not metric["name_sent"] and not metric["type_sent"], metric
                assert metric["name"] is not None and metric["timestamp"]

        # A born command written as a host writes a tag: by alias, its birth datatype.
        pour_id = await create_pour(api, target_m3=50)
        deadline = time.monotonic() + 30
        while (await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))).json()[
            "state"
        ] != "running":
            assert time.monotonic() < deadline, "the pour did not start by a host's write"
            await host.send(
                {"dcmd": {"edge": EDGE, "device": DEVICE, "metric": "Pour/Start", "value": pour_id}}
            )
            await asyncio.sleep(1.0)

        def running() -> bool:
            return any(
                m["name"] == "Pour/State" and m["value"] == "running"
                for d in host.of("DDATA")
                for m in d["metrics"]
            )

        await host.wait("Pour/State running", running)
        # Let the data flow a while, then judge the deadband and the rate.
        first = len(host.of("DDATA"))
        started = time.monotonic()
        await asyncio.sleep(8.0)
        window = time.monotonic() - started
        sent = len(host.of("DDATA")) - first
        assert sent <= RATE * window + 1, (sent, window)
        values = [
            m["value"]
            for d in host.of("DDATA")
            for m in d["metrics"]
            if m["name"] == DENSITY and m["value"] is not None
        ]
        assert values, "the density never moved past its deadband"
        for before, after in itertools.pairwise(values):
            assert abs(after - before) > DEADBAND, values
        await host.send(
            {"dcmd": {"edge": EDGE, "device": DEVICE, "metric": "Pour/Stop", "value": pour_id}}
        )
        deadline = time.monotonic() + 15
        while (await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))).json()[
            "state"
        ] != "stopped":
            assert time.monotonic() < deadline, "the pour did not stop by a host's write"
            await asyncio.sleep(0.2)
        assert runtime.sparkplug.ddata_sent > 0


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _node(broker: Broker, group: str, folder: Path, **extra: Any) -> SparkplugNode:
    async def changed(version: int, within_s: float) -> int:
        await asyncio.sleep(min(within_s, 0.2))
        return version + 1

    status = {"connected": True, "plc_mode": "stopped", "remote_enabled": True}
    node = SparkplugNode(
        SparkplugSettings(**broker.settings(group, folder, **extra)),
        source=ModelSource(
            status=lambda: status,
            changed=changed,
            measurements={"paste_density_pv": "kg/m3"},
            setpoints={},
            actions={},
        ),
    )
    await node.start()
    return node


def _bd_seq(message: dict[str, Any]) -> int:
    return int(_metrics(message)["bdSeq"]["value"])


async def test_the_node_follows_its_primary_hosts_state(tmp_path: Path) -> None:
    tools = _tools()
    async with tls_broker(tmp_path / "pki", tools) as broker, tahu_host(broker, tools) as host:
        primary = f"SCADA-{host.group}"
        node = await _node(broker, host.group, tmp_path, primary_host_id=primary)
        try:
            await asyncio.sleep(3.0)
            assert host.of("NBIRTH") == []  # no birth before the primary host is online
            t0 = _now_ms()
            await host.state(primary, True, t0)
            [first] = await host.wait("NBIRTH", lambda: host.of("NBIRTH"))
            await host.wait("DBIRTH", lambda: host.of("DBIRTH"))
            # A stale offline (an old session's death) is ignored.
            await host.state(primary, False, t0 - 60_000)
            await asyncio.sleep(2.0)
            assert host.of("NDEATH") == []
            # The primary host goes offline: the node leaves with its NDEATH.
            await host.state(primary, False, t0 + 1)
            [death] = await host.wait("NDEATH", lambda: host.of("NDEATH"))
            assert _bd_seq(death) == _bd_seq(first)
            await asyncio.sleep(3.0)
            assert len(host.of("NBIRTH")) == 1  # and is not born while it is offline
            # Online again: born again, with the next bdSeq.
            await host.state(primary, True, t0 + 2)
            births = await host.wait("a second NBIRTH", lambda: host.of("NBIRTH")[1:])
            assert births[0]["seq"] == 0
            assert _bd_seq(births[0]) == (_bd_seq(first) + 1) % 256
        finally:
            await node.stop()
            await host.state(primary, False, _now_ms())  # no retained online left behind


async def test_bd_seq_goes_on_across_a_restart(tmp_path: Path) -> None:
    tools = _tools()
    async with tls_broker(tmp_path / "pki", tools) as broker, tahu_host(broker, tools) as host:
        (tmp_path / "bdseq").write_text("255\n")  # and wraps round
        node = await _node(broker, host.group, tmp_path)
        [first] = await host.wait("NBIRTH", lambda: host.of("NBIRTH"))
        await node.stop()
        [death] = await host.wait("NDEATH", lambda: host.of("NDEATH"))
        assert _bd_seq(first) == _bd_seq(death) == 0
        node = await _node(broker, host.group, tmp_path)  # a restart: a new process's node
        try:
            births = await host.wait("the restarted NBIRTH", lambda: host.of("NBIRTH")[1:])
            assert _bd_seq(births[0]) == 1
        finally:
            await node.stop()
