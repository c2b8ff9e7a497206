"""The ``sendgrid`` element (D54) over real HTTP against the SendGrid simulator: provisioning,
sends, lists with CEQL, templates, bounces and the signed Event Webhook."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hubgate.elements.sdk import VendorRequest, WebhookRefusedError, WriteContext
from hubgate.elements.sendgrid import webhooks
from hubgate.elements.sendgrid.hooks import mail_body
from hubgate.kit.errors import HubgateError
from sims.sendgrid import SendGridSimulator
from tests.conftest import Api

SENDER = "orders@shop.example"
MESSAGES = "hubs/messaging/messages"

# sendgrid-api.md section 7: SendGrid's published test vector (valid only with the CRLF).
VECTOR_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw"
    "+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
VECTOR_STAMP = "1600112502"
VECTOR_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAb"
    "PIqHh89M15TluLtEZtM="
)
VECTOR_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":'
    b'"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":'
    b'"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":'
    b'"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)


def instance_body(sim: SendGridSimulator, **configuration: Any) -> dict[str, Any]:
    return {
        "element": {"key": "sendgrid"},
        "name": "mail",
        "traceLoggingEnabled": True,
        "configuration": {
            "sendgrid.api.key": sim.api_key,
            "sendgrid.sender": SENDER,
            "event.webhook.public.key": sim.public_key,
            "base.url": sim.url,
            **configuration,
        },
    }


async def provision(api: Api, sim: SendGridSimulator, **configuration: Any) -> dict[str, Any]:
    created = await api.post("instances", json=instance_body(sim, **configuration))
    assert created.status == 200, created.text
    instance: dict[str, Any] = created.body
    return instance


def hub_of(api: Api, instance: dict[str, Any]) -> Api:
    return api.with_auth(f"Element {instance['token']}")


def test_the_published_test_vector_verifies() -> None:
    assert webhooks.verify(VECTOR_KEY, VECTOR_STAMP, VECTOR_BODY, VECTOR_SIGNATURE)
    assert not webhooks.verify(VECTOR_KEY, VECTOR_STAMP, VECTOR_BODY[:-2], VECTOR_SIGNATURE)
    assert not webhooks.verify(VECTOR_KEY, "1600112503", VECTOR_BODY, VECTOR_SIGNATURE)
    # The vector is from 2020: the five-minute window refuses it as a replay.
    request = VendorRequest(
        "https://hubgate.example/e",
        {
            "x-twilio-email-event-webhook-signature": VECTOR_SIGNATURE,
            "x-twilio-email-event-webhook-timestamp": VECTOR_STAMP,
        },
        VECTOR_BODY,
    )
    with pytest.raises(WebhookRefusedError, match="five minutes"):
        webhooks.SendGridWebhook().receive(request, {"event.webhook.public.key": VECTOR_KEY})


def _write(config: dict[str, str | None]) -> WriteContext:
    return WriteContext(config=config, events_url="http://127.0.0.1:1/events")


def test_the_short_message_form_and_the_default_sender() -> None:
    short = {"to": ["a@x.example", "b@x.example"], "subject": "Hi", "message": "Hello"}
    assert mail_body(short, _write({"sendgrid.sender": SENDER})) == {
        "personalizations": [{"to": [{"email": "a@x.example"}, {"email": "b@x.example"}]}],
        "from": {"email": SENDER},
        "subject": "Hi",
        "content": [{"type": "text/plain", "value": "Hello"}],
    }
    own = {"personalizations": [{"to": [{"email": "a@x.example"}]}], "from": {"email": "me@x"}}
    assert mail_body(own, _write({})) == own
    for bad, problem in [
        ({"to": "a@x.example"}, "sender"),
        ({"subject": "no one"}, "recipients"),
        ({"to": 5, "from": "me@x"}, "email address"),
        ({"to": "a@x.example", "color": "red"}, "Unknown fields color"),
    ]:
        with pytest.raises(HubgateError, match=problem):
            mail_body(bad, _write({}))


async def test_provisioning_checks_the_key_and_its_scope(
    api: Api, sendgrid: SendGridSimulator
) -> None:
    created = await provision(api, sendgrid)
    assert created["element"]["key"] == "sendgrid"
    assert created["configuration"]["sendgrid.api.key"] == "********"
    wrong = await api.post("instances", json=instance_body(sendgrid, **{"sendgrid.api.key": "x"}))
    assert wrong.status == 400, wrong.text
    assert wrong.body["providerMessage"].startswith("The provided authorization grant is invalid")
    read_only = sendgrid.add_key(scopes=["messages.read"])
    refused = await api.post(
        "instances", json=instance_body(sendgrid, **{"sendgrid.api.key": read_only})
    )
    assert refused.status == 400, refused.text
    assert "mail.send" in refused.body["message"]
    sendgrid.fail_next(429)
    limited = await api.post("instances", json=instance_body(sendgrid))
    assert limited.status == 429, limited.text
    assert limited.body["providerMessage"] == "too many requests"


async def test_a_send_answers_the_message_with_its_x_message_id(
    api: Api, sendgrid: SendGridSimulator
) -> None:
    hub = hub_of(api, await provision(api, sendgrid))
    sent = await hub.post(
        MESSAGES, json={"to": "ada@mail.example", "subject": "Hello", "message": "Hi Ada"}
    )
    assert sent.status == 200, sent.text
    x_message_id = sent.body["id"]
    copies = sendgrid.sent(x_message_id)
    assert [(c["to_email"], c["from_email"], c["subject"]) for c in copies] == [
        ("ada@mail.example", SENDER, "Hello")
    ]
    assert sent.body["from"] == {"email": SENDER}
    # The id a send answers finds the message, though Email Activity's id only starts with it.
    fetched = await hub.get(f"{MESSAGES}/{x_message_id}")
    assert fetched.status == 200, fetched.text
    assert fetched.body["msg_id"] == copies[0]["msg_id"]
    assert (await hub.get(f"{MESSAGES}/{copies[0]['msg_id']}")).body["to_email"] == (
        "ada@mail.example"
    )
    missing = await hub.get(f"{MESSAGES}/nothere")
    assert missing.status == 404, missing.text
    refused = await hub.post(MESSAGES, json={"to": "ada@mail.example", "subject": "No body"})
    assert refused.status == 400, refused.text
    assert refused.body["providerMessage"]


async def test_a_list_pushes_ceql_into_the_activity_query(
    api: Api, sendgrid: SendGridSimulator
) -> None:
    instance = await provision(api, sendgrid)
    hub = hub_of(api, instance)
    for to in ("a@mail.example", "b@mail.example", "b@mail.example"):
        sent = await hub.post(MESSAGES, json={"to": to, "subject": f"for {to}", "message": "x"})
        assert sent.status == 200, sent.text
    everything = await hub.get(MESSAGES)
    assert len(everything.body) == 3
    found = await hub.get(
        MESSAGES, params={"where": "to_email = 'b@mail.example' AND subject != 'x'"}
    )
    assert found.status == 200, found.text
    assert [m["to_email"] for m in found.body] == ["b@mail.example", "b@mail.example"]
    logs = (await api.get(f"instances/{instance['id']}/logs")).body
    assert ["query", 'to_email="b@mail.example" AND subject!="x"'] in logs[0]["requestBody"]
    # LIKE is not pushed; Hubgate filters what SendGrid answered.
    liked = await hub.get(MESSAGES, params={"where": "to_email LIKE 'a@%'"})
    assert [m["to_email"] for m in liked.body] == ["a@mail.example"]
    paged = await hub.get(MESSAGES, params={"pageSize": "2"})
    assert len(paged.body) == 2
    rest = await hub.get(
        MESSAGES, params={"pageSize": "2", "nextPage": paged.headers["Elements-Next-Page-Token"]}
    )
    assert len(rest.body) == 1
    assert "Elements-Next-Page-Token" not in rest.headers


async def test_templates_page_by_cursor_and_bounces_are_listed_and_deleted(
    api: Api, sendgrid: SendGridSimulator
) -> None:
    hub = hub_of(api, await provision(api, sendgrid))
    made = [
        sendgrid.add_template(f"t{i}", generation="legacy" if i % 2 else "dynamic")["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    params = {"pageSize": "2"}
    while True:
        page = await hub.get("hubs/messaging/templates", params=params)
        assert page.status == 200, page.text
        seen.extend(t["id"] for t in page.body)
        token = page.headers.get("Elements-Next-Page-Token")
        if token is None:
            break
        params = {"pageSize": "2", "nextPage": token}
    assert sorted(seen) == sorted(made)
    one = await hub.get(f"hubs/messaging/templates/{made[0]}")
    assert one.body["versions"][0]["html_content"] == "<p>Hello</p>"
    for email in ("x@mail.example", "y@mail.example"):
        sendgrid.add_bounce(email)
    bounces = await hub.get("hubs/messaging/bounces")
    assert sorted(b["email"] for b in bounces.body) == ["x@mail.example", "y@mail.example"]
    deleted = await hub.delete("hubs/messaging/bounces/x@mail.example")
    assert deleted.status == 200, deleted.text
    assert list(sendgrid.bounces) == ["y@mail.example"]
    again = await hub.delete("hubs/messaging/bounces/x@mail.example")
    assert again.status == 404, again.text


async def test_signed_events_become_message_events(api: Api, sendgrid: SendGridSimulator) -> None:
    instance = await provision(
        api,
        sendgrid,
        **{
            "event.notification.enabled": True,
            "event.notification.callback.url": "http://127.0.0.1:9/hook",
            "event.vendor.type": "webhook",
        },
    )
    hub = hub_of(api, instance)
    sendgrid.webhook_url = instance["eventsCallbackUrl"]
    sent = await hub.post(MESSAGES, json={"to": "ev@mail.example", "subject": "s", "message": "m"})
    msg_id = sendgrid.sent(sent.body["id"])[0]["msg_id"]
    for step in ("processed", "delivered"):
        _, delivery = await sendgrid.advance(msg_id, step)
        assert delivery is not None
        assert delivery.status == 200, delivery
    events_path = f"instances/{instance['id']}/events"
    events = (await api.get(events_path)).body
    assert sorted((e["objectId"], e["eventType"]) for e in events) == [
        (msg_id, "CREATED"),
        (msg_id, "UPDATED"),
    ]
    # The same delivery again (a vendor retry) gives nothing new; tampered or stale is refused.
    path = instance["eventsCallbackUrl"][len(api.base) :]
    body = json.dumps([{"event": "open", "sg_message_id": msg_id, "timestamp": 1}]).encode()
    signed = sendgrid.signed_headers(body)
    vendor = api.with_auth(None)
    assert (await vendor.post(path, data=body, headers=signed)).status == 200
    assert (await vendor.post(path, data=body, headers=signed)).status == 200
    assert len((await api.get(events_path)).body) == 3
    tampered = await vendor.post(path, data=body.replace(b"open", b"bounce"), headers=signed)
    assert tampered.status == 403, tampered.text
    stale = sendgrid.signed_headers(body, int(time.time()) - 3600)
    replayed = await vendor.post(path, data=body, headers=stale)
    assert replayed.status == 403, replayed.text
    assert len((await api.get(events_path)).body) == 3
