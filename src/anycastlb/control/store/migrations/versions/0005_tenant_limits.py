"""tenants.max_load_balancers, tenants.max_addresses: the admin's per-tenant quota overrides

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: NULL means the process default (`anycastlb control --max-…-per-tenant`).
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("max_load_balancers", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_addresses", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("max_addresses")
        batch.drop_column("max_load_balancers")
