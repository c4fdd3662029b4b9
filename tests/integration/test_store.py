"""The store against a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import inspect, text

from service.errors import Conflict, NotFound, StoreUnavailable
from service.store import tables
from service.store.db import create_engine, migrate
from service.store.records import PourRecord
from service.store.repository import Store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await migrate(engine)
    await migrate(engine)  # idempotent: a restart migrates again
    try:
        yield Store(engine)
    finally:
        await engine.dispose()


async def test_schema_matches_table_definitions(store: Store) -> None:
    def columns(sync_conn: object) -> dict[str, set[str]]:
        insp = inspect(sync_conn)
        return {
            name: {c["name"] for c in insp.get_columns(name)} for name in insp.get_table_names()
        }

    async with store.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for table in tables.metadata.sorted_tables:
        assert found[table.name] == {c.name for c in table.columns}, table.name


async def test_calibration_and_recipe_versions_are_immutable_and_numbered(store: Store) -> None:
    cal1 = await store.add_calibration(
        name="site", model={"a": 1}, rows=[{"x": 1}], created_by="engineer"
    )
    cal2 = await store.add_calibration(name="site", model={"a": 2}, rows=[], created_by="engineer")
    assert (cal1.version, cal2.version) == (1, 2)
    assert (await store.get_calibration(cal1.id)).model == {"a": 1}
    r1 = await store.add_recipe(
        name="S-101 fill",
        mix={"binder_pct": 4.5},
        design=None,
        calibration_id=cal1.id,
        approved_by="J. Engineer",
        created_by="engineer",
    )
    r2 = await store.add_recipe(
        name="S-101 fill",
        mix={"binder_pct": 5.0},
        design={"required_ucs_kpa": 300.0},
        calibration_id=cal2.id,
        approved_by=None,
        created_by="admin",
    )
    assert (r1.version, r2.version) == (1, 2)
    assert (await store.get_recipe(r1.id)).mix == {"binder_pct": 4.5}
    assert [r.version for r in await store.list_recipes("S-101 fill")] == [1, 2]
    assert r1.created_at.tzinfo is not None


async def test_concurrent_versions_never_collide(store: Store) -> None:
    made = await asyncio.gather(
        *(store.add_calibration(name="race", model={}, rows=[], created_by="e") for _ in range(6))
    )
    assert sorted(c.version for c in made) == [1, 2, 3, 4, 5, 6]


async def test_missing_resources_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound) as err:
        await store.get_recipe("nope")
    assert err.value.code == "recipe_not_found"


async def _planned_pour(store: Store, sample_ids: Sequence[str] = ()) -> PourRecord:
    recipe = await store.add_recipe(
        name="r", mix={}, design=None, calibration_id=None, approved_by=None, created_by="e"
    )
    return await store.add_pour(
        stope_id="S-1",
        recipe_id=recipe.id,
        target_volume_m3=50,
        paste_flow_m3_h=100,
        created_by="scada",
        totals={"poured_m3": 0.0},
        sample_ids=sample_ids,
    )


async def test_pour_state_compare_and_set(store: Store) -> None:
    pour = await _planned_pour(store)
    assert pour.state == "planned"
    moved = await store.update_pour(pour.id, expect_state="planned", state="running")
    assert moved.state == "running"
    with pytest.raises(Conflict) as err:
        await store.update_pour(pour.id, expect_state="planned", state="running")
    assert err.value.code == "pour_state_conflict"
    assert [p.id for p in await store.list_pours(state="running")] == [pour.id]
    assert await store.list_pours(state="planned") == []


async def test_two_callers_adding_samples_at_once_both_keep_theirs(store: Store) -> None:
    pour = await _planned_pour(store, sample_ids=["CYL-0", "CYL-0"])
    assert pour.sample_ids == ["CYL-0"]
    await asyncio.gather(*(store.add_pour_samples(pour.id, [f"CYL-{k}"]) for k in range(1, 9)))
    await store.add_pour_samples(pour.id, ["CYL-3"])  # again: kept once
    stored = (await store.get_pour(pour.id)).sample_ids
    assert stored[0] == "CYL-0"
    assert sorted(stored) == [f"CYL-{k}" for k in range(9)]
    with pytest.raises(NotFound):
        await store.add_pour_samples("no-such-pour", ["CYL-1"])


async def test_a_pour_and_its_inline_recipe_are_written_together_or_not_at_all(
    store: Store,
) -> None:
    def draft(binder_pct: float) -> dict[str, object]:
        return {
            "name": "inline S-9",
            "mix": {"binder_pct": binder_pct},
            "design": None,
            "calibration_id": None,
            "approved_by": None,
            "created_by": "scada",
        }

    async def pour_with(recipe: dict[str, object], totals: dict[str, object]) -> PourRecord:
        return await store.add_pour(
            stope_id="S-9",
            recipe_id=None,
            target_volume_m3=50,
            paste_flow_m3_h=100,
            created_by="scada",
            totals=totals,
            new_recipe=recipe,
        )

    made = await asyncio.gather(*(pour_with(draft(4.0 + k), {}) for k in range(4)))
    recipes = {r.id: r for r in await store.list_recipes("inline S-9")}
    assert sorted(r.version for r in recipes.values()) == [1, 2, 3, 4]
    for k, pour in enumerate(made):
        assert recipes[pour.recipe_id].mix == {"binder_pct": 4.0 + k}
        assert (await store.get_pour(pour.id)).recipe_id == pour.recipe_id

    # The pour row cannot be written (its totals are not JSON): its recipe is not kept.
    with pytest.raises(StoreUnavailable):
        await pour_with(draft(9.0), {"bad": object()})
    assert len(await store.list_recipes("inline S-9")) == 4
    assert len(await store.list_pours()) == 4

    # A reference to nothing is a conflict at once, not retried as a version race.
    bad = {**draft(5.0), "calibration_id": "no-such-calibration"}
    with pytest.raises(Conflict):
        await pour_with(bad, {})
    assert len(await store.list_recipes("inline S-9")) == 4


async def test_audit_chain_detects_tampering(store: Store) -> None:
    for i in range(5):
        await store.append_audit(
            kind="setpoints",
            reason="recipe",
            role="scada",
            new={"water_flow_sp": float(i)},
            old={"water_flow_sp": float(i - 1)} if i else None,
            seq=i + 1,
            acknowledged=True,
        )
    entries = await store.list_audit()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[1].prev_hash == entries[0].hash
    assert await store.verify_audit_chain() == (True, None)
    async with store.engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit SET new = :v WHERE id = :id"),
            {"v": '{"water_flow_sp": 99.0}', "id": entries[2].id},
        )
    intact, broken = await store.verify_audit_chain()
    assert not intact
    assert broken == entries[2].id


async def test_the_verify_command_reports_a_broken_chain(tmp_path: object) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder = Path(str(tmp_path))
    url = f"sqlite+aiosqlite:///{folder / 'audit.db'}"
    engine = create_engine(url)
    await migrate(engine)
    store = Store(engine)
    for i in range(3):
        await store.append_audit(kind="setpoints", reason="recipe", role="scada", new={"i": i})
    env = {**os.environ, "BACKFILL_DATABASE_URL": url}
    cmd = [sys.executable, "-m", "service.audit", "verify"]
    ok = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit WHERE id = 2"))
    await engine.dispose()
    bad = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "broken at entry 3" in bad.stdout
