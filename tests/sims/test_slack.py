"""The Slack simulator over real HTTP: OAuth v2 with rotation, the Web API, the Events API.

Event signatures are recomputed here with `hmac` from the signing secret and the raw body, as
a receiver would, not with the simulator's signer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from sims.receiver import CallbackReceiver, Received
from sims.slack import SlackSimulator
from tests.conftest import free_port

CALLBACK = "https://hub.example.com/oauth/callback"


async def api(
    http: aiohttp.ClientSession,
    sim: SlackSimulator,
    method: str,
    token: str | None,
    *,
    get: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verb = "GET" if get is not None else "POST"
    async with http.request(
        verb, f"{sim.api_url}/{method}", params=get, data=form, json=body, headers=headers
    ) as answer:
        return answer.status, await answer.json(), answer


def valid_signature(secret: str, received: Received) -> bool:
    stamp = received.headers["x-slack-request-timestamp"]
    base = f"v0:{stamp}:".encode() + received.body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers["x-slack-signature"])


class _Form(HTMLParser):
    """The consent page's form: its action, hidden fields and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values["action"]
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values["value"]
        elif tag == "button":
            self._button = (values["name"], values["value"])

    def handle_data(self, data: str) -> None:
        if self._button is not None and data.strip():
            self.buttons[data.strip()] = self._button
            self._button = None


async def consent(
    http: aiohttp.ClientSession, sim: SlackSimulator, button: str, **query: str
) -> dict[str, list[str]]:
    """Open the authorize page, press a button, return the redirect's query."""
    params = {
        "client_id": sim.client_id,
        "redirect_uri": CALLBACK,
        "state": "s-1",
        "scope": "chat:write,channels:read",
        **query,
    }
    async with http.get(sim.authorize_url, params=params) as page:
        assert page.status == 200
        assert page.content_type == "text/html"
        form = _Form()
        form.feed(await page.text())
    name, value = form.buttons[button]
    async with http.post(
        f"{sim.url}{form.action}", data={**form.fields, name: value}, allow_redirects=False
    ) as answer:
        assert answer.status == 302
        location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return parse_qs(location.query)


async def exchange(
    http: aiohttp.ClientSession, sim: SlackSimulator, form: dict[str, str], basic: bool = True
) -> dict[str, Any]:
    headers = (
        {"Authorization": aiohttp.encode_basic_auth(sim.client_id, sim.client_secret)}
        if basic
        else {}
    )
    async with http.post(sim.token_url, data=form, headers=headers) as answer:
        assert answer.status == 200
        body: dict[str, Any] = await answer.json()
        return body


