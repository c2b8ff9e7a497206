"""A webhook receiver for tests, benchmarks and demos: records every notification it gets.

    receiver = CallbackReceiver(); await receiver.start(); ...; await receiver.stop()

It answers 200 by default; ``fail_next`` queues other answers (500, 410...) and ``delay``
holds answers back, so tests can script slow or failing receivers. Bind it to loopback only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when the request arrived
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers.get("elements-webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


class CallbackReceiver:
    def __init__(self, *, keep_bodies: bool = True) -> None:
        self.requests: list[Received] = []
        self.delay = 0.0
        self.keep_bodies = keep_bodies
        self._answers: deque[int] = deque()
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the receiver is not running")
        return self._url

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        self._answers.extend([status] * count)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._url = f"http://{bound_host}:{bound_port}/hook"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self._answers.popleft() if self._answers else 200
        headers = {k.lower(): v for k, v in request.headers.items()}
        # Recorded on arrival: a sender killed while waiting for the answer was still seen.
        self.requests.append(
            Received(time.monotonic(), headers, body if self.keep_bodies else b"", status)
        )
        self._arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({"received": status < 300}, status=status)

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], seconds: float = 10.0
    ) -> list[Received]:
        """Wait until ``predicate(requests)`` holds; raises TimeoutError with what came."""
        deadline = time.monotonic() + seconds
        while not predicate(self.requests):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"receiver got {len(self.requests)} requests, not enough")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))
            except TimeoutError:
                continue
        return self.requests
