"""OPC UA security against a real asyncua server that offers Basic256Sha256 Sign and
SignAndEncrypt and takes only a user name and password (no anonymous session): the
server certificate is checked against a trust list or one pinned certificate."""

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

USER, PASSWORD = "backfill", "plc-password-for-the-service"


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
    plc = PlcServer(
        certificate=server_cert, private_key=folder / "server_key.pem", users={USER: PASSWORD}
    )
    await plc.start()
    yield SecurePlc(plc, folder)
    await plc.stop()


def secure_link(plc: SecurePlc, trust_dir: Path | None, **overrides: object) -> OpcUaPlantLink:
    values: dict[str, object] = {
        "security_mode": "SignAndEncrypt",
        "certificate": plc.pki / "client_cert.der",
        "private_key": plc.pki / "client_key.pem",
        "trust_dir": trust_dir,
        "username": USER,
        "password": PASSWORD,
    }
    values.update(overrides)
    return OpcUaPlantLink(fast_settings(plc.server.endpoint, **values), plc.server.tag_map())


async def _works(link: OpcUaPlantLink) -> None:
    await eventually(lambda: link.connected, what="a secure connection")
    await eventually(
        lambda: link.snapshot().measurements["paste_density_pv"].quality is Quality.GOOD
    )
    assert (await link.write_setpoints({"cement_rate_sp": 1.5})).acknowledged


def _refused(link: OpcUaPlantLink) -> str:
    snap = link.snapshot()
    assert not snap.connected
    assert snap.last_error is not None
    return snap.last_error


async def test_trusted_server_connects_encrypted(secure_plc: SecurePlc, tmp_path: Path) -> None:
    trust = tmp_path / "trusted"
    trust.mkdir()
    (trust / "plc.der").write_bytes((secure_plc.pki / "server_cert.der").read_bytes())
    link = secure_link(secure_plc, trust)
    await link.start()
    try:
        await _works(link)
    finally:
        await link.stop()


async def test_untrusted_server_is_refused(secure_plc: SecurePlc, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    link = secure_link(secure_plc, empty)
    await link.start()  # not a tag map problem: the link reports and retries
    try:
        assert "Untrusted" in _refused(link)
    finally:
        await link.stop()


async def test_sign_only_with_one_pinned_server_certificate(secure_plc: SecurePlc) -> None:
    link = secure_link(
        secure_plc,
        None,
        security_mode="Sign",
        server_certificate=secure_plc.pki / "server_cert.der",
    )
    await link.start()
    try:
        await _works(link)
    finally:
        await link.stop()


async def test_a_different_pinned_certificate_is_refused(secure_plc: SecurePlc) -> None:
    link = secure_link(secure_plc, None, server_certificate=secure_plc.pki / "client_cert.der")
    await link.start()
    try:
        assert "Untrusted" in _refused(link)  # named, not a timeout
    finally:
        await link.stop()


async def test_a_wrong_password_is_refused_by_the_plc(
    secure_plc: SecurePlc, tmp_path: Path
) -> None:
    trust = tmp_path / "trusted"
    trust.mkdir()
    (trust / "plc.der").write_bytes((secure_plc.pki / "server_cert.der").read_bytes())
    link = secure_link(secure_plc, trust, password="not-the-password")
    await link.start()
    try:
        assert "BadUserAccessDenied" in _refused(link)
    finally:
        await link.stop()
    anonymous = secure_link(secure_plc, trust, username=None, password=None)
    await anonymous.start()
    try:
        assert "BadIdentityTokenRejected" in _refused(anonymous)
    finally:
        await anonymous.stop()
