"""Hub calls skip the framework's routing: one prefix check, then straight to the endpoint.

Measured with py-spy under bench/proxy: FastAPI's router walking every platform route, its
exception middleware and dependency machinery cost about a quarter of a hub call. Hub calls
need none of it (no dependencies, no validation), so this middleware answers them itself and
leaves everything else, the catalog's ``/hubs/...`` routes included, to the app. The same
endpoint function is also registered as FastAPI routes, which is what the OpenAPI lists.

A hub resource also answers without the hub segment (D49): ``/elements/api-v2/messages`` with
an Element token is ``/hubs/messaging/messages`` when ``messages`` starts no platform route.
That check comes after the ``/hubs/`` one, so hub calls pay nothing for it.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from hubgate.errors_http import response_for
from hubgate.hub.endpoints import HUB_METHODS, hub_call
from hubgate.kit.errors import HubgateError
from hubgate.tenants.auth import parse_authorization


class HubFastPath:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.api = f"{prefix}/"
        self.prefix = f"{prefix}/hubs/"
        # The first path segments of the platform's routes, read from the app on first use.
        self._platform: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(self.prefix):
            if path.startswith(self.api) and self._bare_resource(scope, path):
                await self._answer(scope, receive, send, "", path[len(self.api) :])
            else:
                await self.app(scope, receive, send)
            return
        hub, slash, rest = path[len(self.prefix) :].partition("/")
        method = scope["method"]
        # /hubs/{key}/elements is the catalog's, /hubs/{hub}/objects[/…] discovery's (D50).
        catalog = method == "GET" and (
            rest == "elements" or rest == "objects" or rest.startswith("objects/")
        )
        if not slash or not hub or not rest or catalog or method not in HUB_METHODS:
            await self.app(scope, receive, send)
            return
        await self._answer(scope, receive, send, hub, rest)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, hub: str, rest: str
    ) -> None:
        request = Request(scope, receive)
        try:
            response: Response = await hub_call(request, hub, rest)
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
