"""Batched deliveries (D310) by a real worker to real receivers over HTTP: many notifications
leased and recorded per statement, each sent once, retries with the same webhook id, and a
dead callback host that holds back only its own notifications."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter

from sqlalchemy import func, select

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.events.changes import CREATED, Change, digest
from hubgate.events.models import Event, EventAttempt
from hubgate.events.tasks import defer_dispatch, run_dispatch
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime
from hubgate.settings import Settings
from sims.receiver import CallbackReceiver
from tests.clusters import worker_on
from tests.events.conftest import Provisioner, eventually


async def record_events(runtime: Runtime, instance_id: int, count: int) -> list[str]:
    """``count`` committed notifications of one change each, with no job deferred."""
    found = [
        Change("messages", f"SM{instance_id}x{i}", CREATED, {"sid": f"SM{i}"}, digest({"i": i}))
        for i in range(count)
    ]
    ids: list[str] = []
    async with unit_of_work(runtime.sessions) as session:
        instance = await session.get(Instance, instance_id)
        assert instance is not None
        # One vendor change per call, so that each becomes a notification of its own.
        for change in found:
            made = await service.record_vendor_changes(
                session, runtime, instance, [change], service.utcnow()
            )
            ids += [str(i) for i in made]
    return ids


async def statuses(runtime: Runtime, ids: list[str]) -> Counter[str]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(Event.status).where(Event.id.in_([uuid.UUID(i) for i in ids]))
        )
        return Counter(row[0] for row in rows)


async def attempts_of(runtime: Runtime, ids: list[str]) -> int:
    async with runtime.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(EventAttempt)
            .where(EventAttempt.event_id.in_([uuid.UUID(i) for i in ids]))
        )
        return int(count or 0)


async def test_one_run_delivers_a_batch_each_notification_once(
    provision: Provisioner, runtime: Runtime, receiver: CallbackReceiver
) -> None:
    """Without a worker: one run leases, sends and records everything due, in batches of
    five here, and a second run finds nothing."""
    first, second = await provision(), await provision()
    ids = await record_events(runtime, first["id"], 12) + await record_events(
        runtime, second["id"], 11
    )
    small = runtime.settings.model_copy(update={"events_delivery_batch": 5})
    batched = dataclasses.replace(runtime, settings=small)

    assert await run_dispatch(batched, owner=5) == 23
    assert Counter(r.webhook_id for r in receiver.requests) == Counter(ids)
    assert await statuses(runtime, ids) == Counter({"NOTIFIED": 23})
    assert await attempts_of(runtime, ids) == 23
    assert await run_dispatch(batched, owner=6) == 0
    assert len(receiver.requests) == 23


async def test_failures_in_a_batch_are_retried_with_the_same_webhook_id(
    provision: Provisioner, runtime: Runtime, worker: Runtime, receiver: CallbackReceiver
) -> None:
    instance = await provision()
    ids = await record_events(runtime, instance["id"], 20)
    receiver.fail_next(6, status=503)
    await defer_dispatch(runtime.jobs)

    async def all_notified() -> bool:
        return await statuses(runtime, ids) == Counter({"NOTIFIED": 20})

    await eventually(all_notified, seconds=60)
    counts = Counter(r.webhook_id for r in receiver.requests)
    assert set(counts) == set(ids)
    assert sorted(counts.values()) == [1] * 14 + [2] * 6
    assert await attempts_of(runtime, ids) == 26


async def test_a_host_that_never_answers_holds_back_only_its_own_notifications(
    provision: Provisioner,
    runtime: Runtime,
    receiver: CallbackReceiver,
    events_settings: Settings,
    events_url: str,
) -> None:
    """A receiver answering 500 to every other request and one that never answers: all of the
    first one's notifications are accepted before the silent host's first attempts have even
    ended (its requests time out after 60 s, and its first retry is due after that)."""
    silent = CallbackReceiver()
    await silent.start()
    silent.delay = 3600
    try:
        flaky = await provision()
        dead = await provision(**{"event.notification.callback.url": silent.url})
        for _ in range(30):
            receiver.fail_next(1, status=500)
            receiver.fail_next(1, status=200)
        dead_ids = await record_events(runtime, dead["id"], 30)
        flaky_ids = await record_events(runtime, flaky["id"], 60)
        busy = events_settings.model_copy(
            update={
                "events_delivery_timeout": 60.0,
                "events_delivery_per_host": 4,
                "events_delivery_batch": 20,
                # Room for a notification that meets the 500s more than once in a row.
                "events_retry_schedule": [0.2] * 8,
            }
        )
        async with worker_on(busy, events_url, "dispatch-worker"):
            await defer_dispatch(runtime.jobs)

            async def flaky_all_notified() -> bool:
                return await statuses(runtime, flaky_ids) == Counter({"NOTIFIED": 60})

            await eventually(flaky_all_notified, seconds=50)
            # The silent host's attempts are still in flight or waiting: none has ended, so
            # no retry of its notifications can be due yet.
            assert await attempts_of(runtime, dead_ids) == 0
            assert await statuses(runtime, dead_ids) == Counter({"NEW": 30})
            # At most its slots' worth reached it, each once.
            arrived = Counter(r.webhook_id for r in silent.requests)
            assert 1 <= len(arrived) <= 4
            assert set(arrived.values()) == {1}
        accepted = Counter(r.webhook_id for r in receiver.requests if r.status == 200)
        assert accepted == Counter(flaky_ids)
    finally:
        await silent.stop()


async def test_a_410_in_a_batch_disables_the_instances_notifications(
    provision: Provisioner, runtime: Runtime, receiver: CallbackReceiver
) -> None:
    """One slot for the host: the first answer is a 410. The others of the batch were sent
    beside it and accepted, or not sent yet and failed with it (D134); none is left pending
    and none is sent twice."""
    instance = await provision()
    ids = await record_events(runtime, instance["id"], 3)
    receiver.fail_next(1, status=410)
    one_slot = runtime.settings.model_copy(update={"events_delivery_per_host": 1})
    await run_dispatch(dataclasses.replace(runtime, settings=one_slot), owner=9)

    ended = await statuses(runtime, ids)
    assert set(ended) <= {"FAILED", "NOTIFIED"}
    assert ended["FAILED"] >= 1
    assert ended["NOTIFIED"] == len(receiver.requests) - 1
    assert len({r.webhook_id for r in receiver.requests}) == len(receiver.requests)
    gone = receiver.requests[0].webhook_id
    async with runtime.sessions() as session:
        event = await session.get(Event, uuid.UUID(gone))
        stored = await session.get(Instance, instance["id"])
    assert event is not None
    assert event.failure_reason == service.GONE
    assert stored is not None
    assert stored.configuration["event.notification.enabled"] == "false"
