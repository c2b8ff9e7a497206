"""The mapper in Chromium (issue 11 item 8; D323): choose or create a common resource, map
canonical fields to the vendor resource's fields, preview on a live Twilio object, save at
instance or organization level; then the hub answers in the saved shape."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import expect

from sims.twilio_sim import TwilioSimulator
from tests.browser.conftest import Watched, sign_in
from tests.conftest import API, Api, TenantCredentials
from tests.instances.test_lifecycle import provision

pytestmark = pytest.mark.browser


async def own_instance(api: Api, sim: TwilioSimulator) -> tuple[dict[str, object], str]:
    """An instance on a Twilio account of its own, with one message in it."""
    sid, token = sim.add_account()
    sim.add_inbound_message("+15550001111", "+15550002222", "Hello mapper", account_sid=sid)
    created = await provision(
        api, sim, configuration={"username": sid, "password": token, "base.url": sim.base_url}
    )
    return created, sid


async def test_create_map_preview_and_save_for_the_instance(
    tab: Watched,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
    api: Api,
) -> None:
    created, _ = await own_instance(api, sim)
    await sign_in(tab, tenant)
    page = tab.page
    await page.goto(f"/instances/{created['id']}")
    await page.get_by_role("link", name="Map to a common resource").click()
    await expect(page.get_by_role("heading", name="Map to a common resource")).to_be_visible()
    await tab.shoot("mapper-choose")

    await page.get_by_label("Or create one named").fill("texts")
    await page.get_by_label("twiliov2 resource").select_option("messages")
    await page.get_by_role("button", name="Open the mapper").click()
    await expect(page.get_by_role("heading", name="Map texts to messages")).to_be_visible()
    # The vendor resource's fields come from its metadata.
    options = await page.locator("#vendor-0 option").all_inner_texts()
    assert "body (string)" in options
    assert "date_sent (date)" in options

    await page.get_by_label("New canonical field 1").fill("content")
    await page.get_by_label("Vendor field for new field 1").select_option("body")
    await page.get_by_label("Write name for new field 1").fill("Body")
    await page.get_by_label("New canonical field 2").fill("sender")
    await page.get_by_label("Vendor field for new field 2").select_option("from")
    await page.get_by_role("button", name="Preview on a live object").click()
    canonical = page.locator("#preview-canonical")
    await expect(canonical).to_contain_text("Hello mapper")
    assert json.loads(await canonical.inner_text()) == {
        "content": "Hello mapper",
        "sender": "+15550001111",
    }
    await expect(page.locator("#preview-vendor")).to_contain_text('"body": "Hello mapper"')
    await tab.shoot("mapper-preview")

    await page.get_by_role("button", name="Save mapping").click()
    await expect(page.get_by_text("Saved for this instance")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/mapping\?resource=texts&vendor=messages"))
    # The saved mapping comes back into the page.
    await expect(page.get_by_label("Vendor field for content")).to_have_value("body")
    await tab.shoot("mapper-saved")

    stored = await api.get(f"instances/{created['id']}/transformations/texts")
    assert stored.status == 200, stored.text
    assert stored.body["level"] == "instance"
    assert [(f["path"], f["vendorPath"]) for f in stored.body["fields"]] == [
        ("content", "body"),
        ("sender", "from"),
    ]
    hub = api.with_auth(f"Element {created['token']}")
    listed = await hub.get(f"{API}/hubs/messaging/texts")
    assert listed.status == 200, listed.text
    assert listed.body == [{"content": "Hello mapper", "sender": "+15550001111"}]


async def test_the_message_model_saved_for_the_organization(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator, api: Api
) -> None:
    created, _ = await own_instance(api, sim)
    await sign_in(tab, tenant)
    page = tab.page
    await page.goto(f"/instances/{created['id']}/mapping")
    await page.get_by_label("Common resource").select_option("messages")
    await page.get_by_role("button", name="Open the mapper").click()
    # Hubgate's model, filled from the element's default mapping.
    await expect(page.get_by_label("Vendor field for text")).to_have_value("body")
    await expect(page.get_by_label("Write name for text")).to_have_value("Body")
    await expect(page.get_by_label("Vendor field for subject")).to_have_value("")
    await page.get_by_label("Vendor field for status").select_option("")
    await page.get_by_label("the organization").check()
    await page.get_by_role("button", name="Preview on a live object").click()
    preview = json.loads(await page.locator("#preview-canonical").inner_text())
    assert preview["text"] == "Hello mapper"
    assert "status" not in preview
    await page.get_by_role("button", name="Save mapping").click()
    await expect(page.get_by_text("Saved for the organization")).to_be_visible()
    await tab.shoot("mapper-organization")
    stored = await api.get("organizations/elements/twiliov2/transformations/messages")
    assert stored.status == 200, stored.text
    assert "status" not in [f["path"] for f in stored.body["fields"]]
    definition = await api.get("organizations/objects/messages/definitions")
    assert "subject" in [f["path"] for f in definition.body["fields"]]
