"""Log lines: JSON when asked, and the pour id on every line made for a pour."""

from __future__ import annotations

import json
import logging

import pytest

from service import logs


def test_json_lines_carry_the_pour_id(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", "json")
        token = logs.current_pour_id.set("pour-123")
        logging.getLogger("service.test").warning("paused: %s", "plc_not_remote")
        logs.current_pour_id.reset(token)
        logging.getLogger("service.test").info("no pour here")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert lines[0]["pour_id"] == "pour-123"
    assert lines[0]["message"] == "paused: plc_not_remote"
    assert lines[0]["level"] == "WARNING"
    assert "pour_id" not in lines[1]


def test_no_log_line_carries_a_clients_megabytes(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", "text")
        logging.getLogger("asyncua.test").warning("user %s", "x" * 4_000_000)
        line = capsys.readouterr().err.strip()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert len(line) < logs.MAX_MESSAGE_CHARS + 200
    assert line.endswith("(4000005 chars)")
