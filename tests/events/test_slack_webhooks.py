"""Slack's Events API into Hubgate (D59): the v0 signature, the challenge, retries, messages.

The Slack simulator is the vendor: it signs and delivers ``event_callback`` requests to the
instance's ``eventsCallbackUrl`` and retries as Slack does.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from hubgate.elements.sdk import VendorRequest, WebhookRefusedError
from hubgate.elements.slack import webhooks as sw
from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver
from sims.slack import SlackSimulator
from tests.conftest import Api
from tests.elements.slack_flow import provision
from tests.events.conftest import SIGNATURE_KEY

# slack-api.md section 4: Slack's published example.
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = "1531420618"
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
    b"-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F39770"
    b"0885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2"
    b"c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_the_published_test_vector() -> None:
    assert sw.signature(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {
        "x-slack-request-timestamp": VECTOR_TIMESTAMP,
        "x-slack-signature": VECTOR_SIGNATURE,
    }
    sw.verify(headers, VECTOR_BODY, VECTOR_SECRET, now=int(VECTOR_TIMESTAMP) + 299)
    for now, secret, body in (
        (int(VECTOR_TIMESTAMP) + 301, VECTOR_SECRET, VECTOR_BODY),
        (int(VECTOR_TIMESTAMP) - 301, VECTOR_SECRET, VECTOR_BODY),
        (int(VECTOR_TIMESTAMP), "another secret", VECTOR_BODY),
        (int(VECTOR_TIMESTAMP), VECTOR_SECRET, VECTOR_BODY + b"&x=1"),
    ):
        with pytest.raises(WebhookRefusedError):
            sw.verify(headers, body, secret, now=now)


def test_message_events_become_created_updated_and_deleted() -> None:
    posted = {"type": "message", "ts": "1.000001", "text": "hi", "channel": "C1"}
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "message": {"ts": "1.000001", "text": "hey"},
        "ts": "2.000000",
    }
    deleted = {"type": "message", "subtype": "message_deleted", "deleted_ts": "1.000001"}
    found = [sw.message_change(e, f"Ev{n}") for n, e in enumerate((posted, changed, deleted))]
    assert [(c.object_id, c.event_type) for c in found if c] == [
        ("1.000001", "CREATED"),
        ("1.000001", "UPDATED"),
        ("1.000001", "DELETED"),
    ]
    assert sw.message_change({"type": "reaction_added"}, "Ev9") is None
    # The same event id is the same change, whatever else the retry carries.
    again = sw.message_change({**posted, "event_ts": "x"}, "Ev0")
    assert again is not None
    assert found[0] is not None
    assert again.digest == found[0].digest


def test_a_request_without_the_signing_secret_is_refused() -> None:
    body = b'{"type": "url_verification", "challenge": "c"}'
    stamp = str(int(time.time()))
    headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": "v0=00"}
    with pytest.raises(WebhookRefusedError):
        sw.SlackWebhook().receive(VendorRequest("http://h/e", headers, body), {})


async def webhook_instance(
    events_api: Api, http: aiohttp.ClientSession, slack: SlackSimulator, receiver: CallbackReceiver
) -> dict[str, Any]:
    instance = await provision(
        events_api,
        http,
        slack,
        **{
            "event.notification.enabled": True,
            "event.notification.callback.url": receiver.url,
            "event.notification.signature.key": SIGNATURE_KEY,
        },
    )
    slack.request_url = instance["eventsCallbackUrl"]
    return instance


async def test_the_url_verification_challenge_is_answered(
    events_api: Api, http: aiohttp.ClientSession, slack: SlackSimulator, receiver: CallbackReceiver
) -> None:
    await webhook_instance(events_api, http, slack, receiver)
    verified, delivery = await slack.verify_url()
    assert verified, delivery
    assert delivery.headers["content-type"].startswith("text/plain")


async def test_messages_posted_edited_and_deleted_become_events_once(
    events_api: Api,
    http: aiohttp.ClientSession,
    slack: SlackSimulator,
    receiver: CallbackReceiver,
    worker: Runtime,
) -> None:
    instance = await webhook_instance(events_api, http, slack, receiver)
    channel = slack.channel_named("general")
    # Slack sends the first one twice more, as when an answer takes longer than 3 s.
    envelope, deliveries = await slack.send_event(channel, text="first", duplicates=2)
    assert [d.status for d in deliveries] == [200, 200, 200]
    ts = envelope["event"]["ts"]
    await slack.send_event(channel, action="edit", ts=ts, text="first, edited")
    await slack.send_event(channel, action="delete", ts=ts)

    got = await receiver.wait_for(lambda r: len(r) >= 3)
    events = [r.json()["message"]["events"][0] for r in got]
    # Deliveries of one batch are posted concurrently (D310), so they may arrive in any order;
    # each change arrives exactly once, and the records keep the order Slack sent them in.
    expected = [
        ("messages", ts, "CREATED"),
        ("messages", ts, "UPDATED"),
        ("messages", ts, "DELETED"),
    ]
    assert sorted((e["objectType"], e["objectId"], e["eventType"]) for e in events) == sorted(
        expected
    )
    stored = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert [e["eventType"] for e in reversed(stored)] == ["CREATED", "UPDATED", "DELETED"]


async def test_tampered_and_replayed_events_are_refused(
    events_api: Api, http: aiohttp.ClientSession, slack: SlackSimulator, receiver: CallbackReceiver
) -> None:
    instance = await webhook_instance(events_api, http, slack, receiver)
    channel = slack.channel_named("general")
    # A request captured ten minutes ago: its signature is good, its time is not.
    _, old = await slack.send_event(channel, text="late", timestamp=int(time.time()) - 600)
    assert old[0].status == 403, old[0].body
    envelope = {"type": "event_callback", "event_id": "EvX", "event": {"type": "message"}}
    body = json.dumps({**envelope, "event": {"type": "message", "ts": "1.0", "text": "hi"}})
    headers = slack.signed_headers(body.encode())
    tampered = body.replace('"hi"', '"ho"')
    path = instance["eventsCallbackUrl"][len(events_api.base) :]
    answer = await events_api.with_auth(None).post(path, data=tampered, headers=headers)
    assert answer.status == 403, answer.text
    assert set(answer.body) == {"requestId", "message"}
    assert (await events_api.get(f"instances/{instance['id']}/events")).body == []


async def test_a_retry_after_a_later_edit_gives_nothing(
    events_api: Api,
    http: aiohttp.ClientSession,
    slack: SlackSimulator,
    receiver: CallbackReceiver,
    worker: Runtime,
) -> None:
    """D380: Slack retries the post's event after the message was edited (its first answer
    was late); the event id was taken already, so the retry is acknowledged and gives nothing,
    although the message's last digest in the seen-set is the edit's."""
    instance = await webhook_instance(events_api, http, slack, receiver)
    channel = slack.channel_named("general")
    posted, _ = await slack.send_event(channel, text="first")
    ts = posted["event"]["ts"]
    await slack.send_event(channel, action="edit", ts=ts, text="first, edited")
    body = json.dumps(posted).encode()
    headers = {
        **slack.signed_headers(body),
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    retried = await slack.post(instance["eventsCallbackUrl"], body, headers)
    assert retried.status == 200, retried.body

    got = await receiver.wait_for(lambda r: len(r) >= 2)
    kinds = sorted(r.json()["message"]["events"][0]["eventType"] for r in got)
    assert kinds == ["CREATED", "UPDATED"]
    stored = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert [e["eventType"] for e in reversed(stored)] == ["CREATED", "UPDATED"]
