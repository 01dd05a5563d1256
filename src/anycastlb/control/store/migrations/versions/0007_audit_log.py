"""audit_log: every change made through the API, written in the same transaction as the change

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("actor_kind", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(63), nullable=False),
        sa.Column("actor_token", sa.String(32), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_name", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=True),
        sa.Column("version_before", sa.Integer(), nullable=True),
        sa.Column("version_after", sa.Integer(), nullable=True),
    )
    op.create_index("ix_audit_log_tenant", "audit_log", ["tenant", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_tenant", table_name="audit_log")
    op.drop_table("audit_log")
