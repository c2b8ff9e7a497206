"""Pure ASGI middleware: request ids on every response and the request body cap.

Written against raw ASGI rather than BaseHTTPMiddleware because it sits on the hot path
of every proxied call and must not buffer or copy bodies.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.kit.errors import HubgateError

REQUEST_ID_HEADER = b"elements-request-id"
BODY_TOO_LARGE = "Request body too large"


def new_request_id() -> str:
    # 24 lowercase hex characters, the shape Open Connectors' request ids have.
    return secrets.token_hex(12)


def error_body(request_id: str, message: str, **extra: Any) -> bytes:
    return json.dumps({"requestId": request_id, "message": message, **extra}).encode()


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

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _send_too_large(request_id, send_with_id)
            await _drain(receive)
            return

        received = 0

        async def capped_receive() -> Message:
            # A chunked body has no Content-Length; the handler's read is aborted here and
            # the app's error handler answers 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HubgateError(413, BODY_TOO_LARGE)
            return message

        await self.app(scope, capped_receive, send_with_id)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive) -> None:
    # Reading what the client already sent lets the server answer before closing.
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"


async def _send_too_large(request_id: str, send: Send) -> None:
    body = error_body(request_id, BODY_TOO_LARGE)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
