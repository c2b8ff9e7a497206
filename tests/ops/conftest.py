"""Fixtures of the operations tests: a private database, and Hubgate served in-process on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from hubgate.app import create_app
from hubgate.kit.crypto import Keyring
from hubgate.settings import Settings
from tests.conftest import free_port, serve_in_loop

# Real worker processes on a database of their own, with the events tests' API and callback
# receiver: the stopping tests drive deliveries through them.
from tests.events.conftest import cluster, cluster_api, receiver  # noqa: F401
from tests.faults.conftest import PrivateDatabase


@pytest.fixture
def private_db(tmp_path: Path) -> Iterator[PrivateDatabase]:
    database = PrivateDatabase(tmp_path / "db")
    try:
        yield database
    finally:
        database.close()


@dataclass
class InProcess:
    url: str
    app: FastAPI
    settings: Settings


def private_settings(tmp_path: Path, database: PrivateDatabase, **overrides: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database.url,
        keyring=Keyring.generate().to_json(),
        egress_allow="127.0.0.0/8",
        port=free_port(),
        **overrides,
    )


@pytest.fixture
async def private_hubgate(tmp_path: Path, private_db: PrivateDatabase) -> AsyncIterator[InProcess]:
    """Hubgate served in this process on its own database (the shared one has stray workers)."""
    settings = private_settings(tmp_path, private_db)
    app = create_app(settings, database_url=private_db.url)
    server, task = await serve_in_loop(app, settings.port)
    try:
        yield InProcess(f"http://127.0.0.1:{settings.port}", app, settings)
    finally:
        server.should_exit = True
        await task
