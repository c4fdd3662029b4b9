"""Measurement history: raw samples and minute aggregates.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The tag list as of this revision (a later change of columns is a later migration).
_TAGS = (
    "tailings_flow_pv",
    "tailings_density_pv",
    "cement_rate_pv",
    "slag_rate_pv",
    "flyash_rate_pv",
    "water_flow_pv",
    "paste_flow_pv",
    "paste_density_pv",
    "pump_pressure_pv",
    "mixer_level_pv",
    "plant_mode",
    "tailings_flow_sp",
    "cement_rate_sp",
    "slag_rate_sp",
    "flyash_rate_sp",
    "water_flow_sp",
    "paste_density_sp",
    "solids_pct",
    "binder_pct",
    "solids_pct_target",
    "binder_pct_target",
)


def upgrade() -> None:
    op.create_table(
        "history_raw",
        sa.Column("ts_ms", sa.BigInteger, primary_key=True, autoincrement=False),
        *(sa.Column(t, sa.Float, nullable=True) for t in _TAGS),
    )
    op.create_table(
        "history_minute",
        sa.Column("ts_ms", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("samples", sa.Integer, nullable=False),
        *(
            sa.Column(f"{t}_{a}", sa.Float, nullable=True)
            for t in _TAGS
            for a in ("avg", "min", "max")
        ),
    )


def downgrade() -> None:
    op.drop_table("history_minute")
    op.drop_table("history_raw")
