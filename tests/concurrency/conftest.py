"""A real `hubgate serve` for the concurrency tests, on the session's embedded PostgreSQL.

The server is a subprocess (the helpers of tests/faults), the clients are aiohttp sessions in
the test process: requests really overlap in the server and in the database. The log is read
by the tests (tracebacks, 500 lines) and by the run's secrets check.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from hubgate.settings import Settings
from tests.conftest import Api, TenantCredentials, new_tenant
from tests.faults.conftest import Served, hubgate_env, start_serve, stop_serve
from tests.logwatch import remember_log


@dataclass
class Serving:
    served: Served
    tenant: TenantCredentials
    http: aiohttp.ClientSession

    @property
    def api(self) -> Api:
        return Api(self.http, self.served.url, self.tenant.authorization)

    def log_size(self) -> int:
        return len(self.log_since(0))

    def log_since(self, offset: int) -> str:
        """What the server logged after ``offset`` characters (a test's own lines)."""
        return self.served.log.read_text(errors="replace")[offset:]


@pytest.fixture(scope="package")
async def serving(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, pg_url: str, keyring_json: str
) -> AsyncIterator[Serving]:
    folder = tmp_path_factory.mktemp("concurrency")
    tenant = await new_tenant(settings, pg_url, "concurrency")
    env = hubgate_env(
        folder,
        pg_url,
        keyring_json,
        # Hub calls with a deleted instance's token are refused credentials: the races of
        # these tests must not trip the failed-authentication limit (it has tests of its own).
        HUBGATE_AUTH_FAILURE_BURST="1000000",
    )
    log = folder / "serve.log"
    remember_log(log)
    served = await asyncio.to_thread(start_serve, env, log)
    # A pool larger than the clients: no request waits for a connection, all of them race.
    connector = aiohttp.TCPConnector(limit=100)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            yield Serving(served, tenant, http)
    finally:
        await asyncio.to_thread(stop_serve, served)
