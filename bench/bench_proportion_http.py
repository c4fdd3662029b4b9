"""Requests/s of ``POST /api/v1/recipes/proportion`` against a bare async FastAPI endpoint.

Both are served the same way, in one run: two uvicorn subprocesses on free
loopback ports (``bench/http_targets.py``: one process each, no uvicorn access log, the
same ``--loop`` and HTTP parser; the service logging as ``python -m service`` does, at
INFO with its own access log as ``--access-log`` says, errors by default), loaded by
``wrk`` with the contract's
example body and an ``Authorization: Bearer`` header. After a warm-up of each, the
measured runs alternate (ours, bare, ours, bare, ...) so that machine drift falls on
both alike. Target: ours / bare >= 0.8 in requests/s.

The service runs as ``python -m service`` serves it in a plant (``create_app`` with the
heap frozen after start-up, the service's HTTP protocol class with its head deadline),
with a fresh SQLite file and one ``hmi`` key, and everything its lifespan starts: the
PLC link, the control loop, the recorder. Its PLC is the plant simulator run as a
process of its own (``python -m service.simulator``), as a plant's PLC is another
machine: the built-in simulator of a development run would put the plant's own work
into the service's process.

Needs ``wrk`` (Debian: ``apt-get install wrk``).
Run: ``.venv/bin/python bench/bench_proportion_http.py [--duration 10] [--connections 16]
[--rounds 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
TARGETS_SCRIPT = HERE / "http_targets.py"
SIMULATOR_TAG_MAP = HERE.parent / "service" / "simulator" / "tags.toml"
PATH = "/api/v1/recipes/proportion"
TARGET_RATIO = 0.8
READY_TIMEOUT_S = 60.0
READY_POLL_S = 0.2
RESULT_TAG = "BENCH_RESULT "

# docs/INTEGRATION.md "POST /recipes/proportion", the example request.
CONTRACT_BODY: dict[str, Any] = {
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 70.0,
    "volume_m3": 1.0,
}

# wrk's Lua API: a fixed POST, and a machine-readable summary from done().
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{tag}{{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
    .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, '
    .. '"p50_us": %d, "p99_us": %d, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass(frozen=True)
class Run:
    requests: int
    duration_s: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def post(port: int, key: str) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}",
        data=json.dumps(CONTRACT_BODY).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5.0) as resp:
            status: int = resp.status
            return status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_ready(target: Target, key: str) -> bytes:
    """Poll (bounded in time and count) until the target answers the POST with 200."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for _ in range(int(READY_TIMEOUT_S / READY_POLL_S) + 1):
        if target.process.poll() is not None:
            break
        try:
            status, body = post(target.port, key)
        except (OSError, urllib.error.URLError):
            status, body = 0, b""
        if status == 200:
            return body
        if status != 0:
            raise RuntimeError(f"{target.name} answered {status}: {body[:300]!r}")
        if time.monotonic() > deadline:
            break
        time.sleep(READY_POLL_S)
    log = target.log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{target.name} did not come up on port {target.port}; its log:\n{log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextlib.contextmanager
def plc_simulator(workdir: Path) -> Iterator[str]:
    """The plant simulator as a process of its own; its endpoint once it listens."""
    port = free_port()
    log_path = workdir / "simulator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.simulator", "--port", str(port)],
            cwd=workdir,
            env={**os.environ, "BACKFILL_LOG_LEVEL": "WARNING"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while b"simulator listening on" not in log_path.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the plant simulator did not start; its log:\n{tail}")
                time.sleep(READY_POLL_S)
            yield f"opc.tcp://127.0.0.1:{port}"
        finally:
            stop(process)


@contextlib.contextmanager
def serve(name: str, env: dict[str, str], workdir: Path, loop: str, http: str) -> Iterator[Target]:
    port = free_port()
    log_path = workdir / f"{name}.log"
    log: IO[bytes]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(TARGETS_SCRIPT),
                name,
                "--port",
                str(port),
                "--loop",
                loop,
                "--http",
                http,
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield Target(name, port, process, log_path)
        finally:
            stop(process)


def run_wrk(
    wrk: str, target: Target, script: Path, threads: int, connections: int, duration_s: int
) -> Run:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{target.port}{PATH}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 30, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data = json.loads(lines[-1][len(RESULT_TAG) :])
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return Run(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000.0,
        p99_ms=data["p99_us"] / 1000.0,
    )


def summarise(runs: list[Run]) -> tuple[float, float, float]:
    """Requests/s over all rounds; p50 and p99 as the median of the rounds' values."""
    rps = sum(r.requests for r in runs) / sum(r.duration_s for r in runs)
    return rps, statistics.median(r.p50_ms for r in runs), statistics.median(r.p99_ms for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (2 cores here)")
    parser.add_argument("--rounds", type=int, default=2, help="measured runs per target")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per target")
    parser.add_argument("--loop", default="asyncio", help="uvicorn loop, same for both")
    parser.add_argument(
        "--http",
        default="httptools",
        help="uvicorn http, same for both (the service serves httptools)",
    )
    parser.add_argument(
        "--access-log",
        choices=("off", "errors", "all"),
        default="errors",
        help="the service's BACKFILL_ACCESS_LOG (default errors, its default: no line for "
        "the 200s measured); all writes a line per request to the service's log file",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 300 and 1 <= args.rounds <= 20 and 0 <= args.warmup <= 60):
        parser.error("--duration 1-300, --rounds 1-20, --warmup 0-60")
    if not (1 <= args.threads <= args.connections <= 1024):
        parser.error("need 1 <= --threads <= --connections <= 1024")

    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'b.db'}",
            "BACKFILL_API_KEYS": f"hmi:{key}",
            # Logging as python -m service logs by default (INFO), the access log as asked.
            "BACKFILL_LOG_LEVEL": "INFO",
            "BACKFILL_ACCESS_LOG": args.access_log,
            # The per-caller limit on computations is the service's defence, not what is
            # measured here: raised far above what one wrk client can send.
            "BACKFILL_API__COMPUTE_RATE_PER_S": "100000",
            "BACKFILL_API__COMPUTE_BURST": "1000000",
        }
        script = workdir / "post.lua"
        script.write_text(
            WRK_SCRIPT.format(body=json.dumps(CONTRACT_BODY), key=key, tag=RESULT_TAG)
        )
        with plc_simulator(workdir) as plc_endpoint:
            env = {
                **env,
                "BACKFILL_PLC__ENDPOINT": plc_endpoint,
                "BACKFILL_PLC__TAG_MAP": str(SIMULATOR_TAG_MAP),
                "BACKFILL_PLC__ALLOW_INSECURE": "true",  # loopback, a test PLC
            }
            runs = measure(wrk, args, env, workdir, script, key)
    report(runs)
    return 0


