"""The journal's tables (svc_*) as `create_all` made them before migrations.

Revision ID: ccce9fbdaf9d
Revises:
Created: 2026-12-05 23:31:44.757212

A database made before migrations has some or all of these tables and no version
table: the tables it has are kept as they are, with their rows, and only the missing
ones are created (as `create_all` did), so that it ends at this revision like a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ccce9fbdaf9d"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "svc_parents" not in have:
        op.create_table(
            "svc_parents",
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("client", sa.String(), nullable=False),
            sa.Column("cl_ord_id", sa.String(), nullable=False),
            sa.Column("orig_cl_ord_id", sa.String(), nullable=False),
            sa.Column("symbol", sa.String(), nullable=False),
            sa.Column("side", sa.String(), nullable=False),
            sa.Column("qty", sa.BigInteger(), nullable=False),
            sa.Column("ord_type", sa.String(), nullable=False),
            sa.Column("limit_price", sa.Float(), nullable=True),
            sa.Column("strategy", sa.String(), nullable=False),
            sa.Column("participation", sa.Float(), nullable=True),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("start_ns", sa.BigInteger(), nullable=False),
            sa.Column("end_ns", sa.BigInteger(), nullable=False),
            sa.Column("filled_qty", sa.BigInteger(), nullable=False),
            sa.Column("notional", sa.Float(), nullable=False),
            sa.Column("fees", sa.Float(), nullable=False),
            sa.Column("arrival_mid", sa.Float(), nullable=False),
            sa.Column("n_children", sa.Integer(), nullable=False),
            sa.Column("n_fills", sa.Integer(), nullable=False),
            sa.Column("n_rfqs", sa.Integer(), nullable=False),
            sa.Column("text", sa.String(), nullable=False),
            sa.Column("created_ns", sa.BigInteger(), nullable=False),
            sa.Column("updated_ns", sa.BigInteger(), nullable=False),
            sa.Column("tca_json", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("parent_id"),
        )
        op.create_index("ix_svc_parents_status", "svc_parents", ["status"])
    if "svc_clordids" not in have:
        op.create_table(
            "svc_clordids",
            sa.Column("client", sa.String(), nullable=False),
            sa.Column("cl_ord_id", sa.String(), nullable=False),
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("client", "cl_ord_id"),
        )
        op.create_index("ix_svc_clordids_parent_id", "svc_clordids", ["parent_id"])
    if "svc_children" not in have:
        op.create_table(
            "svc_children",
            sa.Column("child_id", sa.String(), nullable=False),
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("venue", sa.String(), nullable=False),
            sa.Column("side", sa.String(), nullable=False),
            sa.Column("qty", sa.BigInteger(), nullable=False),
            sa.Column("ord_type", sa.String(), nullable=False),
            sa.Column("tif", sa.String(), nullable=False),
            sa.Column("limit_ticks", sa.BigInteger(), nullable=True),
            sa.Column("post_only", sa.Boolean(), nullable=False),
            sa.Column("min_qty", sa.BigInteger(), nullable=False),
            sa.Column("quote_id", sa.String(), nullable=True),
            sa.Column("sent_ns", sa.BigInteger(), nullable=False),
            sa.Column("filled_qty", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("updated_ns", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("child_id"),
        )
        op.create_index("ix_svc_children_parent_status", "svc_children", ["parent_id", "status"])
    if "svc_fills" not in have:
        op.create_table(
            "svc_fills",
            sa.Column("exec_id", sa.String(), nullable=False),
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("child_id", sa.String(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.Column("venue", sa.String(), nullable=False),
            sa.Column("venue_kind", sa.String(), nullable=False),
            sa.Column("qty", sa.BigInteger(), nullable=False),
            sa.Column("price", sa.Float(), nullable=False),
            sa.Column("fee", sa.Float(), nullable=False),
            sa.Column("liquidity", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("exec_id"),
        )
        op.create_index("ix_svc_fills_parent_id", "svc_fills", ["parent_id"])
    if "svc_decisions" not in have:
        op.create_table(
            "svc_decisions",
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("decision_id", sa.String(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.Column("chosen", sa.Text(), nullable=False),
            sa.Column("inputs_json", sa.Text(), nullable=False),
            sa.Column("alternatives_json", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("parent_id", "seq"),
        )
    if "svc_schedule" not in have:
        op.create_table(
            "svc_schedule",
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.Column("target_qty", sa.BigInteger(), nullable=False),
            sa.Column("filled_qty", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("parent_id", "seq"),
        )
    if "svc_rfq_events" not in have:
        op.create_table(
            "svc_rfq_events",
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("rfq_id", sa.String(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.Column("what", sa.String(), nullable=False),
            sa.Column("detail_json", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("parent_id", "seq"),
        )
        op.create_index("ix_svc_rfq_events_rfq_id", "svc_rfq_events", ["rfq_id"])
    if "svc_meta" not in have:
        op.create_table(
            "svc_meta",
            sa.Column("key", sa.String(), nullable=False),
            sa.Column("value", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
    if "svc_quarantine" not in have:
        op.create_table(
            "svc_quarantine",
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("parent_id"),
        )


def downgrade() -> None:
    for table in (
        "svc_quarantine",
        "svc_meta",
        "svc_rfq_events",
        "svc_schedule",
        "svc_decisions",
        "svc_fills",
        "svc_children",
        "svc_clordids",
        "svc_parents",
    ):
        op.drop_table(table)
