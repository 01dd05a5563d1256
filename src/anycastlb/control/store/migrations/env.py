"""Alembic environment: always run from :func:`anycastlb.control.store.engine.migrate`, which hands
over an open connection (there is no alembic.ini; the database URL is the control plane's flag)."""

from alembic import context

from anycastlb.control.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
