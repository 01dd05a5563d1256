"""pools.sni_sharing: whether tenants may share a pool's addresses by SNI (issue 15)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

One column with a server default, so existing pools keep today's rule (sharing within a tenant only).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.add_column(sa.Column("sni_sharing", sa.String(8), nullable=False, server_default="tenant"))


def downgrade() -> None:
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("sni_sharing")
