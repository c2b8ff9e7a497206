"""JSON logs (D64): one object per line, one access line per request carrying its request
id, and the organization and instance of a hub call; the run's secrets scan reads them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sims.twilio_sim import TwilioSimulator
from tests.conftest import API, twilio_instance_body
from tests.logwatch import remember_secret
from tests.ops.processes import bootstrap_authorization, fresh_env, hubgate, start, wait_serving

pytestmark = pytest.mark.slow

# What the text format would show, and a JSON line never does.
TEXT_LOG_MARKS = ("INFO:", "WARNING:", "ERROR:", " INFO ", " WARNING ", "Traceback")


@pytest.fixture
async def vendor() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator()
    await simulator.start()
    remember_secret(simulator.auth_token)
    yield simulator
    await simulator.stop()


def json_lines(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            assert not any(mark in line for mark in TEXT_LOG_MARKS), line
            continue
        assert isinstance(parsed, dict), line
        found.append(parsed)
    return found


async def test_one_json_line_per_request(tmp_path: Path, vendor: TwilioSimulator) -> None:
    env = fresh_env(tmp_path, HUBGATE_LOG_FORMAT="json")
    base = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    serve = start(hubgate("serve"), env, tmp_path / "serve.log")
    answered: dict[str, str] = {}  # request id -> what it was
    async with aiohttp.ClientSession() as http:
        try:
            await asyncio.to_thread(wait_serving, serve, f"{base}/healthz")
            user = {"Authorization": bootstrap_authorization(env)}
            async with http.post(
                f"{base}{API}/instances", json=twilio_instance_body(vendor), headers=user
            ) as created:
                assert created.status == 200
                instance: dict[str, Any] = await created.json()
                answered[created.headers["Elements-Request-Id"]] = "create"
            remember_secret(instance["token"])
            element = {"Authorization": f"{user['Authorization']}, Element {instance['token']}"}
            for what, path, headers in (
                ("hub", f"{API}/hubs/messaging/messages", element),
                ("catalog", f"{API}/hubs", user),
                ("refused", f"{API}/hubs/messaging/messages", {"Authorization": "Element nope"}),
            ):
                async with http.get(f"{base}{path}", headers=headers) as response:
                    await response.read()
                    answered[response.headers["Elements-Request-Id"]] = what
        finally:
            serve.stop()

    lines = json_lines(serve.log)
    assert lines, serve.output()
    for line in lines:
        assert {"time", "level", "message"} <= line.keys(), line
    access = [line for line in lines if line.get("logger") == "uvicorn.access"]
    by_request: dict[str, list[dict[str, Any]]] = {}
    for line in access:
        by_request.setdefault(line.get("requestId", ""), []).append(line)
    for request_id, what in answered.items():
        assert len(by_request.get(request_id, [])) == 1, (what, by_request.get(request_id))
    (hub_line,) = by_request[next(r for r, w in answered.items() if w == "hub")]
    assert hub_line["instanceId"] == instance["id"]
    assert isinstance(hub_line["organizationId"], int)
    assert "/hubs/messaging/messages" in hub_line["message"]
    (refused,) = by_request[next(r for r, w in answered.items() if w == "refused")]
    assert "instanceId" not in refused
