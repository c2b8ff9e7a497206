"""Alembic environment: migrations run over a short-lived synchronous psycopg connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from hubgate.db.models import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    # One migration at a time even when several processes start together.
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7041981)")
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
