"""svc_drift_events: the drift monitor's alerts and fallback; svc_decisions.fallback: why
a decision was made by the heuristic router while the models were withdrawn.

Revision ID: 3d9f5b2c7e41
Revises: 3d9a6c0b1e57
Created: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3d9f5b2c7e41"
down_revision = "3d9a6c0b1e57"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "svc_drift_events",
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("family", sa.String(), nullable=False),
        sa.Column("figure", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("ts_ns", "kind", "family", "figure"),
    )
    # batch: SQLite adds a nullable column in place, PostgreSQL too
    with op.batch_alter_table("svc_decisions") as batch:
        batch.add_column(sa.Column("fallback", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("svc_decisions") as batch:
        batch.drop_column("fallback")
    op.drop_table("svc_drift_events")
