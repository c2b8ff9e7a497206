"""Counting and timing every HTTP request (D62), hub calls answered by the fast path too.

Raw ASGI, like the request id middleware, because it sits on the hot path.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.observability import context, metrics

# Requests no route matched (a 404 for an unknown path) share one label: the path itself is
# whatever a stranger typed.
UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.hubs = f"{prefix}/hubs/"
        # The template FastAPI gives hub calls (hub.endpoints); the fast path answers them
        # before routing, so no route is set on their scope.
        self.hub_route = f"{prefix}/hubs/{{hub}}/{{rest:path}}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        labels = context.begin(scope.get("state", {}).get("request_id", ""))
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            if route is not None:
                template = getattr(route, "path", UNMATCHED)
                # Routes of an included router carry their path without its prefix.
                if scope["path"].startswith(self.prefix) and not template.startswith(self.prefix):
                    template = self.prefix + template
            elif scope["path"].startswith(self.hubs):
                template = self.hub_route
            else:
                template = UNMATCHED
            metrics.HTTP_REQUESTS.labels(
                template, scope["method"], str(status), labels.element
            ).inc()
            if template == self.hub_route and labels.element:
                metrics.HUB_CALL_SECONDS.labels(labels.element, labels.resource).observe(
                    time.perf_counter() - started
                )
