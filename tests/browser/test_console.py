"""A person in a browser: sign in, authenticate Twilio, use and manage the instance (issue 5)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from sims.twilio_sim import TwilioSimulator
from tests.browser.conftest import Watched, sign_in
from tests.conftest import Api, TenantCredentials
from tests.instances.test_lifecycle import provision

pytestmark = pytest.mark.browser


async def fill_twilio_form(
    tab: Watched, sim: TwilioSimulator, *, sid: str | None, token: str
) -> None:
    page = tab.page
    await page.goto("/catalog/twiliov2")
    if sid is not None:
        await page.get_by_label("Account SID").fill(sid)
    await page.get_by_label("Auth Token").fill(token)
    await page.get_by_label("Name").fill("Support line")
    await page.get_by_label("Tags").fill("support, eu")
    # The simulator's address lives in the folded-away advanced settings.
    await page.get_by_text("Advanced settings").click()
    await page.get_by_label("Base URL").fill(sim.base_url)


async def test_sign_in_authenticate_twilio_and_see_the_instance(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator, api: Api
) -> None:
    page = tab.page
    await tab.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/signin$"))
    await tab.shoot("signin")
    # Keyboard only: the form is reachable with Tab and sent with Enter.
    for _ in range(10):
        if await page.evaluate("document.activeElement.id") == "user-secret":
            break
        await page.keyboard.press("Tab")
    await page.keyboard.type(tenant.user_secret)
    await page.keyboard.press("Tab")
    await page.keyboard.type(tenant.organization_secret)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/instances$"))
    await expect(page.get_by_text("No instances yet")).to_be_visible()

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    await expect(page.get_by_role("heading", name="Twilio V2")).to_be_visible()
    await expect(page.get_by_text("Messaging", exact=False).first).to_be_visible()
    await page.get_by_label("Filter connectors").fill("no such connector")
    await expect(page.get_by_role("heading", name="Twilio V2")).to_be_hidden()
    await page.get_by_label("Filter connectors").fill("sms")
    await expect(page.get_by_role("heading", name="Twilio V2")).to_be_visible()
    await tab.shoot("catalog")

    await page.get_by_role("link", name="Authenticate Twilio V2").click()
    await expect(page.get_by_role("heading", name="Authenticate Twilio V2")).to_be_visible()
    await expect(page.get_by_label("Base URL")).to_be_hidden()
    await tab.shoot("authenticate")
    await fill_twilio_form(tab, sim, sid=sim.account_sid, token=sim.auth_token)
    await page.get_by_role("button", name="Authenticate", exact=True).click()

    await expect(page).to_have_url(re.compile(r"/instances/\d+\?done=created$"))
    (created,) = (await api.get("instances")).body
    await expect(page.get_by_role("heading", name="Support line")).to_be_visible()
    await expect(page.get_by_text("Enabled", exact=True)).to_be_visible()
    secret_row = page.get_by_role("row", name=re.compile("Auth Token"))
    await expect(secret_row).to_contain_text("********")
    await expect(page.get_by_role("link", name="support")).to_be_visible()
    for step in ("Try the API", "Map to a common resource", "Use in a formula"):
        await expect(page.get_by_role("link", name=step)).to_be_visible()
    assert created["token"] not in await page.content()
    await tab.shoot("instance")
    await tab.shoot("instance-top", full_page=False)

    await page.get_by_role("button", name="Reveal token").click()
    await expect(page.locator("#instance-token")).to_have_text(created["token"])
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == created["token"]

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"/instances/{created['id']}")
    # Usable on a phone: nothing wider than the screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await tab.shoot("instance-narrow")

    await page.get_by_role("link", name="Map to a common resource").click()
    await expect(page.get_by_label("Common resource")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await tab.shoot("mapping-narrow")


async def test_api_docs_send_get_messages_from_swagger_ui(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator, api: Api
) -> None:
    # An account of its own, so that the message below shows up in no other test.
    sid, token = sim.add_account()
    sim.add_inbound_message("+15550001111", "+15550002222", "Hello from the docs", account_sid=sid)
    created = await provision(
        api,
        sim,
        configuration={"username": sid, "password": token, "base.url": sim.base_url},
    )
    await sign_in(tab, tenant)
    page = tab.page
    await page.goto(f"/instances/{created['id']}")
    await page.get_by_role("link", name="Try the API").click()
    operation = page.locator(
        '.opblock-get:has(.opblock-summary-path[data-path="/hubs/messaging/messages"])'
    )
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    await expect(status).to_have_text("200")
    await expect(operation.locator(".live-responses-table")).to_contain_text("Hello from the docs")
    await expect(operation.locator(".request-url")).to_contain_text(
        "/elements/api-v2/hubs/messaging/messages"
    )
    await operation.locator(".live-responses-table").scroll_into_view_if_needed()
    await tab.shoot("api-docs", full_page=False)
    assert [r for r in sim.requests if r.path.endswith(f"/Accounts/{sid}/Messages.json")]


async def test_wrong_auth_token_shows_twilios_rejection_next_to_the_field(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator, api: Api
) -> None:
    await sign_in(tab, tenant)
    await fill_twilio_form(tab, sim, sid=sim.account_sid, token="not-the-token")
    page = tab.page
    await page.get_by_role("button", name="Authenticate", exact=True).click()
    error = page.locator("#cfg-password-error")
    await expect(error).to_contain_text("Twilio rejected the credentials")
    await expect(error).to_contain_text("Twilio says: Authenticate (code 20003)")
    # The error is announced with the field it belongs to.
    await expect(page.get_by_label("Auth Token")).to_have_attribute(
        "aria-describedby", re.compile("cfg-password-error")
    )
    await expect(page.get_by_label("Auth Token")).to_have_value("")
    await expect(page.get_by_label("Account SID")).to_have_value(sim.account_sid)
    await expect(page.get_by_label("Name")).to_have_value("Support line")
    await tab.shoot("authenticate-rejected")
    assert (await api.get("instances")).body == []


async def test_missing_sid_is_named(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator
) -> None:
    await sign_in(tab, tenant)
    await fill_twilio_form(tab, sim, sid=None, token=sim.auth_token)
    page = tab.page
    await page.get_by_role("button", name="Authenticate", exact=True).click()
    await expect(page.locator("#cfg-username-error")).to_have_text("Account SID is required.")
    await expect(page.get_by_role("alert")).to_contain_text("Missing: Account SID.")
    await expect(page.get_by_label("Base URL")).to_have_value(sim.base_url)
    await tab.shoot("authenticate-missing")


async def test_disable_enable_and_delete(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator, api: Api
) -> None:
    created = await provision(api, sim)
    await sign_in(tab, tenant)
    page = tab.page
    await tab.shoot("instances")
    await page.get_by_role("link", name="my-twilio").click()
    await page.get_by_role("link", name="Edit").click()
    await expect(page.get_by_label("Auth Token")).to_have_value("")
    await expect(page.get_by_label("Account SID")).to_have_value(sim.account_sid)
    await tab.shoot("edit")
    await page.get_by_label("Tags").fill("seed, renamed")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Saved.")).to_be_visible()
    await expect(page.get_by_role("link", name="renamed")).to_be_visible()
    await page.get_by_role("button", name="Disable").click()
    await expect(page.get_by_text("Disabled", exact=True)).to_be_visible()
    assert (await api.get(f"instances/{created['id']}")).body["disabled"] is True
    # The hub hears of it at once: the token is refused (D8), then works again.
    hub = api.with_auth(f"Element {created['token']}")
    assert (await hub.get("hubs/messaging/messages")).status == 403
    await page.get_by_role("button", name="Enable").click()
    await expect(page.get_by_text("Enabled", exact=True)).to_be_visible()
    assert (await api.get(f"instances/{created['id']}")).body["disabled"] is False
    assert (await hub.get("hubs/messaging/messages")).status == 200

    await page.get_by_role("link", name="Delete…").click()
    await expect(page.get_by_role("heading", name="Delete “my-twilio”?")).to_be_visible()
    await tab.shoot("delete")
    await page.get_by_role("button", name="Delete instance").click()
    await expect(page).to_have_url(re.compile(r"/instances\?deleted="))
    assert (await hub.get("hubs/messaging/messages")).status == 401
    await expect(page.get_by_text("Deleted “my-twilio”.")).to_be_visible()
    await expect(page.get_by_role("link", name="my-twilio")).to_have_count(0)
    assert (await api.get(f"instances/{created['id']}")).status == 404


async def test_another_tenants_instance_url_gives_a_404_page(
    tab: Watched,
    other_tenant: TenantCredentials,
    sim: TwilioSimulator,
    api: Api,
) -> None:
    created = await provision(api, sim)
    await sign_in(tab, other_tenant)
    response = await tab.page.goto(f"/instances/{created['id']}")
    assert response is not None
    assert response.status == 404
    await expect(tab.page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(tab.page.get_by_text(f"There is no instance {created['id']}")).to_be_visible()
    await tab.shoot("not-found")
