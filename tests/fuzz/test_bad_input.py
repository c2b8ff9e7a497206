"""The bad input the issue names, sent to every route it applies to, over real HTTP.

Bad Authorization headers to every route that reads credentials; invalid UTF-8, deep
nesting, NaN, a 2 MB body and wrong content types to every route that takes a body; negative,
zero, non-numeric and enormous page sizes to every list that pages. Each answer is a D9 error
(or, for a page size that is merely large, a page no larger than the cap), never a 500.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.app import create_app
from hubgate.settings import Settings
from hubgate.tenants.models import User
from sims.twilio_sim import TwilioSimulator
from tests.conftest import API, Api, TenantCredentials, twilio_instance_body
from tests.e2e.test_errors import assert_d9

DOCUMENT = create_app(Settings(), database_url="postgresql://unused/doc").openapi()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]
WITH_CREDENTIALS = [(m, p) for m, p, o in OPERATIONS if "security" in o]
WITH_BODY = [(m, p) for m, p, o in OPERATIONS if "requestBody" in o]
HUB = f"{API}/hubs/messaging"
HUB_LISTS = ["messages", "accounts", "addresses", "calls", "usage", "numbers"]

BAD_AUTHORIZATIONS = [
    "",
    "Bearer abc",
    "Basic dXNlcjpwYXNz",
    "User x, Organization y",
    "Element nope",
    "Element ",
    "User \u00e9, Organization \u00e9",
    "User a, User b",
    ",,,",
    "Element " + "a" * 5000,
]
BAD_BODIES: list[tuple[str, bytes, str, int]] = [
    ("invalid UTF-8", b'{"name": "\xff\xfe\xfd"}', "application/json", 400),
    ("truncated", b'{"name": ', "application/json", 400),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    ("65 levels", b'{"a":' * 65 + b"1" + b"}" * 65, "application/json", 400),
    ("NaN", b'{"name": NaN}', "application/json", 400),
    ("unpaired surrogate", b'{"name": "\\udfff"}', "application/json", 400),
    ("text", b"name=x", "text/plain", 415),
    ("form", b"name=x", "application/x-www-form-urlencoded", 415),
    ("multipart", b"--b\r\n\r\nx\r\n--b--", "multipart/form-data; boundary=b", 415),
    ("xml", b"<name>x</name>", "application/xml", 415),
]
BAD_PAGE_SIZES = ["-1", "0", "-99999999999", "1e3", "1.5", "abc", "³"]
# Whole numbers above the cap, however long, are the cap (issue 9, D202).
ENORMOUS_PAGE_SIZES = ["999999999", "2147483647", "9" * 5000]


@pytest.fixture
async def target(
    api: Api, sim: TwilioSimulator, tenant: TenantCredentials, db_session: AsyncSession
) -> dict[str, Any]:
    created = (await api.post("instances", json=twilio_instance_body(sim))).body
    user = await db_session.get(User, tenant.user_id)
    assert user is not None
    return {
        "instance": created,
        "element": api.with_auth(f"Element {created['token']}"),
        "account_id": user.account_id,
    }


def concrete(path: str, target: dict[str, Any], method: str = "GET") -> str:
    values = {
        "instance_id": str(target["instance"]["id"]),
        "config_id": "50301",
        "key_or_id": "twiliov2",
        "key": "messaging",
        "event_id": "00000000-0000-4000-8000-000000000000",
        "hub": "messaging",
        "name": "messages",
        "object_name": "churros",
        "account_id": str(target["account_id"]),
        "formula_id": "1",
        "trigger_id": "1",
        "step_id": "1",
        "execution_id": "1",
        # A resource that takes the method, so that the body is read at all.
        "rest": "messages/SM00000000000000000000000000000000" if method == "PATCH" else "messages",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def token_scoped(method: str, path: str) -> bool:
    """Routes whose instance is the Element token's: the hub, and routes under /instances
    without an id (but a POST to /instances itself creates one, as a user)."""
    on_token = path.startswith(f"{API}/instances") and "{instance_id}" not in path
    return "/hubs/" in path or (on_token and (method, path) != ("POST", f"{API}/instances"))


@pytest.mark.parametrize(("method", "path"), WITH_CREDENTIALS)
async def test_bad_authorization_headers_are_401_on_every_route(
    api: Api, target: dict[str, Any], method: str, path: str
) -> None:
    url = concrete(path, target)
    for header in BAD_AUTHORIZATIONS:
        response = await api.with_auth(header).call(method, url, json={})
        assert response.status == 401, (header[:20], response.text)
        assert_d9(response.body, response.headers)


@pytest.mark.parametrize(("method", "path"), WITH_BODY)
async def test_bad_bodies_are_4xx_on_every_route_that_takes_one(
    api: Api, target: dict[str, Any], method: str, path: str
) -> None:
    url = concrete(path, target, method)
    # Bodies are read once the caller is known: token-scoped routes get the instance's token.
    caller = target["element"] if token_scoped(method, path) else api
    # No hub resource takes PUT: the method is refused before any body is read.
    refused_method = "/hubs/" in path and method == "PUT"
    for label, payload, content_type, status in BAD_BODIES:
        response = await caller.call(
            method, url, data=payload, headers={"Content-Type": content_type}
        )
        assert response.status == (405 if refused_method else status), (label, response.text)
        assert_d9(response.body, response.headers)
    huge = await caller.call(
        method,
        url,
        data=io.BytesIO(b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status == 413, huge.text
    assert_d9(huge.body, huge.headers)


@pytest.mark.parametrize("resource", HUB_LISTS)
async def test_page_sizes_on_hub_lists(target: dict[str, Any], resource: str) -> None:
    hub: Api = target["element"]
    for size in BAD_PAGE_SIZES:
        response = await hub.get(f"{HUB}/{resource}", params={"pageSize": size})
        assert response.status == 400, (size, response.text)
        assert_d9(response.body, response.headers)
    for page in ("-1", "0", "x"):
        response = await hub.get(f"{HUB}/{resource}", params={"page": page})
        assert response.status == 400, (page, response.text)
    for size in ENORMOUS_PAGE_SIZES:
        enormous = await hub.get(f"{HUB}/{resource}", params={"pageSize": size})
        assert enormous.status == 200, enormous.text
        assert len(enormous.body) <= 100  # the instance's pagination.max


@pytest.mark.parametrize("path", ["instances/{instance_id}/logs", "audit-logs"])
async def test_page_sizes_on_logs(api: Api, target: dict[str, Any], path: str) -> None:
    url = concrete(path, target)
    for size in BAD_PAGE_SIZES:
        response = await api.get(url, params={"pageSize": size})
        assert response.status == 400, (size, response.text)
        assert_d9(response.body, response.headers)
    for size in ENORMOUS_PAGE_SIZES:
        enormous = await api.get(url, params={"pageSize": size})
        assert enormous.status == 200, enormous.text
        assert len(enormous.body) <= 500
