"""Every error leaves Hubgate as the D9 body, whatever raised it."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.kit.errors import HubgateError

# Seconds a client is asked to wait when the database is unavailable (503).
DATABASE_RETRY_AFTER = 5

log = logging.getLogger("hubgate.errors")


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"requestId": request_id(request), "message": message}
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers)


def describe_validation(errors: Sequence[Any]) -> str:
    """One readable line naming the first few offending fields of a validation failure."""
    parts = []
    for error in errors[:5]:
        if error.get("type") == "json_invalid":
            return "Malformed JSON body"
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


async def _hubgate_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubgateError)
    if exc.status == 401 and "authorization" in request.headers:
        # Every refused credential passes here, whichever layer refused it.
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            runtime.limits.note_auth_failure(request)
    return error_response(request, exc.status, exc.message, extra=exc.extra, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 400, describe_validation(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"No resource at {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(request, exc.status_code, message, headers=dict(exc.headers or {}))


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached, rather than a bug of ours.

    Connection failures, connections cut mid-query (a restart, ``pg_ctl stop -m fast``) and a
    pool with no connection to give within its timeout. Not data errors: those are bugs.
    """
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, sa_exc.TimeoutError | psycopg.OperationalError | psycopg.InterfaceError)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not database_unavailable(exc):
        return await _unexpected(request, exc)
    # The class name only: the driver's message can hold the SQL and its parameters.
    cause = type(getattr(exc, "orig", None) or exc).__name__
    log.warning(
        "database unavailable in %s %s (request %s): %s",
        request.method,
        request.url.path,
        request_id(request),
        cause,
    )
    return error_response(
        request,
        503,
        "The database is unavailable; try again shortly",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def where(exc: BaseException) -> str:
    """The innermost line of Hubgate's own code the error passed through (``module:line``)."""
    found = "outside hubgate"
    for frame, line in traceback.walk_tb(exc.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith("hubgate."):
            found = f"{module}:{line}"
    return found


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The log gets the class and the line under the request id, not the message or the
    # trace (D9, D172): a driver's message carries SQL and its parameters, and an
    # exception's text can quote whatever value it choked on.
    log.error(
        "unhandled %s.%s at %s in %s %s (request %s)",
        type(exc).__module__,
        type(exc).__qualname__,
        where(exc),
        request.method,
        request.url.path,
        request_id(request),
    )
    return error_response(request, 500, "Internal error; quote the request id to the operator")


async def response_for(request: Request, exc: Exception) -> JSONResponse:
    """The answer the app's handlers give ``exc``, for code that answers outside FastAPI's
    routing (hub.fastpath): the same D9 body, 401 counting, 503 and log line."""
    if isinstance(exc, HubgateError):
        return await _hubgate_error(request, exc)
    if isinstance(exc, sa_exc.DBAPIError | sa_exc.TimeoutError | psycopg.Error):
        return await _database_error(request, exc)
    return await _unexpected(request, exc)


class UnexpectedErrors:
    """Answers what no handler took (a bug) inside the request-id middleware, and ends there.

    Starlette gives a handler of ``Exception`` to its outermost middleware, which answers
    without the ``Elements-Request-Id`` header and then raises again, so that uvicorn logs the
    whole traceback: the one D173 line is all a 500 may log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            response = await response_for(Request(scope, receive), exc)
            if not started:
                await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubgateError, _hubgate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for database_error in (sa_exc.DBAPIError, sa_exc.TimeoutError, psycopg.Error):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
