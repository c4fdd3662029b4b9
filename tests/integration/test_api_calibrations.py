"""Calibrations over HTTP (lifespan running) and the seeding of the shipped example."""

from __future__ import annotations

import csv
import hashlib
import io
from importlib import resources
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.core.strength_model import load_example_model
from service.operations.calibrations import (
    EXAMPLE_NAME,
    load_model,
    seed_example_calibration,
)
from tests.conftest import KEYS, auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

URL = "/api/v1/calibrations"
ROLES = ["hmi", "scada", "engineer", "admin", None]


def example_csv() -> str:
    return resources.files("service.core.data").joinpath("example_calibration.csv").read_text()


def example_rows() -> list[dict[str, Any]]:
    """The shipped example's cylinders as JSON rows of the API."""
    lines = [line for line in example_csv().splitlines() if not line.startswith("#")]
    rows = []
    for record in csv.DictReader(io.StringIO("\n".join(lines))):
        rows.append(
            {
                "sample_id": record["sample_id"],
                "blend": {
                    "cement": float(record["cement_fraction_pct"]),
                    "slag": float(record["slag_fraction_pct"]),
                },
                "binder_pct": float(record["binder_pct"]),
                "solids_pct": float(record["solids_pct"]),
                "curing_days": float(record["curing_days"]),
                "ucs_kpa": float(record["ucs_kpa"]),
            }
        )
    return rows


def headers(role: str | None) -> dict[str, str]:
    return auth(role) if role else {}


