"""The lab loop: laboratory results of the cylinders cast from pours, their compliance
with the strength the fill must reach, and the rows a recalibration learns from.

The pure rules are in ``service.core.lab`` (a result from its masses, the lab sheet) and
``service.core.compliance`` (judging cylinders, pass fractions, notices, recalibration
rows); this module wires them to the store.

- A result is entered once: a second entry for a sample at an age it already has a
  result for (the same test age, within the compliance's age tolerance) is refused; a
  correction is a new entry naming the one it ``corrects``, and only the newest of a
  chain counts. Nothing is overwritten or deleted.
- A lab sheet is imported whole or not at all: every bad row is listed (line, column,
  message), a row for a sample no pour cast among them, and nothing is stored.
- What a cylinder must reach: the requirements of its pour's stage in the stope's fill
  plan (the plan version the pour was made under); for a pour without a stage, or a
  stage without requirements, those of its recipe's design record (the optimiser's
  answer stored as the recipe's ``design``). The design's pass fraction is the one the
  design states (``pass_fraction_pct``), else the site's
  (``BACKFILL_DESIGN__PASS_FRACTION_PCT``).
- A cylinder is due at each planned test age and at each requirement's age (a
  requirement cannot be judged without a test at its age); not tested by then plus the
  grace (:class:`~service.core.compliance.ComplianceConfig`, 2 days) it is overdue.
- Cylinders cure in real time: ``now`` is the wall clock, never the plant's.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.core import acceptance as A
from service.core import acts
from service.core import compliance as C
from service.core import plans as P
from service.core import recalibration as R
from service.core.lab import LabResult, RowError, make_lab_result, parse_lab_sheet
from service.core.lab_limits import LabLimits, RecordedCast
from service.core.people import Actor
from service.core.strength_model import CylinderResult
from service.errors import Conflict, InvalidInput, NotFound
from service.settings import DesignSettings
from service.store.lab import LabStore
from service.store.records import (
    LabResultRecord,
    PlanRecord,
    PourRecord,
    RecipeRecord,
    SampleRecord,
)
from service.store.repository import Store
from service.store.stopes import StopeStore

_DAY_S = 86400.0
_POURS_OF_A_STOPE = 100_000
NOTE_MAX_CHARS = 500
# Columns of a lab sheet read here besides the core's (service.core.lab.KNOWN_COLUMNS).
SHEET_EXTRA_COLUMNS = ("corrects", "note")
RequirementSource = Literal["stage", "design", "none"]


# --- results: entered once, corrected by new entries ----------------------------------


def corrections(entries: Iterable[LabResultRecord]) -> dict[str, str]:
    """Entry id -> the id of the entry that corrects it."""
    return {e.corrects: e.id for e in entries if e.corrects is not None}


def current_entries(entries: Sequence[LabResultRecord]) -> list[LabResultRecord]:
    """The entries no other entry corrects (the newest of each correction chain)."""
    corrected = corrections(entries)
    return [e for e in entries if e.id not in corrected]


def nominal_days(entry: LabResultRecord, sample: SampleRecord) -> float | None:
    """The test age an entry is judged at: its nominal curing age when given, else its
    actual age (tested_at - cast_at, the lab's cast time or else the sample's)."""
    if entry.curing_days is not None:
        return entry.curing_days
    if entry.tested_at is None:
        return None
    cast = entry.cast_at or sample.cast_at
    return (entry.tested_at - cast).total_seconds() / _DAY_S


def recorded_cast(sample: SampleRecord) -> RecordedCast:
    """When the sample was cast, as far as the service knows it, to hold a lab's
    ``cast_at`` to: the moment a pour cast it; for a sample migrated from an older
    release, no earlier than its pour's start (taken as its cast)."""
    return RecordedCast(sample.cast_at, exact=sample.source != "migrated")


