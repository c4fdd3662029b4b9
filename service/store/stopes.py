"""Stopes, their fill plans and the progress of the plan in force.

A stope's definition (geometry, barricade) is written once; plans are immutable
versions per stope; the progress (current stage, placed volume, holds, releases, switch
points) is the one mutable row, written by compare-and-set on its revision so that two
writers (the plan runner, an engineer's release) can never lose each other's change.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.errors import Conflict, NotFound
from service.store import tables as t
from service.store.audit import append_entry
from service.store.records import PlanRecord, ProgressRecord, StopeRecord
from service.store.repository import StoreBase


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stope(row: RowMapping) -> StopeRecord:
    return StopeRecord(
        id=row["id"],
        name=row["name"],
        created_at=_utc(row["created_at"]),
        created_by=row["created_by"],
        definition=row["definition"],
    )


def _plan(row: RowMapping) -> PlanRecord:
    return PlanRecord(
        id=row["id"],
        stope_id=row["stope_id"],
        version=row["version"],
        created_at=_utc(row["created_at"]),
        created_by=row["created_by"],
        plan=row["plan"],
    )


def _progress(row: RowMapping) -> ProgressRecord:
    return ProgressRecord(
        stope_id=row["stope_id"],
        plan_id=row["plan_id"],
        progress=row["progress"],
        revision=row["revision"],
        updated_at=_utc(row["updated_at"]),
    )


class StopeStore(StoreBase):
    async def add_stope(
        self, *, name: str, definition: dict[str, Any], created_by: str
    ) -> StopeRecord:
        values = {
            "id": str(uuid.uuid4()),
            "name": name,
            "created_at": datetime.now(UTC),
            "created_by": created_by,
            "definition": definition,
        }

        async def work(conn: AsyncConnection) -> None:
            taken = await conn.scalar(select(t.stopes.c.id).where(t.stopes.c.name == name))
            if taken is not None:
                raise Conflict(
                    f"a stope named {name!r} exists (names are unique): give this one another "
                    "name, or use that one",
                    code="stope_exists",
                )
            await conn.execute(t.stopes.insert().values(**values))

        await self._write(work, what=f"stope {name!r}")
        return _stope(values)  # type: ignore[arg-type]

    async def get_stope(self, stope_id: str) -> StopeRecord:
        return _stope(await self._one(t.stopes, stope_id, "stope"))

    async def stope_named(self, name: str) -> StopeRecord | None:
        rows = await self._all(select(t.stopes).where(t.stopes.c.name == name))
        return _stope(rows[0]) if rows else None

    async def resolve(self, ref: str) -> StopeRecord:
        """A stope by its id, or else by its name (a pour's ``stope_id`` is the name):
        NotFound (``stope_not_found``) naming both."""
        rows = await self._all(
            select(t.stopes).where((t.stopes.c.id == ref) | (t.stopes.c.name == ref))
        )
        by_id = [r for r in rows if r["id"] == ref]
        if by_id or rows:
            return _stope((by_id or rows)[0])
        raise NotFound(f"no stope with id or name {ref!r}", code="stope_not_found")

    async def list_stopes(self) -> list[StopeRecord]:
        return [_stope(r) for r in await self._all(select(t.stopes).order_by(t.stopes.c.name))]

    async def add_plan(
        self,
        *,
        stope_id: str,
        plan: dict[str, Any],
        progress: dict[str, Any],
        expect_revision: int | None,
        created_by: str,
    ) -> tuple[PlanRecord, ProgressRecord]:
        """The stope's next plan version and the progress carried over to it, in one
        transaction (``expect_revision`` None: the stope has no progress yet)."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "stope_id": stope_id,
            "created_at": now,
            "created_by": created_by,
            "plan": plan,
        }

        async def work(conn: AsyncConnection) -> ProgressRecord:
            current = await conn.scalar(
                select(func.max(t.fill_plans.c.version)).where(t.fill_plans.c.stope_id == stope_id)
            )
            values["version"] = int(current or 0) + 1
            values["plan"] = {**plan, "version": values["version"]}
            await conn.execute(t.fill_plans.insert().values(**values))
            carried = {**progress, "plan_version": values["version"]}
            return await self._put_progress(conn, stope_id, values["id"], carried, expect_revision)

        saved = await self._write(work, what=f"plan of stope {stope_id}")
        return _plan(values), saved  # type: ignore[arg-type]

    async def get_plan(self, plan_id: str) -> PlanRecord:
        return _plan(await self._one(t.fill_plans, plan_id, "plan"))

    async def plans(self, stope_id: str) -> list[PlanRecord]:
        q = (
            select(t.fill_plans)
            .where(t.fill_plans.c.stope_id == stope_id)
            .order_by(t.fill_plans.c.version)
        )
        return [_plan(r) for r in await self._all(q)]

    async def get_progress(self, stope_id: str) -> ProgressRecord | None:
        q = select(t.plan_progress).where(t.plan_progress.c.stope_id == stope_id)
        rows = await self._all(q)
        return _progress(rows[0]) if rows else None

    async def save_progress(
        self,
        stope_id: str,
        plan_id: str,
        progress: dict[str, Any],
        expect_revision: int,
        *,
        audit: dict[str, Any] | None = None,
    ) -> ProgressRecord:
        """Write the progress if its revision is still ``expect_revision`` (a Conflict
        otherwise: another writer moved it; read it again), with ``audit`` (an engineer's
        act on the plan) in the same transaction: both are stored, or neither."""

        async def work(conn: AsyncConnection) -> ProgressRecord:
            saved = await self._put_progress(conn, stope_id, plan_id, progress, expect_revision)
            if audit is not None:
                await append_entry(conn, **audit)
            return saved

        return await self._write(work, what=f"progress of stope {stope_id}")

    @staticmethod
    async def claim_stage(
        conn: AsyncConnection,
        *,
        stope_id: str,
        stope_name: str,
        expect_revision: int,
        handing_over: str | None = None,
    ) -> None:
        """Inside the transaction that adds a stage's pour: take the stope's progress row
        (its revision moves on, so of two callers only one commits; the other reads it
        again and finds the first one's pour) and refuse while the stope has an open
        pour (``handing_over``: the pour a continuous plan's next stage replaces)."""
        moved = await conn.execute(
            t.plan_progress.update()
            .where(t.plan_progress.c.stope_id == stope_id)
            .where(t.plan_progress.c.revision == expect_revision)
            .values(revision=expect_revision + 1, updated_at=datetime.now(UTC))
        )
        if moved.rowcount == 0:
            raise Conflict(
                f"the plan progress of stope {stope_id} moved on", code="plan_progress_conflict"
            )
        q = (
            select(t.pours.c.id, t.pours.c.state)
            .where(t.pours.c.stope_id == stope_name)
            .where(t.pours.c.state.in_(("planned", "running", "paused")))
        )
        for row in (await conn.execute(q)).mappings():
            if row["id"] != handing_over:
                raise Conflict(
                    f"stope {stope_name!r} has pour {row['id']} ({row['state']}): one pour "
                    "of a stope at a time; start or resume that one, or stop it "
                    f"(POST /api/v1/pours/{row['id']}/stop) before a new one",
                    code="stope_pour_open",
                    pour_id=row["id"],
                )

    @staticmethod
    async def _put_progress(
        conn: AsyncConnection,
        stope_id: str,
        plan_id: str,
        progress: dict[str, Any],
        expect_revision: int | None,
    ) -> ProgressRecord:
        now = datetime.now(UTC)
        if expect_revision is None:
            values = {
                "stope_id": stope_id,
                "plan_id": plan_id,
                "progress": progress,
                "revision": 1,
                "updated_at": now,
            }
            await conn.execute(t.plan_progress.insert().values(**values))
            return _progress(values)  # type: ignore[arg-type]
        result = await conn.execute(
            t.plan_progress.update()
            .where(t.plan_progress.c.stope_id == stope_id)
            .where(t.plan_progress.c.revision == expect_revision)
            .values(
                plan_id=plan_id, progress=progress, revision=expect_revision + 1, updated_at=now
            )
        )
        if result.rowcount == 0:
            exists = await conn.scalar(
                select(t.plan_progress.c.revision).where(t.plan_progress.c.stope_id == stope_id)
            )
            if exists is None:
                raise NotFound(f"stope {stope_id} has no plan", code="plan_not_found")
            raise Conflict(
                f"the plan progress of stope {stope_id} changed meanwhile; try again",
                code="plan_progress_conflict",
            )
        return ProgressRecord(stope_id, plan_id, progress, expect_revision + 1, now)
