"""Whether the plant can make a recipe, where a recipe enters: stored, approved, planned,
poured. The check is :func:`service.core.plant_profile.makeability` on the plant profile
the service knows (:mod:`service.operations.plant_profile`); a recipe the plant cannot
make is refused (422 ``recipe_unmakeable``, naming the field, the limit and the best the
plant reaches) unless an engineer states why it is wanted all the same, and the audit
log keeps that."""

from __future__ import annotations

from typing import Any

from service.core import plant_profile as pp
from service.errors import InvalidInput


def refuse_unmakeable(checked: pp.Makeability, *, reason: str | None, what: str) -> None:
    """Raise the 422 for a mix the plant cannot make, unless ``reason`` is given."""
    if checked.makeable or reason:
        return
    first = checked.broken[0]
    detail = f"{what}: the plant cannot make it: {first.detail}"
    if checked.best_solids_pct is not None:
        detail += f"; the best it reaches at this Bw is {checked.best_solids_pct:.2f} % Cw"
    detail += (
        " (an engineer who wants it all the same states why: `unmakeable_reason`, kept in "
        "the audit log)"
    )
    raise InvalidInput(
        first.field,
        detail,
        code="recipe_unmakeable",
        limit=first.name,
        limit_value=first.value,
        basis=first.basis,
        best_solids_pct=checked.best_solids_pct,
    )


def makeability_view(checked: pp.Makeability) -> dict[str, Any]:
    return checked.to_dict()
