"""One vendor session per instance (issue 10 item 3), run through the egress client's transport
seam: the hub pipeline, hooks and the credential check without any vendor server (D282)."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from hubgate.elements.registry import discover
from hubgate.elements.sdk import HubCall, ResolvedInstance
from hubgate.hub import paging, service
from hubgate.instances.credentials import check_credentials
from hubgate.kit.crypto import Keyring
from hubgate.kit.egress import (
    EgressClient,
    EgressPolicy,
    EgressRequest,
    EgressResponse,
    EgressTooLarge,
)
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime
from hubgate.settings import Settings
from tests.elements.loopback import SITE
from tests.elements.standard import resolved

REGISTRY = discover([SITE])
VENDOR = "https://vendor.example"
Handler = Callable[[EgressRequest], Awaitable[EgressResponse]]


def answer(status: int, body: Any = None, **headers: str) -> EgressResponse:
    raw = b"" if body is None else json.dumps(body).encode()
    return EgressResponse(status, CIMultiDictProxy(CIMultiDict(headers)), raw, "", 0.0)


class FakeVendor:
    """Answers each request with the next prepared answer, and keeps what it was sent."""

    def __init__(self, *answers: EgressResponse) -> None:
        self.answers = list(answers)
        self.sent: list[EgressRequest] = []

    async def __call__(self, request: EgressRequest) -> EgressResponse:
        self.sent.append(request)
        return self.answers.pop(0)

    def query(self, index: int = -1) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.sent[index].url).query))


def runtime_with(vendor: Handler, *, allow: str = "vendor.example") -> Runtime:
    """A runtime with no database and no network: what a hub call needs and nothing more."""
    settings = Settings(hub_retry_backoff=0.001, egress_allow=allow)
    egress = EgressClient(EgressPolicy.from_string(allow), transport=vendor)
    fields: dict[str, Any] = {
        "engine": None,
        "sessions": None,
        "step_engine": None,
        "limits": None,
        "jobs": None,
    }
    return Runtime(
        settings=settings,
        keyring=Keyring.generate(),
        registry=REGISTRY,
        egress=egress,
        **fields,
    )


def instance_of(key: str, **config: str) -> ResolvedInstance:
    return resolved(REGISTRY.get(key), **{"base.url": VENDOR, **config})


def twilio() -> ResolvedInstance:
    return instance_of("twiliov2", username="AC1", password="tok")


async def test_a_twilio_list_through_the_transport() -> None:
    page = {"messages": [{"sid": "SM1", "body": None}], "next_page_uri": "/AC1/Messages.json?P=1"}
    vendor = FakeVendor(answer(200, page))
    runtime = runtime_with(vendor)
    result = await service.execute(
        runtime, twilio(), HubCall("GET", ("messages",), (("pageSize", "5"),))
    )
    assert result.body == [{"sid": "SM1"}]
    sent = vendor.sent[0]
    assert sent.url.startswith(f"{VENDOR}/AC1/Messages.json?")
    assert vendor.query() == {"Page": "0", "PageSize": "5"}
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"AC1:tok").decode()
    token = result.headers["Elements-Next-Page-Token"]
    cursor = paging.decode(runtime.keyring, 7, "messages", token)
    assert cursor.url == f"{VENDOR}/AC1/Messages.json?P=1"


async def test_a_get_is_retried_after_a_503_and_a_post_is_not_after_a_500() -> None:
    vendor = FakeVendor(answer(503), answer(200, {"sid": "SM1"}))
    runtime = runtime_with(vendor)
    fetched = await service.execute(runtime, twilio(), HubCall("GET", ("messages", "SM1")))
    assert fetched.body == {"sid": "SM1"}
    assert [r.method for r in vendor.sent] == ["GET", "GET"]
    failing = FakeVendor(answer(500, {"code": 20500, "message": "boom"}))
    with pytest.raises(HubgateError) as failed:
        await service.execute(
            runtime_with(failing),
            twilio(),
            HubCall("POST", ("messages",), body=b'{"To": "+1"}'),
        )
    assert failed.value.status == 502
    assert failed.value.extra["providerCode"] == 20500
    assert len(failing.sent) == 1
    assert failing.sent[0].body == b"To=%2B1"


async def test_hooks_reach_the_vendor_through_the_same_session() -> None:
    vendor = FakeVendor(answer(200, {"ok": True, "user": "lb"}))
    runtime = runtime_with(vendor)
    loopback = instance_of("loopback", **{"loopback.api.key": "k-1"})
    result = await service.execute(runtime, loopback, HubCall("GET", ("whoami",)))
    assert result.body == {"user": "lb", "element": "loopback"}
    assert vendor.sent[0].headers["X-Api-Key"] == "k-1"
    refused = FakeVendor(answer(200, {"ok": False, "error": "invalid_auth", "detail": "no"}))
    with pytest.raises(HubgateError) as failed:
        await service.execute(runtime_with(refused), loopback, HubCall("GET", ("whoami",)))
    # A hub call whose stored credentials are refused is the gateway's error (D10).
    assert (failed.value.status, failed.value.extra["providerCode"]) == (502, "invalid_auth")


@pytest.mark.parametrize(
    ("answers", "status"),
    [
        ([answer(200, {"ok": True})], None),
        ([answer(200, {"ok": False, "error": "invalid_auth"})], 400),
        ([answer(200, {"ok": False, "error": "ratelimited"})], 429),
        ([answer(500, {"ok": False, "error": "internal"})], 502),
    ],
)
async def test_the_credential_check_uses_the_session_error_map(
    answers: list[EgressResponse], status: int | None
) -> None:
    vendor = FakeVendor(*answers)
    runtime = runtime_with(vendor)
    config = instance_of("loopback", **{"loopback.api.key": "k-2"}).config
    element = REGISTRY.get("loopback")
    if status is None:
        await check_credentials(runtime.egress, runtime.settings, element, config)
    else:
        with pytest.raises(HubgateError) as refused:
            await check_credentials(runtime.egress, runtime.settings, element, config)
        assert refused.value.status == status
    assert vendor.sent[0].url == f"{VENDOR}/v1/me"
    assert vendor.sent[0].headers["X-Api-Key"] == "k-2"


async def test_the_policy_and_the_size_cap_hold_through_the_transport() -> None:
    vendor = FakeVendor(answer(200, {"sid": "SM1"}))
    runtime = runtime_with(vendor, allow="")
    private = instance_of(
        "twiliov2", username="AC1", password="t", **{"base.url": "http://10.1.2.3"}
    )
    with pytest.raises(HubgateError) as denied:
        await service.execute(runtime, private, HubCall("GET", ("messages", "SM1")))
    assert denied.value.status == 502
    assert vendor.sent == []
    small = EgressClient(
        EgressPolicy.from_string("vendor.example"),
        max_response_bytes=4,
        transport=cast(Handler, FakeVendor(answer(200, {"sid": "SM1"}))),
    )
    with pytest.raises(EgressTooLarge):
        await small.request("GET", f"{VENDOR}/x")
