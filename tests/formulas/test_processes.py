"""Real processes: a worker SIGKILLed in the middle of an execution loses nothing.

The formula's side-effecting steps send messages through the hub to the Twilio simulator.
The worker is killed while the simulator holds its first message request; a second worker
takes the stalled job over. The execution completes; each message step's effect reached the
simulator once (the repeated request carried the same idempotency key, which the simulator,
like Twilio, answers with the first message); no step whose result was committed ran again.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from sims.twilio_sim import TwilioSimulator
from tests.clusters import Cluster
from tests.conftest import Api, RunningHubgate, twilio_instance_body
from tests.formulas.conftest import (
    eventually,
    finished,
    make_formula,
    make_instance,
    run_manually,
    send_step,
)

pytestmark = pytest.mark.slow


def send(name: str, text: str, after: list[str]) -> dict[str, Any]:
    body = '{"To": "+15558675310", "From": "+15017122661", "Body": "' + text + '"}'
    return send_step(name, body, after)


def count(text: str) -> str:
    return f"done({{n: (steps.{text} ? steps.{text}.n : 0) + 1}});"


async def connector_on_new_account(api: Api, sim: TwilioSimulator) -> tuple[str, int]:
    """A Twilio connector instance on an account of its own, so that its messages are the
    test's alone: the account's sid and the instance's id."""
    account_sid, auth_token = sim.add_account()
    created = await api.post(
        "instances", json=twilio_instance_body(sim, username=account_sid, password=auth_token)
    )
    assert created.status == 200, created.text
    connector_id: int = created.body["id"]
    return account_sid, connector_id


async def test_a_worker_killed_mid_execution_loses_nothing_and_repeats_nothing(
    cluster: Cluster, cluster_api: tuple[Api, RunningHubgate], sim: TwilioSimulator
) -> None:
    api, _ = cluster_api
    account_sid, connector_id = await connector_on_new_account(api, sim)
    formula = await make_formula(
        api,
        {
            "name": "two messages",
            "configuration": [{"key": "twilio", "type": "elementInstance"}],
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["before"]}],
            "steps": [
                {
                    "name": "before",
                    "type": "script",
                    "properties": {"body": "done({at: Date.now()});"},
                    "onSuccess": ["first"],
                },
                send("first", "one", ["between"]),
                {
                    "name": "between",
                    "type": "script",
                    "properties": {
                        "body": "done({sid: JSON.parse(steps.first.response.body).sid});"
                    },
                    "onSuccess": ["second"],
                },
                send("second", "two", []),
            ],
        },
    )
    instance = await make_instance(api, formula["id"], {"twilio": connector_id})

    def message_posts() -> int:
        # The simulator is the session's: only this account's requests count.
        return sum(
            1
            for r in sim.requests
            if r.method == "POST" and r.path.endswith(f"{account_sid}/Messages.json")
        )

    sim.set_latency(4.0)  # the first message request is held while the worker dies
    first_worker = cluster.worker()
    try:
        run = await run_manually(api, instance["id"], {})

        async def in_flight() -> bool:
            return message_posts() >= 1

        await eventually(in_flight, seconds=60)
        cluster.kill(first_worker)
        await asyncio.sleep(4.5)  # the simulator finishes the held request: the message exists
        sim.set_latency(0.0)
        cluster.worker()
        execution = await finished(api, run, seconds=90)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        sim.set_latency(0.0)  # the simulator is shared by the session's other tests
    assert execution["status"] == "success", cluster.logs()
    steps = [s["stepName"] for s in execution["stepExecutions"]]
    assert steps == ["trigger", "before", "first", "between", "second"]
    # The first request was repeated after the crash with the same key, and had one effect.
    assert message_posts() == 3
    bodies = sorted(m["body"] for m in sim.messages(account_sid))
    assert bodies == ["one", "two"]
    stored = (
        await api.get(
            f"formulas/instances/executions/{run}/steps", params={"includeValues": "true"}
        )
    ).body
    between = next(s for s in stored if s["stepName"] == "between")
    sid = next(v["value"] for v in between["stepExecutionValues"] if v["key"] == "between.sid")
    assert sid == next(m["sid"] for m in sim.messages(account_sid) if m["body"] == "one")
    rows = cluster.sql(
        "SELECT step_name, count(*) FROM formula_step_executions WHERE execution_id = %s "
        "GROUP BY step_name",
        run,
    )
    assert all(n == 1 for _, n in rows)


