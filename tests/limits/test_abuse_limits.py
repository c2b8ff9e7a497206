"""Abuse limits end to end, each on a Hubgate of its own whose limits are low (issue 6).

Failed authentications per client address and hub calls per instance answer 429 with
Retry-After; request bodies past the cap answer 413; pages never exceed the cap; poll
intervals under the floor are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from hubgate.limits import RateLimiter
from sims.twilio_sim import TwilioSimulator
from tests.conftest import (
    Api,
    TenantCredentials,
    twilio_instance_body,
)
from tests.e2e.test_errors import assert_d9
from tests.limits.conftest import from_address

HUB = "/elements/api-v2/hubs/messaging"


async def test_failed_authentications_per_address_are_limited(
    limited: Callable[..., Any], tenant: TenantCredentials
) -> None:
    async with (
        limited(auth_failure_burst=3, auth_failure_window=60.0) as url,
        from_address("127.0.0.1") as http,
        from_address("127.0.0.3") as other_http,
    ):
        good = Api(http, url, tenant.authorization)
        bad = good.with_auth(f"User {tenant.user_secret}, Organization wrong")
        # Successes never count.
        for _ in range(10):
            assert (await good.get("instances")).status == 200
        for _ in range(3):
            refused = await bad.get("instances")
            assert refused.status == 401
        for attempt in (bad, good, good.with_auth("Element guess")):
            blocked = await attempt.get("instances")
            assert blocked.status == 429, blocked.text
            assert_d9(blocked.body, blocked.headers)
            assert 1 <= int(blocked.headers["Retry-After"]) <= 20
        # The hub route is behind the same limit.
        hub = await good.with_auth("Element guess").get(f"{HUB}/messages")
        assert hub.status == 429
        # Another address is another bucket; routes that need no credentials stay open.
        assert (await Api(other_http, url, tenant.authorization).get("instances")).status == 200
        assert (await good.with_auth(None).get("elements")).status == 200


async def test_hub_calls_per_instance_are_limited(
    limited_app: Callable[..., Any],
    http: aiohttp.ClientSession,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
) -> None:
    # The limiter reads a clock the test moves, so that no refill depends on how fast the
    # calls below happen to be.
    now = [0.0]
    async with limited_app() as app:
        app.state.runtime.limits.hub_calls = RateLimiter(0.5, 3, clock=lambda: now[0])
        api = Api(http, app.state.url, tenant.authorization)
        first = (await api.post("instances", json=twilio_instance_body(sim))).body
        second = (await api.post("instances", json=twilio_instance_body(sim))).body
        hub = api.with_auth(f"Element {first['token']}")
        statuses = [(await hub.get(f"{HUB}/accounts")).status for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited_call = await hub.get(f"{HUB}/accounts")
        assert limited_call.status == 429
        assert_d9(limited_call.body, limited_call.headers)
        assert limited_call.headers["Retry-After"] == "2"
        assert limited_call.headers["elements-element-instance-id"] == str(first["id"])
        # Another instance has its own bucket; platform routes are not hub calls.
        other = api.with_auth(f"Element {second['token']}")
        assert (await other.get(f"{HUB}/accounts")).status == 200
        assert (await hub.get("instances")).status == 200
        now[0] = 1.5  # three quarters of a token
        assert (await hub.get(f"{HUB}/accounts")).status == 429
        now[0] = 4.0
        assert (await hub.get(f"{HUB}/accounts")).status == 200


@pytest.mark.parametrize("size", [1024, 64 * 1024])
async def test_request_body_cap_on_platform_and_hub_routes(
    limited: Callable[..., Any],
    http: aiohttp.ClientSession,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
    size: int,
) -> None:
    async with limited(max_body_bytes=size) as url:
        api = Api(http, url, tenant.authorization)
        created = (await api.post("instances", json=twilio_instance_body(sim))).body
        hub = api.with_auth(f"Element {created['token']}")
        big = {"To": "+15005550006", "From": "+15005550001", "Body": "x" * size}
        for call in (
            api.post("instances", json={**twilio_instance_body(sim), "name": "x" * size}),
            api.patch(f"instances/{created['id']}", json={"name": "x" * size}),
            hub.post(f"{HUB}/messages", json=big),
        ):
            response = await call
            assert response.status == 413, response.text
            assert_d9(response.body, response.headers)
        fits = await hub.post(f"{HUB}/messages", json={**big, "Body": "hello"})
        assert fits.status == 200, fits.text


async def test_page_size_is_capped(
    limited: Callable[..., Any],
    http: aiohttp.ClientSession,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
) -> None:
    account, token = sim.add_account()
    for n in range(12):
        sim.add_inbound_message("+15005550006", "+15005550001", f"m{n}", account_sid=account)
    async with limited(page_size_max=5) as url:
        api = Api(http, url, tenant.authorization)
        body = twilio_instance_body(sim, username=account, password=token)
        body["configuration"]["pagination.max"] = "8"
        created = (await api.post("instances", json=body)).body
        hub = api.with_auth(f"Element {created['token']}")
        for asked in ("5", "6", "1000", "999999999", "9" * 5000):  # above the cap: the cap
            seen = len(sim.requests)
            page = await hub.get(f"{HUB}/messages", params={"pageSize": asked})
            assert page.status == 200, page.text
            assert len(page.body) == 5
            sent = [r for r in sim.requests[seen:] if r.path.endswith("/Messages.json")]
            assert sent[-1].query["PageSize"] == "5"
        for wrong in ("-1", "0", "1e3", "1.5", "³", "abc"):
            refused = await hub.get(f"{HUB}/messages", params={"pageSize": wrong})
            assert refused.status == 400, (wrong, refused.text)
            assert_d9(refused.body, refused.headers)


@pytest.mark.parametrize(
    ("floor", "interval", "status"),
    [(1, "0", 400), (1, "1", 200), (5, "4", 400), (5, "5", 200), (1, "10081", 400)],
)
async def test_poll_interval_floor(
    limited: Callable[..., Any],
    http: aiohttp.ClientSession,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
    floor: int,
    interval: str,
    status: int,
) -> None:
    async with limited(poll_interval_floor=floor) as url:
        api = Api(http, url, tenant.authorization)
        body = twilio_instance_body(sim, **{"event.poller.refresh_interval": interval})
        response = await api.post("instances", json=body)
        assert response.status == status, response.text
        if status == 400:
            assert f"from {floor} to 10080" in response.body["message"]


async def test_console_sign_in_failures_count_too(
    limited: Callable[..., Any], tenant: TenantCredentials
) -> None:
    from tests.console.conftest import ConsoleClient

    async with (
        limited(auth_failure_burst=2, auth_failure_window=60.0) as url,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser,
    ):
        console = ConsoleClient(browser, url)
        wrong = TenantCredentials(0, 0, "wrong", tenant.user_secret, tenant.email)
        for _ in range(2):
            assert (await console.sign_in(wrong)).status == 401
        assert (await console.sign_in(tenant)).status == 429
        # The API refuses the address as well: one bucket per address, whatever the door.
        api = Api(browser, url, tenant.authorization)
        assert (await api.get("instances")).status == 429


async def test_failed_element_tokens_on_hub_calls_count_too(
    limited: Callable[..., Any], http: aiohttp.ClientSession, tenant: TenantCredentials
) -> None:
    # Hub calls are answered by a fast path past FastAPI's routing (hub.fastpath); its 401s
    # went uncounted until it answered errors through the app's own handlers.
    async with limited(auth_failure_burst=3, auth_failure_window=60.0) as url:
        guess = Api(http, url, "Element guessed-token")
        for _ in range(3):
            refused = await guess.get(f"{HUB}/messages")
            assert refused.status == 401
        blocked = await guess.get(f"{HUB}/messages")
        assert blocked.status == 429
        assert_d9(blocked.body, blocked.headers)
        assert (await Api(http, url, tenant.authorization).get("instances")).status == 429
