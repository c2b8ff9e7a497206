"""Hub calls answered before FastAPI's and Starlette's stacks: one prefix check, then the
endpoint, inside the same middleware every other answer passes through.

Measured with py-spy under bench/proxy: FastAPI's router walking every platform route, its
exception middleware and dependency machinery cost about a quarter of a hub call; once routing
was skipped, Starlette's error middleware and FastAPI's own outer layers were still paid by
every call. Hub calls need none of it (no dependencies, no validation), so the app's outermost
``__call__`` (``app.HubgateApp``) hands them to ``HubFastPath.answer``: the app's own
middleware classes (CORS, request id and body cap, audit, metrics and traces), built once from
the same list and settings as the app's stack, around ``hub_call``, whose errors get
``response_for``, the answer the app's exception handlers give. Everything else, the catalog's
``/hubs/...`` routes included, goes to FastAPI. The same endpoint function is also registered as
FastAPI routes, which is what the OpenAPI lists and what a call answers through when it comes
past this path (tests/hub/test_fastpath.py shows both give the same answer).

A hub resource also answers without the hub segment (D49): ``/elements/api-v2/messages`` with
an Element token is ``/hubs/messaging/messages`` when ``messages`` starts no platform route.
That check comes after the ``/hubs/`` one, so hub calls pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request, Response
from fastapi.routing import iter_route_contexts
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from hubgate.errors_http import response_for
from hubgate.hub.endpoints import HUB_METHODS, hub_call
from hubgate.kit.errors import HubgateError
from hubgate.tenants.auth import parse_authorization


class HubFastPath:
    def __init__(self, *, prefix: str, layers: Sequence[Middleware]) -> None:
        self.api = f"{prefix}/"
        self.prefix = f"{prefix}/hubs/"
        # The first path segments of the platform's routes, read from the app on first use.
        self._platform: frozenset[str] | None = None
        answer: ASGIApp = self._answer
        for cls, args, kwargs in reversed(layers):
            answer = cls(answer, *args, **kwargs)
        # The hub call inside the layers, outermost first as in the app's middleware list.
        self.answer = answer

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

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        params = scope["path_params"]
        try:
            response: Response = await hub_call(request, params["hub"], params["rest"])
        except Exception as exc:
            # Exactly what the app's handlers answer: the D9 body, failed credentials counted
            # (D172), the database's absence a 503 (D174), a bug's class and line logged (D173).
            response = await response_for(request, exc)
        await response(scope, receive, send)

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
