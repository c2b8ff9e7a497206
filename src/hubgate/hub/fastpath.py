"""Hub calls skip the framework's routing: one prefix check, then straight to the endpoint.

Measured with py-spy under bench/proxy: FastAPI's router walking every platform route, its
exception middleware and dependency machinery cost about a quarter of a hub call. Hub calls
need none of it (no dependencies, no validation), so this middleware answers them itself and
leaves everything else, the catalog's ``/hubs/...`` routes included, to the app. The same
endpoint function is also registered as FastAPI routes, which is what the OpenAPI lists.
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hubgate.errors_http import response_for
from hubgate.hub.endpoints import HUB_METHODS, hub_call


class HubFastPath:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = f"{prefix}/hubs/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        hub, slash, rest = scope["path"][len(self.prefix) :].partition("/")
        method = scope["method"]
        catalog = rest == "elements" and method == "GET"  # /hubs/{key}/elements
        if not slash or not hub or not rest or catalog or method not in HUB_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response: Response = await hub_call(request, hub, rest)
        except Exception as exc:
            # Exactly what the app's handlers answer: the D9 body, failed credentials counted
            # (D172), the database's absence a 503 (D174), a bug's class and line logged (D173).
            response = await response_for(request, exc)
        await response(scope, receive, send)
