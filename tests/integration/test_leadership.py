"""The writer lease on a real PostgreSQL: one writer, take-over after expiry with a
higher epoch, the deposed writer steps down, a clean stop hands over at once."""

from __future__ import annotations

import asyncio
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
