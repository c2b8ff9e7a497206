"""The worker's fetch of its next jobs commits without waiting for the WAL flush (D513, D520)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from hubgate.runtime import Runtime
from tests.conftest import Api
from tests.formulas.conftest import finished, make_formula, make_instance, run_manually

ONE_SCRIPT = {
    "name": "one script",
    "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["only"]}],
    "steps": [{"name": "only", "type": "script", "properties": {"body": "done({n: 1});"}}],
}
FETCHES = """
    SELECT query FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND query LIKE '%%UPDATE procrastinate_jobs AS taken%%'
"""


@pytest.mark.asyncio
async def test_the_fetch_is_sent_with_its_own_commit_relaxed_and_the_jobs_still_run(
    fapi: Api, worker: Runtime, formulas_url: str
) -> None:
    """Every fetch the job pool's connections sent carried the setting local to its own
    transaction; the executions it fetched ran to the end, and the connections themselves
    keep the server's setting for everything else they send (finishes, defers)."""
    formula = await make_formula(fapi, ONE_SCRIPT)
    instance = await make_instance(fapi, formula["id"])
    runs = [await run_manually(fapi, instance["id"], {"n": n}) for n in range(5)]
    for run in runs:
        assert (await finished(fapi, run))["status"] == "success"

    # The job pool's connections also send the heartbeat, the periodic defers and the abort
    # polls: the last statement of one of them is a fetch now and then (the idle worker
    # fetches every 0.1 s), which this waits for.
    sent: list[str] = []
    with psycopg.connect(formulas_url, autocommit=True) as admin:
        server = admin.execute("SELECT current_setting('synchronous_commit')").fetchone()
        for _ in range(2000):
            sent = [query for (query,) in admin.execute(FETCHES).fetchall()]
            if sent:
                break
            await asyncio.sleep(0.01)
    assert sent
    assert all("set_config('synchronous_commit', 'off', true)" in query for query in sent)
    pool = worker.jobs.app.connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT current_setting('synchronous_commit')")
        assert await cursor.fetchone() == server
