"""POST /strength/required and /strength/arching over HTTP, lifespan running."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from tests.conftest import auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

URL = "/api/v1/strength/required"
# Mitchell, Olsen & Smith (1982), Can. Geotech. J. 19(1):14-28, by hand: FS gamma H / (1 + H/L)
# = 1.5 x 20 kN/m3 x 30 m / (1 + 30/15) = 300 kPa, cohesion c = UCS/2 = 150 kPa.
MITCHELL: dict[str, Any] = {
    "method": "mitchell",
    "fill_height_m": 30,
    "exposed_length_m": 15,
    "unit_weight_kn_m3": 20,
    "safety_factor": 1.5,
}
LI_AUBERTIN: dict[str, Any] = {
    "method": "li_aubertin",
    "fill_height_m": 30,
    "exposed_length_m": 15,
    "stope_width_m": 8,
    "unit_weight_kn_m3": 20,
    "safety_factor": 1.0,
    "friction_angle_deg": 0,
    "cohesion_ratio": 1,
    "surcharge_kpa": 0,
}


async def test_mitchell_30_m_high_15_m_exposed_needs_300_kpa(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=MITCHELL, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["required_ucs_kpa"] == pytest.approx(300.0, rel=1e-12)
    assert out["computed_ucs_kpa"] == pytest.approx(300.0, rel=1e-12)
    assert out["governed_by"] == "computed"
    assert out["method"] == "mitchell"
    assert "Mitchell" in out["citation"] and "1982" in out["citation"]
    assert out["cohesion_kpa"] == pytest.approx(150.0)
    assert "multiplies" in out["fs_definition"]


async def test_li_aubertin_reduces_to_mitchell_for_a_frictionless_fill(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(URL, json=LI_AUBERTIN, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    modified = r.json()
    # phi 0, r_b 1, p0 0, FS 1: Mitchell's form with the wedge height H* = H - B/2.
    effective = 30 - 8 / 2
    mitchell = {**MITCHELL, "fill_height_m": effective, "safety_factor": 1.0}
    original = (await client.post(URL, json=mitchell, headers=auth("hmi"))).json()
    assert modified["required_ucs_kpa"] == pytest.approx(original["required_ucs_kpa"], rel=1e-12)
    assert modified["required_ucs_kpa"] == pytest.approx(
        20 * effective / (1 + effective / 15), rel=1e-12
    )
    assert modified["effective_height_m"] == pytest.approx(effective)
    assert modified["sliding_plane_angle_deg"] == pytest.approx(45.0)
    assert modified["method"] == "li_aubertin"
    assert "Li" in modified["citation"] and "2012" in modified["citation"]
    assert "sliding wedge" in modified["fs_definition"]


@pytest.mark.parametrize(("fs", "ucs_kpa"), [(1.0, 253.8), (1.5, 325.1)])
async def test_li_aubertin_answers_the_published_figure(
    client: httpx.AsyncClient, fs: float, ucs_kpa: float
) -> None:
    body = {**LI_AUBERTIN, "stope_width_m": 6, "friction_angle_deg": 30, "safety_factor": fs}
    r = await client.post(URL, json=body, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert round(out["computed_ucs_kpa"], 1) == ucs_kpa
    assert out["required_ucs_kpa"] == out["computed_ucs_kpa"]  # above the 100 kPa floor


async def test_li_aubertin_defaults_and_friction(client: httpx.AsyncClient) -> None:
    body = {k: v for k, v in LI_AUBERTIN.items() if k not in ("cohesion_ratio", "surcharge_kpa")}
    same = (await client.post(URL, json=body, headers=auth("hmi"))).json()
    full = (await client.post(URL, json=LI_AUBERTIN, headers=auth("hmi"))).json()
    assert same["required_ucs_kpa"] == full["required_ucs_kpa"]
    rubbly = {**LI_AUBERTIN, "friction_angle_deg": 30}
    out = (await client.post(URL, json=rubbly, headers=auth("hmi"))).json()
    assert out["sliding_plane_angle_deg"] == pytest.approx(60.0)
    assert out["required_ucs_kpa"] > 0


async def test_a_floor_governs_when_above_the_computed_strength(
    client: httpx.AsyncClient,
) -> None:
    small = {**MITCHELL, "fill_height_m": 6, "floors_kpa": {"liquefaction": 150}}
    out = (await client.post(URL, json=small, headers=auth("scada"))).json()
    computed = 1.5 * 20 * 6 / (1 + 6 / 15)
    assert out["computed_ucs_kpa"] == pytest.approx(computed)
    assert out["required_ucs_kpa"] == 150
    assert out["governed_by"] == "liquefaction"
    assert out["floors_kpa"] == {"liquefaction": 150}
    high = {**MITCHELL, "floors_kpa": {"liquefaction": 150, "sill_mat": 1000}}
    out = (await client.post(URL, json=high, headers=auth("scada"))).json()
    assert (out["required_ucs_kpa"], out["governed_by"]) == (1000, "sill_mat")
    below = {**MITCHELL, "floors_kpa": {"liquefaction": 150}}
    out = (await client.post(URL, json=below, headers=auth("scada"))).json()
    assert (out["required_ucs_kpa"], out["governed_by"]) == (pytest.approx(300.0), "computed")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in LI_AUBERTIN.items() if k != "stope_width_m"}, "stope_width_m"),
        ({k: v for k, v in LI_AUBERTIN.items() if k != "friction_angle_deg"}, "friction_angle_deg"),
        ({**MITCHELL, "friction_angle_deg": 30}, "friction_angle_deg"),
        ({**MITCHELL, "surcharge_kpa": 10}, "surcharge_kpa"),
        ({**MITCHELL, "method": "terzaghi"}, "method"),
        ({k: v for k, v in MITCHELL.items() if k != "method"}, "method"),
        ({k: v for k, v in MITCHELL.items() if k != "fill_height_m"}, "fill_height_m"),
        ({**MITCHELL, "fill_height_m": 0}, "fill_height_m"),
        ({**MITCHELL, "fill_height_m": -30}, "fill_height_m"),
        ({**MITCHELL, "exposed_length_m": "NaN"}, "exposed_length_m"),
        ({**MITCHELL, "unit_weight_kn_m3": "Infinity"}, "unit_weight_kn_m3"),
        ({**MITCHELL, "safety_factor": 0.8}, "safety_factor"),
        ({**MITCHELL, "colour": "grey"}, "colour"),
        ({**MITCHELL, "floors_kpa": {"liquefaction": -1}}, "floors_kpa.liquefaction"),
        ({**LI_AUBERTIN, "friction_angle_deg": 75}, "friction_angle_deg"),
        ({**LI_AUBERTIN, "cohesion_ratio": 1.5}, "cohesion_ratio"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await client.post(URL, json=body, headers=auth("hmi"))
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["code"] == "validation_error"
    assert err["field"] == field, err
    assert field in err["detail"]


async def test_a_core_refusal_names_the_field(client: httpx.AsyncClient) -> None:
    # The sliding plane from a 40 m wide stope rises above a 30 m fill.
    wide = {**LI_AUBERTIN, "stope_width_m": 40}
    r = await client.post(URL, json=wide, headers=auth("hmi"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert r.json()["field"] == "stope_width_m"


async def test_arching_reduces_the_vertical_stress(client: httpx.AsyncClient) -> None:
    body = {"depth_m": 40, "unit_weight_kn_m3": 20, "stope_width_m": 10, "friction_angle_deg": 30}
    r = await client.post("/api/v1/strength/arching", json=body, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    out = r.json()
    ka = math.tan(math.radians(30)) ** 2  # tan^2(45 - 30/2)
    rate = 2 / 10 * ka * math.tan(math.radians(30))
    expected = 20 / rate * (1 - math.exp(-rate * 40))
    assert out["vertical_stress_kpa"] == pytest.approx(expected, rel=1e-12)
    assert out["geostatic_stress_kpa"] == pytest.approx(800.0)
    assert 0 < out["arching_ratio"] < 1
    assert out["earth_pressure_coefficient"] == pytest.approx(ka)
    assert "Marston" in out["citation"]
    top = {**body, "depth_m": 0}
    out = (await client.post("/api/v1/strength/arching", json=top, headers=auth("hmi"))).json()
    assert out["vertical_stress_kpa"] == 0 and out["arching_ratio"] is None
    bad = {**body, "stope_width_m": 0}
    r = await client.post("/api/v1/strength/arching", json=bad, headers=auth("hmi"))
    assert (r.status_code, r.json()["field"]) == (422, "stope_width_m")


@pytest.mark.parametrize("role", ["hmi", "scada", "engineer", "admin", None])
@pytest.mark.parametrize("path", ["required", "arching"])
async def test_any_valid_key_may_compute(
    client: httpx.AsyncClient, role: str | None, path: str
) -> None:
    body = (
        MITCHELL
        if path == "required"
        else {"depth_m": 10, "unit_weight_kn_m3": 20, "stope_width_m": 5, "friction_angle_deg": 30}
    )
    headers = auth(role) if role else {}
    r = await client.post(f"/api/v1/strength/{path}", json=body, headers=headers)
    if role is None:
        assert r.status_code == 401
        assert r.json()["code"] == "unauthorized"
    else:
        assert r.status_code == 200, r.text
