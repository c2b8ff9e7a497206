"""Executions over real HTTP with a real worker: the step types, the context, the flow."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from typing import Any

import pytest

from hubgate.events.signing import elements_signature
from hubgate.jobs.worker import work
from hubgate.runtime import Runtime, open_runtime
from hubgate.settings import Settings
from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api
from tests.formulas.conftest import (
    finished,
    make_formula,
    make_instance,
    run_manually,
    send_step,
    values,
)


def script(name: str, body: str, **links: Any) -> dict[str, Any]:
    return {"name": name, "type": "script", "properties": {"body": body}, **links}


def manual(*first: str) -> list[dict[str, Any]]:
    return [{"type": "manual", "properties": {}, "onSuccess": list(first)}]


@pytest.mark.asyncio
async def test_a_manual_formula_passes_values_between_scripts(fapi: Api, worker: Runtime) -> None:
    formula = await make_formula(
        fapi,
        {
            "name": "two scripts",
            "configuration": [{"key": "greeting", "type": "value"}],
            "triggers": manual("first"),
            "steps": [
                script(
                    "first",
                    "done({text: config.greeting + ' ' + trigger.args.who, n: 1});",
                    onSuccess=["second"],
                ),
                script(
                    "second",
                    "console.log('second ran'); done({said: steps.first.text, "
                    "id: info.formulaExecutionId});",
                ),
            ],
        },
    )
    instance = await make_instance(fapi, formula["id"], {"greeting": "hello"})
    execution_id = await run_manually(fapi, instance["id"], {"who": "world"})
    execution = await finished(fapi, execution_id)
    assert execution["status"] == "success"
    assert [s["stepName"] for s in execution["stepExecutions"]] == ["trigger", "first", "second"]
    stored = await values(fapi, execution_id)
    assert stored["trigger"]["trigger.args"] == '{"who": "world"}'
    assert stored["first"]["first.text"] == "hello world"
    assert stored["first"]["first.n"] == "1"
    assert stored["second"]["second.said"] == "hello world"
    assert stored["second"]["second.id"] == str(execution_id)
    assert stored["second"]["second.console"] == '["second ran"]'


@pytest.mark.asyncio
async def test_an_element_request_step_goes_through_the_hub(
    fapi: Api, worker: Runtime, twilio: dict[str, Any], sim: TwilioSimulator
) -> None:
    formula = await make_formula(
        fapi,
        {
            "name": "send a message",
            "configuration": [{"key": "twilio", "type": "elementInstance"}],
            "triggers": manual("send"),
            "steps": [
                send_step("send", "${trigger.args}", ["read"]),
                script("read", "done({sid: JSON.parse(steps.send.response.body).sid});"),
            ],
        },
    )
    instance = await make_instance(fapi, formula["id"], {"twilio": twilio["id"]})
    args = {"To": "+15558675310", "From": "+15017122661", "Body": "hi from a formula"}
    execution_id = await run_manually(fapi, instance["id"], args)
    execution = await finished(fapi, execution_id)
    assert execution["status"] == "success", await values(fapi, execution_id)
    stored = await values(fapi, execution_id)
    assert stored["send"]["send.response"]
    sid = stored["read"]["read.sid"]
    assert sim.message(sid)["body"] == "hi from a formula"


async def one_run(api: Api, body: dict[str, Any], args: Any = None, **config: Any) -> int:
    formula = await make_formula(api, body)
    instance = await make_instance(api, formula["id"], config)
    return await run_manually(api, instance["id"], args if args is not None else {})


async def test_a_false_filter_takes_on_failure_and_the_run_still_succeeds(
    fapi: Api, worker: Runtime
) -> None:
    run = await one_run(
        fapi,
        {
            "name": "filter",
            "triggers": manual("check"),
            "steps": [
                {
                    "name": "check",
                    "type": "filter",
                    "properties": {"body": "done(trigger.args.n > 5);"},
                    "onSuccess": ["big"],
                },
                script("big", "done({big: true});"),
            ],
        },
        {"n": 3},
    )
    execution = await finished(fapi, run)
    assert execution["status"] == "success"
    assert [s["stepName"] for s in execution["stepExecutions"]] == ["trigger", "check"]
    assert (await values(fapi, run))["check"] == {"check.continue": "false"}


async def test_a_loop_runs_its_body_per_item_then_its_on_failure(
    fapi: Api, worker: Runtime
) -> None:
    run = await one_run(
        fapi,
        {
            "name": "loop",
            "triggers": manual("each"),
            "steps": [
                {
                    "name": "each",
                    "type": "loop",
                    "properties": {"list": "${trigger.args.items}"},
                    "onSuccess": ["double"],
                    "onFailure": ["after"],
                },
                script(
                    "double",
                    "done({value: steps.each.entry * 2, index: steps.each.index});",
                    onSuccess=["each"],
                ),
                script("after", "done({last: steps.double.value});"),
            ],
        },
        {"items": [1, 2, 3]},
    )
    execution = await finished(fapi, run)
    assert execution["status"] == "success"
    names = [s["stepName"] for s in execution["stepExecutions"]]
    assert names == ["trigger"] + ["each", "double"] * 3 + ["each", "after"]
    response = await fapi.get(
        f"formulas/instances/executions/{run}/steps", params={"includeValues": "true"}
    )
    doubled = [
        v["value"]
        for s in response.body
        if s["stepName"] == "double"
        for v in s["stepExecutionValues"]
        if v["key"] == "double.value"
    ]
    assert doubled == ["2", "4", "6"]
    assert (await values(fapi, run))["after"] == {"after.last": "6"}


async def test_a_loop_over_a_non_list_fails(fapi: Api, worker: Runtime) -> None:
    run = await one_run(
        fapi,
        {
            "name": "bad loop",
            "triggers": manual("each"),
            "steps": [{"name": "each", "type": "loop", "properties": {"list": "${trigger.args}"}}],
        },
        {"not": "a list"},
    )
    execution = await finished(fapi, run)
    assert execution["status"] == "failed"
    errors = await fapi.get(f"formulas/instances/executions/{run}/errors")
    assert errors.body[0]["stepName"] == "each"
    assert "not a list" in errors.body[0]["error"]


async def test_a_sub_formula_passes_its_values_and_its_failure_up(
    fapi: Api, worker: Runtime
) -> None:
    child = await make_formula(
        fapi,
        {
            "name": "child",
            "triggers": manual("work"),
            "steps": [
                script(
                    "work",
                    "if (trigger.args.fail) { throw new Error('child broke'); } "
                    "done({doubled: trigger.args.n * 2, tag: config.tag});",
                )
            ],
        },
    )
    parent = {
        "name": "parent",
        "configuration": [{"key": "tag", "type": "value"}],
        "triggers": manual("call"),
        "steps": [
            {
                "name": "call",
                "type": "formula",
                "properties": {"formulaId": str(child["id"]), "args": "${trigger.args}"},
                "onSuccess": ["use"],
            },
            script("use", "done({got: steps.call.doubled, tag: steps.call.tag});"),
        ],
    }
    run = await one_run(fapi, parent, {"n": 21}, tag="blue")
    execution = await finished(fapi, run)
    assert execution["status"] == "success", await values(fapi, run)
    assert (await values(fapi, run))["use"] == {"use.got": "42", "use.tag": "blue"}

    failing = await one_run(fapi, {**parent, "name": "parent 2"}, {"fail": True}, tag="red")
    execution = await finished(fapi, failing)
    assert execution["status"] == "failed"
    errors = (await fapi.get(f"formulas/instances/executions/{failing}/errors")).body
    assert errors[0]["stepName"] == "call"
    assert "child broke" in errors[0]["error"]


async def test_a_runaway_script_and_a_memory_bomb_fail_the_execution(
    fapi: Api, worker: Runtime
) -> None:
    runaway = await one_run(
        fapi,
        {
            "name": "runaway",
            "triggers": manual("spin"),
            "steps": [script("spin", "while (true) {} done({});")],
        },
    )
    bomb = await one_run(
        fapi,
        {
            "name": "bomb",
            "triggers": manual("grow"),
            "steps": [
                script("grow", "var a = []; while (true) { a.push('x'.repeat(1e6)); } done({});")
            ],
        },
    )
    spun = await finished(fapi, runaway, seconds=60)
    grown = await finished(fapi, bomb, seconds=60)
    assert spun["status"] == "failed"
    assert grown["status"] == "failed"
    assert (await values(fapi, runaway))["spin"]["spin.error"].startswith("time limit")
    assert (await values(fapi, bomb))["grow"]["grow.error"].startswith("memory limit")


async def test_an_http_request_step_retries_then_succeeds_with_one_key(
    fapi: Api, worker: Runtime, receiver: CallbackReceiver
) -> None:
    receiver.fail_next(2, status=503)
    run = await one_run(
        fapi,
        {
            "name": "http",
            "triggers": manual("post"),
            "steps": [
                {
                    "name": "post",
                    "type": "httpRequest",
                    "properties": {
                        "method": "POST",
                        "url": receiver.url,
                        "body": "${trigger.args}",
                        "retryAttempts": "3",
                        "retryDelay": "100",
                        "retryStatusCodes": "500-504",
                    },
                }
            ],
        },
        {"hello": "there"},
    )
    execution = await finished(fapi, run)
    assert execution["status"] == "success"
    assert [r.status for r in receiver.requests] == [503, 503, 200]
    assert {r.headers["idempotency-key"] for r in receiver.requests} == {f"{run}.post.1"}
    assert receiver.requests[-1].json() == {"hello": "there"}
    assert (await values(fapi, run))["post"]["post.response"].startswith('{"code": "200"')


async def test_an_http_request_to_a_private_address_is_refused(fapi: Api, worker: Runtime) -> None:
    run = await one_run(
        fapi,
        {
            "name": "private",
            "triggers": manual("peek"),
            "steps": [
                {
                    "name": "peek",
                    "type": "httpRequest",
                    "properties": {"method": "GET", "url": "http://10.1.2.3/secrets"},
                }
            ],
        },
    )
    execution = await finished(fapi, run)
    assert execution["status"] == "failed"
    response = json.loads((await values(fapi, run))["peek"]["peek.response"])
    assert response["code"] == "403"
    assert "HUBGATE_EGRESS_ALLOW" in response["body"]


async def test_retry_formula_execution_ends_the_run_as_retry_and_schedules_another(
    fapi: Api, worker: Runtime
) -> None:
    run = await one_run(
        fapi,
        {
            "name": "retry",
            "triggers": manual("again"),
            "steps": [
                {
                    "name": "again",
                    "type": "retryFormulaExecution",
                    "properties": {"retryAttempts": "2"},
                }
            ],
        },
    )
    execution = await finished(fapi, run)
    assert execution["status"] == "retry"
    stored = (await values(fapi, run))["again"]
    assert stored["again.attempt"] == "1"
    assert "scheduled for retry at approximately" in stored["again.message"]
    listed = (
        await fapi.get(f"formulas/instances/{execution['formulaInstanceId']}/executions")
    ).body
    queued = [e for e in listed if e["id"] != run]
    assert len(queued) == 1
    assert queued[0]["status"] == "queued"
    assert queued[0]["attempt"] == 1
    assert queued[0]["originExecutionId"] == run


async def test_cancel_rerun_paging_and_large_values(fapi: Api, worker: Runtime) -> None:
    formula = await make_formula(
        fapi,
        {
            "name": "big",
            "triggers": manual("make"),
            "steps": [script("make", "done({big: 'x'.repeat(5 * 1024 * 1024), small: 1});")],
        },
    )
    instance = await make_instance(fapi, formula["id"])
    run = await run_manually(fapi, instance["id"], {})
    execution = await finished(fapi, run)
    assert execution["status"] == "success"
    steps = (
        await fapi.get(
            f"formulas/instances/executions/{run}/steps", params={"includeValues": "true"}
        )
    ).body
    big = next(v for v in steps[1]["stepExecutionValues"] if v["key"] == "make.big")
    assert big["truncated"] is True
    assert len(big["value"]) <= 4 * 1024 * 1024
    assert big["value"].endswith("[truncated]")

    finished_again = await fapi.patch(
        f"formulas/instances/executions/{run}", json={"status": "cancelled"}
    )
    assert finished_again.status == 400
    assert "has finished" in finished_again.body["message"]
    unknown = await fapi.patch(
        "formulas/instances/executions/987654321", json={"status": "cancelled"}
    )
    assert unknown.status == 404

    rerun = await fapi.put(f"formulas/instances/executions/{run}/retries", json={})
    assert rerun.status == 200, rerun.text
    assert (await finished(fapi, rerun.body["id"]))["status"] == "success"
    third = await run_manually(fapi, instance["id"], {})
    await finished(fapi, third)

    base = f"formulas/instances/{instance['id']}/executions"
    first_page = await fapi.get(base, params={"pageSize": "2"})
    token = first_page.headers["Elements-Next-Page-Token"]
    second_page = await fapi.get(base, params={"pageSize": "2", "nextPage": token})
    seen = [e["id"] for e in first_page.body + second_page.body]
    assert seen == sorted([run, rerun.body["id"], third], reverse=True)
    assert "Elements-Next-Page-Token" not in second_page.headers
    both = await fapi.get(base, params={"eventId": "a", "objectId": "b"})
    assert both.status == 400


async def test_a_queued_execution_can_be_cancelled(fapi: Api) -> None:
    # No worker runs: the execution stays queued until it is cancelled.
    run = await one_run(
        fapi,
        {"name": "never", "triggers": manual("s"), "steps": [script("s", "done({});")]},
    )
    response = await fapi.patch(
        f"formulas/instances/executions/{run}", json={"status": "cancelled"}
    )
    assert response.status == 200, response.text
    assert response.body["status"] == "cancelled"
    bad = await fapi.patch(f"formulas/instances/executions/{run}", json={"status": "success"})
    assert bad.status == 400


async def test_a_trigger_input_over_5_mb_is_a_413(fapi: Api) -> None:
    formula = await make_formula(
        fapi, {"name": "t", "triggers": manual("s"), "steps": [script("s", "done({});")]}
    )
    instance = await make_instance(fapi, formula["id"])
    response = await fapi.post(
        f"formulas/instances/{instance['id']}/executions",
        data=io.BytesIO(json.dumps({"blob": "x" * (5 * 1024 * 1024 + 10)}).encode()),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413


async def test_a_request_step_calls_the_platform_api_as_the_owner(
    fapi: Api, worker: Runtime, twilio: dict[str, Any]
) -> None:
    run = await one_run(
        fapi,
        {
            "name": "platform",
            "triggers": manual("mine"),
            "steps": [
                {
                    "name": "mine",
                    "type": "request",
                    "properties": {
                        "method": "GET",
                        "api": "/instances/{id}",
                        "path": "${trigger.args}",
                    },
                    "onSuccess": ["named"],
                },
                script("named", "done({name: JSON.parse(steps.mine.response.body).name});"),
            ],
        },
        {"id": twilio["id"]},
    )
    execution = await finished(fapi, run)
    assert execution["status"] == "success", await values(fapi, run)
    assert (await values(fapi, run))["named"] == {"named.name": twilio["name"]}
    refused = await fapi.post(
        "formulas",
        json={
            "name": "hub via request",
            "steps": [
                {
                    "name": "r",
                    "type": "request",
                    "properties": {"method": "GET", "api": "/hubs/messaging/messages"},
                }
            ],
        },
    )
    assert refused.status == 400
    assert "use an elementRequest step" in refused.body["message"]


async def test_a_failed_execution_is_posted_signed_to_the_instance_webhook(
    fapi: Api, worker: Runtime, receiver: CallbackReceiver
) -> None:
    formula = await make_formula(
        fapi,
        {
            "name": "fails",
            "triggers": manual("boom"),
            "steps": [script("boom", "throw 'no'; done({});")],
        },
    )
    key = "formula webhook key"
    instance = await make_instance(
        fapi,
        formula["id"],
        settings={
            "notification.webhook.url": receiver.url,
            "notification.webhook.signature.key": key,
        },
    )
    receiver.fail_next(1, 503)  # the first post is refused: the notice is tried again
    run = await run_manually(fapi, instance["id"], {})
    assert (await finished(fapi, run))["status"] == "failed"
    await receiver.wait_for(lambda r: len(r) >= 2, seconds=30)
    notice = receiver.requests[-1]
    assert notice.status == 200
    assert notice.headers["elements-webhook-id"] == f"formula-execution-{run}"
    assert notice.headers["elements-webhook-signature"] == elements_signature(key, notice.body)
    body = notice.json()
    assert body["executionId"] == run
    assert body["failedSteps"][0]["stepName"] == "boom"
    assert "no" in body["failedSteps"][0]["error"]


async def test_several_workers_share_executions_and_run_none_twice(
    fapi: Api,
    worker: Runtime,
    formulas_settings: Settings,
    formulas_url: str,
    receiver: CallbackReceiver,
) -> None:
    others = [
        await open_runtime(formulas_settings, formulas_url, job_pool_size=4) for _ in range(2)
    ]
    tasks = [
        asyncio.create_task(
            work(rt, name=f"extra-{n}", install_signal_handlers=False, fetch_interval=0.1)
        )
        for n, rt in enumerate(others)
    ]
    try:
        formula = await make_formula(
            fapi,
            {
                "name": "shared",
                "triggers": manual("a"),
                "steps": [
                    script("a", "done({n: trigger.args.n});", onSuccess=["call"]),
                    {
                        "name": "call",
                        "type": "httpRequest",
                        "properties": {"method": "POST", "url": receiver.url, "body": "${steps.a}"},
                        "onSuccess": ["b"],
                    },
                    script("b", "done({n: steps.a.n});"),
                ],
            },
        )
        instance = await make_instance(fapi, formula["id"])
        runs = [await run_manually(fapi, instance["id"], {"n": n}) for n in range(15)]
        for run in runs:
            execution = await finished(fapi, run, seconds=60)
            assert execution["status"] == "success"
            assert [s["stepName"] for s in execution["stepExecutions"]] == [
                "trigger",
                "a",
                "call",
                "b",
            ]
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for rt in others:
            await rt.close()
    keys = [r.headers["idempotency-key"] for r in receiver.requests]
    assert sorted(keys) == sorted(f"{run}.call.2" for run in runs)
    assert sorted(r.json()["n"] for r in receiver.requests) == list(range(15))
