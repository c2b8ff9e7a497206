"""Fuzzing the web console's routes (HTML under /, outside the OpenAPI document).

Tenant A, signed in, sends every console route random path values (A's and B's instance ids,
other numbers, element keys, text), random query strings and random form fields, with the
page's CSRF token, a wrong one or none. Every answer must be below 500, and none may show
anything of B's. The routes are read from the app, so a new console page is fuzzed too.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
import requests
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import given
from hypothesis import strategies as st

from hubgate.app import create_app
from hubgate.observability.endpoints import router as operations_router
from hubgate.settings import Settings
from tests.conftest import RunningHubgate
from tests.console.conftest import ConsoleClient
from tests.fuzz.conftest import World, leaks
from tests.fuzz.runner import FUZZ_SETTINGS
from tests.fuzz.stats import CONSOLE, record

API_PREFIX = "/elements/api-v2"
# The operators' routes (D232) are not console pages: /readyz answers 503 by design while no
# worker runs; tests/ops covers them.
OPERATIONS = {route.path for route in operations_router.routes if isinstance(route, APIRoute)}
_APP = create_app(Settings(), database_url="postgresql://unused/doc")
ROUTES = sorted(
    (method, ctx.path_format)
    for ctx in iter_route_contexts(_APP.routes)
    if isinstance(ctx.original_route, APIRoute)
    and ctx.path_format is not None
    and not ctx.path_format.startswith(API_PREFIX)
    and ctx.path_format not in OPERATIONS
    for method in ctx.methods or ()
    if method != "HEAD"
)
_PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
text = st.text(max_size=40)
form_keys = st.sampled_from(
    [
        "name",
        "tags",
        "username",
        "password",
        "base.url",
        "next",
        "user_secret",
        "organization_secret",
        "enabled",
        "configuration",
        "x",
    ]
)


def test_console_routes_are_found() -> None:
    assert len(ROUTES) >= 15
    assert ("POST", "/signin") in ROUTES


def fuzz_route(
    method: str, template: str, world: World, base: str, cookies: dict[str, str], csrf: str
) -> None:
    http = requests.Session()
    http.cookies.update(cookies)
    ids = sorted(world.a.ids | world.b.ids)

    def value_for(name: str, data: st.DataObject) -> str:
        if name == "instance_id":
            choice = st.one_of(st.sampled_from(ids), st.integers(0, 2**70))
            return str(data.draw(choice, label=name))
        if name == "key":
            keys = st.sampled_from(["twiliov2", "503", "slack"])
            return data.draw(st.one_of(keys, text), label=name)
        return data.draw(text, label=name)

    @FUZZ_SETTINGS
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        path = _PARAMETER.sub(
            lambda m: requests.utils.quote(value_for(m.group(1), data), safe=""), template
        )
        names = st.sampled_from(["next", "q", "page", "code", "state", "error"])
        query = data.draw(st.dictionaries(names, text, max_size=2))
        form: dict[str, Any] = data.draw(st.dictionaries(form_keys, text, max_size=5))
        token = data.draw(st.sampled_from([csrf, "forged", None]), label="csrf")
        if token is not None:
            form["csrf_token"] = token
        response = http.request(
            method,
            base + path,
            params=query,
            data=form if method == "POST" else None,
            allow_redirects=False,
            timeout=30,
        )
        record(f"{method} {template}", CONSOLE, response.status_code)
        assert response.status_code < 500, (method, path, response.text[:500])
        found = leaks(world, response.text, path + str(query) + str(form))
        assert not found, f"console page for tenant A shows tenant B's {found}"

    fuzz()


@pytest.mark.parametrize(("method", "template"), ROUTES)
async def test_fuzz_console(
    method: str, template: str, world: World, hubgate: RunningHubgate
) -> None:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        console = ConsoleClient(browser, hubgate.url)
        page = await console.sign_in(world.a.credentials)
        assert page.status == 200, page.text()
        cookies = {c.key: c.value for c in browser.cookie_jar}
        csrf = (await console.get("/instances")).csrf
    await asyncio.to_thread(fuzz_route, method, template, world, hubgate.url, cookies, csrf)
