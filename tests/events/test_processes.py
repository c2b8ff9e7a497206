"""Real processes on one database: workers killed mid-delivery and mid-poll lose nothing, and
several workers (and ``hubgate serve`` with its embedded worker) poll each instance once.

Each test gets a fresh database on the session's embedded server, reachable by its unix-socket
URL from the ``hubgate worker`` and ``hubgate serve`` subprocesses it starts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.events.tasks import run_poll
from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.conftest import (
    Api,
    RunningHubgate,
    free_port,
)
from tests.events.conftest import Cluster, eventually, provision_on

pytestmark = pytest.mark.slow


def seen_counts(receiver: CallbackReceiver) -> Counter[str]:
    return Counter(r.webhook_id for r in receiver.requests)


async def post_inbound(api: Api, sim: TwilioSimulator, instance: dict[str, Any], n: int) -> None:
    """An inbound message ``#n`` as Twilio posts it to the instance's events URL, signed."""
    token = sim.accounts()[instance["configuration"]["username"]]
    url = instance["eventsCallbackUrl"]
    params = {"MessageSid": f"SM{instance['id']:08d}{n:024d}", "SmsStatus": "received"}
    answer = await api.with_auth(None).post(
        url[len(api.base) :],
        data=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
        },
    )
    assert answer.status == 200, answer.text


