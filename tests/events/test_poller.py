"""The poller (D28) against the simulator's state, with the hub's fetch replaced by a reader
of that state: priming, CREATED/UPDATED, the cursor, one transaction, failures, syncing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.events.changes import fill_url
from hubgate.events.models import Event, EventPoller, SeenObject
from hubgate.events.tasks import POLL, run_poll, run_tick
from hubgate.instances.models import Instance
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api
from tests.events.conftest import Provisioner


@dataclass
class FakeHub:
    """Stands in for hubgate.hub.service.fetch_all: the account's messages, as Twilio has them."""

    sim: TwilioSimulator
    urls: list[str] = field(default_factory=list)
    failure: HubgateError | None = None

    async def __call__(
        self, runtime: Runtime, instance: Instance, url: str
    ) -> list[dict[str, Any]]:
        self.urls.append(url)
        if self.failure is not None:
            raise self.failure
        return self.sim.messages(instance.configuration["username"])


async def sync(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        await service.sync_pollers(session, service.utcnow())


async def interval_passes(runtime: Runtime, instance_id: int) -> None:
    """Time driven by data: the poller's due time is now, as after a whole interval."""
    async with unit_of_work(runtime.sessions) as session:
        await service.make_due(session, instance_id, service.utcnow())


async def poller(runtime: Runtime, instance_id: int) -> EventPoller:
    async with runtime.sessions() as session:
        found = await session.get(EventPoller, (instance_id, "messages"))
        assert found is not None
        return found


async def count(runtime: Runtime, model: Any, instance_id: int) -> int:
    async with runtime.sessions() as session:
        stmt = select(func.count()).select_from(model).where(model.instance_id == instance_id)
        return int((await session.execute(stmt)).scalar_one())


def account(instance: dict[str, Any]) -> str:
    sid: str = instance["configuration"]["username"]
    return sid


async def test_first_poll_primes_then_new_and_changed_messages_become_events(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime, events_api: Api
) -> None:
    instance = await provision()
    hub = FakeHub(sim)
    # Made before events were enabled (date_created an hour back): known, not reported.
    already = sim.add_inbound_message(
        "+15005550006",
        "+15005550001",
        "before",
        account_sid=account(instance),
        at=service.utcnow() - timedelta(hours=1),
    )
    await sync(runtime)
    start = await poller(runtime, instance["id"])
    assert start.cursor_at == start.enabled_at
    assert not start.primed

    assert await run_poll(runtime, instance["id"], "messages", fetch=hub) == []
    template = "/hubs/messaging/messages?where=DateSent='${date:yyyy-MM-dd'T'HH:mm:ssXXX}'"
    assert hub.urls == [fill_url(template, start.enabled_at)]
    primed = await poller(runtime, instance["id"])
    assert primed.primed
    assert primed.cursor_at > start.cursor_at
    assert await count(runtime, SeenObject, instance["id"]) == 1

    fresh = sim.add_inbound_message(
        "+15005550007", "+15005550001", "after", account_sid=account(instance)
    )
    sim.set_message_status(already["sid"], "read")
    await interval_passes(runtime, instance["id"])
    created = await run_poll(runtime, instance["id"], "messages", fetch=hub)
    assert len(created) == 1
    assert hub.urls[-1] == fill_url(template, primed.cursor_at)

    await interval_passes(runtime, instance["id"])
    assert await run_poll(runtime, instance["id"], "messages", fetch=hub) == []

    events = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert len(events) == 1
    (only,) = events
    assert only["status"] == "NEW"
    pairs = {(e["objectId"], e["eventType"]) for e in only["events"]}
    assert pairs == {(fresh["sid"], "CREATED"), (already["sid"], "UPDATED")}
    assert all(e["pollDate"] == e["date"] for e in only["events"])


async def test_each_status_change_is_one_update(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime, events_api: Api
) -> None:
    instance = await provision()
    hub = FakeHub(sim)
    await sync(runtime)
    await run_poll(runtime, instance["id"], "messages", fetch=hub)
    message = sim.add_inbound_message(
        "+15005550006", "+15005550001", "hi", account_sid=account(instance)
    )
    kinds = []
    for status in (None, "read", None, "failed", None):
        if status is not None:
            sim.set_message_status(message["sid"], status)
        await interval_passes(runtime, instance["id"])
        for event_id in await run_poll(runtime, instance["id"], "messages", fetch=hub):
            event = (await events_api.get(f"instances/{instance['id']}/events/{event_id}")).body
            kinds.append(event["eventType"])
            assert event["raw"]["messages"][0]["sid"] == message["sid"]
    assert kinds == ["CREATED", "UPDATED", "UPDATED"]


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements sent through the runtime's engine while the block runs."""
    sent: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def test_a_polls_statements_do_not_grow_with_what_it_finds(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime
) -> None:
    """Item 2 of issue 13: one statement reads the plan, one each writes the poller, the
    seen-set and the events (plus the formula triggers' look-up when there are events)."""
    instance = await provision()
    hub = FakeHub(sim)
    await sync(runtime)
    await run_poll(runtime, instance["id"], "messages", fetch=hub)
    counts = []
    for changes in (1, 25):
        for n in range(changes):
            sim.add_inbound_message(
                "+15005550006", "+15005550001", f"m{n}", account_sid=account(instance)
            )
        await interval_passes(runtime, instance["id"])
        with statements(runtime) as sent:
            created = await run_poll(runtime, instance["id"], "messages", fetch=hub)
        assert len(created) == (changes + 9) // 10
        counts.append(len(sent))
    await interval_passes(runtime, instance["id"])
    with statements(runtime) as quiet:
        assert await run_poll(runtime, instance["id"], "messages", fetch=hub) == []
    assert counts[0] == counts[1] <= 5
    # Nothing changed: the plan, the poller and the seen-set's upsert that inserts nothing.
    assert len(quiet) == 3, quiet


async def test_two_runs_of_one_poll_commit_once(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime
) -> None:
    """A stalled poll run again while the first still finishes: the cursor check drops one."""
    instance = await provision()
    await sync(runtime)
    await run_poll(runtime, instance["id"], "messages", fetch=FakeHub(sim))
    sim.add_inbound_message("+15005550006", "+15005550001", "x", account_sid=account(instance))
    await interval_passes(runtime, instance["id"])
    now = service.utcnow()
    plans = []
    for _ in range(2):
        async with unit_of_work(runtime.sessions) as session:
            plans.append(
                await service.prepare_poll(session, instance["id"], "messages", now, timedelta(0))
            )
    records = sim.messages(account(instance))
    results = []
    for plan in plans:
        assert plan is not None
        async with unit_of_work(runtime.sessions) as session:
            results.append(
                await service.apply_poll(session, runtime, plan, records, service.utcnow())
            )
    assert [len(r) for r in results] == [1, 0]
    assert await count(runtime, Event, instance["id"]) == 1


async def test_a_vendor_failure_keeps_the_cursor_and_says_why(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime, events_api: Api
) -> None:
    instance = await provision()
    await sync(runtime)
    hub = FakeHub(sim)
    await run_poll(runtime, instance["id"], "messages", fetch=hub)
    before = await poller(runtime, instance["id"])
    hub.failure = HubgateError(502, "Twilio is unreachable")
    await interval_passes(runtime, instance["id"])
    assert await run_poll(runtime, instance["id"], "messages", fetch=hub) == []
    after = await poller(runtime, instance["id"])
    assert after.cursor_at == before.cursor_at
    assert after.last_error == "Twilio is unreachable"
    assert after.consecutive_failures == 1
    assert after.next_poll_at > service.utcnow() + timedelta(seconds=30)
    status = (await events_api.get(f"instances/{instance['id']}/events/status")).body
    assert status["lastError"] == "Twilio is unreachable"

    hub.failure = None
    sim.add_inbound_message("+15005550006", "+15005550001", "x", account_sid=account(instance))
    await interval_passes(runtime, instance["id"])
    assert len(await run_poll(runtime, instance["id"], "messages", fetch=hub)) == 1
    assert hub.urls[-1] == hub.urls[-2]  # the failed window is polled again
    assert (await poller(runtime, instance["id"])).last_error is None


async def test_a_poll_that_is_not_due_does_not_call_the_vendor(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime
) -> None:
    instance = await provision()
    await sync(runtime)
    hub = FakeHub(sim)
    await run_poll(runtime, instance["id"], "messages", fetch=hub)
    await run_poll(runtime, instance["id"], "messages", fetch=hub)
    assert len(hub.urls) == 1
    assert (await poller(runtime, instance["id"])).polls == 1


async def test_a_created_date_field_lets_the_first_poll_report_what_came_after_enabling(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime, events_api: Api
) -> None:
    configuration = (
        '{"messages": {"url": "/hubs/messaging/messages?where=DateSent=\'${date:yyyy-MM-dd}\'",'
        ' "idField": "sid", "datesConfiguration": {"createdDateField": "date_created"}}}'
    )
    old = service.utcnow() - timedelta(hours=1)
    instance = await provision(**{"event.poller.configuration": configuration})
    sim.add_inbound_message(
        "+15005550006", "+15005550001", "old", account_sid=account(instance), at=old
    )
    await sync(runtime)
    fresh = sim.add_inbound_message(
        "+15005550007", "+15005550001", "new", account_sid=account(instance)
    )
    created = await run_poll(runtime, instance["id"], "messages", fetch=FakeHub(sim))
    assert len(created) == 1
    events = (await events_api.get(f"instances/{instance['id']}/events")).body
    assert [e["objectId"] for e in events] == [fresh["sid"]]


async def test_disabling_events_drops_pollers_and_enabling_again_starts_afresh(
    provision: Provisioner, sim: TwilioSimulator, runtime: Runtime, events_api: Api
) -> None:
    instance = await provision()
    await sync(runtime)
    await run_poll(runtime, instance["id"], "messages", fetch=FakeHub(sim))
    first = await poller(runtime, instance["id"])

    async def configure(**values: Any) -> None:
        answer = await events_api.patch(
            f"instances/{instance['id']}", json={"configuration": values}
        )
        assert answer.status == 200, answer.text
        await sync(runtime)

    await configure(**{"event.notification.enabled": False})
    assert await count(runtime, EventPoller, instance["id"]) == 0
    assert await count(runtime, SeenObject, instance["id"]) == 0
    await configure(**{"event.notification.enabled": True, "event.poller.refresh_interval": 5})
    again = await poller(runtime, instance["id"])
    assert again.enabled_at > first.enabled_at
    assert not again.primed
    assert again.interval_minutes == 5

    await configure(**{"event.poller.refresh_interval": 7})
    changed = await poller(runtime, instance["id"])
    assert changed.interval_minutes == 7
    assert changed.next_poll_at == changed.enabled_at + timedelta(minutes=7)

    answer = await events_api.delete(f"instances/{instance['id']}/enabled")
    assert answer.status == 200
    await sync(runtime)
    assert await count(runtime, EventPoller, instance["id"]) == 0


async def test_ticks_defer_one_poll_per_due_poller_however_often_they_run(
    provision: Provisioner, runtime: Runtime
) -> None:
    first = await provision()
    second = await provision()
    # Later ticks find the polls queued already and do not try to defer them again.
    assert [(await run_tick(runtime))["polls"] for _ in range(3)] == [2, 0, 0]
    queued = await runtime.jobs.app.job_manager.list_jobs_async(task=POLL, status="todo")
    assert sorted(job.task_kwargs["instance_id"] for job in queued) == sorted(
        [first["id"], second["id"]]
    )
    assert all(job.lock == job.queueing_lock for job in queued)
