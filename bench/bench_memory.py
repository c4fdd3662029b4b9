"""Resident memory of the service after start and after a 5-minute pour, beside a bare
FastAPI + uvicorn process.

Each process is started fresh, as a plant starts it, and measured from
``/proc/<pid>/status`` (VmRSS, with its anonymous and file-backed parts, and VmHWM, the
peak):

* ``bare``: ``bench/http_targets.py bare``, one POST endpoint under uvicorn: the floor
  that Python, FastAPI and uvicorn set on this machine. It is polled while the service
  pours, so both serve the same requests.
* ``service``: ``python -m service`` with a fresh SQLite file and API keys, in two
  set-ups: the built-in plant simulator in its process (what ``make run`` starts), and
  the simulator as a process of its own (``python -m service.simulator``), as a plant's
  PLC is another machine.

"After start": ``--settle`` seconds after ``/readyz`` first answered 200. "After a
5-minute pour": a pour of an approved recipe started then and run for ``--pour-minutes``
(5) of plant time, with the simulator at ``--speed`` (20: five plant minutes in 15 s of
wall time; the control cycle runs every plant second, so as many cycles run as in 5
real minutes), while a client polls the pour and ``/plant/status`` every 0.5 s as an
HMI does; the volume placed is printed. Target: the service under 150 MB after start
(the shipped example calibrations are fitted and stored at the first start of a fresh
database, as here).

Run: ``.venv/bin/python bench/bench_memory.py [--speed 20] [--pour-minutes 5]
[--settle 5]``. About a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS_SCRIPT = HERE / "http_targets.py"
SIMULATOR_TAG_MAP = ROOT / "service" / "simulator" / "tags.toml"
READY_TIMEOUT_S = 90.0
POLL_S = 0.5
TARGET_MB = 150.0
RECIPE: dict[str, Any] = {
    "tailings": {"specific_gravity": 2.8, "moisture_pct": 35.7},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 5.0,
    "solids_pct": 72.0,
}


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    anon_mb: float
    file_mb: float
    peak_mb: float

    @classmethod
    def of(cls, pid: int) -> Memory:
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024.0
        return cls(fields["VmRSS"], fields["RssAnon"], fields["RssFile"], fields["VmHWM"])

    def __str__(self) -> str:
        return (
            f"{self.rss_mb:7.1f} MB (anon {self.anon_mb:6.1f}, file {self.file_mb:5.1f}, "
            f"peak {self.peak_mb:6.1f})"
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(
    port: int, method: str, path: str, key: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=10.0) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def started(
    args: list[str], env: dict[str, str], workdir: Path, log_name: str
) -> Iterator[subprocess.Popen[bytes]]:
    with (workdir / log_name).open("wb") as log:
        process = subprocess.Popen(
            args, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        yield process
    finally:
        stop(process)


def wait_until(probe: Any, what: str, process: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            answer = probe()
        except OSError:
            answer = None
        if answer:
            return answer
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"no {what} within {READY_TIMEOUT_S:g} s; the log:\n{tail}")


def measure_bare(
    workdir: Path, env: dict[str, str], settle_s: float, busy_s: float
) -> list[Memory]:
    port = free_port()
    args = [sys.executable, str(TARGETS_SCRIPT), "bare", "--port", str(port)]
    with started(args, env, workdir, "bare.log") as process:

        def ready() -> bool:
            return request(port, "POST", "/api/v1/recipes/proportion", body={"a": 1})[0] == 200

        wait_until(ready, "bare endpoint", process, workdir / "bare.log")
        time.sleep(settle_s)
        after_start = Memory.of(process.pid)
        deadline = time.monotonic() + busy_s
        while time.monotonic() < deadline:
            request(port, "POST", "/api/v1/recipes/proportion", body=RECIPE)
            request(port, "POST", "/api/v1/recipes/proportion", body={"a": 1})
            time.sleep(POLL_S)
        return [after_start, Memory.of(process.pid)]


def measure_service(
    workdir: Path, env: dict[str, str], keys: dict[str, str], args: argparse.Namespace
) -> tuple[list[Memory], float]:
    """Memory after start and after the pour, and the pour's wall seconds."""
    port = free_port()
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    log = workdir / "service.log"
    with started(command, env, workdir, "service.log") as process:
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, "readiness", process, log)
        wait_until(
            lambda: request(port, "GET", "/api/v1/plant/status", keys["hmi"])[1]["connected"],
            "the PLC link",
            process,
            log,
        )
        time.sleep(args.settle)
        after_start = Memory.of(process.pid)

        status, recipe = request(
            port,
            "POST",
            "/api/v1/recipes",
            keys["engineer"],
            {"name": "bench", "mix": RECIPE, "approved_by": "Bench Engineer"},
        )
        assert status == 201, recipe
        body = {
            "stope_id": "S-BENCH",
            "recipe_id": recipe["id"],
            "target_volume_m3": 1000.0,  # not reached: the pour runs until stopped
            "paste_flow_m3_h": 100.0,
        }
        status, pour = request(port, "POST", "/api/v1/pours", keys["scada"], body)
        assert status == 201, pour
        status, answer = request(port, "POST", f"/api/v1/pours/{pour['id']}/start", keys["scada"])
        assert status == 200, answer
        began = time.monotonic()
        # Plant time is wall time x speed (the simulator steps by the wall clock).
        end = began + args.pour_minutes * 60.0 / args.speed
        view: dict[str, Any] = {}
        while time.monotonic() < end:
            if process.poll() is not None:
                raise RuntimeError(f"the service ended during the pour; see {log}")
            status, view = request(port, "GET", f"/api/v1/pours/{pour['id']}", keys["hmi"])
            assert status == 200 and view["state"] == "running", view
            request(port, "GET", "/api/v1/plant/status", keys["hmi"])
            time.sleep(POLL_S)
        wall_s = time.monotonic() - began
        after_pour = Memory.of(process.pid)
        request(port, "POST", f"/api/v1/pours/{pour['id']}/stop", keys["scada"])
        print(f"  {view.get('poured_m3', 0.0):.1f} m3 placed in the pour", flush=True)
        return [after_start, after_pour], wall_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--speed", type=float, default=20.0, help="simulator speed (plant/wall)")
    parser.add_argument("--pour-minutes", type=float, default=5.0, help="plant minutes poured")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after ready")
    args = parser.parse_args(argv)
    if not (1.0 <= args.speed <= 100.0 and 0.5 <= args.pour_minutes <= 60.0):
        parser.error("--speed 1-100, --pour-minutes 0.5-60")

    keys = {role: secrets.token_urlsafe(24) for role in ("hmi", "scada", "engineer")}
    rows: dict[str, list[Memory]] = {}
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        workdir = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
        base["PYTHONPATH"] = str(ROOT)
        env = {
            **base,
            "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'builtin.db'}",
            "BACKFILL_API_KEYS": ",".join(f"{role}:{key}" for role, key in keys.items()),
            "BACKFILL_SIM__SPEED": f"{args.speed:g}",
        }
        rows["service, built-in simulator"], walls["built-in"] = measure_service(
            workdir, env, keys, args
        )
        sim_port = free_port()
        simulator = [
            sys.executable,
            "-m",
            "service.simulator",
            "--port",
            str(sim_port),
            "--speed",
            f"{args.speed:g}",
        ]
        with started(simulator, base, workdir, "simulator.log") as sim:
            wait_until(
                lambda: b"simulator listening on" in (workdir / "simulator.log").read_bytes(),
                "the simulator",
                sim,
                workdir / "simulator.log",
            )
            external = {
                **env,
                "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'external.db'}",
                "BACKFILL_PLC__ENDPOINT": f"opc.tcp://127.0.0.1:{sim_port}",
                "BACKFILL_PLC__TAG_MAP": str(SIMULATOR_TAG_MAP),
                "BACKFILL_PLC__ALLOW_INSECURE": "true",  # loopback, a test PLC
            }
            rows["service, PLC in another process"], walls["external"] = measure_service(
                workdir, external, keys, args
            )
        rows["bare FastAPI + uvicorn"] = measure_bare(
            workdir, base, args.settle, max(walls.values())
        )

    print(
        f"{os.cpu_count()} CPUs; simulator speed {args.speed:g}; a pour of "
        f"{args.pour_minutes:g} plant minutes ({walls['built-in']:.0f} s and "
        f"{walls['external']:.0f} s of wall time), polled every {POLL_S:g} s"
    )
    print(f"{'':34}{'after start':>44}   {'after the pour':>44}")
    for name, (start, pour) in rows.items():
        print(f"{name:34}{start}   {pour}")
    bare = rows["bare FastAPI + uvicorn"][0].rss_mb
    for name in ("service, built-in simulator", "service, PLC in another process"):
        start, pour = rows[name]
        verdict = "meets" if start.rss_mb < TARGET_MB else "MISSES"
        print(
            f"{name}: {start.rss_mb / bare:.2f}x the bare process after start, "
            f"{pour.rss_mb / rows['bare FastAPI + uvicorn'][1].rss_mb:.2f}x after the pour; "
            f"after start {verdict} the target (< {TARGET_MB:g} MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
