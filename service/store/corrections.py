"""Cw reconciliations and the corrections they propose.

A reconciliation is stored once and never changed but for its approval: ``proposed``
becomes ``approved`` by an engineer, in one transaction with its audit entry (kind
``cw_correction_approval``). The correction in force is the newest approved one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.core.people import Actor
from service.errors import Conflict, NotFound
from service.store import tables as t
from service.store.records import CorrectionRecord
from service.store.repository import Store, StoreBase

STATUS_PROPOSED = "proposed"
STATUS_APPROVED = "approved"
STATUS_NONE = "none"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(row: RowMapping | Mapping[str, Any]) -> CorrectionRecord:
    created_at = _utc(row["created_at"])
    assert created_at is not None
    return CorrectionRecord(
        id=row["id"],
        created_at=created_at,
        created_by=row["created_by"],
        status=row["status"],
        verdict=row["verdict"],
        kind=row["kind"],
        tailings_sg=row["tailings_sg"],
        density_bias_kg_m3=row["density_bias_kg_m3"],
        assumed_tailings_sg=row["assumed_tailings_sg"],
        reconciliation=row["reconciliation"],
        sample_ids=list(row["sample_ids"]),
        approved_by=row["approved_by"],
        approved_at=_utc(row["approved_at"]),
    )


def _approval_entry(row: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """The audit entry of a correction's approval: what control uses from now on."""
    return {
        "kind": "cw_correction_approval",
        "reason": "approved",
        "role": actor.role,
        "person": actor.person,
        "new": {
            "correction_id": row["id"],
            "kind": row["kind"],
            "tailings_sg": row["tailings_sg"],
            "density_bias_kg_m3": row["density_bias_kg_m3"],
            "assumed_tailings_sg": row["assumed_tailings_sg"],
            "approved_by": row["approved_by"],
            "sample_ids": list(row["sample_ids"]),
        },
        "at": row["approved_at"],
    }


class CorrectionStore(StoreBase):
    """Reconciliations and corrections; approvals are audited in the log of ``audit``
    (the service's store), in the same transaction."""

    def __init__(self, audit: Store) -> None:
        super().__init__(audit.engine)
        self._audit = audit

    async def add(
        self,
        *,
        status: str,
        verdict: str,
        kind: str | None,
        tailings_sg: float | None,
        density_bias_kg_m3: float | None,
        assumed_tailings_sg: float,
        reconciliation: dict[str, Any],
        sample_ids: Sequence[str],
        created_by: str,
    ) -> CorrectionRecord:
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "created_at": datetime.now(UTC),
            "created_by": created_by,
            "status": status,
            "verdict": verdict,
            "kind": kind,
            "tailings_sg": tailings_sg,
            "density_bias_kg_m3": density_bias_kg_m3,
            "assumed_tailings_sg": assumed_tailings_sg,
            "reconciliation": reconciliation,
            "sample_ids": list(sample_ids),
            "approved_by": None,
            "approved_at": None,
        }

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(t.cw_corrections.insert().values(**values))

        await self._write(work, what="Cw reconciliation")
        return _record(values)

    async def get(self, correction_id: str) -> CorrectionRecord:
        return _record(await self._one(t.cw_corrections, correction_id, "reconciliation"))

    async def recent(self, *, limit: int = 100, offset: int = 0) -> list[CorrectionRecord]:
        """Newest first."""
        q = (
            select(t.cw_corrections)
            .order_by(t.cw_corrections.c.created_at.desc(), t.cw_corrections.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [_record(r) for r in await self._all(q)]

    async def active(self) -> CorrectionRecord | None:
        """The newest approved correction (by its approval), None when none is."""
        q = (
            select(t.cw_corrections)
            .where(t.cw_corrections.c.status == STATUS_APPROVED)
            .order_by(t.cw_corrections.c.approved_at.desc(), t.cw_corrections.c.id)
            .limit(1)
        )
        rows = await self._all(q)
        return _record(rows[0]) if rows else None

    async def approve(
        self, correction_id: str, *, approved_by: str, actor: Actor
    ) -> CorrectionRecord:
        """Approve a proposed correction (once), with its audit entry: both stored, or
        neither. 404 for an unknown id, 409 ``correction_not_proposed`` otherwise."""

        async def work(conn: AsyncConnection) -> dict[str, Any]:
            q = (
                select(t.cw_corrections)
                .where(t.cw_corrections.c.id == correction_id)
                .with_for_update()
            )
            row = (await conn.execute(q)).mappings().first()
            if row is None:
                raise NotFound(
                    f"no reconciliation with id {correction_id}", code="reconciliation_not_found"
                )
            if row["status"] != STATUS_PROPOSED:
                why = (
                    f"was approved by {row['approved_by']} already"
                    if row["status"] == STATUS_APPROVED
                    else "proposes no correction (the lab Cw showed no error to correct)"
                )
                raise Conflict(
                    f"reconciliation {correction_id} {why}", code="correction_not_proposed"
                )
            fields = {
                "status": STATUS_APPROVED,
                "approved_by": approved_by,
                "approved_at": datetime.now(UTC),
            }
            await conn.execute(
                t.cw_corrections.update()
                .where(t.cw_corrections.c.id == correction_id)
                .values(**fields)
            )
            approved = {**row, **fields}
            await self._audit._append_audit(conn, **_approval_entry(approved, actor))
            return approved

        return _record(await self._write(work, what=f"approval of correction {correction_id}"))
