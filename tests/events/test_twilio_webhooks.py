"""Twilio's webhooks into Hubgate (D31), with the official twilio package as the oracle."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

from hubgate.elements.twiliov2 import webhooks as tw
from hubgate.events.tasks import DISPATCH
from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver
from tests.conftest import Api
from tests.events.conftest import SIGNATURE_KEY, Provisioner, encoded_id, eventually

# twilio-api.md section 7: Twilio's published example.
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_TOKEN = "12345"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_the_published_test_vector() -> None:
    params = list(VECTOR_PARAMS.items())
    assert tw.signature(VECTOR_URL, params, VECTOR_TOKEN) == VECTOR_SIGNATURE
    assert RequestValidator(VECTOR_TOKEN).validate(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    assert tw.verify(VECTOR_URL, params, b"", VECTOR_SIGNATURE, VECTOR_TOKEN)
    assert not tw.verify(VECTOR_URL, params, b"", VECTOR_SIGNATURE, "54321")
    assert not tw.verify(VECTOR_URL + "&baz=3", params, b"", VECTOR_SIGNATURE, VECTOR_TOKEN)


names = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=8)
values = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12)


@settings(max_examples=200, deadline=None)
@given(params=st.lists(st.tuples(names, values), max_size=8), token=names)
def test_signatures_match_twilios_validator_including_repeated_names(
    params: list[tuple[str, str]], token: str
) -> None:
    url = "https://hubgate.example/elements/api-v2/events/twiliov2/MTI="
    oracle = RequestValidator(token)
    expected = oracle.compute_signature(url, MultiDict(params))
    assert tw.signature(url, params, token) == expected
    assert tw.verify(url, params, b"", expected, token)


def test_ports_are_accepted_with_and_without_the_default_like_twilios_validator() -> None:
    params = list(VECTOR_PARAMS.items())
    oracle = RequestValidator(VECTOR_TOKEN)
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    signed_with_port = oracle.compute_signature(with_port, VECTOR_PARAMS)
    assert tw.verify(VECTOR_URL, params, b"", signed_with_port, VECTOR_TOKEN)
    assert oracle.validate(VECTOR_URL, VECTOR_PARAMS, signed_with_port)
    local = "http://127.0.0.1:8080/elements/api-v2/events/twiliov2/MTI="
    signed = oracle.compute_signature(local, VECTOR_PARAMS)
    assert tw.verify(local, params, b"", signed, VECTOR_TOKEN)


def test_json_bodies_are_covered_by_body_sha256() -> None:
    body = b'{"hello":"world"}'
    url = f"https://hubgate.example/e?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signed = RequestValidator(VECTOR_TOKEN).compute_signature(url, {})
    assert RequestValidator(VECTOR_TOKEN).validate(url, body.decode(), signed)
    assert tw.verify(url, [], body, signed, VECTOR_TOKEN)
    assert not tw.verify(url, [], b'{"hello":"moon"}', signed, VECTOR_TOKEN)


def test_inbound_messages_are_created_and_status_callbacks_updated() -> None:
    inbound = [("MessageSid", "SM1"), ("SmsStatus", "received"), ("Body", "hi")]
    callback = [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("SmsStatus", "delivered")]
    ringing = [("CallSid", "CA1"), ("CallStatus", "ringing"), ("Direction", "inbound")]
    done = [("CallSid", "CA1"), ("CallStatus", "completed"), ("Direction", "inbound")]
    kinds = [
        (c.object_type, c.object_id, c.event_type)
        for p in (inbound, callback, ringing, done)
        for c in tw.changes(p)
    ]
    assert kinds == [
        ("messages", "SM1", "CREATED"),
        ("messages", "SM1", "UPDATED"),
        ("calls", "CA1", "CREATED"),
        ("calls", "CA1", "UPDATED"),
    ]
    assert tw.changes([("Foo", "bar")]) == []


async def post_webhook(
    api: Api, instance: dict[str, Any], params: dict[str, str], *, token: str | None
) -> Any:
    url = instance["eventsCallbackUrl"]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, params)
    return await api.with_auth(None).post(
        url[len(api.base) :], data=urlencode(params), headers=headers
    )


def inbound(sid: str, account_sid: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account_sid,
        "From": "+15005550006",
        "To": "+15005550001",
        "Body": "Hello from a phone",
        "NumMedia": "0",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


async def test_signed_webhooks_become_signed_notifications(
    provision: Provisioner, events_api: Api, receiver: CallbackReceiver, worker: Runtime
) -> None:
    instance = await provision(**{"event.vendor.type": "webhook"})
    token = instance_token(provision, instance)
    assert instance["eventsCallbackUrl"].endswith(f"/events/twiliov2/{encoded_id(instance['id'])}")

    answer = await post_webhook(
        events_api, instance, inbound("SM100", instance["configuration"]["username"]), token=token
    )
    assert answer.status == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/xml")
    assert "<Response>" in answer.text
    status = {"MessageSid": "SM100", "MessageStatus": "delivered", "SmsStatus": "delivered"}
    assert (await post_webhook(events_api, instance, status, token=token)).status == 200

    got = await receiver.wait_for(lambda r: len(r) >= 2)
    # No order between notifications is promised (D29 has none; D310 posts a run's batch
    # concurrently and a retry comes after later events): each one is looked up by its type.
    by_type = {m["events"][0]["eventType"]: m for m in (r.json()["message"] for r in got)}
    assert len(got) == 2
    assert sorted(by_type) == ["CREATED", "UPDATED"]
    assert {m["events"][0]["objectId"] for m in by_type.values()} == {"SM100"}
    assert by_type["CREATED"]["raw"]["messages"][0]["Body"] == "Hello from a phone"
    for request in got:
        Webhook(SIGNATURE_KEY.encode()).verify(request.body, request.headers)


async def test_a_repeated_webhook_gives_no_second_event(
    provision: Provisioner, events_api: Api, runtime: Runtime
) -> None:
    instance = await provision(**{"event.vendor.type": "webhook"})
    token = instance_token(provision, instance)
    params = inbound("SM200", instance["configuration"]["username"])
    for _ in range(3):
        assert (await post_webhook(events_api, instance, params, token=token)).status == 200
    events = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert [e["objectId"] for e in events] == ["SM200"]


async def test_a_wrong_or_missing_signature_is_refused(
    provision: Provisioner, events_api: Api
) -> None:
    instance = await provision(**{"event.vendor.type": "webhook"})
    params = inbound("SM300", instance["configuration"]["username"])
    for token in ("not the auth token", None):
        answer = await post_webhook(events_api, instance, params, token=token)
        assert answer.status == 403, answer.text
        assert answer.body["message"] == "The webhook signature does not match"
    events = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert events == []


@pytest.mark.parametrize(
    "path", ["events/twiliov2/bm9wZQ==", "events/twiliov2/OTk5OTk5OTk=", "events/nope/MQ=="]
)
async def test_unknown_receivers_are_not_found(events_api: Api, path: str) -> None:
    answer = await events_api.with_auth(None).post(
        path, data="a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status == 404
    assert set(answer.body) == {"requestId", "message"}


async def test_a_polling_instance_takes_no_webhooks(
    provision: Provisioner, events_api: Api
) -> None:
    instance = await provision()
    token = instance_token(provision, instance)
    answer = await post_webhook(events_api, instance, inbound("SM400", "AC1"), token=token)
    assert answer.status == 404


def instance_token(provision: Provisioner, instance: dict[str, Any]) -> str:
    """The Auth Token of the simulator account the instance was made with."""
    return provision.sim.accounts()[instance["configuration"]["username"]]


async def test_an_instance_change_is_seen_by_the_next_webhook(
    provision: Provisioner, events_api: Api
) -> None:
    """The route keeps the instance and its Auth Token between requests (D312); a change to the
    instance reaches the very next webhook."""
    instance = await provision(**{"event.vendor.type": "webhook"})
    token = instance_token(provision, instance)
    account = instance["configuration"]["username"]
    path = f"instances/{instance['id']}"
    assert (
        await post_webhook(events_api, instance, inbound("SM500", account), token=token)
    ).status == 200

    polling = {"configuration": {"event.vendor.type": "polling"}}
    assert (await events_api.patch(path, json=polling)).status == 200
    answer = await post_webhook(events_api, instance, inbound("SM501", account), token=token)
    assert answer.status == 404

    webhook = {"configuration": {"event.vendor.type": "webhook"}}
    assert (await events_api.patch(path, json=webhook)).status == 200
    assert (
        await post_webhook(events_api, instance, inbound("SM502", account), token=token)
    ).status == 200

    disabled = await events_api.delete(f"{path}/enabled")
    assert disabled.status == 200, disabled.text
    answer = await post_webhook(events_api, instance, inbound("SM503", account), token=token)
    assert answer.status == 404
    events = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert sorted(e["objectId"] for e in events) == ["SM500", "SM502"]


async def a_burst_answered(
    provision: Provisioner, events_api: Api, *, callbacks: int, clients: int
) -> tuple[dict[str, Any], list[str]]:
    """A webhook instance and ``callbacks`` inbound messages posted to it by ``clients``
    clients at once, each client posting its share in turn; every one answered 200. The instance
    and the message sids, in order."""
    instance = await provision(**{"event.vendor.type": "webhook"})
    token = instance_token(provision, instance)
    account = instance["configuration"]["username"]
    sids = [f"SM{n:032d}" for n in range(callbacks)]

    async def client(mine: list[str]) -> list[int]:
        statuses = []
        for sid in mine:
            answer = await post_webhook(events_api, instance, inbound(sid, account), token=token)
            statuses.append(answer.status)
        return statuses

    answered = await asyncio.gather(*(client(sids[k::clients]) for k in range(clients)))
    assert [s for statuses in answered for s in statuses] == [200] * callbacks
    return instance, sids


async def test_a_burst_of_webhooks_is_acknowledged_and_each_delivered_once(
    provision: Provisioner, events_api: Api, receiver: CallbackReceiver, worker: Runtime
) -> None:
    """60 callbacks from 12 clients at once: every one answered 200 after its commit, the
    delivery runs deferred after the answers (coalesced, D312), each event delivered once."""
    _, sids = await a_burst_answered(provision, events_api, callbacks=60, clients=12)
    got = await receiver.wait_for(lambda r: len(r) >= 60, seconds=60)
    objects = [r.json()["message"]["events"][0]["objectId"] for r in got]
    assert sorted(objects) == sids
    assert len({r.webhook_id for r in got}) == 60


@pytest.fixture
def dispatch_jobs_counted(events_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Every delivery run queued, counted as procrastinate inserts it (a finished job's row is
    deleted, D66): a trigger copies each new events.dispatch job into a table of the test's."""
    conn = psycopg.connect(events_url, autocommit=True)
    conn.execute("CREATE TABLE dispatch_jobs_seen (job_id bigint PRIMARY KEY)")
    conn.execute(
        """CREATE FUNCTION dispatch_job_seen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.task_name = %s THEN
                INSERT INTO dispatch_jobs_seen VALUES (NEW.id);
            END IF;
            RETURN NEW;
        END $$""".replace("%s", f"'{DISPATCH}'")
    )
    conn.execute(
        "CREATE TRIGGER dispatch_job_seen AFTER INSERT ON procrastinate_jobs"
        " FOR EACH ROW EXECUTE FUNCTION dispatch_job_seen()"
    )
    try:
        yield conn
    finally:
        conn.execute("DROP TRIGGER dispatch_job_seen ON procrastinate_jobs")
        conn.execute("DROP FUNCTION dispatch_job_seen()")
        conn.execute("DROP TABLE dispatch_jobs_seen")
        conn.close()


async def test_a_burst_is_delivered_once_each_by_fewer_runs_than_callbacks(
    provision: Provisioner,
    events_api: Api,
    receiver: CallbackReceiver,
    worker: Runtime,
    dispatch_jobs_counted: psycopg.Connection[Any],
) -> None:
    """120 callbacks from 16 clients at once (D435): each notification delivered once, with
    its own webhook id, by fewer delivery runs than there were callbacks."""
    instance, sids = await a_burst_answered(provision, events_api, callbacks=120, clients=16)

    async def all_notified() -> bool:
        listed = (await events_api.get(f"instances/{instance['id']}/events?pageSize=200")).body
        return len(listed) == 120 and all(e["status"] == "NOTIFIED" for e in listed)

    # Once every event is recorded as notified none is leased again: what arrived is all.
    await eventually(all_notified, seconds=60)
    got = receiver.requests
    assert sorted(r.json()["message"]["events"][0]["objectId"] for r in got) == sids
    assert len({r.webhook_id for r in got}) == 120
    row = dispatch_jobs_counted.execute("SELECT count(*) FROM dispatch_jobs_seen").fetchone()
    assert row is not None
    runs = row[0]
    assert 0 < runs < 120
