"""The service as a Sparkplug B edge node, against the machine's Mosquitto broker
(127.0.0.1:1883) and a host-side subscriber that decodes every payload: births with the
model and matching bdSeq, sequence numbers in order, data on change, commands only when
enabled, a rebirth on request, and the death certificate both on shutdown and, as the
broker's will, when the service is killed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pysparkplug as spb
import pytest

from service.app import create_app
from service.scada.source import ModelSource
from service.scada.sparkplug import SparkplugNode
from service.settings import Settings, SparkplugSettings
from tests.conftest import api_keys_setting, auth, need
from tests.e2e.helpers import create_pour
from tests.e2e.procs import free_port, service_process, wait_ready

BROKER = ("127.0.0.1", 1883)
DECODERS: dict[str, Any] = {
    "NBIRTH": spb.NBirth,
    "DBIRTH": spb.DBirth,
    "DDATA": spb.DData,
    "DDEATH": spb.DDeath,
    "NDEATH": spb.NDeath,
}


def _broker_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(BROKER, timeout=2):
        return True
    return False


@dataclass
class Host:
    """A Sparkplug host's view of one group: every message, decoded, in order."""

    group: str
    messages: list[tuple[str, Any]] = field(default_factory=list)
    client: aiomqtt.Client | None = None

    def of(self, kind: str) -> list[Any]:
        return [p for k, p in self.messages if k == kind]

    async def wait(self, what: str, probe: Callable[[], Any], within_s: float = 30.0) -> Any:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {what} within {within_s:g} s: {[k for k, _ in self.messages]}")

    async def command(self, kind: str, name: str, value: Any, device: str = "") -> None:
        assert self.client is not None
        datatype = spb.DataType.BOOLEAN if isinstance(value, bool) else spb.DataType.STRING
        metric = spb.Metric(
            timestamp=spb.get_current_timestamp(), name=name, datatype=datatype, value=value
        )
        payload_type = spb.NCmd if kind == "NCMD" else spb.DCmd
        payload = payload_type(timestamp=spb.get_current_timestamp(), metrics=(metric,))
        tail = f"/{device}" if device else ""
        await self.client.publish(
            f"spBv1.0/{self.group}/{kind}/PastePlant{tail}",
            payload.encode(include_dtypes=True),
            qos=1,
        )


@asynccontextmanager
async def host() -> AsyncIterator[Host]:
    need(_broker_up(), f"the MQTT broker is not reachable at {BROKER[0]}:{BROKER[1]}")
    h = Host(group=f"T{uuid.uuid4().hex[:10]}")
    async with aiomqtt.Client(*BROKER, identifier=f"host-{h.group}") as client:
        h.client = client
        await client.subscribe(f"spBv1.0/{h.group}/#", qos=1)

        async def listen() -> None:
            birth: Any = None  # DATA carries aliases only: the DBIRTH names them
            async for message in client.messages:
                kind = str(message.topic).split("/")[2]
                if kind in DECODERS:
                    assert isinstance(message.payload, bytes)
                    decoded = DECODERS[kind].decode(
                        message.payload, birth=birth if kind == "DDATA" else None
                    )
                    if kind == "DBIRTH":
                        birth = decoded
                    h.messages.append((kind, decoded))

        task = asyncio.create_task(listen())
        try:
            yield h
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _sparkplug(group: str, folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "group_id": group,
        "keepalive_s": 5,
        "bd_seq_file": str(folder / "bdseq"),
        **extra,
    }


