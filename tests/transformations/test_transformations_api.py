"""Transformations at organization, account and instance level (D35, D36): the routes,
inheritance across the three levels, the upsert, try-it-out in both directions, scripts,
bad bodies and the tenant boundary."""

from __future__ import annotations

from typing import Any

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, TenantCredentials
from tests.transformations.api import CHURROS, field, instance, ok

ORG = "organizations/elements/twiliov2/transformations"
ACCOUNT = "accounts/elements/twiliov2/transformations"
INHERIT = [{"type": "inherit"}]


def account_body() -> dict[str, Any]:
    return {"fields": [field("churrosName", "Name")], "configuration": INHERIT}


async def three_levels(api: Api, sim: TwilioSimulator) -> dict[str, Any]:
    """churrosId at organization, churrosName at account, churrosMod at instance (A.5)."""
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    await ok(
        api,
        "POST",
        f"{ORG}/churros",
        {"vendorName": "Account", "fields": [field("churrosId", "Id")]},
    )
    await ok(api, "POST", f"{ACCOUNT}/churros", account_body())
    mine = {"fields": [field("churrosMod", "LastModifiedDate")], "configuration": INHERIT}
    await ok(api, "POST", f"instances/{created['id']}/transformations/churros", mine)
    return created


async def test_the_instance_level_lists_the_fields_of_all_three_levels(
    api: Api, sim: TwilioSimulator
) -> None:
    created = await three_levels(api, sim)
    merged = await ok(api, "GET", f"instances/{created['id']}/transformations/churros")
    assert [(f["path"], f["vendorPath"], f["level"]) for f in merged["fields"]] == [
        ("churrosId", "Id", "organization"),
        ("churrosName", "Name", "account"),
        ("churrosMod", "LastModifiedDate", "instance"),
    ]
    assert merged["level"] == "instance"
    assert merged["vendorName"] == "Account"
    assert merged["objectName"] == "churros"
    assert merged["elementInstanceId"] == created["id"]
    assert merged["configuration"] == INHERIT
    account = await ok(api, "GET", f"{ACCOUNT}/churros")
    assert [(f["path"], f["level"]) for f in account["fields"]] == [
        ("churrosId", "organization"),
        ("churrosName", "account"),
    ]
    org = await ok(api, "GET", f"{ORG}/churros")
    assert [(f["path"], f["level"]) for f in org["fields"]] == [("churrosId", "organization")]
    # Beside the element's shipped default for messages (D392).
    default = (await ok(api, "GET", "elements/twiliov2/transformations"))["messages"]
    listed = await ok(api, "GET", f"instances/{created['id']}/transformations")
    assert listed == {"churros": merged, "messages": default}
    assert await ok(api, "GET", ORG) == {"churros": org, "messages": default}
    # Through the Element token, the same view.
    token = api.with_auth(f"Element {created['token']}")
    assert await ok(token, "GET", "instances/transformations/churros") == merged
    assert await ok(token, "GET", "instances/transformations") == listed
    # The effective transformation maps all three (try-it-out).
    vendor = {"Id": 7, "Name": "sugar", "LastModifiedDate": "2024-01-01", "Other": 1}
    execute = {"payload": vendor, "instanceId": created["id"]}
    assert await ok(api, "POST", "transformations/churros/execute", execute) == {
        "churrosId": 7,
        "churrosName": "sugar",
        "churrosMod": "2024-01-01",
        "Other": 1,
    }


