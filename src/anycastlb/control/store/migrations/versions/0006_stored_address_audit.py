"""No schema change: refuse to run on addresses an earlier release stored that are invalid now

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Why a migration: it runs once, under the migration lock, before this release serves a request.
Every row it reports was written through an API that accepted scope ids, IPv4-mapped or non-unicast
addresses (control/store/address_audit.py says why nothing is changed automatically).
"""

from alembic import op
from sqlalchemy import text

from anycastlb.control.store.address_audit import stored_address_problems

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    problems = stored_address_problems(
        bind.execute(
            text(
                "SELECT addresses.id, addresses.address, tenants.name FROM addresses "
                "LEFT JOIN tenants ON tenants.id = addresses.tenant_id"
            )
        ).all(),
        bind.execute(text("SELECT name, networks FROM pools")).all(),
        bind.execute(
            text(
                "SELECT load_balancers.id, tenants.name, load_balancers.name, load_balancers.spec "
                "FROM load_balancers JOIN tenants ON tenants.id = load_balancers.tenant_id"
            )
        ).all(),
    )
    if problems:
        lines = "\n".join(f"  - {problem.line()}" for problem in problems)
        raise RuntimeError(
            f"the store holds {len(problems)} address(es) this release refuses (written before IPv6 "
            "scope ids, IPv4-mapped and non-unicast addresses were refused). Nothing was changed. "
            f"Fix each, then start again:\n{lines}"
        )


def downgrade() -> None:
    pass  # nothing was changed
