"""svc_model_aliases.forced and .override: a promotion that overrode the guard rail (a
challenger worse than the champion on the held-out set) and what it overrode.

Revision ID: 8c41d2e9a7f0
Revises: 5b0e7a1c2d34
Created: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "8c41d2e9a7f0"
down_revision = "5b0e7a1c2d34"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch: SQLite adds a NOT NULL column with a default in place, PostgreSQL too
    with op.batch_alter_table("svc_model_aliases") as batch:
        batch.add_column(
            sa.Column("forced", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("override", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("svc_model_aliases") as batch:
        batch.drop_column("override")
        batch.drop_column("forced")
