"""The writer lease: which instance may write to the PLC, with a fencing epoch.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lease = op.create_table(
        "writer_lease",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(
        lease,
        # Expired long ago: the first instance to ask is elected.
        [{"id": 1, "holder": "", "epoch": 0, "expires_at": datetime(2000, 1, 1, tzinfo=UTC)}],
    )


def downgrade() -> None:
    op.drop_table("writer_lease")
