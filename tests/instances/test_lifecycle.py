"""Reading, changing, disabling and deleting instances; tenant boundaries (D4, D8, D15, D16)."""

from __future__ import annotations

import pytest

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, TenantCredentials, twilio_instance_body
from tests.instances.conftest import provision


def element_auth(token: str) -> str:
    return f"Element {token}"


async def test_list_filters_by_tags(api: Api, sim: TwilioSimulator) -> None:
    first = await provision(api, sim, tags=["red", "blue"])
    second = await provision(api, sim, tags=["red"])
    await provision(api, sim, tags=["green"])
    everything = await api.get("instances")
    assert len(everything.body) == 3
    red = await api.get("instances", params=[("tags[]", "red")])
    assert {i["id"] for i in red.body} == {first["id"], second["id"]}
    both = await api.get("instances", params=[("tags[]", "red"), ("tags[]", "blue")])
    assert [i["id"] for i in both.body] == [first["id"]]
    by_element = await api.get("elements/twiliov2/instances", params=[("tags[]", "green")])
    assert len(by_element.body) == 1
    assert all(i["configuration"]["password"] == "********" for i in everything.body)


async def test_another_organization_gets_404(
    api: Api, sim: TwilioSimulator, other_tenant: TenantCredentials
) -> None:
    created = await provision(api, sim)
    other = api.with_auth(other_tenant.authorization)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await other.call(method, f"instances/{created['id']}", json={"name": "x"})
        assert response.status == 404, method
        assert response.body["message"] == f"No instance found with id {created['id']}"
    assert (await other.get(f"instances/{created['id']}/configuration")).status == 404
    assert (await other.delete(f"instances/{created['id']}/enabled")).status == 404
    assert (await other.get("instances")).body == []
    # The owner still has it, untouched.
    assert (await api.get(f"instances/{created['id']}")).body["name"] == "my-twilio"
    # Another organization's user cannot use the token either; beside User and Organization
    # the list ignores it and shows that user's own (none) (D47).
    mixed = f"{other_tenant.authorization}, Element {created['token']}"
    assert (await other.with_auth(mixed).get("instances/configuration")).status == 401
    assert (await other.with_auth(mixed).get("instances")).body == []


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "User nope, Organization nope",
        "Bearer abc",
        "User a, User b",
        "User , Organization x",
    ],
)
async def test_missing_or_wrong_authorization_is_401(api: Api, authorization: str | None) -> None:
    response = await api.with_auth(authorization).get("instances")
    assert response.status == 401
    assert response.body["message"] == (
        "Invalid Organization or User secret, or invalid Element token provided."
    )
    assert len(response.body["requestId"]) == 24


