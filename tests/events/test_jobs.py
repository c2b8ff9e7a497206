"""The job engine's edges: stalled jobs of dead workers are run again, once."""

from __future__ import annotations

import psycopg
import pytest

from hubgate.events.tasks import DELIVER, delivery_lock, rescue_stalled
from hubgate.jobs.app import tick_cron
from hubgate.runtime import Runtime


async def dead_worker_takes_a_job(runtime: Runtime, events_url: str, event_id: str) -> int:
    """A delivery job taken by a worker that then stopped sending heartbeats."""
    manager = runtime.jobs.app.job_manager
    lock = delivery_lock(event_id)
    await runtime.jobs.defer(DELIVER, lock=lock, queueing_lock=lock, event_id=event_id)
    worker_id = await manager.register_worker()
    job = await manager.fetch_job(queues=None, worker_id=worker_id)
    assert job is not None
    assert job.id is not None
    with psycopg.connect(events_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
            " WHERE id = %s",
            (worker_id,),
        )
    return job.id


async def statuses(runtime: Runtime) -> list[str]:
    jobs = await runtime.jobs.app.job_manager.list_jobs_async(task=DELIVER)
    return sorted(str(job.status) for job in jobs)


async def test_a_dead_workers_job_is_queued_again(runtime: Runtime, events_url: str) -> None:
    await dead_worker_takes_a_job(runtime, events_url, "e-1")
    assert await statuses(runtime) == ["doing"]
    assert await rescue_stalled(runtime.jobs.app, 60) == 1
    assert await statuses(runtime) == ["todo"]
    assert await rescue_stalled(runtime.jobs.app, 60) == 0


async def test_a_dead_workers_job_ends_when_the_same_work_is_queued(
    runtime: Runtime, events_url: str
) -> None:
    await dead_worker_takes_a_job(runtime, events_url, "e-2")
    lock = delivery_lock("e-2")
    queued = await runtime.jobs.defer(DELIVER, lock=lock, queueing_lock=lock, event_id="e-2")
    assert queued is not None
    assert await runtime.jobs.defer(DELIVER, lock=lock, queueing_lock=lock, event_id="e-2") is None
    assert await rescue_stalled(runtime.jobs.app, 60) == 1
    remaining = await runtime.jobs.app.job_manager.list_jobs_async(task=DELIVER)
    assert [(job.id, str(job.status)) for job in remaining] == [(queued, "todo")]


def test_tick_cadence_as_cron() -> None:
    assert tick_cron(1) == "* * * * * */1"
    assert tick_cron(15) == "* * * * * */15"
    assert tick_cron(60) == "*/1 * * * *"
    assert tick_cron(300) == "*/5 * * * *"


@pytest.mark.parametrize("seconds", [7, 90, 420])
def test_a_tick_that_does_not_divide_the_clock_is_refused(seconds: int) -> None:
    with pytest.raises(ValueError, match="HUBGATE_EVENTS_TICK_SECONDS"):
        tick_cron(seconds)
