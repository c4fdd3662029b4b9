"""Stopes through the API of a running service: a stope as surveyed (a table, a mesh, the
meshes refused), addressed by id or name; barricades that belong to one stope; a stage
that cannot be poured abandoned and a stope closed early, with reasons in the audit log;
a plug released on evidence (its cylinders, else the calibration's estimate at its age,
and its barricade), or before with a reason."""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from service.runtime import Runtime
from tests.conftest import auth, fresh_postgres_database
from tests.integration.conftest import running_app
from tests.meshes import frustum, frustum_volume, obj, stl_binary, table

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["sqlite", "postgresql"])
async def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service on SQLite, then on PostgreSQL (an act and its audit entry are one
    transaction on both)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('survey') / 'backfill.db'}"
        async with running_app(url) as pair:
            yield pair
        return
    async with fresh_postgres_database() as url, running_app(url) as pair:
        yield pair


ENGINEER, SCADA, HMI, LAB = auth("engineer"), auth("scada"), auth("hmi"), auth("admin")
MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 25.0},
    "binder": [{"name": "cement", "specific_gravity": 3.15, "fraction_pct": 100}],
    "binder_pct": 6.0,
    "solids_pct": 76.0,
}
R0, R1, H, SIDES = 2.0, 4.0, 12.0, 64


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def name() -> str:
    return f"S-{uuid.uuid4().hex[:6]}"


async def recipe(client: httpx.AsyncClient, calibration_id: str | None = None) -> str:
    body: dict[str, Any] = {"name": f"plug {name()}", "mix": MIX, "approved_by": "A. Engineer"}
    if calibration_id is not None:
        body["calibration_id"] = calibration_id
    return str(ok(await client.post("/api/v1/recipes", json=body, headers=ENGINEER), 201)["id"])


def mesh_survey(points_faces: Any, writer: Any = stl_binary, fmt: str = "stl") -> dict[str, Any]:
    points, faces = points_faces
    return {"mesh": base64.b64encode(writer(points, faces)).decode(), "format": fmt}


async def surveyed(
    client: httpx.AsyncClient, *, tags: list[str] | None = None, rating: float = 150.0
) -> dict[str, Any]:
    body = {
        "name": name(),
        "survey": mesh_survey(frustum(R0, R1, H, SIDES)),
        "barricade_rating_kpa": rating,
        "barricade_tags": tags or [],
    }
    stope: dict[str, Any] = ok(
        await client.post("/api/v1/stopes", json=body, headers=ENGINEER), 201
    )
    return stope


