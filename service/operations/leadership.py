"""One writer among instances: a lease in PostgreSQL with a fencing epoch.

Two instances may run against one PostgreSQL and one PLC; only the holder of the
lease writes setpoints and the heartbeat. The holder renews the lease every
``renew_interval_s``; a standby tries to take it every second and succeeds once it
has expired (``lease_ttl_s`` after the last renewal: a writer killed with
``kill -9`` is replaced within about that time). Every take-over increments the
epoch, which the PLC link carries in ``setpoint_seq`` so that a PLC can refuse a
late write from a deposed writer.

The database's clock decides expiry (no clock skew between hosts). A writer that
cannot renew for a whole lease period steps down by itself: it cannot know whether
another instance took over meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

_ACQUIRE = text(
    "UPDATE writer_lease SET holder = :me, epoch = epoch + 1, "
    "expires_at = now() + make_interval(secs => :ttl) "
    "WHERE id = 1 AND expires_at < now() RETURNING epoch"
)
_RENEW = text(
    "UPDATE writer_lease SET expires_at = now() + make_interval(secs => :ttl) "
    "WHERE id = 1 AND holder = :me AND epoch = :epoch RETURNING epoch"
)
_RELEASE = text(
    "UPDATE writer_lease SET expires_at = now() - interval '1 second' "
    "WHERE id = 1 AND holder = :me AND epoch = :epoch"
)


def default_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PostgresLease:
    def __init__(self, engine: AsyncEngine, instance_id: str, ttl_s: float) -> None:
        self._engine = engine
        self.instance_id = instance_id
        self._ttl = ttl_s

    async def _one(self, stmt: object, **params: object) -> int | None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt, params)).first()  # type: ignore[call-overload]
        return None if row is None else int(row[0])

    async def try_acquire(self) -> int | None:
        return await self._one(_ACQUIRE, me=self.instance_id, ttl=self._ttl)

    async def renew(self, epoch: int) -> bool:
        return await self._one(_RENEW, me=self.instance_id, epoch=epoch, ttl=self._ttl) is not None

    async def release(self, epoch: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_RELEASE, {"me": self.instance_id, "epoch": epoch})


class Leadership:
    """Runs the election; calls ``on_elected(epoch)`` and ``on_demoted()``."""

    def __init__(
        self,
        lease: PostgresLease,
        *,
        on_elected: Callable[[int], Awaitable[None]],
        on_demoted: Callable[[], Awaitable[None]],
        ttl_s: float,
        renew_interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lease = lease
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._ttl = ttl_s
        self._renew_s = renew_interval_s
        self._monotonic = monotonic
        self._task: asyncio.Task[None] | None = None
        self.epoch: int | None = None
        self._valid_until = 0.0
        self._failing = False

    @property
    def is_writer(self) -> bool:
        return self.epoch is not None

    def may_write(self) -> bool:
        """Whether this instance still holds the lease by its own clock, with a margin
        (a quarter of the lease, at most 1 s) for a write already on its way. The PLC
        link asks this right before every write: a writer that was frozen past its
        lease (SIGSTOP, a paused VM, a long GC) and wakes up sends nothing, whichever
        of its tasks runs first. Counted from before the renewal request, so it never
        outlasts the expiry the database set."""
        margin = min(1.0, self._ttl / 4)
        return self.epoch is not None and self._monotonic() < self._valid_until - margin

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leadership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.epoch is not None:
            epoch = self.epoch
            await self._demote("stopping")
            try:
                # Hand over at once instead of letting the standby wait for expiry.
                await self._lease.release(epoch)
            except (SQLAlchemyError, OSError) as err:
                log.warning("could not release the writer lease: %s", type(err).__name__)

    async def _demote(self, why: str) -> None:
        log.warning("no longer the writer (epoch %s): %s", self.epoch, why)
        self.epoch = None
        await self._on_demoted()

    async def step(self) -> None:
        """One election step (the task calls it; tests may too)."""
        now = self._monotonic()
        try:
            if self.epoch is None:
                epoch = await self._lease.try_acquire()
                if epoch is not None:
                    self.epoch = epoch
                    self._valid_until = now + self._ttl
                    log.warning("elected the writer (epoch %d)", epoch)
                    await self._on_elected(epoch)
            elif await self._lease.renew(self.epoch):
                # Counted from before the request: the database may have taken a while.
                self._valid_until = now + self._ttl
            else:
                await self._demote("another instance holds the lease")
            if self._failing:
                log.warning("writer lease store reachable again")
                self._failing = False
        except (SQLAlchemyError, OSError) as err:
            if not self._failing:
                log.warning("writer lease store unreachable: %s", type(err).__name__)
                self._failing = True
        if self.epoch is not None and self._monotonic() >= self._valid_until:
            await self._demote("the lease could not be renewed in time")

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a loop boundary: record it, keep electing
                log.exception("leadership step failed")
            await asyncio.sleep(self._renew_s if self.epoch is not None else 1.0)
