"""The event jobs: the scheduling tick, one poll, one delivery. Each job is its own boundary:
it opens the transactions it needs, commits them, and only then defers what follows."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from opentelemetry.trace import SpanKind
from procrastinate.exceptions import UniqueViolation
from procrastinate.job_context import JobContext
from procrastinate.jobs import Status

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.events.dispatch import dispatch, statement_by_statement
from hubgate.hub.service import fetch_all
from hubgate.instances.models import Instance
from hubgate.jobs.app import JobQueue
from hubgate.kit.errors import HubgateError
from hubgate.observability import context as observed
from hubgate.observability import metrics, traces
from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.events")

TICK = "events.tick"
POLL = "events.poll"
DELIVER = "events.deliver"
DISPATCH = "events.dispatch"


POLL_LOCK_PREFIX = f"{POLL}:"


def poll_lock(instance_id: int, resource: str) -> str:
    return f"{POLL_LOCK_PREFIX}{instance_id}:{resource}"


def delivery_lock(event_id: uuid.UUID | str) -> str:
    return f"{DELIVER}:{event_id}"


async def defer_poll(jobs: JobQueue, instance_id: int, resource: str) -> None:
    # One queued and one running poll per instance and resource, however many workers
    # and ticks there are: the queueing lock refuses a second queued job, the lock keeps a
    # queued one from starting while another runs (and it then finds itself not due).
    lock = poll_lock(instance_id, resource)
    await jobs.defer(
        POLL, lock=lock, queueing_lock=lock, instance_id=instance_id, resource=resource
    )


async def defer_delivery(
    jobs: JobQueue, event_id: uuid.UUID, *, at: datetime | None = None
) -> None:
    # No procrastinate lock: the event's own lease (events.leased_by) keeps a second job from
    # sending while one is in flight, without the lock's cost on a large queue.
    await jobs.defer(
        DELIVER, queueing_lock=delivery_lock(event_id), schedule_at=at, event_id=str(event_id)
    )


# A burst of vendor webhooks (D435): a delivery run deferred for one waits this long before
# its first lease, so it takes the callbacks committed meanwhile, and the process that deferred
# it defers no other run until then. Outside a burst runs start at once (the latency of D312).
GATHER_SECONDS = 0.02
# Callbacks this close together make a burst.
BURST_GAP_SECONDS = 0.05
# The share of the gather a deferring process counts on: asyncio's timers may fire a clock
# tick early, and the lease is the run's first statement after the wait.
GATHER_TRUSTED = 0.8


async def defer_dispatch(
    jobs: JobQueue, *, at: datetime | None = None, gather: float = 0.0
) -> bool:
    """A batched delivery run (D310), now or at ``at`` (to the whole second after it); answers
    whether a job was queued (False: one was queued already).

    Now: one queued run at a time (its queueing lock), which leases everything due when it
    starts, ``gather`` seconds after it starts; more runs start while one runs, each leasing
    what the others have not. Later: one queued run per second, for the retries due in it.
    """
    if at is None:
        return await jobs.defer(DISPATCH, queueing_lock=DISPATCH, gather=gather) is not None
    second = math.ceil(at.timestamp())
    queued = await jobs.defer(
        DISPATCH,
        queueing_lock=f"{DISPATCH}@{second}",
        schedule_at=datetime.fromtimestamp(second, tz=UTC),
    )
    return queued is not None


class DispatchKicker:
    """Defers a delivery run after commits, coalesced (D312, D435).

    While one defer is on its way, the commits that ask for another get one more defer once it
    is done, not one each. In a burst the run is deferred with a gather: it leases no sooner
    than ``gather`` after the defer began, so a commit made before that is leased by it and
    asks for no defer of its own (not even one the queueing lock refuses). Every commit is
    still followed by a lease that starts after it.
    """

    def __init__(self, jobs: JobQueue, gather: float = GATHER_SECONDS) -> None:
        self.jobs = jobs
        self.gather = gather
        self._running = False
        # The latest kick waiting for the defer on its way, if any (monotonic seconds).
        self._again_at: float | None = None
        self._last_kick = -math.inf
        # Commits made before this moment are leased by a run this process deferred.
        self._covered_until = -math.inf

    async def kick(self) -> None:
        now = time.monotonic()
        burst = now - self._last_kick < BURST_GAP_SECONDS
        self._last_kick = now
        if now < self._covered_until:
            return
        if self._running:
            self._again_at = now
            return
        self._running = True
        try:
            while True:
                self._again_at = None
                began = time.monotonic()
                gather = self.gather if burst else 0.0
                if await defer_dispatch(self.jobs, gather=gather) and gather:
                    self._covered_until = began + gather * GATHER_TRUSTED
                again = self._again_at
                if again is None or again < self._covered_until:
                    return
                burst = True
        finally:
            self._running = False


async def defer_dispatches(jobs: JobQueue, times: Iterable[datetime]) -> None:
    for second in sorted({math.ceil(t.timestamp()) for t in times}):
        await defer_dispatch(jobs, at=datetime.fromtimestamp(second, tz=UTC))


async def hub_fetch(
    runtime: Runtime, instance: Instance, path_and_query: str
) -> list[dict[str, Any]]:
    """The poller's way into the hub pipeline (D28): all pages, vendor filters taken as final
    where the element's manifest says so for the resource (its poller defaults, D273)."""
    return await fetch_all(
        runtime,
        instance,
        path_and_query,
        vendor_filters_final=None,
        max_records=runtime.settings.events_max_records_per_poll,
    )


