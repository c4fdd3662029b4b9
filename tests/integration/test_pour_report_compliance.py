"""The pour report judges its cylinders as the compliance endpoint does: at the design's
pass fraction, the site's (BACKFILL_DESIGN__PASS_FRACTION_PCT) when the design states
none."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from tests.conftest import auth

pytestmark = pytest.mark.asyncio(loop_scope="module")

MIX: dict[str, Any] = {
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 76.0,
}


async def test_the_report_states_the_site_pass_fraction_for_a_design_without_one(
    client: httpx.AsyncClient,
) -> None:
    design = {"requirements": [{"name": "body", "required_ucs_kpa": 300.0, "curing_days": 28}]}
    r = await client.post(
        "/api/v1/recipes",
        json={"name": "report body", "mix": MIX, "design": design, "approved_by": "E"},
        headers=auth("engineer"),
    )
    assert r.status_code == 201, r.text
    body = {
        "stope_id": "S-REPORT",
        "recipe_id": r.json()["id"],
        "target_volume_m3": 10.0,
        "paste_flow_m3_h": 100.0,
        "sample_ids": ["REP-1"],
    }
    r = await client.post("/api/v1/pours", json=body, headers=auth("scada"))
    assert r.status_code == 201, r.text
    pour_id = r.json()["id"]
    r = await client.get(f"/api/v1/pours/{pour_id}/compliance", headers=auth("hmi"))
    entry = next(p for p in r.json()["pass_fractions"] if p["group"] == "pour")
    site = entry["design_pass_pct"]
    assert site == pytest.approx(90.0)  # the site's default
    r = await client.get(f"/api/v1/pours/{pour_id}/report.csv", headers=auth("hmi"))
    assert r.status_code == 200, r.text
    fields = dict(csv.reader(io.StringIO(r.text.split("\r\n\r\n", 1)[0])))
    assert fields["compliance.requirement.1.name"] == "body"
    assert float(fields["compliance.requirement.1.design_pass_pct"]) == pytest.approx(site)
