"""Hub calls answered before FastAPI's and Starlette's stacks: one prefix check, then the
endpoint, with what the app's middleware does to every answer done in one layer.

Measured with py-spy under bench/proxy: FastAPI's router walking every platform route, its
exception middleware and dependency machinery cost about a quarter of a hub call; once routing
was skipped, Starlette's error middleware and FastAPI's own outer layers were still paid by
every call, and then the app's four middleware layers, each wrapping ``send`` and copying the
response's headers (D421). Hub calls need none of that machinery (no dependencies, no
validation), so the app's outermost ``__call__`` (``app.HubgateApp``) hands them to
``HubFastPath.answer``, which does what the middleware does, through the same code: CORS
headers (``cors.CorsPolicy``), the request id and the refusals before any handler (414, 431,
413) and the body cap (``middleware``), then ``hub_call``'s work counted, timed and traced
(``observability.middleware.RequestObserver``); its errors get ``response_for``, the answer the
app's exception handlers give, and the answer goes out in two messages with every header added
at once, built as the raw headers and body without a Starlette ``Response`` (D530).
The audit layer records calls made as a tenant, and a hub call never is one (its credentials
are resolved to an instance, ``hub.service.resolve``): it has nothing to do here. Everything
else, the catalog's ``/hubs/...`` routes included, goes to FastAPI. The same endpoint function
is also registered as FastAPI routes, which is what the OpenAPI lists and what a call answers
through when it comes past this path (tests/hub/test_fastpath.py shows both give the same answer).

A hub resource also answers without the hub segment (D49): ``/elements/api-v2/messages`` with
an Element token is ``/hubs/messaging/messages`` when ``messages`` starts no platform route.
That check comes after the ``/hubs/`` one, so hub calls pay nothing for it.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from hubgate.cors import CorsPolicy
from hubgate.errors_http import response_for
from hubgate.hub.endpoints import HUB_METHODS, JsonAnswer, hub_answer
from hubgate.kit.errors import HubgateError
from hubgate.middleware import (
    REQUEST_ID_HEADER,
    capped,
    drain,
    new_request_id,
    refusal_of,
    send_error,
)
from hubgate.observability.middleware import RequestObserver, Seen
from hubgate.tenants.auth import parse_authorization


class HubFastPath:
    def __init__(self, *, prefix: str, cors_origins: str, max_body_bytes: int) -> None:
        self.api = f"{prefix}/"
        self.prefix = f"{prefix}/hubs/"
        # The first path segments of the platform's routes, read from the app on first use.
        self._platform: frozenset[str] | None = None
        # The app's middleware settings (app.create_app passes the same ones to both).
        self.cors = CorsPolicy(origins=cors_origins)
        self.max_body_bytes = max_body_bytes
        self.observer = RequestObserver(prefix=prefix)

    def takes(self, scope: Scope) -> bool:
        """Whether this HTTP request is a hub call; if so its ``hub`` and ``rest`` are put in
        the scope's path parameters, as the router would. ``scope["app"]`` must be set."""
        path: str = scope["path"]
        if not path.startswith(self.prefix):
            if path.startswith(self.api) and self._bare_resource(scope, path):
                scope["path_params"] = {"hub": "", "rest": path[len(self.api) :]}
                return True
            return False
        hub, slash, rest = path[len(self.prefix) :].partition("/")
        method = scope["method"]
        # /hubs/{key}/elements is the catalog's, /hubs/{hub}/objects[/…] discovery's (D50).
        catalog = method == "GET" and (
            rest == "elements" or rest == "objects" or rest.startswith("objects/")
        )
        if not slash or not hub or not rest or catalog or method not in HUB_METHODS:
            return False
        scope["path_params"] = {"hub": hub, "rest": rest}
        return True

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A hub call (``takes`` said so), answered as the app's middleware and routes would."""
        # The headers every answer gets, in the order the middleware adds them, innermost
        # (the trace id, added with the response's own) first.
        added = self.cors.answer_headers(scope)
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        added.insert(0, (REQUEST_ID_HEADER, request_id.encode()))
        refusal = refusal_of(scope, self.max_body_bytes)
        if refusal is not None:
            await send_error(request_id, *refusal, send, added)
            await drain(receive)
            return
        request = Request(scope, capped(receive, self.max_body_bytes))
        params = scope["path_params"]

        async def respond(seen: Seen) -> None:
            try:
                response: JsonAnswer | Response = await hub_answer(request, params["rest"])
            except Exception as exc:
                # Exactly what the app's handlers answer: the D9 body, failed credentials
                # counted (D172), the database's absence a 503 (D174), a bug's class and line
                # logged (D173).
                response = await response_for(request, exc)
            seen.status = status = response.status_code
            headers = [*response.raw_headers, *seen.trace_header, *added]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})

        await self.observer.observe(scope, respond)

    def _bare_resource(self, scope: Scope, path: str) -> bool:
        """A path under the API whose first segment no platform route starts (D49), called
        with an Element token: a hub call. Without one it stays the app's (its 404)."""
        if scope["method"] not in HUB_METHODS:
            return False
        first = path[len(self.api) :].partition("/")[0]
        if not first or first in self._platform_segments(scope):
            return False
        for name, value in scope["headers"]:
            if name == b"authorization":
                try:
                    return parse_authorization(value.decode("latin-1")).element is not None
                except HubgateError:  # a malformed header is the app's to refuse (D8)
                    return False
        return False

    def _platform_segments(self, scope: Scope) -> frozenset[str]:
        if self._platform is None:
            routes: list[BaseRoute] = scope["app"].routes
            paths = [route.path_format or "" for route in iter_route_contexts(routes)]
            self._platform = frozenset(
                p[len(self.api) :].partition("/")[0] for p in paths if p.startswith(self.api)
            )
        return self._platform
