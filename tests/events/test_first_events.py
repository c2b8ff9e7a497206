"""No CREATED event lost at the start (issue 9, item 3; D28, D131).

Events are enabled by a PATCH; three messages are sent through the hub at once, right after;
only then does a worker (a real ``hubgate worker`` process) start, so its very first poll is
the one that sees them. Made after the enabling commit, all three reach the receiver as
CREATED, although that first poll also records what was there before.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from hubgate.events import service
from sims.receiver import CallbackReceiver, Received
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, twilio_instance_body
from tests.events.conftest import Cluster
from tests.logwatch import remember_secret
from tests.results import publish


def created(requests: list[Received]) -> list[str]:
    return [
        event["objectId"]
        for request in requests
        for event in request.json()["message"]["events"]
        if event["eventType"] == "CREATED"
    ]


async def test_messages_sent_right_after_enabling_events_all_arrive_as_created(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    api, _ = cluster_api
    sid, token = sim.add_account()
    body = twilio_instance_body(
        sim,
        username=sid,
        password=token,
        **{"event.notification.callback.url": receiver.url, "event.poller.refresh_interval": 1},
    )
    answer = await api.post("instances", json=body)
    assert answer.status == 200, answer.text
    instance: dict[str, Any] = answer.body
    remember_secret(instance["token"])
    # From before events were on: the first poll records it and reports nothing of it.
    sim.add_inbound_message(
        "+15005550006",
        "+15005550001",
        "before",
        account_sid=sid,
        at=service.utcnow() - timedelta(hours=1),
    )

    enabled = await api.patch(
        f"instances/{instance['id']}", json={"configuration": {"event.notification.enabled": True}}
    )
    assert enabled.status == 200, enabled.text
    # The poller exists from that commit: no tick has run (no worker yet) and it is scheduled.
    status = (await api.get(f"instances/{instance['id']}/events/status")).body
    assert status["nextPollDate"] is not None, status
    assert status["polls"] == 0

    hub = api.with_auth(f"Element {instance['token']}")
    sent = await asyncio.gather(
        *(
            hub.post(
                "hubs/messaging/messages",
                json={"To": "+15005550006", "From": "+15005550001", "Body": f"hello {n}"},
            )
            for n in range(3)
        )
    )
    assert [s.status for s in sent] == [200, 200, 200], [s.text for s in sent]
    sids = sorted(s.body["sid"] for s in sent)
    for message in sids:
        sim.set_message_status(message, "sent")  # the carrier accepts it: date_sent is today

    cluster.worker()
    # A timeout is not the failure: the count below says what came, and is published.
    with contextlib.suppress(TimeoutError):
        await receiver.wait_for(lambda r: len(created(r)) >= 3, seconds=60)
    received = created(receiver.requests)
    publish(
        "concurrency_first_events",
        {"messages_sent": len(sids), "created_events_received": len(received)},
    )
    assert sorted(received) == sids, cluster.logs()
    status = (await api.get(f"instances/{instance['id']}/events/status")).body
    assert status["polls"] >= 1
    assert status["lastError"] is None
