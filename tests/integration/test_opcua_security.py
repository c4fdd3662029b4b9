"""Basic256Sha256 SignAndEncrypt: the server certificate is checked against a trust list."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509 import ObjectIdentifier
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.plant.opcua import OpcUaPlantLink
from service.plant.port import Quality
from tests.integration.plc_server import PlcServer, eventually, fast_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def make_cert(folder: Path, name: str, uri: str, use: ObjectIdentifier) -> Path:
    key, cert = folder / f"{name}_key.pem", folder / f"{name}_cert.der"
    await setup_self_signed_certificate(
        key, cert, uri, socket.gethostname(), [use], {"commonName": name}
    )
    return cert


@dataclass
class SecurePlc:
    server: PlcServer
    pki: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secure_plc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecurePlc]:
    folder = tmp_path_factory.mktemp("pki")
    server_cert = await make_cert(
        folder, "server", "urn:freeopcua:python:server", ExtendedKeyUsageOID.SERVER_AUTH
    )
    await make_cert(folder, "client", "urn:backfill:service", ExtendedKeyUsageOID.CLIENT_AUTH)
    plc = PlcServer(certificate=server_cert, private_key=folder / "server_key.pem")
    await plc.start()
    yield SecurePlc(plc, folder)
    await plc.stop()


def secure_link(plc: SecurePlc, trust_dir: Path) -> OpcUaPlantLink:
    settings = fast_settings(
        plc.server.endpoint,
        security_mode="SignAndEncrypt",
        certificate=plc.pki / "client_cert.der",
        private_key=plc.pki / "client_key.pem",
        trust_dir=trust_dir,
    )
    return OpcUaPlantLink(settings, plc.server.tag_map())


async def test_trusted_server_connects_encrypted(secure_plc: SecurePlc, tmp_path: Path) -> None:
    trust = tmp_path / "trusted"
    trust.mkdir()
    (trust / "plc.der").write_bytes((secure_plc.pki / "server_cert.der").read_bytes())
    link = secure_link(secure_plc, trust)
    await link.start()
    try:
        await eventually(lambda: link.connected, what="secure connection")
        await eventually(
            lambda: link.snapshot().measurements["paste_density_pv"].quality is Quality.GOOD
        )
        assert (await link.write_setpoints({"cement_rate_sp": 1.5})).acknowledged
    finally:
        await link.stop()


async def test_untrusted_server_is_refused(secure_plc: SecurePlc, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    link = secure_link(secure_plc, empty)
    await link.start()  # not a tag map problem: the link reports and retries
    try:
        snap = link.snapshot()
        assert not snap.connected
        assert snap.last_error is not None and "Untrusted" in snap.last_error
    finally:
        await link.stop()
