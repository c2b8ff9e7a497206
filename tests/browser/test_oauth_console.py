"""The console's catalog from the registry, and Slack's "Authenticate" as an OAuth round trip
(issue 10 item 8): Hubgate's form, the simulator's consent page, the callback, the instance."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from hubgate.console.forms import visible_entries
from sims.slack import SlackSimulator
from tests.browser.conftest import DESKTOP, Watched, _watch, sign_in
from tests.conftest import Api, RunningHubgate, TenantCredentials

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture
async def oauth_tab(
    browser: Browser, hubgate: RunningHubgate, slack: SlackSimulator
) -> AsyncIterator[Watched]:
    """A tab that may also visit the Slack simulator, the one other host of the round trip."""
    context = await browser.new_context(viewport=DESKTOP, base_url=hubgate.url)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    watched = _watch(context, page, hubgate.url)
    yield watched
    await context.close()
    others = [u for u in watched.foreign_requests if not u.startswith(slack.url + "/")]
    assert others == [], "a page asked a host other than Hubgate and the vendor"
    assert watched.problems == [], "a page reported errors"


async def test_the_catalog_shows_every_registered_connector_with_its_form(
    tab: Watched, tenant: TenantCredentials, hubgate: RunningHubgate
) -> None:
    page = tab.page
    await sign_in(tab, tenant)
    await page.goto("/catalog")
    registry = hubgate.runtime.registry
    for element in registry:
        card = page.get_by_role("link", name=f"Authenticate {element.manifest.name}")
        await expect(card).to_be_visible()
    for element in registry:
        await page.goto(f"/catalog/{element.key}")
        await page.get_by_text("Advanced settings").click()
        # Every entry a person may set is a labelled control of the form, secrets included.
        for entry in visible_entries(element.manifest):
            label = re.compile(f"^{re.escape(entry.name)}( required)?$")
            await expect(page.get_by_label(label)).to_be_visible()


async def test_authenticate_slack_through_its_consent_page(
    oauth_tab: Watched,
    tenant: TenantCredentials,
    slack: SlackSimulator,
    api: Api,
    hubgate: RunningHubgate,
) -> None:
    page = oauth_tab.page
    await sign_in(oauth_tab, tenant)
    await page.goto("/catalog")
    await page.get_by_role("link", name="Authenticate Slack").click()
    await expect(page.get_by_role("heading", name="Authenticate Slack")).to_be_visible()
    callback = page.get_by_label(re.compile("^Callback URL"))
    await expect(callback).to_have_value(f"{hubgate.url}/catalog/slack/callback")
    await page.get_by_label("Client ID").fill(slack.client_id)
    await page.get_by_label("Client Secret").fill(slack.client_secret)
    await page.get_by_label("Signing Secret").fill(slack.signing_secret)
    await page.get_by_label("Name", exact=True).fill("Team chat")
    await page.get_by_text("Advanced settings").click()
    await page.get_by_label("Base URL").fill(slack.api_url)
    await page.get_by_label("Authorization URL").fill(slack.authorize_url)
    await page.get_by_label("Token URL").fill(slack.token_url)
    await page.get_by_role("button", name="Authenticate").click()

    # The simulator's consent page, then back through Hubgate's callback to the instance.
    await expect(page.get_by_role("button", name="Allow")).to_be_visible()
    await expect(page.locator("#scopes")).to_have_text(
        "chat:write,channels:read,channels:history,users:read"
    )
    await oauth_tab.shoot("slack-consent")
    await page.get_by_role("button", name="Allow").click()
    await expect(page).to_have_url(re.compile(r"/instances/\d+\?done=created$"))
    await expect(page.get_by_text("Authenticated.")).to_be_visible()
    await oauth_tab.shoot("slack-instance")

    instance_id = int(re.findall(r"/instances/(\d+)", page.url)[0])
    shown = (await api.get(f"instances/{instance_id}")).body
    assert shown["name"] == "Team chat"
    assert shown["element"]["key"] == "slack"
    assert shown["valid"] is True
    assert len(slack.tokens) == 1


async def test_a_denied_or_foreign_return_saves_nothing(
    oauth_tab: Watched, tenant: TenantCredentials, slack: SlackSimulator, api: Api
) -> None:
    page = oauth_tab.page
    await sign_in(oauth_tab, tenant)
    # A return no authentication here started (a forged link): refused, nothing saved.
    await page.goto("/catalog/slack/callback?code=abc&state=forged")
    await expect(page.get_by_text("does not match an authentication started here")).to_be_visible()

    await page.goto("/catalog/slack")
    await page.get_by_label("Client ID").fill(slack.client_id)
    await page.get_by_label("Client Secret").fill(slack.client_secret)
    await page.get_by_text("Advanced settings").click()
    await page.get_by_label("Authorization URL").fill(slack.authorize_url)
    await page.get_by_label("Token URL").fill(slack.token_url)
    await page.get_by_label("Base URL").fill(slack.api_url)
    await page.get_by_role("button", name="Authenticate").click()
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_text("Slack did not grant access (access_denied)")).to_be_visible()
    assert (await api.get("instances")).body == []


async def test_sendgrids_form_asks_for_its_api_key_and_webhook_public_key(
    tab: Watched, tenant: TenantCredentials
) -> None:
    page = tab.page
    await sign_in(tab, tenant)
    await page.goto("/catalog/sendgrid")
    await expect(page.get_by_role("heading", name="Authenticate SendGrid")).to_be_visible()
    # Up front, not folded away: the key as a secret field, the public key as text.
    api_key = page.get_by_label(re.compile("^API key"))
    await expect(api_key).to_be_visible()
    await expect(api_key).to_have_attribute("type", "password")
    public_key = page.get_by_label(re.compile("^Event Webhook public key"))
    await expect(public_key).to_be_visible()
    await expect(public_key).to_have_attribute("type", "text")
