"""Counting, timing and tracing every HTTP request (D62, D63), hub calls answered by the fast
path too.

Raw ASGI, like the request id middleware, because it sits on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from opentelemetry.trace import Span, SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.observability import context, metrics, traces

# Requests no route matched (a 404 for an unknown path) share one label: the path itself is
# whatever a stranger typed.
UNMATCHED = "unmatched"


class Seen:
    """What an observed answer tells the metrics: its status once started (500 until then),
    and the trace header it must carry (empty when the request is not traced)."""

    __slots__ = ("status", "trace_header")

    def __init__(self, trace_id: str) -> None:
        self.status = 500
        self.trace_header = [(b"elements-trace-id", trace_id.encode())] if trace_id else []


class RequestObserver:
    """Counts, times and traces answers; the hub fast path uses it without the middleware."""

    def __init__(self, *, prefix: str) -> None:
        self.prefix = prefix
        self.hubs = f"{prefix}/hubs/"
        # The template FastAPI gives hub calls (hub.endpoints); the fast path answers them
        # before routing, so no route is set on their scope.
        self.hub_route = f"{prefix}/hubs/{{hub}}/{{rest:path}}"

    async def observe(self, scope: Scope, answer: Callable[[Seen], Awaitable[None]]) -> None:
        """Run ``answer``, which sends the response (with ``seen.trace_header`` among its
        headers) and sets ``seen.status`` as it starts it, counted, timed and traced."""
        started = time.perf_counter()
        labels = context.begin(scope.get("state", {}).get("request_id", ""))
        if traces.enabled():
            # A caller that traces sends its span as ``traceparent``: the request continues it.
            parent = traces.incoming(scope["headers"])
            with traces.span(f"{scope['method']} request", {}, SpanKind.SERVER, parent) as span:
                await self._observe(scope, answer, labels, started, span)
        else:
            await self._observe(scope, answer, labels, started, None)

    async def _observe(
        self,
        scope: Scope,
        answer: Callable[[Seen], Awaitable[None]],
        labels: context.Context,
        started: float,
        span: Span | None,
    ) -> None:
        seen = Seen(labels.trace_id)
        metrics.request_started()
        try:
            await answer(seen)
        finally:
            status = seen.status
            if metrics.enabled() or span is not None:
                template = self._template(scope)
            if metrics.enabled():
                metrics.count_request(template, scope["method"], status, labels.element)
                if template == self.hub_route and labels.element:
                    seconds = time.perf_counter() - started
                    metrics.time_hub_call(labels.element, labels.resource, seconds)
            metrics.request_ended()
            if span is not None:
                span.update_name(f"{scope['method']} {template}")
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if labels.element:
                    span.set_attribute("hubgate.element", labels.element)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            template: str = getattr(route, "path", UNMATCHED)
            # Routes of an included router carry their path without its prefix.
            if scope["path"].startswith(self.prefix) and not template.startswith(self.prefix):
                template = self.prefix + template
            return template
        if scope["path"].startswith(self.hubs):
            return self.hub_route
        return UNMATCHED


class RequestMetrics(RequestObserver):
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        super().__init__(prefix=prefix)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = self.app

        async def answer(seen: Seen) -> None:
            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    seen.status = message["status"]
                    if seen.trace_header:
                        message = {
                            **message,
                            "headers": [*message.get("headers", []), *seen.trace_header],
                        }
                await send(message)

            await app(scope, receive, send_with_status)

        await self.observe(scope, answer)