def measure(
    wrk: str, args: argparse.Namespace, env: dict[str, str], workdir: Path, script: Path, key: str
) -> dict[str, list[Run]]:
    """Both targets up and warmed, then the measured runs, alternating."""
    with (
        serve("service", env, workdir, args.loop, args.http) as ours,
        serve("bare", env, workdir, args.loop, args.http) as bare,
    ):
        answer = json.loads(wait_ready(ours, key))
        if "per_m3" not in answer:
            raise RuntimeError(f"unexpected answer from the service: {answer}")
        wait_ready(bare, key)
        print(
            f"uvicorn --loop {args.loop} --http {args.http}, 1 process each; the service "
            f"at log level INFO with BACKFILL_ACCESS_LOG={args.access_log}, bare at "
            f"warning without access log; wrk -t{args.threads} "
            f"-c{args.connections} -d{args.duration}s, {args.rounds} rounds "
            f"alternating, {os.cpu_count()} CPUs; the PLC a simulator process"
        )
        print(
            f"ours: wet density {answer['per_m3']['wet_density_kg_m3']:.1f} kg/m3 "
            f"(port {ours.port}); bare: port {bare.port}"
        )
        if args.warmup:
            for target in (ours, bare):
                run_wrk(wrk, target, script, args.threads, args.connections, args.warmup)
        runs: dict[str, list[Run]] = {"service": [], "bare": []}
        for round_no in range(1, args.rounds + 1):
            for target in (ours, bare):
                run = run_wrk(wrk, target, script, args.threads, args.connections, args.duration)
                if run.errors:
                    raise RuntimeError(
                        f"{target.name}: {run.errors} errors or non-2xx answers in round "
                        f"{round_no}; see {target.log_path}"
                    )
                runs[target.name].append(run)
                print(
                    f"  round {round_no} {target.name:<7} {run.rps:9.1f} req/s  "
                    f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
                    f"({run.requests} requests)"
                )
        return runs


def report(runs: dict[str, list[Run]]) -> None:
    ours_rps, ours_p50, ours_p99 = summarise(runs["service"])
    bare_rps, bare_p50, bare_p99 = summarise(runs["bare"])
    ratio = ours_rps / bare_rps
    print()
    print(f"{'':<9}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'service':<9}{ours_rps:10.1f}{ours_p50:10.2f}{ours_p99:10.2f}")
    print(f"{'bare':<9}{bare_rps:10.1f}{bare_p50:10.2f}{bare_p99:10.2f}")
    verdict = "meets target" if ratio >= TARGET_RATIO else "MISSES target"
    print(f"ours / bare = {ratio:.2f} (target >= {TARGET_RATIO}): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