async def test_killing_a_worker_mid_batch_resends_only_what_was_in_flight(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    """One batch to two hosts: one answers at once, the other hangs. Killed with the first
    host's notifications recorded and the second's in flight, the worker loses nothing: the
    rescued run resends the in-flight ones (same webhook ids, D136) and nothing else."""
    api, _ = cluster_api
    hanging = CallbackReceiver()
    await hanging.start()
    hanging.delay = 60
    try:
        quick = await provision_on(api, sim, receiver, **{"event.vendor.type": "webhook"})
        slow = await provision_on(api, sim, hanging, **{"event.vendor.type": "webhook"})
        for n in range(12):
            await post_inbound(api, sim, quick, n)
            await post_inbound(api, sim, slow, n)
        first = cluster.worker()

        def notified(instance_id: int) -> int:
            rows = cluster.sql(
                "SELECT count(*) FROM events WHERE instance_id = %s AND status = 'NOTIFIED'",
                instance_id,
            )
            return int(rows[0][0])

        async def mid_batch() -> bool:
            return notified(quick["id"]) == 12 and len(set(seen_counts(hanging))) == 12

        try:
            await eventually(mid_batch, seconds=40)
        except AssertionError:
            pytest.fail(cluster.logs())
        in_flight = set(seen_counts(hanging))
        cluster.kill(first)
        assert notified(slow["id"]) == 0

        hanging.delay = 0
        cluster.worker()

        async def all_notified() -> bool:
            return notified(quick["id"]) + notified(slow["id"]) == 24

        try:
            await eventually(all_notified, seconds=60)
        except AssertionError:
            pytest.fail(cluster.logs())
        await asyncio.sleep(1)  # room for a third copy, if there were going to be one
        quick_counts, slow_counts = seen_counts(receiver), seen_counts(hanging)
        assert len(quick_counts) == 12
        assert set(quick_counts.values()) == {1}
        assert set(slow_counts) == in_flight
        assert set(slow_counts.values()) == {2}
    finally:
        await hanging.stop()


async def test_killing_a_worker_mid_delivery_loses_nothing(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    api, _ = cluster_api
    instance = await provision_on(api, sim, receiver, **{"event.vendor.type": "webhook"})
    receiver.delay = 60  # every notification hangs until the worker is gone
    first = cluster.worker()
    for n in range(5):
        await post_inbound(api, sim, instance, n)
    try:
        await receiver.wait_for(lambda r: len(r) >= 5, seconds=30)
    except TimeoutError:
        pytest.fail(cluster.logs())
    in_flight = set(seen_counts(receiver))
    assert len(in_flight) == 5
    cluster.kill(first)

    receiver.delay = 0
    cluster.worker()

    async def all_notified() -> bool:
        rows = cluster.sql("SELECT status, count(*) FROM events GROUP BY status")
        return rows == [("NOTIFIED", 5)]

    try:
        await eventually(all_notified, seconds=40)
    except AssertionError:
        pytest.fail(cluster.logs())
    await asyncio.sleep(1)  # room for a third copy, if there were going to be one
    counts = seen_counts(receiver)
    assert set(counts) == in_flight
    assert max(counts.values()) <= 2, counts


async def test_killing_a_worker_between_fetch_and_commit_loses_nothing(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    api, running = cluster_api
    instance = await provision_on(api, sim, receiver)
    account = instance["configuration"]["username"]
    messages_path = f"/2010-04-01/Accounts/{account}/Messages.json"

    def fetches() -> int:
        return sum(1 for r in sim.requests if r.path == messages_path)

    # The first poll (which only records what exists) runs here, through the real hub.
    runtime = running.runtime
    async with unit_of_work(runtime.sessions) as session:
        await service.sync_pollers(session, service.utcnow())
    assert await run_poll(runtime, instance["id"], "messages") == []
    assert cluster.sql("SELECT primed FROM event_pollers") == [(True,)]

    sids = [
        sim.add_inbound_message("+15005550006", "+15005550001", f"#{n}", account_sid=account)["sid"]
        for n in range(3)
    ]
    paused = cluster.worker(events_poll_commit_pause=60)
    before = fetches()
    cluster.sql("UPDATE event_pollers SET next_poll_at = now()")

    async def fetched() -> bool:
        return fetches() > before

    try:
        await eventually(fetched, seconds=30)
    except AssertionError:
        pytest.fail(cluster.logs())
    await asyncio.sleep(0.5)  # well inside the pause: fetched, not committed
    cluster.kill(paused)
    assert cluster.sql("SELECT count(*) FROM events") == [(0,)]

    cluster.worker()
    try:
        await receiver.wait_for(lambda r: len(r) >= 1, seconds=40)
    except TimeoutError:
        pytest.fail(cluster.logs())
    await asyncio.sleep(2)  # room for a duplicate, if there were going to be one
    (request,) = receiver.requests
    objects = sorted(e["objectId"] for e in request.json()["message"]["events"])
    assert objects == sorted(sids)
    assert cluster.sql("SELECT count(*), min(status) FROM events") == [(1, "NOTIFIED")]
    assert cluster.sql("SELECT polls FROM event_pollers") == [(2,)]


async def test_several_workers_poll_each_instance_once_per_interval(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    """Two workers and a `hubgate serve` (with its embedded worker); each "interval" (all
    pollers made due at once) every instance is polled exactly once."""
    api, _ = cluster_api
    instances = [await provision_on(api, sim, receiver) for _ in range(6)]
    accounts = {i["configuration"]["username"] for i in instances}
    cluster.worker()
    cluster.worker()
    cluster.start("serve", port=free_port())
    rounds = 3

    async def all_workers_up() -> bool:
        return cluster.sql("SELECT count(*) FROM procrastinate_workers") == [(3,)]

    try:
        await eventually(all_workers_up, seconds=60)
    except AssertionError:
        pytest.fail(cluster.logs())

    def polls_per_account() -> Counter[str]:
        return Counter(
            r.user for r in sim.requests if r.user in accounts and r.path.endswith("/Messages.json")
        )

    async def polled(times: int) -> bool:
        # A round is over once its polls are committed, not once the simulator has seen their
        # fetches: a poll still between the two would commit its next due time (an interval
        # on) over the test's making it due, and sit out the next round.
        counts = polls_per_account()
        committed = cluster.sql("SELECT min(polls) FROM event_pollers")
        return all(counts[a] >= times for a in accounts) and committed[0][0] >= times

    try:
        await eventually(lambda: polled(1), seconds=60)
        for n in range(2, rounds + 1):
            cluster.sql("UPDATE event_pollers SET next_poll_at = now()")
            await eventually(lambda n=n: polled(n), seconds=60)
    except AssertionError:
        pytest.fail(f"{polls_per_account()}\n{cluster.logs()}")
    await asyncio.sleep(3)  # a second poll in the last round would have come by now
    assert set(polls_per_account().values()) == {rounds}, polls_per_account()
    assert cluster.sql("SELECT DISTINCT polls FROM event_pollers") == [(rounds,)]
    assert all(process.poll() is None for process in cluster.processes)