async def audit(client: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    items = ok(await client.get("/api/v1/audit?limit=1000", headers=HMI))["items"]
    return [e for e in items if e["kind"] == kind]


async def test_a_stope_from_a_survey_table_plans_in_volumes_and_answers_to_its_name(
    client: httpx.AsyncClient,
) -> None:
    rows = [(812.0 + 0.25 * i, frustum_volume(R0, R1, H, 0.25 * i, 10**6)) for i in range(49)]
    stope_name = name()
    body = {
        "name": stope_name,
        "survey": {"csv": table(rows, column="elevation_m")},
        "barricade_rating_kpa": 150,
    }
    stope = ok(await client.post("/api/v1/stopes", json=body, headers=ENGINEER), 201)
    geometry = stope["geometry"]
    assert geometry["source"] == "table" and geometry["floor_elevation_m"] == 812.0
    assert stope["height_m"] == pytest.approx(H)
    assert stope["volume_m3"] == pytest.approx(frustum_volume(R0, R1, H, H, 10**6))
    assert stope["plan_area_m2"] == pytest.approx(stope["volume_m3"] / H)
    assert len(geometry["curve"]) == 41 and geometry["curve"][0]["volume_m3"] == 0.0
    # By name as well as by id: the same stope.
    by_name = ok(await client.get(f"/api/v1/stopes/{stope_name}", headers=HMI))
    assert by_name["id"] == stope["id"]
    r = await client.get("/api/v1/stopes/no-such-stope", headers=HMI)
    assert (r.status_code, r.json()["code"]) == (404, "stope_not_found")

    plug = await recipe(client)
    plan = {
        "stages": [
            {"name": "plug", "recipe_id": plug, "top_height_m": 3.0, "max_rise_rate_m_h": 2.0,
             "cure_hold_h": 24},
            {"name": "body", "recipe_id": plug, "top_volume_m3": 200.0, "max_rise_rate_m_h": 4.0},
            {"name": "cap", "recipe_id": plug, "stage_volume_m3": 50.0, "max_rise_rate_m_h": 4.0},
        ]
    }  # fmt: skip
    planned = ok(
        await client.post(f"/api/v1/stopes/{stope_name}/plans", json=plan, headers=ENGINEER)
    )
    plug_top, body_top, cap_top = planned["stages"]
    assert plug_top["top_volume_m3"] == pytest.approx(
        frustum_volume(R0, R1, H, 3.0, 10**6), rel=1e-3
    )
    assert (
        plug_top["top_given_by"] == "top_height_m" and body_top["top_given_by"] == "top_volume_m3"
    )
    assert body_top["top_volume_m3"] == 200.0 and cap_top["top_volume_m3"] == 250.0
    assert frustum_volume(R0, R1, H, body_top["top_height_m"], 10**6) == pytest.approx(
        200.0, rel=1e-3
    )

    # The stage pour says what the rise-rate limit grants at the floor's plan area.
    r = await client.post(
        f"/api/v1/stopes/{stope_name}/pours", json={"paste_flow_m3_h": 100.0}, headers=SCADA
    )
    pour = ok(r, 201)
    assert pour["stope_id"] == stope_name and pour["paste_flow_m3_h"] == 100.0
    flow = pour["flow"]
    floor_area = frustum_volume(R0, R1, H, 0.25, 10**6) / 0.25
    assert flow["limited_by_rise_rate"] is True and flow["requested_m3_h"] == 100.0
    assert flow["granted_m3_h"] == pytest.approx(2.0 * floor_area, rel=1e-9)
    assert flow["plan_area_m2"] == pytest.approx(floor_area)
    live = ok(await client.get(f"/api/v1/stopes/{stope['id']}", headers=HMI))
    assert live["paste_flow_limit_m3_h"] == pytest.approx(2.0 * floor_area)
    assert live["clock"]["stage_times"] == "plant" and live["clock"]["plant_speed"] == 1.0
    # The report and the compliance answer to the name too.
    ok(await client.get(f"/api/v1/stopes/{stope_name}/report", headers=HMI))
    ok(await client.get(f"/api/v1/stopes/{stope_name}/compliance", headers=HMI))


async def test_a_stope_from_a_survey_mesh_and_the_meshes_it_refuses(
    client: httpx.AsyncClient,
) -> None:
    stope = await surveyed(client)
    assert stope["geometry"]["source"] == "mesh"
    exact = frustum_volume(R0, R1, H, H, SIDES)
    assert stope["volume_m3"] == pytest.approx(exact, rel=1e-5)
    for point in stope["geometry"]["curve"]:
        h = point["height_m"]
        assert point["volume_m3"] == pytest.approx(frustum_volume(R0, R1, H, h, SIDES), rel=1e-3)

    points, faces = frustum(R0, R1, H, 24)
    holed = (points, faces[:-2])
    flipped = (points, [faces[0][::-1], *faces[1:]])
    cases = [
        (mesh_survey(holed), "mesh_not_closed", "survey.mesh"),
        (mesh_survey(flipped, obj, "obj"), "mesh_not_oriented", "survey.mesh"),
        ({"mesh": "not base64!", "format": "stl"}, "invalid_input", "survey.mesh"),
        ({"csv": "height_m,volume_m3\n0,0\n1,0\n"}, "survey_invalid", "survey.csv"),
    ]
    before = len(ok(await client.get("/api/v1/stopes", headers=HMI)))
    for survey, code, field in cases:
        body = {"name": name(), "survey": survey, "barricade_rating_kpa": 150}
        r = await client.post("/api/v1/stopes", json=body, headers=ENGINEER)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, code, field), r.text
    assert (
        "face 1"
        in (
            await client.post(
                "/api/v1/stopes",
                json={"name": name(), "survey": cases[1][0], "barricade_rating_kpa": 150},
                headers=ENGINEER,
            )
        ).json()["detail"]
    )
    # A survey gives the height; a prism needs one.
    for body in (
        {"name": name(), "survey": cases[3][0], "height_m": 5, "barricade_rating_kpa": 150},
        {"name": name(), "plan_area_m2": 10, "barricade_rating_kpa": 150},
        {"name": "S/1", "plan_area_m2": 10, "height_m": 5, "barricade_rating_kpa": 150},
    ):
        r = await client.post("/api/v1/stopes", json=body, headers=ENGINEER)
        assert r.status_code == 422, r.text
    assert len(ok(await client.get("/api/v1/stopes", headers=HMI))) == before  # nothing stored


