"""svc_model_aliases: every move of a model alias (champion, challenger), with who and why.

Revision ID: 5b0e7a1c2d34
Revises: ccce9fbdaf9d
Created: 2026-12-06 08:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5b0e7a1c2d34"
down_revision = "ccce9fbdaf9d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "svc_model_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_svc_model_aliases_family_alias", "svc_model_aliases", ["family", "alias"])


def downgrade() -> None:
    op.drop_index("ix_svc_model_aliases_family_alias", table_name="svc_model_aliases")
    op.drop_table("svc_model_aliases")
