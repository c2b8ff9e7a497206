"""Batched deliveries (D310): one dispatcher leases many due notifications in one statement,
posts them concurrently over the egress client's kept-alive connections, bounded per callback
host, and records each round of outcomes in one statement.

A slow or dead host holds back only its own notifications: it gets at most ``per_host``
attempts in flight and as many waiting for a slot; what comes for it beyond that is handed
back untried, to be leased again later. A notification waiting for its slot starts only while
its lease still covers a whole attempt (D136: one attempt at a time, however long the wait).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.observability import metrics
from hubgate.runtime import Runtime
from hubgate.settings import Settings

# How long a round waits, after its first outcome, for more to settle in the same statement:
# the receivers have the notifications already; only the record waits this long.
SETTLE_WINDOW = 0.05
# Attempts one run keeps going at once, in batches: several hosts' slots' worth.
MAX_IN_FLIGHT_BATCHES = 4
# A host busy but answering: what it could not take now is leased again this soon.
BUSY_HOST_SECONDS = 0.5


class HostSlots:
    """Attempts per callback host, shared by every dispatcher of a process.

    A host gets ``per_host`` attempts in flight. Waiting for a slot: ``per_host`` more, or as
    many as the host answered in the last seconds allow to start well within their lease; so
    a fast receiver takes whole batches while a dead one holds only its slots' worth.
    """

    def __init__(self, per_host: int, wait_seconds: float) -> None:
        self.per_host = per_host
        self.wait_seconds = wait_seconds
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._taken: Counter[str] = Counter()
        # Since when a host has had attempts in flight without a pause.
        self._busy_since: dict[str, float] = {}
        # Per host: answers counted since the window began, the window's start, last answer.
        self._answers: dict[str, tuple[int, float, float]] = {}

    def admits(self, host: str) -> bool:
        count, since, _ = self._answers.get(host, (0, time.monotonic(), 0.0))
        rate = count / max(time.monotonic() - since, 1.0)
        room = max(self.per_host, int(rate * self.wait_seconds))
        return self._taken[host] < self.per_host + room

    def stalled(self, host: str, seconds: float) -> bool:
        """Attempts in flight and no answer for ``seconds``: a slow or dead host."""
        last = max(self._answers.get(host, (0, 0.0, 0.0))[2], self._busy_since.get(host, 0.0))
        return self._taken[host] >= self.per_host and time.monotonic() - last > seconds

    def reserve(self, host: str, task: asyncio.Task[service.AttemptResult | None]) -> None:
        """Count ``task`` against ``host`` until it ends, however it ends (also cancelled
        before it ran)."""
        if not self._taken[host]:
            self._busy_since[host] = time.monotonic()
        self._taken[host] += 1
        task.add_done_callback(lambda done: self._release(host, done))

    def _release(self, host: str, task: asyncio.Task[service.AttemptResult | None]) -> None:
        now = time.monotonic()
        if not task.cancelled() and task.exception() is None and task.result() is not None:
            count, since, _ = self._answers.get(host, (0, now, now))
            # A rate over the last few seconds: the window restarts every ten.
            self._answers[host] = (1, now, now) if now - since > 10 else (count + 1, since, now)
        self._taken[host] -= 1
        if self._taken[host] <= 0:
            del self._taken[host]
            self._slots.pop(host, None)
            self._busy_since.pop(host, None)

    def semaphore(self, host: str) -> asyncio.Semaphore:
        return self._slots.setdefault(host, asyncio.Semaphore(self.per_host))


_PROCESS_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HostSlots] = (
    weakref.WeakKeyDictionary()
)


def host_slots(settings: Settings) -> HostSlots:
    """The slots of this process (its event loop): concurrent dispatchers share the bound."""
    loop = asyncio.get_running_loop()
    per_host = settings.events_delivery_per_host
    # Half of the wait a batched lease allows for (service.batch_lease_seconds).
    wait = settings.events_delivery_timeout / 2
    slots = _PROCESS_SLOTS.get(loop)
    if slots is None or (slots.per_host, slots.wait_seconds) != (per_host, wait):
        slots = _PROCESS_SLOTS[loop] = HostSlots(per_host, wait)
    return slots


@dataclass
class Round:
    """Outcomes waiting to be recorded: attempts made, and notifications handed back."""

    attempted: list[tuple[service.Delivery, service.AttemptResult]] = field(default_factory=list)
    handed_back: list[tuple[service.Delivery, datetime]] = field(default_factory=list)

    def hand_back(self, delivery: service.Delivery, after: float) -> None:
        self.handed_back.append((delivery, service.utcnow() + timedelta(seconds=after)))

    def __bool__(self) -> bool:
        return bool(self.attempted or self.handed_back)


@asynccontextmanager
async def statement_by_statement(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session in autocommit, for steps that are a single statement: each is atomic alone,
    and BEGIN and COMMIT would double the round trips of the delivery hot path."""
    async with runtime.sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


