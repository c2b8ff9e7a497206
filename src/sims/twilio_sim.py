"""A small stateful simulator of Twilio's 2010 REST API, for tests and local demos.

Prism (see twilio-api.md §8) checks request shapes but keeps no state and cannot answer Twilio's
errors; this simulator stores what it is sent, enforces Basic auth, answers Twilio's error bodies
and lets tests inject rate limits, outages and latency.

    async:   sim = TwilioSimulator(); await sim.start(); ...; await sim.stop()
    sync:    with SimulatorThread() as sim: requests.get(f"{sim.base_url}/{sim.account_sid}.json")
    shell:   python -m sims.twilio_sim --port 8090

Other processes drive a running simulator through the JSON routes under `/_sim/` (no auth; bind
to loopback only). Requests to those routes are neither recorded nor subject to `fail_next`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from sims.common import Control, Failure, SimServer, control_payload, run_forever
from sims.twilio_sim_api import ACCOUNT, TwilioApi, read_form
from sims.twilio_sim_model import (
    API_ROOT,
    Account,
    Resource,
    SimState,
    TwilioError,
    newest_first,
    not_found,
)

__all__ = ["SimRequest", "SimulatorThread", "TwilioSimulator", "main"]

JsonObject = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_FAILURE_MESSAGES = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class StatusCallback(NamedTuple):
    """One status callback the simulator posted: where, the form, the answer's status."""

    url: str
    params: dict[str, str]
    status: int | None


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """``X-Twilio-Signature`` as Twilio computes it: the URL, then each POST parameter's name
    and value in name order, HMAC-SHA1 under the Auth Token, base64."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(
        hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()


class SimRequest(NamedTuple):
    """One request the simulator received on the Twilio API (anything outside `/_sim/`)."""

    method: str
    path: str
    query: dict[str, str | list[str]]
    form: dict[str, str | list[str]]
    user: str | None

    def as_json(self) -> JsonObject:
        return self._asdict()


def _multi(pairs: Mapping[str, str] | Any) -> dict[str, str | list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs.items():
        grouped.setdefault(key, []).append(str(value))
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _error_response(error: TwilioError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


def _unauthenticated() -> TwilioError:
    return TwilioError(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})


class TwilioSimulator(SimServer):
    """The simulator: state, the aiohttp app serving it, and helpers for tests to steer it."""

    max_body = 1024 * 1024  # aiohttp's default: Twilio's API takes small form bodies
    fail_description = 'Fail the next calls: {"status"?: 429, "count"?, "retryAfter"?, "code"?}.'

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        super().__init__()
        self._state = SimState()
        primary = self._state.add_account(account_sid, auth_token)
        self.account_sid: str = primary.sid
        self.auth_token: str = primary.auth_token
        self.requests: list[SimRequest] = []
        self._latency = 0.0
        # Status callbacks posted (and what came back), in the order they were answered.
        self.status_callbacks: list[StatusCallback] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._callbacks: set[asyncio.Future[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What goes into an instance's `base.url`: the URL of Twilio's Accounts collection."""
        return f"{self.url}{API_ROOT}/Accounts"

    def add_vendor_routes(self, app: web.Application) -> None:
        TwilioApi(self._state).add_routes(app)

    def middlewares(self) -> list[Any]:
        return [self._middleware]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await super().start(host, port)
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        # No status callback starts once the simulator is stopping.
        self._loop = None
        for task in list(self._callbacks):
            task.cancel()
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await super().stop()

    # -- status callbacks -------------------------------------------------------------------

    def _call_back(self, url: str, params: dict[str, str], auth_token: str) -> None:
        """POST a status callback from the simulator's loop, whichever thread asks."""
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(self._start_callback, url, params, auth_token)

    def _start_callback(self, url: str, params: dict[str, str], auth_token: str) -> None:
        task = asyncio.ensure_future(self._post_callback(url, params, auth_token))
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def _post_callback(self, url: str, params: dict[str, str], auth_token: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"X-Twilio-Signature": twilio_signature(url, params, auth_token)}
        try:
            async with self._session.post(url, data=params, headers=headers) as answer:
                status: int | None = answer.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.status_callbacks.append(StatusCallback(url, params, status))

    # -- accounts ---------------------------------------------------------------------------

    def add_account(self, sid: str | None = None, token: str | None = None) -> tuple[str, str]:
        """Another independent account (its own SID and token); returns (sid, token)."""
        account = self._state.add_account(sid, token)
        return account.sid, account.auth_token

    def accounts(self) -> dict[str, str]:
        """Account SID → Auth Token of every account."""
        with self._state.lock:
            return {sid: a.auth_token for sid, a in self._state.accounts.items()}

    def _account(self, account_sid: str | None) -> Account:
        with self._state.lock:
            account = self._state.accounts.get(account_sid or self.account_sid)
        if account is None:
            raise KeyError(f"no account {account_sid}")
        return account

    # -- state helpers for tests ------------------------------------------------------------

    def set_message_status(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        date_sent: datetime | None = None,
    ) -> JsonObject:
        """Move a message along its lifecycle, as Twilio's carrier updates would; a message
        created with a ``StatusCallback`` has its new status posted there, signed."""
        with self._state.lock:
            message = self._state.set_message_status(
                sid, status, error_code=error_code, date_sent=date_sent
            )
            account, _ = self._state.find_message(sid)
            rendered = message.json()
            callback = message.private.get("status_callback")
        if callback:
            params = {
                "AccountSid": account.sid,
                "ApiVersion": "2010-04-01",
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "From": str(rendered.get("from") or ""),
                "To": str(rendered.get("to") or ""),
            }
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            self._call_back(str(callback), params, account.auth_token)
        return rendered

    def set_call_status(self, sid: str, status: str) -> JsonObject:
        with self._state.lock:
            return self._state.set_call_status(sid, status).json()

    def fail_next(
        self,
        status: int = 429,
        count: int = 1,
        retry_after: float | None = 1,
        code: int | None = None,
    ) -> None:
        """Answer the next `count` API requests with a Twilio error of this HTTP status.

        `code` defaults to 20000 + status (20429, 20500, 20503), Twilio's codes for these.
        `Retry-After` is sent with 429 and 503 unless `retry_after` is None.
        """
        twilio_code = 20000 + status if code is None else code
        with self._state.lock:
            super().fail_next(status, count, retry_after, twilio_code)

    def set_latency(self, seconds: float) -> None:
        """Delay every API response by this much (after auth checks are recorded)."""
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        with self._state.lock:
            self._latency = seconds

    def add_inbound_message(
        self,
        from_: str,
        to: str,
        body: str,
        *,
        account_sid: str | None = None,
        media_urls: list[str] | None = None,
        at: datetime | None = None,
    ) -> JsonObject:
        """A message someone sent to one of the account's numbers (status `received`)."""
        account = self._account(account_sid)
        with self._state.lock:
            return self._state.add_inbound_message(
                account, from_, to, body, media_urls=media_urls, at=at
            ).json()

    def messages(self, account_sid: str | None = None) -> list[JsonObject]:
        """The account's messages as the API renders them, newest first."""
        return self._rendered(self._account(account_sid).messages)

    def calls(self, account_sid: str | None = None) -> list[JsonObject]:
        return self._rendered(self._account(account_sid).calls)

    def message(self, sid: str) -> JsonObject:
        with self._state.lock:
            return self._state.find_message(sid)[1].json()

    def _rendered(self, collection: Mapping[str, Resource]) -> list[JsonObject]:
        with self._state.lock:
            return [r.json() for r in newest_first(collection.values())]

    def clear_messages(self, account_sid: str | None = None) -> None:
        """Forget one account's messages and media (property tests start each example afresh)."""
        account = self._account(account_sid)
        with self._state.lock:
            account.messages.clear()
            account.media.clear()
            account.tombstones.clear()

    def clear_requests(self) -> None:
        with self._state.lock:
            self.requests.clear()

    def reset(self) -> None:
        """Forget resources, recorded requests, pending failures and latency; keep accounts."""
        with self._state.lock:
            self._state.reset()
            self.requests.clear()
            self.failures.clear()
            self._latency = 0.0

    # -- the API edge -----------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        form = await read_form(request)
        credentials = self._credentials(request)
        with self._state.lock:
            self.requests.append(
                SimRequest(
                    request.method,
                    request.path,
                    _multi(request.query),
                    form.as_dict(),
                    credentials[0] if credentials else None,
                )
            )
            failure = self.take_failure()
            latency = self._latency
        if failure is not None:
            return _error_response(self._failure_error(failure))
        if latency:
            await asyncio.sleep(latency)
        try:
            if request.path.startswith(f"{API_ROOT}/"):
                request[ACCOUNT] = self._authenticate(request, credentials)
            return await handler(request)
        except TwilioError as error:
            return _error_response(error)
        except web.HTTPMethodNotAllowed:
            return _error_response(TwilioError(405, 20004, "Method not allowed"))
        except web.HTTPNotFound:
            return _error_response(not_found(request.path))

    @staticmethod
    def _credentials(request: web.Request) -> tuple[str, str] | None:
        # Decoded by hand: aiohttp 3.14 deprecates BasicAuth, and tests run warnings-as-errors.
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        return (user, password) if colon else None

    def _authenticate(self, request: web.Request, credentials: tuple[str, str] | None) -> Account:
        account = self._state.authenticate(*credentials) if credentials else None
        if account is None:
            raise _unauthenticated()
        # Twilio answers a valid login used on another account's path with 20003 as well.
        path_sid = request.match_info.get("AccountSid")
        if path_sid is not None and path_sid != account.sid:
            raise _unauthenticated()
        return account

    @staticmethod
    def _failure_error(failure: Failure) -> TwilioError:
        headers = {}
        if failure.retry_after is not None and failure.status in {429, 503}:
            headers["Retry-After"] = f"{failure.retry_after:g}"
        message = _FAILURE_MESSAGES.get(failure.status, "Simulated failure")
        code = 20000 + failure.status if failure.code is None else failure.code
        return TwilioError(failure.status, code, message, headers)

    # -- /_sim/ control routes --------------------------------------------------------------

    def controls(self) -> list[Control]:
        # GET /_sim/ (the base's) lists them, with /_sim/fail, for people and scripts.
        return [
            ("GET", "/_sim/health", self._health, "Liveness, and the default Account SID."),
            ("GET", "/_sim/accounts", self._list_accounts, "Accounts and their Auth Tokens."),
            (
                "POST",
                "/_sim/accounts",
                self._create_account,
                'Add an account: {"accountSid"?, "authToken"?}.',
            ),
            (
                "POST",
                "/_sim/messages/{sid}/status",
                self._message_status,
                "Move a message along as Twilio's carrier would, so that a poller sees the"
                ' change: {"status": "sent"|"delivered"|"undelivered"|"failed"|...,'
                ' "errorCode"?, "dateSent"?}.',
            ),
            (
                "POST",
                "/_sim/calls/{sid}/status",
                self._call_status,
                'Move a call along: {"status": "ringing"|"in-progress"|"completed"|...}.',
            ),
            ("GET", "/_sim/messages", self._list_messages, "Every message; ?accountSid= narrows."),
            (
                "POST",
                "/_sim/inbound",
                self._inbound,
                'An inbound message: {"from", "to", "body"?, "mediaUrls"?, "dateSent"?}.',
            ),
            ("POST", "/_sim/latency", self._set_latency, 'Delay every answer: {"seconds"}.'),
            ("GET", "/_sim/requests", self._list_requests, "The API requests received."),
            ("DELETE", "/_sim/requests", self._clear_requests, "Forget the requests received."),
            (
                "POST",
                "/_sim/reset",
                self._reset,
                "Forget resources, requests, failures and latency; keep accounts.",
            ),
        ]

    @staticmethod
    def _when(value: object) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError("dates must be ISO 8601 strings")
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "accountSid": self.account_sid})

    def _account_json(self, sid: str, token: str) -> JsonObject:
        return {"accountSid": sid, "authToken": token, "baseUrl": self.base_url}

    async def _list_accounts(self, request: web.Request) -> web.Response:
        accounts = [self._account_json(sid, token) for sid, token in self.accounts().items()]
        return web.json_response({"accounts": accounts})

    async def _create_account(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        sid, token = self.add_account(payload.get("accountSid"), payload.get("authToken"))
        return web.json_response(self._account_json(sid, token), status=201)

    async def _message_status(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        message = self.set_message_status(
            request.match_info["sid"],
            str(payload.get("status", "")),
            error_code=payload.get("errorCode"),
            date_sent=self._when(payload.get("dateSent")),
        )
        return web.json_response(message)

    async def _call_status(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        call = self.set_call_status(request.match_info["sid"], str(payload.get("status", "")))
        return web.json_response(call)

    async def _list_messages(self, request: web.Request) -> web.Response:
        return web.json_response({"messages": self.messages(request.query.get("accountSid"))})

    async def _inbound(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        for key in ("from", "to"):
            if not isinstance(payload.get(key), str):
                raise ValueError(f"{key!r} is required")
        message = self.add_inbound_message(
            payload["from"],
            payload["to"],
            str(payload.get("body", "")),
            account_sid=payload.get("accountSid"),
            media_urls=payload.get("mediaUrls"),
            at=self._when(payload.get("dateSent")),
        )
        return web.json_response(message, status=201)

    async def _fail(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        self.fail_next(
            status=int(payload.get("status", 429)),
            count=int(payload.get("count", 1)),
            retry_after=payload.get("retryAfter", 1),
            code=payload.get("code"),
        )
        with self._state.lock:
            pending = len(self.failures)
        return web.json_response({"pending": pending})

    async def _set_latency(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        seconds = float(payload.get("seconds", 0))
        self.set_latency(seconds)
        return web.json_response({"seconds": seconds})

    async def _list_requests(self, request: web.Request) -> web.Response:
        with self._state.lock:
            recorded = [r.as_json() for r in self.requests]
        return web.json_response({"requests": recorded})

    async def _clear_requests(self, request: web.Request) -> web.Response:
        self.clear_requests()
        return web.Response(status=204)

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.Response(status=204)


class SimulatorThread:
    """Runs a TwilioSimulator on its own event loop in a daemon thread.

    For synchronous code (the twilio client, requests) and for tests whose event loop must not
    also serve the simulator: a blocking client on the serving loop would deadlock.
    """

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.simulator = TwilioSimulator(account_sid, auth_token)
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> TwilioSimulator:
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name="twilio-simulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the Twilio simulator did not start within 10 s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("the Twilio simulator failed to start") from self._error
        return self.simulator

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self.simulator.start(self._host, self._port))
            except BaseException as error:  # reported to the starting thread
                self._error = error
                return
            finally:
                self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self.simulator.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        self._thread = None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def __enter__(self) -> TwilioSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def describe(sim: TwilioSimulator) -> str:
    """The banner `main` prints: what to paste into a Hubgate instance to use this simulator."""
    return "\n".join(
        [
            f"Twilio simulator listening on {sim.url}",
            f"  Account SID: {sim.account_sid}",
            f"  Auth Token:  {sim.auth_token}",
            "",
            "For the README's curl example:",
            f"export TWILIO_ACCOUNT_SID={sim.account_sid}",
            f"export TWILIO_AUTH_TOKEN={sim.auth_token}",
            "",
            "Instance configuration (twiliov2):",
            f'  "username": "{sim.account_sid}",',
            f'  "password": "{sim.auth_token}",',
            f'  "base.url": "{sim.base_url}"',
            "",
            "Hubgate calls loopback vendors only when allowed: HUBGATE_EGRESS_ALLOW=127.0.0.0/8",
            f"Test controls under {sim.url}/_sim/ ; Ctrl-C stops the simulator.",
        ]
    )


def main(
    host: str = "127.0.0.1",
    port: int = 8090,
    account_sid: str | None = None,
    auth_token: str | None = None,
) -> None:
    """Run a simulator in the foreground until Ctrl-C.

    Fixed credentials come from the arguments, else HUBGATE_SIM_ACCOUNT_SID /
    HUBGATE_SIM_AUTH_TOKEN, else they are random (and printed).
    """
    account_sid = account_sid or os.environ.get("HUBGATE_SIM_ACCOUNT_SID") or None
    auth_token = auth_token or os.environ.get("HUBGATE_SIM_AUTH_TOKEN") or None
    sim = TwilioSimulator(account_sid, auth_token)
    run_forever(sim, host, port, lambda: describe(sim))


def _cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Hubgate Twilio simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--account-sid", default=None)
    parser.add_argument("--auth-token", default=None)
    args = parser.parse_args(argv)
    main(args.host, args.port, args.account_sid, args.auth_token)


if __name__ == "__main__":
    _cli()
