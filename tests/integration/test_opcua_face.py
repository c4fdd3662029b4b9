"""The service's OPC UA server as a SCADA meets it (an asyncua client here; node-opcua in
``test_opcua_face_node_opcua.py``): it logs in with an API key, browses the plant, the
pour, the recipe and the alarms, reads values with their units, quality and source
timestamps, subscribes, and runs a pour through the methods, which refuse a wrong role
and an anonymous or unknown user."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import Client, ua
from asyncua.ua import uaerrors
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.app import create_app
from service.core.eng_units import UNECE_NAMESPACE, unit_id
from service.scada.cert import make_certificate
from service.scada.opcua_face import NAMESPACE_URI
from service.settings import Settings
from tests.conftest import KEYS, api_keys_setting, auth
from tests.e2e.helpers import create_pour
from tests.e2e.procs import free_port
from tests.integration.test_opcua_security import make_cert

APPLICATION_URI = "urn:test-host:backfill:service"


def server_pki(folder: Path) -> dict[str, Any]:
    """The face's security settings with a certificate made as an operator makes it
    (python -m service.scada.cert), for this instance's application URI."""
    cert, key = make_certificate(folder, APPLICATION_URI, ["127.0.0.1", "localhost"])
    return {
        "security_mode": "SignAndEncrypt",
        "certificate": str(cert),
        "private_key": str(key),
        "application_uri": APPLICATION_URI,
    }


