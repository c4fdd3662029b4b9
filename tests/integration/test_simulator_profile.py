"""The plant profile as the running simulator and the service use it: a profile changes
what the OPC UA server publishes, the status names it, and a bad file stops
``python -m service.simulator --profile`` and ``python -m service`` with
``BACKFILL_SIM__PROFILE`` in one line naming the key (exit status 2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import Client, ua

from service.app import create_app
from service.settings import Settings
from service.simulator import HARDER_PROFILE_PATH
from service.simulator.dynamics import slurry_density_kg_m3, slurry_solids_fraction
from service.simulator.profile import load_profile, parse_profile
from service.simulator.server import TAG_NODE_IDS, SimulatorServer
from tests.conftest import api_keys_setting, auth

ROOT = Path(__file__).resolve().parents[2]
SPEED = 50.0


def env_without_settings(**extra: str) -> dict[str, str]:
    """The test's environment less any BACKFILL_ setting of the caller, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    path = base.get("PYTHONPATH")
    base["PYTHONPATH"] = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    return {**base, **extra}


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def connected(sim: SimulatorServer) -> AsyncIterator[Client]:
    await sim.start()
    try:
        async with Client(sim.endpoint, timeout=4) as client:
            yield client
    finally:
        await sim.stop()


async def read(client: Client, tag_or_path: str) -> Any:
    nodeid = TAG_NODE_IDS.get(tag_or_path, f"ns=2;s={tag_or_path}")
    return await client.get_node(nodeid).read_value()


async def write(client: Client, tag: str, value: object, vtype: ua.VariantType) -> None:
    await client.get_node(TAG_NODE_IDS[tag]).write_value(ua.DataValue(ua.Variant(value, vtype)))


async def published_feed_densities(client: Client, n: int) -> list[float]:
    values = []
    for _ in range(n):
        values.append(float(await read(client, "tailings_density_pv")))
        await asyncio.sleep(0.05)
    return values


# --- a profile changes the running simulator ------------------------------------------------


async def test_the_feed_solids_band_moves_the_published_feed_density(tmp_path: Path) -> None:
    # A wetter feed than the default's: 60-64 % solids (1,628-1,699 kg/m3 at Gs 2.8)
    # with a strong walk that the band holds.
    path = tmp_path / "wet-feed.toml"
    path.write_text(
        'name = "wet feed"\n'
        "[feed]\n"
        "density_kg_m3 = 1660.0\n"
        "solids_pct_min = 60.0\n"
        "solids_pct_max = 64.0\n"
        "walk_kg_m3_per_sqrt_s = 8.0\n"
    )
    profile = load_profile(path)
    low, high = slurry_density_kg_m3(0.60, 2.8), slurry_density_kg_m3(0.64, 2.8)
    async with connected(SimulatorServer(profile=profile, speed=SPEED, seed=4)) as client:
        # Let a few plant minutes pass (the walk moves).
        await asyncio.sleep(1.0)
        wet = await published_feed_densities(client, 30)
    noise = 4 * profile.plant.feed_density_noise_kg_m3
    assert all(low - noise <= d <= high + noise for d in wet), (min(wet), max(wet))
    assert statistics.fmean(wet) < 1720.0
    async with connected(SimulatorServer(speed=SPEED, seed=4)) as client:
        default = await published_feed_densities(client, 10)
    assert statistics.fmean(default) == pytest.approx(1900.0, abs=60.0)


async def test_the_true_gs_differs_from_the_one_the_recipes_assume(tmp_path: Path) -> None:
    """Every gauge agrees with the recipe's Gs; the feed's solids follow the true one."""
    text = (
        "[feed]\n"
        "true_tailings_gs = 2.9\n"
        "recipe_tailings_gs = 2.8\n"
        "walk_kg_m3_per_sqrt_s = 0.0\n"
        "[instruments.feed_density]\n"
        "noise_kg_m3 = 0.0\n"
    )
    profile = parse_profile(text, tmp_path / "gs-error.toml")
    sim = SimulatorServer(profile=profile, speed=SPEED, seed=2, heartbeat_timeout_s=3.0)
    async with connected(sim) as client:
        await write(client, "tailings_flow_sp", 80.0, ua.VariantType.Float)
        await write(client, "setpoint_seq", 1, ua.VariantType.Int32)
        beat = 0

        async def running() -> bool:
            nonlocal beat
            beat += 1
            await write(client, "heartbeat", beat, ua.VariantType.Int32)
            return bool(await read(client, "plant_mode") == 2)

        async def flush_water_gone() -> bool:
            return await running() and sim.state.plant.water_flow_m3_h < 1e-6

        await write(client, "run_request", True, ua.VariantType.Boolean)
        await wait_until(flush_water_gone, what="the plant running on feed alone")
        first = sim.state.plant.mass_in
        for _ in range(20):
            beat += 1
            await write(client, "heartbeat", beat, ua.VariantType.Int32)
            await asyncio.sleep(0.05)
        density = float(await read(client, "tailings_density_pv"))
        fed = sim.state.plant.mass_in - first
        await write(client, "run_request", False, ua.VariantType.Boolean)
    true_solids = fed.tailings_kg / fed.total_kg  # feed only: no binder, no water
    assumed = slurry_solids_fraction(density, profile.plant.recipe_tailings_gs)
    assert density == pytest.approx(1900.0)
    assert true_solids == pytest.approx(slurry_solids_fraction(1900.0, 2.9), abs=1e-4)
    # What the service would compute with the recipe's Gs is more than a point drier.
    assert assumed == pytest.approx(slurry_solids_fraction(1900.0, 2.8))
    assert 100.0 * (assumed - true_solids) > 1.3


