"""The OPC UA server certificate of one instance, made with its application URI and host
names: ``python -m service.scada.cert --out DIR [--host NAME]... [--uri URI] [--days N]``.

OPC UA clients check that the server certificate's subjectAltName carries the
application URI the server announces (BadCertificateUriInvalid otherwise) and the host
name they connected to (BadCertificateHostNameInvalid); every instance has its own URI
(two failover instances are two applications), so each needs its own certificate. The
certificate is self-signed, RSA 2048 with SHA-256 (the Basic256Sha256 policy), with the
key usages OPC UA Part 6 §6.2.2 asks of an application instance certificate; the private
key is written readable by its owner only. The command prints the settings that use
them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_NAME = "opcua-server.der"
KEY_NAME = "opcua-server-key.pem"


def default_application_uri(host: str | None = None) -> str:
    """This instance's application URI when the setting leaves it out."""
    return f"urn:{host or socket.gethostname()}:backfill:service"


def make_certificate(
    out: Path, uri: str, hosts: Sequence[str], *, days: int = 730
) -> tuple[Path, Path]:
    """Write the certificate (DER) and its private key (PEM) into ``out``; each host is
    a DNS name or an IP address."""
    if not hosts:
        raise ValueError("at least one host name")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"Paste backfill service ({hosts[0]})"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Paste backfill service"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / CERTIFICATE_NAME, out / KEY_NAME
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return cert_path, key_path


def certificate_uris(path: Path) -> list[str]:
    """The URIs of a certificate's subjectAltName (DER or PEM)."""
    data = path.read_bytes()
    cert = (
        x509.load_pem_x509_certificate(data)
        if data.lstrip().startswith(b"-----BEGIN")
        else x509.load_der_x509_certificate(data)
    )
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(u) for u in names.get_values_for_type(x509.UniformResourceIdentifier)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.scada.cert",
        description="Make this instance's OPC UA server certificate and private key.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write them into")
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        help="a host name or IP address clients connect to (repeat; default: this host's name)",
    )
    parser.add_argument(
        "--uri",
        help="application URI (default urn:<first host>:backfill:service); set the same "
        "in BACKFILL_OPCUA_SERVER__APPLICATION_URI",
    )
    parser.add_argument("--days", type=int, default=730, help="validity (default 730)")
    args = parser.parse_args(argv)
    hosts = args.host or [socket.gethostname()]
    uri = args.uri or default_application_uri(hosts[0])
    if not 1 <= args.days <= 3650:
        parser.error("--days must be 1-3650")
    cert_path, key_path = make_certificate(args.out, uri, hosts, days=args.days)
    print(f"BACKFILL_OPCUA_SERVER__APPLICATION_URI={uri}")
    print(f"BACKFILL_OPCUA_SERVER__CERTIFICATE={cert_path.resolve()}")
    print(f"BACKFILL_OPCUA_SERVER__PRIVATE_KEY={key_path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
