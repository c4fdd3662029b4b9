"""The service's OPC UA server through an OPC UA client the project did not write:
node-opcua (``tests/interop/node_opcua_plc/scada_client.js``) browses it, reads a
measurement with its quality and source timestamp, subscribes to the pour's placed
volume, starts and pauses the pour with a scada key, and is refused both with an hmi
key.

node-opcua is installed into tests/interop/node_opcua_plc when node_modules is missing;
without node or npm the test skips with the reason (CI turns skips into failures)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEYS, auth
from tests.e2e.helpers import create_pour
from tests.e2e.procs import NODE_PLC_DIR, install_node_opcua
from tests.integration.test_opcua_face import serving

pytestmark = pytest.mark.node_opcua

CLIENT = NODE_PLC_DIR / "scada_client.js"


async def _client(node: str, endpoint: str, role: str, pour_id: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        node,
        str(CLIENT),
        endpoint,
        role,
        KEYS[role],
        pour_id,
        "45",
        cwd=NODE_PLC_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    lines = out.decode().strip().splitlines()
    assert proc.returncode == 0 and lines, (proc.returncode, out.decode(), err.decode()[-3000:])
    # node-opcua may print notes of its own; the client's answer is its one JSON line.
    answers = [line for line in lines if line.startswith('{"')]
    assert answers, out.decode()
    result: dict[str, Any] = json.loads(answers[-1])
    return result


async def test_node_opcua_browses_subscribes_and_is_refused_with_the_wrong_role(
    tmp_path: Path,
) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node-opcua interop needs Node.js and npm on PATH (not found)")
    await install_node_opcua(npm)
    async with serving(tmp_path) as (api, endpoint):
        pour_id = await create_pour(api, target_m3=50)

        hmi = await _client(node, endpoint, "hmi", pour_id)
        assert {"Plant", "Pour", "Recipe", "Alarms"} <= set(hmi["objects"]), hmi
        assert {"Start", "Pause", "Resume", "Stop", "PouredM3"} <= set(hmi["pour_children"])
        assert hmi["start"]["status"] == "BadUserAccessDenied", hmi
        assert hmi["pause"]["status"] == "BadUserAccessDenied", hmi
        record = (await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))).json()
        assert record["state"] == "planned"

        scada = await _client(node, endpoint, "scada", pour_id)
        assert scada["density"]["status"] == "Good" and scada["density"]["source_timestamp"]
        assert scada["start"] == {"status": "Good", "state": "running"}, scada
        numbers = [v for v in scada["poured"] if isinstance(v, int | float)]
        assert len(numbers) >= 2 and numbers[-1] > numbers[0], scada
        assert "running" in scada["states"], scada
        assert scada["pause"] == {"status": "Good", "state": "paused"}, scada
        record = (await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))).json()
        assert record["state"] == "paused"
        assert record["poured_m3"] >= numbers[-1] - 1e-6
