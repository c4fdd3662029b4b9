"""Logging set-up: plain text for a terminal, JSON lines for a log collector.

Every record made while the supervisor works on a pour carries that pour's id
(``pour_id``), through a context variable, so a pour's whole story can be pulled
out of the logs with one filter. An argument of a record that offers
``log_fields()`` (an alarm's change of state) is written as readable text in the
message and, in JSON, as fields of the line too.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

current_pour_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_pour_id", default=None
)
# The HTTP request being served (service.api.access_log): its lines carry its id.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_request_id", default=None
)


class _PourIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "pour_id"):
            record.pour_id = current_pour_id.get()
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


#: The longest message a log line carries: a client's text that reached a message whole
#: (a library's own line, say) is cut there, with the length of the whole.
MAX_MESSAGE_CHARS = 4096


class _BoundedMessage(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_MESSAGE_CHARS:
            record.msg = f"{message[:MAX_MESSAGE_CHARS]}… ({len(message)} chars)"
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        pour_id = getattr(record, "pour_id", None)
        if pour_id:
            body["pour_id"] = pour_id
        request_id = getattr(record, "request_id", None)
        if request_id:
            body["request_id"] = request_id
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            body.update(access)
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            fields = getattr(arg, "log_fields", None)
            if callable(fields):
                for key, value in fields().items():
                    body.setdefault(key, value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pour_id = getattr(record, "pour_id", None)
        if pour_id:
            line = f"{line} [pour {pour_id}]"
        request_id = getattr(record, "request_id", None)
        if request_id and getattr(record, "access", None) is None:
            line = f"{line} [request {request_id}]"
        return line


def configure(level: str, fmt: str, opcua_level: str = "WARNING") -> None:
    """The service's logging. The OPC UA library logs at ``opcua_level`` on its own:
    at INFO it writes about 60 lines a second, which would bury the lines an operator
    must see (a simulated plant, the generated keys)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_PourIdFilter())
    handler.addFilter(_BoundedMessage())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("asyncua").setLevel(opcua_level.upper())
