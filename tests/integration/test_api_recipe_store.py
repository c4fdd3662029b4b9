"""Stored recipes (POST/GET /recipes) over HTTP with the lifespan running."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

URL = "/api/v1/recipes"
MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 76.0,
}


async def example_id(client: httpx.AsyncClient) -> str:
    listed = (await client.get("/api/v1/calibrations", headers=auth("hmi"))).json()
    return str(next(c["id"] for c in listed if c["example"]))


async def store(client: httpx.AsyncClient, body: dict[str, Any], role: str = "engineer") -> Any:
    r = await client.post(URL, json=body, headers=auth(role))
    assert r.status_code == 201, r.text
    return r.json()


async def test_versions_are_immutable(client: httpx.AsyncClient) -> None:
    first = await store(client, {"name": "S-101 fill", "mix": MIX, "approved_by": "A. Engineer"})
    second_mix = {**MIX, "binder_pct": 5.5}
    second = await store(
        client,
        {"name": "S-101 fill", "mix": second_mix, "approved_by": "B. Engineer"},
        role="admin",
    )
    assert (first["version"], second["version"]) == (1, 2)
    assert first["id"] != second["id"]
    assert (first["created_by"], second["created_by"]) == ("engineer", "admin")
    assert (first["approved_by"], second["approved_by"]) == ("A. Engineer", "B. Engineer")
    assert first["mix"]["binder_pct"] == 4.5 and second["mix"]["binder_pct"] == 5.5
    # Each version reads back exactly as it was stored, the newer one changing nothing.
    for stored in (first, second):
        got = await client.get(f"{URL}/{stored['id']}", headers=auth("hmi"))
        assert got.status_code == 200
        assert got.json() == stored
    listed = (await client.get(URL, params={"name": "S-101 fill"}, headers=auth("scada"))).json()
    assert listed == [first, second]
    assert [r["name"] for r in (await client.get(URL, headers=auth("hmi"))).json()].count(
        "S-101 fill"
    ) == 2
    assert (await client.get(URL, params={"name": "nothing"}, headers=auth("hmi"))).json() == []


async def test_the_answer_carries_the_proportioning(client: httpx.AsyncClient) -> None:
    stored = await store(client, {"name": "prop", "mix": MIX, "approved_by": "A. Engineer"})
    r = await client.post("/api/v1/recipes/proportion", json=MIX, headers=auth("hmi"))
    expected = r.json()
    assert stored["per_m3"] == expected["per_m3"]
    assert stored["water_binder_ratio"] == pytest.approx(expected["water_binder_ratio"])
    assert stored["predicted_ucs_28d"] is None and stored["calibration_id"] is None
    assert stored["design"] is None
    assert stored["mix"] == {**MIX, "aggregate": None}


async def test_a_calibration_gives_the_28_day_prediction(client: httpx.AsyncClient) -> None:
    cid = await example_id(client)
    stored = await store(
        client, {"name": "pred", "mix": MIX, "approved_by": "A. Engineer", "calibration_id": cid}
    )
    predicted = stored["predicted_ucs_28d"]
    body = {"blend": {"cement": 20, "slag": 80}, "binder_pct": 4.5, "solids_pct": 76}
    r = await client.post(f"/api/v1/calibrations/{cid}/predict", json=body, headers=auth("hmi"))
    assert predicted["ucs_kpa"] == pytest.approx(r.json()["ucs_kpa"], rel=1e-12)
    assert predicted["extrapolated"] is False and predicted["curing_days"] == 28
    assert predicted["example"] is True and predicted["calibration_version"] == 1
    rich = {**MIX, "binder_pct": 12}
    flagged = await store(
        client, {"name": "rich", "mix": rich, "approved_by": "A. Engineer", "calibration_id": cid}
    )
    assert flagged["predicted_ucs_28d"]["extrapolated"] is True
    assert flagged["predicted_ucs_28d"]["outside"] == ["ln_binder_water"]
    flyash = {
        **MIX,
        "binder": [
            {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 50},
            {"name": "flyash", "specific_gravity": 2.3, "fraction_pct": 50},
        ],
    }
    unknown = await store(
        client, {"name": "fa", "mix": flyash, "approved_by": "A. Engineer", "calibration_id": cid}
    )
    assert unknown["predicted_ucs_28d"] is None
    assert "flyash" in unknown["prediction_note"]


async def test_an_optimised_recipe_is_stored_with_its_design(client: httpx.AsyncClient) -> None:
    body = {
        "required_ucs_kpa": 300,
        "binders": [
            {"name": "cement", "specific_gravity": 3.15, "price_per_t": 180},
            {"name": "slag", "specific_gravity": 2.9, "price_per_t": 90, "max_fraction_pct": 80},
        ],
        "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
        "solids_pct_min": 70,
        "solids_pct_max": 78,
        "binder_pct_min": 3,
        "binder_pct_max": 8,
    }
    r = await client.post("/api/v1/recipes/optimize", json=body, headers=auth("engineer"))
    design = r.json()
    stored = await store(
        client,
        {
            "name": "optimised",
            "mix": design["recipe"]["mix"],
            "approved_by": "A. Engineer",
            "calibration_id": design["calibration"]["id"],
            "design": design,
        },
    )
    assert stored["design"] == design
    assert stored["predicted_ucs_28d"]["ucs_kpa"] >= 300 * (1 - 1e-9)
    assert stored["per_m3"]["binder_kg"] == pytest.approx(design["recipe"]["binder_kg_m3"])


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": ""}, "name"),
        ({"approved_by": ""}, "approved_by"),
        ({"approved_by": "A.\u0000Engineer"}, "approved_by"),
        ({"name": "S-101\nfill"}, "name"),
        ({"design": {"note": "ok\u0000"}}, "design"),
        ({"mix": {**MIX, "binder_pct": 0.5}}, "mix.binder_pct"),
        ({"mix": {**MIX, "binder_pct": True}}, "mix.binder_pct"),
        ({"mix": {**MIX, "solids_pct": "76"}}, "mix.solids_pct"),
        ({"mix": {k: v for k, v in MIX.items() if k != "solids_pct"}}, "mix.solids_pct"),
        ({"mix": {**MIX, "binder_pct": "NaN"}}, "mix.binder_pct"),
        ({"mix": {**MIX, "binder": MIX["binder"][:1]}}, "mix.binder"),
        ({"design": {"required_ucs_kpa": "x" * 40_000}}, "design"),
        ({"design": [1, 2]}, "design"),
        ({"pour": "S-1"}, "pour"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    body = {"name": "bad", "mix": MIX, "approved_by": "A. Engineer", **patch}
    r = await client.post(URL, json=body, headers=auth("engineer"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()


async def test_non_finite_design_numbers_are_refused(client: httpx.AsyncClient) -> None:
    raw = (
        '{"name": "nan", "approved_by": "A. Engineer", "design": {"cost": NaN}, "mix": '
        '{"tailings": {"specific_gravity": 3.05}, "binder": [{"name": "cement", '
        '"specific_gravity": 3.15, "fraction_pct": 100}], "binder_pct": 5, "solids_pct": 75}}'
    )
    r = await client.post(
        URL, content=raw, headers={**auth("engineer"), "content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "design"


async def test_unknown_references(client: httpx.AsyncClient) -> None:
    body = {"name": "ref", "mix": MIX, "approved_by": "A. Engineer", "calibration_id": "nope"}
    r = await client.post(URL, json=body, headers=auth("engineer"))
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("calibration_not_found", "calibration_id")
    assert (await client.get(URL, params={"name": "ref"}, headers=auth("hmi"))).json() == []
    r = await client.get(f"{URL}/no-such-recipe", headers=auth("hmi"))
    assert (r.status_code, r.json()["code"]) == (404, "recipe_not_found")


@pytest.mark.parametrize("role", ["hmi", "scada", "engineer", "admin", None])
async def test_storing_needs_an_engineer_or_admin(
    client: httpx.AsyncClient, role: str | None
) -> None:
    body = {"name": f"roles-{role}", "mix": MIX, "approved_by": "A. Engineer"}
    r = await client.post(URL, json=body, headers=auth(role) if role else {})
    expected = {None: 401, "hmi": 403, "scada": 403, "engineer": 201, "admin": 201}[role]
    assert r.status_code == expected, r.text
    if expected == 403:
        assert r.json()["code"] == "forbidden"
    if expected == 201:
        assert r.json()["created_by"] == role


@pytest.mark.parametrize("role", ["hmi", "scada", "engineer", "admin", None])
async def test_reading_needs_any_key(client: httpx.AsyncClient, role: str | None) -> None:
    stored = await store(client, {"name": "readable", "mix": MIX, "approved_by": "A. Engineer"})
    expected = 401 if role is None else 200
    headers = auth(role) if role else {}
    assert (await client.get(URL, headers=headers)).status_code == expected
    assert (await client.get(f"{URL}/{stored['id']}", headers=headers)).status_code == expected


async def test_a_draft_is_approved_once_and_the_approval_is_audited(
    client: httpx.AsyncClient,
) -> None:
    draft = await store(client, {"name": "draft S-7", "mix": MIX})
    assert (draft["approved"], draft["approved_by"], draft["approved_at"]) == (False, None, None)
    approve = f"{URL}/{draft['id']}/approve"
    for role, status in (("hmi", 403), ("scada", 403)):
        r = await client.post(approve, json={"approved_by": "X"}, headers=auth(role))
        assert r.status_code == status
    r = await client.post(approve, json={"approved_by": ""}, headers=auth("engineer"))
    assert (r.status_code, r.json()["field"]) == (422, "approved_by")
    r = await client.post(approve, json={"approved_by": "C. Engineer"}, headers=auth("engineer"))
    assert r.status_code == 200, r.text
    approved = r.json()
    assert (approved["approved"], approved["approved_by"]) == (True, "C. Engineer")
    assert approved["approved_at"] is not None
    assert {k: v for k, v in approved.items() if not k.startswith("approved")} == {
        k: v for k, v in draft.items() if not k.startswith("approved")
    }
    r = await client.post(approve, json={"approved_by": "D. Engineer"}, headers=auth("admin"))
    assert (r.status_code, r.json()["code"]) == (409, "recipe_already_approved")
    entries = (
        await client.get("/api/v1/audit", params={"limit": 1000}, headers=auth("hmi"))
    ).json()
    mine = [e for e in entries["items"] if e["kind"] == "recipe_approval"]
    assert [e["new"]["approved_by"] for e in mine if e["new"]["recipe_id"] == draft["id"]] == [
        "C. Engineer"
    ]
    r = await client.post(
        f"{URL}/no-such-recipe/approve", json={"approved_by": "X"}, headers=auth("engineer")
    )
    assert r.status_code == 404


async def test_a_recipe_outside_the_site_limits_is_refused_naming_the_limit(
    client: httpx.AsyncClient,
) -> None:
    for patch, field in (
        ({"binder_pct": 1e-300}, "mix.binder_pct"),
        ({"solids_pct": 1e-9}, "mix.solids_pct"),
        ({"solids_pct": 95.0}, "mix.solids_pct"),
        ({"tailings": {"specific_gravity": 1.2}}, "mix.tailings.specific_gravity"),
    ):
        r = await client.post(
            URL, json={"name": "typo", "mix": {**MIX, **patch}}, headers=auth("engineer")
        )
        assert r.status_code == 422, r.text
        body = r.json()
        assert (body["code"], body["field"]) == ("recipe_implausible", field)
        assert "BACKFILL_RECIPES__" in body["detail"]
    assert (await client.get(URL, params={"name": "typo"}, headers=auth("hmi"))).json() == []
