"""Playwright driving Debian's Chromium against a running Hubgate (the ``hubgate`` fixture).

Every page a test opens is watched: a request to any other host, a page error or a
Content-Security-Policy report fails the test, and screenshots go to ``artifacts/console``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.conftest import RunningHubgate, TenantCredentials

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
# Without the networking switches Chromium phones home at start, which this machine refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP = {"width": 1200, "height": 900}


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    # launch() gives every run a fresh, throw-away profile directory of its own.
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@dataclass
class Watched:
    """A browser tab plus what it did that a test must not allow."""

    page: Page
    origin: str
    foreign_requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def shoot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


def _watch(context: BrowserContext, page: Page, origin: str) -> Watched:
    watched = Watched(page=page, origin=origin)

    def on_request(url: str) -> None:
        if not url.startswith((origin + "/", "data:", "blob:", "about:")):
            watched.foreign_requests.append(url)

    def on_console(message: ConsoleMessage) -> None:
        # Chromium logs a failed resource load as an error too; those that a test provokes
        # on purpose (a 401/403/404 answer) are not problems of the page.
        if message.type == "error" and "Failed to load resource" not in message.text:
            watched.problems.append(message.text)

    context.on("request", lambda request: on_request(request.url))
    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.problems.append(str(error)))
    return watched


@pytest.fixture
async def tab(browser: Browser, hubgate: RunningHubgate) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport=DESKTOP, base_url=hubgate.url)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    watched = _watch(context, page, hubgate.url)
    yield watched
    await context.close()
    assert watched.foreign_requests == [], "a page asked another host for something"
    assert watched.problems == [], "a page reported errors"


async def sign_in(tab: Watched, tenant: TenantCredentials) -> None:
    page = tab.page
    await page.goto("/instances")
    await page.get_by_label("User secret").fill(tenant.user_secret)
    await page.get_by_label("Organization secret").fill(tenant.organization_secret)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/instances")
