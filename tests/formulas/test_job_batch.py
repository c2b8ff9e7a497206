"""The worker takes as many jobs as it has free slots in one statement (D520).

The take's rules are procrastinate's fetch's: `todo` only, the worker's queues, a scheduled
job not before its time, priority then id, one job of a lock at a time, a row another worker
holds skipped. Run against the package's own database, with a worker of this test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from procrastinate.jobs import Status

from hubgate.jobs.repository import take_jobs
from hubgate.jobs.worker import work
from hubgate.runtime import Runtime, open_runtime
from hubgate.settings import Settings
from tests.clusters import eventually

HOLD = "tests.batch.hold"
OTHER = "tests.batch.other"


@pytest.fixture
async def jobs_only(formulas_settings: Settings, formulas_url: str) -> AsyncIterator[Runtime]:
    """A runtime with no worker: the test takes jobs itself."""
    runtime = await open_runtime(formulas_settings, formulas_url, job_pool_size=6)
    try:
        yield runtime
    finally:
        await runtime.close()


async def queue(
    runtime: Runtime,
    task: str = OTHER,
    *,
    queue_name: str = "default",
    lock: str | None = None,
    priority: int = 0,
    schedule_at: datetime | None = None,
    n: int = 0,
) -> int:
    deferrer = runtime.jobs.app.configure_task(
        task,
        allow_unknown=True,
        queue=queue_name,
        lock=lock,
        priority=priority,
        schedule_at=schedule_at,
    )
    job_id: int = await deferrer.defer_async(n=n)
    return job_id


def statuses(url: str, task: str | None = None) -> dict[int, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, status::text FROM procrastinate_jobs"
            " WHERE %(task)s::text IS NULL OR task_name = %(task)s",
            {"task": task},
        ).fetchall()
    return dict(rows)


def started_at(url: str, job_ids: list[int]) -> list[datetime]:
    """When each job's `started` event was written (its transaction's start)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT job_id, at FROM procrastinate_events"
            " WHERE type = 'started' AND job_id = ANY(%s) ORDER BY job_id",
            (job_ids,),
        ).fetchall()
    assert [job_id for job_id, _ in rows] == sorted(job_ids)
    return [at for _, at in rows]


async def test_one_statement_takes_up_to_its_limit_in_fetch_order(
    jobs_only: Runtime, formulas_url: str
) -> None:
    low = [await queue(jobs_only, n=n) for n in range(3)]
    high = await queue(jobs_only, priority=5)
    worker_id = await jobs_only.jobs.app.job_manager.register_worker()

    taken = await take_jobs(jobs_only.jobs.app.connector, queues=None, worker_id=worker_id, limit=3)

    # Priority first, then the order of queueing; the fourth waits for the next take.
    assert [job.id for job in taken] == [high, low[0], low[1]]
    assert all(job.worker_id == worker_id and job.status == "doing" for job in taken)
    assert [job.task_kwargs for job in taken[1:]] == [{"n": 0}, {"n": 1}]
    assert statuses(formulas_url) == {
        high: "doing",
        low[0]: "doing",
        low[1]: "doing",
        low[2]: "todo",
    }
    # procrastinate's triggers saw the update as they see its own fetch's: one `started`
    # event per job, all of one transaction.
    assert len(set(started_at(formulas_url, [high, low[0], low[1]]))) == 1

    rest = await take_jobs(jobs_only.jobs.app.connector, queues=None, worker_id=worker_id, limit=3)
    assert [job.id for job in rest] == [low[2]]
    assert (
        await take_jobs(jobs_only.jobs.app.connector, queues=None, worker_id=worker_id, limit=3)
        == []
    )


async def test_one_take_never_holds_two_jobs_of_one_lock(
    jobs_only: Runtime, formulas_url: str
) -> None:
    first = await queue(jobs_only, lock="execution-1")
    second = await queue(jobs_only, lock="execution-1")
    free = await queue(jobs_only, lock="execution-2")
    plain = await queue(jobs_only)
    manager = jobs_only.jobs.app.job_manager
    connector = jobs_only.jobs.app.connector
    worker_id = await manager.register_worker()

    taken = await take_jobs(connector, queues=None, worker_id=worker_id, limit=10)
    assert [job.id for job in taken] == [first, free, plain]
    # While the first is `doing`, no take gives the second.
    assert await take_jobs(connector, queues=None, worker_id=worker_id, limit=10) == []

    await manager.finish_job(taken[0], status=Status.SUCCEEDED, delete_job=True)
    after = await take_jobs(connector, queues=None, worker_id=worker_id, limit=10)
    assert [job.id for job in after] == [second]
    assert statuses(formulas_url) == {second: "doing", free: "doing", plain: "doing"}


