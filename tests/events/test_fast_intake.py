"""Vendor webhooks answered before FastAPI's stack (events.fastintake) answer exactly as the
FastAPI route does: the same status, headers and body for the same request, errors included,
and what they take is recorded the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from starlette.types import Receive, Scope, Send
from twilio.request_validator import RequestValidator

from hubgate.app import HubgateApp
from hubgate.runtime import Runtime
from tests.conftest import Api, RunningHubgate
from tests.events.conftest import Provisioner
from tests.events.test_poller import statements
from tests.events.test_twilio_webhooks import inbound, instance_token
from tests.formulas.conftest import make_formula, make_instance
from tests.formulas.test_shipped import shipped
from tests.hub.test_fastpath import Answer, ask, served_below_fast_paths


@pytest.fixture
async def through_fastapi(events_hubgate: RunningHubgate) -> AsyncIterator[str]:
    """The same running app, entered below its fast paths: FastAPI's routing answers."""
    async with served_below_fast_paths(events_hubgate.app) as url:
        yield url


def signed(instance: dict[str, Any], params: dict[str, str], token: str) -> dict[str, Any]:
    """The keyword arguments of a form POST signed as Twilio signs it."""
    signature = RequestValidator(token).compute_signature(instance["eventsCallbackUrl"], params)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    }
    return {"headers": headers, "data": urlencode(params)}


