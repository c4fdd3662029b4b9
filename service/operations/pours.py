"""Pour records: creation (with an inline recipe stored as a version), the start (under
the Cw correction in force), and the public view, merging the live totals of the
active pour over its last checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.core import control as law
from service.core.people import Actor
from service.core.plant_profile import PlantProfile, makeability
from service.core.pour_machine import control_recipe
from service.core.recipe_limits import RecipeLimits, check_mix
from service.errors import Conflict
from service.operations.makeable import refuse_unmakeable
from service.operations.supervisor import Supervisor
from service.store.records import DEFAULT_TEST_AGES_DAYS, PourRecord
from service.store.repository import Store
from service.store.stopes import StopeStore


async def create_pour(
    store: Store,
    *,
    stope_id: str,
    mix: dict[str, Any] | None,
    recipe_id: str | None,
    target_volume_m3: float,
    paste_flow_m3_h: float,
    sample_ids: list[str],
    role: str,
    limits: RecipeLimits,
    plant: PlantProfile | None = None,
    person: str | None = None,
) -> PourRecord:
    """The pour and, for an inline mix, its recipe version (unapproved), and a sample
    record for each of its sample ids (cast now, nothing placed yet): one transaction.
    The recipe must be inside the site's plausible ranges; a sample id cast from another
    pour is a Conflict (``sample_exists``). A stope with a fill plan takes paste only
    through its plan: a plain pour naming it is a Conflict (``stope_planned``). The
    creation is an audit entry naming ``person`` (with the pour, one transaction)."""
    stopes = StopeStore(store.engine)
    stope = await stopes.stope_named(stope_id)
    if stope is not None and await stopes.get_progress(stope.id) is not None:
        raise Conflict(
            f"stope {stope_id!r} has a fill plan: paste enters it only through the pour of "
            f"its current stage (POST /api/v1/stopes/{stope.id}/pours)",
            code="stope_planned",
            stope_id=stope.id,
            field="stope_id",
        )
    new_recipe: dict[str, Any] | None = None
    if mix is not None:
        check_mix(mix, limits, prefix="recipe.")
        control_recipe(mix)  # the plant must have a feeder for every component
        if plant is not None:  # an approval (with its reason) is an engineer's, not SCADA's
            refuse_unmakeable(
                makeability(mix, plant, prefix="recipe."), reason=None, what="the recipe"
            )
        new_recipe = {
            "name": f"inline {stope_id}",
            "mix": mix,
            "design": None,
            "calibration_id": None,
            "approved_by": None,
            "created_by": role,
        }
        recipe_id = None
    else:
        assert recipe_id is not None
        stored = await store.get_recipe(recipe_id)
        check_mix(stored.mix, limits, prefix="recipe.")
        control_recipe(stored.mix)
        if plant is not None and stored.approved_at is None:
            refuse_unmakeable(
                makeability(stored.mix, plant, prefix="recipe."),
                reason=None,
                what=f"recipe {stored.name!r} version {stored.version} (not approved)",
            )
    return await store.add_pour(
        stope_id=stope_id,
        recipe_id=recipe_id,
        target_volume_m3=target_volume_m3,
        paste_flow_m3_h=paste_flow_m3_h,
        created_by=role,
        totals=law.PourTotals().summary(),
        sample_ids=sample_ids,
        new_recipe=new_recipe,
        actor=Actor(role, person),
    )


def pour_view(record: PourRecord, supervisor: Supervisor | None) -> dict[str, Any]:
    live = supervisor.live_totals(record.id) if supervisor is not None else None
    totals = live.summary() if live is not None else dict(record.totals)
    for internal in ("integrator", "plc_totaliser_m3", "to_dump"):
        totals.pop(internal, None)
    if live is not None and supervisor is not None and supervisor.active_pour is not None:
        run = supervisor.active_pour
        if run.id == record.id:
            totals["solids_verified"] = run.solids_verified
            totals["solids_basis"] = run.solids_basis
    newer = supervisor.live_record(record.id) if supervisor is not None else None
    if newer is not None:
        record = newer
    empty = law.PourTotals().summary()
    merged = {**empty, **totals}
    poured = float(merged["poured_m3"])
    return {
        "id": record.id,
        "stope_id": record.stope_id,
        "recipe_id": record.recipe_id,
        "state": record.state,
        "target_volume_m3": record.target_volume_m3,
        "paste_flow_m3_h": record.paste_flow_m3_h,
        **merged,
        "progress_pct": min(100.0, 100.0 * poured / record.target_volume_m3),
        "created_at": record.created_at,
        "created_by": record.created_by,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "updated_at": record.updated_at,
        "interruptions": record.interruptions,
        "sample_ids": record.sample_ids,
        "plan_id": record.plan_id,
        "stage": record.stage,
        "correction": record.correction,
        "judged_on": "paste_estimate",
    }


async def start_pour(
    store: Store, supervisor: Supervisor, pour_id: str, role: str, person: str | None = None
) -> PourRecord:
    """Start a planned pour (the supervisor reads it, its recipe and the correction in
    force, decides, and writes it once). A service shutting down or a standby refuses
    first, before the pour is read."""
    supervisor.require_running()
    return await supervisor.start_pour(pour_id, role, person)


async def cast_samples(
    store: Store,
    supervisor: Supervisor | None,
    pour_id: str,
    sample_ids: Sequence[str],
    *,
    test_ages_days: Sequence[float] | None,
    role: str,
    person: str | None = None,
) -> PourRecord:
    """Cylinders cast from the pour now: their ids join the pour's record and each
    becomes a sample, with the pour's placed volume at this moment (the live total of a
    running pour); the cast is an audit entry naming ``person``."""
    placed = float(pour_view(await store.get_pour(pour_id), supervisor)["poured_m3"])
    return await store.add_pour_samples(
        pour_id,
        sample_ids,
        placed_m3=placed,
        test_ages_days=DEFAULT_TEST_AGES_DAYS if test_ages_days is None else test_ages_days,
        created_by=role,
        actor=Actor(role, person),
    )


async def pour_commands(store: Store, pour_id: str) -> list[dict[str, Any]]:
    """The commands given on a pour, in the order given, from the audit log (where each
    is stored with its record, or queued in order with its setpoint writes)."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await store.list_audit(
            after_id=after, limit=1000, pour_id=pour_id, kind="pour_command"
        )
        found += [
            {"action": e.reason, "at": e.at, "role": e.role, "person": e.person, "audit_id": e.id}
            for e in page
        ]
        if len(page) < 1000:
            # In the order given: a command the supervisor queued (with its writes) may
            # reach the log after one stored with its record a moment later.
            return sorted(found, key=lambda c: (c["at"], c["audit_id"]))
        after = page[-1].id
