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


async def queued_jobs(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = await session.execute(
        text(
            "SELECT task_name, status::text, count(*) FROM procrastinate_jobs "
            "WHERE status IN ('todo', 'doing') GROUP BY task_name, status ORDER BY 1, 2"
        )
    )
    return [(str(task), str(status), int(count)) for task, status, count in rows.all()]


async def pending_events(session: AsyncSession, statuses: tuple[str, ...]) -> tuple[int, float]:
    """Undelivered events, and how long the oldest due one has waited past its attempt time."""
    row = (
        await session.execute(
            text(
                "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at) "
                "FILTER (WHERE next_attempt_at <= now())), 0)::float8 "
                "FROM events WHERE status = ANY(:statuses)"
            ),
            {"statuses": list(statuses)},
        )
    ).one()
    return int(row[0]), float(row[1])
