"""API keys, roles and people (docs/INTEGRATION.md "Authentication").

The credentials, the principal a key stands for and the key ring are the pure
:mod:`service.core.people` (the SCADA faces use the same ring); here is what is the
HTTP layer's own: the bearer token of a request. Keys are never logged: a principal
carries the role, the person and a short fingerprint of the key only.
"""

from __future__ import annotations

from service.core.people import KeyRing, Principal

__all__ = ["KeyRing", "Principal", "parse_bearer"]


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value; the scheme in any
    case and the spaces around it ignored (RFC 9110 §11.1). None if it is no bearer."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
