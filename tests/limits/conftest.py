"""A Hubgate of a test's own, with settings (limits, egress) the test chooses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from hubgate.app import create_app
from hubgate.settings import Settings
from tests.conftest import free_port, serve_in_loop


@asynccontextmanager
async def hubgate_with(settings: Settings, pg_url: str, **limits: Any) -> AsyncIterator[str]:
    port = free_port()
    app = create_app(settings.model_copy(update={**limits, "port": port}), database_url=pg_url)
    server, task = await serve_in_loop(app, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def limited(settings: Settings, pg_url: str) -> Callable[..., Any]:
    return lambda **limits: hubgate_with(settings, pg_url, **limits)


def from_address(address: str) -> aiohttp.ClientSession:
    # Another loopback address is another client as far as Hubgate can tell.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
