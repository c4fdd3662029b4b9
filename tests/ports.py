"""Free TCP ports for the servers the tests start, a block of its own for each
pytest-xdist worker.

A port the kernel hands out (bind to port 0, then close) is free only until someone
takes it, and while a test starts its server someone else might: a server of another
worker, or any outgoing connection (the PostgreSQL pool, an HTTP or OPC UA client),
whose source port the kernel takes from the same ephemeral range. So the tests take
their ports from below that range (Linux: ``/proc/sys/net/ipv4/ip_local_port_range``,
32768-60999 by default), each worker (``PYTEST_XDIST_WORKER`` gw0, gw1, ...) from a
block of its own, handed out in turn from a random place in the block and checked free
by binding. Two test sessions on one machine at once may still meet in a block; the
random start makes that unlikely.
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

LOW, HIGH = 12_000, 32_000
BLOCK = 1_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def worker_index() -> int:
    """This pytest-xdist worker's number (0 when the tests run in one process)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _block() -> range:
    high = min(HIGH, _ephemeral_low())
    blocks = max(1, (high - LOW) // BLOCK)
    start = LOW + (worker_index() % blocks) * BLOCK
    return range(start, start + BLOCK)


def _cycle() -> Iterator[int]:
    block = _block()
    offset = random.randrange(len(block))
    return itertools.cycle([*block[offset:], *block[:offset]])


_PORTS = _cycle()


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port of this worker's block that nothing listens on or holds now."""
    for _ in range(BLOCK):
        port = next(_PORTS)
        if _bindable(host, port):
            return port
    raise RuntimeError(f"no free port in {_block()} on {host}")
