"""Instance behaviours Open Connectors clients rely on (D45-D48), over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from hubgate.bootstrap import create_tenant
from hubgate.elements.registry import Element, ElementRegistry
from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, TenantCredentials, twilio_instance_body
from tests.instances.conftest import provision


async def test_element_scoped_routes_act_as_the_instance_routes(
    api: Api, sim: TwilioSimulator, other_tenant: TenantCredentials
) -> None:
    created = await provision(api, sim)
    path = f"elements/twiliov2/instances/{created['id']}"
    for key in ("twiliov2", "503"):
        fetched = await api.get(f"elements/{key}/instances/{created['id']}")
        assert fetched.status == 200, fetched.text
        assert fetched.body["id"] == created["id"]
    patched = await api.patch(path, json={"tags": ["patched"]})
    assert patched.status == 200, patched.text
    assert (await api.get(f"instances/{created['id']}")).body["tags"] == ["patched"]
    # PUT takes no element (issue 9, item 10): name, tags and the whole configuration.
    configuration = twilio_instance_body(sim)["configuration"]
    whole = {"name": "renamed", "tags": ["put"], "configuration": configuration}
    replaced = await api.put(path, json=whole)
    assert replaced.status == 200, replaced.text
    assert replaced.body["name"] == "renamed"
    assert replaced.body["tags"] == ["put"]
    # Another organization, an unknown element, or no credentials: the usual refusals.
    other = api.with_auth(other_tenant.authorization)
    assert (await other.get(path)).status == 404
    assert (await api.get(f"elements/nope/instances/{created['id']}")).status == 404
    assert (await api.with_auth(None).get(path)).status == 401
    deleted = await api.delete(path)
    assert deleted.status == 200, deleted.text
    assert (await api.get(f"instances/{created['id']}")).status == 404


async def test_element_scoped_routes_refuse_an_instance_of_another_element(
    api: Api, sim: TwilioSimulator, hubgate: RunningHubgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await provision(api, sim)
    twilio = hubgate.runtime.registry.get("twiliov2")
    # A catalog with a second element, so that the instance is of another element than the
    # path names; the running app reads the catalog from its runtime on every call.
    clone = Element(twilio.manifest.model_copy(update={"key": "twiliocopy", "id": 9503}))
    monkeypatch.setattr(hubgate.runtime, "registry", ElementRegistry([twilio, clone]))
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await api.call(
            method, f"elements/twiliocopy/instances/{created['id']}", json={"name": "x"}
        )
        assert response.status == 404, (method, response.text)
        assert response.body["message"] == f"No instance found with id {created['id']}"
        assert response.headers["Elements-Request-Id"]
    assert (await api.get(f"instances/{created['id']}")).body["name"] == "my-twilio"


async def test_user_object_carries_names(
    hubgate: RunningHubgate,
    http: aiohttp.ClientSession,
    settings: Settings,
    pg_url: str,
    sim: TwilioSimulator,
) -> None:
    created = await create_tenant(
        settings,
        pg_url,
        name="named",
        email="ada@example.test",
        first_name="Ada",
        last_name="Lovelace",
    )
    assert created.as_json()["user"]["firstName"] == "Ada"
    api = Api(
        http,
        hubgate.url,
        f"User {created.user_secret}, Organization {created.organization_secret}",
    )
    instance = await provision(api, sim)
    assert instance["user"] == {
        "id": created.user_id,
        "emailAddress": "ada@example.test",
        "firstName": "Ada",
        "lastName": "Lovelace",
    }
    assert (await api.get(f"instances/{instance['id']}")).body["user"]["lastName"] == "Lovelace"


def test_orgs_create_takes_names(tmp_path: Path, pg_url: str, keyring_json: str) -> None:
    env = {
        "HUBGATE_DATA_DIR": str(tmp_path),
        "HUBGATE_DATABASE_URL": pg_url,
        "HUBGATE_KEYRING": keyring_json,
        "PATH": "/usr/bin:/bin",
    }
    command = [
        sys.executable,
        "-m",
        "hubgate",
        "orgs",
        "create",
        "--name",
        "Names",
        "--email",
        "grace@example.test",
        "--first-name",
        "Grace",
        "--last-name",
        "Hopper",
        "--json",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    user = json.loads(result.stdout)["user"]
    assert (user["email"], user["firstName"], user["lastName"]) == (
        "grace@example.test",
        "Grace",
        "Hopper",
    )
    assert user["secret"]


async def test_list_with_user_and_element_token_lists_everything(
    api: Api, sim: TwilioSimulator
) -> None:
    first = await provision(api, sim, name="first")
    second = await provision(api, sim, name="second")
    both = api.with_auth(f"{api.authorization}, Element {first['token']}")
    listed = await both.get("instances")
    assert listed.status == 200, listed.text
    assert [i["id"] for i in listed.body] == [first["id"], second["id"]]
    # The Element token alone still names its one instance.
    alone = await api.with_auth(f"Element {second['token']}").get("instances")
    assert alone.body["id"] == second["id"]


async def test_search_text_combines_with_tags(api: Api, sim: TwilioSimulator) -> None:
    prod = await provision(api, sim, name="Twilio Production", tags=["live"])
    staging = await provision(api, sim, name="twilio staging", tags=["test"])
    await provision(api, sim, name="Other", tags=["live"])
    found = await api.get("instances", params={"searchText": "TWILIO"})
    assert [i["id"] for i in found.body] == [prod["id"], staging["id"]]
    narrowed = await api.get("instances", params=[("searchText", "twilio"), ("tags[]", "live")])
    assert [i["id"] for i in narrowed.body] == [prod["id"]]
    # % and _ are plain characters, not patterns.
    assert (await api.get("instances", params={"searchText": "%"})).status == 404
    for params in ({"searchText": "absent"}, [("tags[]", "absent")]):
        missing = await api.get("instances", params=params)
        assert missing.status == 404, params
        assert missing.body["message"] == "No instances found matching the search"
        assert missing.headers["Elements-Request-Id"]
    by_element = await api.get("elements/twiliov2/instances", params={"searchText": "stag"})
    assert [i["id"] for i in by_element.body] == [staging["id"]]


async def test_instance_without_tags_is_tagged_with_its_name(
    api: Api, sim: TwilioSimulator
) -> None:
    body = twilio_instance_body(sim)
    del body["tags"]
    created = await api.post("instances", json=body)
    assert created.status == 200, created.text
    assert created.body["tags"] == ["my-twilio"]
    empty = await api.post("instances", json=dict(body, tags=[], name="empty tags"))
    assert empty.body["tags"] == ["empty tags"]
    unnamed = await api.post("instances", json={k: v for k, v in body.items() if k != "name"})
    assert unnamed.body["tags"] == [unnamed.body["name"]]
    tagged = await api.post("instances", json=dict(body, tags=["given"]))
    assert tagged.body["tags"] == ["given"]
