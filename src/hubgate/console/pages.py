"""Rendering console pages: templates, security headers, and HTML error pages."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from hubgate.console.sessions import ConsoleUser
from hubgate.kit.errors import HubgateError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# Pages load nothing but this origin's files; Swagger UI's runtime styles go through the
# CSSOM, which style-src does not restrict, so no inline allowance is needed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show tokens and configuration: never keep them in a shared or back-button cache.
    "Cache-Control": "no-store",
}


class NotSignedInError(Exception):
    """Raised by pages that need a signed-in person; answered with the sign-in page."""


class PageError(Exception):
    """An error shown as an HTML page with this status."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def not_found(message: str = "There is nothing at this address.") -> PageError:
    return PageError(404, "Not found", message)


def csrf_refused() -> PageError:
    return PageError(
        403,
        "Form expired",
        "This form was not sent from a page of this console, or it is too old. "
        "Go back, reload the page and try again.",
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: ConsoleUser | None = None,
    status: int = 200,
) -> Response:
    response = templates.TemplateResponse(
        request, template, {"user": user, **(context or {})}, status_code=status
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(path: str) -> RedirectResponse:
    # 303: after a POST the browser fetches the next page with GET.
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def safe_next(path: str | None) -> str:
    """Only a path of this site: never an open redirect to another host."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/signin?next=" + quote(target, safe=""))


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "status": status},
        user=getattr(request.state, "console_user", None),
        status=status,
    )


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


async def _delegate(handler: Handler, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    return await result if inspect.isawaitable(result) else result


def install_error_pages(app: FastAPI, api_prefix: str) -> None:
    """Console addresses answer errors with HTML; the API keeps its JSON bodies (D9).

    Call after the API's handlers are installed: each is wrapped, not replaced.
    """

    def is_api(request: Request) -> bool:
        return request.url.path.startswith(api_prefix)

    api_http: Handler = app.exception_handlers[StarletteHTTPException]
    api_hubgate: Handler = app.exception_handlers[HubgateError]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_api(request) or exc.status_code not in (404, 405):
            return await _delegate(api_http, request, exc)
        if exc.status_code == 404:
            return error_page(request, 404, "Not found", "There is nothing at this address.")
        return error_page(request, 405, "Not allowed", "This address does not take that request.")

    async def hubgate_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubgateError)
        if is_api(request):
            return await _delegate(api_hubgate, request, exc)
        return error_page(request, exc.status, "Something went wrong", exc.message)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, exc.status, exc.title, exc.message)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        return sign_in_redirect(request)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(HubgateError, hubgate_error)
    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(NotSignedInError, sign_in_required)
