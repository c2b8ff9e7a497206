"""The token cache (D5, D8): changes, disabling and deleting take effect at once, everywhere."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import event

from hubgate.settings import Settings
from tests.conftest import Api, RunningHubgate, TenantCredentials, free_port
from tests.hub.conftest import HubInstance

ACCOUNTS = "/elements/api-v2/hubs/messaging/accounts"


async def test_a_cached_token_costs_no_database_query(
    hubgate: RunningHubgate, instance: HubInstance
) -> None:
    assert (await instance.hub.get(ACCOUNTS)).status == 200
    engine = hubgate.runtime.engine
    statements: list[str] = []

    def record(*args: object) -> None:
        # The audit row of the instance's creation may still be on its way; it is not ours.
        if "audit_logs" not in str(args[2]):
            statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        assert (await instance.hub.get(ACCOUNTS)).status == 200
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert statements == []


async def test_disable_enable_and_delete_apply_at_once(api: Api, instance: HubInstance) -> None:
    assert (await instance.hub.get(ACCOUNTS)).status == 200
    assert (await api.delete(f"instances/{instance.id}/enabled")).status == 200
    disabled = await instance.hub.get(ACCOUNTS)
    assert disabled.status == 403
    assert (await api.put(f"instances/{instance.id}/enabled")).status == 200
    assert (await instance.hub.get(ACCOUNTS)).status == 200
    # A configuration change is seen by the next call: a wrong token now reaches Twilio.
    changed = await api.patch(
        f"instances/{instance.id}", json={"configuration": {"filter.response.nulls": "false"}}
    )
    assert changed.status == 200
    message = await instance.hub.post(
        "/elements/api-v2/hubs/messaging/messages",
        json={"To": "+15558675310", "From": "+15017122661", "Body": "x"},
    )
    assert message.body["error_code"] is None  # nulls are kept now (D24)
    assert (await api.delete(f"instances/{instance.id}")).status == 200
    deleted = await instance.hub.get(ACCOUNTS)
    assert deleted.status == 401


async def test_user_and_organization_must_own_the_instance(
    api: Api,
    instance: HubInstance,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
) -> None:
    mine = instance.hub.with_auth(f"{tenant.authorization}, Element {instance.token}")
    assert (await mine.get(ACCOUNTS)).status == 200
    theirs = instance.hub.with_auth(f"{other_tenant.authorization}, Element {instance.token}")
    assert (await theirs.get(ACCOUNTS)).status == 401
    assert (await instance.hub.with_auth("Element nope").get(ACCOUNTS)).status == 401
    assert (await instance.hub.with_auth(None).get(ACCOUNTS)).status == 401


@pytest.fixture
async def second_process(
    settings: Settings, pg_url: str, keyring_json: str, tmp_path: Path
) -> AsyncIterator[str]:
    """Another ``hubgate serve`` on the same database: its own token cache and listener."""
    port = free_port()
    env = {
        **os.environ,
        "HUBGATE_DATABASE_URL": pg_url,
        "HUBGATE_KEYRING": keyring_json,
        "HUBGATE_PORT": str(port),
        "HUBGATE_DATA_DIR": str(tmp_path),
        "HUBGATE_EGRESS_ALLOW": "127.0.0.0/8",
        "HUBGATE_EMBEDDED_WORKER": "false",
        "HUBGATE_LOG_LEVEL": "warning",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubgate", "serve", env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if process.returncode is not None:
                    pytest.fail((tmp_path / "serve.log").read_text()[-2000:])
                try:
                    async with http.get(f"{url}/elements/api-v2/hubs") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        yield url
    finally:
        process.terminate()
        await process.wait()
        log.close()


@pytest.mark.slow
async def test_another_process_sees_disable_and_delete_at_once(
    api: Api, instance: HubInstance, second_process: str
) -> None:
    other = Api(api.http, second_process, f"Element {instance.token}")
    assert (await other.get(ACCOUNTS)).status == 200  # now cached in the other process
    assert (await api.delete(f"instances/{instance.id}/enabled")).status == 200
    assert (await other.get(ACCOUNTS)).status == 403
    assert (await api.put(f"instances/{instance.id}/enabled")).status == 200
    assert (await other.get(ACCOUNTS)).status == 200
    assert (await api.delete(f"instances/{instance.id}")).status == 200
    assert (await other.get(ACCOUNTS)).status == 401