async def test_raw_path_and_fastapi_answer_alike(
    provision: Provisioner,
    events_api: Api,
    events_hubgate: RunningHubgate,
    through_fastapi: str,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = events_hubgate.app
    assert isinstance(app, HubgateApp)
    assert app.intake_path is not None
    answered: list[str] = []
    answer = app.intake_path.answer

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        answered.append(scope["path"])
        # The FastAPI route's own, so that metrics and traces carry the same template.
        assert scope["route"].path == "/events/{element_key}/{encoded_id}"
        await answer(scope, receive, send)

    monkeypatch.setattr(app.intake_path, "answer", counted)
    webhook = await provision(**{"event.vendor.type": "webhook"})
    disabled = await provision(**{"event.vendor.type": "webhook"})
    polling = await provision()
    token = instance_token(provision, webhook)
    account = webhook["configuration"]["username"]
    assert (await events_api.delete(f"instances/{disabled['id']}/enabled")).status == 200
    path = webhook["eventsCallbackUrl"][len(events_hubgate.url) :]
    origin = {"Origin": "https://app.example.com"}

    def to(instance: dict[str, Any]) -> str:
        return str(instance["eventsCallbackUrl"][len(events_hubgate.url) :])

    status = {"MessageSid": "SM900", "MessageStatus": "delivered", "SmsStatus": "delivered"}
    json_body = {"headers": {"Content-Type": "application/json"}, "data": b'{"MessageSid":"x"}'}
    requests: list[tuple[str, dict[str, Any]]] = [
        (path, signed(webhook, status, token)),
        (path, signed(webhook, {**status, "MessageStatus": "sent"}, "not the token")),
        (path, {"data": urlencode(status)}),  # no signature: 403
        (path, json_body),  # not a form and not signed
        (path, {**signed(webhook, status, token), "params": {"x": "1"}}),  # signed another URL
        (to(disabled), signed(disabled, status, instance_token(provision, disabled))),
        (to(polling), signed(polling, status, instance_token(provision, polling))),
        ("/elements/api-v2/events/twiliov2/OTk5OTk5OTk=", signed(webhook, status, token)),
        ("/elements/api-v2/events/twiliov2/bm9wZQ==", {"data": "a=b", "headers": origin}),
        ("/elements/api-v2/events/nosuch/MQ==", {"data": "a=b"}),
        (path, {"big": "declared"}),  # 413 before the app
        (path, {"big": "chunked"}),  # 413 while reading
    ]
    statuses = set()
    for where, kwargs in requests:
        before = len(answered)
        raw: Answer = await ask(http, events_hubgate.url, "POST", where, **dict(kwargs))
        assert answered[before:] == [where], "the raw path answered"
        routed = await ask(http, through_fastapi, "POST", where, **dict(kwargs))
        assert answered[before + 1 :] == [], "FastAPI's route answered"
        assert raw == routed, (where, kwargs)
        statuses.add(raw[0])
    assert statuses == {200, 403, 404, 413}, statuses

    # A callback each way: both recorded, each once (the repeat above gave nothing new).
    for base, sid in ((events_hubgate.url, "SM901"), (through_fastapi, "SM902")):
        taken = await ask(http, base, "POST", path, **signed(webhook, inbound(sid, account), token))
        assert taken[0] == 200
    events = (await events_api.get(f"instances/{webhook['id']}/events")).body
    assert sorted((e["objectId"], e["eventType"]) for e in events) == [
        ("SM900", "UPDATED"),
        ("SM901", "CREATED"),
        ("SM902", "CREATED"),
    ]


async def test_formula_listeners_are_seen_by_the_next_callback(
    provision: Provisioner, events_api: Api, events_hubgate: RunningHubgate
) -> None:
    """The intake asks whether a formula instance listens in the statement that inserts the
    events (D432): one created, or deactivated, counts from the very next callback, and each
    execution it starts belongs to an event committed with it."""
    instance = await provision(**{"event.vendor.type": "webhook"})
    token = instance_token(provision, instance)
    account = instance["configuration"]["username"]
    path = instance["eventsCallbackUrl"][len(events_hubgate.url) :]

    async def callback(sid: str) -> None:
        params = inbound(sid, account)
        answer = await events_api.with_auth(None).post(path, **signed(instance, params, token))
        assert answer.status == 200, answer.text

    async def executions(formula_instance: dict[str, Any]) -> list[dict[str, Any]]:
        listed = await events_api.get(f"formulas/instances/{formula_instance['id']}/executions")
        assert listed.status == 200, listed.text
        found: list[dict[str, Any]] = listed.body
        return found

    await callback("SM950")
    formula = await make_formula(events_api, shipped("answer-received-message.json"))
    listener = await make_instance(
        events_api, formula["id"], {"twilio": instance["id"], "answer": "Thanks:"}
    )
    await callback("SM951")
    assert [e["objectId"] for e in await executions(listener)] == ["SM951"]

    changed = await events_api.patch(
        f"formulas/{formula['id']}/instances/{listener['id']}", json={"active": False}
    )
    assert changed.status == 200, changed.text
    await callback("SM952")
    started = await executions(listener)
    assert [e["objectId"] for e in started] == ["SM951"]

    events = (await events_api.get(f"instances/{instance['id']}/events")).body
    by_object = {e["objectId"]: e["id"] for e in events}
    assert sorted(by_object) == ["SM950", "SM951", "SM952"]
    assert started[0]["eventId"] == by_object["SM951"]


async def test_a_callback_is_two_statements(
    provision: Provisioner, events_api: Api, events_hubgate: RunningHubgate, runtime: Runtime
) -> None:
    """With the instance cached (D312): the seen-set's upsert, then the events' insert that also
    reads the formula listeners (D431, D432); a repeat is the upsert alone."""
    instance = await provision(**{"event.vendor.type": "webhook"})
    token = instance_token(provision, instance)
    account = instance["configuration"]["username"]
    path = instance["eventsCallbackUrl"][len(events_hubgate.url) :]

    async def callback(sid: str) -> list[str]:
        params = inbound(sid, account)
        with statements(runtime) as sent:
            answer = await events_api.with_auth(None).post(path, **signed(instance, params, token))
        assert answer.status == 200, answer.text
        return [" ".join(s.split())[:25] for s in sent]

    await callback("SM960")
    assert await callback("SM961") == ["INSERT INTO event_seen AS", "WITH added AS ( INSERT IN"]
    assert await callback("SM961") == ["INSERT INTO event_seen AS"]
    events = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert sorted(e["objectId"] for e in events) == ["SM960", "SM961"]
