"""The element's default transformations (issue 11 item 2; D322, D392): listed by
``GET /elements/{keyOrId}/transformations`` for every element that ships them, beneath the
levels' merged views, and used by try-it-out, over real HTTP."""

from __future__ import annotations

import pytest

from hubgate.elements.registry import discover
from tests.conftest import Api
from tests.transformations.api import ok

SHIPPING = ("twiliov2", "sendgrid", "slack")
INHERIT = [{"type": "inherit"}]


@pytest.mark.parametrize("key", SHIPPING)
async def test_each_messaging_element_lists_its_messages_default(api: Api, key: str) -> None:
    shipped = discover().get(key).transformations["messages"]
    found = await ok(api, "GET", f"elements/{key}/transformations")
    messages = found["messages"]
    assert (messages["level"], messages["elementKey"], messages["vendorName"]) == (
        "system",
        key,
        shipped["vendorName"],
    )
    assert [f["path"] for f in messages["fields"]] == [f["path"] for f in shipped["fields"]]
    assert {f["level"] for f in messages["fields"]} == {"system"}
    # The organization's and account's views show the default where nothing is stored.
    for level in ("organizations", "accounts"):
        assert await ok(api, "GET", f"{level}/elements/{key}/transformations") == found
        assert await ok(api, "GET", f"{level}/elements/{key}/transformations/messages") == (
            messages
        )


async def test_an_inheriting_organization_transformation_is_merged_over_the_default(
    api: Api,
) -> None:
    system = await ok(api, "GET", "organizations/objects/definitions?systemOnly=true")
    fields = [*system["messages"]["fields"], {"path": "segments", "type": "string"}]
    await ok(api, "POST", "organizations/objects/messages/definitions", {"fields": fields})
    extra = {"fields": [{"path": "segments", "vendorPath": "num_segments"}]}
    await ok(
        api,
        "POST",
        "organizations/elements/twiliov2/transformations/messages",
        {**extra, "configuration": INHERIT},
    )
    merged = await ok(api, "GET", "accounts/elements/twiliov2/transformations/messages")
    levels = {f["path"]: f["level"] for f in merged["fields"]}
    assert levels["segments"] == "organization"
    assert levels["text"] == levels["to"] == "system"
    listed = await ok(api, "GET", "organizations/elements/twiliov2/transformations")
    one = await ok(api, "GET", "organizations/elements/twiliov2/transformations/messages")
    assert listed["messages"]["fields"] == one["fields"]


async def test_try_it_out_uses_the_default(api: Api) -> None:
    url = "transformations/messages/execute"
    vendor = {"sid": "SM1", "to": "+15558675310", "from": "+15017122661", "body": "hi", "x": 1}
    read = await ok(api, "POST", url, {"payload": vendor, "elementId": "twiliov2"})
    assert (read["id"], read["to"], read["from"], read["text"]) == (
        "SM1",
        "+15558675310",
        "+15017122661",
        "hi",
    )
    assert "x" not in read
    towards = await ok(
        api,
        "POST",
        url,
        {"payload": {"to": "#general", "text": "hello"}, "elementId": "slack", "method": "POST"},
    )
    assert towards == {"channel": "#general", "text": "hello"}
    email = {"to": "a@example.test", "from": "b@example.test", "subject": "S", "text": "T"}
    sent = await ok(api, "POST", url, {"payload": email, "elementId": "sendgrid", "method": "POST"})
    assert sent == email
