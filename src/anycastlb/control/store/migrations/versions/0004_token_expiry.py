"""api_tokens.expires_at and the token_generation counter: token expiry, rotation, and revocation
that every replica sees within a second

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no backfill: tokens issued before this release never expire, as they were issued.
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "token_generation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    op.execute("INSERT INTO token_generation (id, value) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("token_generation")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
