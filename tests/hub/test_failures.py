"""Vendor failures and retries (D9, D10, D25), against the simulator's injected faults."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hubgate.hub.service import resolved_from
from hubgate.hub.vendor import VendorSession
from hubgate.instances.models import Instance
from hubgate.kit.egress import EgressClient, EgressTimeouts
from hubgate.kit.errors import HubgateError
from tests.conftest import RunningHubgate, free_port
from tests.hub.conftest import HubInstance

HUB = "/elements/api-v2/hubs/messaging"
SEND = {"To": "+15558675310", "From": "+15017122661", "Body": "hi"}


async def test_get_is_retried_on_5xx_and_429(instance: HubInstance) -> None:
    sim = instance.account.sim
    before = len(instance.account.requests())
    sim.fail_next(503, count=1, retry_after=0.01)
    sim.fail_next(429, count=1, retry_after=0.01)
    response = await instance.hub.get(f"{HUB}/accounts")
    assert response.status == 200, response.text
    assert len(instance.account.requests()) - before == 3


async def test_get_gives_502_with_provider_fields_after_the_retries(
    hubgate: RunningHubgate, instance: HubInstance
) -> None:
    sim = instance.account.sim
    seen = len(sim.requests)
    sim.fail_next(500, count=3)
    response = await instance.hub.get(f"{HUB}/accounts")
    assert response.status == 502
    assert response.body["providerStatus"] == 500
    assert response.body["providerCode"] == 20500
    assert response.body["providerMessage"] == "Internal Server Error"
    assert len(sim.requests) - seen == hubgate.runtime.settings.hub_retries + 1
    assert response.headers["elements-element-instance-id"] == str(instance.id)


async def test_post_is_not_retried_on_5xx_without_an_idempotency_key(
    instance: HubInstance,
) -> None:
    sim = instance.account.sim
    seen = len(sim.requests)
    sim.fail_next(500, count=1)
    response = await instance.hub.post(f"{HUB}/messages", json=SEND)
    assert response.status == 502
    assert len(sim.requests) - seen == 1
    sim.fail_next(500, count=1)
    keyed = await instance.hub.post(
        f"{HUB}/messages", json=SEND, headers={"Idempotency-Key": "k-1"}
    )
    assert keyed.status == 200, keyed.text
    sim.fail_next(429, count=1, retry_after=0.01)
    limited = await instance.hub.post(f"{HUB}/messages", json=SEND)
    assert limited.status == 200, limited.text


async def test_a_long_retry_after_is_passed_on_as_429(instance: HubInstance) -> None:
    instance.account.sim.fail_next(429, count=1, retry_after=60)
    response = await instance.hub.get(f"{HUB}/accounts")
    assert response.status == 429
    assert response.headers["Retry-After"] == "60"
    assert response.body["providerCode"] == 20429


async def test_vendor_4xx_keeps_its_status_and_code(instance: HubInstance) -> None:
    response = await instance.hub.post(f"{HUB}/messages", json={**SEND, "To": "nope"})
    assert response.status == 400
    assert response.body["providerCode"] == 21211
    assert "nope" in response.body["providerMessage"]


async def test_bad_bodies(instance: HubInstance) -> None:
    malformed = await instance.hub.post(
        f"{HUB}/messages", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert malformed.status == 400
    form = await instance.hub.post(
        f"{HUB}/messages", data=b"To=1", headers={"Content-Type": "text/plain"}
    )
    assert form.status == 415
    array = await instance.hub.post(f"{HUB}/messages", json=[1])
    assert array.status == 400


async def test_timeout_is_504_and_unreachable_is_502(
    hubgate: RunningHubgate, instance: HubInstance
) -> None:
    runtime = hubgate.runtime
    async with runtime.sessions() as session:
        row = await session.get(Instance, instance.id)
        assert row is not None
        resolved = resolved_from(runtime, row)
    settings = runtime.settings.model_copy(update={"hub_retry_backoff": 0.01})
    url = f"{resolved.base_url}/{instance.account.sid}.json"
    async with EgressClient(
        runtime.egress.policy, timeouts=EgressTimeouts(connect=1, read=0.2)
    ) as egress:
        instance.account.sim.set_latency(0.5)
        try:
            with pytest.raises(HubgateError) as timed_out:
                await VendorSession.of(egress, settings, resolved).send("GET", url)
        finally:
            instance.account.sim.set_latency(0)
        assert timed_out.value.status == 504
        closed = replace(
            resolved,
            config={**resolved.config, "base.url": f"http://127.0.0.1:{free_port()}/x"},
        )
        with pytest.raises(HubgateError) as unreachable:
            await VendorSession.of(egress, settings, closed).send(
                "GET", f"{closed.base_url}/y.json"
            )
        assert unreachable.value.status == 502
