"""Settings that must refuse an unsafe plant configuration at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import (
    ConfigurationError,
    Settings,
    load_settings,
    setting_names,
    unknown_variables,
)


def test_an_unsecured_link_to_a_plc_is_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="unsecured link to a PLC") as err:
        Settings(plc={"endpoint": "opc.tcp://10.20.0.15:4840"})
    assert err.value.errors()[0]["loc"] == ("plc",)
    allowed = Settings(
        plc={
            "endpoint": "opc.tcp://127.0.0.1:4840",
            "allow_insecure": True,
            "tag_map": "/etc/backfill/tags.toml",
        }
    )
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


def test_the_opcua_server_for_scada_is_off_by_default_and_secured_when_on() -> None:
    assert Settings().opcua_server.enabled is False
    with pytest.raises(ValidationError, match="needs certificate and private_key"):
        Settings(opcua_server={"enabled": True})
    with pytest.raises(ValidationError, match="sends API keys in clear"):
        Settings(opcua_server={"enabled": True, "security_mode": "None"})
    insecure = Settings(
        opcua_server={"enabled": True, "security_mode": "None", "allow_insecure": True}
    )
    assert insecure.opcua_server.port == 4841


def test_sparkplug_ids_cannot_break_the_topic() -> None:
    assert Settings().sparkplug.enabled is False
    for bad in ("a/b", "#", "plant+1"):
        with pytest.raises(ValidationError, match="group_id"):
            Settings(sparkplug={"group_id": bad})


def test_the_start_timeout_leaves_room_for_a_flush() -> None:
    assert Settings().start_timeout_s == 300.0
    with pytest.raises(ValidationError) as err:
        Settings(start_timeout_s=5)
    assert err.value.errors()[0]["loc"] == ("start_timeout_s",)


# --- settings cannot be silently wrong --------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any BACKFILL_ setting of the caller."""
    import os

    for name in list(os.environ):
        if name.startswith("BACKFILL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_a_mistyped_variable_stops_the_start_and_names_the_real_one(
    env: pytest.MonkeyPatch,
) -> None:
    # One underscore: the service would have started its simulator instead of the PLC.
    env.setenv("BACKFILL_PLC_ENDPOINT", "opc.tcp://10.20.0.15:4840")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert err.value.lines == [
        "BACKFILL_PLC_ENDPOINT is not a setting of this service; "
        "did you mean BACKFILL_PLC__ENDPOINT?"
    ]


def test_unknown_variables_are_found_whatever_their_case() -> None:
    found = unknown_variables(
        {
            "BACKFILL_DATABASE_URL": "sqlite+aiosqlite:///x.db",
            "backfill_log_levle": "DEBUG",
            "BACKFILL_SIM__SPED": "10",
            "BACKFILL_TEST_STRICT": "1",  # the test suite's own
            "BACKFILL_NOTHING_LIKE_IT": "1",
            "PATH": "/bin",
        }
    )
    assert found == [
        "BACKFILL_NOTHING_LIKE_IT is not a setting of this service",
        "BACKFILL_SIM__SPED is not a setting of this service; did you mean BACKFILL_SIM__SPEED?",
        "backfill_log_levle is not a setting of this service; did you mean BACKFILL_LOG_LEVEL?",
    ]
    assert not unknown_variables({name: "" for name in setting_names()})


def test_errors_name_the_environment_variable_in_one_line(env: pytest.MonkeyPatch) -> None:
    env.setenv("BACKFILL_SIM__SPEED", "fast")
    env.setenv("BACKFILL_PLC__RECONNECT_MIN_S", "5")
    env.setenv("BACKFILL_PLC__RECONNECT_MAX_S", "1")
    env.setenv("BACKFILL_API_KEYS", "hmi:tiny-key")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    lines = err.value.lines
    assert all("\n" not in line for line in lines)
    assert any(
        line.startswith("BACKFILL_SIM__SPEED: Input should be a valid number") for line in lines
    )
    assert any(
        line == "BACKFILL_PLC__*: BACKFILL_PLC__RECONNECT_MAX_S must be at least "
        "BACKFILL_PLC__RECONNECT_MIN_S"
        for line in lines
    ), lines
    assert any(line.startswith("BACKFILL_API_KEYS: the hmi key is a placeholder") for line in lines)
    assert not any("tiny-key" in line for line in lines)  # a key is never repeated


def test_an_endpoint_needs_a_tag_map(env: pytest.MonkeyPatch) -> None:
    env.setenv("BACKFILL_PLC__ENDPOINT", "opc.tcp://127.0.0.1:4840")
    env.setenv("BACKFILL_PLC__ALLOW_INSECURE", "true")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert err.value.lines == [
        "settings: BACKFILL_PLC__TAG_MAP is required with BACKFILL_PLC__ENDPOINT: the tag map "
        "names the PLC's node for every logical tag"
    ]


def test_recipe_limits_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="binder_pct_min"):
        Settings(recipes={"binder_pct_min": 12, "binder_pct_max": 10})


def test_lab_and_stope_limits_are_settings_and_must_be_ordered() -> None:
    settings = Settings(
        lab={"cast_at_tolerance_h": 2, "curing_days_min": 1},
        stopes={"rise_rate_m_h_min": 0.1},
    )
    assert (settings.lab.cast_at_tolerance_h, settings.stopes.rise_rate_m_h_min) == (2.0, 0.1)
    with pytest.raises(ValueError, match="curing_days_min"):
        Settings(lab={"curing_days_min": 10, "curing_days_max": 5})
    with pytest.raises(ValueError, match="plan_area_m2_min"):
        Settings(stopes={"plan_area_m2_min": 10, "plan_area_m2_max": 5})
