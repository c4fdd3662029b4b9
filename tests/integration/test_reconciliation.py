"""Gs and Cw reconciliation over HTTP with the lifespan running, on SQLite and on
PostgreSQL: cylinders of a paste whose true tailings Gs is 3 % above the recipe's
(generated from the mass-volume relations, with gauge and lab noise) name the Gs within
its interval; an engineer approves the correction (audited, the lab may not); the next
pour start carries it; a past pour reads its Cw reconciled beside the one it was
controlled on, with its off-spec volume judged on the best estimate."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from service.app import create_app
from service.core.control import PourTotals
from service.runtime import Runtime
from service.settings import Settings
from tests.conftest import KEYS, api_keys_setting, auth, fresh_postgres_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

LAB_KEY = "lab-key-reconcile-0123456789"
RHO_W = 1000.0
RECIPE_GS = 2.80
TRUE_GS = RECIPE_GS * 1.03  # the tailings are 3 % heavier than the recipe says
CEMENT_GS, SLAG_GS = 3.15, 2.90
MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": RECIPE_GS, "moisture_pct": 35.7},
    "binder": [
        {"name": "cement", "specific_gravity": CEMENT_GS, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": SLAG_GS, "fraction_pct": 80},
    ],
    "binder_pct": 5.0,
    "solids_pct": 72.0,
}
BW = MIX["binder_pct"] / 100.0
BINDER_GS = 1.0 / (0.2 / CEMENT_GS + 0.8 / SLAG_GS)  # 1/Gs_b = sum f_i/Gs_i: volumes add


# --- the physics, written out here (Belem & Benzaazoua 2008; Wills & Finch 2016 ch. 3) ---


def solids_gs(tailings_gs: float) -> float:
    """Gs_s = (1 + Bw) / (1/Gs_t + Bw/Gs_b)."""
    return (1.0 + BW) / (1.0 / tailings_gs + BW / BINDER_GS)


def paste_density(cw: float, tailings_gs: float) -> float:
    """rho = 1 / (Cw/(Gs_s rho_w) + (1 - Cw)/rho_w)."""
    return 1.0 / (cw / (solids_gs(tailings_gs) * RHO_W) + (1.0 - cw) / RHO_W)


def cw_at(density: float, tailings_gs: float) -> float:
    """Cw = rho_s (rho - rho_w) / (rho (rho_s - rho_w))."""
    rho_s = solids_gs(tailings_gs) * RHO_W
    return rho_s * (density - RHO_W) / (density * (rho_s - RHO_W))


# --- the application ------------------------------------------------------------------


def headers(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {LAB_KEY}"} if role == "lab" else auth(role)


@asynccontextmanager
async def lab_app(url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(
        Settings(
            database_url=url,
            api_keys=f"{api_keys_setting()},lab:{LAB_KEY}",
            api={"write_rate_per_s": 1000.0, "write_burst": 1000},
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["sqlite", "postgresql"])
async def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("reconcile")
        async with lab_app(f"sqlite+aiosqlite:///{folder / 'backfill.db'}") as pair:
            yield pair
        return
    async with fresh_postgres_database() as url, lab_app(url) as pair:
        yield pair


@pytest.fixture
def client(running: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return running[1]


@pytest.fixture
def runtime(running: tuple[FastAPI, httpx.AsyncClient]) -> Runtime:
    found: Runtime = running[0].state.runtime
    return found


async def post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], role: str, status: int = 201
) -> Any:
    r = await client.post(url, json=body, headers=headers(role))
    assert r.status_code == status, r.text
    return r.json()


async def recipe(client: httpx.AsyncClient, name: str, mix: dict[str, Any] | None = None) -> str:
    body = {"name": name, "mix": mix or MIX, "approved_by": "A. Engineer"}
    return str((await post(client, "/api/v1/recipes", body, "engineer"))["id"])


async def pour(
    client: httpx.AsyncClient, recipe_id: str, samples: list[str] | None = None
) -> dict[str, Any]:
    body = {
        "stope_id": "S-GS",
        "recipe_id": recipe_id,
        "target_volume_m3": 50.0,
        "paste_flow_m3_h": 100.0,
        "sample_ids": samples or [],
    }
    out: dict[str, Any] = await post(client, "/api/v1/pours", body, "scada")
    return out


async def write_history(runtime: Runtime, rows: list[dict[str, Any]]) -> None:
    await runtime.history.write(rows, [])


# --- the module's story, in order -------------------------------------------------------


@dataclass
class Story:
    """What one test leaves for the next (one application per backend)."""

    recipe_id: str = ""
    sample_ids: list[str] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    past_pour: str = ""


@pytest.fixture(scope="module")
def story(running: tuple[FastAPI, httpx.AsyncClient]) -> Story:
    return Story()


async def test_a_gs_3_pct_off_is_named_within_its_interval(
    client: httpx.AsyncClient, runtime: Runtime, story: Story, request: pytest.FixtureRequest
) -> None:
    tag = request.node.callspec.id
    story.recipe_id = await recipe(client, f"gs body {tag}")
    ids = [f"GS-{tag}-{i}" for i in range(10)]
    await pour(client, story.recipe_id, ids)
    story.sample_ids = ids
    rng = random.Random(12)
    # Cast over the last few hours, as the pour recorded them (within the site's
    # tolerance of the samples' recorded cast), weighed fresh two hours after.
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    expected_errors = []
    for i, sample_id in enumerate(ids):
        cast_at = base + timedelta(minutes=15 * i)
        true_cw = 0.70 + 0.006 * i  # the plant ran a range of densities
        true_density = paste_density(true_cw, TRUE_GS)
        gauge = true_density + rng.gauss(0.0, 2.0)  # a sound gauge, 2 kg/m3 noise
        stamp = int(cast_at.timestamp() * 1000)
        readings = [gauge + rng.gauss(0.0, 1.0) for _ in range(-20, 21)]
        await write_history(
            runtime,
            [
                {"ts_ms": stamp + k * 1000, "paste_density_pv": value}
                for k, value in zip(range(-20, 21), readings, strict=True)
            ],
        )
        wet = 1500.0
        dry = round((true_cw + rng.gauss(0.0, 0.0005)) * wet, 2)  # oven drying: 0.05 point
        body = {
            "cast_at": cast_at.isoformat(),
            "tested_at": (cast_at + timedelta(hours=2)).isoformat(),
            "wet_mass_g": wet,
            "dry_mass_g": dry,
            "bulk_density_kg_m3": round(true_density + rng.gauss(0.0, 3.0), 1),
        }
        await post(client, f"/api/v1/samples/{sample_id}/results", body, "lab")
        recorded = cw_at(sum(readings) / len(readings), RECIPE_GS)  # the plant's Cw at cast
        expected_errors.append(dry / wet - recorded)

    url = "/api/v1/lab/reconciliations"
    # The lab enters results; it proposes nothing.
    await post(client, url, {"sample_ids": ids}, "lab", 403)
    out = await post(client, url, {"sample_ids": ids}, "engineer")
    assert out["status"] == "proposed" and out["active"] is False
    assert out["verdict"] == "tailings_gs", out["explanation"]
    assert out["assumed_tailings_sg"] == pytest.approx(RECIPE_GS)
    assert len(out["samples"]) == 10 and out["skipped"] == []
    proposal = out["proposal"]
    assert proposal["kind"] == "tailings_gs" and proposal["determined"] is True
    assert proposal["low"] <= TRUE_GS <= proposal["high"], proposal
    assert proposal["low"] <= proposal["tailings_sg"] <= proposal["high"]
    assert proposal["high"] - proposal["low"] < 0.05  # it names the Gs, not a range
    assert out["tailings_sg"]["value"] == pytest.approx(proposal["tailings_sg"])
    assert out["tailings_sg_error_pct"] == pytest.approx(3.0, abs=0.5)
    # The lab reads about a point below what the plant recorded: a 3 % Gs error moves the
    # Cw of the slurry relation by about a point at these densities.
    mean_error = sum(expected_errors) / len(expected_errors)
    assert mean_error < -0.008
    assert out["mean_solids_error_pct"] == pytest.approx(100.0 * mean_error, abs=1e-6)
    # Nothing changes before an engineer approves it.
    r = await client.get("/api/v1/lab/correction", headers=auth("hmi"))
    assert r.json() == {"correction": None}
    story.reconciliation = out


async def test_samples_that_cannot_be_reconciled_are_named(
    client: httpx.AsyncClient, runtime: Runtime, story: Story, request: pytest.FixtureRequest
) -> None:
    tag = request.node.callspec.id
    url = "/api/v1/lab/reconciliations"
    # Samples without masses: nothing to reconcile, 422 naming the field, nothing stored.
    bare = [f"BARE-{tag}-{i}" for i in range(2)]
    await pour(client, story.recipe_id, bare)
    before = (await client.get(url, headers=auth("hmi"))).json()["items"]
    r = await client.post(url, json={"sample_ids": bare}, headers=auth("engineer"))
    assert (r.status_code, r.json()["field"]) == (422, "sample_ids"), r.text
    assert {s["reason"] for s in r.json()["skipped"]} == {"no result with its masses"}
    r = await client.post(url, json={"sample_ids": ["NOPE-1", "NOPE-2"]}, headers=auth("engineer"))
    assert (r.status_code, r.json()["field"]) == (422, "sample_ids")
    # Cured cylinders need the binder's degree of hydration.
    r = await client.post(
        url,
        json={"sample_ids": story.sample_ids, "masses_of": "cured_cylinder"},
        headers=auth("engineer"),
    )
    assert (r.status_code, r.json()["field"]) == (422, "degree_of_hydration"), r.text
    # A sample whose paste density was never recorded is skipped, saying why.
    r = await client.post(
        url, json={"sample_ids": [*story.sample_ids, bare[0]]}, headers=auth("engineer")
    )
    assert r.status_code == 201, r.text
    assert r.json()["skipped"] == [{"sample_id": bare[0], "reason": "no result with its masses"}]
    # A sample cast while the gauge read water (the plant at rest, or flushing) has no
    # paste reading: it is skipped, saying so, and the others still reconcile.
    water = f"WATER-{tag}"
    await pour(client, story.recipe_id, [water])
    cast_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=7)
    stamp = int(cast_at.timestamp() * 1000)
    rows = [{"ts_ms": stamp + k * 1000, "paste_density_pv": 998.0} for k in range(-20, 21)]
    await write_history(runtime, rows)
    result = {
        "cast_at": cast_at.isoformat(),
        "tested_at": (cast_at + timedelta(hours=2)).isoformat(),
        "wet_mass_g": 1500.0,
        "dry_mass_g": 1140.0,
    }
    await post(client, f"/api/v1/samples/{water}/results", result, "lab")
    r = await client.post(
        url, json={"sample_ids": [*story.sample_ids, water]}, headers=auth("engineer")
    )
    assert r.status_code == 201, r.text
    (skip,) = r.json()["skipped"]
    assert skip["sample_id"] == water and "998 kg/m3" in skip["reason"], skip
    assert "not a paste reading" in skip["reason"]
    assert len(r.json()["samples"]) == len(story.sample_ids)
    after = (await client.get(url, headers=auth("hmi"))).json()["items"]
    assert len(after) == len(before) + 2


async def test_an_engineer_approves_the_correction_and_the_log_says_so(
    client: httpx.AsyncClient, story: Story
) -> None:
    proposal_id = story.reconciliation["id"]
    url = f"/api/v1/lab/reconciliations/{proposal_id}/approve"
    for role in ("lab", "scada", "hmi"):
        await post(client, url, {"approved_by": "Not Allowed"}, role, 403)
    out = await post(client, url, {"approved_by": "G. Metallurgist"}, "engineer", 200)
    assert out["status"] == "approved" and out["active"] is True
    assert out["approved_by"] == "G. Metallurgist"
    r = await client.post(url, json={"approved_by": "Again"}, headers=auth("engineer"))
    assert (r.status_code, r.json()["code"]) == (409, "correction_not_proposed")
    r = await client.get("/api/v1/lab/correction", headers=headers("lab"))
    active = r.json()["correction"]
    assert active["id"] == proposal_id and active["kind"] == "tailings_gs"
    assert active["tailings_sg"] == pytest.approx(story.reconciliation["proposal"]["tailings_sg"])
    r = await client.get("/api/v1/audit", params={"limit": 1000}, headers=auth("hmi"))
    entries = [e for e in r.json()["items"] if e["kind"] == "cw_correction_approval"]
    assert [e["new"]["correction_id"] for e in entries] == [proposal_id]
    assert entries[0]["new"]["approved_by"] == "G. Metallurgist"
    # The name in approved_by is a claim of a key of the role alone; the entry names the
    # key that approved (its role and id).
    engineer = hashlib.sha256(KEYS["engineer"].encode()).hexdigest()[:8]
    assert (entries[0]["role"], entries[0]["person"]) == ("engineer", f"engineer:{engineer}")


async def _start(client: httpx.AsyncClient, pour_id: str) -> dict[str, Any]:
    """Start a pour once the built-in plant accepts setpoints."""
    deadline = time.monotonic() + 30.0
    while True:
        r = await client.post(f"/api/v1/pours/{pour_id}/start", headers=auth("scada"))
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        assert r.json()["code"] in ("plant_not_ready", "plant_link_down"), r.text
        await asyncio.sleep(0.2)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def _stop(client: httpx.AsyncClient, pour_id: str) -> None:
    r = await client.post(f"/api/v1/pours/{pour_id}/stop", headers=auth("scada"))
    assert r.status_code == 200, r.text


async def test_the_next_pour_start_runs_on_the_approved_correction(
    client: httpx.AsyncClient, story: Story, request: pytest.FixtureRequest
) -> None:
    tag = request.node.callspec.id
    planned = await pour(client, story.recipe_id)
    assert planned["correction"] is None  # not started: nothing decided yet
    started = await _start(client, planned["id"])
    try:
        correction = started["correction"]
        assert correction["id"] == story.reconciliation["id"]
        assert correction["kind"] == "tailings_gs"
        assert correction["tailings_sg"] == pytest.approx(
            story.reconciliation["proposal"]["tailings_sg"]
        )
        assert correction["assumed_tailings_sg"] == pytest.approx(RECIPE_GS)
    finally:
        await _stop(client, planned["id"])
    r = await client.get(f"/api/v1/pours/{planned['id']}", headers=auth("hmi"))
    assert r.json()["correction"]["id"] == story.reconciliation["id"]
    # A recipe written for other tailings (another Gs) is left alone.
    other = await recipe(
        client,
        f"other tailings {tag}",
        {**MIX, "tailings": {"specific_gravity": 3.05, "moisture_pct": 35.7}},
    )
    planned = await pour(client, other)
    started = await _start(client, planned["id"])
    try:
        assert started["correction"] is None
    finally:
        await _stop(client, planned["id"])


async def test_a_past_pour_reads_its_cw_reconciled_beside_the_one_it_ran_on(
    client: httpx.AsyncClient, runtime: Runtime, story: Story
) -> None:
    # A pour that ran two days ago on the recipe's Gs: control held the gauge at the
    # density of the target Cw (as it understood it), 40 m3 over 24 minutes.
    past = await pour(client, story.recipe_id)
    started_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    seconds = 24 * 60
    held = paste_density(0.72, RECIPE_GS)
    rows = []
    for k in range(seconds):
        density = held + 0.5 * math.sin(k / 30.0)
        rows.append(
            {
                "ts_ms": int(started_at.timestamp() * 1000) + 1000 * k,
                "paste_density_pv": density,
                "paste_flow_pv": 100.0,
                "plant_mode": 2.0,
            }
        )
    await write_history(runtime, rows)
    totals = replace(
        PourTotals(),
        elapsed_s=float(seconds),
        poured_m3=40.0,
        solids_weighted_m3=0.72 * 40.0,
        solids_measured_m3=40.0,
        solids_min=cw_at(held - 0.5, RECIPE_GS),
        solids_max=cw_at(held + 0.5, RECIPE_GS),
    )
    await runtime.store.update_pour(
        past["id"],
        state="completed",
        started_at=started_at,
        ended_at=started_at + timedelta(seconds=seconds),
        totals={**totals.summary(), "integrator": totals.to_dict()},
    )
    r = await client.get(f"/api/v1/pours/{past['id']}", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    read = r.json()
    corrected_gs = story.reconciliation["proposal"]["tailings_sg"]
    # The record is as controlled, never rewritten.
    assert read["average_solids_pct"] == pytest.approx(72.0)
    assert read["off_spec_m3"] == 0.0 and read["correction"] is None
    rec = read["reconciliation"]
    assert rec["basis"] == "reconciled"
    assert rec["reconciled_with"]["id"] == story.reconciliation["id"]
    assert rec["controlled_with"] is None
    assert rec["as_controlled"]["average_solids_pct"] == pytest.approx(72.0)
    expected = 100.0 * cw_at(held, corrected_gs)
    assert rec["reconciled"]["average_solids_pct"] == pytest.approx(expected, abs=0.01)
    assert rec["reconciled"]["min_solids_pct"] == pytest.approx(
        100.0 * cw_at(held - 0.5, corrected_gs), abs=1e-6
    )
    assert rec["best_average_solids_pct"] == rec["reconciled"]["average_solids_pct"]
    # Judged on the best estimate: the paste was about a point leaner than recorded,
    # beyond the one-point band all through, so all of it was off spec.
    band = 100.0 * runtime.supervisor.config.alarms.solids_band_fraction
    lean = max(abs(100.0 * cw_at(held + d, corrected_gs) - 72.0) for d in (-0.5, 0.5))
    assert min(abs(100.0 * cw_at(held + d, corrected_gs) - 72.0) for d in (-0.5, 0.5)) > band
    assert lean < 2 * band
    off = rec["off_spec"]
    assert off["basis"] == "reconciled"
    assert off["as_controlled_m3"] == 0.0
    assert off["volume_m3"] == pytest.approx(40.0, rel=1e-6)
    assert off["reconciled_m3"] == pytest.approx(40.0, rel=1e-6)
    assert off["unknown_m3"] == 0.0
    story.past_pour = past["id"]


async def test_the_pour_report_carries_the_reconciliation(
    client: httpx.AsyncClient, story: Story
) -> None:
    r = await client.get(f"/api/v1/pours/{story.past_pour}/report", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["pour"]["reconciliation"]["basis"] == "reconciled"
    assert report["pour"]["reconciliation"]["off_spec"]["volume_m3"] == pytest.approx(40.0)
    assert report["recipe"]["tailings_sg"] == pytest.approx(RECIPE_GS)
    assert report["compliance"]["scope"] == "pour"
    r = await client.get(f"/api/v1/pours/{story.past_pour}/report.csv", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    head = r.text.split("\r\n\r\n", 1)[0]
    fields = dict(csv.reader(io.StringIO(head)))
    assert fields["reconciliation.basis"] == "reconciled"
    assert fields["reconciliation.reconciled_with.id"] == story.reconciliation["id"]
    assert float(fields["reconciliation.off_spec.volume_m3"]) == pytest.approx(40.0)
    assert float(fields["reconciliation.as_controlled.average_solids_pct"]) == pytest.approx(72.0)
    assert float(fields["reconciliation.reconciled.average_solids_pct"]) < 71.0
    assert float(fields["pour.off_spec_m3"]) == 0.0
