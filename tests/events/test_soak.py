"""Minutes of real time: two workers and a ``hubgate serve`` on one database, instances polling
every minute; each keeps being polled, one poll at a time, never twice within an interval.
Run by ``make soak``."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import pytest

from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, free_port
from tests.events.conftest import Cluster, eventually, provision_on

pytestmark = pytest.mark.soak

INTERVAL = 60
POLLS_WATCHED = 3
GENEROUS = 120


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
    # Until every instance was polled POLLS_WATCHED more times, with a generous bound; how
    # punctual each poll was is the scheduler's figure (bench/events.py), not asserted here.
    deadline = time.monotonic() + POLLS_WATCHED * INTERVAL + GENEROUS
    while any(len(times) - 1 < POLLS_WATCHED for times in moments.values()):
        assert time.monotonic() < deadline, {a: len(t) - 1 for a, t in moments.items()}
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
        # Never twice within one interval: several workers, each instance polled by one.
        assert all(gap > INTERVAL / 2 for gap in gaps), (account, gaps)
