"""The formula engine's job (D43, D450): one procrastinate job per run of an execution.

``formulas.step(execution_id, position)`` takes the execution (one statement, which marks it
``pending``), then runs its steps one after the other while it holds it: each step runs
outside any transaction (a script may take 30 s, a vendor its timeout), then one statement
commits its result, its values and the execution's new context and position
(``service.record_step``) before the next step starts. A step that waits (a retry delay, a
sub-formula, ``retryFormulaExecution``) ends the job and defers what follows, as does the
execution's end. A worker killed mid-run leaves its job ``doing``; the stalled-job rescue runs
it again, and it goes on from the first step without a committed result: that step is
repeated, with the same idempotency key; a committed one never is. Every checkpoint is
conditional on the position under the execution's row lock, so a second job on the same
execution (a frozen worker's, rescued while it still ran) finds its position taken and ends.
The jobs carry no procrastinate ``lock``: a deferred job would wait behind a running one until
the worker's next poll (D373). The take, the reads and the checkpoints that are one statement
go without BEGIN and COMMIT, each statement its own transaction (D470), on one connection the
job holds from the engine's own pool (D510).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

import procrastinate
import psycopg
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hubgate.db.engine import create_sessionmaker, held_connection, unit_of_work
from hubgate.db.tenancy import Tenant
from hubgate.events.signing import notification_headers
from hubgate.formulas import service, steps, triggers
from hubgate.formulas.repository import StepConnection
from hubgate.hub import service as hub
from hubgate.hub.model import ResolvedInstance
from hubgate.instances.models import Instance
from hubgate.kit.egress import EgressError
from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.formulas")
SCHEDULE_TASK = "formulas.schedule"
# A job that has run steps this long queues the next one as its own job and ends (D454), so
# that a stopping worker's graceful wait (HUBGATE_SHUTDOWN_GRACE) is not spent on one long
# execution, and long executions take turns with the others.
JOB_SECONDS = 5.0
_ALONE: weakref.WeakKeyDictionary[AsyncEngine, async_sessionmaker[AsyncSession]] = (
    weakref.WeakKeyDictionary()
)
# Connector instances resolved for the hub (configuration decrypted, vendor session kept with
# it, D480) and kept by this process between step jobs, by the runtime's engine (D526). At
# most this many, all let go when full; a job whose row has another version resolves it again.
KEPT_INSTANCES = 256
_KEPT: weakref.WeakKeyDictionary[AsyncEngine, dict[int, ResolvedInstance]] = (
    weakref.WeakKeyDictionary()
)


def kept_resolved(runtime: Runtime, instance: Instance) -> ResolvedInstance:
    """``instance`` resolved for the hub, the one this process kept when the row is still at
    the version it was resolved from: every write of an instance's row moves its version (an
    update, an OAuth refresh, a disabled notification), so a job sees a changed instance as
    before (D452), and consecutive jobs share its vendor session."""
    kept = _KEPT.get(runtime.engine)
    if kept is None:
        kept = _KEPT[runtime.engine] = {}
    found = kept.get(instance.id)
    if found is None or found.version != instance.version:
        if len(kept) >= KEPT_INSTANCES:
            kept.clear()
        found = kept[instance.id] = hub.resolved_from(runtime, instance)
    return found


def statements_alone(runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    """Sessions on the runtime's pool in autocommit: each statement is its own transaction,
    sent without BEGIN before it and COMMIT after it (two round trips less, D470). Only for
    work that is one statement, or reads that need no snapshot shared between them: the
    owner's read for request steps, the one such read the held connection does not do."""
    sessions = _ALONE.get(runtime.engine)
    if sessions is None:
        alone = runtime.engine.execution_options(isolation_level="AUTOCOMMIT")
        sessions = _ALONE[runtime.engine] = create_sessionmaker(alone)
    return sessions


async def run_step(runtime: Runtime, execution_id: int, position: int) -> str:
    # The job holds one connection of the engine's own pool while it runs (D510): the take,
    # the reads and the checkpoints sent alone go on it, with no checkout, ping or SQLAlchemy
    # between them. The steps' own work (a request step's platform call, the hub's pipeline)
    # and the checkpoints that are transactions use the runtime's pool, which the held
    # connections never take from.
    async with held_connection(runtime.step_engine) as connection:
        return await _run_held(runtime, StepConnection(connection), execution_id, position)


