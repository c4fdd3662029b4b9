"""A fill plan checked against what its recipes can do, before it is stored: each stage's
recipe must be one the plant can make (or an engineer states why it is wanted all the
same, kept in the audit log), and must reach each of the stage's strength requirements at
the site's pass fraction, by its recipe's own calibration (a stage asking 2,000 kPa at
7 days of a recipe designed for 100 kPa at 28 is refused, naming both figures)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from service.core import plans as P
from service.core.plant_profile import PlantProfile, makeability
from service.core.strength_model import StrengthModel
from service.errors import BackfillError, InvalidInput
from service.operations.makeable import refuse_unmakeable
from service.store.records import RecipeRecord
from service.store.repository import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DesignBasis:
    """What a requirement is checked at: the pass fraction and, on the tolerance
    basis, the confidence (fractions)."""

    pass_fraction: float
    confidence: float | None

    def statement(self) -> str:
        text = f"{100 * self.pass_fraction:g} % of cylinders"
        return (
            text
            if self.confidence is None
            else f"{text} with {100 * self.confidence:g} % confidence"
        )


@dataclass(frozen=True)
class StageCheck:
    """What was checked of one stage (for the answer): ``unchecked`` says why a
    requirement could not be checked (a recipe with no calibration)."""

    stage: str
    makeable: bool
    unchecked: str | None = None


async def check_plan_recipes(
    stages: Sequence[P.Stage],
    store: Store,
    model_of: Callable[[str], Awaitable[StrengthModel]],
    plant: PlantProfile,
    basis: DesignBasis,
    *,
    unmakeable_reason: str | None,
) -> list[StageCheck]:
    """Refuse (422) a stage whose recipe the plant cannot make (without a reason) or that
    does not reach a requirement; the stages' checks otherwise."""
    out: list[StageCheck] = []
    for i, stage in enumerate(stages):
        recipe = await store.get_recipe(stage.recipe_id)
        checked = makeability(recipe.mix, plant, prefix=f"stages[{i}].recipe.")
        refuse_unmakeable(
            checked,
            reason=unmakeable_reason,
            what=f"stage {stage.name!r}: recipe {recipe.name!r} version {recipe.version}",
        )
        unchecked = None
        if stage.requirements and recipe.calibration_id is None:
            unchecked = (
                f"recipe {recipe.name!r} has no calibration: its strength against the "
                "stage's requirements is the approving engineer's statement"
            )
        elif stage.requirements:
            assert recipe.calibration_id is not None
            model = await model_of(recipe.calibration_id)
            _check_strength(i, stage, recipe, model, basis)
        out.append(StageCheck(stage.name, checked.makeable, unchecked))
    return out


def _check_strength(
    index: int, stage: P.Stage, recipe: RecipeRecord, model: StrengthModel, basis: DesignBasis
) -> None:
    mix = recipe.mix
    blend = {str(c["name"]): float(c["fraction_pct"]) / 100.0 for c in mix["binder"]}
    for j, requirement in enumerate(stage.requirements):
        field = f"stages[{index}].requirements[{j}].ucs_kpa"
        try:
            prediction = model.predict(
                blend,
                float(mix["binder_pct"]) / 100.0,
                float(mix["solids_pct"]) / 100.0,
                requirement.curing_days,
                pass_fraction=basis.pass_fraction,
                confidence=basis.confidence,
            )
        except BackfillError as err:
            raise InvalidInput(
                field,
                f"stage {stage.name!r}: recipe {recipe.name!r} version {recipe.version} cannot "
                f"be checked at {requirement.curing_days:g} days by its calibration: "
                f"{err.detail}",
                code="stage_requirement_unchecked",
            ) from err
        reached = (
            prediction.tolerance_lower_ucs_kpa
            if prediction.tolerance_lower_ucs_kpa is not None
            else prediction.lower_ucs_kpa
        )
        assert reached is not None
        if reached < requirement.ucs_kpa:
            raise InvalidInput(
                field,
                f"stage {stage.name!r} requires {requirement.ucs_kpa:g} kPa at "
                f"{requirement.curing_days:g} days; its recipe {recipe.name!r} version "
                f"{recipe.version} reaches {reached:.0f} kPa there for "
                f"{basis.statement()} (median {prediction.ucs_kpa:.0f} kPa) by its calibration",
                code="stage_requirement_unmet",
                required_ucs_kpa=requirement.ucs_kpa,
                reached_ucs_kpa=reached,
                stage=stage.name,
            )
