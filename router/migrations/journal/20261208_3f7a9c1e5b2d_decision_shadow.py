"""svc_decisions.shadow_json: what the challengers of the models a decision asked would
have answered (shadow mode), NULL when no challenger was asked.

Revision ID: 3f7a9c1e5b2d
Revises: 3d9f5b2c7e41
Created: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3f7a9c1e5b2d"
down_revision = "3d9f5b2c7e41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no default: the rows before it asked no challenger
    with op.batch_alter_table("svc_decisions") as batch:
        batch.add_column(sa.Column("shadow_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("svc_decisions") as batch:
        batch.drop_column("shadow_json")