# -- the work, callable without a worker -------------------------------------------------------


async def run_tick(runtime: Runtime) -> dict[str, int]:
    """Sync pollers, defer due polls, re-defer undelivered events, forget vendor event ids
    kept long enough (D380), rescue stalled jobs."""
    settings = runtime.settings
    now = service.utcnow()
    async with unit_of_work(runtime.sessions) as session:
        synced = await service.sync_pollers(session, now)
    async with unit_of_work(runtime.sessions) as session:
        due = await service.due_polls(session, now + service.tick_slack(settings), POLL_LOCK_PREFIX)
    for instance_id, resource in due:
        await defer_poll(runtime.jobs, instance_id, resource)
    # An event whose attempt time passed a while ago has lost its job (a crash between commit
    # and defer); deferring again is harmless when the job does exist (queueing lock).
    async with unit_of_work(runtime.sessions) as session:
        overdue = await service.overdue(
            session, now - timedelta(seconds=settings.events_sweep_grace_seconds)
        )
    if overdue:
        await defer_dispatch(runtime.jobs)
    async with unit_of_work(runtime.sessions) as session:
        forgotten = await service.forget_vendor_event_ids(session, now)
    rescued = await rescue_stalled(runtime.jobs.app, settings.worker_stalled_seconds)
    return {
        "synced": synced,
        "polls": len(due),
        "redeferred": len(overdue),
        "forgotten": forgotten,
        "rescued": rescued,
    }


