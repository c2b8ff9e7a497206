"""The template and formula instance API over real HTTP: shapes, sub-routes, and every
write-time validation error of item 1 as a 400 that names the fault."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import Api
from tests.formulas.conftest import make_formula, make_instance, send_step

BASE: dict[str, Any] = {
    "name": "<b>greeter</b>",
    "configuration": [
        {"key": "twilio", "type": "elementInstance"},
        {"key": "greeting", "type": "value"},
    ],
    "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["hello"]}],
    "steps": [
        {
            "name": "hello",
            "type": "script",
            "properties": {"body": "done({text: config.greeting});"},
            "onSuccess": ["send"],
        },
        send_step(
            "send",
            '{"Body": "${steps.hello.text}"}',
            retryAttempts=3,
            retryStatusCodes="500-504",
        ),
    ],
}


def variant(change: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    change(body)
    return body


def set_step(index: int, **fields: Any) -> Any:
    return lambda b: b["steps"][index].update(fields)


def set_prop(index: int, **props: Any) -> Any:
    return lambda b: b["steps"][index]["properties"].update(props)


FAULTS = [
    (set_step(0, onSuccess=["nowhere"]), "onSuccess of step 'hello' names no step: 'nowhere'"),
    (set_step(0, onFailure=["gone"]), "onFailure of step 'hello' names no step: 'gone'"),
    (lambda b: b["triggers"][0].update(onSuccess=["x"]), "onSuccess of the trigger names no step"),
    (set_step(1, name="hello"), "Duplicate step name 'hello'"),
    (lambda b: b["configuration"].append({"key": "greeting"}), "Duplicate configuration key"),
    (
        lambda b: b["triggers"].__setitem__(
            0, {"type": "scheduled", "properties": {"cron": "0 0 99 * * ? *"}}
        ),
        "Invalid cron '0 0 99 * * ? *'",
    ),
    (
        lambda b: b["triggers"].__setitem__(
            0, {"type": "scheduled", "properties": {"cron": "0/30 * * 1/1 * ? *"}}
        ),
        "more often than every 15 minutes",
    ),
    (set_prop(1, elementInstanceId="${config.nothing}"), "no configuration key 'nothing'"),
    (set_prop(1, body="${steps.ghost.value}"), "no step 'ghost'"),
    (set_prop(1, body="${whatever}"), "names nothing"),
    (set_prop(0, body="return 1;"), "must call done()"),
    (set_prop(0, scriptEngine="v1"), "v1 scripts are not offered"),
    (set_prop(1, retryAttempts="many"), "Invalid retryAttempts 'many'"),
    (set_prop(1, retryStatusCodes="5xx"), "Invalid retryStatusCodes '5xx'"),
    (set_prop(1, acceptableStatusCodes="200-100"), "Invalid acceptableStatusCodes"),
    (set_step(1, type="notification"), "call notify.email"),
    (set_step(1, type="elementRequestStream"), "use an elementRequest step"),
    (set_step(1, type="amqpRequest"), "use an httpRequest step"),
    (set_step(1, type="teleport"), "unknown type 'teleport'"),
    (lambda b: b.update(engine="v1"), "Hubgate runs formulas on v3"),
    (lambda b: b.update(singleThreaded=True), "singleThreaded"),
    (lambda b: b["configuration"][0].update(type="secret"), "use elementInstance or value"),
    (
        lambda b: b["steps"].append(
            {"name": "again", "type": "retryFormulaExecution", "properties": {"retryAttempts": 8}}
        ),
        "Invalid retryAttempts '8' in step 'again'",
    ),
    (lambda b: b.pop("name"), "A formula needs a name"),
]


@pytest.mark.parametrize(("change", "message"), FAULTS)
async def test_a_faulty_template_is_a_400_naming_the_fault(
    fapi: Api, change: Any, message: str
) -> None:
    response = await fapi.post("formulas", json=variant(change))
    assert response.status == 400, response.text
    assert message in response.body["message"]
    assert response.headers["Elements-Request-Id"] == response.body["requestId"]
    assert (await fapi.get("formulas")).body == []


async def test_a_template_is_stored_read_exported_and_edited(fapi: Api) -> None:
    formula = await make_formula(fapi, BASE)
    assert formula["name"] == "greeter"  # markup removed
    assert formula["engine"] == "v3"
    assert formula["version"] == 1
    send = formula["steps"][1]
    # Property values are stored as strings (D39).
    assert send["properties"]["retryAttempts"] == "3"
    assert (await fapi.get(f"formulas/{formula['id']}")).body == formula
    exported = (await fapi.get(f"formulas/{formula['id']}/export")).body
    assert "id" not in exported["steps"][0]
    again = await make_formula(fapi, exported)
    assert again["steps"][1]["properties"] == send["properties"]

    patched = await fapi.patch(f"formulas/{formula['id']}", json={"description": "says hi"})
    assert patched.status == 200, patched.text
    assert patched.body["description"] == "says hi"
    assert patched.body["version"] == 2

    added = await fapi.post(
        f"formulas/{formula['id']}/steps",
        json={"name": "log", "type": "script", "properties": {"body": "done({});"}},
    )
    assert added.status == 200, added.text
    step_id = added.body["id"]
    assert (await fapi.get(f"formulas/{formula['id']}/steps/{step_id}")).body["name"] == "log"
    linked = await fapi.put(
        f"formulas/{formula['id']}/steps/{send['id']}",
        json={**send, "onSuccess": ["log"]},
    )
    assert linked.status == 200, linked.text
    assert linked.body["onSuccess"] == ["log"]
    # Deleting a step unlinks it from the steps that named it.
    assert (await fapi.delete(f"formulas/{formula['id']}/steps/{step_id}")).status == 200
    current = (await fapi.get(f"formulas/{formula['id']}")).body
    assert [s["name"] for s in current["steps"]] == ["hello", "send"]
    assert current["steps"][1]["onSuccess"] == []
    assert (await fapi.get(f"formulas/{formula['id']}/steps/{step_id}")).status == 404

    trigger_id = current["triggers"][0]["id"]
    assert (await fapi.get(f"formulas/{formula['id']}/triggers/{trigger_id}")).status == 200
    assert (await fapi.delete(f"formulas/{formula['id']}/triggers/{trigger_id}")).status == 200
    assert (await fapi.get(f"formulas/{formula['id']}")).body["triggers"] == []
    replaced = await fapi.post(
        f"formulas/{formula['id']}/triggers",
        json={"type": "manual", "properties": {}, "onSuccess": ["hello"]},
    )
    assert replaced.status == 200, replaced.text
    assert replaced.body["type"] == "manual"
    bad = await fapi.post(
        f"formulas/{formula['id']}/triggers",
        json={"type": "manual", "properties": {}, "onSuccess": ["missing"]},
    )
    assert bad.status == 400
    assert "names no step: 'missing'" in bad.body["message"]


async def test_renaming_a_configuration_key_renames_its_uses(
    fapi: Api, twilio: dict[str, Any]
) -> None:
    formula = await make_formula(fapi, BASE)
    instance = await make_instance(fapi, formula["id"], {"twilio": twilio["id"], "greeting": "hi"})
    configuration = formula["configuration"]
    configuration[1] = {**configuration[1], "key": "salutation"}
    response = await fapi.patch(f"formulas/{formula['id']}", json={"configuration": configuration})
    assert response.status == 200, response.text
    assert response.body["steps"][0]["properties"]["body"] == "done({text: config.salutation});"
    configuration[0] = {**configuration[0], "key": "sms"}
    response = await fapi.patch(f"formulas/{formula['id']}", json={"configuration": configuration})
    assert response.status == 200, response.text
    assert response.body["steps"][1]["properties"]["elementInstanceId"] == "${config.sms}"
    kept = (await fapi.get(f"formulas/{formula['id']}/instances/{instance['id']}")).body
    assert kept["configuration"] == {"sms": str(twilio["id"]), "salutation": "hi"}


async def test_formula_instances_are_checked_listed_and_switched(
    fapi: Api, twilio: dict[str, Any]
) -> None:
    formula = await make_formula(fapi, BASE)
    path = f"formulas/{formula['id']}/instances"
    missing = await fapi.post(path, json={"name": "x", "configuration": {"greeting": "hi"}})
    assert missing.status == 400
    assert "Configuration 'twilio' is required" in missing.body["message"]
    foreign = await fapi.post(
        path, json={"name": "x", "configuration": {"twilio": "999999", "greeting": "hi"}}
    )
    assert foreign.status == 400
    assert "no instance '999999'" in foreign.body["message"]
    unknown = await fapi.post(
        path,
        json={"name": "x", "configuration": {"twilio": twilio["id"], "greeting": 1, "x": 2}},
    )
    assert unknown.status == 400
    assert "'x' is not declared" in unknown.body["message"]
    made = await make_instance(
        fapi,
        formula["id"],
        {"twilio": twilio["id"], "greeting": 5},
        name="Morning greeter",
        settings={"notification.email": "ops@example.test"},
    )
    assert made["configuration"] == {"twilio": str(twilio["id"]), "greeting": "5"}
    assert made["formula"] == {"id": formula["id"], "name": "greeter", "active": True}
    other = await make_instance(fapi, formula["id"], {"twilio": twilio["id"], "greeting": "x"})

    by_element = await fapi.get("formulas/instances", params={"elementInstanceId": twilio["id"]})
    assert [i["id"] for i in by_element.body] == [made["id"], other["id"]]
    by_text = await fapi.get("formulas/instances", params={"searchText": "morning"})
    assert [i["id"] for i in by_text.body] == [made["id"]]

    off = await fapi.delete(f"{path}/{made['id']}/active")
    assert off.status == 200
    assert off.body["active"] is False
    refused = await fapi.post(f"formulas/instances/{made['id']}/executions", json={})
    assert refused.status == 400
    assert "not active" in refused.body["message"]
    on = await fapi.put(f"{path}/{made['id']}/active")
    assert on.body["active"] is True
    renamed = await fapi.patch(f"{path}/{made['id']}", json={"name": "Evening greeter"})
    assert renamed.status == 200, renamed.text
    assert renamed.body["name"] == "Evening greeter"
    assert renamed.body["configuration"]["greeting"] == "5"

    busy = await fapi.delete(f"formulas/{formula['id']}")
    assert busy.status == 409
    assert (await fapi.delete(f"{path}/{made['id']}")).status == 200
    assert (await fapi.get(f"{path}/{made['id']}")).status == 404
    assert (await fapi.delete(f"{path}/{other['id']}")).status == 200
    assert (await fapi.delete(f"formulas/{formula['id']}")).status == 200
    assert (await fapi.get(f"formulas/{formula['id']}")).status == 404


async def test_another_tenant_sees_nothing(
    fapi: Api, twilio: dict[str, Any], formulas_settings: Any, formulas_url: str
) -> None:
    from tests.conftest import new_tenant

    formula = await make_formula(fapi, BASE)
    instance = await make_instance(fapi, formula["id"], {"twilio": twilio["id"], "greeting": "x"})
    stranger = await new_tenant(formulas_settings, formulas_url, "formulas-b")
    other = fapi.with_auth(stranger.authorization)
    assert (await other.get(f"formulas/{formula['id']}")).status == 404
    assert (await other.get(f"formulas/{formula['id']}/instances/{instance['id']}")).status == 404
    assert (await other.get("formulas/instances")).body == []
    run = await other.post(f"formulas/instances/{instance['id']}/executions", json={})
    assert run.status == 404


async def test_common_resource_usages_count_the_formula_steps_that_call_it(fapi: Api) -> None:
    definition = {"fields": [{"path": "contactId", "type": "string"}]}
    made = await fapi.post("organizations/objects/contacts/definitions", json=definition)
    assert made.status == 200, made.text
    assert (await fapi.get("common-resources/contacts/usages")).body == {"formulaUsages": []}

    def call(name: str, api: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "elementRequest",
            "properties": {"elementInstanceId": "${config.twilio}", "method": "GET", "api": api},
        }

    formula = await make_formula(
        fapi,
        {
            "name": "uses contacts",
            "configuration": [{"key": "twilio", "type": "elementInstance"}],
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["list"]}],
            "steps": [
                call("list", "/hubs/messaging/contacts"),
                call("one", "/hubs/messaging/contacts/{id}"),
                call("other", "/hubs/messaging/messages"),
            ],
        },
    )
    await make_formula(fapi, {**BASE, "name": "does not"})
    usages = (await fapi.get("common-resources/contacts/usages")).body
    assert usages == {
        "formulaUsages": [
            {"formulaName": "uses contacts", "formulaId": formula["id"], "usageCount": 2}
        ]
    }


async def test_ids_beyond_the_database_range_are_a_404_on_every_instance_route(
    fapi: Api, twilio: dict[str, Any]
) -> None:
    # The OpenAPI fuzzer found these answering 500: a formula id past BIGINT reached the query.
    formula = await make_formula(fapi, BASE)
    instance = await make_instance(fapi, formula["id"], {"twilio": twilio["id"], "greeting": "x"})
    huge = 2**80
    under_huge = f"formulas/{huge}/instances/{instance['id']}"
    for method, path in [
        ("GET", under_huge),
        ("DELETE", under_huge),
        ("DELETE", f"{under_huge}/active"),
        ("GET", f"{under_huge}/executions"),
        ("POST", f"{under_huge}/executions"),
        ("GET", f"formulas/{formula['id']}/instances/{huge}"),
    ]:
        answer = await fapi.call(method, path, json={} if method == "POST" else None)
        assert answer.status == 404, (method, path, answer.body)
        assert answer.body["requestId"]
    assert (await fapi.get(f"formulas/{formula['id']}/instances/{instance['id']}")).status == 200
