"""The ``slack`` element over real HTTP against the Slack simulator (issue 10 item 6; D55, D56).

OAuth provisioning as Open Connectors' clients do it, tokens kept hidden and refreshed without
the caller noticing, a refused refresh marking the instance invalid, the hub's lists, writes
and Slack's ``{"ok": false}`` errors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sqlalchemy import select

from hubgate.instances.models import Instance
from hubgate.runtime import Runtime
from sims.slack import SlackSimulator
from tests.conftest import Api, RunningHubgate
from tests.elements.slack_flow import (
    CALLBACK,
    consent,
    element_auth,
    instance_body,
    oauth_url,
    provision,
    watch_secrets,
)


def live_tokens(sim: SlackSimulator) -> list[str]:
    now = time.time()
    return [t for t, v in sim.tokens.items() if v.expires_at is None or v.expires_at > now]


async def stored(runtime: Runtime, instance_id: int) -> Instance:
    async with runtime.sessions() as session:
        found = await session.execute(select(Instance).where(Instance.id == instance_id))
        return found.scalar_one()


async def test_oauth_url_is_slacks_consent_page_with_the_callers_values(
    api: Api, slack: SlackSimulator
) -> None:
    url = await oauth_url(api, slack, state="opaque-42")
    assert url.startswith(slack.authorize_url + "?")
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [slack.client_id]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["state"] == ["opaque-42"]
    # Slack wants comma-separated scopes whatever the caller wrote.
    assert query["scope"] == ["chat:write,channels:read,channels:history,users:read"]
    assert slack.client_secret not in url


async def test_oauth_url_refuses_missing_values_and_unreachable_overrides(api: Api) -> None:
    anonymous = api.with_auth(None)
    missing = await anonymous.get("elements/slack/oauth/url", params={"apiKey": "k"})
    assert missing.status == 400
    assert "apiSecret" in missing.body["message"]
    assert "callbackUrl" in missing.body["message"]
    params = {
        "apiKey": "k",
        "apiSecret": "s",
        "callbackUrl": CALLBACK,
        "oauth.token.url": "http://169.254.169.254/latest",
    }
    denied = await anonymous.get("elements/slack/oauth/url", params=params)
    assert denied.status == 400
    assert "oauth.token.url" in denied.body["message"]
    unreadable = await anonymous.get(
        "elements/slack/oauth/url", params={**params, "callbackUrl": "http://[::1"}
    )
    assert unreadable.status == 400, unreadable.text
    assert "callbackUrl" in unreadable.body["message"]
    twilio = await anonymous.get(
        "elements/twiliov2/oauth/url",
        params={"apiKey": "k", "apiSecret": "s", "callbackUrl": CALLBACK},
    )
    assert twilio.status == 400


async def test_the_oauth_round_trip_provisions_an_instance_with_hidden_tokens(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator, hubgate: RunningHubgate
) -> None:
    instance = await provision(api, http, slack)
    assert instance["element"]["key"] == "slack"
    assert instance["valid"] is True
    configuration = instance["configuration"]
    assert configuration["oauth.api.secret"] == "********"
    assert configuration["slack.signing.secret"] == "********"
    assert not [key for key in configuration if key.startswith("oauth.user")]
    [token] = live_tokens(slack)
    assert token not in str(instance)

    shown = await api.get(f"instances/{instance['id']}")
    entries = await api.get(f"instances/{instance['id']}/configuration")
    for answer in (shown, entries):
        assert answer.status == 200
        assert token not in answer.text
        assert "oauth.user" not in answer.text
    row = await stored(hubgate.runtime, instance["id"])
    assert set(row.secrets) >= {"oauth.user.token", "oauth.user.refresh_token"}
    assert token not in str(row.secrets)
    assert token not in str(row.configuration)

    channels = await element_auth(api, instance).get("hubs/collaboration/channels")
    assert channels.status == 200, channels.text
    assert {c["name"] for c in channels.body} == {"general", "random"}


async def test_a_refused_or_missing_code_saves_nothing(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    before = (await api.get("instances")).body
    refused = await api.post("instances", json=instance_body(slack, "not-a-code"))
    assert refused.status == 400, refused.text
    assert refused.body["providerCode"] == "invalid_code"
    missing = await api.post("instances", json=instance_body(slack, None))
    assert missing.status == 400
    assert "OAuth code" in missing.body["message"]
    back = await consent(http, slack, await oauth_url(api, slack))
    wrong_secret = instance_body(slack, back["code"], **{"oauth.api.secret": "wrong"})
    answer = await api.post("instances", json=wrong_secret)
    assert answer.status == 400
    assert answer.body["providerCode"] == "bad_client_secret"
    assert (await api.get("instances")).body == before


async def test_an_expired_token_is_refreshed_mid_use_without_the_caller_noticing(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    instance = await provision(api, http, slack)
    hub = element_auth(api, instance)
    assert (await hub.get("hubs/collaboration/users")).status == 200
    [first] = live_tokens(slack)
    refresh_tokens = set(slack.refresh_tokens)
    slack.expire_token(first)

    answer = await hub.get("hubs/collaboration/users")
    assert answer.status == 200, answer.text
    assert {u["name"] for u in answer.body} >= {"ada", "hubgate"}
    [second] = live_tokens(slack)
    assert second != first
    # Rotation: the old refresh token was spent, a new one is kept and used next time.
    assert not refresh_tokens & set(slack.refresh_tokens)
    slack.expire_token(second)
    assert (await hub.get("hubs/collaboration/channels")).status == 200
    assert (await api.get(f"instances/{instance['id']}")).body["valid"] is True
    watch_secrets(slack)


async def test_concurrent_calls_with_an_expired_token_refresh_it_once(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    instance = await provision(api, http, slack)
    hub = element_auth(api, instance)
    [first] = live_tokens(slack)
    slack.expire_token(first)
    # Slack's refresh tokens work once: a second refresh with the same one would be refused
    # and mark the instance invalid. The row lock lets one call refresh; the others use its
    # token.
    answers = await asyncio.gather(*(hub.get("hubs/collaboration/users") for _ in range(6)))
    assert [a.status for a in answers] == [200] * 6, [a.text for a in answers]
    assert len(slack.tokens) == 2
    assert (await api.get(f"instances/{instance['id']}")).body["valid"] is True
    watch_secrets(slack)


async def test_a_token_near_its_expiry_is_refreshed_before_it_is_used(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    # Tokens that live a minute are within Hubgate's refresh margin from the start.
    slack.token_lifetime = 60
    instance = await provision(api, http, slack)
    [first] = live_tokens(slack)
    assert (await element_auth(api, instance).get("hubs/collaboration/channels")).status == 200
    # Refreshed once, before the call: a second token, the first one's refresh token spent.
    assert len(slack.tokens) == 2
    assert [t for t in live_tokens(slack) if t != first]
    watch_secrets(slack)


async def test_a_refused_refresh_marks_the_instance_invalid_with_the_reason(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    instance = await provision(api, http, slack)
    [token] = live_tokens(slack)
    slack.refresh_tokens.clear()  # revoked, as an uninstalled app's are
    slack.expire_token(token)

    hub = element_auth(api, instance)
    answer = await hub.get("hubs/collaboration/channels")
    assert answer.status == 502, answer.text
    assert answer.body["providerCode"] == "invalid_refresh_token"
    assert "authenticate again" in answer.body["message"]
    shown = (await api.get(f"instances/{instance['id']}")).body
    assert shown["valid"] is False
    assert "invalid_refresh_token" in shown["invalidReason"]
    again = await hub.get("hubs/collaboration/channels")
    assert again.status == 502
    assert "authenticated again" in again.body["message"]


async def post(hub: Api, channel: str, text: str) -> dict[str, Any]:
    answer = await hub.post(f"hubs/collaboration/channels/{channel}/messages", json={"text": text})
    assert answer.status == 200, answer.text
    message: dict[str, Any] = answer.body
    return message


async def test_post_edit_and_delete_a_message(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    hub = element_auth(api, await provision(api, http, slack))
    channel = slack.channel_named("general")
    posted = await post(hub, channel, "hello from Hubgate")
    ts = posted["id"]
    assert posted["ts"] == ts
    assert [m["text"] for m in slack.channels[channel].messages] == ["hello from Hubgate"]

    path = f"hubs/collaboration/channels/{channel}/messages/{ts}"
    edited = await hub.patch(path, json={"text": "edited"})
    assert edited.status == 200, edited.text
    assert slack.channels[channel].messages[0]["text"] == "edited"
    assert (await hub.delete(path)).status == 200
    assert slack.channels[channel].messages == []
    gone = await hub.delete(path)
    assert gone.status == 404, gone.text
    assert gone.body["providerCode"] == "message_not_found"
    assert {"requestId", "message"} <= set(gone.body)


async def test_slack_refusals_are_d9_errors_with_the_provider_code(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    hub = element_auth(api, await provision(api, http, slack))
    missing = await hub.get("hubs/collaboration/channels/CNOPE/messages")
    assert missing.status == 404, missing.text
    assert missing.body["providerCode"] == "channel_not_found"
    assert missing.headers["Elements-Request-Id"] == missing.body["requestId"]
    empty = await hub.post(
        f"hubs/collaboration/channels/{slack.channel_named('general')}/messages", json={}
    )
    assert empty.status == 400, empty.text
    assert empty.body["providerCode"] == "no_text"


async def test_a_history_list_with_ceql_reads_every_cursor_page_once(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator
) -> None:
    hub = element_auth(api, await provision(api, http, slack))
    channel = slack.channel_named("random")
    sent = [(await post(hub, channel, f"note {n}"))["id"] for n in range(7)]

    seen: list[str] = []
    params: dict[str, str] = {"pageSize": "3"}
    pages = 0
    while True:
        answer = await hub.get(f"hubs/collaboration/channels/{channel}/messages", params=params)
        assert answer.status == 200, answer.text
        seen.extend(m["ts"] for m in answer.body)
        pages += 1
        token = answer.headers.get("Elements-Next-Page-Token")
        if not token:
            break
        params = {"pageSize": "3", "nextPage": token}
    assert seen == list(reversed(sent))  # newest first, each once
    assert pages == 3

    where = f"text = 'note 4' or ts > '{sent[5]}'"
    found = await hub.get(
        f"hubs/collaboration/channels/{channel}/messages", params={"where": where}
    )
    assert found.status == 200, found.text
    assert [m["text"] for m in found.body] == ["note 6", "note 4"]


@pytest.mark.parametrize("path", ["channels", "users"])
async def test_lists_page_through_the_vendors_cursor(
    api: Api, http: aiohttp.ClientSession, slack: SlackSimulator, path: str
) -> None:
    for n in range(4):
        slack.add_channel(f"team-{n}")
        slack.add_user(f"member-{n}")
    hub = element_auth(api, await provision(api, http, slack))
    ids: list[str] = []
    params = {"pageSize": "2"}
    while True:
        page = await hub.get(f"hubs/collaboration/{path}", params=params)
        assert page.status == 200, page.text
        assert 0 < len(page.body) <= 2
        ids.extend(r["id"] for r in page.body)
        token = page.headers.get("Elements-Next-Page-Token")
        if not token:
            break
        params = {"pageSize": "2", "nextPage": token}
    everything = await hub.get(f"hubs/collaboration/{path}")
    assert ids == [r["id"] for r in everything.body]
    assert len(ids) == len(set(ids)) == 6
