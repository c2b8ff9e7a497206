"""The shipped templates (item 8): each is a file ``POST /formulas`` takes, and runs over real
HTTP against the simulators."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from hubgate.db.engine import unit_of_work
from hubgate.events import service as events_service
from hubgate.formulas.catalog import shipped_template, shipped_templates
from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver
from sims.sendgrid import SendGridSimulator
from sims.slack import SlackSimulator
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate
from tests.elements import slack_flow
from tests.elements.test_sendgrid import SENDER
from tests.elements.test_sendgrid import provision as provision_sendgrid
from tests.events.conftest import provision_on
from tests.formulas.conftest import (
    eventually,
    finished,
    make_formula,
    make_instance,
    run_manually,
    values,
)


def shipped(name: str) -> dict[str, Any]:
    """The body of shipped template ``name`` (its file name), a copy a test may change."""
    found = shipped_template(name.removesuffix(".json"))
    assert found is not None, name
    return copy.deepcopy(found.body)


@pytest.mark.parametrize("key", [t.key for t in shipped_templates()])
async def test_each_shipped_template_is_accepted(fapi: Api, key: str) -> None:
    formula = await make_formula(fapi, shipped(key))
    assert formula["name"] == shipped(key)["name"]


def test_the_catalog_lists_the_three_templates_of_the_issue() -> None:
    assert sorted(t.key for t in shipped_templates()) == [
        "answer-received-message",
        "daily-message-count",
        "delivered-to-slack",
    ]
    assert {t.trigger_type for t in shipped_templates()} == {"event", "scheduled"}


async def test_the_daily_count_emails_yesterdays_message_count_through_sendgrid(
    fapi: Api,
    worker: Runtime,
    twilio: dict[str, Any],
    sim: TwilioSimulator,
    sendgrid: SendGridSimulator,
) -> None:
    mail = await provision_sendgrid(fapi, sendgrid)
    body = shipped("daily-message-count.json")
    # Run by hand: the same steps the 08:00 schedule runs.
    body["triggers"] = [{"type": "manual", "properties": {}, "onSuccess": ["day"]}]
    formula = await make_formula(fapi, body)
    instance = await make_instance(
        fapi,
        formula["id"],
        {"twilio": twilio["id"], "sendgrid": mail["id"], "email": "ops@example.test"},
    )
    account = twilio["configuration"]["username"]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for text in ("one", "two"):
        sim.add_inbound_message(
            "+15558675310", "+15017122661", text, account_sid=account, at=yesterday
        )
    sim.add_inbound_message("+15558675310", "+15017122661", "today", account_sid=account)
    run = await run_manually(fapi, instance["id"], {})
    execution = await finished(fapi, run)
    stored = await values(fapi, run)
    assert execution["status"] == "success", stored
    assert stored["report"]["report.count"] == "2"
    response = json.loads(stored["send"]["send.response"])
    assert response["code"] == "200", response
    sent_id = json.loads(response["body"])["id"]
    day = yesterday.strftime("%Y-%m-%d")
    assert [(m["to_email"], m["from_email"], m["subject"]) for m in sendgrid.sent(sent_id)] == [
        ("ops@example.test", SENDER, f"Messages on {day}")
    ]


async def test_a_delivered_message_is_posted_to_the_slack_channel(
    fapi: Api,
    worker: Runtime,
    formulas_hubgate: RunningHubgate,
    sim: TwilioSimulator,
    slack: SlackSimulator,
    receiver: CallbackReceiver,
    http: aiohttp.ClientSession,
) -> None:
    twilio = await provision_on(fapi, sim, receiver)
    workspace = await slack_flow.provision(fapi, http, slack)
    channel = slack.channel_named("random")
    formula = await make_formula(fapi, shipped("delivered-to-slack.json"))
    await make_instance(
        fapi, formula["id"], {"twilio": twilio["id"], "slack": workspace["id"], "channel": channel}
    )

    async def primed() -> bool:
        status = (await fapi.get(f"instances/{twilio['id']}/events/status")).body
        return int(status.get("polls", 0)) >= 1

    await eventually(primed)
    hub = fapi.with_auth(f"Element {twilio['token']}")
    sent = await hub.post(
        "hubs/messaging/messages",
        json={"To": "+15558675310", "From": "+15017122661", "Body": "your code is 4711"},
    )
    assert sent.status == 200, sent.text
    sim.set_message_status(sent.body["sid"], "delivered")
    runtime = formulas_hubgate.runtime
    async with unit_of_work(runtime.sessions) as session:
        await events_service.make_due(session, twilio["id"], events_service.utcnow())

    def posted() -> list[str]:
        return [str(m.get("text")) for m in slack.channels[channel].messages]

    async def arrived() -> bool:
        return bool(posted())

    await eventually(arrived)
    assert posted() == ["Delivered to +15558675310: your code is 4711"]
    # Every execution the message's events started ended well: the one that posted, and any
    # whose filter let its event pass by (the message's creation, while it was queued).
    fi = (await fapi.get("formulas/instances", params={"elementInstanceId": twilio["id"]})).body
    runs = (await fapi.get(f"formulas/instances/{fi[0]['id']}/executions")).body
    ended = [await finished(fapi, run["id"]) for run in runs]
    assert {e["status"] for e in ended} == {"success"}
    assert all(e["objectId"] == sent.body["sid"] for e in ended)
