"""The lab loop: samples, laboratory results (one at a time or a lab sheet), compliance
and the open notices."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from service.api.deps import LabDep, PathId, RuntimeDep
from service.api.routes import api_router
from service.api.schemas.common import ID_PATTERN
from service.api.schemas.samples import (
    CompliancePublic,
    JudgementPublic,
    LabResultCreate,
    LabResultPublic,
    LabSheetImport,
    LabSheetPublic,
    NoticeList,
    NoticePublic,
    PassFractionPublic,
    PourBasisPublic,
    RequirementUsedPublic,
    RunningAveragePublic,
    SampleList,
    SamplePublic,
    StrengthTestPublic,
)
from service.core.compliance import Notice
from service.core.people import actor_of
from service.operations.lab import (
    Compliance,
    LabService,
    SampleView,
    corrections,
    lab_result_of,
)
from service.store.records import LabResultRecord, SampleRecord

router = api_router("lab")


async def get_lab(runtime: RuntimeDep) -> LabService:
    return runtime.lab


LabServiceDep = Annotated[LabService, Depends(get_lab)]


# --- mapping to the public schemas ----------------------------------------------------


def result_public(
    entry: LabResultRecord, sample: SampleRecord, corrected_by: str | None
) -> LabResultPublic:
    result = lab_result_of(entry, sample)
    solids = result.solids_fraction
    return LabResultPublic(
        id=entry.id,
        sample_id=entry.sample_id,
        pour_id=sample.pour_id,
        corrects=entry.corrects,
        corrected_by=corrected_by,
        current=corrected_by is None,
        cast_at=result.cast_at,
        tested_at=entry.tested_at,
        curing_days=entry.curing_days,
        age_days=result.age_days,
        ucs_kpa=entry.ucs_kpa,
        wet_mass_g=entry.wet_mass_g,
        dry_mass_g=entry.dry_mass_g,
        solids_pct=None if solids is None else solids * 100.0,
        volume_cm3=entry.volume_cm3,
        bulk_density_kg_m3=entry.bulk_density_kg_m3,
        note=entry.note,
        source=entry.source,
        sheet_id=entry.sheet_id,
        entered_at=entry.entered_at,
        entered_by=entry.entered_by,
    )


def sample_public(view: SampleView) -> SamplePublic:
    s = view.sample
    corrected = view.corrected
    return SamplePublic(
        id=s.id,
        pour_id=s.pour_id,
        cast_at=s.cast_at,
        placed_m3=s.placed_m3,
        test_ages_days=s.test_ages_days,
        source=s.source,
        created_at=s.created_at,
        created_by=s.created_by,
        results=[result_public(e, s, corrected.get(e.id)) for e in view.entries],
    )


def notice_public(notice: Notice) -> NoticePublic:
    return NoticePublic(
        kind=notice.kind,
        severity=notice.severity.value,
        detail=notice.detail,
        sample_id=notice.sample_id,
        pour_id=notice.pour_id,
        stope_id=notice.stope_id,
        stage_id=notice.stage_id,
        requirement=notice.requirement,
        due_at=notice.due_at,
    )


def compliance_public(compliance: Compliance) -> CompliancePublic:
    report = compliance.report
    return CompliancePublic(
        scope=compliance.scope,
        id=compliance.subject_id,
        stope=compliance.stope,
        evaluated_at=compliance.evaluated_at,
        pours=[
            PourBasisPublic(
                pour_id=b.pour.id,
                stope_id=b.pour.stope_id,
                stage=b.pour.stage,
                stage_name=b.stage_name,
                recipe_id=b.pour.recipe_id,
                requirements_from=b.source,
                requirements=[
                    RequirementUsedPublic(
                        name=r.name,
                        required_ucs_kpa=r.required_ucs_kpa,
                        curing_days=r.curing_days,
                        design_pass_pct=(
                            None
                            if r.design_pass_fraction is None
                            else r.design_pass_fraction * 100.0
                        ),
                    )
                    for r in b.requirements
                ],
            )
            for b in compliance.bases
        ],
        samples=len(compliance.plans),
        pass_fractions=[
            PassFractionPublic.model_validate(p.to_dict()) for p in report.pass_fractions
        ],
        judgements=[
            JudgementPublic(
                sample_id=j.sample_id,
                pour_id=j.pour_id,
                stope_id=j.stope_id,
                stage_id=j.stage_id,
                requirement=j.requirement,
                required_ucs_kpa=j.required_ucs_kpa,
                requirement_days=j.requirement_days,
                age_days=j.age_days,
                ucs_kpa=j.ucs_kpa,
                margin_kpa=j.margin_kpa,
                passed=j.passed,
            )
            for j in report.judgements
        ],
        tests=[StrengthTestPublic.model_validate(t.to_dict()) for t in report.tests],
        running_averages=[
            RunningAveragePublic.model_validate(a.to_dict()) for a in report.running_averages
        ],
        notices=[notice_public(n) for n in report.notices],
    )


# --- routes ---------------------------------------------------------------------------


@router.get("/samples", response_model=SampleList)
async def list_samples(
    lab: LabServiceDep,
    pour_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> SampleList:
    """Samples, newest cast first (``?pour_id=`` for one pour's), with every entry."""
    views = await lab.samples(pour_id=pour_id, limit=limit, offset=offset)
    return SampleList(items=[sample_public(v) for v in views])


@router.get("/samples/{sample_id}", response_model=SamplePublic)
async def get_sample(sample_id: PathId, lab: LabServiceDep) -> SamplePublic:
    return sample_public(await lab.sample(sample_id))


@router.post("/samples/{sample_id}/results", status_code=201, response_model=LabResultPublic)
async def enter_result(
    sample_id: PathId, req: LabResultCreate, who: LabDep, lab: LabServiceDep
) -> LabResultPublic:
    """One laboratory result of a sample, entered once (a second result at an age it
    has one for is a 409 ``lab_result_exists``); a correction is a new entry naming the
    one it ``corrects``."""
    entry, sample = await lab.enter_result(
        sample_id,
        by=actor_of(who),
        cast_at=req.cast_at,
        tested_at=req.tested_at,
        curing_days=req.curing_days,
        wet_mass_g=req.wet_mass_g,
        dry_mass_g=req.dry_mass_g,
        volume_cm3=req.volume_cm3,
        bulk_density_kg_m3=req.bulk_density_kg_m3,
        ucs_kpa=req.ucs_kpa,
        corrects=req.corrects,
        note=req.note,
    )
    return result_public(entry, sample, None)


@router.post("/lab/sheets", status_code=201, response_model=LabSheetPublic)
async def import_sheet(req: LabSheetImport, who: LabDep, lab: LabServiceDep) -> LabSheetPublic:
    """A lab sheet (CSV), imported whole or not at all: a bad row (a value, a sample no
    pour cast, a second result at an age) refuses the sheet, 422 with ``errors`` listing
    every bad row (row = line of the file, field, message; the first
    ``BACKFILL_API__MAX_ERRORS_LISTED``, ``errors_omitted`` counting the rest)."""
    done = await lab.import_sheet(req.csv, timezone=req.timezone, by=actor_of(who))
    corrected = corrections(done.results)
    return LabSheetPublic(
        sheet_id=done.sheet_id,
        imported=len(done.results),
        results=[
            result_public(e, done.samples[e.sample_id], corrected.get(e.id)) for e in done.results
        ],
        ignored_columns=list(done.ignored_columns),
    )


@router.get("/lab/notices", response_model=NoticeList)
async def notices(lab: LabServiceDep) -> NoticeList:
    """The open notices of every sample, most severe first: a grossly low strength test
    or a running average of consecutive tests below the requirement (high), a group
    below its design's pass fraction (high), a test overdue (not tested by its age plus
    a grace of 2 days), a single low cylinder (information: a design at p expects 1 - p
    of them)."""
    evaluated_at, found = await lab.notices()
    return NoticeList(evaluated_at=evaluated_at, items=[notice_public(n) for n in found])


@router.get("/pours/{pour_id}/compliance", response_model=CompliancePublic)
async def pour_compliance(pour_id: PathId, lab: LabServiceDep) -> CompliancePublic:
    """The pour's cylinders against the requirements at their ages (its stage's in the
    fill plan, else its recipe's design's), its strength tests (the cylinders cast
    together, averaged), the pass fraction against the design's, and the notices."""
    return compliance_public(await lab.pour_compliance(pour_id))