@asynccontextmanager
async def serving(tmp_path: Path, group: str, **extra: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running(tmp_path, group, **extra) as (client, _runtime):
        yield client


@asynccontextmanager
async def running(
    tmp_path: Path, group: str, **extra: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'spb.db'}",
        api_keys=api_keys_setting(),
        sim={"speed": 20.0, "seed": 5},
        sparkplug=_sparkplug(group, tmp_path, **extra),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app.state.runtime


def _metrics(payload: Any) -> dict[str, Any]:
    return {m.name: m for m in payload.metrics}


def _bd_seq(payload: Any) -> int:
    if isinstance(payload, spb.NDeath):
        return int(payload.bd_seq_metric.value)
    return int(_metrics(payload)["bdSeq"].value)


async def _state(api: httpx.AsyncClient, pour_id: str) -> str:
    r = await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))
    return str(r.json()["state"])


async def test_births_data_commands_rebirth_and_death(tmp_path: Path) -> None:
    async with host() as h:
        async with serving(tmp_path, h.group, commands_enabled=True) as api:
            nbirth = await h.wait("NBIRTH", lambda: h.of("NBIRTH"))
            dbirth = await h.wait("DBIRTH", lambda: h.of("DBIRTH"))
            assert nbirth[0].seq == 0 and dbirth[0].seq == 1
            bd_seq = _bd_seq(nbirth[0])
            model = _metrics(dbirth[0])
            assert model["Pour/State"].value == "none"
            assert model["Pour/PouredM3"].is_null  # no pour: no value, not a zero
            density = model["Plant/Measurements/paste_density_pv"]
            assert density.alias is not None  # its unit: test_sparkplug_host.py (engUnit)
            assert "Alarms/instruments_disagree/Severity" in model

            # Data on change: the measurements move.
            await h.wait("DDATA", lambda: len(h.of("DDATA")) >= 2)

            # A command runs the pour; its state and placed volume follow as data.
            pour_id = await create_pour(api, target_m3=50)
            deadline = time.monotonic() + 30
            while await _state(api, pour_id) != "running":
                assert time.monotonic() < deadline, "the pour did not start by DCMD"
                await h.command("DCMD", "Pour/Start", pour_id, device="Plant")
                await asyncio.sleep(1.0)

            def running() -> bool:
                return any(
                    m.name == "Pour/State" and m.value == "running"
                    for d in h.of("DDATA")
                    for m in d.metrics
                )

            await h.wait("Pour/State running", running)

            # A rebirth on request: NBIRTH at seq 0 with the same bdSeq, then DBIRTH.
            await h.command("NCMD", "Node Control/Rebirth", True)
            await h.wait(
                "the rebirth", lambda: len(h.of("NBIRTH")) >= 2 and len(h.of("DBIRTH")) >= 2
            )
            again = h.of("NBIRTH")[1]
            assert again.seq == 0 and _bd_seq(again) == bd_seq
            assert _metrics(h.of("DBIRTH")[1])["Pour/State"].value == "running"

            await h.command("DCMD", "Pour/Stop", pour_id, device="Plant")
            deadline = time.monotonic() + 15
            while await _state(api, pour_id) != "stopped":
                assert time.monotonic() < deadline, "the pour did not stop by DCMD"
                await asyncio.sleep(0.2)

            # Every sequenced message follows its predecessor, 0-255 and round, from
            # each NBIRTH on.
            seqs = [p.seq for k, p in h.messages if k != "NDEATH"]
            for before, after in itertools.pairwise(seqs):
                assert after == 0 or after == (before + 1) % 256, seqs
        # A clean shutdown: the node's death certificate with this session's bdSeq.
        death = await h.wait("NDEATH", lambda: h.of("NDEATH"))
        assert _bd_seq(death[0]) == bd_seq


async def test_commands_are_refused_unless_enabled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="service.scada.sparkplug")
    async with host() as h, serving(tmp_path, h.group) as api:
        await h.wait("DBIRTH", lambda: h.of("DBIRTH"))
        pour_id = await create_pour(api, target_m3=50)
        await h.command("DCMD", "Pour/Start", pour_id, device="Plant")
        await h.wait(
            "the refusal",
            lambda: "commands are not enabled" in caplog.text,
            within_s=10,
        )
        assert await _state(api, pour_id) == "planned"
        # The same start through the API runs: the plant was not what refused it.
        deadline = time.monotonic() + 30
        while True:
            r = await api.post(f"/api/v1/pours/{pour_id}/start", headers=auth("scada"))
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert r.status_code == 200, r.text


