"""Engineering units and ranges of the SCADA model, the tag map's [ranges], the alarms as
conditions, and the certificate command of the OPC UA face."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from service.core import alarm_conditions as C
from service.core import scada_model as M
from service.core.control.alarms import AlarmCode
from service.core.eng_units import UNITS, unit_id
from service.errors import TagMapError
from service.plant.tags import parse_tag_map
from service.scada.cert import certificate_uris, default_application_uri, make_certificate
from service.scada.opcua_face import OpcUaFace
from service.scada.source import ModelSource
from service.settings import OpcUaServerSettings


def test_unit_ids_pack_the_common_code() -> None:
    assert unit_id("MQH") == 0x4D5148
    assert unit_id("P1") == (ord("P") << 8) | ord("1")
    assert UNITS["kg/m3"].code == "KMQ" and UNITS["t/h"].code == "E18"
    with pytest.raises(ValueError):
        unit_id("TOOLONG")


def test_every_number_with_a_unit_has_a_range_and_flags_have_none() -> None:
    specs = M.specs(
        {"paste_density_pv": "kg/m3", "remote_enabled": "bool", "plant_mode": "enum"},
        {"water_flow_sp": "m3/h"},
        ("cement", "slag"),
        {"paste_density_pv": (1100.0, 2300.0)},
    )
    by_path = {s.path: s for s in specs}
    assert (
        by_path["Plant.Measurements.paste_density_pv"].low,
        by_path["Plant.Measurements.paste_density_pv"].high,
    ) == (1100.0, 2300.0)  # the site's range wins
    assert by_path["Plant.Setpoints.water_flow_sp"].span == 200.0
    assert not by_path["Plant.Measurements.remote_enabled"].analog
    assert not by_path["Plant.Measurements.plant_mode"].analog
    for spec in specs:
        if spec.kind is M.Kind.DOUBLE and spec.unit in UNITS:
            assert spec.analog, spec.path


def _map(ranges: object) -> dict[str, object]:
    tags = {
        tag: f"ns=2;s=T.{tag}"
        for tag in [
            "tailings_flow_pv",
            "tailings_density_pv",
            "cement_rate_pv",
            "slag_rate_pv",
            "water_flow_pv",
            "paste_flow_pv",
            "paste_density_pv",
            "pump_pressure_pv",
            "mixer_level_pv",
            "plant_mode",
            "remote_enabled",
            "setpoint_ack",
            "tailings_flow_sp",
            "cement_rate_sp",
            "slag_rate_sp",
            "water_flow_sp",
            "paste_density_sp",
            "run_request",
            "setpoint_seq",
            "heartbeat",
        ]
    }
    return {"tags": tags, "ranges": ranges}


def test_the_tag_map_takes_a_sites_ranges_and_refuses_nonsense() -> None:
    tag_map = parse_tag_map(_map({"paste_density_pv": [1100, 2300.5]}))
    assert tag_map.ranges == {"paste_density_pv": (1100.0, 2300.5)}
    assert parse_tag_map(_map(None)).ranges == {}
    for bad in (
        {"paste_density_pv": [2300, 1100]},
        {"paste_density_pv": [0, float("inf")]},
        {"paste_density_pv": [0]},
        {"paste_density_pv": [True, 2]},
        {"no_such_tag": [0, 1]},
    ):
        with pytest.raises(TagMapError):
            parse_tag_map(_map(bad))


def test_alarms_map_onto_conditions() -> None:
    normal = C.condition(AlarmCode.PLANT_LINK_LOST, None)
    assert (normal.active, normal.acked, normal.retain, normal.severity) == (
        False,
        True,
        False,
        900,
    )
    raised = C.condition(
        AlarmCode.PLANT_LINK_LOST,
        {
            "code": "plant_link_lost",
            "severity": "critical",
            "state": "active_unacknowledged",
            "acknowledged": False,
            "detail": "no answer",
            "since": "2026-01-01T00:00:00Z",
        },
    )
    assert raised.active and not raised.acked and raised.retain
    assert raised.message.endswith(": no answer")
    assert C.differs(normal, raised) and not C.differs(raised, raised)
    cleared = C.condition(
        AlarmCode.PLANT_LINK_LOST,
        {"code": "plant_link_lost", "severity": "critical", "state": "cleared_unacknowledged"},
    )
    assert cleared.retain and not cleared.active  # still to be acknowledged
    assert set(C.conditions([]).keys()) == set(AlarmCode)


def test_the_certificate_command_writes_the_uri_and_host_names(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.scada.cert",
            "--out",
            str(tmp_path),
            "--host",
            "plant-a.example",
            "--host",
            "10.0.0.5",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    uri = default_application_uri("plant-a.example")
    assert f"BACKFILL_OPCUA_SERVER__APPLICATION_URI={uri}" in out
    cert_path = tmp_path / "opcua-server.der"
    assert certificate_uris(cert_path) == [uri]
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["plant-a.example"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert (tmp_path / "opcua-server-key.pem").stat().st_mode & 0o077 == 0


async def test_a_certificate_without_the_instances_uri_stops_the_start(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, "urn:other-host:backfill:service", ["localhost"])
    settings = OpcUaServerSettings(
        enabled=True,
        port=1,
        certificate=cert,
        private_key=key,
        application_uri="urn:this-host:backfill:service",
    )

    async def changed(version: int, within_s: float) -> int:
        return version

    async def action(argument: str, caller: object) -> str:
        return "normal"

    source = ModelSource(
        status=dict, changed=changed, measurements={}, setpoints={}, actions={"Acknowledge": action}
    )
    face = OpcUaFace(settings, keys=None, source=source)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="urn:this-host:backfill:service") as err:
        await face.start()
    assert getattr(err.value, "code", "") == "opcua_certificate_invalid"
    await face.stop()
