"""tenants.allowed_backend_networks: private networks the admin lets one tenant use as backends

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no backfill: NULL means an empty list (no private backends), the safe default.
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("allowed_backend_networks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("allowed_backend_networks")
