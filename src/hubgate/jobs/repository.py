"""The worker's own SQL on procrastinate's tables: taking several jobs in one statement (D520)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from procrastinate.connector import BaseConnector
from procrastinate.jobs import Job

# procrastinate_fetch_job_v2's rules with a LIMIT of the worker's free slots instead of 1:
# `todo` jobs of the worker's queues whose time has come, by priority then id, skipping rows
# another fetch holds. Its NOT EXISTS leaves out every job whose lock has a job `doing` or an
# earlier `todo` one, so of one lock only the first can be taken, and one statement never
# takes two of a lock (the unique index on a `doing` lock would refuse it anyway). The update
# of `status` fires procrastinate's triggers (its events) as its own function's update does.
# Its commit does not wait for the WAL flush (D513, kept): a take that a server crash loses
# leaves its jobs `todo`, to be taken again. The setting is local to the statement's own
# transaction (the job pool is in autocommit); it comes first so that pg_stat_activity's
# text of the statement (1 kB by default) shows it.
_TAKE: Final = """
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
candidate AS (
    SELECT jobs.id
    FROM procrastinate_jobs AS jobs
    WHERE jobs.status = 'todo'
        AND (%(queues)s::varchar[] IS NULL OR jobs.queue_name = ANY(%(queues)s::varchar[]))
        AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
        AND NOT EXISTS (
            SELECT 1
            FROM procrastinate_jobs AS other
            WHERE jobs.lock IS NOT NULL
                AND other.lock = jobs.lock
                AND (
                    other.status = 'doing'
                    OR (
                        other.status = 'todo'
                        AND (
                            other.priority > jobs.priority
                            OR (other.priority = jobs.priority AND other.id < jobs.id)
                        )
                    )
                )
        )
    ORDER BY jobs.priority DESC, jobs.id ASC
    LIMIT %(limit)s
    FOR UPDATE OF jobs SKIP LOCKED
)
UPDATE procrastinate_jobs AS taken
SET status = 'doing', worker_id = %(worker_id)s
FROM candidate CROSS JOIN relaxed
WHERE taken.id = candidate.id
RETURNING taken.id, taken.status, taken.task_name, taken.priority, taken.lock,
    taken.queueing_lock, taken.args, taken.scheduled_at, taken.queue_name, taken.attempts,
    taken.worker_id
"""


async def take_jobs(
    connector: BaseConnector,
    *,
    queues: Iterable[str] | None,
    worker_id: int,
    limit: int,
) -> list[Job]:
    """Up to ``limit`` jobs made ``doing`` for ``worker_id``, in the order they are to start."""
    rows = await connector.execute_query_all_async(
        _TAKE,
        queues=None if queues is None else list(queues),
        worker_id=worker_id,
        limit=limit,
    )
    taken = [Job.from_row(row) for row in rows]
    # RETURNING keeps no order; the jobs start as procrastinate would have fetched them.
    taken.sort(key=lambda job: (-job.priority, job.id or 0))
    return taken
