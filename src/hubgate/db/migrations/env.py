"""Alembic environment: migrations run over a short-lived synchronous psycopg connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from hubgate.db.models import metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # procrastinate's tables come from its own schema file (migration 0003), not from our
    # models: autogenerate must neither drop nor diff them.
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    # One migration at a time even when several processes start together.
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7041981)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
