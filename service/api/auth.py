"""API keys and roles (docs/INTEGRATION.md "Authentication").

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
        # Each digest with the principal it stands for (immutable, so shared by every
        # request that presents the key).
        self._entries: list[tuple[bytes, Principal]] = []
        for key in keys:
            digest = key.digest()
            self._entries.append((digest, Principal(role=key.role, key_id=digest.hex()[:8])))

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: Principal | None = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found
