"""Hub calls skip the framework's routing: one prefix check, then straight to the endpoint.

Measured with py-spy under bench/proxy: FastAPI's router walking every platform route, its
exception middleware and dependency machinery cost about a quarter of a hub call. Hub calls
need none of it (no dependencies, no validation), so this middleware answers them itself and
leaves everything else, the catalog's ``/hubs/...`` routes included, to the app. The same
endpoint function is also registered as FastAPI routes, which is what the OpenAPI lists.
"""

from __future__ import annotations

import logging

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from hubgate.errors_http import error_response, request_id
from hubgate.hub.endpoints import HUB_METHODS, hub_call
from hubgate.kit.errors import HubgateError

log = logging.getLogger("hubgate.errors")


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
            response = await hub_call(request, hub, rest)
        except HubgateError as exc:
            response = error_response(
                request, exc.status, exc.message, extra=exc.extra, headers=exc.headers
            )
        except Exception as exc:
            # As the app's own handler does: the trace to the log, only the id to the caller.
            log.error("unhandled error in hub call (request %s)", request_id(request), exc_info=exc)
            response = error_response(
                request, 500, "Internal error; quote the request id to the operator"
            )
        await response(scope, receive, send)
