"""The token cache (D5, D8): changes, disabling and deleting take effect at once, everywhere."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from sqlalchemy import event

from hubgate.settings import Settings
from tests.conftest import Api, RunningHubgate, TenantCredentials, free_port
from tests.hub.conftest import HubInstance, TwilioAccount, create_instance

ACCOUNTS = "/elements/api-v2/hubs/messaging/accounts"
MESSAGES = "/elements/api-v2/hubs/messaging/messages"
CHANGE_HEARD_WITHIN = 60.0
TOKEN_CACHE_TTL = 3600  # the second process's; the answer cache's is each test's own


async def test_a_cached_token_costs_no_database_query(
    hubgate: RunningHubgate, instance: HubInstance
) -> None:
    # Twice: a change notification of an earlier test arriving during the first lookup
    # rightly keeps that lookup out of the cache (its epoch moved).
    for _ in range(2):
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


@pytest.fixture(scope="module")
async def second_process(
    settings: Settings, pg_url: str, keyring_json: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """Another ``hubgate serve`` on the same database: its own token cache and listener."""
    tmp_path = tmp_path_factory.mktemp("second")
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
        "HUBGATE_HUB_TOKEN_CACHE_TTL": str(TOKEN_CACHE_TTL),
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


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Until ``check`` holds. Another process hears a change when PostgreSQL delivers the
    notification, after the commit, which can come after our next request. The bound is
    generous for a busy machine, and the caches' TTLs (TOKEN_CACHE_TTL, cacheTimeToLive) are
    far longer: within it, only the change notification can have cleared them."""
    deadline = time.monotonic() + CHANGE_HEARD_WITHIN
    while not await check():
        assert time.monotonic() < deadline, "another process did not hear of the change"
        await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_another_process_sees_disable_and_delete_at_once(
    api: Api, instance: HubInstance, second_process: str
) -> None:
    other = Api(api.http, second_process, f"Element {instance.token}")

    def status_is(status: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (await other.get(ACCOUNTS)).status == status

        return check

    assert await status_is(200)()  # now cached in the other process
    assert (await api.delete(f"instances/{instance.id}/enabled")).status == 200
    await eventually(status_is(403))
    assert (await api.put(f"instances/{instance.id}/enabled")).status == 200
    await eventually(status_is(200))
    assert (await api.delete(f"instances/{instance.id}")).status == 200
    await eventually(status_is(401))


@pytest.mark.slow
async def test_a_write_clears_cached_answers_in_another_process(
    api: Api, twilio: TwilioAccount, second_process: str
) -> None:
    cached = await create_instance(
        api, twilio, cachingEnabled=True, cacheTimeToLive=3600, maxCacheSize=10
    )
    other = Api(api.http, second_process, f"Element {cached.token}")
    assert (await other.get(MESSAGES)).body == []  # now cached in the other process
    sent = await cached.hub.post(
        MESSAGES, json={"To": "+15558675310", "From": "+15017122661", "Body": "new"}
    )
    assert sent.status == 200

    async def fresh() -> bool:
        return [m["sid"] for m in (await other.get(MESSAGES)).body] == [sent.body["sid"]]

    await eventually(fresh)
