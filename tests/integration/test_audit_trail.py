"""An act's audit entry kept apart from its record (a stage released, a stope closed)
waits through a store outage and is written, in order, once the store takes writes
again: the outage is a real full disk (a small tmpfs mounted by the test, as root)."""

from __future__ import annotations

from pathlib import Path

from service.core import acts
from service.core.people import Actor
from service.operations.audit_trail import AuditTrail
from service.store.db import create_engine, migrate
from service.store.repository import Store
from tests.e2e.helpers import eventually
from tests.integration.test_disk_full import small_disk

__all__ = ["small_disk"]  # the fixture, used by name


async def test_an_entry_waits_through_a_full_disk_and_is_written_after(small_disk: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{small_disk / 'backfill.db'}")
    trail: AuditTrail | None = None
    try:
        await migrate(engine)
        store = Store(engine)
        trail = AuditTrail(store)
        trail.start()
        anna, boris = Actor("engineer", "a.ivanova"), Actor("engineer", "b.petrov")
        await trail.record(acts.stope_act(anna, "release", "s1", "S-1", {"current_stage": 1}))
        assert trail.pending == 0
        filler = small_disk / "filler"
        with filler.open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        # Entries big enough that the last pages of room cannot take them.
        big = {"note": "x" * 20_000}
        await trail.record(acts.stope_act(boris, "close", "s1", "S-1", big))
        await trail.record(acts.stope_act(anna, "release", "s2", "S-2", big))
        assert trail.pending == 2  # kept, not raised: the acts were stored already
        filler.unlink()
        written = trail

        async def stored() -> bool:
            return written.pending == 0

        await eventually(stored, within_s=10, what="the kept entries written")
        entries = await store.list_audit(kind="stope")
        assert [(e.reason, e.person, e.new["stope"]) for e in entries] == [
            ("release", "a.ivanova", "S-1"),
            ("close", "b.petrov", "S-1"),
            ("release", "a.ivanova", "S-2"),
        ]
        assert await store.verify_audit_chain() == (True, None)
    finally:
        if trail is not None:
            await trail.stop(drain_s=1.0)
        await engine.dispose()
