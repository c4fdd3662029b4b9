"""The container image, built from the Dockerfile and run (issue 14).

Podman (Debian's, rootful) builds the unmodified Dockerfile with chroot isolation and
runs the image with runc: root filesystem read-only, every capability dropped, the
image's non-root user, tmpfs where the service writes (/data for its SQLite file and
generated keys, /tmp). The service with its built-in simulator must answer
``/healthz`` on a published loopback port, the image's own HEALTHCHECK must pass,
and SIGTERM must stop it cleanly; the simulator command of the compose file must
serve OPC UA and pass the compose file's TCP check. podman-compose must accept
deploy/compose.yaml (``config``; the stack itself needs postgres:16 from a registry).

No registry is needed. The base image of ``FROM`` is used if present, else pulled,
else made here: Debian bookworm (whose Python is 3.11, as the tag says) by
debootstrap from Debian's mirror, with python3, venv and pip, imported and tagged
with the ``FROM`` name. pip inside the build reaches PyPI; the host's CA bundle is
mounted read-only into the build's RUN steps (a site whose HTTPS goes through an
inspecting proxy needs its CA; nothing of it lands in a layer).

Cached between runs under /var/cache/backfill-image-test (BACKFILL_TEST_IMAGE_CACHE):
podman's storage with the base image and the build's layers, debootstrap's packages
and podman-compose. The build context is staged with fixed timestamps, so a fresh
clone with the same content (and any umask) reuses every layer; a change under service/ rebuilds
only the project's own wheel and the venv (the dependencies' wheels are a layer of
pyproject.toml alone). Storage driver: overlay where the kernel allows it, else vfs
(BACKFILL_TEST_IMAGE_STORAGE=vfs|overlay forces one).

Needs root, apt-get for podman/runc/debootstrap if missing, and pip for
podman-compose; without them the tests skip with the reason (a failure under
BACKFILL_TEST_STRICT=1). Select them with ``-m image``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import machine_lock, need
from tests.ports import free_port

pytestmark = [pytest.mark.image, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "backfill.env.example"
TAG_MAP = ROOT / "service" / "simulator" / "tags.toml"
OUTPUT = ROOT / "test-output"

CACHE = Path(os.environ.get("BACKFILL_TEST_IMAGE_CACHE", "/var/cache/backfill-image-test"))
IMAGE = "localhost/backfill-service:image-test"
LABEL = "org.backfill.image-test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE_UID = 10001
PODMAN_COMPOSE = "podman-compose==1.6.0"

# Files in the staged build context all get this time, so that the layer cache depends
# on content only (podman's COPY cache key includes timestamps).
CONTEXT_MTIME = 946_684_800  # 2000-01-01

# The stand-in for python:3.11-slim when no registry is reachable.
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
BASE_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
BASE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
BASE_RECIPE = hashlib.sha256(
    json.dumps([BASE_SUITE, BASE_MIRROR, BASE_PACKAGES, BASE_SOURCES, BASE_CHANGES, 1]).encode()
).hexdigest()[:16]

BUILD_TIMEOUT_S = 1200
HEALTHY_WITHIN_S = 120


# --- podman -----------------------------------------------------------------------------


@dataclass
class Podman:
    exe: str
    driver: str
    log: Path
    times: dict[str, float] = field(default_factory=dict)

    @property
    def base_args(self) -> list[str]:
        return [
            self.exe,
            "--root",
            str(CACHE / f"storage-{self.driver}"),
            "--runroot",
            f"/run/backfill-image-test/{self.driver}",
            "--storage-driver",
            self.driver,
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: Any = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*self.base_args, *args]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, stdin=stdin
        )
        with self.log.open("a") as out:
            out.write(f"$ podman {shlex.join(args)}\n{done.stdout}{done.stderr}\n")
        if check and done.returncode != 0:
            pytest.fail(
                f"podman {shlex.join(args)} exited {done.returncode}:\n"
                f"{(done.stdout + done.stderr)[-4000:]}"
            )
        return done


def _apt_install(*packages: str) -> None:
    apt = shutil.which("apt-get")
    need(
        os.geteuid() == 0 and apt is not None,
        f"{', '.join(packages)} missing and cannot be installed here (needs root and apt-get)",
    )
    assert apt is not None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get of this machine finishes first
    install = [apt, *wait, "install", "-y", "--no-install-recommends", *packages]
    with machine_lock("apt"):
        for cmd in ([apt, *wait, "update"], install):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            need(done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")


def _ensure_tools() -> str:
    need(os.geteuid() == 0, "the image test runs podman rootful: it needs root")
    wanted = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
    missing = [package for exe, package in wanted.items() if shutil.which(exe) is None]
    if missing:
        _apt_install(*missing)
    podman = shutil.which("podman")
    need(podman is not None, "apt-get installed podman but it is not on PATH")
    assert podman is not None
    return podman


def _storage_driver(exe: str, log: Path) -> str:
    forced = os.environ.get("BACKFILL_TEST_IMAGE_STORAGE")
    candidates = [forced] if forced else ["overlay", "vfs"]
    reasons = []
    for driver in candidates:
        podman = Podman(exe, driver, log)
        done = podman("info", "--format", "{{.Store.GraphDriverName}}", check=False)
        if done.returncode == 0 and done.stdout.strip() == driver:
            return driver
        reasons.append(f"{driver}: {(done.stdout + done.stderr).strip()[-500:]}")
    need(False, "podman cannot use its storage here: " + "; ".join(reasons))
    raise AssertionError("unreachable")


def _limits() -> list[str]:
    """The process limits, no higher than ours: podman's defaults are higher, and raising
    a limit needs CAP_SYS_RESOURCE, which a sandboxed root may not have."""
    args = []
    for name, rlimit, ceiling in (
        ("nofile", resource.RLIMIT_NOFILE, 65536),
        ("nproc", resource.RLIMIT_NPROC, 4096),
    ):
        soft, _hard = resource.getrlimit(rlimit)
        value = ceiling if soft == resource.RLIM_INFINITY else min(soft, ceiling)
        args += ["--ulimit", f"{name}={value}:{value}"]
    return args


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One image test at a time on this machine (they share podman's storage)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- the Dockerfile ---------------------------------------------------------------------


def _instructions() -> list[list[str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        line.split(None, 1)
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


def _stages() -> list[tuple[str, str | None]]:
    """(image, stage name) of every FROM."""
    stages = []
    for keyword, rest in _instructions():
        if keyword.upper() == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append((words[0], name))
    return stages


def _base_images() -> list[str]:
    """The external images of FROM, fully qualified as podman stores them."""
    names = {name for _, name in _stages() if name}
    bases = []
    for image, _ in _stages():
        if image in names or image in bases:
            continue
        bases.append(image)
    qualified = []
    for image in bases:
        first = image.split("/", 1)[0]
        if "/" in image and ("." in first or ":" in first or first == "localhost"):
            qualified.append(image)
        elif "/" in image:
            qualified.append(f"docker.io/{image}")
        else:
            qualified.append(f"docker.io/library/{image}")
    return qualified


def _context_sources() -> list[str]:
    """What the Dockerfile copies from the build context (COPY/ADD without --from)."""
    sources: list[str] = []
    for keyword, rest in _instructions():
        if keyword.upper() not in {"COPY", "ADD"} or "--from" in rest:
            continue
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        sources += words[:-1]
    return sources


def _stage_context(into: Path) -> Path:
    """The build context: the Dockerfile, .dockerignore and what COPY takes, from the
    work tree, with one fixed timestamp and git's modes on every file and folder."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ["Dockerfile", ".dockerignore", *_context_sources()]:
        source = ROOT / name
        assert source.exists(), f"the Dockerfile copies {name}, which is missing"
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=ignore, symlinks=True)
        else:
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    for path in [*into.rglob("*"), into]:
        if not path.is_symlink():
            # As git keeps them: only the executable bit, whatever the checkout's umask.
            executable = path.is_dir() or path.stat().st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)
        os.utime(path, (CONTEXT_MTIME, CONTEXT_MTIME), follow_symlinks=False)
    return into


