"""The job engine: procrastinate on Hubgate's own PostgreSQL, and where tasks are registered.

Tasks are registered per procrastinate ``App`` (by explicit, stable names stored in job rows)
rather than through module-level blueprints, because a blueprint can be bound to one App only
and a test process holds several runtimes. Jobs carry ids, never secrets: a task loads what it
needs from the database when it runs.
"""

from __future__ import annotations

import select
from datetime import datetime
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import worker as procrastinate_worker
from procrastinate.exceptions import AlreadyEnqueued

from hubgate.db.engine import libpq_url
from hubgate.jobs.worker import BatchWorker
from hubgate.settings import Settings


def tick_cron(seconds: int) -> str:
    """A cron line firing every ``seconds``: six fields (seconds last) below a minute."""
    if seconds < 60 and 60 % seconds == 0:
        return f"* * * * * */{seconds}"
    if seconds % 60 == 0 and 60 % (seconds // 60) == 0:
        return f"*/{seconds // 60} * * * *"
    raise ValueError(
        "HUBGATE_EVENTS_TICK_SECONDS must divide a minute (1-30) or be whole minutes that "
        f"divide an hour; got {seconds}"
    )


async def _autocommit(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.set_autocommit(True)


async def _check_when_spoken_to(connection: psycopg.AsyncConnection[Any]) -> None:
    """The job pool's check of a connection it hands out (D511): a ping only when the
    server has sent something unasked since its last answer. A server that stops or restarts
    ends its connections (an error message, then the close), which leaves their sockets
    readable; a connection nobody asked anything of has nothing to read while it lives. The
    ping on every checkout (procrastinate's default) was two round trips of each job."""
    waiting = select.poll()
    waiting.register(connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if waiting.poll(0):
        await psycopg_pool.AsyncConnectionPool.check_connection(connection)


class _JobApp(procrastinate.App):
    """procrastinate's app, whose workers take several jobs a fetch (D520): ``hubgate
    worker`` and serve's embedded worker both run through ``run_worker_async``, which makes
    its worker here."""

    def _worker(self, **kwargs: Any) -> procrastinate_worker.Worker:
        return BatchWorker(app=self, **{**self.worker_defaults, **kwargs})


def _job_pool(**kwargs: Any) -> psycopg_pool.AsyncConnectionPool:
    # procrastinate passes its own check (a ping per checkout); this one replaces it.
    return psycopg_pool.AsyncConnectionPool(**{**kwargs, "check": _check_when_spoken_to})


def create_job_app(settings: Settings, database_url: str, *, pool_size: int) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url),
        min_size=1,
        max_size=pool_size,
        name="hubgate-jobs",
        # Every procrastinate query is one statement (a function call): in autocommit it needs
        # one round trip instead of BEGIN, the query and COMMIT. Measured on deliveries,
        # where fetching and finishing a job are a third of the work.
        configure=_autocommit,
        pool_factory=_job_pool,
    )
    app = _JobApp(connector=connector)
    # Imported here: the tasks import the runtime, which imports this module.
    from hubgate.events.tasks import register
    from hubgate.formulas.tasks import register as register_formulas

    register(app, cron=tick_cron(settings.events_tick_seconds))
    register_formulas(app, cron=tick_cron(settings.formula_tick_seconds))
    return app


class JobQueue:
    """Deferring jobs by task name, from the API as well as from inside jobs."""

    def __init__(self, app: procrastinate.App) -> None:
        self.app = app

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def defer(
        self,
        task: str,
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        schedule_at: datetime | None = None,
        **kwargs: Any,
    ) -> int | None:
        """The new job's id, or None when a job with this ``queueing_lock`` is already queued."""
        deferrer = self.app.configure_task(
            task,
            allow_unknown=False,
            lock=lock,
            queueing_lock=queueing_lock,
            schedule_at=schedule_at,
        )
        try:
            job_id: int = await deferrer.defer_async(**kwargs)
        except AlreadyEnqueued:
            return None
        return job_id

    async def cancel_queued(self, queueing_lock: str) -> None:
        """Cancel the not-yet-started job holding ``queueing_lock``, if there is one."""
        for job in await self.app.job_manager.list_jobs_async(
            queueing_lock=queueing_lock, status="todo"
        ):
            if job.id is not None:
                await self.app.job_manager.cancel_job_by_id_async(job.id, delete_job=True)
