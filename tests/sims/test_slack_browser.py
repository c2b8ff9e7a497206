"""A person installs the app in Chromium: the consent page's "Allow" reaches the callback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import async_playwright

from sims.slack import SlackSimulator
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import free_port
from tests.sims.test_slack import exchange

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture
async def callback() -> AsyncIterator[str]:
    """An OAuth callback page on loopback, standing in for Hubgate's."""

    async def landed(request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>Back</title><p id='done'>Back home</p>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/oauth/callback", landed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/oauth/callback"
    finally:
        await runner.cleanup()


async def test_allow_in_chromium_redirects_with_a_code_that_exchanges(
    slack: SlackSimulator, callback: str, http: aiohttp.ClientSession
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    query = {
        "client_id": slack.client_id,
        "redirect_uri": callback,
        "state": "xyz",
        "scope": "chat:write,users:read",
    }
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{slack.authorize_url}?{urlencode(query)}")
            assert await page.locator("#scopes").inner_text() == "chat:write,users:read"
            await page.get_by_role("button", name="Allow").click()
            await page.wait_for_url(f"{callback}?**")
            assert await page.locator("#done").inner_text() == "Back home"
            landed = urlsplit(page.url)
        finally:
            await browser.close()

    params = parse_qs(landed.query)
    assert params["state"] == ["xyz"]
    tokens = await exchange(http, slack, {"code": params["code"][0], "redirect_uri": callback})
    assert tokens["ok"] is True
    assert tokens["scope"] == "chat:write,users:read"
