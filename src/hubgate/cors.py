"""CORS for browser clients of the API (D52): pure ASGI, outermost, so that every answer,
the hub fast path's and the body cap's included, carries the headers.

Allowed origins come from ``HUBGATE_CORS_ORIGINS``: ``*`` (the default) or a comma-separated
list. Credentials are never allowed: Open Connectors' secrets travel in the Authorization
header, which a script sets itself, so no cookie ever needs to cross origins.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXPOSED = (
    b"Elements-Returned-Count, Elements-Total-Count, Elements-Request-Id, "
    b"Elements-Next-Page-Token, Elements-Trace-Id, Elements-Error, Content-Disposition"
)
METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
# What a preflight may ask to send when it names no headers of its own.
REQUEST_HEADERS = b"Authorization, Content-Type, Elements-Version, Idempotency-Key"
MAX_AGE = b"600"


def parse_origins(setting: str) -> frozenset[str] | None:
    """None for any origin (``*``), else the listed origins."""
    origins = {o.strip().rstrip("/") for o in setting.split(",") if o.strip()}
    return None if "*" in origins else frozenset(origins)


class CorsPolicy:
    """Which origins get which headers; the hub fast path adds them without the middleware."""

    def __init__(self, *, origins: str) -> None:
        self.allowed = parse_origins(origins)

    def _allow_origin(self, origin: bytes) -> bytes | None:
        if self.allowed is None:
            return b"*"
        return origin if origin.decode("latin-1") in self.allowed else None

    def _allowed(self, scope: Scope) -> tuple[bytes | None, bytes | None, bytes | None]:
        """The allowed origin to echo (None: no CORS headers), the preflight's method and the
        headers it asks to send."""
        origin = preflight = asked_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = value
            elif name == b"access-control-request-headers":
                asked_headers = value
        allow = None if origin is None else self._allow_origin(origin)
        return allow, preflight, asked_headers

    def _base(self, allow: bytes) -> list[tuple[bytes, bytes]]:
        cors = [(b"access-control-allow-origin", allow)]
        if self.allowed is not None:
            cors.append((b"vary", b"Origin"))
        return cors

    def answer_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The CORS headers of the answer to a request that is no preflight (a new list, empty
        without an allowed origin): what this middleware adds, for the hub fast path."""
        allow = self._allowed(scope)[0]
        if allow is None:
            return []
        return [*self._base(allow), (b"access-control-expose-headers", EXPOSED)]


class CorsMiddleware(CorsPolicy):
    def __init__(self, app: ASGIApp, *, origins: str) -> None:
        super().__init__(origins=origins)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allow, preflight, asked_headers = self._allowed(scope)
        if allow is None:
            await self.app(scope, receive, send)
            return
        cors = self._base(allow)
        if scope["method"] == "OPTIONS" and preflight is not None:
            cors += [
                (b"access-control-allow-methods", METHODS),
                (b"access-control-allow-headers", asked_headers or REQUEST_HEADERS),
                (b"access-control-max-age", MAX_AGE),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": cors})
            await send({"type": "http.response.body", "body": b""})
            return
        cors.append((b"access-control-expose-headers", EXPOSED))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)
