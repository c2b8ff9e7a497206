"""Three minutes of real time: two workers and a ``hubgate serve`` on one database, instances
polling every minute; each is polled exactly once per interval. Run by ``make soak``."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import pytest

from hubgate.testing.receiver import CallbackReceiver
from hubgate.testing.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, free_port
from tests.events.conftest import Cluster, eventually, provision_on

pytestmark = pytest.mark.soak

WATCH_SECONDS = 185


async def test_each_instance_is_polled_once_a_minute_for_three_minutes(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    api, _ = cluster_api
    cluster.worker()
    cluster.worker()
    cluster.start("serve", port=free_port())

    async def all_workers_up() -> bool:
        return cluster.sql("SELECT count(*) FROM procrastinate_workers") == [(3,)]

    await eventually(all_workers_up, seconds=60)
    instances = [await provision_on(api, sim, receiver) for _ in range(6)]
    accounts = {i["configuration"]["username"] for i in instances}

    def polls() -> Counter[str]:
        return Counter(
            r.user for r in sim.requests if r.user in accounts and r.path.endswith("/Messages.json")
        )

    async def primed() -> bool:
        return set(polls()) == accounts

    await eventually(primed, seconds=30)
    seen = polls()
    moments: dict[str, list[float]] = {a: [time.monotonic()] for a in accounts}
    deadline = time.monotonic() + WATCH_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = polls()
        for account in accounts:
            step = now[account] - seen[account]
            assert step in (0, 1), f"{account} polled {step} times at once"
            if step:
                moments[account].append(time.monotonic())
        seen = now
    for account, times in moments.items():
        gaps = [round(b - a, 1) for a, b in itertools.pairwise(times[1:])]
        assert len(times) - 1 == 3, (account, gaps)
        assert all(57 <= gap <= 63 for gap in gaps), (account, gaps)
