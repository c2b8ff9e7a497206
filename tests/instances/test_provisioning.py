"""Provisioning a Twilio instance exactly as the Open Connectors page describes it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.instances.models import Instance
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, TenantCredentials, twilio_instance_body

DEFAULTS = {
    "pagination.max": "100",
    "event.poller.refresh_interval": "15",
    "event.vendor.type": "polling",
    "event.notification.enabled": "false",
    "filter.response.nulls": "true",
    "pagination.type": "page",
    "pagination.page.startindex": "0",
}


async def test_seed_request_provisions_an_instance(api: Api, sim: TwilioSimulator) -> None:
    response = await api.post(
        "instances",
        json=twilio_instance_body(sim),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200, response.text
    body = response.body
    assert isinstance(body["id"], int)
    assert isinstance(body["token"], str)
    assert len(body["token"]) >= 43
    assert body["element"]["key"] == "twiliov2"
    assert body["element"]["id"] == 503
    assert body["valid"] is True
    assert body["disabled"] is False
    assert body["name"] == "my-twilio"
    assert body["tags"] == ["seed"]
    configuration = body["configuration"]
    assert configuration["password"] == "********"
    assert configuration["username"] == sim.account_sid
    assert configuration["base.url"] == sim.base_url
    for key, value in DEFAULTS.items():
        assert configuration[key] == value, key
    assert configuration["event.notification.callback.url"] is None
    assert configuration["event.notification.signature.key"] is None
    assert "DateSent" in configuration["event.poller.configuration"]
    assert body["externalAuthentication"] == "none"
    assert body["provisionInteractions"] == []
    assert body["user"]["emailAddress"].endswith("@example.test")
    assert response.headers["Elements-Request-Id"]
    # The credential check really reached Twilio's account fetch with Basic auth.
    checks = [r for r in sim.requests if r.path.endswith(f"/Accounts/{sim.account_sid}.json")]
    assert checks
    assert checks[-1].user == sim.account_sid


async def test_element_route_and_get_return_the_same_instance(
    api: Api, sim: TwilioSimulator
) -> None:
    body = twilio_instance_body(sim)
    del body["element"]
    created = await api.post("elements/twiliov2/instances", json=body)
    assert created.status == 200, created.text
    fetched = await api.get(f"instances/{created.body['id']}")
    assert fetched.status == 200
    assert fetched.body["token"] == created.body["token"]
    assert fetched.body["configuration"] == created.body["configuration"]
    by_id = await api.post("elements/503/instances", json=body)
    assert by_id.status == 200
    assert by_id.body["element"]["key"] == "twiliov2"


async def test_missing_password_is_named(api: Api, sim: TwilioSimulator) -> None:
    body = twilio_instance_body(sim)
    del body["configuration"]["password"]
    response = await api.post("instances", json=body)
    assert response.status == 400
    assert response.body["message"] == "Missing required configuration: password"
    assert response.body["missing"] == ["password"]
    assert len(response.body["requestId"]) == 24


async def test_missing_both_credentials_are_named_sorted(api: Api, sim: TwilioSimulator) -> None:
    response = await api.post(
        "instances", json={"element": {"key": "twiliov2"}, "configuration": {}}
    )
    assert response.status == 400
    assert response.body["message"] == "Missing required configuration: password, username"


async def test_wrong_auth_token_is_rejected_and_nothing_saved(
    api: Api, sim: TwilioSimulator, tenant: TenantCredentials, db_session: AsyncSession
) -> None:
    body = twilio_instance_body(sim, password="0" * 32)
    response = await api.post("instances", json=body)
    assert response.status == 400
    assert response.body["message"] == "Twilio rejected the credentials"
    assert response.body["providerCode"] == 20003
    assert response.body["providerStatus"] == 401
    assert response.body["providerMessage"] == "Authenticate"
    count = await db_session.scalar(
        select(func.count(Instance.id)).where(Instance.organization_id == tenant.organization_id)
    )
    assert count == 0
    listed = await api.get("instances")
    assert listed.status == 200
    assert listed.body == []


async def test_unknown_element_is_a_bad_request(api: Api, sim: TwilioSimulator) -> None:
    body = twilio_instance_body(sim)
    body["element"] = {"key": "nosuch"}
    response = await api.post("instances", json=body)
    assert response.status == 400
    assert "nosuch" in response.body["message"]


async def test_unreachable_vendor_is_502(api: Api, sim: TwilioSimulator) -> None:
    from tests.conftest import free_port

    body = twilio_instance_body(sim)
    body["configuration"]["base.url"] = f"http://127.0.0.1:{free_port()}/2010-04-01/Accounts"
    response = await api.post("instances", json=body)
    assert response.status == 502
    assert response.body["message"] == "Twilio could not be reached"


async def test_private_base_url_is_refused_without_allow(api: Api, sim: TwilioSimulator) -> None:
    body = twilio_instance_body(sim)
    body["configuration"]["base.url"] = "http://169.254.169.254/latest"
    response = await api.post("instances", json=body)
    assert response.status == 400
    assert "HUBGATE_EGRESS_ALLOW" in response.body["message"]


async def test_html_is_stripped_from_name_and_tags(api: Api, sim: TwilioSimulator) -> None:
    body = twilio_instance_body(sim)
    body["name"] = '<a href="x">churros-xss</a>'
    body["tags"] = ["<b>bold</b>", "plain"]
    response = await api.post("instances", json=body)
    assert response.status == 200
    assert response.body["name"] == "churros-xss"
    assert response.body["tags"] == ["bold", "plain"]


async def test_values_are_returned_as_strings(api: Api, sim: TwilioSimulator) -> None:
    poller = {"messages": {"url": "/hubs/messaging/messages", "idField": "sid"}}
    body = twilio_instance_body(
        sim,
        **{
            "event.poller.refresh_interval": 5,
            "event.notification.enabled": True,
            "event.notification.callback.url": "http://127.0.0.1:9/cb",
            "event.poller.configuration": poller,
        },
    )
    response = await api.post("instances", json=body)
    assert response.status == 200, response.text
    configuration = response.body["configuration"]
    assert configuration["event.poller.refresh_interval"] == "5"
    assert configuration["event.notification.enabled"] == "true"
    assert configuration["event.poller.configuration"] == (
        '{"messages":{"url":"/hubs/messaging/messages","idField":"sid"}}'
    )
    assert response.body["eventsEnabled"] is True


async def test_bad_configuration_values_are_named(api: Api, sim: TwilioSimulator) -> None:
    cases = {
        "event.poller.refresh_interval": 0,
        "event.notification.enabled": "maybe",
        "base.url": "ftp://example.com",
        "event.poller.configuration": "not json",
        "no.such.key": "x",
    }
    for key, value in cases.items():
        response = await api.post("instances", json=twilio_instance_body(sim, **{key: value}))
        assert response.status == 400, key
        assert key in response.body["message"], response.body
