"""Shared fixtures: one embedded PostgreSQL per test session, real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
import uvicorn
from fastapi import FastAPI
from multidict import CIMultiDict
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.app import create_app
from hubgate.bootstrap import create_tenant
from hubgate.db.embedded import start_embedded
from hubgate.db.migrate import upgrade
from hubgate.httpserver import server_options
from hubgate.kit.crypto import Keyring
from hubgate.runtime import Runtime
from hubgate.settings import Settings
from sims.sendgrid import SendGridSimulator
from sims.slack import SlackSimulator
from sims.twilio_sim import TwilioSimulator
from tests import results

# Every log line and secret of the run, for the secrets check that runs last (tests/secrets).
pytest_plugins = ["tests.logwatch"]

# HUBGATE_SHARED_DIR points a work tree that does not sit beside shared/ at it.
SHARED = Path(
    os.environ.get("HUBGATE_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared"
)
API = "/elements/api-v2"


def pytest_sessionstart(session: pytest.Session) -> None:
    results.start_run(session.config.option.markexpr, SHARED)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    results.finish_run(int(exitstatus))


def shared_file(relative: str) -> Path:
    """A file of ../shared, or a skip that says why the test cannot run without it."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs ../shared beside the repository")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postmasters_under(folder: Path) -> list[psutil.Process]:
    """PostgreSQL servers whose data directory (``-D``) lies inside ``folder``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        command = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and "-D" in command:
            data = command[command.index("-D") + 1 :][:1]
            if data and Path(data[0]).resolve().is_relative_to(folder.resolve()):
                found.append(process)
    return found


@pytest.fixture(autouse=True)
def no_postgres_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that starts a PostgreSQL in its tmp_path (a `hubgate serve`, a private database)
    must have it stopped by the time the test and its fixtures are done (issue 9, item 5)."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    folder: Path = request.getfixturevalue("tmp_path")
    yield
    left = postmasters_under(folder)
    # pg_ctl returns once the server has removed its pid file; its exit follows shortly.
    _, still = psutil.wait_procs(left, timeout=30)
    for process in still:
        process.kill()
    assert not still, f"PostgreSQL left running after the test: {[p.cmdline() for p in still]}"


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = start_embedded(tmp_path_factory.mktemp("pgdata"), database="hubgate_test")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def keyring_json() -> str:
    return Keyring.generate().to_json()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, pg_url: str, keyring_json: str) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=pg_url,
        keyring=keyring_json,
        egress_allow="127.0.0.0/8",
        port=free_port(),
        egress_read_timeout=5.0,
        # Every test shares 127.0.0.1 and some instances: the limits have tests of their own.
        auth_failure_burst=1_000_000,
        hub_rate_burst=1_000_000,
        hub_rate_per_second=1_000_000.0,
    )


@dataclass
class RunningHubgate:
    url: str
    app: FastAPI

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


async def serve_in_loop(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    # The server keeps idle connections longer than aiohttp's client does (15 s), so the
    # client always closes first: a connection the server closed just as the client reused
    # it was a "connection reset" now and then, after a test paused for a few seconds.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="on",
        timeout_keep_alive=75,
        **server_options(),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task


@pytest.fixture(scope="session")
async def hubgate(settings: Settings, pg_url: str) -> AsyncIterator[RunningHubgate]:
    app = create_app(settings, database_url=pg_url)
    server, task = await serve_in_loop(app, settings.port)
    yield RunningHubgate(url=f"http://127.0.0.1:{settings.port}", app=app)
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
async def sim() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator()
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def db_session(hubgate: RunningHubgate) -> AsyncIterator[AsyncSession]:
    """A session whose work is rolled back after the test, whatever it did."""
    async with hubgate.runtime.sessions() as session:
        yield session
        await session.rollback()


@dataclass
class Response:
    status: int
    headers: CIMultiDict[str]
    body: Any
    text: str


class Api:
    """A small HTTP client for Hubgate's API with a default Authorization header."""

    def __init__(self, http: aiohttp.ClientSession, base: str, authorization: str | None) -> None:
        self.http = http
        self.base = base
        self.authorization = authorization

    def with_auth(self, authorization: str | None) -> Api:
        return Api(self.http, self.base, authorization)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
    ) -> Response:
        sent = dict(headers or {})
        if self.authorization is not None and "Authorization" not in sent:
            sent["Authorization"] = self.authorization
        url = self.base + (path if path.startswith("/") else f"{API}/{path}")
        async with self.http.request(
            method, url, json=json, data=data, headers=sent, params=params
        ) as response:
            text = await response.text()
            try:
                body = await response.json(content_type=None) if text else None
            except ValueError:
                body = None
            return Response(response.status, CIMultiDict(response.headers), body, text)

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Response:
        return await self.call("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> Response:
        return await self.call("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Response:
        return await self.call("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.call("DELETE", path, **kw)


@pytest.fixture
async def sendgrid() -> AsyncIterator[SendGridSimulator]:
    simulator = SendGridSimulator()
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def slack() -> AsyncIterator[SlackSimulator]:
    simulator = SlackSimulator()
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass
class TenantCredentials:
    organization_id: int
    user_id: int
    organization_secret: str
    user_secret: str
    email: str

    @property
    def authorization(self) -> str:
        return f"User {self.user_secret}, Organization {self.organization_secret}"


async def new_tenant(settings: Settings, pg_url: str, name: str) -> TenantCredentials:
    created = await create_tenant(settings, pg_url, name=name, email=f"{name}@example.test")
    from tests.logwatch import remember_secret  # a plugin: imported once pytest loaded it

    remember_secret(created.user_secret, created.organization_secret)
    return TenantCredentials(
        organization_id=created.organization_id,
        user_id=created.user_id,
        organization_secret=created.organization_secret,
        user_secret=created.user_secret,
        email=created.user_email,
    )


@pytest.fixture
async def tenant(settings: Settings, pg_url: str) -> TenantCredentials:
    """A fresh organization per test: tests never see each other's objects."""
    return await new_tenant(settings, pg_url, "tenant-a")


@pytest.fixture
async def other_tenant(settings: Settings, pg_url: str) -> TenantCredentials:
    return await new_tenant(settings, pg_url, "tenant-b")


@pytest.fixture
def api(hubgate: RunningHubgate, http: aiohttp.ClientSession, tenant: TenantCredentials) -> Api:
    return Api(http, hubgate.url, tenant.authorization)


def twilio_instance_body(sim: TwilioSimulator, **configuration: Any) -> dict[str, Any]:
    """The seed's create request, pointed at the simulator."""
    return {
        "element": {"key": "twiliov2"},
        "configuration": {
            "username": sim.account_sid,
            "password": sim.auth_token,
            "base.url": sim.base_url,
            **configuration,
        },
        "tags": ["seed"],
        "name": "my-twilio",
    }


PRISM = Path(__file__).resolve().parents[1] / "tools" / "node_modules" / ".bin" / "prism"


@dataclass
class RunningPrism:
    url: str

    @property
    def base_url(self) -> str:
        return f"{self.url}/2010-04-01/Accounts"


@asynccontextmanager
async def running_prism(spec: Path, folder: Path) -> AsyncIterator[str]:
    """Prism mocking one of a vendor's own OpenAPI files; yields its URL."""
    if not PRISM.exists():
        pytest.fail(f"{PRISM} is missing: `make test` installs it (cd tools && npm ci)")
    port = free_port()
    log = folder / f"prism-{spec.stem}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(PRISM),
            "mock",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            str(spec),
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        for _ in range(1200):
            if "Prism is listening" in log.read_text(errors="replace"):
                break
            if process.returncode is not None:
                pytest.fail(f"Prism exited: {log.read_text(errors='replace')[-2000:]}")
            await asyncio.sleep(0.05)
        else:
            pytest.fail("Prism did not start within 60 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


@pytest.fixture(scope="session")
async def prism(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningPrism]:
    """Prism serving Twilio's own OpenAPI file: a Twilio stand-in we did not write."""
    spec = shared_file("twilio/twilio_api_v2010.json")
    async with running_prism(spec, tmp_path_factory.mktemp("prism")) as url:
        yield RunningPrism(url=url)
