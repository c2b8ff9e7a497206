"""The wider manifest (issue 10 item 2): auth, paging, bodies, errors and ids as data, run
through the hub pipeline against the loopback element's vendor over real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from hubgate.elements.manifest import Manifest
from hubgate.elements.registry import ElementRegistry, discover
from hubgate.hub.service import fetch_all
from hubgate.instances.models import Instance
from tests.conftest import Api, RunningHubgate
from tests.elements.loopback import SITE
from tests.elements.loopback import element as loopback
from tests.elements.loopback.vendor import LoopbackVendor

LOOPBACK_JSON: dict[str, Any] = loopback.manifest.model_dump(mode="json", by_alias=True)


@pytest.fixture
async def vendor() -> AsyncIterator[LoopbackVendor]:
    running = LoopbackVendor()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def registry(hubgate: RunningHubgate, monkeypatch: pytest.MonkeyPatch) -> ElementRegistry:
    """The running app's catalog with the packages installed in the loopback's site."""
    found = discover([SITE])
    monkeypatch.setattr(hubgate.runtime, "registry", found)
    return found


async def provision(api: Api, vendor: LoopbackVendor, key: str | None = None) -> Any:
    return await api.post(
        "instances",
        json={
            "element": {"key": "loopback"},
            "name": "notes",
            "configuration": {
                "loopback.api.key": vendor.api_key if key is None else key,
                "base.url": vendor.base_url,
            },
        },
    )


@pytest.fixture
async def hub(api: Api, vendor: LoopbackVendor, registry: ElementRegistry) -> AsyncIterator[Api]:
    created = await provision(api, vendor)
    assert created.status == 200, created.text
    yield api.with_auth(f"Element {created.body['token']}")
    # Gone while the catalog still knows the element: the shared app's later tests read every
    # instance with its element's manifest.
    assert (await api.delete(f"instances/{created.body['id']}")).status == 200


async def read_all(hub: Api, path: str, **params: str) -> list[list[str]]:
    """Every page of a hub list, following the next-page token: the ids of each page."""
    pages: list[list[str]] = []
    query = {"pageSize": "10", **params}
    while True:
        response = await hub.get(f"hubs/notebooks/{path}", params=query)
        assert response.status == 200, response.text
        assert response.headers["Elements-Returned-Count"] == str(len(response.body))
        pages.append([n["id"] for n in response.body])
        token = response.headers.get("Elements-Next-Page-Token")
        if token is None:
            return pages
        query = {"pageSize": "10", "nextPage": token, **params}


def test_auth_styles_are_data() -> None:
    config = {"user": "ada", "secret": "s3cret", "token": "tok"}
    styles = {
        "basic": ({"type": "basic", "username": "user", "password": "secret"}, "Authorization"),
        "bearer": ({"type": "bearer", "token": "token"}, "Authorization"),
        "header": ({"type": "header", "header": "X-Key", "value": "token"}, "X-Key"),
        "oauth2": ({"type": "oauth2", "token": "token"}, "Authorization"),
    }
    found = {}
    for name, (auth, header) in styles.items():
        manifest = Manifest.model_validate({**LOOPBACK_JSON, "auth": auth})
        found[name] = manifest.auth.headers(config)[header]
    assert found == {
        "basic": "Basic " + base64.b64encode(b"ada:s3cret").decode(),
        "bearer": "Bearer tok",
        "header": "tok",
        "oauth2": "Bearer tok",
    }
    with pytest.raises(ValidationError):
        Manifest.model_validate({**LOOPBACK_JSON, "auth": {"type": "digest", "token": "x"}})
    with pytest.raises(ValidationError, match="extra"):
        Manifest.model_validate(
            {**LOOPBACK_JSON, "auth": {"type": "bearer", "token": "t", "realm": "r"}}
        )


@pytest.mark.parametrize(
    ("pagination", "problem"),
    [
        ({"type": "cursor", "sizeParam": "limit", "defaultSize": 5}, "cursorParam"),
        (
            {"type": "cursor", "cursorParam": "c", "sizeParam": "limit", "defaultSize": 5},
            "cursorField or nextField",
        ),
        ({"type": "offset", "sizeParam": "limit", "defaultSize": 5}, "offsetParam"),
        ({"type": "page", "sizeParam": "limit", "defaultSize": 5}, "pageParam"),
        ({"type": "seek", "sizeParam": "limit", "defaultSize": 5}, "type"),
    ],
)
def test_a_paging_style_must_say_what_it_needs(pagination: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Manifest.model_validate({**LOOPBACK_JSON, "pagination": pagination})


def test_an_id_comes_from_one_place() -> None:
    data = json.loads(json.dumps(LOOPBACK_JSON))
    data["resources"][0]["operations"]["POST"]["idFrom"] = {"header": "X-Id", "path": "id"}
    with pytest.raises(ValidationError, match="exactly one"):
        Manifest.model_validate(data)


def test_hubs_are_data_and_an_unknown_one_must_be_declared() -> None:
    registry = discover([SITE])
    assert registry.hubs["notebooks"].name == "Notebooks"
    assert registry.hubs["messaging"].id == 1
    undeclared = Manifest.model_validate({**LOOPBACK_JSON, "hubDefinition": None})
    with pytest.raises(ValueError, match="hubDefinition"):
        ElementRegistry([type(loopback)(undeclared)])


async def test_the_hubs_catalog_lists_a_declared_hub(api: Api, registry: ElementRegistry) -> None:
    assert (await api.get("hubs/keys")).body == ["messaging", "collaboration", "notebooks"]
    hub = await api.get("hubs/notebooks")
    assert hub.status == 200, hub.text
    assert hub.body["name"] == "Notebooks"
    listed = await api.get("hubs/notebooks/elements")
    assert [e["key"] for e in listed.body] == ["loopback"]


async def test_a_200_that_says_failure_refuses_the_credentials(
    api: Api, vendor: LoopbackVendor, registry: ElementRegistry
) -> None:
    refused = await provision(api, vendor, key="wrong")
    assert refused.status == 400, refused.text
    assert refused.body["providerCode"] == "invalid_auth"
    assert refused.body["providerMessage"] == "bad key"
    assert vendor.requests[-1]["auth"] == "wrong"
    assert vendor.requests[-1]["authorization"] is None
    vendor.failures.append(429)
    limited = await provision(api, vendor)
    assert limited.status == 429, limited.text
    assert limited.body["providerCode"] == "ratelimited"


async def test_cursor_paging_reads_every_note_once(hub: Api, vendor: LoopbackVendor) -> None:
    made = [vendor.add_note(f"note {i}", "bob" if i % 2 else "ada") for i in range(25)]
    pages = await read_all(hub, "notes")
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == [n["id"] for n in made]
    cursors = [dict(r["query"]).get("cursor") for r in vendor.requests if r["path"] == "/v1/notes"]
    assert cursors == [None, made[9]["id"], made[19]["id"]]
    bobs = await read_all(hub, "notes", where="author = 'bob'")
    assert [i for p in bobs for i in p] == [n["id"] for n in made if n["author"] == "bob"]
    assert ("author", "bob") in vendor.requests[-1]["query"]


async def test_a_cursor_list_answers_page_n_by_reading_up_to_it(
    hub: Api, vendor: LoopbackVendor
) -> None:
    made = [vendor.add_note(f"note {i}") for i in range(12)]
    second = await hub.get("hubs/notebooks/notes", params={"page": "2", "pageSize": "5"})
    assert second.status == 200, second.text
    assert [n["id"] for n in second.body] == [n["id"] for n in made[5:10]]
    assert "Elements-Next-Page-Token" in second.headers


async def test_offset_paging_stops_at_the_total(hub: Api, vendor: LoopbackVendor) -> None:
    made = [vendor.add_note(f"note {i}") for i in range(25)]
    pages = await read_all(hub, "archive")
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == [n["id"] for n in made]
    offsets = [dict(r["query"])["offset"] for r in vendor.requests if r["path"] == "/v2/archive"]
    assert offsets == ["0", "10", "20"]


async def test_page_paging_without_a_next_link_reads_until_a_short_page(
    hub: Api, vendor: LoopbackVendor
) -> None:
    made = [vendor.add_note(f"note {i}") for i in range(23)]
    pages = await read_all(hub, "pages")
    assert [i for p in pages for i in p] == [n["id"] for n in made]
    numbers = [dict(r["query"])["page"] for r in vendor.requests if r["path"] == "/v3/pages"]
    assert numbers == ["1", "2", "3"]


async def test_a_json_write_answers_the_id_from_a_header(hub: Api, vendor: LoopbackVendor) -> None:
    written = await hub.post("hubs/notebooks/notes", json={"text": "hello", "author": "eve"})
    assert written.status == 200, written.text
    note_id = written.body["id"]
    assert written.body == {"text": "hello", "author": "eve", "id": note_id}
    sent = vendor.requests[-1]
    assert json.loads(sent["body"]) == {"text": "hello", "author": "eve"}
    assert vendor.notes[note_id]["text"] == "hello"
    fetched = await hub.get(f"hubs/notebooks/notes/{note_id}")
    assert fetched.body == vendor.notes[note_id]


async def test_a_200_with_ok_false_is_the_vendors_error(hub: Api, vendor: LoopbackVendor) -> None:
    missing = await hub.get("hubs/notebooks/notes/nope")
    assert missing.status == 404, missing.text
    assert missing.body["providerCode"] == "note_not_found"
    assert missing.body["requestId"]
    refused = await hub.post("hubs/notebooks/notes", json={"author": "eve"})
    assert refused.status == 400, refused.text
    assert refused.body["providerCode"] == "invalid_body"
    assert refused.body["providerMessage"] == "no text"


async def test_the_poller_path_follows_a_cursor(
    hubgate: RunningHubgate, hub: Api, vendor: LoopbackVendor
) -> None:
    made = [vendor.add_note(f"note {i}") for i in range(130)]
    instance_id = int(
        (await hub.get("hubs/notebooks/notes")).headers["elements-element-instance-id"]
    )
    async with hubgate.runtime.sessions() as session:
        row = await session.get(Instance, instance_id)
        assert row is not None
        records = await fetch_all(hubgate.runtime, row, "/hubs/notebooks/notes")
    assert [r["id"] for r in records] == [n["id"] for n in made]
