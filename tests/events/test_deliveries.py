"""Deliveries (D29) by a real worker to a real receiver over HTTP: body, headers, retries,
410, failure after the last attempt, redelivery, the sweep, egress."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

from sqlalchemy import select
from standardwebhooks import Webhook

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.events.changes import CREATED, Change, digest
from hubgate.events.models import Event
from hubgate.events.signing import standard_webhooks_secret
from hubgate.events.tasks import defer_delivery, run_delivery
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver
from tests.conftest import Api
from tests.events.conftest import SIGNATURE_KEY, Provisioner, eventually


async def make_events(
    runtime: Runtime, instance_id: int, count: int, *, defer: bool = True
) -> list[str]:
    """Events as a poll would make them, committed; deliveries deferred after the commit."""
    found = [
        Change("messages", f"SM{instance_id}x{i}", CREATED, {"sid": f"SM{i}"}, digest({"i": i}))
        for i in range(count)
    ]
    async with unit_of_work(runtime.sessions) as session:
        instance = await session.get(Instance, instance_id)
        assert instance is not None
        ids = await service.record_vendor_changes(
            session, runtime, instance, found, service.utcnow()
        )
    if defer:
        for event_id in ids:
            await defer_delivery(runtime.jobs, event_id)
    return [str(i) for i in ids]


async def event(api: Api, instance_id: int, event_id: str) -> dict[str, Any]:
    answer = await api.get(f"instances/{instance_id}/events/{event_id}")
    assert answer.status == 200, answer.text
    body: dict[str, Any] = answer.body
    return body


async def reaches(api: Api, instance_id: int, event_id: str, status: str) -> None:
    async def check() -> bool:
        return (await event(api, instance_id, event_id))["status"] == status

    await eventually(check)


async def test_a_notification_has_the_d29_body_and_both_signatures(
    provision: Provisioner,
    runtime: Runtime,
    worker: Runtime,
    receiver: CallbackReceiver,
    events_api: Api,
) -> None:
    instance = await provision()
    (event_id,) = await make_events(runtime, instance["id"], 1)
    (request,) = await receiver.wait_for(lambda r: len(r) >= 1)

    assert request.headers["content-type"] == "application/json"
    assert request.headers["elements-webhook-id"] == event_id
    assert request.headers["webhook-id"] == event_id
    mac = hmac.new(SIGNATURE_KEY.encode(), request.body, hashlib.sha256).digest()
    assert (
        request.headers["elements-webhook-signature"] == "sha256=" + base64.b64encode(mac).decode()
    )
    Webhook(SIGNATURE_KEY.encode()).verify(request.body, request.headers)
    Webhook(standard_webhooks_secret(SIGNATURE_KEY)).verify(request.body, request.headers)

    message = json.loads(request.body)["message"]
    assert list(message) == [
        "eventId",
        "instanceId",
        "instanceName",
        "elementKey",
        "accountId",
        "userId",
        "events",
        "raw",
    ]
    assert message["eventId"] == event_id
    assert message["instanceId"] == instance["id"]
    assert message["instanceName"] == instance["name"]
    assert message["elementKey"] == "twiliov2"
    assert message["userId"] == instance["user"]["id"]
    (one,) = message["events"]
    assert set(one) == {
        "objectType",
        "objectId",
        "eventType",
        "elementKey",
        "hubKey",
        "date",
        "pollDate",
    }
    assert (one["objectType"], one["eventType"], one["hubKey"]) == (
        "messages",
        "CREATED",
        "messaging",
    )
    assert message["raw"] == {"messages": [{"sid": "SM0"}]}

    await reaches(events_api, instance["id"], event_id, "NOTIFIED")
    record = await event(events_api, instance["id"], event_id)
    (attempt,) = record["attempts"]
    assert attempt["statusCode"] == 200
    assert attempt["latencyMs"] >= 0
    assert json.loads(attempt["response"]) == {"received": True}
    assert record["notifiedDate"] is not None


async def test_failing_three_times_then_succeeding_keeps_the_same_webhook_id(
    provision: Provisioner,
    runtime: Runtime,
    worker: Runtime,
    receiver: CallbackReceiver,
    events_api: Api,
) -> None:
    instance = await provision()
    receiver.fail_next(3, status=503)
    (event_id,) = await make_events(runtime, instance["id"], 1)
    got = await receiver.wait_for(lambda r: len(r) >= 4)
    assert [r.status for r in got] == [503, 503, 503, 200]
    assert {r.webhook_id for r in got} == {event_id}
    assert len({r.body for r in got}) == 1
    assert len({r.headers["elements-webhook-signature"] for r in got}) == 1
    for request in got:
        Webhook(SIGNATURE_KEY.encode()).verify(request.body, request.headers)

    await reaches(events_api, instance["id"], event_id, "NOTIFIED")
    record = await event(events_api, instance["id"], event_id)
    assert [a["statusCode"] for a in record["attempts"]] == [503, 503, 503, 200]


async def test_after_the_last_attempt_the_event_fails_and_can_be_redelivered(
    provision: Provisioner,
    runtime: Runtime,
    worker: Runtime,
    receiver: CallbackReceiver,
    events_api: Api,
) -> None:
    instance = await provision()
    receiver.fail_next(4, status=500)  # the first try and the three of the test schedule
    (event_id,) = await make_events(runtime, instance["id"], 1)

    await reaches(events_api, instance["id"], event_id, "FAILED")
    record = await event(events_api, instance["id"], event_id)
    assert len(record["attempts"]) == 4
    assert record["failureReason"] == "No 2xx answer after 4 attempts; last: HTTP 500"
    assert len(receiver.requests) == 4

    answer = await events_api.post(f"instances/{instance['id']}/events/{event_id}/redeliver")
    assert answer.status == 200, answer.text
    assert answer.body["status"] == "NEW"
    await receiver.wait_for(lambda r: len(r) >= 5)

    await reaches(events_api, instance["id"], event_id, "NOTIFIED")
    assert {r.webhook_id for r in receiver.requests} == {event_id}


async def test_410_disables_the_instances_notifications(
    provision: Provisioner,
    runtime: Runtime,
    worker: Runtime,
    receiver: CallbackReceiver,
    events_api: Api,
) -> None:
    instance = await provision()
    receiver.fail_next(1, status=410)
    (event_id,) = await make_events(runtime, instance["id"], 1)

    await reaches(events_api, instance["id"], event_id, "FAILED")
    assert len(receiver.requests) == 1
    updated = (await events_api.get(f"instances/{instance['id']}")).body
    assert updated["configuration"]["event.notification.enabled"] == "false"
    assert updated["eventsEnabled"] is False


async def test_a_poll_of_25_changes_sends_three_notifications(
    provision: Provisioner, runtime: Runtime, worker: Runtime, receiver: CallbackReceiver
) -> None:
    instance = await provision()
    ids = await make_events(runtime, instance["id"], 25)
    got = await receiver.wait_for(lambda r: len(r) >= 3)
    sizes = sorted(len(r.json()["message"]["events"]) for r in got)
    assert sizes == [5, 10, 10]
    assert {r.webhook_id for r in got} == set(ids)
    for request in got:
        message = request.json()["message"]
        assert len(message["raw"]["messages"]) == len(message["events"])


async def test_the_sweep_delivers_an_event_whose_job_was_lost(
    provision: Provisioner, runtime: Runtime, worker: Runtime, receiver: CallbackReceiver
) -> None:
    """A crash between the commit and the defer leaves an event with no job."""
    instance = await provision()
    (event_id,) = await make_events(runtime, instance["id"], 1, defer=False)
    got = await receiver.wait_for(lambda r: len(r) >= 1, seconds=15)
    assert got[0].webhook_id == event_id


async def test_a_callback_url_egress_refuses_fails_without_a_connection(
    provision: Provisioner, runtime: Runtime, worker: Runtime, events_api: Api
) -> None:
    instance = await provision()
    # Configuring a literal private callback URL is refused (D179), so the row is written as
    # one stored before that rule, or under a wider HUBGATE_EGRESS_ALLOW, would hold it: the
    # delivery must still refuse to connect.
    async with unit_of_work(runtime.sessions) as session:
        row = await session.get(Instance, instance["id"])
        assert row is not None
        row.configuration = {
            **row.configuration,
            "event.notification.callback.url": "http://169.254.169.254/latest",
        }
    (event_id,) = await make_events(runtime, instance["id"], 1)

    await reaches(events_api, instance["id"], event_id, "FAILED")
    record = await event(events_api, instance["id"], event_id)
    assert {a["statusCode"] for a in record["attempts"]} == {None}
    assert all("refused" in a["error"] for a in record["attempts"])


async def test_notifications_turned_off_fail_pending_events_with_the_reason(
    provision: Provisioner, runtime: Runtime, events_api: Api
) -> None:
    instance = await provision()
    (event_id,) = await make_events(runtime, instance["id"], 1, defer=False)
    answer = await events_api.patch(
        f"instances/{instance['id']}", json={"configuration": {"event.notification.enabled": False}}
    )
    assert answer.status == 200
    await run_delivery(runtime, uuid.UUID(event_id))
    async with runtime.sessions() as session:
        status = (await session.execute(select(Event.status, Event.failure_reason))).one()
    assert status == ("FAILED", "Event notifications are disabled for this instance")


async def test_two_jobs_for_one_event_send_it_once(
    provision: Provisioner, runtime: Runtime, receiver: CallbackReceiver, events_api: Api
) -> None:
    """A sweep or a rescue may queue a second job while an attempt is in flight: the lease
    lets only one of them send."""
    instance = await provision()
    (event_id,) = await make_events(runtime, instance["id"], 1, defer=False)
    receiver.delay = 0.5
    outcomes = await asyncio.gather(
        run_delivery(runtime, uuid.UUID(event_id)), run_delivery(runtime, uuid.UUID(event_id))
    )
    assert sorted(outcomes) == ["HTTP 200", "nothing to send"]
    assert len(receiver.requests) == 1
    record = await event(events_api, instance["id"], event_id)
    assert record["status"] == "NOTIFIED"
    assert len(record["attempts"]) == 1


async def test_the_same_job_run_again_takes_its_lease_back(
    provision: Provisioner, runtime: Runtime, receiver: CallbackReceiver
) -> None:
    """A job rescued from a dead worker keeps its id, so it need not wait out its own lease."""
    instance = await provision()
    (event_id,) = await make_events(runtime, instance["id"], 1, defer=False)
    async with unit_of_work(runtime.sessions) as session:
        taken = await service.prepare_delivery(
            session, runtime, uuid.UUID(event_id), service.utcnow(), owner=41
        )
    assert taken is not None  # then the worker died: no attempt was recorded
    assert await run_delivery(runtime, uuid.UUID(event_id), owner=7) == "nothing to send"
    assert await run_delivery(runtime, uuid.UUID(event_id), owner=41) == "HTTP 200"
    assert len(receiver.requests) == 1
