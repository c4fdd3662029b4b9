"""People: every act is a named person's. The audit log names the person beside the
role (``audit.person``; None for every entry stored before, which named the role only,
and for the service's own acts), and a rheology calibration, in force once stored,
records who stored it as its approver (``approved_by``, ``approved_at``: the versions
stored before were approved when stored, by someone the store did not keep).

Entries stored before keep their hashes: an entry's person joins its hashed body only
when it has one, so the chain verifies across the upgrade.

Revision ID: 0010_people
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_people"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("person", sa.String(200), nullable=True))
    op.create_index("ix_audit_person", "audit", ["person"])
    with op.batch_alter_table("rheology_calibrations") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("approved_at", _TS, nullable=True))
    rheology = sa.table(
        "rheology_calibrations", sa.column("created_at", _TS), sa.column("approved_at", _TS)
    )
    op.execute(rheology.update().values(approved_at=rheology.c.created_at))


def downgrade() -> None:
    with op.batch_alter_table("rheology_calibrations") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
    op.drop_index("ix_audit_person", table_name="audit")
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("person")
