"""Log lines: JSON when asked, and the pour id on every line made for a pour."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from service import logs
from service.core.control.alarms import AlarmBook, AlarmCode, Condition, changes, evaluate


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


def _lines(capsys: pytest.CaptureFixture[str], fmt: str, emit: Callable[[], None]) -> list[str]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", fmt)
        emit()
        return capsys.readouterr().err.splitlines()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_an_alarm_change_reads_as_text_and_as_fields(capsys: pytest.CaptureFixture[str]) -> None:
    before = AlarmBook.empty()
    after = evaluate(
        before,
        {AlarmCode.FEEDER_FAULT: Condition(True, "cement feeder fault")},
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    (change,) = changes(before, after)

    def emit() -> None:
        logging.getLogger("service.test").warning("alarm %s", change)

    text = _lines(capsys, "text", emit)[0]
    assert text.endswith(
        "alarm feeder_fault (high): normal -> active_unacknowledged: cement feeder fault"
    )
    assert "AlarmChange" not in text and "<" not in text
    line = json.loads(_lines(capsys, "json", emit)[0])
    assert line["message"] == (
        "alarm feeder_fault (high): normal -> active_unacknowledged: cement feeder fault"
    )
    assert (line["alarm"], line["from_state"], line["to_state"]) == (
        "feeder_fault",
        "normal",
        "active_unacknowledged",
    )
    assert (line["severity"], line["detail"]) == ("high", "cement feeder fault")
