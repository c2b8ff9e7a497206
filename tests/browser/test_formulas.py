"""The console's formula pages in Chromium (issue 12 item 9; D370-D372): the instance page's
"use in a formula" step opens the catalog of shipped templates and makes a formula instance
bound to the instance; the formula instance page runs it, shows the execution as a timeline
(each step's input, output, status and duration) and replays from a chosen step.

These tests run a job worker, so they get a database of their own: a worker on the session's
database would run every job other packages' tests left there.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect
from pydantic import SecretStr

from hubgate.runtime import Runtime
from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.browser.conftest import Watched, sign_in
from tests.clusters import database_url, hubgate_on, worker_on
from tests.conftest import (
    Api,
    RunningHubgate,
    TenantCredentials,
    free_port,
    new_tenant,
)
from tests.instances.test_lifecycle import provision

pytestmark = pytest.mark.browser
ANSWER = "When a Twilio message is received, answer it"
# A run of the timeline's page reloads until the execution ends; a loaded machine is slow.
FINISHED_WITHIN_MS = 60_000


@pytest.fixture(scope="module")
def console_url(pg_url: str) -> str:
    return database_url(pg_url, "hubgate_console_formulas")


@pytest.fixture(scope="module")
def console_settings(settings: Settings, console_url: str) -> Settings:
    return settings.model_copy(update={"database_url": SecretStr(console_url), "port": free_port()})


@pytest.fixture(scope="module")
async def hubgate(console_settings: Settings, console_url: str) -> AsyncIterator[RunningHubgate]:
    """The console under test, on this module's database (the ``tab`` and ``api`` fixtures
    use it through this name)."""
    async with hubgate_on(console_settings, console_url) as running:
        yield running


@pytest.fixture
async def tenant(console_settings: Settings, console_url: str) -> TenantCredentials:
    return await new_tenant(console_settings, console_url, "console-formulas")


@pytest.fixture
async def worker(console_settings: Settings, console_url: str) -> AsyncIterator[Runtime]:
    async with worker_on(console_settings, console_url, "console-formulas") as runtime:
        yield runtime


async def twilio_instance(api: Api, sim: TwilioSimulator) -> tuple[dict[str, Any], str]:
    sid, token = sim.add_account()
    created = await provision(
        api, sim, configuration={"username": sid, "password": token, "base.url": sim.base_url}
    )
    return created, sid


async def test_use_in_a_formula_opens_the_catalog_and_binds_the_instance(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator, api: Api
) -> None:
    created, _ = await twilio_instance(api, sim)
    await sign_in(tab, tenant)
    page = tab.page
    await page.goto(f"/instances/{created['id']}")
    await page.get_by_role("link", name="Use in a formula").click()
    await expect(page.get_by_role("heading", name="Use in a formula")).to_be_visible()
    templates = page.locator("#formula-templates h3")
    # Every shipped template is in the catalog.
    await expect(templates).to_contain_text([ANSWER])
    await expect(page.get_by_text("None yet: choose a template above.")).to_be_visible()
    await tab.shoot("formulas-catalog")

    await page.get_by_role("link", name=f"Use “{ANSWER}”").click()
    await expect(page.get_by_role("heading", name=ANSWER)).to_be_visible()
    # The template's instance variable is preset to the instance the page came from.
    await expect(page.get_by_label("Twilio instance")).to_have_value(str(created["id"]))
    await page.get_by_label("Name").fill("Auto-reply")
    await page.get_by_label("Answer").fill("Thanks, we got:")
    await tab.shoot("formulas-setup")
    await page.get_by_role("button", name="Create formula instance").click()
    await expect(page.get_by_text("Formula instance created")).to_be_visible()
    await expect(page.get_by_role("heading", name="Auto-reply")).to_be_visible()
    await expect(page.get_by_role("link", name=re.compile(created["name"]))).to_be_visible()
    await expect(page.get_by_text("No execution yet.")).to_be_visible()
    await tab.shoot("formulas-instance-created")

    bound = await api.get("formulas/instances", params={"elementInstanceId": created["id"]})
    assert bound.status == 200, bound.text
    assert [(i["name"], i["configuration"]) for i in bound.body] == [
        ("Auto-reply", {"twilio": str(created["id"]), "answer": "Thanks, we got:"})
    ]
    assert bound.body[0]["formula"]["name"] == ANSWER

    # Back on the catalog, the new formula instance is listed; a second one reuses the
    # tenant's template rather than copying it.
    await page.goto(f"/instances/{created['id']}/formulas")
    await expect(page.get_by_role("link", name="Auto-reply")).to_be_visible()
    await page.get_by_role("link", name=f"Use “{ANSWER}”").click()
    await page.get_by_label("Answer").fill("Got it")
    await page.get_by_role("button", name="Create formula instance").click()
    await expect(page.get_by_text("Formula instance created")).to_be_visible()
    templates_made = await api.get("formulas")
    assert [f["name"] for f in templates_made.body] == [ANSWER]
    assert len((await api.get("formulas/instances")).body) == 2


async def test_a_refused_configuration_is_shown_on_the_form(
    tab: Watched, tenant: TenantCredentials, sim: TwilioSimulator, api: Api
) -> None:
    created, _ = await twilio_instance(api, sim)
    await sign_in(tab, tenant)
    page = tab.page
    await page.goto(f"/instances/{created['id']}/formulas/answer-received-message")
    # An instance that is not the tenant's (the browser's own checks let it through).
    await page.locator("#config-twilio").evaluate(
        "select => { select.options[select.selectedIndex].value = '999999'; }"
    )
    await page.get_by_label("Answer").fill("hello")
    await page.get_by_role("button", name="Create formula instance").click()
    alert = page.locator("#form-errors")
    await expect(alert).to_contain_text("Configuration 'twilio': no instance '999999'")
    await expect(page.get_by_label("Answer")).to_have_value("hello")
    await tab.shoot("formulas-setup-refused")
    # Nothing was left behind: neither the instance nor the template.
    assert (await api.get("formulas")).body == []


async def test_run_now_shows_the_timeline_and_replays_from_a_step(
    tab: Watched,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
    api: Api,
    worker: Runtime,
) -> None:
    created, sid = await twilio_instance(api, sim)
    formula = await api.post(
        "formulas",
        json={
            "name": "Text a number",
            "configuration": [{"key": "twilio", "name": "Twilio", "type": "elementInstance"}],
            "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["prepare"]}],
            "steps": [
                {
                    "name": "prepare",
                    "type": "script",
                    "properties": {"body": "done({text: 'n=' + trigger.args.n});"},
                    "onSuccess": ["send"],
                },
                {
                    "name": "send",
                    "type": "elementRequest",
                    "properties": {
                        "elementInstanceId": "${config.twilio}",
                        "method": "POST",
                        "api": "/hubs/messaging/messages",
                        "body": '{"To": "+15558675310", "From": "+15017122661", '
                        '"Body": "${steps.prepare.text}"}',
                    },
                },
            ],
        },
    )
    assert formula.status == 200, formula.text
    made = await api.post(
        f"formulas/{formula.body['id']}/instances",
        json={"name": "Texter", "configuration": {"twilio": created["id"]}},
    )
    assert made.status == 200, made.text
    await sign_in(tab, tenant)
    page = tab.page
    await page.goto(f"/formula-instances/{made.body['id']}")

    # Input that is not JSON is refused on the page, and runs nothing.
    await page.get_by_label("Input (JSON").fill("{n: 3")
    await page.get_by_role("button", name="Run now").click()
    await expect(page.locator("#run-error")).to_contain_text("The input is not JSON")
    await expect(page.get_by_label("Input (JSON")).to_have_value("{n: 3")

    await page.get_by_label("Input (JSON").fill('{"n": 3}')
    await page.get_by_role("button", name="Run now").click()
    await expect(page.get_by_text("Started: the execution below runs")).to_be_visible()
    # The page reloads itself until the execution has ended.
    await expect(page.locator("#execution-status")).to_have_text(
        "success", timeout=FINISHED_WITHIN_MS
    )
    steps = page.locator(".timeline-step")
    await expect(steps).to_have_count(3)
    trigger = page.locator('[data-step="trigger"]')
    await expect(trigger.locator(".step-output")).to_contain_text('"n": 3')
    send = page.locator('[data-step="send"]')
    await expect(send).to_contain_text("elementRequest")
    await expect(send.locator(".status")).to_have_text("success")
    await expect(send).to_contain_text(re.compile(r"\d+ ms"))
    # Its input with the references filled from what ran before it.
    given = json.loads(await send.locator(".step-input").inner_text())
    assert given["elementInstanceId"] == str(created["id"])
    assert given["body"]["Body"] == "n=3"
    await expect(send.locator(".step-output")).to_contain_text("send.response")
    await expect(page.locator('[data-step="prepare"] .step-input')).to_contain_text(
        "trigger.args.n"
    )
    await tab.shoot("formulas-timeline")
    assert [m["body"] for m in sim.messages(sid)] == ["n=3"]

    await page.get_by_role("button", name="Replay from send").click()
    await expect(page.get_by_text("Replaying: the steps before")).to_be_visible()
    await expect(page.locator("#execution-status")).to_have_text(
        "success", timeout=FINISHED_WITHIN_MS
    )
    await expect(page.locator('[data-step="prepare"]')).to_contain_text("reused")
    await expect(page.locator('[data-step="send"]')).not_to_contain_text("reused")
    await expect(page.locator("#executions tbody tr")).to_have_count(2)
    await tab.shoot("formulas-replayed")
    # The replay sent the message again; the step before it did not run again.
    assert [m["body"] for m in sim.messages(sid)] == ["n=3", "n=3"]
    listed = await api.get(f"formulas/instances/{made.body['id']}/executions")
    assert [e["status"] for e in listed.body] == ["success", "success"]
    assert listed.body[0]["originExecutionId"] == listed.body[1]["id"]


async def test_a_formula_instance_of_another_tenant_is_not_found(
    tab: Watched,
    tenant: TenantCredentials,
    console_settings: Settings,
    console_url: str,
    hubgate: RunningHubgate,
    http: aiohttp.ClientSession,
) -> None:
    other = await new_tenant(console_settings, console_url, "console-formulas-other")
    other_api = Api(http, hubgate.url, other.authorization)
    formula = await other_api.post(
        "formulas",
        json={"name": "theirs", "triggers": [{"type": "manual", "properties": {}}], "steps": []},
    )
    assert formula.status == 200, formula.text
    theirs = await other_api.post(f"formulas/{formula.body['id']}/instances", json={"name": "t"})
    assert theirs.status == 200, theirs.text
    await sign_in(tab, tenant)
    page = tab.page
    for path in (
        f"/formula-instances/{theirs.body['id']}",
        f"/formula-instances/{theirs.body['id']}?execution=1",
    ):
        response = await page.goto(path)
        assert response is not None
        assert response.status == 404
        await expect(
            page.get_by_text(f"No formula instance found with id {theirs.body['id']}")
        ).to_be_visible()
    await page.goto("/instances/1/formulas/no-such-template")
    await expect(page.get_by_text("There is no")).to_be_visible()