def lab_result_of(entry: LabResultRecord, sample: SampleRecord) -> LabResult:
    """A stored entry as the core's result (validated when it was entered)."""
    return LabResult(
        sample_id=entry.sample_id,
        cast_at=entry.cast_at or sample.cast_at,
        tested_at=entry.tested_at,
        curing_days=entry.curing_days,
        wet_mass_g=entry.wet_mass_g,
        dry_mass_g=entry.dry_mass_g,
        volume_cm3=entry.volume_cm3,
        bulk_density_kg_m3=entry.bulk_density_kg_m3,
        ucs_kpa=entry.ucs_kpa,
        pour_id=sample.pour_id,
    )


@dataclass(frozen=True)
class EntryProblem:
    """Why new entry ``index`` of a batch cannot be stored."""

    index: int
    field: str
    message: str
    code: str


def entry_problems(
    existing: Sequence[LabResultRecord],
    new: Sequence[LabResultRecord],
    samples: Mapping[str, SampleRecord],
    config: C.ComplianceConfig,
    labels: Sequence[str],
) -> list[EntryProblem]:
    """The problems of storing ``new`` (in order) after ``existing``: a correction of a
    result the sample does not have, or of one corrected already; a second result at an
    age the sample has one for (``labels[i]`` names new entry i in messages)."""
    problems: list[EntryProblem] = []
    by_id = {e.id: e for e in existing}
    corrected = corrections(existing)
    current = [e for e in existing if e.id not in corrected]
    label_of = {e.id: labels[i] for i, e in enumerate(new)}
    for index, entry in enumerate(new):
        sample = samples[entry.sample_id]
        replaced: str | None = None
        if entry.corrects is not None:
            target = by_id.get(entry.corrects)
            if target is None or target.sample_id != entry.sample_id:
                problems.append(
                    EntryProblem(
                        index,
                        "corrects",
                        f"sample {entry.sample_id} has no result {entry.corrects}",
                        "lab_result_not_found",
                    )
                )
                continue
            if target.id in corrected:
                later = corrected[target.id]
                problems.append(
                    EntryProblem(
                        index,
                        "corrects",
                        f"result {target.id} was corrected already (by "
                        f"{label_of.get(later, later)}): a correction names the newest entry",
                        "lab_result_corrected",
                    )
                )
                continue
            replaced = target.id
        age = nominal_days(entry, sample)
        clash = None
        for other in current:
            if other.sample_id != entry.sample_id or other.id == replaced:
                continue
            other_age = nominal_days(other, samples[other.sample_id])
            if age is not None and other_age is not None and config.age_matches(age, other_age):
                clash = (other, other_age)
                break
        if clash is not None:
            other, other_age = clash
            name = label_of.get(other.id, f"result {other.id}")
            problems.append(
                EntryProblem(
                    index,
                    "curing_days" if entry.curing_days is not None else "tested_at",
                    f"sample {entry.sample_id} has a result at {other_age:g} days already "
                    f"({name}): a result is entered once; a correction names the entry it "
                    "corrects (corrects)",
                    "lab_result_exists",
                )
            )
            continue
        if replaced is not None:
            corrected[replaced] = entry.id
            current = [e for e in current if e.id != replaced]
        by_id[entry.id] = entry
        current.append(entry)
    return problems


# --- what a cylinder must reach -------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def design_pass_fraction(design: Mapping[str, Any] | None) -> float | None:
    """The pass fraction a design record states (``pass_fraction_pct``), as 0-1."""
    if not isinstance(design, Mapping):
        return None
    pct = _number(design.get("pass_fraction_pct"))
    return pct / 100.0 if pct is not None and 0.0 < pct < 100.0 else None


def design_requirements(design: Mapping[str, Any] | None) -> list[tuple[str, float, float]]:
    """(name, required UCS kPa, curing days) of a design record: its ``requirements``
    (the optimiser's answer), else its single ``required_ucs_kpa`` at ``curing_days``.
    A design is free JSON: what is not a usable requirement is left out."""
    if not isinstance(design, Mapping):
        return []
    items = design.get("requirements")
    if not isinstance(items, list):
        items = [design] if "required_ucs_kpa" in design else []
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        ucs = _number(item.get("required_ucs_kpa", item.get("ucs_kpa")))
        days = _number(item.get("curing_days"))
        name = item.get("name")
        if ucs is None or days is None or not 0.0 < ucs <= 1.0e5 or not 0.0 < days <= 3650.0:
            continue
        out.append((name if isinstance(name, str) else "", ucs, days))
    return out


