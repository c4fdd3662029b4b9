"""Request limits, as one pure ASGI middleware (cheap on the hot read path):

- a request body larger than ``max_body_bytes`` is refused with 413 before the route
  runs (by its Content-Length, or while it streams in);
- writes (POST, PUT, PATCH, DELETE) are rate-limited per caller with a token bucket:
  ``write_rate_per_s`` sustained, ``write_burst`` at once; beyond it 429 with
  Retry-After. The caller is the presented key's hash (never the key itself), or the
  client address without a key.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_CALLERS = 10_000


class _BodyTooLarge(Exception):
    pass


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


async def _error(send: Send, status: int, code: str, detail: str, headers: list[Any]) -> None:
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


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        write_rate_per_s: float,
        write_burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.rate = write_rate_per_s
        self.burst = write_burst
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}

    def _caller(self, scope: Scope) -> str:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                return hashlib.sha256(value).hexdigest()[:16]
        client = scope.get("client") or ("?", 0)
        return f"addr:{client[0]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0 or length > self.max_body:
                    await _error(
                        send,
                        413,
                        "payload_too_large",
                        f"request bodies are limited to {self.max_body} bytes",
                        [],
                    )
                    return
        if scope["method"] in _WRITE_METHODS:
            now = self.clock()
            caller = self._caller(scope)
            bucket = self.buckets.get(caller)
            if bucket is None:
                if len(self.buckets) >= _MAX_CALLERS:
                    self.buckets.clear()  # bounded memory against many callers
                bucket = self.buckets[caller] = TokenBucket(self.rate, self.burst, now)
            wait = bucket.take(now)
            if wait > 0:
                await _error(
                    send,
                    429,
                    "too_many_requests",
                    f"at most {self.rate:g} writes per second (burst {self.burst})",
                    [(b"retry-after", str(math.ceil(wait)).encode())],
                )
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _error(
                    send,
                    413,
                    "payload_too_large",
                    f"request bodies are limited to {self.max_body} bytes",
                    [],
                )
