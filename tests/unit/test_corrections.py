"""The correction as control and the pour records use it: what it changes in a mix and
a density reading, which recipes it applies to, the shape a pour carries, and a pour's
Cw reconciled from the figures it was controlled on."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from service.operations.corrections import (
    Correction,
    Paste,
    controlled_mix,
    corrected_density_kg_m3,
    correction_for,
    paste_of,
)
from service.operations.reconciled import reconciled_solids_pct

MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.80, "moisture_pct": 35.7},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 5.0,
    "solids_pct": 72.0,
}
GS = Correction(
    id="c-gs",
    kind="tailings_gs",
    tailings_sg=2.884,
    density_bias_kg_m3=None,
    assumed_tailings_sg=2.80,
    low=2.878,
    high=2.889,
    approved_by="G. Metallurgist",
    approved_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
)
GAUGE = Correction(
    id="c-gauge",
    kind="density_gauge",
    tailings_sg=None,
    density_bias_kg_m3=25.0,
    assumed_tailings_sg=2.80,
    low=20.0,
    high=30.0,
    approved_by="G. Metallurgist",
    approved_at=None,
)


def density(cw: float, paste: Paste, tailings_sg: float) -> float:
    """rho = rho_w / (Cw/Gs_s + 1 - Cw), Gs_s = (1 + Bw)/(1/Gs_t + Bw/Gs_b) (Belem &
    Benzaazoua 2008)."""
    bw = paste.binder_ratio
    gs_s = (1.0 + bw) / (1.0 / tailings_sg + bw / paste.binder_sg)
    return 1000.0 / (cw / gs_s + 1.0 - cw)


def cw(rho: float, paste: Paste, tailings_sg: float) -> float:
    bw = paste.binder_ratio
    gs_s = (1.0 + bw) / (1.0 / tailings_sg + bw / paste.binder_sg)
    return gs_s * (rho - 1000.0) / (rho * (gs_s - 1.0))


def test_a_gs_correction_changes_the_tailings_gs_of_the_mix_control_runs() -> None:
    before = copy.deepcopy(MIX)
    out = controlled_mix(MIX, GS)
    assert out["tailings"]["specific_gravity"] == 2.884
    assert out["tailings"]["moisture_pct"] == 35.7
    assert {k: v for k, v in out.items() if k != "tailings"} == {
        k: v for k, v in MIX.items() if k != "tailings"
    }
    assert before == MIX  # the stored recipe is not touched
    assert controlled_mix(MIX, GAUGE) == MIX
    assert controlled_mix(MIX, None) == MIX


def test_a_gauge_correction_takes_its_bias_off_the_reading() -> None:
    assert corrected_density_kg_m3(1900.0, GAUGE) == 1875.0
    assert corrected_density_kg_m3(1900.0, GS) == 1900.0
    assert corrected_density_kg_m3(1900.0, None) == 1900.0


def test_a_gs_correction_applies_to_the_tailings_it_corrected_a_gauge_one_to_all() -> None:
    other = {**MIX, "tailings": {"specific_gravity": 3.05, "moisture_pct": 30.0}}
    assert correction_for(MIX, GS) is GS
    assert correction_for(other, GS) is None
    assert correction_for(other, GAUGE) is GAUGE
    assert correction_for(MIX, None) is None


def test_the_shape_a_pour_carries_reads_back() -> None:
    for correction in (GS, GAUGE):
        stored = correction.to_pour()
        assert set(stored) == {
            "id",
            "kind",
            "tailings_sg",
            "density_bias_kg_m3",
            "assumed_tailings_sg",
            "low",
            "high",
            "approved_by",
            "approved_at",
        }
        assert Correction.from_pour(stored) == correction


def test_the_paste_of_a_mix() -> None:
    paste = paste_of(MIX)
    assert isinstance(paste, Paste)
    assert paste.binder_sg == pytest.approx(1.0 / (0.2 / 3.15 + 0.8 / 2.90))
    assert (paste.binder_ratio, paste.tailings_sg, paste.solids_fraction) == (0.05, 2.80, 0.72)
    aggregate = {**MIX, "aggregate": {"specific_gravity": 2.7, "fraction_pct": 30}}
    assert "aggregate" in str(paste_of(aggregate))
    assert isinstance(paste_of({**MIX, "binder": []}), str)


def test_a_pour_cw_is_reconciled_from_the_gauge_reading_behind_it() -> None:
    paste = paste_of(MIX)
    assert isinstance(paste, Paste)
    held = density(0.72, paste, 2.80)  # what control held, on the recipe's Gs
    # Controlled on the recipe's Gs, reconciled with the Gs correction.
    out = reconciled_solids_pct(72.0, paste, None, GS)
    assert out == pytest.approx(100.0 * cw(held, paste, 2.884), abs=1e-9)
    assert out < 71.0  # the heavier tailings: about a point leaner
    # Controlled on the correction itself: nothing left to reconcile.
    assert reconciled_solids_pct(72.0, paste, GS, GS) == pytest.approx(72.0, abs=1e-9)
    # A gauge reading 25 kg/m3 high: the paste was lighter than control saw.
    out = reconciled_solids_pct(72.0, paste, None, GAUGE)
    assert out == pytest.approx(100.0 * cw(held - 25.0, paste, 2.80), abs=1e-9)
    assert reconciled_solids_pct(72.0, paste, GAUGE, GAUGE) == pytest.approx(72.0, abs=1e-9)
    # Controlled with the gauge corrected, reconciled on the Gs: the raw reading is back.
    raw = density(0.72, paste, 2.80) + 25.0
    out = reconciled_solids_pct(72.0, paste, GAUGE, GS)
    assert out == pytest.approx(100.0 * cw(raw, paste, 2.884), abs=1e-9)
    assert reconciled_solids_pct(None, paste, None, GS) is None
