"""Rheology calibrations: yield stress (and plastic viscosity) of the mine's paste
fitted from its own slump or vane tests, versioned like strength calibrations.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rheology_calibrations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("example", sa.Integer, nullable=False),
        sa.Column("model", sa.JSON, nullable=False),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_rheology_calibrations_name_version"),
    )


def downgrade() -> None:
    op.drop_table("rheology_calibrations")
