"""Rheology calibrations: the mine's slump or vane tests fitted into a yield-stress (and
plastic-viscosity) model, stored as immutable versions.

A stored version keeps its tests and the fit's settings; the model is fitted again from
them when it is read (a least-squares fit of a few dozen tests takes microseconds and
is deterministic), so a version always reads back the same. The shipped EXAMPLE is
synthetic, labelled so, and not for design.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib import resources
from typing import Any

from service.core.people import Actor
from service.core.rheology import (
    EXAMPLE_LABEL,
    RheologyModel,
    RheologyTest,
    fit_rheology_model,
    parse_rheology_csv,
)
from service.errors import InvalidInput
from service.operations.calibrations import SYSTEM_ROLE
from service.store.records import CalibrationRecord
from service.store.repository import Store

EXAMPLE_NAME = "EXAMPLE rheology (synthetic, not for design)"
FORM = "ln_yield_stress_linear_cw_bw_v1"
_DIGITS = 9


def test_dict(row: RheologyTest) -> dict[str, Any]:
    """A test as stored and shown by the API: percentages, Pa, mm, kg/m3, and the mould
    of a slump (``cone`` or ``cylinder``, with its height)."""
    return {
        "sample_id": row.sample_id,
        "solids_pct": round(row.solids_fraction * 100.0, _DIGITS),
        "binder_pct": round(row.binder_ratio * 100.0, _DIGITS),
        "yield_stress_pa": row.yield_stress_pa,
        "slump_mm": row.slump_mm,
        "slump_mould": row.slump_mould,
        "mould_height_mm": row.mould_height_mm,
        "density_kg_m3": row.density_kg_m3,
        "plastic_viscosity_pa_s": row.plastic_viscosity_pa_s,
    }


def test_of(row: dict[str, Any]) -> RheologyTest:
    """A stored test back as the core's row. A slump stored before rows named their
    mould is the Abrams cone's (the only slump they took then, and how it was fitted)."""
    slump = row.get("slump_mm")
    mould = row.get("slump_mould")
    if slump is not None and mould is None:
        mould = "cone"
    return RheologyTest(
        solids_fraction=float(row["solids_pct"]) / 100.0,
        binder_ratio=float(row["binder_pct"]) / 100.0,
        yield_stress_pa=row.get("yield_stress_pa"),
        slump_mm=slump,
        density_kg_m3=row.get("density_kg_m3"),
        plastic_viscosity_pa_s=row.get("plastic_viscosity_pa_s"),
        sample_id=row.get("sample_id"),
        slump_mould=mould,
        mould_height_mm=row.get("mould_height_mm"),
    )


def _settings(
    plastic_viscosity_pa_s: float | None, range_tolerance: float, label: str
) -> dict[str, Any]:
    return {
        "form": FORM,
        "plastic_viscosity_pa_s": plastic_viscosity_pa_s,
        "range_tolerance": range_tolerance,
        "label": label,
    }


def summary(model: RheologyModel) -> dict[str, Any]:
    """What is stored beside the tests: the coefficients and the fit's goodness (for
    reading at a glance; the model itself is fitted again from the tests)."""
    return {
        "coefficients": {
            "intercept": model.intercept,
            "solids": model.solids_coefficient,
            "binder": model.binder_coefficient,
            "viscosity_intercept": model.viscosity_intercept,
            "viscosity_solids": model.viscosity_solids_coefficient,
        },
        "r2_log": model.fit.r2_log,
        "rmse_log": model.fit.rmse_log,
    }


def rheology_of(record: CalibrationRecord) -> RheologyModel:
    """The model of a stored version, fitted again from its tests and settings."""
    settings = record.model
    return fit_rheology_model(
        [test_of(row) for row in record.rows],
        plastic_viscosity_pa_s=settings.get("plastic_viscosity_pa_s"),
        label=str(settings.get("label", "")),
        range_tolerance=float(settings.get("range_tolerance", 0.1)),
    )


def _fit(
    rows: Sequence[RheologyTest] | None,
    csv_text: str | None,
    plastic_viscosity_pa_s: float | None,
    range_tolerance: float,
) -> tuple[RheologyModel, tuple[RheologyTest, ...]]:
    if csv_text is not None:
        try:
            rows = parse_rheology_csv(csv_text)
        except InvalidInput as err:
            field = err.field if err.field == "csv" else f"csv.{err.field}"
            raise InvalidInput(field, err.detail) from err
    if rows is None:
        raise InvalidInput("rows", "give the rheology tests or a CSV of them")
    try:
        model = fit_rheology_model(
            rows, plastic_viscosity_pa_s=plastic_viscosity_pa_s, range_tolerance=range_tolerance
        )
    except InvalidInput as err:
        if csv_text is None or not err.field.startswith("rows"):
            raise
        raise InvalidInput(f"csv.{err.field}", err.detail) from err
    return model, tuple(rows)


async def fit_rheology_calibration(
    store: Store,
    *,
    name: str,
    created_by: str,
    rows: Sequence[RheologyTest] | None = None,
    csv_text: str | None = None,
    plastic_viscosity_pa_s: float | None = None,
    range_tolerance: float = 0.1,
    approver: Actor | None = None,
) -> tuple[CalibrationRecord, RheologyModel]:
    """Fit the tests (rows or CSV text) and store them as a new version of ``name``, in
    force once stored (``approver``: its ``approved_by`` and audit entry)."""
    if name.strip() == EXAMPLE_NAME:
        raise InvalidInput("name", f"the name {EXAMPLE_NAME!r} is reserved for the shipped example")
    model, fitted = await asyncio.to_thread(
        _fit, rows, csv_text, plastic_viscosity_pa_s, range_tolerance
    )
    record = await store.add_calibration(
        name=name,
        model={**_settings(plastic_viscosity_pa_s, range_tolerance, ""), **summary(model)},
        rows=[test_dict(row) for row in fitted],
        created_by=created_by,
        rheology=True,
        approver=approver,
    )
    return record, model


async def seed_example_rheology(store: Store) -> CalibrationRecord:
    """Store the shipped EXAMPLE rheology calibration unless one of that name exists."""
    existing = [c for c in await store.list_calibrations(rheology=True) if c.name == EXAMPLE_NAME]
    if existing:
        return max(existing, key=lambda c: c.version)
    text = resources.files("service.core.data").joinpath("example_rheology.csv").read_text()
    rows = parse_rheology_csv(text)
    model = await asyncio.to_thread(fit_rheology_model, rows, label=EXAMPLE_LABEL)
    return await store.add_calibration(
        name=EXAMPLE_NAME,
        model={**_settings(None, model.range_tolerance, EXAMPLE_LABEL), **summary(model)},
        rows=[test_dict(row) for row in rows],
        created_by=SYSTEM_ROLE,
        example=True,
        rheology=True,
    )
