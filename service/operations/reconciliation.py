"""Gs and Cw reconciliation: the lab's Cw of cylinders against the Cw the plant recorded
for the same paste, at cast, names the tailings Gs (or a paste density gauge bias) with
its uncertainty; the service proposes the correction, an engineer approves it.

For each sample the reconciliation takes (the estimate itself is the pure
:func:`service.core.reconcile.reconcile_gs`):

- the lab's Cw, dry mass / wet mass of the sample's mass result (ASTM D2216-19; the
  entry of the youngest age when there are several). Masses of fresh paste (dried at
  once) are the paste's Cw; masses of a cured cylinder read high by the water the
  binder has bound, Cw = Cw_lab / (1 + w_n alpha Bw/(1 + Bw)) (Powers & Brownyard
  1946-47, :func:`service.core.lab.bound_water_corrected_solids_fraction`), so the
  caller says which (``masses_of``) and, for cured cylinders, the degree of hydration;
- the paste density the plant's gauge read at the cast (the history's
  ``paste_density_pv``, averaged over +-``cast_window_s`` around the cast time the lab
  recorded, else the sample's), and the Bw, binder Gs and tailings Gs of the pour's
  recipe: the Cw the plant recorded is the slurry relation (Wills & Finch 2016, ch. 3;
  :mod:`service.core.reconcile`) at that density and Gs;
- the bulk density of a fresh-paste mass result, when the lab gave one, as the lab's
  density of the paste (it tells a gauge bias from a Gs error).

Every sample must share one assumed tailings Gs (one tailings source at a time): name it
(``tailings_sg``) when the samples' recipes differ. A sample that cannot be used is
listed with why (no mass result, no density recorded at the cast, a mix with aggregate).
The reconciliation is stored whatever it finds: ``proposed`` with a correction to
approve, or ``none`` when the lab Cw shows no error (or too few samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from service.core.lab import bound_water_corrected_solids_fraction
from service.core.people import Actor
from service.core.reconcile import (
    Estimate,
    GsReconciliation,
    PasteSample,
    is_paste_density,
    reconcile_gs,
)
from service.errors import InvalidInput, NotFound
from service.operations.corrections import (
    Correction,
    Paste,
    active_correction,
    paste_of,
)
from service.operations.lab import current_entries, nominal_days
from service.store.corrections import STATUS_NONE, STATUS_PROPOSED, CorrectionStore
from service.store.history import HistoryStore
from service.store.lab import LabStore
from service.store.records import CorrectionRecord, LabResultRecord, RecipeRecord, SampleRecord
from service.store.repository import Store

MassesOf = Literal["fresh_paste", "cured_cylinder"]
DENSITY_TAG = "paste_density_pv"
MAX_SAMPLES = 2000
_SAME_GS = 1.0e-6


@dataclass(frozen=True)
class ReconciliationRequest:
    """Which samples and how to read them (see the module docstring). ``sample_ids``
    None: every sample cast in [``cast_from``, ``cast_to``) (either open)."""

    sample_ids: Sequence[str] | None = None
    cast_from: datetime | None = None
    cast_to: datetime | None = None
    tailings_sg: float | None = None
    masses_of: MassesOf = "fresh_paste"
    degree_of_hydration: float | None = None
    non_evaporable_water_ratio: float = 0.23
    cast_window_s: float = 60.0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.masses_of == "cured_cylinder" and self.degree_of_hydration is None:
            raise InvalidInput(
                "degree_of_hydration",
                "masses of cured cylinders read high by the water the binder bound: give "
                "the binder's degree_of_hydration at the test age (0-1)",
            )
        if self.masses_of == "fresh_paste" and self.degree_of_hydration is not None:
            raise InvalidInput(
                "degree_of_hydration",
                "fresh paste has bound no water: degree_of_hydration is for cured cylinders",
            )
        if (
            self.cast_from is not None
            and self.cast_to is not None
            and not self.cast_from < self.cast_to
        ):
            raise InvalidInput("cast_to", "cast_to must be after cast_from")


@dataclass(frozen=True)
class Candidate:
    """A sample as the reconciliation reads it."""

    sample: SampleRecord
    entry: LabResultRecord
    cast_at: datetime
    paste: Paste
    lab_solids_fraction: float
    measured_solids_fraction: float
    gauge_density_kg_m3: float
    lab_density_kg_m3: float | None


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _estimate(estimate: Estimate | None, scale: float = 1.0) -> dict[str, Any] | None:
    if estimate is None:
        return None

    def scaled(value: float | None) -> float | None:
        return None if value is None else value * scale

    return {
        "value": estimate.value * scale,
        "n": estimate.n,
        "standard_error": scaled(estimate.standard_error),
        "low": scaled(estimate.low),
        "high": scaled(estimate.high),
        "sample_sd": scaled(estimate.sample_sd),
    }


class ReconciliationService:
    """Proposes corrections from the lab's Cw, approves them (module docstring)."""

    def __init__(self, *, store: Store, history: HistoryStore) -> None:
        self._store = store
        self._lab = LabStore(store.engine)
        self._history = history
        self.corrections = CorrectionStore(store)

    async def propose(self, request: ReconciliationRequest, *, by: str) -> CorrectionRecord:
        """Reconcile the requested samples and store the result (``proposed`` with a
        correction, or ``none``). 422 naming the field when no sample can be used or the
        samples assume different tailings Gs."""
        samples = await self._samples(request)
        skipped: list[dict[str, str]] = []
        candidates = await self._candidates(samples, request, skipped)
        if request.tailings_sg is not None:
            kept = []
            for c in candidates:
                if abs(c.paste.tailings_sg - request.tailings_sg) <= _SAME_GS:
                    kept.append(c)
                else:
                    skipped.append(
                        {
                            "sample_id": c.sample.id,
                            "reason": f"its recipe assumes tailings Gs {c.paste.tailings_sg:g}, "
                            f"not {request.tailings_sg:g}",
                        }
                    )
            candidates = kept
        if not candidates:
            reasons = "; ".join(f"{s['sample_id']}: {s['reason']}" for s in skipped[:5])
            raise InvalidInput(
                "sample_ids",
                "no sample can be reconciled: one needs a result with its wet and dry "
                "masses and the paste density recorded at its cast"
                + (f" ({reasons})" if reasons else ""),
                skipped=skipped,
            )
        assumed = sorted({c.paste.tailings_sg for c in candidates})
        if assumed[-1] - assumed[0] > _SAME_GS:
            raise InvalidInput(
                "tailings_sg",
                "the samples' recipes assume different tailings Gs ("
                + ", ".join(f"{g:g}" for g in assumed)
                + "): reconcile one tailings source at a time, naming its Gs",
            )
        pastes = [
            PasteSample(
                sample_id=c.sample.id,
                lab_solids_fraction=c.lab_solids_fraction,
                gauge_density_kg_m3=c.gauge_density_kg_m3,
                binder_ratio=c.paste.binder_ratio,
                binder_sg=c.paste.binder_sg,
                tailings_sg=c.paste.tailings_sg,
                lab_density_kg_m3=c.lab_density_kg_m3,
            )
            for c in candidates
        ]
        try:
            result = reconcile_gs(pastes, confidence=request.confidence)
        except InvalidInput as err:
            # The core names samples[i]; its message names the sample.
            raise InvalidInput("sample_ids", err.detail) from err
        active = await active_correction(self._store)
        body = self._body(result, candidates, skipped, request, active)
        proposal = result.proposal
        return await self.corrections.add(
            status=STATUS_PROPOSED if proposal is not None else STATUS_NONE,
            verdict=result.verdict,
            kind=None if proposal is None else proposal.kind,
            tailings_sg=None if proposal is None else proposal.tailings_sg,
            density_bias_kg_m3=None if proposal is None else proposal.density_bias_kg_m3,
            assumed_tailings_sg=result.assumed_tailings_sg,
            reconciliation=body,
            sample_ids=[c.sample.id for c in candidates],
            created_by=by,
        )

    async def approve(
        self, correction_id: str, *, approved_by: str, actor: Actor
    ) -> CorrectionRecord:
        return await self.corrections.approve(correction_id, approved_by=approved_by, actor=actor)

    # --- gathering ----------------------------------------------------------------------

    async def _samples(self, request: ReconciliationRequest) -> list[SampleRecord]:
        if request.sample_ids is not None:
            wanted = list(dict.fromkeys(request.sample_ids))
            found = await self._lab.samples(wanted)
            missing = [s for s in wanted if s not in found]
            if missing:
                raise InvalidInput(
                    "sample_ids", f"no pour cast sample(s) {', '.join(missing[:10])}"
                )
            return [found[s] for s in wanted]
        out = [
            s
            for s in await self._lab.all_samples()
            if (request.cast_from is None or s.cast_at >= request.cast_from)
            and (request.cast_to is None or s.cast_at < request.cast_to)
        ]
        if len(out) > MAX_SAMPLES:
            raise InvalidInput(
                "cast_from",
                f"{len(out)} samples were cast in that span; at most {MAX_SAMPLES} at once",
            )
        return out

    async def _candidates(
        self,
        samples: Sequence[SampleRecord],
        request: ReconciliationRequest,
        skipped: list[dict[str, str]],
    ) -> list[Candidate]:
        entries = current_entries(await self._lab.results_of(s.id for s in samples))
        recipes: dict[str, RecipeRecord | None] = {}
        recipe_of_pour: dict[str, str] = {}
        out: list[Candidate] = []
        for sample in samples:
            masses = [
                e
                for e in entries
                if e.sample_id == sample.id
                and e.wet_mass_g is not None
                and e.dry_mass_g is not None
            ]
            if not masses:
                skipped.append({"sample_id": sample.id, "reason": "no result with its masses"})
                continue
            entry = min(masses, key=lambda e: (nominal_days(e, sample) or 0.0, e.entered_at))
            if sample.pour_id not in recipe_of_pour:
                pour = await self._store.get_pour(sample.pour_id)
                recipe_of_pour[sample.pour_id] = pour.recipe_id
            recipe_id = recipe_of_pour[sample.pour_id]
            if recipe_id not in recipes:
                try:
                    recipes[recipe_id] = await self._store.get_recipe(recipe_id)
                except NotFound:
                    recipes[recipe_id] = None
            recipe = recipes[recipe_id]
            paste = paste_of(recipe.mix) if recipe is not None else "its pour's recipe is gone"
            if isinstance(paste, str):
                skipped.append({"sample_id": sample.id, "reason": paste})
                continue
            cast_at = entry.cast_at or sample.cast_at
            density = await self._density_at(cast_at, request.cast_window_s)
            if density is None:
                skipped.append(
                    {
                        "sample_id": sample.id,
                        "reason": f"no paste density recorded within {request.cast_window_s:g} "
                        f"s of its cast ({cast_at.isoformat()})",
                    }
                )
                continue
            if not is_paste_density(density):
                skipped.append(
                    {
                        "sample_id": sample.id,
                        "reason": f"the paste density gauge read {density:.0f} kg/m3 around "
                        f"its cast ({cast_at.isoformat()}): water or no paste, not a paste "
                        "reading",
                    }
                )
                continue
            assert entry.wet_mass_g is not None and entry.dry_mass_g is not None
            measured = entry.dry_mass_g / entry.wet_mass_g
            lab_cw = measured
            lab_density = None
            if request.masses_of == "cured_cylinder":
                assert request.degree_of_hydration is not None
                lab_cw = bound_water_corrected_solids_fraction(
                    measured,
                    paste.binder_ratio,
                    request.degree_of_hydration,
                    request.non_evaporable_water_ratio,
                )
            else:
                lab_density = entry.bulk_density_kg_m3
            out.append(
                Candidate(sample, entry, cast_at, paste, lab_cw, measured, density, lab_density)
            )
        return out

    async def _density_at(self, at: datetime, window_s: float) -> float | None:
        """The mean paste density the history holds within +-``window_s`` of ``at``:
        the raw rows, else (pruned) the minute averages around it."""
        window = timedelta(seconds=window_s)
        lo = int((at - window).timestamp() * 1000)
        hi = int((at + window).timestamp() * 1000) + 1
        for step, lo_ms, hi_ms in ((1, lo, hi), (60, lo - 60_000, hi + 60_000)):
            trend = await self._history.query([DENSITY_TAG], lo_ms, hi_ms, step)
            values = [
                v
                for v in trend.series[DENSITY_TAG]["avg"]
                if v is not None and math.isfinite(v) and v > 0.0
            ]
            if values:
                return sum(values) / len(values)
        return None

    # --- the stored body ----------------------------------------------------------------

    @staticmethod
    def _body(
        result: GsReconciliation,
        candidates: Sequence[Candidate],
        skipped: Sequence[dict[str, str]],
        request: ReconciliationRequest,
        active: Correction | None,
    ) -> dict[str, Any]:
        proposal = result.proposal
        active_within = None
        if active is not None:
            gs = active.kind == "tailings_gs"
            estimate = result.tailings_sg if gs else result.density_bias
            value = active.tailings_sg if gs else active.density_bias_kg_m3
            if value is not None and estimate.low is not None and estimate.high is not None:
                active_within = estimate.low <= value <= estimate.high
        by_id = {e.sample_id: e for e in result.samples}
        return {
            "verdict": result.verdict,
            "explanation": result.explanation,
            "confidence_pct": 100.0 * request.confidence,
            "assumed_tailings_sg": result.assumed_tailings_sg,
            "tailings_sg": _estimate(result.tailings_sg),
            "tailings_sg_error_pct": result.tailings_sg_error_pct,
            "density_bias_kg_m3": _estimate(result.density_bias),
            "direct_density_bias_kg_m3": _estimate(result.direct_density_bias),
            "mean_solids_error_pct": 100.0 * result.mean_solids_error,
            "residual_sd_gs_pct": _pct(result.residual_sd_gs),
            "residual_sd_bias_pct": _pct(result.residual_sd_bias),
            "gs_weight": result.gs_weight,
            "proposal": None if proposal is None else proposal.to_dict(),
            "samples_needed": result.samples_needed,
            "detect_relative_gs_error_pct": 100.0 * result.detect_relative_gs_error,
            "masses_of": request.masses_of,
            "degree_of_hydration": request.degree_of_hydration,
            "non_evaporable_water_ratio": request.non_evaporable_water_ratio,
            "cast_window_s": request.cast_window_s,
            "active_correction_id": None if active is None else active.id,
            "active_within_interval": active_within,
            "samples": [
                {
                    "sample_id": c.sample.id,
                    "pour_id": c.sample.pour_id,
                    "result_id": c.entry.id,
                    "cast_at": c.cast_at.isoformat(),
                    "lab_solids_pct": 100.0 * c.lab_solids_fraction,
                    "measured_solids_pct": 100.0 * c.measured_solids_fraction,
                    "recorded_solids_pct": 100.0 * by_id[c.sample.id].recorded_solids_fraction,
                    "gauge_density_kg_m3": c.gauge_density_kg_m3,
                    "lab_density_kg_m3": c.lab_density_kg_m3,
                    "tailings_sg": by_id[c.sample.id].tailings_sg,
                    "density_bias_kg_m3": by_id[c.sample.id].density_bias_kg_m3,
                }
                for c in candidates
            ],
            "skipped": list(skipped),
        }
