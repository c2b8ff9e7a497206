"""Fixtures for the formula tests: their own database, Hubgate, a worker in the test's loop.

A worker runs every job it sees, the event tick included: the formula tests get a database
of their own so that they neither run nor are run by other packages' jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest
from pydantic import SecretStr

from hubgate.runtime import Runtime
from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.clusters import (
    FAST,
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

# The shared process fixtures (tests/clusters.py), and eventually for the tests here.
__all__ = ["cluster", "cluster_api", "eventually", "receiver"]


# A script, a platform call and a script: a `request` step between two that commit alone.
SCRIPT_REQUEST_SCRIPT = {
    "name": "script, platform call, script",
    "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["before"]}],
    "steps": [
        {
            "name": "before",
            "type": "script",
            "properties": {"body": "done({n: trigger.args.n});"},
            "onSuccess": ["platform"],
        },
        {
            "name": "platform",
            "type": "request",
            "properties": {"method": "GET", "api": "/formulas"},
            "onSuccess": ["after"],
        },
        {
            "name": "after",
            "type": "script",
            "properties": {"body": "done({seen: steps.before.n + 1});"},
        },
    ],
}


@pytest.fixture(scope="package")
def formulas_url(pg_url: str) -> str:
    return database_url(pg_url, "hubgate_formulas")


@pytest.fixture(scope="package")
def formulas_settings(settings: Settings, formulas_url: str) -> Settings:
    return settings.model_copy(
        update={
            "database_url": SecretStr(formulas_url),
            "port": free_port(),
            **FAST,
            # A runaway script is stopped at this limit (D41's 30 s is the default).
            "formula_script_seconds": 2.0,
        }
    )


@pytest.fixture(scope="package")
async def formulas_hubgate(
    formulas_settings: Settings, formulas_url: str
) -> AsyncIterator[RunningHubgate]:
    async with hubgate_on(formulas_settings, formulas_url) as running:
        yield running


def clean(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM formulas")
        conn.execute("DELETE FROM instances")
        conn.execute("DELETE FROM procrastinate_jobs")
        conn.execute("DELETE FROM procrastinate_workers")


@pytest.fixture(autouse=True)
def clean_slate(formulas_url: str) -> Any:
    clean(formulas_url)
    yield
    clean(formulas_url)


@pytest.fixture
async def worker(formulas_settings: Settings, formulas_url: str) -> AsyncIterator[Runtime]:
    """A job worker in the test's event loop, stopped after the test."""
    async with worker_on(formulas_settings, formulas_url, "formula-worker") as runtime:
        yield runtime


@pytest.fixture
async def formulas_tenant(formulas_settings: Settings, formulas_url: str) -> TenantCredentials:
    return await new_tenant(formulas_settings, formulas_url, "formulas-a")


@pytest.fixture
def fapi(
    formulas_hubgate: RunningHubgate,
    http: aiohttp.ClientSession,
    formulas_tenant: TenantCredentials,
) -> Api:
    return Api(http, formulas_hubgate.url, formulas_tenant.authorization)


@pytest.fixture
async def twilio(fapi: Api, sim: TwilioSimulator) -> dict[str, Any]:
    """A Twilio instance on its own simulator account."""
    account_sid, auth_token = sim.add_account()
    body = twilio_instance_body(sim, username=account_sid, password=auth_token)
    response = await fapi.post("instances", json=body)
    assert response.status == 200, response.text
    instance: dict[str, Any] = response.body
    return instance


async def finished(api: Api, execution_id: int, seconds: float = 30.0) -> dict[str, Any]:
    """The execution once it has ended (any status but queued and pending)."""
    found: dict[str, Any] = {}

    async def done() -> bool:
        response = await api.get(f"formulas/instances/executions/{execution_id}")
        assert response.status == 200, response.text
        found.update(response.body)
        return response.body["status"] not in ("queued", "pending")

    await eventually(done, seconds)
    return found


async def values(api: Api, execution_id: int) -> dict[str, dict[str, str]]:
    """Step values by step name, then key."""
    response = await api.get(
        f"formulas/instances/executions/{execution_id}/steps", params={"includeValues": "true"}
    )
    assert response.status == 200, response.text
    return {
        step["stepName"]: {v["key"]: v["value"] for v in step["stepExecutionValues"]}
        for step in response.body
    }


def send_step(
    name: str, body: str, on_success: list[str] | None = None, **properties: Any
) -> dict[str, Any]:
    """A step sending a message through the configured Twilio instance's messaging hub."""
    step: dict[str, Any] = {
        "name": name,
        "type": "elementRequest",
        "properties": {
            "elementInstanceId": "${config.twilio}",
            "method": "POST",
            "api": "/hubs/messaging/messages",
            "body": body,
            **properties,
        },
    }
    if on_success is not None:
        step["onSuccess"] = on_success
    return step


async def make_formula(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("formulas", json=body)
    assert response.status == 200, response.text
    formula: dict[str, Any] = response.body
    return formula


async def make_instance(
    api: Api, formula_id: int, configuration: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"name": "fi", "configuration": configuration or {}, **extra}
    response = await api.post(f"formulas/{formula_id}/instances", json=body)
    assert response.status == 200, response.text
    instance: dict[str, Any] = response.body
    return instance


async def run_manually(api: Api, instance_id: int, args: Any) -> int:
    response = await api.post(f"formulas/instances/{instance_id}/executions", json=args)
    assert response.status == 200, response.text
    execution_id: int = response.body[0]["id"]
    return execution_id