async def _attempt(
    runtime: Runtime, slots: HostSlots, delivery: service.Delivery
) -> service.AttemptResult | None:
    async with slots.semaphore(delivery.host):
        # The lease must outlast the attempt and its record; a notification that waited too
        # long for its host goes back untried rather than risk a second attempt beside it.
        needed = timedelta(seconds=service.lease_seconds(runtime.settings) - 2.0)
        if delivery.lease_until is None or delivery.lease_until - service.utcnow() < needed:
            return None
        return await service.send(runtime, delivery)


async def _record(runtime: Runtime, owner: int, batch: Round) -> list[datetime]:
    # A 410 changes the instance and its other events too: that takes a transaction.
    gone = any(result.status_code == 410 for _, result in batch.attempted)
    scope = unit_of_work(runtime.sessions) if gone else statement_by_statement(runtime)
    async with scope as session:
        due_again = await service.record_batch(
            session, runtime.settings, owner, batch.attempted, batch.handed_back
        )
    for _, result in batch.attempted:
        metrics.EVENT_DELIVERIES.labels("delivered" if result.succeeded else "failed").inc()
    return due_again


# Told, as soon as they are recorded, when notifications are due again (retries, those
# handed back), so that runs are scheduled for them while this one still waits on others.
DueAgain = Callable[[list[datetime]], Awaitable[None]]


async def dispatch(runtime: Runtime, owner: int, due_again: DueAgain) -> int:
    """Deliver what is due, lease after lease while they come back full; answers the
    attempts made.

    ``owner`` is the job's id: the first lease of a run takes back what an earlier run of the
    same job held when its worker died (D136), so a rescued job resends at once.
    """
    settings = runtime.settings
    slots = host_slots(settings)
    size = settings.events_delivery_batch
    in_flight: dict[asyncio.Task[service.AttemptResult | None], service.Delivery] = {}
    attempts = 0
    reclaim, drained = True, False
    try:
        while True:
            pending = Round()
            if not drained and len(in_flight) <= MAX_IN_FLIGHT_BATCHES * size - size:
                async with statement_by_statement(runtime) as session:
                    claimed = await service.prepare_deliveries(
                        session,
                        runtime,
                        service.utcnow(),
                        owner,
                        reclaim=reclaim,
                        limit=size,
                    )
                # A lease short of a batch took everything due: leasing again at once would
                # pay a statement, and a record, per notification committed since (D435).
                # What is committed after this lease has a run of its own after its commit.
                reclaim, drained = False, len(claimed) < size
                for delivery in claimed:
                    host = delivery.host
                    if slots.admits(host):
                        task = asyncio.create_task(_attempt(runtime, slots, delivery))
                        slots.reserve(host, task)
                        in_flight[task] = delivery
                    elif slots.stalled(host, settings.events_delivery_connect_timeout):
                        # Not answering: its notifications wait an attempt's time.
                        pending.hand_back(delivery, settings.events_delivery_timeout)
                    else:
                        pending.hand_back(delivery, BUSY_HOST_SECONDS)
            if in_flight:
                # Waiting for the first outcome is only for when there is nothing else to do:
                # a host that is slow to answer must not keep this run from leasing more.
                idle = drained and not pending
                done, rest = await asyncio.wait(
                    in_flight,
                    timeout=None if idle else SETTLE_WINDOW,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done and rest:
                    more, _ = await asyncio.wait(rest, timeout=SETTLE_WINDOW)
                    done |= more
                for task in done:
                    delivery, result = in_flight.pop(task), task.result()
                    if result is None:
                        pending.hand_back(delivery, 0)
                    else:
                        attempts += 1
                        pending.attempted.append((delivery, result))
            if pending:
                later = await _record(runtime, owner, pending)
                if later:
                    await due_again(later)
            elif not in_flight:
                return attempts
    finally:
        for task in in_flight:
            task.cancel()
