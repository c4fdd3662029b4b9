"""Measurement history: storage on both backends, the recorder's buffering through a
store outage, and the trend endpoint."""

from __future__ import annotations

import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.errors import InvalidInput, StoreUnavailable
from service.operations.recorder import HistoryRecorder
from service.settings import HistorySettings
from service.store.db import create_engine, migrate
from service.store.history import HISTORY_TAGS, HistoryStore
from tests.conftest import auth
from tests.e2e.helpers import eventually
from tests.integration.conftest import running_app

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a whole minute


@pytest.fixture
async def history(database_url: str) -> AsyncIterator[HistoryStore]:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        yield HistoryStore(engine)
    finally:
        await engine.dispose()


def _row(ts_ms: int, density: float | None) -> dict[str, float | int | None]:
    row: dict[str, float | int | None] = dict.fromkeys(HISTORY_TAGS)
    row["ts_ms"] = ts_ms
    row["paste_density_pv"] = density
    return row


async def test_raw_and_minute_queries_agree(history: HistoryStore) -> None:
    # Ten minutes at one sample a second: density = 1800 + second-of-minute.
    clock = iter(range(T0, T0 + 600_000, 1000))
    settings = HistorySettings(buffer_limit_rows=1000)
    values: list[float] = []

    def sample() -> dict[str, float | None]:
        v = 1800.0 + len(values) % 60
        values.append(v)
        return {"paste_density_pv": v, "pump_pressure_pv": None}

    recorder = HistoryRecorder(
        store=history, sample=sample, settings=settings, wall_ms=lambda: next(clock)
    )
    for _ in range(600):
        recorder.record()
    await recorder.stop()  # closes the last minute and flushes

    minute = await history.query(["paste_density_pv"], T0, T0 + 600_000, 60)
    assert minute.source == "minute"
    assert len(minute.t_ms) == 10
    assert minute.series["paste_density_pv"]["avg"] == [pytest.approx(1829.5)] * 10
    assert minute.series["paste_density_pv"]["min"] == [1800.0] * 10
    assert minute.series["paste_density_pv"]["max"] == [1859.0] * 10

    raw = await history.query(["paste_density_pv", "pump_pressure_pv"], T0, T0 + 60_000, 10)
    assert raw.source == "raw"
    assert raw.t_ms == [T0 + i * 10_000 for i in range(6)]
    assert raw.series["paste_density_pv"]["avg"][0] == pytest.approx(1804.5)
    assert raw.series["pump_pressure_pv"]["avg"] == [None] * 6  # bad values stay gaps

    await history.prune(raw_before_ms=T0 + 300_000, minute_before_ms=T0)
    after = await history.query(["paste_density_pv"], T0, T0 + 600_000, 60 + 0 * 1)
    assert len(after.t_ms) == 10  # minutes kept longer than raw
    raw_after = await history.query(["paste_density_pv"], T0, T0 + 600_000, 30)
    assert raw_after.t_ms[0] == T0 + 300_000


async def test_query_refuses_unknown_tags_and_too_many_points(history: HistoryStore) -> None:
    with pytest.raises(InvalidInput) as err:
        await history.query(["paste_density_pv", "DROP TABLE"], T0, T0 + 1000, 1)
    assert err.value.field == "tags"
    with pytest.raises(InvalidInput) as err:
        await history.query(["paste_density_pv"], T0, T0 + 86_400_000 * 7, 1)
    assert err.value.field == "step"


async def test_recorder_buffers_through_a_store_outage(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'h.db'}")
    await migrate(engine)
    await engine.dispose()
    store = HistoryStore(engine)
    clock = iter(range(T0, T0 + 10_000_000, 1000))
    recorder = HistoryRecorder(
        store=store,
        sample=lambda: {"paste_density_pv": 1850.0},
        settings=HistorySettings(buffer_limit_rows=100),
        wall_ms=lambda: next(clock),
    )
    saved = tmp_path / "saved"
    shutil.move(folder, saved)  # the database disappears: every write fails
    for _ in range(30):
        recorder.record()
    with pytest.raises(StoreUnavailable):
        await recorder.flush()
    for _ in range(90):
        recorder.record()
    assert recorder.dropped_rows == 20  # bounded: the oldest went first
    shutil.move(saved, folder)  # the store is back
    await recorder.flush()
    trend = await store.query(["paste_density_pv"], T0, T0 + 200_000, 1)
    assert len(trend.t_ms) == 100
    assert trend.t_ms[0] == T0 + 20_000
    await engine.dispose()


async def test_history_endpoint_serves_recorded_trends(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"
    async with running_app(url) as (app, client):
        runtime = app.state.runtime

        async def points() -> int:
            r = await client.get(
                "/api/v1/plant/history?tags=paste_density_pv,tailings_density_pv&step=1",
                headers=auth("hmi"),
            )
            assert r.status_code == 200, r.text
            return len(r.json()["t"])

        # The recorder flushes every few seconds; wait for two samples to be stored.
        async def two_points() -> bool:
            return await points() >= 2

        await eventually(two_points, within_s=20, what="two stored samples")
        r = await client.get(
            "/api/v1/plant/history?tags=tailings_density_pv&step=1", headers=auth("hmi")
        )
        body = r.json()
        assert body["source"] == "raw"
        assert set(body) >= {"from", "to", "step_s", "t", "series"}
        avg = body["series"]["tailings_density_pv"]["avg"]
        assert len(avg) >= 2 and all(v is not None and math.isfinite(v) for v in avg)
        assert runtime.history is not None

        bad = await client.get("/api/v1/plant/history?tags=nope", headers=auth("hmi"))
        assert bad.status_code == 422
        assert bad.json()["field"] == "tags"
        naive = await client.get(
            "/api/v1/plant/history?tags=paste_density_pv&from=2026-01-01T00:00:00",
            headers=auth("hmi"),
        )
        assert naive.status_code == 422
        assert naive.json()["field"] == "from"
        assert (await client.get("/api/v1/plant/history?tags=paste_density_pv")).status_code == 401
