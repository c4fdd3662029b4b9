"""One confirmed setpoint set written to the PLC and every attempt audited, in order: the
supervisor's only write to the plant (the pour machine decides the values)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from service.core import pour_machine as pm
from service.core.plant_readings import SetpointValue
from service.errors import PlantLinkDown, PlantLinkError
from service.metrics import ServiceMetrics
from service.operations.pour_records import PourRecords
from service.plant.port import PlantLink

log = logging.getLogger(__name__)


class SetpointWriter:
    def __init__(
        self,
        link: PlantLink,
        records: PourRecords,
        metrics: ServiceMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._link = link
        self._records = records
        self._metrics = metrics
        self._clock = clock

    async def write(
        self, write: pm.Write, old: Mapping[str, SetpointValue], *, raise_on_failure: bool
    ) -> bool:
        """Write the set and audit it beside ``old`` (what the PLC held). A failure is
        counted and audited; it raises for a start or resume (``raise_on_failure``: the
        falling edge as PlantLinkDown), else it is False (a later cycle tries again)."""
        started = time.perf_counter()
        try:
            result = await self._link.write_setpoints(dict(write.values))
        except PlantLinkError as err:
            self._metrics.setpoint_write_failures.inc(code=err.code)
            self._records.audit_write(
                write, old, self._clock(), seq=None, acknowledged=False, detail=str(err)
            )
            if not raise_on_failure:
                log.warning("pour %s: %s write failed (%s)", write.pour_id, write.kind, err.code)
                return False
            if write.kind is pm.WriteKind.EDGE:
                raise PlantLinkDown("could not reset run_request before the start") from err
            raise
        self._metrics.setpoint_write_seconds.observe(time.perf_counter() - started)
        self._records.audit_write(
            write, old, self._clock(), seq=result.seq, acknowledged=result.acknowledged, detail=None
        )
        return True
