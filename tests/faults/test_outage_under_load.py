"""The database stopped for ten seconds under load, behind a real `hubgate serve` (issue 6).

Clients read, create and call the hub throughout. While the database is down every answer is
a 503 with the D9 body and Retry-After (or a 200 that needed no database: a hub call whose
token is cached); never a 500 and never a dropped connection. When it is back, answers are
200 again, a long unbroken run of them, from the same process: no restart. How soon is a
figure of the run, not an assertion; the bound on the wait is generous.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
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

CLIENTS = 24
BEFORE, OUTAGE = 5.0, 10.0
# Recovered: this many answers in a row are 200s (many rounds through every pooled connection).
RECOVERED_STREAK = 300
RECOVERY_BOUND = 120.0


@dataclass
class Tally:
    by_phase: dict[str, Counter[int]] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    dropped: int = 0
    last_failure_after_restart: float = 0.0
    streak_after_restart: int = 0
    recovered: asyncio.Event = field(default_factory=asyncio.Event)
    created: list[dict[str, Any]] = field(default_factory=list)

    def add(self, phase: str, status: int) -> None:
        self.by_phase.setdefault(phase, Counter())[status] += 1


async def test_database_outage_under_load_is_503_then_recovers(
    private_db: PrivateDatabase, tmp_path: Path, sim: TwilioSimulator, keyring_json: str
) -> None:
    prepared = await prepare(tmp_path, private_db, keyring_json, "outage")
    auth, env, log = prepared.auth, prepared.env, prepared.log
    served = await asyncio.to_thread(start_serve, env, log)
    tally = Tally()
    phase = "before"
    restarted_at = 0.0
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            seeds = []
            for _ in range(4):
                async with http.post(
                    f"{served.api}/instances",
                    json=twilio_instance_body(sim),
                    headers={"Authorization": auth},
                ) as response:
                    assert response.status == 200
                    seeds.append(await response.json())
            stop = asyncio.Event()

            async def client(n: int) -> None:
                seed = seeds[n % len(seeds)]
                calls = [
                    ("GET", f"/instances/{seed['id']}", auth, None),
                    ("GET", "/instances", auth, None),
                    ("GET", "/hubs/messaging/accounts", f"Element {seed['token']}", None),
                    ("POST", "/instances", auth, twilio_instance_body(sim)),
                ]
                turn = n
                while not stop.is_set():
                    method, path, credentials, body = calls[turn % len(calls)]
                    turn += 1
                    try:
                        async with http.request(
                            method,
                            served.api + path,
                            json=body,
                            headers={"Authorization": credentials},
                        ) as response:
                            text = await response.text()
                            # The phase when the answer came: the database stops only after
                            # the phase says so.
                            seen_phase = phase
                            tally.add(seen_phase, response.status)
                            if response.status == 200 and method == "POST":
                                tally.created.append(json.loads(text))
                            elif response.status == 503:
                                payload = json.loads(text)
                                if set(payload) != {"requestId", "message"} or (
                                    response.headers.get("Retry-After") != "5"
                                ):
                                    tally.bad.append(text[:200])
                            elif response.status != 200:
                                tally.bad.append(f"{response.status} {text[:200]}")
                            if seen_phase == "after" and response.status == 200:
                                tally.streak_after_restart += 1
                                if tally.streak_after_restart >= RECOVERED_STREAK:
                                    tally.recovered.set()
                            elif seen_phase == "after":
                                tally.streak_after_restart = 0
                                tally.last_failure_after_restart = time.monotonic() - restarted_at
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        tally.dropped += 1
                        tally.bad.append(f"{phase}: {type(exc).__name__}")
                    await asyncio.sleep(0.01)

            clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
            await asyncio.sleep(BEFORE)
            phase = "outage"
            await asyncio.to_thread(private_db.stop)
            await asyncio.sleep(OUTAGE)
            await asyncio.to_thread(private_db.start)
            restarted_at = time.monotonic()
            phase = "after"
            try:
                await asyncio.wait_for(tally.recovered.wait(), RECOVERY_BOUND)
            except TimeoutError:
                pytest.fail(f"no {RECOVERED_STREAK} answers 200 in a row after the restart")
            finally:
                stop.set()
            await asyncio.gather(*clients)
            survived = served.process.poll() is None
            assert survived, "the server died"
            # Everything acknowledged during the run is there.
            for created in tally.created:
                remember_secret(created["token"])
                async with http.get(
                    f"{served.api}/instances/{created['id']}", headers={"Authorization": auth}
                ) as response:
                    assert response.status == 200
                    assert (await response.json())["token"] == created["token"]
    finally:
        await asyncio.to_thread(stop_serve, served)
    assert tally.dropped == 0, tally.bad[:5]
    assert not [b for b in tally.bad if not b.startswith(("503", "{"))], tally.bad[:5]
    assert not tally.bad, tally.bad[:5]
    assert tally.by_phase["outage"][503] > 0
    assert set(tally.by_phase["outage"]) <= {200, 503}
    assert set(tally.by_phase["before"]) == {200}
    publish(
        "db_outage",
        {
            "clients": CLIENTS,
            "outage_seconds": OUTAGE,
            "same_server_process_throughout": survived,
            "server_pid": served.process.pid,
            "by_phase": {p: {str(s): n for s, n in c.items()} for p, c in tally.by_phase.items()},
            "recovered_within_seconds": round(tally.last_failure_after_restart, 2),
            "acknowledged_creates": len(tally.created),
            "dropped_connections": tally.dropped,
        },
    )
