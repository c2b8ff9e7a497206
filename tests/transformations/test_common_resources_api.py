"""Common resources (D35): the view over definitions of every level, the upsert with
``changedFields``, rename (the old name is a 404), delete, usages, the tenant boundary."""

from __future__ import annotations

from typing import Any

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, TenantCredentials
from tests.transformations.api import CHURROS, field, instance, ok

ORG = "organizations/elements/twiliov2/transformations"


async def element_id(api: Api) -> int:
    found: int = (await ok(api, "GET", "elements/twiliov2"))["id"]
    return found


async def test_the_view_over_every_level(api: Api, sim: TwilioSimulator) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    extra = {"fields": [{"path": "churrosColour", "type": "string"}]}
    await ok(api, "POST", f"instances/{created['id']}/objects/churros/definitions", extra)
    await ok(api, "POST", f"{ORG}/churros", {"fields": [field("churrosId", "Id")]})
    await ok(api, "POST", f"instances/{created['id']}/transformations/churros", {"fields": []})
    expected = {
        "name": "churros",
        "fields": [
            {"path": "churrosId", "type": "number", "associatedLevel": "organization"},
            {"path": "churrosName", "type": "string", "associatedLevel": "organization"},
            {"path": "churrosMod", "type": "string", "associatedLevel": "organization"},
            {
                "path": "churrosColour",
                "type": "string",
                "associatedLevel": "instance",
                "associatedId": created["id"],
            },
        ],
        "elementInstanceIds": [created["id"]],
        "mappedElementIds": [await element_id(api)],
    }
    assert await ok(api, "GET", "common-resources") == [expected]
    assert await ok(api, "GET", "common-resources/churros") == expected
    assert await ok(api, "GET", "common-resources/churros/usages") == {"formulaUsages": []}
    assert (await api.get("common-resources/tacos")).status == 404
    assert (await api.get("common-resources/tacos/usages")).status == 404


async def test_put_creates_and_changes_a_resource(api: Api, sim: TwilioSimulator) -> None:
    created = await instance(api, sim)
    body: dict[str, Any] = {
        "name": "myMessages",
        "fields": [
            {"path": "id", "type": "string", "associatedLevel": "organization"},
            {"path": "text", "type": "string", "associatedLevel": "account"},
            {
                "path": "note",
                "type": "string",
                "associatedLevel": "instance",
                "associatedId": created["id"],
            },
        ],
    }
    saved = await ok(api, "PUT", "common-resources", body)
    assert [(f["path"], f["associatedLevel"]) for f in saved["fields"]] == [
        ("id", "organization"),
        ("text", "account"),
        ("note", "instance"),
    ]
    assert (await ok(api, "GET", "accounts/objects/myMessages/definitions"))["fields"] == [
        {"path": "text", "type": "string"}
    ]
    body["fields"][0] = {"path": "sid", "type": "string"}  # organization by default
    changed = await ok(api, "PUT", "common-resources", body)
    assert changed["fields"][0] == {
        "path": "sid",
        "type": "string",
        "associatedLevel": "organization",
    }
    elsewhere = {**body, "fields": [{"path": "x", "associatedLevel": "instance"}]}
    assert (await api.put("common-resources", json=elsewhere)).status == 400
    unknown = {**body, "fields": [{"path": "x", "associatedLevel": "instance", "associatedId": 1}]}
    assert (await api.put("common-resources", json=unknown)).status == 404


async def test_changed_fields_rename_inside_transformations(api: Api, sim: TwilioSimulator) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    await ok(api, "POST", f"{ORG}/churros", {"fields": [field("churrosName", "Name")]})
    url = f"instances/{created['id']}/transformations/churros"
    await ok(api, "POST", url, {"fields": [field("churrosName.first", "First")]})
    body = {
        "name": "churros",
        "fields": [
            {"path": "churrosId", "type": "number"},
            {"path": "churrosTitle", "type": "string"},
            {"path": "churrosMod", "type": "string"},
        ],
        "changedFields": [
            {"path": "churrosTitle", "oldPath": "churrosName", "associatedLevel": "organization"}
        ],
    }
    await ok(api, "PUT", "common-resources", body)
    assert [f["path"] for f in (await ok(api, "GET", f"{ORG}/churros"))["fields"]] == [
        "churrosTitle"
    ]
    # Only the level the change names: the instance's field keeps its path.
    assert [f["path"] for f in (await ok(api, "GET", url))["fields"]] == ["churrosName.first"]
    everywhere = {**body, "changedFields": [{"path": "title", "oldPath": "churrosName"}]}
    await ok(api, "PUT", "common-resources", everywhere)
    assert [f["path"] for f in (await ok(api, "GET", url))["fields"]] == ["title.first"]
    execute = {"payload": {"First": "ann"}, "instanceId": created["id"]}
    assert await ok(api, "POST", "transformations/churros/execute", execute) == {
        "title": {"first": "ann"}
    }


async def test_rename_and_delete(api: Api, sim: TwilioSimulator) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    await ok(api, "POST", f"instances/{created['id']}/transformations/churros", {"fields": []})
    renamed = await ok(api, "PATCH", "common-resources/churros", {"name": "buns"})
    assert renamed["name"] == "buns"
    assert renamed["elementInstanceIds"] == [created["id"]]
    assert (await api.get("common-resources/churros")).status == 404
    assert (await api.get(f"instances/{created['id']}/transformations/buns")).status == 200
    await ok(api, "POST", "organizations/objects/tacos/definitions", CHURROS)
    assert (await api.patch("common-resources/buns", json={"name": "tacos"})).status == 409
    assert (await api.patch("common-resources/nope", json={"name": "x"})).status == 404
    assert await ok(api, "DELETE", "common-resources/buns") == {}
    assert (await api.get("common-resources/buns")).status == 404
    assert (await api.get(f"instances/{created['id']}/transformations/buns")).status == 404
    assert (await api.delete("common-resources/buns")).status == 404
    assert [r["name"] for r in await ok(api, "GET", "common-resources")] == ["tacos"]


async def test_another_tenants_resources_are_404(api: Api, other_tenant: TenantCredentials) -> None:
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    other = api.with_auth(other_tenant.authorization)
    assert await ok(other, "GET", "common-resources") == []
    for method, path, body in (
        ("GET", "common-resources/churros", None),
        ("GET", "common-resources/churros/usages", None),
        ("PATCH", "common-resources/churros", {"name": "mine"}),
        ("DELETE", "common-resources/churros", None),
    ):
        response = await other.call(method, path, json=body)
        assert response.status == 404, (method, path)
    # A PUT of the same name makes the other tenant's own resource, beside ours.
    await ok(other, "PUT", "common-resources", {"name": "churros", "fields": [{"path": "x"}]})
    assert len((await ok(api, "GET", "common-resources/churros"))["fields"]) == 3
    assert len((await ok(other, "GET", "common-resources/churros"))["fields"]) == 1
