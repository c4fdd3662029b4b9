"""The store: one SQLAlchemy adapter over SQLite or PostgreSQL.

Versioned resources (calibrations, recipes) are immutable: a new upload of the same
name is a new version. The audit log is append-only, and each entry carries the hash
of the previous one so that tampering is detectable (``verify_audit_chain``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, RowMapping, and_, func, inspect, or_, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.core import acts
from service.core.people import Actor
from service.errors import Conflict, NotFound, StoreUnavailable
from service.store import tables as t
from service.store.audit import (
    GENESIS_HASH,
    append_entry,
    audit_hash,
    audit_record,
    payload_of,
)
from service.store.db import for_writes, store_error
from service.store.records import (
    DEFAULT_TEST_AGES_DAYS,
    AuditRecord,
    CalibrationRecord,
    PourRecord,
    RecipeRecord,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_req(value: datetime) -> datetime:
    out = _utc(value)
    assert out is not None
    return out


def _now() -> datetime:
    return datetime.now(UTC)


def _unique_violation(err: IntegrityError) -> bool:
    """SQLite: "UNIQUE constraint failed: ..."; PostgreSQL: "duplicate key value
    violates unique constraint ..." (asyncpg's UniqueViolationError)."""
    text = str(err.orig).lower()
    return "unique" in text or "duplicate key" in text


def _as_row(values: Mapping[str, Any]) -> RowMapping:
    """The values just written, read as the row they became (no second round trip)."""
    return cast(RowMapping, values)


def _recipe_values(
    *,
    name: str,
    mix: dict[str, Any],
    design: dict[str, Any] | None,
    calibration_id: str | None,
    approved_by: str | None,
    created_by: str,
) -> dict[str, Any]:
    now = _now()
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "created_at": now,
        "created_by": created_by,
        "approved_by": approved_by,
        "approved_at": now if approved_by is not None else None,
        "calibration_id": calibration_id,
        "mix": mix,
        "design": design,
    }


def _calibration(row: RowMapping) -> CalibrationRecord:
    # A rheology calibration has no status: it is in force once stored.
    return CalibrationRecord(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        created_at=_utc_req(row["created_at"]),
        created_by=row["created_by"],
        example=bool(row["example"]),
        model=row["model"],
        rows=row["rows"],
        status=row.get("status") or "approved",
        approved_by=row.get("approved_by"),
        approved_at=_utc(row.get("approved_at")),
        proposed_from=row.get("proposed_from"),
        proposal=row.get("proposal"),
    )


def _sample_values(
    sample_ids: Sequence[str],
    *,
    pour_id: str,
    cast_at: datetime,
    placed_m3: float | None,
    test_ages_days: Sequence[float],
    created_by: str,
) -> list[dict[str, Any]]:
    return [
        {
            "id": sample_id,
            "pour_id": pour_id,
            "cast_at": cast_at,
            "placed_m3": placed_m3,
            "test_ages_days": [float(d) for d in test_ages_days],
            "source": "pour",
            "created_at": cast_at,
            "created_by": created_by,
        }
        for sample_id in sample_ids
    ]


async def _insert_samples(
    conn: AsyncConnection, pour_id: str, values: Sequence[dict[str, Any]]
) -> None:
    """Insert sample records of ``pour_id``; one already cast from this pour is kept as
    it is, one cast from another pour is a Conflict (``sample_exists``): sample ids are
    unique on the site, the lab knows a cylinder by its id alone."""
    if not values:
        return
    ids = [v["id"] for v in values]
    q = select(t.samples.c.id, t.samples.c.pour_id).where(t.samples.c.id.in_(ids))
    existing = {row.id: row.pour_id for row in (await conn.execute(q)).all()}
    for sample_id, owner in existing.items():
        if owner != pour_id:
            raise Conflict(
                f"sample {sample_id} was cast from pour {owner}: sample ids are unique",
                code="sample_exists",
                sample_id=sample_id,
                pour_id=owner,
            )
    new = [v for v in values if v["id"] not in existing]
    if new:
        await conn.execute(t.samples.insert(), new)


