"""Server-sent event streams that end on time: when the client goes away, when it stops
taking data, and when the service shuts down; and that are counted per caller.

A stream holds a connection and a task for as long as it lasts, so each caller (API
key) may open only ``per_key`` of them and the service ``total`` in all (300 streams of
one hmi key once doubled the control loop's overruns). A client that takes no data
for ``send_timeout_s`` (a half-open connection, a frozen HMI) loses its stream; so
does every client at shutdown, so that the process can exit within its grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response

from service.api.slots import CallerSlots
from service.errors import TooManyStreams

log = logging.getLogger(__name__)


class StreamSlots(CallerSlots):
    """Open event streams per caller and in all."""

    def __init__(self, per_key: int, total: int) -> None:
        super().__init__(
            per_key,
            total,
            what="event streams",
            error=TooManyStreams,
            settings=("BACKFILL_API__MAX_STREAMS_PER_KEY", "BACKFILL_API__MAX_STREAMS"),
        )


class EventStream(Response):
    """A ``text/event-stream`` response from an async iterator of ready-made event
    bytes; ``on_close`` runs once however the stream ends."""

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[bytes],
        *,
        closing: asyncio.Event,
        send_timeout_s: float,
        on_close: Callable[[], None],
    ) -> None:
        # Not Response.__init__: it would declare an empty body's Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = events
        self._closing = closing
        self._send_timeout_s = send_timeout_s
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        disconnected = asyncio.create_task(_disconnect(receive))
        closing = asyncio.create_task(self._closing.wait())
        events = aiter(self._events)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while True:
                following = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait(
                    {following, disconnected, closing}, return_when=asyncio.FIRST_COMPLETED
                )
                if following not in done:
                    following.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await following
                    break
                try:
                    chunk = following.result()
                except StopAsyncIteration:
                    break
                async with asyncio.timeout(self._send_timeout_s):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not disconnected.done():
                async with asyncio.timeout(self._send_timeout_s):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            log.info("an event stream's client took no data for %g s: closed", self._send_timeout_s)
        finally:
            for task in (disconnected, closing):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._events.aclose()  # type: ignore[attr-defined]
            self._on_close()


async def _disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
