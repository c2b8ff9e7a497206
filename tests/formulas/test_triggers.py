"""Triggers over real HTTP: a polled Twilio event, a schedule run by a fake clock, by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from hubgate.db.engine import unit_of_work
from hubgate.events import service as events_service
from hubgate.formulas import triggers
from hubgate.formulas.models import Execution
from hubgate.runtime import Runtime
from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, twilio_instance_body
from tests.formulas.conftest import eventually, finished, make_formula, make_instance, values
from tests.formulas.test_shipped import shipped


async def test_a_polled_twilio_event_runs_a_formula_that_answers_through_the_hub(
    fapi: Api,
    worker: Runtime,
    formulas_hubgate: RunningHubgate,
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    account_sid, auth_token = sim.add_account()
    body = twilio_instance_body(
        sim,
        username=account_sid,
        password=auth_token,
        **{
            "event.notification.enabled": True,
            "event.notification.callback.url": receiver.url,
            "event.poller.refresh_interval": 1,
        },
    )
    created = await fapi.post("instances", json=body)
    assert created.status == 200, created.text
    twilio = created.body
    # The shipped template "when a Twilio message is received, answer it" (item 8).
    formula = await make_formula(fapi, shipped("answer-received-message.json"))
    await make_instance(fapi, formula["id"], {"twilio": twilio["id"], "answer": "Thanks:"})

    async def polls() -> int:
        status = (await fapi.get(f"instances/{twilio['id']}/events/status")).body
        return int(status.get("polls", 0))

    async def primed() -> bool:
        return await polls() >= 1

    await eventually(primed)
    inbound = sim.add_inbound_message(
        "+15558675310", "+15017122661", "is anyone there?", account_sid=account_sid
    )
    runtime = formulas_hubgate.runtime
    async with unit_of_work(runtime.sessions) as session:
        await events_service.make_due(session, twilio["id"], events_service.utcnow())

    listed: list[dict[str, Any]] = []

    async def started() -> bool:
        response = await fapi.get("formulas/instances", params={"elementInstanceId": twilio["id"]})
        assert response.status == 200, response.text
        fi = response.body[0]["id"]
        runs = await fapi.get(f"formulas/instances/{fi}/executions")
        listed[:] = runs.body
        return len(runs.body) >= 1

    await eventually(started)
    execution = await finished(fapi, listed[0]["id"])
    assert execution["status"] == "success", await values(fapi, execution["id"])
    assert listed[0]["objectId"] == inbound["sid"]
    stored = await values(fapi, execution["id"])
    assert stored["received"]["received.continue"] == "true"
    assert '"eventType": "CREATED"' in stored["trigger"]["trigger.event"]
    answers = [m for m in sim.messages(account_sid) if m["body"] == "Thanks: is anyone there?"]
    assert len(answers) == 1
    assert answers[0]["to"] == "+15558675310"


SCHEDULED = {
    "name": "every day at noon",
    "configuration": [{"key": "when", "type": "value"}],
    "triggers": [
        {"type": "scheduled", "properties": {"cron": "${config.when}"}, "onSuccess": ["tick"]}
    ],
    "steps": [
        {
            "name": "tick",
            "type": "script",
            "properties": {"body": "done({at: trigger.scheduledTime});"},
        }
    ],
}


async def executions_of(runtime: Runtime, instance_id: int) -> list[Execution]:
    async with runtime.sessions() as session:
        found = await session.execute(
            select(Execution).where(Execution.formula_instance_id == instance_id)
        )
        return list(found.scalars().all())


async def test_a_schedule_run_by_a_fake_clock_fires_once_per_tick(
    fapi: Api, formulas_hubgate: RunningHubgate
) -> None:
    runtime = formulas_hubgate.runtime
    formula = await make_formula(fapi, SCHEDULED)
    instance = await make_instance(fapi, formula["id"], {"when": "0 0 12 ? * * *"})
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    # The first tick that sees a schedule starts counting from then: no backfill.
    assert await triggers.fire_schedules(runtime, start) == 0
    assert await triggers.fire_schedules(runtime, start + timedelta(hours=11)) == 0
    noon = start + timedelta(hours=12, seconds=3)
    # Four workers' ticks at the same moment: one fire time, one execution.
    fired = await asyncio.gather(*(triggers.fire_schedules(runtime, noon) for _ in range(4)))
    assert sum(fired) == 1
    assert await triggers.fire_schedules(runtime, noon + timedelta(hours=1)) == 0
    # Three days later with nobody ticking: the latest fire time only, not three.
    assert await triggers.fire_schedules(runtime, noon + timedelta(days=3)) == 1
    runs = await executions_of(runtime, instance["id"])
    assert [r.trigger["scheduledTime"] for r in sorted(runs, key=lambda r: r.id)] == [
        (start + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        (start + timedelta(days=3, hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]


async def test_a_schedule_more_often_than_the_minimum_is_refused(fapi: Api) -> None:
    formula = await make_formula(fapi, SCHEDULED)
    response = await fapi.post(
        f"formulas/{formula['id']}/instances",
        json={"name": "too often", "configuration": {"when": "0/30 * * 1/1 * ? *"}},
    )
    assert response.status == 400
    assert "more often than every 15 minutes" in response.body["message"]


async def test_a_hub_call_through_the_instance_runs_an_element_request_formula(
    fapi: Api, worker: Runtime, twilio: dict[str, Any]
) -> None:
    formula = await make_formula(
        fapi,
        {
            "name": "on send",
            "configuration": [{"key": "twilio", "type": "elementInstance"}],
            "triggers": [
                {
                    "type": "elementRequest",
                    "properties": {
                        "elementInstanceId": "${config.twilio}",
                        "method": "POST",
                        "api": "/hubs/messaging/messages",
                    },
                    "onSuccess": ["seen"],
                }
            ],
            "steps": [
                {
                    "name": "seen",
                    "type": "script",
                    "properties": {
                        "body": "done({sid: trigger.response.body.sid, "
                        "text: trigger.request.body.Body});"
                    },
                }
            ],
        },
    )
    instance = await make_instance(fapi, formula["id"], {"twilio": twilio["id"]})
    hub = fapi.with_auth(f"Element {twilio['token']}")
    listed = await hub.get("hubs/messaging/messages")  # a GET is not the trigger's call
    assert listed.status == 200, listed.text
    sent = await hub.post(
        "hubs/messaging/messages",
        json={"To": "+15558675310", "From": "+15017122661", "Body": "watched"},
    )
    assert sent.status == 200, sent.text
    runs = (await fapi.get(f"formulas/instances/{instance['id']}/executions")).body
    assert len(runs) == 1
    execution = await finished(fapi, runs[0]["id"])
    assert execution["status"] == "success"
    assert (await values(fapi, execution["id"]))["seen"] == {
        "seen.sid": sent.body["sid"],
        "seen.text": "watched",
    }
