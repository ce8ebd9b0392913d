"""Alembic's environment for the team server: migrations run on the connection
tokline.server.migrate hands over (no alembic.ini, no URL in any file)."""

from alembic import context

from tokline.server.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
