"""Everything the running service owns, started in order and stopped in reverse."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.auth import KeyRing
from service.metrics import ServiceMetrics
from service.settings import ApiKey, Role, Settings
from service.store.db import create_engine, migrate
from service.store.repository import Store

log = logging.getLogger(__name__)

DEV_KEYS_FILE = "backfill-dev-keys.txt"


def _development_keys(folder: Path) -> list[ApiKey]:
    """With no BACKFILL_API_KEYS the service makes one random key per role for this run
    and writes them to a file readable by the owner only; the keys are never logged."""
    keys = [ApiKey(role=role, key=SecretStr(secrets.token_urlsafe(24))) for role in Role]
    path = folder / DEV_KEYS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# API keys generated for this run (BACKFILL_API_KEYS was not set)\n")
        for k in keys:
            fh.write(f"{k.role.value}:{k.key.get_secret_value()}\n")
    log.warning("BACKFILL_API_KEYS is not set: generated one key per role for this run in %s", path)
    return keys


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        keys = settings.api_keys or _development_keys(Path.cwd())
        self.keys = KeyRing(keys)
        self.metrics = ServiceMetrics()
        self._engine: AsyncEngine | None = None
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the runtime is not started")
        return self._store

    async def start(self) -> None:
        self._engine = create_engine(self.settings.database_url)
        await migrate(self._engine)
        self._store = Store(self._engine)

    async def stop(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._store = None
