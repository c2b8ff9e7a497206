"""Tests that run job workers get a database of their own on the session's embedded server (a
worker runs every job it sees, and must neither run nor be run by other packages' tests): the
database, Hubgate and a worker on it in the test's loop, and real processes on one database.

Shared by the events, formulas, ops and browser tests (their conftests import the fixtures).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psycopg
import pytest
from pydantic import SecretStr

from hubgate.app import create_app
from hubgate.db.embedded import ensure_database
from hubgate.db.migrate import upgrade
from hubgate.jobs.worker import work
from hubgate.runtime import Runtime, open_runtime
from hubgate.settings import Settings, reveal
from sims.receiver import CallbackReceiver
from tests.conftest import Api, RunningHubgate, free_port, new_tenant, serve_in_loop

# Short enough for tests, long enough that a loaded machine does not trip over them.
FAST = {
    "events_tick_seconds": 1,
    "worker_heartbeat_seconds": 0.5,
    "worker_stalled_seconds": 3.0,
    "worker_fetch_seconds": 0.1,
    "events_retry_schedule": [0.2, 0.2, 0.2],
    "events_retry_jitter": 0.0,
    "events_sweep_grace_seconds": 1.0,
    "events_delivery_timeout": 5.0,
}


def database_url(pg_url: str, name: str) -> str:
    """A sibling database on the same server, created when missing, schema upgraded."""
    parts = urlsplit(pg_url)
    ensure_database(urlunsplit(parts._replace(path="/postgres")), name)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    upgrade(url)
    return url


@contextlib.asynccontextmanager
async def hubgate_on(settings: Settings, url: str) -> AsyncIterator[RunningHubgate]:
    """Hubgate's API in the test's loop on database ``url``, at ``settings.port``."""
    app = create_app(settings, database_url=url)
    server, task = await serve_in_loop(app, settings.port)
    try:
        yield RunningHubgate(url=f"http://127.0.0.1:{settings.port}", app=app)
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def worker_on(settings: Settings, url: str, name: str) -> AsyncIterator[Runtime]:
    """A job worker in the test's event loop on database ``url``, stopped on leaving."""
    runtime = await open_runtime(settings, url, job_pool_size=6)
    task = asyncio.create_task(
        work(runtime, name=name, install_signal_handlers=False, fetch_interval=0.1)
    )
    try:
        yield runtime
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    """A callback receiver: events' notifications and formulas' failure notices go there."""
    server = CallbackReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], seconds: float = 20.0, interval: float = 0.1
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# -- real processes on one database -----------------------------------------------------


def environment(settings: Settings, url: str, data_dir: Path, **extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    env.update(
        HUBGATE_DATABASE_URL=url,
        HUBGATE_KEYRING=reveal(settings.keyring) or "",
        HUBGATE_DATA_DIR=str(data_dir),
        HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
        HUBGATE_LOG_LEVEL="warning",
    )
    for key, value in {**FAST, **extra}.items():
        env[f"HUBGATE_{key.upper()}"] = str(value)
    return env


@dataclass
class Cluster:
    """Processes on one database; every one is killed when the test ends, whatever happens."""

    settings: Settings
    url: str
    directory: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str, **extra: Any) -> subprocess.Popen[bytes]:
        log = self.directory / f"{args[0]}-{len(self.processes)}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "hubgate", *args],
                env=environment(self.settings, self.url, self.directory, **extra),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def worker(self, **extra: Any) -> subprocess.Popen[bytes]:
        return self.start("worker", **extra)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.directory.glob("*.log"))
        )

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
async def cluster(settings: Settings, pg_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    url = database_url(pg_url, f"hubgate_p{uuid.uuid4().hex[:10]}")
    group = Cluster(settings.model_copy(update={"database_url": SecretStr(url)}), url, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
async def cluster_api(
    cluster: Cluster, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[Api, RunningHubgate]]:
    """Hubgate's API in the test process on the cluster's database (no worker in it)."""
    port = free_port()
    app_settings = cluster.settings.model_copy(update={"port": port})
    app = create_app(app_settings, database_url=cluster.url)
    server, task = await serve_in_loop(app, port)
    tenant = await new_tenant(app_settings, cluster.url, "cluster")
    running = RunningHubgate(url=f"http://127.0.0.1:{port}", app=app)
    try:
        yield Api(http, running.url, tenant.authorization), running
    finally:
        server.should_exit = True
        await task
