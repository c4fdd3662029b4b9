"""Settings that must refuse an unsafe plant configuration at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_an_unsecured_link_to_a_plc_is_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="unsecured link to a PLC") as err:
        Settings(plc={"endpoint": "opc.tcp://10.20.0.15:4840"})
    assert err.value.errors()[0]["loc"] == ("plc",)
    allowed = Settings(plc={"endpoint": "opc.tcp://127.0.0.1:4840", "allow_insecure": True})
    assert allowed.plc.security_mode.value == "None"
    # The built-in simulator (no endpoint) needs nothing.
    assert Settings().embedded_simulator


def test_a_secured_link_needs_its_certificate_and_a_trust_list() -> None:
    with pytest.raises(ValidationError, match="needs certificate and private_key"):
        Settings(plc={"endpoint": "opc.tcp://plc:4840", "security_mode": "SignAndEncrypt"})
    with pytest.raises(ValidationError, match="server_certificate or trust_dir"):
        Settings(
            plc={
                "endpoint": "opc.tcp://plc:4840",
                "security_mode": "SignAndEncrypt",
                "certificate": "/etc/backfill/opcua/cert.der",
                "private_key": "/etc/backfill/opcua/key.pem",
            }
        )


def test_the_start_timeout_leaves_room_for_a_flush() -> None:
    assert Settings().start_timeout_s == 300.0
    with pytest.raises(ValidationError) as err:
        Settings(start_timeout_s=5)
    assert err.value.errors()[0]["loc"] == ("start_timeout_s",)
