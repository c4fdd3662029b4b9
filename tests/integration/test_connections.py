"""Connections against the real server (uvicorn, as ``python -m service`` runs it): idle,
half-open and trickling connections are closed; event streams are counted per key and
end when the service shuts down."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.runtime import Runtime
from service.server import ServiceServer, _keep_alive, guarded_protocol
from service.settings import Settings
from service.store.history import HISTORY_TAGS
from tests.conftest import PROPORTION_EXAMPLE, api_keys_setting, auth
from tests.e2e.helpers import eventually
from tests.e2e.procs import free_port

IDLE_S = 1.0


async def _true(value: bool) -> bool:
    return value


@asynccontextmanager
async def serving(tmp_path: Path, parser: str = "httptools") -> AsyncIterator[tuple[str, Runtime]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        api_keys=api_keys_setting(),
        api={
            "idle_timeout_s": IDLE_S,
            "max_streams_per_key": 2,
            "max_streams": 3,
            "max_exports_per_key": 1,
            "max_exports": 2,
        },
    )
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    await runtime.start()
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=guarded_protocol(IDLE_S, parser=parser),
    )
    server = ServiceServer(config, runtime, grace_s=10.0)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _true(server.started), within_s=30, what="the server")
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def _closed_after(reader: asyncio.StreamReader, within_s: float) -> float:
    """Seconds until the server closes the connection (reads until EOF)."""
    started = time.monotonic()
    async with asyncio.timeout(within_s):
        while await reader.read(1024):
            pass
    return time.monotonic() - started


@pytest.mark.parametrize("parser", ["httptools", "h11"])
async def test_idle_and_trickling_connections_are_closed(tmp_path: Path, parser: str) -> None:
    async with serving(tmp_path, parser) as (url, _runtime):
        port = int(url.rsplit(":", 1)[1])
        # A connection that never sends a request.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed_after(reader, 5.0) < IDLE_S + 1.0
        writer.close()
        # A request head trickled a byte at a time: every byte would re-arm a keep-alive
        # timer; the head's own deadline still closes it.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200

        async def trickle() -> None:
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        assert await _closed_after(reader, 5.0) < IDLE_S + 1.0
        sender.cancel()
        writer.close()
        # After a response on a kept-alive connection the next head has its own
        # deadline, counted from that response: a request begun and left unfinished.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no end of head
        await writer.drain()
        assert await _closed_after(reader, 5.0) < IDLE_S + 1.0
        writer.close()
        # A well-behaved client keeps its connection for request after request.
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(3):
                assert (await client.get("/healthz")).status_code == 200
                await asyncio.sleep(IDLE_S / 4)


PROPORTION_BODY = json.dumps(PROPORTION_EXAMPLE).encode()


def _post_head(length: int) -> bytes:
    key = auth("hmi")["Authorization"].encode()
    return (
        b"POST /api/v1/recipes/proportion HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nAuthorization: " + key + b"\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n\r\n"
    )


@pytest.mark.parametrize("parser", ["httptools", "h11"])
async def test_a_body_that_stops_is_cut_one_that_pauses_is_served(
    tmp_path: Path, parser: str
) -> None:
    """The server times a request body itself (the edge leaves such bodies to it): one
    that stops closes its connection within the idle timeout; one sent in parts, each
    pause shorter than that, is answered even though the whole takes longer."""
    async with serving(tmp_path, parser) as (url, _runtime):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post_head(len(PROPORTION_BODY)) + PROPORTION_BODY[:40])
        await writer.drain()
        started = time.monotonic()
        # Closed by the server's own timer, with no answer: not the edge's 408.
        unanswered = await asyncio.wait_for(reader.read(), 5.0)
        assert time.monotonic() - started < IDLE_S + 1.0
        assert unanswered == b""
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post_head(len(PROPORTION_BODY)))
        started = time.monotonic()
        for start in range(0, len(PROPORTION_BODY), 60):
            await asyncio.sleep(IDLE_S * 0.6)
            writer.write(PROPORTION_BODY[start : start + 60])
            await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        assert time.monotonic() - started > 2 * IDLE_S
        assert answer.startswith(b"HTTP/1.1 200"), answer
        writer.close()


def test_tcp_keepalive_is_set_on_a_connection() -> None:
    """A peer that vanished while a response (an event stream) goes on is found by TCP
    keep-alive probes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        _keep_alive(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


async def _open_stream(
    client: httpx.AsyncClient, role: str, ended: asyncio.Event, status: list[int]
) -> None:
    async with client.stream("GET", "/api/v1/plant/stream", headers=auth(role)) as stream:
        status.append(stream.status_code)
        if stream.status_code == 200:
            async for _chunk in stream.aiter_bytes():
                pass
    ended.set()


async def test_event_streams_are_limited_per_key_and_end_at_shutdown(tmp_path: Path) -> None:
    async with serving(tmp_path) as (url, runtime):
        timeout = httpx.Timeout(5.0, read=60.0)
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
            ended = [asyncio.Event() for _ in range(3)]
            status: list[int] = []
            tasks = [
                asyncio.create_task(_open_stream(client, "hmi", ended[0], status)),
                asyncio.create_task(_open_stream(client, "hmi", ended[1], status)),
            ]
            await eventually(lambda: _true(runtime.streams.count == 2), within_s=10, what="2")
            r = await client.get("/api/v1/plant/stream", headers=auth("hmi"))
            assert (r.status_code, r.json()["code"]) == (429, "too_many_streams")
            assert "per key" in r.json()["detail"]
            # Another key has its own streams, up to the service's limit of three.
            tasks.append(asyncio.create_task(_open_stream(client, "scada", ended[2], status)))
            await eventually(lambda: _true(runtime.streams.count == 3), within_s=10, what="3")
            r = await client.get("/api/v1/plant/stream", headers=auth("engineer"))
            assert (r.status_code, r.json()["code"]) == (429, "too_many_streams")
            metrics = (await client.get("/metrics")).text
            assert "backfill_event_streams_open 3.0" in metrics
            # Shutting down ends every stream (the client sees a clean end), frees the slots.
            await runtime.quiesce()
            async with asyncio.timeout(5):
                for event in ended:
                    await event.wait()
            await asyncio.gather(*tasks)
            assert status == [200, 200, 200]
            assert runtime.streams.count == 0


async def _hold_export(port: int, role: str) -> tuple[int, asyncio.StreamWriter]:
    """An export whose client reads its status line and then nothing (a stalled
    historian, its receive window kept small): its status and its connection, held
    open until the caller closes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = auth(role)["Authorization"]
    writer.write(
        b"GET /api/v1/export/history?format=csv HTTP/1.1\r\nHost: test\r\n"
        + f"Authorization: {key}\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    return int(status_line.split()[1]), writer


async def test_exports_are_limited_per_key_and_in_all_and_give_their_slot_back(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (url, runtime):
        # A day of history: megabytes of CSV, more than the connection buffers hold.
        now_ms = int(time.time() * 1000)
        rows = [
            {"ts_ms": now_ms - 1000 * (i + 60), **{tag: 1000.0 + i for tag in HISTORY_TAGS}}
            for i in range(80_000)
        ]
        await runtime.history.write(rows, [])
        port = int(url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            status, first = await _hold_export(port, "hmi")
            assert status == 200 and runtime.exports.count == 1
            # The same key again: refused at once, naming the limit, with Retry-After.
            r = await client.get("/api/v1/export/history", headers=auth("hmi"))
            assert (r.status_code, r.json()["code"]) == (429, "too_many_exports"), r.text
            assert "BACKFILL_API__MAX_EXPORTS_PER_KEY" in r.json()["detail"]
            assert int(r.headers["retry-after"]) > 0
            # Another key has its own, up to the service's limit of two.
            status, second = await _hold_export(port, "scada")
            assert status == 200 and runtime.exports.count == 2
            r = await client.get("/api/v1/export/audit", headers=auth("engineer"))
            assert (r.status_code, r.json()["code"]) == (429, "too_many_exports"), r.text
            assert "(BACKFILL_API__MAX_EXPORTS)" in r.json()["detail"]
            # A client that goes away gives its slot back; so does one that reads it all.
            for writer in (first, second):
                writer.close()
            await eventually(lambda: _true(runtime.exports.count == 0), within_s=10, what="0")
            r = await client.get(
                "/api/v1/export/history", params={"format": "parquet"}, headers=auth("hmi")
            )
            assert r.status_code == 200 and r.content[-4:] == b"PAR1"
            assert runtime.exports.count == 0


@pytest.mark.parametrize("verb", ["start", "pause", "resume", "stop"])
async def test_no_pour_action_once_shutting_down(tmp_path: Path, verb: str) -> None:
    async with serving(tmp_path) as (url, runtime):
        await runtime.quiesce()
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.post(f"/api/v1/pours/some-pour/{verb}", headers=auth("scada"))
            assert (r.status_code, r.json()["code"]) == (503, "service_stopping")