def _recipe(row: RowMapping) -> RecipeRecord:
    return RecipeRecord(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        created_at=_utc_req(row["created_at"]),
        created_by=row["created_by"],
        approved_by=row["approved_by"],
        calibration_id=row["calibration_id"],
        mix=row["mix"],
        design=row["design"],
        approved_at=_utc(row["approved_at"]),
    )


def _same_value(stored: Any, new: Any) -> bool:
    """Whether a column's stored value and a new one are the same (instants compared as
    instants, whatever their zone; JSON documents as documents)."""
    if isinstance(stored, datetime) or isinstance(new, datetime):
        return (
            isinstance(stored, datetime)
            and isinstance(new, datetime)
            and stored.tzinfo is not None
            and new.tzinfo is not None
            and stored == new
        )
    return bool(stored == new)


def _pour(row: RowMapping) -> PourRecord:
    return PourRecord(
        id=row["id"],
        stope_id=row["stope_id"],
        recipe_id=row["recipe_id"],
        state=row["state"],
        target_volume_m3=row["target_volume_m3"],
        paste_flow_m3_h=row["paste_flow_m3_h"],
        created_at=_utc_req(row["created_at"]),
        created_by=row["created_by"],
        started_at=_utc(row["started_at"]),
        ended_at=_utc(row["ended_at"]),
        updated_at=_utc_req(row["updated_at"]),
        totals=row["totals"],
        interruptions=row["interruptions"],
        sample_ids=row["sample_ids"],
        checkpoint_seq=row["checkpoint_seq"],
        plan_id=row.get("plan_id"),
        stage=row.get("stage"),
        correction=row.get("correction"),
    )


