"""``python -m service.simulator --port 4840 [--host H] [--speed X] [--seed N]
[--profile FILE]``.

Settings come from the environment first (``BACKFILL_SIM__SPEED``,
``BACKFILL_SIM__PORT``, ``BACKFILL_SIM__PROFILE``, ...); command-line options override
them. The plant is the plant profile's (``--profile``, a TOML file; the shipped default
``service/simulator/profile.toml`` when none is named): a file that cannot be used stops
the start with one line naming the file and the key, exit status 2. Runs until SIGINT
or SIGTERM, then stops cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from service.settings import NESTING, PREFIX, Settings, SimSettings
from service.simulator import DEFAULT_PROFILE_PATH
from service.simulator.profile import PlantProfile, ProfileError, load_profile
from service.simulator.server import SimulatorServer

logger = logging.getLogger("service.simulator")

EXIT_CONFIGURATION = 2


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m service.simulator", description="Paste backfill plant simulator (OPC UA)."
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port; 0 picks a free one")
    parser.add_argument("--speed", type=float, help="plant seconds per wall second")
    parser.add_argument("--seed", type=int, help="random seed of the disturbances")
    parser.add_argument(
        "--heartbeat-timeout", type=float, dest="heartbeat_timeout_s", help="wall seconds"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="TOML plant profile (feed, instruments, dead times, pump, pipe); default "
        f"{PREFIX}SIM{NESTING}PROFILE, else the shipped service/simulator/profile.toml",
    )
    parser.add_argument("--log-level", default=None, help="logging level (default INFO)")
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace, base: SimSettings) -> SimSettings:
    """Environment settings overridden by the options given on the command line."""
    overrides = {
        name: value
        for name in ("host", "port", "speed", "seed", "heartbeat_timeout_s", "profile")
        if (value := getattr(args, name, None)) is not None
    }
    return SimSettings.model_validate({**base.model_dump(), **overrides})


async def _serve(sim_settings: SimSettings, profile: PlantProfile) -> None:
    sim = SimulatorServer.from_settings(sim_settings, profile=profile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    try:
        print(f"simulator listening on {sim.endpoint}", flush=True)
        print(f"simulator plant profile {profile.name!r}: {profile.path}", flush=True)
        await stop.wait()
    finally:
        await sim.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = Settings()
    sim_settings = build_settings(args, settings.sim)
    try:
        profile = load_profile(sim_settings.profile or DEFAULT_PROFILE_PATH)
    except ProfileError as err:
        source = "--profile" if args.profile is not None else f"{PREFIX}SIM{NESTING}PROFILE"
        print(f"configuration error: {source}: {err}", file=sys.stderr)
        return EXIT_CONFIGURATION
    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(sim_settings, profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