async def test_a_barricade_belongs_to_one_open_stope_and_shows_only_there(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/api/v1/stopes",
        json={"name": name(), "plan_area_m2": 10, "height_m": 5, "barricade_rating_kpa": 150,
              "barricade_tags": ["barricade_7_pressure_pv"]},
        headers=ENGINEER,
    )  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (422, "barricade_not_in_tag_map"), r.text
    assert "barricade_pressure_pv" in r.json()["detail"]  # the ones the tag map has
    owner = await surveyed(client, tags=["barricade_pressure_pv"])
    assert owner["barricade_tags"] == ["barricade_pressure_pv"]
    assert set(owner["barricade_pressure_kpa"]) == {"barricade_pressure_pv"}
    other = await surveyed(client)
    assert other["barricade_tags"] == [] and other["barricade_pressure_kpa"] == {}
    r = await client.post(
        "/api/v1/stopes",
        json={"name": name(), "plan_area_m2": 10, "height_m": 5, "barricade_rating_kpa": 150,
              "barricade_tags": ["barricade_pressure_pv"]},
        headers=ENGINEER,
    )  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (409, "barricade_in_use"), r.text
    assert owner["name"] in r.json()["detail"] and "close that stope" in r.json()["detail"]
    # A plan may name the stope's barricade for it; not another open stope's.
    plug = await recipe(client)
    plan = {
        "stages": [{"name": "all", "recipe_id": plug, "top_height_m": 12, "max_rise_rate_m_h": 2}],
        "barricade_tags": ["barricade_pressure_pv"],
    }
    r = await client.post(f"/api/v1/stopes/{other['id']}/plans", json=plan, headers=ENGINEER)
    assert (r.status_code, r.json()["code"]) == (409, "barricade_in_use"), r.text
    # Closed, the owner shows no reading and its barricade is free.
    ok(
        await client.post(
            f"/api/v1/stopes/{owner['id']}/plans", json={**plan, "barricade_tags": None},
            headers=ENGINEER,
        )
    )  # fmt: skip
    closed = ok(
        await client.post(
            f"/api/v1/stopes/{owner['id']}/close", json={"reason": "not mined"}, headers=ENGINEER
        )
    )
    assert closed["state"] == "closed" and closed["barricade_pressure_kpa"] == {}
    planned = ok(
        await client.post(f"/api/v1/stopes/{other['id']}/plans", json=plan, headers=ENGINEER)
    )
    assert planned["barricade_tags"] == ["barricade_pressure_pv"]
    assert set(planned["barricade_pressure_kpa"]) == {"barricade_pressure_pv"}


