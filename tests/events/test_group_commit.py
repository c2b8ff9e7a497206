"""Vendor webhooks that come while one is being recorded are recorded together (D460).

The events table is locked by the test from a connection of its own, so the first callback's
recording waits in PostgreSQL, for real; the callbacks posted meanwhile wait for the next
recording. Nothing here depends on timing: each step waits for what PostgreSQL or the app
shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from hubgate.events.intake import GroupCommit
from hubgate.runtime import Runtime
from tests.conftest import Api, RunningHubgate
from tests.events.conftest import Provisioner, eventually
from tests.events.test_fast_intake import signed
from tests.events.test_poller import statements
from tests.events.test_twilio_webhooks import inbound, instance_token

BURST = 20


@asynccontextmanager
async def events_locked(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Inserts into ``events`` wait while the block runs (reads do not)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            await conn.rollback()


async def an_insert_waits(url: str) -> bool:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass AND NOT granted"
        )
        row = await cursor.fetchone()
        return row is not None and row[0] > 0


async def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await (await conn.execute(sql, params)).fetchall()


class Callbacks:
    """Signed inbound-message callbacks of one webhook-mode instance."""

    def __init__(self, api: Api, hubgate: RunningHubgate, instance: dict[str, Any], token: str):
        self.api = api.with_auth(None)
        self.instance = instance
        self.token = token
        self.path = instance["eventsCallbackUrl"][len(hubgate.url) :]

    def post(self, sid: str) -> asyncio.Task[Any]:
        params = inbound(sid, self.instance["configuration"]["username"])
        return asyncio.create_task(
            self.api.post(self.path, **signed(self.instance, params, self.token))
        )


async def first_one_waiting(
    callbacks: Callbacks, hubgate: RunningHubgate, url: str, sid: str
) -> tuple[GroupCommit, asyncio.Task[Any]]:
    """A callback whose recording waits for the lock; the app's group commit."""
    lone = callbacks.post(sid)
    await eventually(lambda: an_insert_waits(url))
    group: GroupCommit = hubgate.app.state.vendor_group_commit
    assert group.waiting == 0
    return group, lone


async def a_burst_waiting(
    callbacks: Callbacks, hubgate: RunningHubgate, url: str, sids: list[str]
) -> list[asyncio.Task[Any]]:
    """The first callback's recording waiting for the lock, the others waiting for the next
    recording; their tasks, the first one first."""
    group, lone = await first_one_waiting(callbacks, hubgate, url, sids[0])
    burst = [callbacks.post(sid) for sid in sids[1:]]

    async def all_waiting() -> bool:
        return group.waiting == len(burst)

    await eventually(all_waiting)
    return [lone, *burst]


async def test_a_burst_is_recorded_by_fewer_transactions_than_callbacks(
    provision: Provisioner,
    events_api: Api,
    events_hubgate: RunningHubgate,
    events_url: str,
    runtime: Runtime,
) -> None:
    instance = await provision(**{"event.vendor.type": "webhook"})
    callbacks = Callbacks(events_api, events_hubgate, instance, instance_token(provision, instance))
    sids = [f"SM7{n:02d}" for n in range(BURST)]

    with statements(runtime) as sent:
        async with events_locked(events_url):
            posted = await a_burst_waiting(callbacks, events_hubgate, events_url, sids)
            # Nothing is committed yet, so nobody has been answered.
            assert not any(task.done() for task in posted)
        answers = await asyncio.gather(*posted)

    assert [a.status for a in answers] == [200] * BURST, [a.text for a in answers]
    recorded = await rows(
        events_url,
        "SELECT object_id, xmin::text FROM events WHERE instance_id = %s",
        instance["id"],
    )
    assert sorted(object_id for object_id, _ in recorded) == sids
    # The lone callback's transaction, then one for the other nineteen.
    assert len({xmin for _, xmin in recorded}) == 2
    inserts = [s for s in sent if "INSERT INTO events" in s]
    upserts = [s for s in sent if s.lstrip().startswith("INSERT INTO event_seen")]
    assert (len(upserts), len(inserts)) == (2, 2)


async def test_a_failed_recording_answers_each_of_its_callers_and_keeps_nothing(
    provision: Provisioner, events_api: Api, events_hubgate: RunningHubgate, events_url: str
) -> None:
    instance = await provision(**{"event.vendor.type": "webhook"})
    callbacks = Callbacks(events_api, events_hubgate, instance, instance_token(provision, instance))
    sids = [f"SM8{n:02d}" for n in range(BURST)]
    # PostgreSQL refuses the event of one object: the whole transaction it is in fails.
    async with await psycopg.AsyncConnection.connect(events_url, autocommit=True) as conn:
        await conn.execute(
            """
            CREATE FUNCTION test_refuse_sm805() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.object_id = 'SM805' THEN RAISE EXCEPTION 'refused by the test'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_refuse_sm805 BEFORE INSERT ON events
                FOR EACH ROW EXECUTE FUNCTION test_refuse_sm805();
            """
        )
    try:
        async with events_locked(events_url):
            posted = await a_burst_waiting(callbacks, events_hubgate, events_url, sids)
        answers = await asyncio.gather(*posted)
    finally:
        async with await psycopg.AsyncConnection.connect(events_url, autocommit=True) as conn:
            await conn.execute("DROP TRIGGER test_refuse_sm805 ON events")
            await conn.execute("DROP FUNCTION test_refuse_sm805()")

    assert answers[0].status == 200, answers[0].text
    for answer in answers[1:]:
        assert answer.status == 500, answer.text
        assert set(answer.body) == {"requestId", "message"}
        assert answer.headers["Elements-Request-Id"] == answer.body["requestId"]
    recorded = await rows(
        events_url, "SELECT object_id FROM events WHERE instance_id = %s", instance["id"]
    )
    assert recorded == [(sids[0],)]
    seen = await rows(
        events_url, "SELECT object_id FROM event_seen WHERE instance_id = %s", instance["id"]
    )
    assert seen == [(sids[0],)]

    # Nothing was lost: the vendor's retries are recorded as new.
    retried = await asyncio.gather(*(callbacks.post(sid) for sid in sids[1:]))
    assert [a.status for a in retried] == [200] * (BURST - 1)
    recorded = await rows(
        events_url, "SELECT object_id FROM events WHERE instance_id = %s", instance["id"]
    )
    assert sorted(object_id for (object_id,) in recorded) == sids
