"""Samples and their laboratory results.

Samples are written with their pour (``Store.add_pour`` / ``Store.add_pour_samples``:
one transaction with the pour's sample ids). Results are append-only: an entry is
never changed or deleted, a correction is a new entry naming the one it corrects (the
``corrects`` column is unique, so an entry is corrected at most once). A batch of
results (a lab sheet) is one transaction: every entry is stored, or none.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.store import tables as t
from service.store.records import LabResultRecord, SampleRecord
from service.store.repository import StoreBase

_IN_CHUNK = 500  # ids per IN (...) list: far below every backend's parameter limit


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sample(row: RowMapping) -> SampleRecord:
    cast_at, created_at = _utc(row["cast_at"]), _utc(row["created_at"])
    assert cast_at is not None and created_at is not None
    return SampleRecord(
        id=row["id"],
        pour_id=row["pour_id"],
        cast_at=cast_at,
        placed_m3=row["placed_m3"],
        test_ages_days=[float(d) for d in row["test_ages_days"]],
        source=row["source"],
        created_at=created_at,
        created_by=row["created_by"],
    )


def _result(row: RowMapping | dict[str, Any]) -> LabResultRecord:
    entered_at = _utc(row["entered_at"])
    assert entered_at is not None
    return LabResultRecord(
        id=row["id"],
        sample_id=row["sample_id"],
        corrects=row["corrects"],
        cast_at=_utc(row["cast_at"]),
        tested_at=_utc(row["tested_at"]),
        curing_days=row["curing_days"],
        wet_mass_g=row["wet_mass_g"],
        dry_mass_g=row["dry_mass_g"],
        volume_cm3=row["volume_cm3"],
        bulk_density_kg_m3=row["bulk_density_kg_m3"],
        ucs_kpa=row["ucs_kpa"],
        note=row["note"],
        source=row["source"],
        sheet_id=row["sheet_id"],
        entered_at=entered_at,
        entered_by=row["entered_by"],
    )


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    unique = sorted(set(ids))
    return [unique[i : i + _IN_CHUNK] for i in range(0, len(unique), _IN_CHUNK)]


Validate = Callable[[Sequence[LabResultRecord]], None]
"""Called inside the write transaction with every entry already stored for the samples
of the batch; raises to refuse the batch (nothing is stored)."""


class LabStore(StoreBase):
    async def get_sample(self, sample_id: str) -> SampleRecord:
        return _sample(await self._one(t.samples, sample_id, "sample"))

    async def samples(self, sample_ids: Iterable[str]) -> dict[str, SampleRecord]:
        """The samples among ``sample_ids`` that exist, by id."""
        out: dict[str, SampleRecord] = {}
        for chunk in _chunks(sample_ids):
            for row in await self._all(select(t.samples).where(t.samples.c.id.in_(chunk))):
                out[row["id"]] = _sample(row)
        return out

    async def samples_of_pours(self, pour_ids: Iterable[str]) -> list[SampleRecord]:
        out: list[SampleRecord] = []
        for chunk in _chunks(pour_ids):
            q = select(t.samples).where(t.samples.c.pour_id.in_(chunk))
            out += [_sample(r) for r in await self._all(q)]
        return sorted(out, key=lambda s: (s.cast_at, s.id))

    async def list_samples(
        self, *, pour_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SampleRecord]:
        """Newest cast first; ``pour_id`` selects one pour's."""
        q = (
            select(t.samples)
            .order_by(t.samples.c.cast_at.desc(), t.samples.c.id)
            .limit(limit)
            .offset(offset)
        )
        if pour_id is not None:
            q = q.where(t.samples.c.pour_id == pour_id)
        return [_sample(r) for r in await self._all(q)]

    async def all_samples(self) -> list[SampleRecord]:
        q = select(t.samples).order_by(t.samples.c.cast_at, t.samples.c.id)
        return [_sample(r) for r in await self._all(q)]

    async def results_of(self, sample_ids: Iterable[str]) -> list[LabResultRecord]:
        """Every entry of the samples (corrected ones too), in the order entered."""
        out: list[LabResultRecord] = []
        for chunk in _chunks(sample_ids):
            q = select(t.lab_results).where(t.lab_results.c.sample_id.in_(chunk))
            out += [_result(r) for r in await self._all(q)]
        return sorted(out, key=lambda r: (r.entered_at, r.id))

    async def all_results(self) -> list[LabResultRecord]:
        q = select(t.lab_results).order_by(t.lab_results.c.entered_at, t.lab_results.c.id)
        return [_result(r) for r in await self._all(q)]

    async def add_results(
        self,
        entries: Sequence[dict[str, Any]],
        *,
        validate: Validate,
        audit: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] | None = None,
    ) -> list[LabResultRecord]:
        """Store the entries (the columns of ``lab_results`` but ``id`` and
        ``entered_at``) in one transaction, after ``validate`` accepted them against
        the entries already stored for their samples, read inside it. The samples are
        locked first (in id order, on PostgreSQL), so two batches for one sample cannot
        both pass the check. ``audit(values)``: the audit entry of the stored values
        (with their ids), appended in the same transaction."""
        now = datetime.now(UTC)
        # The entries of a batch a microsecond apart: they read back in their order.
        values = [
            {**e, "id": str(uuid.uuid4()), "entered_at": now + timedelta(microseconds=i)}
            for i, e in enumerate(entries)
        ]
        sample_ids = sorted({v["sample_id"] for v in values})

        async def work(conn: AsyncConnection) -> None:
            existing: list[LabResultRecord] = []
            for chunk in _chunks(sample_ids):
                await conn.execute(
                    select(t.samples.c.id)
                    .where(t.samples.c.id.in_(chunk))
                    .order_by(t.samples.c.id)
                    .with_for_update()
                )
                q = select(t.lab_results).where(t.lab_results.c.sample_id.in_(chunk))
                existing += [_result(r) for r in (await conn.execute(q)).mappings().all()]
            existing.sort(key=lambda r: (r.entered_at, r.id))
            validate(existing)
            if values:
                await conn.execute(t.lab_results.insert(), values)
            if audit is not None:
                await self._append_audit(conn, **audit(values))

        await self._write(work, what="laboratory results")
        return [_result(v) for v in values]