def _requirements(
    given: Sequence[tuple[str, float, float]], design_fraction: float | None
) -> tuple[C.Requirement, ...]:
    out: list[C.Requirement] = []
    names: set[str] = set()
    for name, ucs, days in given:
        label = name.strip() or f"{ucs:g} kPa at {days:g} d"
        while label in names:  # the core keys a sample's requirements by name
            label += "'"
        names.add(label)
        out.append(C.Requirement(label, ucs, days, design_fraction))
    return tuple(out)


def mix_of(
    recipe: RecipeRecord | None,
) -> tuple[dict[str, float] | None, float | None, float | None]:
    """Blend (fractions), Bw and Cw (fractions) of a stored recipe's mix; None where the
    mix does not say."""
    if recipe is None:
        return None, None, None
    mix = recipe.mix
    blend: dict[str, float] | None
    try:
        blend = {
            str(comp["name"]): float(comp["fraction_pct"]) / 100.0 for comp in mix.get("binder", [])
        }
    except (KeyError, TypeError, ValueError):
        blend = None
    if not blend:
        blend = None
    binder = _number(mix.get("binder_pct"))
    solids = _number(mix.get("solids_pct"))
    return (
        blend,
        None if binder is None or binder <= 0.0 else binder / 100.0,
        None if solids is None or not 0.0 < solids < 100.0 else solids / 100.0,
    )


@dataclass(frozen=True)
class PourBasis:
    """What a pour's cylinders are judged against, and where that came from."""

    pour: PourRecord
    recipe: RecipeRecord | None
    source: RequirementSource
    requirements: tuple[C.Requirement, ...]
    stage_name: str | None = None
    stage_id: str | None = None
    blend: dict[str, float] | None = field(default=None, hash=False)
    binder_ratio: float | None = None
    solids_fraction: float | None = None


def basis_of(
    pour: PourRecord,
    recipe: RecipeRecord | None,
    plan: PlanRecord | None,
    site_pass_fraction: float | None,
) -> PourBasis:
    """The requirements of the pour's stage (its plan version), else of its recipe's
    design; at the design's stated pass fraction, else the site's."""
    design = recipe.design if recipe is not None else None
    fraction = design_pass_fraction(design)
    if fraction is None:
        fraction = site_pass_fraction
    stage_name = stage_id = None
    stage_given: list[tuple[str, float, float]] = []
    if plan is not None and pour.stage is not None:
        try:
            stage = P.Stage.from_dict(plan.plan["stages"][pour.stage])
        except (InvalidInput, KeyError, IndexError, TypeError, ValueError):
            stage = None
        if stage is not None:
            stage_name = stage.name
            stage_id = f"{pour.stope_id}/{stage.name}"
            stage_given = [(r.name, r.ucs_kpa, r.curing_days) for r in stage.requirements]
    blend, binder, solids = mix_of(recipe)
    source: RequirementSource
    if stage_given:
        source, given = "stage", stage_given
    else:
        given = design_requirements(design)
        source = "design" if given else "none"
    return PourBasis(
        pour=pour,
        recipe=recipe,
        source=source,
        requirements=_requirements(given, fraction),
        stage_name=stage_name,
        stage_id=stage_id,
        blend=blend,
        binder_ratio=binder,
        solids_fraction=solids,
    )


def sample_plan(sample: SampleRecord, basis: PourBasis) -> C.SamplePlan:
    ages = {float(d) for d in sample.test_ages_days}
    ages |= {r.curing_days for r in basis.requirements}
    return C.SamplePlan(
        sample_id=sample.id,
        pour_id=basis.pour.id,
        stope_id=basis.pour.stope_id,
        cast_at=sample.cast_at,
        test_ages_days=tuple(sorted(ages)),
        requirements=basis.requirements,
        stage_id=basis.stage_id,
        blend=basis.blend,
        binder_ratio=basis.binder_ratio,
        solids_fraction=basis.solids_fraction,
    )


