"""Initial schema: calibrations, recipes, pours, audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("example", sa.Integer, nullable=False),
        sa.Column("model", sa.JSON, nullable=False),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_calibrations_name_version"),
    )
    op.create_table(
        "recipes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=True),
        sa.Column("calibration_id", sa.String(36), sa.ForeignKey("calibrations.id"), nullable=True),
        sa.Column("mix", sa.JSON, nullable=False),
        sa.Column("design", sa.JSON, nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_recipes_name_version"),
    )
    op.create_table(
        "pours",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("stope_id", sa.String(100), nullable=False),
        sa.Column("recipe_id", sa.String(36), sa.ForeignKey("recipes.id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("target_volume_m3", sa.Float, nullable=False),
        sa.Column("paste_flow_m3_h", sa.Float, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("totals", sa.JSON, nullable=False),
        sa.Column("interruptions", sa.JSON, nullable=False),
        sa.Column("sample_ids", sa.JSON, nullable=False),
        sa.Column("checkpoint_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_pours_state", "pours", ["state"])
    op.create_index("ix_pours_stope", "pours", ["stope_id"])
    op.create_table(
        "audit",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("pour_id", sa.String(36), nullable=True),
        sa.Column("seq", sa.BigInteger, nullable=True),
        sa.Column("acknowledged", sa.Integer, nullable=True),
        sa.Column("old", sa.JSON, nullable=True),
        sa.Column("new", sa.JSON, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_pour", "audit", ["pour_id"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("pours")
    op.drop_table("recipes")
    op.drop_table("calibrations")
