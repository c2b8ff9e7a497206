"""The web console under ``/`` (D33): server-rendered pages over the same services as the API."""

from __future__ import annotations

from fastapi import FastAPI

from hubgate.console import events_section, formula_endpoints, mapper_endpoints, trace_logs
from hubgate.console.endpoints import router
from hubgate.console.pages import install_error_pages
from hubgate.console.static_files import console_static
from hubgate.console.static_files import router as static_router


def install(app: FastAPI, *, api_prefix: str) -> None:
    """Add the console's routes and files; call after the API and its error handlers."""
    events_section.register()
    trace_logs.register()
    app.include_router(static_router)
    app.mount("/static/console", console_static(), name="console-static")
    app.include_router(router)
    app.include_router(mapper_endpoints.router)
    app.include_router(formula_endpoints.router)
    install_error_pages(app, api_prefix)
