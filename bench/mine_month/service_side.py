"""The service as the month meets it: ``create_app`` with its lifespan, in this process,
spoken to over HTTP through ``httpx.ASGITransport`` (every design, recipe, pour, cast, lab
sheet, proposal and approval goes through the API, as the mine's people and systems
would send them), on a clock that reads plant time.

The clock: cylinders cure for weeks, and the lab loop judges results by the wall clock
(a 28-day result is refused before its age). The month runs its plant time far faster
than the wall clock, so the whole process reads the twin's plant clock instead
(``time_machine``: ``datetime.now`` and ``time.time`` moved, ``time.monotonic`` left
alone, so asyncio's timers are untouched): a cast, a result, a pour record and a design
are each stamped at the plant time they happen.

One thing reaches the service other than over HTTP, as the running service itself
stores it, because the API has no way for it: the pour's record. The pours run on the
pure pour machine in-process (not through the service's OPC UA link and supervisor), so
the record the machine keeps is stored with the supervisor's own function
(``pour_records.record_fields`` into ``Store.update_pour``), at each cast and at the
end. Requirements, designs, recipes, casts, lab results, recalibration and compliance
are all the API's.

:class:`Recorder` keeps every request body and every record handed to the store, for the
test that the twin's truth never reaches the service except as lab results and plant
measurements.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import time_machine

from service.app import create_app
from service.core import pour_machine as pm
from service.operations.pour_records import record_fields
from service.settings import Settings
from service.simulator import TAG_MAP_PATH

KEYS = {
    "engineer": "month-engineer-0123456789",
    "scada": "month-scada-0123456789ab",
    "lab": "month-lab-0123456789abcd",
    "hmi": "month-hmi-0123456789abcd",
}


@dataclass
class Recorder:
    """Every request (method, path, body text) and every pour record stored."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)
    records: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [body for _m, _p, body in self.requests] + self.records


class _RecordingTransport(httpx.ASGITransport):
    def __init__(self, app: Any, recorder: Recorder) -> None:
        super().__init__(app=app)
        self._recorder = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = (await request.aread()).decode("utf-8")
        self._recorder.requests.append((request.method, request.url.path, body))
        return await super().handle_async_request(request)


def _closed_port() -> int:
    """A loopback port nothing listens on: the service's PLC link tries it and waits."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class SiteStatement:
    """What the site tells the service about its plant (settings): the Gs its recipes
    assume, the feed's stated solids band, the Cw window the plant holds."""

    tailings_sg: float = 2.8
    feed_solids_min_pct: float = 72.0
    feed_solids_max_pct: float = 78.0
    cw_min_pct: float = 64.0
    cw_max_pct: float = 76.0


def settings_for(folder: Path, site: SiteStatement) -> Settings:
    keys = ",".join(f"{role}:{key}" for role, key in KEYS.items())
    return Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'backfill.db'}",
        api_keys=keys,
        api={"write_rate_per_s": 10_000.0, "write_burst": 100_000},
        plc={"endpoint": f"opc.tcp://127.0.0.1:{_closed_port()}", "tag_map": TAG_MAP_PATH,
             "reconnect_min_s": 30.0, "reconnect_max_s": 60.0, "allow_insecure": True},
        plant={
            "tailings_sg": site.tailings_sg,
            "feed_solids_min_pct": site.feed_solids_min_pct,
            "feed_solids_max_pct": site.feed_solids_max_pct,
            "cw_min_pct": site.cw_min_pct,
            "cw_max_pct": site.cw_max_pct,
        },
    )  # fmt: skip


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:600]}")
        self.status = status
        self.body = body


class Service:
    """The running service, its clock, and the calls the month makes."""

    def __init__(self, client: httpx.AsyncClient, app: Any, clock: Any, recorder: Recorder):
        self.client = client
        self.app = app
        self._clock = clock
        self.recorder = recorder
        self.calls = 0

    def at(self, when: datetime) -> None:
        """Move the process's clock to plant time ``when``."""
        self._clock.move_to(when)

    async def call(self, method: str, path: str, role: str, body: Any = None) -> Any:
        self.calls += 1
        r = await self.client.request(
            method,
            f"/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {KEYS[role]}"},
        )
        if r.status_code >= 300:
            raise ApiError(r.status_code, r.text)
        return r.json()

    async def store_record(self, run: pm.PourRun) -> None:
        """The pour machine's record, stored as the supervisor's store writer stores it."""
        fields = record_fields(run)
        self.recorder.records.append(json.dumps(fields, default=str))
        await self.app.state.runtime.store.update_pour(run.id, **fields)


@asynccontextmanager
async def running_service(
    folder: Path, site: SiteStatement, start: datetime
) -> AsyncIterator[Service]:
    """The service with its lifespan running, its clock at ``start`` (plant time)."""
    for name in ("service.plant.opcua", "asyncua", "service.operations.supervisor"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    recorder = Recorder()
    with time_machine.travel(start, tick=False) as clock:
        app = create_app(settings_for(folder, site))
        async with app.router.lifespan_context(app):
            transport = _RecordingTransport(app, recorder)
            async with httpx.AsyncClient(transport=transport, base_url="http://month") as client:
                yield Service(client, app, clock, recorder)
