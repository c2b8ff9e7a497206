"""Behaviour of the Twilio simulator over real HTTP; the official twilio client is an oracle."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from sims.twilio_sim import SimulatorThread, TwilioSimulator

FROM = "+15017122661"
TO = "+15558675310"
FIXED_SID = "AC" + "0123456789abcdef" * 2
FIXED_TOKEN = "f" * 32


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


AUTH_ERROR = twilio_error(20003, "Authenticate", 401)

FormData = Mapping[str, str | Sequence[str]]


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


class TwilioHttp:
    """Calls the simulator over real HTTP the way Hubgate does: form bodies and Basic auth."""

    def __init__(self, session: aiohttp.ClientSession, sim: TwilioSimulator) -> None:
        self.session = session
        self.sim = sim
        self.auth = (sim.account_sid, sim.auth_token)

    def url(self, path: str) -> str:
        # Absolute API paths (a next_page_uri, /_sim/...) go to the server root; anything else
        # is relative to the account, so ".json" is the account itself.
        if path.startswith(("/2010-04-01", "/_sim/")):
            return f"{self.sim.url}{path}"
        return f"{self.sim.base_url}/{self.sim.account_sid}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        data: FormData | None = None,
        json_body: Any = None,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> Reply:
        all_headers = dict(headers or {})
        if not anonymous:
            all_headers["Authorization"] = aiohttp.encode_basic_auth(*(auth or self.auth))
        form = None
        if data is not None:
            form = [
                (key, item)
                for key, value in data.items()
                for item in ([value] if isinstance(value, str) else value)
            ]
        async with self.session.request(
            method,
            self.url(path),
            params=params,
            data=form,
            json=json_body,
            headers=all_headers,
        ) as response:
            text = await response.text()
            body = json.loads(text) if text else None
            return Reply(response.status, body, dict(response.headers))

    async def get(self, path: str, **params: str | int) -> Reply:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, data: FormData | None = None) -> Reply:
        return await self.request("POST", path, data=data or {})

    async def delete(self, path: str) -> Reply:
        return await self.request("DELETE", path)

    async def control(self, method: str, path: str, payload: Any = None) -> Reply:
        return await self.request(method, f"/_sim/{path}", json_body=payload, anonymous=True)

    async def send(self, body: str = "hello", to: str = TO) -> dict[str, Any]:
        reply = await self.post("/Messages.json", {"To": to, "From": FROM, "Body": body})
        assert reply.status == 201, reply.body
        created: dict[str, Any] = reply.body
        return created

    async def sids(self, path: str, key: str, params: Mapping[str, str | int]) -> list[str]:
        reply = await self.request("GET", path, params=params)
        assert reply.status == 200, reply.body
        return [item["sid"] for item in reply.body[key]]


@pytest_asyncio.fixture
async def http(sim: TwilioSimulator) -> AsyncIterator[TwilioHttp]:
    async with aiohttp.ClientSession() as session:
        yield TwilioHttp(session, sim)


# -- authentication ---------------------------------------------------------------------------


async def test_account_fetch_is_the_credential_check(
    http: TwilioHttp, sim: TwilioSimulator
) -> None:
    reply = await http.get(".json")

    assert reply.status == 200
    account = reply.body
    assert account["sid"] == account["owner_account_sid"] == sim.account_sid
    assert account["auth_token"] == sim.auth_token
    assert (account["status"], account["type"]) == ("active", "Full")
    assert account["uri"] == f"/2010-04-01/Accounts/{sim.account_sid}.json"
    assert account["subresource_uris"]["messages"].endswith(f"{sim.account_sid}/Messages.json")
    assert parsedate_to_datetime(account["date_created"]).utcoffset() is not None
    assert account["date_created"].endswith(" +0000")


@pytest.mark.parametrize("how", ["wrong-token", "unknown-account", "no-header", "bearer"])
async def test_bad_credentials_answer_20003(
    http: TwilioHttp, sim: TwilioSimulator, how: str
) -> None:
    variants: dict[str, dict[str, Any]] = {
        "wrong-token": {"auth": (sim.account_sid, "0" * 32)},
        "unknown-account": {"auth": ("AC" + "9" * 32, sim.auth_token)},
        "no-header": {"anonymous": True},
        "bearer": {"anonymous": True, "headers": {"Authorization": "Bearer abc"}},
    }
    options = variants[how]

    reply = await http.request("GET", "/Messages.json", **options)

    assert reply.status == 401
    assert reply.body == AUTH_ERROR
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


async def test_accounts_are_isolated(http: TwilioHttp, sim: TwilioSimulator) -> None:
    other_sid, other_token = sim.add_account()
    other = (other_sid, other_token)
    await http.send()

    on_first_path = await http.request("GET", "/Messages.json", auth=other)
    own_path = f"/2010-04-01/Accounts/{other_sid}/Messages.json"
    on_own_path = await http.request("GET", own_path, auth=other)

    assert (on_first_path.status, on_first_path.body) == (401, AUTH_ERROR)
    assert on_own_path.status == 200
    assert on_own_path.body["messages"] == []
    assert len(sim.messages()) == 1
    assert sim.messages(other_sid) == []


def test_account_sid_must_look_like_twilio() -> None:
    with pytest.raises(ValueError, match="AC followed by 32 hex"):
        TwilioSimulator("AC123")
    sim = TwilioSimulator(FIXED_SID, FIXED_TOKEN)
    assert (sim.account_sid, sim.auth_token) == (FIXED_SID, FIXED_TOKEN)
    assert sim.accounts() == {FIXED_SID: FIXED_TOKEN}


async def test_accounts_list_filters_and_update(http: TwilioHttp, sim: TwilioSimulator) -> None:
    other_sid, _ = sim.add_account()

    listed = await http.get("/2010-04-01/Accounts.json")
    renamed = await http.post(".json", {"FriendlyName": "Renamed"})
    by_name = await http.get("/2010-04-01/Accounts.json", FriendlyName="Renamed")
    by_other_name = await http.get("/2010-04-01/Accounts.json", FriendlyName="nope")
    suspended = await http.get("/2010-04-01/Accounts.json", Status="suspended")
    bad_status = await http.post(".json", {"Status": "frozen"})

    assert [a["sid"] for a in listed.body["accounts"]] == [sim.account_sid]
    assert other_sid not in json.dumps(listed.body)
    assert renamed.status == 200
    assert renamed.body["friendly_name"] == "Renamed"
    assert [a["sid"] for a in by_name.body["accounts"]] == [sim.account_sid]
    assert "FriendlyName=Renamed" in by_name.body["uri"]
    assert by_other_name.body["accounts"] == suspended.body["accounts"] == []
    assert bad_status.status == 400
    assert bad_status.body["code"] == 20001


# -- messages ---------------------------------------------------------------------------------


async def test_message_lifecycle(http: TwilioHttp, sim: TwilioSimulator) -> None:
    created = await http.send("hi there")
    sid = created["sid"]
    path = f"/Messages/{sid}.json"

    assert sid.startswith("SM")
    assert len(sid) == 34
    assert created["status"] == "queued"
    assert created["date_sent"] is None
    assert created["price"] is None
    assert (created["direction"], created["api_version"]) == ("outbound-api", "2010-04-01")
    assert (created["num_segments"], created["num_media"]) == ("1", "0")
    assert (created["to"], created["from"], created["body"]) == (TO, FROM, "hi there")
    assert created["uri"] == f"/2010-04-01/Accounts/{sim.account_sid}/Messages/{sid}.json"
    assert created["subresource_uris"]["media"] == created["uri"].replace(".json", "/Media.json")

    fetched = await http.get(path)
    listed = await http.get("/Messages.json")
    assert fetched.body == created
    assert [m["sid"] for m in listed.body["messages"]] == [sid]

    redacted = await http.post(path, {"Body": ""})
    assert redacted.status == 200
    assert redacted.body["body"] == ""
    assert redacted.body["status"] == "queued"

    canceled = await http.post(path, {"Status": "canceled"})
    assert canceled.body["status"] == "canceled"
    not_redaction = await http.post(path, {"Body": "new text"})
    assert not_redaction.status == 400

    deleted = await http.delete(path)
    assert (deleted.status, deleted.body) == (204, None)
    gone = await http.get(path)
    assert gone.status == 404
    assert gone.body == twilio_error(
        20404,
        f"The requested resource /2010-04-01/Accounts/{sim.account_sid}/Messages/{sid}.json"
        " was not found",
        404,
    )
    assert (await http.delete(path)).status == 404
    assert sim.messages() == []


@pytest.mark.parametrize(
    ("form", "code", "message"),
    [
        ({"From": FROM, "Body": "x"}, 21604, "A 'To' phone number is required."),
        (
            {"To": "5551234567", "From": FROM, "Body": "x"},
            21211,
            "The 'To' number 5551234567 is not a valid phone number.",
        ),
        (
            {"To": "+0123", "From": FROM, "Body": "x"},
            21211,
            "The 'To' number +0123 is not a valid phone number.",
        ),
        ({"To": TO, "Body": "x"}, 21603, "A 'From' phone number is required."),
        ({"To": TO, "From": FROM}, 21602, "Message body is required."),
        (
            {"To": TO, "From": FROM, "Body": "x" * 1601},
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ),
    ],
)
async def test_create_message_errors(
    http: TwilioHttp, sim: TwilioSimulator, form: dict[str, str], code: int, message: str
) -> None:
    reply = await http.post("/Messages.json", form)

    assert reply.status == 400
    assert reply.body == twilio_error(code, message, 400)
    assert sim.messages() == []


async def test_whatsapp_and_messaging_service_senders(http: TwilioHttp) -> None:
    whatsapp = await http.post(
        "/Messages.json",
        {"To": "whatsapp:+15558675310", "From": "whatsapp:+14155238886", "Body": "hi"},
    )
    service_sid = "MG" + "a" * 32
    via_service = await http.post(
        "/Messages.json", {"To": TO, "MessagingServiceSid": service_sid, "Body": "hi"}
    )

    assert whatsapp.status == 201
    assert whatsapp.body["to"] == "whatsapp:+15558675310"
    assert via_service.status == 201
    # A Messaging Service chooses the sender later; Twilio reports such messages as accepted.
    assert via_service.body["status"] == "accepted"
    assert via_service.body["from"] is None
    assert via_service.body["messaging_service_sid"] == service_sid


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("€" * 80, "1"),  # GSM extension characters count twice
        ("€" * 81, "2"),
        ("é" * 160, "1"),  # in the GSM basic set
        ("ł" * 70, "1"),  # not GSM: UCS-2
        ("ł" * 71, "2"),
        ("😀" * 35, "1"),  # two UTF-16 units each
        ("😀" * 36, "2"),
    ],
)
async def test_num_segments(http: TwilioHttp, body: str, segments: str) -> None:
    assert (await http.send(body))["num_segments"] == segments


async def test_media_urls_create_media_records(http: TwilioHttp) -> None:
    urls = ["https://example.com/a.png", "https://example.com/b.gif?size=2"]
    created = await http.post(
        "/Messages.json", {"To": TO, "From": FROM, "Body": "pics", "MediaUrl": urls}
    )
    sid = created.body["sid"]

    listing = await http.get(f"/Messages/{sid}/Media.json")
    media = listing.body["media_list"]
    assert sid.startswith("MM")
    assert created.body["num_media"] == "2"
    assert {m["content_type"] for m in media} == {"image/png", "image/gif"}
    assert {m["parent_sid"] for m in media} == {sid}

    first = media[0]["sid"]
    fetched = await http.get(f"/Messages/{sid}/Media/{first}.json")
    deleted = await http.delete(f"/Messages/{sid}/Media/{first}.json")
    again = await http.get(f"/Messages/{sid}/Media/{first}.json")
    message = await http.get(f"/Messages/{sid}.json")
    unknown_parent = await http.get(f"/Messages/SM{'0' * 32}/Media.json")

    assert fetched.body == media[0]
    assert deleted.status == 204
    assert again.status == 404
    assert message.body["num_media"] == "1"
    assert unknown_parent.status == 404


async def test_following_next_page_uri_reads_every_message_once(
    http: TwilioHttp, sim: TwilioSimulator
) -> None:
    sent = [(await http.send(f"m{i}"))["sid"] for i in range(11)]
    base = f"/2010-04-01/Accounts/{sim.account_sid}/Messages.json"

    page = (await http.get("/Messages.json", PageSize=4)).body
    assert page["uri"] == page["first_page_uri"] == f"{base}?PageSize=4&Page=0"
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 4, 0, 3)
    assert page["previous_page_uri"] is None

    seen: list[str] = []
    pages = 0
    while True:
        seen += [m["sid"] for m in page["messages"]]
        pages += 1
        if pages == 1:
            # Changes while a client pages must not make it skip or repeat messages: a new
            # message lands in front of the cursor, and the row the cursor names disappears.
            await http.send("late arrival")
            await http.delete(f"/Messages/{seen[-1]}.json")
        if page["next_page_uri"] is None:
            break
        assert f"Page={pages}&PageToken=PA" in page["next_page_uri"]
        page = (await http.get(page["next_page_uri"])).body

    assert seen == list(reversed(sent))
    assert pages == 3
    assert (page["page"], page["start"], page["end"]) == (2, 8, 10)
    assert page["previous_page_uri"] is not None


async def test_previous_page_uri_walks_back(http: TwilioHttp) -> None:
    for i in range(5):
        await http.send(f"m{i}")

    first = (await http.get("/Messages.json", PageSize=2)).body
    second = (await http.get(first["next_page_uri"])).body
    back = (await http.get(second["previous_page_uri"])).body

    assert "PageToken=PB" in second["previous_page_uri"]
    assert [m["sid"] for m in back["messages"]] == [m["sid"] for m in first["messages"]]
    assert back["page"] == 0


async def test_page_without_token_is_an_offset(http: TwilioHttp) -> None:
    newest_first = list(reversed([(await http.send(f"m{i}"))["sid"] for i in range(5)]))

    second = (await http.get("/Messages.json", PageSize=2, Page=1)).body
    beyond = (await http.get("/Messages.json", PageSize=2, Page=5)).body

    assert [m["sid"] for m in second["messages"]] == newest_first[2:4]
    assert (second["page"], second["start"], second["end"]) == (1, 2, 3)
    assert second["next_page_uri"] is not None
    assert beyond["messages"] == []
    assert beyond["next_page_uri"] is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"PageSize": "0"}, 20001),
        ({"PageSize": "1001"}, 20001),
        ({"PageSize": "many"}, 20001),
        ({"Page": "-1"}, 20001),
        ({"PageToken": "garbage"}, 21481),
        ({"PageToken": "PASM" + "0" * 32}, 21481),
    ],
)
async def test_invalid_paging_parameters(
    http: TwilioHttp, params: dict[str, str], code: int
) -> None:
    reply = await http.get("/Messages.json", **params)

    assert reply.status == 400
    assert reply.body["code"] == code
    assert reply.body["more_info"].endswith(str(code))


async def test_page_size_maximum_is_accepted(http: TwilioHttp) -> None:
    reply = await http.get("/Messages.json", PageSize=1000)
    assert reply.status == 200
    assert reply.body["page_size"] == 1000


async def test_to_and_from_filters_are_echoed(http: TwilioHttp, sim: TwilioSimulator) -> None:
    to_them = await http.send(to=TO)
    await http.send(to="+15550000002")
    inbound = sim.add_inbound_message("+15550000003", FROM, "incoming")

    by_to = (await http.get("/Messages.json", To=TO, PageSize=1)).body
    by_from = (await http.get("/Messages.json", From="+15550000003")).body

    assert [m["sid"] for m in by_to["messages"]] == [to_them["sid"]]
    assert "To=%2B15558675310&PageSize=1&Page=0" in by_to["uri"]
    assert by_to["next_page_uri"] is None
    assert [m["sid"] for m in by_from["messages"]] == [inbound["sid"]]
    assert (inbound["direction"], inbound["status"]) == ("inbound", "received")


async def test_date_sent_filters_compare_whole_gmt_days(
    http: TwilioHttp, sim: TwilioSimulator
) -> None:
    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2024, 3, day, hour, minute, tzinfo=UTC)

    def inbound(when: datetime) -> str:
        sid: str = sim.add_inbound_message("+15550001111", FROM, "in", at=when)["sid"]
        return sid

    day_before = inbound(at(1, 23, 59))
    midnight = inbound(at(2, 0, 1))
    late = inbound(at(2, 23, 59))
    day_after = inbound(at(3, 0, 0))
    outbound = (await http.send())["sid"]
    sim.set_message_status(outbound, "delivered", date_sent=at(2, 12))
    await http.send()  # still queued: no date_sent, so no DateSent filter matches it

    async def sids(params: Mapping[str, str]) -> set[str]:
        return set(await http.sids("/Messages.json", "messages", params))

    the_day = {midnight, late, outbound}
    assert await sids({"DateSent": "2024-03-02"}) == the_day
    # A date-time (what the twilio client sends) still selects the whole GMT day.
    assert await sids({"DateSent": "2024-03-02T18:30:00Z"}) == the_day
    assert await sids({"DateSent>": "2024-03-02"}) == the_day | {day_after}
    assert await sids({"DateSent<": "2024-03-02T00:00:00Z"}) == the_day | {day_before}
    assert await sids({"DateSent>": "2024-03-02", "DateSent<": "2024-03-02"}) == the_day
    assert await sids({"DateSent": "2024-03-04"}) == set()

    page = (await http.request("GET", "/Messages.json", params={"DateSent>": "2024-03-02"})).body
    assert "DateSent%3E=2024-03-02" in page["uri"]
    invalid = await http.get("/Messages.json", DateSent="yesterday")
    assert (invalid.status, invalid.body["code"]) == (400, 20001)


# -- failure injection, latency, state helpers ----------------------------------------------


async def test_fail_next_answers_429_with_retry_after(
    http: TwilioHttp, sim: TwilioSimulator
) -> None:
    sim.fail_next(429, count=2, retry_after=3)

    first = await http.get("/Messages.json")
    # Injected failures come before authentication, like a rate limiter in front of the API.
    second = await http.request("GET", "/Messages.json", anonymous=True)
    third = await http.get("/Messages.json")

    assert first.status == second.status == 429
    assert first.headers["Retry-After"] == "3"
    assert first.body == twilio_error(20429, "Too Many Requests", 429)
    assert third.status == 200
    assert len(sim.requests) == 3


async def test_sim_fail_route_injects_503(http: TwilioHttp, sim: TwilioSimulator) -> None:
    armed = await http.control("POST", "fail", {"status": 503, "count": 1, "retryAfter": 2})
    failed = await http.post("/Messages.json", {"To": TO, "From": FROM, "Body": "x"})
    retried = await http.post("/Messages.json", {"To": TO, "From": FROM, "Body": "x"})

    assert (armed.status, armed.body) == (200, {"pending": 1})
    assert failed.status == 503
    assert failed.headers["Retry-After"] == "2"
    assert failed.body == twilio_error(20503, "Service Unavailable", 503)
    assert retried.status == 201
    assert len(sim.messages()) == 1


async def test_fail_next_500_has_no_retry_after(http: TwilioHttp, sim: TwilioSimulator) -> None:
    sim.fail_next(500)
    reply = await http.get(".json")
    assert reply.status == 500
    assert reply.body["code"] == 20500
    assert "Retry-After" not in reply.headers
    with pytest.raises(ValueError, match="HTTP error status"):
        sim.fail_next(200)


async def test_latency_delays_api_responses(http: TwilioHttp, sim: TwilioSimulator) -> None:
    sim.set_latency(0.3)
    started = time.monotonic()
    await http.get(".json")
    assert time.monotonic() - started >= 0.3  # a lower bound: a sleep never ends early

    # An hour of latency, then the control route takes it away: the next answer comes well
    # within the (generous) bound, which an hour's wait could not.
    sim.set_latency(3600)
    assert (await http.control("POST", "latency", {"seconds": 0})).status == 200
    answered = await asyncio.wait_for(http.get(".json"), timeout=60)
    assert answered.status == 200


async def test_message_status_changes(http: TwilioHttp, sim: TwilioSimulator) -> None:
    created = await http.send("a" * 200)
    sid = created["sid"]
    await asyncio.sleep(1.01)  # date_updated has one-second resolution

    sent = sim.set_message_status(sid, "sent")
    fetched = (await http.get(f"/Messages/{sid}.json")).body
    delivered = await http.control("POST", f"messages/{sid}/status", {"status": "delivered"})

    assert sent["status"] == "sent"
    assert sent["date_sent"] is not None
    assert parsedate_to_datetime(sent["date_updated"]) > parsedate_to_datetime(
        created["date_updated"]
    )
    assert sent["price"] == "-0.01580"  # two segments
    assert fetched == sent
    assert delivered.status == 200
    assert delivered.body["status"] == "delivered"
    assert delivered.body["date_sent"] == sent["date_sent"]

    other = (await http.send())["sid"]
    failed = await http.control(
        "POST", f"messages/{other}/status", {"status": "undelivered", "errorCode": 30003}
    )
    assert failed.body["error_code"] == 30003
    assert failed.body["error_message"] == "Unreachable destination handset"
    assert failed.body["date_sent"] is None

    assert (await http.control("POST", "messages/SMnope/status", {"status": "sent"})).status == 404
    assert (await http.control("POST", f"messages/{sid}/status", {"status": "lost"})).status == 400
    with pytest.raises(ValueError, match="unknown message status"):
        sim.set_message_status(sid, "lost")
    with pytest.raises(KeyError):
        sim.set_message_status("SMnope", "sent")


async def test_inbound_route_adds_received_messages(http: TwilioHttp, sim: TwilioSimulator) -> None:
    added = await http.control(
        "POST",
        "inbound",
        {"from": "+15550002222", "to": FROM, "body": "STOP", "dateSent": "2024-05-01T10:00:00Z"},
    )
    listed = await http.get("/Messages.json", To=FROM)
    over_http = await http.control("GET", "messages")

    assert added.status == 201
    assert (added.body["direction"], added.body["status"]) == ("inbound", "received")
    assert added.body["date_sent"] == "Wed, 01 May 2024 10:00:00 +0000"
    assert [m["sid"] for m in listed.body["messages"]] == [added.body["sid"]]
    assert over_http.body["messages"] == sim.messages()
    assert (await http.control("POST", "inbound", {"body": "no from"})).status == 400


async def test_requests_are_recorded(http: TwilioHttp, sim: TwilioSimulator) -> None:
    urls = ["https://example.com/a.png", "https://example.com/b.png"]
    await http.post("/Messages.json", {"To": TO, "From": FROM, "Body": "hi", "MediaUrl": urls})
    await http.get("/Messages.json", To=TO, PageSize=5)
    await http.request("GET", ".json", anonymous=True)

    post, listing, anonymous = sim.requests
    assert post.method == "POST"
    assert post.path == f"/2010-04-01/Accounts/{sim.account_sid}/Messages.json"
    assert post.form == {"To": TO, "From": FROM, "Body": "hi", "MediaUrl": urls}
    assert post.user == sim.account_sid
    assert (listing.method, listing.query, listing.form) == ("GET", {"To": TO, "PageSize": "5"}, {})
    assert anonymous.user is None

    recorded = await http.control("GET", "requests")
    assert recorded.body["requests"] == [r.as_json() for r in sim.requests]
    assert recorded.body["requests"][0]["form"]["MediaUrl"] == urls
    assert (await http.control("DELETE", "requests")).status == 204
    assert sim.requests == []  # control routes are not recorded either


async def test_control_accounts_and_reset(http: TwilioHttp, sim: TwilioSimulator) -> None:
    added = await http.control("POST", "accounts", {"accountSid": FIXED_SID, "authToken": "t0k"})
    listed = await http.control("GET", "accounts")
    await http.send()
    as_new = await http.request(
        "GET", f"/2010-04-01/Accounts/{FIXED_SID}.json", auth=(FIXED_SID, "t0k")
    )
    reset = await http.control("POST", "reset")

    assert added.status == 201
    assert added.body == {"accountSid": FIXED_SID, "authToken": "t0k", "baseUrl": sim.base_url}
    assert {a["accountSid"]: a["authToken"] for a in listed.body["accounts"]} == {
        sim.account_sid: sim.auth_token,
        FIXED_SID: "t0k",
    }
    assert as_new.body["sid"] == FIXED_SID
    assert reset.status == 204
    assert sim.messages() == []
    assert sim.requests == []
    assert (await http.control("POST", "accounts", {"accountSid": FIXED_SID})).status == 400


async def test_control_index_lists_every_control(http: TwilioHttp, sim: TwilioSimulator) -> None:
    index = await http.control("GET", "")
    assert index.status == 200
    listed = {(c["method"], c["path"]) for c in index.body["controls"]}
    assert all(c["description"] for c in index.body["controls"])
    # Every control route the simulator serves is listed, and nothing else.
    served = {
        (route.method, route.resource.canonical)
        for route in sim.make_app().router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/_sim/")
    }
    assert listed == served
    assert ("POST", "/_sim/messages/{sid}/status") in listed


async def test_unknown_routes_and_methods(http: TwilioHttp, sim: TwilioSimulator) -> None:
    unknown = await http.get("/Nothing.json")
    no_suffix = await http.get("/Messages")
    wrong_method = await http.request("PUT", "/Messages.json")

    assert unknown.status == no_suffix.status == 404
    assert unknown.body["code"] == 20404
    assert wrong_method.status == 405
    assert wrong_method.body == twilio_error(20004, "Method not allowed", 405)


# -- calls, addresses, numbers, usage -------------------------------------------------------


async def test_call_lifecycle(http: TwilioHttp, sim: TwilioSimulator) -> None:
    missing_to = await http.post("/Calls.json", {"From": FROM, "Url": "https://example.com/t"})
    missing_from = await http.post("/Calls.json", {"To": TO, "Url": "https://example.com/t"})
    missing_twiml = await http.post("/Calls.json", {"To": TO, "From": FROM})
    assert (missing_to.status, missing_to.body["code"]) == (400, 21201)
    assert (missing_from.status, missing_from.body["code"]) == (400, 21213)
    assert (missing_twiml.status, missing_twiml.body["code"]) == (400, 21205)

    answered = await http.post(
        "/Calls.json", {"To": TO, "From": FROM, "Url": "https://example.com/t"}
    )
    ringing = await http.post(
        "/Calls.json", {"To": "client:alice", "From": FROM, "Twiml": "<Response/>"}
    )
    first, second = answered.body["sid"], ringing.body["sid"]
    assert answered.status == 201
    assert first.startswith("CA")
    assert answered.body["status"] == "queued"
    assert answered.body["to_formatted"] == "(555) 867-5310"
    assert answered.body["direction"] == "outbound-api"

    queued = await http.sids("/Calls.json", "calls", {"Status": "queued"})
    assert set(queued) == {first, second}

    sim.set_call_status(first, "in-progress")
    hung_up = await http.post(f"/Calls/{first}.json", {"Status": "completed"})
    canceled = await http.post(f"/Calls/{second}.json", {"Status": "canceled"})
    redirect = await http.post(f"/Calls/{first}.json", {"Url": "https://example.com/other"})
    completed = await http.sids("/Calls.json", "calls", {"Status": "completed"})
    bad_filter = await http.get("/Calls.json", Status="sleeping")

    assert hung_up.body["status"] == "completed"
    assert hung_up.body["end_time"] is not None
    assert hung_up.body["duration"] == "0"
    assert hung_up.body["price"] == "-0.01400"
    assert canceled.body["status"] == "canceled"
    assert (redirect.status, redirect.body["code"]) == (400, 21220)
    assert completed == [first]
    assert bad_filter.status == 400

    assert (await http.delete(f"/Calls/{first}.json")).status == 204
    assert (await http.get(f"/Calls/{first}.json")).status == 404
    assert [c["sid"] for c in sim.calls()] == [second]


async def test_paging_survives_the_cursor_row_leaving_the_filter(
    http: TwilioHttp, sim: TwilioSimulator
) -> None:
    form = {"To": TO, "From": FROM, "Url": "https://example.com/t"}
    calls = [(await http.post("/Calls.json", form)).body["sid"] for _ in range(5)]

    first = (await http.get("/Calls.json", Status="queued", PageSize=2)).body
    cursor = first["calls"][-1]["sid"]
    sim.set_call_status(cursor, "completed")  # the call the next_page_uri names is no longer queued
    second = await http.get(first["next_page_uri"])

    assert "Status=queued" in first["next_page_uri"]
    assert second.status == 200
    seen = [c["sid"] for c in first["calls"] + second.body["calls"]]
    assert seen == list(reversed(calls))[:4]


ADDRESS = {
    "CustomerName": "Ada Lovelace",
    "Street": "1 Main St",
    "City": "San Francisco",
    "Region": "CA",
    "PostalCode": "94103",
    "IsoCountry": "US",
}


@pytest.mark.parametrize("missing", list(ADDRESS))
async def test_address_create_names_the_missing_parameter(http: TwilioHttp, missing: str) -> None:
    form = {k: v for k, v in ADDRESS.items() if k != missing}
    reply = await http.post("/Addresses.json", form)
    assert reply.status == 400
    assert reply.body == twilio_error(
        20001, f"Missing required parameter {missing} in the post body", 400
    )


async def test_address_lifecycle(http: TwilioHttp) -> None:
    home = await http.post("/Addresses.json", {**ADDRESS, "FriendlyName": "Home"})
    london = await http.post(
        "/Addresses.json",
        {**ADDRESS, "City": "London", "Region": "London", "PostalCode": "W1", "IsoCountry": "GB"},
    )
    sid = home.body["sid"]

    assert home.status == 201
    assert sid.startswith("AD")
    assert (home.body["customer_name"], home.body["iso_country"]) == ("Ada Lovelace", "US")
    assert (home.body["validated"], home.body["emergency_enabled"]) == (False, False)
    assert await http.sids("/Addresses.json", "addresses", {"IsoCountry": "US"}) == [sid]
    assert await http.sids("/Addresses.json", "addresses", {"FriendlyName": "Home"}) == [sid]

    updated = await http.post(f"/Addresses/{sid}.json", {"Street": "2 Side St"})
    fetched = await http.get(f"/Addresses/{sid}.json")
    assert updated.body["street"] == fetched.body["street"] == "2 Side St"
    assert updated.body["city"] == "San Francisco"

    assert (await http.delete(f"/Addresses/{sid}.json")).status == 204
    remaining = await http.sids("/Addresses.json", "addresses", {})
    assert remaining == [london.body["sid"]]


async def test_available_numbers_and_buying(http: TwilioHttp) -> None:
    countries = (await http.get("/AvailablePhoneNumbers.json")).body["countries"]
    by_code = {c["country_code"]: c for c in countries}
    assert set(by_code) == {"US", "CA", "GB"}
    assert set(by_code["US"]["subresource_uris"]) == {"local", "toll_free"}
    assert "mobile" in by_code["GB"]["subresource_uris"]

    sf = (await http.get("/AvailablePhoneNumbers/US/Local.json", AreaCode="415")).body
    numbers = [n["phone_number"] for n in sf["available_phone_numbers"]]
    assert len(numbers) == 10
    assert all(n.startswith("+1415555") for n in numbers)
    assert sf["available_phone_numbers"][0]["capabilities"] == {
        "voice": True,
        "SMS": True,
        "MMS": True,
    }
    no_mms = (await http.get("/AvailablePhoneNumbers/US/Local.json", MmsEnabled="false")).body
    assert {n["region"] for n in no_mms["available_phone_numbers"]} == {"HI"}
    gb_mobile = await http.get("/AvailablePhoneNumbers/GB/Mobile.json")
    assert gb_mobile.body["available_phone_numbers"][0]["phone_number"].startswith("+447700900")
    assert (await http.get("/AvailablePhoneNumbers/US/Mobile.json")).status == 404
    assert (await http.get("/AvailablePhoneNumbers/ZZ/Local.json")).status == 404

    bought = await http.post("/IncomingPhoneNumbers.json", {"PhoneNumber": numbers[0]})
    twice = await http.post("/IncomingPhoneNumbers.json", {"PhoneNumber": numbers[0]})
    by_area = await http.post("/IncomingPhoneNumbers.json", {"AreaCode": "212"})
    neither = await http.post("/IncomingPhoneNumbers.json", {})
    assert bought.status == 201
    assert bought.body["sid"].startswith("PN")
    assert bought.body["phone_number"] == numbers[0]
    assert bought.body["capabilities"] == {"voice": True, "sms": True, "mms": True, "fax": False}
    assert twice.status == 400
    assert by_area.body["phone_number"].startswith("+1212")
    assert neither.status == 400

    after = (await http.get("/AvailablePhoneNumbers/US/Local.json", AreaCode="415")).body
    assert numbers[0] not in [n["phone_number"] for n in after["available_phone_numbers"]]
    owned = await http.sids("/IncomingPhoneNumbers.json", "incoming_phone_numbers", {})
    assert set(owned) == {bought.body["sid"], by_area.body["sid"]}
    matching = await http.sids(
        "/IncomingPhoneNumbers.json", "incoming_phone_numbers", {"PhoneNumber": "415555"}
    )
    assert matching == [bought.body["sid"]]

    assert (await http.delete(f"/IncomingPhoneNumbers/{bought.body['sid']}.json")).status == 204
    again = (await http.get("/AvailablePhoneNumbers/US/Local.json", AreaCode="415")).body
    assert len(again["available_phone_numbers"]) == 10


async def test_usage_records_follow_the_state(http: TwilioHttp, sim: TwilioSimulator) -> None:
    one = await http.send("short")
    await http.send("x" * 161)  # two segments
    sim.add_inbound_message("+15550003333", FROM, "reply")
    sim.set_message_status(one["sid"], "delivered")
    call = await http.post("/Calls.json", {"To": TO, "From": FROM, "Url": "https://e.com/t"})
    sim.set_call_status(call.body["sid"], "in-progress")
    sim.set_call_status(call.body["sid"], "completed")
    await http.post("/IncomingPhoneNumbers.json", {"AreaCode": "415"})

    records = (await http.get("/Usage/Records.json")).body["usage_records"]
    by_category = {r["category"]: r for r in records}
    only_sms = (await http.get("/Usage/Records.json", Category="sms")).body

    assert by_category["sms"]["count"] == "4"
    assert by_category["sms-outbound"]["count"] == "3"
    assert by_category["sms-inbound"]["count"] == "1"
    assert (by_category["calls"]["count"], by_category["calls"]["usage"]) == ("1", "1")
    assert by_category["phonenumbers"]["count"] == "1"
    assert by_category["totalprice"]["price"] == pytest.approx(0.0079 * 2 + 0.014 + 1.15)
    assert [r["category"] for r in only_sms["usage_records"]] == ["sms"]
    assert "Category=sms" in only_sms["uri"]


# -- the official twilio client, SimulatorThread and main ---------------------------------


@pytest.fixture
def clean_twilio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # TWILIO_EDGE / TWILIO_REGION would rewrite the host before our base_url applies.
    for name in ("TWILIO_EDGE", "TWILIO_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def threaded_sim() -> Iterator[TwilioSimulator]:
    with SimulatorThread() as simulator:
        yield simulator


@pytest.mark.usefixtures("clean_twilio_env")
def test_official_twilio_client_is_wire_compatible(threaded_sim: TwilioSimulator) -> None:
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client

    sim = threaded_sim
    client = Client(sim.account_sid, sim.auth_token)
    client.api.base_url = sim.url
    try:
        account = client.api.v2010.accounts(sim.account_sid).fetch()
        assert (account.sid, account.status, account.type) == (sim.account_sid, "active", "Full")

        sent = [client.messages.create(to=TO, from_=FROM, body=f"m{i}") for i in range(7)]
        assert sent[0].status == "queued"
        assert isinstance(sent[0].date_created, datetime)
        assert sent[0].date_created.tzinfo is not None

        newest = [m.sid for m in reversed(sent)]
        assert [m.sid for m in client.messages.list(limit=5)] == newest[:5]
        sim.clear_requests()
        assert [m.sid for m in client.messages.stream(page_size=3)] == newest
        assert sum("PageToken" in r.query for r in sim.requests) == 2

        fetched = client.messages(sent[0].sid).fetch()
        assert (fetched.body, fetched.to, fetched.from_) == ("m0", TO, FROM)

        sim.set_message_status(sent[1].sid, "delivered")
        today = datetime.now(UTC)
        assert [m.sid for m in client.messages.list(date_sent=today)] == [sent[1].sid]
        assert [m.sid for m in client.messages.list(date_sent_after=today, to=TO)] == [sent[1].sid]

        assert client.messages(sent[0].sid).delete() is True
        with pytest.raises(TwilioRestException) as missing:
            client.messages(sent[0].sid).fetch()
        assert (missing.value.status, missing.value.code) == (404, 20404)

        with pytest.raises(TwilioRestException) as invalid:
            client.messages.create(to="12345", from_=FROM, body="x")
        assert (invalid.value.status, invalid.value.code) == (400, 21211)
        assert "12345" in invalid.value.msg

        sim.fail_next(429, retry_after=1)
        with pytest.raises(TwilioRestException) as limited:
            client.messages(sent[1].sid).fetch()
        assert (limited.value.status, limited.value.code) == (429, 20429)

        call = client.calls.create(to=TO, from_=FROM, url="https://example.com/twiml")
        assert (call.status, call.to) == ("queued", TO)
        assert [c.sid for c in client.calls.list(status="queued")] == [call.sid]

        local = client.available_phone_numbers("US").local.list(area_code=212, limit=3)
        assert [n.phone_number[:5] for n in local] == ["+1212"] * 3
        bought = client.incoming_phone_numbers.create(phone_number=local[0].phone_number)
        assert bought.phone_number == local[0].phone_number

        wrong = Client(sim.account_sid, "0" * 32)
        wrong.api.base_url = sim.url
        try:
            with pytest.raises(TwilioRestException) as denied:
                wrong.api.v2010.accounts(sim.account_sid).fetch()
        finally:
            wrong.http_client.session.close()
        assert (denied.value.status, denied.value.code) == (401, 20003)
    finally:
        client.http_client.session.close()


def _get_json(url: str, user: str | None = None, password: str | None = None) -> Any:
    request = urllib.request.Request(url)  # noqa: S310 - the URL is the local simulator
    if user is not None and password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.load(response)


def test_simulator_thread_serves_sync_code_and_stops() -> None:
    with SimulatorThread(FIXED_SID, FIXED_TOKEN) as sim:
        url = sim.url
        assert url.startswith("http://127.0.0.1:")
        assert sim.base_url == f"{url}/2010-04-01/Accounts"
        account = _get_json(f"{sim.base_url}/{FIXED_SID}.json", FIXED_SID, FIXED_TOKEN)
        sim.add_inbound_message("+15550004444", FROM, "from another thread")
        listed = _get_json(f"{sim.base_url}/{FIXED_SID}/Messages.json", FIXED_SID, FIXED_TOKEN)
        health = _get_json(f"{url}/_sim/health")

    assert account["sid"] == FIXED_SID
    assert [m["body"] for m in listed["messages"]] == ["from another thread"]
    assert health == {"status": "ok", "accountSid": FIXED_SID}
    with pytest.raises(urllib.error.URLError):
        _get_json(f"{url}/_sim/health")


def test_simulator_thread_reports_a_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="failed to start"):
            SimulatorThread(port=port).start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_main_prints_configuration_and_stops_on_ctrl_c() -> None:
    port = _free_port()
    env = {
        **os.environ,
        "HUBGATE_SIM_ACCOUNT_SID": FIXED_SID,
        "HUBGATE_SIM_AUTH_TOKEN": FIXED_TOKEN,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sims.twilio_sim", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        while not banner or "base.url" not in banner[-1]:
            line = process.stdout.readline()
            assert line, (
                f"simulator exited early: {process.stderr.read() if process.stderr else ''}"
            )
            banner.append(line)
        account = _get_json(
            f"http://127.0.0.1:{port}/2010-04-01/Accounts/{FIXED_SID}.json", FIXED_SID, FIXED_TOKEN
        )
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    text = "".join(banner)
    assert f"Account SID: {FIXED_SID}" in text
    assert f"Auth Token:  {FIXED_TOKEN}" in text
    assert f'"base.url": "http://127.0.0.1:{port}/2010-04-01/Accounts"' in text
    assert account["sid"] == FIXED_SID
    assert code == 0
