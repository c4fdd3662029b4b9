"""Work a caller may have under way at once, and the service in all: the event streams
and the bulk exports of each API key.

A stream holds a connection and a task for as long as it lasts; an export reads the
store page by page and encodes every page on the event loop the control cycle runs on
(six Parquet exports at once cut the completed control cycles by more than half on the
2-core plant server). So each caller may hold only ``per_key`` of them and the service
``total`` in all; beyond either, the caller is refused at once (429, naming the limit
and its setting) rather than queued behind the others.
"""

from __future__ import annotations

from service.errors import BackfillError


class CallerSlots:
    """Open slots of one kind (``what``: "event streams", "exports") per caller and in
    all; ``error`` is raised, naming the limit and ``settings`` (per key, in all), when
    one is full."""

    def __init__(
        self,
        per_key: int,
        total: int,
        *,
        what: str,
        error: type[BackfillError],
        settings: tuple[str, str],
    ) -> None:
        self.per_key, self.total = per_key, total
        self._what, self._error, self._settings = what, error, settings
        self._open: dict[str, int] = {}

    @property
    def count(self) -> int:
        return sum(self._open.values())

    def acquire(self, caller: str) -> None:
        """Take a slot, or raise the error saying which limit was reached."""
        mine = self._open.get(caller, 0)
        if mine >= self.per_key:
            raise self._error(
                f"this key has {mine} {self._what} open; at most {self.per_key} per key "
                f"({self._settings[0]})",
                limit=self.per_key,
            )
        if self.count >= self.total:
            raise self._error(
                f"the service has {self.total} {self._what} open: its limit ({self._settings[1]})",
                limit=self.total,
            )
        self._open[caller] = mine + 1

    def release(self, caller: str) -> None:
        left = self._open.get(caller, 0) - 1
        if left > 0:
            self._open[caller] = left
        else:
            self._open.pop(caller, None)
