"""Fixtures for the vendor simulators: each runs on a free loopback port for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from sims.receiver import CallbackReceiver


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    hook = CallbackReceiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
