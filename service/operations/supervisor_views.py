"""What the supervisor shows without I/O: the active pour, its live record and totals
(newer than the store), the alarms, the instruments, the stuck gauges. The HMI snapshot,
the recorder and the pour views read these; nothing here changes the machine's state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.core import control as law
from service.core import instruments as ins
from service.core import pour_machine as pm
from service.operations.pour_records import PourRecords
from service.store.records import PourRecord


class SupervisorViews:
    _state: pm.MachineState
    _records: PourRecords

    @property
    def active_pour(self) -> pm.PourRun | None:
        return self._state.pour

    @property
    def stop_pending(self) -> bool:
        return self._state.stop_pending is not None

    @property
    def stuck(self) -> frozenset[str]:
        return self._state.stuck.stuck

    @property
    def balance(self) -> ins.BalanceCheck | None:
        return self._state.balance

    def alarms(self) -> list[law.Alarm]:
        return self._state.alarms.annunciated()

    def instruments_view(self) -> dict[str, Any]:
        """Where the binder comes from and whether the flows agree (no I/O)."""
        return ins.instruments_view(self._state.fallback, self._state.balance)

    def last_output(self) -> law.ControlOutput | None:
        return self._state.last_output

    def live_totals(self, pour_id: str) -> law.PourTotals | None:
        """The in-memory totals of the active pour, newer than its last checkpoint."""
        run = self._live(pour_id)
        return None if run is None else run.totals

    def live_record(self, pour_id: str) -> PourRecord | None:
        """The in-memory record of the active pour, or of one whose last change (a
        pause, its end) still waits for the store: newer than what the store holds."""
        run, base = self._live(pour_id), self._records.stored.get(pour_id)
        if run is None or base is None:
            return None
        return replace(
            base,
            state=run.state.value,
            started_at=run.started_at,
            ended_at=run.ended_at,
            interruptions=[dict(i) for i in run.interruptions],
        )

    def _live(self, pour_id: str) -> pm.PourRun | None:
        pour = self._state.pour
        if pour is not None and pour.id == pour_id:
            return pour
        return self._records.queued(pour_id)
