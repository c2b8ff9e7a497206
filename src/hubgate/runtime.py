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
    # The formula engine's own pool: a step job holds one connection while it runs (D510).
    step_engine: AsyncEngine
    keyring: Keyring
    registry: ElementRegistry
    egress: EgressClient
    limits: Limits
    jobs: JobQueue

    async def close(self) -> None:
        await self.jobs.close()
        await self.egress.close()
        await self.engine.dispose()
        await self.step_engine.dispose()


def load_keyring(settings: Settings) -> Keyring:
    if settings.keyring:
        return Keyring.from_json(settings.keyring.get_secret_value())
    return Keyring.load_or_create(settings.keyring_path)


async def open_runtime(settings: Settings, database_url: str, *, job_pool_size: int = 4) -> Runtime:
    # Every connection the process may use is kept once opened: connections opened above a
    # smaller pool were closed again when returned, so a burst of vendor webhooks from 32
    # clients spent its time starting and stopping PostgreSQL backends (D410).
    engine = create_engine(database_url, pool_size=settings.database_pool_size, max_overflow=0)
    # Sized to the worker's concurrency, so that no step job ever waits for one, and apart
    # from ``engine``, whose connections the steps' own work (request steps, the hub's
    # pipeline) takes while a job holds its own (D510). Connections open when first used.
    step_engine = create_engine(
        database_url,
        pool_size=settings.worker_concurrency,
        max_overflow=0,
        pre_ping=False,
        autocommit=True,
    )
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
        step_engine=step_engine,
        keyring=load_keyring(settings),
        registry=discover(),
        egress=egress,
        limits=make_limits(settings),
        jobs=jobs,
    )
