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
from hubgate.formulas import service, steps
from hubgate.formulas.repository import FormulaRepository
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.formulas")


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


def register(app: procrastinate.App) -> None:
    app.task(name=service.STEP_TASK, pass_context=True)(step)
