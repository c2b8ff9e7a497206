"""A stop in the middle of a job (D66), with real processes on one database: SIGTERM to a
``hubgate worker``, or to ``hubgate serve`` and its embedded worker, while a delivery is in
flight. The job finishes within the grace; past the grace it is given up and another worker
delivers the event; a second signal stops at once and another worker still delivers it. In
every case the event ends delivered and nothing else changes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from hubgate.events.tasks import DISPATCH
from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, free_port
from tests.events.conftest import Cluster, eventually, provision_on

pytestmark = pytest.mark.slow

RUNNERS = ["worker", "serve"]


def start(cluster: Cluster, runner: str, **settings: Any) -> subprocess.Popen[bytes]:
    if runner == "serve":
        return cluster.start("serve", port=free_port(), **settings)
    return cluster.worker(**settings)


async def worker_registered(cluster: Cluster) -> None:
    async def registered() -> bool:
        return cluster.sql("SELECT count(*) FROM procrastinate_workers") == [(1,)]

    try:
        await eventually(registered, seconds=90)
    except AssertionError:
        pytest.fail(cluster.logs())


async def one_delivery_in_flight(
    cluster: Cluster, api: Api, sim: TwilioSimulator, receiver: CallbackReceiver
) -> str:
    """An inbound Twilio message makes one event; its delivery has reached the receiver (which
    holds it for ``receiver.delay``). Answers the event's id."""
    instance = await provision_on(api, sim, receiver, **{"event.vendor.type": "webhook"})
    token = sim.accounts()[instance["configuration"]["username"]]
    url = instance["eventsCallbackUrl"]
    params = {"MessageSid": "SM" + "7" * 32, "SmsStatus": "received", "Body": "kept"}
    answer = await api.with_auth(None).post(
        url[len(api.base) :],
        data=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
        },
    )
    assert answer.status == 200, answer.text
    try:
        await receiver.wait_for(lambda r: len(r) >= 1, seconds=60)
    except TimeoutError:
        pytest.fail(cluster.logs())
    ((event_id,),) = cluster.sql("SELECT id::text FROM events")
    return str(event_id)


def delivery_jobs(cluster: Cluster) -> list[tuple[Any, ...]]:
    return cluster.sql(
        "SELECT status::text FROM procrastinate_jobs WHERE task_name = %s ORDER BY id", DISPATCH
    )


async def stopped(process: subprocess.Popen[bytes], cluster: Cluster, seconds: float) -> int:
    try:
        return await asyncio.to_thread(process.wait, seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {seconds} s after the signal:\n{cluster.logs()}")


async def stopping(cluster: Cluster) -> None:
    """The worker took the first signal: a stopping worker no longer beats (every half second
    while it runs), though its job goes on. A second signal sent before the first was taken
    could be folded into it."""

    async def heartbeat_stopped() -> bool:
        return cluster.sql(
            "SELECT now() - last_heartbeat > interval '5 seconds' FROM procrastinate_workers"
        ) == [(True,)]

    try:
        await eventually(heartbeat_stopped, seconds=60)
    except AssertionError:
        pytest.fail(cluster.logs())


async def delivered_once_or_again(
    cluster: Cluster, receiver: CallbackReceiver, event_id: str
) -> None:
    """The event ends NOTIFIED; the receiver got it under one webhook id, at most twice (the
    copy the stopped worker sent had no answer it could record)."""

    async def notified() -> bool:
        return cluster.sql("SELECT status FROM events") == [("NOTIFIED",)]

    try:
        await eventually(notified, seconds=90)
    except AssertionError:
        pytest.fail(cluster.logs())
    await asyncio.sleep(1)  # room for a third copy, if there were going to be one
    copies = Counter(r.webhook_id for r in receiver.requests)
    assert len(copies) == 1, copies
    assert set(copies.values()) <= {1, 2}, copies
    assert [r.json()["message"]["events"][0]["objectId"] for r in receiver.requests] == [
        "SM" + "7" * 32
    ] * len(receiver.requests)
    assert cluster.sql("SELECT count(*) FROM events") == [(1,)]
    assert cluster.sql(
        "SELECT count(*) FROM event_attempts WHERE event_id = %s AND status_code = 200",
        event_id,
    ) == [(1,)]


@pytest.mark.parametrize("runner", RUNNERS)
async def test_sigterm_lets_the_delivery_in_flight_finish(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
    runner: str,
) -> None:
    api, _ = cluster_api
    # The receiver answers after three seconds, inside the delivery timeout and the grace.
    receiver.delay = 3
    process = start(cluster, runner, shutdown_grace=60)
    await worker_registered(cluster)
    event_id = await one_delivery_in_flight(cluster, api, sim, receiver)

    process.send_signal(signal.SIGTERM)
    assert await stopped(process, cluster, 120) == 0, cluster.logs()
    # The stopping worker recorded the answer itself: nobody else was there to do it.
    await delivered_once_or_again(cluster, receiver, event_id)
    assert len(receiver.requests) == 1
    assert cluster.sql("SELECT count(*) FROM procrastinate_workers") == [(0,)]
    assert cluster.sql("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == [(0,)]


async def test_a_delivery_past_the_grace_is_given_up_and_another_worker_delivers_it(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
) -> None:
    api, _ = cluster_api
    receiver.delay = 60  # far past the grace
    first = start(cluster, "worker", shutdown_grace=1)
    await worker_registered(cluster)
    event_id = await one_delivery_in_flight(cluster, api, sim, receiver)

    first.send_signal(signal.SIGTERM)
    assert await stopped(first, cluster, 60) == 0, cluster.logs()
    # Given up, not held: no job is left running for a worker that is gone, and the worker
    # said goodbye, so nothing waits for its heartbeat to age.
    assert delivery_jobs(cluster) == [("aborted",)]
    assert cluster.sql("SELECT count(*) FROM procrastinate_workers") == [(0,)]
    assert cluster.sql("SELECT status FROM events") != [("NOTIFIED",)]

    receiver.delay = 0
    start(cluster, "worker")
    # The event's lease (the delivery timeout and five seconds) runs out; the tick's sweep
    # defers it again and the new worker delivers it.
    await delivered_once_or_again(cluster, receiver, event_id)


@pytest.mark.parametrize("runner", RUNNERS)
async def test_a_second_sigterm_stops_at_once_and_another_worker_delivers(
    cluster: Cluster,
    cluster_api: tuple[Api, RunningHubgate],
    sim: TwilioSimulator,
    receiver: CallbackReceiver,
    runner: str,
) -> None:
    api, _ = cluster_api
    # The receiver, the delivery timeout and the grace are all ten minutes or more: only the
    # second signal can make the process stop within the bound below.
    receiver.delay = 600
    process = start(cluster, runner, shutdown_grace=600, events_delivery_timeout=600)
    await worker_registered(cluster)
    event_id = await one_delivery_in_flight(cluster, api, sim, receiver)

    process.send_signal(signal.SIGTERM)
    await stopping(cluster)
    assert process.poll() is None  # still waiting for the delivery, as the grace allows
    process.send_signal(signal.SIGTERM)
    await stopped(process, cluster, 60)
    # The job was running when the process ended: the worker row stays, its heartbeat ages.
    assert delivery_jobs(cluster) == [("doing",)]

    receiver.delay = 0
    start(cluster, "worker")
    # Stalled-job recovery runs the same job again; it takes back its own lease at once.
    await delivered_once_or_again(cluster, receiver, event_id)
