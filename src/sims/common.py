"""What the Twilio, SendGrid and Slack simulators share: the server's life, test controls, failures.

A simulator subclasses `SimServer`, adds its vendor routes in `add_vendor_routes` and lists its
test controls in `controls`; the base serves them on loopback, queues injected failures
(`fail_next`) and posts signed webhooks with `post`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

JsonObject = dict[str, Any]
RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Control = tuple[str, str, Callable[[web.Request], Awaitable[web.Response]], str]

UPPER_DIGITS = string.ascii_uppercase + string.digits
URL_SAFE = string.ascii_letters + string.digits + "-_"


def random_text(length: int, alphabet: str = URL_SAFE) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class Failure:
    """One injected answer: the HTTP status, for 429/503 the Retry-After seconds, and the
    vendor's error code where it has one (Twilio's 20429)."""

    status: int
    retry_after: float | None
    code: int | None = None


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the simulator made, and what the receiver answered (0: no answer)."""

    status: int
    body: str
    headers: dict[str, str]  # names in lower case

    def as_json(self) -> JsonObject:
        return {"status": self.status, "body": self.body, "headers": self.headers}


class ControlError(Exception):
    """Bad input to a test control: answered 400 (or `status`) with `{"error": message}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SimServer:
    """Lifecycle, the `/_sim/` controls and failure injection for one vendor simulator."""

    name = "simulator"
    # The largest request body read; SendGrid takes messages up to 30 MB, and the simulator
    # must read them to answer 413.
    max_body = 32 * 1024 * 1024
    fail_description = 'Fail the next API calls: {"status"?: 429, "count"?: 1, "retryAfter"?: 1}.'

    def __init__(self) -> None:
        self.failures: deque[Failure] = deque()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- to be filled by each vendor ------------------------------------------------------

    def add_vendor_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def controls(self) -> list[Control]:
        """(method, path, handler, what it does) of the vendor's own test controls."""
        return []

    def middlewares(self) -> list[Any]:
        return []

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`http://host:port` of the running server."""
        if self._url is None:
            raise RuntimeError(f"the {self.name} is not running; call start() first")
        return self._url

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=self.middlewares(), client_max_size=self.max_body)
        self.add_vendor_routes(app)
        for method, path, handler, _ in self._all_controls():
            app.router.add_route(method, path, _control(handler))
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError(f"the {self.name} is already running")
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._runner = runner
        self._url = f"http://{shown}:{bound_port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._url = None
        if runner is not None:
            await runner.cleanup()

    # -- failures -------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 429,
        count: int = 1,
        retry_after: float | None = 1,
        code: int | None = None,
    ) -> None:
        """Answer the next `count` vendor API calls with this HTTP status."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {status}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self.failures.extend([Failure(status, retry_after, code)] * count)

    def take_failure(self) -> Failure | None:
        return self.failures.popleft() if self.failures else None

    # -- webhooks -------------------------------------------------------------------------

    @staticmethod
    async def post(url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        """POST a webhook; a connection failure is a delivery with status 0."""
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, data=body, headers=headers, allow_redirects=False) as answer,
            ):
                text = await answer.text()
                return Delivery(
                    answer.status, text, {k.lower(): v for k, v in answer.headers.items()}
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            return Delivery(0, f"{type(error).__name__}: {error}", {})

    # -- controls -------------------------------------------------------------------------

    def _all_controls(self) -> list[Control]:
        return [
            ("GET", "/_sim/", self._index, "This list of test controls."),
            ("POST", "/_sim/fail", self._fail, self.fail_description),
            *self.controls(),
        ]

    async def _index(self, request: web.Request) -> web.Response:
        listed = [
            {"method": method, "path": path, "description": description}
            for method, path, _, description in self._all_controls()
        ]
        return web.json_response({"controls": listed})

    async def _fail(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        self.fail_next(
            status=int(payload.get("status", 429)),
            count=int(payload.get("count", 1)),
            retry_after=payload.get("retryAfter", 1),
        )
        return web.json_response({"pending": len(self.failures)})


def _control(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Bad input to a control is a 400 `{"error"}`, an unknown id a 404, never a 500."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ControlError as error:
            return web.json_response({"error": str(error)}, status=error.status)
        except KeyError as error:
            return web.json_response({"error": f"not found: {error.args[0]}"}, status=404)
        except (ValueError, TypeError) as error:
            return web.json_response({"error": str(error)}, status=400)

    return wrapped


async def control_payload(request: web.Request) -> JsonObject:
    """The JSON object a control was sent (an empty body is `{}`)."""
    if not request.can_read_body:
        return {}
    payload = await request.json()
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    return payload


def run_forever(sim: SimServer, host: str, port: int, banner: Callable[[], str]) -> None:
    """Serve in the foreground, print the banner once listening, stop on Ctrl-C."""

    async def serve() -> None:
        await sim.start(host, port)
        try:
            print(banner(), flush=True)
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
