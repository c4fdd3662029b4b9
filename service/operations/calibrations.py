"""Calibrations: laboratory cylinders fitted into a stored, versioned strength model.

Stored calibrations are immutable (a new upload of a name is a new version), so a
model parsed from the store never goes stale: :class:`CalibrationCache` keeps the
parsed models by calibration id and the optimiser's request path reads the store once
per calibration, not once per request.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, TypeVar

from service.core.people import Actor
from service.core.recalibration import PredictionError, SkippedRow, propose_recalibration
from service.core.strength_model import (
    CylinderResult,
    StrengthModel,
    fit_strength_model,
    load_example_model,
    parse_calibration_csv,
)
from service.errors import Conflict, InvalidInput, NotFound
from service.store.records import CalibrationRecord
from service.store.repository import Store

EXAMPLE_NAME = "EXAMPLE (synthetic, not for design)"
SYSTEM_ROLE = "system"
M = TypeVar("M")
_PCT_DIGITS = 9  # drop the float noise of fraction * 100 in stored rows


def _pct(fraction: float) -> float:
    return round(fraction * 100.0, _PCT_DIGITS)


def cylinder_dict(row: CylinderResult) -> dict[str, Any]:
    """A cylinder as stored and shown by the API: percentages, days, kPa."""
    return {
        "sample_id": row.sample_id,
        "blend": {name: _pct(fraction) for name, fraction in row.blend.items()},
        "binder_pct": _pct(row.binder_ratio),
        "solids_pct": _pct(row.solids_fraction),
        "curing_days": row.curing_days,
        "ucs_kpa": row.ucs_kpa,
    }


def _fit(
    rows: Sequence[CylinderResult] | None,
    csv_text: str | None,
    reference_component: str,
    range_tolerance: float,
) -> tuple[StrengthModel, tuple[CylinderResult, ...]]:
    if csv_text is not None:
        try:
            rows = parse_calibration_csv(csv_text)
        except InvalidInput as err:
            field = err.field if err.field == "csv" else f"csv.{err.field}"
            raise InvalidInput(field, err.detail) from err
    if rows is None:
        raise InvalidInput("rows", "give the laboratory rows or a CSV of them")
    model = fit_strength_model(
        rows, reference_component=reference_component, range_tolerance=range_tolerance
    )
    return model, tuple(rows)


async def fit_calibration(
    store: Store,
    *,
    name: str,
    created_by: str,
    rows: Sequence[CylinderResult] | None = None,
    csv_text: str | None = None,
    reference_component: str = "cement",
    range_tolerance: float = 0.1,
    approver: Actor | None = None,
) -> tuple[CalibrationRecord, StrengthModel]:
    """Fit cylinders (given as rows or as CSV text) and store the model as a new version,
    approved by being stored (by ``approver``: its ``approved_by`` and audit entry).

    Raises CalibrationRejected when the data cannot give a usable model (too few rows,
    degenerate design, ...), InvalidInput naming the field for malformed data.
    """
    if name.strip() == EXAMPLE_NAME:
        raise InvalidInput("name", f"the name {EXAMPLE_NAME!r} is reserved for the shipped example")
    # A fit of a few thousand rows takes milliseconds of numpy: off the event loop.
    model, fitted_rows = await asyncio.to_thread(
        _fit, rows, csv_text, reference_component, range_tolerance
    )
    record = await store.add_calibration(
        name=name,
        model=model.to_dict(),
        rows=[cylinder_dict(row) for row in fitted_rows],
        created_by=created_by,
        approver=approver,
    )
    return record, model


def _example() -> tuple[StrengthModel, tuple[CylinderResult, ...]]:
    text = resources.files("service.core.data").joinpath("example_calibration.csv").read_text()
    return load_example_model(), parse_calibration_csv(text)


async def seed_example_calibration(store: Store) -> CalibrationRecord:
    """Store the shipped EXAMPLE calibration (synthetic, not for design) unless a
    calibration of that name exists already; return the stored one either way."""
    existing = [c for c in await store.list_calibrations() if c.name == EXAMPLE_NAME]
    if existing:
        return max(existing, key=lambda c: c.version)
    model, rows = await asyncio.to_thread(_example)
    return await store.add_calibration(
        name=EXAMPLE_NAME,
        model=model.to_dict(),
        rows=[cylinder_dict(row) for row in rows],
        created_by=SYSTEM_ROLE,
        example=True,
    )


def cylinder_of(row: dict[str, Any]) -> CylinderResult:
    """A stored cylinder (:func:`cylinder_dict`) back as the core's row."""
    return CylinderResult(
        blend={name: float(pct) / 100.0 for name, pct in row["blend"].items()},
        binder_ratio=float(row["binder_pct"]) / 100.0,
        solids_fraction=float(row["solids_pct"]) / 100.0,
        curing_days=float(row["curing_days"]),
        ucs_kpa=float(row["ucs_kpa"]),
        sample_id=row.get("sample_id"),
    )


