"""Designs an engineer can sign, over HTTP with the service running on the shipped
EXAMPLE calibrations: predictions at a pass fraction, validity on the model's own
regressors, several requirements at once, floors, and pumpability."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

BLEND = {"cement": 20, "slag": 80}
PIPELINE = {"length_m": 1200, "inner_diameter_m": 0.15, "static_head_m": 20, "flow_m3_h": 100}
DESIGN: dict[str, Any] = {
    "requirements": [
        {"name": "plug", "required_ucs_kpa": 150, "curing_days": 7},
        {"name": "body", "required_ucs_kpa": 700, "curing_days": 28},
    ],
    "binders": [
        {"name": "cement", "specific_gravity": 3.15, "price_per_t": 180},
        {"name": "slag", "specific_gravity": 2.90, "price_per_t": 90, "max_fraction_pct": 80},
    ],
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "solids_pct_min": 70,
    "binder_pct_min": 3,
    "binder_pct_max": 10,
    "pipeline": PIPELINE,
    "max_pump_pressure_kpa": 7000,
}


async def example(client: httpx.AsyncClient, path: str) -> str:
    listed = (await client.get(f"/api/v1/{path}", headers=auth("hmi"))).json()
    return str(next(c["id"] for c in listed if c["example"]))


async def predict(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    cid = await example(client, "calibrations")
    return await client.post(f"/api/v1/calibrations/{cid}/predict", json=body, headers=auth("hmi"))


async def test_a_prediction_states_its_pass_fraction(client: httpx.AsyncClient) -> None:
    body = {"blend": BLEND, "binder_pct": 5, "solids_pct": 76, "curing_days": 28}
    r = await predict(client, {**body, "required_ucs_kpa": 500})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["pass_fraction_pct"] == 90.0  # the site's default
    assert p["median_ucs_kpa"] == p["ucs_kpa"] > p["lower_ucs_kpa"] > 0
    assert 0 < p["leverage"] <= p["leverage_max"]
    assert p["degrees_of_freedom"] > 100
    # A requirement at the lower bound passes 90 % of cylinders; at the median, half.
    at_lower = await predict(client, {**body, "required_ucs_kpa": p["lower_ucs_kpa"]})
    assert at_lower.json()["pass_probability_pct"] == pytest.approx(90.0, abs=1e-6)
    at_median = await predict(client, {**body, "required_ucs_kpa": p["median_ucs_kpa"]})
    assert at_median.json()["pass_probability_pct"] == pytest.approx(50.0, abs=1e-6)
    stricter = (await predict(client, {**body, "pass_fraction_pct": 99})).json()
    assert stricter["lower_ucs_kpa"] < p["lower_ucs_kpa"]
    r = await predict(client, {**body, "pass_fraction_pct": 40})
    assert (r.status_code, r.json()["field"]) == (422, "pass_fraction_pct")


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        # Bw and Cw each inside their tested ranges, Mb/Mw 18 % below the tested minimum.
        ({"binder_pct": 3, "solids_pct": 72.25, "curing_days": 28}, "ln_binder_water"),
        # Tested at 7-56 days.
        ({"binder_pct": 5, "solids_pct": 76, "curing_days": 2.2}, "ln_curing_days"),
    ],
)
async def test_a_model_is_valid_only_where_it_was_tested(
    client: httpx.AsyncClient, point: dict[str, Any], reason: str
) -> None:
    r = await predict(client, {"blend": BLEND, **point})
    assert r.status_code == 422, r.text
    err = r.json()
    assert (err["code"], err["variable"]) == ("outside_calibration_range", reason)
    flagged = await predict(client, {"blend": BLEND, **point, "allow_extrapolation": True})
    assert flagged.status_code == 200
    out = flagged.json()
    assert out["extrapolated"] is True and reason in out["outside"]
    detail = next(d for d in out["outside_details"] if d["variable"] == reason)
    assert not detail["accepted_min"] <= detail["value"] <= detail["accepted_max"]


async def test_a_plug_and_a_body_at_the_pass_fraction_within_the_pump(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/api/v1/recipes/optimize", json=DESIGN, headers=auth("engineer"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["pass_fraction_pct"] == 90.0
    checks = {c["name"]: c for c in out["recipe"]["requirements"]}
    assert set(checks) == {"plug", "body"}
    assert [n for n, c in checks.items() if c["binding"]] == [out["binding_requirement"]]
    for check in checks.values():
        assert check["pass_probability_pct"] >= 90.0 - 1e-6, check
        assert check["lower_ucs_kpa"] >= check["required_ucs_kpa"] * (1 - 1e-9)
        assert not check["extrapolated"]
    pump = out["recipe"]["pumpability"]
    assert pump["pump_pressure_kpa"] <= 7000 * (1 + 1e-9)
    assert pump["yield_stress_pa"] > 0 and 0 < pump["slump_mm"] < 300
    assert pump["line"]["laminar"] is True
    assert out["rheology_calibration"]["example"] is True
    # The line, not a fixed Cw, bounds the solids: without the limit the design is thicker.
    free = {**DESIGN, "max_pump_pressure_kpa": None, "solids_pct_max": 85}
    r = await client.post("/api/v1/recipes/optimize", json=free, headers=auth("engineer"))
    unlimited = r.json()
    if unlimited["recipe"]["pumpability"]["pump_pressure_kpa"] > 7000:
        assert "max_pump_pressure_kpa" in out["binding_constraints"]
    assert unlimited["recipe"]["binder_cost_per_m3"] <= out["recipe"]["binder_cost_per_m3"] + 1e-9
    # A pump pressure limit needs the line.
    r = await client.post(
        "/api/v1/recipes/optimize",
        json={**DESIGN, "pipeline": None},
        headers=auth("engineer"),
    )
    assert r.status_code == 422


async def test_a_single_requirement_is_met_at_the_pass_fraction(client: httpx.AsyncClient) -> None:
    body = {
        **{k: v for k, v in DESIGN.items() if k != "requirements"},
        "required_ucs_kpa": 500,
        "curing_days": 28,
    }
    median = {**body, "pass_fraction_pct": 50, "design_basis": "expected"}
    expected = {**body, "design_basis": "expected"}
    url = "/api/v1/recipes/optimize"
    at_90 = (await client.post(url, json=body, headers=auth("hmi"))).json()
    at_90_expected = (await client.post(url, json=expected, headers=auth("hmi"))).json()
    at_50 = (await client.post(url, json=median, headers=auth("hmi"))).json()
    assert at_90["binding_requirement"] == "required_ucs"
    # The site's default: 90 % of cylinders with 95 % confidence, and said so.
    assert (at_90["design_basis"], at_90["confidence_pct"]) == ("tolerance", 95)
    assert at_90["recipe"]["confidence_pct"] == 95
    assert "at least 90 % of cylinders" in at_90["design_statement"]
    assert "95 % confidence" in at_90["design_statement"]
    (check,) = at_90["recipe"]["requirements"]
    assert check["tolerance_lower_ucs_kpa"] >= 500 * (1 - 1e-9)
    assert check["tolerance_lower_ucs_kpa"] < check["lower_ucs_kpa"]
    assert check["pass_probability_pct"] > 90
    # The expected basis meets the prediction bound instead, with less binder.
    assert (at_90_expected["design_basis"], at_90_expected["confidence_pct"]) == ("expected", None)
    assert "expected" in at_90_expected["design_statement"]
    (expected_check,) = at_90_expected["recipe"]["requirements"]
    assert expected_check["pass_probability_pct"] == pytest.approx(90, abs=1e-6)
    assert expected_check["tolerance_lower_ucs_kpa"] is None
    assert at_90_expected["recipe"]["binder_kg_m3"] < at_90["recipe"]["binder_kg_m3"]
    # Designing for 90 % costs binder; the median design passes about half.
    assert at_90_expected["recipe"]["binder_kg_m3"] > at_50["recipe"]["binder_kg_m3"]
    assert at_50["recipe"]["requirements"][0]["pass_probability_pct"] == pytest.approx(50, abs=1)
    # A confidence belongs to a tolerance design.
    r = await client.post(url, json={**expected, "confidence_pct": 95}, headers=auth("hmi"))
    assert (r.status_code, r.json()["field"]) == (422, "confidence_pct")
    r = await client.post(url, json={**body, "confidence_pct": 40}, headers=auth("hmi"))
    assert (r.status_code, r.json()["field"]) == (422, "confidence_pct")


async def test_floors_apply_by_default_and_are_named(client: httpx.AsyncClient) -> None:
    low = {
        "method": "mitchell",
        "fill_height_m": 4,
        "exposed_length_m": 10,
        "unit_weight_kn_m3": 20,
        "safety_factor": 1.0,
    }
    r = await client.post("/api/v1/strength/required", json=low, headers=auth("hmi"))
    out = r.json()
    assert out["computed_ucs_kpa"] < 100
    assert (out["required_ucs_kpa"], out["governed_by"]) == (100.0, "liquefaction")
    assert out["binding_floors"] == ["liquefaction"]
    both = {**low, "floors_kpa": {"sill_mat": 1000}}
    out = (await client.post("/api/v1/strength/required", json=both, headers=auth("hmi"))).json()
    assert out["governed_by"] == "sill_mat"
    assert sorted(out["binding_floors"]) == ["liquefaction", "sill_mat"]
    none = {**low, "floors_kpa": {"liquefaction": 0}}
    out = (await client.post("/api/v1/strength/required", json=none, headers=auth("hmi"))).json()
    assert (out["governed_by"], out["binding_floors"]) == ("computed", [])


async def test_each_method_states_its_factor_of_safety(client: httpx.AsyncClient) -> None:
    """At phi = 0 in a narrow stope (H* ~ H) the two methods meet at FS 1 only: Mitchell as
    commonly applied multiplies by FS, Li & Aubertin solve the wedge at FS."""
    for fs in (1.0, 1.5, 2.0, 3.0):
        common = {
            "fill_height_m": 30,
            "exposed_length_m": 15,
            "unit_weight_kn_m3": 20,
            "safety_factor": fs,
            "floors_kpa": {"liquefaction": 0},
        }
        mitchell = {"method": "mitchell", **common}
        li = {**common, "method": "li_aubertin", "stope_width_m": 0.01, "friction_angle_deg": 0}
        a = await client.post("/api/v1/strength/required", json=mitchell, headers=auth("hmi"))
        b = await client.post("/api/v1/strength/required", json=li, headers=auth("hmi"))
        assert a.json()["required_ucs_kpa"] == pytest.approx(fs * 600 / 3)  # FS x 20 x 30 / 3
        h_star = 30 - 0.005
        assert b.json()["required_ucs_kpa"] == pytest.approx(
            fs * 20 * h_star / (1 + fs * h_star / 15), rel=1e-12
        )
        assert "multiplies" in a.json()["fs_definition"]
        assert "sliding wedge" in b.json()["fs_definition"]


RHEOLOGY_CSV = (
    "solids_pct,binder_pct,yield_stress_pa,slump_mm,density_kg_m3,plastic_viscosity_pa_s,"
    "slump_mould\n"
    """70,4,28,,1890,0.11,
