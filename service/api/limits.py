"""Request limits and response headers, as one pure ASGI middleware (cheap on the hot
read path):

- a request body larger than ``max_body_bytes`` is refused with 413 before the route
  runs: by its Content-Length, or, for a chunked body, while it is read here (the
  route gets it whole); a body that stops arriving for ``body_timeout_s`` is a 408;
- requests that change something (POST, PUT, PATCH, DELETE) are rate-limited per
  caller with token buckets: writes at ``write_rate_per_s`` (``write_burst`` at once),
  pure computations (which change nothing) at the much higher ``compute_rate_per_s``;
  beyond it 429 with Retry-After. The caller is the API key's identity, whatever the
  spelling of the header (``bearer``, ``BEARER``, extra spaces); without a valid key it
  is the client address;
- every response carries the security headers (no sniffing, no framing, no referrer)
  and the page's Content-Security-Policy (the interactive API docs their own, as strict
  but for their inline start-up script).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from service.api.auth import parse_bearer

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_MAX_CALLERS = 10_000

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
    """An error answer in the one error shape, straight from ASGI."""
    body = json.dumps({"code": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
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


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        identify: Callable[[str], str | None],
        is_computation: Callable[[str], bool],
        max_body_bytes: int,
        write_rate_per_s: float,
        write_burst: int,
        compute_rate_per_s: float,
        compute_burst: int,
        body_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``identify(token)`` is the caller id of a valid key (None for an invalid
        one); ``is_computation(path)`` tells a pure computation from a write."""
        self.app = app
        self.identify = identify
        self.is_computation = is_computation
        self.max_body = max_body_bytes
        self.writes = _Limit("writes", write_rate_per_s, write_burst)
        self.computations = _Limit("computations", compute_rate_per_s, compute_burst)
        self.body_timeout_s = body_timeout_s
        self.clock = clock

    def _caller(self, scope: Scope) -> str:
        token = bearer_token(scope)
        key_id = self.identify(token) if token is not None else None
        if key_id is not None:
            return f"key:{key_id}"
        client = scope.get("client") or ("?", 0)
        return f"addr:{client[0]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
        method = scope["method"]
        if method in _CHANGING_METHODS:
            path = scope["path"]
            limit = self.computations if self.is_computation(path) else self.writes
            wait = limit.take(self._caller(scope), self.clock())
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
        if method in _BODY_METHODS:
            # The body is read here, up to the limit and with a timeout: a chunked body
            # too large is a 413 (not a body the route fails to parse), one that stops
            # arriving a 408 (not a task held forever).
            body = await self._read_body(receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, self._with_headers(scope, send))

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

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        policy = DOCS_POLICY if scope["path"].startswith(_DOCS_PAGES) else PAGE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.extend(SECURITY_HEADERS)
                headers.append((b"content-security-policy", policy.encode()))
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers


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
