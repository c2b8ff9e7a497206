"""The formula engine's job (D43): one procrastinate job per step run.

``formulas.step(execution_id, position)`` reads the execution, runs the step it is at outside
any transaction (a script may take 30 s, a vendor its timeout), then in one transaction writes
the step's result and values, the new context and the next step's job (``service.record_step``).
A worker killed before that commit leaves the job to be run again (stalled-job rescue), which
repeats only this step, with the same idempotency key; killed after it, the job finds its
position taken and does nothing. An execution has one step job queued at a time (each step's
commit queues the next), and the position checked under the execution's row lock makes any
second one stale, whatever the number of workers. The jobs carry no procrastinate ``lock``:
the next step's job would wait behind the running one until the worker's next poll (D373).
"""

from __future__ import annotations

import copy
import logging

import procrastinate
from procrastinate.job_context import JobContext

from hubgate.db.engine import unit_of_work
from hubgate.events.signing import notification_headers
from hubgate.formulas import service, steps, triggers
from hubgate.formulas.repository import FormulaRepository
from hubgate.instances.models import Instance
from hubgate.kit.egress import EgressError
from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.formulas")
SCHEDULE_TASK = "formulas.schedule"


async def run_step(runtime: Runtime, execution_id: int, position: int) -> str:
    async with unit_of_work(runtime.sessions) as session:
        plan = await service.plan_step(session, execution_id, position)
        if plan is None:
            return "stale"
        execution = plan.execution
        context = service.script_context(execution)
        state = copy.deepcopy(execution.context.get("state", {}))
        trigger_owner = (execution.organization_id, execution.account_id)
        attempt = execution.attempt
        owner = await service.owner_of(session, execution, plan.step)

    async def load_instance(instance_id: int) -> Instance | None:
        async with runtime.sessions() as reader:
            instance = await FormulaRepository(reader).connector_instance(instance_id)
        # A formula reaches only its own tenant's connector instances (D4).
        if instance is None or (instance.organization_id, instance.account_id) != trigger_owner:
            return None
        return instance

    started = service.utcnow()
    outcome = await steps.run_step(
        steps.StepRun(
            runtime=runtime,
            execution_id=execution_id,
            position=position,
            step=plan.step,
            context=context,
            state=state,
            now=started,
            attempt=attempt,
            load_instance=load_instance,
            owner=owner,
        )
    )
    async with unit_of_work(runtime.sessions) as session:
        return await service.record_step(
            session,
            runtime.jobs.app,
            runtime.settings,
            execution_id,
            position,
            plan.step,
            state,
            outcome,
            started,
        )


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
    app.task(name=service.STEP_TASK, pass_context=True)(step)
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
