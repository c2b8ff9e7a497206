"""End to end over real HTTP: a message sent through the hub to the simulator comes back to a
callback receiver as CREATED, then UPDATED when the carrier delivers it; signed; never twice.

The worker polls through the hub pipeline (hub.service.fetch_all) and the simulator's Twilio
API. Time is driven by data, not by a shorter minute: "an interval passes" makes the poller
due now, which is what the clock would do sixty seconds later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import Counter
from typing import Any

from standardwebhooks import Webhook

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver, Received
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api
from tests.events.conftest import SIGNATURE_KEY, Provisioner, eventually


async def interval_passes(runtime: Runtime, instance_id: int) -> None:
    async with unit_of_work(runtime.sessions) as session:
        await service.make_due(session, instance_id, service.utcnow())


def kinds(requests: list[Received]) -> list[tuple[str, str, str]]:
    found = []
    for request in requests:
        for event in request.json()["message"]["events"]:
            status = request.json()["message"]["raw"]["messages"][0]["status"]
            found.append((event["objectId"], event["eventType"], status))
    return found


async def test_a_sent_message_is_created_then_updated_at_the_callback(
    provision: Provisioner,
    sim: TwilioSimulator,
    events_api: Api,
    runtime: Runtime,
    worker: Runtime,
    receiver: CallbackReceiver,
) -> None:
    instance = await provision()
    hub = events_api.with_auth(f"Element {instance['token']}")

    async def primed() -> bool:
        return await poll_count(events_api, instance["id"]) == 1

    await eventually(primed)  # the first poll records what exists and reports nothing

    sent = await hub.post(
        "hubs/messaging/messages",
        json={"To": "+15005550006", "From": "+15005550001", "Body": "Hello from Hubgate"},
    )
    assert sent.status == 200, sent.text
    sid = sent.body["sid"]
    sim.set_message_status(sid, "sent")  # the carrier accepts it: Twilio stamps date_sent
    await interval_passes(runtime, instance["id"])
    await receiver.wait_for(lambda r: len(r) >= 1)
    assert kinds(receiver.requests) == [(sid, "CREATED", "sent")]

    sim.set_message_status(sid, "delivered")
    await interval_passes(runtime, instance["id"])
    await receiver.wait_for(lambda r: len(r) >= 2)
    assert kinds(receiver.requests) == [(sid, "CREATED", "sent"), (sid, "UPDATED", "delivered")]

    # Quiet polls afterwards report nothing again: no event twice in a healthy run.
    polled_before = await poll_count(events_api, instance["id"])
    for _ in range(2):
        await interval_passes(runtime, instance["id"])

        async def polled(expected: int = polled_before + 1) -> bool:
            return await poll_count(events_api, instance["id"]) >= expected

        await eventually(polled)
        polled_before += 1
    assert len(receiver.requests) == 2
    assert Counter(r.webhook_id for r in receiver.requests).most_common(1)[0][1] == 1

    for request in receiver.requests:
        Webhook(SIGNATURE_KEY.encode()).verify(request.body, request.headers)
        mac = hmac.new(SIGNATURE_KEY.encode(), request.body, hashlib.sha256).digest()
        expected = "sha256=" + base64.b64encode(mac).decode()
        assert request.headers["elements-webhook-signature"] == expected
    message: dict[str, Any] = receiver.requests[0].json()["message"]
    assert message["raw"]["messages"][0]["body"] == "Hello from Hubgate"
    records = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert [r["status"] for r in records] == ["NOTIFIED", "NOTIFIED"]


async def poll_count(api: Api, instance_id: int) -> int:
    """Committed polls, as the instance's events status reports them."""
    status = (await api.get(f"instances/{instance_id}/events/status")).body
    return int(status.get("polls", 0))
