"""svc_parents.model_arm and .model_versions: the algo wheel's arm that runs a parent
(champion, challenger) and the versions of its models at its start (router.wheel).
Nullable: the parents before it, and those outside the wheel, have none.

Revision ID: 3d9a6c0b1e57
Revises: 8c41d2e9a7f0
Created: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3d9a6c0b1e57"
down_revision = "8c41d2e9a7f0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch: SQLite cannot alter a table in place beyond adding columns; both are
    # nullable, so the rows there keep their values and get null
    with op.batch_alter_table("svc_parents") as batch:
        batch.add_column(sa.Column("model_arm", sa.String(), nullable=True))
        batch.add_column(sa.Column("model_versions", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("svc_parents") as batch:
        batch.drop_column("model_versions")
        batch.drop_column("model_arm")
