"""usage_epochs, usage_cursors, usage_buckets: traffic accounting per tenant, load balancer and VIP

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

New tables only. usage_buckets has no foreign keys: stored usage outlives what it was counted for.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_epochs",
        sa.Column("pop_id", sa.Integer(), sa.ForeignKey("pops.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("epoch", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "usage_cursors",
        sa.Column("pop_id", sa.Integer(), sa.ForeignKey("pops.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("listener", sa.String(63), primary_key=True),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("connections", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "usage_buckets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pop", sa.String(63), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("load_balancer_id", sa.String(36), nullable=False),
        sa.Column("load_balancer", sa.String(63), nullable=False),
        sa.Column("vip", sa.String(45), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("connections", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("start", "pop", "load_balancer_id", "vip", name="uq_usage_buckets_key"),
    )
    op.create_index("ix_usage_buckets_tenant_start", "usage_buckets", ["tenant_id", "start"])
    op.create_index("ix_usage_buckets_start", "usage_buckets", ["start"])


def downgrade() -> None:
    op.drop_index("ix_usage_buckets_start", table_name="usage_buckets")
    op.drop_index("ix_usage_buckets_tenant_start", table_name="usage_buckets")
    op.drop_table("usage_buckets")
    op.drop_table("usage_cursors")
    op.drop_table("usage_epochs")