async def test_a_lower_level_wins_on_a_path_and_without_inherit_stands_alone(
    api: Api, sim: TwilioSimulator
) -> None:
    created = await three_levels(api, sim)
    url = f"instances/{created['id']}/transformations/churros"
    override = {"fields": [field("churrosId", "Sid")], "configuration": INHERIT}
    merged = await ok(api, "PUT", url, override)
    assert [(f["path"], f["vendorPath"], f["level"]) for f in merged["fields"]] == [
        ("churrosId", "Sid", "instance"),
        ("churrosName", "Name", "account"),
    ]
    alone = await ok(
        api, "PUT", url, {"vendorName": "messages", "fields": [field("churrosId", "sid")]}
    )
    assert [(f["path"], f["level"]) for f in alone["fields"]] == [("churrosId", "instance")]
    assert alone["vendorName"] == "messages"
    await ok(api, "DELETE", url)
    # Without its own, the instance sees the account's (D36).
    assert (await ok(api, "GET", url))["level"] == "account"
    assert (await api.delete(url)).status == 404


async def test_create_replace_and_delete_at_organization_level(api: Api) -> None:
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    body = {"vendorName": "messages", "fields": [field("churrosId", "sid", type="number")]}
    created = await ok(api, "POST", f"{ORG}/churros", body)
    assert created["fields"] == [
        {"path": "churrosId", "vendorPath": "sid", "type": "number", "level": "organization"}
    ]
    assert created["isLegacy"] is False
    assert created["startDate"]
    assert (await api.post(f"{ORG}/churros", json=body)).status == 409
    replaced = await ok(api, "PUT", f"{ORG}/churros", {"vendorName": "calls", "fields": []})
    assert replaced["vendorName"] == "calls"
    assert replaced["fields"] == []
    assert await ok(api, "DELETE", f"{ORG}/churros") == {}
    assert (await api.get(f"{ORG}/churros")).status == 404
    assert (await api.put(f"{ORG}/churros", json=body)).status == 404
    # The element may be named by id as well.
    element_id = (await ok(api, "GET", "elements/twiliov2"))["id"]
    await ok(api, "POST", f"organizations/elements/{element_id}/transformations/churros", body)
    assert (await ok(api, "GET", f"{ORG}/churros"))["vendorName"] == "messages"
    assert (await api.get("organizations/elements/nope/transformations")).status == 404


async def test_a_transformation_needs_its_definition(api: Api) -> None:
    response = await api.post(f"{ORG}/tacos", json={"fields": []})
    assert response.status == 404
    assert response.body["message"] == (
        "No object definition found with name 'tacos'; create it first"
    )


async def test_a_bad_body_is_a_400_naming_the_part(api: Api) -> None:
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    bad_path = {"fields": [field("churrosId", "Products[?(@.id==")]}
    response = await api.post(f"{ORG}/churros", json=bad_path)
    assert response.status == 400
    assert "fields[0].vendorPath" in response.body["message"]
    option = {"fields": [field("churrosId", "sid", configuration=[{"type": "rename"}])]}
    response = await api.post(f"{ORG}/churros", json=option)
    assert response.status == 400
    assert "'rename'" in response.body["message"]
    assert "fields[0]" in response.body["message"]
    legacy = {"fields": [], "isLegacy": True, "script": {"body": "return obj;"}}
    assert (await api.post(f"{ORG}/churros", json=legacy)).status == 400
    assert (await api.get(f"{ORG}/churros")).status == 404


async def test_the_upsert_by_body(api: Api, sim: TwilioSimulator) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/definitions", {"churros": CHURROS})
    body = {
        "level": "instance",
        "objectName": "churros",
        "elementInstanceId": created["id"],
        "vendorName": "messages",
        "fields": [field("churrosId", "sid")],
    }
    first = await ok(api, "PUT", "transformations", body)
    assert first["level"] == "instance"
    assert first["elementInstanceId"] == created["id"]
    second = await ok(api, "PUT", "transformations", {**body, "vendorName": "calls"})
    assert second["vendorName"] == "calls"
    org = {"level": "organization", "objectName": "churros", "elementKey": "twiliov2", "fields": []}
    assert (await ok(api, "PUT", "transformations", org))["level"] == "organization"
    no_owner = await api.put("transformations", json={**body, "elementInstanceId": None})
    assert no_owner.status == 400
    assert (await api.put("transformations", json={**org, "elementKey": None})).status == 400


