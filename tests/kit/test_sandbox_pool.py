"""D42's second fence (D390): scripts in worker processes with OS limits, real processes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import psutil
import pytest

from hubgate.kit.sandbox import (
    MIB,
    FailureKind,
    Fence,
    Limits,
    SandboxPool,
    ScriptFailure,
    ScriptResult,
    run_many,
)
from hubgate.kit.sandbox.wire import frame, unframe

LIMITS = Limits(seconds=5.0, memory_bytes=32 * MIB)
# Engine limits wider than the OS fence below, so that only the fence can stop these scripts.
WIDE = Limits(seconds=60.0, memory_bytes=2048 * MIB)
TIGHT = Fence(cpu_seconds=1.0, memory_bytes=96 * MIB)
PARAMS = ("n",)


def all_workers() -> set[int]:
    return {
        child.pid
        for child in psutil.Process().children()
        if "hubgate.kit.sandbox.worker" in " ".join(child.cmdline())
    }


# Workers of other pools in this test process (the default one) are not the test's.
_OTHERS: set[int] = set()


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    _OTHERS.clear()
    _OTHERS.update(all_workers())
    made = SandboxPool(2)
    yield made
    made.close()


def workers() -> list[psutil.Process]:
    return [psutil.Process(pid) for pid in sorted(all_workers() - _OTHERS)]


async def still_serves(pool: SandboxPool) -> None:
    assert await pool.run_many("done(n * 2)", PARAMS, [{"n": 21}], LIMITS) == [ScriptResult(42)]


async def test_a_worker_answers_as_the_engine_does_in_process(pool: SandboxPool) -> None:
    body = "console.log('n is', n); if (n === 2) throw new TypeError('two'); done({n: n})"
    calls = [{"n": 1}, {"n": 2}, {"n": 3}]
    assert await pool.run_many(body, PARAMS, calls, LIMITS) == run_many(body, PARAMS, calls, LIMITS)


async def test_the_engine_limits_still_act_first_inside_a_worker(pool: SandboxPool) -> None:
    [outcome] = await pool.run_many(
        "while (true) {}", PARAMS, [{}], Limits(seconds=0.5, memory_bytes=16 * MIB)
    )
    assert isinstance(outcome, ScriptFailure)
    assert outcome.kind is FailureKind.TIME_LIMIT
    await still_serves(pool)


async def test_the_os_cpu_limit_stops_what_the_engine_lets_run_and_the_pool_recovers(
    pool: SandboxPool,
) -> None:
    outcomes = await pool.run_many("while (true) {}", PARAMS, [{}, {}], WIDE, TIGHT)
    assert (
        outcomes
        == [
            ScriptFailure(
                FailureKind.PROCESS, "the sandbox process was stopped by its CPU time limit"
            )
        ]
        * 2
    )
    await still_serves(pool)
    assert len(workers()) <= 2


async def test_the_os_memory_limit_stops_a_huge_allocation_and_the_pool_recovers(
    pool: SandboxPool,
) -> None:
    bomb = "const kept = []; while (true) kept.push(new Array(1 << 20).fill(n)); done(0)"
    [outcome] = await pool.run_many(bomb, PARAMS, [{"n": 1.5}], WIDE, TIGHT)
    # The engine's 2 GiB are never reached: the OS refuses the allocation first, and QuickJS
    # reports it as running out of memory, so the request is answered.
    assert isinstance(outcome, ScriptFailure)
    assert outcome.kind is FailureKind.MEMORY_LIMIT
    await still_serves(pool)


async def test_a_worker_killed_mid_job_fails_that_job_only(pool: SandboxPool) -> None:
    await still_serves(pool)
    [idle] = workers()
    job = asyncio.create_task(pool.run_many("while (true) {}", PARAMS, [{}], LIMITS))
    await asyncio.sleep(0.5)  # the job reaches the only worker, which loops
    assert not job.done()
    os.kill(idle.pid, signal.SIGKILL)
    assert await job == [ScriptFailure(FailureKind.PROCESS, "the sandbox process was killed")]
    await still_serves(pool)


async def test_more_jobs_than_processes_wait_their_turn(pool: SandboxPool) -> None:
    jobs = [pool.run_many("done(n + 1)", PARAMS, [{"n": k}], LIMITS) for k in range(12)]
    answers = await asyncio.gather(*jobs)
    assert answers == [[ScriptResult(k + 1)] for k in range(12)]
    assert len(workers()) <= 2


async def test_a_cancelled_job_costs_its_worker_and_nothing_else(pool: SandboxPool) -> None:
    job = asyncio.create_task(pool.run_many("while (true) {}", PARAMS, [{}], LIMITS))
    await asyncio.sleep(0.5)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    await still_serves(pool)
    assert len(workers()) <= 2


async def test_a_worker_that_died_while_idle_is_replaced_before_a_job(pool: SandboxPool) -> None:
    await still_serves(pool)
    [idle] = workers()
    idle.kill()
    idle.wait(timeout=30)
    await still_serves(pool)
    assert [w.pid for w in workers()] != [idle.pid]


def test_a_frame_is_read_only_once_both_its_parts_are_whole() -> None:
    whole = frame({"stopped": None}, b'{"records": []}')
    for cut in range(len(whole)):
        assert unframe(whole[:cut]) is None
    assert unframe(whole) == (b'{"stopped":null}', b'{"records": []}')
    assert unframe(bytearray(whole)) == unframe(whole)
