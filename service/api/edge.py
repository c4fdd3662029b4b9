"""What every request meets before its route, as one pure ASGI middleware (one pass,
not a layer per concern, on the hot path):

- every request under ``/api/`` needs a valid API key (docs/INTEGRATION.md "Authentication"):
  without one it is answered 401 here, before its body is read; with one, the caller's
  :class:`~service.api.auth.Principal` is put in the scope (:data:`PRINCIPAL`) for the
  routes that check its role or record who acted (``service.api.deps``);
- a request body larger than ``max_body_bytes`` is refused with 413 before the route
  runs: by its Content-Length, or, for a chunked body, while it is read here (the
  route gets it whole); a body that stops arriving for ``body_timeout_s`` is a 408
  (or, for a body the service's server holds and times itself, a closed connection:
  :data:`SERVER_TIMED_BODY`);
- requests that change something (POST, PUT, PATCH, DELETE) are rate-limited per
  caller with token buckets: writes at ``write_rate_per_s`` (``write_burst`` at once),
  pure computations (which change nothing) at the much higher ``compute_rate_per_s``;
  beyond it 429 with Retry-After. The caller is the API key's identity, whatever the
  spelling of the header (``bearer``, ``BEARER``, extra spaces); without a valid key it
  is the client address, and the limit comes before the 401, so guessing keys is
  limited too;
- every response carries the security headers (no sniffing, no framing, no referrer)
  and the page's Content-Security-Policy (the interactive API docs their own, as strict
  but for their inline start-up script);
- every request, refused here or answered by a route, is counted and timed by method,
  route template and status (``service/api/request_metrics.py``), has an id (the
  client's ``X-Request-ID`` or a new one, sent back in the answer and carried by every
  log line of the request) and is written to the access log as the site chose
  (``service/api/access_log.py``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from service.api.access_log import AccessLog, request_id
from service.api.auth import Principal, parse_bearer
from service.api.request_metrics import METHODS, route_template
from service.logs import current_request_id
from service.metrics import HttpMetrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_MAX_CALLERS = 10_000
_KEYED_PREFIX = "/api/"
PRINCIPAL = "backfill.principal"
"""The scope key of the authenticated caller's :class:`Principal` (an ASGI extension
key of this service: never the shared ``state``)."""
SERVER_TIMED_BODY = "backfill.server_timed_body"
"""Scope key set by the service's server (``service/server.py``): the size up to which
it holds a request body whole and closes the connection if the body pauses too long.
A body declared no larger is left to the route; any other is read and timed here."""
_NO_KEY = "an API key is required: Authorization: Bearer <key>"
_BAD_KEY = "the API key is not valid"
_CHALLENGE = ((b"www-authenticate", b"Bearer"),)

# The page loads nothing but its own files and talks to nothing but this service.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
# Swagger UI and ReDoc (served with their assets, no CDN) start from an inline script and
# style, and ReDoc runs a worker from a blob: their own policy, still nothing external.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; frame-ancestors "
    "'none'; base-uri 'none'; form-action 'self'"
)
_DOCS_PAGES = ("/docs", "/redoc")
_PAGE_POLICY_HEADER = (b"content-security-policy", PAGE_POLICY.encode())
_DOCS_POLICY_HEADER = (b"content-security-policy", DOCS_POLICY.encode())


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; time is injected."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, now

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class _Limit:
    """Buckets of one class of request, per caller (memory bounded)."""

    def __init__(self, what: str, rate: float, burst: int) -> None:
        self.what, self.rate, self.burst = what, rate, burst
        self.buckets: dict[str, TokenBucket] = {}

    def take(self, caller: str, now: float) -> float:
        bucket = self.buckets.get(caller)
        if bucket is None:
            if len(self.buckets) >= _MAX_CALLERS:
                self.buckets.clear()
            bucket = self.buckets[caller] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)


async def send_error(
    send: Send, status: int, code: str, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """An error answer in the one error shape, straight from ASGI (through the edge's
    ``answer``, which adds the security headers)."""
    body = json.dumps({"code": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def bearer_token(scope: Scope) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (as authentication reads it)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return parse_bearer(value.decode("latin-1"))
    return None


def route_path(scope: Scope) -> str:
    """The path the routes see: without the ``root_path`` a proxy mounts the service at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class ApiEdge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str], Principal | None],
        is_computation: Callable[[str], bool],
        metrics: HttpMetrics,
        max_body_bytes: int,
        write_rate_per_s: float,
        write_burst: int,
        compute_rate_per_s: float,
        compute_burst: int,
        body_timeout_s: float,
        access_log: AccessLog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``authenticate(token)`` is the principal of a valid key (None for an invalid
        one); ``is_computation(path)`` tells a pure computation from a write; every
        request is counted and timed in ``metrics``."""
        self.app = app
        self.authenticate = authenticate
        self.is_computation = is_computation
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.writes = _Limit("writes", write_rate_per_s, write_burst)
        self.computations = _Limit("computations", compute_rate_per_s, compute_burst)
        self.body_timeout_s = body_timeout_s
        self.access_log = access_log or AccessLog("off")
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # As the client sent them: routing may rewrite the scope's path and root.
        sent_path, root_path = scope["path"], scope.get("root_path", "")
        path = route_path(scope)
        policy = _DOCS_POLICY_HEADER if path.startswith(_DOCS_PAGES) else _PAGE_POLICY_HEADER
        status = 500  # what the server answers for a request that failed unanswered
        rid = request_id(scope.get("headers", ()))
        current_request_id.set(rid)  # this request's task only
        id_header = (b"x-request-id", rid.encode())

        async def answer(message: Message) -> None:
            """Every message of the response, the edge's own refusals included: the
            status noted, the security headers and the request id added."""
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *SECURITY_HEADERS, policy, id_header]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._serve(scope, receive, answer, path)
        finally:
            method = scope["method"]
            route = route_template(scope, sent_path, root_path)
            elapsed = time.perf_counter() - started
            self.metrics.observe(method if method in METHODS else "other", route, status, elapsed)
            if status >= self.access_log.from_status:
                principal = scope.get(PRINCIPAL)
                self.access_log.record(
                    method=method,
                    path=sent_path,
                    route=route,
                    status=status,
                    duration_s=elapsed,
                    client=(scope.get("client") or ("-", 0))[0],
                    request_id=rid,
                    role=None if principal is None else principal.role.value,
                )

    async def _serve(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        length: int | None = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0 or length > self.max_body:
                    await self._too_large(send)
                    return
        token = bearer_token(scope)
        principal = self.authenticate(token) if token is not None else None
        method = scope["method"]
        if method in _CHANGING_METHODS:
            limit = self.computations if self.is_computation(path) else self.writes
            if principal is not None:
                caller = f"key:{principal.key_id}"
            else:
                caller = f"addr:{(scope.get('client') or ('?', 0))[0]}"
            wait = limit.take(caller, self.clock())
            if wait > 0:
                await send_error(
                    send,
                    429,
                    "too_many_requests",
                    f"at most {limit.rate:g} {limit.what} per second per caller "
                    f"(burst {limit.burst})",
                    [(b"retry-after", str(math.ceil(wait)).encode())],
                )
                return
        if principal is not None:
            scope[PRINCIPAL] = principal
        elif path.startswith(_KEYED_PREFIX):
            await send_error(
                send, 401, "unauthorized", _NO_KEY if token is None else _BAD_KEY, _CHALLENGE
            )
            return
        if method in _BODY_METHODS and (length is None or length > scope.get(SERVER_TIMED_BODY, 0)):
            # The body is read here, up to the limit and with a timeout: a chunked body
            # too large is a 413 (not a body the route fails to parse), one that stops
            # arriving a 408 (not a task held forever). A body of a declared length the
            # server holds whole and times itself is left to the route.
            body = await self._read_body(receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _too_large(self, send: Send) -> None:
        await send_error(
            send,
            413,
            "payload_too_large",
            f"request bodies are limited to {self.max_body} bytes",
        )

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None after answering 413 (too large) or 408 (stalled)."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            try:
                async with asyncio.timeout(self.body_timeout_s):
                    message: Message = await receive()
            except TimeoutError:
                await send_error(send, 408, "request_timeout", "the request body stopped")
                return None
            if message["type"] != "http.request":
                return None  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(send)
                return None
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the buffered body once, then passes on (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: Message = await receive()
        return message

    return replay
