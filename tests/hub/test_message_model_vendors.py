"""One message model across three vendors (issue 11 item 7; D322, D325): the same canonical
``messages`` body through a Twilio, a SendGrid and a Slack instance of one organization, each
arriving at its simulator in the vendor's own shape, each answered in the canonical shape."""

from __future__ import annotations

import aiohttp

from sims.sendgrid import SendGridSimulator
from sims.slack import SlackSimulator
from tests.conftest import Api
from tests.elements import slack_flow
from tests.elements.test_sendgrid import SENDER, hub_of
from tests.elements.test_sendgrid import provision as provision_sendgrid
from tests.hub.conftest import HubInstance
from tests.hub.test_message_model import FROM, TO, adopt_messages


async def test_one_canonical_message_through_three_vendors(
    api: Api,
    http: aiohttp.ClientSession,
    instance: HubInstance,
    sendgrid: SendGridSimulator,
    slack: SlackSimulator,
) -> None:
    await adopt_messages(api)
    mail = hub_of(api, await provision_sendgrid(api, sendgrid))
    chat = slack_flow.element_auth(api, await slack_flow.provision(api, http, slack))
    general = slack.channel_named("general")

    def canonical(to: str, sender: str) -> dict[str, str]:
        return {"to": to, "from": sender, "subject": "Order 42", "text": "It shipped"}

    sms = await instance.hub.post(
        "/elements/api-v2/hubs/messaging/messages", json=canonical(TO, FROM)
    )
    assert sms.status == 200, sms.text
    assert instance.account.requests()[-1].form == {"To": TO, "From": FROM, "Body": "It shipped"}
    assert (sms.body["to"], sms.body["text"]) == (TO, "It shipped")
    assert sms.body["id"].startswith("SM")

    email = await mail.post("hubs/messaging/messages", json=canonical("ann@x.example", SENDER))
    assert email.status == 200, email.text
    assert sendgrid.mail_bodies[-1] == {
        "personalizations": [{"to": [{"email": "ann@x.example"}]}],
        "from": {"email": SENDER},
        "subject": "Order 42",
        "content": [{"type": "text/plain", "value": "It shipped"}],
    }
    # The id is the send's X-Message-Id: the simulator finds the copies by it.
    assert {k: v for k, v in email.body.items() if k != "id"} == {
        "to": "ann@x.example",
        "from": SENDER,
        "subject": "Order 42",
        "text": "It shipped",
    }
    assert sendgrid.sent(email.body["id"])[0]["to_email"] == "ann@x.example"

    # Slack has no sender or subject to set: the bot posts, and both are left out.
    chat_message = await chat.post(
        "hubs/collaboration/messages", json=canonical(general, "ignored")
    )
    assert chat_message.status == 200, chat_message.text
    posted = slack.channels[general].messages
    assert [m["text"] for m in posted] == ["It shipped"]
    assert chat_message.body == {
        "id": posted[0]["ts"],
        "to": general,
        "from": posted[0]["user"],
        "text": "It shipped",
    }

    # The list answers SendGrid's Email Activity in the same shape.
    listed = await mail.get("hubs/messaging/messages")
    assert listed.status == 200, listed.text
    assert [(m["to"], m["from"], m["subject"], m["status"]) for m in listed.body] == [
        ("ann@x.example", SENDER, "Order 42", "processed")
    ]
    assert set(listed.body[0]) == {"id", "to", "from", "subject", "status"}
