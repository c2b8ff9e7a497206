"""SIGKILL of `hubgate serve` in the middle of a provisioning burst (issue 6).

Clients keep creating instances while the server is killed without warning, three times.
After each restart every instance that was answered 200 exists with the token it was given
and works (a hub call through it succeeds), and no instance is half-made: every row the
database holds, acknowledged or not, opens and works.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubgate.kit.crypto import Keyring
from sims.twilio_sim import TwilioSimulator
from tests.conftest import twilio_instance_body
from tests.faults.conftest import (
    PrivateDatabase,
    Served,
    prepare,
    start_serve,
    stop_serve,
)
from tests.logwatch import remember_secret
from tests.results import publish

pytestmark = pytest.mark.reliability

ROUNDS = 3
WRITERS = 16


async def burst(
    http: aiohttp.ClientSession,
    served: Served,
    auth: str,
    body: dict[str, Any],
    stop: asyncio.Event,
    acknowledged: list[dict[str, Any]],
) -> int:
    """Writers create instances until stopped; each 200 goes to ``acknowledged``. Failures."""
    failed = 0

    async def writer() -> None:
        nonlocal failed
        while not stop.is_set():
            try:
                async with http.post(
                    f"{served.api}/instances", json=body, headers={"Authorization": auth}
                ) as response:
                    payload = await response.json(content_type=None)
                    if response.status == 200:
                        acknowledged.append(payload)
                    else:
                        assert response.status < 500 or response.status == 503, payload
            except (TimeoutError, aiohttp.ClientError):
                failed += 1
                await asyncio.sleep(0.05)

    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    return failed


async def check_instance(
    http: aiohttp.ClientSession, served: Served, auth: str, instance_id: int
) -> str:
    """The instance answers whole and a hub call through its token works; its token."""
    async with http.get(
        f"{served.api}/instances/{instance_id}", headers={"Authorization": auth}
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["configuration"]["password"] == "********"
    async with http.get(
        f"{served.api}/hubs/messaging/accounts",
        headers={"Authorization": f"Element {body['token']}"},
    ) as hub:
        assert hub.status == 200, await hub.text()
    return str(body["token"])


async def test_sigkill_during_a_provisioning_burst_loses_nothing_acknowledged(
    private_db: PrivateDatabase, tmp_path: Path, sim: TwilioSimulator, keyring_json: str
) -> None:
    prepared = await prepare(tmp_path, private_db, keyring_json, "sigkill")
    auth, env, log = prepared.auth, prepared.env, prepared.log
    body = twilio_instance_body(sim)
    acknowledged: list[dict[str, Any]] = []
    failures = 0
    served = await asyncio.to_thread(start_serve, env, log)
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for _ in range(ROUNDS):
                stop = asyncio.Event()
                answered: list[dict[str, Any]] = []
                running = asyncio.create_task(burst(http, served, auth, body, stop, answered))
                # Kill once the burst is well under way: some answered, some in flight.
                started = time.monotonic()
                while len(answered) < 5:
                    assert time.monotonic() - started < 30, "the burst never got going"
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(stop_serve, served, kill=True)
                await asyncio.sleep(0.3)
                stop.set()
                failures += await running
                acknowledged += answered
                served = await asyncio.to_thread(start_serve, env, log)
                for instance in answered:
                    token = await check_instance(http, served, auth, instance["id"])
                    assert token == instance["token"]
            # No half-made instance: every row, acknowledged or not, is whole.
            async with http.get(
                f"{served.api}/instances", headers={"Authorization": auth}
            ) as listed:
                assert listed.status == 200
                rows = await listed.json()
            whole = 0
            for row in rows:
                await check_instance(http, served, auth, row["id"])
                whole += 1
    finally:
        await asyncio.to_thread(stop_serve, served)
    keyring = Keyring.from_json(keyring_json)
    for instance in acknowledged:
        remember_secret(instance["token"])
    assert {i["id"] for i in acknowledged} <= {r["id"] for r in rows}
    assert len({keyring.hmac_digest(i["token"]) for i in acknowledged}) == len(acknowledged)
    assert failures > 0, "the kill did not interrupt anything"
    publish(
        "sigkill",
        {
            "rounds": ROUNDS,
            "writers": WRITERS,
            "acknowledged": len(acknowledged),
            "rows_after": len(rows),
            "unacknowledged_but_whole": len(rows) - len(acknowledged),
            "rows_checked_whole": whole,
            "interrupted_requests": failures,
        },
    )
