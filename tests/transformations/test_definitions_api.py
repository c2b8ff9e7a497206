"""Object definitions at organization, account and instance level (D35): create, read,
replace, delete, the bulk routes, rename by PATCH, and the tenant boundary."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.tenants.models import User
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, TenantCredentials
from tests.transformations.api import CHURROS, field, instance, ok


async def levels(api: Api, sim: TwilioSimulator) -> list[tuple[str, str]]:
    created = await instance(api, sim)
    return [
        ("organizations", "organization"),
        ("accounts", "account"),
        (f"instances/{created['id']}", "instance"),
    ]


async def test_definition_lifecycle_at_every_level(api: Api, sim: TwilioSimulator) -> None:
    for prefix, level in await levels(api, sim):
        url = f"{prefix}/objects/churros/definitions"
        assert (await api.get(url)).status == 404
        created = await ok(api, "POST", url, CHURROS)
        assert created == {**CHURROS, "level": level}
        assert (await api.post(url, json=CHURROS)).status == 409
        assert await ok(api, "GET", url) == created
        replaced = await ok(api, "PUT", url, {"fields": [{"path": "id", "type": "string"}]})
        assert replaced == {"fields": [{"path": "id", "type": "string"}], "level": level}
        assert await ok(api, "DELETE", url) == {}
        assert (await api.get(url)).status == 404
        assert (await api.put(url, json=CHURROS)).status == 404


async def test_account_by_id_is_the_callers_own(
    api: Api, tenant: TenantCredentials, db_session: AsyncSession
) -> None:
    await ok(api, "POST", "accounts/objects/churros/definitions", CHURROS)
    user = await db_session.get(User, tenant.user_id)
    assert user is not None
    mine = await ok(api, "GET", f"accounts/{user.account_id}/objects/churros/definitions")
    assert mine == {**CHURROS, "level": "account"}
    response = await api.get("accounts/999999999/objects/churros/definitions")
    assert response.status == 404
    assert response.body["message"] == "No account found with id 999999999"


async def test_bad_definitions_are_400_naming_the_field(api: Api) -> None:
    url = "organizations/objects/churros/definitions"
    bad = await api.post(url, json={"fields": [{"path": "a[?(@.x==1)]"}]})
    assert bad.status == 400
    assert "fields[0].path" in bad.body["message"]
    twice = await api.post(url, json={"fields": [{"path": "a"}, {"path": "a"}]})
    assert twice.status == 400
    assert "defined twice" in twice.body["message"]
    missing = await api.post(url, json={})
    assert missing.status == 400
    assert "fields" in missing.body["message"]
    name = await api.post("organizations/objects/bad name/definitions", json=CHURROS)
    assert name.status == 400
    assert "path.object_name" in name.body["message"]
    many = await api.post("organizations/objects/definitions", json={"bad name": CHURROS})
    assert many.status == 400
    assert "Invalid object name 'bad name'" in many.body["message"]


async def test_nul_characters_are_refused_not_stored(api: Api) -> None:
    # PostgreSQL cannot hold NUL in JSON or text: a 400 naming where, never a 500.
    url = "organizations/objects/churros/definitions"
    response = await api.post(url, json={"fields": [{"path": "a", "type": "x\u0000"}]})
    assert response.status == 400
    assert response.body["message"] == "fields[0].type contains a NUL character"
    assert (await api.get("organizations/objects/a%00b/definitions")).status == 400
    transformation = {"fields": [{"path": "a", "vendorPath": "b", "note": "\u0000"}]}
    response = await api.post(
        "organizations/elements/twiliov2/transformations/x", json=transformation
    )
    assert response.status == 400
    assert response.body["message"] == "transformation.fields[0].note contains a NUL character"
    resource = {
        "name": "q",
        "fields": [{"path": "a"}],
        "changedFields": [{"path": "\u0000", "oldPath": "a"}],
    }
    response = await api.put("common-resources", json=resource)
    assert response.status == 400
    assert "NUL" in response.body["message"]
    assert await ok(api, "GET", "organizations/objects/definitions") == {}


async def test_bulk_create_list_and_delete(api: Api) -> None:
    many = {"churros": CHURROS, "tacos": {"fields": [{"path": "id", "type": "number"}]}}
    created = await ok(api, "POST", "organizations/objects/definitions", many)
    assert created == {n: {**b, "level": "organization"} for n, b in many.items()}
    assert await ok(api, "GET", "organizations/objects/definitions") == created
    assert await ok(api, "DELETE", "organizations/objects/definitions") == {}
    assert await ok(api, "GET", "organizations/objects/definitions") == {}


async def test_deleting_a_definition_in_use_is_409(api: Api) -> None:
    await ok(api, "POST", "organizations/objects/definitions", {"churros": CHURROS})
    transformation = {"vendorName": "messages", "fields": [field("churrosId", "sid")]}
    await ok(api, "POST", "organizations/elements/twiliov2/transformations/churros", transformation)
    for url in ("organizations/objects/definitions", "organizations/objects/churros/definitions"):
        response = await api.delete(url)
        assert response.status == 409, url
        assert response.body["message"] == (
            "The object definition 'churros' is used by a transformation"
        )
    assert "churros" in await ok(api, "GET", "organizations/objects/definitions")
    await ok(api, "DELETE", "organizations/elements/twiliov2/transformations/churros")
    assert await ok(api, "DELETE", "organizations/objects/definitions") == {}


async def test_rename_by_patch_moves_the_transformations(api: Api, sim: TwilioSimulator) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    transformation = {"vendorName": "messages", "fields": [field("churrosId", "sid")]}
    await ok(api, "POST", "organizations/elements/twiliov2/transformations/churros", transformation)
    await ok(api, "POST", f"instances/{created['id']}/transformations/churros", transformation)
    renamed = await ok(api, "PATCH", "organizations/objects/churros", {"objectName": "buns"})
    assert renamed == {**CHURROS, "level": "organization"}
    assert (await api.get("organizations/objects/churros/definitions")).status == 404
    assert (await api.get("organizations/elements/twiliov2/transformations/churros")).status == 404
    moved = await ok(api, "GET", "organizations/elements/twiliov2/transformations/buns")
    assert moved["objectName"] == "buns"
    on_instance = await ok(api, "GET", f"instances/{created['id']}/transformations/buns")
    assert on_instance["fields"][0]["path"] == "churrosId"
    await ok(api, "POST", "organizations/objects/tacos/definitions", CHURROS)
    taken = await api.patch("organizations/objects/buns", json={"objectName": "tacos"})
    assert taken.status == 409
    assert (await api.patch("organizations/objects/nope", json={"objectName": "x"})).status == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_another_tenants_definitions_are_404(
    api: Api, sim: TwilioSimulator, other_tenant: TenantCredentials, method: str
) -> None:
    created = await instance(api, sim)
    await ok(api, "POST", "organizations/objects/churros/definitions", CHURROS)
    await ok(api, "POST", f"instances/{created['id']}/objects/churros/definitions", CHURROS)
    other = api.with_auth(other_tenant.authorization)
    for prefix in ("organizations", f"instances/{created['id']}"):
        url = f"{prefix}/objects/churros" + ("" if method == "PATCH" else "/definitions")
        body = {"objectName": "x"} if method == "PATCH" else CHURROS
        response = await other.call(method, url, json=body)
        assert response.status == 404, (prefix, response.text)
    assert await ok(other, "GET", "organizations/objects/definitions") == {}
    # Still there for the owner.
    assert (await ok(api, "GET", "organizations/objects/churros/definitions"))["fields"]
