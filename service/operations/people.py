"""The people who may act, kept current: the key ring holds the credentials of the
settings (``BACKFILL_API_KEYS``, fixed for the run) and those of the key file
(``BACKFILL_KEY_FILE``), which is read at start and again within seconds of a change.
Removing a person's table from the file revokes their key without a restart (a restart
would pause a running pour); every other key keeps working.

A file that cannot be read or is not a valid key file stops the start; once running,
such a file (an edit half saved, a typo) leaves the people in force as they were and is
logged as an error until it is put right, so that a slip never locks the operators
out mid-pour. The parsing rules are :func:`service.core.people.parse_key_file`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from service.core.people import Credential, KeyRing, parse_key_file
from service.errors import InvalidInput

log = logging.getLogger(__name__)

#: Wall seconds between looks at the key file (a revocation takes effect within it).
CHECK_INTERVAL_S = 2.0

_Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> _Stamp:
    """What changes when the file is written or replaced (a Kubernetes Secret's volume
    swaps a symbolic link: the target's inode changes)."""
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read(path: Path) -> tuple[_Stamp, list[Credential]]:
    stamp = _stamp(path)
    text = path.read_text(encoding="utf-8")
    return stamp, parse_key_file(text)


class KeyFile:
    """The key file's people in ``ring``, beside the settings' ``fixed`` credentials."""

    def __init__(
        self,
        path: Path,
        ring: KeyRing,
        fixed: Sequence[Credential],
        *,
        interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self.path = path
        self._ring = ring
        self._fixed = tuple(fixed)
        self._interval_s = interval_s
        self._stamp: _Stamp | None = None
        self._people: frozenset[str] = frozenset()
        self._failed: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the file (InvalidInput ``key_file_invalid`` or OSError stop the start),
        then watch it."""
        try:
            stamp, credentials = await asyncio.to_thread(_read, self.path)
        except InvalidInput as err:
            raise InvalidInput(
                "key_file", f"key file {self.path}: {err.field}: {err.detail}", code=err.code
            ) from err
        self._take(stamp, credentials)
        self._task = asyncio.create_task(self._watch(), name="key-file")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def check(self) -> bool:
        """Read the file again if it changed; True when the people in force changed."""
        try:
            stamp = await asyncio.to_thread(_stamp, self.path)
            if stamp == self._stamp:
                return False
            stamp, credentials = await asyncio.to_thread(_read, self.path)
        except (OSError, UnicodeDecodeError, InvalidInput) as err:
            why = f"{err.field}: {err.detail}" if isinstance(err, InvalidInput) else str(err)
            if why != self._failed:  # once per problem, not every look
                log.error(
                    "key file %s not taken (%s); the people in force stay as they were",
                    self.path,
                    why,
                )
                self._failed = why
            return False
        try:
            self._take(stamp, credentials)
        except InvalidInput as err:  # a file key that is also a settings key
            if err.detail != self._failed:
                log.error("key file %s not taken (%s)", self.path, err.detail)
                self._failed = err.detail
            return False
        return True

    def _take(self, stamp: _Stamp, credentials: list[Credential]) -> None:
        self._ring.replace([*self._fixed, *credentials])
        people = frozenset(c.person for c in credentials if c.person is not None)
        if self._stamp is None:
            log.info("key file %s: %d keys of %d people", self.path, len(credentials), len(people))
        else:
            added, removed = sorted(people - self._people), sorted(self._people - people)
            log.warning(
                "key file %s read again: %d keys of %d people%s%s",
                self.path,
                len(credentials),
                len(people),
                f"; added {', '.join(added)}" if added else "",
                f"; removed {', '.join(removed)}" if removed else "",
            )
        self._stamp, self._people, self._failed = stamp, people, None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception:  # a loop boundary: record it, keep watching
                log.exception("key file %s could not be checked", self.path)
