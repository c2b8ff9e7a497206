"""Hub calls answered before FastAPI's stack (hub.fastpath) answer exactly as FastAPI's own hub
routes do: the same status, headers and body for the same request, errors included."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from hubgate.app import HubgateApp
from hubgate.httpserver import server_options
from tests.conftest import RunningHubgate, free_port
from tests.hub.conftest import HubInstance

API = "/elements/api-v2"
MESSAGES = f"{API}/hubs/messaging/messages"
# Different on every answer by design: the date, and the request id (compared apart).
VARYING = {"date", "elements-request-id"}
BAD_NUMBER = {"To": "not-a-number", "From": "+15017122661", "Body": "x"}


@asynccontextmanager
async def served_below_fast_paths(app: FastAPI) -> AsyncIterator[str]:
    """The running app on a second port, entered below its fast paths: FastAPI's routing
    answers everything there."""

    async def fastapi_only(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    port = free_port()
    config = uvicorn.Config(
        fastapi_only, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        **server_options(),
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def through_fastapi(hubgate: RunningHubgate) -> AsyncIterator[str]:
    """The same running app, entered below its hub fast path: FastAPI's routing answers."""
    async with served_below_fast_paths(hubgate.app) as url:
        yield url


Answer = tuple[int, list[tuple[str, str]], Any]


async def _chunks() -> AsyncIterator[bytes]:
    for _ in range(17):
        yield b"x" * 65536


async def ask(
    http: aiohttp.ClientSession, base: str, method: str, path: str, **kwargs: Any
) -> Answer:
    # A body over the 1 MiB cap: with its length declared, or chunked without one.
    big = kwargs.pop("big", None)
    if big is not None:
        kwargs["data"] = io.BytesIO(b"x" * (17 * 65536)) if big == "declared" else _chunks()
    async with http.request(method, base + path, **kwargs) as response:
        raw = await response.read()
        headers = [(k.lower(), v) for k, v in response.headers.items()]
    request_id = response.headers["Elements-Request-Id"]
    body: Any = raw
    if response.content_type == "application/json":
        body = await response.json()
        if isinstance(body, dict) and "requestId" in body:
            assert body.pop("requestId") == request_id  # D9: the header's id
    assert len(request_id) == 24
    return response.status, sorted(h for h in headers if h[0] not in VARYING), body


async def test_raw_path_and_fastapi_answer_alike(
    instance: HubInstance,
    hubgate: RunningHubgate,
    through_fastapi: str,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = hubgate.app
    assert isinstance(app, HubgateApp)
    assert app.hot_path is not None
    answered: list[str] = []
    answer = app.hot_path.answer

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        answered.append(scope["path"])
        await answer(scope, receive, send)

    monkeypatch.setattr(app.hot_path, "answer", counted)
    element = {"Authorization": f"Element {instance.token}"}
    sent = {"To": "+15558675310", "From": "+15017122661", "Body": "listed"}
    assert (await instance.hub.post(MESSAGES, json=sent)).status == 200
    origin = {**element, "Origin": "https://app.example.com"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", MESSAGES, {"headers": element}),
        ("GET", MESSAGES, {"headers": origin, "params": {"pageSize": "2"}}),
        ("GET", MESSAGES, {"headers": element, "params": {"where": "body = "}}),  # bad CEQL
        ("GET", MESSAGES, {"headers": element, "params": {"where": "nosuch = 'x'"}}),
        ("GET", MESSAGES, {}),  # no credentials: 401
        ("GET", MESSAGES, {"headers": {"Authorization": "Element not-a-token"}}),
        ("GET", f"{API}/hubs/messaging/nosuch", {"headers": origin}),  # unknown resource
        ("GET", f"{MESSAGES}/SM{'0' * 32}", {"headers": element}),  # the vendor's 404
        ("POST", MESSAGES, {"headers": element, "data": b"{not json"}),
        ("POST", MESSAGES, {"headers": element, "json": BAD_NUMBER}),  # the vendor's 400
        ("POST", MESSAGES, {"headers": element, "big": "declared"}),  # 413 before the app
        ("POST", MESSAGES, {"headers": element, "big": "chunked"}),  # 413 while reading
        ("DELETE", f"{MESSAGES}/SM{'1' * 32}", {"headers": element}),
    ]
    statuses = set()
    for method, path, kwargs in requests:
        before = len(answered)
        raw = await ask(http, hubgate.url, method, path, **dict(kwargs))
        assert answered[before:] == [path], "the fast path answered"
        routed = await ask(http, through_fastapi, method, path, **dict(kwargs))
        assert answered[before + 1 :] == [], "FastAPI's routes answered"
        assert raw == routed, (method, path, kwargs.get("params"))
        statuses.add(raw[0])
    assert {200, 400, 401, 404, 413} <= statuses, statuses
