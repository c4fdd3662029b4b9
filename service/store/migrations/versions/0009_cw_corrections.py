"""Cw reconciliation: corrections of the tailings Gs (or of the paste density gauge)
estimated from the lab's Cw of cylinders against the Cw the plant recorded for the same
paste, proposed by the service and approved by an engineer; and the correction a pour
was started under (``pours.correction``, None for every pour stored before: they ran on
their recipe's Gs and the gauge as read).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cw_corrections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=True),
        sa.Column("tailings_sg", sa.Float, nullable=True),
        sa.Column("density_bias_kg_m3", sa.Float, nullable=True),
        sa.Column("assumed_tailings_sg", sa.Float, nullable=False),
        sa.Column("reconciliation", sa.JSON, nullable=False),
        sa.Column("sample_ids", sa.JSON, nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=True),
        sa.Column("approved_at", _TS, nullable=True),
    )
    op.create_index("ix_cw_corrections_status", "cw_corrections", ["status"])
    with op.batch_alter_table("pours") as batch:
        batch.add_column(sa.Column("correction", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pours") as batch:
        batch.drop_column("correction")
    op.drop_index("ix_cw_corrections_status", table_name="cw_corrections")
    op.drop_table("cw_corrections")
