"""Replay from a step (D44), template versions per execution, and deactivation after 100
consecutive failures (D41)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from hubgate.db.engine import unit_of_work
from hubgate.formulas.models import FormulaInstance
from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver
from tests.conftest import Api, RunningHubgate
from tests.formulas.conftest import finished, make_formula, make_instance, run_manually, values


def post(name: str, url: str, *after: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "httpRequest",
        "properties": {
            "method": "POST",
            "url": f"{url}/{name}",
            "body": '{"step": "' + name + '"}',
        },
        "onSuccess": list(after),
    }


async def test_replay_runs_the_chosen_step_and_those_after_it_only(
    fapi: Api, worker: Runtime, receiver: CallbackReceiver
) -> None:
    url = receiver.url
    formula = await make_formula(
        fapi,
        {
            "name": "three calls",
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["a"]}],
            "steps": [post("a", url, "b"), post("b", url, "c"), post("c", url)],
        },
    )
    instance = await make_instance(fapi, formula["id"])
    receiver.fail_next(2, 200)
    receiver.fail_next(1, 500)  # a and b answer; c fails
    failing = await run_manually(fapi, instance["id"], {"x": 2})
    assert (await finished(fapi, failing))["status"] == "failed"
    assert [r.json()["step"] for r in receiver.requests] == ["a", "b", "c"]

    # The template changes meanwhile: the replay keeps the version the execution ran.
    edit = await fapi.patch(f"formulas/{formula['id']}", json={"description": "v2"})
    assert edit.body["version"] == 2

    unknown = await fapi.post(
        f"formulas/instances/executions/{failing}/replay", json={"fromStep": "zz"}
    )
    assert unknown.status == 400
    assert "no step 'zz'" in unknown.body["message"]
    replay = await fapi.post(
        f"formulas/instances/executions/{failing}/replay", json={"fromStep": "c"}
    )
    assert replay.status == 200, replay.text
    assert replay.body["originExecutionId"] == failing
    assert replay.body["formulaVersion"] == 1
    replayed = await finished(fapi, replay.body["id"])
    assert replayed["status"] == "success"
    # Only c ran again: a and b were not called a third time.
    assert [r.json()["step"] for r in receiver.requests] == ["a", "b", "c", "c"]
    steps = (await fapi.get(f"formulas/instances/executions/{replay.body['id']}/steps")).body
    assert [(s["stepName"], s.get("reused", False)) for s in steps] == [
        ("trigger", True),
        ("a", True),
        ("b", True),
        ("c", False),
    ]
    stored = await values(fapi, replay.body["id"])
    assert stored["trigger"]["trigger.args"] == '{"x": 2}'
    assert stored["c"]["c.response"].startswith('{"code": "200"')
    # A replay of an execution still running is refused.
    assert (
        await fapi.post(f"formulas/instances/executions/{failing}/replay", json={"fromStep": ""})
    ).status == 400


async def test_the_101st_consecutive_failure_deactivates_the_instance(
    fapi: Api, worker: Runtime, formulas_hubgate: RunningHubgate
) -> None:
    formula = await make_formula(
        fapi,
        {
            "name": "always fails",
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["boom"]}],
            "steps": [
                {"name": "boom", "type": "script", "properties": {"body": "throw 'no'; done({});"}}
            ],
        },
    )
    instance = await make_instance(fapi, formula["id"])
    await finished(fapi, await run_manually(fapi, instance["id"], {}))
    path = f"formulas/{formula['id']}/instances/{instance['id']}"
    assert (await fapi.get(path)).body["numberConsecutiveErrors"] == 1
    async with unit_of_work(formulas_hubgate.runtime.sessions) as session:
        await session.execute(
            update(FormulaInstance)
            .where(FormulaInstance.id == instance["id"])
            .values(consecutive_failures=100)
        )
    await finished(fapi, await run_manually(fapi, instance["id"], {}))
    read = (await fapi.get(path)).body
    assert read["active"] is False
    assert "after 101 consecutive failed executions" in read["deactivationReason"]
    assert "firstConsecutiveErrorDate" in read
    reactivated = (await fapi.put(f"{path}/active")).body
    assert reactivated["active"] is True
    assert reactivated["numberConsecutiveErrors"] == 0
