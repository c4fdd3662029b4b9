"""The access log: one line per HTTP request, as the site chooses, carrying the request id.

``BACKFILL_ACCESS_LOG`` says which requests are logged: ``errors`` (the default: every
answer of 400 or more, the refusals an operator or an auditor looks for, 401, 403, 429
and every 5xx among them), ``all`` (every request: an HMI that polls the status every
second writes 86,400 lines a day, and the line costs about a fifth of the requests per
second of the proportioning route, ``bench/README.md``) or ``off``. The line goes
through the service's own logging (logger ``service.access``, level INFO; WARNING for
a 5xx), so it takes ``BACKFILL_LOG_FORMAT``: text, or one JSON object with its fields
(method, path, route, status, duration_ms, client, request_id, role). The path is the
one requested, without its query string (which may carry a key someone pasted); the
API key itself is never logged, only its role.

Every request has an id: the client's ``X-Request-ID`` when it sends a usable one (up
to 64 characters of letters, digits and ``-_.:``), else one made here. The answer
carries it back in ``X-Request-ID``, and every log line written while the request is
served carries it too (``service.logs``), so a SCADA's failed call and what the service
logged about it can be put side by side.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Literal

log = logging.getLogger("service.access")

AccessLogMode = Literal["off", "errors", "all"]
REQUEST_ID_HEADER = b"x-request-id"
_USABLE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]) -> str:
    """The client's request id when usable, else a new one (16 hex digits)."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _USABLE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return os.urandom(8).hex()


class AccessLog:
    """Writes the access line of a request when the mode asks for it."""

    def __init__(self, mode: AccessLogMode) -> None:
        self.mode = mode
        # Below this status nothing is written (the check on the hot path).
        self.from_status = {"off": 1000, "errors": 400, "all": 0}[mode]

    def record(
        self,
        *,
        method: str,
        path: str,
        route: str,
        status: int,
        duration_s: float,
        client: str,
        request_id: str,
        role: str | None,
    ) -> None:
        if status < self.from_status:
            return
        duration_ms = round(duration_s * 1000.0, 2)
        fields = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "client": client,
            "request_id": request_id,
            "role": role,
        }
        log.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %d %.1f ms %s role=%s request_id=%s",
            method,
            path,
            status,
            duration_ms,
            client,
            role or "-",
            request_id,
            extra={"access": fields},
        )
