"""The checkpoints sent alone (D470) and the commits that skip the WAL flush (D471, and the
take's, D525)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hubgate.formulas import service
from hubgate.formulas.models import PENDING, Execution
from hubgate.formulas.repository import StepConnection
from hubgate.formulas.steps import Outcome
from hubgate.runtime import Runtime
from tests.conftest import Api
from tests.formulas.conftest import (
    SCRIPT_REQUEST_SCRIPT,
    finished,
    make_formula,
    make_instance,
    run_manually,
    values,
)


def _run(step_type: str, *, following: list[str], parent: int | None = None) -> service.Run:
    execution = Execution(
        id=1,
        status=PENDING,
        parent_execution_id=parent,
        context={"pending": ["this", *following]},
    )
    step = {"name": "this", "type": step_type, "onSuccess": [], "onFailure": []}
    return service.Run(execution, 1, step, {})


@pytest.mark.parametrize(
    ("step_type", "relaxed"),
    [
        ("script", True),
        ("filter", True),
        ("loop", True),
        ("elementRequest", True),
        ("httpRequest", True),
        ("request", False),
        ("formula", False),
        ("retryFormulaExecution", False),
    ],
)
def test_only_repeatable_steps_commit_without_the_flush(step_type: str, relaxed: bool) -> None:
    going_on = _run(step_type, following=["next"])
    ok = Outcome(True, {"x": 1})
    assert service.commits_alone(going_on, ok)
    assert service.relaxed_commit(going_on, ok) is relaxed
    # The last step of a top-level execution: still one statement (its reset included).
    assert service.relaxed_commit(_run(step_type, following=[]), ok) is relaxed


def test_a_checkpoint_that_defers_a_job_is_a_durable_transaction() -> None:
    going_on = _run("script", following=["next"])
    ok = Outcome(True, {"x": 1})
    failed = Outcome(False, {"error": "no"}, "no")
    # A failure defers the notice, a sub-formula's end queues its parent's step, a hand-over
    # queues the next step, a wait queues the same one later: none of them is sent alone.
    for run, outcome, hand_over in [
        (_run("script", following=[]), failed, False),
        (_run("script", following=[], parent=7), ok, False),
        (going_on, ok, True),
        (going_on, Outcome(False, {}, again_at=service.utcnow()), False),
    ]:
        assert not service.commits_alone(run, outcome, hand_over=hand_over)
        assert not service.relaxed_commit(run, outcome, hand_over=hand_over)


@pytest.mark.asyncio
async def test_relaxed_checkpoints_leave_the_pooled_connections_durable(
    fapi: Api, worker: Runtime
) -> None:
    """Executions whose scripts commit relaxed around a request step that commits durably
    end as before, and the setting stays local to each checkpoint's own transaction: every
    connection the worker's pool holds afterwards still commits with the flush."""
    formula = await make_formula(
        fapi,
        {**SCRIPT_REQUEST_SCRIPT, "name": "relaxed and durable"},
    )
    instance = await make_instance(fapi, formula["id"])
    runs = [await run_manually(fapi, instance["id"], {"n": n}) for n in range(6)]
    for n, run in enumerate(runs):
        execution = await finished(fapi, run)
        assert execution["status"] == "success", await values(fapi, run)
        stored = await values(fapi, run)
        assert stored["after"] == {"after.seen": str(n + 1)}
        assert json.loads(stored["platform"]["platform.response"])["code"] == "200"

    # The relaxed checkpoints went on the engine's own pool (D510), the request steps' work
    # on the runtime's: every connection either holds still commits with the flush.
    for engine in (worker.step_engine, worker.engine):
        pooled = engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
        assert pooled > 0

        async def setting(engine: AsyncEngine = engine) -> Any:
            async with engine.connect() as connection:
                found = (await connection.execute(text("SHOW synchronous_commit"))).scalar_one()
                # Held until every pooled connection is out, so that each is asked once.
                await asyncio.sleep(0.2)
                return found

        assert set(await asyncio.gather(*(setting() for _ in range(pooled)))) == {"on"}


SETTING = "SELECT current_setting('synchronous_commit')"


@pytest.mark.asyncio
async def test_the_take_commits_without_the_flush_and_only_its_own_transaction(
    fapi: Api, formulas_url: str
) -> None:
    """The take (D525) sets the setting local to its own transaction: inside the transaction
    it ran in, the commit will not wait for the flush; after it, the connection is as the
    server set it. No worker runs: the execution waits queued for the take below."""
    formula = await make_formula(
        fapi,
        {
            "name": "taken by hand",
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["s"]}],
            "steps": [{"name": "s", "type": "script", "properties": {"body": "done({});"}}],
        },
    )
    instance = await make_instance(fapi, formula["id"])
    run = await run_manually(fapi, instance["id"], {})
    async with await psycopg.AsyncConnection.connect(formulas_url, autocommit=True) as held:
        server = await (await held.execute(SETTING)).fetchone()
        assert server == ("on",)
        async with held.transaction():
            taken = await StepConnection(held).take(run, 1)
            assert await (await held.execute(SETTING)).fetchone() == ("off",)
        assert await (await held.execute(SETTING)).fetchone() == server
    assert taken is not None
    execution, _ = taken
    assert (execution.id, execution.status) == (run, PENDING)
    assert (await fapi.get(f"formulas/instances/executions/{run}")).body["status"] == PENDING
