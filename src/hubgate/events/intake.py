"""Vendor webhooks recorded together: one transaction for the callbacks that wait (D460).

Under bench/events.py's intake each callback was its own transaction: a session, the seen-set
upsert, the events' insert and a commit, about half of serve's CPU per callback and most of
PostgreSQL's. Here a callback, once verified, waits for a recording: the first one starts it at
once (a lone callback waits for nothing but its own transaction), and those that come while it
runs are recorded together by the next one, up to ``MAX_BATCH``. Each caller gets its events'
ids only after the commit that holds them, or the error of the recording that failed; a
failed recording is rolled back whole, so none of its callbacks left anything behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from hubgate.events.service import VendorReport, report_keys

log = logging.getLogger("hubgate.events")

# Callbacks recorded by one transaction at most: bounds the statements' arrays and what one
# failure answers with an error.
MAX_BATCH = 100

Record = Callable[[Sequence[VendorReport]], Awaitable[list[list[uuid.UUID]]]]


@dataclass(frozen=True)
class _Waiting:
    report: VendorReport
    keys: frozenset[tuple[str, int, str, str]]
    answer: asyncio.Future[list[uuid.UUID]]


class GroupCommit:
    """Records vendor reports through ``record`` (one transaction, committed, per call), as
    many together as came while the previous call ran; ``committed`` is called, without being
    awaited by anyone waiting, after each commit that recorded events."""

    def __init__(
        self,
        record: Record,
        committed: Callable[[int], Coroutine[Any, Any, None]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._record = record
        self._committed = committed
        self.max_batch = max_batch
        self._waiting: deque[_Waiting] = deque()
        self._recorder: asyncio.Task[None] | None = None
        # Tasks started after commits, kept until done (the loop holds only weak references).
        self._after: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Reports waiting for a recording that has not started yet."""
        return len(self._waiting)

    async def submit(self, report: VendorReport) -> list[uuid.UUID]:
        """The ids of the events recorded for ``report``, once they are committed."""
        answer: asyncio.Future[list[uuid.UUID]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(report, report_keys(report), answer))
        if self._recorder is None:
            self._recorder = asyncio.create_task(self._record_all())
        return await answer

    def _take(self) -> list[_Waiting]:
        """The next batch, in arrival order. A report naming an object or a vendor event id
        that an earlier report still waiting names waits for the next batch, so that each
        statement writes a row once and a later report is never recorded before an earlier
        one about the same object."""
        batch: list[_Waiting] = []
        named: set[tuple[str, int, str, str]] = set()
        left: deque[_Waiting] = deque()
        while self._waiting and len(batch) < self.max_batch:
            waiting = self._waiting.popleft()
            if named.isdisjoint(waiting.keys):
                batch.append(waiting)
            else:
                left.append(waiting)
            named |= waiting.keys
        left.extend(self._waiting)
        self._waiting = left
        return batch

    async def _record_all(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch = self._take()
                try:
                    created = await self._record([w.report for w in batch])
                except Exception as exc:
                    for waiting in batch:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(exc)
                    continue
                for waiting, ids in zip(batch, created, strict=True):
                    if not waiting.answer.done():
                        waiting.answer.set_result(ids)
                count = sum(len(ids) for ids in created)
                if count:
                    self._after_commit(count)
            batch = []
        finally:
            self._recorder = None
            # Cancelled (the app stopping): no caller is left waiting for a recording that
            # will not come.
            for waiting in (*batch, *self._waiting):
                if not waiting.answer.done():
                    waiting.answer.cancel()
            self._waiting.clear()

    def _after_commit(self, count: int) -> None:
        task = asyncio.create_task(self._committed(count))
        self._after.add(task)
        task.add_done_callback(self._after.discard)