# --- answers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleView:
    sample: SampleRecord
    entries: tuple[LabResultRecord, ...]

    @property
    def corrected(self) -> dict[str, str]:
        return corrections(self.entries)


@dataclass(frozen=True)
class SheetImport:
    sheet_id: str
    results: tuple[LabResultRecord, ...]
    samples: Mapping[str, SampleRecord]
    ignored_columns: tuple[str, ...]


@dataclass(frozen=True)
class Compliance:
    """A compliance assessment of a pour's or a stope's cylinders at ``evaluated_at``."""

    scope: Literal["pour", "stope"]
    subject_id: str
    stope: str
    evaluated_at: datetime
    bases: tuple[PourBasis, ...]
    plans: tuple[C.SamplePlan, ...]
    report: C.ComplianceReport


# --- the CSV rows, as the core's parser reads them ---------------------------------------


def _sheet_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """(file line, cells by column) of every data row of a lab sheet, read the way
    :func:`service.core.lab.parse_lab_sheet` reads them (blank and ``#`` lines skipped,
    the first other line the header), so that row i is the core's row i."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                continue
            cells = {
                name: (record[i].strip() if i < len(record) else "")
                for i, name in enumerate(header)
            }
            rows.append((line, cells))
    except csv.Error:
        pass  # the core reports it, with its line
    return rows


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise InvalidInput(
            "timezone", f"{name[:60]!r} is not a time zone name (e.g. Asia/Almaty)"
        ) from err


# --- the service ---------------------------------------------------------------------------


def compliance_config(design: DesignSettings) -> C.ComplianceConfig:
    """The compliance rules of the site's design settings (the acceptance rules)."""
    return C.ComplianceConfig(
        acceptance=A.AcceptanceRules(
            consecutive_tests=design.consecutive_tests,
            gross_low_margin=design.gross_low_margin_pct / 100.0,
        )
    )


