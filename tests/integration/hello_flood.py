"""TCP connections that only say an OPC UA Hello and then sit: a flood without a key.

``python hello_flood.py HOST PORT RATE HOLD SECONDS [SOURCE]``: opens up to RATE
connections a second (from the local address SOURCE when given, e.g. 127.0.0.2: another
peer on the loopback) while fewer than HOLD are open, each sending one valid Hello and nothing more;
one the server closes is opened again at the next step. Prints one JSON line a second
(``opened``, ``open``, ``closed_by_server``, ``refused``) and stops by itself after
SECONDS. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import time


def hello(url: str) -> bytes:
    """An OPC UA Hello (Part 6 §7.1.2.3): version 0, 64 KiB buffers, no size limits."""
    raw = url.encode()
    body = struct.pack("<IIIII", 0, 65536, 65536, 0, 0) + struct.pack("<i", len(raw)) + raw
    return b"HELF" + struct.pack("<I", 8 + len(body)) + body


async def main(
    host: str, port: int, rate: float, hold: int, seconds: float, source: str | None = None
) -> None:
    message = hello(f"opc.tcp://{host}:{port}/backfill/")
    counts = {"opened": 0, "open": 0, "closed_by_server": 0, "refused": 0}
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(source, 0) if source else None
            )
        except OSError:
            counts["refused"] += 1
            return
        counts["opened"] += 1
        counts["open"] += 1
        try:
            writer.write(message)
            await writer.drain()
            while await reader.read(65536):  # the Acknowledge; then silence
                pass
            counts["closed_by_server"] += 1
        except OSError:
            counts["closed_by_server"] += 1
        finally:
            counts["open"] -= 1
            writer.close()

    step = 0.01
    end = time.monotonic() + seconds
    report = time.monotonic() + 1.0
    credit = 0.0
    while time.monotonic() < end:
        credit = min(credit + rate * step, rate)
        while credit >= 1 and len(tasks) < hold:
            credit -= 1
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if time.monotonic() >= report:
            report += 1.0
            print(json.dumps(counts), flush=True)
        await asyncio.sleep(step)
    for task in list(tasks):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    host, port, rate, hold, seconds = sys.argv[1:6]
    source = sys.argv[6] if len(sys.argv) > 6 else None
    asyncio.run(main(host, int(port), float(rate), int(hold), float(seconds), source))
