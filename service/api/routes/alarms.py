"""Alarms (ISA-18.2 states) and the audit log of setpoint writes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from service.api.deps import OperatorDep, RuntimeDep, StoreDep
from service.api.plant_status import alarm_view
from service.api.routes import api_router
from service.api.schemas.common import ID_PATTERN
from service.api.schemas.plant import AlarmPublic
from service.core.people import PERSON_MAX_CHARS, actor_of

router = api_router("alarms")
_KIND = r"^[a-z][a-z0-9_]*$"


@router.get("/alarms", response_model=list[AlarmPublic])
async def list_alarms(runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Active alarms and cleared ones not yet acknowledged."""
    return [alarm_view(a) for a in runtime.supervisor.alarms()]


@router.post("/alarms/{code}/acknowledge", response_model=AlarmPublic)
async def acknowledge(
    code: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_:.-]*$")],
    runtime: RuntimeDep,
    who: OperatorDep,
) -> dict[str, Any]:
    """Acknowledge an alarm (ISA-18.2): recorded on the alarm (``acknowledged_by``, the
    key's person) and in the audit log."""
    alarm = runtime.supervisor.acknowledge_alarm(code, actor_of(who))
    return alarm_view(alarm)


@router.get("/audit")
async def audit(
    store: StoreDep,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    pour_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID_PATTERN)] = None,
    person: Annotated[str | None, Query(min_length=1, max_length=PERSON_MAX_CHARS)] = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=40, pattern=_KIND)] = None,
) -> dict[str, Any]:
    """Every setpoint set written and every act of a person (approvals, pour commands,
    alarm acknowledgements, lab entries, stage releases and stope closes), oldest first;
    page with ``after_id``. ``person`` is who acted (null: the service itself, or an
    entry from before people were named); ``person`` and ``kind`` select."""
    entries = await store.list_audit(
        after_id=after_id, limit=limit, pour_id=pour_id, person=person, kind=kind
    )
    items = [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "kind": e.kind,
            "reason": e.reason,
            "role": e.role,
            "person": e.person,
            "pour_id": e.pour_id,
            "seq": e.seq,
            "acknowledged": e.acknowledged,
            "old": e.old,
            "new": e.new,
            "detail": e.detail,
            "hash": e.hash,
        }
        for e in entries
    ]
    return {"items": items, "next_after_id": entries[-1].id if entries else after_id}