class LabService:
    """Samples, their results, compliance and the recalibration rows (module docstring).

    ``pass_fraction_pct``: the site's design pass fraction, for designs that state none
    (None: such requirements are judged without a design fraction); ``limits``: the
    site's test ages and the tolerances of a lab entry's times."""

    def __init__(
        self,
        *,
        store: Store,
        lab: LabStore,
        stopes: StopeStore,
        pass_fraction_pct: float | None,
        clock: Callable[[], datetime] | None = None,
        config: C.ComplianceConfig | None = None,
        limits: LabLimits | None = None,
    ) -> None:
        self._store = store
        self.limits = limits or LabLimits()
        self._lab = lab
        self._stopes = stopes
        self._site_fraction = None if pass_fraction_pct is None else pass_fraction_pct / 100.0
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.config = config or C.ComplianceConfig()

    @classmethod
    def of_store(cls, store: Store, *, pass_fraction_pct: float | None) -> LabService:
        """A service on the engine of ``store`` (its stores are stateless)."""
        return cls(
            store=store,
            lab=LabStore(store.engine),
            stopes=StopeStore(store.engine),
            pass_fraction_pct=pass_fraction_pct,
        )

    def now(self) -> datetime:
        return self.clock()

    # --- samples ----------------------------------------------------------------------

    async def sample(self, sample_id: str) -> SampleView:
        sample = await self._lab.get_sample(sample_id)
        return SampleView(sample, tuple(await self._lab.results_of([sample.id])))

    async def samples(self, *, pour_id: str | None, limit: int, offset: int) -> list[SampleView]:
        if pour_id is not None:
            await self._store.get_pour(pour_id)  # NotFound for a pour that is not there
        found = await self._lab.list_samples(pour_id=pour_id, limit=limit, offset=offset)
        entries = await self._lab.results_of(s.id for s in found)
        return [SampleView(s, tuple(e for e in entries if e.sample_id == s.id)) for s in found]

    # --- entering results -------------------------------------------------------------

    async def enter_result(
        self,
        sample_id: str,
        *,
        by: Actor,
        cast_at: datetime | None = None,
        tested_at: datetime | None = None,
        curing_days: float | None = None,
        wet_mass_g: float | None = None,
        dry_mass_g: float | None = None,
        volume_cm3: float | None = None,
        bulk_density_kg_m3: float | None = None,
        ucs_kpa: float | None = None,
        corrects: str | None = None,
        note: str | None = None,
    ) -> tuple[LabResultRecord, SampleRecord]:
        """One result of a sample (or, with ``corrects``, a correction of one of its
        entries). 422 naming the field for a bad value; 409 ``lab_result_exists`` for a
        second result at an age, ``lab_result_corrected`` for a correction of an entry
        corrected already; 404 for a sample or corrected entry that is not there. The
        entry names ``by``'s person (``entered_by``), and so does its audit entry (kind
        ``lab_result``), stored with it."""
        sample = await self._lab.get_sample(sample_id)
        # Validated as the core validates a lab sheet's row (it names the field).
        result = make_lab_result(
            sample.id,
            cast_at or sample.cast_at,
            tested_at=tested_at,
            curing_days=curing_days,
            wet_mass_g=wet_mass_g,
            dry_mass_g=dry_mass_g,
            volume_cm3=volume_cm3,
            bulk_density_kg_m3=bulk_density_kg_m3,
            ucs_kpa=ucs_kpa,
            now=self.now(),
            limits=self.limits,
            sample_cast_at=None if cast_at is None else recorded_cast(sample),
        )
        entry = self._entry(result, cast_at, corrects, note, by.person or by.role, "api", None)
        samples = {sample.id: sample}

        def validate(existing: Sequence[LabResultRecord]) -> None:
            problems = entry_problems(
                existing, [_draft(entry, "this entry")], samples, self.config, ["this entry"]
            )
            if problems:
                p = problems[0]
                if p.code == "lab_result_not_found":  # a reference in the body: 422
                    raise InvalidInput(p.field, p.message, code=p.code)
                raise Conflict(p.message, code=p.code, field=p.field)

        (stored,) = await self._lab.add_results(
            [entry], validate=validate, audit=lambda values: acts.lab_results(by, "api", values)
        )
        return stored, sample

    @staticmethod
    def _entry(
        result: LabResult,
        lab_cast_at: datetime | None,
        corrects: str | None,
        note: str | None,
        by: str,
        source: str,
        sheet_id: str | None,
    ) -> dict[str, Any]:
        return {
            "sample_id": result.sample_id,
            "corrects": corrects,
            "cast_at": lab_cast_at,
            "tested_at": result.tested_at,
            "curing_days": result.curing_days,
            "wet_mass_g": result.wet_mass_g,
            "dry_mass_g": result.dry_mass_g,
            "volume_cm3": result.volume_cm3,
            "bulk_density_kg_m3": result.bulk_density_kg_m3,
            "ucs_kpa": result.ucs_kpa,
            "note": note,
            "source": source,
            "sheet_id": sheet_id,
            "entered_by": by,
        }

    async def import_sheet(self, text: str, *, timezone: str | None, by: Actor) -> SheetImport:
        """A lab sheet (CSV, :func:`service.core.lab.parse_lab_sheet`, plus optional
        ``corrects`` and ``note`` columns), imported whole or not at all: any bad row
        refuses the sheet with every error (422, field ``csv``, ``errors`` a list of
        ``{row, field, message}``; ``row`` the line of the file). Its entries name
        ``by``'s person, and so does the sheet's one audit entry (kind ``lab_result``,
        reason ``sheet``), stored with them."""
        zone = _zone(timezone)
        now = self.now()
        raw = _sheet_rows(text)
        ids = {cells.get("sample_id", "") for _line, cells in raw} - {""}
        samples = await self._lab.samples(ids)
        sheet = parse_lab_sheet(
            text,
            assume_timezone=zone,
            now=now,
            limits=self.limits,
            sample_cast_at={s.id: recorded_cast(s) for s in samples.values()},
        )
        errors: list[RowError] = list(sheet.errors)
        flagged = {(e.row, e.field) for e in errors}
        for line, cells in raw:
            sample_id = cells.get("sample_id", "")
            sample = samples.get(sample_id)
            if sample_id and sample is None and (line, "sample_id") not in flagged:
                errors.append(
                    RowError(line, "sample_id", f"no pour cast sample {sample_id[:80]!r}")
                )
            pour_id = cells.get("pour_id", "")
            if sample is not None and pour_id and pour_id != sample.pour_id:
                errors.append(
                    RowError(
                        line,
                        "pour_id",
                        f"sample {sample_id} was cast from pour {sample.pour_id}, not "
                        f"{pour_id[:80]!r}",
                    )
                )
            note = cells.get("note", "")
            if len(note) > NOTE_MAX_CHARS:
                errors.append(
                    RowError(line, "note", f"note is longer than {NOTE_MAX_CHARS} characters")
                )
        sheet_id = str(uuid.uuid4())
        entries: list[dict[str, Any]] = []
        lines: list[int] = []
        if not errors:
            if len(raw) != len(sheet.rows):  # the two readings of the file disagree
                raise InvalidInput("csv", "the lab sheet could not be read row by row")
            for (line, cells), result in zip(raw, sheet.rows, strict=True):
                entries.append(
                    self._entry(
                        result,
                        result.cast_at,
                        cells.get("corrects") or None,
                        cells.get("note") or None,
                        by.person or by.role,
                        "sheet",
                        sheet_id,
                    )
                )
                lines.append(line)
            existing = await self._lab.results_of(ids)
            errors += self._sheet_problems(existing, entries, lines, samples)
        if errors:
            raise _sheet_refused(errors)

        def validate(existing: Sequence[LabResultRecord]) -> None:
            problems = self._sheet_problems(existing, entries, lines, samples)
            if problems:  # entered meanwhile by someone else
                raise _sheet_refused(problems)

        stored = await self._lab.add_results(
            entries, validate=validate, audit=lambda values: acts.lab_results(by, "sheet", values)
        )
        ignored = tuple(c for c in sheet.ignored_columns if c not in SHEET_EXTRA_COLUMNS)
        return SheetImport(sheet_id, tuple(stored), samples, ignored)

    def _sheet_problems(
        self,
        existing: Sequence[LabResultRecord],
        entries: Sequence[dict[str, Any]],
        lines: Sequence[int],
        samples: Mapping[str, SampleRecord],
    ) -> list[RowError]:
        labels = [f"row {line} of this sheet" for line in lines]
        drafts = [_draft(e, label) for e, label in zip(entries, labels, strict=True)]
        return [
            RowError(lines[p.index], p.field, p.message)
            for p in entry_problems(existing, drafts, samples, self.config, labels)
        ]

    # --- compliance ---------------------------------------------------------------------

    async def _bases(self, pours: Iterable[PourRecord]) -> dict[str, PourBasis]:
        recipes: dict[str, RecipeRecord | None] = {}
        plans: dict[str, PlanRecord | None] = {}
        out: dict[str, PourBasis] = {}
        for pour in pours:
            if pour.recipe_id not in recipes:
                try:
                    recipes[pour.recipe_id] = await self._store.get_recipe(pour.recipe_id)
                except NotFound:
                    recipes[pour.recipe_id] = None
            plan = None
            if pour.plan_id is not None:
                if pour.plan_id not in plans:
                    try:
                        plans[pour.plan_id] = await self._stopes.get_plan(pour.plan_id)
                    except NotFound:
                        plans[pour.plan_id] = None
                plan = plans[pour.plan_id]
            out[pour.id] = basis_of(pour, recipes[pour.recipe_id], plan, self._site_fraction)
        return out

    async def _assess(
        self, pours: Sequence[PourRecord], samples: Sequence[SampleRecord]
    ) -> tuple[dict[str, PourBasis], list[C.SamplePlan], C.ComplianceReport]:
        bases = await self._bases(pours)
        plans = [sample_plan(s, bases[s.pour_id]) for s in samples if s.pour_id in bases]
        by_id = {s.id: s for s in samples}
        entries = current_entries(await self._lab.results_of(by_id))
        results = [lab_result_of(e, by_id[e.sample_id]) for e in entries]
        report = C.assess_compliance(plans, results, self.now(), self.config)
        return bases, plans, report

    async def pour_compliance(self, pour_id: str) -> Compliance:
        pour = await self._store.get_pour(pour_id)
        samples = await self._lab.samples_of_pours([pour.id])
        bases, plans, report = await self._assess([pour], samples)
        return Compliance(
            "pour", pour.id, pour.stope_id, self.now(), (bases[pour.id],), tuple(plans), report
        )

    async def stope_compliance(self, stope_id: str) -> Compliance:
        stope = await self._stopes.get_stope(stope_id)
        pours = list(
            reversed(await self._store.list_pours(stope=stope.name, limit=_POURS_OF_A_STOPE))
        )
        samples = await self._lab.samples_of_pours(p.id for p in pours)
        bases, plans, report = await self._assess(pours, samples)
        return Compliance(
            "stope",
            stope.id,
            stope.name,
            self.now(),
            tuple(bases[p.id] for p in pours),
            tuple(plans),
            report,
        )

    async def notices(self) -> tuple[datetime, tuple[C.Notice, ...]]:
        """Every open notice (failed, overdue, behind, below design), most severe first."""
        samples = await self._lab.all_samples()
        pours = [await self._store.get_pour(p) for p in sorted({s.pour_id for s in samples})]
        _bases, _plans, report = await self._assess(pours, samples)
        return self.now(), report.notices

    # --- recalibration -----------------------------------------------------------------

    async def cylinder_rows(
        self, *, use_lab_solids: bool, known: Iterable[tuple[str, float]] = ()
    ) -> tuple[tuple[CylinderResult, ...], tuple[R.SkippedRow, ...]]:
        """Calibration rows (blend, Bw, Cw, age, UCS) from the current UCS results of
        every sample whose pour's recipe gives its blend and Bw (Cw: the sample's own
        from its masses when ``use_lab_solids`` and measured, else the recipe's), and
        the results that could not be used, with why. Results already among ``known``
        (sample id, curing days) rows are left out."""
        seen = {(sample_id, round(days, 6)) for sample_id, days in known}
        samples = {s.id: s for s in await self._lab.all_samples()}
        pours = [
            await self._store.get_pour(p) for p in sorted({s.pour_id for s in samples.values()})
        ]
        bases = await self._bases(pours)
        plans = [sample_plan(s, bases[s.pour_id]) for s in samples.values()]
        results = []
        for entry in current_entries(await self._lab.all_results()):
            if entry.ucs_kpa is None:
                continue  # masses only: no strength to learn from
            result = lab_result_of(entry, samples[entry.sample_id])
            if (result.sample_id, round(result.age_days, 6)) in seen:
                continue
            results.append(result)
        return R.cylinder_rows(plans, results, prefer_lab_solids=use_lab_solids)


