"""The vendor times out and answers 500 behind a real `hubgate serve` (D25, issue 6).

A vendor that hangs costs each waiting hub call its read timeout and then a 504, and nothing
else: calls of other kinds, and calls once the vendor is back, answer at once (no worker is
stuck). A vendor answering 500 gives a 502 with the provider fields after D25's retries for
a GET, and no retry for a POST.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sims.twilio_sim import TwilioSimulator
from tests.conftest import twilio_instance_body
from tests.faults.conftest import (
    PrivateDatabase,
    prepare,
    start_serve,
    stop_serve,
)
from tests.logwatch import remember_secret
from tests.results import publish

pytestmark = pytest.mark.reliability

# Long enough for a platform call to be answered while the hub calls wait, on a busy machine.
READ_TIMEOUT = 10.0
VENDOR_HANGS = READ_TIMEOUT * 6  # and its handlers are done soon after the test
GENEROUS = 120.0
HANGING_CALLS = 60


async def timed(
    http: aiohttp.ClientSession, method: str, url: str, **kw: Any
) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    async with http.request(method, url, **kw) as response:
        body = await response.json(content_type=None)
        return response.status, body, time.monotonic() - started


async def test_vendor_timeouts_and_500s(
    private_db: PrivateDatabase, tmp_path: Path, sim: TwilioSimulator, keyring_json: str
) -> None:
    prepared = await prepare(
        tmp_path,
        private_db,
        keyring_json,
        "vendor",
        HUBGATE_EGRESS_READ_TIMEOUT=str(READ_TIMEOUT),
        HUBGATE_HUB_RETRIES="2",
        HUBGATE_HUB_RETRY_BACKOFF="0.05",
    )
    env, log = prepared.env, prepared.log
    auth = {"Authorization": prepared.auth}
    served = await asyncio.to_thread(start_serve, env, log)
    figures: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            status, created, _ = await timed(
                http,
                "POST",
                f"{served.api}/instances",
                json=twilio_instance_body(sim),
                headers=auth,
            )
            assert status == 200
            remember_secret(created["token"])
            hub = {"Authorization": f"Element {created['token']}"}
            accounts = f"{served.api}/hubs/messaging/accounts"

            # The vendor hangs far past the read timeout: many hub calls wait at once.
            sim.set_latency(VENDOR_HANGS)
            seen = len(sim.requests)
            started = time.monotonic()
            hanging = [
                asyncio.create_task(timed(http, "GET", accounts, headers=hub))
                for _ in range(HANGING_CALLS)
            ]
            # All of them reach the vendor side by side, not in turn.
            deadline = started + GENEROUS
            while len(sim.requests) - seen < HANGING_CALLS:
                assert time.monotonic() < deadline, f"{len(sim.requests) - seen} reached Twilio"
                await asyncio.sleep(0.01)
            # Meanwhile the rest of Hubgate answers, before any of them has its 504.
            status, _, platform_latency = await timed(
                http, "GET", f"{served.api}/instances/{created['id']}", headers=auth
            )
            assert status == 200
            assert not [task for task in hanging if task.done()], "a hub call ended first"
            results = await asyncio.wait_for(asyncio.gather(*hanging), GENEROUS)
            all_done = time.monotonic() - started
            for status, body, _ in results:
                assert status == 504, body
                assert set(body) >= {"requestId", "message"}
            # A timeout is answered at once, not tried again (D25 retries connect errors, 5xx
            # and 429, not timeouts): Twilio saw each call once.
            assert len(sim.requests) - seen == HANGING_CALLS
            sim.set_latency(0)
            status, _, recovered = await timed(http, "GET", accounts, headers=hub)
            assert status == 200
            figures.update(
                hanging_calls=HANGING_CALLS,
                read_timeout_s=READ_TIMEOUT,
                all_504_within_s=round(all_done, 2),
                platform_call_meanwhile_ms=round(platform_latency * 1000, 1),
                first_call_after_recovery_ms=round(recovered * 1000, 1),
            )

            # The vendor answers 500: a GET is retried, then 502 with the provider fields.
            seen = len(sim.requests)
            sim.fail_next(500, count=3)
            status, body, _ = await timed(http, "GET", accounts, headers=hub)
            assert status == 502, body
            assert body["providerStatus"] == 500
            assert body["providerCode"] == 20500
            assert len(sim.requests) - seen == 3
            # A POST is not retried on a 500 (it may have been done).
            seen = len(sim.requests)
            sim.fail_next(500, count=1)
            message = {"To": "+15005550006", "From": "+15005550001", "Body": "hi"}
            status, body, _ = await timed(
                http, "POST", f"{served.api}/hubs/messaging/messages", json=message, headers=hub
            )
            assert status == 502
            assert len(sim.requests) - seen == 1
            # And afterwards all is well.
            status, _, _ = await timed(http, "GET", accounts, headers=hub)
            assert status == 200
            figures.update(get_attempts_on_500=3, post_attempts_on_500=1)
    finally:
        sim.set_latency(0)
        await asyncio.to_thread(stop_serve, served)
    publish("vendor_faults", figures)
