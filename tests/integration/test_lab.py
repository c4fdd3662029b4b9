"""The lab loop over HTTP with the lifespan running, on SQLite and on PostgreSQL:
samples cast from pours, laboratory results entered once (corrections as new entries),
lab sheets imported whole or not at all, compliance with failed and overdue cylinders,
and a recalibration proposal, its approval and the refusal of a proposal for design."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from service.app import create_app
from service.core.control import PourTotals
from service.operations.lab import LabService
from service.operations.pours import cast_samples
from service.settings import Settings
from tests.conftest import CAKE_PLANT, api_keys_setting, auth, fresh_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

LAB_KEY = "lab-key-0123456789abcdef"
MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 76.0,
}
DESIGN = {
    "requirements": [
        {"name": "early", "required_ucs_kpa": 100.0, "curing_days": 7.0},
        {"name": "body", "required_ucs_kpa": 300.0, "curing_days": 28.0},
    ],
    "pass_fraction_pct": 80.0,
}
OPTIMIZE: dict[str, Any] = {
    "required_ucs_kpa": 300.0,
    "curing_days": 28,
    "binders": [
        {"name": "cement", "specific_gravity": 3.15, "price_per_t": 180},
        {"name": "slag", "specific_gravity": 2.90, "price_per_t": 90, "max_fraction_pct": 80},
    ],
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "solids_pct_min": 70,
    "solids_pct_max": 78,
    "binder_pct_min": 3,
    "binder_pct_max": 8,
}


def headers(role: str | None) -> dict[str, str]:
    if role is None:
        return {}
    return {"Authorization": f"Bearer {LAB_KEY}"} if role == "lab" else auth(role)


@asynccontextmanager
async def lab_app(url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(
        Settings(
            plant=CAKE_PLANT,
            database_url=url,
            api_keys=f"{api_keys_setting()},lab:{LAB_KEY}",
            api={"write_rate_per_s": 1000.0, "write_burst": 1000},
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


@asynccontextmanager
async def on_backend(
    backend: str, folder: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    if backend == "sqlite":
        async with lab_app(f"sqlite+aiosqlite:///{folder / 'backfill.db'}") as pair:
            yield pair
        return
    async with fresh_postgres_database() as url, lab_app(url) as pair:
        yield pair


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["sqlite", "postgresql"])
async def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with on_backend(request.param, tmp_path_factory.mktemp("lab")) as pair:
        yield pair


@pytest.fixture
def client(running: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return running[1]


@pytest.fixture
def lab(running: tuple[FastAPI, httpx.AsyncClient]) -> LabService:
    service: LabService = running[0].state.runtime.lab
    return service


async def post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], role: str, status: int = 201
) -> Any:
    r = await client.post(url, json=body, headers=headers(role))
    assert r.status_code == status, r.text
    return r.json()


async def recipe(client: httpx.AsyncClient, name: str, **extra: Any) -> str:
    body = {"name": name, "mix": MIX, "approved_by": "A. Engineer", **extra}
    return str((await post(client, "/api/v1/recipes", body, "engineer"))["id"])


async def pour(
    client: httpx.AsyncClient, recipe_id: str, samples: list[str], stope: str = "S-LAB"
) -> dict[str, Any]:
    body = {
        "stope_id": stope,
        "recipe_id": recipe_id,
        "target_volume_m3": 50.0,
        "paste_flow_m3_h": 100.0,
        "sample_ids": samples,
    }
    out: dict[str, Any] = await post(client, "/api/v1/pours", body, "scada")
    return out


async def result(client: httpx.AsyncClient, sample_id: str, status: int = 201, **body: Any) -> Any:
    return await post(client, f"/api/v1/samples/{sample_id}/results", body, "lab", status)


async def sample(client: httpx.AsyncClient, sample_id: str) -> Any:
    r = await client.get(f"/api/v1/samples/{sample_id}", headers=headers("hmi"))
    assert r.status_code == 200, r.text
    return r.json()


def shifted(lab: LabService, days: float) -> Callable[[], datetime]:
    """Set the lab loop's clock ``days`` ahead; returns the clock to put back."""
    before = lab.clock
    lab.clock = lambda: datetime.now(UTC) + timedelta(days=days)
    return before


# --- roles ------------------------------------------------------------------------------