async def upload(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(URL, json=body, headers=auth("engineer"))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_upload_round_trip_with_the_example_rows(client: httpx.AsyncClient) -> None:
    rows = example_rows()
    out = await upload(client, {"name": "round trip", "rows": rows})
    example = load_example_model()
    assert out["name"] == "round trip" and out["version"] == 1
    assert out["created_by"] == "engineer" and out["example"] is False
    assert out["n_rows"] == len(rows) == 160
    assert out["r2_log"] == pytest.approx(example.fit.r2_log, rel=1e-9)
    assert out["r2_kpa"] == pytest.approx(example.fit.r2_kpa, rel=1e-9)
    assert out["rmse_kpa"] == pytest.approx(example.fit.rmse_kpa, rel=1e-9)
    assert out["terms"] == list(example.terms)
    assert out["components"] == ["cement", "slag"]
    assert out["range"]["binder_pct"] == {"min": pytest.approx(3.0), "max": pytest.approx(8.0)}
    assert out["range"]["solids_pct"] == {"min": pytest.approx(72.0), "max": pytest.approx(80.0)}
    assert out["range"]["curing_days"] == {"min": 7.0, "max": 56.0}
    assert out["range"]["blend_pct"]["slag"] == {"min": 0.0, "max": pytest.approx(80.0)}
    assert out["range"]["tolerance_pct"] == pytest.approx(10.0)
    residuals = out["residuals"]
    assert len(residuals) == len(rows)
    for row, res in zip(rows, residuals, strict=True):
        assert res["sample_id"] == row["sample_id"]
        assert res["measured_kpa"] == row["ucs_kpa"]
        assert res["residual_kpa"] == pytest.approx(row["ucs_kpa"] - res["predicted_kpa"])
    assert out["rows"] == rows  # stored as sent, percentages
    # GET returns the stored version unchanged; a second upload is version 2.
    got = await client.get(f"{URL}/{out['id']}", headers=auth("hmi"))
    assert got.status_code == 200
    assert got.json() == out
    again = await upload(client, {"name": "round trip", "rows": rows[:40] + rows[80:]})
    assert again["version"] == 2 and again["id"] != out["id"]
    assert (await client.get(f"{URL}/{out['id']}", headers=auth("hmi"))).json() == out


async def test_csv_upload_fits_the_same_model(client: httpx.AsyncClient) -> None:
    out = await upload(client, {"name": "from csv", "csv": example_csv()})
    assert out["n_rows"] == 160
    json_rows = await upload(client, {"name": "from json", "rows": example_rows()})
    for key in ("intercept", "binder_water_exponent", "time"):
        assert out["coefficients"][key] == pytest.approx(json_rows["coefficients"][key])
    assert out["rows"][0]["sample_id"] == "EX-001"


async def test_too_few_rows_are_rejected(client: httpx.AsyncClient) -> None:
    rows = example_rows()
    thin = [rows[0], rows[1], rows[8]]  # Bw and age vary: 3 parameters, 5 rows needed
    r = await client.post(URL, json={"name": "thin", "rows": thin}, headers=auth("engineer"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "calibration_rejected"
    assert "too few rows" in r.json()["detail"]
    listed = (await client.get(URL, headers=auth("hmi"))).json()
    assert "thin" not in [c["name"] for c in listed]


async def test_one_strength_for_every_cylinder_is_rejected(client: httpx.AsyncClient) -> None:
    rows = [{**row, "ucs_kpa": 500.0} for row in example_rows()[:20]]
    r = await client.post(URL, json={"name": "flat", "rows": rows}, headers=auth("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "calibration_rejected"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"rows": None, "csv": None}, "body"),
        ({"csv": "binder_pct,solids_pct\n1,2\n"}, "body"),  # rows and csv both given
        ({"rows": []}, "rows"),
        ({"name": ""}, "name"),
        ({"name": EXAMPLE_NAME}, "name"),
        ({"extra": 1}, "extra"),
        ({"range_tolerance_pct": -5}, "range_tolerance_pct"),
    ],
)
async def test_bad_uploads_are_422_naming_the_field(
    client: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    body = {"name": "bad", "rows": example_rows()[:20], **patch}
    r = await client.post(URL, json=body, headers=auth("engineer"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize(
    ("row_patch", "field"),
    [
        ({"blend": {"cement": 60, "slag": 30}}, "rows[3].blend"),
        ({"blend": {"cement": 120}}, "rows[3].blend.cement"),
        ({"binder_pct": 0}, "rows[3].binder_pct"),
        ({"solids_pct": 100}, "rows[3].solids_pct"),
        ({"curing_days": -7}, "rows[3].curing_days"),
        ({"ucs_kpa": "NaN"}, "rows[3].ucs_kpa"),
        ({"ucs_kpa": 0}, "rows[3].ucs_kpa"),
        ({"colour": "grey"}, "rows[3].colour"),
    ],
)
async def test_bad_rows_are_422_naming_the_row(
    client: httpx.AsyncClient, row_patch: dict[str, Any], field: str
) -> None:
    rows = example_rows()[:20]
    rows[3] = {**rows[3], **row_patch}
    r = await client.post(URL, json={"name": "bad", "rows": rows}, headers=auth("engineer"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


async def test_a_bad_csv_names_the_column(client: httpx.AsyncClient) -> None:
    text = example_csv().replace("EX-004,100,0,3,76,56,452", "EX-004,100,0,three,76,56,452")
    r = await client.post(URL, json={"name": "csv", "csv": text}, headers=auth("engineer"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "csv.rows[3].binder_pct"
    r = await client.post(URL, json={"name": "csv", "csv": "a,b\n1,2\n"}, headers=auth("engineer"))
    assert (r.status_code, r.json()["field"]) == (422, "csv")


async def test_the_example_is_listed_and_labelled(client: httpx.AsyncClient) -> None:
    listed = (await client.get(URL, headers=auth("hmi"))).json()
    examples = [c for c in listed if c["example"]]
    assert len(examples) == 1
    assert examples[0]["name"] == EXAMPLE_NAME
    assert examples[0]["created_by"] == "system"
    assert "not for design" in examples[0]["label"]
    assert "residuals" not in examples[0]  # the list is a summary


async def test_seeding_is_idempotent_and_loads_the_example_model(app: FastAPI) -> None:
    store = app.state.runtime.store
    first = await seed_example_calibration(store)
    second = await seed_example_calibration(store)
    assert first.id == second.id and first.example and first.name == EXAMPLE_NAME
    assert len(first.rows) == 160
    model = await load_model(store, first.id)
    example = load_example_model()
    assert model.components == example.components
    assert model.intercept == pytest.approx(example.intercept, rel=1e-12)
    assert model.binder_water_exponent == pytest.approx(example.binder_water_exponent, rel=1e-12)
    assert model.label == example.label


async def example_id(client: httpx.AsyncClient) -> str:
    listed = (await client.get(URL, headers=auth("hmi"))).json()
    return str(next(c["id"] for c in listed if c["example"]))


PREDICT = {"blend": {"cement": 20, "slag": 80}, "binder_pct": 5, "solids_pct": 76}


async def test_predict_inside_the_range(client: httpx.AsyncClient) -> None:
    cid = await example_id(client)
    r = await client.post(f"{URL}/{cid}/predict", json=PREDICT, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    out = r.json()
    expected = load_example_model().predict({"cement": 0.2, "slag": 0.8}, 0.05, 0.76, 28.0)
    assert out["ucs_kpa"] == pytest.approx(expected.ucs_kpa, rel=1e-12)
    assert out["extrapolated"] is False and out["outside"] == []
    assert out["example"] is True and out["curing_days"] == 28
    more = {**PREDICT, "binder_pct": 6}
    stronger = (await client.post(f"{URL}/{cid}/predict", json=more, headers=auth("hmi"))).json()
    assert stronger["ucs_kpa"] > out["ucs_kpa"]


async def test_predict_states_the_expected_and_the_tolerance_bound(
    client: httpx.AsyncClient,
) -> None:
    cid = await example_id(client)
    out = (await client.post(f"{URL}/{cid}/predict", json=PREDICT, headers=auth("hmi"))).json()
    model = load_example_model()
    core = model.predict(
        {"cement": 0.2, "slag": 0.8}, 0.05, 0.76, 28.0, pass_fraction=0.9, confidence=0.95
    )
    assert (out["pass_fraction_pct"], out["confidence_pct"]) == (90, 95)  # the site's
    assert out["lower_ucs_kpa"] == pytest.approx(core.lower_ucs_kpa, rel=1e-12)
    assert out["tolerance_lower_ucs_kpa"] == pytest.approx(core.tolerance_lower_ucs_kpa, rel=1e-12)
    assert out["tolerance_lower_ucs_kpa"] < out["lower_ucs_kpa"] < out["median_ucs_kpa"]
    surer = {**PREDICT, "confidence_pct": 99}
    r = await client.post(f"{URL}/{cid}/predict", json=surer, headers=auth("hmi"))
    assert r.json()["confidence_pct"] == 99
    assert r.json()["tolerance_lower_ucs_kpa"] < out["tolerance_lower_ucs_kpa"]
    r = await client.post(
        f"{URL}/{cid}/predict", json={**PREDICT, "confidence_pct": 100}, headers=auth("hmi")
    )
    assert (r.status_code, r.json()["field"]) == (422, "confidence_pct")


async def test_predict_outside_the_range_is_refused_or_flagged(
    client: httpx.AsyncClient,
) -> None:
    cid = await example_id(client)
    far = {**PREDICT, "binder_pct": 15}
    r = await client.post(f"{URL}/{cid}/predict", json=far, headers=auth("hmi"))
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["code"] == "outside_calibration_range"
    # Valid only where tested, on the model's own regressors: Bw reaches the model
    # through ln(Mb/Mw).
    assert err["variable"] == "ln_binder_water"
    assert "binder_pct" in err["detail"]
    flagged = {**far, "allow_extrapolation": True}
    r = await client.post(f"{URL}/{cid}/predict", json=flagged, headers=auth("hmi"))
    assert r.status_code == 200, r.text
    assert r.json()["extrapolated"] is True
    assert r.json()["outside"] == ["ln_binder_water", "regressor_hull"]
    unknown = {**PREDICT, "blend": {"cement": 50, "flyash": 50}}
    r = await client.post(f"{URL}/{cid}/predict", json=unknown, headers=auth("hmi"))
    assert r.status_code == 422
    assert r.json()["variable"] == "binder.flyash.fraction_pct"
    late = {**PREDICT, "curing_days": 365}
    r = await client.post(f"{URL}/{cid}/predict", json=late, headers=auth("hmi"))
    assert (r.status_code, r.json()["variable"]) == (422, "ln_curing_days")


async def test_predict_bad_input_and_unknown_calibration(client: httpx.AsyncClient) -> None:
    cid = await example_id(client)
    r = await client.post(
        f"{URL}/{cid}/predict", json={**PREDICT, "solids_pct": "NaN"}, headers=auth("hmi")
    )
    assert (r.status_code, r.json()["field"]) == (422, "solids_pct")
    r = await client.post(
        f"{URL}/{cid}/predict", json={**PREDICT, "blend": {"cement": 90}}, headers=auth("hmi")
    )
    assert (r.status_code, r.json()["field"]) == (422, "blend")
    r = await client.post(f"{URL}/no-such-id/predict", json=PREDICT, headers=auth("hmi"))
    assert (r.status_code, r.json()["code"]) == (404, "calibration_not_found")
    r = await client.get(f"{URL}/no-such-id", headers=auth("hmi"))
    assert (r.status_code, r.json()["code"]) == (404, "calibration_not_found")


@pytest.mark.parametrize("role", ROLES)
async def test_upload_needs_an_engineer_or_admin(
    client: httpx.AsyncClient, role: str | None
) -> None:
    body = {"name": f"roles-{role}", "rows": example_rows()[:40]}
    r = await client.post(URL, json=body, headers=headers(role))
    expected = {None: 401, "hmi": 403, "scada": 403, "engineer": 201, "admin": 201}[role]
    assert r.status_code == expected, r.text
    if role in ("hmi", "scada"):
        assert r.json()["code"] == "forbidden"
    if expected == 201:
        assert r.json()["created_by"] == role


@pytest.mark.parametrize("role", ROLES)
async def test_reads_and_predictions_need_any_key(
    client: httpx.AsyncClient, role: str | None
) -> None:
    cid = await example_id(client)
    expected = 401 if role is None else 200
    assert (await client.get(URL, headers=headers(role))).status_code == expected
    assert (await client.get(f"{URL}/{cid}", headers=headers(role))).status_code == expected
    r = await client.post(f"{URL}/{cid}/predict", json=PREDICT, headers=headers(role))
    assert r.status_code == expected


async def test_uploads_and_the_example_are_approved_and_approve_only_a_proposal(
    client: httpx.AsyncClient,
) -> None:
    out = await upload(client, {"name": "approved on upload", "rows": example_rows()})
    assert (out["status"], out["proposed_from"], out["proposal"]) == ("approved", None, None)
    # Approved by being stored, by the key that stored it (a key of the role alone: its
    # role and key id).
    engineer = f"engineer:{hashlib.sha256(KEYS['engineer'].encode()).hexdigest()[:8]}"
    assert out["approved_at"] == out["created_at"] and out["approved_by"] == engineer
    listed = (await client.get(URL, headers=auth("hmi"))).json()
    assert {c["status"] for c in listed} == {"approved"}
    for cid in (out["id"], await example_id(client)):
        r = await client.post(
            f"{URL}/{cid}/approve", json={"approved_by": "A. Engineer"}, headers=auth("engineer")
        )
        assert (r.status_code, r.json()["code"]) == (409, "calibration_already_approved")
    r = await client.post(
        f"{URL}/no-such-id/approve", json={"approved_by": "A. Engineer"}, headers=auth("engineer")
    )
    assert (r.status_code, r.json()["code"]) == (404, "calibration_not_found")
    # approved_by may be left out (the key's person approves): still only a proposal.
    r = await client.post(f"{URL}/{out['id']}/approve", json={}, headers=auth("engineer"))
    assert (r.status_code, r.json()["code"]) == (409, "calibration_already_approved")


@pytest.mark.parametrize("role", ROLES)
async def test_a_proposal_needs_an_engineer_and_lab_results(
    client: httpx.AsyncClient, role: str | None
) -> None:
    out = await upload(client, {"name": f"proposal-{role}", "rows": example_rows()})
    r = await client.post(f"{URL}/{out['id']}/proposals", json={}, headers=headers(role))
    expected = {None: 401, "hmi": 403, "scada": 403, "engineer": 422, "admin": 422}[role]
    assert r.status_code == expected, r.text
    if expected == 422:  # no cylinder of this module was ever tested by the lab
        assert r.json()["code"] == "calibration_rejected"
        assert "no new laboratory results" in r.json()["detail"]
    versions = [c for c in (await client.get(URL, headers=auth("hmi"))).json()]
    assert [c["version"] for c in versions if c["name"] == f"proposal-{role}"] == [1]
