"""The audit log: append-only, each entry carrying the hash of the one before it, so an
edit, a deletion or an insertion shows (``python -m service.audit verify``).

An entry's hashed body is its fields as JSON (sorted keys); the person who acted
(revision 0010_people) joins the body only when there is one, so the entries stored
before people were named, and the service's own, keep the hashes they were chained
with and the chain verifies across the upgrade.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.store import tables as t
from service.store.records import AuditRecord

GENESIS_HASH = "0" * 64
AUDIT_LOCK = 0x6261636B61756474  # "backaudt": one advisory lock key for every instance


def audit_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def audit_payload(
    *,
    at: datetime,
    kind: str,
    reason: str,
    role: str,
    person: str | None,
    pour_id: str | None,
    seq: int | None,
    acknowledged: bool | None,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    detail: str | None,
) -> dict[str, Any]:
    """The hashed body of an entry (the person only when there is one)."""
    payload: dict[str, Any] = {
        "at": at.isoformat(),
        "kind": kind,
        "reason": reason,
        "role": role,
        "pour_id": pour_id,
        "seq": seq,
        "acknowledged": acknowledged,
        "old": old,
        "new": new,
        "detail": detail,
    }
    if person is not None:
        payload["person"] = person
    return payload


def payload_of(rec: AuditRecord) -> dict[str, Any]:
    """The hashed body of a stored entry, to check its hash against."""
    return audit_payload(
        at=rec.at,
        kind=rec.kind,
        reason=rec.reason,
        role=rec.role,
        person=rec.person,
        pour_id=rec.pour_id,
        seq=rec.seq,
        acknowledged=rec.acknowledged,
        old=rec.old,
        new=rec.new,
        detail=rec.detail,
    )


def audit_record(row: RowMapping) -> AuditRecord:
    ack = row["acknowledged"]
    at: datetime = row["at"]
    return AuditRecord(
        id=row["id"],
        at=at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC),
        kind=row["kind"],
        reason=row["reason"],
        role=row["role"],
        pour_id=row["pour_id"],
        seq=row["seq"],
        acknowledged=None if ack is None else bool(ack),
        old=row["old"],
        new=row["new"],
        detail=row["detail"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        person=row.get("person"),
    )


async def append_entry(
    conn: AsyncConnection,
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
) -> int:
    """Append one entry inside the caller's write transaction; returns its id.
    On PostgreSQL an advisory lock orders writers of every instance (two instances
    share one log: a writer's setpoints, a standby's approvals), so that no two
    entries ever chain onto the same previous hash. On SQLite the write transaction
    began IMMEDIATE, which already excludes other writers."""
    at = at or datetime.now(UTC)
    payload = audit_payload(
        at=at,
        kind=kind,
        reason=reason,
        role=role,
        person=person,
        pour_id=pour_id,
        seq=seq,
        acknowledged=acknowledged,
        old=old,
        new=new,
        detail=detail,
    )
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK})
    prev = await conn.scalar(select(t.audit.c.hash).order_by(t.audit.c.id.desc()).limit(1))
    prev_hash = prev or GENESIS_HASH
    values = dict(payload)
    values.update(
        at=at,
        person=person,
        acknowledged=None if acknowledged is None else int(acknowledged),
        prev_hash=prev_hash,
        hash=audit_hash(prev_hash, payload),
    )
    result = await conn.execute(t.audit.insert().values(**values))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
