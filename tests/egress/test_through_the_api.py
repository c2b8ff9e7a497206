"""D32 through the API: an instance's base.url and callback URL go through the egress policy.

The policy's own cases (rebinding, literals, spellings) are in tests/kit/test_egress.py; here
the same refusals reach a caller as a D9 400 that names HUBGATE_EGRESS_ALLOW, nothing is saved,
and the vendor stand-in never sees a request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, TenantCredentials, twilio_instance_body
from tests.e2e.test_errors import assert_d9
from tests.limits.conftest import hubgate_with

REFUSED_BASE_URLS = [
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:169.254.169.254]/2010-04-01/Accounts",
    "http://0.0.0.0:{port}/2010-04-01/Accounts",
    "http://2130706433:{port}/2010-04-01/Accounts",
    "http://0177.0.0.1:{port}/2010-04-01/Accounts",
    "http://0x7f.1:{port}/2010-04-01/Accounts",
    "http://10.0.0.1/2010-04-01/Accounts",
    "http://[::1]:{port}/2010-04-01/Accounts",
]


async def _refused(api: Api, body: dict[str, object], key: str) -> None:
    response = await api.post("instances", json=body)
    assert response.status == 400, response.text
    assert_d9(response.body, response.headers)
    assert key in response.body["message"]
    assert "HUBGATE_EGRESS_ALLOW" in response.body["message"]


@pytest.mark.parametrize("base_url", REFUSED_BASE_URLS)
async def test_base_url_to_a_private_address_is_refused(
    api: Api, sim: TwilioSimulator, base_url: str
) -> None:
    # The shared test server opens 127.0.0.0/8 (for the simulator): the refusals here are
    # what stays closed even so, numeric spellings of loopback among them.
    port = sim.url.rsplit(":", 1)[1]
    seen = len(sim.requests)
    await _refused(
        api, twilio_instance_body(sim, **{"base.url": base_url.format(port=port)}), "base.url"
    )
    assert len(sim.requests) == seen


@pytest.mark.parametrize(
    "callback",
    [
        "http://169.254.169.254/hook",
        "http://10.1.2.3/hook",
        "http://[::ffff:a9fe:a9fe]/hook",
        "http://2852039166/hook",
        "https://0x0a.1/hook",
    ],
)
async def test_callback_url_to_a_private_address_is_refused(
    api: Api, sim: TwilioSimulator, callback: str
) -> None:
    key = "event.notification.callback.url"
    await _refused(api, twilio_instance_body(sim, **{key: callback}), key)
    created = await api.post("instances", json=twilio_instance_body(sim))
    patched = await api.patch(
        f"instances/{created.body['id']}", json={"configuration": {key: callback}}
    )
    assert patched.status == 400, patched.text
    assert (await api.get(f"instances/{created.body['id']}")).body["configuration"][key] is None


async def test_default_policy_refuses_the_loopback_vendor_by_address_and_by_name(
    settings: Settings,
    pg_url: str,
    http: aiohttp.ClientSession,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
) -> None:
    async with hubgate_with(settings, pg_url, egress_allow="") as url:
        api = Api(http, url, tenant.authorization)
        seen = len(sim.requests)
        await _refused(api, twilio_instance_body(sim), "base.url")
        for host in ("localhost", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"):
            spelled = sim.base_url.replace("127.0.0.1", host)
            await _refused(api, twilio_instance_body(sim, **{"base.url": spelled}), "base.url")
        assert len(sim.requests) == seen


async def test_allow_opens_exactly_what_it_names(
    settings: Settings,
    pg_url: str,
    http: aiohttp.ClientSession,
    tenant: TenantCredentials,
    sim: TwilioSimulator,
) -> None:
    other = TwilioSimulator(sim.account_sid, sim.auth_token)
    await other.start(host="127.0.0.2")
    try:
        async with hubgate_with(settings, pg_url, egress_allow="127.0.0.1/32") as url:
            api = Api(http, url, tenant.authorization)
            assert (await api.post("instances", json=twilio_instance_body(sim))).status == 200
            await _refused(api, twilio_instance_body(other), "base.url")
            assert other.requests == []
    finally:
        await other.stop()


@pytest.fixture
async def redirecting_vendor() -> AsyncIterator[str]:
    """A vendor whose every answer is a redirect to the cloud metadata address."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/iam")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/2010-04-01/Accounts"
    finally:
        await runner.cleanup()


async def test_redirect_to_a_private_address_is_not_followed(
    api: Api, sim: TwilioSimulator, redirecting_vendor: str
) -> None:
    # Not followed: the redirect is the vendor's answer, and a 3xx is not a success (D107).
    body = twilio_instance_body(sim, **{"base.url": redirecting_vendor})
    response = await api.post("instances", json=body)
    assert response.status == 502, response.text
    assert_d9(response.body, response.headers)
    assert response.body["providerStatus"] == 302
