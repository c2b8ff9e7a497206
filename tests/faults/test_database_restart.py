"""PostgreSQL restarted under a running app: every pooled connection is dead, and the very next
requests are answered all the same (D433: the engine pings a connection as it is checked out,
and a dead one is replaced before the request uses it)."""

from __future__ import annotations

import asyncio

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body
from tests.faults.conftest import PrivateDatabase


async def test_the_requests_after_a_restart_find_live_connections(
    private_db: PrivateDatabase, tenant_api: Api, sim: TwilioSimulator
) -> None:
    api = tenant_api
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
