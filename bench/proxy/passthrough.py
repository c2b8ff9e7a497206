"""(c) of bench/proxy: the bare cost of the stack, FastAPI + aiohttp's client, nothing else.

BENCH_UPSTREAM=http://127.0.0.1:8001 uvicorn bench.proxy.passthrough:app --workers 2
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request, Response

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8001")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app.state.session = session
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/{path:path}")
async def passthrough(path: str, request: Request) -> Response:
    url = f"{UPSTREAM}/{path}?{request.url.query}"
    async with request.app.state.session.get(url) as upstream:
        body = await upstream.read()
        return Response(body, upstream.status, media_type="application/json")
