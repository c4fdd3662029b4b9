"""Values no plant has, refused where they enter, over HTTP with the lifespan running: a
stope and its fill plan outside the site's plausible ranges (``BACKFILL_STOPES__*``),
and lab results outside the site's test ages or with times the service's own record
contradicts (``BACKFILL_LAB__*``): each a 422 naming the field (a lab sheet's row and
column) and the setting, and nothing stored; and a 422's list of errors bounded
(``BACKFILL_API__MAX_ERRORS_LISTED``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from service.app import create_app
from service.operations.lab import LabService
from service.settings import Settings
from tests.conftest import api_keys_setting, auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = auth("admin")
MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "binder": [{"name": "cement", "specific_gravity": 3.15, "fraction_pct": 100}],
    "binder_pct": 6.0,
    "solids_pct": 73.0,  # one the simulated plant's feed makes
}
HOLD_MAX_H = 100.0  # this site's longest cure hold (the default is 720 h)
ERRORS = 50  # errors listed in one answer (the default is 100)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('limits') / 'backfill.db'}"
    app = create_app(
        Settings(
            database_url=url,
            api_keys=api_keys_setting(),
            api={"write_rate_per_s": 1000.0, "write_burst": 1000, "max_errors_listed": ERRORS},
            stopes={"cure_hold_h_max": HOLD_MAX_H},
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture(loop_scope="module")
async def client(running: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=running)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def post(client: httpx.AsyncClient, url: str, body: dict[str, Any], status: int = 201) -> Any:
    r = await client.post(f"/api/v1{url}", json=body, headers=ADMIN)
    assert r.status_code == status, (url, r.text)
    return r.json()


async def refused(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], code: str, field: str
) -> dict[str, Any]:
    out: dict[str, Any] = await post(client, url, body, 422)
    assert (out["code"], out["field"]) == (code, field), out
    return out


async def recipe(client: httpx.AsyncClient, name: str) -> str:
    body = {"name": name, "mix": MIX, "approved_by": "A. Engineer"}
    return str((await post(client, "/recipes", body))["id"])


# --- stopes and plans ---------------------------------------------------------------------


async def test_a_stope_no_plant_has_is_refused_and_not_stored(client: httpx.AsyncClient) -> None:
    stope = {"name": "S-NONE", "height_m": 30, "barricade_rating_kpa": 200}
    out = await refused(
        client, "/stopes", {**stope, "plan_area_m2": 1e-300}, "stope_implausible", "plan_area_m2"
    )
    assert "BACKFILL_STOPES__PLAN_AREA_M2_MIN" in out["detail"]
    assert out["limit_min"] == 1.0
    await refused(
        client,
        "/stopes",
        {**stope, "length_m": 0.01, "width_m": 0.01},
        "stope_implausible",
        "length_m",
    )
    await refused(
        client,
        "/stopes",
        {**stope, "height_m": 1e-9, "plan_area_m2": 150},
        "stope_implausible",
        "height_m",
    )
    listed = (await client.get("/api/v1/stopes", headers=ADMIN)).json()
    assert "S-NONE" not in {s["name"] for s in listed}


async def test_a_plan_no_plant_can_follow_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    rid = await recipe(client, "limits plan")
    stope = await post(
        client,
        "/stopes",
        {"name": "S-PLAN", "height_m": 30, "plan_area_m2": 150, "barricade_rating_kpa": 200},
    )
    url = f"/stopes/{stope['id']}/plans"

    def plan(*stages: dict[str, Any], continuous: bool = False) -> dict[str, Any]:
        return {
            "continuous": continuous,
            "stages": [{"recipe_id": rid, "max_rise_rate_m_h": 0.5, **s} for s in stages],
        }

    body = {"name": "body", "top_height_m": 30}
    for bad, field, setting in (
        (plan({"name": "plug", "top_height_m": 1e-9}, body), "stages[0].top_height_m", "STAGE_"),
        (
            plan({"name": "plug", "top_height_m": 4, "max_rise_rate_m_h": 1e-9}, body),
            "stages[0].max_rise_rate_m_h",
            "RISE_RATE_M_H_MIN",
        ),
        (
            plan({"name": "plug", "top_height_m": 4, "cure_hold_h": 48}, body, continuous=True),
            "stages[0].cure_hold_h",
            "",
        ),
        (
            plan({"name": "plug", "top_height_m": 4, "cure_hold_h": 200}, body),
            "stages[0].cure_hold_h",
            "CURE_HOLD_H_MAX",
        ),
    ):
        out = await refused(client, url, bad, "plan_implausible", field)
        assert f"BACKFILL_STOPES__{setting}" in out["detail"] or "continuous" in out["detail"]
    state = (await client.get(f"/api/v1/stopes/{stope['id']}", headers=ADMIN)).json()
    assert state["plan_version"] is None
    # This site's hold limit (set in its settings) lets a 48 h plug hold through.
    await post(client, url, plan({"name": "plug", "top_height_m": 4, "cure_hold_h": 48}, body), 200)


async def test_a_stage_past_the_pour_cap_never_becomes_a_pour(client: httpx.AsyncClient) -> None:
    rid = await recipe(client, "limits big")
    stope = await post(
        client,
        "/stopes",
        {"name": "S-BIG", "height_m": 1000, "plan_area_m2": 1e5, "barricade_rating_kpa": 200},
    )
    stages = [
        {"name": "plug", "recipe_id": rid, "top_height_m": 4, "max_rise_rate_m_h": 0.5},
        {"name": "body", "recipe_id": rid, "top_height_m": 1000, "max_rise_rate_m_h": 0.5},
    ]
    out = await refused(
        client,
        f"/stopes/{stope['id']}/plans",
        {"stages": stages},
        "plan_implausible",
        "stages[1].top_height_m",
    )
    assert "STAGE_VOLUME_M3_MAX" in out["detail"]
    r = await client.post(
        f"/api/v1/stopes/{stope['id']}/pours", json={"paste_flow_m3_h": 100}, headers=ADMIN
    )
    assert (r.status_code, r.json()["code"]) == (409, "plan_not_found"), r.text


# --- lab results ------------------------------------------------------------------------


async def cast_samples(client: httpx.AsyncClient, ids: list[str]) -> datetime:
    rid = await recipe(client, f"limits lab {ids[0]}")
    body = {
        "stope_id": "S-LAB",
        "recipe_id": rid,
        "target_volume_m3": 50,
        "paste_flow_m3_h": 100,
        "sample_ids": ids,
    }
    await post(client, "/pours", body)
    sample = (await client.get(f"/api/v1/samples/{ids[0]}", headers=ADMIN)).json()
    return datetime.fromisoformat(sample["cast_at"])


async def test_a_28_day_result_seconds_after_casting_and_a_cast_days_off_are_refused(
    client: httpx.AsyncClient, running: FastAPI
) -> None:
    cast = await cast_samples(client, ["LIM-1"])
    url = "/samples/LIM-1/results"
    out = await refused(
        client, url, {"curing_days": 28, "ucs_kpa": 400}, "invalid_input", "curing_days"
    )
    assert "BACKFILL_LAB__EARLY_RESULT_TOLERANCE_H" in out["detail"]
    lab: LabService = running.state.runtime.lab
    before = lab.clock
    lab.clock = lambda: datetime.now(UTC) + timedelta(days=30)
    try:
        five_days_off = (cast - timedelta(days=5)).isoformat()
        out = await refused(
            client,
            url,
            {"curing_days": 28, "ucs_kpa": 400, "cast_at": five_days_off},
            "invalid_input",
            "cast_at",
        )
        assert "BACKFILL_LAB__CAST_AT_TOLERANCE_H" in out["detail"]
        await refused(
            client,
            url,
            {"curing_days": 1e-300, "ucs_kpa": 400},
            "invalid_input",
            "curing_days",
        )
        assert (await client.get("/api/v1/samples/LIM-1", headers=ADMIN)).json()["results"] == []
        # A month on, with the cast the lab noted (minutes off the record), it is taken.
        noted = (cast + timedelta(minutes=20)).isoformat()
        await post(client, url, {"curing_days": 28, "ucs_kpa": 400, "cast_at": noted})
    finally:
        lab.clock = before


async def test_a_lab_sheet_with_the_values_no_lab_writes_names_each_row_and_column(
    client: httpx.AsyncClient, running: FastAPI
) -> None:
    ids = [f"LIM-S{k}" for k in range(7)]
    cast = await cast_samples(client, ids)
    at = cast.isoformat()
    text = (
        "sample_id,cast_at,curing_days,ucs_kpa,wet_mass_g,dry_mass_g\n"
        f"LIM-S0,{at},7,150,,\n"  # line 2: good
        f"LIM-S1,0001-01-01T00:00:00+00:00,7,150,,\n"  # line 3: the year 1
        f"LIM-S2,{(cast - timedelta(days=5)).isoformat()},7,150,,\n"  # line 4: 5 days off
        f"LIM-S3,{at},1e-300,150,,\n"  # line 5: an age of nothing
        f"LIM-S4,{at},7,1_000,,\n"  # line 6: not a number a lab writes
        f"LIM-S5,{at},\u0667,150,,\n"  # line 7: an Arabic-Indic seven
        f"LIM-S6,{at},28,150,,\n"  # line 8: 28 days, 10 days after casting
    )
    lab: LabService = running.state.runtime.lab
    before = lab.clock
    lab.clock = lambda: datetime.now(UTC) + timedelta(days=10)
    try:
        out = await refused(client, "/lab/sheets", {"csv": text}, "invalid_input", "csv")
        assert [(e["row"], e["field"]) for e in out["errors"]] == [
            (3, "cast_at"),
            (4, "cast_at"),
            (5, "curing_days"),
            (6, "ucs_kpa"),
            (7, "curing_days"),
            (8, "curing_days"),
        ]
        # A quote opened and never closed swallowed the rest of the file as one cell.
        open_quote = text.replace("LIM-S6", '"LIM-S6')
        out = await refused(client, "/lab/sheets", {"csv": open_quote}, "invalid_input", "csv")
        assert [e["field"] for e in out["errors"]][-1] == "csv"
        assert "quote" in out["errors"][-1]["message"]
        for sample_id in ids:
            sample = (await client.get(f"/api/v1/samples/{sample_id}", headers=ADMIN)).json()
            assert sample["results"] == [], sample_id
        # The good row alone goes in.
        done = await post(client, "/lab/sheets", {"csv": "\n".join(text.splitlines()[:2])})
        assert done["imported"] == 1
    finally:
        lab.clock = before


# --- bounded answers ----------------------------------------------------------------------


async def test_a_bad_megabyte_of_lab_sheet_answers_a_bounded_list_of_errors(
    client: httpx.AsyncClient,
) -> None:
    note = "n" * 165
    rows = [f"NONE-{i},yesterday,abc,def,{note}" for i in range(5000)]
    text = "sample_id,cast_at,curing_days,ucs_kpa,note\n" + "\n".join(rows) + "\n"
    assert 900_000 < len(text) < 1_000_000  # a megabyte, as the body limit allows
    r = await client.post("/api/v1/lab/sheets", json={"csv": text}, headers=ADMIN)
    assert r.status_code == 422, r.text[:300]
    out = r.json()
    assert len(out["errors"]) == ERRORS
    assert out["errors_omitted"] == 4 * 5000 - ERRORS  # four bad cells in every row
    assert f"{4 * 5000 - ERRORS} more errors not listed" in out["detail"]
    assert [e["row"] for e in out["errors"]][:4] == [2, 2, 2, 2]
    assert len(r.content) < 20_000
    # A body with many bad fields is bounded the same way.
    cylinders = [{"blend": {"cement": 100}, "binder_pct": -1.0}] * 300
    r = await client.post(
        "/api/v1/calibrations", json={"name": "x", "rows": cylinders}, headers=ADMIN
    )
    assert r.status_code == 422
    assert len(r.json()["errors"]) == ERRORS and r.json()["errors_omitted"] > 300
