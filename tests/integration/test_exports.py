"""Bulk export as a historian or a monthly reconciliation takes it: every pour, stage,
history row and audit entry once, in order, across pages, the same in CSV and Parquet
as in the JSON API, typed columns with units, text a spreadsheet cannot run, the
range and the key rules of the rest of the API. Both store backends."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.api.examples import REQUEST_EXAMPLES
from service.operations import exports
from tests.conftest import auth
from tests.integration.conftest import running_app

HMI = auth("hmi")


def _csv(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def _parquet(r: httpx.Response) -> pa.Table:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    assert r.content[:4] == b"PAR1" and r.content[-4:] == b"PAR1"
    return pq.read_table(io.BytesIO(r.content))


async def _both(
    client: httpx.AsyncClient, dataset: str, **params: Any
) -> tuple[list[dict[str, str]], pa.Table]:
    url = f"/api/v1/export/{dataset}"
    as_csv = _csv(await client.get(url, params=params, headers=HMI))
    as_parquet = _parquet(
        await client.get(url, params={**params, "format": "parquet"}, headers=HMI)
    )
    return as_csv, as_parquet


async def _pour(client: httpx.AsyncClient, stope: str) -> dict[str, Any]:
    body = dict(REQUEST_EXAMPLES["create_pour"], stope_id=stope, sample_ids=[])
    r = await client.post("/api/v1/pours", json=body, headers=auth("scada"))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def _approved_recipe(client: httpx.AsyncClient) -> dict[str, Any]:
    engineer = auth("engineer")
    r = await client.post(
        "/api/v1/recipes", json=REQUEST_EXAMPLES["create_recipe"], headers=engineer
    )
    assert r.status_code == 201, r.text
    recipe: dict[str, Any] = r.json()
    r = await client.post(
        f"/api/v1/recipes/{recipe['id']}/approve",
        json=REQUEST_EXAMPLES["approve_recipe"],
        headers=engineer,
    )
    assert r.status_code == 200, r.text
    return recipe


async def test_pours_and_audit_come_out_whole_in_order_across_pages(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "PAGE", 2)  # seven pours: four pages
    async with running_app(database_url) as (_, client):
        made = [await _pour(client, f"S-{i:02d}") for i in range(6)]
        # A name a spreadsheet would run: text in the CSV, itself in Parquet.
        made.append(await _pour(client, '=HYPERLINK("http://x","S-7")'))
        rows, table = await _both(client, "pours")
        assert [r["id"] for r in rows] == [p["id"] for p in made]
        assert table.column("id").to_pylist() == [p["id"] for p in made]
        assert rows[-1]["stope_id"] == "'" + made[-1]["stope_id"]
        assert table.column("stope_id").to_pylist()[-1] == made[-1]["stope_id"]
        first = (await client.get(f"/api/v1/pours/{made[0]['id']}", headers=HMI)).json()
        assert rows[0]["state"] == first["state"] == "planned"
        assert float(rows[0]["target_volume_m3"]) == first["target_volume_m3"]
        created = datetime.fromisoformat(first["created_at"])
        assert table.column("created_at").to_pylist()[0] == created.replace(
            microsecond=created.microsecond // 1000 * 1000
        )
        schema = table.schema
        assert schema.field("created_at").type == pa.timestamp("ms", tz="UTC")
        assert schema.field("poured_m3").type == pa.float64()
        assert schema.field("poured_m3").metadata == {b"unit": b"m3"}
        assert schema.field("stage").type == pa.int64()

        # A range: from inclusive, to exclusive, on the creation time.
        start = datetime.fromisoformat(made[2]["created_at"])
        end = datetime.fromisoformat(made[5]["created_at"])
        rows, _ = await _both(client, "pours", **{"from": start.isoformat(), "to": end.isoformat()})
        assert [r["id"] for r in rows] == [p["id"] for p in made[2:5]]
        r = await client.post(f"/api/v1/pours/{made[0]['id']}/stop", headers=auth("scada"))
        assert r.status_code == 200, r.text
        rows, _ = await _both(client, "pours", state="aborted")
        assert [r["id"] for r in rows] == [made[0]["id"]]

        # The audit log: the same entries as the paged JSON, old and new as JSON text.
        for _ in range(3):
            await _approved_recipe(client)
        listed = (await client.get("/api/v1/audit", params={"limit": 1000}, headers=HMI)).json()
        rows, table = await _both(client, "audit")
        assert len(listed["items"]) >= 3
        assert [int(r["id"]) for r in rows] == [e["id"] for e in listed["items"]]
        assert table.column("hash").to_pylist() == [e["hash"] for e in listed["items"]]
        assert [json.loads(r["new"]) for r in rows] == [e["new"] for e in listed["items"]]


async def test_history_rows_raw_and_by_minute(database_url: str) -> None:
    async with running_app(database_url) as (app, client):
        history = app.state.runtime.history
        # Two hours ago, on a minute (the recorder prunes rows past their retention).
        t0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
        ms0 = int(t0.timestamp() * 1000)
        raw = [
            {"ts_ms": ms0 + 1000 * i, "paste_density_pv": 1900.0 + i, "solids_pct": 75.0}
            for i in range(120)
        ]
        minutes = [
            {
                "ts_ms": ms0 + 60_000 * m,
                "samples": 60,
                "paste_density_pv_avg": 1929.5 + 60 * m,
                "paste_density_pv_min": 1900.0 + 60 * m,
                "paste_density_pv_max": 1959.0 + 60 * m,
            }
            for m in range(2)
        ]
        await history.write(raw, minutes)
        window = {
            "from": (t0 + timedelta(seconds=10)).isoformat(),
            "to": (t0 + timedelta(seconds=70)).isoformat(),
            "tags": "paste_density_pv,solids_pct",
        }
        rows, table = await _both(client, "history", **window)
        assert len(rows) == 60 and table.num_rows == 60
        stamp = (t0 + timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
        assert rows[0]["time"] == stamp
        assert float(rows[0]["paste_density_pv"]) == 1910.0
        assert list(rows[0]) == ["time", "paste_density_pv", "solids_pct"]
        assert table.column("paste_density_pv").to_pylist()[-1] == 1969.0
        assert table.schema.field("paste_density_pv").metadata == {b"unit": b"kg/m3"}
        assert table.schema.field("solids_pct").metadata == {b"unit": b"%"}

        window.update(resolution="minute", tags="paste_density_pv")
        window["to"] = (t0 + timedelta(minutes=5)).isoformat()
        window["from"] = t0.isoformat()
        rows, table = await _both(client, "history", **window)
        assert [r["samples"] for r in rows] == ["60", "60"]
        assert table.column("paste_density_pv_max").to_pylist() == [1959.0, 2019.0]

        r = await client.get("/api/v1/export/history", params={"tags": "nope"}, headers=HMI)
        assert (r.status_code, r.json()["field"]) == (422, "tags")


async def test_stope_stages_and_refusals(sqlite_url: str) -> None:
    async with running_app(sqlite_url) as (_, client):
        engineer = auth("engineer")
        recipe = (
            await client.post(
                "/api/v1/recipes", json=REQUEST_EXAMPLES["create_recipe"], headers=engineer
            )
        ).json()
        await client.post(
            f"/api/v1/recipes/{recipe['id']}/approve",
            json=REQUEST_EXAMPLES["approve_recipe"],
            headers=engineer,
        )
        stope = (
            await client.post(
                "/api/v1/stopes", json=REQUEST_EXAMPLES["create_stope"], headers=engineer
            )
        ).json()
        plan = json.loads(json.dumps(REQUEST_EXAMPLES["add_plan"]))
        for stage in plan["stages"]:
            stage["recipe_id"] = recipe["id"]
        r = await client.post(f"/api/v1/stopes/{stope['id']}/plans", json=plan, headers=engineer)
        assert r.status_code == 200, r.text
        # A stope without a plan has no stages to give.
        # (Its own stope: the example's barricade is S-101's.)
        body = dict(REQUEST_EXAMPLES["create_stope"], name="S-102", barricade_tags=[])
        assert (await client.post("/api/v1/stopes", json=body, headers=engineer)).status_code == 201

        rows, table = await _both(client, "stope-stages")
        assert [(r["stope"], r["stage"], r["stage_index"]) for r in rows] == [
            ("S-101", "plug", "0"),
            ("S-101", "body", "1"),
        ]
        report = (await client.get(f"/api/v1/stopes/{stope['id']}/report", headers=HMI)).json()
        assert [s["top_height_m"] for s in report["stages"]] == table.column(
            "top_height_m"
        ).to_pylist()
        assert table.schema.field("continuous").type == pa.bool_()

        assert (await client.get("/api/v1/export/pours")).status_code == 401
        r = await client.get("/api/v1/export/pours", params={"format": "xlsx"}, headers=HMI)
        assert (r.status_code, r.json()["field"]) == (422, "format")
        r = await client.get(
            "/api/v1/export/audit", params={"from": "2026-01-01T00:00:00"}, headers=HMI
        )
        assert (r.status_code, r.json()["field"]) == (422, "from")
        r = await client.get(
            "/api/v1/export/pours",
            params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            headers=HMI,
        )
        assert (r.status_code, r.json()["field"]) == (422, "to")
        # A bare number is no instant (pydantic alone reads it as seconds since 1970).
        for path in ("audit", "pours", "history"):
            for name, value in (("to", "0.5"), ("from", "1767225600"), ("to", " 12")):
                r = await client.get(f"/api/v1/export/{path}", params={name: value}, headers=HMI)
                assert (r.status_code, r.json()["field"]) == (422, name), (path, r.text)
                assert "ISO 8601" in r.json()["detail"]
        r = await client.get(
            "/api/v1/plant/history", params={"tags": "paste_density_pv", "to": "0.5"}, headers=HMI
        )
        assert (r.status_code, r.json()["field"]) == (422, "to"), r.text