async def test_the_device_dies_with_the_plc_link_and_is_born_again(tmp_path: Path) -> None:
    async with host() as h, running(tmp_path, h.group) as (_api, runtime):
        await h.wait("DBIRTH", lambda: h.of("DBIRTH"))
        simulator = runtime.simulator
        await simulator.stop()  # the PLC goes away: the link drops
        ddeath = await h.wait("DDEATH", lambda: h.of("DDEATH"), within_s=30)
        await simulator.start()
        await h.wait("a second DBIRTH", lambda: len(h.of("DBIRTH")) >= 2, within_s=60)
        sequenced = [(k, p.seq) for k, p in h.messages if k != "NDEATH"]
        kinds = [k for k, _ in sequenced]
        death_at = kinds.index("DDEATH")
        assert kinds.index("DBIRTH", death_at) > death_at
        assert ddeath[0].seq == (sequenced[death_at - 1][1] + 1) % 256
        # No data for the dead device between its death and its new birth.
        between = kinds[death_at + 1 : kinds.index("DBIRTH", death_at)]
        assert "DDATA" not in between, kinds


async def test_a_killed_service_dies_by_its_will(tmp_path: Path) -> None:
    async with host() as h:
        port = free_port()
        env = {
            "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
            "BACKFILL_API_KEYS": api_keys_setting(),
            "BACKFILL_SPARKPLUG__ENABLED": "true",
            "BACKFILL_SPARKPLUG__GROUP_ID": h.group,
            "BACKFILL_SPARKPLUG__KEEPALIVE_S": "5",
            "BACKFILL_SPARKPLUG__BD_SEQ_FILE": str(tmp_path / "bdseq"),
        }
        with service_process(env=env, cwd=tmp_path, port=port, log=tmp_path / "s.log") as proc:
            await wait_ready(proc, within_s=60)
            nbirth = await h.wait("NBIRTH", lambda: h.of("NBIRTH"))
            killed_at = time.monotonic()
            proc.kill()
            death = await h.wait("the will's NDEATH", lambda: h.of("NDEATH"), within_s=20)
        # The broker sends the will after 1.5 keep-alive periods without the client.
        assert time.monotonic() - killed_at < 5 * 1.5 + 3
        assert _bd_seq(death[0]) == _bd_seq(nbirth[0])


async def test_only_the_writer_is_the_edge_node(tmp_path: Path) -> None:
    """With failover two instances share one edge node id: only the writer connects;
    a deposed writer leaves with its NDEATH."""
    writer = [False]

    async def changed(version: int, within_s: float) -> int:
        await asyncio.sleep(within_s)
        return version + 1

    status = {"connected": True, "plc_mode": "stopped", "remote_enabled": True}
    async with host() as h:
        node = SparkplugNode(
            SparkplugSettings(**_sparkplug(h.group, tmp_path)),
            source=ModelSource(
                status=lambda: status,
                changed=changed,
                measurements={"paste_density_pv": "kg/m3"},
                setpoints={},
                actions={},
            ),
            active=lambda: writer[0],
        )
        await node.start()
        try:
            await asyncio.sleep(2.5)
            assert h.messages == []  # a standby says nothing
            writer[0] = True
            nbirth = await h.wait("NBIRTH", lambda: h.of("NBIRTH"))
            await h.wait("DBIRTH", lambda: h.of("DBIRTH"))
            writer[0] = False
            death = await h.wait("NDEATH", lambda: h.of("NDEATH"))
            assert _bd_seq(death[0]) == _bd_seq(nbirth[0])
            await asyncio.sleep(2.5)
            assert len(h.of("NBIRTH")) == 1  # and it stays away
        finally:
            await node.stop()