async def rescue_stalled(app: procrastinate.App, seconds: float) -> int:
    """Run again the jobs of workers that stopped sending heartbeats (killed, frozen)."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds))
    for job in stalled:
        log.warning("rescuing stalled job %s (%s)", job.id, job.task_name)
        try:
            await app.job_manager.retry_job(job)
        except UniqueViolation:
            # A job for the same poll or delivery is queued already (its queueing lock);
            # that one does the work, so this one ends. Polls and deliveries go by ids and
            # state in the database: neither runs twice for being queued twice.
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=True)
    return len(stalled)


async def run_poll(
    runtime: Runtime,
    instance_id: int,
    resource: str,
    fetch: service.Fetch = hub_fetch,
) -> list[uuid.UUID]:
    """One poll: read the plan, fetch through the hub, commit events + cursor + seen-set."""
    settings = runtime.settings
    started = service.utcnow()
    async with unit_of_work(runtime.sessions) as session:
        plan = await service.prepare_poll(
            session, instance_id, resource, started, service.tick_slack(settings)
        )
    if plan is None:
        return []
    try:
        records = await fetch(runtime, plan.instance, plan.url)
    except HubgateError as error:
        metrics.EVENT_POLLS.labels("failed").inc()
        async with unit_of_work(runtime.sessions) as session:
            await service.poll_failed(session, instance_id, resource, error.message, started)
        log.info("poll of instance %s %s failed: %s", instance_id, resource, error.message)
        return []
    if settings.events_poll_commit_pause:
        await asyncio.sleep(settings.events_poll_commit_pause)
    async with unit_of_work(runtime.sessions) as session:
        created = await service.apply_poll(session, runtime, plan, records, started)
    metrics.EVENT_POLLS.labels("ok").inc()
    metrics.EVENTS_CREATED.inc(len(created))
    if created:
        await defer_dispatch(runtime.jobs)
    return created


async def run_delivery(runtime: Runtime, event_id: uuid.UUID, owner: int | None = None) -> str:
    """One attempt. ``owner`` is the job's id: run again after a crash, the same job takes
    back its lease at once; without one (a direct call) a random owner is used."""
    owner = owner if owner is not None else random.getrandbits(62)
    async with statement_by_statement(runtime) as session:
        delivery = await service.prepare_delivery(
            session, runtime, event_id, service.utcnow(), owner
        )
    if delivery is None:
        return "nothing to send"
    result = await service.send(runtime, delivery)
    # A 410 changes the instance and its other events too: that takes a transaction.
    atomic = result.status_code == 410
    session_scope = unit_of_work(runtime.sessions) if atomic else statement_by_statement(runtime)
    async with session_scope as session:
        retry_at = await service.record_attempt(session, runtime.settings, delivery, result)
    metrics.EVENT_DELIVERIES.labels("delivered" if result.succeeded else "failed").inc()
    if retry_at is not None:
        await defer_delivery(runtime.jobs, event_id, at=retry_at)
    return result.describe()


async def run_dispatch(runtime: Runtime, owner: int | None = None, gather: float = 0.0) -> int:
    """Deliver what is due, in batches (D310); answers the attempts made. ``owner`` is the
    job's id, as for ``run_delivery``; ``gather`` the wait before the first lease (D435)."""
    owner = owner if owner is not None else random.getrandbits(62)
    if gather > 0:
        # What the deferring process counts on: no lease before the gather is over.
        await asyncio.sleep(gather)

    async def due_again(times: list[datetime]) -> None:
        await defer_dispatches(runtime.jobs, times)

    return await dispatch(runtime, owner, due_again)


# -- procrastinate glue ------------------------------------------------------------------------


def _runtime(context: JobContext) -> Runtime:
    runtime: Runtime = context.additional_context["runtime"]
    return runtime


@contextmanager
def _job_span(task: str) -> Iterator[None]:
    # Each job is its own trace (D63), and its log lines carry its trace id.
    observed.begin()
    with traces.span(f"job {task}", {"hubgate.task": task}, SpanKind.CONSUMER):
        yield


async def tick(context: JobContext, timestamp: int) -> dict[str, int]:
    with _job_span(TICK):
        return await run_tick(_runtime(context))


async def poll(context: JobContext, instance_id: int, resource: str) -> int:
    with _job_span(POLL):
        return len(await run_poll(_runtime(context), instance_id, resource))


async def deliver(context: JobContext, event_id: str) -> str:
    with _job_span(DELIVER):
        return await run_delivery(_runtime(context), uuid.UUID(event_id), context.job.id)


async def dispatch_job(context: JobContext, gather: float = 0.0) -> int:
    with _job_span(DISPATCH):
        return await run_dispatch(_runtime(context), context.job.id, gather)


def register(app: procrastinate.App, *, cron: str) -> None:
    app.task(name=POLL, pass_context=True)(poll)
    app.task(name=DELIVER, pass_context=True)(deliver)
    app.task(name=DISPATCH, pass_context=True)(dispatch_job)
    # Deferred once per cron time across all workers (procrastinate's periodic defers are
    # unique per timestamp); the queueing lock stops ticks piling up behind a slow one.
    tick_task = app.task(name=TICK, pass_context=True, queueing_lock=TICK)(tick)
    app.periodic_registry.register_task(
        task=tick_task, cron=cron, periodic_id="events", configure_kwargs={}
    )
