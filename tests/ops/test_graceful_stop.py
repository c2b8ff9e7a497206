"""Graceful stop (D66): SIGTERM stops accepting, lets the request in flight finish and
answers it; a second SIGTERM ends serve at once. Real processes, a real (slow) vendor."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sims.twilio_sim import TwilioSimulator
from tests.conftest import API, twilio_instance_body
from tests.logwatch import remember_secret
from tests.ops.processes import (
    Process,
    bootstrap_authorization,
    connection_refused,
    fresh_env,
    hubgate,
    start,
    wait_serving,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def slow_vendor() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator()
    await simulator.start()
    yield simulator
    await simulator.stop()


async def serve_with_instance(
    tmp_path: Path,
    vendor: TwilioSimulator,
    http: aiohttp.ClientSession,
    workers: str,
    **settings: str,
) -> tuple[Process, str, str]:
    """A fresh `hubgate serve`, an instance on ``vendor``, and its Element authorization."""
    env = fresh_env(tmp_path, **settings)
    base = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    serve = start(hubgate("serve", "--workers", workers), env, tmp_path / "serve.log")
    await asyncio.to_thread(wait_serving, serve, f"{base}{API}/hubs")
    headers = {"Authorization": bootstrap_authorization(env)}
    async with http.post(
        f"{base}{API}/instances", json=twilio_instance_body(vendor), headers=headers
    ) as created:
        assert created.status == 200, await created.text()
        instance: dict[str, Any] = await created.json()
    remember_secret(instance["token"])
    element = f"{headers['Authorization']}, Element {instance['token']}"
    return serve, base, element


async def messages(http: aiohttp.ClientSession, base: str, element: str) -> tuple[int, Any]:
    async with http.get(
        f"{base}{API}/hubs/messaging/messages", headers={"Authorization": element}
    ) as response:
        return response.status, await response.json(content_type=None)


async def until_vendor_called(vendor: TwilioSimulator, calls: int) -> None:
    for _ in range(600):
        if len(vendor.requests) >= calls:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the hub call never reached the vendor")


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_answers_the_request_in_flight_then_stops(
    tmp_path: Path, slow_vendor: TwilioSimulator, workers: str
) -> None:
    async with aiohttp.ClientSession() as http:
        serve, base, element = await serve_with_instance(
            tmp_path, slow_vendor, http, workers, HUBGATE_SHUTDOWN_GRACE="60"
        )
        try:
            slow_vendor.add_inbound_message(from_="+15005550006", to="+15005550001", body="kept")
            slow_vendor.clear_requests()
            slow_vendor.set_latency(5)
            in_flight = asyncio.create_task(messages(http, base, element))
            await until_vendor_called(slow_vendor, 1)

            serve.popen.send_signal(signal.SIGTERM)
            port = int(base.rsplit(":", 1)[1])
            # New connections are refused while the request in flight is still answered.
            await asyncio.to_thread(
                wait_until, lambda: connection_refused(port), "serve kept accepting"
            )
            status, body = await in_flight
            assert status == 200, body
            assert [m["body"] for m in body] == ["kept"]
            assert await asyncio.to_thread(serve.wait) == 0, serve.output()
        finally:
            serve.stop()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_second_sigterm_stops_at_once(
    tmp_path: Path, slow_vendor: TwilioSimulator, workers: str
) -> None:
    async with aiohttp.ClientSession() as http:
        serve, base, element = await serve_with_instance(
            tmp_path, slow_vendor, http, workers, HUBGATE_SHUTDOWN_GRACE="600"
        )
        try:
            slow_vendor.clear_requests()
            slow_vendor.set_latency(600)
            in_flight = asyncio.create_task(messages(http, base, element))
            await until_vendor_called(slow_vendor, 1)

            serve.popen.send_signal(signal.SIGTERM)
            port = int(base.rsplit(":", 1)[1])
            await asyncio.to_thread(
                wait_until, lambda: connection_refused(port), "serve kept accepting"
            )
            serve.popen.send_signal(signal.SIGTERM)
            # Well inside the grace and the vendor's delay: serve did not wait for either.
            await asyncio.to_thread(serve.wait, 60)
            with pytest.raises(aiohttp.ClientError):
                await in_flight
        finally:
            slow_vendor.set_latency(0)
            serve.stop()
