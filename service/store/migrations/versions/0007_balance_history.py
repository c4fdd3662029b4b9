"""The balance across the mixer in the history: the mass balance residual (in - out,
t/h) of each cycle judged, and the averaged disagreement over its alarm threshold.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NEW_TAGS = ("mass_balance_residual_t_h", "instrument_disagreement")


def upgrade() -> None:
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
