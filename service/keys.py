"""``python -m service.keys ROLE [ROLE ...]``: make one new API key per role.

Roles: hmi, scada, engineer, lab (laboratory results only), admin. Each key is
printed once, to hand to its client (SCADA, an HMI, an engineer, the laboratory); the
service's configuration needs only the digest entries printed with them,
``BACKFILL_API_KEYS=role:sha256:<hex>,...``, so that the env file or Kubernetes
Secret at rest never holds a usable key. Keys are 32 random bytes (256 bits) from
the operating system, so an unsalted SHA-256 is enough to store them.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys

from service.settings import Role


def new_key() -> str:
    return secrets.token_urlsafe(32)


def digest_entry(role: Role, key: str) -> str:
    return f"{role.value}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.keys", description=__doc__)
    parser.add_argument("roles", nargs="+", choices=[r.value for r in Role], metavar="ROLE")
    args = parser.parse_args(argv)
    entries = []
    for name in args.roles:
        role = Role(name)
        key = new_key()
        print(f"{role.value} key (give it to the client; it is not shown again): {key}")
        entries.append(digest_entry(role, key))
    print("# for the service's configuration (digests only):")
    print("BACKFILL_API_KEYS=" + ",".join(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
