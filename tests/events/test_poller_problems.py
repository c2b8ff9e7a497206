"""A poller that cannot run says so (issue 9, item 4).

Entries of ``event.poller.configuration`` that name no usable hub path are refused on write,
with the resource and the field in the message. A row written before that check (or by hand)
still gets its poller, which never calls the vendor and shows why as ``lastError`` in the
events status.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from hubgate.events.tasks import run_poll
from hubgate.runtime import Runtime
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body
from tests.events.conftest import Provisioner
from tests.events.test_poller import FakeHub, sync

BAD = {
    '{"messages":{}}': "messages.url",
    '{"messages":"x"}': "messages must be an object",
    '{"messages":{"url":5}}': "messages.url",
    '{"calls":{"url":"/hubs/messaging/calls","pollDelay":"soon"}}': "calls.pollDelay",
}


async def test_pollers_that_cannot_run_are_refused_on_every_write(
    provision: Provisioner, events_api: Api
) -> None:
    instance = await provision()
    path = f"instances/{instance['id']}"
    entries = await events_api.get(f"{path}/configuration")
    entry_id = next(e["id"] for e in entries.body if e["key"] == "event.poller.configuration")
    for value, named in BAD.items():
        refused = [
            await events_api.patch(
                path, json={"configuration": {"event.poller.configuration": value}}
            ),
            await events_api.patch(
                f"{path}/configuration/{entry_id}", json={"propertyValue": value}
            ),
            await events_api.post("instances", json=new_instance(provision, value)),
        ]
        for answer in refused:
            assert answer.status == 400, (value, answer.text)
            assert set(answer.body) == {"requestId", "message"}
            assert "event.poller.configuration" in answer.body["message"]
            assert named in answer.body["message"], (value, answer.body)
    # Nothing of it was kept.
    kept = (await events_api.get(path)).body["configuration"]["event.poller.configuration"]
    assert kept == instance["configuration"]["event.poller.configuration"]


def new_instance(provision: Provisioner, poller: str) -> dict[str, Any]:
    sid, token = provision.sim.add_account()
    settings = {
        "username": sid,
        "password": token,
        "event.notification.enabled": True,
        "event.notification.callback.url": provision.receiver.url,
        "event.poller.configuration": poller,
    }
    return twilio_instance_body(provision.sim, **settings)


async def test_a_stored_poller_that_cannot_run_has_a_last_error(
    provision: Provisioner,
    sim: TwilioSimulator,
    runtime: Runtime,
    events_api: Api,
    events_url: str,
) -> None:
    instance = await provision()
    # As an older Hubgate could store it: the write checks did not exist then.
    with psycopg.connect(events_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE instances SET version = version + 1, configuration = configuration"
            " || jsonb_build_object('event.poller.configuration', %s::text) WHERE id = %s",
            (json.dumps({"messages": {"url": 5}}), instance["id"]),
        )
    await sync(runtime)
    status = (await events_api.get(f"instances/{instance['id']}/events/status")).body
    assert "messages.url must be a hub path" in (status["lastError"] or ""), status

    hub = FakeHub(sim)
    assert await run_poll(runtime, instance["id"], "messages", fetch=hub) == []
    assert hub.urls == []  # the vendor was not called with a URL that cannot work
    status = (await events_api.get(f"instances/{instance['id']}/events/status")).body
    assert status["lastError"].startswith("Cannot poll: messages.url"), status
    assert status["polls"] == 0