72,4,48,,1940,0.15,
74,4,80,,1990,0.21,
76,4,140,,2040,0.29,
78,4,240,,2100,0.42,
74,7,95,,1990,0.22,
76,7,165,,2040,0.30,
72,7,,235,1940,,cone
"""
)


async def test_a_rheology_calibration_from_the_mines_tests(client: httpx.AsyncClient) -> None:
    body = {"name": "mine vane 2026-11", "csv": RHEOLOGY_CSV}
    r = await client.post("/api/v1/rheology/calibrations", json=body, headers=auth("scada"))
    assert r.status_code == 403
    r = await client.post("/api/v1/rheology/calibrations", json=body, headers=auth("engineer"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["n_rows"], made["slump_rows"], made["example"]) == (8, 1, False)
    assert made["coefficients"]["solids"] > 0  # yield stress rises with solids
    assert made["cylinder_slump_rows"] == 0
    assert made["rows"][-1]["slump_mould"] == "cone"
    assert made["rows"][-1]["fitted_yield_stress_pa"] > 0
    assert made["r2_log"] > 0.85
    listed = (await client.get("/api/v1/rheology/calibrations", headers=auth("hmi"))).json()
    assert {c["id"] for c in listed} >= {made["id"], await example(client, "rheology/calibrations")}
    got = await client.get(f"/api/v1/rheology/calibrations/{made['id']}", headers=auth("hmi"))
    assert got.json() == made  # a stored version reads back the same
    url = f"/api/v1/rheology/calibrations/{made['id']}/predict"
    point = {"solids_pct": 75, "binder_pct": 5, "density_kg_m3": 2015, "pipeline": PIPELINE}
    p = (await client.post(url, json=point, headers=auth("hmi"))).json()
    assert 80 < p["yield_stress_pa"] < 160
    assert 0 < p["slump_mm"] < 300
    assert p["line"]["pump_pressure_kpa"] > p["line"]["static_pressure_kpa"] > 0
    thicker = await client.post(url, json={**point, "solids_pct": 77}, headers=auth("hmi"))
    assert thicker.json()["line"]["pump_pressure_kpa"] > p["line"]["pump_pressure_kpa"]
    assert thicker.json()["slump_mm"] < p["slump_mm"]
    far = await client.post(url, json={**point, "solids_pct": 85}, headers=auth("hmi"))
    assert (far.status_code, far.json()["code"]) == (422, "outside_calibration_range")
    # A design with the mine's own calibration names it.
    design = {**DESIGN, "rheology_calibration_id": made["id"], "max_pump_pressure_kpa": 9000}
    out = await client.post("/api/v1/recipes/optimize", json=design, headers=auth("hmi"))
    assert out.status_code == 200, out.text
    assert out.json()["rheology_calibration"]["id"] == made["id"]
    # A slump must name its mould.
    unnamed = {**body, "csv": RHEOLOGY_CSV.replace(",cone", ",")}
    r = await client.post("/api/v1/rheology/calibrations", json=unnamed, headers=auth("engineer"))
    assert (r.status_code, r.json()["field"]) == (422, "csv.rows[7].slump_mould")
    bad = {**body, "csv": "solids_pct,binder_pct,yield_stress_pa\n70,4,x\n"}
    r = await client.post("/api/v1/rheology/calibrations", json=bad, headers=auth("engineer"))
    assert (r.status_code, r.json()["field"]) == (422, "csv.rows[0].yield_stress_pa")


async def test_cylinder_and_cone_slump_rows_are_converted_in_their_own_mould(
    client: httpx.AsyncClient,
) -> None:
    vane = [
        {"solids_pct": cw, "binder_pct": 4, "yield_stress_pa": tau, "density_kg_m3": rho}
        for cw, tau, rho in ((70, 28, 1890), (72, 48, 1940), (74, 80, 1990), (78, 240, 2100))
    ]
    slumps = [
        {"solids_pct": 76, "binder_pct": 5, "slump_mm": 178, "density_kg_m3": 2000,
         "slump_mould": "cone", "sample_id": "SL-CONE"},
        {"solids_pct": 76, "binder_pct": 6, "slump_mm": 178, "density_kg_m3": 2000,
         "slump_mould": "cylinder", "mould_height_mm": 300, "sample_id": "SL-CYL"},
    ]  # fmt: skip
    body = {"name": "mine slumps", "rows": vane + slumps}
    r = await client.post("/api/v1/rheology/calibrations", json=body, headers=auth("engineer"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["slump_rows"], made["cylinder_slump_rows"]) == (2, 1)
    rows = {row["sample_id"]: row for row in made["rows"]}
    # One slump of 178 mm at 2,000 kg/m3: 296 Pa in the Abrams cone, 399 Pa in a 300 mm
    # cylinder (Pashias et al. 1996).
    assert round(rows["SL-CONE"]["fitted_yield_stress_pa"], 1) == 296.2
    assert round(rows["SL-CYL"]["fitted_yield_stress_pa"], 1) == 399.1
    assert (rows["SL-CYL"]["slump_mould"], rows["SL-CYL"]["mould_height_mm"]) == ("cylinder", 300)
    got = await client.get(f"/api/v1/rheology/calibrations/{made['id']}", headers=auth("hmi"))
    assert got.json() == made
    # The prediction states its slump in either mould.
    url = f"/api/v1/rheology/calibrations/{made['id']}/predict"
    point = {"solids_pct": 75, "binder_pct": 5, "density_kg_m3": 2000}
    cone = (await client.post(url, json=point, headers=auth("hmi"))).json()
    cylinder = (
        await client.post(
            url,
            json={**point, "slump_mould": "cylinder", "mould_height_mm": 300},
            headers=auth("hmi"),
        )
    ).json()
    assert (cone["slump_mould"], cone["mould_height_mm"]) == ("cone", 300)
    assert cylinder["slump_mould"] == "cylinder"
    assert cylinder["slump_mm"] > cone["slump_mm"]  # the same paste slumps more in a cylinder
    for bad, field in (
        ({**slumps[0], "slump_mould": None}, "rows[4].slump_mould"),
        ({**slumps[1], "mould_height_mm": None}, "rows[4].mould_height_mm"),
        ({**slumps[0], "mould_height_mm": 250}, "rows[4].mould_height_mm"),
        ({**slumps[1], "slump_mm": 310}, "rows[4].mould_height_mm"),
        ({**slumps[0], "slump_mould": "funnel"}, "rows[4].slump_mould"),
    ):
        r = await client.post(
            "/api/v1/rheology/calibrations",
            json={"name": "bad", "rows": [*vane, bad]},
            headers=auth("engineer"),
        )
        assert (r.status_code, r.json()["field"]) == (422, field), (bad, r.text)


async def test_a_borehole_line_that_cannot_run_full_is_a_design_condition(
    client: httpx.AsyncClient,
) -> None:
    rid = await example(client, "rheology/calibrations")
    url = f"/api/v1/rheology/calibrations/{rid}/predict"
    borehole = {"length_m": 1500, "inner_diameter_m": 0.15, "static_head_m": -600, "flow_m3_h": 100}
    point = {"solids_pct": 76, "binder_pct": 5, "density_kg_m3": 2044, "pipeline": borehole}
    r = await client.post(url, json=point, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    line = r.json()["line"]
    # The full-line pressure is negative: the symptom. The answer says where it runs full.
    assert line["pump_pressure_kpa"] < 0 and line["runs_full"] is False
    (stretch,) = line["slack"]
    f = line["friction_kpa_per_m"]
    weight = 2044 * 9.80665 / 1000
    assert stretch["full_depth_m"] == pytest.approx(600 - 900 * f / (weight - f), rel=1e-9)
    assert line["pump_pressure_needed_kpa"] == 0
    assert "free-falls" in line["design_condition"]
    # A profile given section by section: a level run at the plant, then the shaft.
    profiled = {
        **borehole,
        "sections": [
            {"length_m": 200, "rise_m": 0},
            {"length_m": 600, "rise_m": -600},
            {"length_m": 700, "rise_m": 0},
        ],
    }
    out = (await client.post(url, json={**point, "pipeline": profiled}, headers=auth("hmi"))).json()
    (stretch,) = out["line"]["slack"]
    assert stretch["from_m"] == 200
    assert out["line"]["pump_pressure_needed_kpa"] == pytest.approx(200 * f, rel=1e-9)
    # A lift runs full.
    lift = {**borehole, "static_head_m": 30}
    out = (await client.post(url, json={**point, "pipeline": lift}, headers=auth("hmi"))).json()
    assert out["line"]["runs_full"] is True and out["line"]["design_condition"] is None
    # Impossible lines are refused, naming the field.
    for bad, field in (
        ({**borehole, "length_m": 500}, "pipeline.static_head_m"),
        ({**profiled, "length_m": 1600}, "pipeline.sections"),
        (
            {**profiled, "sections": [{"length_m": 100, "rise_m": -300}] * 5},
            "pipeline.sections[0].rise_m",
        ),
    ):
        r = await client.post(url, json={**point, "pipeline": bad}, headers=auth("hmi"))
        assert (r.status_code, r.json()["field"]) == (422, field), r.text
    # A design on that line states the condition with its pumpability.
    design = {
        **{k: v for k, v in DESIGN.items() if k != "max_pump_pressure_kpa"},
        "pipeline": borehole,
        "solids_pct_max": 76,
    }
    r = await client.post("/api/v1/recipes/optimize", json=design, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    pumped = r.json()["recipe"]["pumpability"]["line"]
    assert pumped["runs_full"] is False and pumped["design_condition"]
