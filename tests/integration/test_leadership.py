"""The writer lease on a real PostgreSQL: one writer, take-over after expiry with a
higher epoch, the deposed writer steps down, a clean stop hands over at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.operations.leadership import Leadership, PostgresLease
from service.store.db import create_engine, migrate


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(postgres_url)
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


class Instance:
    def __init__(self, engine: AsyncEngine, name: str, ttl_s: float) -> None:
        self.events: list[str] = []
        self.leadership = Leadership(
            PostgresLease(engine, name, ttl_s),
            on_elected=self._elected,
            on_demoted=self._demoted,
            ttl_s=ttl_s,
            renew_interval_s=ttl_s / 3,
        )

    async def _elected(self, epoch: int) -> None:
        self.events.append(f"elected {epoch}")

    async def _demoted(self) -> None:
        self.events.append("demoted")


async def test_one_writer_and_a_fenced_take_over(engine: AsyncEngine) -> None:
    a, b = Instance(engine, "a", 1.0), Instance(engine, "b", 1.0)
    await a.leadership.step()
    await b.leadership.step()
    assert a.leadership.epoch == 1 and b.leadership.epoch is None
    for _ in range(3):  # a renews; b keeps trying and fails
        await asyncio.sleep(0.3)
        await a.leadership.step()
        await b.leadership.step()
    assert a.leadership.is_writer and not b.leadership.is_writer

    # a stops renewing (frozen or killed): b takes over once the lease expired.
    await asyncio.sleep(1.2)
    await b.leadership.step()
    assert b.leadership.epoch == 2
    await a.leadership.step()  # a wakes up: its lease is gone
    assert a.events == ["elected 1", "demoted"]
    assert not a.leadership.is_writer

    # A clean stop releases the lease: a takes over without waiting for expiry.
    await b.leadership.stop()
    assert b.events == ["elected 2", "demoted"]
    await a.leadership.step()
    assert a.leadership.epoch == 3
    await a.leadership.stop()


async def test_a_writer_stops_writing_when_its_lease_runs_out_by_its_own_clock(
    engine: AsyncEngine,
) -> None:
    """A writer frozen past its lease (SIGSTOP, a paused VM) must not write when it
    wakes, even before its election step runs: ``may_write`` answers from the clock."""
    now = [time.monotonic()]
    ttl = 4.0
    leadership = Leadership(
        PostgresLease(engine, "frozen", ttl),
        on_elected=_nothing_epoch,
        on_demoted=_nothing,
        ttl_s=ttl,
        renew_interval_s=1.0,
        monotonic=lambda: now[0],
    )
    assert not leadership.may_write()  # a standby
    await leadership.step()
    assert leadership.epoch is not None and leadership.may_write()
    now[0] += ttl - 1.0 - 0.01  # just inside the lease less its 1 s margin
    assert leadership.may_write()
    now[0] += 0.02  # past it: still elected (no step ran), but it may not write
    assert leadership.is_writer and not leadership.may_write()
    await leadership.step()  # the database lease is still valid in real time: renewed
    assert leadership.may_write()
    await leadership.stop()
    assert not leadership.may_write()


async def _nothing_epoch(_epoch: int) -> None:
    return None


async def _nothing() -> None:
    return None
