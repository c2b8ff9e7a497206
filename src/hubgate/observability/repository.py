"""The queries behind readiness: the schema's revision and the workers' heartbeats."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def schema_revisions(session: AsyncSession) -> frozenset[str]:
    rows = await session.execute(text("SELECT version_num FROM alembic_version"))
    return frozenset(str(revision) for revision in rows.scalars())


async def newest_heartbeat_age(session: AsyncSession) -> float | None:
    """Seconds since the freshest heartbeat of any job worker, None when no worker runs.

    procrastinate 3 keeps one row per running worker, refreshed every heartbeat interval and
    deleted when the worker stops cleanly.
    """
    age = await session.scalar(
        text(
            "SELECT EXTRACT(EPOCH FROM now() - max(last_heartbeat))::float8 "
            "FROM procrastinate_workers"
        )
    )
    return None if age is None else float(age)
