"""The service's OPC UA server through an OPC UA client the project did not write:
node-opcua (``tests/interop/node_opcua_plc/scada_client.js``) browses it, reads a
measurement with its quality and source timestamp, subscribes to the pour's placed
volume, starts and pauses the pour with a scada key, and is refused both with an hmi
key; ``alarm_client.js``, over SignAndEncrypt with its key encrypted as the endpoint
asks, resolves a measurement by browse path in the service's namespace, reads its
EngineeringUnits and EURange, and sees a condition raised, acknowledges it through the
condition's Acknowledge and sees it acknowledged and cleared.

node-opcua is installed into tests/interop/node_opcua_plc when node_modules is missing;
without node or npm the test skips with the reason (CI turns skips into failures)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from service.core.eng_units import UNECE_NAMESPACE, unit_id
from tests.conftest import KEYS, auth
from tests.e2e.helpers import create_pour
from tests.e2e.procs import NODE_PLC_DIR, install_node_opcua
from tests.integration.test_opcua_face import running, server_pki, serving

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


ALARM_CLIENT = NODE_PLC_DIR / "alarm_client.js"


class _NodeClient:
    """alarm_client.js, driven line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []

    async def pump(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            text = line.decode().strip()
            if text.startswith('{"'):
                self.lines.append(json.loads(text))

    async def wait(self, what: str, probe: Any, within_s: float = 60.0) -> Any:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            found = [line for line in self.lines if probe(line)]
            if found:
                return found
            if any(line.get("kind") == "error" for line in self.lines):
                break
            await asyncio.sleep(0.2)
        raise AssertionError(f"no {what} from node-opcua: {self.lines[-8:]}")

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()


def _of(code: str, **expected: Any) -> Any:
    def probe(line: dict[str, Any]) -> bool:
        return (
            line.get("kind") == "event"
            and line.get("ConditionName") == code
            and all(line.get(k) == v for k, v in expected.items())
        )

    return probe


async def test_node_opcua_reads_units_by_browse_path_and_acknowledges_a_condition(
    tmp_path: Path,
) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node-opcua interop needs Node.js and npm on PATH (not found)")
    await install_node_opcua(npm)
    pki = tmp_path / "pki"
    async with running(tmp_path, **server_pki(pki)) as (api, endpoint, runtime):
        process = await asyncio.create_subprocess_exec(
            node,
            str(ALARM_CLIENT),
            endpoint,
            "night-shift",
            KEYS["scada"],
            "SignAndEncrypt",
            cwd=NODE_PLC_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = _NodeClient(process)
        pump = asyncio.create_task(client.pump())
        try:
            [ready] = await client.wait("the tag import", lambda line: line["kind"] == "ready")
            assert ready["found"] is not None, ready  # /Objects/ns:Plant/ns:Measurements/...
            assert ready["type_definition"] == ["AnalogItemType"]
            assert ready["eu_range"] == {"low": 1000.0, "high": 2500.0}
            assert ready["engineering_units"] == {
                "namespace_uri": UNECE_NAMESPACE,
                "unit_id": unit_id("KMQ"),
                "display": "kg/m³",
            }
            [refreshed] = await client.wait(
                "ConditionRefresh", lambda line: line["kind"] == "refresh"
            )
            assert refreshed["status"] == "Good"

            await runtime.simulator.stop()  # the PLC goes away: plant_link_lost
            [raised] = await client.wait(
                "the raised condition", _of("plant_link_lost", **{"ActiveState.Id": True})
            )
            assert raised["AckedState.Id"] is False and raised["Retain"] is True
            assert raised["Severity"] == 900 and raised["EventType"] == "ns=0;i=2915"
            assert raised["ConditionId"].endswith("s=Backfill.Alarms.plant_link_lost.Condition")

            await client.send(
                {
                    "ack": {
                        "conditionId": raised["ConditionId"],
                        "eventId": raised["EventId"],
                        "comment": "PLC on maintenance",
                    }
                }
            )
            [ack] = await client.wait("the acknowledgement", lambda line: line["kind"] == "ack")
            assert ack["status"] == "Good", ack
            [acked] = await client.wait(
                "the acknowledged condition", _of("plant_link_lost", **{"AckedState.Id": True})
            )
            assert acked["Comment"] == "PLC on maintenance"
            assert acked["ClientUserId"] == "night-shift"
            alarms = (await api.get("/api/v1/alarms", headers=auth("hmi"))).json()
            [listed] = [a for a in alarms if a["code"] == "plant_link_lost"]
            assert listed["acknowledged"] is True and listed["acknowledged_by"].startswith("scada:")

            await runtime.simulator.start()
            await client.wait(
                "the cleared condition",
                _of("plant_link_lost", **{"ActiveState.Id": False, "Retain": False}),
            )
            await client.send({"quit": True})
            await client.wait("the end", lambda line: line["kind"] == "done", within_s=20)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
            pump.cancel()