# --- the base image ---------------------------------------------------------------------


def _make_base(podman: Podman, name: str) -> None:
    """Debian bookworm with its Python 3.11 in place of python:3.11-slim."""
    rootfs = CACHE / "base-rootfs"
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if rootfs.exists():
        shutil.rmtree(rootfs)
    debootstrap = shutil.which("debootstrap")
    assert debootstrap is not None
    cmd = [
        debootstrap,
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        f"--cache-dir={debs}",
        BASE_SUITE,
        str(rootfs),
        BASE_MIRROR,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    with podman.log.open("a") as out:
        out.write(f"$ {shlex.join(cmd)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}\n")
    need(
        done.returncode == 0,
        f"no base image {name}: not pullable, and debootstrap from {BASE_MIRROR} failed: "
        f"{(done.stdout + done.stderr)[-1500:]}",
    )
    try:
        # As the official image: pip usable system-wide, no package lists, no host traces.
        for junk in (
            "usr/lib/python3.11/EXTERNALLY-MANAGED",
            "etc/hostname",
            "etc/resolv.conf",
            "etc/apt/sources.list",
        ):
            (rootfs / junk).unlink(missing_ok=True)
        for cache in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for item in (rootfs / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(BASE_SOURCES)
        changes: list[str] = []
        for change in (*BASE_CHANGES, f"LABEL {LABEL}.base={BASE_RECIPE}"):
            changes += ["--change", change]
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."],
            stdout=subprocess.PIPE,
        )
        try:
            podman("import", *changes, "-", name, stdin=tar.stdout, timeout=600)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            assert tar.wait(timeout=60) == 0
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def _ensure_base(podman: Podman, name: str) -> str:
    """The base image present: 'cached', 'pulled' or 'made'."""
    done = podman(
        "image", "inspect", "--format", f'{{{{index .Labels "{LABEL}.base"}}}}', name, check=False
    )
    if done.returncode == 0 and done.stdout.strip() in {"", BASE_RECIPE}:
        return "cached"  # the real image (no label), or our stand-in of this recipe
    if done.returncode == 0:
        podman("rmi", "--force", name)
    if podman("pull", name, timeout=600, check=False).returncode == 0:
        return "pulled"
    _make_base(podman, name)
    return "made"


# --- fixtures ---------------------------------------------------------------------------


@dataclass
class Built:
    podman: Podman
    image: str
    base: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    OUTPUT.mkdir(exist_ok=True)
    log = OUTPUT / "image-test.log"
    log.write_text("")
    exe = _ensure_tools()
    with _locked():
        podman = Podman(exe, _storage_driver(exe, log), log)
        # Containers a killed run left behind.
        stale = podman("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
        if stale:
            podman("rm", "--force", *stale, check=False)

        started = time.monotonic()
        how = [_ensure_base(podman, base) for base in _base_images()]
        podman.times["base"] = time.monotonic() - started

        started = time.monotonic()
        context = _stage_context(tmp_path_factory.mktemp("image") / "context")
        build = ["build", "--isolation", "chroot", "--format", "docker", "--pull=never"]
        build += ["--layers", "--force-rm", "--file", str(context / "Dockerfile")]
        if CA_BUNDLE.exists():
            build += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
        # Every stage but the last tagged too: its layers (the compiler's, pip's) stay
        # cached and are not pruned as dangling.
        for _, stage in _stages()[:-1]:
            if stage:
                tagged = ["--target", stage, "--tag", f"{IMAGE}-{stage}"]
                podman(*build, *tagged, str(context), timeout=BUILD_TIMEOUT_S)
        podman(*build, "--tag", IMAGE, str(context), timeout=BUILD_TIMEOUT_S)
        podman.times["build"] = time.monotonic() - started
        # Layers of earlier builds that no tag reaches any more.
        podman("image", "prune", "--force", timeout=600, check=False)
        yield Built(podman, IMAGE, "/".join(how))
        with log.open("a") as out:
            out.write(f"times: {json.dumps({k: round(v, 1) for k, v in podman.times.items()})}\n")


def _hardened(name: str) -> list[str]:
    return [
        "run",
        "--detach",
        "--name",
        name,
        "--label",
        f"{LABEL}=1",
        "--runtime",
        "runc",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt",
        "no-new-privileges",
        # The image's HEALTHCHECK is run by hand below: podman would schedule it with
        # systemd timers, and there may be no systemd.
        "--health-interval",
        "disable",
        *_limits(),
    ]


@contextlib.contextmanager
def _container(podman: Podman, *args: str) -> Iterator[str]:
    name = f"backfill-image-test-{uuid.uuid4().hex[:8]}"
    podman(*_hardened(name), *args, timeout=300)
    try:
        yield name
    finally:
        podman("rm", "--force", "--time", "5", name, check=False, timeout=120)


def _running(podman: Podman, name: str) -> bool:
    state = podman("inspect", "--format", "{{.State.Running}}", name, check=False)
    return state.stdout.strip() == "true"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as err:
        return err.code
    except (OSError, urllib.error.URLError):
        return 0


# --- tests ------------------------------------------------------------------------------


def test_image_serves_healthz_read_only_without_capabilities(built: Built) -> None:
    podman = built.podman
    inspect = json.loads(podman("image", "inspect", built.image).stdout)[0]
    assert inspect["Config"]["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert inspect["Healthcheck"]["Test"][0] == "CMD"  # kept: built in docker format
    assert "/healthz" in inspect["Healthcheck"]["Test"][-1]

    port = free_port()
    started = time.monotonic()
    with _container(
        podman,
        "--user",
        f"{IMAGE_UID}:{IMAGE_UID}",
        # Where the service writes: /data (SQLite, generated keys), owned by its user.
        "--tmpfs",
        "/data:rw,mode=0750,U",
        "--tmpfs",
        "/tmp",
        "--publish",
        f"127.0.0.1:{port}:8000",
        built.image,
    ) as name:
        status = 0
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while time.monotonic() < deadline:
            status = _get(f"http://127.0.0.1:{port}/healthz")
            if status == 200 or not _running(podman, name):
                break
            time.sleep(0.5)
        logs = podman("logs", name, check=False)
        assert status == 200, (
            f"/healthz answered {status} after {time.monotonic() - started:.0f} s:\n"
            f"{(logs.stdout + logs.stderr)[-4000:]}"
        )
        podman.times["healthy"] = time.monotonic() - started
        assert _get(f"http://127.0.0.1:{port}/readyz") == 200

        # The image's own HEALTHCHECK, inside the container.
        assert podman("healthcheck", "run", name, check=False).returncode == 0

        state = json.loads(podman("inspect", name).stdout)[0]
        assert state["HostConfig"]["ReadonlyRootfs"] is True
        probe = (
            "import json, os, pathlib\n"
            "status = pathlib.Path('/proc/1/status').read_text().splitlines()\n"
            "fields = dict(line.split(':\\t', 1) for line in status)\n"
            "print(os.getuid(), os.getgid(), fields['CapEff'].strip(), "
            "fields['NoNewPrivs'].strip())\n"
            "for path in ('/opt/venv/probe', '/etc/probe'):\n"
            "    try:\n"
            "        open(path, 'w').close()\n"
            "        print('writable', path)\n"
            "    except OSError as err:\n"
            "        print('refused', path, err.errno)\n"
            "print(json.dumps(sorted(os.listdir('/data'))))\n"
        )
        out = podman("exec", name, "python", "-c", probe).stdout.splitlines()
        assert out[0] == f"{IMAGE_UID} {IMAGE_UID} 0000000000000000 1", out
        assert out[1] == "refused /opt/venv/probe 30", out  # EROFS
        assert out[2] == "refused /etc/probe 30", out
        files = set(json.loads(out[3]))
        assert {"backfill.db", "backfill-dev-keys.txt"} <= files, files

        # SIGTERM: the service stops the plant and exits 0 within its grace.
        stopped = time.monotonic()
        podman("stop", "--time", "30", name, timeout=90)
        exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert exit_code == "0", podman("logs", name, check=False).stderr[-3000:]
        podman.times["stop"] = time.monotonic() - stopped
    podman.times["run"] = time.monotonic() - started
    print(f"\nimage test: base {built.base}, driver {podman.driver}, times {podman.times}")


def test_simulator_command_of_the_compose_file_serves_opc_ua(built: Built) -> None:
    podman = built.podman
    simulator = yaml.safe_load(COMPOSE.read_text())["services"]["simulator"]
    command = [str(word) for word in simulator["command"]]
    container_port = int(command[command.index("--port") + 1])
    check = [str(word) for word in simulator["healthcheck"]["test"]]
    assert check[0] == "CMD"
    port = free_port()
    tmpfs: list[str] = []
    for mount in simulator.get("tmpfs", []):
        tmpfs += ["--tmpfs", mount]
    with _container(
        podman, *tmpfs, "--publish", f"127.0.0.1:{port}:{container_port}", built.image, *command
    ) as name:
        deadline = time.monotonic() + 60
        reached = False
        while time.monotonic() < deadline and not reached:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                    # podman's port forwarder accepts before the server does; a hello
                    # answered proves the OPC UA server behind it.
                    conn.sendall(_opcua_hello(f"opc.tcp://127.0.0.1:{port}"))
                    conn.settimeout(3)
                    reached = conn.recv(8)[:3] == b"ACK"
            except OSError:
                time.sleep(0.5)
        logs = podman("logs", name, check=False)
        assert reached, f"no OPC UA answer in 60 s:\n{(logs.stdout + logs.stderr)[-3000:]}"
        # The compose file's health check, in the container.
        assert podman("exec", name, *check[1:], check=False).returncode == 0


def _opcua_hello(url: str) -> bytes:
    """An OPC UA Hello message (Part 6, 7.1.2.3)."""
    body = (
        b"".join(value.to_bytes(4, "little") for value in (0, 65536, 65536, 0, 0))
        + len(url).to_bytes(4, "little")
        + url.encode()
    )
    return b"HELF" + (8 + len(body)).to_bytes(4, "little") + body


def test_podman_compose_accepts_the_compose_file(tmp_path: Path) -> None:
    """`podman-compose config` reads deploy/compose.yaml (its anchors and merges, env
    file and interpolation) and arrives at the same services."""
    _ensure_tools()
    target = CACHE / PODMAN_COMPOSE.replace("==", "-")
    install = ["--no-warn-script-location", PODMAN_COMPOSE]
    if not (target / "podman_compose.py").exists():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *install],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        need(done.returncode == 0, f"pip install {PODMAN_COMPOSE} failed: {done.stderr[-2000:]}")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(COMPOSE, deploy / "compose.yaml")
    shutil.copy(ENV_EXAMPLE, deploy / "backfill.env")
    (tmp_path / "service" / "simulator").mkdir(parents=True)
    shutil.copy(TAG_MAP, tmp_path / "service" / "simulator" / "tags.toml")
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    env = {**os.environ, "PYTHONPATH": str(target), "POSTGRES_PASSWORD": "compose-config-check"}
    done = subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(deploy / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=deploy,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    resolved = yaml.safe_load(done.stdout)
    source = yaml.safe_load(COMPOSE.read_text())
    assert set(resolved["services"]) == set(source["services"])
    for name in ("service", "simulator"):
        service = resolved["services"][name]
        # The anchors merged: image, build and the hardening.
        assert service["image"] == "backfill-service:0.1.0"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert service["security_opt"] == ["no-new-privileges:true"]
        assert service["build"]["dockerfile"] == "Dockerfile"
    environment = resolved["services"]["service"]["environment"]
    assert environment["BACKFILL_DATABASE_URL"].startswith(
        "postgresql+asyncpg://backfill:compose-config-check@postgres:5432/"
    )
