"""Text a client sent, bounded before it goes into a log line.

A user name, a metric name or a command's argument is whatever the client chose to
send: a 4 MB user name would otherwise be a 4 MB log line (and a log collector's
problem). Pure.
"""

from __future__ import annotations

#: Characters of a client's text a log line carries.
LOG_CHARS = 64


def clip(value: object, limit: int = LOG_CHARS) -> str:
    """``value`` as ``repr`` shows it, at most ``limit`` characters of it, with the
    length of the whole when it was cut: ``'aaaa'… (4194304 chars)``."""
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "replace")
    else:
        text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} chars)"