async def _run_held(
    runtime: Runtime, held: StepConnection, execution_id: int, position: int
) -> str:
    # The take and the read of the connector instances are one statement (D510).
    run = await service.begin_run(held, execution_id, position)
    if run is None:
        return "stale"
    execution = run.execution
    # Read once per job, not once per step (D452): the connector instances the steps call
    # (most read with the execution, each resolved once per process while its row keeps its
    # version, D526) and the template's owner, for request steps.
    resolved: dict[int, ResolvedInstance | None] = {}
    tenant = service.tenant_of(execution)
    user: Tenant | None = None

    async def load_instance(instance_id: int) -> ResolvedInstance | None:
        if instance_id not in resolved:
            instance = run.instances.get(instance_id)
            if instance is None:
                instance = await held.connector_instance(instance_id)
            resolved[instance_id] = (
                kept_resolved(runtime, instance)
                if instance is not None and service.reaches(execution, instance)
                else None
            )
        return resolved[instance_id]

    began = time.monotonic()
    while True:
        if run.step.get("type") == "request" and user is None:
            async with statements_alone(runtime)() as session:
                user = await service.owner_of(session, execution, run.step)
        state = service.run_state(run)
        started = service.utcnow()
        outcome = await steps.run_step(
            steps.StepRun(
                runtime=runtime,
                execution_id=execution_id,
                position=run.position,
                step=run.step,
                context=service.script_context(execution),
                state=state,
                now=started,
                attempt=execution.attempt,
                load_instance=load_instance,
                owner=user or tenant,
            )
        )
        hand_over = time.monotonic() - began > JOB_SECONDS
        # A checkpoint that is one statement is sent alone on the held connection; one that
        # also defers a job or reads rows (a wait, a failure, a sub-formula, a hand-over) is a
        # transaction.
        if service.commits_alone(run, outcome, hand_over=hand_over):
            answer = await service.record_alone(
                held, runtime.settings, run, state, outcome, started
            )
        else:
            async with unit_of_work(runtime.sessions) as session:
                answer = await service.record_step(
                    session,
                    runtime.jobs.app,
                    runtime.settings,
                    run,
                    state,
                    outcome,
                    started,
                    hand_over=hand_over,
                )
        if answer != "next":
            return answer


class NoticeRefusedError(Exception):
    """A webhook did not take a failure notice: the job is tried again later."""


async def run_notify(runtime: Runtime, execution_id: int) -> int:
    """Post a failed execution to the formula instance's webhooks, signed as events are
    (D29's headers, with the instance's ``notification.webhook.signature.key``)."""
    async with runtime.sessions() as session:
        notice = await service.failure_notice(session, execution_id)
    if notice is None:
        return 0
    instance, body = notice
    key = instance.settings.get(service.WEBHOOK_KEY)
    headers = notification_headers(
        f"formula-execution-{execution_id}",
        body,
        str(key) if key else None,
        now=service.utcnow(),
    )
    refused = []
    for url in service.webhook_urls(instance):
        try:
            response = await runtime.egress.request("POST", url, headers=headers, data=body)
        except EgressError as error:
            refused.append(f"{url}: {error}")
            continue
        if not 200 <= response.status < 300:
            refused.append(f"{url}: {response.status}")
    if refused:
        raise NoticeRefusedError("; ".join(refused))
    return len(service.webhook_urls(instance))


# A step job whose connection to PostgreSQL was lost goes on this many times (D510).
LOST_CONNECTION_TRIES = 10


class AgainAfterInterruption(procrastinate.BaseRetryStrategy):
    """A step job cancelled by its worker's shutdown (D454), or whose connection to
    PostgreSQL was lost (D510: the held one is not pinged), is queued again, to go on where
    the execution is, as after a crash; any other error ends it."""

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> procrastinate.RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):
            return procrastinate.RetryDecision(retry_in={"seconds": 0})
        lost = isinstance(exception, psycopg.OperationalError) or (
            isinstance(exception, DBAPIError) and exception.connection_invalidated
        )
        if lost and job.attempts < LOST_CONNECTION_TRIES:
            return procrastinate.RetryDecision(retry_in={"seconds": 1})
        return None


def _runtime(context: JobContext) -> Runtime:
    runtime: Runtime = context.additional_context["runtime"]
    return runtime


async def step(context: JobContext, execution_id: int, position: int) -> str:
    return await run_step(_runtime(context), execution_id, position)


async def schedule_tick(context: JobContext, timestamp: int) -> int:
    return await triggers.fire_schedules(_runtime(context), service.utcnow())


async def notify(context: JobContext, execution_id: int) -> int:
    return await run_notify(_runtime(context), execution_id)


def register(app: procrastinate.App, *, cron: str) -> None:
    # A job aborted by its worker's shutdown (the graceful wait ran out mid-step, D454) or by
    # a lost connection (D510) is queued again, to go on where the execution is; other
    # errors end it as before.
    app.task(
        name=service.STEP_TASK,
        pass_context=True,
        retry=AgainAfterInterruption(),
    )(step)
    app.task(
        name=service.NOTIFY_TASK,
        pass_context=True,
        retry=procrastinate.RetryStrategy(
            max_attempts=8, exponential_wait=5, retry_exceptions={NoticeRefusedError}
        ),
    )(notify)
    # Deferred once per cron time across all workers; the queueing lock stops ticks piling
    # up behind a slow one. Each fire time is taken once whatever runs (triggers.py).
    tick_task = app.task(name=SCHEDULE_TASK, pass_context=True, queueing_lock=SCHEDULE_TASK)(
        schedule_tick
    )
    app.periodic_registry.register_task(
        task=tick_task, cron=cron, periodic_id="formulas", configure_kwargs={}
    )
