"""Executions over real HTTP with a real worker: the step types, the context, the flow."""

from __future__ import annotations

from typing import Any

import pytest

from hubgate.runtime import Runtime
from hubgate.testing.twilio_sim import TwilioSimulator
from tests.conftest import Api
from tests.formulas.conftest import finished, make_formula, make_instance, run_manually, values


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
                {
                    "name": "send",
                    "type": "elementRequest",
                    "properties": {
                        "elementInstanceId": "${config.twilio}",
                        "method": "POST",
                        "api": "/hubs/messaging/messages",
                        "body": "${trigger.args}",
                    },
                    "onSuccess": ["read"],
                },
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
