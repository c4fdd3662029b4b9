"""The Cw correction control uses: the newest correction an engineer approved, and what
it changes for a pour.

A correction comes from a Cw reconciliation (:mod:`service.operations.reconciliation`):
the lab's Cw of cylinders against the Cw the plant recorded for the same paste names
either the tailings Gs (kind ``tailings_gs``: the recipes' Gs is wrong) or a bias of the
paste density gauge (kind ``density_gauge``: it reads ``density_bias_kg_m3`` high).
Both are stated against the recipes' own tailings Gs (``assumed_tailings_sg``) and the
gauge as read, so one correction never compounds another.

- A ``tailings_gs`` correction is a property of the tailings the reconciled recipes
  assumed: it applies to a recipe whose tailings Gs is that ``assumed_tailings_sg``
  (a recipe already written with another Gs, a corrected one among them, is its own
  statement of the tailings and is left alone). A ``density_gauge`` correction is a
  property of the plant's gauge: it applies to every recipe.
- When a pour starts (:func:`service.operations.pours.start_pour`) the correction that
  applies to its recipe is written on the pour (``pours.correction``, the shape of
  :meth:`Correction.to_pour`), so the record says what control ran on, a restart
  resumes on the same one, and a later approval never changes a pour under way.
- Control applies it with :func:`controlled_mix` (the recipe's tailings Gs replaced by
  the corrected one, before ``control_recipe``) and :func:`corrected_density_kg_m3`
  (the bias taken off the paste density reading).
- Records are never rewritten: past pours show their Cw reconciled beside the one they
  were controlled on (:mod:`service.operations.reconciled`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from service.core.reconcile import CwCorrection
from service.store.corrections import CorrectionStore
from service.store.records import CorrectionRecord, PourRecord
from service.store.repository import Store

CorrectionKind = Literal["tailings_gs", "density_gauge"]
# Two Gs values closer than this are the same statement of the tailings (a Gs is given
# to three or four digits; a float round trip through JSON must not split them).
_SAME_GS = 1.0e-6


@dataclass(frozen=True)
class Correction:
    """An approved correction (see the module docstring); ``low`` / ``high`` the
    interval of the corrected quantity at the reconciliation's confidence."""

    id: str
    kind: CorrectionKind
    tailings_sg: float | None
    density_bias_kg_m3: float | None
    assumed_tailings_sg: float
    low: float | None
    high: float | None
    approved_by: str | None
    approved_at: datetime | None

    @classmethod
    def of_record(cls, record: CorrectionRecord) -> Correction:
        if record.kind not in ("tailings_gs", "density_gauge"):
            raise ValueError(f"correction {record.id} has no kind")
        proposal = record.reconciliation.get("proposal") or {}
        kind: CorrectionKind = "tailings_gs" if record.kind == "tailings_gs" else "density_gauge"
        return cls(
            id=record.id,
            kind=kind,
            tailings_sg=record.tailings_sg,
            density_bias_kg_m3=record.density_bias_kg_m3,
            assumed_tailings_sg=record.assumed_tailings_sg,
            low=_float(proposal.get("low")),
            high=_float(proposal.get("high")),
            approved_by=record.approved_by,
            approved_at=record.approved_at,
        )

    def to_pour(self) -> dict[str, Any]:
        """The shape written on a pour (``pours.correction``) and read by control:
        ``id``, ``kind``, ``tailings_sg`` (the corrected tailings Gs, for
        ``tailings_gs``), ``density_bias_kg_m3`` (the gauge reads this much high, for
        ``density_gauge``), ``assumed_tailings_sg``, ``low``, ``high``,
        ``approved_by``, ``approved_at`` (ISO 8601)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "tailings_sg": self.tailings_sg,
            "density_bias_kg_m3": self.density_bias_kg_m3,
            "assumed_tailings_sg": self.assumed_tailings_sg,
            "low": self.low,
            "high": self.high,
            "approved_by": self.approved_by,
            "approved_at": None if self.approved_at is None else self.approved_at.isoformat(),
        }

    @classmethod
    def from_pour(cls, data: Mapping[str, Any]) -> Correction:
        kind: CorrectionKind = (
            "tailings_gs" if data.get("kind") == "tailings_gs" else "density_gauge"
        )
        approved = data.get("approved_at")
        return cls(
            id=str(data["id"]),
            kind=kind,
            tailings_sg=_float(data.get("tailings_sg")),
            density_bias_kg_m3=_float(data.get("density_bias_kg_m3")),
            assumed_tailings_sg=float(data["assumed_tailings_sg"]),
            low=_float(data.get("low")),
            high=_float(data.get("high")),
            approved_by=data.get("approved_by"),
            approved_at=None if approved is None else datetime.fromisoformat(str(approved)),
        )

    def core(self) -> CwCorrection:
        """The core's correction (:mod:`service.core.reconcile`)."""
        return CwCorrection(
            self.kind,
            tailings_sg=self.tailings_sg,
            density_bias_kg_m3=self.density_bias_kg_m3,
            low=self.low,
            high=self.high,
        )

    def applies_to(self, mix: Mapping[str, Any]) -> bool:
        """A gauge correction applies to every recipe; a Gs correction to a recipe that
        assumes the tailings Gs the reconciliation found wrong."""
        if self.kind == "density_gauge":
            return True
        gs = recipe_tailings_sg(mix)
        return gs is not None and abs(gs - self.assumed_tailings_sg) <= _SAME_GS


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def recipe_tailings_sg(mix: Mapping[str, Any]) -> float | None:
    tailings = mix.get("tailings")
    if not isinstance(tailings, Mapping):
        return None
    return _float(tailings.get("specific_gravity"))


