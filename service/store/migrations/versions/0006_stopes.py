"""Stopes and their fill plans: the stope (geometry, barricade), plan versions (stages
with their recipes, heights, rise rates and holds), the progress of the plan in force,
and which stage a pour belongs to.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_NEW_TAGS = ("barricade_pressure_pv", "fill_height_m")


def upgrade() -> None:
    op.create_table(
        "stopes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
    )
    op.create_table(
        "fill_plans",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("stope_id", sa.String(36), sa.ForeignKey("stopes.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.UniqueConstraint("stope_id", "version", name="uq_fill_plans_stope_version"),
    )
    op.create_table(
        "plan_progress",
        sa.Column("stope_id", sa.String(36), sa.ForeignKey("stopes.id"), primary_key=True),
        sa.Column("plan_id", sa.String(36), sa.ForeignKey("fill_plans.id"), nullable=False),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    with op.batch_alter_table("pours") as batch:
        batch.add_column(sa.Column("plan_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("stage", sa.Integer, nullable=True))
    # The history keeps the barricade pressure and the fill height of the stope filled.
    with op.batch_alter_table("history_raw") as batch:
        for tag in _NEW_TAGS:
            batch.add_column(sa.Column(tag, sa.Float, nullable=True))
    with op.batch_alter_table("history_minute") as batch:
        for tag in _NEW_TAGS:
            for agg in ("avg", "min", "max"):
                batch.add_column(sa.Column(f"{tag}_{agg}", sa.Float, nullable=True))


def downgrade() -> None:
    for table, columns in (
        ("history_minute", [f"{t}_{a}" for t in _NEW_TAGS for a in ("avg", "min", "max")]),
        ("history_raw", list(_NEW_TAGS)),
    ):
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column)
    with op.batch_alter_table("pours") as batch:
        batch.drop_column("stage")
        batch.drop_column("plan_id")
    op.drop_table("plan_progress")
    op.drop_table("fill_plans")
    op.drop_table("stopes")