async def test_swapped_organization_secret_is_401(
    api: Api, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    mixed = f"User {tenant.user_secret}, Organization {other_tenant.organization_secret}"
    assert (await api.with_auth(mixed).get("instances")).status == 401


async def test_token_scoped_variants(api: Api, sim: TwilioSimulator) -> None:
    created = await provision(api, sim)
    token_only = api.with_auth(element_auth(created["token"]))
    fetched = await token_only.get("instances")
    assert fetched.status == 200
    assert fetched.body["id"] == created["id"]
    # Order and case of the pairs do not matter; a colon after the name is tolerated.
    messy = api.with_auth(f"element: {created['token']}, {api.authorization}")
    assert (await messy.get("instances/configuration")).status == 200
    patched = await token_only.patch("instances", json={"tags": ["via-token"]})
    assert patched.body["tags"] == ["via-token"]
    entries = await token_only.get("instances/configuration")
    assert {e["key"] for e in entries.body} >= {"username", "password", "base.url"}


async def test_patch_changes_only_what_it_names(api: Api, sim: TwilioSimulator) -> None:
    created = await provision(api, sim, tags=["a", "b"])
    response = await api.patch(
        f"instances/{created['id']}",
        json={"tags": ["c"], "configuration": {"event.poller.refresh_interval": "30"}},
    )
    assert response.status == 200, response.text
    assert response.body["tags"] == ["c"]
    assert response.body["name"] == "my-twilio"
    assert response.body["configuration"]["event.poller.refresh_interval"] == "30"
    assert response.body["configuration"]["username"] == sim.account_sid
    assert response.body["token"] == created["token"]


async def test_patch_with_wrong_credentials_keeps_the_old_ones(
    api: Api, sim: TwilioSimulator
) -> None:
    created = await provision(api, sim)
    response = await api.patch(
        f"instances/{created['id']}", json={"configuration": {"password": "f" * 32}}
    )
    assert response.status == 400
    assert response.body["providerCode"] == 20003
    # The stored token is unchanged: a change that passes the check still works.
    again = await api.patch(
        f"instances/{created['id']}", json={"configuration": {"password": sim.auth_token}}
    )
    assert again.status == 200


async def test_put_replaces_name_tags_and_configuration(api: Api, sim: TwilioSimulator) -> None:
    created = await provision(api, sim, tags=["old"])
    replacement = twilio_instance_body(sim)
    del replacement["element"]  # read-only: a PUT naming it is a 400 (issue 9)
    replacement["name"] = "renamed"
    replacement["tags"] = ["new"]
    replacement["configuration"]["password"] = "********"
    response = await api.put(f"instances/{created['id']}", json=replacement)
    assert response.status == 200, response.text
    assert response.body["name"] == "renamed"
    assert response.body["tags"] == ["new"]
    missing = dict(replacement)
    missing["configuration"] = {"username": sim.account_sid}
    bad = await api.put(f"instances/{created['id']}", json=missing)
    assert bad.status == 400
    assert bad.body["missing"] == ["password"]


async def test_configuration_entries_can_be_read_and_patched(
    api: Api, sim: TwilioSimulator
) -> None:
    created = await provision(api, sim)
    entries = (await api.get(f"instances/{created['id']}/configuration")).body
    nulls = next(e for e in entries if e["key"] == "filter.response.nulls")
    assert nulls["propertyValue"] == "true"
    password = next(e for e in entries if e["key"] == "password")
    assert password["propertyValue"] == "********"
    path = f"instances/{created['id']}/configuration/{nulls['id']}"
    patched = await api.patch(path, json={**nulls, "propertyValue": "false"})
    assert patched.status == 200, patched.text
    assert patched.body["propertyValue"] == "false"
    assert (await api.get(path)).body["propertyValue"] == "false"
    instance = (await api.get(f"instances/{created['id']}")).body
    assert instance["configuration"]["filter.response.nulls"] == "false"
    assert (await api.get(f"instances/{created['id']}/configuration/1")).status == 404


async def test_disable_gives_403_and_enable_restores(api: Api, sim: TwilioSimulator) -> None:
    created = await provision(api, sim)
    token_only = api.with_auth(element_auth(created["token"]))
    disabled = await api.delete(f"instances/{created['id']}/enabled")
    assert disabled.status == 200
    assert disabled.body["disabled"] is True
    refused = await token_only.get("instances")
    assert refused.status == 403
    assert "disabled" in refused.body["message"]
    enabled = await token_only.put("instances/enabled")
    assert enabled.status == 200
    assert enabled.body["disabled"] is False
    assert (await token_only.get("instances")).status == 200


async def test_delete_makes_the_token_401(api: Api, sim: TwilioSimulator) -> None:
    created = await provision(api, sim)
    token_only = api.with_auth(element_auth(created["token"]))
    assert (await token_only.get("instances")).status == 200
    deleted = await api.delete(f"instances/{created['id']}")
    assert deleted.status == 200
    assert (await token_only.get("instances")).status == 401
    assert (await api.get(f"instances/{created['id']}")).status == 404


async def test_token_scoped_delete(api: Api, sim: TwilioSimulator) -> None:
    created = await provision(api, sim)
    token_only = api.with_auth(element_auth(created["token"]))
    assert (await token_only.delete("instances")).status == 200
    assert (await token_only.get("instances")).status == 401


@pytest.mark.parametrize(
    "path", ["instances/0", "instances/99999999999999999999999", "instances/-1", "instances/abc"]
)
async def test_bad_ids_are_404(api: Api, path: str) -> None:
    response = await api.get(path)
    assert response.status == 404
    assert "requestId" in response.body
