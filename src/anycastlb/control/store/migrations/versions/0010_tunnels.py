"""clusters, cluster_pop_keys, cluster_nodes, pops.tunnel_endpoint: WireGuard tunnels (issue 15)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

New tables and one nullable column; nothing here depends on 0009 (written in parallel with it).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pops", sa.Column("tunnel_endpoint", sa.String(45), nullable=True))
    op.create_table(
        "clusters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False
        ),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("tunnels", sa.Boolean(), nullable=False),
        sa.Column("network", sa.String(49), nullable=False, unique=True),
        sa.Column("listen_port", sa.Integer(), nullable=False, unique=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_clusters_tenant_name"),
    )
    op.create_table(
        "cluster_pop_keys",
        sa.Column(
            "cluster_id", sa.Integer(), sa.ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("pop_id", sa.Integer(), sa.ForeignKey("pops.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("private_key", sa.String(44), nullable=False),
        sa.Column("public_key", sa.String(44), nullable=False),
        sa.Column("address", sa.String(45), nullable=False),
    )
    op.create_table(
        "cluster_nodes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "cluster_id", sa.Integer(), sa.ForeignKey("clusters.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("private_key", sa.String(44), nullable=False),
        sa.Column("public_key", sa.String(44), nullable=False),
        sa.Column("address", sa.String(45), nullable=False),
        sa.Column("previous_public_key", sa.String(44), nullable=True),
        sa.Column("previous_address", sa.String(45), nullable=True),
        sa.Column("previous_until", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("cluster_id", "name", name="uq_cluster_nodes_name"),
    )


def downgrade() -> None:
    op.drop_table("cluster_nodes")
    op.drop_table("cluster_pop_keys")
    op.drop_table("clusters")
    with op.batch_alter_table("pops") as batch:
        batch.drop_column("tunnel_endpoint")
