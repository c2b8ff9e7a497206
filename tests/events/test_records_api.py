"""Event records (D30), the events status figures, and ``hubgate events status``."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from hubgate.cli import app as cli
from hubgate.db.engine import unit_of_work
from hubgate.events import service
from hubgate.events.changes import CREATED, UPDATED, Change, digest
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime
from hubgate.settings import Settings, reveal
from tests.conftest import Api, RunningHubgate, TenantCredentials
from tests.events.conftest import Provisioner


async def add_events(runtime: Runtime, instance_id: int, *kinds: str) -> list[str]:
    found = [
        Change("messages", f"SM{uuid.uuid4().hex[:8]}", kind, {"n": i}, digest({"n": i}))
        for i, kind in enumerate(kinds)
    ]
    async with unit_of_work(runtime.sessions) as session:
        instance = await session.get(Instance, instance_id)
        assert instance is not None
        created = []
        for change in found:  # one notification each, in order
            created += await service.record_vendor_changes(
                session, runtime, instance, [change], service.utcnow()
            )
    return [str(i) for i in created]


async def test_records_have_the_d30_fields_newest_first(
    provision: Provisioner, runtime: Runtime, events_api: Api
) -> None:
    instance = await provision()
    ids = await add_events(runtime, instance["id"], CREATED, UPDATED)
    answer = await events_api.get(f"instances/{instance['id']}/events")
    assert answer.status == 200
    assert answer.headers["Elements-Returned-Count"] == "2"
    assert [e["id"] for e in answer.body] == ids[::-1]
    record = answer.body[0]
    assert {"id", "eventDate", "status", "objectType", "objectId", "eventType", "attempts"} <= set(
        record
    )
    assert (record["status"], record["objectType"], record["eventType"]) == (
        "NEW",
        "messages",
        UPDATED,
    )
    assert record["attempts"] == []
    assert "raw" not in record
    single = (await events_api.get(f"instances/{instance['id']}/events/{ids[0]}")).body
    assert single["raw"] == {"messages": [{"n": 0}]}
    assert single["eventType"] == CREATED


async def test_paging_and_status_filter(
    provision: Provisioner, runtime: Runtime, events_api: Api
) -> None:
    instance = await provision()
    ids = await add_events(runtime, instance["id"], *[CREATED] * 5)
    path = f"instances/{instance['id']}/events"
    pages = [
        [e["id"] for e in (await events_api.get(path, params={"page": p, "pageSize": 2})).body]
        for p in (1, 2, 3)
    ]
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert len((await events_api.get(path, params={"status": "NEW"})).body) == 5
    assert (await events_api.get(path, params={"status": "FAILED"})).body == []
    for bad in ({"pageSize": 0}, {"page": -1}, {"status": "LOST"}):
        answer = await events_api.get(path, params=bad)
        assert answer.status == 400, bad
        assert set(answer.body) == {"requestId", "message"}
    # Above the cap is the cap (issue 9, D202).
    capped = await events_api.get(path, params={"pageSize": 201})
    assert capped.status == 200, capped.text
    assert len(capped.body) == 5


async def test_tenant_wide_and_token_scoped_routes(
    provision: Provisioner, runtime: Runtime, events_api: Api
) -> None:
    first = await provision()
    second = await provision()
    (one,) = await add_events(runtime, first["id"], CREATED)
    (two,) = await add_events(runtime, second["id"], CREATED)
    everything = (await events_api.get("instances/events")).body
    assert {e["id"] for e in everything} == {one, two}
    token = events_api.with_auth(f"Element {first['token']}")
    assert [e["id"] for e in (await token.get("instances/events")).body] == [one]
    assert (await token.get(f"instances/events/{one}")).body["id"] == one
    assert (await token.get(f"instances/events/{two}")).status == 404
    assert (await events_api.get(f"instances/events/{two}")).status == 200
    assert (await events_api.get(f"instances/{first['id']}/events/{two}")).status == 404
    status = (await token.get("instances/events/status")).body
    assert status["instanceId"] == first["id"]
    assert status["pendingDeliveries"] == 1


async def test_another_tenants_events_are_not_found(
    provision: Provisioner,
    runtime: Runtime,
    events_hubgate: RunningHubgate,
    http: aiohttp.ClientSession,
    other_events_tenant: TenantCredentials,
) -> None:
    instance = await provision()
    (event_id,) = await add_events(runtime, instance["id"], CREATED)
    other = Api(http, events_hubgate.url, other_events_tenant.authorization)
    for method, path in (
        ("GET", f"instances/{instance['id']}/events"),
        ("GET", f"instances/{instance['id']}/events/{event_id}"),
        ("GET", f"instances/{instance['id']}/events/status"),
        ("GET", f"instances/events/{event_id}"),
        ("POST", f"instances/events/{event_id}/redeliver"),
        ("POST", f"instances/{instance['id']}/events/{event_id}/redeliver"),
    ):
        answer = await other.call(method, path)
        assert answer.status == 404, (method, path, answer.text)
    assert (await other.get("instances/events")).body == []


@pytest.mark.parametrize("event_id", ["not-a-uuid", str(uuid.uuid4()), "0" * 500])
async def test_unknown_event_ids_are_404(
    provision: Provisioner, events_api: Api, event_id: str
) -> None:
    instance = await provision()
    for path in (f"instances/{instance['id']}/events/{event_id}", f"instances/events/{event_id}"):
        answer = await events_api.get(path)
        assert answer.status == 404
        assert answer.body["message"].startswith("No event found")


async def test_events_need_credentials(events_api: Api) -> None:
    anonymous = events_api.with_auth(None)
    assert (await anonymous.get("instances/events")).status == 401
    assert (await anonymous.get("instances/1/events")).status == 401


async def test_status_figures_in_the_api_and_the_cli(
    provision: Provisioner,
    runtime: Runtime,
    events_api: Api,
    events_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance = await provision()
    quiet = await provision(**{"event.notification.enabled": False})
    await add_events(runtime, instance["id"], CREATED, CREATED)
    # The poller exists since the create enabled events; as after a poll that kept up, its
    # next poll is an interval away (no worker runs here).
    async with unit_of_work(runtime.sessions) as session:
        await service.make_due(session, instance["id"], service.utcnow() + timedelta(minutes=1))
    status = (await events_api.get(f"instances/{instance['id']}/events/status")).body
    assert status["eventsEnabled"] is True
    assert status["vendorType"] == "polling"
    assert status["lastPollDate"] is None
    assert status["nextPollDate"] is not None
    assert (status["pendingDeliveries"], status["failedDeliveries"]) == (2, 0)
    assert status["lagSeconds"] == 0
    off = (await events_api.get(f"instances/{quiet['id']}/events/status")).body
    assert off["eventsEnabled"] is False

    monkeypatch.setenv("HUBGATE_DATABASE_URL", reveal(events_settings.database_url) or "")
    monkeypatch.setenv("HUBGATE_KEYRING", reveal(events_settings.keyring) or "")
    monkeypatch.setenv("HUBGATE_DATA_DIR", str(events_settings.data_dir))
    # In a thread: the command runs its own event loop, as it does from a shell.
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["events", "status", "--json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    assert [r["instanceId"] for r in rows] == [instance["id"]]
    assert rows[0]["pendingDeliveries"] == 2
    monkeypatch.setenv("COLUMNS", "200")
    table = await asyncio.to_thread(CliRunner().invoke, cli, ["events", "status"])
    assert table.exit_code == 0, table.output
    assert "Pending" in table.output
    assert str(instance["id"]) in table.output