def model_of(record: CalibrationRecord) -> StrengthModel:
    """The strength model of a stored calibration (CalibrationRejected if malformed). A
    model stored before the fit's regression statistics were kept gets them from its
    stored cylinders."""
    return StrengthModel.from_dict(record.model, rows=[cylinder_of(r) for r in record.rows])


def _finite(value: float | None) -> float | None:
    """A figure as JSON can store it (no NaN or infinity)."""
    return value if value is not None and math.isfinite(value) else None


def _error_dict(error: PredictionError) -> dict[str, Any]:
    above = error.above_lower_fraction
    return {
        "n": error.n,
        "n_not_predictable": error.n_not_predictable,
        "n_extrapolated": error.n_extrapolated,
        "rmse_log": _finite(error.rmse_log),
        "bias_log": _finite(error.bias_log),
        "rmse_kpa": _finite(error.rmse_kpa),
        "bias_kpa": _finite(error.bias_kpa),
        "bias_t": _finite(error.bias_t),
        "bias_p_value": _finite(error.bias_p_value),
        "pass_fraction_pct": error.pass_fraction * 100.0,
        "above_lower_pct": None if above is None else above * 100.0,
    }


def calibration_keys(record: CalibrationRecord) -> list[tuple[str, float]]:
    """(sample id, curing days) of a calibration's rows that name their sample: the lab
    results it was fitted on already."""
    return [
        (str(row["sample_id"]), float(row["curing_days"]))
        for row in record.rows
        if row.get("sample_id")
    ]


async def propose_calibration(
    store: Store,
    base: CalibrationRecord,
    new_rows: Sequence[CylinderResult],
    skipped: Sequence[SkippedRow],
    *,
    created_by: str,
    pass_fraction_pct: float,
    use_lab_solids: bool,
) -> tuple[CalibrationRecord, StrengthModel]:
    """Refit ``base`` on its own rows plus ``new_rows`` (lab results) and store the
    refit as the next version of its name, status ``proposed``, with the proposal's
    figures (each coefficient's change, R2 before and after, the old model's prediction
    error on the new results; :func:`service.core.recalibration.propose_recalibration`).

    Conflict (``calibration_not_approved``) for a base that is itself a proposal,
    (``calibration_is_example``) for the shipped example; CalibrationRejected when there
    are no new rows or the refit is refused."""
    if base.status != "approved":
        raise Conflict(
            f"calibration {base.name!r} version {base.version} is a proposal: approve it, "
            "or propose from the approved version",
            code="calibration_not_approved",
        )
    if base.example:
        raise Conflict(
            "the shipped example calibration is synthetic, not for design: upload the "
            "mine's own cylinders and recalibrate that",
            code="calibration_is_example",
        )
    model = model_of(base)
    rows = [cylinder_of(r) for r in base.rows]
    proposal = await asyncio.to_thread(
        propose_recalibration,
        model,
        rows,
        list(new_rows),
        pass_fraction=pass_fraction_pct / 100.0,
    )
    figures: dict[str, Any] = {
        "based_on": base.id,
        "based_on_version": base.version,
        "n_old": proposal.n_old,
        "n_new": proposal.n_new,
        "changes": [
            {
                "term": c.term,
                "before": _finite(c.before),
                "after": _finite(c.after),
                "change": _finite(c.change),
            }
            for c in proposal.changes
        ],
        "r2_log_before": _finite(proposal.r2_log_before),
        "r2_log_after": _finite(proposal.r2_log_after),
        "r2_kpa_before": _finite(proposal.r2_kpa_before),
        "r2_kpa_after": _finite(proposal.r2_kpa_after),
        "residual_sd_log_before": _finite(proposal.residual_sd_log_before),
        "residual_sd_log_after": _finite(proposal.residual_sd_log_after),
        "old_model_on_new": _error_dict(proposal.old_model_on_new),
        "new_model_on_new": _error_dict(proposal.new_model_on_new),
        "skipped": [{"sample_id": s.sample_id, "reason": s.reason} for s in skipped],
        "pass_fraction_pct": pass_fraction_pct,
        "use_lab_solids": use_lab_solids,
    }
    record = await store.add_calibration(
        name=base.name,
        model=proposal.model.to_dict(),
        rows=[cylinder_dict(row) for row in proposal.rows],
        created_by=created_by,
        proposed_from=base.id,
        proposal=figures,
    )
    return record, proposal.model


