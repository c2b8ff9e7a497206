"""The SendGrid simulator over real HTTP: every route, its errors, and the signed Event Webhook.

Signatures are checked here with `cryptography` directly, as a receiver would check them (the
base64 DER public key, ECDSA P-256 over timestamp + raw body), not with the simulator's signer.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from multidict import CIMultiDictProxy

from sims.receiver import CallbackReceiver
from sims.sendgrid import SendGridSimulator

Answer = tuple[int, Any, CIMultiDictProxy[str]]


async def call(
    http: aiohttp.ClientSession,
    sim: SendGridSimulator,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    key: str | None = "default",
    raw: bytes | None = None,
) -> Answer:
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {sim.api_key if key == 'default' else key}"
    if raw is None and body is not None:
        raw = json.dumps(body).encode()
    # A stream, not bytes: aiohttp warns about large bodies given as bytes.
    data = io.BytesIO(raw) if raw is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with http.request(
        method, f"{sim.url}{path}", data=data, params=params, headers=headers
    ) as answer:
        text = await answer.text()
        return answer.status, json.loads(text) if text else None, answer.headers


def mail(*to: str, subject: str | None = "Hello", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": address} for address in to]}],
        "from": {"email": "orders@example.com", "name": "Orders"},
        "content": [{"type": "text/plain", "value": "Your order shipped."}],
        **extra,
    }
    if subject is not None:
        body["subject"] = subject
    return body


async def send(http: aiohttp.ClientSession, sim: SendGridSimulator, body: dict[str, Any]) -> str:
    status, answer, headers = await call(http, sim, "POST", "/v3/mail/send", body=body)
    assert status == 202, answer
    return headers["X-Message-Id"]


def verify(public_key: str, headers: dict[str, str], body: bytes) -> None:
    """A receiver's check: raises InvalidSignature unless SendGrid's signature holds."""
    key = load_der_public_key(base64.b64decode(public_key))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    signature = base64.b64decode(headers["x-twilio-email-event-webhook-signature"])
    timestamp = headers["x-twilio-email-event-webhook-timestamp"].encode()
    key.verify(signature, timestamp + body, ec.ECDSA(hashes.SHA256()))


async def test_a_send_answers_202_with_the_message_id_header_only(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    body = mail("ada@example.com", "grace@example.com", categories=["orders"])
    body["personalizations"][0]["cc"] = [{"email": "boss@example.com"}]
    status, answer, headers = await call(http, sendgrid, "POST", "/v3/mail/send", body=body)

    assert (status, answer) == (202, None)
    x_message_id = headers["X-Message-Id"]
    assert len(x_message_id) == 22
    assert headers["X-RateLimit-Remaining"] != "0"
    assert headers["X-RateLimit-Reset"].isdigit()
    # One message per recipient, each id starting with the header's value.
    query = {"query": f'msg_id LIKE "{x_message_id}%"'}
    status, found, _ = await call(http, sendgrid, "GET", "/v3/messages", params=query)
    assert status == 200
    assert sorted(m["to_email"] for m in found["messages"]) == [
        "ada@example.com",
        "boss@example.com",
        "grace@example.com",
    ]
    assert all(m["msg_id"].startswith(f"{x_message_id}.") for m in found["messages"])
    assert {m["status"] for m in found["messages"]} == {"processed"}

    msg_id = found["messages"][0]["msg_id"]
    status, detail, _ = await call(http, sendgrid, "GET", f"/v3/messages/{msg_id}")
    assert status == 200
    assert detail["subject"] == "Hello"
    assert detail["categories"] == ["orders"]
    assert detail["api_key_id"] == sendgrid.api_key.split(".")[1]
    assert detail["events"] == []


BAD_BODIES: list[tuple[str, Any, str | None, str]] = [
    ("not-json", b"{", None, "Bad Request"),
    (
        "no-personalizations",
        {**mail("a@example.com"), "personalizations": []},
        "personalizations",
        "at least one personalization",
    ),
    (
        "no-to",
        {**mail("a@example.com"), "personalizations": [{"subject": "x"}]},
        "personalizations.0.to",
        "The to array is required",
    ),
    (
        "bad-address",
        mail("not-an-address"),
        "personalizations.0.to.0.email",
        "Does not contain a valid address.",
    ),
    (
        "no-from",
        {k: v for k, v in mail("a@example.com").items() if k != "from"},
        "from.email",
        "The email parameter is required.",
    ),
    ("no-subject", mail("a@example.com", subject=None), "subject", "The subject is required."),
    (
        "no-content",
        {k: v for k, v in mail("a@example.com").items() if k != "content"},
        "content",
        "the content parameter is required",
    ),
    (
        "empty-value",
        mail("a@example.com", content=[{"type": "text/plain", "value": ""}]),
        "content.0.value",
        "at least one character",
    ),
    (
        "duplicate",
        mail("a@example.com", "A@example.com"),
        "personalizations.0.to",
        "should be unique",
    ),
    ("unknown-template", mail("a@example.com", template_id="d-0"), "template_id", "valid GUID"),
]


@pytest.mark.parametrize(
    ("body", "field", "message"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
async def test_a_bad_send_gets_sendgrids_error_body(
    sendgrid: SendGridSimulator,
    http: aiohttp.ClientSession,
    body: Any,
    field: str | None,
    message: str,
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer, _ = await call(http, sendgrid, "POST", "/v3/mail/send", raw=raw)

    assert status == 400
    (error,) = answer["errors"]
    assert set(error) == {"message", "field", "help"}
    assert error["field"] == field
    assert error["help"] is None
    assert message in error["message"]
    assert sendgrid.messages == {}


async def test_a_template_stands_in_for_subject_and_content(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    template = sendgrid.add_template("Receipt", subject="Your receipt")
    body = {k: v for k, v in mail("a@example.com", subject=None).items() if k != "content"}
    x_message_id = await send(http, sendgrid, {**body, "template_id": template["id"]})

    (sent,) = sendgrid.sent(x_message_id)
    assert sent["subject"] == "Your receipt"
    assert sent["template_id"] == template["id"]


async def test_the_activity_query_joins_predicates_with_and_and_honours_limit(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    first = await send(http, sendgrid, mail("ada@example.com", subject="Invoice 1"))
    await send(http, sendgrid, mail("ada@example.com", subject="Receipt"))
    await send(http, sendgrid, mail("bob@example.com", subject="Invoice 2"))
    (delivered,) = sendgrid.sent(first)
    await sendgrid.advance(delivered["msg_id"], "delivered")

    async def subjects(query: str, limit: str = "10") -> list[str]:
        params = {"query": query, "limit": limit}
        status, found, _ = await call(http, sendgrid, "GET", "/v3/messages", params=params)
        assert status == 200, found
        return sorted(m["subject"] for m in found["messages"])

    assert await subjects('to_email="ada@example.com"') == ["Invoice 1", "Receipt"]
    assert await subjects('from_email="orders@example.com"') == [
        "Invoice 1",
        "Invoice 2",
        "Receipt",
    ]
    assert await subjects('subject LIKE "Invoice%" AND to_email="ada@example.com"') == ["Invoice 1"]
    assert await subjects('status="delivered"') == ["Invoice 1"]
    assert await subjects('status!="delivered" and to_email="ada@example.com"') == ["Receipt"]
    assert await subjects(f'msg_id="{delivered["msg_id"]}"') == ["Invoice 1"]
    assert await subjects('subject NOT LIKE "Invoice%"') == ["Receipt"]
    assert len(await subjects('from_email="orders@example.com"', limit="2")) == 2
    # The most recent first: the last send is the one a limit of 1 keeps.
    assert await subjects('subject LIKE "%"', limit="1") == ["Invoice 1"]
    status, everything, _ = await call(http, sendgrid, "GET", "/v3/messages")
    assert status == 200
    assert len(everything["messages"]) == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": 'bad_field="x"'}, "invalid syntax: 'bad_field' is not a known field"),
        ({"query": 'clicks="1"'}, "does not filter on 'clicks'"),
        ({"query": 'to_email="a@b.co" OR subject="x"'}, "AND only"),
        ({"query": 'to_email="a@b.co" subject="x"'}, "expected AND"),
        ({"query": "to_email=a"}, "cannot read the query"),
        ({"limit": "0"}, "limit must be an integer from 1 to 1000"),
        ({"limit": "1001"}, "limit must be an integer from 1 to 1000"),
    ],
)
async def test_an_unreadable_activity_query_is_a_400(
    sendgrid: SendGridSimulator,
    http: aiohttp.ClientSession,
    params: dict[str, str],
    message: str,
) -> None:
    status, answer, _ = await call(http, sendgrid, "GET", "/v3/messages", params=params)
    assert status == 400
    assert message in answer["errors"][0]["message"]


async def test_an_unknown_message_is_a_404_naming_the_field(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    status, answer, _ = await call(http, sendgrid, "GET", "/v3/messages/nope.filter.0")
    assert status == 404
    assert answer == {"errors": [{"message": "not found", "field": "message_id", "help": None}]}


async def test_keys_are_checked_and_scopes_answer_the_credential_check(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    status, scopes, _ = await call(http, sendgrid, "GET", "/v3/scopes")
    assert status == 200
    assert "mail.send" in scopes["scopes"]

    status, answer, _ = await call(http, sendgrid, "GET", "/v3/scopes", key=None)
    assert (status, answer["errors"][0]["message"]) == (401, "authorization required")
    status, answer, _ = await call(http, sendgrid, "GET", "/v3/scopes", key="SG.nope.nope")
    assert status == 401
    assert answer == {
        "errors": [
            {
                "message": "The provided authorization grant is invalid, expired, or revoked",
                "field": None,
                "help": None,
            }
        ]
    }
    # A key without mail.send passes the check but cannot send: 403, not 401.
    reader = sendgrid.add_key(scopes=["templates.read"])
    status, scopes, _ = await call(http, sendgrid, "GET", "/v3/scopes", key=reader)
    assert (status, scopes) == (200, {"scopes": ["templates.read"]})
    status, answer, _ = await call(
        http, sendgrid, "POST", "/v3/mail/send", body=mail("a@example.com"), key=reader
    )
    assert (status, answer["errors"][0]["message"]) == (403, "access forbidden")


async def test_429_on_demand_with_the_rate_limit_headers(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{sendgrid.url}/_sim/fail", json={"status": 429, "count": 2}) as r:
        assert r.status == 200
        assert (await r.json()) == {"pending": 2}
    for _ in range(2):
        status, answer, headers = await call(http, sendgrid, "GET", "/v3/scopes")
        assert status == 429
        assert answer["errors"] == [{"message": "too many requests", "field": None, "help": None}]
        assert headers["X-RateLimit-Remaining"] == "0"
        assert int(headers["X-RateLimit-Reset"]) > 0
    status, _, _ = await call(http, sendgrid, "GET", "/v3/scopes")
    assert status == 200


async def test_unknown_routes_and_methods_answer_in_sendgrids_shape(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    status, answer, _ = await call(http, sendgrid, "GET", "/v3/nothing")
    assert (status, answer["errors"][0]["message"]) == (404, "not found")
    status, answer, _ = await call(http, sendgrid, "PUT", "/v3/mail/send", body={})
    assert (status, answer["errors"][0]["message"]) == (405, "method not allowed")
    huge = b'{"x": "' + b"a" * (30 * 1024 * 1024) + b'"}'
    status, answer, _ = await call(http, sendgrid, "POST", "/v3/mail/send", raw=huge)
    assert (status, answer["errors"][0]["message"]) == (413, "content too large")


async def test_templates_list_by_generation_in_pages_and_get_one(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    made = [sendgrid.add_template(f"T{i}", subject=f"S{i}") for i in range(5)]
    legacy = sendgrid.add_template("Old", generation="legacy")

    status, page, _ = await call(http, sendgrid, "GET", "/v3/templates", params={"page_size": "2"})
    assert status == 200
    assert [t["id"] for t in page["result"]] == [legacy["id"]]

    seen: list[str] = []
    params = {"generations": "dynamic", "page_size": "2"}
    while True:
        status, page, _ = await call(http, sendgrid, "GET", "/v3/templates", params=params)
        assert status == 200
        assert page["_metadata"]["count"] == 5
        seen += [t["id"] for t in page["result"]]
        if "next" not in page["_metadata"]:
            break
        async with http.get(
            page["_metadata"]["next"], headers={"Authorization": f"Bearer {sendgrid.api_key}"}
        ) as answer:
            assert answer.status == 200
        params = dict(answer.url.query)
    assert seen == [t["id"] for t in made]

    status, template, _ = await call(http, sendgrid, "GET", f"/v3/templates/{made[1]['id']}")
    assert status == 200
    assert template["versions"][0]["subject"] == "S1"
    assert template["versions"][0]["html_content"] == "<p>Hello</p>"
    status, answer, _ = await call(http, sendgrid, "GET", "/v3/templates/d-missing")
    assert (status, answer["errors"][0]["field"]) == (404, "template_id")
    params = {"page_size": "500"}
    status, answer, _ = await call(http, sendgrid, "GET", "/v3/templates", params=params)
    assert (status, answer["errors"][0]["field"]) == (400, "page_size")


async def test_bounces_list_get_and_delete(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    sendgrid.add_bounce("gone@example.com")
    sendgrid.add_bounce("away@example.com", "550 mailbox full")

    status, bounces, _ = await call(http, sendgrid, "GET", "/v3/suppression/bounces")
    assert status == 200
    assert sorted(b["email"] for b in bounces) == ["away@example.com", "gone@example.com"]
    assert set(bounces[0]) == {"created", "email", "reason", "status"}
    params = {"limit": "1", "offset": "1"}
    status, one, _ = await call(http, sendgrid, "GET", "/v3/suppression/bounces", params=params)
    assert status == 200
    assert len(one) == 1

    path = "/v3/suppression/bounces/away@example.com"
    status, found, _ = await call(http, sendgrid, "GET", path)
    assert status == 200
    assert found[0]["reason"] == "550 mailbox full"
    status, answer, _ = await call(http, sendgrid, "DELETE", path)
    assert (status, answer) == (204, None)
    status, answer, _ = await call(http, sendgrid, "DELETE", path)
    assert (status, answer["errors"][0]["field"]) == (404, "email")
    status, found, _ = await call(http, sendgrid, "GET", path)
    assert (status, found) == (200, [])


async def test_events_are_posted_signed_with_the_printed_public_key(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    async with http.put(f"{sendgrid.url}/_sim/webhook", json={"url": receiver.url}) as answer:
        assert (await answer.json())["publicKey"] == sendgrid.public_key
    x_message_id = await send(http, sendgrid, mail("ada@example.com", custom_args={"order": "7"}))
    (message,) = sendgrid.sent(x_message_id)
    msg_id = message["msg_id"]

    control = f"{sendgrid.url}/_sim/messages/{msg_id}/events"
    async with http.post(control, json={"event": "delivered"}) as answer:
        assert answer.status == 200
        result = await answer.json()
    assert result["delivery"]["status"] == 200
    (first,) = receiver.requests
    verify(sendgrid.public_key, first.headers, first.body)
    assert first.body.endswith(b"\r\n")  # as SendGrid sends it; part of what is signed
    events = first.json()
    assert [e["event"] for e in events] == ["processed", "delivered"]
    assert all(e["sg_message_id"] == msg_id and e["email"] == "ada@example.com" for e in events)
    assert all(e["order"] == "7" for e in events)  # custom_args ride along flat
    assert len({e["sg_event_id"] for e in events}) == 2

    with pytest.raises(InvalidSignature):
        verify(sendgrid.public_key, first.headers, first.body.replace(b"ada@", b"eve@"))
    with pytest.raises(InvalidSignature):
        verify(sendgrid.public_key, first.headers, first.body.rstrip(b"\r\n"))
    stale = {**first.headers, "x-twilio-email-event-webhook-timestamp": "1600000000"}
    with pytest.raises(InvalidSignature):
        verify(sendgrid.public_key, stale, first.body)

    await sendgrid.advance(msg_id, "open", timestamp=1_700_000_000)
    second = receiver.requests[1]
    assert second.headers["x-twilio-email-event-webhook-timestamp"] == "1700000000"
    verify(sendgrid.public_key, second.headers, second.body)
    assert [e["event"] for e in second.json()] == ["open"]

    status, detail, _ = await call(http, sendgrid, "GET", f"/v3/messages/{msg_id}")
    assert status == 200
    assert detail["status"] == "delivered"
    assert [e["event_name"] for e in detail["events"]] == ["processed", "delivered", "opened"]
    query = {"query": f'msg_id="{msg_id}"'}
    _, listed, _ = await call(http, sendgrid, "GET", "/v3/messages", params=query)
    assert listed["messages"][0]["opens_count"] == 1


async def test_a_bounce_is_an_event_an_activity_status_and_a_suppression(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    sendgrid.webhook_url = receiver.url
    x_message_id = await send(http, sendgrid, mail("gone@example.com"))
    (message,) = sendgrid.sent(x_message_id)
    msg_id = message["msg_id"]

    events, delivery = await sendgrid.advance(msg_id, "bounce")
    assert delivery is not None
    assert delivery.status == 200
    assert [e["event"] for e in events] == ["processed", "bounce"]
    assert events[1]["type"] == "bounce"
    assert events[1]["status"] == "5.1.1"
    verify(sendgrid.public_key, receiver.requests[0].headers, receiver.requests[0].body)

    _, detail, _ = await call(http, sendgrid, "GET", f"/v3/messages/{msg_id}")
    assert detail["status"] == "not_delivered"
    assert detail["events"][-1]["event_name"] == "bounced"
    _, bounces, _ = await call(http, sendgrid, "GET", "/v3/suppression/bounces")
    assert [b["email"] for b in bounces] == ["gone@example.com"]

    # A bounced message goes no further; the control says why.
    control = f"{sendgrid.url}/_sim/messages/{msg_id}/events"
    for event in ("delivered", "open", "bounce"):
        async with http.post(control, json={"event": event}) as answer:
            assert answer.status == 409, event
    async with http.post(control, json={"event": "clicked"}) as answer:
        assert answer.status == 400
    async with http.post(f"{sendgrid.url}/_sim/messages/nope/events", json={}) as answer:
        assert answer.status == 404
    async with http.get(f"{sendgrid.url}/_sim/deliveries") as answer:
        assert len((await answer.json())["deliveries"]) == 1


async def test_without_a_webhook_url_events_are_recorded_and_not_posted(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    x_message_id = await send(http, sendgrid, mail("ada@example.com"))
    (message,) = sendgrid.sent(x_message_id)
    events, delivery = await sendgrid.advance(message["msg_id"], "processed")
    assert delivery is None
    assert [e["event"] for e in events] == ["processed"]
    assert sendgrid.deliveries == []


async def test_the_controls_list_themselves_and_seed_state(
    sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{sendgrid.url}/_sim/") as answer:
        paths = {c["path"] for c in (await answer.json())["controls"]}
    assert {"/_sim/fail", "/_sim/webhook", "/_sim/messages/{msg_id}/events"} <= paths
    async with http.get(f"{sendgrid.url}/_sim/health") as answer:
        health = await answer.json()
    assert health["apiKey"] == sendgrid.api_key
    assert health["publicKey"] == sendgrid.public_key
    async with http.post(f"{sendgrid.url}/_sim/templates", json={"name": "Hi"}) as answer:
        assert answer.status == 201
        assert (await answer.json())["id"].startswith("d-")
    async with http.post(f"{sendgrid.url}/_sim/templates", json={}) as answer:
        assert answer.status == 400
    async with http.post(f"{sendgrid.url}/_sim/bounces", json={"email": "x@example.com"}) as r:
        assert r.status == 201
    async with http.post(f"{sendgrid.url}/_sim/keys", json={"scopes": ["mail.send"]}) as r:
        key = (await r.json())["key"]
    status, _, _ = await call(http, sendgrid, "GET", "/v3/suppression/bounces", key=key)
    assert status == 403
    async with http.post(f"{sendgrid.url}/_sim/fail", json={"status": 200}) as answer:
        assert answer.status == 400
