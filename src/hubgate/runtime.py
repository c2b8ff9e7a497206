"""What a running Hubgate process holds: database, keyring, catalog, egress client, jobs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hubgate.db.engine import create_engine, create_sessionmaker
from hubgate.elements.registry import ElementRegistry, discover
from hubgate.jobs.app import JobQueue, create_job_app
from hubgate.kit.crypto import Keyring
from hubgate.kit.egress import EgressClient, EgressPolicy, EgressTimeouts
from hubgate.limits import Limits, make_limits
from hubgate.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring
    registry: ElementRegistry
    egress: EgressClient
    limits: Limits
    jobs: JobQueue

    async def close(self) -> None:
        await self.jobs.close()
        await self.egress.close()
        await self.engine.dispose()


def load_keyring(settings: Settings) -> Keyring:
    if settings.keyring:
        return Keyring.from_json(settings.keyring.get_secret_value())
    return Keyring.load_or_create(settings.keyring_path)


async def open_runtime(settings: Settings, database_url: str, *, job_pool_size: int = 4) -> Runtime:
    # Every connection the process may use is kept once opened: connections opened above a
    # smaller pool were closed again when returned, so a burst of vendor webhooks from 32
    # clients spent its time starting and stopping PostgreSQL backends (D410).
    engine = create_engine(database_url, pool_size=settings.database_pool_size, max_overflow=0)
    egress = EgressClient(
        EgressPolicy.from_string(settings.egress_allow),
        max_response_bytes=settings.egress_max_response_bytes,
        timeouts=EgressTimeouts(
            connect=settings.egress_connect_timeout, read=settings.egress_read_timeout
        ),
    )
    await egress.start()
    jobs = JobQueue(create_job_app(settings, database_url, pool_size=job_pool_size))
    await jobs.open()
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=create_sessionmaker(engine),
        keyring=load_keyring(settings),
        registry=discover(),
        egress=egress,
        limits=make_limits(settings),
        jobs=jobs,
    )