async def load_model(store: Store, calibration_id: str) -> StrengthModel:
    """The strength model of a stored calibration; NotFound (calibration_not_found)."""
    return model_of(await store.get_calibration(calibration_id))


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A parsed model with what an answer says about where it came from."""

    id: str
    name: str
    version: int
    example: bool
    model: M


LoadedCalibration = Loaded[StrengthModel]


class CalibrationCache(Generic[M]):
    """Parsed models by calibration id (``load`` parses a stored record), least recently
    used dropped beyond ``max_entries``. Safe because stored calibrations never change.
    ``rheology`` selects the rheology calibrations instead of the strength ones."""

    def __init__(
        self,
        load: Callable[[CalibrationRecord], M],
        *,
        rheology: bool = False,
        max_entries: int = 32,
    ) -> None:
        self._load = load
        self._rheology = rheology
        self._max_entries = max_entries
        self._entries: OrderedDict[str, Loaded[M]] = OrderedDict()
        self._example_id: str | None = None
        # Approval is final (a proposed version becomes approved, never back), so an
        # approved id is remembered; a proposed one is asked of the store each time.
        self._approved: set[str] = set()

    def _remember(self, loaded: Loaded[M]) -> Loaded[M]:
        self._entries[loaded.id] = loaded
        self._entries.move_to_end(loaded.id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return loaded

    def _loaded(self, record: CalibrationRecord) -> Loaded[M]:
        return Loaded(record.id, record.name, record.version, record.example, self._load(record))

    def put(self, record: CalibrationRecord, model: M) -> None:
        self._remember(Loaded(record.id, record.name, record.version, record.example, model))

    async def get(self, store: Store, calibration_id: str) -> Loaded[M]:
        loaded = self._entries.get(calibration_id)
        if loaded is not None:
            self._entries.move_to_end(calibration_id)
            return loaded
        record = await store.get_calibration(calibration_id, rheology=self._rheology)
        return self._remember(self._loaded(record))

    async def approved(self, store: Store, calibration_id: str) -> bool:
        """Whether the calibration is approved (may design recipes); a rheology
        calibration always is. NotFound when there is none."""
        if self._rheology or calibration_id in self._approved:
            return True
        if await store.calibration_status(calibration_id) != "approved":
            return False
        self._approved.add(calibration_id)
        return True

    async def example(self, store: Store) -> Loaded[M]:
        """The latest calibration flagged as the shipped example."""
        if self._example_id is not None:
            return await self.get(store, self._example_id)
        examples = [c for c in await store.list_calibrations(rheology=self._rheology) if c.example]
        if not examples:
            raise NotFound(
                "no example calibration is stored: give its id",
                code="rheology_calibration_not_found"
                if self._rheology
                else "calibration_not_found",
            )
        record = examples[-1]
        self._example_id = record.id
        return self._remember(self._loaded(record))
