"""Engine and session factories; the request or job boundary owns the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from hubgate.observability import traces


def sqlalchemy_url(url: str) -> str:
    """Accept the plain ``postgresql://`` form people write and pick the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("HUBGATE_DATABASE_URL must be a postgresql:// URL")


def libpq_url(url: str) -> str:
    """The same URL without the SQLAlchemy driver suffix, for psycopg and pg tools."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


CONNECT_TIMEOUT = 5


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    pre_ping: bool = True,
    autocommit: bool = False,
) -> AsyncEngine:
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size * 2 if max_overflow is None else max_overflow,
        # Kept by measurement (D433): under bench/events.py's intake the ping on checkout was
        # 0.5 % of serve's CPU samples; without it the first requests after a PostgreSQL
        # restart got dead connections and a 503 (tests/faults/test_database_restart.py).
        # Only a pool whose user handles a lost connection itself goes without (D510).
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        # A server that does not answer must not hold a request for ever: the request gets
        # a 503 (errors_http) after this many seconds instead.
        connect_args={"connect_timeout": CONNECT_TIMEOUT},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    traces.trace_statements(engine)
    return engine


@asynccontextmanager
async def held_connection(engine: AsyncEngine) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One of ``engine``'s connections as the driver's own, held for the block: statements
    on it skip SQLAlchemy (no compilation, no greenlet hop, no checkout per statement). A
    block that raises gives the connection up instead of returning it to the pool: it may
    be broken (a lost server) or mid-statement (a cancelled job), and nothing checks it on
    the next checkout (D510)."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
        try:
            yield driver
        except BaseException:
            await connection.invalidate()
            raise


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
