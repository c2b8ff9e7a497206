"""The instance page shows the instance's events once the events feature records them."""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body
from tests.console.conftest import ConsoleClient


async def test_events_section_lists_the_instances_events(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    body = twilio_instance_body(
        sim,
        **{
            "event.notification.enabled": True,
            "event.vendor.type": "webhook",
            "event.notification.callback.url": "http://127.0.0.1:9/callback",
        },
    )
    created = (await api.post("instances", json=body)).body
    page_path = f"/instances/{created['id']}"
    before = (await signed_in.get(page_path)).text()
    assert "Events" in before
    assert "No event yet." in before

    url = created["eventsCallbackUrl"]
    params = {
        "MessageSid": "SM" + "7" * 32,
        "AccountSid": sim.account_sid,
        "From": "+15005550006",
        "To": "+15005550001",
        "Body": "hello",
        "SmsStatus": "received",
    }
    signature = RequestValidator(sim.auth_token).compute_signature(url, params)
    answer = await api.with_auth(None).post(
        url[len(api.base) :],
        data=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    assert answer.status == 200, answer.text

    after = await signed_in.get(page_path)
    assert f"<code>messages SM{'7' * 32}</code></td><td>CREATED</td>" in after.html
    assert "No event yet." not in after.text()