async def test_execute_in_both_directions(api: Api, sim: TwilioSimulator) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    body = {
        "vendorName": "Account",
        "fields": [
            field("churrosId", "Id"),
            field("churrosName", "Name"),
            field("churrosMod", "LastModifiedDate"),
        ],
        "configuration": [
            {"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}}
        ],
    }
    await ok(api, "POST", f"{ORG}/churros", body)
    element_id = (await ok(api, "GET", "elements/twiliov2"))["id"]
    vendor = {"Id": "1", "Name": "n", "LastModifiedDate": "d", "Junk": True}
    canonical = {"churrosId": "1", "churrosName": "n", "churrosMod": "d"}
    url = "transformations/churros/execute"
    assert await ok(api, "POST", url, {"payload": vendor, "elementId": element_id}) == canonical
    towards = {"payload": canonical, "instanceId": created["id"], "method": "POST"}
    assert await ok(api, "POST", url, towards) == {"Id": "1", "Name": "n", "LastModifiedDate": "d"}
    many = await ok(api, "POST", url, {"payload": [vendor, vendor], "elementId": "twiliov2"})
    assert many == [canonical, canonical]
    neither = await api.post(url, json={"payload": vendor})
    assert neither.status == 400
    assert "elementId or instanceId" in neither.body["message"]
    missing = await api.post(
        "transformations/tacos/execute", json={"payload": {}, "elementId": element_id}
    )
    assert missing.status == 404


async def test_a_script_adds_a_field_and_a_failing_one_is_named(
    api: Api, sim: TwilioSimulator
) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", f"instances/{created['id']}/objects/churros/definitions", CHURROS)
    url = f"instances/{created['id']}/transformations/churros"
    script = "transformedObject.foo = CE.b64('foobarbaz'); done(transformedObject);"
    body = {"vendorName": "contacts", "fields": [field("id", "Id")], "script": {"body": script}}
    saved = await ok(api, "POST", url, body)
    assert saved["script"] == {"body": script}
    execute = {"payload": {"Id": 3}, "instanceId": created["id"]}
    response = await api.post("transformations/churros/execute", json=execute)
    assert response.status == 200
    assert response.body == {"id": 3, "foo": "Zm9vYmFyYmF6"}
    assert "Elements-Error" not in response.headers
    await ok(api, "PUT", url, {**body, "script": {"body": "throw new TypeError('boom');"}})
    failed = await api.post("transformations/churros/execute", json=execute)
    assert failed.status == 200
    assert failed.body == {"id": 3}
    assert (
        failed.headers["Elements-Error"] == "transformation script failed: error: TypeError: boom"
    )


async def test_another_tenants_transformations_are_404(
    api: Api, sim: TwilioSimulator, other_tenant: TenantCredentials
) -> None:
    created = await three_levels(api, sim)
    other = api.with_auth(other_tenant.authorization)
    mine = f"instances/{created['id']}/transformations/churros"
    for method in ("GET", "PUT", "DELETE", "POST"):
        response = await other.call(method, mine, json={"fields": []})
        assert response.status == 404, (method, response.text)
        assert response.body["message"] == f"No instance found with id {created['id']}"
    assert (await other.get(f"{ORG}/churros")).status == 404
    assert (await other.get(f"{ACCOUNT}/churros")).status == 404
    # The other tenant sees the element's default only (D392), none of the owner's.
    assert list(await ok(other, "GET", ORG)) == ["messages"]
    execute = {"payload": {"Id": 1}, "instanceId": created["id"]}
    assert (await other.post("transformations/churros/execute", json=execute)).status == 404
    upsert = {"level": "instance", "objectName": "churros", "elementInstanceId": created["id"]}
    assert (await other.put("transformations", json=upsert)).status == 404
    # The owner's three levels are untouched.
    merged = await ok(api, "GET", mine)
    assert len(merged["fields"]) == 3
