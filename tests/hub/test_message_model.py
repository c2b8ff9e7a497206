"""One message model (issue 11 item 7; D322): the system common resource ``messages`` and the
defaults the Twilio element ships, over real HTTP against the Twilio simulator."""

from __future__ import annotations

from typing import Any

import pytest

from hubgate.elements.registry import discover
from hubgate.transformations.mapping import parse_transformation
from hubgate.transformations.resolution import element_defaults
from tests.conftest import Api
from tests.hub.conftest import HubInstance

HUB = "/elements/api-v2/hubs/messaging"
TO, FROM = "+15558675310", "+15017122661"


async def adopt_messages(api: Api) -> list[dict[str, Any]]:
    """The organization takes Hubgate's ``messages`` as its own definition (D322)."""
    system = await api.get("organizations/objects/definitions", params={"systemOnly": "true"})
    assert system.status == 200, system.text
    fields: list[dict[str, Any]] = system.body["messages"]["fields"]
    made = await api.post("organizations/objects/messages/definitions", json={"fields": fields})
    assert made.status == 200, made.text
    return fields


async def test_the_system_catalogue_lists_messages(api: Api) -> None:
    system = await api.get("organizations/objects/definitions", params={"systemOnly": "true"})
    assert system.status == 200
    assert system.body["messages"]["level"] == "system"
    paths = [f["path"] for f in system.body["messages"]["fields"]]
    assert {"to", "from", "subject", "text"} <= set(paths)
    # The organization's own list does not hold the catalogue.
    own = await api.get("organizations/objects/definitions")
    assert "messages" not in own.body


async def test_the_twilio_element_serves_its_defaults(api: Api) -> None:
    found = await api.get("elements/twiliov2/transformations")
    assert found.status == 200, found.text
    messages = found.body["messages"]
    assert (messages["vendorName"], messages["level"], messages["elementKey"]) == (
        "messages",
        "system",
        "twiliov2",
    )
    text = next(f for f in messages["fields"] if f["path"] == "text")
    assert (text["vendorPath"], text["vendorWritePath"]) == ("body", "Body")
    assert (await api.get("elements/503/transformations")).body == found.body
    assert (await api.get("elements/nope/transformations")).status == 404


async def test_without_the_definition_messages_stay_twilios(instance: HubInstance) -> None:
    sent = await instance.hub.post(
        f"{HUB}/messages", json={"To": TO, "From": FROM, "Body": "vendor shape"}
    )
    assert sent.status == 200, sent.text
    assert sent.body["body"] == "vendor shape"
    assert sent.body["sid"].startswith("SM")


async def test_a_canonical_message_is_an_sms_through_twilio(
    api: Api, instance: HubInstance
) -> None:
    await adopt_messages(api)
    sent = await instance.hub.post(
        f"{HUB}/messages",
        json={"to": TO, "from": FROM, "subject": "Hello", "text": "one model"},
    )
    assert sent.status == 200, sent.text
    request = instance.account.requests()[-1]
    assert request.method == "POST"
    assert request.path.endswith("/Messages.json")
    # Twilio's form fields only: an SMS has no subject, and unmapped fields are removed.
    assert request.form == {"To": TO, "From": FROM, "Body": "one model"}
    assert sent.body["id"].startswith("SM")
    assert (sent.body["to"], sent.body["from"], sent.body["text"]) == (TO, FROM, "one model")
    assert "sid" not in sent.body
    listed = await instance.hub.get(f"{HUB}/messages", params={"where": f"to = '{TO}'"})
    assert listed.status == 200, listed.text
    assert [m["id"] for m in listed.body] == [sent.body["id"]]
    message = listed.body[0]
    assert set(message) <= {"id", "to", "from", "text", "status", "direction", "createdAt"}
    # Twilio's RFC 2822 date, in the model's ISO 8601 form.
    assert message["createdAt"][4] == "-"
    assert message["createdAt"].endswith("Z")
    assert instance.account.requests()[-1].query["To"] == TO


async def test_an_organization_transformation_builds_on_the_default(
    api: Api, instance: HubInstance
) -> None:
    await adopt_messages(api)
    extra = {
        "fields": [{"path": "segments", "vendorPath": "num_segments"}],
        "configuration": [{"type": "inherit"}],
    }
    saved = await api.post("organizations/elements/twiliov2/transformations/messages", json=extra)
    assert saved.status == 200, saved.text
    grown = await api.put(
        "organizations/objects/messages/definitions",
        json={"fields": [*(await adopt_fields(api)), {"path": "segments", "type": "string"}]},
    )
    assert grown.status == 200, grown.text
    await instance.hub.post(f"{HUB}/messages", json={"to": TO, "from": FROM, "text": "x"})
    listed = await instance.hub.get(f"{HUB}/messages")
    assert listed.status == 200, listed.text
    assert listed.body[0]["text"] == "x"
    assert listed.body[0]["segments"] == "1"


async def adopt_fields(api: Api) -> list[dict[str, Any]]:
    system = await api.get("organizations/objects/definitions", params={"systemOnly": "true"})
    fields: list[dict[str, Any]] = system.body["messages"]["fields"]
    return fields


@pytest.mark.parametrize("element", list(discover()), ids=lambda e: e.key)
def test_every_shipped_default_reads_and_names_a_resource(element: Any) -> None:
    resources = {r.path for r in element.manifest.resources}
    for name, body in element.transformations.items():
        parsed = parse_transformation(body)
        assert (parsed.vendor_name or name) in resources, (element.key, name)
    assert set(element_defaults(element)) == set(element.transformations)