def _draft(entry: Mapping[str, Any], label: str) -> LabResultRecord:
    """A new entry as a record, for the checks before it is stored."""
    return LabResultRecord(
        id=label,
        sample_id=entry["sample_id"],
        corrects=entry["corrects"],
        cast_at=entry["cast_at"],
        tested_at=entry["tested_at"],
        curing_days=entry["curing_days"],
        wet_mass_g=entry["wet_mass_g"],
        dry_mass_g=entry["dry_mass_g"],
        volume_cm3=entry["volume_cm3"],
        bulk_density_kg_m3=entry["bulk_density_kg_m3"],
        ucs_kpa=entry["ucs_kpa"],
        note=entry["note"],
        source=entry["source"],
        sheet_id=entry["sheet_id"],
        entered_at=datetime.now(UTC),
        entered_by=entry["entered_by"],
    )


def _sheet_refused(errors: Sequence[RowError]) -> InvalidInput:
    ordered = sorted(errors, key=lambda e: e.row)
    first = ordered[0]
    rows = len({e.row for e in ordered})
    return InvalidInput(
        "csv",
        f"the lab sheet was not imported: {len(ordered)} error(s) in {rows} row(s); first: "
        f"row {first.row}, {first.field}: {first.message}",
        errors=[e.to_dict() for e in ordered],
    )
