"""The formula engine's job (D43): one procrastinate job per step run.

``formulas.step(execution_id, position)`` reads the execution, runs the step it is at outside
any transaction (a script may take 30 s, a vendor its timeout), then in one transaction writes
the step's result and values, the new context and the next step's job (``service.record_step``).
A worker killed before that commit leaves the job to be run again (stalled-job rescue), which
repeats only this step, with the same idempotency key; killed after it, the job finds its
position taken and does nothing. The job's ``lock`` keeps two steps of one execution from
running at once, whatever the number of workers.
"""

from __future__ import annotations

import copy
import logging

import procrastinate
from procrastinate.job_context import JobContext

from hubgate.db.engine import unit_of_work
from hubgate.formulas import service, steps, triggers
from hubgate.formulas.repository import FormulaRepository
from hubgate.instances.models import Instance
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
        owner = await service.owner_of(session, execution)

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


def _runtime(context: JobContext) -> Runtime:
    runtime: Runtime = context.additional_context["runtime"]
    return runtime


async def step(context: JobContext, execution_id: int, position: int) -> str:
    return await run_step(_runtime(context), execution_id, position)


async def schedule_tick(context: JobContext, timestamp: int) -> int:
    return await triggers.fire_schedules(_runtime(context), service.utcnow())


def register(app: procrastinate.App, *, cron: str) -> None:
    app.task(name=service.STEP_TASK, pass_context=True)(step)
    # Deferred once per cron time across all workers; the queueing lock stops ticks piling
    # up behind a slow one. Each fire time is taken once whatever runs (triggers.py).
    tick_task = app.task(name=SCHEDULE_TASK, pass_context=True, queueing_lock=SCHEDULE_TASK)(
        schedule_tick
    )
    app.periodic_registry.register_task(
        task=tick_task, cron=cron, periodic_id="formulas", configure_kwargs={}
    )
