"""API keys and roles (CONTRACT "Authentication").

Only SHA-256 digests of the keys are held (configured as keys, or as digests alone:
``role:sha256:<hex>``). A presented key's digest is compared in constant time against
every configured digest (no early exit, so the time taken does not reveal which key
or how much of it matched). Keys are never logged: the principal carries only the
role and a short fingerprint.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from service.settings import ApiKey, Role


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value; the scheme in any
    case and the spaces around it ignored (RFC 9110 §11.1). None if it is no bearer."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    key_id: str  # first 8 hex digits of the key's SHA-256: safe to log

    def may(self, *roles: Role) -> bool:
        return self.role is Role.ADMIN or self.role in roles


class KeyRing:
    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._entries = [(k.digest(), k.role) for k in keys]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: Role | None = None
        for stored, role in self._entries:
            if hmac.compare_digest(stored, digest):
                found = role
        if found is None:
            return None
        return Principal(role=found, key_id=digest.hex()[:8])
