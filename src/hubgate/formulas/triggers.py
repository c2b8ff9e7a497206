"""What starts an execution besides a person: events of a connector instance and schedules.

Event triggers run in the transaction that records the events (``events_recorded``), so an
event and the executions it starts commit together: none is lost or started twice. Scheduled
triggers are fired by a periodic tick; each fire time is taken under the formula instance's
row lock and recorded in ``schedule_cursor``, so however many ticks and workers run, one fire
time starts one execution.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.engine import unit_of_work
from hubgate.formulas import schedule, service
from hubgate.formulas.models import Formula, FormulaInstance
from hubgate.formulas.repository import FormulaRepository
from hubgate.hub.model import HubCall
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.formulas")


def _trigger(formula: Formula, kind: str) -> dict[str, Any] | None:
    for trigger in formula.body.get("triggers", []):
        if trigger["type"] == kind:
            found: dict[str, Any] = trigger
            return found
    return None


def _listens_to(instance: FormulaInstance, trigger: Mapping[str, Any], element_id: int) -> bool:
    wanted = service.resolve_text(
        str(trigger["properties"].get("elementInstanceId", "")), instance.configuration
    )
    return wanted == str(element_id)


class RecordedEvent(Protocol):
    """What the events domain hands over: one stored event of one connector instance, with the
    changes it notifies (``events``) and their vendor objects (``raw``), in order."""

    id: Any
    instance_id: int
    events: list[dict[str, Any]]
    raw: dict[str, Any]


async def events_recorded(
    session: AsyncSession, runtime: Runtime, events: Sequence[RecordedEvent]
) -> int:
    """Start one execution per changed object of each event, for every active formula
    instance whose event trigger names the event's connector instance (B.3)."""
    repo = FormulaRepository(session)
    started = 0
    listeners: dict[int, list[tuple[FormulaInstance, Formula, dict[str, Any]]]] = {}
    for event in events:
        if event.instance_id not in listeners:
            found = []
            for instance in await repo.listening_to(event.instance_id):
                formula = await repo.formula_by_id(instance.formula_id)
                trigger = _trigger(formula, "event") if formula is not None else None
                if formula is None or not formula.active or trigger is None:
                    continue
                if _listens_to(instance, trigger, event.instance_id):
                    found.append((instance, formula, trigger))
            listeners[event.instance_id] = found
        for instance, formula, _ in listeners[event.instance_id]:
            for index, change in enumerate(event.events):
                objects = event.raw.get(str(change.get("objectType")), [])
                trigger = {
                    "type": "event",
                    "eventId": str(event.id),
                    "instanceId": event.instance_id,
                    "event": {
                        key: change.get(key)
                        for key in ("date", "elementKey", "eventType", "objectId", "objectType")
                    },
                    "raw": objects[index] if index < len(objects) else None,
                }
                await service.start_execution(
                    session,
                    runtime.jobs.app,
                    runtime.settings,
                    instance,
                    formula,
                    trigger,
                    event_id=str(event.id),
                    object_id=str(change.get("objectId")),
                )
                started += 1
    return started


async def fire_schedules(runtime: Runtime, now: datetime) -> int:
    """Start the executions of every scheduled trigger whose next fire time is due."""
    async with runtime.sessions() as session:
        candidates = [
            (instance.id, formula.id)
            for instance, formula in await FormulaRepository(session).scheduled_instances()
        ]
    fired = 0
    for instance_id, _formula_id in candidates:
        try:
            async with unit_of_work(runtime.sessions) as session:
                fired += await _fire_one(session, runtime, instance_id, now)
        except HubgateError as error:
            log.warning("scheduled formula instance %s: %s", instance_id, error.message)
    return fired


