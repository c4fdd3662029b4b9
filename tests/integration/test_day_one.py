"""What a plant would hit on day one, through the API with the service running: made-up
recipes refused, stored records that cannot break a list, strict inputs on both stores,
history bounds, CSV cells that are never formulas, a readiness answer that reveals no
host."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from service.store.repository import Store
from tests.conftest import auth, fresh_postgres_database
from tests.e2e.helpers import RECIPE, action, approved_recipe
from tests.integration.conftest import running_app
from tests.proxy import TcpProxy

pytestmark = pytest.mark.asyncio(loop_scope="module")


def pour_body(**changes: Any) -> dict[str, Any]:
    return {
        "stope_id": "S-1",
        "recipe": RECIPE,
        "target_volume_m3": 20.0,
        "paste_flow_m3_h": 100.0,
        **changes,
    }


async def test_a_scada_key_cannot_run_a_recipe_it_makes_up(client: httpx.AsyncClient) -> None:
    # Finding 1: Bw 1e-300 % (no binder) and Cw 1e-9 % (no tailings) were stored and ran.
    for patch, field in (
        ({"binder_pct": 1e-300}, "binder_pct"),
        ({"solids_pct": 1e-9}, "solids_pct"),
    ):
        r = await client.post(
            "/api/v1/pours",
            json=pour_body(stope_id="S-typo", recipe={**RECIPE, **patch}),
            headers=auth("scada"),
        )
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == ("recipe_implausible", f"recipe.{field}")
    r = await client.get("/api/v1/pours", headers=auth("hmi"))
    assert not [p for p in r.json()["items"] if p["stope_id"] == "S-typo"]
    # A plausible inline recipe is stored, unapproved: the pour is planned, and does not start.
    r = await client.post("/api/v1/pours", json=pour_body(), headers=auth("scada"))
    assert r.status_code == 201, r.text
    pour = r.json()
    r = await action(client, pour["id"], "start")
    assert (r.status_code, r.json()["code"]) == (409, "recipe_not_approved")
    assert f"/recipes/{pour['recipe_id']}/approve" in r.json()["detail"]
    r = await client.get(f"/api/v1/recipes/{pour['recipe_id']}", headers=auth("hmi"))
    assert (r.json()["approved"], r.json()["created_by"]) == (False, "scada")


async def test_a_stored_bad_recipe_cannot_break_the_recipe_list(
    app: Any, client: httpx.AsyncClient
) -> None:
    # Finding 2: such a recipe made GET /recipes answer 500 for everyone, for good.
    store: Store = app.state.runtime.store
    for name, patch in (
        ("zero binder", {"binder_pct": 1e-300}),
        ("zero solids", {"solids_pct": 1e-9}),
    ):
        await store.add_recipe(
            name=name,
            mix={**RECIPE, **patch},
            design=None,
            calibration_id=None,
            approved_by=None,
            created_by="scada",
        )
    r = await client.get("/api/v1/recipes", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    bad = {x["name"]: x for x in r.json() if x["name"] in ("zero binder", "zero solids")}
    assert set(bad) == {"zero binder", "zero solids"}
    for recipe in bad.values():
        assert recipe["problems"], recipe
        assert any("on this site" in p for p in recipe["problems"])
    assert bad["zero binder"]["per_m3"] is None  # no binder: no W/C, no masses
    assert "cannot be proportioned" in " ".join(bad["zero binder"]["problems"])
    # ... nor can an engineer approve it.
    zero = bad["zero binder"]["id"]
    r = await client.post(
        f"/api/v1/recipes/{zero}/approve", json={"approved_by": "X"}, headers=auth("engineer")
    )
    assert (r.status_code, r.json()["code"]) == (422, "recipe_implausible")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"binder_pct": 1e-300}, "binder_pct"),
        ({"solids_pct": 1e-9}, "solids_pct"),
        ({"solids_pct": None, "water_binder_ratio": 99.0}, "water_binder_ratio"),
        ({"solids_pct": None, "wet_density_kg_m3": 1001.0}, "wet_density_kg_m3"),
        ({"tailings": {"specific_gravity": 1.01, "moisture_pct": 30}}, "tailings.specific_gravity"),
        ({"tailings": {"specific_gravity": 2.8, "moisture_pct": 400}}, "tailings.moisture_pct"),
        (
            {
                "binder": [
                    {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 1},
                    {"name": "slag", "specific_gravity": 2.9, "fraction_pct": 99},
                ]
            },
            "binder[0].fraction_pct",
        ),
        (
            {"binder": [{"name": "cement", "specific_gravity": 9.9, "fraction_pct": 100}]},
            "binder[0].specific_gravity",
        ),
        ({"binder_pct": True}, "binder_pct"),
        ({"binder_pct": "5"}, "binder_pct"),
        ({"solids_pct": "1e1"}, "solids_pct"),
    ],
)
async def test_proportioning_refuses_nonsense_naming_the_field(
    client: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**RECIPE, **patch}.items() if v is not None}
    r = await client.post("/api/v1/recipes/proportion", json=body, headers=auth("hmi"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "1969-12-31T00:00:00Z"],
)
async def test_history_bounds_are_a_422(client: httpx.AsyncClient, moment: str) -> None:
    r = await client.get(
        "/api/v1/plant/history",
        params={"tags": "paste_density_pv", "from": moment},
        headers=auth("hmi"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "from"


async def test_numbers_are_numbers_on_pours(client: httpx.AsyncClient) -> None:
    # Finding 7: target_volume_m3 true made a 1 m3 pour.
    recipe_id = await approved_recipe(client)
    for value in (True, "5", "1e1"):
        r = await client.post(
            "/api/v1/pours",
            json={**pour_body(target_volume_m3=value), "recipe": None, "recipe_id": recipe_id},
            headers=auth("scada"),
        )
        assert (r.status_code, r.json()["field"]) == (422, "target_volume_m3"), value


async def test_report_csv_cells_are_never_formulas(client: httpx.AsyncClient) -> None:
    recipe_id = await approved_recipe(client)
    r = await client.post(
        "/api/v1/pours",
        json={
            **pour_body(stope_id='=HYPERLINK("http://x")', sample_ids=["-23", "-1.5"]),
            "recipe": None,
            "recipe_id": recipe_id,
        },
        headers=auth("scada"),
    )
    assert r.status_code == 201, r.text
    r = await client.get(f"/api/v1/pours/{r.json()['id']}/report.csv", headers=auth("hmi"))
    assert r.status_code == 200
    rows = {row[0]: row[1] for row in csv.reader(io.StringIO(r.text)) if len(row) == 2}
    assert rows["pour.stope_id"] == '\'=HYPERLINK("http://x")'
    assert (rows["sample.1"], rows["sample.2"]) == ("'-23", "'-1.5")
    for value in rows.values():
        assert not value.startswith(("=", "+", "-", "@")), value


NUL_BODIES = [
    ("/api/v1/pours", "scada", pour_body(stope_id="S-\u00001"), "stope_id"),
    (
        "/api/v1/recipes",
        "engineer",
        {"name": "nul\u0000", "mix": RECIPE, "approved_by": "A. Engineer"},
        "name",
    ),
    (
        "/api/v1/recipes",
        "engineer",
        {"name": "ok", "mix": RECIPE, "approved_by": "A.\u0007Engineer"},
        "approved_by",
    ),
    (
        "/api/v1/calibrations",
        "engineer",
        {"name": "lab\u0000", "csv": "binder_pct,solids_pct,curing_days,ucs_kpa\n"},
        "name",
    ),
    (
        "/api/v1/calibrations",
        "engineer",
        {"name": "lab", "csv": "binder_pct\u0000,solids_pct\n"},
        "csv",
    ),
]


async def _nul_bodies_are_refused(client: httpx.AsyncClient) -> None:
    for url, role, body, field in NUL_BODIES:
        r = await client.post(url, json=body, headers=auth(role))
        assert r.status_code == 422, (url, field, r.text)
        assert r.json()["field"] == field, (url, r.json())
    r = await client.get("/api/v1/recipes", params={"name": "nul\u0000"}, headers=auth("hmi"))
    assert (r.status_code, r.json()["field"]) == (422, "name")
    r = await client.get("/api/v1/pours/a%00b", headers=auth("hmi"))
    assert r.status_code == 422


async def test_control_characters_are_refused_on_sqlite(client: httpx.AsyncClient) -> None:
    await _nul_bodies_are_refused(client)


@pytest.mark.postgres
async def test_control_characters_are_refused_on_postgresql() -> None:
    # Finding 7: a NUL byte was stored on SQLite and a 503 store_unavailable on PostgreSQL.
    async with fresh_postgres_database() as url, running_app(url) as (_app, client):
        await _nul_bodies_are_refused(client)


@pytest.mark.postgres
async def test_readiness_does_not_reveal_the_database_host() -> None:
    async with fresh_postgres_database() as url:
        parsed = make_url(url)
        proxy = TcpProxy(parsed.port or 5432)
        await proxy.allow()
        through = parsed.set(port=proxy.port).render_as_string(hide_password=False)
        try:
            async with running_app(through) as (_app, client):
                assert (await client.get("/readyz")).status_code == 200
                await proxy.cut()
                r = await client.get("/readyz")
                assert r.status_code == 503
                assert r.json() == {
                    "status": "not_ready",
                    "store": "unreachable",
                    "code": "store_unavailable",
                }
                assert str(proxy.port) not in r.text and "127.0.0.1" not in r.text
                await proxy.allow()
        finally:
            await proxy.cut()
