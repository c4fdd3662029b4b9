"""``python -m service [--host 127.0.0.1] [--port 8000]``: the paste backfill
control-integration service."""

from __future__ import annotations

import argparse
import asyncio
import sys

from service import logs
from service.server import serve
from service.settings import ConfigurationError, load_settings

EXIT_CONFIGURATION = 2

_EPILOG = """\
Every setting reads from an environment variable with the prefix BACKFILL_ (nested
with __, e.g. BACKFILL_PLC__ENDPOINT); deploy/backfill.env.example documents each one
with its default. A BACKFILL_ variable that is no setting stops the start.

Without BACKFILL_PLC__ENDPOINT the service runs its built-in plant simulator (and says
so); without BACKFILL_API_KEYS it makes one key per role for the run and writes them
to backfill-dev-keys.txt. SIGTERM pauses a running pour and stops the plant before the
process exits (BACKFILL_SHUTDOWN_GRACE_S, 20 s).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as err:
        for line in err.lines:
            print(f"configuration error: {line}", file=sys.stderr)
        return EXIT_CONFIGURATION
    logs.configure(settings.log_level, settings.log_format, settings.opcua_log_level)
    return asyncio.run(serve(settings, args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
