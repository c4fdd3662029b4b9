"""Recipe approval: when an engineer approved a version (``approved_at``).

Versions stored before this revision with ``approved_by`` were approved when they were
stored (the API required an approver then): they get ``approved_at = created_at``.
Inline recipes of pours (no approver) stay unapproved.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recipes") as batch:
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE recipes SET approved_at = created_at WHERE approved_by IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("recipes") as batch:
        batch.drop_column("approved_at")
