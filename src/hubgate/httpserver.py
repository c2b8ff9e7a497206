"""The HTTP server's own answers in the D9 shape, and the uvicorn options that install them.

uvicorn answers a request it cannot parse itself, before any ASGI app runs, with a plain-text
400 and no request id. The protocol classes here answer those in the D9 shape instead (D205):

- a request target longer than ``MAX_TARGET_BYTES`` is a 414 (httptools stops reading it there;
  h11 reads up to its buffer, and the app's middleware refuses what fits in it);
- a request head larger than ``MAX_HEAD_BYTES`` is a 431 (smaller heads reach the middleware,
  whose header cap is lower, so the app answers those);
- any other bytes that are not HTTP (a bad header name or value, a broken request line) are a
  400.

Every process that serves the API gets them through ``server_options()``: ``hubgate serve``,
each of its ``--workers`` and the test server.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol as _UvicornH11
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _UvicornHttpTools

from hubgate.middleware import (
    MAX_HEADER_BYTES,
    MAX_TARGET_BYTES,
    TARGET_TOO_LONG,
    error_body,
    new_request_id,
)

# The request line and headers together, with room for the request line, the separators and
# the header count; above the middleware's caps, so that everything those catch reaches the app.
MAX_HEAD_BYTES = MAX_TARGET_BYTES + MAX_HEADER_BYTES + 16 * 1024
HEAD_TOO_LARGE = (
    f"Request head too large: the request line and headers may hold {MAX_HEAD_BYTES} bytes"
)
MALFORMED_REQUEST = "Malformed HTTP request: the request line or a header is not valid HTTP/1.1"
# After a refusal the connection reads and drops what the client still sends, this long and this
# much at most, before it closes: closing a socket with unread bytes resets it, and a reset can
# destroy the answer before the client reads it (a client still sending a 2 MB URL, say).
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 16 * 1024 * 1024

# A body part longer than this is not copied to join the head: two writes cost less then.
JOIN_MAX_BYTES = 256 * 1024
CONTINUE = b"HTTP/1.1 100 "

log = logging.getLogger("hubgate.http")

Protocol = Literal["httptools", "h11"]


def server_options(protocol: Protocol = "httptools") -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` or ``uvicorn.Config`` that install these answers.

    An import string, not the class, so that ``--workers`` processes import it themselves.
    """
    name = "HttpToolsProtocol" if protocol == "httptools" else "H11Protocol"
    return {"http": f"{__name__}:{name}", "h11_max_incomplete_event_size": MAX_HEAD_BYTES}


def refusal(status: int, message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response with the D9 body; the connection closes after it."""
    request_id = new_request_id()
    body = error_body(request_id, message)
    log.warning("refused a request with %s before the app (request %s)", status, request_id)
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"elements-request-id: " + request_id.encode(),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Refusing(asyncio.Protocol):
    """Sends a refusal, then drains the connection for a moment before it closes."""

    transport: asyncio.Transport
    _lingering = False
    _linger_left = LINGER_MAX_BYTES

    def _refuse(self, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
        self._lingering = True
        self.transport.write(refusal(status, message, headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _drained(self, data: bytes) -> bool:
        """Whether ``data`` came after a refusal, and was dropped."""
        if not self._lingering:
            return False
        self._linger_left -= len(data)
        if self._linger_left <= 0:
            self.transport.close()
        return True

    def eof_received(self) -> None:
        # The client has sent everything: after a refusal nothing is left to wait for.
        if self._lingering:
            self.transport.close()


class HeadJoiningTransport(asyncio.Transport):
    """One response's view of its connection: the head goes out with the first body part.

    uvicorn writes a response's status line and headers, then its body, in two writes: two
    system calls and two TCP segments for the client to wake up for, where one would do (D550).
    This holds the head written after the response started and sends it joined to the next
    write. A HEAD response has no body write, so its head is never held; ``close`` sends a held
    head first, as uvicorn's order of writes had it. A 100 Continue, written before the
    response starts, passes at once.
    """

    __slots__ = ("_head", "_holding", "_transport")

    def __init__(self, transport: asyncio.Transport, method: str) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._holding = method != "HEAD"

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if len(data) <= JOIN_MAX_BYTES:
                self._transport.write(head + data)
                return
            self._transport.write(head)
        elif self._holding and bytes(data[: len(CONTINUE)]) != CONTINUE:
            self._holding = False
            self._head = bytes(data)
            return
        self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            self._transport.write(self._head)
            self._head = None
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class _TargetTooLongError(Exception):
    """Raised in a parser callback to stop httptools reading a request target."""


class HttpToolsProtocol(_Refusing, _UvicornHttpTools):
    """uvicorn's httptools protocol with D9 refusals and caps on the request head."""

    _head_open = False
    _head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            raise _TargetTooLongError

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()
        cycle = self.cycle
        # Not yet run: the cycle's task starts on the loop's next turn. Skipped for an upgrade,
        # which makes no cycle, or keeps the previous one.
        if cycle is not None and cycle.scope is self.scope and cycle.transport is self.transport:
            cycle.transport = HeadJoiningTransport(self.transport, cycle.scope["method"])

    def data_received(self, data: bytes) -> None:
        if self._drained(data):
            return
        # httptools keeps a header however long it grows: count what arrives while a head is
        # open. A chunk counts only if the head was open when it came, so a body never does.
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_open and self._head_bytes > MAX_HEAD_BYTES and not self._lingering:
            self._refuse(431, HEAD_TOO_LARGE, self.server_state.default_headers)

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this for every parser error, a callback's _TargetTooLongError among them.
        self._head_open = False
        if len(getattr(self, "url", b"")) > MAX_TARGET_BYTES:
            self._refuse(414, TARGET_TOO_LONG, self.server_state.default_headers)
        else:
            self._refuse(400, MALFORMED_REQUEST, self.server_state.default_headers)


class _Connection(h11.Connection):
    """h11's connection, remembering the status h11 suggests for the error it raised."""

    refused_status = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refused_status = exc.error_status_hint
            raise


class H11Protocol(_Refusing, _UvicornH11):
    """uvicorn's h11 protocol with D9 refusals; h11 caps the head at MAX_HEAD_BYTES."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Whatever the config says: below the middleware's caps h11 would refuse heads the app
        # is meant to answer.
        self.conn = _Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    def data_received(self, data: bytes) -> None:
        if not self._drained(data):
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        headers = self.server_state.default_headers
        status = self.conn.refused_status if isinstance(self.conn, _Connection) else 400
        if status != 431:
            self._refuse(400, MALFORMED_REQUEST, headers)
        # The buffer overflowed before the request line ended: its target is the culprit.
        elif b"\n" not in self.conn.trailing_data[0]:
            self._refuse(414, TARGET_TOO_LONG, headers)
        else:
            self._refuse(431, HEAD_TOO_LARGE, headers)
