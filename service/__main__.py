"""The paste backfill control-integration service: HTTP API, operator pages and the
OPC UA link to the plant's PLC."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap

from service import logs, settings_help
from service.settings import NESTING, PREFIX, ConfigurationError, Settings, load_settings

EXIT_CONFIGURATION = 2

_CONFIGURATION = f"""\
configuration:
  Every setting is an environment variable with the prefix {PREFIX}; a setting of a
  group is nested with a double underscore "{NESTING}": {PREFIX}<GROUP>{NESTING}<NAME>, for
  example {PREFIX}PLC{NESTING}ENDPOINT=opc.tcp://plc.example:4840. Nothing else configures
  the service (no configuration file): put the variables in an env file read by
  docker --env-file, compose's env_file or systemd's EnvironmentFile.
  deploy/backfill.env.example (in the source tree) is such a file with every setting,
  its default and its meaning; `python -m service --settings` prints the same from
  this installation: every variable, its kind and range, its default and meaning.
  A {PREFIX} variable that is no setting stops the start, naming the closest real one;
  an invalid value stops it too (exit status 2), naming the variable.

  setting groups:
{{groups}}

running:
  Without {PREFIX}PLC{NESTING}ENDPOINT the service runs its built-in plant simulator
  (and says so); without {PREFIX}API_KEYS and {PREFIX}KEY_FILE it makes one key per
  role for the run and writes them to backfill-dev-keys.txt in the working directory
  (python -m service.keys ROLE:PERSON makes keys for named people). SIGTERM pauses a
  running pour and stops the plant before the process exits
  ({PREFIX}SHUTDOWN_GRACE_S, 20 s). GET /healthz answers 200 while the process
  serves, GET /readyz while the store answers, GET /metrics for Prometheus; the API
  is described at /docs. The integration contract (HTTP API, errors, roles, the
  PLC's OPC UA interface and what the PLC program must do) is docs/INTEGRATION.md
  in the source tree.

exit status:
  0 stopped by SIGTERM or SIGINT after a clean shutdown; 2 invalid options or
  settings; 3 could not start (the reason logged in one line); 70 the shutdown
  overran {PREFIX}SHUTDOWN_GRACE_S.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=__doc__,
        epilog=_CONFIGURATION.format(groups=textwrap.indent(settings_help.group_table(), "  ")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on for HTTP (default: %(default)s, this machine only; "
        "0.0.0.0 for every interface, as in the container image)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8000,
        help="TCP port to listen on for HTTP (default: %(default)s)",
    )
    parser.add_argument(
        "--settings",
        nargs="?",
        const="all",
        choices=["all", *settings_help.group_names()],
        metavar="GROUP",
        help="print every setting (or one group's: "
        + ", ".join(settings_help.group_names())
        + ") with its environment variable, kind and range, default and meaning, "
        "and exit; reads no value and starts nothing",
    )
    return parser


async def serve(settings: Settings, host: str, port: int) -> int:
    """The server, imported only when it is run (``--help`` stays quick)."""
    from service.server import serve as run_server

    return await run_server(settings, host, port)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.settings is not None:
        only = None if args.settings == "all" else args.settings
        sys.stdout.write(settings_help.listing(only))
        return 0
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
