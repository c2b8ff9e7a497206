"""Issue 9, item 11: what the HTTP server refuses before the app runs still answers in the D9
shape with a request id (414, 431, 400), and the 413 body is rendered like every other body.

Raw sockets, since a client library would refuse to send most of these requests: against the
test server (httptools, as ``hubgate serve`` runs), the same app under uvicorn's h11 protocol,
and a real ``hubgate serve --workers 2`` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import uvicorn

from hubgate.httpserver import server_options
from hubgate.middleware import MAX_HEADER_BYTES, MAX_TARGET_BYTES
from tests.conftest import API, RunningHubgate, TenantCredentials, free_port

HUB_LIST = f"{API}/hubs/messaging/messages"


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def d9(self) -> dict[str, str]:
        assert self.headers["content-type"] == "application/json", self.headers
        body = json.loads(self.body)
        assert set(body) == {"requestId", "message"}, body
        assert len(body["requestId"]) == 24
        assert self.headers["elements-request-id"] == body["requestId"]
        return body


async def send_raw(port: int, request: bytes) -> RawAnswer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        with contextlib.suppress(ConnectionError):
            # The server may answer and stop reading while the rest is still on its way.
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
        return RawAnswer(int(status_line.split()[1]), headers, body)
    finally:
        writer.close()


def get(target: bytes, *headers: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(headers) + b"\r\n"


# Each: the request, the status, and a fragment of the message.
CASES: dict[str, tuple[bytes, int, str]] = {
    "where over the limit": (
        get(HUB_LIST.encode() + b"?where=" + b"to%3D%27%2B1%27%20OR%20" * 1000),
        414,
        f"may hold {MAX_TARGET_BYTES} bytes",
    ),
    "a huge nextPage": (
        get(HUB_LIST.encode() + b"?nextPage=" + b"A" * 2_000_000),
        414,
        "Request URL too long",
    ),
    "headers over the limit": (
        get(HUB_LIST.encode(), b"X-Big: " + b"b" * (MAX_HEADER_BYTES + 1) + b"\r\n"),
        431,
        f"may hold {MAX_HEADER_BYTES} bytes",
    ),
    "one enormous header": (
        get(HUB_LIST.encode(), b"X-Big: " + b"b" * 2_000_000 + b"\r\n"),
        431,
        "Request head too large",
    ),
    "a control byte in a header name": (
        get(HUB_LIST.encode(), b"X\x01Bad: 1\r\n"),
        400,
        "Malformed HTTP request",
    ),
    "a NUL in a header value": (
        get(HUB_LIST.encode(), b"X-Bad: a\x00b\r\n"),
        400,
        "Malformed HTTP request",
    ),
    "not HTTP at all": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "Malformed"),
}


async def assert_refusals(port: int) -> None:
    for name, (request, status, fragment) in CASES.items():
        answer = await send_raw(port, request)
        assert answer.status == status, (name, answer)
        assert fragment in answer.d9()["message"], (name, answer.body)


def assert_rendered_like_the_app(body: bytes) -> None:
    # The app's JSONResponse: compact separators, UTF-8.
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


async def test_refusals_before_the_app_are_d9_on_the_test_server(hubgate: RunningHubgate) -> None:
    port = int(hubgate.url.rsplit(":", 1)[1])
    await assert_refusals(port)
    # The server still serves afterwards.
    ok = await send_raw(port, get(f"{API}/elements/keys".encode(), b"Connection: close\r\n"))
    assert ok.status == 200, ok


@pytest.fixture
async def h11_port(hubgate: RunningHubgate) -> AsyncIterator[int]:
    """The same app under uvicorn's other HTTP protocol; the test server's lifespan serves it."""
    port = free_port()
    config = uvicorn.Config(
        hubgate.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        **server_options("h11"),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await task


async def test_refusals_before_the_app_are_d9_under_h11(h11_port: int) -> None:
    await assert_refusals(h11_port)


async def test_the_413_is_rendered_like_every_other_body(
    hubgate: RunningHubgate, tenant: TenantCredentials
) -> None:
    port = int(hubgate.url.rsplit(":", 1)[1])
    declared = await send_raw(
        port,
        b"POST " + API.encode() + b"/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n",
    )
    assert declared.status == 413, declared
    assert declared.d9()["message"] == "Request body too large"
    assert_rendered_like_the_app(declared.body)
    chunk = b"x" * 65536
    chunked = await send_raw(
        port,
        b"POST " + API.encode() + b"/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: " + tenant.authorization.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 20
        + b"0\r\n\r\n",
    )
    assert chunked.status == 413, chunked
    assert_rendered_like_the_app(chunked.body)
    other = await send_raw(port, get(f"{API}/instances".encode()))  # a 401 from the app
    assert other.status == 401
    assert_rendered_like_the_app(other.body)
    for request, _, _ in CASES.values():
        assert_rendered_like_the_app((await send_raw(port, request)).body)


@pytest.mark.slow
async def test_refusals_are_d9_in_every_process_of_hubgate_serve_workers(
    pg_url: str, keyring_json: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HUBGATE_DATABASE_URL": pg_url,
        "HUBGATE_KEYRING": keyring_json,
        "HUBGATE_PORT": str(port),
        "HUBGATE_DATA_DIR": str(tmp_path),
        "HUBGATE_EMBEDDED_WORKER": "false",
        "HUBGATE_LOG_LEVEL": "warning",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hubgate",
            "serve",
            "--workers",
            "2",
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        async with aiohttp.ClientSession() as http:
            # Two processes importing the app on a machine that may be busy: a generous bound.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if process.returncode is not None:
                    pytest.fail(log_path.read_text()[-2000:])
                try:
                    async with http.get(f"http://127.0.0.1:{port}{API}/hubs") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"hubgate serve did not answer: {log_path.read_text()[-2000:]}")
        # Each connection may land on either process: enough of them to reach both.
        for _ in range(4):
            await assert_refusals(port)
    finally:
        process.terminate()
        await process.wait()
