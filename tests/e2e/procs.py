"""Real processes for the end-to-end tests: the service (``python -m service``) and the
node-opcua stand-in PLC, each started with bounded waits and always ended by its own
process id (SIGTERM, then SIGKILL) when the test is done."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import machine_lock_async
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
NODE_PLC_DIR = REPO / "tests" / "interop" / "node_opcua_plc"
NODE_PLC_TAG_MAP = NODE_PLC_DIR / "tags.toml"


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as err:
        return f"(no log: {err})"


async def until(
    probe: Callable[[], Awaitable[Any]], *, within_s: float, what: str, interval: float = 0.2
) -> Any:
    """Poll ``probe`` until it returns something truthy, at most ``within_s`` seconds;
    fail naming ``what`` and the last answer."""
    deadline = time.monotonic() + within_s
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {within_s:g} s; last: {last!r}")
        await asyncio.sleep(interval)


# --- the service as a subprocess ---------------------------------------------------------


@dataclass
class ServiceProcess:
    """One ``python -m service`` process; output goes to ``log`` (never a pipe that
    could fill up and stall it)."""

    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self) -> str:
        return _tail(self.log)

    def kill(self, *, within: float = 10.0) -> int:
        """SIGKILL (as ``kill -9``) and reap; returns the exit status."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)
        return self.popen.wait(timeout=within)

    def terminate(self, *, within: float = 10.0) -> int:
        """SIGTERM (a clean shutdown); SIGKILL when it does not end ``within`` seconds."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=within)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()


def service_env(env: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without any BACKFILL_ setting of the caller, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    path = base.get("PYTHONPATH")
    base["PYTHONPATH"] = f"{REPO}{os.pathsep}{path}" if path else str(REPO)
    base["PYTHONUNBUFFERED"] = "1"
    return {**base, **env}


@contextmanager
def service_process(
    *, env: Mapping[str, str], cwd: Path, port: int, log: Path
) -> Iterator[ServiceProcess]:
    """Start ``python -m service --port <port>``; whatever happens, it is ended on exit."""
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=service_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc = ServiceProcess(popen, port, log)
    try:
        yield proc
    finally:
        proc.terminate()


def tag_map_without_diverter(directory: Path) -> Path:
    """The simulator's tag map less the dump diverter's optional tags: a plant with no
    diverter, whose start-up paste goes to the stope (for tests in real time, where the
    settle time before paste reaches the stope would take most of the test)."""
    from service.simulator import TAG_MAP_PATH

    kept = [
        line
        for line in TAG_MAP_PATH.read_text().splitlines()
        if not line.startswith(("divert_to_dump_sp", "diverted_to_dump_pv"))
    ]
    path = directory / "tags-no-diverter.toml"
    path.write_text("\n".join(kept) + "\n")
    return path


@contextmanager
def simulator_process(port: int, log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m service.simulator`` as the plant's PLC (``extra``: more of its
    options); always ended on exit (and woken first, should a test have frozen it with
    SIGSTOP)."""
    with log.open("wb") as out:
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.simulator",
                "--port",
                str(port),
                "--seed",
                "3",
                *extra,
            ],
            env=service_env({}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield sim
    finally:
        if sim.poll() is None:
            sim.send_signal(signal.SIGCONT)
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait(timeout=10)


async def wait_ready(proc: ServiceProcess, *, within_s: float) -> None:
    """Until GET /readyz answers 200; fails early (with the log) when the process dies."""
    deadline = time.monotonic() + within_s
    last = "no answer yet"
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not proc.alive:
                raise AssertionError(
                    f"the service exited ({proc.popen.returncode}) before it was ready:\n"
                    f"{proc.log_tail()}"
                )
            try:
                r = await client.get("/readyz")
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text}"
            except httpx.TransportError as err:
                last = repr(err)
            await asyncio.sleep(0.1)
    raise AssertionError(
        f"the service was not ready within {within_s:g} s (last: {last}):\n{proc.log_tail()}"
    )


# --- the node-opcua stand-in PLC ----------------------------------------------------------


async def _run(*args: str, cwd: Path, within: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(within):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"timed out after {within} s"
    return proc.returncode or 0, out.decode(errors="replace")


async def install_node_opcua(npm: str, *, within: float = 600.0) -> None:
    """``npm install`` in the PLC's folder when node-opcua is not there yet (one test
    process installs it; the others wait for it)."""
    installed = NODE_PLC_DIR / "node_modules" / ".backfill-installed"
    if installed.is_file():
        return
    async with machine_lock_async("npm-node-opcua"):
        if installed.is_file():
            return
        code, out = await _run(
            npm, "install", "--no-audit", "--no-fund", cwd=NODE_PLC_DIR, within=within
        )
        if code != 0:
            raise AssertionError(f"npm install of node-opcua failed ({code}):\n{out[-3000:]}")
        installed.touch()


@dataclass
class NodePlcProcess:
    process: asyncio.subprocess.Process
    port: int
    ns: int
    lines: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def writes(self, *, within: float = 5.0) -> dict[str, dict[str, int]]:
        """The client writes the PLC accepted: node name -> variant type -> count."""
        await self.command("writes")
        async with asyncio.timeout(within):
            while True:
                line = await self.lines.get()
                if not line:
                    raise AssertionError("the node-opcua PLC ended")
                if line.startswith("WRITES "):
                    result: dict[str, dict[str, int]] = json.loads(line[len("WRITES ") :])
                    return result


async def _pump_lines(stream: asyncio.StreamReader, into: asyncio.Queue[str]) -> None:
    """Read the PLC's stdout all the time, so that its pipe never fills up; an empty
    line marks the end of its output (the process ended)."""
    while line := await stream.readline():
        text = line.decode(errors="replace").strip()
        if text:
            into.put_nowait(text)
    into.put_nowait("")


@asynccontextmanager
async def node_plc(node: str, *, plant: bool, log: Path) -> AsyncIterator[NodePlcProcess]:
    """Start ``node server.js --port <free> [--plant]`` and wait for its READY line."""
    port = free_port()
    args = [node, "server.js", "--port", str(port)]
    if plant:
        args.append("--plant")
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=NODE_PLC_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env={**os.environ, "NODE_ENV": "test"},
        )
    assert process.stdout is not None
    lines: asyncio.Queue[str] = asyncio.Queue()
    reader = asyncio.create_task(_pump_lines(process.stdout, lines))
    try:
        ns: int | None = None
        try:
            async with asyncio.timeout(60):
                while ns is None:
                    line = await lines.get()
                    if not line:
                        raise AssertionError(
                            f"the node-opcua PLC exited before it was ready:\n{_tail(log)}"
                        )
                    if line.startswith("READY"):
                        fields = dict(f.split("=", 1) for f in line.split()[1:])
                        ns = int(fields["ns"])
        except TimeoutError:
            raise AssertionError(
                f"the node-opcua PLC was not ready within 60 s:\n{_tail(log)}"
            ) from None
        yield NodePlcProcess(process, port, ns, lines)
    finally:
        await _end(process)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _end(process: asyncio.subprocess.Process, within: float = 5.0) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    try:
        async with asyncio.timeout(within):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    if process.stdin is not None:
        process.stdin.close()


def json_body(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    return r.json()