async def test_a_stage_that_cannot_be_poured_is_abandoned_and_a_stope_closed_with_reasons(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    runtime: Runtime = app.state.runtime
    stope = await surveyed(client)
    plug = await recipe(client)
    plan = {
        "stages": [
            {"name": "plug", "recipe_id": plug, "top_height_m": 3, "max_rise_rate_m_h": 2,
             "cure_hold_h": 24},
            {"name": "body", "recipe_id": plug, "top_height_m": 12, "max_rise_rate_m_h": 2},
        ]
    }  # fmt: skip
    url = f"/api/v1/stopes/{stope['name']}"
    ok(await client.post(f"{url}/plans", json=plan, headers=ENGINEER))
    pour = ok(await client.post(f"{url}/pours", json={"paste_flow_m3_h": 50}, headers=SCADA), 201)
    record = await runtime.store.get_pour(pour["id"])
    await runtime.stopes.started(record)
    context = await runtime.stopes.context_of(record)
    assert context is not None
    await runtime.stopes.placed(record, context, 20.0)  # the plug fills, then cannot go on
    await runtime.store.update_pour(record.id, totals={**record.totals, "poured_m3": 20.0})

    # Its recipe cannot change while it fills: the refusal says what to do instead.
    other = await recipe(client)
    changed = {"stages": [{**plan["stages"][0], "recipe_id": other}, plan["stages"][1]]}
    r = await client.post(f"{url}/plans", json=changed, headers=ENGINEER)
    assert (r.status_code, r.json()["code"]) == (409, "plan_revision_conflict")
    assert "abandon" in r.json()["detail"]
    # Nor can it be abandoned or the stope closed while its pour is open.
    for act, body in (("abandon", {"reason": "feed too wet"}), ("close", {"reason": "x"})):
        r = await client.post(f"{url}/{act}", json=body, headers=ENGINEER)
        assert (r.status_code, r.json()["code"]) == (409, "stope_pour_open"), r.text
        assert f"/api/v1/pours/{pour['id']}/stop" in r.json()["detail"]
    r = await client.post(f"{url}/abandon", json={"reason": "x"}, headers=SCADA)
    assert r.status_code == 403
    ok(await client.post(f"/api/v1/pours/{pour['id']}/stop", headers=SCADA))

    abandoned = ok(
        await client.post(f"{url}/abandon", json={"reason": "feed too wet for R-plug"},
                          headers=ENGINEER)
    )  # fmt: skip
    first, second = abandoned["stages"]
    assert (first["state"], first["reason"]) == ("abandoned", "feed too wet for R-plug")
    assert second["state"] == "ready" and abandoned["current_stage"] == 1
    (entry,) = [
        e for e in await audit(client, "stage_abandoned") if e["new"]["stope_id"] == stope["id"]
    ]
    assert entry["role"] == "engineer" and entry["detail"] == "feed too wet for R-plug"
    assert entry["new"]["stage_name"] == "plug" and entry["new"]["placed_m3"] == 20.0
    # A new version may now put another plug in its place.
    revised = {
        "stages": [
            {**plan["stages"][0], "top_height_m": None, "top_volume_m3": 20.0},
            {**plan["stages"][0], "name": "plug2", "recipe_id": other},
            plan["stages"][1],
        ]
    }
    planned = ok(await client.post(f"{url}/plans", json=revised, headers=ENGINEER))
    assert planned["plan_version"] == 2 and planned["stages"][1]["state"] == "ready"

    # Not filled: it closes only with a reason.
    r = await client.post(f"{url}/close", headers=ENGINEER)
    assert (r.status_code, r.json()["code"]) == (409, "stope_state_conflict")
    assert "reason" in r.json()["detail"]
    closed = ok(
        await client.post(f"{url}/close", json={"reason": "hanging wall failure"}, headers=ENGINEER)
    )
    assert (closed["state"], closed["closed_reason"]) == ("closed", "hanging wall failure")
    (entry,) = [
        e for e in await audit(client, "stope_closed") if e["new"]["stope_id"] == stope["id"]
    ]
    assert (entry["reason"], entry["detail"]) == ("closed_early", "hanging wall failure")
    assert entry["new"]["state"] == "filling"
    r = await client.post(f"{url}/pours", json={"paste_flow_m3_h": 50}, headers=SCADA)
    assert r.status_code == 409 and "new stope" in r.json()["detail"]


async def test_a_plug_is_released_on_evidence_or_before_with_a_reason(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    runtime: Runtime = app.state.runtime
    calibrations = ok(await client.get("/api/v1/calibrations", headers=HMI))
    example = next(c["id"] for c in calibrations if c["example"])
    plug = await recipe(client, example)
    # The plug's requirement is one its recipe reaches at 28 d by its calibration (a plan
    # asking more is refused), so a release at 8 d has the calibration short of it.
    predicted = ok(
        await client.post(
            f"/api/v1/calibrations/{example}/predict",
            json={
                "blend": {"cement": 100},
                "binder_pct": MIX["binder_pct"],
                "solids_pct": MIX["solids_pct"],
                "curing_days": 28,
            },
            headers=HMI,
        )
    )
    required = float(math.floor(0.95 * predicted["tolerance_lower_ucs_kpa"]))
    stope = await surveyed(client)
    url = f"/api/v1/stopes/{stope['id']}"
    stages = [
        {"name": "plug", "recipe_id": plug, "top_height_m": 2, "max_rise_rate_m_h": 2,
         "cure_hold_h": 48,
         "requirements": [{"name": "plug", "ucs_kpa": required, "curing_days": 28}]},
        {"name": "body", "recipe_id": plug, "top_height_m": 12, "max_rise_rate_m_h": 2},
    ]  # fmt: skip
    ok(await client.post(f"{url}/plans", json={"stages": stages}, headers=ENGINEER))
    cylinders = [f"CYL-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    pour = ok(
        await client.post(
            f"{url}/pours", json={"paste_flow_m3_h": 50, "sample_ids": cylinders}, headers=SCADA
        ),
        201,
    )
    record = await runtime.store.get_pour(pour["id"])
    await runtime.stopes.started(record)
    context = await runtime.stopes.context_of(record)
    assert context is not None
    await runtime.stopes.placed(record, context, 40.0)
    held = ok(await client.get(url, headers=HMI))
    assert held["state"] == "curing"
    release = held["stages"][0]["release"]
    hold, strength, barricade = release["conditions"]
    assert (hold["kind"], hold["met"]) == ("hold", False)
    assert (strength["status"], strength["basis"]) == ("unknown", "none")  # hours old
    assert barricade["status"] == "not_applicable"  # no instrumented barricade
    r = await client.post(f"{url}/release", headers=ENGINEER)
    assert (r.status_code, r.json()["code"]) == (409, "hold_not_elapsed"), r.text
    assert r.json()["remaining_s"] > 47 * 3600 and len(r.json()["conditions"]) == 3
    assert "reason" in r.json()["detail"]

    # Eight plant days on: the hold has run; no cylinder is tested yet, so the strength
    # rests on the calibration's estimate at the plug's age (8 d), short of the 28 d one.
    runtime.plant_clock.offset += timedelta(days=8)
    try:
        held = ok(await client.get(url, headers=HMI))
        hold, strength, _ = held["stages"][0]["release"]["conditions"]
        assert hold["met"] is True
        assert (strength["status"], strength["basis"]) == ("not_met", "calibration_estimate")
        estimate = strength["evidence"]["estimate"]
        assert estimate["age_days"] == pytest.approx(8.0, abs=0.01)
        assert estimate["paste"] == "as designed" and estimate["pass_pct"] == 90.0
        assert estimate["lower_kpa"] < required < predicted["tolerance_lower_ucs_kpa"]
        assert estimate["lower_kpa"] < estimate["median_kpa"]
        assert strength["limit"] == required
        r = await client.post(f"{url}/release", headers=ENGINEER)
        assert (r.status_code, r.json()["code"]) == (409, "release_conditions_not_met"), r.text
        assert "calibration" in r.json()["detail"]

        # The lab's cylinders at 28 d are the evidence once they are in: they reach it.
        lab = runtime.lab
        before = lab.clock
        lab.clock = lambda: datetime.now(UTC) + timedelta(days=29)
        strengths = (required + 40.0, required + 80.0)
        try:
            for sample, ucs in zip(cylinders, strengths, strict=True):
                ok(
                    await client.post(
                        f"/api/v1/samples/{sample}/results",
                        json={"curing_days": 28, "ucs_kpa": ucs},
                        headers=LAB,
                    ),
                    201,
                )
            held = ok(await client.get(url, headers=HMI))
        finally:
            lab.clock = before
        _, strength, _ = held["stages"][0]["release"]["conditions"]
        assert (strength["status"], strength["basis"], strength["figure"]) == (
            "met", "cylinders", pytest.approx(required + 60.0)
        )  # fmt: skip
        assert held["stages"][0]["release"]["ready"] is True
        released = ok(await client.post(f"{url}/release", headers=ENGINEER))
    finally:
        runtime.plant_clock.offset -= timedelta(days=8)
    assert released["stages"][0]["state"] == "released" and released["stages"][0]["reason"] is None
    (entry,) = [
        e for e in await audit(client, "stope_release") if e["new"]["stope_id"] == stope["id"]
    ]
    assert entry["reason"] == "on_evidence" and entry["new"]["release"]["ready"] is True


async def test_an_engineer_releases_before_the_evidence_only_with_a_reason(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    runtime: Runtime = app.state.runtime
    stope = await surveyed(client)
    plug = await recipe(client)
    url = f"/api/v1/stopes/{stope['id']}"
    stages = [
        {"name": "plug", "recipe_id": plug, "top_height_m": 2, "max_rise_rate_m_h": 2,
         "cure_hold_h": 48, "requirements": [{"name": "plug", "ucs_kpa": 150, "curing_days": 7}]},
        {"name": "body", "recipe_id": plug, "top_height_m": 12, "max_rise_rate_m_h": 2},
    ]  # fmt: skip
    ok(await client.post(f"{url}/plans", json={"stages": stages}, headers=ENGINEER))
    pour = ok(await client.post(f"{url}/pours", json={"paste_flow_m3_h": 50}, headers=SCADA), 201)
    record = await runtime.store.get_pour(pour["id"])
    await runtime.stopes.started(record)
    context = await runtime.stopes.context_of(record)
    assert context is not None
    await runtime.stopes.placed(record, context, 40.0)
    held = ok(await client.get(url, headers=HMI))
    _, strength, _ = held["stages"][0]["release"]["conditions"]
    assert "names no calibration" in strength["detail"]  # the recipe has none
    r = await client.post(f"{url}/release", json={"reason": ""}, headers=ENGINEER)
    assert r.status_code == 422
    reason = "cylinders of the neighbouring plug at 2 d read 210 kPa; barricade at 12 kPa"
    released = ok(await client.post(f"{url}/release", json={"reason": reason}, headers=ENGINEER))
    assert released["stages"][0]["reason"] == reason
    assert released["stages"][1]["state"] == "ready"
    (entry,) = [
        e for e in await audit(client, "stope_release") if e["new"]["stope_id"] == stope["id"]
    ]
    assert (entry["reason"], entry["detail"], entry["role"]) == ("override", reason, "engineer")
    conditions = entry["new"]["release"]["conditions"]
    assert [c["met"] for c in conditions] == [False, False, True]  # as they stood