class StoreBase:
    """What every store of the service shares: its engine, and reads and transactions
    that turn database errors into ``StoreUnavailable`` (and retry a lost race)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writes = for_writes(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def _one(self, table: Any, key: str, what: str) -> RowMapping:
        rows = await self._all(select(table).where(table.c.id == key))
        if not rows:
            raise NotFound(f"no {what} with id {key}", code=f"{what}_not_found")
        return rows[0]

    async def _all(self, query: Any) -> list[RowMapping]:
        try:
            async with self._engine.connect() as conn:
                result = await conn.execute(query)
                return list(result.mappings().all())
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable("could not read", cause=store_error(err)) from err

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]], *, what: str) -> T:
        """Run ``work`` in one transaction. A unique key taken by a concurrent writer
        (a version number) or SQLite's "database is locked" (a read snapshot another
        writer overtook) rolls back and runs it again, after a short random wait."""
        for attempt in range(20):
            try:
                async with self._writes.begin() as conn:
                    return await work(conn)
            except IntegrityError as err:
                if not _unique_violation(err):  # a missing reference, for one
                    # What the driver said names tables and constraints: the log's.
                    log.warning("could not write %s: %s", what, store_error(err))
                    raise Conflict(
                        f"could not write {what}: the store refused it as inconsistent "
                        "(a record it refers to may be missing)"
                    ) from err
            except OperationalError as err:
                if "locked" not in str(err.orig):
                    raise StoreUnavailable("could not write", cause=store_error(err)) from err
            except (SQLAlchemyError, OSError) as err:
                raise StoreUnavailable("could not write", cause=store_error(err)) from err
            await asyncio.sleep(random.uniform(0.0, 0.005 * (attempt + 1)))  # jitter
        raise Conflict(f"could not write {what}: concurrent writers; try again")

    async def _append_audit(self, conn: AsyncConnection, **entry: Any) -> int:
        """Append one entry inside the caller's write transaction; returns its id
        (:func:`service.store.audit.append_entry`)."""
        return await append_entry(conn, **entry)


class Store(StoreBase):
    """Async persistence. Every database error leaves as ``StoreUnavailable``."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._audit_lock = asyncio.Lock()

    async def ping(self) -> None:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable("the store is not reachable", cause=store_error(err)) from err

    # --- versioned resources -------------------------------------------------------------

    async def add_calibration(
        self,
        *,
        name: str,
        model: dict[str, Any],
        rows: Sequence[dict[str, Any]],
        created_by: str,
        example: bool = False,
        rheology: bool = False,
        proposed_from: str | None = None,
        proposal: dict[str, Any] | None = None,
        approver: Actor | None = None,
    ) -> CalibrationRecord:
        """A new version of a strength calibration, or (``rheology``) of a rheology
        calibration: the two are kept in tables of the same shape. A strength
        calibration is approved when stored, unless it is ``proposed_from`` another (a
        refit from lab results, ``proposal`` its figures): then it waits for an
        engineer's approval (:meth:`approve_calibration`); a rheology calibration is in
        force once stored. An ``approver`` storing one that is approved so is recorded
        as its ``approved_by``, with its audit entry in the same transaction (kind
        ``calibration_approval`` or ``rheology_approval``, reason ``stored``)."""
        now = _now()
        proposed = not rheology and proposed_from is not None
        approved_by = None if proposed or approver is None else approver.person
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": name,
            "created_at": now,
            "created_by": created_by,
            "example": int(example),
            "model": model,
            "rows": list(rows),
            "approved_by": approved_by,
            "approved_at": None if proposed else now,
        }
        if not rheology:
            values.update(
                status="proposed" if proposed else "approved",
                proposed_from=proposed_from,
                proposal=proposal,
            )
        table = t.rheology_calibrations if rheology else t.calibrations

        async def work(conn: AsyncConnection) -> None:
            await self._insert_versioned(conn, table, values)
            if approver is not None and not proposed:
                entry = acts.calibration_approval(values, approver, reason="stored")
                if rheology:
                    entry["kind"] = "rheology_approval"
                await self._append_audit(conn, **entry)

        await self._write(work, what=f"calibration {name!r}")
        return _calibration(_as_row(values))

    async def get_calibration(
        self, calibration_id: str, *, rheology: bool = False
    ) -> CalibrationRecord:
        if rheology:
            row = await self._one(t.rheology_calibrations, calibration_id, "rheology_calibration")
        else:
            row = await self._one(t.calibrations, calibration_id, "calibration")
        return _calibration(row)

    async def calibration_status(self, calibration_id: str) -> str:
        """The status of a strength calibration (one column, not its rows): NotFound
        (``calibration_not_found``) when there is none."""
        q = select(t.calibrations.c.status).where(t.calibrations.c.id == calibration_id)
        rows = await self._all(q)
        if not rows:
            raise NotFound(f"no calibration with id {calibration_id}", code="calibration_not_found")
        return str(rows[0]["status"])

    async def approve_calibration(
        self, calibration_id: str, *, approved_by: str, actor: Actor
    ) -> CalibrationRecord:
        """Approve a proposed calibration version (once: an approved one is a Conflict),
        with its audit entry in the same transaction: both are stored, or neither."""

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            q = (
                select(t.calibrations)
                .where(t.calibrations.c.id == calibration_id)
                .with_for_update()
            )
            row = (await conn.execute(q)).mappings().first()
            if row is None:
                raise NotFound(
                    f"no calibration with id {calibration_id}", code="calibration_not_found"
                )
            if row["status"] != "proposed":
                by = f" by {row['approved_by']}" if row["approved_by"] else ""
                raise Conflict(
                    f"calibration {row['name']!r} version {row['version']} is approved already{by}",
                    code="calibration_already_approved",
                )
            fields = {"status": "approved", "approved_by": approved_by, "approved_at": _now()}
            await conn.execute(
                t.calibrations.update()
                .where(t.calibrations.c.id == calibration_id)
                .values(**fields)
            )
            approved = {**row, **fields}
            await self._append_audit(conn, **acts.calibration_approval(approved, actor))
            return approved

        row = await self._write(work, what=f"approval of calibration {calibration_id}")
        return _calibration(_as_row(row))

    async def list_calibrations(self, *, rheology: bool = False) -> list[CalibrationRecord]:
        table = t.rheology_calibrations if rheology else t.calibrations
        q = select(table).order_by(table.c.created_at, table.c.version)
        return [_calibration(r) for r in await self._all(q)]

    async def add_recipe(
        self,
        *,
        name: str,
        mix: dict[str, Any],
        design: dict[str, Any] | None,
        calibration_id: str | None,
        approved_by: str | None,
        created_by: str,
        approval_detail: str | None = None,
        approver: Actor | None = None,
    ) -> RecipeRecord:
        """A recipe's first or next version; with ``approved_by`` approved when stored,
        its audit entry (naming ``approver``, the role that stored it otherwise) in the
        same transaction."""
        values = _recipe_values(
            name=name,
            mix=mix,
            design=design,
            calibration_id=calibration_id,
            approved_by=approved_by,
            created_by=created_by,
        )

        async def work(conn: AsyncConnection) -> None:
            await self._insert_versioned(conn, t.recipes, values)
            if approved_by is not None:
                actor = approver or Actor(created_by)
                await self._append_audit(
                    conn, **acts.recipe_approval(values, actor, approval_detail)
                )

        await self._write(work, what=f"recipe {name!r}")
        return _recipe(_as_row(values))

    async def approve_recipe(
        self,
        recipe_id: str,
        *,
        approved_by: str,
        actor: Actor,
        detail: str | None = None,
    ) -> RecipeRecord:
        """Approve a stored version (once: a second approval is a Conflict), with its
        audit entry in the same transaction: both are stored, or neither."""

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            q = select(t.recipes).where(t.recipes.c.id == recipe_id).with_for_update()
            row = (await conn.execute(q)).mappings().first()
            if row is None:
                raise NotFound(f"no recipe with id {recipe_id}", code="recipe_not_found")
            if row["approved_at"] is not None:
                raise Conflict(
                    f"recipe {row['name']!r} version {row['version']} was approved by "
                    f"{row['approved_by']} already",
                    code="recipe_already_approved",
                )
            fields = {"approved_by": approved_by, "approved_at": _now()}
            await conn.execute(
                t.recipes.update().where(t.recipes.c.id == recipe_id).values(**fields)
            )
            approved = {**row, **fields}
            await self._append_audit(conn, **acts.recipe_approval(approved, actor, detail))
            return approved

        return _recipe(_as_row(await self._write(work, what=f"approval of recipe {recipe_id}")))

    async def get_recipe(self, recipe_id: str) -> RecipeRecord:
        return _recipe(await self._one(t.recipes, recipe_id, "recipe"))

    async def list_recipes(self, name: str | None = None) -> list[RecipeRecord]:
        q = select(t.recipes).order_by(t.recipes.c.name, t.recipes.c.version)
        if name is not None:
            q = q.where(t.recipes.c.name == name)
        return [_recipe(r) for r in await self._all(q)]

    async def _insert_versioned(
        self, conn: AsyncConnection, table: Any, values: dict[str, Any]
    ) -> None:
        """Insert the next version of ``values["name"]``. Two engineers saving the same
        name at once: the unique constraint decides and ``_write`` retries the loser,
        who then takes the next number."""
        current = await conn.scalar(
            select(func.max(table.c.version)).where(table.c.name == values["name"])
        )
        values["version"] = int(current or 0) + 1
        await conn.execute(table.insert().values(**values))

    # --- pours ---------------------------------------------------------------------------

    async def add_pour(
        self,
        *,
        stope_id: str,
        recipe_id: str | None,
        target_volume_m3: float,
        paste_flow_m3_h: float,
        created_by: str,
        totals: dict[str, Any],
        sample_ids: Sequence[str] = (),
        new_recipe: Mapping[str, Any] | None = None,
        plan_id: str | None = None,
        stage: int | None = None,
        test_ages_days: Sequence[float] = DEFAULT_TEST_AGES_DAYS,
        state: str = "planned",
        started_at: datetime | None = None,
        guard: Callable[[AsyncConnection], Awaitable[None]] | None = None,
        actor: Actor | None = None,
    ) -> PourRecord:
        """A pour (planned, or running from ``started_at`` for a continuous plan's next
        stage). ``guard`` runs first in the same transaction and may refuse it (a stage
        pour: :meth:`service.store.stopes.StopeStore.claim_stage`). With ``new_recipe``
        (the arguments of ``add_recipe``) that recipe's first or next version is written
        in the same transaction and the pour uses it: both are stored, or neither. Each
        of ``sample_ids`` becomes a sample record (cast now, nothing placed yet) in the
        same transaction; an id cast from another pour is a Conflict (``sample_exists``)
        and nothing is stored. With ``actor`` the creation is an audit entry naming the
        person (kind ``pour_command``, reason ``create``), in the same transaction."""
        if (recipe_id is None) == (new_recipe is None):
            raise ValueError("give recipe_id or new_recipe, not both")
        recipe = None if new_recipe is None else _recipe_values(**new_recipe)
        now = _now()
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "stope_id": stope_id,
            "recipe_id": recipe["id"] if recipe is not None else recipe_id,
            "state": state,
            "target_volume_m3": target_volume_m3,
            "paste_flow_m3_h": paste_flow_m3_h,
            "created_at": now,
            "created_by": created_by,
            "started_at": started_at,
            "ended_at": None,
            "updated_at": now,
            "totals": totals,
            "interruptions": [],
            "sample_ids": list(dict.fromkeys(sample_ids)),
            "checkpoint_seq": 0,
            "plan_id": plan_id,
            "stage": stage,
        }

        samples = _sample_values(
            values["sample_ids"],
            pour_id=values["id"],
            cast_at=now,
            placed_m3=0.0,
            test_ages_days=test_ages_days,
            created_by=created_by,
        )

        async def work(conn: AsyncConnection) -> None:
            if guard is not None:
                await guard(conn)
            if recipe is not None:
                await self._insert_versioned(conn, t.recipes, recipe)
            await conn.execute(t.pours.insert().values(**values))
            await _insert_samples(conn, values["id"], samples)
            if actor is not None:
                new = {
                    "stope_id": stope_id,
                    "recipe_id": values["recipe_id"],
                    "target_volume_m3": target_volume_m3,
                    "paste_flow_m3_h": paste_flow_m3_h,
                    "sample_ids": values["sample_ids"],
                }
                entry = acts.pour_command(actor, "create", values["id"], new, now)
                await self._append_audit(conn, **entry)

        await self._write(work, what=f"pour for {stope_id!r}")
        return _pour(_as_row(values))

    async def get_pour(self, pour_id: str) -> PourRecord:
        return _pour(await self._one(t.pours, pour_id, "pour"))

    async def list_pours(
        self,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        stope: str | None = None,
    ) -> list[PourRecord]:
        """Newest first; ``stope`` (a stope's name) selects its pours."""
        q = select(t.pours).order_by(t.pours.c.created_at.desc()).limit(limit).offset(offset)
        if state is not None:
            q = q.where(t.pours.c.state == state)
        if stope is not None:
            q = q.where(t.pours.c.stope_id == stope)
        return [_pour(r) for r in await self._all(q)]

    async def page_pours(
        self,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = 500,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        state: str | None = None,
    ) -> list[PourRecord]:
        """Oldest first, a page after ``after`` (the last page's (created_at, id)): pours
        made meanwhile come at the end, none is skipped or given twice."""
        c = t.pours.c
        q = select(t.pours).order_by(c.created_at, c.id).limit(limit)
        if after is not None:
            at = after[0].astimezone(UTC)
            q = q.where(or_(c.created_at > at, and_(c.created_at == at, c.id > after[1])))
        if created_from is not None:
            q = q.where(c.created_at >= created_from.astimezone(UTC))
        if created_to is not None:
            q = q.where(c.created_at < created_to.astimezone(UTC))
        if state is not None:
            q = q.where(c.state == state)
        return [_pour(r) for r in await self._all(q)]

    async def update_pour(
        self, pour_id: str, *, expect_state: str | None = None, **fields: Any
    ) -> PourRecord:
        """Write fields of a pour; with ``expect_state`` only if the stored state still is
        that one (a compare-and-set, so two callers cannot both move a pour).

        ``updated_at`` is when the record last changed: it moves only when a field takes
        a new value. The checkpoint counter alone is bookkeeping, so a checkpoint of a
        pour that stands still (a paused pour, checkpointed at every restart and every
        checkpoint interval) leaves it where it was."""

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            q = select(t.pours).where(t.pours.c.id == pour_id).with_for_update()
            row = (await conn.execute(q)).mappings().first()
            if row is None:
                raise NotFound(f"no pour with id {pour_id}", code="pour_not_found")
            if expect_state is not None and row["state"] != expect_state:
                raise Conflict(
                    f"pour {pour_id} is {row['state']}, not {expect_state}",
                    code="pour_state_conflict",
                    state=row["state"],
                )
            stored = _pour(row)
            changes = {
                name: value
                for name, value in fields.items()
                if not _same_value(getattr(stored, name, row.get(name)), value)
            }
            if not changes:
                return dict(row)
            if set(changes) - {"checkpoint_seq"}:
                changes["updated_at"] = _now()
            stmt = t.pours.update().where(t.pours.c.id == pour_id).values(**changes)
            await conn.execute(stmt)
            # The record returned holds its own copies, as one read from the store
            # would: a caller's later change to its lists is no change to the record.
            return {**row, **copy.deepcopy(changes)}

        return _pour(_as_row(await self._write(work, what=f"pour {pour_id}")))

    async def add_pour_samples(
        self,
        pour_id: str,
        sample_ids: Sequence[str],
        *,
        placed_m3: float | None = None,
        test_ages_days: Sequence[float] = DEFAULT_TEST_AGES_DAYS,
        created_by: str = "scada",
        actor: Actor | None = None,
    ) -> PourRecord:
        """Add laboratory sample ids to a pour, keeping those it has (in order, without
        repeats), and make each new one a sample record (cast now, with ``placed_m3``,
        the pour's placed volume at this moment). Read and write are one transaction
        (the row locked on PostgreSQL; SQLite refuses a write on a snapshot another
        writer has overtaken, and that is retried), so two callers adding samples at
        once both keep theirs. An id cast from another pour is a Conflict
        (``sample_exists``) and nothing is stored. With ``actor`` the cast is an audit
        entry naming the person (``pour_command``, reason ``samples``), in the same
        transaction."""

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            q = select(t.pours).where(t.pours.c.id == pour_id).with_for_update()
            row = (await conn.execute(q)).mappings().first()
            if row is None:
                raise NotFound(f"no pour with id {pour_id}", code="pour_not_found")
            await _insert_samples(
                conn,
                pour_id,
                _sample_values(
                    list(dict.fromkeys(sample_ids)),
                    pour_id=pour_id,
                    cast_at=_now(),
                    placed_m3=placed_m3,
                    test_ages_days=test_ages_days,
                    created_by=created_by,
                ),
            )
            fields = {
                "sample_ids": list(dict.fromkeys([*row["sample_ids"], *sample_ids])),
                "updated_at": _now(),
            }
            await conn.execute(t.pours.update().where(t.pours.c.id == pour_id).values(**fields))
            if actor is not None:
                new = {
                    "sample_ids": list(dict.fromkeys(sample_ids)),
                    "placed_m3": placed_m3,
                    "test_ages_days": list(test_ages_days),
                }
                await self._append_audit(conn, **acts.pour_command(actor, "samples", pour_id, new))
            return {**row, **fields}

        return _pour(_as_row(await self._write(work, what=f"samples of pour {pour_id}")))

    # --- audit ---------------------------------------------------------------------------

    async def append_audit(
        self,
        *,
        kind: str,
        reason: str,
        role: str,
        new: dict[str, Any],
        old: dict[str, Any] | None = None,
        pour_id: str | None = None,
        seq: int | None = None,
        acknowledged: bool | None = None,
        detail: str | None = None,
        at: datetime | None = None,
        person: str | None = None,
    ) -> AuditRecord:
        async with self._audit_lock:
            try:
                async with self._writes.begin() as conn:
                    new_id = await self._append_audit(
                        conn,
                        kind=kind,
                        reason=reason,
                        role=role,
                        person=person,
                        new=new,
                        old=old,
                        pour_id=pour_id,
                        seq=seq,
                        acknowledged=acknowledged,
                        detail=detail,
                        at=at,
                    )
            except (SQLAlchemyError, OSError) as err:
                raise StoreUnavailable("could not write audit", cause=store_error(err)) from err
        rows = await self._all(select(t.audit).where(t.audit.c.id == new_id))
        return audit_record(rows[0])

    async def list_audit(
        self,
        *,
        after_id: int = 0,
        limit: int = 100,
        pour_id: str | None = None,
        at_from: datetime | None = None,
        at_to: datetime | None = None,
        person: str | None = None,
        kind: str | None = None,
    ) -> list[AuditRecord]:
        """Oldest first after ``after_id``; ``at_from`` inclusive, ``at_to`` exclusive;
        ``person`` and ``kind`` select the acts of one person, of one kind."""
        q = select(t.audit).where(t.audit.c.id > after_id).order_by(t.audit.c.id).limit(limit)
        if pour_id is not None:
            q = q.where(t.audit.c.pour_id == pour_id)
        if person is not None:
            q = q.where(t.audit.c.person == person)
        if kind is not None:
            q = q.where(t.audit.c.kind == kind)
        if at_from is not None:
            q = q.where(t.audit.c.at >= at_from.astimezone(UTC))
        if at_to is not None:
            q = q.where(t.audit.c.at < at_to.astimezone(UTC))
        return [audit_record(r) for r in await self._all(q)]

    async def verify_audit_chain(self) -> tuple[bool, int | None]:
        """Walk the whole log; return (intact, id of the first broken entry). A database
        of an older revision (a backup being checked before it is restored) is read as
        it is: its entries name no person."""
        columns = await self._audit_columns()
        prev_hash = GENESIS_HASH
        after = 0
        while True:
            q = (
                select(*(c for c in t.audit.c if c.name in columns))
                .where(t.audit.c.id > after)
                .order_by(t.audit.c.id)
                .limit(1000)
            )
            page = [audit_record(r) for r in await self._all(q)]
            if not page:
                return True, None
            for rec in page:
                if rec.prev_hash != prev_hash or rec.hash != audit_hash(prev_hash, payload_of(rec)):
                    return False, rec.id
                prev_hash = rec.hash
            after = page[-1].id

    async def _audit_columns(self) -> set[str]:
        def names(conn: Connection) -> set[str]:
            return {c["name"] for c in inspect(conn).get_columns("audit")}

        try:
            async with self._engine.connect() as conn:
                return await conn.run_sync(names)
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable("could not read", cause=store_error(err)) from err


__all__ = ["GENESIS_HASH", "Store", "StoreBase"]