async def test_a_take_keeps_to_its_queues_and_to_the_scheduled_time(
    jobs_only: Runtime, formulas_url: str
) -> None:
    later = await queue(jobs_only, schedule_at=datetime.now(UTC) + timedelta(hours=1))
    due = await queue(jobs_only, schedule_at=datetime.now(UTC) - timedelta(seconds=1))
    elsewhere = await queue(jobs_only, queue_name="elsewhere")
    here = await queue(jobs_only, queue_name="here")
    connector = jobs_only.jobs.app.connector
    worker_id = await jobs_only.jobs.app.job_manager.register_worker()

    taken = await take_jobs(connector, queues=["here"], worker_id=worker_id, limit=10)
    assert [job.id for job in taken] == [here]
    taken = await take_jobs(connector, queues=None, worker_id=worker_id, limit=10)
    assert [job.id for job in taken] == [due, elsewhere]
    assert statuses(formulas_url) == {
        later: "todo",
        due: "doing",
        elsewhere: "doing",
        here: "doing",
    }


async def test_workers_taking_at_once_never_take_one_job_twice(
    jobs_only: Runtime, formulas_url: str
) -> None:
    queued = {await queue(jobs_only, n=n) for n in range(300)}
    manager = jobs_only.jobs.app.job_manager
    connector = jobs_only.jobs.app.connector

    async def one_worker(limit: int) -> list[int]:
        worker_id = await manager.register_worker()
        mine: list[int] = []
        while taken := await take_jobs(connector, queues=None, worker_id=worker_id, limit=limit):
            assert all(job.worker_id == worker_id for job in taken)
            mine.extend(job.id for job in taken if job.id is not None)
        return mine

    # Five takers on five connections of the job pool, each in its own statements.
    shares = await asyncio.gather(*(one_worker(limit) for limit in (1, 3, 7, 16, 32)))
    every = [job_id for share in shares for job_id in share]
    assert len(every) == len(set(every))
    assert set(every) == queued
    assert set(statuses(formulas_url).values()) == {"doing"}


async def test_the_worker_starts_its_free_slots_worth_in_one_take(
    formulas_settings: Settings, formulas_url: str
) -> None:
    """Ten jobs queued, a worker of four: the first take starts four of them (the second of
    a lock left for later), and as jobs end the rest start; never more than four at once and
    never the two jobs of one lock together."""
    settings = formulas_settings.model_copy(update={"worker_concurrency": 4})
    runtime = await open_runtime(settings, formulas_url, job_pool_size=6)
    go = asyncio.Event()
    running: set[int] = set()
    most = 0
    locked_together = False
    ran: list[int] = []

    async def hold(n: int) -> None:
        nonlocal most, locked_together
        running.add(n)
        most = max(most, len(running))
        locked_together = locked_together or {0, 1} <= running
        try:
            await go.wait()
        finally:
            running.discard(n)
        ran.append(n)

    runtime.jobs.app.task(name=HOLD)(hold)
    ids = [await queue(runtime, HOLD, lock="one" if n < 2 else None, n=n) for n in range(10)]
    task = asyncio.create_task(
        work(runtime, name="batch-worker", install_signal_handlers=False, fetch_interval=0.1)
    )
    try:

        async def four_doing() -> bool:
            return list(statuses(formulas_url, HOLD).values()).count("doing") == 4

        await eventually(four_doing)
        held = statuses(formulas_url, HOLD)
        first = [ids[0], ids[2], ids[3], ids[4]]
        assert sorted(job_id for job_id, status in held.items() if status == "doing") == first
        assert len(set(started_at(formulas_url, first))) == 1

        go.set()

        async def all_ended() -> bool:
            # Successful jobs are deleted (D66's worker settings).
            return not statuses(formulas_url, HOLD)

        await eventually(all_ended)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()
    assert sorted(ran) == list(range(10))
    assert most == 4
    assert not locked_together
