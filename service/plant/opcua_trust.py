"""Certificates of the OPC UA peers: which the PLC link trusts of the PLC's, which the
OPC UA server for SCADA trusts of its clients', and the application URI a certificate
carries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


class TrustList:
    """A peer's certificate check: trusted when it is one of the listed certificates
    (self-signed certificates are pinned this way) or chains to a CA in the list.

    An asyncua ``CertificateValidatorMethod``: the PLC link checks the PLC's (server)
    certificate with it, the OPC UA server for SCADA its clients' (``client=True``).
    """

    def __init__(self, locations: Sequence[Path], *, client: bool = False) -> None:
        self._locations = list(locations)
        self._store = TrustStore([p for p in self._locations if p.is_dir()], [])
        peer = (
            CertificateValidatorOptions.PEER_CLIENT
            if client
            else CertificateValidatorOptions.PEER_SERVER
        )
        self._basic = CertificateValidator(CertificateValidatorOptions.TIME_RANGE | peer)
        self._pinned: set[bytes] = set()
        self._chains = False

    async def load(self) -> None:
        self._pinned = await asyncio.to_thread(load_der_certificates, self._locations)
        if self._pinned and self._store.trust_locations:
            # CA chains only when there is something to chain to (an empty store raises)
            await self._store.load_trust()
            self._chains = True

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        await self._basic.validate(cert, app)
        if cert.public_bytes(Encoding.DER) in self._pinned:
            return
        if self._chains and self._store.is_trusted(cert):
            return
        raise ServiceError(StatusCodes.BadCertificateUntrusted)


def load_certificate(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_der_certificates(locations: Sequence[Path]) -> set[bytes]:
    found: set[bytes] = set()
    for location in locations:
        files = sorted(location.iterdir()) if location.is_dir() else [location]
        for path in files:
            if path.suffix.lower() in {".der", ".pem", ".crt", ".cer"}:
                found.add(load_certificate(path.read_bytes()).public_bytes(Encoding.DER))
    return found


def application_uri(cert_bytes: bytes) -> str | None:
    """The URI in a certificate's subjectAltName: a client's ApplicationUri must match it."""
    cert = load_certificate(cert_bytes)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None
