"""A browser-like HTTP client for the console: its own cookie jar, forms with CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

from tests.conftest import RunningHubgate, TenantCredentials

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    status: int
    url: str
    headers: CIMultiDict[str]
    html: str
    set_cookies: list[str]

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.html)
        assert found, f"no CSRF token on {self.url}"
        return unescape(found.group(1))

    def text(self) -> str:
        """The page's visible words, tags removed, whitespace folded."""
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", self.html, flags=re.S)
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


class ConsoleClient:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def request(
        self,
        method: str,
        path: str,
        *,
        data: Any = None,
        follow: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Page:
        async with self.http.request(
            method,
            self.base + path,
            data=data,
            allow_redirects=follow,
            headers=headers,
        ) as response:
            return Page(
                status=response.status,
                url=str(response.url),
                headers=CIMultiDict(response.headers),
                html=await response.text(),
                set_cookies=response.headers.getall("Set-Cookie", []),
            )

    async def get(self, path: str, **kw: Any) -> Page:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> Page:
        return await self.request("POST", path, data=data, **kw)

    async def submit(self, page_path: str, action: str, fields: dict[str, str], **kw: Any) -> Page:
        """Post a form the way a browser does: with the token of the page it came from."""
        page = await self.get(page_path)
        return await self.post(action, {"csrf_token": page.csrf, **fields}, **kw)

    async def sign_in(self, tenant: TenantCredentials, *, follow: bool = True) -> Page:
        return await self.submit(
            "/signin",
            "/signin",
            {
                "user_secret": tenant.user_secret,
                "organization_secret": tenant.organization_secret,
                "next": "/instances",
            },
            follow=follow,
        )

    async def sign_in_raw(self, tenant: TenantCredentials) -> Page:
        """The sign-in answer itself, before its redirect is followed."""
        return await self.sign_in(tenant, follow=False)

    def session_id(self) -> str:
        cookies = {c.key: c.value for c in self.http.cookie_jar}
        return cookies["hubgate_session"]

    def set_session_id(self, value: str) -> None:
        self.http.cookie_jar.update_cookies({"hubgate_session": value}, URL(self.base))


@pytest.fixture
async def console(hubgate: RunningHubgate) -> AsyncIterator[ConsoleClient]:
    # unsafe=True: the jar otherwise refuses cookies from an IP address such as 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield ConsoleClient(http, hubgate.url)


@pytest.fixture
async def signed_in(console: ConsoleClient, tenant: TenantCredentials) -> ConsoleClient:
    page = await console.sign_in(tenant)
    assert page.status == 200, page.text()
    return console


@pytest.fixture
async def console_of_other(
    hubgate: RunningHubgate, other_tenant: TenantCredentials
) -> AsyncIterator[ConsoleClient]:
    """A second browser, signed in as another organization's user."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = ConsoleClient(http, hubgate.url)
        page = await client.sign_in(other_tenant)
        assert page.status == 200, page.text()
        yield client
