"""`python -m service --help` and `--settings` (issue 14): every option with its
meaning, where the settings come from, and every setting from the model itself."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import service.__main__ as service_main
from service import settings_help
from service.settings import Settings, setting_names

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "backfill.env.example"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def _groups() -> list[str]:
    return [
        name
        for name, info in Settings.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    ]


def _leaves() -> set[str]:
    """The variables that take a value (a group's own name takes JSON; not listed)."""
    groups = {f"BACKFILL_{group.upper()}" for group in _groups()}
    return {name for name in setting_names() if name not in groups}


def test_help_exits_zero_and_lists_every_option() -> None:
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    text = done.stdout
    flat = " ".join(text.split())
    assert text.startswith("usage: python -m service")
    parser = service_main.build_parser()
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text, option
        if action.help and action.help is not argparse.SUPPRESS:
            # The meaning is printed with the option (argparse wraps it; compare words).
            assert " ".join(action.help.split()[:4]) in flat, action.dest


def test_help_points_to_the_settings() -> None:
    text = _run("--help").stdout
    flat = " ".join(text.split())
    for needle in (
        "BACKFILL_",
        '"__"',
        "BACKFILL_<GROUP>__<NAME>",
        "BACKFILL_PLC__ENDPOINT",
        "deploy/backfill.env.example",
        "python -m service --settings",
        "exit status",
    ):
        assert needle in flat, needle
    assert ENV_EXAMPLE.exists()
    # Every top-level group of the model, with its variable pattern.
    for group in _groups():
        assert f"BACKFILL_{group.upper()}__<NAME>" in text, group
        assert f"\n    {group} " in text, group


def test_settings_lists_every_setting_with_its_default() -> None:
    done = _run("--settings", env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert done.returncode == 0, done.stderr
    listed = {
        line.split()[0]
        for line in done.stdout.splitlines()
        if line.startswith("  BACKFILL_") and not line.startswith("   ")
    }
    assert listed == _leaves()
    text = done.stdout
    # A few defaults and descriptions, as the model has them.
    assert (
        "  BACKFILL_PLC__PUBLISHING_INTERVAL_MS\n      number > 0 and <= 60000; default: 500.0"
        in text
    )
    assert "one of None, Sign, SignAndEncrypt; default: None" in text
    assert "BACKFILL_DATABASE_URL\n      text; default: sqlite+aiosqlite:///./backfill.db" in text
    assert "opc.tcp:// URL of the PLC; unset starts the built-in simulator." in text
    for group in ["general", *_groups()]:
        assert f"\n[{group}] " in text, group


def test_settings_marks_what_is_set_without_its_value() -> None:
    secret = "a-key-nobody-may-read-0123456789"
    env = {**os.environ, "BACKFILL_API_KEYS": f"admin:{secret}"}
    done = _run("--settings", "general", env=env)
    assert done.returncode == 0, done.stderr
    assert "  BACKFILL_API_KEYS  [set]" in done.stdout
    assert secret not in done.stdout
    assert "[plc]" not in done.stdout and "[general]" in done.stdout


def test_settings_refuses_an_unknown_group() -> None:
    done = _run("--settings", "plcs")
    assert done.returncode == 2
    assert "invalid choice: 'plcs'" in done.stderr


def test_settings_defaults_match_the_env_example() -> None:
    """The listing states each default as the env example's commented-out line does."""
    documented = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith("# BACKFILL_") and "=" in line and " " not in line[2:]:
            name, _, value = line[2:].partition("=")
            documented[name] = value or "unset"
    listed = {s.env: s.default for g in settings_help.groups() for s in g.settings}
    assert len(documented) > 50
    assert {name: listed.get(name) for name in documented} == documented


@pytest.mark.parametrize("argv", [["--settings"], ["--settings", "sim"]])
def test_settings_needs_no_valid_configuration(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An admin debugging a refused configuration can still list the settings."""
    monkeypatch.setenv("BACKFILL_PLC_ENDPOINT", "opc.tcp://typo:4840")
    assert service_main.main(argv) == 0
    assert "BACKFILL_SIM__SPEED" in capsys.readouterr().out


_DOCUMENT = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.(?:md|example|toml))\b")


def _strings(value: object) -> list[str]:
    """Every string of a JSON document (its descriptions, as /redoc shows them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _documents(text: str) -> set[str]:
    return set(_DOCUMENT.findall(text))


def test_help_and_the_api_docs_point_only_to_documents_in_the_repository() -> None:
    """--help and the API's description (/docs, /redoc) name the integration contract in
    docs/, and every document they name is in the source tree."""
    from service.app import create_app

    help_text = _run("--help").stdout
    app = create_app(Settings(api_keys="hmi:hmi-key-0123456789abcdef"))
    schema = "\n".join(_strings(app.openapi()))
    for text in (help_text, schema):
        named = _documents(text)
        assert "docs/INTEGRATION.md" in named
        for document in named:
            assert (ROOT / document).is_file(), document
        assert "CONTRACT" not in text and "DOMAIN.md" not in text


def test_help_states_the_exit_status_of_a_clean_stop() -> None:
    flat = " ".join(_run("--help").stdout.split())
    assert "0 stopped by SIGTERM or SIGINT after a clean shutdown" in flat
