"""The Slack OAuth round trip as a client of Hubgate makes it, against the Slack simulator.

Shared by the Slack element's tests and its events tests: ``/oauth/url``, the consent page
submitted as a browser would, the code from the redirect, ``POST /instances``.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from sims.slack import SlackSimulator
from tests.conftest import Api

CALLBACK = "http://127.0.0.1:9/slack/callback"
SCOPE = "chat:write, channels:read, channels:history, users:read"


def overrides(sim: SlackSimulator) -> dict[str, str]:
    return {
        "base.url": sim.api_url,
        "oauth.authorization.url": sim.authorize_url,
        "oauth.token.url": sim.token_url,
    }


async def oauth_url(api: Api, sim: SlackSimulator, state: str = "s-1") -> str:
    params = {
        "apiKey": sim.client_id,
        "apiSecret": sim.client_secret,
        "callbackUrl": CALLBACK,
        "scope": SCOPE,
        "state": state,
        **overrides(sim),
    }
    answer = await api.with_auth(None).get("elements/slack/oauth/url", params=params)
    assert answer.status == 200, answer.text
    assert answer.body["element"] == "slack"
    url: str = answer.body["oauthUrl"]
    return url


async def consent(http: aiohttp.ClientSession, sim: SlackSimulator, url: str) -> dict[str, str]:
    """Open the consent page, press "Allow"; the query the browser is sent back with."""
    async with http.get(url) as page:
        assert page.status == 200, await page.text()
        text = await page.text()
    form = {
        name: html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', text)
    }
    form["decision"] = "allow"
    async with http.post(sim.authorize_url, data=form, allow_redirects=False) as answer:
        assert answer.status == 302
        location = answer.headers["Location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def instance_body(sim: SlackSimulator, code: str | None, **configuration: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "element": {"key": "slack"},
        "name": "Slack workspace",
        "configuration": {
            "oauth.api.key": sim.client_id,
            "oauth.api.secret": sim.client_secret,
            "oauth.callback.url": CALLBACK,
            "oauth.scope": SCOPE,
            "slack.signing.secret": sim.signing_secret,
            **overrides(sim),
            **configuration,
        },
    }
    if code is not None:
        body["providerData"] = {"code": code}
    return body


async def provision(
    api: Api, http: aiohttp.ClientSession, sim: SlackSimulator, **configuration: Any
) -> dict[str, Any]:
    """A Slack instance made the way Open Connectors' clients make one."""
    back = await consent(http, sim, await oauth_url(api, sim))
    answer = await api.post("instances", json=instance_body(sim, back["code"], **configuration))
    assert answer.status == 200, answer.text
    watch_secrets(sim)
    instance: dict[str, Any] = answer.body
    return instance


def watch_secrets(sim: SlackSimulator) -> None:
    """The app's secrets and every token it gave: none may appear in any log of the run."""
    from tests.logwatch import remember_secret  # a plugin: imported once pytest loaded it

    remember_secret(sim.client_secret, sim.signing_secret, *sim.tokens, *sim.refresh_tokens)


def element_auth(api: Api, instance: dict[str, Any]) -> Api:
    return api.with_auth(f"Element {instance['token']}, {api.authorization}")
