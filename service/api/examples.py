"""One example request body for every operation that takes one, keyed by operationId
(the route function's name, :func:`service.api.openapi.operation_id`).

The schema carries each as its body's ``example`` (:func:`service.api.openapi.install`
refuses to build a schema with a body that has none), so the docs' "Try it out" starts
from a request the service accepts, and an integrator reads a whole, plausible call: the
integration contract's own examples where it gives one (``proportion``,
``strength_required``, ``create_pour``), otherwise a mix, stope and lab sheet of the same
plant (tailings Gs 3.05, a 20/80 cement/slag blend, a 30 m stope 15 m long). Ids of
records the caller made first (a recipe, a calibration) are written as such; the tests
post every example to a running service with those ids put in.
"""

from __future__ import annotations

from typing import Any

ENGINEER = "J. Mokoena"
"""The approving engineer of the examples."""

_TAILINGS = {"specific_gravity": 3.05, "moisture_pct": 31.58}
_BLEND = [
    {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
    {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
]
_MIX = {"tailings": _TAILINGS, "binder": _BLEND, "binder_pct": 4.5, "solids_pct": 76.0}
_BODY_STOPE = {
    "method": "mitchell",
    "fill_height_m": 30,
    "exposed_length_m": 15,
    "unit_weight_kn_m3": 20,
    "safety_factor": 1.5,
}
_PIPELINE = {"length_m": 1200, "inner_diameter_m": 0.15, "static_head_m": -150, "flow_m3_h": 100}

# A lab's cylinder sheet: the strength calibration's CSV form (sample, blend, Bw, Cw,
# age, UCS), rows of the shipped synthetic example across blends, doses and ages.
_CYLINDERS_CSV = """\
sample_id,cement_fraction_pct,slag_fraction_pct,binder_pct,solids_pct,curing_days,ucs_kpa
EX-001,100,0,3,76,7,266
EX-016,100,0,4.5,76,56,794
EX-026,100,0,6,76,14,756
EX-033,100,0,8,72,7,621
EX-008,100,0,3,80,56,611
EX-041,70,30,3,76,7,183
EX-056,70,30,4.5,76,56,977
EX-066,70,30,6,76,14,687
EX-073,70,30,8,72,7,545
EX-048,70,30,3,80,56,716
EX-081,50,50,3,76,7,180
EX-096,50,50,4.5,76,56,934
EX-106,50,50,6,76,14,567
EX-113,50,50,8,72,7,432
EX-088,50,50,3,80,56,809
EX-121,20,80,3,76,7,128
EX-136,20,80,4.5,76,56,1126
EX-146,20,80,6,76,14,595
EX-153,20,80,8,72,7,373
EX-128,20,80,3,80,56,803
"""

# The mine's vane and slump tests (slump in an Abrams cone, converted to yield stress
# with the paste's density).
_RHEOLOGY_ROWS: list[dict[str, Any]] = [
    {"sample_id": sid, "solids_pct": cw, "binder_pct": bw, **measured}
    for sid, cw, bw, measured in (
        ("RH-001", 70, 3, {"yield_stress_pa": 24, "plastic_viscosity_pa_s": 0.109}),
        ("RH-005", 72, 5, {"yield_stress_pa": 54, "plastic_viscosity_pa_s": 0.149}),
        ("RH-009", 74, 8, {"yield_stress_pa": 108, "plastic_viscosity_pa_s": 0.216}),
        ("RH-010", 76, 3, {"yield_stress_pa": 132, "plastic_viscosity_pa_s": 0.281}),
        ("RH-014", 78, 5, {"yield_stress_pa": 273, "plastic_viscosity_pa_s": 0.444}),
        ("RH-018", 80, 8, {"yield_stress_pa": 517, "plastic_viscosity_pa_s": 0.575}),
        ("RH-019", 72, 4.5, {"slump_mm": 270, "density_kg_m3": 1937, "slump_mould": "cone"}),
        ("RH-023", 76, 4.5, {"slump_mm": 225, "density_kg_m3": 2044, "slump_mould": "cone"}),
        ("RH-026", 78, 6, {"slump_mm": 195, "density_kg_m3": 2101, "slump_mould": "cone"}),
    )
]

_LAB_SHEET_CSV = """\
sample_id,cast_at,curing_days,ucs_kpa,wet_mass_g,dry_mass_g,volume_cm3
S-101-P1-A,2026-03-02T08:40:00,7,268,1391.0,1057.2,695.0
S-101-P1-B,2026-03-02T08:40:00,28,712,1389.5,1056.0,695.0
"""

REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "proportion": {
        "tailings": _TAILINGS,
        "binder": _BLEND,
        "binder_pct": 4.5,
        "solids_pct": 70.0,
        "volume_m3": 1.0,
    },
    "optimize": {
        "requirements": [
            {"name": "plug", "required_ucs_kpa": 300, "curing_days": 7},
            {"name": "body", "stope": _BODY_STOPE, "curing_days": 28},
        ],
        "pass_fraction_pct": 90,
        "binders": [
            {"name": "cement", "specific_gravity": 3.15, "price_per_t": 185},
            {"name": "slag", "specific_gravity": 2.90, "price_per_t": 120, "max_fraction_pct": 80},
        ],
        "tailings": _TAILINGS,
        "solids_pct_min": 72,
        "solids_pct_max": 80,
        "binder_pct_min": 3,
        "binder_pct_max": 8,
        "max_pump_pressure_kpa": 6000,
        "pipeline": _PIPELINE,
        "stope_volume_m3": 4500,
    },
    "create_recipe": {"name": "S-101 body", "mix": _MIX},
    "approve_recipe": {"approved_by": ENGINEER},
    "strength_required": _BODY_STOPE,
    "strength_arching": {
        "depth_m": 20,
        "unit_weight_kn_m3": 20,
        "stope_width_m": 10,
        "stope_length_m": 15,
        "friction_angle_deg": 30,
    },
    "create_calibration": {
        "name": "Mine lab cylinders 2026-Q1",
        "csv": _CYLINDERS_CSV,
        "reference_component": "cement",
    },
    "propose_recalibration": {"use_lab_solids": True},
    "approve_calibration": {"approved_by": ENGINEER},
    "predict": {
        "blend": {"cement": 20, "slag": 80},
        "binder_pct": 4.5,
        "solids_pct": 76,
        "curing_days": 28,
        "pass_fraction_pct": 90,
        "required_ucs_kpa": 300,
    },
    "create_rheology_calibration": {
        "name": "Mine vane and slump tests 2026-Q1",
        "rows": _RHEOLOGY_ROWS,
    },
    "predict_rheology": {
        "solids_pct": 76,
        "binder_pct": 4.5,
        "density_kg_m3": 2044,
        "pipeline": _PIPELINE,
    },
    "create_pour": {
        "stope_id": "S-102",
        "recipe": _MIX,
        "target_volume_m3": 50,
        "paste_flow_m3_h": 100,
        "sample_ids": ["S-101-P1-A", "S-101-P1-B"],
    },
    "add_samples": {"sample_ids": ["S-101-P1-C", "S-101-P1-D"], "test_ages_days": [7, 28, 56]},
    "create_stope": {
        "name": "S-101",
        "height_m": 30,
        "length_m": 15,
        "width_m": 10,
        "barricade_rating_kpa": 200,
        "barricade_high_alarm_pct": 80,
        "barricade_tags": ["barricade_pressure_pv"],
    },
    "add_plan": {
        "stages": [
            {
                "name": "plug",
                "recipe_id": "the-plug-recipe-id",
                "top_height_m": 4,
                "max_rise_rate_m_h": 0.5,
                "cure_hold_h": 48,
                "requirements": [{"name": "plug", "ucs_kpa": 300, "curing_days": 7}],
            },
            {
                "name": "body",
                "recipe_id": "the-body-recipe-id",
                "top_height_m": 30,
                "max_rise_rate_m_h": 1.0,
                "requirements": [{"name": "exposure", "ucs_kpa": 300, "curing_days": 28}],
            },
        ],
        "continuous": False,
    },
    "create_stage_pour": {"paste_flow_m3_h": 100, "sample_ids": ["S-101-PLUG-A"]},
    "release_hold": {
        "reason": "plug cylinders at 2 d (sheet of 2026-03-04) read 212 and 205 kPa; the "
        "barricade reads 41 kPa"
    },
    "abandon_stage": {"reason": "the feed is too wet for the plug recipe; a new plug follows"},
    "close_stope": {"reason": "hanging wall failure: the stope is left as it is"},
    "enter_result": {
        "curing_days": 28,
        "ucs_kpa": 712,
        "wet_mass_g": 1389.5,
        "dry_mass_g": 1056.0,
        "volume_cm3": 695.0,
    },
    "import_sheet": {"csv": _LAB_SHEET_CSV, "timezone": "Africa/Johannesburg"},
    "propose_reconciliation": {
        "cast_from": "2026-03-01T00:00:00+02:00",
        "cast_to": "2026-04-01T00:00:00+02:00",
        "masses_of": "fresh_paste",
        "confidence_pct": 95,
    },
    "approve_reconciliation": {"approved_by": ENGINEER},
}