@asynccontextmanager
async def serving(tmp_path: Path, **security: Any) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The service with its OPC UA server for SCADA: unsecured on loopback unless
    ``security`` says otherwise."""
    async with running(tmp_path, **security) as (client, endpoint, _runtime):
        yield client, endpoint


@asynccontextmanager
async def running(
    tmp_path: Path, **security: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, str, Any]]:
    """:func:`serving`, with the runtime (its simulator, its face)."""
    port = free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'face.db'}",
        api_keys=api_keys_setting(),
        # Plant time 20x: the start-up paste goes to the dump first, then the pour places.
        sim={"speed": 20.0, "seed": 3},
        opcua_server={
            "enabled": True,
            "port": port,
            **(security or {"security_mode": "None", "allow_insecure": True}),
        },
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, app.state.runtime.opcua_face.endpoint, app.state.runtime


@asynccontextmanager
async def opcua(endpoint: str, role: str | None, user: str | None = None) -> AsyncIterator[Client]:
    client = Client(endpoint, timeout=10)
    if role is not None:
        client.set_user(user or role)
        client.set_password(KEYS[role])
    async with client:
        yield client


async def _node(client: Client, path: str) -> Any:
    idx = await client.get_namespace_index(NAMESPACE_URI)
    return client.get_node(f"ns={idx};s=Backfill.{path}")


class _Changes:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        self.values.append(value)


async def test_a_scada_browses_subscribes_and_runs_a_pour(tmp_path: Path) -> None:
    async with serving(tmp_path) as (api, endpoint):
        # No key, a key that is none, and anonymous: refused at login.
        with pytest.raises(uaerrors.BadIdentityTokenRejected):
            async with opcua(endpoint, None):
                pass
        bad = Client(endpoint, timeout=10)
        bad.set_user("scada")
        bad.set_password("not-a-key-0123456789abcdef")
        with pytest.raises(uaerrors.BadUserAccessDenied):
            async with bad:
                pass

        async with opcua(endpoint, "hmi") as hmi, opcua(endpoint, "scada") as scada:
            # The address space: the four objects, a measurement with its unit.
            idx = await hmi.get_namespace_index(NAMESPACE_URI)
            names = {
                (await n.read_browse_name()).Name for n in await hmi.nodes.objects.get_children()
            }
            assert {"Plant", "Pour", "Recipe", "Alarms"} <= names
            density = await _node(hmi, "Plant.Measurements.paste_density_pv")
            unit = await hmi.get_node(
                f"ns={idx};s=Backfill.Plant.Measurements.paste_density_pv.Unit"
            ).read_value()
            assert unit == "kg/m3"
            assert (await (await _node(hmi, "Plant.Simulated")).read_value()) is True

            async def read_density() -> ua.DataValue:
                return await density.read_data_value(raise_on_bad_status=False)

            deadline = time.monotonic() + 20
            value = await read_density()
            while not value.StatusCode.is_good() and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                value = await read_density()
            assert value.StatusCode.is_good() and 900 < value.Value.Value < 2500  # water at rest
            assert value.SourceTimestamp is not None
            # The REST API reads the same value.
            status = (await api.get("/api/v1/plant/status", headers=auth("hmi"))).json()
            assert status["measurements"]["paste_density_pv"]["unit"] == "kg/m3"
            assert (await (await _node(hmi, "Pour.State")).read_value()) == "none"
            poured = await _node(hmi, "Pour.PouredM3")
            assert (
                await poured.read_data_value(raise_on_bad_status=False)
            ).StatusCode.value == ua.StatusCodes.BadWaitingForInitialData

            # Values come by subscription.
            changes = _Changes()
            subscription = await hmi.create_subscription(200, changes)
            await subscription.subscribe_data_change([poured, await _node(hmi, "Pour.State")])

            pour_id = await create_pour(api, target_m3=50)
            start = await _node(scada, "Pour.Start")
            pour = await _node(scada, "Pour")
            # An hmi key may read but not act.
            with pytest.raises(uaerrors.BadUserAccessDenied):
                await (await _node(hmi, "Pour")).call_method(
                    await _node(hmi, "Pour.Start"), pour_id
                )
            with pytest.raises(uaerrors.BadNotFound):
                await pour.call_method(start, "no-such-pour")
            deadline = time.monotonic() + 30
            while True:
                try:
                    state = await pour.call_method(start, pour_id)
                    break
                except uaerrors.BadInvalidState:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)  # the built-in plant is not ready yet
            assert state == "running"
            assert (await (await _node(hmi, "Pour.Id")).read_value()) == pour_id
            assert (await (await _node(hmi, "Recipe.SolidsPct")).read_value()) == pytest.approx(
                72.0
            )
            assert (await (await _node(hmi, "Recipe.Blend.slagPct")).read_value()) == pytest.approx(
                80.0
            )

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                numbers = [v for v in changes.values if isinstance(v, float)]
                if len(numbers) >= 2 and numbers[-1] > numbers[0]:
                    break
                await asyncio.sleep(0.5)
            numbers = [v for v in changes.values if isinstance(v, float)]
            record = (await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))).json()
            status = (await api.get("/api/v1/plant/status", headers=auth("hmi"))).json()
            assert len(numbers) >= 2 and numbers[-1] > numbers[0], (
                changes.values,
                {k: record[k] for k in ("poured_m3", "dumped_m3", "state", "interruptions")},
                status["plc_mode"],
            )
            assert "running" in changes.values

            paused = await pour.call_method(await _node(scada, "Pour.Pause"), pour_id)
            assert paused == "paused"
            record = (await api.get(f"/api/v1/pours/{pour_id}", headers=auth("hmi"))).json()
            assert record["state"] == "paused"
            assert record["interruptions"][-1]["reason"] == "operator"
            stopped = await pour.call_method(await _node(scada, "Pour.Stop"), pour_id)
            assert stopped == "stopped"
            assert (await (await _node(hmi, "Pour.State")).read_value()) == "none"

            alarms = await _node(scada, "Alarms")
            with pytest.raises(uaerrors.BadInvalidArgument):
                await alarms.call_method(await _node(scada, "Alarms.Acknowledge"), "no_such_alarm")
            severity = await _node(hmi, "Alarms.instruments_disagree.Severity")
            assert await severity.read_value() in {"low", "medium", "high", "critical"}
            await subscription.delete()


async def test_a_secured_server_takes_only_secured_sessions(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    client_cert = await make_cert(pki, "scada", "urn:scada:client", ExtendedKeyUsageOID.CLIENT_AUTH)
    secured = server_pki(pki)
    async with serving(tmp_path, **secured) as (_, endpoint):
        # No security: no endpoint offers it, and the server creates no session on a
        # None channel (test_opcua_face_security.py forces one).
        plain = Client(endpoint, timeout=10)
        plain.set_user("scada")
        plain.set_password(KEYS["scada"])
        with pytest.raises(uaerrors.BadSecurityModeInsufficient):
            async with plain:
                pass
        client = Client(endpoint, timeout=10)
        await client.set_security_string(
            f"Basic256Sha256,SignAndEncrypt,{client_cert},{pki / 'scada_key.pem'}"
        )
        client.set_user("hmi")
        client.set_password(KEYS["hmi"])
        async with client:
            assert (await (await _node(client, "Plant.Simulated")).read_value()) is True
            with pytest.raises(uaerrors.BadUserAccessDenied):
                await (await _node(client, "Pour")).call_method(
                    await _node(client, "Pour.Stop"), "any-pour"
                )


async def test_a_trust_list_admits_only_its_client_certificates(tmp_path: Path) -> None:
    pki, trusted = tmp_path / "pki", tmp_path / "trusted"
    pki.mkdir()
    trusted.mkdir()
    good = await make_cert(pki, "scada", "urn:scada:client", ExtendedKeyUsageOID.CLIENT_AUTH)
    other = await make_cert(pki, "other", "urn:other:client", ExtendedKeyUsageOID.CLIENT_AUTH)
    (trusted / "scada.der").write_bytes(good.read_bytes())
    secured = {**server_pki(pki), "trust_dir": str(trusted)}
    async with serving(tmp_path, **secured) as (_, endpoint):

        async def session(cert: Path, key: Path) -> Client:
            client = Client(endpoint, timeout=10)
            await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
            client.set_user("hmi")
            client.set_password(KEYS["hmi"])
            return client

        async with await session(good, pki / "scada_key.pem") as client:
            assert (await (await _node(client, "Plant.Simulated")).read_value()) is True
        refused = await session(other, pki / "other_key.pem")
        with pytest.raises(uaerrors.BadCertificateUntrusted):
            async with refused:
                pass


class _Events:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def event_notification(self, event: Any) -> None:
        self.events.append(event)

    def of(self, code: str) -> list[Any]:
        return [e for e in self.events if getattr(e, "ConditionName", None) == code]

    async def wait(self, what: str, probe: Any, within_s: float = 30.0) -> Any:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            await asyncio.sleep(0.2)
        raise AssertionError(f"no {what}: {[vars(e).get('ConditionName') for e in self.events]}")


async def test_units_ranges_browse_paths_and_alarm_conditions(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (_api, endpoint, runtime),
        opcua(endpoint, "hmi") as hmi,
        opcua(endpoint, "scada", user="shift-operator") as scada,
    ):
        idx = await hmi.get_namespace_index(NAMESPACE_URI)
        # A browse path in the service's namespace, as a SCADA's tag import resolves it.
        density = await hmi.nodes.objects.get_child(
            [f"{idx}:Plant", f"{idx}:Measurements", f"{idx}:paste_density_pv"]
        )
        assert (await density.read_type_definition()) == ua.NodeId(ua.ObjectIds.AnalogItemType)
        eu_range = await (await density.get_child("0:EURange")).read_value()
        assert (eu_range.Low, eu_range.High) == (1000.0, 2500.0)
        units = await (await density.get_child("0:EngineeringUnits")).read_value()
        assert units.NamespaceUri == UNECE_NAMESPACE
        assert units.UnitId == unit_id("KMQ") and units.DisplayName.Text == "kg/m³"
        flow = await hmi.nodes.objects.get_child(
            [f"{idx}:Plant", f"{idx}:Measurements", f"{idx}:paste_flow_pv"]
        )
        flow_units = await (await flow.get_child("0:EngineeringUnits")).read_value()
        assert flow_units.UnitId == unit_id("MQH")
        mode = await hmi.nodes.objects.get_child([f"{idx}:Plant", f"{idx}:PlcMode"])
        assert (await mode.read_type_definition()) == ua.NodeId(ua.ObjectIds.BaseDataVariableType)

        # Alarms & Conditions: events from the Server object, ConditionRefresh.
        events = _Events()
        subscription = await hmi.create_subscription(100, events)
        condition_type = hmi.get_node(ua.ObjectIds.AlarmConditionType)
        await subscription.subscribe_events(hmi.nodes.server, condition_type)
        await hmi.get_node(ua.ObjectIds.ConditionType).call_method(
            ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
            ua.Variant(subscription.subscription_id, ua.VariantType.UInt32),
        )
        await runtime.simulator.stop()  # the PLC goes away: plant_link_lost, critical
        [raised] = await events.wait(
            "plant_link_lost raised",
            lambda: [e for e in events.of("plant_link_lost") if getattr(e, "ActiveState/Id")],
        )
        assert raised.Retain is True and getattr(raised, "AckedState/Id") is False
        assert raised.Severity == 900 and "PLC" in raised.Message.Text
        condition_id = raised.NodeId
        assert condition_id == ua.NodeId(
            ua.String("Backfill.Alarms.plant_link_lost.Condition"), ua.Int16(idx)
        )

        acknowledge = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
        args = (
            ua.Variant(raised.EventId, ua.VariantType.ByteString),
            ua.Variant(ua.LocalizedText("seen, PLC rebooting"), ua.VariantType.LocalizedText),
        )
        with pytest.raises(uaerrors.BadUserAccessDenied):
            await hmi.get_node(condition_id).call_method(acknowledge, *args)
        with pytest.raises(uaerrors.BadEventIdUnknown):
            await scada.get_node(condition_id).call_method(
                acknowledge, ua.Variant(b"not-an-event", ua.VariantType.ByteString), args[1]
            )
        await scada.get_node(condition_id).call_method(acknowledge, *args)
        [acked] = await events.wait(
            "plant_link_lost acknowledged",
            lambda: [e for e in events.of("plant_link_lost") if getattr(e, "AckedState/Id")],
        )
        assert acked.Comment.Text == "seen, PLC rebooting"
        assert acked.ClientUserId == "shift-operator"
        with pytest.raises(uaerrors.BadConditionBranchAlreadyAcked):
            await scada.get_node(condition_id).call_method(
                acknowledge,
                ua.Variant(acked.EventId, ua.VariantType.ByteString),
                args[1],
            )
        state = await (await hmi.get_node(condition_id).get_child("0:AckedState")).get_child("0:Id")
        assert await state.read_value() is True
        # The plain variables say the same.
        acknowledged = await _node(hmi, "Alarms.plant_link_lost.Acknowledged")
        assert await acknowledged.read_value() is True

        # A refresh sends the retained condition again, between RefreshStart and End.
        before = len(events.events)
        await hmi.get_node(ua.ObjectIds.ConditionType).call_method(
            ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
            ua.Variant(subscription.subscription_id, ua.VariantType.UInt32),
        )
        await events.wait(
            "the refreshed condition",
            lambda: [
                e
                for e in events.events[before:]
                if getattr(e, "ConditionName", "") == "plant_link_lost"
            ],
        )
        await runtime.simulator.start()  # back: the condition clears and is not retained
        await events.wait(
            "plant_link_lost cleared",
            lambda: [
                e
                for e in events.of("plant_link_lost")
                if not getattr(e, "ActiveState/Id") and e.Retain is False
            ],
            within_s=60,
        )
        await subscription.delete()
