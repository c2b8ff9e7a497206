"""Pure ASGI middleware: request ids on every response, the request body cap, and the caps on
the request target and headers (414, 431), below the HTTP server's own (hubgate.httpserver) so
that the app answers them in the D9 shape.

Written against raw ASGI rather than BaseHTTPMiddleware because it sits on the hot path
of every proxied call and must not buffer or copy bodies.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.kit.errors import HubgateError

REQUEST_ID_HEADER = b"elements-request-id"
BODY_TOO_LARGE = "Request body too large"
# The path and query of a request ("where" and "nextPage" travel there), and all its header
# names and values together; larger ones are refused with 414 and 431 (D205).
MAX_TARGET_BYTES = 16 * 1024
MAX_HEADER_BYTES = 32 * 1024
TARGET_TOO_LONG = (
    f"Request URL too long: the path and query may hold {MAX_TARGET_BYTES} bytes; "
    "narrow the where clause"
)
HEADERS_TOO_LARGE = f"Request headers too large: they may hold {MAX_HEADER_BYTES} bytes in all"


def new_request_id() -> str:
    # 24 lowercase hex characters, the shape Open Connectors' request ids have: what
    # ``secrets.token_hex(12)`` gives, from the same source without its two calls between (D532).
    return os.urandom(12).hex()


def error_body(request_id: str, message: str, **extra: Any) -> bytes:
    """The D9 body, rendered as the app's handlers render theirs."""
    return bytes(JSONResponse({"requestId": request_id, "message": message, **extra}).body)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header_value = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, header_value))
                message["headers"] = headers
            await send(message)

        refusal = refusal_of(scope, self.max_body_bytes)
        if refusal is not None:
            await send_error(request_id, *refusal, send_with_id)
            await drain(receive)
            return
        await self.app(scope, capped(receive, self.max_body_bytes), send_with_id)


def capped(receive: Receive, max_body_bytes: int) -> Receive:
    """``receive`` that stops a body growing past the cap."""
    received = 0

    async def capped_receive() -> Message:
        # A chunked body has no Content-Length; the handler's read is aborted here and
        # the app's error handler answers 413.
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body_bytes:
                raise HubgateError(413, BODY_TOO_LARGE)
        return message

    return capped_receive


def refusal_of(scope: Scope, max_body_bytes: int) -> tuple[int, str] | None:
    """The status and message of a request refused before any handler runs (414, 431, 413)."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
    if target > MAX_TARGET_BYTES:
        return 414, TARGET_TOO_LONG
    # The headers' size and the first Content-Length in one pass: every request pays it (D532).
    size = 0
    length: bytes | None = None
    for name, value in scope["headers"]:
        size += len(name) + len(value)
        if length is None and name == b"content-length":
            length = value
    if size > MAX_HEADER_BYTES:
        return 431, HEADERS_TOO_LARGE
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            return None
        if declared > max_body_bytes:
            return 413, BODY_TOO_LARGE
    return None


async def drain(receive: Receive) -> None:
    # Reading what the client already sent lets the server answer before closing.
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"


async def send_error(
    request_id: str,
    status: int,
    message: str,
    send: Send,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A D9 answer; ``extra`` headers go after its own."""
    body = error_body(request_id, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
