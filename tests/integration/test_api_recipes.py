"""The recipe endpoints over HTTP with the application's lifespan running."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from tests.conftest import PROPORTION_EXAMPLE, auth

# One application for the module (the client fixture of tests/integration/conftest.py).
pytestmark = pytest.mark.asyncio(loop_scope="module")

BODY: dict[str, Any] = PROPORTION_EXAMPLE


async def test_proportion_matches_first_principles(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/recipes/proportion", json=BODY, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    out = r.json()
    gs_b = 1 / (0.2 / 3.15 + 0.8 / 2.90)
    gs_s = 1.045 / (1 / 3.05 + 0.045 / gs_b)
    rho = 1 / (0.70 / (gs_s * 1000) + 0.30 / 1000)
    per = out["per_m3"]
    assert math.isclose(per["wet_density_kg_m3"], rho, rel_tol=1e-12)
    assert math.isclose(out["specific_gravity"]["binder"], gs_b, rel_tol=1e-12)
    mt = rho * 0.70 / 1.045
    assert math.isclose(per["dry_tailings_kg"], mt, rel_tol=1e-12)
    assert math.isclose(per["binder_kg"], 0.045 * mt, rel_tol=1e-12)
    assert math.isclose(per["binder_components_kg"]["slag"], 0.8 * 0.045 * mt, rel_tol=1e-12)
    assert math.isclose(per["water_to_add_kg"], rho * 0.30 - 0.3158 * mt, rel_tol=1e-12)
    # mass closes: everything in one m3 weighs the wet density
    parts = per["dry_tailings_kg"] + per["binder_kg"] + per["water_kg"]
    assert math.isclose(parts, per["wet_density_kg_m3"], rel_tol=1e-12)
    wc = 1.045 * 0.30 / (0.045 * 0.70)
    assert math.isclose(out["water_binder_ratio"], wc, rel_tol=1e-12)


async def test_proportion_for_a_volume_and_inverse_targets(client: httpx.AsyncClient) -> None:
    body = {**BODY, "volume_m3": 250.0}
    r = await client.post("/api/v1/recipes/proportion", json=body, headers=auth("scada"))
    out = r.json()
    assert math.isclose(out["total"]["binder_kg"], 250 * out["per_m3"]["binder_kg"], rel_tol=1e-12)
    wc = out["water_binder_ratio"]
    by_wc = {k: v for k, v in BODY.items() if k != "solids_pct"} | {"water_binder_ratio": wc}
    r2 = await client.post("/api/v1/recipes/proportion", json=by_wc, headers=auth("hmi"))
    assert r2.status_code == 200, r2.text
    assert math.isclose(r2.json()["solids_pct"], 70.0, rel_tol=1e-9)
    rho = out["per_m3"]["wet_density_kg_m3"]
    by_rho = {k: v for k, v in BODY.items() if k != "solids_pct"} | {"wet_density_kg_m3": rho}
    r3 = await client.post("/api/v1/recipes/proportion", json=by_rho, headers=auth("hmi"))
    assert math.isclose(r3.json()["solids_pct"], 70.0, rel_tol=1e-9)


async def test_aggregate_adds_its_masses(client: httpx.AsyncClient) -> None:
    body = {**BODY, "aggregate": {"specific_gravity": 2.7, "fraction_pct": 30, "moisture_pct": 2}}
    r = await client.post("/api/v1/recipes/proportion", json=body, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    per = r.json()["per_m3"]
    non_binder = per["dry_tailings_kg"] + per["dry_aggregate_kg"]
    assert math.isclose(per["dry_aggregate_kg"], 0.30 * non_binder, rel_tol=1e-12)
    assert math.isclose(per["binder_kg"], 0.045 * non_binder, rel_tol=1e-12)
    assert math.isclose(per["wet_aggregate_kg"], 1.02 * per["dry_aggregate_kg"], rel_tol=1e-12)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"binder_pct": -1}, "binder_pct"),
        ({"binder_pct": 0}, "binder_pct"),
        ({"solids_pct": 100.5}, "solids_pct"),
        ({"solids_pct": "NaN"}, "solids_pct"),
        ({"volume_m3": 0}, "volume_m3"),
        ({"tailings": {"specific_gravity": -3, "moisture_pct": 5}}, "tailings.specific_gravity"),
        ({"tailings": {"specific_gravity": 3, "moisture_pct": 5, "x": 1}}, "tailings.x"),
        ({"colour": "grey"}, "colour"),
        (
            {"binder": [{"name": "cement", "specific_gravity": 3.15, "fraction_pct": 120}]},
            "binder[0].fraction_pct",
        ),
        (
            {"binder": [{"name": "cement", "specific_gravity": 3.15, "fraction_pct": 90}]},
            "binder",
        ),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    body = {**BODY, **patch}
    r = await client.post("/api/v1/recipes/proportion", json=body, headers=auth("hmi"))
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["code"] == "validation_error"
    assert err["field"] == field
    assert field in err["detail"]


async def test_infinite_and_nan_json_tokens_are_refused(client: httpx.AsyncClient) -> None:
    raw = '{"tailings": {"specific_gravity": Infinity}, "binder": [], "binder_pct": NaN}'
    r = await client.post(
        "/api/v1/recipes/proportion",
        content=raw,
        headers={**auth("hmi"), "content-type": "application/json"},
    )
    assert r.status_code == 422


async def test_keys_are_required_and_checked(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/recipes/proportion", json=BODY)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.post(
        "/api/v1/recipes/proportion", json=BODY, headers={"Authorization": "Bearer wrong"}
    )
    assert r.status_code == 401
