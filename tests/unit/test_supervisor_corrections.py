"""The supervisor runs a pour on the Cw correction its record carries: a tailings Gs
correction in the control recipe, a paste density gauge bias taken off the reading (for
the law and for the balance across the mixer)."""

from __future__ import annotations

import pytest

from service.core.control.massbalance import measured_solids_fraction
from service.operations.corrections import Correction
from service.store.repository import Store
from tests.unit.test_supervisor import MakeRig, make_rig, new_pour, store
from tests.unit.test_supervisor_instruments import RECIPE, consistent_plant

__all__ = ["make_rig", "store"]  # the fixtures this module borrows


def correction(kind: str, **values: float) -> Correction:
    return Correction.from_pour(
        {
            "id": f"c-{kind}",
            "kind": kind,
            "assumed_tailings_sg": RECIPE.tailings_sg,
            "approved_by": "A. Engineer",
            **values,
        }
    )


async def test_a_gs_correction_is_the_control_recipe_s_gs(store: Store, make_rig: MakeRig) -> None:
    rig = await make_rig(store)
    for tag, value in consistent_plant().items():
        rig.link.set_measurement(tag, value)
    pour_id = await new_pour(store, target_m3=10_000)
    fix = correction("tailings_gs", tailings_sg=2.884)
    await store.update_pour(pour_id, correction=fix.to_pour())
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(20)
    active = rig.sup.active_pour
    assert active is not None and active.correction == fix
    assert active.recipe.tailings_sg == pytest.approx(2.884)
    assert active.recipe.binder_ratio == RECIPE.binder_ratio
    # The recipe's own record is untouched: only control runs on the corrected Gs.
    recipe = await store.get_recipe(active.record.recipe_id)
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
    fix = correction("density_gauge", density_bias_kg_m3=bias)
    await store.update_pour(pour_id, correction=fix.to_pour())
    await rig.sup.start_pour(pour_id, "scada")
    rig.link.set_measurement("plant_mode", 2)
    await rig.step(20)
    active = rig.sup.active_pour
    assert active is not None and active.correction == fix
    output = rig.sup.last_output()
    assert output is not None and output.measured_solids_fraction is not None
    reading = rig.link.snapshot().measurements["paste_density_pv"].value
    assert isinstance(reading, float)
    assert output.measured_solids_fraction == pytest.approx(
        measured_solids_fraction(reading - bias, RECIPE), rel=1e-9
    )
