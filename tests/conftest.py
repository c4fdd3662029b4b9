"""Shared test fixtures.

Tests that need an outside program (PostgreSQL, node-opcua, Chromium) call
``need(condition, reason)``: on a laptop without it they skip with the reason; with
BACKFILL_TEST_STRICT=1 (set by .ci/run) every skip is turned into a failure.

``make test`` runs the tests in parallel worker processes (pytest-xdist, ``--dist
loadscope``): every test makes its own database (a SQLite file under its own tmp_path,
or a fresh PostgreSQL database) and takes its servers' ports from its worker's own
block (``tests/ports.py``). The tests of a module run on one worker, in order (many
share a module-wide server: the application of ``tests/integration/conftest.py``, the
browser's service, the container image's podman storage), except the modules spread
test by test (:data:`SPREAD_MODULES`); what the tests install from outside (apt-get,
npm, a download) is installed under a lock held across the machine's test processes
(:func:`machine_lock`).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

STRICT = os.environ.get("BACKFILL_TEST_STRICT") == "1"
PG_ADMIN_DSN = os.environ.get("BACKFILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def need(condition: bool, reason: str) -> None:
    if not condition:
        if STRICT:
            pytest.fail(f"required for CI: {reason}")
        pytest.skip(reason)


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Held by one test process of this machine at a time (every pytest-xdist worker,
    and any other test session): for installing what the tests need from outside."""
    path = Path(tempfile.gettempdir()) / f"backfill-tests-{name}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@asynccontextmanager
async def machine_lock_async(name: str) -> AsyncIterator[None]:
    """:func:`machine_lock` for a coroutine: waits for the lock in a thread."""
    path = Path(tempfile.gettempdir()) / f"backfill-tests-{name}.lock"
    with path.open("a") as handle:
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Modules whose tests are independent of each other and long in all: spread test by
# test over the workers (each worker builds their module-wide application itself).
SPREAD_MODULES = frozenset({"tests/integration/test_schemathesis.py"})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` by module: the tests of a module run on one worker, in
    order, with the module-wide servers and state they share, except the modules of
    :data:`SPREAD_MODULES`, spread test by test; the modules in the order collected
    (``--no-loadscope-reorder``: the long end-to-end modules first). (xdist's
    ``loadgroup`` cannot be used: with pytest 9 its group marks no longer reach the
    scheduler.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
            # Some tests share a node id (schemathesis' bounded cases): loadscope keys
            # its work by node id and would run one of each and drop the rest. The
            # second and later get a suffix here, the same on every worker.
            seen: dict[str, int] = {}
            unique = []
            for nodeid in collection:
                count = seen[nodeid] = seen.get(nodeid, 0) + 1
                unique.append(nodeid if count == 1 else f"{nodeid}#{count}")
            super().add_node_collection(node, unique)

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module in SPREAD_MODULES else module

    return ByModule(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    if not STRICT:
        return
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under BACKFILL_TEST_STRICT=1: {report.longrepr}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}"


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    import asyncpg

    name = f"backfill_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as err:
        need(False, f"PostgreSQL is not reachable at {PG_ADMIN_DSN}: {err}")
        raise
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Run a store test against both backends."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


# --- the application with its lifespan running ---------------------------------------

KEYS = {
    "hmi": "hmi-key-0123456789abcdef",
    "scada": "scada-key-0123456789abcdef",
    "engineer": "engineer-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


def api_keys_setting() -> str:
    return ",".join(f"{role}:{key}" for role, key in KEYS.items())


# The plant the tests' recipes of 74-78 % Cw are made on: a filter cake of 76-80 % solids
# (the contract's example cake is 76 %). Without it, the built-in simulator's feed (72.7-74.6
# % solids) is the plant, and those recipes are refused as unmakeable.
CAKE_PLANT: dict[str, float] = {"feed_solids_min_pct": 76.0, "feed_solids_max_pct": 80.0}


# docs/INTEGRATION.md "POST /recipes/proportion", the example request. Copy it before changing it.
PROPORTION_EXAMPLE: dict[str, Any] = {
    "tailings": {"specific_gravity": 3.05, "moisture_pct": 31.58},
    "binder": [
        {"name": "cement", "specific_gravity": 3.15, "fraction_pct": 20},
        {"name": "slag", "specific_gravity": 2.90, "fraction_pct": 80},
    ],
    "binder_pct": 4.5,
    "solids_pct": 70.0,
    "volume_m3": 1.0,
}
