"""Pours: create, start, pause, resume, stop, read (docs/INTEGRATION.md "Pours")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from service.api.deps import PathId, RuntimeDep, ScadaDep, StoreDep
from service.api.routes import api_router
from service.api.schemas.pours import PourCreate, PourList, PourPublic
from service.api.schemas.samples import SamplesCast
from service.core.pour_states import PourState
from service.operations import pours as ops
from service.operations.reconciled import reconcile_pour

router = api_router("pours")


@router.post("/pours", status_code=201, response_model=PourPublic)
async def create_pour(
    body: PourCreate, store: StoreDep, runtime: RuntimeDep, who: ScadaDep
) -> PourPublic:
    record = await ops.create_pour(
        store,
        stope_id=body.stope_id,
        mix=body.recipe.model_dump() if body.recipe is not None else None,
        recipe_id=body.recipe_id,
        target_volume_m3=body.target_volume_m3,
        paste_flow_m3_h=body.paste_flow_m3_h,
        sample_ids=list(body.sample_ids),
        role=who.role.value,
        limits=runtime.recipe_limits,
        plant=await runtime.plant_profiles.profile(),
        person=who.person,
    )
    return PourPublic(**ops.pour_view(record, runtime.supervisor))


@router.get("/pours", response_model=PourList)
async def list_pours(
    store: StoreDep,
    runtime: RuntimeDep,
    state: PourState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> PourList:
    records = await store.list_pours(state.value if state else None, limit=limit, offset=offset)
    return PourList(items=[PourPublic(**ops.pour_view(r, runtime.supervisor)) for r in records])


@router.get("/pours/{pour_id}", response_model=PourPublic)
async def get_pour(pour_id: PathId, store: StoreDep, runtime: RuntimeDep) -> PourPublic:
    """The pour, with its Cw reconciled beside the one it was controlled on (with the
    newest approved correction), its off-spec volume on the best estimate, and every
    command given on it with who gave it."""
    record = await store.get_pour(pour_id)
    view = ops.pour_view(record, runtime.supervisor)
    reconciled = await reconcile_pour(
        store,
        runtime.history,
        record,
        view,
        band_fraction=runtime.supervisor.config.alarms.solids_band_fraction,
        now=datetime.now(UTC),
    )
    commands = await ops.pour_commands(store, pour_id)
    return PourPublic(**view, reconciliation=reconciled.to_dict(), commands=commands)


@router.post("/pours/{pour_id}/start", response_model=PourPublic)
async def start_pour(
    pour_id: PathId, store: StoreDep, runtime: RuntimeDep, who: ScadaDep
) -> PourPublic:
    """Start a planned pour; the Cw correction in force (the newest approved one that
    applies to its recipe) is written on it first and is what control runs on."""
    record = await ops.start_pour(store, runtime.supervisor, pour_id, who.role.value, who.person)
    return PourPublic(**ops.pour_view(record, runtime.supervisor))


@router.post("/pours/{pour_id}/pause", response_model=PourPublic)
async def pause_pour(pour_id: PathId, runtime: RuntimeDep, who: ScadaDep) -> PourPublic:
    record = await runtime.supervisor.pause_pour(pour_id, who.role.value, person=who.person)
    return PourPublic(**ops.pour_view(record, runtime.supervisor))


@router.post("/pours/{pour_id}/resume", response_model=PourPublic)
async def resume_pour(pour_id: PathId, runtime: RuntimeDep, who: ScadaDep) -> PourPublic:
    record = await runtime.supervisor.resume_pour(pour_id, who.role.value, who.person)
    return PourPublic(**ops.pour_view(record, runtime.supervisor))


@router.post("/pours/{pour_id}/stop", response_model=PourPublic)
async def stop_pour(pour_id: PathId, runtime: RuntimeDep, who: ScadaDep) -> PourPublic:
    record = await runtime.supervisor.stop_pour(pour_id, who.role.value, who.person)
    return PourPublic(**ops.pour_view(record, runtime.supervisor))


@router.post("/pours/{pour_id}/samples", response_model=PourPublic)
async def add_samples(
    pour_id: PathId, body: SamplesCast, store: StoreDep, runtime: RuntimeDep, who: ScadaDep
) -> PourPublic:
    """Laboratory cylinders cast from the pour now: their ids join the pour's record and
    each becomes a sample (cast now, with the pour's placed volume at this moment, to be
    tested at ``test_ages_days``). An id cast from another pour is a 409
    ``sample_exists``; one this pour has already is kept as it is."""
    record = await ops.cast_samples(
        store,
        runtime.supervisor,
        pour_id,
        body.sample_ids,
        test_ages_days=body.test_ages_days,
        role=who.role.value,
        person=who.person,
    )
    return PourPublic(**ops.pour_view(record, runtime.supervisor))
