"""The element catalog and hub metadata (D18), with and without credentials."""

from __future__ import annotations

import pytest

from tests.conftest import Api


@pytest.mark.parametrize("authorized", [True, False])
async def test_twilio_element(api: Api, authorized: bool) -> None:
    client = api if authorized else api.with_auth(None)
    for key in ("twiliov2", "503"):
        response = await client.get(f"elements/{key}")
        assert response.status == 200
        body = response.body
        assert (body["id"], body["key"], body["name"], body["hub"]) == (
            503,
            "twiliov2",
            "Twilio V2",
            "messaging",
        )
    keys = ["sendgrid", "twiliov2", "slack"]
    assert (await client.get("elements/keys")).body == keys
    assert [e["key"] for e in (await client.get("elements")).body] == keys


async def test_configuration_entries(api: Api) -> None:
    entries = {e["key"]: e for e in (await api.get("elements/twiliov2/configuration")).body}
    assert entries["username"]["required"]
    assert entries["password"]["required"]
    assert entries["password"]["secret"] is True
    assert entries["username"]["secret"] is False
    assert entries["event.notification.signature.key"]["secret"] is True
    assert entries["pagination.max"]["defaultValue"] == "100"
    for entry in entries.values():
        assert set(entry) >= {
            "key",
            "name",
            "description",
            "defaultValue",
            "required",
            "type",
            "hideFromConsole",
            "secret",
        }


async def test_metadata_and_unknown_element(api: Api) -> None:
    metadata = (await api.get("elements/twiliov2/metadata")).body
    assert metadata["events"]["supported"] is True
    assert "polling" in metadata["events"]["methods"]
    missing = await api.get("elements/nosuch")
    assert missing.status == 404
    assert "nosuch" in missing.body["message"]


async def test_hubs(api: Api) -> None:
    hubs = (await api.get("hubs")).body
    assert hubs[0]["key"] == "messaging"
    assert hubs[0]["id"] == 1
    assert (await api.get("hubs/keys")).body == ["messaging", "collaboration"]
    hub = (await api.get("hubs/messaging")).body
    assert hub == {
        "id": 1,
        "name": "Messaging",
        "key": "messaging",
        "description": hub["description"],
        "active": True,
    }
    assert [e["key"] for e in (await api.get("hubs/messaging/elements")).body] == [
        "sendgrid",
        "twiliov2",
    ]
    assert (await api.get("hubs/nosuch")).status == 404
