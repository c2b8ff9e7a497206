"""Hearing instance changes made by other processes: PostgreSQL LISTEN on one connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from hubgate.db.engine import libpq_url
from hubgate.hub.cache import CACHE_CLEARED, ResponseCache, TokenCache
from hubgate.instances.changes import CHANNEL

log = logging.getLogger("hubgate.hub.listener")


class ChangeListener:
    """Evicts the token cache entry of every instance another process changes, and the cached
    responses of an instance another process wrote through (D26).

    While the connection is down, notifications are lost, so each (re)connect clears the whole
    cache: the next call of every token reads the database again.
    """

    def __init__(self, database_url: str, cache: TokenCache, responses: ResponseCache) -> None:
        self._url = libpq_url(database_url)
        self._cache = cache
        self._responses = responses
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hubgate-instance-listener")
        # Answering hub calls before LISTEN is in place could miss a change made meanwhile.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout=10)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _heard(self, payload: str) -> None:
        if payload.startswith(CACHE_CLEARED):
            instance_id = payload[len(CACHE_CLEARED) :]
            if instance_id.isdigit():
                self._responses.clear(int(instance_id))
            return
        self._cache.evict(frozenset(payload.split(",")))

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._cache.clear()
                    self._cache.active = True
                    self.listening.set()
                    delay = 0.1
                    async for notice in conn.notifies():
                        self._heard(notice.payload)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.listening.clear()
                self._cache.active = False
                log.warning("instance change listener lost its connection (%s)", type(exc).__name__)
                self._cache.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
