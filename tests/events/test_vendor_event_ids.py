"""The vendor event ids taken from webhooks (D380): each id once per instance, kept a day and
then forgotten by the tick."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.events.changes import CREATED, UPDATED, Change, digest
from hubgate.events.models import Event, VendorEventId
from hubgate.events.tasks import run_tick
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime
from tests.events.conftest import Provisioner


def change(object_id: str, kind: str, vendor_id: str | None) -> Change:
    return Change(
        "messages", object_id, kind, {"id": object_id}, digest({"v": vendor_id}), vendor_id
    )


async def record(runtime: Runtime, instance_id: int, found: list[Change]) -> int:
    async with unit_of_work(runtime.sessions) as session:
        instance = await session.get(Instance, instance_id)
        assert instance is not None
        made = await service.record_vendor_changes(
            session, runtime, instance, found, service.utcnow()
        )
    return len(made)


async def test_an_event_id_counts_once_per_instance(
    provision: Provisioner, runtime: Runtime
) -> None:
    first = (await provision())["id"]
    second = (await provision())["id"]
    assert await record(runtime, first, [change("M1", CREATED, "Ev1")]) == 1
    assert await record(runtime, first, [change("M1", UPDATED, "Ev2")]) == 1
    # Ev1 again after Ev2: its digest differs from the last one seen, its id was taken.
    assert await record(runtime, first, [change("M1", CREATED, "Ev1")]) == 0
    # Another instance's Ev1 is another event; a change without an id is judged by digest.
    assert await record(runtime, second, [change("M1", CREATED, "Ev1")]) == 1
    assert await record(runtime, first, [change("M2", CREATED, None)]) == 1
    assert await record(runtime, first, [change("M2", CREATED, None)]) == 0
    async with runtime.sessions() as session:
        made = (await session.execute(select(Event.instance_id))).scalars().all()
    assert sorted(made) == sorted([first, first, second, first])


async def test_the_tick_forgets_ids_older_than_a_day(
    provision: Provisioner, runtime: Runtime
) -> None:
    instance_id = (await provision())["id"]
    now = service.utcnow()
    async with unit_of_work(runtime.sessions) as session:
        for vendor_id, age in (("old", timedelta(days=1, minutes=1)), ("recent", timedelta(0))):
            session.add(
                VendorEventId(
                    instance_id=instance_id, vendor_event_id=vendor_id, taken_at=now - age
                )
            )
    assert (await run_tick(runtime))["forgotten"] == 1
    async with runtime.sessions() as session:
        kept = (await session.execute(select(VendorEventId.vendor_event_id))).scalars().all()
    assert kept == ["recent"]
    # Forgotten, the old id would be taken again: a vendor does not retry after a day.
    assert await record(runtime, instance_id, [change("M1", CREATED, "old")]) == 1