async def active_correction(store: Store) -> Correction | None:
    """The correction control uses from now on: the newest one an engineer approved
    (None when none is)."""
    record = await CorrectionStore(store).active()
    return None if record is None else Correction.of_record(record)


async def correction_in_force(store: Store, mix: Mapping[str, Any]) -> Correction | None:
    """The correction a pour of ``mix`` starts on now: the newest approved one, when it
    applies to the mix (None otherwise)."""
    return correction_for(mix, await active_correction(store))


def correction_for(mix: Mapping[str, Any], correction: Correction | None) -> Correction | None:
    """``correction`` when it applies to a recipe of ``mix``, else None."""
    if correction is None or not correction.applies_to(mix):
        return None
    return correction


def pour_correction(record: PourRecord) -> Correction | None:
    """The correction a pour was started under (None: the recipe's Gs, the gauge as read)."""
    return None if record.correction is None else Correction.from_pour(record.correction)


def controlled_mix(mix: Mapping[str, Any], correction: Correction | None) -> dict[str, Any]:
    """The mix control runs: a copy of the recipe's, with the tailings Gs replaced by a
    ``tailings_gs`` correction's; unchanged for a gauge correction or none."""
    out = copy.deepcopy(dict(mix))
    if correction is not None and correction.kind == "tailings_gs":
        assert correction.tailings_sg is not None  # a Gs correction carries its Gs
        out["tailings"] = {**out["tailings"], "specific_gravity": correction.tailings_sg}
    return out


def corrected_density_kg_m3(reading_kg_m3: float, correction: Correction | None) -> float:
    """The paste density with a ``density_gauge`` correction's bias taken off (the
    gauge reads ``density_bias_kg_m3`` high); the reading itself otherwise."""
    if correction is None or correction.kind != "density_gauge":
        return reading_kg_m3
    assert correction.density_bias_kg_m3 is not None
    return reading_kg_m3 - correction.density_bias_kg_m3


@dataclass(frozen=True)
class Paste:
    """What the Cw of a recipe's paste rests on: Bw (binder / dry tailings, 0-1), the
    blended binder's Gs, 1/Gs_b = sum(f_i/Gs_i) (mass-fraction harmonic mean: the volumes
    of the components add, Belem & Benzaazoua 2008), the tailings Gs and the target Cw
    (0-1)."""

    binder_ratio: float
    binder_sg: float
    tailings_sg: float
    solids_fraction: float


def paste_of(mix: Mapping[str, Any]) -> Paste | str:
    """The :class:`Paste` of a stored mix, or why the reconciliation cannot use it (a
    mix with aggregate: its solids are not tailings and binder alone)."""
    if mix.get("aggregate"):
        return "the mix has aggregate: the Cw reconciliation covers tailings and binder only"
    tailings_sg = recipe_tailings_sg(mix)
    binder_pct = _float(mix.get("binder_pct"))
    solids_pct = _float(mix.get("solids_pct"))
    inverse = 0.0
    for comp in mix.get("binder") or []:
        fraction = _float(comp.get("fraction_pct")) if isinstance(comp, Mapping) else None
        sg = _float(comp.get("specific_gravity")) if isinstance(comp, Mapping) else None
        if fraction is None or sg is None or sg <= 1.0:
            return "the mix's binder blend is incomplete"
        inverse += fraction / 100.0 / sg
    if tailings_sg is None or tailings_sg <= 1.0 or inverse <= 0.0:
        return "the mix has no tailings or binder Gs"
    if binder_pct is None or binder_pct <= 0.0 or solids_pct is None:
        return "the mix has no Bw or Cw"
    if not 0.0 < solids_pct < 100.0:
        return "the mix's Cw is not a percentage"
    return Paste(binder_pct / 100.0, 1.0 / inverse, tailings_sg, solids_pct / 100.0)


# A lab reconciliation verifies a recipe's tailings Gs when its interval of the Gs holds
# the recipe's and is no wider than this either side (3 % of Gs moves Cw by about a point).
_VERIFIES_WITHIN = 0.02


async def gs_verification(
    store: Store, mix: Mapping[str, Any], correction: Correction | None
) -> tuple[bool, str]:
    """Whether the lab has verified the tailings Gs a pour's Cw rests on, and how: a
    tailings Gs correction the pour runs on, or a reconciliation of this Gs whose
    interval holds it within 2 %. Until then the pour's Cw is unverified: every gauge
    agrees with a wrong Gs, only the lab's Cw sees it."""
    if correction is not None and correction.kind == "tailings_gs":
        return True, f"the approved Gs correction {correction.id} (Gs {correction.tailings_sg:g})"
    gs = recipe_tailings_sg(mix)
    if gs is None:
        return False, "the recipe states no tailings Gs"
    for record in await CorrectionStore(store).recent(limit=50):
        if abs(record.assumed_tailings_sg - gs) > _SAME_GS:
            continue
        estimate = record.reconciliation.get("tailings_sg") or {}
        low, high = _float(estimate.get("low")), _float(estimate.get("high"))
        if low is None or high is None:
            continue
        if low <= gs <= high and (high - low) / 2.0 <= _VERIFIES_WITHIN * gs:
            return True, (
                f"the lab's reconciliation {record.id} (Gs {low:.3f}-{high:.3f} holds {gs:g})"
            )
    return False, f"no lab reconciliation has verified the tailings Gs {gs:g} yet"
