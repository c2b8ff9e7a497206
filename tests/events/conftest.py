"""Fixtures for the events tests: their own database, Hubgate, a worker, a callback receiver.

The events tests get a database of their own on the session's embedded server: a worker polls
every enabled instance it can see, and must not see (or be seen by) other packages' tests.
Every test starts from no instances and no jobs.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import psycopg
import pytest
from pydantic import SecretStr

from hubgate.runtime import Runtime
from hubgate.settings import Settings
from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.clusters import (
    FAST,
    Cluster,
    cluster,
    cluster_api,
    database_url,
    eventually,
    hubgate_on,
    receiver,
    worker_on,
)
from tests.conftest import (
    Api,
    RunningHubgate,
    TenantCredentials,
    free_port,
    new_tenant,
    twilio_instance_body,
)

# The process fixtures and helpers live in tests/clusters.py; the events tests (and others)
# import them from here.
__all__ = ["FAST", "Cluster", "cluster", "cluster_api", "eventually", "receiver"]


@pytest.fixture(scope="package")
def events_url(pg_url: str) -> str:
    return database_url(pg_url, "hubgate_events")


@pytest.fixture(scope="package")
def events_settings(settings: Settings, events_url: str) -> Settings:
    return settings.model_copy(
        update={"database_url": SecretStr(events_url), "port": free_port(), **FAST}
    )


@pytest.fixture(scope="package")
async def events_hubgate(
    events_settings: Settings, events_url: str
) -> AsyncIterator[RunningHubgate]:
    async with hubgate_on(events_settings, events_url) as running:
        yield running


def clean(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM instances")
        conn.execute("DELETE FROM procrastinate_jobs")
        conn.execute("DELETE FROM procrastinate_workers")


@pytest.fixture(autouse=True)
def clean_slate(events_url: str) -> Any:
    clean(events_url)
    yield
    clean(events_url)


@pytest.fixture
async def runtime(events_hubgate: RunningHubgate) -> Runtime:
    """The API process's runtime: sessions, keyring, job queue (no worker runs in it)."""
    return events_hubgate.runtime


@pytest.fixture
async def worker(events_settings: Settings, events_url: str) -> AsyncIterator[Runtime]:
    """A job worker in the test's event loop, stopped after the test."""
    async with worker_on(events_settings, events_url, "test-worker") as runtime:
        yield runtime


@pytest.fixture
async def events_tenant(events_settings: Settings, events_url: str) -> TenantCredentials:
    return await new_tenant(events_settings, events_url, "events-a")


@pytest.fixture
async def other_events_tenant(events_settings: Settings, events_url: str) -> TenantCredentials:
    return await new_tenant(events_settings, events_url, "events-b")


@pytest.fixture
def events_api(
    events_hubgate: RunningHubgate, http: aiohttp.ClientSession, events_tenant: TenantCredentials
) -> Api:
    return Api(http, events_hubgate.url, events_tenant.authorization)


SIGNATURE_KEY = "a signature key, not base64"


@dataclass
class Provisioner:
    api: Api
    sim: TwilioSimulator
    receiver: CallbackReceiver

    async def __call__(self, **configuration: Any) -> dict[str, Any]:
        """An instance as ``provision_on`` makes it, its notifications signed with SIGNATURE_KEY."""
        signed = {"event.notification.signature.key": SIGNATURE_KEY, **configuration}
        return await provision_on(self.api, self.sim, self.receiver, **signed)


@pytest.fixture
def provision(events_api: Api, sim: TwilioSimulator, receiver: CallbackReceiver) -> Provisioner:
    return Provisioner(events_api, sim, receiver)


def encoded_id(instance_id: int) -> str:
    return base64.b64encode(str(instance_id).encode()).decode()


async def provision_on(
    api: Api, sim: TwilioSimulator, receiver: CallbackReceiver, **configuration: Any
) -> dict[str, Any]:
    """A Twilio instance on its own simulator account, events on, sending to ``receiver``,
    polled every minute; ``configuration`` adds to that or overrides it."""
    sid, token = sim.add_account()
    body = twilio_instance_body(
        sim,
        username=sid,
        password=token,
        **{
            "event.notification.enabled": True,
            "event.notification.callback.url": receiver.url,
            "event.poller.refresh_interval": 1,
            **configuration,
        },
    )
    answer = await api.post("instances", json=body)
    assert answer.status == 200, answer.text
    instance: dict[str, Any] = answer.body
    return instance
