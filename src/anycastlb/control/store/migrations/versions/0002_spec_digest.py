"""load_balancers.spec_digest: what a controller compares instead of PUTting every spec on start

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no backfill: a row gets its digest at its next PUT, even an unchanged one.
    with op.batch_alter_table("load_balancers") as batch:
        batch.add_column(sa.Column("spec_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("load_balancers") as batch:
        batch.drop_column("spec_digest")
