"""Serving the application: uvicorn, with a shutdown that puts the plant in its safe
state before anything else, and connections that cannot be held open forever.

On SIGTERM (or Ctrl-C) the listening sockets close, the runtime quiesces (no further
pour action; the running pour paused with an interruption; ``run_request = false``
written and confirmed by the PLC; the record stored; every event stream ended), the
remaining connections drain, and the runtime stops, all inside
``BACKFILL_SHUTDOWN_GRACE_S`` (20 s by default, under the 30 s that systemd, compose
and Kubernetes allow before SIGKILL). A process still shutting down at the end of its
grace exits anyway, saying so.

HTTP is parsed by httptools (uvicorn's C parser; about 1.3 times the requests per
second of the pure-Python h11, measured in ``bench/README.md``), with a deadline for
every request head; the event loop is asyncio's own, the one the control loop, the
PLC link and their tests run on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.api.edge import SERVER_TIMED_BODY
from service.app import create_app
from service.runtime import Runtime
from service.settings import Settings

log = logging.getLogger(__name__)

# Time kept back from the grace for draining connections and stopping the runtime.
_DRAIN_S = 3.0
_STOP_S = 3.0
# A dead peer on an idle connection (TCP keep-alive): probes after 30 s, every 10 s, 3.
_KEEPALIVE = (30, 10, 3)
EXIT_OVERRAN_GRACE = 70


class _HeadDeadline:
    """A deadline for every request head, and for a request body that stops, for
    uvicorn's HTTP/1.1 protocols.

    uvicorn closes a keep-alive connection that stays silent, but any byte re-arms it,
    and a fresh connection that never sends a complete request head is never closed:
    one that opens and waits, or trickles a header a byte at a time (a half-open or a
    slow-loris connection), would hold its socket for ever. Here a connection must
    complete each request head within ``HEAD_TIMEOUT_S`` of opening or of its last
    response, and a request body may not pause longer than that between two reads;
    TCP keep-alive finds a peer that vanished while a response (an event stream) is
    still going. A body that stops closes the connection: the route sees its client
    gone. The edge (``service/api/edge.py``) then need not time a body the server
    holds whole, which the scope says (:data:`~service.api.edge.SERVER_TIMED_BODY`).
    Mixed in before the protocol class, which provides ``loop``, ``transport``,
    ``cycle``, ``scope`` and the callbacks extended here.

    One timer per connection, not one per request: the protocol notes when the
    connection began to wait for the client (a head, or the next part of a body), or
    that it waits for nothing; the timer, when it fires, closes a connection that
    waited the whole deadline, else sets itself for what is left.
    """

    HEAD_TIMEOUT_S = 15.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    scope: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _keep_alive(sock)
        self._waiting_since: float | None = self.loop.time()
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.HEAD_TIMEOUT_S, self._check_deadline
        )

    def data_received(self, data: bytes) -> None:
        if self._waiting_since is not None and self._request_in_progress():
            self._waiting_since = self.loop.time()  # more of a body: its pause ends
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self._request_in_progress():
            self._waiting_since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _request_in_progress(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _request_parsed(self) -> None:
        """After the parser's callbacks: a head complete starts the wait for its body,
        if any; a body complete ends it."""
        if not self._request_in_progress():
            return
        self.scope[SERVER_TIMED_BODY] = HIGH_WATER_LIMIT
        self._waiting_since = self.loop.time() if self.cycle.more_body else None

    def _check_deadline(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        since = self._waiting_since
        left = (
            self.HEAD_TIMEOUT_S if since is None else since + self.HEAD_TIMEOUT_S - self.loop.time()
        )
        if left <= 0:
            self._close_idle()
            return
        self._head_timer = self.loop.call_later(left, self._check_deadline)

    def _close_idle(self) -> None:
        self.transport.close()


class GuardedH11Protocol(_HeadDeadline, H11Protocol):
    """uvicorn's h11 protocol (pure Python) with the head and body deadlines."""

    def handle_events(self) -> None:
        super().handle_events()
        self._request_parsed()

    def _close_idle(self) -> None:
        if self.conn.our_state in {h11.IDLE, h11.DONE}:  # between requests
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


class GuardedHttpToolsProtocol(_HeadDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol (the C parser of Node.js's llhttp) with the head
    and body deadlines: the one the service serves with."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._request_parsed()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._request_parsed()


def _keep_alive(sock: Any) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle, interval, count = _KEEPALIVE
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
    except OSError as err:  # not a TCP socket (a Unix socket): nothing to probe
        log.debug("no TCP keep-alive on this connection: %s", err)


def guarded_protocol(
    head_timeout_s: float, *, parser: str = "httptools"
) -> type[GuardedHttpToolsProtocol] | type[GuardedH11Protocol]:
    """The protocol class to serve with: ``httptools`` (the default: about 1.4 times
    the requests per second of ``h11`` here, ``bench/bench_proportion_http.py``) or
    ``h11``, with a head deadline of ``head_timeout_s``."""
    base = GuardedHttpToolsProtocol if parser == "httptools" else GuardedH11Protocol
    return type(base.__name__, (base,), {"HEAD_TIMEOUT_S": float(head_timeout_s)})


class ServiceServer(uvicorn.Server):
    """uvicorn's server whose shutdown first quiesces the runtime."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime, grace_s: float) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.grace_s = grace_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_s
        watchdog = loop.call_later(self.grace_s, _overran, self.grace_s)
        for server in getattr(self, "servers", ()):
            server.close()  # no new connection from here on
        log.warning("shutting down: pausing the plant first (grace %g s)", self.grace_s)
        quiesce_s = max(1.0, self.grace_s - _DRAIN_S - _STOP_S)
        try:
            async with asyncio.timeout(quiesce_s):
                await self.runtime.quiesce()
        except TimeoutError:
            log.error("the plant was not confirmed stopped within %g s; going on", quiesce_s)
        # uvicorn takes whole seconds; at least one for the connections to drain.
        drain_s = max(1.0, min(_DRAIN_S, deadline - loop.time() - _STOP_S))
        self.config.timeout_graceful_shutdown = int(drain_s)
        try:
            await super().shutdown(sockets)
        finally:
            watchdog.cancel()
        # uvicorn raises the signal that stopped it again once it has shut down, so
        # the process would die of it (-15 to its parent, 143 in a shell) after a
        # clean stop. The plant is safe and the records stored: exit 0, as the
        # deployment files and `python -m service --help` expect.
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def _overran(grace_s: float) -> None:
    log.error("shutdown took longer than its grace of %g s: exiting now", grace_s)
    logging.shutdown()
    os._exit(EXIT_OVERRAN_GRACE)


async def serve(settings: Settings, host: str, port: int) -> int:
    """Run the service until a signal stops it; the exit status (3: it could not
    start, the reason logged in one line)."""
    app = create_app(settings, freeze_heap=True)
    runtime: Runtime = app.state.runtime
    started = time.monotonic()
    try:
        await runtime.start()
    except Exception as err:  # the process boundary: say why in one line, exit
        log.error(
            "cannot start: %s", getattr(err, "detail", None) or f"{type(err).__name__}: {err}"
        )
        log.debug("start failure", exc_info=err)
        await runtime.stop()
        return 3
    log.info("started in %.1f s", time.monotonic() - started)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the service's own handlers and format
        access_log=False,  # the service's own, as BACKFILL_ACCESS_LOG says (the edge)
        http=guarded_protocol(settings.api.idle_timeout_s),
    )
    await ServiceServer(config, runtime, settings.shutdown_grace_s).serve()
    return 0
