"""What the browser tests share: Debian's Chromium (installed with apt-get when missing
and we may), driven with Playwright for Python (its wheel ships the driver, never a
downloaded browser), and the real service under a real uvicorn server in a thread of the
test process (so a test can reach the simulator and the clocks), on its built-in
simulator in accelerated plant time. Screenshots go to ``test-output/``."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

from service.app import create_app
from service.runtime import Runtime
from tests.conftest import machine_lock, need
from tests.e2e.helpers import settings
from tests.ports import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
WAIT_MS = 20_000


def ensure_chromium() -> None:
    """Debian's Chromium, installed with apt-get when it is missing and we may."""
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    need(
        os.geteuid() == 0 and apt is not None,
        f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get)",
    )
    assert apt is not None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get of this machine finishes first
    with machine_lock("apt"):
        for cmd in ([apt, *wait, "update"], [apt, *wait, "install", "-y", "chromium"]):
            if CHROMIUM.exists():
                break
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            need(done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    need(CHROMIUM.exists(), f"apt-get installed chromium but {CHROMIUM} is missing")


class ServiceThread:
    """The real app under a real uvicorn server, in its own thread and event loop."""

    def __init__(self, database_url: str, **extra: Any) -> None:
        s = settings(database_url, history={"flush_interval_s": 1.0}, **extra)
        self.app = create_app(s)
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="backfill-service", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:  # reported by start() and stop()
            self.failure = err

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def start(self, within_s: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + within_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"the service did not start: {self.failure!r}")
            time.sleep(0.05)

    def call(self, coro: Coroutine[Any, Any, Any], within_s: float = 10.0) -> Any:
        """Run ``coro`` on the service's event loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(within_s)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the service did not stop"
        if self.failure is not None:
            raise AssertionError(f"the service failed: {self.failure!r}")


def until(probe: Any, *, within_s: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + within_s
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {within_s:g} s; last: {last!r}")
        time.sleep(interval)


# --- fixtures ------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the module's tests."""
    ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the Python package playwright is not installed (pip install -e .[dev])")
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serving(
    database_url: str, hmi_headers: dict[str, str], **extra: Any
) -> Iterator[ServiceThread]:
    """The service started, its PLC link up (read with ``hmi_headers``), and stopped."""
    svc = ServiceThread(database_url, **extra)
    svc.start()
    try:
        with httpx.Client(base_url=svc.base_url, timeout=10) as client:
            until(
                lambda: client.get("/api/v1/plant/status", headers=hmi_headers).json()["connected"],
                within_s=20,
                what="PLC link",
            )
        yield svc
    finally:
        svc.stop()


def open_page(browser: Browser, service: ServiceThread) -> Page:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(service.base_url + "/")
    return page


def login(page: Page, role: str, key: str) -> None:
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(f"#role[data-role={role}]")


def shot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    page.screenshot(path=str(path), full_page=True)
    return path


def csp_violations(page: Page) -> list[str]:
    """Console messages of the page's Content-Security-Policy refusals, as they come."""
    seen: list[str] = []
    page.on(
        "console",
        lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return seen


def page_errors(page: Page) -> list[str]:
    """Uncaught errors of the page's scripts, as they come."""
    seen: list[str] = []
    page.on("pageerror", lambda err: seen.append(str(err)))
    return seen
