"""(e) of bench/proxy: the physical limit of a Python proxy here, raw ASGI + aiohttp's client.

No framework, no routing, no middleware: the request's path and query go to the stand-in and
its answer comes back. Served by uvicorn and by granian, two workers each:

    BENCH_UPSTREAM=http://127.0.0.1:8001 granian --interface asgi bench.proxy.rawasgi:app
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8001")
_session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if _session is None:  # made in the worker's own loop, on its first request
        _session = aiohttp.ClientSession()
    query = scope["query_string"].decode("latin-1")
    async with _session.get(f"{UPSTREAM}{scope['path']}?{query}") as upstream:
        body = await upstream.read()
        status = upstream.status
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
