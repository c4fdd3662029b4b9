"""The supervisor starts a pour on the Cw correction in force (the newest an engineer
approved), writes it on the pour, and runs on it: a tailings Gs correction in the control
recipe, a paste density gauge bias taken off the reading (for the law and for the balance
across the mixer)."""

from __future__ import annotations

import pytest

from service.core.control.massbalance import measured_solids_fraction
from service.core.people import Actor
from service.operations.corrections import Correction
from service.store.corrections import CorrectionStore
from service.store.repository import Store
from tests.unit.test_supervisor import MakeRig, make_rig, new_pour, store
from tests.unit.test_supervisor_instruments import RECIPE, consistent_plant

__all__ = ["make_rig", "store"]  # the fixtures this module borrows


async def approved(store: Store, kind: str, **values: float) -> Correction:
    """A correction an engineer approved, in the store: the one in force."""
    corrections = CorrectionStore(store)
    record = await corrections.add(
        status="proposed",
        verdict=kind,
        kind=kind,
        tailings_sg=values.get("tailings_sg"),
        density_bias_kg_m3=values.get("density_bias_kg_m3"),
        assumed_tailings_sg=RECIPE.tailings_sg,
        reconciliation={},
        sample_ids=[],
        created_by="engineer",
    )
    return Correction.of_record(
        await corrections.approve(
            record.id, approved_by="A. Engineer", actor=Actor("engineer", "A. Engineer")
        )
    )


async def test_a_gs_correction_is_the_control_recipe_s_gs(store: Store, make_rig: MakeRig) -> None:
    rig = await make_rig(store)
    for tag, value in consistent_plant().items():
        rig.link.set_measurement(tag, value)
    pour_id = await new_pour(store, target_m3=10_000)
    fix = await approved(store, "tailings_gs", tailings_sg=2.884)
    await rig.sup.start_pour(pour_id, "scada")
    assert (await store.get_pour(pour_id)).correction == fix.to_pour()
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(20)
    active = rig.sup.active_pour
    assert active is not None
    assert active.recipe.tailings_sg == pytest.approx(2.884)
    assert active.recipe.binder_ratio == RECIPE.binder_ratio
    # The recipe's own record is untouched: only control runs on the corrected Gs.
    recipe = await store.get_recipe((await store.get_pour(pour_id)).recipe_id)
    assert recipe.mix["tailings"]["specific_gravity"] == RECIPE.tailings_sg
    output = rig.sup.last_output()
    assert output is not None and output.measured_solids_fraction is not None
    reading = rig.link.snapshot().measurements["paste_density_pv"].value
    assert isinstance(reading, float)
    assert output.measured_solids_fraction == pytest.approx(
        measured_solids_fraction(reading, active.recipe), rel=1e-9
    )
    assert output.measured_solids_fraction != pytest.approx(
        measured_solids_fraction(reading, RECIPE), rel=1e-4
    )


@pytest.mark.parametrize("bias", [0.0, 25.0])
async def test_a_density_gauge_bias_is_taken_off_the_reading(
    store: Store, make_rig: MakeRig, bias: float
) -> None:
    rig = await make_rig(store)
    plant = consistent_plant()
    for tag, value in plant.items():
        rig.link.set_measurement(tag, value)
    pour_id = await new_pour(store, target_m3=10_000)
    fix = await approved(store, "density_gauge", density_bias_kg_m3=bias)
    await rig.sup.start_pour(pour_id, "scada")
    assert (await store.get_pour(pour_id)).correction == fix.to_pour()
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(20)
    active = rig.sup.active_pour
    assert active is not None and active.density_bias_kg_m3 == bias
    output = rig.sup.last_output()
    assert output is not None and output.measured_solids_fraction is not None
    reading = rig.link.snapshot().measurements["paste_density_pv"].value
    assert isinstance(reading, float)
    assert output.measured_solids_fraction == pytest.approx(
        measured_solids_fraction(reading - bias, RECIPE), rel=1e-9
    )
