"""D550: the HTTP server sends a response's head with its first body part, in one write.

Over real loopback sockets: the server of ``hubgate serve`` (``server_options()``, httptools)
against a small ASGI app. A recorder between the protocol and its real transport counts the
writes: one per answer where uvicorn's own protocol makes two. The rest shows that holding the
head never delays what a client must see at once: a HEAD answer, a 100 Continue, a streamed
answer's first part, the head of an answer whose app fails after starting it, and a body larger
than the join's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import aiohttp
import pytest
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as UvicornHttpTools
from uvicorn.server import ServerState

from hubgate.httpserver import JOIN_MAX_BYTES, HttpToolsProtocol, server_options
from tests.conftest import free_port, serve_in_loop

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BIG = bytes(range(256)) * (JOIN_MAX_BYTES // 256 + 10)


class Gate:
    """Lets the streaming route send its second part once the test has seen the first."""

    def __init__(self) -> None:
        self.first_seen = asyncio.Event()


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    mode = scope["query_string"].decode()
    if mode == "stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await asyncio.wait_for(scope["state"]["gate"].first_seen.wait(), 10)
        await send({"type": "http.response.body", "body": b"second"})
        return
    if mode == "fail":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("the app fails after starting its answer")
    if mode == "echo":
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
    else:
        body = BIG if mode == "big" else b"hello"
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Recorder:
    """A real transport that also keeps what was written through it, write by write."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@contextlib.asynccontextmanager
async def counted_server(
    protocol: type[UvicornHttpTools], writes: list[bytes]
) -> AsyncIterator[str]:
    """A server with ``protocol`` on loopback; every write of every connection in ``writes``."""

    class Counted(protocol):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(cast(asyncio.Transport, Recorder(transport, writes)))

    config = uvicorn.Config(app, log_level="warning", lifespan="off", **server_options())
    config.load()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Counted(config=config, server_state=ServerState(), app_state={}, _loop=loop),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


async def test_an_answer_is_one_write_where_uvicorns_protocol_makes_two() -> None:
    for protocol, per_answer in ((HttpToolsProtocol, 1), (UvicornHttpTools, 2)):
        writes: list[bytes] = []
        async with counted_server(protocol, writes) as url, aiohttp.ClientSession() as client:
            for _ in range(3):
                async with client.get(url) as response:
                    assert (response.status, await response.read()) == (200, b"hello")
        assert len(writes) == 3 * per_answer, (protocol.__name__, writes)
        assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in writes[::per_answer])
        assert b"".join(writes).count(b"hello") == 3


async def test_a_body_over_the_join_limit_goes_in_its_own_write_and_arrives_whole() -> None:
    writes: list[bytes] = []
    async with (
        counted_server(HttpToolsProtocol, writes) as url,
        aiohttp.ClientSession() as client,
        client.get(url + "?big") as response,
    ):
        assert await response.read() == BIG
    assert [len(w) for w in writes][1:] == [len(BIG)]
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")


@pytest.fixture
async def served() -> AsyncIterator[tuple[int, Gate]]:
    """The app served as the test server serves Hubgate (``serve_in_loop``)."""
    gate = Gate()

    async def with_gate(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["state"]["gate"] = gate
        await app(scope, receive, send)

    port = free_port()
    server, task = await serve_in_loop(cast(FastAPI, with_gate), port)
    yield port, gate
    server.should_exit = True
    await task


async def sent(
    port: int, request: bytes
) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    """``request`` sent on a new connection; the first head that comes back, and the streams."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return head, reader, writer


async def test_a_head_answer_is_not_held(served: tuple[int, Gate]) -> None:
    head, _, writer = await sent(served[0], b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 5\r\n" in head
    writer.close()


async def test_a_100_continue_comes_before_the_body_is_sent(served: tuple[int, Gate]) -> None:
    interim, reader, writer = await sent(
        served[0],
        b"POST /?echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ping")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    writer.close()


async def test_a_streamed_answer_shows_its_head_and_first_part_before_it_ends(
    served: tuple[int, Gate],
) -> None:
    port, gate = served
    head, reader, writer = await sent(port, b"GET /?stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in head
    assert await asyncio.wait_for(reader.readuntil(b"first\r\n"), 5) == b"5\r\nfirst\r\n"
    gate.first_seen.set()
    rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
    assert rest == b"6\r\nsecond\r\n0\r\n\r\n"
    writer.close()


async def test_the_head_of_an_answer_whose_app_fails_still_reaches_the_client(
    served: tuple[int, Gate],
) -> None:
    head, reader, writer = await sent(served[0], b"GET /?fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server closes
    writer.close()
