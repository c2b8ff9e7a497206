"""The connection a step job holds while it runs (D510): never starved, and lost safely."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import pytest

from hubgate.db.engine import held_connection
from hubgate.runtime import Runtime
from hubgate.settings import Settings
from tests.clusters import worker_on
from tests.conftest import Api
from tests.formulas.conftest import (
    SCRIPT_REQUEST_SCRIPT,
    finished,
    make_formula,
    make_instance,
    run_manually,
    values,
)


@pytest.mark.asyncio
async def test_more_executions_than_the_worker_runs_at_once_with_request_steps_all_end(
    fapi: Api, formulas_settings: Settings, formulas_url: str
) -> None:
    """40 executions queued before the worker starts, 32 jobs at once, each holding its
    connection while its request step takes one of a runtime pool of 4 for the platform
    call: none waits for another's held connection, and every one ends in success."""
    formula = await make_formula(fapi, SCRIPT_REQUEST_SCRIPT)
    instance = await make_instance(fapi, formula["id"])
    runs = [await run_manually(fapi, instance["id"], {"n": n}) for n in range(40)]
    settings = formulas_settings.model_copy(
        update={"worker_concurrency": 32, "database_pool_size": 4}
    )
    async with worker_on(settings, formulas_url, "held-connections") as runtime:
        for n, run in enumerate(runs):
            execution = await finished(fapi, run, seconds=120.0)
            assert execution["status"] == "success", await values(fapi, run)
            assert (await values(fapi, run))["after"] == {"after.seen": str(n + 1)}
        # The jobs ran side by side: the engine's own pool opened more than one connection,
        # and none beyond the worker's concurrency.
        held = runtime.step_engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
        assert 1 < held <= 32


async def _backend_pids(runtime: Runtime) -> list[int]:
    """The server process of every connection the engine's pool holds, each asked once."""
    pooled = runtime.step_engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
    pids: list[int] = []
    everyone_out = asyncio.Event()

    async def one() -> None:
        async with held_connection(runtime.step_engine) as connection:
            pids.append(connection.info.backend_pid)
            if len(pids) == pooled:
                everyone_out.set()
            await asyncio.wait_for(everyone_out.wait(), 10)

    await asyncio.gather(*(one() for _ in range(pooled)))
    return pids


@pytest.mark.asyncio
async def test_a_job_whose_held_connection_was_lost_is_run_again_and_repeats_nothing(
    fapi: Api, worker: Runtime, formulas_url: str
) -> None:
    """The held connections are not pinged before use (D510): a job that takes one the
    server has dropped fails on its first statement, gives it up, and is queued again; the
    execution then ends as any other, each step run once."""
    formula = await make_formula(fapi, SCRIPT_REQUEST_SCRIPT)
    instance = await make_instance(fapi, formula["id"])
    first = await run_manually(fapi, instance["id"], {"n": 1})
    assert (await finished(fapi, first))["status"] == "success"

    pids = await _backend_pids(worker)
    assert pids
    with psycopg.connect(formulas_url, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    again = await run_manually(fapi, instance["id"], {"n": 2})
    execution = await finished(fapi, again)
    assert execution["status"] == "success", await values(fapi, again)
    steps = await fapi.get(f"formulas/instances/executions/{again}/steps")
    assert [step["stepName"] for step in steps.body] == ["trigger", "before", "platform", "after"]
    assert (await values(fapi, again))["after"] == {"after.seen": "3"}
    # The dropped connections were given up, not returned: the pool now holds live ones.
    for pid in await _backend_pids(worker):
        assert pid not in pids


@pytest.mark.asyncio
async def test_a_block_that_raises_gives_its_connection_up(worker: Runtime) -> None:
    """A connection whose job raised may be mid-statement or broken: it is not pooled again."""
    with contextlib.suppress(RuntimeError):
        async with held_connection(worker.step_engine) as connection:
            raised: Any = connection
            raise RuntimeError("the job failed")
    assert raised.closed


@pytest.mark.asyncio
async def test_the_job_pool_replaces_a_connection_the_server_ended_without_a_ping_each_time(
    fapi: Api, worker: Runtime, formulas_url: str
) -> None:
    """The job pool pings a connection only when the server has spoken since (D511): the
    connections whose server processes were ended are found out and replaced, and the worker
    goes on fetching and finishing jobs on new ones."""
    formula = await make_formula(fapi, SCRIPT_REQUEST_SCRIPT)
    instance = await make_instance(fapi, formula["id"])
    first = await run_manually(fapi, instance["id"], {"n": 1})
    assert (await finished(fapi, first))["status"] == "success"

    pool = worker.jobs.app.connector.pool  # type: ignore[attr-defined]
    idle = pool.get_stats()["pool_available"]
    assert idle > 0
    pids: list[int] = []
    everyone_out = asyncio.Event()

    async def one() -> None:
        async with pool.connection() as connection:
            pids.append(connection.info.backend_pid)
            if len(pids) == idle:
                everyone_out.set()
            await asyncio.wait_for(everyone_out.wait(), 10)

    await asyncio.gather(*(one() for _ in range(idle)))
    with psycopg.connect(formulas_url, autocommit=True) as admin:
        for pid in pids:
            # Returns once the server process is gone (its goodbye is in the socket).
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))

    for n in range(2, 5):
        run = await run_manually(fapi, instance["id"], {"n": n})
        execution = await finished(fapi, run)
        assert execution["status"] == "success", await values(fapi, run)
    async with pool.connection() as connection:
        assert connection.info.backend_pid not in pids
