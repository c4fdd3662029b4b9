"""The lab loop: cylinder samples cast from pours, their laboratory results (append-only:
a correction is a new entry naming the one it corrects), and the status of a strength
calibration (approved, or proposed by a refit from lab results until an engineer
approves it).

Every calibration already stored is approved (it was approved by being stored). The
sample ids already kept on pours become sample records, cast at the pour's start (or its
creation when it never started), their placed volume unknown, source ``migrated``; an
id found on two pours belongs to the older one (sample ids are unique from now on).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
# The planned test ages of a migrated sample (the service's default at this revision).
_TEST_AGES_DAYS = [3.0, 7.0, 28.0]
log = logging.getLogger(__name__)


def upgrade() -> None:
    with op.batch_alter_table("calibrations") as batch:
        batch.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="approved")
        )
        batch.add_column(sa.Column("approved_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("approved_at", _TS, nullable=True))
        batch.add_column(sa.Column("proposed_from", sa.String(36), nullable=True))
        batch.add_column(sa.Column("proposal", sa.JSON, nullable=True))
    calibrations = sa.table(
        "calibrations",
        sa.column("created_at", _TS),
        sa.column("approved_at", _TS),
    )
    op.execute(calibrations.update().values(approved_at=calibrations.c.created_at))

    samples = op.create_table(
        "samples",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("pour_id", sa.String(36), sa.ForeignKey("pours.id"), nullable=False),
        sa.Column("cast_at", _TS, nullable=False),
        sa.Column("placed_m3", sa.Float, nullable=True),
        sa.Column("test_ages_days", sa.JSON, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
    )
    op.create_index("ix_samples_pour", "samples", ["pour_id"])
    op.create_table(
        "lab_results",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sample_id", sa.String(64), sa.ForeignKey("samples.id"), nullable=False),
        sa.Column(
            "corrects", sa.String(36), sa.ForeignKey("lab_results.id"), nullable=True, unique=True
        ),
        sa.Column("cast_at", _TS, nullable=True),
        sa.Column("tested_at", _TS, nullable=True),
        sa.Column("curing_days", sa.Float, nullable=True),
        sa.Column("wet_mass_g", sa.Float, nullable=True),
        sa.Column("dry_mass_g", sa.Float, nullable=True),
        sa.Column("volume_cm3", sa.Float, nullable=True),
        sa.Column("bulk_density_kg_m3", sa.Float, nullable=True),
        sa.Column("ucs_kpa", sa.Float, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("sheet_id", sa.String(36), nullable=True),
        sa.Column("entered_at", _TS, nullable=False),
        sa.Column("entered_by", sa.String(40), nullable=False),
    )
    op.create_index("ix_lab_results_sample", "lab_results", ["sample_id"])
    _samples_of_stored_pours(samples)


def _samples_of_stored_pours(samples: sa.Table) -> None:
    pours = sa.table(
        "pours",
        sa.column("id", sa.String),
        sa.column("created_at", _TS),
        sa.column("started_at", _TS),
        sa.column("sample_ids", sa.JSON),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(pours.c.id, pours.c.created_at, pours.c.started_at, pours.c.sample_ids).order_by(
            pours.c.created_at, pours.c.id
        )
    ).all()
    now = datetime.now(UTC)
    owner: dict[str, str] = {}
    values = []
    for pour_id, created_at, started_at, sample_ids in rows:
        for sample_id in sample_ids or []:
            sample = str(sample_id)
            if sample in owner:
                if owner[sample] != pour_id:
                    log.warning(
                        "sample %s is on pours %s and %s: kept for the older one",
                        sample,
                        owner[sample],
                        pour_id,
                    )
                continue
            owner[sample] = pour_id
            values.append(
                {
                    "id": sample,
                    "pour_id": pour_id,
                    "cast_at": started_at or created_at,
                    "placed_m3": None,
                    "test_ages_days": list(_TEST_AGES_DAYS),
                    "source": "migrated",
                    "created_at": now,
                    "created_by": "migration",
                }
            )
    if values:
        op.bulk_insert(samples, values)


def downgrade() -> None:
    op.drop_index("ix_lab_results_sample", table_name="lab_results")
    op.drop_table("lab_results")
    op.drop_index("ix_samples_pour", table_name="samples")
    op.drop_table("samples")
    with op.batch_alter_table("calibrations") as batch:
        for column in ("proposal", "proposed_from", "approved_at", "approved_by", "status"):
            batch.drop_column(column)
