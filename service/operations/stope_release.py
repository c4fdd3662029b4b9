"""The evidence a stage on hold is released on: its cylinders' strength tests from the
lab, else the calibration's estimate at its age, and its barricades' pressure now. The
judgement is the core's (:mod:`service.core.release_conditions`); this module gathers
the evidence from the lab, the stored recipe and calibration, and the plant link.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime

from service.core import release_conditions as RC
from service.core import stope_report as R
from service.core.barricade import is_barricade_tag
from service.core.strength_model import StrengthModel
from service.errors import BackfillError, InvalidInput, NotFound, OutsideCalibrationRange
from service.operations.calibrations import CalibrationCache
from service.operations.lab import LabService
from service.operations.stopes import StopeService, StopeView
from service.store.repository import Store

BarricadeReadings = Callable[[], Mapping[str, tuple[float | None, str]]]


class ReleaseEvidence:
    """:class:`~service.operations.stopes.ReleaseEvidencePort`: the release conditions
    of a stope's stage on hold. ``release_fraction``: the barricade's pressure must read
    below this fraction of its rating; ``pass_fraction``: the share of cylinders the
    calibration's estimate is stated for (the site's design pass fraction)."""

    def __init__(
        self,
        *,
        store: Store,
        lab: LabService,
        stopes: StopeService,
        calibrations: CalibrationCache[StrengthModel],
        barricade_readings: BarricadeReadings,
        release_fraction: float,
        pass_fraction: float,
    ) -> None:
        self._store = store
        self._lab = lab
        self._stopes = stopes
        self._calibrations = calibrations
        self._readings = barricade_readings
        self._release_fraction = release_fraction
        self._pass_fraction = pass_fraction

    async def assess(self, view: StopeView, now: datetime) -> RC.ReleaseAssessment | None:
        progress, plan = view.progress, view.plan
        if progress is None or plan is None:
            return None
        index = progress.current
        stage, state = plan.stages[index], progress.stages[index]
        hold = RC.hold_condition(state.hold_ends_at, now)
        requirement = stage.release_requirement
        strength: RC.ReleaseCondition
        if requirement is None:
            strength = RC.strength_condition(None, (), None)
        else:
            wanted = (requirement.name, requirement.ucs_kpa, requirement.curing_days)
            compliance = await self._lab.stope_compliance(view.record.id)
            stage_id = f"{view.record.name}/{stage.name}"
            tests = [
                t
                for t in compliance.report.tests
                if t.stage_id == stage_id
                and math.isclose(t.required_ucs_kpa, requirement.ucs_kpa, rel_tol=1e-9)
                and math.isclose(t.curing_days, requirement.curing_days, rel_tol=1e-9)
            ]
            estimate, why = (None, "")
            if not tests:
                estimate, why = await self._estimate(view, index, now)
            strength = RC.strength_condition(wanted, tests, estimate, why)
        barricade = RC.barricade_condition(
            self._barricades(view), view.stope.barricade_rating_kpa, self._release_fraction
        )
        return RC.assess_release(
            index, stage.name, now, hold=hold, strength=strength, barricade=barricade
        )

    def _barricades(self, view: StopeView) -> dict[str, tuple[float | None, str]]:
        readings = self._readings()
        tags = view.barricade_tags
        if tags is None:  # a stope stored before barricades belonged to stopes
            tags = tuple(t for t in readings if is_barricade_tag(t))
        return {tag: readings.get(tag, (None, "bad")) for tag in tags}

    async def _estimate(
        self, view: StopeView, index: int, now: datetime
    ) -> tuple[RC.StrengthEstimate | None, str]:
        """The calibration's estimate of the stage's paste at its age now, or why there
        is none."""
        assert view.plan is not None and view.progress is not None
        stage, state = view.plan.stages[index], view.progress.stages[index]
        age = RC.age_days(state.top_reached_at, now)
        if age is None or age <= 0.0:
            return None, "the stage has not reached its top"
        try:
            recipe = await self._store.get_recipe(stage.recipe_id)
        except NotFound:
            return None, f"its recipe {stage.recipe_id} is not stored"
        if recipe.calibration_id is None:
            return None, f"its recipe {recipe.name!r} names no calibration"
        try:
            loaded = await self._calibrations.get(self._store, recipe.calibration_id)
        except NotFound:
            return None, f"calibration {recipe.calibration_id} is not stored"
        mix = recipe.mix
        try:
            blend = {
                str(c["name"]): float(c["fraction_pct"]) / 100.0 for c in mix.get("binder", [])
            }
            solids, binder = float(mix["solids_pct"]), float(mix["binder_pct"])
        except (KeyError, TypeError, ValueError):
            return None, f"recipe {recipe.name!r} does not state its mix"
        basis = "as designed"
        pours = [
            R.StopePour(p.id, index, p.totals)
            for p in await self._stopes.pours(view.record.name)
            if p.stage == index
        ]
        placed = R.figures(pours)
        if placed.solids.average_pct is not None and placed.binder.average_pct is not None:
            solids, binder, basis = (
                placed.solids.average_pct,
                placed.binder.average_pct,
                "as placed",
            )
        try:
            prediction = loaded.model.predict(
                blend, binder / 100.0, solids / 100.0, age, pass_fraction=self._pass_fraction
            )
        except (OutsideCalibrationRange, InvalidInput) as err:
            return None, f"calibration {loaded.name!r}: {err.detail}"
        except BackfillError as err:
            return None, err.detail
        assert prediction.lower_ucs_kpa is not None
        return (
            RC.StrengthEstimate(
                calibration_id=loaded.id,
                calibration=f"{loaded.name} v{loaded.version}",
                age_days=age,
                median_kpa=prediction.ucs_kpa,
                lower_kpa=prediction.lower_ucs_kpa,
                pass_fraction=self._pass_fraction,
                solids_pct=solids,
                binder_pct=binder,
                paste_basis=basis,
            ),
            "",
        )
