"""A burst of concurrent database work reuses the process's connections (D410).

With a pool of 10 and an overflow of 20, the connections opened above 10 were closed when they
were returned, so every burst of more than ten concurrent requests (a vendor's webhook burst
from 32 clients) started and stopped PostgreSQL backends for each request.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from hubgate.runtime import Runtime, open_runtime
from hubgate.settings import Settings

BURST = 25


async def burst(runtime: Runtime) -> set[int]:
    """The backends of ``BURST`` sessions that all hold a connection at the same moment."""
    together = asyncio.Barrier(BURST)

    async def one() -> int:
        async with runtime.sessions() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await together.wait()
            return int(pid)

    return set(await asyncio.gather(*(one() for _ in range(BURST))))


async def test_a_second_burst_uses_the_connections_of_the_first(
    settings: Settings, pg_url: str
) -> None:
    assert settings.database_pool_size >= BURST
    runtime = await open_runtime(settings, pg_url)
    try:
        first = await burst(runtime)
        second = await burst(runtime)
    finally:
        await runtime.close()
    assert len(first) == BURST
    assert second == first