async def test_the_profiles_calibration_errors_are_in_force_and_come_back(
    tmp_path: Path,
) -> None:
    profile = load_profile(HARDER_PROFILE_PATH)
    sim = SimulatorServer(profile=profile, speed=SPEED, seed=1)
    assert sim.controls.instrument_errors == profile.instrument_errors
    async with connected(sim) as client:
        assert await read(client, "Backfill.Sim.FeedFlowBias") == pytest.approx(0.3)
        assert await read(client, "Backfill.Sim.CementScaleBias") == pytest.approx(0.8)
        assert await read(client, "Backfill.Sim.FeedDeadTime") == pytest.approx(20.0)
        assert await read(client, "Backfill.Sim.FrictionModel") == "bingham"
        await sim.set_fault(feed_flow_bias_pct=0.0, water_flow_bias_pct=2.0, wet_feed=True)
        assert await read(client, "Backfill.Sim.WaterFlowBias") == pytest.approx(2.0)
        await sim.clear_faults()
        # Every fault off: the plant as its profile states it, calibration errors too.
        assert sim.controls.instrument_errors == profile.instrument_errors
        assert not sim.controls.wet_feed
        assert await read(client, "Backfill.Sim.FeedFlowBias") == pytest.approx(0.3)
        assert await read(client, "Backfill.Sim.WaterFlowBias") == pytest.approx(0.0)


async def test_the_simulator_command_runs_the_profile_it_is_given() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.simulator",
        "--port",
        "0",
        "--profile",
        str(HARDER_PROFILE_PATH),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env_without_settings(BACKFILL_SIM__SPEED="10"),
    )
    try:
        assert proc.stdout is not None
        listening = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        named = (await asyncio.wait_for(proc.stdout.readline(), timeout=5)).decode()
        assert listening.startswith("simulator listening on opc.tcp://127.0.0.1:")
        assert named.strip() == f"simulator plant profile 'harder': {HARDER_PROFILE_PATH}"
        async with Client(listening.rsplit(" ", 1)[1].strip(), timeout=4) as c:
            assert await read(c, "Backfill.Sim.PasteDeadTime") == pytest.approx(10.0)
            assert await read(c, "Backfill.Sim.PasteFlowBias") == pytest.approx(-0.3)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- the status names the profile ------------------------------------------------------------


async def test_plant_status_names_the_simulators_profile(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}",
        api_keys=api_keys_setting(),
        sim={"profile": HARDER_PROFILE_PATH, "speed": 10.0},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
            status = (await api.get("/api/v1/plant/status", headers=auth("hmi"))).json()
        runtime = app.state.runtime
        assert runtime.simulator.params == load_profile(HARDER_PROFILE_PATH).params
    assert status["simulator"] is True
    assert status["simulator_profile"] == {"name": "harder", "path": str(HARDER_PROFILE_PATH)}
    assert status["notice"].startswith("SIMULATED PLANT")


# --- a bad file stops both commands in one line ----------------------------------------------

BAD_FILES: dict[str, tuple[str | None, str, str]] = {
    # kind: (file text, or None for no file; the key or word the line names; more)
    "syntax": ("[feed\ndensity_kg_m3 = 1900\n", "not valid TOML", "line 1"),
    "unknown key": (
        "[feed]\nsolid_pct_min = 70\n",
        "feed.solid_pct_min",
        "did you mean feed.solids_pct_min?",
    ),
    "wrong type": (
        '[pump]\ncapacity_m3_h = "200"\n',
        "pump.capacity_m3_h",
        "must be a number",
    ),
    "out of range": (
        "[transport]\npaste_dead_time_s = -5\n",
        "transport.paste_dead_time_s",
        "must be within [0, 600] s",
    ),
    "contradiction": (
        "[feed]\nsolids_pct_min = 60\nsolids_pct_max = 64\n",
        "feed.density_kg_m3",
        "must lie within the feed's solids band",
    ),
    "no such file": (None, "cannot read the profile", "No such file"),
}


def _bad_file(tmp_path: Path, kind: str) -> Path:
    text = BAD_FILES[kind][0]
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    return path


def _assert_one_line(
    done: subprocess.CompletedProcess[str], source: str, path: Path, kind: str
) -> None:
    _, named, more = BAD_FILES[kind]
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith(f"configuration error: {source}: {path}: "), line
    assert named in line and more in line, line
    assert done.stdout == ""


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_profile_stops_the_simulator_command(tmp_path: Path, kind: str) -> None:
    path = _bad_file(tmp_path, kind)
    done = subprocess.run(
        [sys.executable, "-m", "service.simulator", "--port", "0", "--profile", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_without_settings(),
        timeout=30,
        check=False,
    )
    _assert_one_line(done, "--profile", path, kind)


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_profile_stops_the_service(tmp_path: Path, kind: str) -> None:
    path = _bad_file(tmp_path, kind)
    done = subprocess.run(
        [sys.executable, "-m", "service", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_without_settings(
            BACKFILL_SIM__PROFILE=str(path),
            BACKFILL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}",
        ),
        timeout=30,
        check=False,
    )
    _assert_one_line(done, "BACKFILL_SIM__PROFILE", path, kind)
    assert not (tmp_path / "backfill.db").exists()  # stopped before anything started


def test_the_simulator_profile_from_the_environment_is_named_as_such(tmp_path: Path) -> None:
    path = _bad_file(tmp_path, "out of range")
    done = subprocess.run(
        [sys.executable, "-m", "service.simulator", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_without_settings(BACKFILL_SIM__PROFILE=str(path)),
        timeout=30,
        check=False,
    )
    _assert_one_line(done, "BACKFILL_SIM__PROFILE", path, "out of range")
