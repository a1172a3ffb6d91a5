"""The run store's tables as `create_all` made them before migrations.

Revision ID: 3579e5fa01fa
Revises:
Created: 2026-12-05 23:31:43.847558

A database made before migrations has some or all of these tables and no version
table: the tables it has are kept as they are, with their rows, and only the missing
ones are created (as `create_all` did), so that it ends at this revision like a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3579e5fa01fa"
down_revision = None
branch_labels = None
depends_on = None


def _run_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE")


def _parent_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id", "parent_id"],
        ["parent_orders.run_id", "parent_orders.parent_id"],
        ondelete="CASCADE",
    )


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "runs" not in have:
        op.create_table(
            "runs",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("scenario", sa.String(), nullable=False),
            sa.Column("seed", sa.BigInteger(), nullable=False),
            sa.Column("strategy", sa.String(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("batch", sa.String(), nullable=True),
            sa.Column("is_bps", sa.Float(), nullable=True),
            sa.Column("filled_qty", sa.BigInteger(), nullable=False),
            sa.Column("avg_price", sa.Float(), nullable=False),
            sa.Column("completion", sa.Float(), nullable=False),
            sa.Column("n_child_orders", sa.Integer(), nullable=False),
            sa.Column("tca_json", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("run_id"),
        )
        op.create_index("ix_runs_batch", "runs", ["batch"])
    if "parent_orders" not in have:
        op.create_table(
            "parent_orders",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("symbol", sa.String(), nullable=False),
            sa.Column("side", sa.String(), nullable=False),
            sa.Column("qty", sa.BigInteger(), nullable=False),
            sa.Column("start_ns", sa.BigInteger(), nullable=False),
            sa.Column("horizon_ns", sa.BigInteger(), nullable=False),
            sa.Column("limit_ticks", sa.BigInteger(), nullable=True),
            sa.Column("arrival_mid", sa.Float(), nullable=True),
            sa.Column("filled_qty", sa.BigInteger(), nullable=False),
            sa.Column("avg_price", sa.Float(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("run_id", "parent_id"),
            _run_fk(),
        )
    if "child_orders" not in have:
        op.create_table(
            "child_orders",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("child_id", sa.String(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("venue", sa.String(), nullable=False),
            sa.Column("side", sa.String(), nullable=False),
            sa.Column("qty", sa.BigInteger(), nullable=False),
            sa.Column("ord_type", sa.String(), nullable=False),
            sa.Column("tif", sa.String(), nullable=False),
            sa.Column("limit_ticks", sa.BigInteger(), nullable=True),
            sa.Column("post_only", sa.Boolean(), nullable=False),
            sa.Column("min_qty", sa.BigInteger(), nullable=False),
            sa.Column("conditional", sa.Boolean(), nullable=False),
            sa.Column("sent_ns", sa.BigInteger(), nullable=False),
            sa.Column("filled_qty", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("run_id", "child_id"),
            _run_fk(),
            _parent_fk(),
        )
        op.create_index("ix_child_orders_run_parent", "child_orders", ["run_id", "parent_id"])
    if "decisions" not in have:
        op.create_table(
            "decisions",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("decision_id", sa.String(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("parent_id", sa.String(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.Column("chosen", sa.String(), nullable=False),
            sa.Column("inputs_json", sa.Text(), nullable=False),
            sa.Column("alternatives_json", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("run_id", "decision_id"),
            _run_fk(),
            _parent_fk(),
        )
        op.create_index("ix_decisions_run_parent", "decisions", ["run_id", "parent_id"])
    if "rfqs" not in have:
        op.create_table(
            "rfqs",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("rfq_id", sa.String(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("parent_id", sa.String(), nullable=True),
            sa.Column("symbol", sa.String(), nullable=False),
            sa.Column("side", sa.String(), nullable=True),
            sa.Column("qty", sa.BigInteger(), nullable=False),
            sa.Column("dealers", sa.Text(), nullable=False),
            sa.Column("n_dealers", sa.Integer(), nullable=False),
            sa.Column("time_limit_s", sa.Float(), nullable=False),
            sa.Column("requested_at", sa.BigInteger(), nullable=False),
            sa.Column("closed_at", sa.BigInteger(), nullable=True),
            sa.Column("n_quotes", sa.Integer(), nullable=True),
            sa.Column("ended_at", sa.BigInteger(), nullable=True),
            sa.Column("state", sa.String(), nullable=True),
            sa.Column("traded_qty", sa.BigInteger(), nullable=True),
            sa.PrimaryKeyConstraint("run_id", "rfq_id"),
            _run_fk(),
            _parent_fk(),
        )
        op.create_index("ix_rfqs_run_parent", "rfqs", ["run_id", "parent_id"])
    if "fills" not in have:
        op.create_table(
            "fills",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("child_id", sa.String(), nullable=False),
            sa.Column("venue", sa.String(), nullable=False),
            sa.Column("ts_ns", sa.BigInteger(), nullable=False),
            sa.Column("qty", sa.BigInteger(), nullable=False),
            sa.Column("price", sa.Float(), nullable=False),
            sa.Column("fee", sa.Float(), nullable=False),
            sa.Column("liquidity", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("run_id", "seq"),
            _run_fk(),
            sa.ForeignKeyConstraint(
                ["run_id", "child_id"],
                ["child_orders.run_id", "child_orders.child_id"],
                ondelete="CASCADE",
            ),
        )
        op.create_index("ix_fills_run_child", "fills", ["run_id", "child_id"])
    if "rfq_legs" not in have:
        op.create_table(
            "rfq_legs",
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("rfq_id", sa.String(), nullable=False),
            sa.Column("dealer", sa.String(), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("outcome", sa.String(), nullable=False),
            sa.Column("response_ms", sa.Float(), nullable=True),
            sa.Column("quote_id", sa.String(), nullable=True),
            sa.Column("quote_qty", sa.BigInteger(), nullable=True),
            sa.Column("bid", sa.Float(), nullable=True),
            sa.Column("offer", sa.Float(), nullable=True),
            sa.Column("valid_until", sa.BigInteger(), nullable=True),
            sa.Column("reject_reason", sa.String(), nullable=True),
            sa.Column("reject_text", sa.String(), nullable=True),
            sa.Column("late_reason", sa.String(), nullable=True),
            sa.Column("hit_qty", sa.BigInteger(), nullable=True),
            sa.Column("hit_price", sa.Float(), nullable=True),
            sa.Column("child_id", sa.String(), nullable=True),
            sa.Column("last_look_ms", sa.Float(), nullable=True),
            sa.Column("traded_qty", sa.BigInteger(), nullable=True),
            sa.Column("traded_price", sa.Float(), nullable=True),
            sa.Column("last_look_reason", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("run_id", "rfq_id", "dealer"),
            _run_fk(),
            sa.ForeignKeyConstraint(
                ["run_id", "rfq_id"], ["rfqs.run_id", "rfqs.rfq_id"], ondelete="CASCADE"
            ),
        )
        op.create_index("ix_rfq_legs_dealer", "rfq_legs", ["dealer"])


def downgrade() -> None:
    # foreign keys first: the referencing tables go before the ones they reference
    for table in (
        "rfq_legs",
        "fills",
        "rfqs",
        "decisions",
        "child_orders",
        "parent_orders",
        "runs",
    ):
        op.drop_table(table)
