"""``promtool check metrics`` on what a real ``python -m service`` serves at /metrics
after some traffic: the scrape a plant's Prometheus takes must pass Prometheus's own
linter.

promtool is Debian's (package ``prometheus``). When it is not on the PATH, the test
fetches that package with ``apt-get download`` and unpacks promtool alone into pytest's
cache with ``dpkg-deb``: installing the package would start a Prometheus server. Without
apt-get and dpkg-deb the test skips with the reason (a failure under
BACKFILL_TEST_STRICT=1).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROPORTION_EXAMPLE, api_keys_setting, auth, machine_lock, need
from tests.e2e.procs import free_port, service_process, until, wait_ready

pytestmark = pytest.mark.slow

PACKAGE = "prometheus"
MEMBER = "./usr/bin/promtool"
PROPORTION = PROPORTION_EXAMPLE


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _promtool(cache: Path) -> Path:
    """promtool from the PATH, else from the cache, else Debian's, fetched and unpacked."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    promtool = cache / "promtool"
    if promtool.exists():
        return promtool
    apt, dpkg_deb = shutil.which("apt-get"), shutil.which("dpkg-deb")
    need(
        apt is not None and dpkg_deb is not None,
        "promtool is missing and cannot be fetched here (needs Debian's apt-get and dpkg-deb)",
    )
    assert apt is not None and dpkg_deb is not None
    download = cache / "download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    done = _run([apt, "download", PACKAGE], download)
    if done.returncode != 0 and os.geteuid() == 0:  # the package lists may be missing
        update = _run([apt, "update"], download)
        need(update.returncode == 0, f"apt-get update failed: {update.stderr[-2000:]}")
        done = _run([apt, "download", PACKAGE], download)
    need(done.returncode == 0, f"apt-get download {PACKAGE} failed: {done.stderr[-2000:]}")
    deb = next(download.glob(f"{PACKAGE}_*.deb"))
    with subprocess.Popen([dpkg_deb, "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as unpack:
        assert unpack.stdout is not None
        with tarfile.open(fileobj=unpack.stdout, mode="r|") as archive:
            for member in archive:
                if member.name == MEMBER:
                    source = archive.extractfile(member)
                    assert source is not None
                    partial = cache / "promtool.partial"
                    partial.write_bytes(source.read())
                    partial.chmod(0o755)
                    partial.rename(promtool)
                    break
    shutil.rmtree(download, ignore_errors=True)
    need(promtool.exists(), f"{deb.name} has no {MEMBER}")
    return promtool


def _cache_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("promtool")) if cache is not None else tmp_path


async def _traffic(client: httpx.AsyncClient) -> None:
    """Requests of every kind: answered, refused, not found, a page asset."""
    expected = {
        ("POST", "/api/v1/recipes/proportion", True): 200,
        ("GET", "/api/v1/pours", True): 200,
        ("GET", "/api/v1/pours/no-such-pour", True): 404,
        ("POST", "/api/v1/pours/no-such-pour/start", False): 401,
        ("GET", "/no/such/page", False): 404,
        ("GET", "/healthz", False): 200,
        ("GET", "/", False): 200,
    }
    for (method, path, keyed), status in expected.items():
        r = await client.request(
            method,
            path,
            headers=auth("hmi") if keyed else {},
            json=PROPORTION if method == "POST" and keyed else None,
        )
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text[:300]}"


async def test_promtool_accepts_the_metrics_of_a_running_service(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with machine_lock("apt"):  # apt-get update may run, as another test's install may
        promtool = _promtool(_cache_dir(request, tmp_path))
    env = {
        "BACKFILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}",
        "BACKFILL_API_KEYS": api_keys_setting(),
    }
    log = tmp_path / "service.log"
    with service_process(env=env, cwd=tmp_path, port=free_port(), log=log) as service:
        await wait_ready(service, within_s=60)
        async with httpx.AsyncClient(base_url=service.base_url, timeout=5.0) as client:
            await _traffic(client)

            async def scraped() -> str | None:
                r = await client.get("/metrics")
                assert r.status_code == 200
                assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
                cycled = "\nbackfill_control_cycle_seconds_count 0.0\n" not in r.text
                return r.text if cycled and "\nbackfill_plc_connected 1.0\n" in r.text else None

            text = await until(scraped, within_s=30, what="a control cycle on a connected link")

    (tmp_path / "metrics.txt").write_text(text)
    check = await asyncio.create_subprocess_exec(
        str(promtool),
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    said_bytes, _ = await asyncio.wait_for(check.communicate(text.encode()), timeout=60)
    said = said_bytes.decode(errors="replace")
    print(f"{promtool} check metrics: exit {check.returncode}\n{said}")
    assert check.returncode == 0, said
    assert said.strip() == ""
    # What the scrape holds, from a real server: request series by template, the
    # process collectors.
    assert (
        'backfill_http_requests_total{method="GET",route="/api/v1/pours/{pour_id}",'
        'status="404"} 1.0' in text
    )
    assert (
        'backfill_http_requests_total{method="POST",route="/api/v1/recipes/proportion",'
        'status="200"} 1.0' in text
    )
    assert "no-such-pour" not in text
    assert "\nprocess_resident_memory_bytes " in text
    assert "\nprocess_open_fds " in text
    assert "# TYPE backfill_plc_reconnects_total counter" in text
