"""/healthz and /readyz (D65): no credentials, no detail, and readiness that tells the truth
about the database, the schema and the workers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import psycopg

from hubgate.jobs.worker import work
from tests.faults.conftest import PrivateDatabase
from tests.ops.conftest import InProcess


async def probe(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


def checks(database: bool, migrations: bool, worker: bool) -> dict[str, bool]:
    return {"database": database, "migrations": migrations, "worker": worker}


async def until_probe(
    http: aiohttp.ClientSession, url: str, status: int, seconds: float = 60
) -> Any:
    for _ in range(int(seconds * 10)):
        answered, body = await probe(http, url)
        if answered == status:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered {status}; last {answered} {body}")


async def test_readyz_follows_workers_schema_and_database(
    private_hubgate: InProcess, private_db: PrivateDatabase
) -> None:
    base = private_hubgate.url
    runtime = private_hubgate.app.state.runtime
    async with aiohttp.ClientSession() as http:
        assert await probe(http, f"{base}/healthz") == (200, {"status": "alive"})
        # No worker has run on this database yet.
        assert await probe(http, f"{base}/readyz") == (
            503,
            {"status": "not ready", "checks": checks(True, True, False)},
        )

        worker = asyncio.create_task(
            work(runtime, name="ready-test", install_signal_handlers=False, fetch_interval=0.1)
        )
        try:
            body = await until_probe(http, f"{base}/readyz", 200)
            assert body == {"status": "ready", "checks": checks(True, True, True)}

            # A schema behind the code's heads (a node upgraded before `db upgrade` ran).
            with psycopg.connect(private_db.url, autocommit=True) as conn:
                newest = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
                assert newest is not None
                conn.execute("DELETE FROM alembic_version WHERE version_num = %s", newest)
                assert await probe(http, f"{base}/readyz") == (
                    503,
                    {"status": "not ready", "checks": checks(True, False, True)},
                )
                conn.execute("INSERT INTO alembic_version VALUES (%s)", newest)
            assert (await probe(http, f"{base}/readyz"))[0] == 200
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

        private_db.stop()
        try:
            assert await probe(http, f"{base}/readyz") == (
                503,
                {"status": "not ready", "checks": checks(False, False, False)},
            )
            # Alive all the same: restarting the server would not bring the database back.
            assert await probe(http, f"{base}/healthz") == (200, {"status": "alive"})
        finally:
            private_db.start()
        # Back, and honest: the worker that stopped cleanly is gone from the workers table.
        body = await until_probe(http, f"{base}/readyz", 503)
        assert body["checks"] == checks(True, True, False)


async def test_probes_need_no_credentials_and_say_nothing_more(
    private_hubgate: InProcess,
) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/readyz"):
            async with http.get(
                f"{private_hubgate.url}{path}", headers={"Authorization": "User x, Organization y"}
            ) as response:
                text = await response.text()
                assert response.status in (200, 503)
                assert "Elements-Request-Id" in response.headers
            for leak in ("postgres", "hubgate_", "/tmp", "alembic", "version", "127.0.0.1"):
                assert leak not in text.lower(), (path, text)
