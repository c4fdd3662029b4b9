"""The access log and the request id (service.api.access_log, the edge): which requests
are logged as BACKFILL_ACCESS_LOG says, with what, and never the key."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from service import logs
from service.app import create_app
from service.settings import Settings
from tests.conftest import KEYS, api_keys_setting, auth


@pytest.fixture
def json_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="service.access"):
        yield caplog


async def _calls(mode: str) -> list[httpx.Response]:
    # The edge and these routes need no started runtime (no simulator, no store).
    app = create_app(Settings(api_keys=api_keys_setting(), access_log=mode))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [
            await client.get("/api/v1/whoami", headers=auth("hmi")),
            await client.get(
                "/api/v1/whoami?key=secret",
                headers={"X-Request-ID": "scada-call-42", "Authorization": "Bearer wrong-key"},
            ),
            await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}),
        ]


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The access records as the JSON log format writes them."""
    formatter = logs.JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "service.access"
    ]


async def test_every_answer_carries_a_request_id(json_log: pytest.LogCaptureFixture) -> None:
    ok, refused, health = await _calls("errors")
    assert (ok.status_code, refused.status_code, health.status_code) == (200, 401, 200)
    assert re.fullmatch(r"[0-9a-f]{16}", ok.headers["x-request-id"])
    assert refused.headers["x-request-id"] == "scada-call-42"  # the client's own
    # An id a log could not carry safely is replaced.
    assert re.fullmatch(r"[0-9a-f]{16}", health.headers["x-request-id"])


async def test_errors_mode_logs_the_refusals_only(json_log: pytest.LogCaptureFixture) -> None:
    _, refused, _ = await _calls("errors")
    (line,) = _access_lines(json_log)
    assert line["status"] == 401 and line["method"] == "GET"
    assert line["request_id"] == refused.headers["x-request-id"] == "scada-call-42"
    assert line["path"] == "/api/v1/whoami"  # no query string: it may carry a secret
    assert line["route"] == "/api/v1/whoami" and line["role"] is None
    assert isinstance(line["duration_ms"], float) and line["level"] == "INFO"
    assert "secret" not in json.dumps(line) and "wrong-key" not in json.dumps(line)


async def test_all_mode_logs_every_request_with_its_role_not_its_key(
    json_log: pytest.LogCaptureFixture,
) -> None:
    ok, refused, health = await _calls("all")
    lines = _access_lines(json_log)
    assert [(line["status"], line["role"]) for line in lines] == [
        (200, "hmi"),
        (401, None),
        (200, None),
    ]
    assert [line["request_id"] for line in lines] == [
        r.headers["x-request-id"] for r in (ok, refused, health)
    ]
    assert all(KEYS["hmi"] not in json.dumps(line) for line in lines)


async def test_off_mode_logs_nothing(json_log: pytest.LogCaptureFixture) -> None:
    await _calls("off")
    assert _access_lines(json_log) == []


def test_text_lines_read_as_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    from service.api.access_log import AccessLog

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", "text")
        AccessLog("all").record(
            method="POST",
            path="/api/v1/pours/p-1/start",
            route="/api/v1/pours/{pour_id}/start",
            status=503,
            duration_s=0.0123,
            client="10.0.0.5",
            request_id="abc",
            role="scada",
        )
        line = capsys.readouterr().err.strip()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert line.endswith(
        "WARNING service.access: POST /api/v1/pours/p-1/start 503 12.3 ms 10.0.0.5 "
        "role=scada request_id=abc"
    )