async def _fire_one(
    session: AsyncSession, runtime: Runtime, instance_id: int, now: datetime
) -> int:
    repo = FormulaRepository(session)
    instance = await repo.lock_instance(instance_id)
    if instance is None or not instance.active:
        return 0
    formula = await repo.formula_by_id(instance.formula_id)
    trigger = _trigger(formula, "scheduled") if formula is not None else None
    if formula is None or trigger is None:
        return 0
    if instance.schedule_cursor is None:
        # No backfill: a schedule counts from the first tick that sees it.
        instance.schedule_cursor = max(now, instance.created_at)
        return 0
    cron = service.resolve_text(str(trigger["properties"]["cron"]), instance.configuration)
    due = schedule.next_fire(cron, instance.schedule_cursor)
    if due > now:
        return 0
    # Missed fire times (every worker down for a while) are not made up: one execution for
    # the latest due one, as a clock that had stopped would fire once on waking.
    latest = due
    while (following := schedule.next_fire(cron, latest)) <= now:
        latest = following
    instance.schedule_cursor = latest
    await service.start_execution(
        session,
        runtime.jobs.app,
        runtime.settings,
        instance,
        formula,
        {"type": "scheduled", "scheduledTime": latest.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )
    return 1


# -- elementRequest triggers -------------------------------------------------------------------


def _api_matches(api: str, method: str, rest: Sequence[str], wanted_method: str) -> bool:
    if wanted_method.upper() != method:
        return False
    segments = [s for s in api.split("?", 1)[0].split("/") if s]
    if len(segments) < 3 or segments[0] != "hubs" or len(segments) - 2 != len(rest):
        return False
    # ``{name}`` in the trigger's api matches any one segment.
    return all(
        want == got or (want.startswith("{") and want.endswith("}"))
        for want, got in zip(segments[2:], rest, strict=True)
    )


async def _read_listening(runtime: Runtime) -> frozenset[int]:
    known = service.REQUEST_LISTENERS
    now = time.monotonic()
    async with runtime.sessions() as session:
        pairs = await FormulaRepository(session).request_listeners()
    known.instance_ids = frozenset(
        element_id for instance, _ in pairs for element_id in instance.element_instance_ids
    )
    known.expires = now + service.REQUEST_TRIGGER_REFRESH
    return known.instance_ids


# One read at a time: when the set expires under load, the hub calls that find it stale wait
# for that read instead of each taking a database connection (under bench/proxy's 50
# connections every expiry sent a query per call in flight and grew the pool past its size).
_reading: dict[asyncio.AbstractEventLoop, asyncio.Future[frozenset[int]]] = {}


def _read_done(reading: asyncio.Future[frozenset[int]]) -> None:
    _reading.pop(reading.get_loop(), None)
    if not reading.cancelled():
        reading.exception()  # its waiters have it; a read nobody waits for any more is not logged


async def _listening(runtime: Runtime) -> frozenset[int]:
    known = service.REQUEST_LISTENERS
    if time.monotonic() < known.expires:
        return known.instance_ids
    loop = asyncio.get_running_loop()
    reading = _reading.get(loop)
    if reading is None:
        reading = _reading[loop] = asyncio.ensure_future(_read_listening(runtime))
        reading.add_done_callback(_read_done)
    return await asyncio.shield(reading)


async def hub_called(
    runtime: Runtime, element_id: int, call: HubCall, status: int, answer: Any
) -> int:
    """A hub call through ``element_id`` answered: start the executions of the formula
    instances whose elementRequest trigger names this instance, method and api (B.3)."""
    if element_id not in await _listening(runtime):
        return 0
    started = 0
    async with unit_of_work(runtime.sessions) as session:
        repo = FormulaRepository(session)
        for instance, formula in await repo.request_listeners():
            trigger = _trigger(formula, "elementRequest")
            if trigger is None or not _listens_to(instance, trigger, element_id):
                continue
            properties = trigger["properties"]
            api = service.resolve_text(str(properties.get("api", "")), instance.configuration)
            wanted = service.resolve_text(str(properties.get("method", "")), instance.configuration)
            if not _api_matches(api, call.method, call.segments, wanted):
                continue
            body = call.body.decode("utf-8", "replace")
            try:
                sent: Any = json.loads(body) if body else None
            except ValueError:
                sent = body
            request_trigger = {
                "type": "request",
                "request": {
                    "method": call.method,
                    "path": "/" + "/".join(call.segments),
                    "query": dict(call.query),
                    "headers": {},
                    "body": sent,
                },
                "response": {"code": status, "headers": {}, "body": answer},
            }
            await service.start_execution(
                session, runtime.jobs.app, runtime.settings, instance, formula, request_trigger
            )
            started += 1
    return started
