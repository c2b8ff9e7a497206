"""PostgreSQL restarted under a running app: every pooled connection is dead, and the very next
requests are answered all the same (D433: the engine pings a connection as it is checked out,
and a dead one is replaced before the request uses it)."""

from __future__ import annotations

import asyncio

import aiohttp

from hubgate.app import create_app
from hubgate.bootstrap import create_tenant
from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, free_port, serve_in_loop, twilio_instance_body
from tests.faults.conftest import PrivateDatabase


async def test_the_requests_after_a_restart_find_live_connections(
    private_db: PrivateDatabase,
    settings: Settings,
    sim: TwilioSimulator,
    http: aiohttp.ClientSession,
) -> None:
    org = await create_tenant(settings, private_db.url, name="restart", email="r@example.test")
    port = free_port()
    app = create_app(settings.model_copy(update={"port": port}), database_url=private_db.url)
    server, task = await serve_in_loop(app, port)
    try:
        api = Api(
            http,
            f"http://127.0.0.1:{port}",
            f"User {org.user_secret}, Organization {org.organization_secret}",
        )
        created = (await api.post("instances", json=twilio_instance_body(sim))).body
        # Several requests at once, so that the pool holds several connections.
        warm = await asyncio.gather(*(api.get(f"instances/{created['id']}") for _ in range(8)))
        assert [r.status for r in warm] == [200] * 8

        # A fast stop cuts every open session, as a crash or a failover would.
        await asyncio.to_thread(private_db.stop)
        await asyncio.to_thread(private_db.start)

        for _ in range(8):
            again = await api.get(f"instances/{created['id']}")
            assert again.status == 200, again.text
        at_once = await asyncio.gather(*(api.get("instances") for _ in range(8)))
        assert [r.status for r in at_once] == [200] * 8
    finally:
        server.should_exit = True
        await task
