"""A design the plant must make, handed from one part to the next as a user would: the
optimiser on the built-in simulator's plant, a recipe stored, approved, planned and poured,
each refusing what the feed cannot make unless an engineer states why (kept in the audit)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from service.api.examples import REQUEST_EXAMPLES
from service.app import create_app
from service.core import plant_profile as pp
from service.settings import Settings
from tests.conftest import api_keys_setting, auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

ENGINEER = auth("engineer")
# Made from a 76 % cake (w0 31.58 %) at Bw 4.5 %: at most 76.8 % Cw from the cake, and
# at most 73.6 % from the simulator's wettest feed (72.7 % solids).
TOO_DRY: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 75.0,
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    """The service on its built-in simulator, the plant nobody stated otherwise."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('make') / 'b.db'}"
    app = create_app(
        Settings(
            database_url=url,
            api_keys=api_keys_setting(),
            api={"write_rate_per_s": 1000.0, "write_burst": 1000},
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def audit(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/audit?limit=1000", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_the_profile_says_what_it_rests_on(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/plant/profile", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tailings_sg"] == 2.8
    assert body["feed"]["used"] == "simulator"
    assert body["feed"]["stated"]["solids_low_pct"] == pytest.approx(72.72, abs=0.05)
    assert body["feed"]["seen"] is None  # no running hours in the history yet


async def test_the_documented_optimiser_example_gives_a_recipe_the_plant_makes(
    client: httpx.AsyncClient,
) -> None:
    body = copy.deepcopy(REQUEST_EXAMPLES["optimize"])
    r = await client.post("/api/v1/recipes/optimize", json=body, headers=ENGINEER)
    feed = (await client.get("/api/v1/plant/profile", headers=ENGINEER)).json()["feed"]
    wettest = pp.moisture_of_solids(feed["stated"]["solids_low_pct"])
    if r.status_code == 422:  # the feed cannot reach it: said so, with the best it reaches
        err = r.json()
        assert err["code"] == "recipe_infeasible"
        assert err["constraint"] in ("feed_reach_plant_feed", "feed_reach_recipe_moisture")
        assert err["best_solids_pct"] <= 100 * pp.driest_cw(0.08, wettest) + 1e-6
        return
    assert r.status_code == 200, r.text
    recipe = r.json()["recipe"]
    bw, cw = recipe["binder_pct"] / 100, recipe["solids_pct"] / 100
    moisture = body["tailings"]["moisture_pct"] / 100
    assert cw <= pp.driest_cw(bw, moisture) + 1e-9
    assert cw <= pp.driest_cw(bw, wettest) + 1e-9
    # The proportioning of the same mix adds water, never takes it out.
    mix = {
        "tailings": body["tailings"],
        "binder": [
            {"name": c["name"], "specific_gravity": c["specific_gravity"], "fraction_pct": f}
            for c in body["binders"]
            if (f := recipe["blend_pct"].get(c["name"], 0)) > 0
        ],
        "binder_pct": recipe["binder_pct"],
        "solids_pct": recipe["solids_pct"],
    }
    r = await client.post("/api/v1/recipes/proportion", json=mix, headers=ENGINEER)
    assert r.status_code == 200, r.text
    assert r.json()["per_m3"]["water_to_add_kg"] >= -1e-6


async def test_a_plant_too_wet_for_any_strong_mix_is_a_422_with_the_best_it_reaches(
    client: httpx.AsyncClient,
) -> None:
    body = copy.deepcopy(REQUEST_EXAMPLES["optimize"])
    body["requirements"] = [{"name": "sill", "required_ucs_kpa": 4000, "curing_days": 28}]
    body["solids_pct_min"] = 60
    r = await client.post("/api/v1/recipes/optimize", json=body, headers=ENGINEER)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["code"] == "recipe_infeasible"
    assert err["constraint"] in ("feed_reach_plant_feed", "binder_pct_max"), err


async def test_an_unmakeable_recipe_is_refused_unless_an_engineer_says_why(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/api/v1/recipes",
        json={"name": "too dry", "mix": TOO_DRY, "approved_by": "A. Engineer"},
        headers=ENGINEER,
    )
    assert r.status_code == 422, r.text
    err = r.json()
    assert (err["code"], err["field"], err["limit"]) == (
        "recipe_unmakeable",
        "mix.solids_pct",
        "feed_reach_plant_feed",
    )
    assert err["best_solids_pct"] == pytest.approx(73.58, abs=0.05)
    assert "unmakeable_reason" in err["detail"]
    # A draft with the reason is stored; its approval needs the reason too.
    reason = "trial mix for the lab: the feed will come from the new filter"
    r = await client.post(
        "/api/v1/recipes",
        json={"name": "too dry", "mix": TOO_DRY, "unmakeable_reason": reason},
        headers=ENGINEER,
    )
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["makeability"]["makeable"] is False
    url = f"/api/v1/recipes/{draft['id']}/approve"
    r = await client.post(url, json={"approved_by": "A. Engineer"}, headers=ENGINEER)
    assert (r.status_code, r.json()["code"]) == (422, "recipe_unmakeable"), r.text
    r = await client.post(
        url, json={"approved_by": "A. Engineer", "unmakeable_reason": reason}, headers=ENGINEER
    )
    assert r.status_code == 200, r.text
    (entry,) = [
        e
        for e in await audit(client)
        if e["kind"] == "recipe_approval" and e["new"]["recipe_id"] == draft["id"]
    ]
    assert entry["reason"] == "approved_unmakeable" and entry["detail"] == reason
    # SCADA cannot give a reason: an inline recipe the plant cannot make is refused.
    r = await client.post(
        "/api/v1/pours",
        json={"stope_id": "S-9", "recipe": TOO_DRY, "target_volume_m3": 5, "paste_flow_m3_h": 90},
        headers=auth("scada"),
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "recipe_unmakeable",
        "recipe.solids_pct",
    )


async def test_a_stage_asking_more_than_its_recipe_gives_is_refused_naming_both(
    client: httpx.AsyncClient,
) -> None:
    calibrations = (await client.get("/api/v1/calibrations", headers=ENGINEER)).json()
    example = calibrations["items"][0] if isinstance(calibrations, dict) else calibrations[0]
    lean = {**TOO_DRY, "binder_pct": 5.0, "solids_pct": 72.0}
    r = await client.post(
        "/api/v1/recipes",
        json={
            "name": "lean body",
            "mix": lean,
            "approved_by": "A. Engineer",
            "calibration_id": example["id"],
        },
        headers=ENGINEER,
    )
    assert r.status_code == 201, r.text
    recipe = r.json()
    r = await client.post(
        "/api/v1/stopes",
        json={"name": "S-77", "plan_area_m2": 50, "height_m": 20, "barricade_rating_kpa": 150},
        headers=ENGINEER,
    )
    stope = r.json()
    plan = {
        "stages": [
            {
                "name": "plug",
                "recipe_id": recipe["id"],
                "top_height_m": 4,
                "max_rise_rate_m_h": 1.0,
                "cure_hold_h": 48,
                "requirements": [{"name": "plug", "ucs_kpa": 2000, "curing_days": 7}],
            }
        ]
    }
    r = await client.post(f"/api/v1/stopes/{stope['id']}/plans", json=plan, headers=ENGINEER)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["code"] == "stage_requirement_unmet", err
    assert err["field"] == "stages[0].requirements[0].ucs_kpa"
    assert err["required_ucs_kpa"] == 2000 and 0 < err["reached_ucs_kpa"] < 2000
    assert "'plug' requires 2000 kPa at 7 days" in err["detail"]
    assert "lean body" in err["detail"]
    # What it does reach is accepted.
    plan["stages"][0]["requirements"][0]["ucs_kpa"] = int(err["reached_ucs_kpa"] * 0.9)
    r = await client.post(f"/api/v1/stopes/{stope['id']}/plans", json=plan, headers=ENGINEER)
    assert r.status_code == 200, r.text