async def test_the_install_round_trip_gives_tokens_that_work(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    redirect = await consent(http, slack, "Allow", user_scope="search:read")
    assert redirect["state"] == ["s-1"]
    (code,) = redirect["code"]

    answer = await exchange(
        http, slack, {"code": code, "redirect_uri": CALLBACK, "grant_type": "authorization_code"}
    )
    assert answer["ok"] is True
    assert answer["token_type"] == "bot"
    assert answer["scope"] == "chat:write,channels:read"
    assert answer["access_token"].startswith("xoxb-")
    assert answer["refresh_token"].startswith("xoxe-1-")
    assert answer["expires_in"] == 43200
    assert answer["team"]["id"] == slack.team_id
    assert answer["bot_user_id"] == slack.bot_user.id
    assert answer["authed_user"]["scope"] == "search:read"
    assert answer["authed_user"]["token_type"] == "user"

    status, me, _ = await api(http, slack, "auth.test", answer["access_token"], form={})
    assert status == 200
    assert me["ok"] is True
    assert (me["user_id"], me["bot_id"]) == (slack.bot_user.id, slack.bot_id)
    status, person, _ = await api(http, slack, "auth.test", answer["authed_user"]["access_token"])
    assert person["ok"] is True
    assert "bot_id" not in person

    # A code works once; the client's secret and the redirect are checked.
    again = await exchange(http, slack, {"code": code, "redirect_uri": CALLBACK})
    assert again == {"ok": False, "error": "invalid_code"}
    (second,) = (await consent(http, slack, "Allow"))["code"]
    wrong = await exchange(http, slack, {"code": second, "redirect_uri": CALLBACK + "x"})
    assert wrong == {"ok": False, "error": "bad_redirect_uri"}
    (third,) = (await consent(http, slack, "Allow"))["code"]
    secret = {"client_id": slack.client_id, "client_secret": "nope", "code": third}
    assert await exchange(http, slack, secret, basic=False) == {
        "ok": False,
        "error": "bad_client_secret",
    }
    in_body = {"client_id": slack.client_id, "client_secret": slack.client_secret, "code": third}
    assert (await exchange(http, slack, in_body, basic=False))["ok"] is True
    assert (await exchange(http, slack, {"client_id": "1.2", "code": "x"}, basic=False)) == {
        "ok": False,
        "error": "invalid_client_id",
    }
    grant = {"grant_type": "password"}
    assert (await exchange(http, slack, grant))["error"] == "invalid_grant_type"


async def test_cancel_redirects_with_access_denied_and_bad_requests_get_no_page(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    redirect = await consent(http, slack, "Cancel")
    assert redirect == {"error": ["access_denied"], "state": ["s-1"]}

    for params in (
        {"client_id": "9.9", "redirect_uri": CALLBACK, "scope": "chat:write"},
        {"client_id": slack.client_id, "redirect_uri": "javascript:alert(1)", "scope": "x"},
        {"client_id": slack.client_id, "redirect_uri": CALLBACK},
    ):
        async with http.get(slack.authorize_url, params=params) as page:
            assert page.status == 400
            assert "Allow" not in await page.text()


async def test_tokens_expire_and_a_refresh_rotates_both(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    (code,) = (await consent(http, slack, "Allow"))["code"]
    first = await exchange(http, slack, {"code": code, "redirect_uri": CALLBACK})
    slack.expire_token(first["access_token"])
    _, expired, _ = await api(http, slack, "auth.test", first["access_token"])
    assert expired == {"ok": False, "error": "token_expired"}

    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = await exchange(http, slack, refresh)
    assert second["ok"] is True
    assert second["token_type"] == "bot"
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    _, me, _ = await api(http, slack, "auth.test", second["access_token"])
    assert me["ok"] is True
    # The old refresh token was used up by the rotation.
    assert await exchange(http, slack, refresh) == {"ok": False, "error": "invalid_refresh_token"}


async def test_a_short_lifetime_setting_makes_tokens_expire_on_their_own(
    http: aiohttp.ClientSession,
) -> None:
    sim = SlackSimulator(token_lifetime=0.5)
    await sim.start()
    try:
        (code,) = (await consent(http, sim, "Allow"))["code"]
        tokens = await exchange(http, sim, {"code": code, "redirect_uri": CALLBACK})
        assert tokens["expires_in"] == 0  # whole seconds, as Slack counts them
        deadline = time.monotonic() + 10
        error = None
        while time.monotonic() < deadline:
            _, answer, _ = await api(http, sim, "auth.test", tokens["access_token"])
            error = answer.get("error")
            if error:
                break
            await asyncio.sleep(0.1)
        assert error == "token_expired"
        async with http.put(f"{sim.url}/_sim/token-lifetime", json={"seconds": None}) as r:
            assert r.status == 200
        no_rotation = await exchange(
            http, sim, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        assert no_rotation["ok"] is True
        assert "refresh_token" not in no_rotation
        assert "expires_in" not in no_rotation
    finally:
        await sim.stop()


async def test_web_api_auth_errors_are_http_200_with_ok_false(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    token = slack.issue_token()
    status, answer, _ = await api(http, slack, "auth.test", None)
    assert (status, answer) == (200, {"ok": False, "error": "not_authed"})
    status, answer, _ = await api(http, slack, "auth.test", "xoxb-nope")
    assert (status, answer) == (200, {"ok": False, "error": "invalid_auth"})
    # A token in the query string is refused, in a form body accepted (slack-api.md §2).
    _, answer, _ = await api(http, slack, "auth.test", None, get={"token": token})
    assert answer == {"ok": False, "error": "not_authed"}
    _, answer, _ = await api(http, slack, "auth.test", None, form={"token": token})
    assert answer["ok"] is True
    status, answer, _ = await api(http, slack, "no.suchMethod", token)
    assert (status, answer) == (404, {"ok": False, "error": "unknown_method"})
    async with http.put(f"{slack.api_url}/auth.test") as put:
        assert (put.status, await put.json()) == (405, {"ok": False, "error": "method_not_allowed"})


async def test_ratelimited_is_a_429_with_retry_after(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    token = slack.issue_token()
    payload = {"status": 429, "retryAfter": 7}
    async with http.post(f"{slack.url}/_sim/fail", json=payload) as answer:
        assert answer.status == 200
    status, body, response = await api(http, slack, "auth.test", token)
    assert (status, body) == (429, {"ok": False, "error": "ratelimited"})
    assert response.headers["Retry-After"] == "7"
    _, body, _ = await api(http, slack, "auth.test", token)
    assert body["ok"] is True


async def test_post_update_and_delete_a_message(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    token = slack.issue_token()
    general = slack.channel_named("general")
    _, posted, _ = await api(
        http, slack, "chat.postMessage", token, body={"channel": general, "text": "hello"}
    )
    assert posted["ok"] is True
    assert posted["channel"] == general
    assert posted["message"]["text"] == "hello"
    assert posted["message"]["bot_id"] == slack.bot_id
    ts = posted["ts"]
    assert isinstance(ts, str)

    blocks = json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}])
    _, updated, _ = await api(
        http,
        slack,
        "chat.update",
        token,
        form={"channel": general, "ts": ts, "text": "hi", "blocks": blocks},
    )
    assert updated["ok"] is True
    assert (updated["ts"], updated["text"]) == (ts, "hi")
    assert updated["message"]["blocks"][0]["type"] == "section"
    _, history, _ = await api(http, slack, "conversations.history", token, get={"channel": general})
    assert history["messages"][0]["text"] == "hi"
    assert history["messages"][0]["edited"]["user"] == slack.bot_user.id

    _, deleted, _ = await api(
        http, slack, "chat.delete", token, form={"channel": general, "ts": ts}
    )
    assert deleted == {"ok": True, "channel": general, "ts": ts}
    _, history, _ = await api(http, slack, "conversations.history", token, get={"channel": general})
    assert history["messages"] == []


@pytest.mark.parametrize(
    ("method", "form", "error"),
    [
        ("chat.postMessage", {"channel": "C000000000", "text": "x"}, "channel_not_found"),
        ("chat.postMessage", {"channel": "#general"}, "no_text"),
        ("chat.postMessage", {"channel": "#general", "text": "x", "blocks": "["}, "invalid_blocks"),
        (
            "chat.update",
            {"channel": "#general", "ts": "1.000001", "text": "x"},
            "message_not_found",
        ),
        ("chat.delete", {"channel": "#general", "ts": "1.000001"}, "message_not_found"),
        ("conversations.history", {"channel": "nope"}, "channel_not_found"),
        ("conversations.history", {"channel": "#general", "cursor": "!!"}, "invalid_cursor"),
        ("conversations.history", {"channel": "#general", "limit": "0"}, "invalid_limit"),
        ("conversations.list", {"types": "shared_channel"}, "invalid_types"),
        ("users.list", {"cursor": "bm90LWEtY3Vyc29y"}, "invalid_cursor"),
    ],
)
async def test_method_errors(
    slack: SlackSimulator,
    http: aiohttp.ClientSession,
    method: str,
    form: dict[str, str],
    error: str,
) -> None:
    status, answer, _ = await api(http, slack, method, slack.issue_token(), form=form)
    assert (status, answer) == (200, {"ok": False, "error": error})


async def test_only_your_own_messages_can_be_changed(
    slack: SlackSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    slack.request_url = receiver.url
    general = slack.channel_named("general")
    envelope, _ = await slack.send_event(general, text="mine")
    ts = envelope["event"]["ts"]
    token = slack.issue_token()
    form = {"channel": general, "ts": ts, "text": "yours now"}
    _, answer, _ = await api(http, slack, "chat.update", token, form=form)
    assert answer == {"ok": False, "error": "cant_update_message"}
    _, answer, _ = await api(http, slack, "chat.delete", token, form=form)
    assert answer == {"ok": False, "error": "cant_delete_message"}


async def test_history_pages_by_cursor_newest_first_to_the_end_exactly_once(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    token = slack.issue_token()
    random = slack.channel_named("random")
    posted = []
    for n in range(7):
        _, answer, _ = await api(
            http, slack, "chat.postMessage", token, form={"channel": random, "text": f"m{n}"}
        )
        posted.append(answer["ts"])

    seen: list[str] = []
    params = {"channel": random, "limit": "3"}
    pages = 0
    while True:
        _, page, _ = await api(http, slack, "conversations.history", token, get=params)
        pages += 1
        seen += [m["ts"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break
        params = {**params, "cursor": cursor}
    assert seen == list(reversed(posted))
    assert pages == 3

    window = {"channel": random, "oldest": posted[1], "latest": posted[4]}
    _, page, _ = await api(http, slack, "conversations.history", token, get=window)
    assert [m["ts"] for m in page["messages"]] == [posted[3], posted[2]]
    _, page, _ = await api(
        http, slack, "conversations.history", token, get={**window, "inclusive": "true"}
    )
    assert [m["ts"] for m in page["messages"]] == list(reversed(posted[1:5]))


async def test_channels_and_users_list_in_cursor_pages(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    token = slack.issue_token()
    for n in range(3):
        slack.add_channel(f"team-{n}")
        slack.add_user(f"user{n}")
    secret = slack.add_channel("secret", private=True)

    async def read_all(method: str, key: str, **params: str) -> list[str]:
        ids: list[str] = []
        query = {"limit": "2", **params}
        while True:
            _, page, _ = await api(http, slack, method, token, get=query)
            assert page["ok"] is True, page
            ids += [item["id"] for item in page[key]]
            if not page["response_metadata"]["next_cursor"]:
                return ids
            query["cursor"] = page["response_metadata"]["next_cursor"]

    public = await read_all("conversations.list", "channels")
    assert len(public) == len(set(public)) == 5
    assert secret not in public
    both = await read_all("conversations.list", "channels", types="public_channel,private_channel")
    assert secret in both
    members = await read_all("users.list", "members")
    assert sorted(members) == sorted(slack.users)


async def test_a_message_event_is_signed_with_the_v0_scheme(
    slack: SlackSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    async with http.put(f"{slack.url}/_sim/request-url", json={"url": receiver.url}) as answer:
        assert answer.status == 200
    general = slack.channel_named("general")
    async with http.post(
        f"{slack.url}/_sim/events", json={"channel": general, "text": "hi there"}
    ) as answer:
        assert answer.status == 200
        result = await answer.json()
    assert [d["status"] for d in result["deliveries"]] == [200]

    (received,) = receiver.requests
    assert valid_signature(slack.signing_secret, received)
    assert abs(int(received.headers["x-slack-request-timestamp"]) - time.time()) < 300
    assert "x-slack-retry-num" not in received.headers
    envelope = received.json()
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev")
    assert envelope["team_id"] == slack.team_id
    assert envelope["event"]["type"] == "message"
    assert envelope["event"]["text"] == "hi there"
    assert envelope["event"]["channel"] == general
    tampered = Received(received.at, received.headers, received.body.replace(b"hi", b"ho"), 200)
    assert not valid_signature(slack.signing_secret, tampered)
    assert not valid_signature("another-secret", received)

    # Edits and deletes arrive as message_changed / message_deleted.
    ts = envelope["event"]["ts"]
    await slack.send_event(general, action="edit", ts=ts, text="hi again")
    await slack.send_event(general, action="delete", ts=ts, timestamp=1_600_000_000)
    changed, deleted = (r.json()["event"] for r in receiver.requests[1:])
    assert (changed["subtype"], changed["message"]["text"]) == ("message_changed", "hi again")
    assert changed["previous_message"]["text"] == "hi there"
    assert (deleted["subtype"], deleted["deleted_ts"]) == ("message_deleted", ts)
    assert receiver.requests[2].headers["x-slack-request-timestamp"] == "1600000000"
    assert all(valid_signature(slack.signing_secret, r) for r in receiver.requests)
    token = slack.issue_token()
    _, history, _ = await api(http, slack, "conversations.history", token, get={"channel": general})
    assert history["messages"] == []


async def test_failed_deliveries_are_retried_with_the_retry_headers(
    slack: SlackSimulator, receiver: CallbackReceiver
) -> None:
    slack.request_url = receiver.url
    receiver.fail_next(2, 500)
    _, deliveries = await slack.send_event(slack.channel_named("general"), text="again")

    assert [d.status for d in deliveries] == [500, 500, 200]
    retries = [r.headers.get("x-slack-retry-num") for r in receiver.requests]
    assert retries == [None, "1", "2"]
    assert {r.headers.get("x-slack-retry-reason") for r in receiver.requests[1:]} == {"http_error"}
    assert len({r.json()["event_id"] for r in receiver.requests}) == 1
    assert all(valid_signature(slack.signing_secret, r) for r in receiver.requests)

    # Slack resends what it thinks timed out: same event, retry headers, a 2xx each time.
    _, deliveries = await slack.send_event(
        slack.channel_named("general"), text="slow", duplicates=1
    )
    assert [d.status for d in deliveries] == [200, 200]
    last = receiver.requests[-1]
    assert (last.headers["x-slack-retry-num"], last.headers["x-slack-retry-reason"]) == (
        "1",
        "http_timeout",
    )
    assert last.json()["event_id"] == receiver.requests[-2].json()["event_id"]


async def test_an_unreachable_request_url_is_tried_four_times(slack: SlackSimulator) -> None:
    slack.request_url = f"http://127.0.0.1:{free_port()}/events"
    _, deliveries = await slack.send_event(slack.channel_named("general"), text="lost")
    assert [d.status for d in deliveries] == [0, 0, 0, 0]


@pytest_asyncio.fixture
async def challenge_answerer(slack: SlackSimulator) -> AsyncIterator[str]:
    """A Request URL that checks the signature with hmac and answers the challenge."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers["X-Slack-Request-Timestamp"]
        expected = hmac.new(
            slack.signing_secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(f"v0={expected}", request.headers["X-Slack-Signature"]):
            return web.Response(status=403)
        payload = json.loads(body)
        return web.Response(text=payload["challenge"], content_type="text/plain")

    app = web.Application()
    app.router.add_post("/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/events"
    finally:
        await runner.cleanup()


async def test_url_verification_sends_a_signed_challenge(
    slack: SlackSimulator,
    http: aiohttp.ClientSession,
    challenge_answerer: str,
    receiver: CallbackReceiver,
) -> None:
    async with http.post(
        f"{slack.url}/_sim/url-verification", json={"url": challenge_answerer}
    ) as answer:
        result = await answer.json()
    assert result["verified"] is True
    assert result["delivery"]["status"] == 200

    # A receiver that does not echo the challenge fails the check.
    slack.request_url = receiver.url
    verified, _ = await slack.verify_url()
    assert verified is False
    payload = receiver.requests[0].json()
    assert payload["type"] == "url_verification"
    assert payload["challenge"]
    assert valid_signature(slack.signing_secret, receiver.requests[0])


async def test_the_controls_list_themselves_and_refuse_bad_input(
    slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{slack.url}/_sim/") as answer:
        paths = {c["path"] for c in (await answer.json())["controls"]}
    assert {"/_sim/events", "/_sim/request-url", "/_sim/url-verification"} <= paths
    async with http.get(f"{slack.url}/_sim/health") as answer:
        health = await answer.json()
    assert health["clientId"] == slack.client_id
    assert health["signingSecret"] == slack.signing_secret
    assert health["tokenUrl"] == f"{slack.url}/api/oauth.v2.access"
    async with http.post(f"{slack.url}/_sim/events", json={"channel": "#general"}) as answer:
        assert answer.status == 409  # no Request URL yet
    slack.request_url = "http://127.0.0.1:9/unused"
    bad_events = [
        {"channel": "nope"},
        {"channel": "#general", "action": "edit", "ts": "1.0"},
    ]
    for payload in bad_events:
        async with http.post(f"{slack.url}/_sim/events", json=payload) as answer:
            assert answer.status == 404, payload
    async with http.post(
        f"{slack.url}/_sim/events", json={"channel": "#general", "action": "shout"}
    ) as answer:
        assert answer.status == 400
    async with http.put(f"{slack.url}/_sim/token-lifetime", json={"seconds": -1}) as answer:
        assert answer.status == 400
    async with http.post(f"{slack.url}/_sim/tokens", json={}) as answer:
        token = (await answer.json())["token"]
    async with http.post(f"{slack.url}/_sim/tokens/expire", json={"token": token}) as answer:
        assert answer.status == 200
    _, body, _ = await api(http, slack, "auth.test", token)
    assert body["error"] == "token_expired"
    async with http.post(f"{slack.url}/_sim/tokens/expire", json={"token": "x"}) as answer:
        assert answer.status == 404
    async with http.post(f"{slack.url}/_sim/channels", json={"name": "ops"}) as answer:
        assert (await answer.json())["name"] == "ops"
    async with http.post(f"{slack.url}/_sim/users", json={"name": "eve"}) as answer:
        assert (await answer.json())["name"] == "eve"


async def test_x_slack_no_retry_stops_the_retries(slack: SlackSimulator) -> None:
    tries: list[str | None] = []

    async def refuse(request: web.Request) -> web.Response:
        tries.append(request.headers.get("X-Slack-Retry-Num"))
        return web.Response(status=503, headers={"X-Slack-No-Retry": "1"})

    app = web.Application()
    app.router.add_post("/events", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        slack.request_url = f"http://127.0.0.1:{port}/events"
        _, deliveries = await slack.send_event(slack.channel_named("general"), text="once")
    finally:
        await runner.cleanup()
    assert [d.status for d in deliveries] == [503]
    assert tries == [None]