async def test_a_worker_killed_between_two_steps_of_one_job_repeats_no_committed_step(
    cluster: Cluster, cluster_api: tuple[Api, RunningHubgate], sim: TwilioSimulator
) -> None:
    """One job runs the execution's steps one after the other (D450). The worker is killed
    after the first message step and the step after it have committed, while the same job's
    next step is in flight: the rescued job goes on from that step, the committed ones are
    not run again, and each step has one result."""
    api, _ = cluster_api
    account_sid, connector_id = await connector_on_new_account(api, sim)
    formula = await make_formula(
        api,
        {
            "name": "one job, two messages",
            "configuration": [{"key": "twilio", "type": "elementInstance"}],
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["first"]}],
            "steps": [
                send("first", "one", ["between"]),
                {
                    # Long enough for the test to hold the simulator before "second" calls it.
                    "name": "between",
                    "type": "script",
                    "properties": {
                        "body": "var t = Date.now(); while (Date.now() - t < 3000) {} "
                        "done({sid: JSON.parse(steps.first.response.body).sid});"
                    },
                    "onSuccess": ["second"],
                },
                send("second", "two", []),
            ],
        },
    )
    instance = await make_instance(api, formula["id"], {"twilio": connector_id})

    def message_posts() -> int:
        return sum(
            1
            for r in sim.requests
            if r.method == "POST" and r.path.endswith(f"{account_sid}/Messages.json")
        )

    def committed(run: int) -> list[str]:
        rows = cluster.sql(
            "SELECT step_name FROM formula_step_executions WHERE execution_id = %s "
            "ORDER BY position",
            run,
        )
        return [name for (name,) in rows]

    first_worker = cluster.worker()
    try:
        run = await run_manually(api, instance["id"], {})

        async def first_committed() -> bool:
            return "first" in committed(run)

        await eventually(first_committed, seconds=60, interval=0.05)
        sim.set_latency(4.0)  # "second"'s request is held while the worker dies

        async def second_in_flight() -> bool:
            return message_posts() >= 2

        await eventually(second_in_flight, seconds=60)
        # The steps before "second" are committed, and the job that ran the first of them is
        # the one running "second": no other job was queued for this execution.
        assert committed(run) == ["trigger", "first", "between"]
        jobs = cluster.sql(
            "SELECT status, args->>'position' FROM procrastinate_jobs "
            "WHERE task_name = 'formulas.step' AND (args->>'execution_id')::bigint = %s",
            run,
        )
        assert jobs == [("doing", "1")]
        cluster.kill(first_worker)
        await asyncio.sleep(4.5)  # the simulator finishes the held request: the message exists
        sim.set_latency(0.0)
        cluster.worker()
        execution = await finished(api, run, seconds=90)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        sim.set_latency(0.0)  # the simulator is shared by the session's other tests
    assert execution["status"] == "success", cluster.logs()
    assert [s["stepName"] for s in execution["stepExecutions"]] == [
        "trigger",
        "first",
        "between",
        "second",
    ]
    # "first" was sent once; "second" twice with one key, and had one effect.
    assert message_posts() == 3
    assert sorted(m["body"] for m in sim.messages(account_sid)) == ["one", "two"]
    rows = cluster.sql(
        "SELECT step_name, count(*) FROM formula_step_executions WHERE execution_id = %s "
        "GROUP BY step_name",
        run,
    )
    assert sorted(rows) == [("between", 1), ("first", 1), ("second", 1), ("trigger", 1)]


async def test_a_stopping_worker_hands_a_long_execution_over(
    cluster: Cluster, cluster_api: tuple[Api, RunningHubgate]
) -> None:
    """A SIGTERM lets a running job finish; a job that runs a long execution queues its next
    step as a job of its own after a few seconds (D454), so the stopping worker ends without
    losing the execution, and another worker runs the rest, each step once."""
    api, _ = cluster_api
    names = [f"s{n}" for n in range(1, 11)]
    formula = await make_formula(
        api,
        {
            "name": "ten slow steps",
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": [names[0]]}],
            "steps": [
                {
                    "name": name,
                    "type": "script",
                    "properties": {
                        "body": "var t = Date.now(); while (Date.now() - t < 1000) {} done({});"
                    },
                    "onSuccess": names[n + 1 : n + 2],
                }
                for n, name in enumerate(names)
            ],
        },
    )
    instance = await make_instance(api, formula["id"], {})

    def committed(run: int) -> int:
        return int(
            cluster.sql(
                "SELECT count(*) FROM formula_step_executions WHERE execution_id = %s", run
            )[0][0]
        )

    first_worker = cluster.worker()
    try:
        run = await run_manually(api, instance["id"], {})

        async def two_done() -> bool:
            return committed(run) >= 3  # the trigger, s1, s2

        await eventually(two_done, seconds=60)
        first_worker.send_signal(signal.SIGTERM)
        assert first_worker.wait(timeout=60) == 0
        # The stopping worker ended its job mid-execution and left the rest queued.
        status = cluster.sql("SELECT status FROM formula_executions WHERE id = %s", run)
        assert status == [("pending",)]
        queued = cluster.sql(
            "SELECT status, (args->>'position')::int FROM procrastinate_jobs "
            "WHERE task_name = 'formulas.step' AND (args->>'execution_id')::bigint = %s",
            run,
        )
        assert queued == [("todo", committed(run))]
        cluster.worker()
        execution = await finished(api, run, seconds=90)
    except BaseException:
        print(cluster.logs())
        raise
    assert execution["status"] == "success", cluster.logs()
    assert [s["stepName"] for s in execution["stepExecutions"]] == ["trigger", *names]