async def test_the_lab_role_enters_results_and_reads_nothing_else_writes(
    client: httpx.AsyncClient, lab: LabService
) -> None:
    rid = await recipe(client, "lab roles")
    made = await pour(client, rid, ["ROLE-1"])
    listed = (await client.get("/api/v1/calibrations", headers=headers("hmi"))).json()
    cid = next(c["id"] for c in listed if c["example"])
    # It reads like an hmi key.
    for url in ("/api/v1/pours", "/api/v1/samples", "/api/v1/recipes", "/api/v1/lab/notices"):
        r = await client.get(url, headers=headers("lab"))
        assert r.status_code == 200, (url, r.text)
    for url in (f"/api/v1/pours/{made['id']}/compliance", "/api/v1/samples/ROLE-1"):
        assert (await client.get(url, headers=headers("lab"))).status_code == 200
    # It creates no pour, recipe or calibration and approves nothing.
    refused: list[tuple[str, dict[str, Any]]] = [
        (
            "/api/v1/pours",
            {
                "stope_id": "S-LAB",
                "recipe_id": rid,
                "target_volume_m3": 50.0,
                "paste_flow_m3_h": 100.0,
            },
        ),
        (f"/api/v1/pours/{made['id']}/samples", {"sample_ids": ["ROLE-2"]}),
        (f"/api/v1/pours/{made['id']}/start", {}),
        ("/api/v1/recipes", {"name": "by the lab", "mix": MIX}),
        (f"/api/v1/recipes/{rid}/approve", {"approved_by": "Lab"}),
        ("/api/v1/calibrations", {"name": "by the lab", "csv": "a,b\n1,2\n"}),
        (f"/api/v1/calibrations/{cid}/approve", {"approved_by": "Lab"}),
        (f"/api/v1/calibrations/{cid}/proposals", {}),
        (
            "/api/v1/stopes",
            {"name": "S-X", "height_m": 10, "plan_area_m2": 10, "barricade_rating_kpa": 100},
        ),
    ]
    for url, body in refused:
        r = await client.post(url, json=body, headers=headers("lab"))
        assert r.status_code == 403, (url, r.text)
    # Results: the lab (and admin) only; an hmi, scada or engineer key may not.
    for role, status in (("hmi", 403), ("scada", 403), ("engineer", 403), (None, 401)):
        r = await client.post(
            "/api/v1/samples/ROLE-1/results",
            json={"curing_days": 7, "ucs_kpa": 150},
            headers=headers(role),
        )
        assert r.status_code == status, (role, r.text)
        r = await client.post(
            "/api/v1/lab/sheets",
            json={"csv": "sample_id,cast_at,curing_days,ucs_kpa\n"},
            headers=headers(role),
        )
        assert r.status_code == status, (role, r.text)
    before = shifted(lab, 30.0)  # the results come in as the cylinders reach their ages
    try:
        entered = await result(client, "ROLE-1", curing_days=7, ucs_kpa=150)
        # A key of the role alone: its acts are recorded as the role and the key's id.
        lab_person = f"lab:{hashlib.sha256(LAB_KEY.encode()).hexdigest()[:8]}"
        assert entered["entered_by"] == lab_person and entered["pour_id"] == made["id"]
        await result(client, "ROLE-1", curing_days=28, ucs_kpa=320)
        r = await client.post(
            "/api/v1/samples/ROLE-1/results",
            json={"curing_days": 3, "ucs_kpa": 90},
            headers=headers("admin"),
        )
        assert r.status_code == 201, r.text
    finally:
        lab.clock = before
    assert len((await sample(client, "ROLE-1"))["results"]) == 3


# --- samples ---------------------------------------------------------------------------


