"""The database goes away and comes back: 503 with a D9 body meanwhile, no restart needed.

This in-process version is quick and runs in ``make test``; ``test_outage_under_load.py`` does
the same to a real ``hubgate serve`` under load, for ten seconds.
"""

from __future__ import annotations

import asyncio
import time

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body
from tests.e2e.test_errors import assert_d9
from tests.faults.conftest import PrivateDatabase

HUB = "/elements/api-v2/hubs/messaging"


async def test_database_outage_is_503_and_recovers_without_restart(
    private_db: PrivateDatabase, tenant_api: Api, sim: TwilioSimulator
) -> None:
    api = tenant_api
    created = (await api.post("instances", json=twilio_instance_body(sim))).body
    hub = api.with_auth(f"Element {created['token']}")
    assert (await hub.get(f"{HUB}/accounts")).status == 200

    await asyncio.to_thread(private_db.stop)
    for call in (
        api.get("instances"),
        api.get(f"instances/{created['id']}"),
        api.post("instances", json=twilio_instance_body(sim)),
        api.patch(f"instances/{created['id']}", json={"name": "renamed"}),
        api.delete(f"instances/{created['id']}"),
        api.get("audit-logs"),
        api.with_auth("User a, Organization b").get("instances"),
    ):
        response = await call
        assert response.status == 503, response.text
        assert_d9(response.body, response.headers)
        assert response.headers["Retry-After"] == "5"
        assert "SELECT" not in response.text
    # A hub call whose token is cached needs no database; one that does gets a 503.
    cached = await hub.get(f"{HUB}/accounts")
    assert cached.status in (200, 503), cached.text

    await asyncio.to_thread(private_db.start)
    started = time.monotonic()
    while (await api.get("instances")).status != 200:
        assert time.monotonic() - started < 15, "no recovery within 15 s of the restart"
        await asyncio.sleep(0.2)
    again = await api.get(f"instances/{created['id']}")
    assert again.status == 200
    assert again.body["token"] == created["token"]
    assert again.body["name"] == created["name"]  # the PATCH during the outage did nothing
    assert (await hub.get(f"{HUB}/accounts")).status == 200
