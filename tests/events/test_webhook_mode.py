"""Twilio webhook mode end to end (D61, D31) over real HTTP: a message sent through the hub
carries the instance's events URL as its StatusCallback, the simulator posts its status
changes there signed as Twilio signs, and they reach the tenant's receiver as UPDATED events
without any polling."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.events.conftest import Provisioner


def sent_form(sim: TwilioSimulator, account: str) -> dict[str, Any]:
    """The form of the last message the simulator was asked to create for ``account``."""
    path = f"/2010-04-01/Accounts/{account}/Messages.json"
    (request,) = [r for r in sim.requests if r.method == "POST" and r.path == path][-1:]
    return dict(request.form)


async def test_a_message_sent_in_webhook_mode_reports_its_status_changes(
    provision: Provisioner,
    worker: Runtime,
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    instance = await provision(**{"event.vendor.type": "webhook"})
    account = instance["configuration"]["username"]
    hub = provision.api.with_auth(f"Element {instance['token']}")
    answer = await hub.post(
        "hubs/messaging/messages",
        json={"To": "+15005550006", "From": "+15005550001", "Body": "hello"},
    )
    assert answer.status == 200, answer.text
    sid = answer.body["sid"]
    assert sent_form(sim, account)["StatusCallback"] == instance["eventsCallbackUrl"]

    sim.set_message_status(sid, "sent")
    sim.set_message_status(sid, "delivered")
    got = await receiver.wait_for(lambda r: len(r) >= 2, seconds=60)

    statuses = []
    for request in got:
        message = request.json()["message"]
        (change,) = message["events"]
        assert (change["objectType"], change["objectId"], change["eventType"]) == (
            "messages",
            sid,
            "UPDATED",
        )
        statuses.append(message["raw"]["messages"][0]["MessageStatus"])
    assert sorted(statuses) == ["delivered", "sent"]
    # Hubgate accepted both callbacks: their signatures held (D31).
    assert [c.status for c in sim.status_callbacks] == [200, 200]


async def test_a_callers_status_callback_is_kept_and_signed_as_twilio_signs(
    provision: Provisioner, sim: TwilioSimulator, receiver: CallbackReceiver
) -> None:
    """The caller's own StatusCallback wins over the events URL; what the simulator posts
    there passes Twilio's own validator."""
    instance = await provision(**{"event.vendor.type": "webhook"})
    account = instance["configuration"]["username"]
    hub = provision.api.with_auth(f"Element {instance['token']}")
    own = {"To": "+15005550006", "From": "+15005550001", "Body": "own"}
    answer = await hub.post("hubs/messaging/messages", json={**own, "StatusCallback": receiver.url})
    assert answer.status == 200, answer.text
    assert sent_form(sim, account)["StatusCallback"] == receiver.url

    sim.set_message_status(answer.body["sid"], "sent")
    (request,) = await receiver.wait_for(lambda r: len(r) >= 1, seconds=30)
    form = dict(parse_qsl(request.body.decode()))
    assert form["MessageStatus"] == "sent"
    assert form["MessageSid"] == answer.body["sid"]
    validator = RequestValidator(sim.accounts()[account])
    assert validator.validate(receiver.url, form, request.headers["x-twilio-signature"])


async def test_a_polling_instance_sends_no_status_callback(
    provision: Provisioner, sim: TwilioSimulator
) -> None:
    instance = await provision()
    hub = provision.api.with_auth(f"Element {instance['token']}")
    answer = await hub.post(
        "hubs/messaging/messages",
        json={"To": "+15005550006", "From": "+15005550001", "Body": "polled"},
    )
    assert answer.status == 200, answer.text
    assert "StatusCallback" not in sent_form(sim, instance["configuration"]["username"])
