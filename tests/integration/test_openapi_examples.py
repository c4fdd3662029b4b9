"""Every request body in the schema carries an example, and every example is a request
the running service accepts: posted as it stands (ids of records made first put in, and
the lab sheet's cast time the one recorded for its cylinders, a month before the lab
enters its results), it computes, stores or is refused only for the state it meets (a
calibration approved already, no lab results yet), never for its own shape."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.api.examples import REQUEST_EXAMPLES
from tests.conftest import auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = auth("admin")


async def test_every_request_body_has_its_example(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    with_body = {}
    for item in schema["paths"].values():
        for op in item.values():
            if "requestBody" in op:
                media = op["requestBody"]["content"]["application/json"]
                with_body[op["operationId"]] = media.get("example")
    assert len(with_body) >= 20
    # One example per body, no example for an operation that is gone.
    assert set(with_body) == set(REQUEST_EXAMPLES)
    for op_id, example in with_body.items():
        assert example == REQUEST_EXAMPLES[op_id], op_id
    # No component named after its module: two models of one name would be, and a
    # generated client then drops both.
    assert not [name for name in schema["components"]["schemas"] if "__" in name]


async def _post(
    client: httpx.AsyncClient, url: str, op_id: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(
        f"/api/v1{url}", json=REQUEST_EXAMPLES[op_id] if body is None else body, headers=ADMIN
    )


def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


async def _example_calibration(client: httpx.AsyncClient, url: str) -> str:
    listed = _ok(await client.get(f"/api/v1{url}", headers=ADMIN))
    ids = [c["id"] for c in listed if c["example"]]
    assert ids, listed
    return str(ids[-1])


async def test_the_computations_answer_their_examples(client: httpx.AsyncClient) -> None:
    out = _ok(await _post(client, "/recipes/proportion", "proportion"))
    assert 1850 < out["per_m3"]["wet_density_kg_m3"] < 1950
    # The integration contract's own example and answer.
    out = _ok(await _post(client, "/strength/required", "strength_required"))
    assert out["required_ucs_kpa"] == pytest.approx(300.0)
    _ok(await _post(client, "/strength/arching", "strength_arching"))
    design = _ok(await _post(client, "/recipes/optimize", "optimize"))
    assert [r["name"] for r in design["requirements"]] == ["plug", "body"]
    strength = await _example_calibration(client, "/calibrations")
    out = _ok(await _post(client, f"/calibrations/{strength}/predict", "predict"))
    assert out["extrapolated"] is False
    rheology = await _example_calibration(client, "/rheology/calibrations")
    out = _ok(await _post(client, f"/rheology/calibrations/{rheology}/predict", "predict_rheology"))
    # A pumped line, not one the drop alone drives.
    assert out["line"]["pump_pressure_kpa"] > 0


async def test_the_records_take_their_examples(app: FastAPI, client: httpx.AsyncClient) -> None:
    calibration = _ok(await _post(client, "/calibrations", "create_calibration"), 201)
    assert calibration["n_rows"] == 20
    rheology = _ok(
        await _post(client, "/rheology/calibrations", "create_rheology_calibration"), 201
    )
    assert rheology["slump_rows"] == 3
    # A directly uploaded calibration is approved on creation and has no lab results to
    # refit with: the two calls are refused for that, not for their bodies.
    r = await _post(client, f"/calibrations/{calibration['id']}/proposals", "propose_recalibration")
    assert (r.status_code, r.json()["code"]) == (422, "calibration_rejected"), r.text
    r = await _post(client, f"/calibrations/{calibration['id']}/approve", "approve_calibration")
    assert (r.status_code, r.json()["code"]) == (409, "calibration_already_approved"), r.text

    recipe = _ok(await _post(client, "/recipes", "create_recipe"), 201)
    approved = _ok(await _post(client, f"/recipes/{recipe['id']}/approve", "approve_recipe"))
    assert approved["approved_by"] == REQUEST_EXAMPLES["approve_recipe"]["approved_by"]

    stope = _ok(await _post(client, "/stopes", "create_stope"), 201)
    plan = copy.deepcopy(REQUEST_EXAMPLES["add_plan"])
    for stage in plan["stages"]:
        stage["recipe_id"] = recipe["id"]
    planned = _ok(await _post(client, f"/stopes/{stope['id']}/plans", "add_plan", plan))
    assert planned["plan_version"] == 1
    _ok(await _post(client, f"/stopes/{stope['id']}/pours", "create_stage_pour"), 201)

    pour = _ok(await _post(client, "/pours", "create_pour"), 201)
    assert pour["state"] == "planned"
    _ok(await _post(client, f"/pours/{pour['id']}/samples", "add_samples"))
    sample = REQUEST_EXAMPLES["add_samples"]["sample_ids"][0]
    lab = app.state.runtime.lab
    before = lab.clock
    lab.clock = lambda: datetime.now(UTC) + timedelta(days=30)
    try:
        _ok(await _post(client, f"/samples/{sample}/results", "enter_result"), 201)
        sheet_body = copy.deepcopy(REQUEST_EXAMPLES["import_sheet"])
        cast = _ok(await client.get("/api/v1/samples/S-101-P1-A", headers=ADMIN))["cast_at"]
        sheet_body["csv"] = sheet_body["csv"].replace("2026-03-02T08:40:00", cast)
        sheet = _ok(await _post(client, "/lab/sheets", "import_sheet", sheet_body), 201)
    finally:
        lab.clock = before
    assert sheet["imported"] == 2

    # The example's window (March) holds no cast with a recorded paste density here.
    r = await _post(client, "/lab/reconciliations", "propose_reconciliation")
    assert (r.status_code, r.json()["field"]) == (422, "sample_ids"), r.text
    r = await _post(client, "/lab/reconciliations/none-such/approve", "approve_reconciliation")
    assert (r.status_code, r.json()["code"]) == (404, "reconciliation_not_found"), r.text
