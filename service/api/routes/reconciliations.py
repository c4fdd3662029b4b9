"""Gs and Cw reconciliation: the service proposes a correction from the lab's Cw, an
engineer approves it (audited), control uses it from the next pour start on."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, Query

from service.api.deps import EngineerDep, PathId, RuntimeDep, StoreDep
from service.api.routes import api_router
from service.api.schemas.reconciled import CorrectionPublic
from service.api.schemas.reconciliations import (
    ActiveCorrectionPublic,
    ReconciliationApprove,
    ReconciliationCreate,
    ReconciliationList,
    ReconciliationPublic,
)
from service.core.people import actor_of, approver
from service.operations.corrections import Correction, active_correction
from service.operations.reconciliation import ReconciliationRequest, ReconciliationService
from service.store.records import CorrectionRecord

router = api_router("lab")
log = logging.getLogger(__name__)


async def get_reconciliations(runtime: RuntimeDep) -> ReconciliationService:
    return ReconciliationService(store=runtime.store, history=runtime.history)


ReconciliationsDep = Annotated[ReconciliationService, Depends(get_reconciliations)]


def reconciliation_public(record: CorrectionRecord, active_id: str | None) -> ReconciliationPublic:
    body: dict[str, Any] = dict(record.reconciliation)
    return ReconciliationPublic(
        **body,
        id=record.id,
        created_at=record.created_at,
        created_by=record.created_by,
        status=record.status,
        active=record.id == active_id,
        approved_by=record.approved_by,
        approved_at=record.approved_at,
    )


def correction_public(correction: Correction) -> CorrectionPublic:
    return CorrectionPublic.model_validate(correction.to_pour())


@router.post("/lab/reconciliations", status_code=201, response_model=ReconciliationPublic)
async def propose_reconciliation(
    req: ReconciliationCreate,
    who: EngineerDep,
    service: ReconciliationsDep,
    store: StoreDep,
) -> ReconciliationPublic:
    """Reconcile the samples' lab Cw against the Cw the plant recorded at their cast:
    the tailings Gs (or a density gauge bias) with its interval, which explains the
    data, and the correction proposed (``status`` ``proposed``; ``none`` when the lab Cw
    shows no error). Stored; nothing changes until an engineer approves it."""
    record = await service.propose(
        ReconciliationRequest(
            sample_ids=req.sample_ids,
            cast_from=req.cast_from,
            cast_to=req.cast_to,
            tailings_sg=req.tailings_sg,
            masses_of=req.masses_of,
            degree_of_hydration=req.degree_of_hydration,
            non_evaporable_water_ratio=req.non_evaporable_water_ratio,
            cast_window_s=req.cast_window_s,
            confidence=req.confidence_pct / 100.0,
        ),
        by=who.role.value,
    )
    active = await active_correction(store)
    return reconciliation_public(record, None if active is None else active.id)


@router.get("/lab/reconciliations", response_model=ReconciliationList)
async def list_reconciliations(
    service: ReconciliationsDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ReconciliationList:
    """Reconciliations, newest first."""
    active = await active_correction(store)
    active_id = None if active is None else active.id
    records = await service.corrections.recent(limit=limit, offset=offset)
    return ReconciliationList(items=[reconciliation_public(r, active_id) for r in records])


@router.get("/lab/reconciliations/{reconciliation_id}", response_model=ReconciliationPublic)
async def get_reconciliation(
    reconciliation_id: PathId, service: ReconciliationsDep, store: StoreDep
) -> ReconciliationPublic:
    active = await active_correction(store)
    record = await service.corrections.get(reconciliation_id)
    return reconciliation_public(record, None if active is None else active.id)


@router.post(
    "/lab/reconciliations/{reconciliation_id}/approve", response_model=ReconciliationPublic
)
async def approve_reconciliation(
    reconciliation_id: PathId,
    req: ReconciliationApprove,
    who: EngineerDep,
    service: ReconciliationsDep,
) -> ReconciliationPublic:
    """An engineer approves the proposed correction (recorded in the audit log): from
    the next pour start on, control runs on it (a pour under way keeps the one it
    started with), and pours read with their Cw reconciled by it. 409
    ``correction_not_proposed`` for one approved already or proposing nothing."""
    record = await service.approve(
        reconciliation_id, approved_by=approver(who, req.approved_by), actor=actor_of(who)
    )
    log.info(
        "Cw correction %s (%s) approved by %s (%s)",
        record.id,
        record.kind,
        record.approved_by,
        who.person,
    )
    return reconciliation_public(record, record.id)


@router.get("/lab/correction", response_model=ActiveCorrectionPublic)
async def current_correction(store: StoreDep) -> ActiveCorrectionPublic:
    """The correction control uses from now on (the newest approved), or null."""
    active = await active_correction(store)
    return ActiveCorrectionPublic(correction=None if active is None else correction_public(active))