async def test_pour_sample_ids_become_samples(client: httpx.AsyncClient) -> None:
    rid = await recipe(client, "lab samples")
    made = await pour(client, rid, ["CAST-1", "CAST-2", "CAST-1"])
    assert made["sample_ids"] == ["CAST-1", "CAST-2"]
    first = await sample(client, "CAST-1")
    assert first["pour_id"] == made["id"] and first["placed_m3"] == 0.0
    assert first["source"] == "pour" and first["test_ages_days"] == [3.0, 7.0, 28.0]
    assert first["created_by"] == "scada" and first["results"] == []
    # Cast later with their own test ages and the pour's placed volume then.
    r = await client.post(
        f"/api/v1/pours/{made['id']}/samples",
        json={"sample_ids": ["CAST-3", "CAST-1"], "test_ages_days": [7, 56]},
        headers=headers("scada"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["sample_ids"] == ["CAST-1", "CAST-2", "CAST-3"]
    third = await sample(client, "CAST-3")
    assert third["test_ages_days"] == [7.0, 56.0] and third["placed_m3"] == 0.0
    assert (await sample(client, "CAST-1"))["test_ages_days"] == [3.0, 7.0, 28.0]  # kept
    listed = await client.get(
        "/api/v1/samples", params={"pour_id": made["id"]}, headers=headers("hmi")
    )
    assert sorted(s["id"] for s in listed.json()["items"]) == ["CAST-1", "CAST-2", "CAST-3"]
    # A sample id is unique on the site: another pour cannot cast it, and nothing changes.
    other = await pour(client, rid, ["CAST-9"])
    r = await client.post(
        f"/api/v1/pours/{other['id']}/samples",
        json={"sample_ids": ["CAST-10", "CAST-2"]},
        headers=headers("scada"),
    )
    assert (r.status_code, r.json()["code"]) == (409, "sample_exists")
    assert r.json()["pour_id"] == made["id"]
    got = await client.get(f"/api/v1/pours/{other['id']}", headers=headers("hmi"))
    assert got.json()["sample_ids"] == ["CAST-9"]
    assert (await client.get("/api/v1/samples/CAST-10", headers=headers("hmi"))).status_code == 404
    r = await client.post(
        "/api/v1/pours",
        json={
            "stope_id": "S-LAB",
            "recipe_id": rid,
            "target_volume_m3": 50.0,
            "paste_flow_m3_h": 100.0,
            "sample_ids": ["CAST-11", "CAST-3"],
        },
        headers=headers("scada"),
    )
    assert (r.status_code, r.json()["code"]) == (409, "sample_exists")
    assert (await client.get("/api/v1/samples/CAST-11", headers=headers("hmi"))).status_code == 404


class LiveTotals:
    """The supervisor as pour_view asks it: the running pour's live totals."""

    active_pour = None  # the run behind the totals (its Cw verification): none here

    def __init__(self, pour_id: str, poured_m3: float) -> None:
        self.pour_id, self.poured_m3 = pour_id, poured_m3

    def live_totals(self, pour_id: str) -> PourTotals | None:
        return PourTotals(poured_m3=self.poured_m3) if pour_id == self.pour_id else None

    def live_record(self, pour_id: str) -> None:
        return None


async def test_a_sample_keeps_the_placed_volume_when_it_was_cast(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = running
    runtime = app.state.runtime
    rid = await recipe(client, "lab placed")
    made = await pour(client, rid, [])
    live = LiveTotals(made["id"], 12.5)
    record = await cast_samples(
        runtime.store,
        live,
        made["id"],
        ["PLACED-1"],
        test_ages_days=None,
        role="scada",
    )
    assert record.sample_ids == ["PLACED-1"]
    cast = await sample(client, "PLACED-1")
    assert cast["placed_m3"] == 12.5 and cast["test_ages_days"] == [3.0, 7.0, 28.0]


# --- results: entered once, corrected by a new entry ----------------------------------


async def test_a_result_is_entered_once_and_corrected_by_a_new_entry(
    client: httpx.AsyncClient, lab: LabService
) -> None:
    rid = await recipe(client, "lab once")
    await pour(client, rid, ["ONCE-1", "ONCE-2"])
    before = shifted(lab, 30.0)
    try:
        await entered_once_and_corrected(client)
    finally:
        lab.clock = before


async def entered_once_and_corrected(client: httpx.AsyncClient) -> None:
    first = await result(
        client,
        "ONCE-1",
        curing_days=28,
        ucs_kpa=410.0,
        wet_mass_g=402.0,
        dry_mass_g=301.5,
        volume_cm3=200.0,
    )
    assert first["solids_pct"] == pytest.approx(75.0)
    assert first["bulk_density_kg_m3"] == pytest.approx(2010.0)
    assert first["current"] and first["corrects"] is None
    # The same age again (or within its tolerance) is refused: a result is entered once.
    for age in (28.0, 28.5):
        r = await client.post(
            "/api/v1/samples/ONCE-1/results",
            json={"curing_days": age, "ucs_kpa": 999.0},
            headers=headers("lab"),
        )
        assert (r.status_code, r.json()["code"]) == (409, "lab_result_exists"), r.text
        assert first["id"] in r.json()["detail"]
    # A correction is a new entry naming the one it corrects.
    fixed = await result(client, "ONCE-1", curing_days=28, ucs_kpa=401.0, corrects=first["id"])
    assert fixed["corrects"] == first["id"] and fixed["id"] != first["id"]
    entries = {e["id"]: e for e in (await sample(client, "ONCE-1"))["results"]}
    assert entries[first["id"]]["ucs_kpa"] == 410.0  # never overwritten
    assert entries[first["id"]]["corrected_by"] == fixed["id"]
    assert not entries[first["id"]]["current"] and entries[fixed["id"]]["current"]
    # The corrected entry cannot be corrected again: the newest of the chain can.
    r = await client.post(
        "/api/v1/samples/ONCE-1/results",
        json={"curing_days": 28, "ucs_kpa": 402.0, "corrects": first["id"]},
        headers=headers("lab"),
    )
    assert (r.status_code, r.json()["code"]) == (409, "lab_result_corrected")
    again = await result(client, "ONCE-1", curing_days=28, ucs_kpa=403.0, corrects=fixed["id"])
    assert again["corrects"] == fixed["id"]
    # A correction names an entry of this sample.
    r = await client.post(
        "/api/v1/samples/ONCE-2/results",
        json={"curing_days": 28, "ucs_kpa": 402.0, "corrects": again["id"]},
        headers=headers("lab"),
    )
    assert (r.status_code, r.json()["field"]) == (422, "corrects")
    # Bad values are 422 naming the field; an unknown sample is 404.
    for body, field in (
        ({"curing_days": 7, "wet_mass_g": 300.0, "dry_mass_g": 310.0}, "dry_mass_g"),
        ({"curing_days": 7}, "ucs_kpa"),
        ({"ucs_kpa": 100.0}, "curing_days"),
        ({"tested_at": "2020-01-01T00:00:00", "ucs_kpa": 1.0}, "tested_at"),
        ({"curing_days": 7, "ucs_kpa": -1.0}, "ucs_kpa"),
        ({"curing_days": 7, "ucs_kpa": "100"}, "ucs_kpa"),
    ):
        r = await client.post("/api/v1/samples/ONCE-2/results", json=body, headers=headers("lab"))
        assert (r.status_code, r.json().get("field")) == (422, field), (body, r.text)
    r = await client.post(
        "/api/v1/samples/NO-SUCH/results",
        json={"curing_days": 7, "ucs_kpa": 100.0},
        headers=headers("lab"),
    )
    assert (r.status_code, r.json()["code"]) == (404, "sample_not_found")
    assert len((await sample(client, "ONCE-1"))["results"]) == 3
    assert (await sample(client, "ONCE-2"))["results"] == []


# --- the lab sheet: all or nothing -------------------------------------------------------


def sheet(*rows: str) -> str:
    return (
        "\n".join(
            (
                "# the lab's sheet",
                "sample_id,pour_id,cast_at,curing_days,ucs_kpa,wet_mass_g,dry_mass_g",
                *rows,
            )
        )
        + "\n"
    )


async def test_a_sheet_with_bad_rows_imports_nothing_and_lists_every_bad_row(
    client: httpx.AsyncClient, lab: LabService
) -> None:
    rid = await recipe(client, "lab sheet")
    made = await pour(client, rid, ["SHEET-1", "SHEET-2", "SHEET-3"])
    # The lab's sheet a month on, with the cast time it noted (a minute off the record).
    cast = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    before = shifted(lab, 30.0)
    try:
        await bad_rows_refused_good_sheets_imported(client, made, cast)
    finally:
        lab.clock = before


async def bad_rows_refused_good_sheets_imported(
    client: httpx.AsyncClient, made: dict[str, Any], cast: str
) -> None:
    good = f"SHEET-1,{made['id']},{cast},28,350,400,300"
    text = sheet(
        good,  # line 3
        f"SHEET-2,,{cast},28,abc,,",  # line 4: not a number
        f"NOPE-1,,{cast},28,300,,",  # line 5: no pour cast it
        f"SHEET-3,,{cast},7,200,300,310",  # line 6: dry above wet
        f"SHEET-3,other-pour,{cast},28,200,,",  # line 7: not this sample's pour
    )
    r = await client.post("/api/v1/lab/sheets", json={"csv": text}, headers=headers("lab"))
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["code"], body["field"]) == ("invalid_input", "csv")
    errors = {(e["row"], e["field"]) for e in body["errors"]}
    assert errors == {(4, "ucs_kpa"), (5, "sample_id"), (6, "dry_mass_g"), (7, "pour_id")}
    assert all(e["message"] for e in body["errors"])
    for sample_id in ("SHEET-1", "SHEET-2", "SHEET-3"):
        assert (await sample(client, sample_id))["results"] == []  # nothing half-imported

    # A good sheet imports every row, in one go.
    text = sheet(
        good,
        f"SHEET-1,,{cast},7,180,,",
        f"SHEET-2,,{cast},28,330,,",
    )
    r = await client.post(
        "/api/v1/lab/sheets", json={"csv": text, "timezone": "Asia/Almaty"}, headers=headers("lab")
    )
    assert r.status_code == 201, r.text
    done = r.json()
    assert done["imported"] == 3 and len(done["results"]) == 3
    assert {x["source"] for x in done["results"]} == {"sheet"}
    assert {x["sheet_id"] for x in done["results"]} == {done["sheet_id"]}
    assert [x["ucs_kpa"] for x in (await sample(client, "SHEET-1"))["results"]] == [350.0, 180.0]
    # The same sheet again: every row is a second result at its age, so nothing is stored.
    r = await client.post("/api/v1/lab/sheets", json={"csv": text}, headers=headers("lab"))
    assert r.status_code == 422, r.text
    assert [(e["row"], e["field"]) for e in r.json()["errors"]] == [
        (3, "curing_days"),
        (4, "curing_days"),
        (5, "curing_days"),
    ]
    assert "entered once" in r.json()["errors"][0]["message"]
    # Twice in one sheet is refused as well; a correction column corrects.
    first = (await sample(client, "SHEET-2"))["results"][0]
    text = (
        "sample_id,cast_at,curing_days,ucs_kpa,corrects,note\n"
        f"SHEET-3,{cast},28,250,,\n"
        f"SHEET-3,{cast},28,260,,\n"
        f"SHEET-2,{cast},28,335,{first['id']},retyped\n"
    )
    r = await client.post("/api/v1/lab/sheets", json={"csv": text}, headers=headers("lab"))
    assert r.status_code == 422
    assert [(e["row"], e["field"]) for e in r.json()["errors"]] == [(3, "curing_days")]
    assert "row 2 of this sheet" in r.json()["errors"][0]["message"]
    text = "\n".join(text.splitlines()[:2] + text.splitlines()[3:]) + "\n"
    done = await post(client, "/api/v1/lab/sheets", {"csv": text}, "lab")
    assert done["imported"] == 2 and done["ignored_columns"] == []
    entries = (await sample(client, "SHEET-2"))["results"]
    assert [(e["ucs_kpa"], e["current"], e["note"]) for e in entries] == [
        (330.0, False, None),
        (335.0, True, "retyped"),
    ]
    # Timestamps without an offset need the site's time zone; a bad zone is a 422.
    r = await client.post(
        "/api/v1/lab/sheets",
        json={"csv": "sample_id,cast_at,curing_days,ucs_kpa\nSHEET-3,2026-01-01T08:00,7,1\n"},
        headers=headers("lab"),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cast_at"
    r = await client.post(
        "/api/v1/lab/sheets", json={"csv": text, "timezone": "Mars/Olympus"}, headers=headers("lab")
    )
    assert (r.status_code, r.json()["field"]) == (422, "timezone")


# --- compliance --------------------------------------------------------------------------


async def test_compliance_with_a_failed_and_an_overdue_cylinder(
    client: httpx.AsyncClient, lab: LabService
) -> None:
    rid = await recipe(client, "lab compliance", design=DESIGN)
    made = await pour(client, rid, ["COMP-A", "COMP-B", "COMP-C"], stope="S-COMP")
    # 40 days on: the 3, 7 and 28-day tests of every cylinder are due and past the grace.
    before = shifted(lab, 40.0)
    try:
        await result(client, "COMP-A", curing_days=7, ucs_kpa=150.0)
        await result(client, "COMP-A", curing_days=28, ucs_kpa=350.0)
        await result(client, "COMP-B", curing_days=28, ucs_kpa=250.0)  # fails the body
        await result(client, "COMP-A", curing_days=3, ucs_kpa=60.0)
        r = await client.get(f"/api/v1/pours/{made['id']}/compliance", headers=headers("hmi"))
        assert r.status_code == 200, r.text
        out = r.json()
        notices = (await client.get("/api/v1/lab/notices", headers=headers("hmi"))).json()
    finally:
        lab.clock = before
    # Today (the clock put back) only the low cylinder is a notice: nothing is due yet.
    report = await client.get(f"/api/v1/pours/{made['id']}/report.csv", headers=auth("hmi"))
    today = (
        await client.get(f"/api/v1/pours/{made['id']}/compliance", headers=headers("hmi"))
    ).json()
    assert [(n["kind"], n["sample_id"], n["severity"]) for n in today["notices"]] == [
        ("low_cylinder", "COMP-B", "info")
    ]
    assert out["scope"] == "pour" and out["samples"] == 3
    (basis,) = out["pours"]
    assert basis["requirements_from"] == "design"
    assert [
        (q["name"], q["required_ucs_kpa"], q["curing_days"], q["design_pass_pct"])
        for q in basis["requirements"]
    ] == [
        ("early", 100.0, 7.0, 80.0),
        ("body", 300.0, 28.0, 80.0),
    ]
    judged = {(j["sample_id"], j["requirement"]): j for j in out["judgements"]}
    assert set(judged) == {("COMP-A", "early"), ("COMP-A", "body"), ("COMP-B", "body")}
    assert judged[("COMP-B", "body")]["passed"] is False
    assert judged[("COMP-B", "body")]["margin_kpa"] == pytest.approx(-50.0)
    body = next(
        p for p in out["pass_fractions"] if p["group"] == "pour" and p["requirement"] == "body"
    )
    assert (body["n"], body["passed"], body["pass_pct"]) == (2, 1, 50.0)
    assert body["design_pass_pct"] == 80.0 and body["verdict"] == "consistent"
    assert body["pass_pct_low"] < 50.0 < body["pass_pct_high"]
    kinds = [(n["kind"], n["sample_id"]) for n in out["notices"]]
    assert kinds[-1] == ("low_cylinder", "COMP-B")  # information: last
    # COMP-A and COMP-B were cast together: one test at 28 days, their mean 300 kPa.
    (test,) = [t for t in out["tests"] if t["requirement"] == "body"]
    assert (test["sample_ids"], test["strength_kpa"]) == (["COMP-A", "COMP-B"], 300.0)
    assert test["below_requirement"] is False and test["gross_low"] is False
    assert test["gross_low_limit_kpa"] == pytest.approx(225.0)
    assert out["running_averages"] == []  # one test: no three consecutive yet
    assert (body["clusters"], body["design_effect"], body["effective_n"]) == (1, 2.0, 1.0)
    overdue = {
        (
            n["sample_id"],
            round(
                (
                    datetime.fromisoformat(n["due_at"]) - datetime.fromisoformat(made["created_at"])
                ).total_seconds()
                / 86400
            ),
        )
        for n in out["notices"]
        if n["kind"] == "overdue"
    }
    assert overdue == {("COMP-B", 3), ("COMP-B", 7), ("COMP-C", 3), ("COMP-C", 7), ("COMP-C", 28)}
    order = ["high", "medium", "low", "info"]
    assert [n["severity"] for n in out["notices"]] == sorted(
        (n["severity"] for n in out["notices"]), key=order.index
    )
    # The open notices of the site, most severe first, hold this pour's.
    items = notices["items"]
    assert ("low_cylinder", "COMP-B") in [(n["kind"], n["sample_id"]) for n in items]
    ranks = [order.index(n["severity"]) for n in items]
    assert ranks == sorted(ranks)
    # The pour report carries the summary.
    assert report.status_code == 200
    head = report.text.partition("\r\n\r\n")[0]
    fields = dict(row for row in csv.reader(io.StringIO(head)) if len(row) == 2)
    assert fields["compliance.requirements_from"] == "design"
    names = {fields[f"compliance.requirement.{i}.name"]: i for i in (1, 2)}
    i = names["body"]
    assert (
        fields[f"compliance.requirement.{i}.tested"],
        fields[f"compliance.requirement.{i}.passed"],
    ) == ("2", "1")
    assert fields[f"compliance.requirement.{i}.design_pass_pct"] == "80"
    assert fields["compliance.notices"] == "1"
    assert fields["compliance.notice.1"].startswith("info low_cylinder: sample COMP-B")


async def test_stope_compliance_by_stage_at_the_site_pass_fraction(
    client: httpx.AsyncClient, lab: LabService
) -> None:
    rid = await recipe(client, "lab stope")  # no design record: the site's 90 %
    stope = await post(
        client,
        "/api/v1/stopes",
        {"name": "S-STAGE", "height_m": 20, "plan_area_m2": 100, "barricade_rating_kpa": 150},
        "engineer",
    )
    plan = {
        "stages": [
            {
                "name": "plug",
                "recipe_id": rid,
                "top_height_m": 4,
                "max_rise_rate_m_h": 1,
                "cure_hold_h": 24,
                "requirements": [{"name": "plug", "ucs_kpa": 150, "curing_days": 3}],
            },
            {
                "name": "body",
                "recipe_id": rid,
                "top_height_m": 20,
                "max_rise_rate_m_h": 2,
                "requirements": [{"name": "body", "ucs_kpa": 300, "curing_days": 28}],
            },
        ]
    }
    r = await client.post(
        f"/api/v1/stopes/{stope['id']}/plans", json=plan, headers=auth("engineer")
    )
    assert r.status_code == 200, r.text
    made = await post(
        client,
        f"/api/v1/stopes/{stope['id']}/pours",
        {"paste_flow_m3_h": 100, "sample_ids": ["STG-1", "STG-2"]},
        "scada",
    )
    assert made["stage"] == 0
    assert (await sample(client, "STG-1"))["pour_id"] == made["id"]  # a stage pour's too
    before = shifted(lab, 3.0)
    try:
        await result(client, "STG-1", curing_days=3, ucs_kpa=170.0)
        await result(client, "STG-2", curing_days=3, ucs_kpa=120.0)
    finally:
        lab.clock = before
    r = await client.get(f"/api/v1/stopes/{stope['id']}/compliance", headers=headers("lab"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["scope"], out["stope"]) == ("stope", "S-STAGE")
    (basis,) = out["pours"]
    assert (basis["requirements_from"], basis["stage"], basis["stage_name"]) == ("stage", 0, "plug")
    assert basis["requirements"] == [
        {"name": "plug", "required_ucs_kpa": 150.0, "curing_days": 3.0, "design_pass_pct": 90.0}
    ]
    groups = {(p["group"], p["group_id"]): p for p in out["pass_fractions"]}
    for key in (("stope", "S-STAGE"), ("stage", "S-STAGE/plug"), ("pour", made["id"])):
        entry = groups[key]
        assert (entry["n"], entry["passed"], entry["design_pass_pct"]) == (2, 1, 90.0)
    low = [n for n in out["notices"] if n["kind"] == "low_cylinder"]
    assert [(n["sample_id"], n["stage_id"]) for n in low] == [("STG-2", "S-STAGE/plug")]
    # One cast of two cylinders: one test, mean 145 kPa, below 150 but not grossly.
    (test,) = out["tests"]
    assert (test["strength_kpa"], test["below_requirement"], test["gross_low"]) == (
        145.0,
        True,
        False,
    )
    assert not [n for n in out["notices"] if n["severity"] == "high"]
    r = await client.get("/api/v1/stopes/no-such-stope/compliance", headers=headers("hmi"))
    assert r.status_code == 404
    r = await client.get("/api/v1/pours/no-such-pour/compliance", headers=headers("hmi"))
    assert r.status_code == 404


# --- recalibration -----------------------------------------------------------------------


def example_csv() -> str:
    return resources.files("service.core.data").joinpath("example_calibration.csv").read_text()


@pytest_asyncio.fixture(loop_scope="module", params=["sqlite", "postgresql"])
async def fresh(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An application of its own: the proposal's figures count every result stored."""
    async with on_backend(request.param, tmp_path) as pair:
        yield pair


async def test_a_proposal_its_figures_its_approval_and_no_design_before_it(
    fresh: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = fresh
    base = await post(
        client, "/api/v1/calibrations", {"name": "mine lab", "csv": example_csv()}, "engineer"
    )
    assert (base["status"], base["approved_at"] is not None) == ("approved", True)
    rid = await recipe(client, "lab recal", calibration_id=base["id"])
    ids = [f"RC-{k}" for k in range(6)]
    await pour(client, rid, ids)
    # The lab's cylinders test 30 % below the approved model's median.
    ucs = {}
    for days in (7.0, 28.0):
        r = await client.post(
            f"/api/v1/calibrations/{base['id']}/predict",
            json={
                "blend": {"cement": 20, "slag": 80},
                "binder_pct": 4.5,
                "solids_pct": 76,
                "curing_days": days,
            },
            headers=headers("hmi"),
        )
        assert r.status_code == 200, r.text
        ucs[days] = r.json()["median_ucs_kpa"]
    lab: LabService = app.state.runtime.lab
    before = shifted(lab, 60.0)  # the results as they came in, over two months
    try:
        for k, sample_id in enumerate(ids):
            for days in (7.0, 28.0):
                scatter = 1.0 + 0.04 * (k - 2.5)
                await result(
                    client,
                    sample_id,
                    curing_days=days,
                    ucs_kpa=round(0.7 * ucs[days] * scatter, 1),
                )
        await result(client, "RC-0", curing_days=56.0, ucs_kpa=0.0)  # too weak: skipped
    finally:
        lab.clock = before

    r = await client.post(
        f"/api/v1/calibrations/{base['id']}/proposals", json={}, headers=headers("engineer")
    )
    assert r.status_code == 201, r.text
    proposal = r.json()
    proposed = proposal["calibration"]
    assert (proposed["status"], proposed["proposed_from"], proposed["version"]) == (
        "proposed",
        base["id"],
        2,
    )
    assert proposed["name"] == "mine lab" and proposed["approved_at"] is None
    assert (proposal["n_old"], proposal["n_new"], proposed["n_rows"]) == (160, 12, 172)
    assert proposal["based_on"] == base["id"]
    assert proposal["r2_log_before"] == pytest.approx(base["r2_log"])
    assert proposal["r2_log_after"] == pytest.approx(proposed["r2_log"])
    changes = {c["term"]: c for c in proposal["changes"]}
    assert set(changes) >= {"intercept", "ln_binder_water", "ln_time"}
    for c in changes.values():
        assert c["change"] == pytest.approx(c["after"] - c["before"])
    old = proposal["old_model_on_new"]
    assert old["n"] == 12
    assert old["bias_log"] == pytest.approx(math.log(0.7), abs=0.02)
    assert old["above_lower_pct"] < 50.0  # far fewer than 90 % above the old lower bound
    assert abs(proposal["new_model_on_new"]["bias_log"]) < abs(old["bias_log"])
    assert [s["sample_id"] for s in proposal["skipped"]] == ["RC-0"]
    assert proposal["pass_fraction_pct"] == 90.0
    detail = (
        await client.get(f"/api/v1/calibrations/{proposed['id']}", headers=headers("hmi"))
    ).json()
    assert detail["proposal"]["n_new"] == 12 and detail["status"] == "proposed"
    assert {row["sample_id"] for row in detail["rows"][160:]} == set(ids)

    # A proposal predicts, but designs nothing until approved.
    r = await client.post(
        f"/api/v1/calibrations/{proposed['id']}/predict",
        json={"blend": {"cement": 20, "slag": 80}, "binder_pct": 4.5, "solids_pct": 76},
        headers=headers("hmi"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["median_ucs_kpa"] < ucs[28.0]  # the weaker cylinders pull it down
    r = await client.post(
        "/api/v1/recipes/optimize",
        json={**OPTIMIZE, "calibration_id": proposed["id"]},
        headers=headers("hmi"),
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "calibration_not_approved",
        "calibration_id",
    )
    r = await client.post(
        "/api/v1/recipes",
        json={"name": "from a proposal", "mix": MIX, "calibration_id": proposed["id"]},
        headers=headers("engineer"),
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "calibration_not_approved",
        "calibration_id",
    )
    # Only an approved version is refitted; the shipped example is not recalibrated.
    r = await client.post(
        f"/api/v1/calibrations/{proposed['id']}/proposals", json={}, headers=headers("engineer")
    )
    assert (r.status_code, r.json()["code"]) == (409, "calibration_not_approved")
    listed = (await client.get("/api/v1/calibrations", headers=headers("hmi"))).json()
    example = next(c for c in listed if c["example"])
    assert example["status"] == "approved"
    r = await client.post(
        f"/api/v1/calibrations/{example['id']}/proposals", json={}, headers=headers("engineer")
    )
    assert (r.status_code, r.json()["code"]) == (409, "calibration_is_example")

    # The approval: an engineer's, once, in the audit log.
    approve = f"/api/v1/calibrations/{proposed['id']}/approve"
    for role, status in (("hmi", 403), ("scada", 403), ("lab", 403)):
        r = await client.post(approve, json={"approved_by": "X"}, headers=headers(role))
        assert r.status_code == status
    r = await client.post(approve, json={"approved_by": "C. Engineer"}, headers=headers("engineer"))
    assert r.status_code == 200, r.text
    approved = r.json()
    assert (approved["status"], approved["approved_by"]) == ("approved", "C. Engineer")
    r = await client.post(approve, json={"approved_by": "D. Engineer"}, headers=headers("admin"))
    assert (r.status_code, r.json()["code"]) == (409, "calibration_already_approved")
    r = await client.post(
        f"/api/v1/calibrations/{base['id']}/approve",
        json={"approved_by": "X"},
        headers=headers("engineer"),
    )
    assert (r.status_code, r.json()["code"]) == (409, "calibration_already_approved")
    audit = (
        await client.get("/api/v1/audit", params={"limit": 1000}, headers=headers("hmi"))
    ).json()
    entries = [
        e
        for e in audit["items"]
        if e["kind"] == "calibration_approval" and e["reason"] == "approved"
    ]
    assert [(e["new"]["calibration_id"], e["new"]["approved_by"], e["role"]) for e in entries] == [
        (proposed["id"], "C. Engineer", "engineer")
    ]
    assert (
        entries[0]["new"]["proposed_from"] == base["id"] and entries[0]["new"]["n_new_rows"] == 12
    )
    r = await client.post(
        "/api/v1/recipes/optimize",
        json={**OPTIMIZE, "calibration_id": proposed["id"]},
        headers=headers("hmi"),
    )
    assert r.status_code == 200, r.text
    await recipe(client, "from the approved refit", calibration_id=proposed["id"])

    # The refit's rows hold the lab results: proposing again from it finds nothing new.
    r = await client.post(
        f"/api/v1/calibrations/{proposed['id']}/proposals", json={}, headers=headers("engineer")
    )
    assert (r.status_code, r.json()["code"]) == (422, "calibration_rejected")
