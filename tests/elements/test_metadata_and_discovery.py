"""Element metadata, instance counts, hub resources and object discovery (D50-D52)."""

from __future__ import annotations

import json

from sims.twilio_sim import TwilioSimulator
from tests.conftest import SHARED, Api, twilio_instance_body

EXPANDED = {
    "image",
    "displayOrder",
    "active",
    "beta",
    "transformations",
    "elementType",
    "normalizedPaging",
    "authenticationType",
    "cloneable",
    "discovery",
    "bulk",
    "api",
    "resources",
}


async def token_client(api: Api, sim: TwilioSimulator) -> Api:
    created = await api.post("instances", json=twilio_instance_body(sim))
    assert created.status == 200, created.text
    return api.with_auth(f"Element {created.body['token']}")


async def test_metadata_carries_polling_defaults_and_expands(api: Api) -> None:
    plain = (await api.get("elements/twiliov2/metadata")).body
    polling = plain["events"]["polling"]
    assert polling["messages"]["idField"] == "sid"
    assert "/hubs/messaging/messages" in polling["messages"]["url"]
    assert not EXPANDED & set(plain)
    expanded = await api.get("elements/503/metadata", params={"expand": "true"})
    assert expanded.status == 200, expanded.text
    body = expanded.body
    assert set(body) >= EXPANDED
    assert body["authenticationType"] == "basic"
    assert body["image"] == "elements/provider_twilio.png"
    resources = {r["path"]: r for r in body["resources"]}
    messages = resources["/hubs/messaging/messages"]
    assert messages["operations"] == ["GET", "POST"]
    assert messages["canonicalName"] == "messages"
    assert messages["events"] == {"pollable": True, "polledByDefault": True}
    assert resources["/hubs/messaging/messages/{id}/media"]["canonicalName"] == "media"
    assert resources["/hubs/messaging/calls/{id}"]["events"]["pollable"] is False
    assert "calls" in body["discovery"]["objects"]
    # Every element at once, with or without credentials.
    everything = await api.with_auth(None).get("elements/metadata", params={"expand": "true"})
    assert everything.status == 200, everything.text
    assert [m["key"] for m in everything.body] == ["sendgrid", "twiliov2", "slack"]
    assert everything.body[1] == body
    assert (await api.get("elements/metadata")).body[1] == plain
    assert (await api.get("elements/nosuch/metadata")).status == 404


async def test_instance_count(api: Api, sim: TwilioSimulator) -> None:
    assert (await api.get("instances/count")).body == {
        "totalInstances": 0,
        "elementInstances": [],
    }
    for _ in range(3):
        await token_client(api, sim)
    counted = await api.get("instances/count")
    assert counted.status == 200, counted.text
    assert counted.body == {
        "totalInstances": 3,
        "elementInstances": [{"elementKey": "twiliov2", "elementId": 503, "count": 3}],
    }
    assert (await api.with_auth(None).get("instances/count")).status == 401


async def test_hubs_hydrated_with_resources(api: Api) -> None:
    plain = (await api.get("hubs")).body
    assert "resources" not in plain[0]
    hydrated = (await api.get("hubs", params={"hydrate": "true"})).body
    resources = hydrated[0]["resources"]
    assert {"messages", "messages/{id}", "calls", "numbers", "ping"} <= set(resources)
    assert len(resources) == len(set(resources))


async def test_objects_and_helium_objects(api: Api, sim: TwilioSimulator) -> None:
    hub = await token_client(api, sim)
    names = await hub.get("objects")
    assert names.status == 200, names.text
    assert {"messages", "calls", "accounts", "addresses", "media"} <= set(names.body)
    assert "ping" not in names.body  # no objects, no fields
    helium = await hub.get("objects", headers={"Elements-Version": "Helium"})
    assert helium.status == 200, helium.text
    by_name = {o["name"]: o for o in helium.body}
    assert set(by_name) == set(names.body)
    assert by_name["messages"] == {"name": "messages", "vendorName": "Messages", "type": "vendor"}
    assert {o["type"] for o in helium.body} <= {"vendor", "ceCanonical", "vdr"}
    assert (await hub.get("hubs/messaging/objects")).body == names.body
    # Discovery needs the instance: no Element token, no objects.
    assert (await api.get("objects")).status == 401


async def test_object_metadata_lists_twilios_fields(api: Api, sim: TwilioSimulator) -> None:
    hub = await token_client(api, sim)
    metadata = await hub.get("objects/messages/metadata")
    assert metadata.status == 200, metadata.text
    fields = {f["vendorPath"]: f for f in metadata.body["fields"]}
    assert fields["date_sent"] == {
        "vendorPath": "date_sent",
        "type": "date",
        "vendorNativeType": "date-time-rfc-2822",
    }
    assert fields["error_code"]["type"] == "number"
    assert fields["body"] == {"vendorPath": "body", "type": "string"}
    # The same fields as Twilio's own description of a message.
    spec = json.loads((SHARED / "twilio" / "twilio_api_v2010.json").read_text())
    twilio = spec["components"]["schemas"]["api.v2010.account.message"]["properties"]
    assert set(fields) == set(twilio)
    via_hub = await hub.get("hubs/messaging/objects/messages/metadata")
    assert via_hub.status == 200, via_hub.text
    assert via_hub.body == metadata.body
    missing = await hub.get("objects/nosuch/metadata")
    assert missing.status == 404
    assert "nosuch" in missing.body["message"]
    assert (await hub.get("hubs/messaging/objects/nosuch/metadata")).status == 404
