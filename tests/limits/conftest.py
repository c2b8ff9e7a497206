"""A Hubgate of a test's own, with settings (limits, egress) the test chooses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI

from hubgate.app import create_app
from hubgate.settings import Settings
from tests.conftest import free_port, serve_in_loop


@asynccontextmanager
async def serving(settings: Settings, pg_url: str, **limits: Any) -> AsyncIterator[FastAPI]:
    """The app, served on ``app.state.url``."""
    port = free_port()
    app = create_app(settings.model_copy(update={**limits, "port": port}), database_url=pg_url)
    server, task = await serve_in_loop(app, port)
    app.state.url = f"http://127.0.0.1:{port}"
    try:
        yield app
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def hubgate_with(settings: Settings, pg_url: str, **limits: Any) -> AsyncIterator[str]:
    async with serving(settings, pg_url, **limits) as app:
        yield app.state.url


@pytest.fixture
def limited(settings: Settings, pg_url: str) -> Callable[..., Any]:
    return lambda **limits: hubgate_with(settings, pg_url, **limits)


@pytest.fixture
def limited_app(settings: Settings, pg_url: str) -> Callable[..., Any]:
    """Like ``limited``, with the app itself: a test can give a limiter a clock of its own."""
    return lambda **limits: serving(settings, pg_url, **limits)


def from_address(address: str) -> aiohttp.ClientSession:
    # Another loopback address is another client as far as Hubgate can tell.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
